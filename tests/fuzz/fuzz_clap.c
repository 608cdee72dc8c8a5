/* libFuzzer target: the CLAP readers.  The first byte picks what the rest is:
 *   0  config.json of a ClapModel directory (the fixture's preprocessor_config.json and
 *      weights beside it): m2u_clap_load
 *   1  its preprocessor_config.json (the fixture's config.json and weights beside it)
 *   2  a JSON-lines pairs file, 3  a TSV pairs file: m2u_clap_pairs_read
 * Whatever is refused must say why (m2u_last_error non-empty). */
#include "clap.h"
#include "clap_score.h"
#include "fuzz_util.h"
#include "m2u_error.h"

#define FIX M2U_FIXTURES "/clap/model"

static void link_fixture(const char *name) {
    const char *dst = fuzz_path(2, name);
    if (access(dst, F_OK) == 0) return;
    if (symlink(FIX "/model.safetensors", dst) != 0 && strcmp(name, "model.safetensors") == 0) abort();
}

static void copy_fixture(const char *name) {
    char src[512], buf[65536];
    snprintf(src, sizeof src, FIX "/%s", name);
    FILE *f = fopen(src, "rb");
    if (!f) abort();
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    fuzz_write(3, name, buf, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] & 3;
    data++, size--;
    link_fixture("model.safetensors");
    fuzz_quiet_begin();
    if (mode <= 1) {
        copy_fixture(mode == 0 ? "preprocessor_config.json" : "config.json");
        fuzz_write(0, mode == 0 ? "config.json" : "preprocessor_config.json", data, size);
        m2u_clap *m = NULL;
        if (m2u_clap_load(fuzz_dir(), &m) == 0) m2u_clap_free(m);
        else if (!m2u_last_error()[0]) abort();
    } else {
        const char *p = fuzz_write(0, mode == 2 ? "pairs.jsonl" : "pairs.tsv", data, size);
        m2u_clap_scores s;
        if (m2u_clap_pairs_read(p, &s) == 0) m2u_clap_scores_free(&s);
        else if (!m2u_last_error()[0]) abort();
    }
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
