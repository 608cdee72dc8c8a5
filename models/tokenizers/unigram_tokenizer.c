/* Unigram tokenizer.json (T5 family), bit-compatible with `tokenizers` 0.20.3.
 *
 * encode() follows TokenizerImpl::encode_single_sequence:
 *   1. cut the raw text on the added tokens (leftmost-longest match; they are never normalised);
 *   2. normalise each remaining piece on its own with the normalizer chain;
 *   3. pre-tokenise it into words (WhitespaceSplit / Metaspace);
 *   4. run the Unigram model on each word: the Viterbi best path of Unigram::encode_optimized
 *      (scores in double, ties kept by the first candidate), unknown characters scored
 *      min_score - 10 and runs of them fused into one token, then byte fallback or <unk>;
 *   5. apply the TemplateProcessing single template.
 *
 * Steps 1-3 are the shared pipeline (tokenizer_pipeline.h); this file holds the Unigram model. */
#include "unigram_tokenizer.h"

#include "tokenizer_json.h"
#include "tokenizer_pipeline.h"

#include "fileio.h"
#include "m2u_error.h"
#include "utf8_util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define UNK_PENALTY 10.0  /* K_UNK_PENALTY of the reference */
#define MAX_ADDED 100000  /* added tokens; more is surely a broken file */

/* ======================================================================== growable buffers */





/* ======================================================================== string -> id map */

typedef struct {
    uint32_t *slot; /* id + 1; 0 = empty */
    size_t mask;
} idmap;

static uint64_t fnv64(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

typedef struct {
    char *s;
    uint32_t len;
    double score;
} piece;

/* Find the slot for key (its id, or the empty slot where it would go). */
static size_t idmap_slot(const idmap *m, const piece *pieces, const char *s, size_t n) {
    size_t i = (size_t)fnv64(s, n) & m->mask;
    while (m->slot[i]) {
        const piece *p = &pieces[m->slot[i] - 1];
        if (p->len == n && memcmp(p->s, s, n) == 0) break;
        i = (i + 1) & m->mask;
    }
    return i;
}

static int32_t idmap_get(const idmap *m, const piece *pieces, const char *s, size_t n) {
    if (!m->slot) return -1;
    size_t i = idmap_slot(m, pieces, s, n);
    return m->slot[i] ? (int32_t)m->slot[i] - 1 : -1;
}

/* ======================================================================== tokenizer state */

#define TPL_SEQ M2U_TJ_TPL_SEQUENCE /* where the encoded text goes in the template */

struct m2u_unigram {
    piece *pieces;
    int32_t n_pieces;
    idmap map; /* last id wins for duplicated pieces, like the reference's HashMap */
    uint32_t max_piece_len;
    double min_score;
    int32_t unk_id; /* -1: none */
    bool byte_fallback;
    int32_t byte_id[256]; /* "<0xXX>" ids, -1 when absent */

    m2u_tj_matcher added; /* matched on the raw text */
    int32_t n_ids;        /* largest id + 1 over the vocabulary and the added tokens */

    m2u_tj_normalizer norm;
    m2u_tj_pretokenizer pre;
    m2u_tj_decoder dec;
    bool has_template;
    int32_t *tpl;
    int n_tpl;
};

/* ======================================================================== Unigram model */

typedef struct {
    double score;
    int32_t id;
    int64_t start; /* -1: no path ends here yet */
} best_node;

typedef struct { /* per-call scratch, so encode stays const and thread-safe */
    m2u_strbuf norm, tmp;
    m2u_tj_pretok_work pre;
    m2u_tj_splits splits;
    best_node *best;
    size_t cap_best;
    size_t *starts; /* token start offsets of the best path, reversed */
    size_t cap_starts;
} work;

static void work_free(work *w) {
    free(w->norm.s);
    free(w->tmp.s);
    m2u_tj_pretok_work_free(&w->pre);
    free(w->splits.v);
    free(w->best);
    free(w->starts);
}

/* Unigram::tokenize of one token string: its id, else byte fallback, else unk. */
static int emit_token(const m2u_unigram *tok, const char *s, size_t n, m2u_tj_ids *out) {
    int32_t id = idmap_get(&tok->map, tok->pieces, s, n);
    if (id >= 0) return m2u_tj_ids_push(out, id);
    if (tok->byte_fallback) {
        bool all = true;
        for (size_t i = 0; i < n && all; i++) all = tok->byte_id[(unsigned char)s[i]] >= 0;
        if (all) {
            for (size_t i = 0; i < n; i++)
                if (m2u_tj_ids_push(out, tok->byte_id[(unsigned char)s[i]])) return -1;
            return 0;
        }
    }
    if (tok->unk_id < 0) return m2u_fail("encountered an unknown token but the model has no unk_id");
    return m2u_tj_ids_push(out, tok->unk_id);
}

/* Unigram::encode_optimized + tokenize on one word. */
static int unigram_word(const m2u_unigram *tok, work *w, const char *s, size_t n, m2u_tj_ids *out) {
    if (n == 0) return 0;
    if (n + 1 > w->cap_best) {
        best_node *b = realloc(w->best, (n + 1) * sizeof *b);
        size_t *st = realloc(w->starts, (n + 1) * sizeof *st);
        if (b) w->best = b;
        if (st) w->starts = st;
        if (!b || !st) return m2u_fail("out of memory (Viterbi over %zu bytes)", n);
        w->cap_best = w->cap_starts = n + 1;
    }
    best_node *best = w->best;
    for (size_t i = 0; i <= n; i++) best[i] = (best_node){0.0, 0, -1};
    const double unk_score = tok->min_score - UNK_PENALTY;
    const unsigned char *us = (const unsigned char *)s;
    for (size_t at = 0; at < n;) {
        double here = best[at].score;
        size_t mblen = (size_t)m2u_utf8_len(us[at]);
        bool single = false;
        size_t max_len = n - at < tok->max_piece_len ? n - at : tok->max_piece_len;
        for (size_t len = 1; len <= max_len; len++) {
            if (at + len < n && (us[at + len] & 0xC0) == 0x80) continue; /* pieces are whole characters */
            int32_t id = idmap_get(&tok->map, tok->pieces, s + at, len);
            if (id < 0) continue;
            best_node *t = &best[at + len];
            double cand = tok->pieces[id].score + here;
            if (t->start < 0 || cand > t->score) *t = (best_node){cand, id, (int64_t)at};
            if (len == mblen) single = true;
        }
        if (!single) {
            if (tok->unk_id < 0) return m2u_fail("encountered an unknown token but the model has no unk_id");
            best_node *t = &best[at + mblen];
            double cand = unk_score + here;
            if (t->start < 0 || cand > t->score) *t = (best_node){cand, tok->unk_id, (int64_t)at};
        }
        at += mblen;
    }
    /* Walk back, then emit in order; consecutive unk nodes become one token. */
    size_t m = 0;
    for (size_t end = n; end > 0; end = (size_t)best[end].start) w->starts[m++] = end;
    size_t prev = 0;
    size_t unk_from = SIZE_MAX;
    for (size_t k = m; k-- > 0;) {
        size_t end = w->starts[k];
        bool is_unk = tok->unk_id >= 0 && best[end].id == tok->unk_id;
        if (is_unk) {
            if (unk_from == SIZE_MAX) unk_from = prev;
        } else {
            if (unk_from != SIZE_MAX) {
                if (emit_token(tok, s + unk_from, prev - unk_from, out)) return -1;
                unk_from = SIZE_MAX;
            }
            if (emit_token(tok, s + prev, end - prev, out)) return -1;
        }
        prev = end;
    }
    if (unk_from != SIZE_MAX && emit_token(tok, s + unk_from, n - unk_from, out)) return -1;
    return 0;
}

/* ======================================================================== encode */

typedef struct {
    const m2u_unigram *tok;
    work *w;
} piece_ctx;

/* Normalise, pre-tokenise and tokenise one piece of raw text (an m2u_tj_piece_fn). */
static int encode_piece(void *ctx, const char *s, size_t n, bool at_origin, m2u_tj_ids *out) {
    const m2u_unigram *tok = ((piece_ctx *)ctx)->tok;
    work *w = ((piece_ctx *)ctx)->w;
    if (m2u_tj_normalize(&tok->norm, s, n, &w->norm, &w->tmp)) return -1;
    const char *text;
    const m2u_tj_words *words;
    if (m2u_tj_pretokenize(&tok->pre, w->norm.s, w->norm.n, at_origin, &w->pre, &text, &words)) return -1;
    for (size_t i = 0; i < words->n; i++)
        if (unigram_word(tok, w, text + words->v[i].off, words->v[i].len, out)) return -1;
    return 0;
}

static int encode_impl(const m2u_unigram *tok, const char *text, size_t len, int add_special, size_t max_length,
                       int32_t **ids, size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    if (!tok || (!text && len)) return m2u_fail("m2u_unigram_encode: bad arguments");
    if (!text) text = "";
    size_t bad = m2u_utf8_valid_prefix((const unsigned char *)text, len);
    if (bad != len) return m2u_fail("m2u_unigram_encode: invalid UTF-8 at byte %zu", bad);
    bool templ = add_special && tok->has_template;
    size_t n_special = 0;
    for (int i = 0; templ && i < tok->n_tpl; i++) n_special += tok->tpl[i] != TPL_SEQ;
    if (max_length != SIZE_MAX && max_length < n_special)
        return m2u_fail("m2u_unigram_encode: max_length %zu is below the %zu special tokens", max_length, n_special);
    work w = {0};
    m2u_tj_ids seq = {0}, res = {0};
    piece_ctx ctx = {tok, &w};
    int rc = m2u_tj_encode_pieces(&tok->added, text, len, &w.splits, encode_piece, &ctx, &seq);
    if (max_length != SIZE_MAX && seq.n > max_length - n_special) seq.n = max_length - n_special;
    if (rc == 0 && templ) {
        rc = m2u_tj_apply_template(tok->tpl, tok->n_tpl, seq.v, seq.n, &res);
        free(seq.v);
        seq = res;
    }
    work_free(&w);
    if (rc == 0 && !seq.v) rc = m2u_tj_ids_push(&seq, 0), seq.n = 0; /* a valid pointer for an empty result */
    if (rc) {
        free(seq.v);
        return -1;
    }
    *ids = seq.v;
    *n_ids = seq.n;
    return 0;
}

int m2u_unigram_encode(const m2u_unigram *tok, const char *text, size_t len, int add_special, int32_t **ids,
                       size_t *n_ids) {
    return encode_impl(tok, text, len, add_special, SIZE_MAX, ids, n_ids);
}

int m2u_unigram_encode_truncated(const m2u_unigram *tok, const char *text, size_t len, int add_special,
                                 size_t max_length, int32_t **ids, size_t *n_ids) {
    if (max_length == SIZE_MAX) max_length--;
    return encode_impl(tok, text, len, add_special, max_length, ids, n_ids);
}

int m2u_unigram_normalize(const m2u_unigram *tok, const char *text, size_t len, char **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    if (!tok) return m2u_fail("m2u_unigram_normalize: bad arguments");
    return m2u_tj_normalize_text(&tok->norm, text, len, out, out_len);
}

/* ======================================================================== accessors */

int m2u_unigram_vocab_size(const m2u_unigram *tok) { return tok ? tok->n_ids : 0; }

int m2u_unigram_token_to_id(const m2u_unigram *tok, const char *token) {
    if (!tok || !token) return -1;
    size_t n = strlen(token);
    for (int k = 0; k < tok->added.n; k++) {
        const m2u_tj_match_pat *a = &tok->added.pats[k];
        if (a->len == n && memcmp(a->pat, token, n) == 0) return a->id;
    }
    return idmap_get(&tok->map, tok->pieces, token, n);
}

const char *m2u_unigram_id_to_token(const m2u_unigram *tok, int id) {
    if (!tok || id < 0) return NULL;
    for (int k = 0; k < tok->added.n; k++)
        if (tok->added.pats[k].id == id) return tok->added.pats[k].pat;
    return id < tok->n_pieces ? tok->pieces[id].s : NULL;
}

static const char *token_of(const void *ctx, int32_t id, bool *special) {
    const m2u_unigram *tok = ctx;
    for (int k = 0; k < tok->added.n; k++)
        if (tok->added.pats[k].id == id) {
            *special = tok->added.pats[k].special;
            return tok->added.pats[k].pat;
        }
    return id >= 0 && id < tok->n_pieces ? tok->pieces[id].s : NULL;
}

int m2u_unigram_decode(const m2u_unigram *tok, const int32_t *ids, size_t n_ids, int skip_special, char **text,
                       size_t *len) {
    *text = NULL;
    *len = 0;
    if (!tok) return m2u_fail("m2u_unigram_decode: bad arguments");
    return m2u_tj_decode_ids(&tok->dec, ids, n_ids, skip_special, token_of, tok, text, len);
}

int m2u_unigram_eos_id(const m2u_unigram *tok) {
    if (!tok) return -1;
    if (tok->has_template && tok->n_tpl >= 2 && tok->tpl[tok->n_tpl - 2] == TPL_SEQ) return tok->tpl[tok->n_tpl - 1];
    return m2u_unigram_token_to_id(tok, "</s>");
}

int m2u_unigram_pad_id(const m2u_unigram *tok) { return m2u_unigram_token_to_id(tok, "<pad>"); }
int m2u_unigram_unk_id(const m2u_unigram *tok) { return tok ? tok->unk_id : -1; }

/* ======================================================================== loading */

void m2u_unigram_free(m2u_unigram *tok) {
    if (!tok) return;
    for (int32_t i = 0; i < tok->n_pieces; i++) free(tok->pieces[i].s);
    free(tok->pieces);
    free(tok->map.slot);
    m2u_tj_matcher_free(&tok->added);
    m2u_tj_normalizer_free(&tok->norm);
    m2u_tj_pretokenizer_free(&tok->pre);
    m2u_tj_decoder_free(&tok->dec);
    free(tok->tpl);
    free(tok);
}



/* Optional boolean: absent/null leaves *out as it is. */

static int parse_post_processor(m2u_unigram *tok, const cJSON *p) {
    int n_seq;
    if (m2u_tj_parse_template(p, INT32_MAX, &tok->tpl, &tok->n_tpl, &n_seq)) return -1;
    tok->has_template = true;
    return 0;
}

static int parse_model(m2u_unigram *tok, const cJSON *model) {
    if (!cJSON_IsObject(model)) return m2u_fail("model: missing or not an object");
    const char *type = m2u_tj_type(model);
    if (!type || strcmp(type, "Unigram"))
        return m2u_fail("model.type \"%s\" is not supported (only Unigram)", type ? type : "(missing)");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    if (!cJSON_IsArray(vocab)) return m2u_fail("model.vocab must be an array of [piece, score]");
    int n = cJSON_GetArraySize(vocab);
    tok->pieces = calloc((size_t)(n ? n : 1), sizeof *tok->pieces);
    size_t cap = 16;
    while (cap < 2 * (size_t)n) cap *= 2;
    tok->map.slot = calloc(cap, sizeof *tok->map.slot);
    tok->map.mask = cap - 1;
    if (!tok->pieces || !tok->map.slot) return m2u_fail("out of memory (%d pieces)", n);
    tok->min_score = INFINITY;
    for (int i = 0; i < 256; i++) tok->byte_id[i] = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        int32_t id = tok->n_pieces;
        const cJSON *s = cJSON_GetArrayItem(it, 0), *sc = cJSON_GetArrayItem(it, 1);
        if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsString(s) || !cJSON_IsNumber(sc))
            return m2u_fail("model.vocab[%d] must be [piece, score]", id);
        size_t len = strlen(s->valuestring);
        if (m2u_utf8_valid_prefix((const unsigned char *)s->valuestring, len) != len)
            return m2u_fail("model.vocab[%d]: piece is not valid UTF-8", id);
        piece *p = &tok->pieces[id];
        p->s = m2u_tj_dup(s->valuestring, len);
        if (!p->s) return m2u_fail("out of memory");
        p->len = (uint32_t)len;
        p->score = sc->valuedouble;
        tok->n_pieces++;
        if (p->score < tok->min_score) tok->min_score = p->score;
        if (len > tok->max_piece_len) tok->max_piece_len = (uint32_t)len;
        size_t slot = idmap_slot(&tok->map, tok->pieces, p->s, len);
        tok->map.slot[slot] = (uint32_t)id + 1; /* a later duplicate replaces the earlier id */
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        tok->byte_id[b] = idmap_get(&tok->map, tok->pieces, name, 6);
    }
    tok->unk_id = -1;
    const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_id");
    if (!m2u_tj_null(unk)) {
        if (m2u_tj_index(unk, INT32_MAX, &tok->unk_id)) return m2u_fail("model.unk_id must be a non-negative integer or null");
        if (n == 0) return m2u_fail("model.vocab is empty but unk_id is set");
        if (tok->unk_id >= n) return m2u_fail("model.unk_id %d is outside the vocabulary (%d pieces)", tok->unk_id, n);
    }
    if (m2u_tj_bool(model, "byte_fallback", "model", &tok->byte_fallback)) return -1;
    tok->n_ids = tok->n_pieces;
    return 0;
}

static int32_t model_id(const void *ctx, const char *s, size_t n) {
    const m2u_unigram *tok = ctx;
    return idmap_get(&tok->map, tok->pieces, s, n);
}

/* Entries, flags and ids are checked by the shared parser (tokenizer_json.h); this model supports
 * only plain (special or not) added tokens, matched on the raw text by the shared matcher. */
static int parse_added_tokens(m2u_unigram *tok, const cJSON *list) {
    m2u_tj_added *a;
    int n;
    if (m2u_tj_parse_added(list, model_id, tok, tok->n_ids, false, &a, &n)) return -1;
    int rc = 0;
    if (n > MAX_ADDED) rc = m2u_fail("added_tokens: %d entries is too many", n);
    if (rc == 0) rc = m2u_tj_added_plain_only(a, n);
    for (int i = 0; i < n && rc == 0; i++) {
        if (a[i].id >= tok->n_ids) tok->n_ids = a[i].id + 1; /* a new id (checked to follow the others) */
        rc = m2u_tj_matcher_add(&tok->added, a[i].content, a[i].len, a[i].id, a[i].special, false, false, false);
    }
    free(a);
    if (rc) return -1;
    m2u_tj_matcher_index(&tok->added);
    return 0;
}

static int parse_root(m2u_unigram *tok, const cJSON *root) {
    if (!cJSON_IsObject(root)) return m2u_fail("top level must be a JSON object");
    if (m2u_tj_check_root(root)) return -1;
    if (parse_model(tok, cJSON_GetObjectItemCaseSensitive(root, "model"))) return -1;
    if (m2u_tj_parse_normalizer(cJSON_GetObjectItemCaseSensitive(root, "normalizer"),
                                M2U_TJ_N_PRECOMPILED | M2U_TJ_N_STRIP | M2U_TJ_N_REPLACE | M2U_TJ_N_REPLACE_REGEX,
                                &tok->norm) ||
        m2u_tj_parse_pretokenizer(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"),
                                  M2U_TJ_P_METASPACE | M2U_TJ_P_WHITESPACE_SPLIT, &tok->pre) ||
        m2u_tj_parse_decoder(cJSON_GetObjectItemCaseSensitive(root, "decoder"),
                             M2U_TJ_D_METASPACE | M2U_TJ_D_REPLACE | M2U_TJ_D_BYTE_FALLBACK | M2U_TJ_D_FUSE |
                                 M2U_TJ_D_STRIP,
                             &tok->dec))
        return -1;
    const cJSON *pp = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    if (!m2u_tj_null(pp) && parse_post_processor(tok, pp)) return -1;
    return parse_added_tokens(tok, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"));
}

static int parse_root_v(void *tok, const cJSON *root) { return parse_root(tok, root); }
static void free_v(void *tok) { m2u_unigram_free(tok); }

int m2u_unigram_load(const char *path, m2u_unigram **out) {
    void *tok;
    int rc = m2u_tj_load(path, sizeof(m2u_unigram), parse_root_v, free_v, &tok);
    *out = tok;
    return rc;
}
