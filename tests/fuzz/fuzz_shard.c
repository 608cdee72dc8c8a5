/* libFuzzer target: an HDF5 dataset shard as m2u_shard_open reads it, then
 * every sample (text, clip, audio, attributes, tensors) through the reader.
 * Byte-level mutations mostly corrupt HDF5's own metadata, which libhdf5
 * (not instrumented, not hardened against hostile files) may crash on; m2u's
 * defence there is the manifest's sha256, checked when a shard is first
 * opened through a dataset (issue 11).  So a crash whose stack is entirely
 * inside libhdf5 is libhdf5's; one with an m2u frame is ours.
 *
 * Seeds: M2U_FUZZ_MAKE_SEEDS=<dir> fuzz_shard writes small valid shards
 * (m2u_shard_create) into <dir> and exits; tests/fuzz/run.sh does this. */
#define FUZZ_OWN_INIT
#include "fuzz_util.h"
#include "m2u_error.h"
#include "fuzz_shard_seed.h"
#include "shard.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_init();
    const char *dir = getenv("M2U_FUZZ_MAKE_SEEDS");
    if (dir) {
        char p[3][600];
        for (int k = 0; k < 3; k++) snprintf(p[k], sizeof p[k], "%s/seed%d.h5", dir, k);
        if (make_seed(p[0], 16000, 4, 2, 3) || make_seed(p[1], 0, 0, 0, 2) || make_seed(p[2], 8000, 0, 1, 1)) {
            fprintf(stderr, "fuzz_shard: %s\n", m2u_last_error());
            exit(1);
        }
        exit(0);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "shard.h5", data, size);
    fuzz_quiet_begin();
    m2u_shard_reader *r = NULL;
    if (m2u_shard_open(path, &r) == 0) {
        int64_t n = m2u_shard_count(r);
        for (int64_t i = 0; i < n && i < 16; i++) {
            m2u_sample s;
            if (m2u_shard_get_sample(r, i, &s) == 0) m2u_sample_free(&s);
            for (int t = 0; t < m2u_shard_n_tensors(r); t++) {
                const m2u_shard_tensor_info *ti = m2u_shard_tensor(r, t);
                if (m2u_shard_tensor_present(r, t, i) == 1 && ti->numel <= (1u << 20)) {
                    float *buf = malloc((ti->numel ? ti->numel : 1) * sizeof *buf);
                    if (buf) (void)m2u_shard_get_tensor_f32(r, t, i, buf, ti->numel);
                    free(buf);
                }
            }
        }
        for (int c = 0; c < M2U_TEXT_COUNT; c++) {
            char *text = NULL;
            size_t nb = 0;
            const int64_t *off = NULL;
            if (m2u_shard_text_column(r, (m2u_text_col)c, &text, &nb, &off) == 0) free(text);
        }
        for (int k = 0; k < m2u_shard_n_attrs(r); k++) (void)m2u_shard_attr_name(r, k);
        m2u_shard_reader_close(r);
    } else if (!m2u_last_error()[0]) {
        abort();
    }
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
