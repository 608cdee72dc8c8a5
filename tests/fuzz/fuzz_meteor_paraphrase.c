/* libFuzzer target: METEOR's paraphrase table reader (m2u_meteor_load_paraphrase:
 * gzip or plain text, three lines per entry), then the paraphrase matcher and
 * the multi-word alignment on sentences made of the input's own words. */
#include "caption_metrics.h"
#include "fuzz_util.h"
#include "m2u_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "para.gz", data, size);
    fuzz_quiet_begin();
    m2u_meteor_data *d = m2u_meteor_data_new();
    if (!d) abort();
    if (m2u_meteor_load_paraphrase(d, path, NULL) == 0) {
        /* candidate: the input's first bytes; reference: the next ones (lines joined) */
        char a[192], b[192];
        size_t h = size / 2;
        size_t na = h < sizeof a - 1 ? h : sizeof a - 1, nb = size - h < sizeof b - 1 ? size - h : sizeof b - 1;
        for (size_t i = 0; i < na; i++) a[i] = data[i] == '\n' || data[i] == 0 ? ' ' : (char)data[i];
        for (size_t i = 0; i < nb; i++) b[i] = data[h + i] == '\n' || data[h + i] == 0 ? ' ' : (char)data[h + i];
        a[na] = b[nb] = 0;
        const char *cand[] = {a, b}, *r0[] = {b, a}, *r1[] = {a};
        const char *const *refs[] = {r0, r1};
        int nr[] = {2, 1};
        m2u_caption_set set = {2, cand, refs, nr};
        m2u_meteor_params p;
        m2u_meteor_default_params_data(&p, d);
        double c, per[2];
        if (m2u_meteor(&set, &p, &c, per)) abort();
        if (!(c >= 0 && c <= 1 && per[0] >= 0 && per[0] <= 1 && per[1] >= 0 && per[1] <= 1)) abort();
    } else if (!m2u_last_error()[0]) {
        abort();
    }
    m2u_meteor_data_free(d);
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
