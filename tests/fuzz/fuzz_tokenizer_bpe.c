/* libFuzzer target: a BPE tokenizer.json (LLaMA style) as m2u_tokenizer_load
 * reads it; a loaded tokenizer then encodes and decodes fixed texts and looks
 * up every id, so tables built from a hostile file are exercised too. */
#include "fuzz_tokenizer_common.h"
#include "fuzz_util.h"
#include "m2u_error.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write(0, "tokenizer.json", data, size);
    fuzz_quiet_begin();
    m2u_tokenizer *tok = NULL;
    if (m2u_tokenizer_load(path, &tok) == 0) {
        int v = m2u_tokenizer_vocab_size(tok);
        for (int id = -1; id <= v && id < 100000; id++) {
            const char *s = m2u_tokenizer_id_to_token(tok, id);
            if (s && m2u_tokenizer_token_to_id(tok, s) < 0) abort(); /* a token's string maps back to an id */
        }
        (void)m2u_tokenizer_bos_id(tok);
        (void)m2u_tokenizer_eos_id(tok);
        for (size_t k = 0; k < FUZZ_N_TEXTS; k++) {
            for (int sp = 0; sp < 2; sp++) {
                int32_t *ids = NULL;
                size_t n = 0;
                if (m2u_tokenizer_encode(tok, fuzz_texts[k], strlen(fuzz_texts[k]), sp, &ids, &n) == 0) {
                    char *text = NULL;
                    size_t len = 0;
                    if (m2u_tokenizer_decode_n(tok, ids, n, sp, &text, &len) == 0) free(text);
                }
                free(ids);
            }
        }
        const char *extra[] = {"[AUD0]", "[AUD1]"};
        if (m2u_tokenizer_add_tokens(tok, extra, 2, 0) == 0) {
            int32_t *ids = NULL;
            size_t n = 0;
            if (m2u_tokenizer_encode(tok, "x[AUD0] [AUD1]y", 15, 1, &ids, &n) == 0) free(ids);
        }
        m2u_tokenizer_free(tok);
    } else if (!m2u_last_error()[0]) {
        abort(); /* a refusal must say why */
    }
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
