/* libFuzzer target: a WordPiece tokenizer.json (BERT / RoBERTa-style files
 * the BERTScore path loads) as m2u_wordpiece_load reads it; a loaded
 * tokenizer then normalizes and encodes fixed texts, also truncated. */
#include "fuzz_tokenizer_common.h"
#include "fuzz_util.h"
#include "m2u_error.h"
#include "wordpiece_tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "tokenizer.json", data, size);
    fuzz_quiet_begin();
    m2u_wordpiece *tok = NULL;
    if (m2u_wordpiece_load(path, &tok) == 0) {
        (void)m2u_wordpiece_vocab_size(tok);
        (void)m2u_wordpiece_token_to_id(tok, "[UNK]");
        (void)m2u_wordpiece_cls_id(tok);
        (void)m2u_wordpiece_sep_id(tok);
        size_t n_special = (size_t)m2u_wordpiece_n_special(tok);
        for (size_t k = 0; k < FUZZ_N_TEXTS; k++) {
            const char *t = fuzz_texts[k];
            char *norm = NULL;
            size_t nl = 0;
            if (m2u_wordpiece_normalize(tok, t, strlen(t), &norm, &nl) == 0) free(norm);
            for (int sp = 0; sp < 2; sp++) {
                for (size_t max = 0; max <= 8; max += 8) {
                    int32_t *ids = NULL;
                    size_t n = 0;
                    if (m2u_wordpiece_encode(tok, t, strlen(t), sp, max, &ids, &n) == 0) {
                        if (max && n > max && n > n_special) abort(); /* truncation must hold */
                        free(ids);
                    }
                }
            }
        }
        m2u_wordpiece_free(tok);
    } else if (!m2u_last_error()[0]) {
        abort(); /* a refusal must say why */
    }
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
