/* PTB tokenisation as pycocoevalcap does it: Stanford CoreNLP 3.4.1's
 * PTBTokenizer with -preserveLines -lowerCase, then pycocoevalcap's
 * punctuation filter.
 *
 * CoreNLP's tokenizer is a JFlex lexer (PTBLexer.flex).  This file holds a
 * small regular-expression engine (a Pike VM over Unicode code points that
 * reports every position where a match can end) and the lexer's rules, in the
 * order of PTBLexer.flex as released with CoreNLP 3.4.1 (stanfordnlp/CoreNLP
 * commit ce306c84e, 2014-08-27), with its macros transcribed.  The scanner
 * semantics are JFlex's: at each position the longest match wins (trailing
 * context "r1/r2" counts in the length), ties go to the earlier rule; the
 * action then emits r1's text, possibly transformed.  Options are those of
 * PTBTokenizer's main with -preserveLines: tokenizeNLs, no americanize, no
 * escaping of / and *, latex quotes, ptb3 dashes and ellipsis, parentheses
 * and brackets as -LRB- ..., untokenizable characters deleted.
 *
 * Character classes: [:letter:], [:digit:], [:uppercase:] and lower-casing
 * are Java's for ASCII, Latin-1, Latin Extended-A/B, Greek, Cyrillic and the
 * CJK/kana/hangul blocks; other scripts are approximated (see u_is_letter). */
#include "caption_metrics.h"

#include "m2u_error.h"
#include "strbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Unicode helpers                                                     */

static int u_is_letter(uint32_t c) {
    if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (c == 0xAA || c == 0xB5 || c == 0xBA) return 1;
    if (c >= 0xC0 && c <= 0x2C1) return c != 0xD7 && c != 0xF7;
    if (c >= 0x2C6 && c <= 0x2D1) return 1;
    if (c >= 0x2E0 && c <= 0x2E4) return 1;
    if (c == 0x2EC || c == 0x2EE) return 1;
    if (c >= 0x370 && c <= 0x3FF)
        return c != 0x375 && c != 0x37E && c != 0x384 && c != 0x385 && c != 0x387 && c != 0x3F6 &&
               !(c >= 0x378 && c <= 0x379) && !(c >= 0x380 && c <= 0x383) && c != 0x38B && c != 0x38D &&
               c != 0x3A2;
    if (c >= 0x400 && c <= 0x52F) return !(c >= 0x482 && c <= 0x489);
    if (c >= 0x531 && c <= 0x556) return 1;
    if (c >= 0x561 && c <= 0x587) return 1;
    if (c >= 0x5D0 && c <= 0x5EA) return 1;
    if (c >= 0x620 && c <= 0x64A) return 1;
    if (c >= 0x671 && c <= 0x6D3) return 1;
    if (c >= 0x904 && c <= 0x939) return 1;
    if (c >= 0xE01 && c <= 0xE30) return 1;
    if (c >= 0x10A0 && c <= 0x10FF) return 1;
    if (c >= 0x1100 && c <= 0x11FF) return 1;
    if (c >= 0x1E00 && c <= 0x1FBC) return 1;
    if (c >= 0x1FC2 && c <= 0x1FFC) return c != 0x1FCD && c != 0x1FCE && c != 0x1FCF && c != 0x1FDD &&
                                            c != 0x1FDE && c != 0x1FDF && c != 0x1FED && c != 0x1FEE && c != 0x1FEF;
    if (c >= 0x3041 && c <= 0x3096) return 1;
    if (c >= 0x309D && c <= 0x309F) return 1;
    if (c >= 0x30A1 && c <= 0x30FF) return c != 0x30FB;
    if (c >= 0x3400 && c <= 0x4DBF) return 1;
    if (c >= 0x4E00 && c <= 0x9FFF) return 1;
    if (c >= 0xAC00 && c <= 0xD7A3) return 1;
    if (c >= 0xF900 && c <= 0xFAFF) return 1;
    if (c >= 0xFF21 && c <= 0xFF3A) return 1;
    if (c >= 0xFF41 && c <= 0xFF5A) return 1;
    if (c >= 0xFF66 && c <= 0xFFDC) return 1;
    return 0;
}

static int u_is_digit(uint32_t c) {
    return (c >= '0' && c <= '9') || (c >= 0x660 && c <= 0x669) || (c >= 0x6F0 && c <= 0x6F9) ||
           (c >= 0x966 && c <= 0x96F) || (c >= 0xFF10 && c <= 0xFF19);
}

/* Java Character.toLowerCase for the blocks listed in the file comment. */
static uint32_t u_lower(uint32_t c) {
    if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
    if (c >= 0x100 && c <= 0x137) return (c % 2 == 0) ? c + 1 : c;
    if (c == 0x130) return 'i';
    if (c >= 0x139 && c <= 0x148) return (c % 2 == 1) ? c + 1 : c;
    if (c >= 0x14A && c <= 0x177) return (c % 2 == 0) ? c + 1 : c;
    if (c == 0x178) return 0xFF;
    if (c >= 0x179 && c <= 0x17E) return (c % 2 == 1) ? c + 1 : c;
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 37;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 63;
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    if (c >= 0x460 && c <= 0x481) return (c % 2 == 0) ? c + 1 : c;
    if (c >= 0x48A && c <= 0x4BF) return (c % 2 == 0) ? c + 1 : c;
    if (c >= 0x531 && c <= 0x556) return c + 48;
    if (c >= 0x1E00 && c <= 0x1E95) return (c % 2 == 0) ? c + 1 : c;
    if (c >= 0x1EA0 && c <= 0x1EFF) return (c % 2 == 0) ? c + 1 : c;
    if (c >= 0xFF21 && c <= 0xFF3A) return c + 32;
    return c;
}

static int u_is_upper(uint32_t c) {
    if (c < 0x80) return c >= 'A' && c <= 'Z';
    if (c == 0x130) return 1;
    return u_lower(c) != c;
}

/* Decode UTF-8 (invalid bytes become U+FFFD, as Java's decoder does). */
static uint32_t *utf8_decode(const char *s, size_t len, size_t *n_out) {
    uint32_t *out = malloc((len + 1) * sizeof *out);
    if (!out) return NULL;
    size_t n = 0, i = 0;
    const unsigned char *u = (const unsigned char *)s;
    while (i < len) {
        unsigned c = u[i];
        uint32_t cp;
        int extra;
        if (c < 0x80) { cp = c; extra = 0; }
        else if ((c & 0xE0) == 0xC0) { cp = c & 0x1F; extra = 1; }
        else if ((c & 0xF0) == 0xE0) { cp = c & 0x0F; extra = 2; }
        else if ((c & 0xF8) == 0xF0) { cp = c & 0x07; extra = 3; }
        else { out[n++] = 0xFFFD; i++; continue; }
        if (i + (size_t)extra >= len + (extra == 0)) { out[n++] = 0xFFFD; i++; continue; }
        int ok = 1;
        for (int k = 1; k <= extra; k++) {
            if (i + (size_t)k >= len || (u[i + k] & 0xC0) != 0x80) { ok = 0; break; }
            cp = (cp << 6) | (u[i + k] & 0x3F);
        }
        if (!ok) { out[n++] = 0xFFFD; i++; continue; }
        out[n++] = cp;
        i += (size_t)extra + 1;
    }
    *n_out = n;
    return out;
}

/* the shared string buffer, with the -1-on-failure convention of this file */
static int sb_put(m2u_strbuf *b, const char *s, size_t n) {
    m2u_sb_put(b, s, n);
    return b->oom ? -1 : 0;
}

static int sb_cp(m2u_strbuf *b, uint32_t c) {
    char t[4];
    size_t n;
    if (c < 0x80) { t[0] = (char)c; n = 1; }
    else if (c < 0x800) { t[0] = (char)(0xC0 | (c >> 6)); t[1] = (char)(0x80 | (c & 0x3F)); n = 2; }
    else if (c < 0x10000) {
        t[0] = (char)(0xE0 | (c >> 12)); t[1] = (char)(0x80 | ((c >> 6) & 0x3F)); t[2] = (char)(0x80 | (c & 0x3F)); n = 3;
    } else {
        t[0] = (char)(0xF0 | (c >> 18)); t[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        t[2] = (char)(0x80 | ((c >> 6) & 0x3F)); t[3] = (char)(0x80 | (c & 0x3F)); n = 4;
    }
    return sb_put(b, t, n);
}

/* ------------------------------------------------------------------ */
/* Regular expressions (JFlex syntax subset, %caseless, %unicode)      */

enum { CLS_LETTER = 1, CLS_DIGIT = 2, CLS_UPPER = 4 };

typedef struct {
    uint32_t (*r)[2];
    int nr;
    int named; /* CLS_* bits */
    int neg;
} rx_class;

enum { N_LIT, N_CLASS, N_ANY, N_CAT, N_ALT, N_REP, N_EMPTY };

typedef struct rx_node {
    int type;
    uint32_t cp;
    int cls;
    int min, max;
    struct rx_node **kids;
    int nk;
} rx_node;

enum { I_LIT, I_CLASS, I_ANY, I_SPLIT, I_JMP, I_MATCH };

typedef struct {
    int op;
    uint32_t cp;
    int x, y;
} rx_inst;

typedef struct {
    rx_inst *code;
    int n, cap;
} rx_prog;

/* all classes of all rules live in one table */
static rx_class *g_cls;
static int g_ncls, g_capcls;

typedef struct {
    const char *s;
    int err;
} rx_parser;

static rx_node *node_new(int type) {
    rx_node *n = calloc(1, sizeof *n);
    if (n) n->type = type;
    return n;
}

static void node_free(rx_node *n) {
    if (!n) return;
    for (int i = 0; i < n->nk; i++) node_free(n->kids[i]);
    free(n->kids);
    free(n);
}

static int node_add(rx_node *p, rx_node *k) {
    rx_node **kk = realloc(p->kids, (size_t)(p->nk + 1) * sizeof *kk);
    if (!kk) return -1;
    p->kids = kk;
    p->kids[p->nk++] = k;
    return 0;
}

static uint32_t parse_hex(const char **s, int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; i++) {
        char c = **s;
        v = v * 16 + (uint32_t)(c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c - 'A' + 10);
        (*s)++;
    }
    return v;
}

/* one (possibly escaped) literal character; the pattern text itself is UTF-8 */
static uint32_t parse_char(const char **s) {
    const unsigned char *u = (const unsigned char *)*s;
    if (u[0] == '\\') {
        char c = (char)u[1];
        *s += 2;
        switch (c) {
        case 'u': return parse_hex(s, 4);
        case 'x': return parse_hex(s, 2);
        case 'n': return '\n';
        case 't': return '\t';
        case 'r': return '\r';
        case 'f': return '\f';
        case '0': return 0;
        default: return (unsigned char)c;
        }
    }
    size_t n;
    uint32_t *cp;
    int len = u[0] < 0x80 ? 1 : (u[0] & 0xE0) == 0xC0 ? 2 : (u[0] & 0xF0) == 0xE0 ? 3 : 4;
    cp = utf8_decode(*s, (size_t)len, &n);
    uint32_t r = cp && n ? cp[0] : 0xFFFD;
    free(cp);
    *s += len;
    return r;
}

static int class_add_range(rx_class *c, uint32_t a, uint32_t b) {
    uint32_t (*r)[2] = realloc(c->r, (size_t)(c->nr + 1) * sizeof *r);
    if (!r) return -1;
    c->r = r;
    c->r[c->nr][0] = a;
    c->r[c->nr][1] = b;
    c->nr++;
    return 0;
}

static int new_class(void) {
    if (g_ncls == g_capcls) {
        int cap = g_capcls ? g_capcls * 2 : 64;
        rx_class *p = realloc(g_cls, (size_t)cap * sizeof *p);
        if (!p) return -1;
        g_cls = p;
        g_capcls = cap;
    }
    memset(&g_cls[g_ncls], 0, sizeof g_cls[0]);
    return g_ncls++;
}

static rx_node *parse_alt(rx_parser *p);

static rx_node *parse_class(rx_parser *p) {
    int ci = new_class();
    if (ci < 0) { p->err = 1; return NULL; }
    rx_class *c = &g_cls[ci];
    p->s++; /* [ */
    if (*p->s == '^') { c->neg = 1; p->s++; }
    int first = 1;
    while (*p->s && (*p->s != ']' || (first && !c->neg && 0))) {
        first = 0;
        if (strncmp(p->s, "[:letter:]", 10) == 0) { c->named |= CLS_LETTER; p->s += 10; continue; }
        if (strncmp(p->s, "[:digit:]", 9) == 0) { c->named |= CLS_DIGIT; p->s += 9; continue; }
        if (strncmp(p->s, "[:uppercase:]", 13) == 0) { c->named |= CLS_UPPER; p->s += 13; continue; }
        uint32_t a = parse_char(&p->s), b = a;
        if (p->s[0] == '-' && p->s[1] && p->s[1] != ']') {
            p->s++;
            b = parse_char(&p->s);
        }
        c = &g_cls[ci];
        if (class_add_range(c, a, b)) { p->err = 1; return NULL; }
    }
    if (*p->s != ']') { p->err = 1; return NULL; }
    p->s++;
    rx_node *n = node_new(N_CLASS);
    if (!n) { p->err = 1; return NULL; }
    n->cls = ci;
    return n;
}

static rx_node *parse_atom(rx_parser *p) {
    char c = *p->s;
    if (c == '(') {
        p->s++;
        rx_node *n = parse_alt(p);
        if (*p->s != ')') { p->err = 1; node_free(n); return NULL; }
        p->s++;
        return n;
    }
    if (c == '[') {
        if (strncmp(p->s, "[:letter:]", 10) == 0 || strncmp(p->s, "[:digit:]", 9) == 0 ||
            strncmp(p->s, "[:uppercase:]", 13) == 0) {
            /* a bare named class: wrap as a class */
            int ci = new_class();
            if (ci < 0) { p->err = 1; return NULL; }
            if (p->s[2] == 'l') { g_cls[ci].named = CLS_LETTER; p->s += 10; }
            else if (p->s[2] == 'd') { g_cls[ci].named = CLS_DIGIT; p->s += 9; }
            else { g_cls[ci].named = CLS_UPPER; p->s += 13; }
            rx_node *n = node_new(N_CLASS);
            if (!n) { p->err = 1; return NULL; }
            n->cls = ci;
            return n;
        }
        return parse_class(p);
    }
    if (c == '.') {
        p->s++;
        return node_new(N_ANY);
    }
    rx_node *n = node_new(N_LIT);
    if (!n) { p->err = 1; return NULL; }
    n->cp = parse_char(&p->s);
    return n;
}

static rx_node *parse_rep(rx_parser *p) {
    rx_node *a = parse_atom(p);
    if (!a) return NULL;
    for (;;) {
        char c = *p->s;
        int mn, mx;
        if (c == '*') { mn = 0; mx = -1; p->s++; }
        else if (c == '+') { mn = 1; mx = -1; p->s++; }
        else if (c == '?') { mn = 0; mx = 1; p->s++; }
        else if (c == '{' && p->s[1] >= '0' && p->s[1] <= '9') {
            p->s++;
            mn = (int)strtol(p->s, (char **)&p->s, 10);
            mx = mn;
            if (*p->s == ',') { p->s++; mx = (int)strtol(p->s, (char **)&p->s, 10); }
            if (*p->s != '}') { p->err = 1; node_free(a); return NULL; }
            p->s++;
        } else break;
        rx_node *r = node_new(N_REP);
        if (!r || node_add(r, a)) { p->err = 1; node_free(a); free(r); return NULL; }
        r->min = mn;
        r->max = mx;
        a = r;
    }
    return a;
}

static rx_node *parse_cat(rx_parser *p) {
    rx_node *cat = node_new(N_CAT);
    if (!cat) { p->err = 1; return NULL; }
    while (*p->s && *p->s != '|' && *p->s != ')') {
        rx_node *k = parse_rep(p);
        if (!k || node_add(cat, k)) { p->err = 1; node_free(k); node_free(cat); return NULL; }
    }
    return cat;
}

static rx_node *parse_alt(rx_parser *p) {
    rx_node *alt = node_new(N_ALT);
    if (!alt) { p->err = 1; return NULL; }
    for (;;) {
        rx_node *k = parse_cat(p);
        if (!k || node_add(alt, k)) { p->err = 1; node_free(k); node_free(alt); return NULL; }
        if (*p->s != '|') break;
        p->s++;
    }
    return alt;
}

static int emit(rx_prog *g, int op, uint32_t cp, int x, int y) {
    if (g->n == g->cap) {
        int cap = g->cap ? g->cap * 2 : 64;
        rx_inst *c = realloc(g->code, (size_t)cap * sizeof *c);
        if (!c) return -1;
        g->code = c;
        g->cap = cap;
    }
    g->code[g->n] = (rx_inst){op, cp, x, y};
    return g->n++;
}

static int compile_node(rx_prog *g, const rx_node *n) {
    switch (n->type) {
    case N_LIT: return emit(g, I_LIT, n->cp, 0, 0) < 0 ? -1 : 0;
    case N_CLASS: return emit(g, I_CLASS, (uint32_t)n->cls, 0, 0) < 0 ? -1 : 0;
    case N_ANY: return emit(g, I_ANY, 0, 0, 0) < 0 ? -1 : 0;
    case N_CAT:
        for (int i = 0; i < n->nk; i++)
            if (compile_node(g, n->kids[i])) return -1;
        return 0;
    case N_ALT: {
        if (n->nk == 1) return compile_node(g, n->kids[0]);
        int jumps[256], nj = 0;
        for (int i = 0; i < n->nk; i++) {
            int split = -1;
            if (i < n->nk - 1) {
                split = emit(g, I_SPLIT, 0, 0, 0);
                if (split < 0) return -1;
                g->code[split].x = g->n;
            }
            if (compile_node(g, n->kids[i])) return -1;
            if (i < n->nk - 1) {
                if (nj >= 256) return -1;
                jumps[nj++] = emit(g, I_JMP, 0, 0, 0);
                if (jumps[nj - 1] < 0) return -1;
                g->code[split].y = g->n;
            }
        }
        for (int i = 0; i < nj; i++) g->code[jumps[i]].x = g->n;
        return 0;
    }
    case N_REP: {
        const rx_node *k = n->kids[0];
        for (int i = 0; i < n->min; i++)
            if (compile_node(g, k)) return -1;
        if (n->max < 0) {
            int split = emit(g, I_SPLIT, 0, 0, 0);
            if (split < 0) return -1;
            g->code[split].x = g->n;
            if (compile_node(g, k)) return -1;
            if (emit(g, I_JMP, 0, split, 0) < 0) return -1;
            g->code[split].y = g->n;
        } else {
            int splits[64], ns = 0;
            for (int i = n->min; i < n->max; i++) {
                if (ns >= 64) return -1;
                int split = emit(g, I_SPLIT, 0, 0, 0);
                if (split < 0) return -1;
                splits[ns++] = split;
                g->code[split].x = g->n;
                if (compile_node(g, k)) return -1;
            }
            for (int i = 0; i < ns; i++) g->code[splits[i]].y = g->n;
        }
        return 0;
    }
    default: return 0;
    }
}

static int rx_compile(const char *pat, rx_prog *g) {
    rx_parser p = {pat, 0};
    rx_node *root = parse_alt(&p);
    if (!root || p.err || *p.s) {
        node_free(root);
        return m2u_fail("ptb tokenizer: bad pattern near \"%.20s\"", p.s);
    }
    memset(g, 0, sizeof *g);
    int rc = compile_node(g, root);
    node_free(root);
    if (rc || emit(g, I_MATCH, 0, 0, 0) < 0) return m2u_fail("ptb tokenizer: cannot compile pattern");
    return 0;
}

static int class_has(const rx_class *c, uint32_t ch) {
    int in = 0;
    if ((c->named & CLS_LETTER) && u_is_letter(ch)) in = 1;
    if (!in && (c->named & CLS_DIGIT) && u_is_digit(ch)) in = 1;
    if (!in && (c->named & CLS_UPPER) && u_is_upper(ch)) in = 1;
    for (int i = 0; !in && i < c->nr; i++)
        if (ch >= c->r[i][0] && ch <= c->r[i][1]) in = 1;
    return c->neg ? !in : in;
}

/* JFlex %caseless: literals outside character classes match either case */
static int lit_eq(uint32_t a, uint32_t ch) {
    return a == ch || u_lower(a) == u_lower(ch);
}

typedef struct {
    int *list[2];
    int *mark;
    int gen;
} rx_vm;

static void addthread(const rx_prog *g, rx_vm *vm, int *list, int *n, int pc) {
    if (vm->mark[pc] == vm->gen) return;
    vm->mark[pc] = vm->gen;
    const rx_inst *in = &g->code[pc];
    if (in->op == I_JMP) { addthread(g, vm, list, n, in->x); return; }
    if (in->op == I_SPLIT) {
        addthread(g, vm, list, n, in->x);
        addthread(g, vm, list, n, in->y);
        return;
    }
    list[(*n)++] = pc;
}

/* Mark in `ends` (size len-start+1, index = end-start) every end position of a
 * match of g starting at `start`.  Returns the largest end, or -1. */
static long rx_ends(const rx_prog *g, const uint32_t *s, size_t len, size_t start, unsigned char *ends, int *scratch) {
    rx_vm vm;
    vm.list[0] = scratch;
    vm.list[1] = scratch + g->n;
    vm.mark = scratch + 2 * g->n;
    for (int i = 0; i < g->n; i++) vm.mark[i] = -1;
    vm.gen = 0;
    int n0 = 0, n1;
    long best = -1;
    addthread(g, &vm, vm.list[0], &n0, 0);
    for (size_t i = start;; i++) {
        int *cur = vm.list[(i - start) & 1], *nxt = vm.list[((i - start) & 1) ^ 1];
        int ncur = n0;
        for (int t = 0; t < ncur; t++)
            if (g->code[cur[t]].op == I_MATCH) {
                if (ends) ends[i - start] = 1;
                best = (long)i;
            }
        if (i >= len || ncur == 0) break;
        vm.gen++;
        n1 = 0;
        uint32_t ch = s[i];
        for (int t = 0; t < ncur; t++) {
            const rx_inst *in = &g->code[cur[t]];
            int ok = 0;
            if (in->op == I_LIT) ok = lit_eq(in->cp, ch);
            else if (in->op == I_CLASS) ok = class_has(&g_cls[in->cp], ch);
            else if (in->op == I_ANY) ok = ch != '\n';
            if (ok) addthread(g, &vm, nxt, &n1, cur[t] + 1);
        }
        n0 = n1;
    }
    return best;
}

/* ------------------------------------------------------------------ */
/* PTBLexer macros (CoreNLP 3.4.1)                                    */

#define SGML "\\<([!\\?][A-Za-z\\-][^>\\r\\n]*|[A-Za-z][A-Za-z0-9_:\\.\\-]*([ ]+([A-Za-z][A-Za-z0-9_:\\.\\-]*|[A-Za-z][A-Za-z0-9_:\\.\\-]*[ ]*=[ ]*('[^']*'|\\\"[^\\\"]*\\\")))*[ ]*\\/?|\\/[A-Za-z][A-Za-z0-9_:\\.\\-]*)[ ]*\\>"
#define SPMDASH "&(MD|mdash|ndash);|[\\u0096\\u0097\\u2013\\u2014\\u2015]"
#define SPAMP "&amp;"
#define SPPUNC "&(HT|TL|UR|LR|QC|QL|QR|odq|cdq|#[0-9]+);"
#define SPLET "&[aeiouAEIOU](acute|grave|uml);"
#define SPACE "[ \\t\\u00A0\\u2000-\\u200A\\u3000]"
#define SPACES "(" SPACE ")+"
#define NEWLINE "(\\r|\\r?\\n|\\u2028|\\u2029|\\u000B|\\u000C|\\u0085)"
#define SPACENL "(" SPACE "|" NEWLINE ")"
#define SPACENLS "(" SPACENL ")+"
#define SENTEND "(" SPACENL "(" SPACENL "|[:uppercase:]|" SGML "))"
#define DIGIT "([:digit:]|[\\u07C0-\\u07C9])"
#define DATE DIGIT "{1,2}[\\-\\/]" DIGIT "{1,2}[\\-\\/]" DIGIT "{2,4}"
#define NUM "(" DIGIT "+|" DIGIT "*([.:,\\u00AD\\u066B\\u066C]" DIGIT "+)+)"
#define NUMBER "[\\-+]?" NUM
#define SUBSUPNUM "[\\u207A\\u207B\\u208A\\u208B]?([\\u2070\\u00B9\\u00B2\\u00B3\\u2074-\\u2079]+|[\\u2080-\\u2089]+)"
#define FRAC "(" DIGIT "{1,4}[- \\u00A0])?" DIGIT "{1,4}(\\\\?\\/|\\u2044)" DIGIT "{1,4}"
#define FRAC2 "[\\u00BC\\u00BD\\u00BE\\u2153-\\u215E]"
#define DOLSIGN "([A-Z]*\\$|#)"
#define DOLSIGN2 "[\\u00A2\\u00A3\\u00A4\\u00A5\\u0080\\u20A0\\u20AC\\u060B\\u0E3F\\u20A4\\uFFE0\\uFFE1\\uFFE5\\uFFE6]"
#define LETTER "([:letter:]|" SPLET "|[\\u00AD\\u0237-\\u024F\\u02C2-\\u02C5\\u02D2-\\u02DF\\u02E5-\\u02FF\\u0300-\\u036F\\u0370-\\u037D\\u0384\\u0385\\u03CF\\u03F6\\u03FC-\\u03FF\\u0483-\\u0487\\u04CF\\u04F6-\\u04FF\\u0510-\\u0525\\u055A-\\u055F\\u0591-\\u05BD\\u05BF\\u05C1\\u05C2\\u05C4\\u05C5\\u05C7\\u0615-\\u061A\\u063B-\\u063F\\u064B-\\u065E\\u0670\\u06D6-\\u06EF\\u06FA-\\u06FF\\u070F\\u0711\\u0730-\\u074F\\u0750-\\u077F\\u07A6-\\u07B1\\u07CA-\\u07F5\\u07FA\\u0900-\\u0903\\u093C\\u093E-\\u094E\\u0951-\\u0955\\u0962-\\u0963\\u0981-\\u0983\\u09BC-\\u09C4\\u09C7\\u09C8\\u09CB-\\u09CD\\u09D7\\u09E2\\u09E3\\u0A01-\\u0A03\\u0A3C\\u0A3E-\\u0A4F\\u0A81-\\u0A83\\u0ABC-\\u0ACF\\u0B82\\u0BBE-\\u0BC2\\u0BC6-\\u0BC8\\u0BCA-\\u0BCD\\u0C01-\\u0C03\\u0C3E-\\u0C56\\u0D3E-\\u0D44\\u0D46-\\u0D48\\u0E30-\\u0E3A\\u0E47-\\u0E4E\\u0EB1-\\u0EBC\\u0EC8-\\u0ECD])"
#define WORD LETTER "(" LETTER "|" DIGIT ")*([.!?]" LETTER "(" LETTER "|" DIGIT ")*)*"
#define FILENAME_EXT "(bat|bmp|c|class|cgi|cpp|dll|doc|docx|exe|gif|gz|h|htm|html|jar|java|jpeg|jpg|mov|mp3|pdf|php|pl|png|ppt|ps|py|sql|tar|txt|wav|x|xml|zip)"
#define FILENAME "(" LETTER "|" DIGIT ")+([.](" LETTER "|" DIGIT ")+)*([.]" FILENAME_EXT ")"
#define APOS "(['\\u0092\\u2019]|&apos;)"
#define APOSETCETERA "(" APOS "|[`\\u0091\\u2018\\u201B])"
#define HYPHEN "[-_\\u058A\\u2010\\u2011]"
#define THING "([dDoOlL]" APOSETCETERA "([:letter:]|[:digit:]))?([:letter:]|[:digit:])+(" HYPHEN "([dDoOlL]" APOSETCETERA "([:letter:]|[:digit:]))?([:letter:]|[:digit:])+)*"
#define THINGA "[A-Z]+(([+&]|" SPAMP ")[A-Z]+)+"
#define THING3 "[A-Za-z0-9]+(-[A-Za-z]+){0,2}(\\\\?\\/[A-Za-z0-9]+(-[A-Za-z]+){0,2}){1,2}"
#define ACRO "([A-Za-z](\\.[A-Za-z])*|(Canada|Sino|Korean|EU|Japan|non)-U\\.S|U\\.S\\.-(U\\.K|U\\.S\\.S\\.R))"
#define ACRO2 "([A-Za-z](\\.[A-Za-z])+|(Canada|Sino|Korean|EU|Japan|non)-U\\.S|U\\.S\\.-(U\\.K|U\\.S\\.S\\.R))"
#define HTHING "[A-Za-z0-9][A-Za-z0-9.,\\u00AD]*(-([A-Za-z0-9\\u00AD]+|" ACRO2 "\\.))+"
#define REDAUX APOS "([msdMSD]|re|ve|ll)"
#define SWORD "[A-Za-z\\u00AD]*[A-MO-Za-mo-z](\\u00AD)*"
#define SREDAUX "n" APOSETCETERA "t"
#define APOWORD APOS "n" APOS "?|[lLdDjJ]" APOS "|Dunkin" APOS "|somethin" APOS "|ol" APOS "|" APOS "em|[A-HJ-XZn]" APOSETCETERA "[:letter:]{2}[:letter:]*|" APOS "[2-9]0s|" APOS "till?|[:letter:][:letter:]*[aeiouyAEIOUY]" APOSETCETERA "[aeiouA-Z][:letter:]*|" APOS "cause|cont'd\\.?|'twas|nor'easter|c'mon|e'er|s'mores|ev'ry|li'l|nat'l|O" APOSETCETERA "o"
#define APOWORD2 "y" APOS
#define FULLURL "https?:\\/\\/[^ \\t\\n\\f\\r\\\"<>|(){}]+[^ \\t\\n\\f\\r\\\"<>|.!?(){},-]"
#define LIKELYURL "((www\\.([^ \\t\\n\\f\\r\\\"<>|.!?(){},]+\\.)+[a-zA-Z]{2,4})|(([^ \\t\\n\\f\\r\\\"`'<>|.!?(){},-_$]+\\.)+(com|net|org|edu)))(\\/[^ \\t\\n\\f\\r\\\"<>|()]+[^ \\t\\n\\f\\r\\\"<>|.!?(){},-])?"
#define EMAIL "(&lt;|<)?[a-zA-Z0-9][^ \\t\\n\\f\\r\\\"<>|()\\u00A0{}]*@([^ \\t\\n\\f\\r\\\"<>|(){}.\\u00A0]+\\.)*([^ \\t\\n\\f\\r\\\"<>|(){}.\\u00A0]+)(&gt;|>)?"
#define TWITTER "(@[a-zA-Z_][a-zA-Z_0-9]*|#" LETTER "+)"
#define ABMONTH "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
#define ABDAYS "Mon|Tue|Tues|Wed|Thu|Thurs|Fri"
#define ABSTATE "Ala|Ariz|[A]z|[A]rk|Calif|Colo|Conn|Ct|Dak|[D]el|Fla|Ga|[I]ll|Ind|Kans?|Ky|[L]a|[M]ass|Md|Mich|Minn|[M]iss|Mo|Mont|Neb|Nev|Okla|[O]re|[P]a|Penn|Tenn|[T]ex|Va|Vt|[W]ash|Wisc?|Wyo"
#define ABCOMP "Inc|Cos?|Corp|Pp?t[ye]s?|Ltd|Plc|Rt|Bancorp|Bhd|Assn|Univ|Intl|Sys"
#define ABNUM "tel|est|ext|sq"
#define ABPTIT "Jr|Sr|Bros|(Ed|Ph)\\.D|Blvd|Rd|Esq"
#define ABBREV1 "(" ABMONTH "|" ABDAYS "|" ABSTATE "|" ABCOMP "|" ABNUM "|" ABPTIT "|etc|al|seq|Bldg)\\."
#define ABTITLE "Mr|Mrs|Ms|[M]iss|Drs?|Profs?|Sens?|Reps?|Attys?|Lt|Col|Gen|Messrs|Govs?|Adm|Rev|Maj|Sgt|Cpl|Pvt|Capt|Ste?|Ave|Pres|Lieut|Hon|Brig|Co?mdr|Pfc|Spc|Supts?|Det|Mt|Ft|Adj|Adv|Asst|Assoc|Ens|Insp|Mlle|Mme|Msgr|Sfc"
#define ABCOMP2 "Invt|Elec|Natl|M[ft]g|Dept"
#define ABBREV4 "(" ABTITLE "|vs|Alex|Wm|Jos|Cie|a\\.k\\.a|cf|TREAS|Ph|" ACRO "|" ABCOMP2 ")"
#define ABBREV2 ABBREV4 "\\."
#define ACRONYM "(" ACRO ")\\."
#define ABBREV3 "(ca|figs?|prop|nos?|art|bldg|prop|pp|op)\\."
#define PHONE "(\\([0-9]{2,3}\\)[ \\u00A0]?|(\\+\\+?)?([0-9]{2,4}[\\- \\u00A0])?[0-9]{2,4}[\\- \\u00A0])[0-9]{3,4}[\\- \\u00A0]?[0-9]{3,5}|((\\+\\+?)?[0-9]{2,4}\\.)?[0-9]{2,4}\\.[0-9]{3,4}\\.[0-9]{3,5}"
#define FAKEDUCKFEET "<<|>>"
#define LESSTHAN "<|&lt;"
#define GREATERTHAN ">|&gt;"
#define HYPHENS "\\-+"
#define LDOTS "\\.{3,5}|(\\.[ \\u00A0]){2,4}\\.|[\\u0085\\u2026]"
#define FNMARKS "@+|#+|_+"
#define ASTS "\\*+|(\\\\\\*){1,3}"
#define INSENTP "[,;:\\u3001]"
#define QUOTES APOS "|''|[`\\u2018\\u2019\\u201A\\u201B\\u201C\\u201D\\u0091\\u0092\\u0093\\u0094\\u201E\\u201F\\u2039\\u203A\\u00AB\\u00BB]{1,2}"
#define DBLQUOT "(\\\"|&quot;)"
#define TBSPEC "-(RRB|LRB|RCB|LCB|RSB|LSB)-|C\\.D\\.s|pro-|anti-|S(&|&amp;)P-500|S(&|&amp;)Ls|Cap" APOS "n|c" APOS "est"
#define TBSPEC2 APOS "[0-9][0-9]"
#define SMILEY "[<>]?[:;=][\\-o\\*']?[\\(\\)DPdpO\\\\{@\\|\\[\\]]"
#define ASIANSMILEY "[\\^x=~<>]\\.\\[\\^x=~<>]|[\\-\\^x=~<>']_[\\-\\^x=~<>']|\\([\\-\\^x=~<>'][_.]?[\\-\\^x=~<>']\\)|\\([\\^x=~<>']-[\\^x=~<>'`]\\)"
#define MISCSYMBOL "[+%&~\\^|\\\\\\u00A6\\u00A7\\u00A8\\u00A9\\u00AC\\u00AE\\u00AF\\u00B0-\\u00B3\\u00B4-\\u00BA\\u00D7\\u00F7\\u0387\\u05BE\\u05C0\\u05C3\\u05C6\\u05F3\\u05F4\\u0600-\\u0603\\u0606-\\u060A\\u060C\\u0614\\u061B\\u061E\\u066A\\u066D\\u0703-\\u070D\\u07F6\\u07F7\\u07F8\\u0964\\u0965\\u0E4F\\u1FBD\\u2016\\u2017\\u2020-\\u2023\\u2030-\\u2038\\u203B\\u203E-\\u2042\\u2044\\u207A-\\u207F\\u208A-\\u208E\\u2100-\\u214F\\u2190-\\u21FF\\u2200-\\u2BFF\\u3012\\u30FB\\uFF01-\\uFF0F\\uFF1A-\\uFF20\\uFF3B-\\uFF40\\uFF5B-\\uFF65\\uFF65]"
#define ACRONYM_FOLLOW "(" SPACENLS ")([A]bout|[A]ccording|[A]dditionally|[A]fter|[A]n|[A]|[A]s|[A]t|[B]ut|[E]arlier|[H]e|[H]er|[H]ere|[H]owever|[I]f|[I]n|[I]t|[L]ast|[M]any|[M]ore|[M]r\\.|[M]s\\.|[N]ow|[O]nce|[O]ne|[O]ther|[O]ur|[S]he|[S]ince|[S]o|[S]ome|[S]uch|[T]hat|[T]he|[T]heir|[T]hen|[T]here|[T]hese|[T]hey|[T]his|[W]e|[W]hen|[W]hile|[W]hat|[Y]et|[Y]ou|" SGML ")" SPACENL

/* Actions */
enum {
    A_AS_IS,       /* the text as matched */
    A_SKIP,        /* whitespace, \x7f, untokenizable: nothing */
    A_NEWLINE,     /* *NL* */
    A_PUSH3,       /* emit all but the last 3 chars, rescan them (cannot, 'twas) */
    A_PUSH2,       /* emit all but the last 2 chars (gonna, 'tis) */
    A_NBSP,        /* spaces -> U+00A0 (SGML, FRAC) */
    A_MDASH,       /* "--" */
    A_AMP,         /* &amp; -> & */
    A_SOFTHYPH,    /* remove U+00AD, "-" if nothing left */
    A_QUOTE_R,     /* handleQuotes(probablyLeft = false) */
    A_QUOTE_L,     /* handleQuotes(probablyLeft = true) */
    A_FRAC2,       /* vulgar fraction characters -> 1/4 ... */
    A_CURRENCY,    /* normalizeCurrency */
    A_ACRONYM,     /* acronym before a sentence-starting word */
    A_TRIMSPACE,   /* ABBREV3: trailing whitespace pushed back */
    A_ABBREV_DOT,  /* emit the abbreviation, rescan its period */
    A_PHONE,       /* NBSP and -LRB-/-RRB- */
    A_LT, A_GT,
    A_PARENS,      /* smileys: ( ) -> -LRB- -RRB- */
    A_LCB, A_RCB, A_LSB, A_RSB, A_LRB, A_RRB,
    A_HYPHENS,     /* 3 or 4 hyphens -> "--" */
    A_ELLIPSIS     /* "..." */
};

typedef struct {
    const char *r1, *r2; /* r2: trailing context or NULL */
    int action;
} ptb_rule;

static const ptb_rule RULES[] = {
    {"c[+][+]", NULL, A_AS_IS},
    {"(c|f)#", NULL, A_AS_IS},
    {"cannot", NULL, A_PUSH3},
    {"'twas", NULL, A_PUSH3},
    {"'tis", NULL, A_PUSH2},
    {"gonna|gotta|lemme|gimme|wanna", NULL, A_PUSH2},
    {SGML, NULL, A_NBSP},
    {SPMDASH, NULL, A_MDASH},
    {SPAMP, NULL, A_AMP},
    {SPPUNC, NULL, A_AS_IS},
    {WORD, REDAUX, A_SOFTHYPH},
    {SWORD, SREDAUX, A_SOFTHYPH},
    {WORD, NULL, A_SOFTHYPH},
    {APOWORD, NULL, A_AS_IS},
    {APOWORD2, "[:letter:]", A_AS_IS},
    {FULLURL, NULL, A_AS_IS},
    {LIKELYURL, NULL, A_AS_IS},
    {EMAIL, NULL, A_AS_IS},
    {TWITTER, NULL, A_AS_IS},
    {REDAUX, "[^A-Za-z]", A_QUOTE_R},
    {SREDAUX, "[^A-Za-z]", A_QUOTE_R},
    {DATE, NULL, A_AS_IS},
    {NUMBER, NULL, A_SOFTHYPH},
    {SUBSUPNUM, NULL, A_AS_IS},
    {FRAC, NULL, A_NBSP},
    {FRAC2, NULL, A_FRAC2},
    {TBSPEC, NULL, A_AMP},
    {THING3, NULL, A_AS_IS},
    {DOLSIGN, NULL, A_AS_IS},
    {DOLSIGN2, NULL, A_CURRENCY},
    {ACRONYM, ACRONYM_FOLLOW, A_ACRONYM},
    {ABBREV3, "(" SPACENL ")?[:digit:]", A_TRIMSPACE},
    {"(pt[eyEY]|co)\\.", SPACE "(ltd|lim)", A_AS_IS},
    {ABBREV1, SENTEND, A_ABBREV_DOT},
    {ABBREV1, "[^][^]", A_AS_IS},
    {ABBREV1, NULL, A_ABBREV_DOT},
    {ABBREV2, NULL, A_AS_IS},
    {ABBREV4, SPACE, A_AS_IS},
    {ACRO, SPACENL, A_AS_IS},
    {TBSPEC2, SPACENL, A_AS_IS},
    {FILENAME, "(" SPACENL "|[.?!,])", A_AS_IS},
    {WORD "\\.", INSENTP, A_SOFTHYPH},
    {PHONE, NULL, A_PHONE},
    {DBLQUOT, "[A-Za-z0-9$]", A_QUOTE_L},
    {DBLQUOT, NULL, A_QUOTE_R},
    {"\\x7f", NULL, A_SKIP},
    {LESSTHAN, NULL, A_LT},
    {GREATERTHAN, NULL, A_GT},
    {SMILEY, "[^A-Za-z0-9]", A_PARENS},
    {ASIANSMILEY, NULL, A_PARENS},
    {"\\{", NULL, A_LCB},
    {"\\}", NULL, A_RCB},
    {"\\[", NULL, A_LSB},
    {"\\]", NULL, A_RSB},
    {"\\(", NULL, A_LRB},
    {"\\)", NULL, A_RRB},
    {HYPHENS, NULL, A_HYPHENS},
    {LDOTS, NULL, A_ELLIPSIS},
    {FNMARKS, NULL, A_AS_IS},
    {ASTS, NULL, A_AS_IS},
    {INSENTP, NULL, A_AS_IS},
    {"[?!]+", NULL, A_AS_IS},
    {"[.\\u00A1\\u00BF\\u037E\\u0589\\u061F\\u06D4\\u0700-\\u0702\\u07FA\\u3002]", NULL, A_AS_IS},
    {"=", NULL, A_AS_IS},
    {"\\/", NULL, A_AS_IS},
    {HTHING "\\.", INSENTP, A_SOFTHYPH},
    {HTHING, NULL, A_SOFTHYPH},
    {THING "\\.", INSENTP, A_AS_IS},
    {THING, NULL, A_AS_IS},
    {THINGA "\\.", INSENTP, A_AMP},
    {THINGA, NULL, A_AMP},
    {"'", "[A-Za-z][^ \\t\\n\\r\\u00A0]", A_QUOTE_L},
    {REDAUX, NULL, A_QUOTE_R},
    {SREDAUX, NULL, A_QUOTE_R},
    {QUOTES, NULL, A_QUOTE_R},
    {FAKEDUCKFEET, NULL, A_AS_IS},
    {MISCSYMBOL, NULL, A_AS_IS},
    {"\\0|" SPACES "|[\\u200B\\u200E-\\u200F\\uFEFF]", NULL, A_SKIP},
    {NEWLINE, NULL, A_NEWLINE},
    {"&nbsp;", NULL, A_SKIP},
};
#define N_RULES ((int)(sizeof RULES / sizeof RULES[0]))

typedef struct {
    rx_prog r1, r2;
    int has_r2;
} compiled_rule;

static compiled_rule *g_rules;
static int g_maxprog;

/* Compile once; the tables are read-only afterwards.  Not thread-safe on the
 * first call (call m2u_ptb_init() first from multi-threaded programs). */
int m2u_ptb_init(void) {
    if (g_rules) return 0;
    compiled_rule *rules = calloc(N_RULES, sizeof *rules);
    if (!rules) return m2u_fail("ptb tokenizer: out of memory");
    for (int i = 0; i < N_RULES; i++) {
        if (rx_compile(RULES[i].r1, &rules[i].r1)) return -1;
        if (rules[i].r1.n > g_maxprog) g_maxprog = rules[i].r1.n;
        if (RULES[i].r2) {
            if (rx_compile(RULES[i].r2, &rules[i].r2)) return -1;
            rules[i].has_r2 = 1;
            if (rules[i].r2.n > g_maxprog) g_maxprog = rules[i].r2.n;
        }
    }
    g_rules = rules;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Token output                                                        */

static int put_range(m2u_strbuf *t, const uint32_t *s, size_t a, size_t b) {
    for (size_t i = a; i < b; i++)
        if (sb_cp(t, s[i])) return -1;
    return 0;
}

static int is_ws_cp(uint32_t c) {
    return c == ' ' || c == '\t' || (c >= '\n' && c <= '\r') || c == 0x85;
}

/* latexQuotes(tok, probablyLeft) */
static int put_quotes(m2u_strbuf *t, const uint32_t *s, size_t a, size_t b, int left) {
    for (size_t i = a; i < b; i++) {
        uint32_t c = s[i];
        if (c == '&' && i + 5 < b + 0 && 0) continue;
        if (c == '&' && b - i >= 6 && s[i + 1] == 'a' && s[i + 2] == 'p' && s[i + 3] == 'o' && s[i + 4] == 's' &&
            s[i + 5] == ';') {
            if (sb_put(t, left ? "`" : "'", 1)) return -1;
            i += 5;
            continue;
        }
        if (c == '&' && b - i >= 6 && s[i + 1] == 'q' && s[i + 2] == 'u' && s[i + 3] == 'o' && s[i + 4] == 't' &&
            s[i + 5] == ';') {
            if (sb_put(t, left ? "``" : "''", 2)) return -1;
            i += 5;
            continue;
        }
        int r;
        if (c == '\'') r = sb_put(t, left ? "`" : "'", 1);
        else if (c == '"') r = sb_put(t, left ? "``" : "''", 2);
        else if (c == 0x91 || c == 0x2018 || c == 0x201B || c == 0x2039) r = sb_put(t, "`", 1);
        else if (c == 0x92 || c == 0x2019 || c == 0x203A) r = sb_put(t, "'", 1);
        else if (c == 0x93 || c == 0x201C || c == 0xAB) r = sb_put(t, "``", 2);
        else if (c == 0x94 || c == 0x201D || c == 0xBB) r = sb_put(t, "''", 2);
        else r = sb_cp(t, c);
        if (r) return -1;
    }
    return 0;
}

static int put_amp(m2u_strbuf *t, const uint32_t *s, size_t a, size_t b) {
    for (size_t i = a; i < b; i++) {
        if (s[i] == '&' && b - i >= 5 && lit_eq('a', s[i + 1]) && lit_eq('m', s[i + 2]) && lit_eq('p', s[i + 3]) &&
            s[i + 4] == ';') {
            if (sb_put(t, "&", 1)) return -1;
            i += 4;
            continue;
        }
        if (sb_cp(t, s[i])) return -1;
    }
    return 0;
}

/* one lowered token appended to the line (space-separated) */
typedef struct {
    m2u_strbuf line;
    int begin;
} line_out;

static int token_begin(line_out *o) {
    if (!o->begin) {
        if (sb_put(&o->line, " ", 1)) return -1;
    }
    o->begin = 0;
    return 0;
}

/* Run the lexer over the whole text (lines joined by '\n'); call `on_line`
 * for each finished line with its raw (lower-cased, unfiltered) tokens. */
typedef int (*line_cb)(void *ctx, const char *line);

static int lex_text(const uint32_t *s, size_t len, line_cb cb, void *ctx) {
    int rc = -1;
    int *scratch = malloc((size_t)g_maxprog * 3 * sizeof *scratch);
    unsigned char *ends = malloc(len + 2);
    line_out o = {.line = {0}, .begin = 1};
    m2u_strbuf tok = {0};
    if (!scratch || !ends || sb_put(&o.line, "", 0)) {
        m2u_fail("ptb tokenizer: out of memory");
        goto done;
    }
    size_t p = 0;
    while (p < len) {
        long best_total = -1;
        long best_cons = -1;
        int best_rule = -1;
        for (int r = 0; r < N_RULES; r++) {
            const compiled_rule *cr = &g_rules[r];
            long total = -1, cons = -1;
            if (!cr->has_r2) {
                total = rx_ends(&cr->r1, s, len, p, NULL, scratch);
                cons = total;
            } else {
                memset(ends, 0, len - p + 1);
                long e1max = rx_ends(&cr->r1, s, len, p, ends, scratch);
                if (e1max < 0) continue;
                for (long e1 = e1max; e1 >= (long)p; e1--) {
                    if (!ends[e1 - (long)p]) continue;
                    long e2 = rx_ends(&cr->r2, s, len, (size_t)e1, NULL, scratch);
                    if (e2 > total) { total = e2; cons = e1; }
                }
                /* ends[] was clobbered by nothing (r2 runs with NULL) */
            }
            if (total > (long)p && total > best_total) {
                best_total = total;
                best_cons = cons;
                best_rule = r;
            }
        }
        if (best_rule < 0 || best_cons <= (long)p) {
            /* untokenizable character (or a zero-length consumption): deleted */
            p++;
            continue;
        }
        size_t a = p, b = (size_t)best_cons;
        size_t next = b;
        tok.n = 0;
        if (sb_put(&tok, "", 0)) goto oom;
        int emit_tok = 1, r = 0;
        switch (RULES[best_rule].action) {
        case A_AS_IS: r = put_range(&tok, s, a, b); break;
        case A_SKIP: emit_tok = 0; break;
        case A_NEWLINE:
            emit_tok = 0;
            if (cb(ctx, o.line.s)) goto done;
            o.line.n = 0;
            o.line.s[0] = 0;
            o.begin = 1;
            break;
        case A_PUSH3: next = b - 3; r = put_range(&tok, s, a, next); break;
        case A_PUSH2: next = b - 2; r = put_range(&tok, s, a, next); break;
        case A_NBSP:
            for (size_t i = a; i < b && !r; i++) r = sb_cp(&tok, s[i] == ' ' ? 0xA0 : s[i]);
            break;
        case A_MDASH: r = sb_put(&tok, "--", 2); break;
        case A_AMP: r = put_amp(&tok, s, a, b); break;
        case A_SOFTHYPH:
            for (size_t i = a; i < b && !r; i++)
                if (s[i] != 0xAD) r = sb_cp(&tok, s[i]);
            if (!r && tok.n == 0) r = sb_put(&tok, "-", 1);
            break;
        case A_QUOTE_R: r = put_quotes(&tok, s, a, b, 0); break;
        case A_QUOTE_L: r = put_quotes(&tok, s, a, b, 1); break;
        case A_FRAC2:
            for (size_t i = a; i < b && !r; i++) {
                uint32_t c = s[i];
                r = c == 0xBC ? sb_put(&tok, "1/4", 3) : c == 0xBD ? sb_put(&tok, "1/2", 3)
                  : c == 0xBE ? sb_put(&tok, "3/4", 3) : c == 0x2153 ? sb_put(&tok, "1/3", 3) : sb_cp(&tok, c);
            }
            break;
        case A_CURRENCY:
            for (size_t i = a; i < b && !r; i++) {
                uint32_t c = s[i];
                r = c == 0xA2 ? sb_put(&tok, "cents", 5) : c == 0xA3 ? sb_put(&tok, "#", 1)
                  : (c == 0x80 || c == 0xA4 || c == 0x20A0 || c == 0x20AC) ? sb_put(&tok, "$", 1) : sb_cp(&tok, c);
            }
            break;
        case A_ACRONYM:
            while (b > a && is_ws_cp(s[b - 1])) b--;
            if (b - a == 2) { next = a + 1; r = put_range(&tok, s, a, a + 1); }
            else { next = b - 1; r = put_range(&tok, s, a, b); }
            break;
        case A_TRIMSPACE:
            while (b > a && is_ws_cp(s[b - 1])) b--;
            next = b;
            r = put_range(&tok, s, a, b);
            break;
        case A_ABBREV_DOT: next = b - 1; r = put_range(&tok, s, a, b); break;
        case A_PHONE:
            for (size_t i = a; i < b && !r; i++) {
                uint32_t c = s[i];
                r = c == ' ' ? sb_cp(&tok, 0xA0) : c == '(' ? sb_put(&tok, "-LRB-", 5)
                  : c == ')' ? sb_put(&tok, "-RRB-", 5) : sb_cp(&tok, c);
            }
            break;
        case A_LT: r = sb_put(&tok, "<", 1); break;
        case A_GT: r = sb_put(&tok, ">", 1); break;
        case A_PARENS:
            for (size_t i = a; i < b && !r; i++) {
                uint32_t c = s[i];
                r = c == '(' ? sb_put(&tok, "-LRB-", 5) : c == ')' ? sb_put(&tok, "-RRB-", 5) : sb_cp(&tok, c);
            }
            break;
        case A_LCB: r = sb_put(&tok, "-LCB-", 5); break;
        case A_RCB: r = sb_put(&tok, "-RCB-", 5); break;
        case A_LSB: r = sb_put(&tok, "-LSB-", 5); break;
        case A_RSB: r = sb_put(&tok, "-RSB-", 5); break;
        case A_LRB: r = sb_put(&tok, "-LRB-", 5); break;
        case A_RRB: r = sb_put(&tok, "-RRB-", 5); break;
        case A_HYPHENS:
            r = (b - a >= 3 && b - a <= 4) ? sb_put(&tok, "--", 2) : put_range(&tok, s, a, b);
            break;
        case A_ELLIPSIS: r = sb_put(&tok, "...", 3); break;
        default: r = put_range(&tok, s, a, b); break;
        }
        if (r) goto oom;
        if (emit_tok) {
            /* -lowerCase: String.toLowerCase(Locale.ENGLISH) */
            size_t n;
            uint32_t *cps = utf8_decode(tok.s, tok.n, &n);
            if (!cps) goto oom;
            if (token_begin(&o)) { free(cps); goto oom; }
            for (size_t i = 0; i < n; i++)
                if (sb_cp(&o.line, u_lower(cps[i]))) { free(cps); goto oom; }
            free(cps);
        }
        p = next;
    }
    if (cb(ctx, o.line.s)) goto done;
    rc = 0;
    goto done;
oom:
    m2u_fail("ptb tokenizer: out of memory");
done:
    free(scratch);
    free(ends);
    free(o.line.s);
    free(tok.s);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Public API                                                          */

static const char *const PUNCTUATIONS[] = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".",
                                           "?", "!", ",", ":", "-", "--", "...", ";"};

static int is_punct(const char *w, size_t n) {
    for (size_t i = 0; i < sizeof PUNCTUATIONS / sizeof PUNCTUATIONS[0]; i++)
        if (strlen(PUNCTUATIONS[i]) == n && memcmp(PUNCTUATIONS[i], w, n) == 0) return 1;
    return 0;
}

typedef struct {
    char **raw, **filtered;
    size_t n, i;
} collect_ctx;

/* pycocoevalcap: ' '.join(w for w in line.rstrip().split(' ') if w not in PUNCTUATIONS) */
static char *filter_line(const char *line) {
    size_t len = strlen(line);
    /* rstrip: our lines never end in whitespace (tokens carry none at their ends) */
    char *out = malloc(len + 1);
    if (!out) return NULL;
    size_t o = 0;
    int first = 1;
    const char *p = line, *end = line + len;
    for (;;) {
        const char *q = memchr(p, ' ', (size_t)(end - p));
        if (!q) q = end;
        size_t n = (size_t)(q - p);
        if (!is_punct(p, n)) {
            if (!first) out[o++] = ' ';
            memcpy(out + o, p, n);
            o += n;
            first = 0;
        }
        if (q == end) break;
        p = q + 1;
    }
    out[o] = 0;
    return out;
}

static int collect_line(void *vctx, const char *line) {
    collect_ctx *c = vctx;
    if (c->i >= c->n) return 0; /* a newline inside the last item cannot happen: newlines are replaced */
    if (c->raw) {
        c->raw[c->i] = strdup(line);
        if (!c->raw[c->i]) return m2u_fail("ptb tokenizer: out of memory");
    }
    c->filtered[c->i] = filter_line(line);
    if (!c->filtered[c->i]) return m2u_fail("ptb tokenizer: out of memory");
    c->i++;
    return 0;
}

int m2u_ptb_tokenize(const char *const *texts, size_t n, char ***tokenized, char ***raw) {
    *tokenized = NULL;
    if (raw) *raw = NULL;
    if (m2u_ptb_init()) return -1;
    if (n == 0) {
        *tokenized = calloc(1, sizeof(char *));
        if (raw) *raw = calloc(1, sizeof(char *));
        return 0;
    }
    /* join like pycocoevalcap: '\n'.join(c.replace('\n', ' ')); every other
     * line terminator inside a caption also becomes a space (see header) */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += strlen(texts[i] ? texts[i] : "") + 1;
    uint32_t *all = malloc(total * sizeof *all);
    char **filt = calloc(n, sizeof *filt);
    char **rw = raw ? calloc(n, sizeof *rw) : NULL;
    if (!all || !filt || (raw && !rw)) {
        free(all); free(filt); free(rw);
        return m2u_fail("ptb tokenizer: out of memory");
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = texts[i] ? texts[i] : "";
        size_t m;
        uint32_t *cps = utf8_decode(t, strlen(t), &m);
        if (!cps) { free(all); free(filt); free(rw); return m2u_fail("ptb tokenizer: out of memory"); }
        for (size_t k = 0; k < m; k++) {
            uint32_t c = cps[k];
            if (c == '\n' || c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x0B || c == 0x0C || c == 0x85) c = ' ';
            all[len++] = c;
        }
        free(cps);
        if (i + 1 < n) all[len++] = '\n';
    }
    collect_ctx c = {rw, filt, n, 0};
    int rc = lex_text(all, len, collect_line, &c);
    free(all);
    if (rc == 0) {
        for (; c.i < n; c.i++) { /* trailing empty lines */
            if (collect_line(&c, "")) { rc = -1; break; }
        }
    }
    if (rc) {
        for (size_t i = 0; i < n; i++) { free(filt[i]); if (rw) free(rw[i]); }
        free(filt);
        free(rw);
        return -1;
    }
    *tokenized = filt;
    if (raw) *raw = rw;
    return 0;
}

void m2u_strv_free(char **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}
