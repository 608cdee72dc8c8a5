/* The tokenizer.json pieces the three tokenizer models share (BPE: tokenizer.c, Unigram:
 * unigram_tokenizer.c, WordPiece: wordpiece_tokenizer.c), as llama.cpp's single vocabulary serves
 * its models: the JSON field readers with one message style, the added_tokens list with Hugging
 * Face's id rule, the post-processor template, Metaspace's parameters and the Replace operation.
 * The pipeline built from them (normalizers, pre-tokenizers, decoders, the added-token matcher) is
 * tokenizer_pipeline.h.  Library code: errors via m2u_fail, nothing printed. */
#ifndef M2U_TOKENIZER_JSON_H
#define M2U_TOKENIZER_JSON_H

#include "m2u_error.h"
#include "strbuf.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Read and parse a tokenizer.json.  Errors name the file: "malformed JSON near byte N", or "not a
 * JSON object" when the top level is something else (the models never accept that). */
int m2u_tj_read(const char *path, cJSON **root);

/* The load every model shares: read path (m2u_tj_read), calloc a model of `size` bytes, parse(model,
 * root); on failure free_model(model) and prefix the error with the path.  *out: the model or NULL. */
int m2u_tj_load(const char *path, size_t size, int (*parse)(void *model, const cJSON *root),
                void (*free_model)(void *model), void **out);

/* The top-level fields the BPE and Unigram models check: "version" "1.0" (or absent), and no
 * "truncation" or "padding" (m2u's callers truncate and pad themselves). */
int m2u_tj_check_root(const cJSON *root);

/* absent or JSON null */
bool m2u_tj_null(const cJSON *j);
/* obj["type"] when it is a string, else NULL */
const char *m2u_tj_type(const cJSON *obj);
/* obj[key] into *out; absent or null leaves *out (the caller's default).  Errors name where.key. */
int m2u_tj_bool(const cJSON *obj, const char *key, const char *where, bool *out);
int m2u_tj_str(const cJSON *obj, const char *key, const char *where, const char **out); /* borrowed */
int m2u_tj_int(const cJSON *obj, const char *key, const char *where, int min, int *out);

/* One entry of tokenizer.json's added_tokens; content borrowed from the cJSON document. */
typedef struct {
    const char *content;
    size_t len;
    int32_t id; /* declared, and checked to be the id the reference gives the token */
    bool special, single_word, lstrip, rstrip, normalized;
} m2u_tj_added;

/* The id of s[0..n) in the model's own vocabulary, or -1. */
typedef int32_t (*m2u_tj_model_id)(const void *ctx, const char *s, size_t n);

/* Parse added_tokens (absent or null: none).  Every entry needs a string content, an integer id and
 * boolean flags; an absent flag is false, except normalized: normalized_default (tokenizers' own
 * default is true; the Unigram and WordPiece models, which match added tokens on the raw text only,
 * have always read an absent one as false).  The id must
 * be the one HF tokenizers gives the token: its model vocabulary id, else the id of an earlier entry
 * with the same content, else the next free one (n_model, or one past the largest added id when that
 * is already >= n_model).  HF renumbers a token that declares another id with only a logged warning,
 * which would give its trained embedding row to another token: here the file is refused.  An empty
 * content has no id (the reference ignores it).  *out is malloc'ed (caller frees), *n_out entries. */
int m2u_tj_parse_added(const cJSON *list, m2u_tj_model_id model_id, const void *ctx, int32_t n_model,
                       bool normalized_default, m2u_tj_added **out, int *n_out);

/* s[0..n) as a malloc'ed NUL-terminated string, or NULL when out of memory. */
char *m2u_tj_dup(const char *s, size_t n);
/* A JSON integer in [0, max) into *out: 0, or -1 (nothing reported) when j is anything else. */
int m2u_tj_index(const cJSON *j, int64_t max, int32_t *out);

/* A string field that must be exactly one valid UTF-8 character: its code point. */
int m2u_tj_char(const cJSON *obj, const char *key, const char *where, uint32_t *cp);

/* Metaspace (pre-tokenizer or decoder): replacement character, when to prepend it, split. */
typedef enum { M2U_TJ_PREPEND_ALWAYS, M2U_TJ_PREPEND_FIRST, M2U_TJ_PREPEND_NEVER } m2u_tj_prepend;
typedef struct {
    uint32_t cp;    /* replacement */
    char rep[4];    /* its UTF-8 bytes */
    int rep_len;
    m2u_tj_prepend scheme; /* prepend_scheme (default always); older files' add_prefix_space false = never */
    bool split;            /* default true */
} m2u_tj_metaspace;
int m2u_tj_parse_metaspace(const cJSON *obj, const char *where, m2u_tj_metaspace *out);

/* Call one(ctx, part, where) on each part of a normalizer, pre-tokenizer or decoder: the object
 * itself, or for {"type": "Sequence", list_key: [...]} each element, nested Sequences flattened in
 * order, with child_where naming them.  Stops at the first error.  A part without a string "type"
 * is refused here. */
typedef int (*m2u_tj_part_fn)(void *ctx, const cJSON *part, const char *type, const char *where);
int m2u_tj_each_part(const cJSON *obj, const char *where, const char *list_key, const char *child_where,
                     m2u_tj_part_fn one, void *ctx);

/* The models' text buffers are models/core's one growable string (strbuf.h: s, n, cap, NUL-terminated
 * after n bytes; reset with n = 0).  m2u_tj_put appends and turns its sticky out-of-memory flag into
 * the usual -1 + m2u_fail, so the models' error paths stay as they were. */
static inline int m2u_tj_put(m2u_strbuf *b, const void *s, size_t n) {
    if (b->n + n < b->cap) { /* inline when it fits: the models append per character on hot paths */
        if (n) memcpy(b->s + b->n, s, n);
        b->n += n;
        b->s[b->n] = '\0';
        return 0;
    }
    m2u_sb_put(b, n ? (const char *)s : "", n);
    return b->oom ? m2u_fail("out of memory (text buffer of %zu bytes)", b->n + n) : 0;
}

/* A growable list of token ids. */
typedef struct {
    int32_t *v;
    size_t n, cap;
} m2u_tj_ids;
static inline int m2u_tj_ids_push(m2u_tj_ids *l, int32_t id) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        int32_t *v = realloc(l->v, cap * sizeof *v);
        if (!v) return m2u_fail("out of memory (%zu ids)", cap);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = id;
    return 0;
}

/* The Replace normalizer / decoder: pattern {"String": s}, or with allow_regex {"Regex": r} where r
 * is a literal (metacharacters escaped) or one character followed by +, {m}, {m,} or {m,n}; and
 * content.  Apply: every leftmost, non-overlapping match in s[0..n) replaced, appended to out. */
typedef struct {
    char *pat, *content;
    size_t pat_len, content_len;
    bool run;             /* pat is one character repeated rep_min..rep_max times (0 = no max) */
    int rep_min, rep_max; /* run only */
} m2u_tj_replace;
int m2u_tj_parse_replace(const cJSON *obj, const char *where, bool allow_regex, m2u_tj_replace *out);
int m2u_tj_replace_apply(const m2u_tj_replace *r, const char *s, size_t n, m2u_strbuf *out);
void m2u_tj_replace_free(m2u_tj_replace *r);

/* Marks the place of the encoded text in a post-processor template. */
#define M2U_TJ_TPL_SEQUENCE (-1)

/* A TemplateProcessing post_processor's "single" template (one sequence, as every model here
 * encodes one text): its pieces in order, each SpecialToken as the ids special_tokens gives it
 * (each in [0, id_limit)), each Sequence (which must be "A") as M2U_TJ_TPL_SEQUENCE.  Any other
 * post_processor type is refused; callers handle null and their own extra types first.
 * *tpl is malloc'ed (caller frees), *n_tpl entries, *n_seq Sequence pieces among them. */
int m2u_tj_parse_template(const cJSON *p, int64_t id_limit, int32_t **tpl, int *n_tpl, int *n_seq);
/* Apply a template to seq[0..n_seq): each of its ids appended to out, each M2U_TJ_TPL_SEQUENCE
 * replaced by the sequence.  tpl NULL: the sequence alone. */
/* A BertProcessing or RobertaProcessing post_processor ("cls" and "sep" as [token, id], each id in
 * [0, id_limit)): the single template cls $A sep into *tpl (malloc'ed), *n_tpl = 3.  RobertaProcessing's
 * trim_offsets and add_prefix_space only move offsets.  Returns 1 when p is one of them, 0 when it is
 * not (nothing set), -1 on error. */
int m2u_tj_parse_cls_sep(const cJSON *p, int64_t id_limit, int32_t **tpl, int *n_tpl);
int m2u_tj_apply_template(const int32_t *tpl, int n_tpl, const int32_t *seq, size_t n_seq, m2u_tj_ids *out);

#endif
