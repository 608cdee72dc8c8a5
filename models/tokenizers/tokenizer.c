/* Hugging Face tokenizer.json (BPE) encoder/decoder, bit-compatible with `tokenizers` 0.20.3.
 *
 * The pipeline mirrors TokenizerImpl::encode_single_sequence step by step, because every
 * shortcut we tried to reason about (normalising the whole text once, treating added tokens as
 * vocabulary lookups, ...) changes ids in corner cases:
 *
 *   1. split the raw text on the added tokens that are NOT "normalized" (leftmost-longest match,
 *      with their single_word / lstrip / rstrip rules);
 *   2. normalise each remaining piece on its own (so Prepend("▁") adds a "▁" to EVERY piece, e.g.
 *      "a<s>b" -> "▁a", <s>, "▁b") and split it on the "normalized" added tokens, whose patterns
 *      are the tokens' contents run through the same normaliser (so "[AUD0]" is matched as
 *      "▁[AUD0]" by the legacy LLaMA normaliser: a quirk of the reference we reproduce);
 *   3. pre-tokenise (nothing, or Metaspace);
 *   4. BPE each word: one symbol per character (unknown characters -> their UTF-8 bytes as
 *      <0xXX> tokens, else <unk>), then merge the lowest-ranked adjacent pair until none is left,
 *      using a min-heap over a linked list of symbols exactly as HF's Word::merge_all does
 *      (including how stale heap entries are recognised), so long words cost O(n log n);
 *   5. the TemplateProcessing post-processor adds <s> when asked.
 *
 * Decoding runs the decoder chain on the token strings (Replace, ByteFallback, Fuse, Strip,
 * Metaspace).  Anything else in tokenizer.json is refused at load with a message naming the file
 * and the field, rather than silently giving different ids. */
#include "tokenizer.h"

#include "tokenizer_json.h"

#include "utf8_util.h"

#include "fileio.h"
#include "m2u_error.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Ids above this are refused at load: they would only size the id -> token tables absurdly. */
#define MAX_TOKEN_ID (1 << 26)

/* ======================================================================== small utilities */



static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

/* UTF-8 decoding, strict validation (as Rust's str) and encoding: utf8_util.h, shared with the
 * Unigram tokenizer. */

/* Unicode White_Space: what Rust's regex \s matches (used by lstrip / rstrip). */
static bool is_unicode_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

static bool is_word_char(uint32_t c); /* Rust regex \w; table at the end of the file */

/* ======================================================================== hash tables */

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64: short keys, good enough spread */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

/* String -> int, open addressing.  Keys are borrowed: they must outlive the map. */
typedef struct {
    const char *key;
    uint32_t len;
    int32_t val;
} str_slot;

typedef struct {
    str_slot *slots;
    size_t cap, count; /* cap is a power of two (or 0) */
} str_map;

static int str_map_find(const str_map *m, const char *s, size_t n) {
    if (!m->cap) return -1;
    size_t mask = m->cap - 1;
    for (size_t i = hash_bytes(s, n) & mask;; i = (i + 1) & mask) {
        const str_slot *e = &m->slots[i];
        if (!e->key) return -1;
        if (e->len == n && memcmp(e->key, s, n) == 0) return e->val;
    }
}

static int str_map_grow(str_map *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    str_slot *slots = calloc(cap, sizeof *slots);
    if (!slots) return m2u_fail("out of memory (hash table of %zu)", cap);
    for (size_t j = 0; j < m->cap; j++) {
        str_slot e = m->slots[j];
        if (!e.key) continue;
        size_t i = hash_bytes(e.key, e.len) & (cap - 1);
        while (slots[i].key) i = (i + 1) & (cap - 1);
        slots[i] = e;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

/* Insert or overwrite.  *was_new (optional) tells which. */
static int str_map_put(str_map *m, const char *key, size_t n, int32_t val, bool *was_new) {
    if ((m->count + 1) * 2 > m->cap && str_map_grow(m)) return -1;
    size_t mask = m->cap - 1;
    size_t i = hash_bytes(key, n) & mask;
    for (;; i = (i + 1) & mask) {
        str_slot *e = &m->slots[i];
        if (!e->key) {
            e->key = key;
            e->len = (uint32_t)n;
            e->val = val;
            m->count++;
            if (was_new) *was_new = true;
            return 0;
        }
        if (e->len == n && memcmp(e->key, key, n) == 0) {
            e->val = val;
            if (was_new) *was_new = false;
            return 0;
        }
    }
}

/* (left id, right id) -> (rank, merged id). */
typedef struct {
    int32_t a, b; /* a == -1: empty slot */
    uint32_t rank;
    int32_t new_id;
} pair_slot;

typedef struct {
    pair_slot *slots;
    size_t cap, count;
} pair_map;

static inline size_t pair_hash(int32_t a, int32_t b) {
    uint64_t x = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x;
}

static inline const pair_slot *pair_map_find(const pair_map *m, int32_t a, int32_t b) {
    if (!m->cap) return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = pair_hash(a, b) & mask;; i = (i + 1) & mask) {
        const pair_slot *e = &m->slots[i];
        if (e->a < 0) return NULL;
        if (e->a == a && e->b == b) return e;
    }
}

static int pair_map_init(pair_map *m, size_t expected) {
    size_t cap = 64;
    while (cap < expected * 2) cap *= 2;
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) return m2u_fail("out of memory (merge table of %zu)", cap);
    for (size_t i = 0; i < cap; i++) m->slots[i].a = -1;
    m->cap = cap;
    m->count = 0;
    return 0;
}

/* Sized once from the merge count, so it never needs to grow.  A repeated pair overwrites the
 * earlier entry: HF collects the merges into a HashMap, where the last one wins. */
static void pair_map_put(pair_map *m, int32_t a, int32_t b, uint32_t rank, int32_t new_id) {
    size_t mask = m->cap - 1;
    size_t i = pair_hash(a, b) & mask;
    while (m->slots[i].a >= 0 && !(m->slots[i].a == a && m->slots[i].b == b)) i = (i + 1) & mask;
    if (m->slots[i].a < 0) m->count++;
    m->slots[i] = (pair_slot){a, b, rank, new_id};
}

/* ======================================================================== tokenizer state */

typedef struct {
    char *content; /* owned, NUL-terminated */
    size_t len;
    int32_t id;
    bool special, single_word, lstrip, rstrip, normalized;
} added_token;

typedef struct {
    added_token *v;
    int n, cap;
} added_list;

/* One pattern of an added-token matcher (HF's AhoCorasick, MatchKind::LeftmostLongest). */
typedef struct {
    char *pat; /* owned */
    size_t len;
    int32_t id;
    int order; /* insertion order: breaks ties between equal patterns like the automaton does */
} match_pat;

typedef struct {
    match_pat *pats; /* sorted by first byte, then longest first, then insertion order */
    int n;
    int first[257]; /* patterns starting with byte b are pats[first[b] .. first[b+1]) */
} matcher;

typedef enum { NORM_PREPEND, NORM_REPLACE } norm_kind;
typedef struct {
    norm_kind kind;
    char *a; /* PREPEND: the text */
    size_t alen;
    m2u_tj_replace rep; /* REPLACE */
} norm_op;

typedef m2u_tj_prepend prepend_scheme;

typedef enum { DEC_REPLACE, DEC_BYTE_FALLBACK, DEC_FUSE, DEC_STRIP, DEC_METASPACE } dec_kind;
typedef struct {
    dec_kind kind;
    m2u_tj_replace rep;   /* REPLACE */
    uint32_t ch;          /* STRIP: content char; METASPACE: replacement */
    size_t start, stop;   /* STRIP */
    prepend_scheme scheme; /* METASPACE */
} dec_op;

#define TPL_SEQUENCE M2U_TJ_TPL_SEQUENCE /* where the encoded text goes in the template */

struct m2u_tokenizer {
    /* --- BPE model --- */
    char *vocab_arena;   /* all vocabulary strings, NUL-separated */
    const char **id_str; /* id -> string (NULL for ids the vocabulary skips) */
    uint32_t *id_len;
    int32_t n_id;   /* size of id_str: largest model id + 1 */
    int32_t n_vocab; /* number of entries (HF get_vocab_size): new added ids start here */
    str_map vocab;
    pair_map merges;
    int32_t byte_id[256]; /* "<0xXX>" ids for byte fallback, -1 if absent */
    char *unk_token;      /* NULL: none (unknown characters are then dropped, as HF does) */
    bool fuse_unk, byte_fallback, ignore_merges;

    /* --- added vocabulary (mirrors tokenizers' AddedVocabulary) --- */
    added_list specials; /* special tokens in the order given */
    added_list classic;  /* the other added tokens in the order given */
    added_list records;  /* id -> token (added_tokens_map_r); content -> id through `added` */
    str_map added;       /* content -> id; keys borrow records' contents */
    str_map special_set; /* contents of special tokens; keys borrow `specials` */
    int32_t *record_of_id; /* id -> index into records, -1 */
    int32_t n_record_of_id;
    matcher split_raw;  /* non-normalized tokens, matched on the raw text */
    matcher split_norm; /* normalized tokens, matched on each normalised piece */

    /* --- pipeline --- */
    norm_op *norm;
    int n_norm;
    bool metaspace; /* pre_tokenizer */
    char ms_rep[4];
    int ms_rep_len;
    prepend_scheme ms_scheme;
    bool ms_split;
    bool has_template;
    int32_t *tpl; /* single template: ids, with TPL_SEQUENCE where the text goes */
    int n_tpl;
    bool has_decoder;
    dec_op *dec;
    int n_dec;
};

/* ======================================================================== normaliser */

/* Apply the normaliser Sequence to s[0..n) into out (cleared first). */
static int normalize(const m2u_tokenizer *tok, const char *s, size_t n, m2u_strbuf *out) {
    out->n = 0;
    if (m2u_tj_put(out, s, n)) return -1;
    m2u_strbuf tmp = {0};
    for (int k = 0; k < tok->n_norm; k++) {
        const norm_op *op = &tok->norm[k];
        tmp.n = 0;
        if (op->kind == NORM_PREPEND) {
            if (out->n == 0) continue; /* Prepend leaves an empty string empty */
            if (m2u_tj_put(&tmp, op->a, op->alen) || m2u_tj_put(&tmp, out->s, out->n)) goto fail;
        } else if (m2u_tj_replace_apply(&op->rep, out->s, out->n, &tmp)) {
            goto fail;
        }
        m2u_strbuf t = *out;
        *out = tmp;
        tmp = t;
    }
    free(tmp.s);
    return 0;
fail:
    free(tmp.s);
    return -1;
}

/* ======================================================================== added-token matching */

static void matcher_free(matcher *m) {
    for (int i = 0; i < m->n; i++) free(m->pats[i].pat);
    free(m->pats);
    memset(m, 0, sizeof *m);
}

static int cmp_pat(const void *pa, const void *pb) {
    const match_pat *a = pa, *b = pb;
    unsigned char fa = (unsigned char)a->pat[0], fb = (unsigned char)b->pat[0];
    if (fa != fb) return fa < fb ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->order < b->order ? -1 : (a->order > b->order);
}

static void matcher_index(matcher *m) {
    qsort(m->pats, (size_t)m->n, sizeof *m->pats, cmp_pat);
    int j = 0;
    for (int b = 0; b <= 256; b++) {
        while (j < m->n && (unsigned char)m->pats[j].pat[0] < b) j++;
        m->first[b] = j;
    }
}

/* Leftmost-longest match at or after `from`: returns the pattern index or -1. */
static int matcher_find(const matcher *m, const char *s, size_t n, size_t from, size_t *mstart) {
    if (!m->n) return -1;
    for (size_t i = from; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        for (int k = m->first[c]; k < m->first[c + 1]; k++) {
            const match_pat *p = &m->pats[k];
            if (p->len <= n - i && memcmp(s + i, p->pat, p->len) == 0) {
                *mstart = i;
                return k; /* first hit is the longest (patterns sorted longest first) */
            }
        }
    }
    return -1;
}

static const added_token *record_for_id(const m2u_tokenizer *tok, int32_t id) {
    if (id < 0 || id >= tok->n_record_of_id || tok->record_of_id[id] < 0) return NULL;
    return &tok->records.v[tok->record_of_id[id]];
}

typedef struct {
    size_t start, stop;
    int32_t id; /* -1: plain text */
} split;

typedef struct {
    split *v;
    size_t n, cap;
} split_vec;

static int splits_push(split_vec *sv, size_t start, size_t stop, int32_t id) {
    if (sv->n == sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 16;
        split *v = realloc(sv->v, cap * sizeof *v);
        if (!v) return m2u_fail("out of memory (splits)");
        sv->v = v;
        sv->cap = cap;
    }
    sv->v[sv->n++] = (split){start, stop, id};
    return 0;
}

/* AddedVocabulary::find_matches: cut s into plain pieces and added tokens.  The rules are
 * reproduced literally, including that the automaton resumes after the match it reported (not
 * after an rstrip extension) and that matches refused by single_word are simply skipped. */
static int find_matches(const m2u_tokenizer *tok, const matcher *m, const char *s, size_t n, split_vec *out) {
    out->n = 0;
    if (n == 0) return splits_push(out, 0, 0, -1);
    size_t start_offset = 0, from = 0, mstart;
    int k;
    while ((k = matcher_find(m, s, n, from, &mstart)) >= 0) {
        const match_pat *p = &m->pats[k];
        size_t start = mstart, stop = mstart + p->len;
        from = stop;
        const added_token *t = record_for_id(tok, p->id);
        if (t && t->single_word) {
            bool start_space = true, stop_space = true;
            if (start > 0) { /* is the character before the match a word character? */
                size_t j = start - 1;
                while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
                uint32_t cp;
                m2u_utf8_decode((const unsigned char *)s + j, &cp);
                start_space = !is_word_char(cp);
            }
            if (stop < n) {
                uint32_t cp;
                m2u_utf8_decode((const unsigned char *)s + stop, &cp);
                stop_space = !is_word_char(cp);
            }
            if (!start_space || !stop_space) continue;
        }
        if (t && t->lstrip) {
            size_t j = start; /* start of the whitespace run ending at `start` */
            while (j > 0) {
                size_t c = j - 1;
                while (c > 0 && ((unsigned char)s[c] & 0xC0) == 0x80) c--;
                uint32_t cp;
                m2u_utf8_decode((const unsigned char *)s + c, &cp);
                if (!is_unicode_space(cp)) break;
                j = c;
            }
            start = j > start_offset ? j : start_offset;
        }
        if (t && t->rstrip) {
            while (stop < n) {
                uint32_t cp;
                int l = m2u_utf8_decode((const unsigned char *)s + stop, &cp);
                if (!is_unicode_space(cp)) break;
                stop += (size_t)l;
            }
        }
        if (start_offset < start && splits_push(out, start_offset, start, -1)) return -1;
        if (splits_push(out, start, stop, p->id)) return -1;
        start_offset = stop;
    }
    if (start_offset != n && splits_push(out, start_offset, n, -1)) return -1;
    return 0;
}

/* ======================================================================== added vocabulary */

static void added_list_free(added_list *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i].content);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int added_list_push(added_list *l, const added_token *t) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 8;
        added_token *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return m2u_fail("out of memory (added tokens)");
        l->v = v;
        l->cap = cap;
    }
    added_token c = *t;
    c.content = dup_n(t->content, t->len);
    if (!c.content) return m2u_fail("out of memory (added tokens)");
    l->v[l->n++] = c;
    return 0;
}

static bool added_equal(const added_token *a, const added_token *b) { /* AddedToken's derived PartialEq */
    return a->len == b->len && memcmp(a->content, b->content, a->len) == 0 && a->special == b->special &&
           a->single_word == b->single_word && a->lstrip == b->lstrip && a->rstrip == b->rstrip &&
           a->normalized == b->normalized;
}

int m2u_tokenizer_token_to_id(const m2u_tokenizer *tok, const char *token) {
    if (!tok || !token) return -1;
    size_t n = strlen(token);
    int id = str_map_find(&tok->added, token, n);
    return id >= 0 ? id : str_map_find(&tok->vocab, token, n);
}

static int32_t token_to_id_n(const m2u_tokenizer *tok, const char *s, size_t n) {
    int id = str_map_find(&tok->added, s, n);
    return id >= 0 ? id : str_map_find(&tok->vocab, s, n);
}

/* AddedVocabulary::refresh_added_tokens: rebuild both matchers from specials ++ classic. */
static int refresh_added(m2u_tokenizer *tok) {
    matcher_free(&tok->split_raw);
    matcher_free(&tok->split_norm);
    int total = tok->specials.n + tok->classic.n;
    if (total == 0) return 0;
    tok->split_raw.pats = calloc((size_t)total, sizeof(match_pat));
    tok->split_norm.pats = calloc((size_t)total, sizeof(match_pat));
    if (!tok->split_raw.pats || !tok->split_norm.pats) return m2u_fail("out of memory (added tokens)");
    m2u_strbuf nb = {0};
    for (int i = 0; i < total; i++) {
        const added_token *t = i < tok->specials.n ? &tok->specials.v[i] : &tok->classic.v[i - tok->specials.n];
        int32_t id = token_to_id_n(tok, t->content, t->len);
        if (id < 0) {
            free(nb.s);
            return m2u_fail("added token \"%s\" has no id", t->content);
        }
        matcher *m = t->normalized ? &tok->split_norm : &tok->split_raw;
        const char *pat = t->content;
        size_t plen = t->len;
        if (t->normalized) {
            if (normalize(tok, t->content, t->len, &nb)) {
                free(nb.s);
                return -1;
            }
            pat = nb.s;
            plen = nb.n;
        }
        if (plen == 0) continue; /* cannot match anything useful */
        match_pat *p = &m->pats[m->n];
        p->pat = dup_n(pat, plen);
        if (!p->pat) {
            free(nb.s);
            return m2u_fail("out of memory (added tokens)");
        }
        p->len = plen;
        p->id = id;
        p->order = m->n++;
    }
    free(nb.s);
    matcher_index(&tok->split_raw);
    matcher_index(&tok->split_norm);
    return 0;
}

static int set_record(m2u_tokenizer *tok, int32_t id, const added_token *t) {
    if (id >= tok->n_record_of_id) {
        int32_t n = tok->n_record_of_id ? tok->n_record_of_id : 1024;
        while (n <= id) n *= 2;
        int32_t *r = realloc(tok->record_of_id, (size_t)n * sizeof *r);
        if (!r) return m2u_fail("out of memory (added tokens)");
        for (int32_t i = tok->n_record_of_id; i < n; i++) r[i] = -1;
        tok->record_of_id = r;
        tok->n_record_of_id = n;
    }
    int32_t ri = tok->record_of_id[id];
    if (ri >= 0) { /* replace the token kept for this id; keep its content buffer (same text) */
        added_token *old = &tok->records.v[ri];
        if (old->len == t->len && memcmp(old->content, t->content, t->len) == 0) {
            char *keep = old->content;
            *old = *t;
            old->content = keep;
            return 0;
        }
        /* Different text on the same id: only possible with a broken vocabulary; HF would keep
         * two names for one id.  The content -> id entry of the old text stays valid. */
    }
    if (added_list_push(&tok->records, t)) return -1;
    tok->record_of_id[id] = tok->records.n - 1;
    return 0;
}

/* AddedVocabulary::add_tokens, step for step. */
static int add_tokens(m2u_tokenizer *tok, const added_token *tokens, int n) {
    for (int i = 0; i < n; i++) {
        const added_token *t = &tokens[i];
        if (t->special && t->len && str_map_find(&tok->special_set, t->content, t->len) < 0) {
            if (added_list_push(&tok->specials, t)) return -1;
            const added_token *s = &tok->specials.v[tok->specials.n - 1];
            if (str_map_put(&tok->special_set, s->content, s->len, 1, NULL)) return -1;
        }
    }
    for (int i = 0; i < n; i++) {
        added_token t = tokens[i];
        if (t.len == 0) continue;
        bool known = false;
        for (int r = 0; r < tok->records.n && !known; r++) known = added_equal(&tok->records.v[r], &t);
        if (known) continue;
        int32_t id = token_to_id_n(tok, t.content, t.len);
        if (id < 0) { /* a new id after both the model vocabulary and the added tokens */
            int32_t max = -1;
            for (int r = 0; r < tok->records.n; r++)
                if (tok->records.v[r].id > max) max = tok->records.v[r].id;
            if (max < 0)
                id = tok->n_vocab;
            else
                id = (max >= tok->n_vocab || tok->n_vocab == 0) ? max + 1 : tok->n_vocab;
            if (id >= MAX_TOKEN_ID) return m2u_fail("too many added tokens");
        }
        t.id = id;
        if (set_record(tok, id, &t)) return -1;
        const added_token *rec = record_for_id(tok, id);
        if (str_map_put(&tok->added, rec->content, rec->len, id, NULL)) return -1;
        if (str_map_find(&tok->special_set, t.content, t.len) < 0 && added_list_push(&tok->classic, &t)) return -1;
    }
    return refresh_added(tok);
}

int m2u_tokenizer_add_tokens(m2u_tokenizer *tok, const char *const *tokens, int n, int special) {
    if (!tok || (n > 0 && !tokens) || n < 0) return m2u_fail("m2u_tokenizer_add_tokens: bad arguments");
    added_token *list = calloc((size_t)(n ? n : 1), sizeof *list);
    if (!list) return m2u_fail("out of memory (added tokens)");
    for (int i = 0; i < n; i++) {
        if (!tokens[i]) {
            free(list);
            return m2u_fail("m2u_tokenizer_add_tokens: token %d is NULL", i);
        }
        size_t len = strlen(tokens[i]);
        if (m2u_utf8_valid_prefix((const unsigned char *)tokens[i], len) != len) {
            free(list);
            return m2u_fail("m2u_tokenizer_add_tokens: token %d is not valid UTF-8", i);
        }
        /* What tokenizers' add_tokens / add_special_tokens build from a plain string:
         * special tokens are matched on the raw text, the others after normalisation. */
        list[i] = (added_token){.content = (char *)tokens[i], .len = len, .special = special != 0,
                                .normalized = special == 0};
    }
    int rc = add_tokens(tok, list, n);
    free(list);
    return rc;
}

/* ======================================================================== BPE */

typedef struct {
    int32_t c, prev, next, len; /* len 0: merged into its left neighbour */
} symbol;

typedef struct {
    uint32_t rank, pos;
    int32_t new_id;
} hmerge;

typedef struct { /* per-call scratch, so encode can stay const and thread-safe */
    symbol *sym;
    size_t n_sym, cap_sym;
    hmerge *heap;
    size_t n_heap, cap_heap;
    m2u_strbuf norm, word;
    split_vec raw, sub;
} work;

static void work_free(work *w) {
    free(w->sym);
    free(w->heap);
    free(w->norm.s);
    free(w->word.s);
    free(w->raw.v);
    free(w->sub.v);
}

static inline bool hm_less(const hmerge *a, const hmerge *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static int heap_push(work *w, hmerge m) {
    if (w->n_heap == w->cap_heap) {
        size_t cap = w->cap_heap ? w->cap_heap * 2 : 256;
        hmerge *h = realloc(w->heap, cap * sizeof *h);
        if (!h) return m2u_fail("out of memory (merge queue)");
        w->heap = h;
        w->cap_heap = cap;
    }
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hm_less(&m, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = m;
    return 0;
}

static hmerge heap_pop(work *w) {
    hmerge top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        const hmerge *bv = &last;
        if (l < n && hm_less(&w->heap[l], bv)) best = l, bv = &w->heap[l];
        if (l + 1 < n && hm_less(&w->heap[l + 1], bv)) best = l + 1;
        if (best == i) break;
        w->heap[i] = w->heap[best];
        i = best;
    }
    if (n) w->heap[i] = last;
    return top;
}

static int add_symbol(work *w, int32_t c, int32_t len) {
    if (w->n_sym == w->cap_sym) {
        size_t cap = w->cap_sym ? w->cap_sym * 2 : 256;
        symbol *s = realloc(w->sym, cap * sizeof *s);
        if (!s) return m2u_fail("out of memory (symbols)");
        w->sym = s;
        w->cap_sym = cap;
    }
    int32_t i = (int32_t)w->n_sym;
    if (i > 0) w->sym[i - 1].next = i;
    w->sym[w->n_sym++] = (symbol){c, i - 1, -1, len};
    return 0;
}

/* Queue the merge of the pair starting at symbol `pos`, if the pair has a merge rule. */
static int queue_pair(const m2u_tokenizer *tok, work *w, int32_t pos) {
    const symbol *a = &w->sym[pos];
    if (a->next < 0) return 0;
    const pair_slot *m = pair_map_find(&tok->merges, a->c, w->sym[a->next].c);
    if (!m) return 0;
    return heap_push(w, (hmerge){m->rank, (uint32_t)pos, m->new_id});
}

/* BPE::merge_word + Word::merge_all, then append the resulting ids. */
static int bpe_word(const m2u_tokenizer *tok, work *w, const char *s, size_t n, m2u_tj_ids *out) {
    if (n == 0) return 0;
    /* Normalisation can triple the size (" " -> "▁"): keep symbol offsets within int32. */
    if (n >= (size_t)INT32_MAX) return m2u_fail("m2u_tokenizer_encode: word of %zu bytes is too long", n);
    if (tok->ignore_merges) {
        int id = str_map_find(&tok->vocab, s, n);
        if (id >= 0) return m2u_tj_ids_push(out, id);
    }
    w->n_sym = 0;
    w->n_heap = 0;
    int32_t unk_id = -1, unk_len = 0; /* pending <unk>, emitted before the next known character */
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int cl = m2u_utf8_decode((const unsigned char *)s + i, &cp);
        int id = str_map_find(&tok->vocab, s + i, (size_t)cl);
        if (id >= 0) {
            if (unk_id >= 0 && add_symbol(w, unk_id, unk_len)) return -1;
            unk_id = -1;
            if (add_symbol(w, id, cl)) return -1;
        } else {
            bool done = false;
            if (tok->byte_fallback) {
                bool all = true;
                for (int k = 0; k < cl; k++) all = all && tok->byte_id[(unsigned char)s[i + k]] >= 0;
                if (all) { /* note: HF does not flush a pending <unk> here, so neither do we */
                    for (int k = 0; k < cl; k++)
                        if (add_symbol(w, tok->byte_id[(unsigned char)s[i + k]], 1)) return -1;
                    done = true;
                }
            }
            if (!done && tok->unk_token) {
                int uid = str_map_find(&tok->vocab, tok->unk_token, strlen(tok->unk_token));
                if (uid < 0) return m2u_fail("unk token \"%s\" is not in the vocabulary", tok->unk_token);
                if (unk_id >= 0 && tok->fuse_unk) {
                    unk_len += cl;
                } else {
                    if (unk_id >= 0 && add_symbol(w, unk_id, unk_len)) return -1;
                    unk_id = uid;
                    unk_len = cl;
                }
            } /* no unk token and no byte fallback: the character is dropped, as in HF */
        }
        i += (size_t)cl;
    }
    if (unk_id >= 0 && add_symbol(w, unk_id, unk_len)) return -1;

    for (int32_t i = 0; i + 1 < (int32_t)w->n_sym; i++)
        if (queue_pair(tok, w, i)) return -1;
    while (w->n_heap) {
        hmerge top = heap_pop(w);
        symbol *cur = &w->sym[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        int32_t next_pos = cur->next;
        symbol right = w->sym[next_pos];
        /* Stale entry?  HF compares the merged id, not the rank: reproduce that exactly. */
        const pair_slot *m = pair_map_find(&tok->merges, cur->c, right.c);
        if (!m || m->new_id != top.new_id) continue;
        cur->c = top.new_id;
        cur->len += right.len;
        cur->next = right.next;
        w->sym[next_pos].len = 0;
        if (right.next >= 0) w->sym[right.next].prev = (int32_t)top.pos;
        if (cur->prev >= 0 && queue_pair(tok, w, cur->prev)) return -1;
        if (queue_pair(tok, w, (int32_t)top.pos)) return -1;
    }
    for (size_t i = 0; i < w->n_sym; i++)
        if (w->sym[i].len && m2u_tj_ids_push(out, w->sym[i].c)) return -1;
    return 0;
}

/* ======================================================================== encode */

/* Pre-tokenise one normalised piece and run BPE on each word.  first: the piece starts at
 * offset 0 of the original text (Metaspace's prepend_scheme "first" tests exactly that). */
static int pretok_and_model(const m2u_tokenizer *tok, work *w, const char *s, size_t n, bool first, m2u_tj_ids *out) {
    if (!tok->metaspace) return bpe_word(tok, w, s, n, out);
    m2u_strbuf *b = &w->word;
    b->n = 0;
    size_t rl = (size_t)tok->ms_rep_len;
    bool starts = false;
    if (n > 0 && s[0] == ' ') starts = true;
    else if (n >= rl && memcmp(s, tok->ms_rep, rl) == 0) starts = true;
    bool prepend = tok->ms_scheme == M2U_TJ_PREPEND_ALWAYS || (tok->ms_scheme == M2U_TJ_PREPEND_FIRST && first);
    if (prepend && !starts && m2u_tj_put(b, tok->ms_rep, rl)) return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            if (m2u_tj_put(b, tok->ms_rep, rl)) return -1;
        } else if (m2u_tj_put(b, s + i, 1)) {
            return -1;
        }
    }
    if (!tok->ms_split) return bpe_word(tok, w, b->s, b->n, out);
    /* Split before every replacement character (MergedWithNext); empty pieces vanish. */
    size_t start = 0;
    for (size_t i = 1; i + rl <= b->n; i++) {
        if (memcmp(b->s + i, tok->ms_rep, rl) == 0) {
            if (bpe_word(tok, w, b->s + start, i - start, out)) return -1;
            start = i;
            i += rl - 1;
        }
    }
    return bpe_word(tok, w, b->s + start, b->n - start, out);
}

static int encode_text(const m2u_tokenizer *tok, work *w, const char *text, size_t len, m2u_tj_ids *out) {
    if (find_matches(tok, &tok->split_raw, text, len, &w->raw)) return -1;
    for (size_t r = 0; r < w->raw.n; r++) {
        split rs = w->raw.v[r];
        if (rs.stop <= rs.start) continue; /* empty splits are dropped */
        if (rs.id >= 0) {
            if (m2u_tj_ids_push(out, rs.id)) return -1;
            continue;
        }
        if (normalize(tok, text + rs.start, rs.stop - rs.start, &w->norm)) return -1;
        if (find_matches(tok, &tok->split_norm, w->norm.s, w->norm.n, &w->sub)) return -1;
        for (size_t k = 0; k < w->sub.n; k++) {
            split ns = w->sub.v[k];
            if (ns.stop <= ns.start) continue;
            if (ns.id >= 0) {
                if (m2u_tj_ids_push(out, ns.id)) return -1;
            } else if (pretok_and_model(tok, w, w->norm.s + ns.start, ns.stop - ns.start,
                                        rs.start == 0 && ns.start == 0, out)) {
                return -1;
            }
        }
    }
    return 0;
}

int m2u_tokenizer_encode(const m2u_tokenizer *tok, const char *text, size_t len, int add_special, int32_t **ids,
                         size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    if (!tok || (!text && len)) return m2u_fail("m2u_tokenizer_encode: bad arguments");
    if (len >= (size_t)INT32_MAX) return m2u_fail("m2u_tokenizer_encode: text too long (%zu bytes)", len);
    size_t bad = m2u_utf8_valid_prefix((const unsigned char *)text, len);
    if (bad != len) return m2u_fail("m2u_tokenizer_encode: invalid UTF-8 at byte %zu", bad);
    work w = {0};
    m2u_tj_ids seq = {0}, res = {0};
    int rc = encode_text(tok, &w, text ? text : "", len, &seq);
    if (rc == 0 && add_special && tok->has_template) {
        for (int i = 0; i < tok->n_tpl && rc == 0; i++) {
            if (tok->tpl[i] == TPL_SEQUENCE) {
                for (size_t k = 0; k < seq.n && rc == 0; k++) rc = m2u_tj_ids_push(&res, seq.v[k]);
            } else {
                rc = m2u_tj_ids_push(&res, tok->tpl[i]);
            }
        }
        free(seq.v);
        seq = res;
    }
    work_free(&w);
    if (rc) {
        free(seq.v);
        return -1;
    }
    if (!seq.v) { /* empty result: still hand back a valid pointer */
        seq.v = malloc(sizeof(int32_t));
        if (!seq.v) return m2u_fail("out of memory");
    }
    *ids = seq.v;
    *n_ids = seq.n;
    return 0;
}

/* ======================================================================== decode */

typedef struct {
    size_t off, len;
} span;

typedef struct { /* a list of strings stored back to back in one buffer */
    m2u_strbuf b;
    span *s;
    size_t n, cap;
} strlist;

static int sl_add(strlist *l, const char *p, size_t n) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        span *s = realloc(l->s, cap * sizeof *s);
        if (!s) return m2u_fail("out of memory (decode)");
        l->s = s;
        l->cap = cap;
    }
    size_t off = l->b.n;
    if (m2u_tj_put(&l->b, p, n)) return -1;
    l->s[l->n++] = (span){off, n};
    return 0;
}

/* Start a new string whose bytes are appended with m2u_tj_put(&l->b, ...), closed by sl_close. */
static int sl_open(strlist *l) { return sl_add(l, "", 0); }
static void sl_close(strlist *l) { l->s[l->n - 1].len = l->b.n - l->s[l->n - 1].off; }

static void sl_free(strlist *l) {
    free(l->b.s);
    free(l->s);
    memset(l, 0, sizeof *l);
}

static const char *sl_str(const strlist *l, size_t i) { return l->b.s + l->s[i].off; }

/* "<0xXX>" -> the byte, as ByteFallback parses it (u8::from_str_radix, which also takes "+X"). */
static int parse_byte_token(const char *t, size_t n) {
    if (n != 6 || memcmp(t, "<0x", 3) != 0 || t[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = t[i];
        int d;
        if (i == 3 && c == '+') continue;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

static int flush_bytes(strlist *out, const unsigned char *bytes, size_t nb) {
    if (nb == 0) return 0;
    if (m2u_utf8_valid_prefix(bytes, nb) == nb) return sl_add(out, (const char *)bytes, nb);
    for (size_t i = 0; i < nb; i++) /* invalid run: one U+FFFD per byte, like the reference */
        if (sl_add(out, "\xEF\xBF\xBD", 3)) return -1;
    return 0;
}

static int apply_decoder(const dec_op *op, const strlist *in, strlist *out) {
    switch (op->kind) {
    case DEC_REPLACE:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = sl_str(in, i);
            if (sl_open(out) || m2u_tj_replace_apply(&op->rep, s, in->s[i].len, &out->b)) return -1;
            sl_close(out);
        }
        return 0;
    case DEC_BYTE_FALLBACK: {
        unsigned char *bytes = malloc(in->n + 1);
        if (!bytes) return m2u_fail("out of memory (decode)");
        size_t nb = 0;
        int rc = 0;
        for (size_t i = 0; i < in->n && rc == 0; i++) {
            int v = parse_byte_token(sl_str(in, i), in->s[i].len);
            if (v >= 0) {
                bytes[nb++] = (unsigned char)v;
                continue;
            }
            rc = flush_bytes(out, bytes, nb);
            nb = 0;
            if (rc == 0) rc = sl_add(out, sl_str(in, i), in->s[i].len);
        }
        if (rc == 0) rc = flush_bytes(out, bytes, nb);
        free(bytes);
        return rc;
    }
    case DEC_FUSE:
        if (sl_open(out)) return -1;
        for (size_t i = 0; i < in->n; i++)
            if (m2u_tj_put(&out->b, sl_str(in, i), in->s[i].len)) return -1;
        sl_close(out);
        return 0;
    case DEC_STRIP:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = sl_str(in, i);
            size_t n = in->s[i].len, a = 0, e = n;
            char enc[4];
            size_t cl = (size_t)m2u_utf8_encode(op->ch, enc);
            for (size_t k = 0; k < op->start && a + cl <= e && memcmp(s + a, enc, cl) == 0; k++) a += cl;
            for (size_t k = 0; k < op->stop && e >= a + cl && memcmp(s + e - cl, enc, cl) == 0; k++) e -= cl;
            if (sl_add(out, s + a, e - a)) return -1;
        }
        return 0;
    case DEC_METASPACE: {
        char enc[4];
        size_t cl = (size_t)m2u_utf8_encode(op->ch, enc);
        for (size_t i = 0; i < in->n; i++) {
            const char *s = sl_str(in, i);
            size_t n = in->s[i].len;
            if (sl_open(out)) return -1;
            for (size_t j = 0; j < n;) {
                if (j + cl <= n && memcmp(s + j, enc, cl) == 0) {
                    /* the first token loses ALL its replacement characters, as in the reference */
                    if (!(i == 0 && op->scheme != M2U_TJ_PREPEND_NEVER) && m2u_tj_put(&out->b, " ", 1)) return -1;
                    j += cl;
                } else {
                    if (m2u_tj_put(&out->b, s + j, 1)) return -1;
                    j++;
                }
            }
            sl_close(out);
        }
        return 0;
    }
    }
    return m2u_fail("unknown decoder");
}

const char *m2u_tokenizer_id_to_token(const m2u_tokenizer *tok, int id) {
    if (!tok || id < 0) return NULL;
    const added_token *t = record_for_id(tok, id);
    if (t) return t->content;
    return id < tok->n_id ? tok->id_str[id] : NULL;
}

int m2u_tokenizer_decode(const m2u_tokenizer *tok, const int32_t *ids, size_t n_ids, int skip_special, char **text) {
    size_t len;
    return m2u_tokenizer_decode_n(tok, ids, n_ids, skip_special, text, &len);
}

int m2u_tokenizer_decode_n(const m2u_tokenizer *tok, const int32_t *ids, size_t n_ids, int skip_special, char **text,
                           size_t *len) {
    *text = NULL;
    *len = 0;
    if (!tok || (!ids && n_ids)) return m2u_fail("m2u_tokenizer_decode: bad arguments");
    strlist a = {0}, b = {0};
    int rc = 0;
    for (size_t i = 0; i < n_ids && rc == 0; i++) {
        const char *t = m2u_tokenizer_id_to_token(tok, ids[i]);
        if (!t) continue; /* unknown ids are skipped, as the reference does */
        size_t n = strlen(t);
        if (skip_special && str_map_find(&tok->special_set, t, n) >= 0) continue;
        rc = sl_add(&a, t, n);
    }
    m2u_strbuf res = {0};
    if (rc == 0 && tok->has_decoder) {
        for (int k = 0; k < tok->n_dec && rc == 0; k++) {
            b.n = 0;
            b.b.n = 0;
            rc = apply_decoder(&tok->dec[k], &a, &b);
            strlist t = a;
            a = b;
            b = t;
        }
        for (size_t i = 0; i < a.n && rc == 0; i++) rc = m2u_tj_put(&res, sl_str(&a, i), a.s[i].len);
    } else {
        for (size_t i = 0; i < a.n && rc == 0; i++) /* no decoder: tokens joined by spaces */
            rc = (i ? m2u_tj_put(&res, " ", 1) : 0) || m2u_tj_put(&res, sl_str(&a, i), a.s[i].len);
    }
    if (rc == 0) rc = m2u_tj_put(&res, "", 0); /* a valid string even when empty */
    sl_free(&a);
    sl_free(&b);
    if (rc) {
        free(res.s);
        return -1;
    }
    res.s[res.n] = '\0';
    *text = res.s;
    *len = res.n;
    return 0;
}

/* ======================================================================== small accessors */

int m2u_tokenizer_merge_ranks(const m2u_tokenizer *tok, int32_t *rank, int32_t n, int64_t *n_unlisted) {
    if (!tok || n < 0 || (n > 0 && !rank)) return m2u_fail("m2u_tokenizer_merge_ranks: bad arguments");
    for (int32_t i = 0; i < n; i++) rank[i] = -1;
    for (size_t i = 0; i < tok->merges.cap; i++) { /* the pair map holds each merge once (the last wins) */
        const pair_slot *e = &tok->merges.slots[i];
        if (e->a < 0 || e->new_id >= n) continue;
        if (rank[e->new_id] < 0 || e->rank < (uint32_t)rank[e->new_id]) rank[e->new_id] = (int32_t)e->rank;
    }
    if (!n_unlisted) return 0;
    int64_t bad = 0;
    for (int32_t id = 0; id < tok->n_id; id++) {
        const char *p = tok->id_str[id];
        size_t len = p ? tok->id_len[id] : 0;
        for (size_t k = 1; k < len; k++) {
            if (((unsigned char)p[k] & 0xC0) == 0x80) continue; /* inside a character */
            int ia = str_map_find(&tok->vocab, p, k), ib = str_map_find(&tok->vocab, p + k, len - k);
            if (ia >= 0 && ib >= 0 && !pair_map_find(&tok->merges, ia, ib)) {
                bad++;
                break;
            }
        }
    }
    *n_unlisted = bad;
    return 0;
}

int m2u_tokenizer_vocab_size(const m2u_tokenizer *tok) {
    if (!tok) return 0;
    int32_t n = tok->n_id;
    for (int r = 0; r < tok->records.n; r++)
        if (tok->records.v[r].id + 1 > n) n = tok->records.v[r].id + 1;
    return n;
}

/* The id the template puts before (bos) or after (eos) the text when it is a single special
 * token; otherwise the id of "<s>" / "</s>" if that is a special added token. */
static int template_edge_id(const m2u_tokenizer *tok, bool before, const char *fallback) {
    if (!tok) return -1;
    if (tok->has_template) {
        int seq = -1;
        for (int i = 0; i < tok->n_tpl; i++)
            if (tok->tpl[i] == TPL_SEQUENCE) seq = i;
        if (seq >= 0) {
            if (before && seq == 1) return tok->tpl[0];
            if (!before && seq == tok->n_tpl - 2) return tok->tpl[tok->n_tpl - 1];
        }
    }
    if (str_map_find(&tok->special_set, fallback, strlen(fallback)) >= 0)
        return m2u_tokenizer_token_to_id(tok, fallback);
    return -1;
}

int m2u_tokenizer_bos_id(const m2u_tokenizer *tok) { return template_edge_id(tok, true, "<s>"); }
int m2u_tokenizer_eos_id(const m2u_tokenizer *tok) { return template_edge_id(tok, false, "</s>"); }

/* ======================================================================== loading */

void m2u_tokenizer_free(m2u_tokenizer *tok) {
    if (!tok) return;
    free(tok->vocab_arena);
    free(tok->id_str);
    free(tok->id_len);
    free(tok->vocab.slots);
    free(tok->merges.slots);
    free(tok->unk_token);
    added_list_free(&tok->specials);
    added_list_free(&tok->classic);
    added_list_free(&tok->records);
    free(tok->added.slots);
    free(tok->special_set.slots);
    free(tok->record_of_id);
    matcher_free(&tok->split_raw);
    matcher_free(&tok->split_norm);
    for (int i = 0; i < tok->n_norm; i++) {
        free(tok->norm[i].a);
        m2u_tj_replace_free(&tok->norm[i].rep);
    }
    free(tok->norm);
    free(tok->tpl);
    for (int i = 0; i < tok->n_dec; i++) {
        m2u_tj_replace_free(&tok->dec[i].rep);
    }
    free(tok->dec);
    free(tok);
}


/* Optional boolean field: absent/null keeps *out. */



static int get_index(const cJSON *j, int64_t max, int32_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double v = j->valuedouble;
    if (!(v >= 0 && v < (double)max) || v != (double)(int64_t)v) return -1;
    *out = (int32_t)v;
    return 0;
}



static int parse_normalizer_one(void *ctx, const cJSON *n, const char *type, const char *where) {
    m2u_tokenizer *tok = ctx;
    norm_op op = {0};
    if (!strcmp(type, "Prepend")) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(n, "prepend");
        if (!cJSON_IsString(p)) return m2u_fail("%s.prepend must be a string", where);
        op.kind = NORM_PREPEND;
        op.alen = strlen(p->valuestring);
        op.a = dup_n(p->valuestring, op.alen);
        if (!op.a) return m2u_fail("out of memory");
    } else if (!strcmp(type, "Replace")) {
        op.kind = NORM_REPLACE;
        if (m2u_tj_parse_replace(n, where, false, &op.rep)) return -1;
    } else {
        return m2u_fail("%s: type \"%s\" is not supported (only Sequence, Prepend, Replace)", where, type);
    }
    norm_op *v = realloc(tok->norm, (size_t)(tok->n_norm + 1) * sizeof *v);
    if (!v) {
        free(op.a);
        m2u_tj_replace_free(&op.rep);
        return m2u_fail("out of memory");
    }
    tok->norm = v;
    tok->norm[tok->n_norm++] = op;
    return 0;
}

static int parse_normalizer(m2u_tokenizer *tok, const cJSON *n, const char *where) {
    return m2u_tj_each_part(n, where, "normalizers", "normalizer.normalizers[]", parse_normalizer_one, tok);
}

static int parse_decoder_one(void *ctx, const cJSON *d, const char *type, const char *where) {
    m2u_tokenizer *tok = ctx;
    dec_op op = {0};
    if (!strcmp(type, "Replace")) {
        op.kind = DEC_REPLACE;
        if (m2u_tj_parse_replace(d, where, false, &op.rep)) return -1;
    } else if (!strcmp(type, "ByteFallback")) {
        op.kind = DEC_BYTE_FALLBACK;
    } else if (!strcmp(type, "Fuse")) {
        op.kind = DEC_FUSE;
    } else if (!strcmp(type, "Strip")) {
        int32_t start, stop;
        op.kind = DEC_STRIP;
        if (m2u_tj_char(d, "content", where, &op.ch)) return -1;
        if (get_index(cJSON_GetObjectItemCaseSensitive(d, "start"), INT32_MAX, &start) ||
            get_index(cJSON_GetObjectItemCaseSensitive(d, "stop"), INT32_MAX, &stop))
            return m2u_fail("%s.start/stop must be non-negative integers", where);
        op.start = (size_t)start;
        op.stop = (size_t)stop;
    } else if (!strcmp(type, "Metaspace")) {
        op.kind = DEC_METASPACE;
        m2u_tj_metaspace ms;
        if (m2u_tj_parse_metaspace(d, where, &ms)) return -1;
        op.ch = ms.cp;
        op.scheme = ms.scheme;
    } else {
        return m2u_fail("%s: type \"%s\" is not supported (only Sequence, Replace, ByteFallback, Fuse, Strip, "
                        "Metaspace)",
                        where, type);
    }
    dec_op *v = realloc(tok->dec, (size_t)(tok->n_dec + 1) * sizeof *v);
    if (!v) {
        m2u_tj_replace_free(&op.rep);
        return m2u_fail("out of memory");
    }
    tok->dec = v;
    tok->dec[tok->n_dec++] = op;
    return 0;
}

static int parse_decoder(m2u_tokenizer *tok, const cJSON *d, const char *where) {
    return m2u_tj_each_part(d, where, "decoders", "decoder.decoders[]", parse_decoder_one, tok);
}

static int parse_pre_tokenizer(m2u_tokenizer *tok, const cJSON *p) {
    const char *type = m2u_tj_type(p);
    if (!type || strcmp(type, "Metaspace"))
        return m2u_fail("pre_tokenizer: type \"%s\" is not supported (only null or Metaspace)", type ? type : "?");
    m2u_tj_metaspace ms;
    if (m2u_tj_parse_metaspace(p, "pre_tokenizer", &ms)) return -1;
    memcpy(tok->ms_rep, ms.rep, sizeof ms.rep);
    tok->ms_rep_len = ms.rep_len;
    tok->ms_scheme = ms.scheme;
    tok->ms_split = ms.split;
    tok->metaspace = true;
    return 0;
}

static int parse_post_processor(m2u_tokenizer *tok, const cJSON *p) {
    int n_seq;
    if (m2u_tj_parse_template(p, MAX_TOKEN_ID, &tok->tpl, &tok->n_tpl, &n_seq)) return -1;
    tok->has_template = true;
    return 0;
}

static int parse_model(m2u_tokenizer *tok, const cJSON *model) {
    if (!cJSON_IsObject(model)) return m2u_fail("model: missing or not an object");
    const char *type = m2u_tj_type(model);
    if (!type) return m2u_fail("model.type: missing");
    if (strcmp(type, "BPE")) return m2u_fail("model.type \"%s\" is not supported (only BPE)", type);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (!m2u_tj_null(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0.0))
        return m2u_fail("model.dropout must be null (BPE dropout is random, so not reproducible)");
    const char *affix[2] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(model, affix[i]);
        if (!m2u_tj_null(j) && !(cJSON_IsString(j) && j->valuestring[0] == '\0'))
            return m2u_fail("model.%s is not supported (must be null)", affix[i]);
    }
    if (m2u_tj_bool(model, "fuse_unk", "model", &tok->fuse_unk) ||
        m2u_tj_bool(model, "byte_fallback", "model", &tok->byte_fallback) ||
        m2u_tj_bool(model, "ignore_merges", "model", &tok->ignore_merges))
        return -1;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
    if (!m2u_tj_null(unk)) {
        if (!cJSON_IsString(unk)) return m2u_fail("model.unk_token must be a string or null");
        tok->unk_token = dup_n(unk->valuestring, strlen(unk->valuestring));
        if (!tok->unk_token) return m2u_fail("out of memory");
    }

    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    if (!cJSON_IsObject(vocab)) return m2u_fail("model.vocab: missing or not an object");
    if (!cJSON_IsArray(merges)) return m2u_fail("model.merges: missing or not an array");

    /* Vocabulary: copy all strings into one arena, index them both ways. */
    size_t bytes = 0;
    int32_t count = 0, max_id = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        int32_t id;
        if (get_index(e, MAX_TOKEN_ID, &id))
            return m2u_fail("model.vocab[\"%s\"]: id must be an integer in [0, 2^26)", e->string);
        if (m2u_utf8_valid_prefix((const unsigned char *)e->string, strlen(e->string)) != strlen(e->string))
            return m2u_fail("model.vocab: a token is not valid UTF-8");
        bytes += strlen(e->string) + 1;
        count++;
        if (id > max_id) max_id = id;
    }
    tok->vocab_arena = malloc(bytes ? bytes : 1);
    tok->n_id = max_id + 1;
    tok->id_str = calloc((size_t)(tok->n_id ? tok->n_id : 1), sizeof *tok->id_str);
    tok->id_len = calloc((size_t)(tok->n_id ? tok->n_id : 1), sizeof *tok->id_len);
    if (!tok->vocab_arena || !tok->id_str || !tok->id_len) return m2u_fail("out of memory (vocabulary)");
    char *w = tok->vocab_arena;
    cJSON_ArrayForEach(e, vocab) {
        int32_t id = (int32_t)e->valuedouble;
        size_t n = strlen(e->string);
        memcpy(w, e->string, n + 1);
        bool was_new;
        if (str_map_put(&tok->vocab, w, n, id, &was_new)) return -1;
        if (!was_new) return m2u_fail("model.vocab: duplicate token \"%s\"", e->string);
        if (tok->id_str[id])
            return m2u_fail("model.vocab: id %d is used twice (\"%s\", \"%s\")", id, tok->id_str[id], w);
        tok->id_str[id] = w;
        tok->id_len[id] = (uint32_t)n;
        w += n + 1;
    }
    tok->n_vocab = count;
    for (int b = 0; b < 256; b++) {
        char name[16];
        snprintf(name, sizeof name, "<0x%02X>", b);
        tok->byte_id[b] = str_map_find(&tok->vocab, name, 6);
    }

    /* Merges: "a b" strings (split on the one space; "#version" lines skipped) or [a, b] pairs. */
    if (pair_map_init(&tok->merges, (size_t)cJSON_GetArraySize(merges))) return -1;
    uint32_t rank = 0;
    int index = 0;
    bool pairs = cJSON_IsArray(cJSON_GetArrayItem(merges, 0));
    m2u_strbuf cat = {0};
    cJSON_ArrayForEach(e, merges) {
        const char *a, *b;
        size_t al, bl;
        if (pairs) {
            const cJSON *x = cJSON_GetArrayItem(e, 0), *y = cJSON_GetArrayItem(e, 1);
            if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 || !cJSON_IsString(x) || !cJSON_IsString(y)) {
                free(cat.s);
                return m2u_fail("model.merges[%d] must be a pair of strings like the others", index);
            }
            a = x->valuestring, al = strlen(a), b = y->valuestring, bl = strlen(b);
        } else {
            if (!cJSON_IsString(e)) {
                free(cat.s);
                return m2u_fail("model.merges[%d] must be a string \"a b\" like the others", index);
            }
            if (!strncmp(e->valuestring, "#version", 8)) {
                index++;
                continue;
            }
            const char *sp = strchr(e->valuestring, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                free(cat.s);
                return m2u_fail("model.merges[%d] \"%s\" is not two tokens separated by one space", index,
                                e->valuestring);
            }
            a = e->valuestring, al = (size_t)(sp - a), b = sp + 1, bl = strlen(b);
        }
        cat.n = 0;
        if (m2u_tj_put(&cat, a, al) || m2u_tj_put(&cat, b, bl)) {
            free(cat.s);
            return -1;
        }
        int ia = str_map_find(&tok->vocab, a, al), ib = str_map_find(&tok->vocab, b, bl);
        int inew = str_map_find(&tok->vocab, cat.s, cat.n);
        if (ia < 0 || ib < 0 || inew < 0) {
            int rc = m2u_fail("model.merges[%d]: \"%.*s\" is not in the vocabulary", index,
                              (int)(ia < 0 ? al : ib < 0 ? bl : cat.n), ia < 0 ? a : ib < 0 ? b : cat.s);
            free(cat.s);
            return rc;
        }
        pair_map_put(&tok->merges, ia, ib, rank++, inew);
        index++;
    }
    free(cat.s);
    return 0;
}

static int32_t model_id(const void *ctx, const char *s, size_t n) {
    return str_map_find(&((const m2u_tokenizer *)ctx)->vocab, s, n);
}

/* The entries and their ids are checked by the shared parser (tokenizer_json.h); add_tokens then
 * derives the same ids, as the reference does. */
static int parse_added_tokens(m2u_tokenizer *tok, const cJSON *list) {
    m2u_tj_added *a;
    int n;
    if (m2u_tj_parse_added(list, model_id, tok, tok->n_vocab, true, &a, &n)) return -1;
    added_token *v = calloc((size_t)(n ? n : 1), sizeof *v);
    if (!v) {
        free(a);
        return m2u_fail("out of memory");
    }
    for (int i = 0; i < n; i++)
        v[i] = (added_token){.content = (char *)a[i].content, .len = a[i].len, .id = a[i].id,
                             .special = a[i].special, .single_word = a[i].single_word, .lstrip = a[i].lstrip,
                             .rstrip = a[i].rstrip, .normalized = a[i].normalized};
    int rc = add_tokens(tok, v, n);
    free(v);
    free(a);
    return rc;
}

static int parse_root(m2u_tokenizer *tok, const cJSON *root) {
    if (!cJSON_IsObject(root)) return m2u_fail("not a JSON object");
    if (m2u_tj_check_root(root)) return -1;
    if (parse_model(tok, cJSON_GetObjectItemCaseSensitive(root, "model"))) return -1;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    if (!m2u_tj_null(n) && parse_normalizer(tok, n, "normalizer")) return -1;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    if (!m2u_tj_null(p) && parse_pre_tokenizer(tok, p)) return -1;
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    if (!m2u_tj_null(pp) && parse_post_processor(tok, pp)) return -1;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    if (!m2u_tj_null(d)) {
        tok->has_decoder = true;
        if (parse_decoder(tok, d, "decoder")) return -1;
    }
    /* Added tokens last: their normalised patterns need the normaliser. */
    return parse_added_tokens(tok, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"));
}

static int parse_root_v(void *tok, const cJSON *root) { return parse_root(tok, root); }
static void free_v(void *tok) { m2u_tokenizer_free(tok); }

int m2u_tokenizer_load(const char *path, m2u_tokenizer **out) {
    void *tok;
    int rc = m2u_tj_load(path, sizeof(m2u_tokenizer), parse_root_v, free_v, &tok);
    *out = tok;
    return rc;
}

/* ======================================================================== \w table */

/* Code point ranges (inclusive) of Rust regex's Unicode \w: Alphabetic, Mark, Decimal_Number,
 * Connector_Punctuation, Join_Control (UTS #18).  Generated from Unicode 14.0 (perl's
 * unicore/lib/Perl/Word.pl); the regex crate used by tokenizers 0.20.3 has Unicode 15, which
 * differs only for characters first assigned in 15.0.  Only single_word added tokens use it. */
static const uint32_t word_ranges[] = {
    0x30,0x39, 0x41,0x5A, 0x5F,0x5F, 0x61,0x7A, 0xAA,0xAA, 0xB5,0xB5, 0xBA,0xBA, 0xC0,0xD6, 0xD8,0xF6, 0xF8,0x2C1,
    0x2C6,0x2D1, 0x2E0,0x2E4, 0x2EC,0x2EC, 0x2EE,0x2EE, 0x300,0x374, 0x376,0x377, 0x37A,0x37D, 0x37F,0x37F,
    0x386,0x386, 0x388,0x38A, 0x38C,0x38C, 0x38E,0x3A1, 0x3A3,0x3F5, 0x3F7,0x481, 0x483,0x52F, 0x531,0x556,
    0x559,0x559, 0x560,0x588, 0x591,0x5BD, 0x5BF,0x5BF, 0x5C1,0x5C2, 0x5C4,0x5C5, 0x5C7,0x5C7, 0x5D0,0x5EA,
    0x5EF,0x5F2, 0x610,0x61A, 0x620,0x669, 0x66E,0x6D3, 0x6D5,0x6DC, 0x6DF,0x6E8, 0x6EA,0x6FC, 0x6FF,0x6FF,
    0x710,0x74A, 0x74D,0x7B1, 0x7C0,0x7F5, 0x7FA,0x7FA, 0x7FD,0x7FD, 0x800,0x82D, 0x840,0x85B, 0x860,0x86A,
    0x870,0x887, 0x889,0x88E, 0x898,0x8E1, 0x8E3,0x963, 0x966,0x96F, 0x971,0x983, 0x985,0x98C, 0x98F,0x990,
    0x993,0x9A8, 0x9AA,0x9B0, 0x9B2,0x9B2, 0x9B6,0x9B9, 0x9BC,0x9C4, 0x9C7,0x9C8, 0x9CB,0x9CE, 0x9D7,0x9D7,
    0x9DC,0x9DD, 0x9DF,0x9E3, 0x9E6,0x9F1, 0x9FC,0x9FC, 0x9FE,0x9FE, 0xA01,0xA03, 0xA05,0xA0A, 0xA0F,0xA10,
    0xA13,0xA28, 0xA2A,0xA30, 0xA32,0xA33, 0xA35,0xA36, 0xA38,0xA39, 0xA3C,0xA3C, 0xA3E,0xA42, 0xA47,0xA48,
    0xA4B,0xA4D, 0xA51,0xA51, 0xA59,0xA5C, 0xA5E,0xA5E, 0xA66,0xA75, 0xA81,0xA83, 0xA85,0xA8D, 0xA8F,0xA91,
    0xA93,0xAA8, 0xAAA,0xAB0, 0xAB2,0xAB3, 0xAB5,0xAB9, 0xABC,0xAC5, 0xAC7,0xAC9, 0xACB,0xACD, 0xAD0,0xAD0,
    0xAE0,0xAE3, 0xAE6,0xAEF, 0xAF9,0xAFF, 0xB01,0xB03, 0xB05,0xB0C, 0xB0F,0xB10, 0xB13,0xB28, 0xB2A,0xB30,
    0xB32,0xB33, 0xB35,0xB39, 0xB3C,0xB44, 0xB47,0xB48, 0xB4B,0xB4D, 0xB55,0xB57, 0xB5C,0xB5D, 0xB5F,0xB63,
    0xB66,0xB6F, 0xB71,0xB71, 0xB82,0xB83, 0xB85,0xB8A, 0xB8E,0xB90, 0xB92,0xB95, 0xB99,0xB9A, 0xB9C,0xB9C,
    0xB9E,0xB9F, 0xBA3,0xBA4, 0xBA8,0xBAA, 0xBAE,0xBB9, 0xBBE,0xBC2, 0xBC6,0xBC8, 0xBCA,0xBCD, 0xBD0,0xBD0,
    0xBD7,0xBD7, 0xBE6,0xBEF, 0xC00,0xC0C, 0xC0E,0xC10, 0xC12,0xC28, 0xC2A,0xC39, 0xC3C,0xC44, 0xC46,0xC48,
    0xC4A,0xC4D, 0xC55,0xC56, 0xC58,0xC5A, 0xC5D,0xC5D, 0xC60,0xC63, 0xC66,0xC6F, 0xC80,0xC83, 0xC85,0xC8C,
    0xC8E,0xC90, 0xC92,0xCA8, 0xCAA,0xCB3, 0xCB5,0xCB9, 0xCBC,0xCC4, 0xCC6,0xCC8, 0xCCA,0xCCD, 0xCD5,0xCD6,
    0xCDD,0xCDE, 0xCE0,0xCE3, 0xCE6,0xCEF, 0xCF1,0xCF2, 0xD00,0xD0C, 0xD0E,0xD10, 0xD12,0xD44, 0xD46,0xD48,
    0xD4A,0xD4E, 0xD54,0xD57, 0xD5F,0xD63, 0xD66,0xD6F, 0xD7A,0xD7F, 0xD81,0xD83, 0xD85,0xD96, 0xD9A,0xDB1,
    0xDB3,0xDBB, 0xDBD,0xDBD, 0xDC0,0xDC6, 0xDCA,0xDCA, 0xDCF,0xDD4, 0xDD6,0xDD6, 0xDD8,0xDDF, 0xDE6,0xDEF,
    0xDF2,0xDF3, 0xE01,0xE3A, 0xE40,0xE4E, 0xE50,0xE59, 0xE81,0xE82, 0xE84,0xE84, 0xE86,0xE8A, 0xE8C,0xEA3,
    0xEA5,0xEA5, 0xEA7,0xEBD, 0xEC0,0xEC4, 0xEC6,0xEC6, 0xEC8,0xECD, 0xED0,0xED9, 0xEDC,0xEDF, 0xF00,0xF00,
    0xF18,0xF19, 0xF20,0xF29, 0xF35,0xF35, 0xF37,0xF37, 0xF39,0xF39, 0xF3E,0xF47, 0xF49,0xF6C, 0xF71,0xF84,
    0xF86,0xF97, 0xF99,0xFBC, 0xFC6,0xFC6, 0x1000,0x1049, 0x1050,0x109D, 0x10A0,0x10C5, 0x10C7,0x10C7,
    0x10CD,0x10CD, 0x10D0,0x10FA, 0x10FC,0x1248, 0x124A,0x124D, 0x1250,0x1256, 0x1258,0x1258, 0x125A,0x125D,
    0x1260,0x1288, 0x128A,0x128D, 0x1290,0x12B0, 0x12B2,0x12B5, 0x12B8,0x12BE, 0x12C0,0x12C0, 0x12C2,0x12C5,
    0x12C8,0x12D6, 0x12D8,0x1310, 0x1312,0x1315, 0x1318,0x135A, 0x135D,0x135F, 0x1380,0x138F, 0x13A0,0x13F5,
    0x13F8,0x13FD, 0x1401,0x166C, 0x166F,0x167F, 0x1681,0x169A, 0x16A0,0x16EA, 0x16EE,0x16F8, 0x1700,0x1715,
    0x171F,0x1734, 0x1740,0x1753, 0x1760,0x176C, 0x176E,0x1770, 0x1772,0x1773, 0x1780,0x17D3, 0x17D7,0x17D7,
    0x17DC,0x17DD, 0x17E0,0x17E9, 0x180B,0x180D, 0x180F,0x1819, 0x1820,0x1878, 0x1880,0x18AA, 0x18B0,0x18F5,
    0x1900,0x191E, 0x1920,0x192B, 0x1930,0x193B, 0x1946,0x196D, 0x1970,0x1974, 0x1980,0x19AB, 0x19B0,0x19C9,
    0x19D0,0x19D9, 0x1A00,0x1A1B, 0x1A20,0x1A5E, 0x1A60,0x1A7C, 0x1A7F,0x1A89, 0x1A90,0x1A99, 0x1AA7,0x1AA7,
    0x1AB0,0x1ACE, 0x1B00,0x1B4C, 0x1B50,0x1B59, 0x1B6B,0x1B73, 0x1B80,0x1BF3, 0x1C00,0x1C37, 0x1C40,0x1C49,
    0x1C4D,0x1C7D, 0x1C80,0x1C88, 0x1C90,0x1CBA, 0x1CBD,0x1CBF, 0x1CD0,0x1CD2, 0x1CD4,0x1CFA, 0x1D00,0x1F15,
    0x1F18,0x1F1D, 0x1F20,0x1F45, 0x1F48,0x1F4D, 0x1F50,0x1F57, 0x1F59,0x1F59, 0x1F5B,0x1F5B, 0x1F5D,0x1F5D,
    0x1F5F,0x1F7D, 0x1F80,0x1FB4, 0x1FB6,0x1FBC, 0x1FBE,0x1FBE, 0x1FC2,0x1FC4, 0x1FC6,0x1FCC, 0x1FD0,0x1FD3,
    0x1FD6,0x1FDB, 0x1FE0,0x1FEC, 0x1FF2,0x1FF4, 0x1FF6,0x1FFC, 0x200C,0x200D, 0x203F,0x2040, 0x2054,0x2054,
    0x2071,0x2071, 0x207F,0x207F, 0x2090,0x209C, 0x20D0,0x20F0, 0x2102,0x2102, 0x2107,0x2107, 0x210A,0x2113,
    0x2115,0x2115, 0x2119,0x211D, 0x2124,0x2124, 0x2126,0x2126, 0x2128,0x2128, 0x212A,0x212D, 0x212F,0x2139,
    0x213C,0x213F, 0x2145,0x2149, 0x214E,0x214E, 0x2160,0x2188, 0x24B6,0x24E9, 0x2C00,0x2CE4, 0x2CEB,0x2CF3,
    0x2D00,0x2D25, 0x2D27,0x2D27, 0x2D2D,0x2D2D, 0x2D30,0x2D67, 0x2D6F,0x2D6F, 0x2D7F,0x2D96, 0x2DA0,0x2DA6,
    0x2DA8,0x2DAE, 0x2DB0,0x2DB6, 0x2DB8,0x2DBE, 0x2DC0,0x2DC6, 0x2DC8,0x2DCE, 0x2DD0,0x2DD6, 0x2DD8,0x2DDE,
    0x2DE0,0x2DFF, 0x2E2F,0x2E2F, 0x3005,0x3007, 0x3021,0x302F, 0x3031,0x3035, 0x3038,0x303C, 0x3041,0x3096,
    0x3099,0x309A, 0x309D,0x309F, 0x30A1,0x30FA, 0x30FC,0x30FF, 0x3105,0x312F, 0x3131,0x318E, 0x31A0,0x31BF,
    0x31F0,0x31FF, 0x3400,0x4DBF, 0x4E00,0xA48C, 0xA4D0,0xA4FD, 0xA500,0xA60C, 0xA610,0xA62B, 0xA640,0xA672,
    0xA674,0xA67D, 0xA67F,0xA6F1, 0xA717,0xA71F, 0xA722,0xA788, 0xA78B,0xA7CA, 0xA7D0,0xA7D1, 0xA7D3,0xA7D3,
    0xA7D5,0xA7D9, 0xA7F2,0xA827, 0xA82C,0xA82C, 0xA840,0xA873, 0xA880,0xA8C5, 0xA8D0,0xA8D9, 0xA8E0,0xA8F7,
    0xA8FB,0xA8FB, 0xA8FD,0xA92D, 0xA930,0xA953, 0xA960,0xA97C, 0xA980,0xA9C0, 0xA9CF,0xA9D9, 0xA9E0,0xA9FE,
    0xAA00,0xAA36, 0xAA40,0xAA4D, 0xAA50,0xAA59, 0xAA60,0xAA76, 0xAA7A,0xAAC2, 0xAADB,0xAADD, 0xAAE0,0xAAEF,
    0xAAF2,0xAAF6, 0xAB01,0xAB06, 0xAB09,0xAB0E, 0xAB11,0xAB16, 0xAB20,0xAB26, 0xAB28,0xAB2E, 0xAB30,0xAB5A,
    0xAB5C,0xAB69, 0xAB70,0xABEA, 0xABEC,0xABED, 0xABF0,0xABF9, 0xAC00,0xD7A3, 0xD7B0,0xD7C6, 0xD7CB,0xD7FB,
    0xF900,0xFA6D, 0xFA70,0xFAD9, 0xFB00,0xFB06, 0xFB13,0xFB17, 0xFB1D,0xFB28, 0xFB2A,0xFB36, 0xFB38,0xFB3C,
    0xFB3E,0xFB3E, 0xFB40,0xFB41, 0xFB43,0xFB44, 0xFB46,0xFBB1, 0xFBD3,0xFD3D, 0xFD50,0xFD8F, 0xFD92,0xFDC7,
    0xFDF0,0xFDFB, 0xFE00,0xFE0F, 0xFE20,0xFE2F, 0xFE33,0xFE34, 0xFE4D,0xFE4F, 0xFE70,0xFE74, 0xFE76,0xFEFC,
    0xFF10,0xFF19, 0xFF21,0xFF3A, 0xFF3F,0xFF3F, 0xFF41,0xFF5A, 0xFF66,0xFFBE, 0xFFC2,0xFFC7, 0xFFCA,0xFFCF,
    0xFFD2,0xFFD7, 0xFFDA,0xFFDC, 0x10000,0x1000B, 0x1000D,0x10026, 0x10028,0x1003A, 0x1003C,0x1003D,
    0x1003F,0x1004D, 0x10050,0x1005D, 0x10080,0x100FA, 0x10140,0x10174, 0x101FD,0x101FD, 0x10280,0x1029C,
    0x102A0,0x102D0, 0x102E0,0x102E0, 0x10300,0x1031F, 0x1032D,0x1034A, 0x10350,0x1037A, 0x10380,0x1039D,
    0x103A0,0x103C3, 0x103C8,0x103CF, 0x103D1,0x103D5, 0x10400,0x1049D, 0x104A0,0x104A9, 0x104B0,0x104D3,
    0x104D8,0x104FB, 0x10500,0x10527, 0x10530,0x10563, 0x10570,0x1057A, 0x1057C,0x1058A, 0x1058C,0x10592,
    0x10594,0x10595, 0x10597,0x105A1, 0x105A3,0x105B1, 0x105B3,0x105B9, 0x105BB,0x105BC, 0x10600,0x10736,
    0x10740,0x10755, 0x10760,0x10767, 0x10780,0x10785, 0x10787,0x107B0, 0x107B2,0x107BA, 0x10800,0x10805,
    0x10808,0x10808, 0x1080A,0x10835, 0x10837,0x10838, 0x1083C,0x1083C, 0x1083F,0x10855, 0x10860,0x10876,
    0x10880,0x1089E, 0x108E0,0x108F2, 0x108F4,0x108F5, 0x10900,0x10915, 0x10920,0x10939, 0x10980,0x109B7,
    0x109BE,0x109BF, 0x10A00,0x10A03, 0x10A05,0x10A06, 0x10A0C,0x10A13, 0x10A15,0x10A17, 0x10A19,0x10A35,
    0x10A38,0x10A3A, 0x10A3F,0x10A3F, 0x10A60,0x10A7C, 0x10A80,0x10A9C, 0x10AC0,0x10AC7, 0x10AC9,0x10AE6,
    0x10B00,0x10B35, 0x10B40,0x10B55, 0x10B60,0x10B72, 0x10B80,0x10B91, 0x10C00,0x10C48, 0x10C80,0x10CB2,
    0x10CC0,0x10CF2, 0x10D00,0x10D27, 0x10D30,0x10D39, 0x10E80,0x10EA9, 0x10EAB,0x10EAC, 0x10EB0,0x10EB1,
    0x10F00,0x10F1C, 0x10F27,0x10F27, 0x10F30,0x10F50, 0x10F70,0x10F85, 0x10FB0,0x10FC4, 0x10FE0,0x10FF6,
    0x11000,0x11046, 0x11066,0x11075, 0x1107F,0x110BA, 0x110C2,0x110C2, 0x110D0,0x110E8, 0x110F0,0x110F9,
    0x11100,0x11134, 0x11136,0x1113F, 0x11144,0x11147, 0x11150,0x11173, 0x11176,0x11176, 0x11180,0x111C4,
    0x111C9,0x111CC, 0x111CE,0x111DA, 0x111DC,0x111DC, 0x11200,0x11211, 0x11213,0x11237, 0x1123E,0x1123E,
    0x11280,0x11286, 0x11288,0x11288, 0x1128A,0x1128D, 0x1128F,0x1129D, 0x1129F,0x112A8, 0x112B0,0x112EA,
    0x112F0,0x112F9, 0x11300,0x11303, 0x11305,0x1130C, 0x1130F,0x11310, 0x11313,0x11328, 0x1132A,0x11330,
    0x11332,0x11333, 0x11335,0x11339, 0x1133B,0x11344, 0x11347,0x11348, 0x1134B,0x1134D, 0x11350,0x11350,
    0x11357,0x11357, 0x1135D,0x11363, 0x11366,0x1136C, 0x11370,0x11374, 0x11400,0x1144A, 0x11450,0x11459,
    0x1145E,0x11461, 0x11480,0x114C5, 0x114C7,0x114C7, 0x114D0,0x114D9, 0x11580,0x115B5, 0x115B8,0x115C0,
    0x115D8,0x115DD, 0x11600,0x11640, 0x11644,0x11644, 0x11650,0x11659, 0x11680,0x116B8, 0x116C0,0x116C9,
    0x11700,0x1171A, 0x1171D,0x1172B, 0x11730,0x11739, 0x11740,0x11746, 0x11800,0x1183A, 0x118A0,0x118E9,
    0x118FF,0x11906, 0x11909,0x11909, 0x1190C,0x11913, 0x11915,0x11916, 0x11918,0x11935, 0x11937,0x11938,
    0x1193B,0x11943, 0x11950,0x11959, 0x119A0,0x119A7, 0x119AA,0x119D7, 0x119DA,0x119E1, 0x119E3,0x119E4,
    0x11A00,0x11A3E, 0x11A47,0x11A47, 0x11A50,0x11A99, 0x11A9D,0x11A9D, 0x11AB0,0x11AF8, 0x11C00,0x11C08,
    0x11C0A,0x11C36, 0x11C38,0x11C40, 0x11C50,0x11C59, 0x11C72,0x11C8F, 0x11C92,0x11CA7, 0x11CA9,0x11CB6,
    0x11D00,0x11D06, 0x11D08,0x11D09, 0x11D0B,0x11D36, 0x11D3A,0x11D3A, 0x11D3C,0x11D3D, 0x11D3F,0x11D47,
    0x11D50,0x11D59, 0x11D60,0x11D65, 0x11D67,0x11D68, 0x11D6A,0x11D8E, 0x11D90,0x11D91, 0x11D93,0x11D98,
    0x11DA0,0x11DA9, 0x11EE0,0x11EF6, 0x11FB0,0x11FB0, 0x12000,0x12399, 0x12400,0x1246E, 0x12480,0x12543,
    0x12F90,0x12FF0, 0x13000,0x1342E, 0x14400,0x14646, 0x16800,0x16A38, 0x16A40,0x16A5E, 0x16A60,0x16A69,
    0x16A70,0x16ABE, 0x16AC0,0x16AC9, 0x16AD0,0x16AED, 0x16AF0,0x16AF4, 0x16B00,0x16B36, 0x16B40,0x16B43,
    0x16B50,0x16B59, 0x16B63,0x16B77, 0x16B7D,0x16B8F, 0x16E40,0x16E7F, 0x16F00,0x16F4A, 0x16F4F,0x16F87,
    0x16F8F,0x16F9F, 0x16FE0,0x16FE1, 0x16FE3,0x16FE4, 0x16FF0,0x16FF1, 0x17000,0x187F7, 0x18800,0x18CD5,
    0x18D00,0x18D08, 0x1AFF0,0x1AFF3, 0x1AFF5,0x1AFFB, 0x1AFFD,0x1AFFE, 0x1B000,0x1B122, 0x1B150,0x1B152,
    0x1B164,0x1B167, 0x1B170,0x1B2FB, 0x1BC00,0x1BC6A, 0x1BC70,0x1BC7C, 0x1BC80,0x1BC88, 0x1BC90,0x1BC99,
    0x1BC9D,0x1BC9E, 0x1CF00,0x1CF2D, 0x1CF30,0x1CF46, 0x1D165,0x1D169, 0x1D16D,0x1D172, 0x1D17B,0x1D182,
    0x1D185,0x1D18B, 0x1D1AA,0x1D1AD, 0x1D242,0x1D244, 0x1D400,0x1D454, 0x1D456,0x1D49C, 0x1D49E,0x1D49F,
    0x1D4A2,0x1D4A2, 0x1D4A5,0x1D4A6, 0x1D4A9,0x1D4AC, 0x1D4AE,0x1D4B9, 0x1D4BB,0x1D4BB, 0x1D4BD,0x1D4C3,
    0x1D4C5,0x1D505, 0x1D507,0x1D50A, 0x1D50D,0x1D514, 0x1D516,0x1D51C, 0x1D51E,0x1D539, 0x1D53B,0x1D53E,
    0x1D540,0x1D544, 0x1D546,0x1D546, 0x1D54A,0x1D550, 0x1D552,0x1D6A5, 0x1D6A8,0x1D6C0, 0x1D6C2,0x1D6DA,
    0x1D6DC,0x1D6FA, 0x1D6FC,0x1D714, 0x1D716,0x1D734, 0x1D736,0x1D74E, 0x1D750,0x1D76E, 0x1D770,0x1D788,
    0x1D78A,0x1D7A8, 0x1D7AA,0x1D7C2, 0x1D7C4,0x1D7CB, 0x1D7CE,0x1D7FF, 0x1DA00,0x1DA36, 0x1DA3B,0x1DA6C,
    0x1DA75,0x1DA75, 0x1DA84,0x1DA84, 0x1DA9B,0x1DA9F, 0x1DAA1,0x1DAAF, 0x1DF00,0x1DF1E, 0x1E000,0x1E006,
    0x1E008,0x1E018, 0x1E01B,0x1E021, 0x1E023,0x1E024, 0x1E026,0x1E02A, 0x1E100,0x1E12C, 0x1E130,0x1E13D,
    0x1E140,0x1E149, 0x1E14E,0x1E14E, 0x1E290,0x1E2AE, 0x1E2C0,0x1E2F9, 0x1E7E0,0x1E7E6, 0x1E7E8,0x1E7EB,
    0x1E7ED,0x1E7EE, 0x1E7F0,0x1E7FE, 0x1E800,0x1E8C4, 0x1E8D0,0x1E8D6, 0x1E900,0x1E94B, 0x1E950,0x1E959,
    0x1EE00,0x1EE03, 0x1EE05,0x1EE1F, 0x1EE21,0x1EE22, 0x1EE24,0x1EE24, 0x1EE27,0x1EE27, 0x1EE29,0x1EE32,
    0x1EE34,0x1EE37, 0x1EE39,0x1EE39, 0x1EE3B,0x1EE3B, 0x1EE42,0x1EE42, 0x1EE47,0x1EE47, 0x1EE49,0x1EE49,
    0x1EE4B,0x1EE4B, 0x1EE4D,0x1EE4F, 0x1EE51,0x1EE52, 0x1EE54,0x1EE54, 0x1EE57,0x1EE57, 0x1EE59,0x1EE59,
    0x1EE5B,0x1EE5B, 0x1EE5D,0x1EE5D, 0x1EE5F,0x1EE5F, 0x1EE61,0x1EE62, 0x1EE64,0x1EE64, 0x1EE67,0x1EE6A,
    0x1EE6C,0x1EE72, 0x1EE74,0x1EE77, 0x1EE79,0x1EE7C, 0x1EE7E,0x1EE7E, 0x1EE80,0x1EE89, 0x1EE8B,0x1EE9B,
    0x1EEA1,0x1EEA3, 0x1EEA5,0x1EEA9, 0x1EEAB,0x1EEBB, 0x1F130,0x1F149, 0x1F150,0x1F169, 0x1F170,0x1F189,
    0x1FBF0,0x1FBF9, 0x20000,0x2A6DF, 0x2A700,0x2B738, 0x2B740,0x2B81D, 0x2B820,0x2CEA1, 0x2CEB0,0x2EBE0,
    0x2F800,0x2FA1D, 0x30000,0x3134A, 0xE0100,0xE01EF
};

static bool is_word_char(uint32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    size_t lo = 0, hi = sizeof word_ranges / sizeof word_ranges[0] / 2;
    while (lo < hi) { /* first range whose end >= c */
        size_t mid = (lo + hi) / 2;
        if (word_ranges[2 * mid + 1] < c) lo = mid + 1;
        else hi = mid;
    }
    return lo < sizeof word_ranges / sizeof word_ranges[0] / 2 && word_ranges[2 * lo] <= c;
}
