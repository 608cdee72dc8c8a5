/* libFuzzer target: a Unigram tokenizer.json (T5 / SentencePiece style) as
 * m2u_unigram_load reads it; a loaded tokenizer then normalizes and encodes
 * fixed texts (also truncated) and looks up every id. */
#include "fuzz_tokenizer_common.h"
#include "fuzz_util.h"
#include "m2u_error.h"
#include "unigram_tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "tokenizer.json", data, size);
    fuzz_quiet_begin();
    m2u_unigram *tok = NULL;
    if (m2u_unigram_load(path, &tok) == 0) {
        int v = m2u_unigram_vocab_size(tok);
        for (int id = -1; id <= v && id < 100000; id++) {
            const char *s = m2u_unigram_id_to_token(tok, id);
            if (s && m2u_unigram_token_to_id(tok, s) < 0) abort(); /* a token's string maps back to an id */
        }
        (void)m2u_unigram_eos_id(tok);
        (void)m2u_unigram_pad_id(tok);
        (void)m2u_unigram_unk_id(tok);
        for (size_t k = 0; k < FUZZ_N_TEXTS; k++) {
            const char *t = fuzz_texts[k];
            char *norm = NULL;
            size_t nl = 0;
            if (m2u_unigram_normalize(tok, t, strlen(t), &norm, &nl) == 0) free(norm);
            for (int sp = 0; sp < 2; sp++) {
                int32_t *ids = NULL;
                size_t n = 0;
                if (m2u_unigram_encode(tok, t, strlen(t), sp, &ids, &n) == 0) free(ids);
                ids = NULL;
                if (m2u_unigram_encode_truncated(tok, t, strlen(t), sp, 4, &ids, &n) == 0) {
                    if (n > 4) abort(); /* truncation must hold */
                    free(ids);
                }
            }
        }
        m2u_unigram_free(tok);
    } else if (!m2u_last_error()[0]) {
        abort(); /* a refusal must say why */
    }
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
