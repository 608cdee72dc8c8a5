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
 * and the field, rather than silently giving different ids.
 *
 * The added-token matcher, the normaliser, the pre-tokenizer and the decoders are the shared
 * pipeline's (tokenizer_pipeline.h); this file holds the BPE model, its vocabulary and the
 * AddedVocabulary bookkeeping (ids, specials, records). */
#include "tokenizer.h"

#include "tokenizer_json.h"
#include "tokenizer_pipeline.h"
#include "str_map.h"

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

/* ======================================================================== hash tables */

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
    m2u_tj_matcher split_raw;  /* non-normalized tokens, matched on the raw text */
    m2u_tj_matcher split_norm; /* normalized tokens, matched on each normalised piece */

    /* --- pipeline --- */
    m2u_tj_normalizer norm;
    m2u_tj_pretokenizer pre;
    bool has_template;
    int32_t *tpl; /* single template: ids, with TPL_SEQUENCE where the text goes */
    int n_tpl;
    m2u_tj_decoder dec;
};

static const added_token *record_for_id(const m2u_tokenizer *tok, int32_t id) {
    if (id < 0 || id >= tok->n_record_of_id || tok->record_of_id[id] < 0) return NULL;
    return &tok->records.v[tok->record_of_id[id]];
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
    c.content = m2u_tj_dup(t->content, t->len);
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

/* AddedVocabulary::refresh_added_tokens: rebuild both matchers from specials ++ classic.  Each
 * pattern carries the single_word / lstrip / rstrip of the token recorded for its id, which is what
 * the reference's find_matches looks up. */
static int refresh_added(m2u_tokenizer *tok) {
    m2u_tj_matcher_free(&tok->split_raw);
    m2u_tj_matcher_free(&tok->split_norm);
    int total = tok->specials.n + tok->classic.n, rc = 0;
    m2u_strbuf nb = {0}, tmp = {0};
    for (int i = 0; i < total && rc == 0; i++) {
        const added_token *t = i < tok->specials.n ? &tok->specials.v[i] : &tok->classic.v[i - tok->specials.n];
        int32_t id = token_to_id_n(tok, t->content, t->len);
        if (id < 0) {
            rc = m2u_fail("added token \"%s\" has no id", t->content);
            break;
        }
        const added_token *r = record_for_id(tok, id);
        const char *pat = t->content;
        size_t plen = t->len;
        if (t->normalized) {
            if ((rc = m2u_tj_normalize(&tok->norm, t->content, t->len, &nb, &tmp))) break;
            pat = nb.s;
            plen = nb.n;
        }
        rc = m2u_tj_matcher_add(t->normalized ? &tok->split_norm : &tok->split_raw, pat, plen, id,
                                r && r->special, r && r->single_word, r && r->lstrip, r && r->rstrip);
    }
    free(nb.s);
    free(tmp.s);
    if (rc) return -1;
    m2u_tj_matcher_index(&tok->split_raw);
    m2u_tj_matcher_index(&tok->split_norm);
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
    m2u_strbuf norm, tmp;
    m2u_tj_pretok_work pre;
    m2u_tj_splits raw, sub;
} work;

static void work_free(work *w) {
    free(w->sym);
    free(w->heap);
    free(w->norm.s);
    free(w->tmp.s);
    m2u_tj_pretok_work_free(&w->pre);
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

static int encode_text(const m2u_tokenizer *tok, work *w, const char *text, size_t len, m2u_tj_ids *out) {
    if (m2u_tj_find_matches(&tok->split_raw, text, len, &w->raw)) return -1;
    for (size_t r = 0; r < w->raw.n; r++) {
        m2u_tj_split rs = w->raw.v[r];
        if (rs.stop <= rs.start) continue; /* empty splits are dropped */
        if (rs.id >= 0) {
            if (m2u_tj_ids_push(out, rs.id)) return -1;
            continue;
        }
        if (m2u_tj_normalize(&tok->norm, text + rs.start, rs.stop - rs.start, &w->norm, &w->tmp)) return -1;
        if (m2u_tj_find_matches(&tok->split_norm, w->norm.s, w->norm.n, &w->sub)) return -1;
        for (size_t k = 0; k < w->sub.n; k++) {
            m2u_tj_split ns = w->sub.v[k];
            if (ns.stop <= ns.start) continue;
            if (ns.id >= 0) {
                if (m2u_tj_ids_push(out, ns.id)) return -1;
                continue;
            }
            /* pre-tokenise, then BPE each word; Metaspace's prepend_scheme "first" asks whether
             * the piece starts the original text */
            const char *words_text;
            const m2u_tj_words *words;
            if (m2u_tj_pretokenize(&tok->pre, w->norm.s + ns.start, ns.stop - ns.start, rs.start == 0 && ns.start == 0,
                                   &w->pre, &words_text, &words))
                return -1;
            for (size_t i = 0; i < words->n; i++)
                if (bpe_word(tok, w, words_text + words->v[i].off, words->v[i].len, out)) return -1;
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
        rc = m2u_tj_apply_template(tok->tpl, tok->n_tpl, seq.v, seq.n, &res);
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

static const char *token_of(const void *ctx, int32_t id, bool *special) {
    const m2u_tokenizer *tok = ctx;
    const char *t = m2u_tokenizer_id_to_token(tok, id);
    *special = t && str_map_find(&tok->special_set, t, strlen(t)) >= 0;
    return t;
}

int m2u_tokenizer_decode_n(const m2u_tokenizer *tok, const int32_t *ids, size_t n_ids, int skip_special, char **text,
                           size_t *len) {
    *text = NULL;
    *len = 0;
    if (!tok) return m2u_fail("m2u_tokenizer_decode: bad arguments");
    return m2u_tj_decode_ids(&tok->dec, ids, n_ids, skip_special, token_of, tok, text, len);
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
    m2u_tj_matcher_free(&tok->split_raw);
    m2u_tj_matcher_free(&tok->split_norm);
    m2u_tj_normalizer_free(&tok->norm);
    m2u_tj_pretokenizer_free(&tok->pre);
    free(tok->tpl);
    m2u_tj_decoder_free(&tok->dec);
    free(tok);
}


/* Optional boolean field: absent/null keeps *out. */



static int parse_post_processor(m2u_tokenizer *tok, const cJSON *p) {
    int n_seq, r = m2u_tj_parse_cls_sep(p, MAX_TOKEN_ID, &tok->tpl, &tok->n_tpl); /* RoBERTa's */
    if (r < 0 || (r == 0 && m2u_tj_parse_template(p, MAX_TOKEN_ID, &tok->tpl, &tok->n_tpl, &n_seq))) return -1;
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
        tok->unk_token = m2u_tj_dup(unk->valuestring, strlen(unk->valuestring));
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
        if (m2u_tj_index(e, MAX_TOKEN_ID, &id))
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
    if (m2u_tj_parse_normalizer(cJSON_GetObjectItemCaseSensitive(root, "normalizer"),
                                M2U_TJ_N_PREPEND | M2U_TJ_N_REPLACE, &tok->norm) ||
        m2u_tj_parse_pretokenizer(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"),
                                  M2U_TJ_P_METASPACE | M2U_TJ_P_BYTELEVEL, &tok->pre))
        return -1;
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    if (!m2u_tj_null(pp) && parse_post_processor(tok, pp)) return -1;
    if (m2u_tj_parse_decoder(cJSON_GetObjectItemCaseSensitive(root, "decoder"),
                             M2U_TJ_D_REPLACE | M2U_TJ_D_BYTE_FALLBACK | M2U_TJ_D_FUSE | M2U_TJ_D_STRIP |
                                 M2U_TJ_D_METASPACE | M2U_TJ_D_BYTELEVEL,
                             &tok->dec))
        return -1;
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

