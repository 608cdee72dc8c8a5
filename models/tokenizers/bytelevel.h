/* The GPT-2 byte-level pieces shared by the slow RobertaTokenizer (bytelevel_bpe.c) and the ByteLevel
 * pre-tokenizer / decoder of the tokenizer.json pipeline (tokenizer_pipeline.c):
 *   - the pre-tokenisation regex 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *     with the letter / number classes of either engine (they differ on recently assigned characters:
 *     bytelevel_unicode_tables.h);
 *   - bytes_to_unicode (printable Latin-1 bytes are themselves, the others U+0100.. in order);
 *   - UTF-8 decoding with one U+FFFD per maximal invalid subpart (CPython's errors="replace" and Rust's
 *     String::from_utf8_lossy agree on it). */
#ifndef M2U_BYTELEVEL_H
#define M2U_BYTELEVEL_H

#include "strbuf.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    M2U_BL_PYTHON, /* Python regex 2026.5.9: transformers' slow tokenizers */
    M2U_BL_ONIG,   /* onig in tokenizers 0.20.3: the ByteLevel pre-tokenizer */
} m2u_bl_engine;

/* End of the regex's match starting at cp[i] (i < n): findall's pieces are [i, end) in turn. */
size_t m2u_bl_match(const uint32_t *cp, size_t n, size_t i, m2u_bl_engine e);

/* byte -> code point, and back over U+0000..U+0143 (-1 where no byte maps). */
void m2u_bl_byte_map(uint32_t byte_cp[256], int16_t cp_byte[324]);

/* b[0..n) decoded with replacement, appended to out; -1 (m2u_fail) only when out of memory. */
int m2u_bl_utf8_replace(const unsigned char *b, size_t n, m2u_strbuf *out);

#endif
