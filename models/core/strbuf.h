/* A growable string: the one buffer every writer of JSON, Markdown, HTML or
 * headers appends to.  Out-of-memory is sticky: appends after a failed one do
 * nothing, and m2u_sb_take() then returns NULL, so a writer checks once at
 * the end instead of after every append. */
#ifndef M2U_STRBUF_H
#define M2U_STRBUF_H

#include "m2u_error.h" /* M2U_PRINTF */

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *s;     /* always NUL-terminated once anything was appended */
    size_t n, cap;
    int oom;
} m2u_strbuf;

void m2u_sb_put(m2u_strbuf *b, const char *s, size_t n);
void m2u_sb_puts(m2u_strbuf *b, const char *s);
void m2u_sb_printf(m2u_strbuf *b, const char *fmt, ...) M2U_PRINTF(2, 3);
/* A JSON string literal with quotes, escaping as Python's json.dumps(ensure_ascii=False). */
void m2u_sb_json_str(m2u_strbuf *b, const char *s);
/* HTML text or attribute value: & < > " ' escaped. */
void m2u_sb_html(m2u_strbuf *b, const char *t);
/* A Markdown table cell: '|' escaped, line breaks as spaces. */
void m2u_sb_md_cell(m2u_strbuf *b, const char *t);
/* The text ("" when nothing was appended), handed to the caller to free; NULL after an
 * allocation failure (the buffer is released either way). */
char *m2u_sb_take(m2u_strbuf *b);
void m2u_sb_free(m2u_strbuf *b);

#endif
