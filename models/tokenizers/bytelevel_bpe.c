/* Byte-level BPE as transformers' slow RobertaTokenizer: see bytelevel_bpe.h.  Checked against
 * transformers 4.46.3 by tests/test_bytelevel_bpe.c on tests/fixtures/roberta. */
#include "bytelevel_bpe.h"

#include "bytelevel.h"
#include "fileio.h"
#include "json.h"
#include "m2u_error.h"
#include "str_map.h"
#include "strbuf.h"
#include "tokenizer_json.h"
#include "utf8_util.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ID (1 << 26) /* larger ids would only size the id -> token table absurdly */

typedef struct {
    char *content; /* owned, NUL-terminated */
    size_t len;
    uint32_t *cps; /* its code points (the Trie walks characters) */
    size_t ncp;
    int32_t id;
    bool lstrip, rstrip, single_word, special;
} bb_added;

enum { SP_BOS, SP_EOS, SP_UNK, SP_SEP, SP_PAD, SP_CLS, SP_MASK, N_SP };
static const char *const SP_KEYS[N_SP] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                          "pad_token", "cls_token", "mask_token"};
static const char *const SP_DEFAULT[N_SP] = {"<s>", "</s>", "<unk>", "</s>", "<pad>", "<s>", "<mask>"};

struct m2u_bytebpe {
    char *vocab_arena;
    const char **id_str; /* id -> vocab.json token (the reference's decoder dict) */
    uint32_t *id_len;
    int32_t n_id;
    int32_t n_vocab; /* len(encoder) */
    str_map vocab;
    char *merge_arena; /* "a b" keys */
    str_map merges;    /* "a b" -> rank */
    bb_added *added;
    int n_added;
    str_map added_map; /* content -> index into added */
    char *sp_name[N_SP];
    int32_t sp_id[N_SP];
    size_t model_max_length;
    bool add_prefix_space, clean_up;
    uint32_t byte_cp[256]; /* bytes_to_unicode */
    int16_t cp_byte[324];  /* its inverse over U+0000..U+0143, -1 elsewhere */
};

/* ======================================================================== BPE */

typedef struct {
    m2u_strbuf bstr, key;       /* the byte-mapped word; a "a b" lookup key */
    size_t *off, *len, *off2, *len2;
    int32_t *rank;
    bool *fresh, *fresh2;
    size_t cap;
} bpe_work;

static void bpe_work_free(bpe_work *w) {
    free(w->bstr.s);
    free(w->key.s);
    free(w->off);
    free(w->len);
    free(w->off2);
    free(w->len2);
    free(w->rank);
    free(w->fresh);
    free(w->fresh2);
}

static int bpe_work_reserve(bpe_work *w, size_t n) {
    if (n <= w->cap) return 0;
    size_t cap = n < 64 ? 64 : n;
    void *p[9] = {realloc(w->off, cap * sizeof(size_t)), NULL};
    if (p[0]) w->off = p[0];
    p[1] = realloc(w->len, cap * sizeof(size_t));
    if (p[1]) w->len = p[1];
    p[2] = realloc(w->off2, cap * sizeof(size_t));
    if (p[2]) w->off2 = p[2];
    p[3] = realloc(w->len2, cap * sizeof(size_t));
    if (p[3]) w->len2 = p[3];
    p[4] = realloc(w->rank, cap * sizeof(int32_t));
    if (p[4]) w->rank = p[4];
    p[5] = realloc(w->fresh, cap * sizeof(bool));
    if (p[5]) w->fresh = p[5];
    p[6] = realloc(w->fresh2, cap * sizeof(bool));
    if (p[6]) w->fresh2 = p[6];
    for (int k = 0; k < 7; k++)
        if (!p[k]) return m2u_fail("out of memory (a word of %zu bytes)", n);
    w->cap = cap;
    return 0;
}

static int32_t pair_rank(const m2u_bytebpe *t, bpe_work *w, size_t a, size_t b) {
    w->key.n = 0;
    if (m2u_tj_put(&w->key, w->bstr.s + w->off[a], w->len[a]) || m2u_tj_put(&w->key, " ", 1) ||
        m2u_tj_put(&w->key, w->bstr.s + w->off[b], w->len[b]))
        return -2;
    return str_map_find(&t->merges, w->key.s, w->key.n);
}

/* Token string -> id as convert_tokens_to_ids: the added tokens, then vocab.json, then <unk>'s
 * vocab.json id (encoder.get(unk_token)); neither is an error (the reference puts None there). */
static int token_id(const m2u_bytebpe *t, const char *s, size_t n, m2u_tj_ids *out) {
    int k = str_map_find(&t->added_map, s, n);
    int32_t id = k >= 0 ? t->added[k].id : str_map_find(&t->vocab, s, n);
    if (id < 0 && t->sp_name[SP_UNK]) id = str_map_find(&t->vocab, t->sp_name[SP_UNK], strlen(t->sp_name[SP_UNK]));
    if (id < 0) return m2u_fail("token \"%.*s\" is not in the vocabulary, nor is the unk token", (int)n, s);
    return m2u_tj_ids_push(out, id);
}

/* GPT-2's bpe() on the bytes word[0..n) of one regex match, then the ids of its pieces. */
static int bpe_word(const m2u_bytebpe *t, bpe_work *w, const unsigned char *word, size_t n, m2u_tj_ids *out) {
    if (bpe_work_reserve(w, n)) return -1;
    w->bstr.n = 0;
    for (size_t i = 0; i < n; i++) {
        char enc[4];
        int l = m2u_utf8_encode(t->byte_cp[word[i]], enc);
        w->off[i] = w->bstr.n;
        w->len[i] = (size_t)l;
        if (m2u_tj_put(&w->bstr, enc, (size_t)l)) return -1;
    }
    size_t ns = n;
    for (size_t k = 0; k + 1 < ns; k++)
        if ((w->rank[k] = pair_rank(t, w, k, k + 1)) == -2) return -1;
    while (ns > 1) {
        size_t best = SIZE_MAX;
        for (size_t k = 0; k + 1 < ns; k++)
            if (w->rank[k] >= 0 && (best == SIZE_MAX || w->rank[k] < w->rank[best])) best = k;
        if (best == SIZE_MAX) break;
        /* merge every occurrence of (first, second), left to right, without overlap */
        size_t fo = w->off[best], fl = w->len[best], so = w->off[best + 1], sl = w->len[best + 1], m = 0;
        for (size_t i = 0; i < ns;) {
            if (i + 1 < ns && w->len[i] == fl && w->len[i + 1] == sl &&
                memcmp(w->bstr.s + w->off[i], w->bstr.s + fo, fl) == 0 &&
                memcmp(w->bstr.s + w->off[i + 1], w->bstr.s + so, sl) == 0) {
                w->off2[m] = w->off[i], w->len2[m] = fl + sl, w->fresh2[m++] = true;
                i += 2;
            } else {
                w->off2[m] = w->off[i], w->len2[m] = w->len[i], w->fresh2[m++] = false;
                i++;
            }
        }
        /* the old pair ranks stay valid between two unchanged symbols: shift them over */
        size_t old = 0;
        for (size_t k = 0; k < m; k++) {
            size_t span = w->fresh2[k] ? 2 : 1;
            if (k + 1 < m && !w->fresh2[k] && !w->fresh2[k + 1]) w->rank[k] = w->rank[old];
            else if (k + 1 < m) w->rank[k] = -3; /* to compute */
            old += span;
        }
        size_t *tp = w->off; w->off = w->off2; w->off2 = tp;
        tp = w->len; w->len = w->len2; w->len2 = tp;
        bool *tb = w->fresh; w->fresh = w->fresh2; w->fresh2 = tb;
        ns = m;
        for (size_t k = 0; k + 1 < ns; k++)
            if (w->rank[k] == -3 && (w->rank[k] = pair_rank(t, w, k, k + 1)) == -2) return -1;
    }
    for (size_t k = 0; k < ns; k++)
        if (token_id(t, w->bstr.s + w->off[k], w->len[k], out)) return -1;
    return 0;
}

/* _tokenize: the regex matches of a piece, each through bpe_word. */
static int tokenize_piece(const m2u_bytebpe *t, bpe_work *w, const char *s, size_t n, m2u_tj_ids *out) {
    uint32_t *cp = malloc((n + 1) * sizeof *cp);
    size_t *at = malloc((n + 1) * sizeof *at);
    if (!cp || !at) {
        free(cp);
        free(at);
        return m2u_fail("out of memory (a piece of %zu bytes)", n);
    }
    size_t nc = 0;
    for (size_t i = 0; i < n; nc++) {
        at[nc] = i;
        i += (size_t)m2u_utf8_decode((const unsigned char *)s + i, &cp[nc]);
    }
    at[nc] = n;
    int rc = 0;
    for (size_t i = 0; i < nc && rc == 0;) {
        size_t j = m2u_bl_match(cp, nc, i, M2U_BL_PYTHON);
        rc = bpe_word(t, w, (const unsigned char *)s + at[i], at[j] - at[i], out);
        i = j;
    }
    free(cp);
    free(at);
    return rc;
}

/* ======================================================================== added tokens: Trie.split */

/* A trie node of transformers' Trie as (a pattern with that prefix, depth). */
typedef struct {
    int p;
    size_t d;
} tnode;

static bool node_has_end(const m2u_bytebpe *t, tnode nd) {
    const bb_added *a = &t->added[nd.p];
    for (int q = 0; q < t->n_added; q++) {
        const bb_added *b = &t->added[q];
        if (b->ncp == nd.d && memcmp(b->cps, a->cps, nd.d * sizeof(uint32_t)) == 0) return true;
    }
    return false;
}

/* The child of nd along c (nd.p < 0: the root); false if none. */
static bool node_child(const m2u_bytebpe *t, tnode nd, uint32_t c, tnode *out) {
    for (int q = 0; q < t->n_added; q++) {
        const bb_added *b = &t->added[q];
        if (b->ncp > nd.d && b->cps[nd.d] == c &&
            (nd.p < 0 || memcmp(b->cps, t->added[nd.p].cps, nd.d * sizeof(uint32_t)) == 0)) {
            *out = (tnode){q, nd.d + 1};
            return true;
        }
    }
    return false;
}

typedef struct {
    size_t *v;
    size_t n, cap;
} offs;
static int offs_push(offs *o, size_t x) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 16;
        size_t *v = realloc(o->v, cap * sizeof *v);
        if (!v) return m2u_fail("out of memory (added-token split)");
        o->v = v;
        o->cap = cap;
    }
    o->v[o->n++] = x;
    return 0;
}

/* Trie.split on the code points cp[0..n): the cut offsets (code point indices) into *o, the
 * reference's algorithm step for step (its lookahead included). */
static int trie_offsets(const m2u_bytebpe *t, const uint32_t *cp, size_t n, offs *o) {
    size_t *st = malloc((n + 1) * sizeof *st);
    tnode *nd = malloc((n + 1) * sizeof *nd);
    bool *rm = malloc((n + 1) * sizeof *rm);
    int rc = -1;
    if (!st || !nd || !rm) {
        m2u_fail("out of memory (added-token split)");
        goto done;
    }
    size_t ns = 0, skip = 0;
    if (offs_push(o, 0)) goto done;
    for (size_t cur = 0; cur < n; cur++) {
        if (skip && cur < skip) continue;
        bool reset = false;
        for (size_t si = 0; si < ns; si++) {
            rm[si] = false;
            size_t start = st[si];
            if (node_has_end(t, nd[si])) {
                size_t end = cur;
                for (size_t li = 0; li < ns; li++) {
                    size_t lookstart = st[li], la;
                    tnode look = nd[li];
                    if (lookstart > start) break;
                    else if (lookstart < start) la = cur + 1, end = cur + 1;
                    else la = cur, end = cur;
                    bool has_next = la < n;
                    uint32_t next = has_next ? cp[la] : 0;
                    if (node_has_end(t, look)) start = lookstart, end = la, skip = la;
                    tnode ch;
                    while (has_next && node_child(t, look, next, &ch)) {
                        look = ch;
                        la++;
                        if (node_has_end(t, look)) start = lookstart, end = la, skip = la;
                        if (la == n) break;
                        next = cp[la];
                    }
                }
                if (offs_push(o, start) || offs_push(o, end)) goto done;
                reset = true;
                break;
            }
            tnode ch;
            if (node_child(t, nd[si], cp[cur], &ch)) nd[si] = ch;
            else rm[si] = true;
        }
        if (reset) {
            ns = 0;
        } else {
            size_t m = 0;
            for (size_t si = 0; si < ns; si++)
                if (!rm[si]) st[m] = st[si], nd[m++] = nd[si];
            ns = m;
        }
        tnode ch;
        if (cur >= skip && node_child(t, (tnode){-1, 0}, cp[cur], &ch)) st[ns] = cur, nd[ns++] = ch;
    }
    for (size_t si = 0; si < ns; si++)
        if (node_has_end(t, nd[si])) {
            if (offs_push(o, st[si]) || offs_push(o, n)) goto done;
            break;
        }
    if (offs_push(o, n)) goto done;
    rc = 0;
done:
    free(st);
    free(nd);
    free(rm);
    return rc;
}

typedef struct {
    m2u_strbuf *v;
    size_t n;
} pieces;

static void pieces_free(pieces *p) {
    for (size_t i = 0; i < p->n; i++) free(p->v[i].s);
    free(p->v);
}

static int added_index(const m2u_bytebpe *t, const m2u_strbuf *b) {
    return b->n ? str_map_find(&t->added_map, b->s, b->n) : -1;
}

/* Python's str.lstrip() / str.rstrip() on a piece. */
static void py_lstrip(m2u_strbuf *b) {
    size_t i = 0;
    while (i < b->n) {
        uint32_t c;
        int l = m2u_utf8_decode((const unsigned char *)b->s + i, &c);
        if (!m2u_py_space(c)) break;
        i += (size_t)l;
    }
    memmove(b->s, b->s + i, b->n - i + 1);
    b->n -= i;
}
static void py_rstrip(m2u_strbuf *b) {
    while (b->n) {
        size_t p = b->n - 1;
        while (p > 0 && ((unsigned char)b->s[p] & 0xC0) == 0x80) p--;
        uint32_t c;
        m2u_utf8_decode((const unsigned char *)b->s + p, &c);
        if (!m2u_py_space(c)) break;
        b->n = p;
        b->s[p] = '\0';
    }
}

/* PreTrainedTokenizer.tokenize after prepare_for_tokenization: split on the added tokens, apply their
 * strip rules, then the ids of every non-empty piece. */
static int encode_text(const m2u_bytebpe *t, const char *s, size_t n, m2u_tj_ids *out) {
    uint32_t *cp = malloc((n + 1) * sizeof *cp);
    size_t *at = malloc((n + 1) * sizeof *at);
    offs o = {0};
    pieces p = {0};
    bpe_work w = {0};
    int rc = -1;
    if (!cp || !at) {
        m2u_fail("out of memory (a text of %zu bytes)", n);
        goto done;
    }
    size_t nc = 0;
    for (size_t i = 0; i < n; nc++) {
        at[nc] = i;
        i += (size_t)m2u_utf8_decode((const unsigned char *)s + i, &cp[nc]);
    }
    at[nc] = n;
    if (t->n_added) {
        if (trie_offsets(t, cp, nc, &o)) goto done;
    } else if (offs_push(&o, 0) || offs_push(&o, nc)) {
        goto done;
    }
    p.v = calloc(o.n + 1, sizeof *p.v);
    if (!p.v) {
        m2u_fail("out of memory (added-token split)");
        goto done;
    }
    size_t start = 0; /* cut_text */
    for (size_t k = 0; k < o.n; k++) {
        size_t end = o.v[k];
        if (start >= end) continue; /* start > end: the reference logs "a bug in Trie" and skips */
        if (m2u_tj_put(&p.v[p.n++], s + at[start], at[end] - at[start])) goto done;
        start = end;
    }
    for (size_t i = 0; i < p.n; i++) {
        int k = added_index(t, &p.v[i]);
        if (k < 0) continue;
        const bb_added *a = &t->added[k];
        m2u_strbuf *left = i > 0 ? &p.v[i - 1] : NULL, *right = i + 1 < p.n ? &p.v[i + 1] : NULL;
        char lastl = left && left->n ? left->s[left->n - 1] : 0, firstr = right && right->n ? right->s[0] : 0;
        bool has_l = left && left->n, has_r = right && right->n; /* as captured before the strips */
        if (a->rstrip && has_r) py_lstrip(right);
        if (a->lstrip && has_l) py_rstrip(left);
        if (a->single_word && has_l && lastl != ' ') {
            if (m2u_tj_put(left, p.v[i].s, p.v[i].n)) goto done;
            p.v[i].n = 0;
        } else if (a->single_word && has_r && firstr != ' ') {
            m2u_strbuf nb = {0};
            if (m2u_tj_put(&nb, p.v[i].s, p.v[i].n) || m2u_tj_put(&nb, right->s, right->n)) {
                free(nb.s);
                goto done;
            }
            free(right->s);
            *right = nb;
            p.v[i].n = 0;
        }
    }
    for (size_t i = 0; i < p.n; i++) {
        if (!p.v[i].n) continue;
        if (added_index(t, &p.v[i]) >= 0) {
            if (token_id(t, p.v[i].s, p.v[i].n, out)) goto done;
        } else if (tokenize_piece(t, &w, p.v[i].s, p.v[i].n, out)) {
            goto done;
        }
    }
    rc = 0;
done:
    free(cp);
    free(at);
    free(o.v);
    pieces_free(&p);
    bpe_work_free(&w);
    return rc;
}

int m2u_bytebpe_encode(const m2u_bytebpe *t, const char *text, size_t len, int add_prefix_space, int add_special,
                       size_t max_length, int32_t **ids, size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    if (!t || (!text && len)) return m2u_fail("m2u_bytebpe_encode: bad arguments");
    size_t bad = m2u_utf8_valid_prefix((const unsigned char *)text, len);
    if (bad != len) return m2u_fail("m2u_bytebpe_encode: invalid UTF-8 at byte %zu", bad);
    bool prefix = add_prefix_space < 0 ? t->add_prefix_space : add_prefix_space != 0;
    m2u_strbuf buf = {0};
    const char *s = text ? text : "";
    size_t n = len;
    if (prefix && len > 0) {
        uint32_t c0;
        m2u_utf8_decode((const unsigned char *)text, &c0);
        if (!m2u_py_space(c0)) {
            if (m2u_tj_put(&buf, " ", 1) || m2u_tj_put(&buf, text, len)) {
                free(buf.s);
                return -1;
            }
            s = buf.s, n = buf.n;
        }
    }
    m2u_tj_ids seq = {0};
    int rc = encode_text(t, s, n, &seq);
    free(buf.s);
    if (rc == 0 && add_special && (t->sp_id[SP_CLS] < 0 || t->sp_id[SP_SEP] < 0))
        rc = m2u_fail("m2u_bytebpe_encode: the cls / sep tokens have no id");
    size_t n_special = add_special ? 2 : 0;
    if (rc == 0 && max_length > 0 && seq.n + n_special > max_length) {
        size_t remove = seq.n + n_special - max_length;
        if (seq.n > remove) seq.n -= remove; /* else the reference logs an error and keeps it whole */
    }
    int32_t *v = NULL;
    if (rc == 0) {
        v = malloc((seq.n + n_special + 1) * sizeof *v);
        if (!v) rc = m2u_fail("out of memory");
    }
    if (rc) {
        free(seq.v);
        return -1;
    }
    size_t k = 0;
    if (add_special) v[k++] = t->sp_id[SP_CLS];
    if (seq.n) memcpy(v + k, seq.v, seq.n * sizeof *v);
    k += seq.n;
    if (add_special) v[k++] = t->sp_id[SP_SEP];
    free(seq.v);
    *ids = v;
    *n_ids = k;
    return 0;
}

/* ======================================================================== decode */

static bool is_named_special(const m2u_bytebpe *t, int32_t id) {
    for (int k = 0; k < N_SP; k++)
        if (t->sp_id[k] >= 0 && t->sp_id[k] == id) return true;
    for (int k = 0; k < t->n_added; k++) /* additional special tokens */
        if (t->added[k].special && t->added[k].id == id) return true;
    return false;
}

static bool is_named_special_str(const m2u_bytebpe *t, const char *s, size_t n) {
    for (int k = 0; k < N_SP; k++)
        if (t->sp_name[k] && strlen(t->sp_name[k]) == n && memcmp(t->sp_name[k], s, n) == 0) return true;
    for (int k = 0; k < t->n_added; k++)
        if (t->added[k].special && t->added[k].len == n && memcmp(t->added[k].content, s, n) == 0) return true;
    return false;
}

/* convert_tokens_to_string of the pending tokens into sub (appended as one string). */
static int flush_tokens(const m2u_bytebpe *t, m2u_strbuf *pend, m2u_strbuf *bytes, m2u_strbuf *sub, size_t *nsub,
                        bool keep_empty) {
    if (!pend->n && !keep_empty) return 0;
    bytes->n = 0;
    for (size_t i = 0; i < pend->n;) {
        uint32_t c;
        i += (size_t)m2u_utf8_decode((const unsigned char *)pend->s + i, &c);
        if (c >= 324 || t->cp_byte[c] < 0) return m2u_fail("decode: U+%04X is not a byte-level character", c);
        char b = (char)t->cp_byte[c];
        if (m2u_tj_put(bytes, &b, 1)) return -1;
    }
    size_t before = sub->n;
    if (*nsub && m2u_tj_put(sub, " ", 1)) return -1;
    size_t mark = sub->n;
    if (m2u_bl_utf8_replace((const unsigned char *)bytes->s, bytes->n, sub)) return -1;
    if (sub->n == mark && !keep_empty) sub->n = before; /* an empty string is not kept */
    else (*nsub)++;
    pend->n = 0;
    return 0;
}

int m2u_bytebpe_decode(const m2u_bytebpe *t, const int32_t *ids, size_t n_ids, int skip_special, char **text,
                       size_t *len) {
    *text = NULL;
    *len = 0;
    if (!t || (!ids && n_ids)) return m2u_fail("m2u_bytebpe_decode: bad arguments");
    m2u_strbuf pend = {0}, bytes = {0}, sub = {0};
    size_t nsub = 0;
    bool any_pend = false;
    int rc = m2u_tj_put(&sub, "", 0);
    for (size_t i = 0; i < n_ids && rc == 0; i++) {
        if (skip_special && is_named_special(t, ids[i])) continue;
        const char *tok = m2u_bytebpe_id_to_token(t, ids[i]);
        if (!tok) {
            rc = m2u_fail("decode: id %d is not in the vocabulary", ids[i]);
            break;
        }
        size_t tl = strlen(tok);
        int k = str_map_find(&t->added_map, tok, tl);
        bool legacy = k >= 0 && !is_named_special_str(t, tok, tl); /* non-special added token: kept apart */
        if (legacy) {
            if (any_pend) rc = flush_tokens(t, &pend, &bytes, &sub, &nsub, false);
            any_pend = false;
            if (rc == 0) rc = (nsub ? m2u_tj_put(&sub, " ", 1) : 0) || m2u_tj_put(&sub, tok, tl);
            nsub++;
        } else {
            rc = m2u_tj_put(&pend, tok, tl);
            any_pend = true;
        }
    }
    if (rc == 0 && any_pend) rc = flush_tokens(t, &pend, &bytes, &sub, &nsub, true);
    if (rc == 0 && t->clean_up) { /* clean_up_tokenization: each replacement over the whole text in turn */
        static const char *const pairs[][2] = {{" .", "."},   {" ?", "?"},   {" !", "!"},   {" ,", ","},
                                               {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"},
                                               {" 've", "'ve"}, {" 're", "'re"}};
        m2u_strbuf nb = {0};
        for (size_t p = 0; p < sizeof pairs / sizeof pairs[0] && rc == 0; p++) {
            size_t pl = strlen(pairs[p][0]), from = 0, i = 0;
            nb.n = 0;
            rc = m2u_tj_put(&nb, "", 0);
            while (rc == 0 && i + pl <= sub.n) {
                if (memcmp(sub.s + i, pairs[p][0], pl) == 0) {
                    rc = m2u_tj_put(&nb, sub.s + from, i - from) || m2u_tj_put(&nb, pairs[p][1], strlen(pairs[p][1]));
                    i += pl;
                    from = i;
                } else {
                    i++;
                }
            }
            if (rc == 0) rc = m2u_tj_put(&nb, sub.s + from, sub.n - from);
            m2u_strbuf tmp = sub;
            sub = nb;
            nb = tmp;
        }
        free(nb.s);
    }
    free(pend.s);
    free(bytes.s);
    if (rc) {
        free(sub.s);
        return -1;
    }
    *text = sub.s;
    *len = sub.n;
    return 0;
}

/* ======================================================================== accessors */

int m2u_bytebpe_vocab_size(const m2u_bytebpe *t) {
    if (!t) return 0;
    int n = t->n_vocab;
    for (int k = 0; k < t->n_added; k++)
        if (str_map_find(&t->vocab, t->added[k].content, t->added[k].len) < 0) n++;
    return n;
}

int m2u_bytebpe_token_to_id(const m2u_bytebpe *t, const char *token) {
    if (!t || !token) return -1;
    size_t n = strlen(token);
    int k = str_map_find(&t->added_map, token, n);
    return k >= 0 ? t->added[k].id : str_map_find(&t->vocab, token, n);
}

const char *m2u_bytebpe_id_to_token(const m2u_bytebpe *t, int id) {
    if (!t || id < 0) return NULL;
    for (int k = t->n_added - 1; k >= 0; k--) /* _added_tokens_decoder first */
        if (t->added[k].id == id) return t->added[k].content;
    return id < t->n_id ? t->id_str[id] : NULL;
}

int m2u_bytebpe_cls_id(const m2u_bytebpe *t) { return t ? t->sp_id[SP_CLS] : -1; }
int m2u_bytebpe_sep_id(const m2u_bytebpe *t) { return t ? t->sp_id[SP_SEP] : -1; }
int m2u_bytebpe_pad_id(const m2u_bytebpe *t) { return t ? t->sp_id[SP_PAD] : -1; }
int m2u_bytebpe_unk_id(const m2u_bytebpe *t) { return t ? t->sp_id[SP_UNK] : -1; }
int m2u_bytebpe_mask_id(const m2u_bytebpe *t) { return t ? t->sp_id[SP_MASK] : -1; }
size_t m2u_bytebpe_model_max_length(const m2u_bytebpe *t) { return t ? t->model_max_length : 0; }

/* ======================================================================== loading */

void m2u_bytebpe_free(m2u_bytebpe *t) {
    if (!t) return;
    free(t->vocab_arena);
    free(t->id_str);
    free(t->id_len);
    free(t->vocab.slots);
    free(t->merge_arena);
    free(t->merges.slots);
    for (int k = 0; k < t->n_added; k++) {
        free(t->added[k].content);
        free(t->added[k].cps);
    }
    free(t->added);
    free(t->added_map.slots);
    for (int k = 0; k < N_SP; k++) free(t->sp_name[k]);
    free(t);
}

static int load_vocab(m2u_bytebpe *t, const char *path) {
    cJSON *root; /* not m2u_json_load: its pairwise duplicate check is quadratic in RoBERTa's 50,265 keys */
    if (m2u_tj_read(path, &root)) return -1;
    size_t bytes = 0;
    int32_t count = 0, max_id = -1;
    const cJSON *e;
    int rc = -1;
    cJSON_ArrayForEach(e, root) {
        int32_t id;
        size_t n = strlen(e->string);
        if (m2u_tj_index(e, MAX_ID, &id)) {
            m2u_fail("%s: \"%s\": the id must be an integer in [0, 2^26)", path, e->string);
            goto done;
        }
        if (m2u_utf8_valid_prefix((const unsigned char *)e->string, n) != n) {
            m2u_fail("%s: a token is not valid UTF-8", path);
            goto done;
        }
        bytes += n + 1;
        count++;
        if (id > max_id) max_id = id;
    }
    t->vocab_arena = malloc(bytes ? bytes : 1);
    t->n_id = max_id + 1;
    t->id_str = calloc((size_t)(t->n_id ? t->n_id : 1), sizeof *t->id_str);
    t->id_len = calloc((size_t)(t->n_id ? t->n_id : 1), sizeof *t->id_len);
    if (!t->vocab_arena || !t->id_str || !t->id_len) {
        m2u_fail("%s: out of memory", path);
        goto done;
    }
    char *w = t->vocab_arena;
    cJSON_ArrayForEach(e, root) {
        int32_t id = (int32_t)e->valuedouble;
        size_t n = strlen(e->string);
        memcpy(w, e->string, n + 1);
        bool was_new;
        if (str_map_put(&t->vocab, w, n, id, &was_new)) goto done;
        if (!was_new) { /* json.load keeps the last; refused rather than guessed */
            m2u_fail("%s: key \"%s\" appears twice", path, w);
            goto done;
        }
        if (t->id_str[id]) { /* the reference's id -> token dict would keep one of them */
            m2u_fail("%s: id %d is used twice (\"%s\", \"%s\")", path, id, t->id_str[id], w);
            goto done;
        }
        t->id_str[id] = w;
        t->id_len[id] = (uint32_t)n;
        w += n + 1;
    }
    t->n_vocab = count;
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

static int load_merges(m2u_bytebpe *t, const char *path) {
    char *text;
    size_t len;
    if (m2u_read_file(path, &text, &len)) return -1;
    size_t bad = m2u_utf8_valid_prefix((const unsigned char *)text, len);
    if (bad != len) {
        free(text);
        return m2u_fail("%s: not UTF-8 (invalid byte at offset %zu)", path, bad);
    }
    /* keys "a b" are written into one arena of at most len + 1 bytes */
    t->merge_arena = malloc(len + 1);
    if (!t->merge_arena) {
        free(text);
        return m2u_fail("%s: out of memory", path);
    }
    char *w = t->merge_arena;
    int rc = 0;
    /* split("\n")[1:-1]: the lines between the first "\n" and the last one */
    const char *p = memchr(text, '\n', len);
    const char *end = text + len;
    int32_t rank = 0;
    while (p && rc == 0) {
        const char *ls = p + 1, *nl = memchr(ls, '\n', (size_t)(end - ls));
        if (!nl) break; /* the last element is dropped */
        /* str.split(): the whitespace-separated parts of [ls, nl) */
        const char *part[3];
        size_t plen[3];
        int np = 0;
        for (const char *q = ls; q < nl;) {
            uint32_t c;
            int l = m2u_utf8_decode((const unsigned char *)q, &c);
            if (m2u_py_space(c)) {
                q += l;
                continue;
            }
            const char *s0 = q;
            while (q < nl) {
                l = m2u_utf8_decode((const unsigned char *)q, &c);
                if (m2u_py_space(c)) break;
                q += l;
            }
            if (np < 3) part[np] = s0, plen[np] = (size_t)(q - s0);
            np++;
        }
        if (np == 2) { /* other lines take a rank but never match a pair */
            char *key = w;
            memcpy(w, part[0], plen[0]);
            w += plen[0];
            *w++ = ' ';
            memcpy(w, part[1], plen[1]);
            w += plen[1];
            rc = str_map_put(&t->merges, key, plen[0] + 1 + plen[1], rank, NULL); /* a repeat keeps the last */
        }
        if (rank == INT32_MAX - 1) rc = m2u_fail("%s: too many merges", path);
        rank++;
        p = nl;
    }
    free(text);
    return rc;
}

static int add_added(m2u_bytebpe *t, const char *content, int32_t id, bool lstrip, bool rstrip, bool single_word,
                     bool special) {
    size_t n = strlen(content);
    if (!n) return 0; /* Trie.add ignores an empty word */
    if (m2u_utf8_valid_prefix((const unsigned char *)content, n) != n)
        return m2u_fail("added token is not valid UTF-8");
    int k = str_map_find(&t->added_map, content, n);
    if (k >= 0) { /* the same content again: the later entry wins, as in the reference's dicts */
        t->added[k].id = id;
        t->added[k].lstrip = lstrip, t->added[k].rstrip = rstrip, t->added[k].single_word = single_word;
        t->added[k].special = special;
        return 0;
    }
    bb_added *v = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *v);
    if (!v) return m2u_fail("out of memory (added tokens)");
    t->added = v;
    bb_added *a = &t->added[t->n_added];
    *a = (bb_added){.content = m2u_tj_dup(content, n), .len = n, .cps = malloc((n + 1) * sizeof(uint32_t)), .id = id,
                    .lstrip = lstrip, .rstrip = rstrip, .single_word = single_word, .special = special};
    if (!a->content || !a->cps) {
        free(a->content);
        free(a->cps);
        return m2u_fail("out of memory (added tokens)");
    }
    for (size_t i = 0; i < n;) i += (size_t)m2u_utf8_decode((const unsigned char *)content + i, &a->cps[a->ncp++]);
    t->n_added++;
    /* the map's keys borrow the contents, whose pointers realloc of the array does not move */
    return str_map_put(&t->added_map, a->content, n, t->n_added - 1, NULL);
}

/* A special token's name in tokenizer_config.json: a string or an AddedToken object. */
static int config_token(const cJSON *cfg, const char *origin, const char *key, char **out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (m2u_tj_null(j)) return 0;
    const cJSON *c = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, "content") : j;
    if (!cJSON_IsString(c)) return m2u_fail("%s: key '%s' must be a string or an object with a content", origin, key);
    free(*out);
    *out = m2u_tj_dup(c->valuestring, strlen(c->valuestring));
    return *out ? 0 : m2u_fail("out of memory");
}

static int load_config(m2u_bytebpe *t, const char *path) {
    for (int k = 0; k < N_SP; k++) {
        t->sp_name[k] = m2u_tj_dup(SP_DEFAULT[k], strlen(SP_DEFAULT[k]));
        if (!t->sp_name[k]) return m2u_fail("out of memory");
    }
    cJSON *cfg = NULL;
    if (path && m2u_json_load(path, 1, &cfg)) return -1;
    int rc = -1;
    bool have_decoder = false;
    if (cfg) {
        const char *cls, *errors;
        int aps = 0, clean = 0;
        double mml;
        if (m2u_json_str(cfg, path, "tokenizer_class", NULL, &cls) || m2u_json_str(cfg, path, "errors", "replace", &errors) ||
            m2u_json_bool(cfg, path, "add_prefix_space", 0, &aps) ||
            m2u_json_bool(cfg, path, "clean_up_tokenization_spaces", 0, &clean) ||
            m2u_json_num(cfg, path, "model_max_length", 0, 1e30, &mml))
            goto done;
        if (cls && strcmp(cls, "RobertaTokenizer") && strcmp(cls, "RobertaTokenizerFast")) {
            m2u_fail("%s: tokenizer_class \"%s\" is not supported (only RobertaTokenizer)", path, cls);
            goto done;
        }
        if (strcmp(errors, "replace")) {
            m2u_fail("%s: errors \"%s\" is not supported (only \"replace\")", path, errors);
            goto done;
        }
        t->add_prefix_space = aps, t->clean_up = clean;
        t->model_max_length = mml >= 1 && mml < 1e29 ? (size_t)mml : 0;
        for (int k = 0; k < N_SP; k++)
            if (config_token(cfg, path, SP_KEYS[k], &t->sp_name[k])) goto done;
        const cJSON *dec = cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder");
        if (!m2u_tj_null(dec)) {
            if (!cJSON_IsObject(dec)) {
                m2u_fail("%s: added_tokens_decoder must be an object", path);
                goto done;
            }
            have_decoder = true;
            const cJSON *e;
            cJSON_ArrayForEach(e, dec) {
                char *endp;
                long id = strtol(e->string, &endp, 10);
                const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
                if (*endp || endp == e->string || id < 0 || id >= MAX_ID || !cJSON_IsString(c)) {
                    m2u_fail("%s: added_tokens_decoder[\"%s\"] needs an id in [0, 2^26) and a content", path,
                             e->string);
                    goto done;
                }
                bool f[4] = {false, false, false, false};
                static const char *const keys[4] = {"lstrip", "rstrip", "single_word", "special"};
                for (int k = 0; k < 4; k++)
                    if (m2u_tj_bool(e, keys[k], "added_tokens_decoder[]", &f[k])) goto done;
                if (add_added(t, c->valuestring, (int32_t)id, f[0], f[1], f[2], f[3])) goto done;
            }
        }
    }
    /* The named special tokens not yet added, as RobertaTokenizer's __init__ adds them (<mask> with lstrip
     * when it comes from the defaults); their ids are their vocab.json ids. */
    for (int k = 0; k < N_SP; k++) {
        const char *name = t->sp_name[k];
        if (str_map_find(&t->added_map, name, strlen(name)) >= 0) continue;
        int id = str_map_find(&t->vocab, name, strlen(name));
        if (id < 0) {
            m2u_fail("%s: the special token \"%s\" (%s) is not in vocab.json", path ? path : "defaults", name,
                     SP_KEYS[k]);
            goto done;
        }
        bool lstrip = k == SP_MASK && !have_decoder;
        if (add_added(t, name, id, lstrip, false, false, true)) goto done;
    }
    for (int k = 0; k < N_SP; k++) t->sp_id[k] = m2u_bytebpe_token_to_id(t, t->sp_name[k]);
    rc = 0;
done:
    cJSON_Delete(cfg);
    return rc;
}

int m2u_bytebpe_load_files(const char *vocab_json, const char *merges_txt, const char *config_path,
                           m2u_bytebpe **out) {
    *out = NULL;
    m2u_bytebpe *t = calloc(1, sizeof *t);
    if (!t) return m2u_fail("out of memory");
    m2u_bl_byte_map(t->byte_cp, t->cp_byte);
    if (load_vocab(t, vocab_json) || load_merges(t, merges_txt) || load_config(t, config_path)) {
        m2u_bytebpe_free(t);
        return -1;
    }
    *out = t;
    return 0;
}

int m2u_bytebpe_load(const char *dir, m2u_bytebpe **out) {
    *out = NULL;
    char *v = m2u_path_join(dir, "vocab.json"), *m = m2u_path_join(dir, "merges.txt"),
         *c = m2u_path_join(dir, "tokenizer_config.json");
    int rc = v && m && c ? m2u_bytebpe_load_files(v, m, m2u_file_exists(c) ? c : NULL, out)
                         : m2u_fail("%s: out of memory", dir);
    free(v);
    free(m);
    free(c);
    return rc;
}
