/* GPT-2 byte-level pieces: see bytelevel.h. */
#include "bytelevel.h"

#include "bytelevel_unicode_tables.h"
#include "tokenizer_json.h"
#include "utf8_util.h"

#include <stdbool.h>


static bool in_ranges(const uint32_t (*r)[2], size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (r[mid][1] < c) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && r[lo][0] <= c;
}
#define N_RANGES(t) (sizeof t / sizeof t[0])
static bool is_L(uint32_t c, m2u_bl_engine e) {
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    return e == M2U_BL_ONIG ? in_ranges(BL_O_LETTER, N_RANGES(BL_O_LETTER), c)
                            : in_ranges(BL_U_LETTER, N_RANGES(BL_U_LETTER), c);
}
static bool is_N(uint32_t c, m2u_bl_engine e) {
    if (c < 0x80) return c >= '0' && c <= '9';
    return e == M2U_BL_ONIG ? in_ranges(BL_O_NUMBER, N_RANGES(BL_O_NUMBER), c)
                            : in_ranges(BL_U_NUMBER, N_RANGES(BL_U_NUMBER), c);
}
static bool is_S(uint32_t c) { return m2u_is_white_space(c); } /* \s is White_Space in both engines */
static bool is_O(uint32_t c, m2u_bl_engine e) { return !is_S(c) && !is_L(c, e) && !is_N(c, e); }

/* End of the GPT-2 regex's match at cp[i] (the alternatives in order, with the backtracking the
 * backtracking engines do; every character starts some match, so findall leaves no gaps). */
size_t m2u_bl_match(const uint32_t *cp, size_t n, size_t i, m2u_bl_engine e) {
    if (cp[i] == '\'' && i + 1 < n) {
        uint32_t a = cp[i + 1];
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
        if (i + 2 < n) {
            uint32_t b = cp[i + 2];
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
        }
    }
    bool (*cls[3])(uint32_t, m2u_bl_engine) = {is_L, is_N, is_O}; /* " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+" */
    for (int k = 0; k < 3; k++) {
        size_t j = i;
        if (cp[j] == ' ' && j + 1 < n && cls[k](cp[j + 1], e)) j++;
        if (!cls[k](cp[j], e)) continue;
        while (j < n && cls[k](cp[j], e)) j++;
        return j;
    }
    size_t j = i; /* cp[i] is whitespace: "\s+(?!\S)" backs off one character before a non-space */
    while (j < n && is_S(cp[j])) j++;
    if (j < n && j - 1 > i) return j - 1;
    return j; /* "\s+" */
}

void m2u_bl_byte_map(uint32_t byte_cp[256], int16_t cp_byte[324]) {
    for (int i = 0; i < 324; i++) cp_byte[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_cp[b] = printable ? (uint32_t)b : (uint32_t)(256 + extra++);
        cp_byte[byte_cp[b]] = (int16_t)b;
    }
}

/* CPython's bytes.decode("utf-8", errors="replace"): one U+FFFD per maximal invalid subpart. */
int m2u_bl_utf8_replace(const unsigned char *b, size_t n, m2u_strbuf *out) {
    for (size_t i = 0; i < n;) {
        size_t ok = m2u_utf8_valid_prefix(b + i, n - i);
        if (ok && m2u_tj_put(out, (const char *)b + i, ok)) return -1;
        i += ok;
        if (i >= n) break;
        unsigned char c = b[i];
        size_t need = (c >= 0xC2 && c <= 0xDF) ? 1 : (c >= 0xE0 && c <= 0xEF) ? 2 : (c >= 0xF0 && c <= 0xF4) ? 3 : 0;
        size_t k = 1;
        for (; k <= need && i + k < n; k++) {
            unsigned char d = b[i + k], lo = 0x80, hi = 0xBF;
            if (k == 1) {
                if (c == 0xE0) lo = 0xA0;
                else if (c == 0xED) hi = 0x9F;
                else if (c == 0xF0) lo = 0x90;
                else if (c == 0xF4) hi = 0x8F;
            }
            if (d < lo || d > hi) break;
        }
        if (m2u_tj_put(out, "\xEF\xBF\xBD", 3)) return -1;
        i += k;
    }
    return 0;
}
