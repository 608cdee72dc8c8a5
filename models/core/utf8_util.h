/* Small UTF-8 helpers shared by the tokenizers (header-only, no state).
 *
 * Strings handed to these functions are byte arrays with an explicit length; the
 * decoder assumes the text was checked with m2u_utf8_valid_prefix first (Rust's str
 * rules: no overlongs, no surrogates, nothing above U+10FFFF). */
#ifndef M2U_UTF8_UTIL_H
#define M2U_UTF8_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Byte length of the character whose lead byte is b (1 for a stray continuation byte). */
static inline int m2u_utf8_len(unsigned char b) {
    return b < 0xC0 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

/* Decode the character at s (valid UTF-8); returns its byte length. */
static inline int m2u_utf8_decode(const unsigned char *s, uint32_t *cp) {
    int n = m2u_utf8_len(s[0]);
    static const unsigned char lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t c = s[0] & lead_mask[n];
    for (int k = 1; k < n; k++) c = (c << 6) | (s[k] & 0x3Fu);
    *cp = c;
    return n;
}

/* Offset of the first byte that breaks strict UTF-8, or len when all of s is valid. */
static inline size_t m2u_utf8_valid_prefix(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned char b = s[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        int n = (b >= 0xC2 && b <= 0xDF) ? 2 : (b >= 0xE0 && b <= 0xEF) ? 3 : (b >= 0xF0 && b <= 0xF4) ? 4 : 0;
        if (n == 0 || len - i < (size_t)n) return i;
        for (int k = 1; k < n; k++)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        uint32_t cp;
        m2u_utf8_decode(s + i, &cp);
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += (size_t)n;
    }
    return len;
}

/* Encode cp into out (4 bytes of room); returns the byte length. */
static inline int m2u_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    int n = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    static const unsigned char lead[5] = {0, 0, 0xC0, 0xE0, 0xF0};
    for (int k = n - 1; k > 0; k--) {
        out[k] = (char)(0x80 | (cp & 0x3F));
        cp >>= 6;
    }
    out[0] = (char)(lead[n] | cp);
    return n;
}

/* Unicode White_Space (Rust's char::is_whitespace, regex \s). */
static inline bool m2u_is_white_space(uint32_t c) {
    if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
    if (c < 0x85) return false;
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Python's str.isspace() on one character (what str.split() / strip() remove): White_Space plus the
 * information separators U+001C..U+001F. */
static inline bool m2u_py_space(uint32_t c) { return m2u_is_white_space(c) || (c >= 0x1C && c <= 0x1F); }

#endif
