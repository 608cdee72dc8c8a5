/* libFuzzer target: the slow RobertaTokenizer's files as m2u_bytebpe_load reads them.  The input is
 * vocab.json, a NUL byte, merges.txt, and optionally a NUL byte and tokenizer_config.json; a loaded
 * tokenizer then encodes (with and without the prefix space, truncated or not) and decodes fixed
 * texts and looks up every id, so tables built from a hostile file are exercised too. */
#include "bytelevel_bpe.h"
#include "fuzz_tokenizer_common.h"
#include "fuzz_util.h"
#include "m2u_error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *z1 = memchr(data, 0, size);
    if (!z1) return 0;
    const uint8_t *rest = z1 + 1, *end = data + size;
    const uint8_t *z2 = memchr(rest, 0, (size_t)(end - rest));
    const char *vocab = fuzz_write(0, "vocab.json", data, (size_t)(z1 - data));
    const char *merges = fuzz_write(1, "merges.txt", rest, (size_t)((z2 ? z2 : end) - rest));
    const char *cfg = z2 ? fuzz_write(2, "tokenizer_config.json", z2 + 1, (size_t)(end - z2 - 1)) : NULL;
    fuzz_quiet_begin();
    m2u_bytebpe *tok = NULL;
    if (m2u_bytebpe_load_files(vocab, merges, cfg, &tok) == 0) {
        int v = m2u_bytebpe_vocab_size(tok);
        for (int id = -1; id <= v + 8 && id < 100000; id++) {
            const char *s = m2u_bytebpe_id_to_token(tok, id);
            if (s && m2u_bytebpe_token_to_id(tok, s) < 0) abort(); /* a token's string maps back to an id */
        }
        for (size_t k = 0; k < FUZZ_N_TEXTS; k++) {
            for (int sp = 0; sp < 4; sp++) {
                int32_t *ids = NULL;
                size_t n = 0;
                if (m2u_bytebpe_encode(tok, fuzz_texts[k], strlen(fuzz_texts[k]), sp & 1, sp >> 1, sp == 3 ? 5 : 0,
                                       &ids, &n) == 0) {
                    char *text = NULL;
                    size_t len = 0;
                    if (m2u_bytebpe_decode(tok, ids, n, sp & 1, &text, &len) == 0) free(text);
                }
                free(ids);
            }
        }
        m2u_bytebpe_free(tok);
    } else if (!m2u_last_error()[0]) {
        abort(); /* a refusal must say why */
    }
    m2u_clear_error();
    fuzz_quiet_end();
    return 0;
}
