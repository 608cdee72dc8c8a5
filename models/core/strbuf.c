#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void m2u_sb_put(m2u_strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

void m2u_sb_puts(m2u_strbuf *b, const char *s) { m2u_sb_put(b, s, strlen(s)); }

void m2u_sb_printf(m2u_strbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        m2u_sb_put(b, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    m2u_sb_put(b, big, (size_t)n);
    free(big);
}

/* Escaped exactly as serde_json (safetensors headers) and Python's json.dumps with
 * ensure_ascii=False do: \" \\ \b \f \n \r \t, other control bytes as \u00xx (lowercase
 * hex), everything else (DEL and non-ASCII included) raw. */
void m2u_sb_json_str(m2u_strbuf *b, const char *s) {
    m2u_sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': m2u_sb_puts(b, "\\\""); break;
        case '\\': m2u_sb_puts(b, "\\\\"); break;
        case '\b': m2u_sb_puts(b, "\\b"); break;
        case '\f': m2u_sb_puts(b, "\\f"); break;
        case '\n': m2u_sb_puts(b, "\\n"); break;
        case '\r': m2u_sb_puts(b, "\\r"); break;
        case '\t': m2u_sb_puts(b, "\\t"); break;
        default:
            if (*p < 0x20) {
                char esc[8];
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                m2u_sb_puts(b, esc);
            } else {
                m2u_sb_put(b, (const char *)p, 1);
            }
        }
    }
    m2u_sb_put(b, "\"", 1);
}

void m2u_sb_html(m2u_strbuf *b, const char *t) {
    for (; t && *t; t++) {
        switch (*t) {
        case '&': m2u_sb_puts(b, "&amp;"); break;
        case '<': m2u_sb_puts(b, "&lt;"); break;
        case '>': m2u_sb_puts(b, "&gt;"); break;
        case '"': m2u_sb_puts(b, "&quot;"); break;
        case '\'': m2u_sb_puts(b, "&#39;"); break;
        default: m2u_sb_put(b, t, 1);
        }
    }
}

void m2u_sb_md_cell(m2u_strbuf *b, const char *t) {
    for (; t && *t; t++) {
        if (*t == '|') m2u_sb_puts(b, "\\|");
        else if (*t == '\n' || *t == '\r') m2u_sb_puts(b, " ");
        else m2u_sb_put(b, t, 1);
    }
}

char *m2u_sb_take(m2u_strbuf *b) {
    if (!b->oom && !b->s) m2u_sb_put(b, "", 0);
    char *s = b->oom ? NULL : b->s;
    if (b->oom) free(b->s);
    *b = (m2u_strbuf){0};
    return s;
}

void m2u_sb_free(m2u_strbuf *b) {
    free(b->s);
    *b = (m2u_strbuf){0};
}
