/* libFuzzer target: METEOR's WordNet parsers (index.sense and *.exc lines, as
 * m2u_meteor_load_wordnet reads them), then the synonym look-up with its
 * morphology rules on the input's own words and a synonym-module alignment. */
#include "caption_metrics.h"
#include "fuzz_util.h"
#include "m2u_error.h"
#include "meteor_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_quiet_begin();
    m2u_meteor_data *d = m2u_meteor_data_new();
    if (!d) abort();
    const char *buf = (const char *)data;
    int rc = m2u_meteor_parse_index_sense(d, buf, size, "index.sense");
    if (rc && !m2u_last_error()[0]) abort();
    if (rc == 0 && m2u_meteor_parse_exc(d, buf, size, "noun.exc") == 0) {
        /* the input's first words (lemmas, inflected forms) looked up and aligned */
        char text[256];
        size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
        for (size_t i = 0; i < n; i++) {
            char c = buf[i];
            text[i] = (c == '%' || c == '\n' || c == 0) ? ' ' : c;
        }
        text[n] = 0;
        char *norm = m2u_meteor_normalize(text);
        if (norm) {
            int *syn = NULL, ns = 0;
            for (char *w = strtok(norm, " "); w; w = strtok(NULL, " ")) {
                if (m2u_meteor_word_synsets(d, w, &syn, &ns)) abort();
                for (int k = 1; k < ns; k++)
                    if (syn[k - 1] >= syn[k]) abort(); /* sorted, no repeats */
                free(syn);
            }
            free(norm);
        }
        const char *cand[] = {text}, *r0[] = {"a b c"};
        const char *const *refs[] = {r0};
        int nr[] = {1};
        m2u_caption_set set = {1, cand, refs, nr};
        m2u_meteor_params p;
        m2u_meteor_default_params_data(&p, d);
        double c, per;
        if (m2u_meteor(&set, &p, &c, &per) || !(per >= 0 && per <= 1)) abort();
    }
    m2u_meteor_data_free(d);
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
