/* WordPiece tokenizer.json encoding: see wordpiece_tokenizer.h.  Checked against
 * tokenizers 0.20.3 by tests/test_bert.c on tests/fixtures/bertscore.  The added-token matcher,
 * BertNormalizer and BertPreTokenizer are the shared pipeline's (tokenizer_pipeline.h); this file
 * holds the WordPiece model and its vocabulary. */
#include "wordpiece_tokenizer.h"

#include "tokenizer_json.h"
#include "tokenizer_pipeline.h"
#include "fileio.h"
#include "m2u_error.h"
#include "utf8_util.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define TPL_SEQUENCE M2U_TJ_TPL_SEQUENCE /* where the encoded text goes in the template */

struct m2u_wordpiece {
    char **vocab; /* id -> token (NULL for unused ids) */
    int n_vocab;
    int32_t *slots; /* open addressing, -1 empty */
    size_t n_slots;
    int32_t unk_id;
    char *prefix;
    size_t prefix_len;
    int max_chars;
    m2u_tj_normalizer norm;
    m2u_tj_pretokenizer pre;
    m2u_tj_decoder dec;
    int32_t *tpl; /* TemplateProcessing single: ids and TPL_SEQUENCE */
    int n_tpl;
    m2u_tj_matcher added; /* matched on the raw text */
};

/* ---- vocabulary ---- */

static uint64_t wp_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static int32_t vocab_find(const m2u_wordpiece *tok, const char *s, size_t n) {
    size_t mask = tok->n_slots - 1;
    for (size_t k = (size_t)wp_hash(s, n) & mask;; k = (k + 1) & mask) {
        int32_t id = tok->slots[k];
        if (id < 0) return -1;
        const char *v = tok->vocab[id];
        if (strlen(v) == n && memcmp(v, s, n) == 0) return id;
    }
}

/* ---- encoding ---- */

/* WordPiece on one pre-token (UTF-8 word[0..n)), appending ids; buf has room for prefix + n. */
static int wordpiece_word(const m2u_wordpiece *tok, const char *word, size_t n, char *buf, m2u_tj_ids *out) {
    size_t chars = 0;
    for (size_t i = 0; i < n; i += (size_t)m2u_utf8_len((unsigned char)word[i])) chars++;
    if (chars > (size_t)tok->max_chars) return m2u_tj_ids_push(out, tok->unk_id);
    size_t first = out->n, start = 0;
    while (start < n) {
        size_t end = n;
        int32_t found = -1;
        while (start < end) {
            size_t m = 0;
            if (start > 0) {
                memcpy(buf, tok->prefix, tok->prefix_len);
                m = tok->prefix_len;
            }
            memcpy(buf + m, word + start, end - start);
            found = vocab_find(tok, buf, m + end - start);
            if (found >= 0) break;
            do end--; /* previous character boundary */
            while (end > start && ((unsigned char)word[end] & 0xC0) == 0x80);
        }
        if (found < 0) {
            out->n = first; /* the whole word becomes one unknown token */
            return m2u_tj_ids_push(out, tok->unk_id);
        }
        if (m2u_tj_ids_push(out, found)) return -1;
        start = end;
    }
    return 0;
}

typedef struct { /* per-call scratch */
    m2u_strbuf norm, tmp;
    m2u_tj_pretok_work pre;
    m2u_tj_splits splits;
    char *buf; /* lookup room: prefix + a word */
    size_t buf_cap;
} work;

typedef struct {
    const m2u_wordpiece *tok;
    work *w;
} piece_ctx;

/* Normalize, pre-tokenize and WordPiece one stretch of text without added tokens (an m2u_tj_piece_fn). */
static int encode_piece(void *ctx, const char *s, size_t n, bool at_origin, m2u_tj_ids *out) {
    const m2u_wordpiece *tok = ((piece_ctx *)ctx)->tok;
    work *w = ((piece_ctx *)ctx)->w;
    if (m2u_tj_normalize(&tok->norm, s, n, &w->norm, &w->tmp)) return -1;
    size_t need = tok->prefix_len + w->norm.n + 1; /* every word is a part of the normalized text */
    /* two regions of `need` bytes: the lookup room, then the word; a buffer
     * kept from a shorter earlier stretch may hold the first but not both */
    if (2 * need > w->buf_cap) {
        char *b = realloc(w->buf, 2 * need);
        if (!b) return m2u_fail("out of memory (word buffer)");
        w->buf = b, w->buf_cap = 2 * need;
    }
    const char *text;
    const m2u_tj_words *words;
    if (m2u_tj_pretokenize(&tok->pre, w->norm.s, w->norm.n, at_origin, &w->pre, &text, &words)) return -1;
    for (size_t i = 0; i < words->n; i++)
        if (wordpiece_word(tok, text + words->v[i].off, words->v[i].len, w->buf, out)) return -1;
    return 0;
}

int m2u_wordpiece_encode(const m2u_wordpiece *tok, const char *text, size_t len, int add_special, size_t max_length,
                         int32_t **ids, size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    size_t bad = m2u_utf8_valid_prefix((const unsigned char *)text, len);
    if (bad != len) return m2u_fail("wordpiece: invalid UTF-8 at byte %zu", bad);
    m2u_tj_ids body = {0}, res = {0};
    work w = {0};
    piece_ctx ctx = {tok, &w};
    int rc = m2u_tj_encode_pieces(&tok->added, text, len, &w.splits, encode_piece, &ctx, &body);
    if (!rc) {
        size_t keep = body.n;
        size_t special = add_special ? (size_t)m2u_wordpiece_n_special(tok) : 0;
        if (max_length > 0 && keep + special > max_length) keep = max_length > special ? max_length - special : 0;
        bool tpl = add_special && tok->n_tpl;
        rc = m2u_tj_apply_template(tpl ? tok->tpl : NULL, tok->n_tpl, body.v, keep, &res);
        if (!rc && !res.v) rc = m2u_tj_ids_push(&res, 0), res.n = 0;
    }
    free(body.v);
    free(w.norm.s);
    free(w.tmp.s);
    m2u_tj_pretok_work_free(&w.pre);
    free(w.splits.v);
    free(w.buf);
    if (rc) {
        free(res.v);
        return -1;
    }
    *ids = res.v;
    *n_ids = res.n;
    return 0;
}

int m2u_wordpiece_normalize(const m2u_wordpiece *tok, const char *text, size_t len, char **out, size_t *out_len) {
    return m2u_tj_normalize_text(&tok->norm, text, len, out, out_len);
}

static const char *token_of(const void *ctx, int32_t id, bool *special) {
    const m2u_wordpiece *tok = ctx;
    for (int k = 0; k < tok->added.n; k++)
        if (tok->added.pats[k].id == id) *special = tok->added.pats[k].special;
    return id >= 0 && id < tok->n_vocab ? tok->vocab[id] : NULL;
}

int m2u_wordpiece_decode(const m2u_wordpiece *tok, const int32_t *ids, size_t n_ids, int skip_special, char **text,
                         size_t *len) {
    *text = NULL;
    *len = 0;
    if (!tok) return m2u_fail("m2u_wordpiece_decode: bad arguments");
    return m2u_tj_decode_ids(&tok->dec, ids, n_ids, skip_special, token_of, tok, text, len);
}

int m2u_wordpiece_vocab_size(const m2u_wordpiece *tok) { return tok ? tok->n_vocab : 0; }

int m2u_wordpiece_token_to_id(const m2u_wordpiece *tok, const char *token) {
    return tok && token ? vocab_find(tok, token, strlen(token)) : -1;
}

static int tpl_special(const m2u_wordpiece *tok, int last) {
    if (!tok || tok->n_tpl == 0) return -1;
    int k = last ? tok->n_tpl - 1 : 0;
    return tok->tpl[k] == TPL_SEQUENCE ? -1 : tok->tpl[k];
}
int m2u_wordpiece_cls_id(const m2u_wordpiece *tok) { return tpl_special(tok, 0); }
int m2u_wordpiece_sep_id(const m2u_wordpiece *tok) { return tpl_special(tok, 1); }

int m2u_wordpiece_n_special(const m2u_wordpiece *tok) {
    int n = 0;
    for (int k = 0; tok && k < tok->n_tpl; k++) n += tok->tpl[k] != TPL_SEQUENCE;
    return n;
}

void m2u_wordpiece_free(m2u_wordpiece *tok) {
    if (!tok) return;
    for (int k = 0; tok->vocab && k < tok->n_vocab; k++) free(tok->vocab[k]);
    free(tok->vocab);
    free(tok->slots);
    free(tok->prefix);
    free(tok->tpl);
    m2u_tj_matcher_free(&tok->added);
    m2u_tj_normalizer_free(&tok->norm);
    m2u_tj_pretokenizer_free(&tok->pre);
    m2u_tj_decoder_free(&tok->dec);
    free(tok);
}

/* ---- loading ---- */



static int set_token(m2u_wordpiece *tok, int id, const char *s) {
    if (tok->vocab[id]) return m2u_fail("model.vocab: id %d is used twice", id);
    tok->vocab[id] = strdup(s);
    if (!tok->vocab[id]) return m2u_fail("out of memory");
    size_t mask = tok->n_slots - 1, n = strlen(s);
    size_t k = (size_t)wp_hash(s, n) & mask;
    while (tok->slots[k] >= 0) k = (k + 1) & mask;
    tok->slots[k] = id;
    return 0;
}

static int parse_model(m2u_wordpiece *tok, const cJSON *m, const m2u_tj_added *added, int n_added) {
    const char *type = m2u_tj_type(m);
    if (!cJSON_IsObject(m) || !type || strcmp(type, "WordPiece"))
        return m2u_fail("model.type: \"%s\" is not supported (need WordPiece)", type ? type : "?");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(m, "vocab");
    if (!cJSON_IsObject(vocab) || !vocab->child) return m2u_fail("model.vocab must be a non-empty object");
    int max_id = -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, vocab) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 1e8 ||
            it->valuedouble != (double)(int)it->valuedouble)
            return m2u_fail("model.vocab[\"%s\"]: id must be a non-negative integer", it->string);
        if (it->valueint > max_id) max_id = it->valueint;
    }
    /* the added tokens' ids were checked by the shared parser (tokenizer_json.h) before any id
     * sizes an allocation here */
    for (int k = 0; k < n_added; k++)
        if (added[k].id > max_id) max_id = added[k].id;
    tok->n_vocab = max_id + 1;
    for (tok->n_slots = 16; tok->n_slots < 2 * (size_t)tok->n_vocab;) tok->n_slots *= 2;
    tok->vocab = calloc((size_t)tok->n_vocab, sizeof *tok->vocab);
    tok->slots = malloc(tok->n_slots * sizeof *tok->slots);
    if (!tok->vocab || !tok->slots) return m2u_fail("out of memory (vocabulary)");
    memset(tok->slots, 0xFF, tok->n_slots * sizeof *tok->slots);
    cJSON_ArrayForEach(it, vocab) {
        if (vocab_find(tok, it->string, strlen(it->string)) >= 0)
            return m2u_fail("model.vocab: token \"%s\" appears twice", it->string);
        if (set_token(tok, it->valueint, it->string)) return -1;
    }
    const char *unk, *prefix;
    unk = "[UNK]", prefix = "##";
    tok->max_chars = 100;
    if (m2u_tj_str(m, "unk_token", "model", &unk) || m2u_tj_str(m, "continuing_subword_prefix", "model", &prefix) ||
        m2u_tj_int(m, "max_input_chars_per_word", "model", 0, &tok->max_chars))
        return -1;
    tok->unk_id = vocab_find(tok, unk, strlen(unk));
    if (tok->unk_id < 0) return m2u_fail("model.unk_token \"%s\" is not in the vocabulary", unk);
    tok->prefix = strdup(prefix);
    if (!tok->prefix) return m2u_fail("out of memory");
    tok->prefix_len = strlen(prefix);
    return 0;
}

static int parse_post(m2u_wordpiece *tok, const cJSON *p) {
    if (m2u_tj_null(p)) return 0;
    int r = m2u_tj_parse_cls_sep(p, INT32_MAX, &tok->tpl, &tok->n_tpl); /* BertProcessing */
    if (r) return r < 0 ? -1 : 0;
    int n_seq;
    if (m2u_tj_parse_template(p, tok->n_vocab, &tok->tpl, &tok->n_tpl, &n_seq)) return -1;
    if (n_seq != 1) return m2u_fail("post_processor.single: needs exactly one Sequence");
    return 0;
}

static int parse_added(m2u_wordpiece *tok, const m2u_tj_added *list, int n) {
    if (m2u_tj_added_plain_only(list, n)) return -1;
    for (int k = 0; k < n; k++) {
        const m2u_tj_added *e = &list[k];
        if (!tok->vocab[e->id] && set_token(tok, e->id, e->content)) return -1;
        if (m2u_tj_matcher_add(&tok->added, e->content, e->len, e->id, e->special, false, false, false)) return -1;
    }
    m2u_tj_matcher_index(&tok->added);
    return 0;
}

/* model.vocab lookup for the shared added-token parser (s is a whole NUL-terminated content) */
static int32_t model_id(const void *ctx, const char *s, size_t n) {
    (void)n;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive((const cJSON *)ctx, s);
    return cJSON_IsNumber(v) ? (int32_t)v->valueint : -1;
}

static int parse_root(m2u_wordpiece *tok, const cJSON *root) {
    /* "truncation" and "padding" are ignored: transformers sets both per call (encode of one
     * sequence: no padding, truncation from its arguments), and so does m2u_wordpiece_encode. */
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    m2u_tj_added *added = NULL;
    int n_added = 0;
    /* a missing or malformed vocabulary is reported by parse_model */
    if (cJSON_IsObject(vocab) &&
        m2u_tj_parse_added(cJSON_GetObjectItemCaseSensitive(root, "added_tokens"), model_id, vocab,
                           cJSON_GetArraySize(vocab), false, &added, &n_added))
        return -1;
    int rc = parse_model(tok, model, added, n_added) ||
             m2u_tj_parse_normalizer(cJSON_GetObjectItemCaseSensitive(root, "normalizer"), M2U_TJ_N_BERT, &tok->norm);
    if (!rc)
        rc = m2u_tj_parse_pretokenizer(cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"), M2U_TJ_P_BERT,
                                       &tok->pre) ||
             m2u_tj_parse_decoder(cJSON_GetObjectItemCaseSensitive(root, "decoder"), M2U_TJ_D_WORDPIECE, &tok->dec);
    if (!rc) rc = parse_post(tok, cJSON_GetObjectItemCaseSensitive(root, "post_processor")) ||
                  parse_added(tok, added, n_added);
    free(added);
    return rc ? -1 : 0;
}

static int parse_root_v(void *tok, const cJSON *root) { return parse_root(tok, root); }
static void free_v(void *tok) { m2u_wordpiece_free(tok); }

int m2u_wordpiece_load(const char *path, m2u_wordpiece **out) {
    /* m2u_tj_read (inside m2u_tj_load) rather than m2u_json_load, whose duplicate-key check is
     * quadratic in a 30k-entry vocabulary; duplicated vocabulary tokens are caught by parse_model */
    void *tok;
    int rc = m2u_tj_load(path, sizeof(m2u_wordpiece), parse_root_v, free_v, &tok);
    *out = tok;
    return rc;
}
