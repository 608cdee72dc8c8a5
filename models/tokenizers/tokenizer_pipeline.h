/* The tokenizer.json pipeline the three tokenizer models share (BPE: tokenizer.c, Unigram:
 * unigram_tokenizer.c, WordPiece: wordpiece_tokenizer.c), as llama.cpp's single vocabulary serves
 * its models: the normalizers, the pre-tokenizers, the decoders and the added-token matcher are
 * parsed once from tokenizer.json into the structs below and run by every model, so a model keeps
 * only its algorithm (BPE merges, Unigram Viterbi, WordPiece greedy) and its vocabulary.
 *
 * Each operation is bit-compatible with `tokenizers` 0.20.3.  A model names the operations it has
 * been checked against (the M2U_TJ_N_* / M2U_TJ_P_* / M2U_TJ_D_* masks); any other type in its
 * file is refused at load with a message naming the field, rather than silently giving other ids.
 * Library code: errors via m2u_fail, nothing printed. */
#ifndef M2U_TOKENIZER_PIPELINE_H
#define M2U_TOKENIZER_PIPELINE_H

#include "strbuf.h"
#include "tokenizer_json.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ======================================================================== normalizers */

enum {
    M2U_TJ_N_PREPEND = 1 << 0,
    M2U_TJ_N_REPLACE = 1 << 1,       /* String patterns */
    M2U_TJ_N_REPLACE_REGEX = 1 << 2, /* also the Regex subset of m2u_tj_parse_replace */
    M2U_TJ_N_STRIP = 1 << 3,
    M2U_TJ_N_PRECOMPILED = 1 << 4,
    M2U_TJ_N_BERT = 1 << 5, /* BertNormalizer */
};

typedef struct m2u_tj_norm_op m2u_tj_norm_op;
typedef struct {
    m2u_tj_norm_op *ops; /* in order, Sequences flattened; none: the identity */
    int n;
} m2u_tj_normalizer;

/* Parse tokenizer.json's "normalizer" (absent / null: none), allowing the types in `allowed`. */
int m2u_tj_parse_normalizer(const cJSON *obj, unsigned allowed, m2u_tj_normalizer *out);
/* The whole chain on valid UTF-8 s[0..n) into out (cleared first; always a valid string); tmp is
 * scratch.  Neither may alias s. */
int m2u_tj_normalize(const m2u_tj_normalizer *nz, const char *s, size_t n, m2u_strbuf *out, m2u_strbuf *tmp);
void m2u_tj_normalizer_free(m2u_tj_normalizer *nz);
/* The models' normalize(): text[0..len) (valid UTF-8, else refused) normalised into *out (malloc'ed,
 * NUL-terminated; caller frees), *out_len bytes. */
int m2u_tj_normalize_text(const m2u_tj_normalizer *nz, const char *text, size_t len, char **out, size_t *out_len);

/* ======================================================================== pre-tokenizers */

enum {
    M2U_TJ_P_METASPACE = 1 << 0,
    M2U_TJ_P_WHITESPACE_SPLIT = 1 << 1,
    M2U_TJ_P_BERT = 1 << 2, /* BertPreTokenizer */
    M2U_TJ_P_BYTELEVEL = 1 << 3, /* GPT-2 / RoBERTa (add_prefix_space, use_regex) */
};

typedef struct m2u_tj_pre_op m2u_tj_pre_op;
typedef struct {
    m2u_tj_pre_op *ops; /* none: the whole piece is one word */
    int n;
} m2u_tj_pretokenizer;

/* A word: bytes [off, off + len) of the pre-tokenizer's output text. */
typedef struct {
    size_t off, len;
    bool at_origin; /* starts at offset 0 of the original text (Metaspace prepend_scheme "first") */
} m2u_tj_word;
typedef struct {
    m2u_tj_word *v;
    size_t n, cap;
} m2u_tj_words;

typedef struct { /* per-call scratch, so the models' encode stays const and thread-safe */
    m2u_strbuf buf[2];
    m2u_tj_words words[2];
} m2u_tj_pretok_work;

int m2u_tj_parse_pretokenizer(const cJSON *obj, unsigned allowed, m2u_tj_pretokenizer *out);
/* Split the normalised piece s[0..n) into words (empty ones dropped): *text is their text (s itself
 * or a buffer of w), *words the list (in w).  at_origin: the piece starts the original text. */
int m2u_tj_pretokenize(const m2u_tj_pretokenizer *pt, const char *s, size_t n, bool at_origin,
                       m2u_tj_pretok_work *w, const char **text, const m2u_tj_words **words);
void m2u_tj_pretok_work_free(m2u_tj_pretok_work *w);
void m2u_tj_pretokenizer_free(m2u_tj_pretokenizer *pt);

/* ======================================================================== decoders */

enum {
    M2U_TJ_D_REPLACE = 1 << 0,
    M2U_TJ_D_BYTE_FALLBACK = 1 << 1,
    M2U_TJ_D_FUSE = 1 << 2,
    M2U_TJ_D_STRIP = 1 << 3,
    M2U_TJ_D_METASPACE = 1 << 4,
    M2U_TJ_D_WORDPIECE = 1 << 5, /* prefix, cleanup */
    M2U_TJ_D_BYTELEVEL = 1 << 6,
};

typedef struct m2u_tj_dec_op m2u_tj_dec_op;
typedef struct {
    bool present; /* false: tokens are joined with spaces, as the reference does without a decoder */
    m2u_tj_dec_op *ops;
    int n;
} m2u_tj_decoder;

int m2u_tj_parse_decoder(const cJSON *obj, unsigned allowed, m2u_tj_decoder *out);
/* A list of strings stored back to back in one buffer (the decoders' token list). */
typedef struct {
    size_t off, len;
} m2u_tj_span;
typedef struct {
    m2u_strbuf b;
    m2u_tj_span *s;
    size_t n, cap;
} m2u_tj_strlist;
int m2u_tj_strlist_add(m2u_tj_strlist *l, const char *p, size_t n);
void m2u_tj_strlist_free(m2u_tj_strlist *l);
/* Run the decoder chain on the token strings `tokens` (emptied, kept allocated: free it) and join
 * the result: *text malloc'ed (caller frees), *len its byte length. */
int m2u_tj_decode(const m2u_tj_decoder *d, m2u_tj_strlist *tokens, char **text, size_t *len);
void m2u_tj_decoder_free(m2u_tj_decoder *d);
/* A model's id -> token string (NULL: unknown id, skipped as the reference does); *special: the
 * token is a special added token (skipped when asked). */
typedef const char *(*m2u_tj_token_fn)(const void *ctx, int32_t id, bool *special);
/* tokenizers' Tokenizer::decode: ids to token strings, then m2u_tj_decode. */
int m2u_tj_decode_ids(const m2u_tj_decoder *d, const int32_t *ids, size_t n_ids, int skip_special,
                      m2u_tj_token_fn token, const void *ctx, char **text, size_t *len);

/* ======================================================================== added tokens */

/* tokenizers' AddedVocabulary matcher (its AhoCorasick with MatchKind::LeftmostLongest) and its
 * find_matches rules: single_word, lstrip, rstrip. */
typedef struct {
    char *pat; /* owned */
    size_t len;
    int32_t id;
    int order; /* insertion order: breaks ties between equal patterns like the automaton does */
    bool special; /* not used to match: the models' decode skips special tokens when asked */
    bool single_word, lstrip, rstrip;
} m2u_tj_match_pat;

typedef struct {
    m2u_tj_match_pat *pats; /* after m2u_tj_matcher_index: by first byte, longest first, then order */
    int n, cap;
    int first[257]; /* patterns starting with byte b are pats[first[b] .. first[b+1]) */
} m2u_tj_matcher;

/* Add a pattern (an empty one is ignored: it matches nothing useful); index once all are added. */
int m2u_tj_matcher_add(m2u_tj_matcher *m, const char *pat, size_t len, int32_t id, bool special, bool single_word,
                       bool lstrip, bool rstrip);
void m2u_tj_matcher_index(m2u_tj_matcher *m);
void m2u_tj_matcher_free(m2u_tj_matcher *m);

typedef struct {
    size_t start, stop;
    int32_t id; /* -1: plain text */
} m2u_tj_split;
typedef struct {
    m2u_tj_split *v;
    size_t n, cap;
} m2u_tj_splits;

/* AddedVocabulary::find_matches: cut s[0..n) into plain pieces and added tokens (out cleared
 * first; may hold empty pieces, which callers skip). */
int m2u_tj_find_matches(const m2u_tj_matcher *m, const char *s, size_t n, m2u_tj_splits *out);

/* Encode text[0..len) as the reference's encode_single_sequence does around a model: cut it on the
 * added tokens (m2u_tj_find_matches into *splits, the caller's scratch), push each token's id, and
 * run piece(ctx, ...) on each non-empty plain piece in between (at_origin: it starts the text). */
typedef int (*m2u_tj_piece_fn)(void *ctx, const char *s, size_t n, bool at_origin, m2u_tj_ids *out);
int m2u_tj_encode_pieces(const m2u_tj_matcher *m, const char *text, size_t len, m2u_tj_splits *splits,
                         m2u_tj_piece_fn piece, void *ctx, m2u_tj_ids *out);

/* Refuse the added-token flags a model does not match by (the Unigram and WordPiece models match
 * added tokens on the raw text only, as their checked files do): names the entry and the flag. */
int m2u_tj_added_plain_only(const m2u_tj_added *a, int n);

#endif
