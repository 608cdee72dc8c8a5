/* WordPiece tokenizer.json encoding: see wordpiece_tokenizer.h.  Checked against
 * tokenizers 0.20.3 by tests/test_bert.c on tests/fixtures/bertscore. */
#include "wordpiece_tokenizer.h"

#include "bert_unicode_tables.h"
#include "tokenizer_json.h"
#include "fileio.h"
#include "m2u_error.h"
#include "utf8_util.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define TPL_SEQUENCE M2U_TJ_TPL_SEQUENCE /* where the encoded text goes in the template */

typedef struct {
    char *text;
    size_t len;
    int32_t id;
} wp_added;

struct m2u_wordpiece {
    char **vocab; /* id -> token (NULL for unused ids) */
    int n_vocab;
    int32_t *slots; /* open addressing, -1 empty */
    size_t n_slots;
    int32_t unk_id;
    char *prefix;
    size_t prefix_len;
    int max_chars;
    bool has_norm, clean, cjk, strip, lower, has_pretok;
    int32_t *tpl; /* TemplateProcessing single: ids and TPL_SEQUENCE */
    int n_tpl;
    wp_added *added; /* longest first */
    int n_added;
};

/* ---- growable buffers ---- */



typedef struct {
    uint32_t *v;
    size_t n, cap;
} wp_cps;

static int wp_cps_push(wp_cps *l, uint32_t c) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        uint32_t *v = realloc(l->v, cap * sizeof *v);
        if (!v) return m2u_fail("out of memory (normalized text)");
        l->v = v, l->cap = cap;
    }
    l->v[l->n++] = c;
    return 0;
}

/* ---- Unicode tables ---- */

static bool in_ranges(const uint32_t (*r)[2], size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid][0]) hi = mid;
        else if (c > r[mid][1]) lo = mid + 1;
        else return true;
    }
    return false;
}
#define IN_TABLE(t, c) in_ranges((t), sizeof(t) / sizeof((t)[0]), (c))

/* Replacement of c in a per-character map: NULL when c maps to itself. */
static const uint32_t *map_lookup(const uint32_t (*m)[3], size_t n, const uint32_t *pool, uint32_t c, int *len) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < m[mid][0]) hi = mid;
        else if (c > m[mid][0]) lo = mid + 1;
        else {
            *len = (int)m[mid][2];
            return pool + m[mid][1];
        }
    }
    return NULL;
}

static int push_lower(const m2u_wordpiece *tok, wp_cps *out, uint32_t c) {
    int n;
    const uint32_t *r = tok->lower ? map_lookup(BERT_U_LOWER_MAP, sizeof BERT_U_LOWER_MAP / sizeof BERT_U_LOWER_MAP[0],
                                                BERT_U_LOWER_MAP_POOL, c, &n)
                                   : NULL;
    if (!r) return wp_cps_push(out, c);
    for (int k = 0; k < n; k++)
        if (wp_cps_push(out, r[k])) return -1;
    return 0;
}

/* strip_accents (NFD, then nonspacing marks dropped) per character, then lowercase. */
static int push_stripped(const m2u_wordpiece *tok, wp_cps *out, uint32_t c) {
    if (!tok->strip) return push_lower(tok, out, c);
    if (c >= 0xAC00 && c <= 0xD7A3) { /* Hangul syllable: algorithmic NFD */
        uint32_t s = c - 0xAC00, t = s % 28;
        if (push_lower(tok, out, 0x1100 + s / 588) || push_lower(tok, out, 0x1161 + (s % 588) / 28)) return -1;
        return t ? push_lower(tok, out, 0x11A7 + t) : 0;
    }
    int n;
    const uint32_t *r = map_lookup(BERT_U_ACCENT_MAP, sizeof BERT_U_ACCENT_MAP / sizeof BERT_U_ACCENT_MAP[0],
                                   BERT_U_ACCENT_MAP_POOL, c, &n);
    if (!r) return push_lower(tok, out, c);
    for (int k = 0; k < n; k++)
        if (push_lower(tok, out, r[k])) return -1;
    return 0;
}

/* BertNormalizer on valid UTF-8 s[0..n) -> code points appended to out. */
static int normalize_cps(const m2u_wordpiece *tok, const char *s, size_t n, wp_cps *out) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t c;
        i += (size_t)m2u_utf8_decode(u + i, &c);
        if (!tok->has_norm) {
            if (wp_cps_push(out, c)) return -1;
            continue;
        }
        if (tok->clean) {
            if (IN_TABLE(BERT_U_REMOVED, c)) continue;
            if (IN_TABLE(BERT_U_CLEAN_SPACE, c)) c = ' ';
        }
        if (tok->cjk && IN_TABLE(BERT_U_CJK, c)) {
            if (wp_cps_push(out, ' ') || push_stripped(tok, out, c) || wp_cps_push(out, ' ')) return -1;
            continue;
        }
        if (push_stripped(tok, out, c)) return -1;
    }
    return 0;
}

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

static bool is_split_space(uint32_t c) { return IN_TABLE(BERT_U_SPLIT_SPACE, c); }
static bool is_punct(uint32_t c) { return IN_TABLE(BERT_U_PUNCT, c); }

/* Normalize, pre-tokenize and WordPiece one stretch of text without added tokens. */
static int encode_plain(const m2u_wordpiece *tok, const char *s, size_t n, wp_cps *cps, char **buf, size_t *buf_cap,
                        m2u_tj_ids *out) {
    cps->n = 0;
    if (normalize_cps(tok, s, n, cps)) return -1;
    size_t need = tok->prefix_len + 4 * cps->n + 1;
    if (need > *buf_cap) {
        char *b = realloc(*buf, 2 * need);
        if (!b) return m2u_fail("out of memory (word buffer)");
        *buf = b, *buf_cap = 2 * need;
    }
    char *word = *buf + need; /* the word's UTF-8, after the lookup room */
    size_t i = 0;
    while (i < cps->n) {
        size_t wl = 0;
        if (tok->has_pretok) {
            if (is_split_space(cps->v[i])) {
                i++;
                continue;
            }
            if (is_punct(cps->v[i])) {
                wl = (size_t)m2u_utf8_encode(cps->v[i++], word);
            } else {
                while (i < cps->n && !is_split_space(cps->v[i]) && !is_punct(cps->v[i]))
                    wl += (size_t)m2u_utf8_encode(cps->v[i++], word + wl);
            }
        } else {
            while (i < cps->n) wl += (size_t)m2u_utf8_encode(cps->v[i++], word + wl);
        }
        if (wl && wordpiece_word(tok, word, wl, *buf, out)) return -1;
    }
    return 0;
}

static const wp_added *added_at(const m2u_wordpiece *tok, const char *s, size_t n, size_t at) {
    for (int k = 0; k < tok->n_added; k++) {
        const wp_added *a = &tok->added[k];
        if (a->len <= n - at && memcmp(s + at, a->text, a->len) == 0) return a;
    }
    return NULL;
}

int m2u_wordpiece_encode(const m2u_wordpiece *tok, const char *text, size_t len, int add_special, size_t max_length,
                         int32_t **ids, size_t *n_ids) {
    *ids = NULL;
    *n_ids = 0;
    size_t bad = m2u_utf8_valid_prefix((const unsigned char *)text, len);
    if (bad != len) return m2u_fail("wordpiece: invalid UTF-8 at byte %zu", bad);
    m2u_tj_ids body = {0}, res = {0};
    wp_cps cps = {0};
    char *buf = NULL;
    size_t buf_cap = 0, seg = 0, at = 0;
    int rc = 0;
    while (!rc && at <= len) {
        const wp_added *a = at < len ? added_at(tok, text, len, at) : NULL;
        if (!a && at < len) {
            at++;
            continue;
        }
        if (at > seg) rc = encode_plain(tok, text + seg, at - seg, &cps, &buf, &buf_cap, &body);
        if (!rc && a) rc = m2u_tj_ids_push(&body, a->id);
        at += a ? a->len : 1;
        seg = at;
    }
    if (!rc) {
        size_t keep = body.n;
        size_t special = add_special ? (size_t)m2u_wordpiece_n_special(tok) : 0;
        if (max_length > 0 && keep + special > max_length) keep = max_length > special ? max_length - special : 0;
        if (add_special && tok->n_tpl) {
            for (int k = 0; !rc && k < tok->n_tpl; k++) {
                if (tok->tpl[k] != TPL_SEQUENCE) {
                    rc = m2u_tj_ids_push(&res, tok->tpl[k]);
                    continue;
                }
                for (size_t j = 0; !rc && j < keep; j++) rc = m2u_tj_ids_push(&res, body.v[j]);
            }
        } else {
            for (size_t j = 0; !rc && j < keep; j++) rc = m2u_tj_ids_push(&res, body.v[j]);
        }
        if (!rc && !res.v) rc = m2u_tj_ids_push(&res, 0), res.n = 0;
    }
    free(body.v);
    free(cps.v);
    free(buf);
    if (rc) {
        free(res.v);
        return -1;
    }
    *ids = res.v;
    *n_ids = res.n;
    return 0;
}

int m2u_wordpiece_normalize(const m2u_wordpiece *tok, const char *text, size_t len, char **out, size_t *out_len) {
    *out = NULL;
    size_t bad = m2u_utf8_valid_prefix((const unsigned char *)text, len);
    if (bad != len) return m2u_fail("wordpiece: invalid UTF-8 at byte %zu", bad);
    wp_cps cps = {0};
    if (normalize_cps(tok, text, len, &cps)) {
        free(cps.v);
        return -1;
    }
    char *s = malloc(4 * cps.n + 1);
    if (!s) {
        free(cps.v);
        return m2u_fail("out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < cps.n; i++) k += (size_t)m2u_utf8_encode(cps.v[i], s + k);
    s[k] = '\0';
    free(cps.v);
    *out = s;
    *out_len = k;
    return 0;
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
    for (int k = 0; k < tok->n_added; k++) free(tok->added[k].text);
    free(tok->added);
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

static int parse_normalizer(m2u_wordpiece *tok, const cJSON *n) {
    if (m2u_tj_null(n)) return 0;
    const char *type = m2u_tj_type(n);
    if (!type || strcmp(type, "BertNormalizer"))
        return m2u_fail("normalizer.type: \"%s\" is not supported (need BertNormalizer or null)", type ? type : "?");
    bool clean = true, cjk = true, lower = true, strip = false;
    if (m2u_tj_bool(n, "clean_text", "normalizer", &clean) || m2u_tj_bool(n, "handle_chinese_chars", "normalizer", &cjk) ||
        m2u_tj_bool(n, "lowercase", "normalizer", &lower))
        return -1;
    strip = lower; /* absent or null follows lowercase */
    if (m2u_tj_bool(n, "strip_accents", "normalizer", &strip)) return -1;
    tok->has_norm = true;
    tok->clean = clean, tok->cjk = cjk, tok->lower = lower, tok->strip = strip;
    return 0;
}

static int template_push(m2u_wordpiece *tok, int32_t id) {
    int32_t *v = realloc(tok->tpl, (size_t)(tok->n_tpl + 1) * sizeof *v);
    if (!v) return m2u_fail("out of memory");
    tok->tpl = v;
    tok->tpl[tok->n_tpl++] = id;
    return 0;
}

/* BertProcessing's "cls"/"sep": ["[CLS]", 101]. */
static int bert_processing_id(const cJSON *p, const char *key, int32_t *id) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, key);
    const cJSON *num = cJSON_GetArrayItem(v, 1);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(num) || num->valuedouble < 0)
        return m2u_fail("post_processor.%s must be [token, id]", key);
    *id = (int32_t)num->valuedouble;
    return 0;
}

static int parse_post(m2u_wordpiece *tok, const cJSON *p) {
    if (m2u_tj_null(p)) return 0;
    const char *type = m2u_tj_type(p);
    if (type && !strcmp(type, "BertProcessing")) {
        int32_t cls, sep;
        if (bert_processing_id(p, "cls", &cls) || bert_processing_id(p, "sep", &sep)) return -1;
        return template_push(tok, cls) || template_push(tok, TPL_SEQUENCE) || template_push(tok, sep);
    }
    int n_seq;
    if (m2u_tj_parse_template(p, tok->n_vocab, &tok->tpl, &tok->n_tpl, &n_seq)) return -1;
    if (n_seq != 1) return m2u_fail("post_processor.single: needs exactly one Sequence");
    return 0;
}

static int cmp_added(const void *a, const void *b) {
    size_t x = ((const wp_added *)a)->len, y = ((const wp_added *)b)->len;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int parse_added(m2u_wordpiece *tok, const m2u_tj_added *list, int n) {
    tok->added = calloc((size_t)n + 1, sizeof *tok->added);
    if (!tok->added) return m2u_fail("out of memory");
    for (int k = 0; k < n; k++) {
        const m2u_tj_added *e = &list[k];
        if (!e->len) return m2u_fail("added_tokens[%d].content must be a non-empty string", k);
        const bool flags[4] = {e->single_word, e->lstrip, e->rstrip, e->normalized};
        static const char *const keys[4] = {"single_word", "lstrip", "rstrip", "normalized"};
        for (int f = 0; f < 4; f++)
            if (flags[f]) return m2u_fail("added_tokens[%d] \"%s\": %s tokens are not supported", k, e->content, keys[f]);
        if (!tok->vocab[e->id] && set_token(tok, e->id, e->content)) return -1;
        wp_added *a = &tok->added[tok->n_added++];
        a->text = strdup(e->content);
        if (!a->text) return m2u_fail("out of memory");
        a->len = e->len;
        a->id = e->id;
    }
    qsort(tok->added, (size_t)tok->n_added, sizeof *tok->added, cmp_added);
    return 0;
}

/* model.vocab lookup for the shared added-token parser (s is a whole NUL-terminated content) */
static int32_t model_id(const void *ctx, const char *s, size_t n) {
    (void)n;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive((const cJSON *)ctx, s);
    return cJSON_IsNumber(v) ? (int32_t)v->valueint : -1;
}

static int parse_pre(m2u_wordpiece *tok, const cJSON *pre);

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
             parse_normalizer(tok, cJSON_GetObjectItemCaseSensitive(root, "normalizer"));
    if (!rc) rc = parse_pre(tok, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"));
    if (!rc) rc = parse_post(tok, cJSON_GetObjectItemCaseSensitive(root, "post_processor")) ||
                  parse_added(tok, added, n_added);
    free(added);
    return rc ? -1 : 0;
}

static int parse_pre(m2u_wordpiece *tok, const cJSON *pre) {
    if (!m2u_tj_null(pre)) {
        const char *type = m2u_tj_type(pre);
        if (!type || strcmp(type, "BertPreTokenizer"))
            return m2u_fail("pre_tokenizer.type: \"%s\" is not supported (need BertPreTokenizer or null)",
                            type ? type : "?");
        tok->has_pretok = true;
    }
    return 0;
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
