/* libFuzzer target: a dataset manifest.json as m2u_manifest_read reads it
 * (paths, counts, sizes, sha256, xxh128, config).  An accepted manifest is written
 * back with m2u_manifest_write and must read again with the same shards. */
#include "fuzz_util.h"
#include "m2u_error.h"
#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "manifest.json", data, size);
    fuzz_quiet_begin();
    m2u_manifest m;
    if (m2u_manifest_read(path, &m) == 0) {
        const char *out = fuzz_path(1, "manifest.out.json");
        m2u_manifest again;
        if (m2u_manifest_write(out, &m) != 0 || m2u_manifest_read(out, &again) != 0) {
            dprintf(fuzz_report_fd_, "manifest accepted but its rewrite is refused: %s\n", m2u_last_error());
            abort();
        }
        if (again.n_shards != m.n_shards || again.total != m.total) abort();
        for (int i = 0; i < m.n_shards; i++)
            if (strcmp(again.shards[i].path, m.shards[i].path) || again.shards[i].count != m.shards[i].count ||
                again.shards[i].bytes != m.shards[i].bytes || strcmp(again.shards[i].sha256, m.shards[i].sha256) ||
                strcmp(again.shards[i].xxh128, m.shards[i].xxh128))
                abort();
        m2u_manifest_free(&again);
    } else if (!m2u_last_error()[0]) {
        abort();
    }
    m2u_manifest_free(&m);
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
