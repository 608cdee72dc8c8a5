/* models/tokenizers/tokenizer.c against the Hugging Face `tokenizers` 0.20.3 reference.
 *
 * tests/fixtures/tokenizer/cases.jsonl (made by tests/make_tokenizer_fixtures.py) holds a few
 * thousand strings with the ids and decodings the reference gives for the LLaMA-2
 * tokenizer.json beside it (Meta's vocabulary, see its NOTICE.md), and for variants of it
 * ("sets": added [AUD] tokens, added tokens with lstrip/rstrip/single_word, the Metaspace
 * pre-tokenizer, no byte fallback, ...).  Every case must match exactly.  Then: refusal of
 * unsupported or broken files, and timings. */
#include "fileio.h"
#include "m2u_error.h"
#include "test_util.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef M2U_FIXTURES
#error "M2U_FIXTURES must name the tests/fixtures directory"
#endif
#define TOK_DIR M2U_FIXTURES "/tokenizer/"

#define MAX_DIFFS_SHOWN 8

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint32_t fnv1a(const void *p, size_t n, uint32_t h) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x01000193u;
    }
    return h;
}

static uint32_t fnv_ids(const int32_t *ids, size_t n) {
    uint32_t h = 0x811C9DC5u;
    for (size_t i = 0; i < n; i++) { /* little-endian int32 bytes, as the generator hashes them */
        uint32_t v = (uint32_t)ids[i];
        unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                              (unsigned char)(v >> 24)};
        h = fnv1a(b, 4, h);
    }
    return h;
}

/* A string field of a case: a JSON string, or {"hex": "..."} for text holding U+0000. */
static int get_text(const cJSON *j, char **s, size_t *n) {
    if (cJSON_IsString(j)) {
        *n = strlen(j->valuestring);
        *s = malloc(*n + 1);
        memcpy(*s, j->valuestring, *n + 1);
        return 0;
    }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "hex");
    if (!cJSON_IsString(h)) return -1;
    size_t hl = strlen(h->valuestring);
    *n = hl / 2;
    *s = malloc(*n + 1);
    for (size_t i = 0; i < *n; i++) {
        unsigned v;
        if (sscanf(h->valuestring + 2 * i, "%2x", &v) != 1) return -1;
        (*s)[i] = (char)v;
    }
    (*s)[*n] = '\0';
    return 0;
}

static int get_ids(const cJSON *a, int32_t **ids, size_t *n) {
    if (!cJSON_IsArray(a)) return -1;
    *n = (size_t)cJSON_GetArraySize(a);
    *ids = malloc((*n + 1) * sizeof **ids);
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, a)(*ids)[i++] = (int32_t)e->valuedouble;
    return 0;
}

/* Print a string with control and non-ASCII bytes escaped, cut to a readable length. */
static void show(const char *label, const char *s, size_t n) {
    fprintf(stderr, "    %s (%zu bytes): \"", label, n);
    for (size_t i = 0; i < n && i < 160; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') fputc(c, stderr);
        else fprintf(stderr, "\\x%02X", c);
    }
    fprintf(stderr, n > 160 ? "\"...\n" : "\"\n");
}

static void show_ids(const char *label, const int32_t *ids, size_t n) {
    fprintf(stderr, "    %s (%zu):", label, n);
    for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 40 ? " ...\n" : "\n");
}

typedef struct {
    char name[64];
    m2u_tokenizer *tok;
} tok_set;

/* Build a set's tokenizer: the fixture tokenizer.json with the set's fields replaced, written to
 * a temporary file so the real loader reads it, then the set's added tokens. */
static m2u_tokenizer *make_set(const cJSON *base, const cJSON *spec, const char *name, const char *tmpdir) {
    const cJSON *patch = cJSON_GetObjectItemCaseSensitive(spec, "patch");
    const cJSON *strs = cJSON_GetObjectItemCaseSensitive(spec, "merges_as_strings");
    m2u_tokenizer *tok = NULL;
    char path[4096];
    if (!patch && !cJSON_IsTrue(strs)) {
        snprintf(path, sizeof path, "%s", TOK_DIR "tokenizer.json");
        if (m2u_tokenizer_load(path, &tok)) fprintf(stderr, "set %s: %s\n", name, m2u_last_error());
    } else {
        cJSON *doc = cJSON_Duplicate(base, 1);
        const cJSON *op;
        cJSON_ArrayForEach(op, patch) { /* [[key, key, ...], value] */
            const cJSON *keys = cJSON_GetArrayItem(op, 0);
            cJSON *obj = doc;
            int nk = cJSON_GetArraySize(keys);
            for (int k = 0; k < nk - 1; k++)
                obj = cJSON_GetObjectItemCaseSensitive(obj, cJSON_GetArrayItem(keys, k)->valuestring);
            const char *last = cJSON_GetArrayItem(keys, nk - 1)->valuestring;
            cJSON *val = cJSON_Duplicate(cJSON_GetArrayItem(op, 1), 1);
            if (cJSON_GetObjectItemCaseSensitive(obj, last)) cJSON_ReplaceItemInObjectCaseSensitive(obj, last, val);
            else cJSON_AddItemToObject(obj, last, val);
        }
        if (cJSON_IsTrue(strs)) { /* ["a", "b"] -> "a b" (tokenizer.json's older merge form) */
            cJSON *model = cJSON_GetObjectItemCaseSensitive(doc, "model");
            cJSON *old = cJSON_GetObjectItemCaseSensitive(model, "merges");
            cJSON *neu = cJSON_CreateArray();
            const cJSON *m;
            cJSON_ArrayForEach(m, old) {
                const char *a = cJSON_GetArrayItem(m, 0)->valuestring, *b = cJSON_GetArrayItem(m, 1)->valuestring;
                char *ab = malloc(strlen(a) + strlen(b) + 2);
                sprintf(ab, "%s %s", a, b);
                cJSON_AddItemToArray(neu, cJSON_CreateString(ab));
                free(ab);
            }
            cJSON_ReplaceItemInObjectCaseSensitive(model, "merges", neu);
        }
        char *text = cJSON_PrintUnformatted(doc);
        cJSON_Delete(doc);
        if (snprintf(path, sizeof path, "%s/m2u_test_tokenizer_%ld_%s.json", tmpdir, (long)getpid(), name) >=
            (int)sizeof path) {
            free(text);
            fprintf(stderr, "set %s: temporary path too long\n", name);
            return NULL;
        }
        if (m2u_write_file_atomic(path, text, strlen(text))) fprintf(stderr, "set %s: %s\n", name, m2u_last_error());
        free(text);
        if (m2u_tokenizer_load(path, &tok)) fprintf(stderr, "set %s: %s\n", name, m2u_last_error());
        unlink(path);
    }
    const cJSON *add = cJSON_GetObjectItemCaseSensitive(spec, "add_tokens");
    if (tok && cJSON_IsArray(add)) {
        int n = cJSON_GetArraySize(add);
        const char **names = malloc((size_t)n * sizeof *names);
        for (int i = 0; i < n; i++) names[i] = cJSON_GetArrayItem(add, i)->valuestring;
        int special = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(spec, "add_special"));
        if (m2u_tokenizer_add_tokens(tok, names, n, special)) {
            fprintf(stderr, "set %s: %s\n", name, m2u_last_error());
            m2u_tokenizer_free(tok);
            tok = NULL;
        }
        free(names);
    }
    return tok;
}

typedef struct {
    int cases, mismatches, shown;
    double enc_bytes, enc_seconds;
} tally;

static void mismatch(tally *t, int line, const char *set, const char *what, const char *text, size_t tlen) {
    t->mismatches++;
    if (t->shown++ >= MAX_DIFFS_SHOWN) return;
    fprintf(stderr, "MISMATCH line %d set %s: %s\n", line, set, what);
    if (text) show("text", text, tlen);
}

static void cmp_ids(tally *t, int line, const char *set, const char *what, const char *text, size_t tlen,
                    const int32_t *want, size_t nw, const int32_t *got, size_t ng) {
    if (nw == ng && (nw == 0 || memcmp(want, got, nw * sizeof *want) == 0)) return;
    mismatch(t, line, set, what, text, tlen);
    if (t->shown > MAX_DIFFS_SHOWN) return;
    size_t k = 0;
    while (k < nw && k < ng && want[k] == got[k]) k++;
    fprintf(stderr, "    first difference at index %zu\n", k);
    show_ids("want", want, nw);
    show_ids("got ", got, ng);
}

static void cmp_str(tally *t, int line, const char *set, const char *what, const char *text, size_t tlen,
                    const char *want, size_t nw, const char *got, size_t ng) {
    if (nw == ng && memcmp(want, got, nw) == 0) return;
    mismatch(t, line, set, what, text, tlen);
    if (t->shown > MAX_DIFFS_SHOWN) return;
    show("want", want, nw);
    show("got ", got, ng);
}

static void run_case(tally *t, int line, const cJSON *c, const tok_set *sets, int n_sets) {
    const char *set = cJSON_GetObjectItemCaseSensitive(c, "set")->valuestring;
    const m2u_tokenizer *tok = NULL;
    for (int i = 0; i < n_sets; i++)
        if (!strcmp(sets[i].name, set)) tok = sets[i].tok;
    t->cases++;
    if (!tok) {
        mismatch(t, line, set, "no tokenizer for this set", NULL, 0);
        return;
    }
    char *dec = NULL, *dec_skip = NULL;
    const cJSON *dids = cJSON_GetObjectItemCaseSensitive(c, "decode_ids");
    if (dids) { /* decode-only case */
        int32_t *ids;
        size_t n, lw, lws;
        char *want, *want_skip;
        get_ids(dids, &ids, &n);
        get_text(cJSON_GetObjectItemCaseSensitive(c, "dec"), &want, &lw);
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(c, "dec_skip");
        get_text(ws ? ws : cJSON_GetObjectItemCaseSensitive(c, "dec"), &want_skip, &lws);
        size_t ld, lds;
        if (m2u_tokenizer_decode_n(tok, ids, n, 0, &dec, &ld) ||
            m2u_tokenizer_decode_n(tok, ids, n, 1, &dec_skip, &lds)) {
            mismatch(t, line, set, m2u_last_error(), NULL, 0);
        } else {
            cmp_str(t, line, set, "decode(ids)", NULL, 0, want, lw, dec, ld);
            cmp_str(t, line, set, "decode(ids, skip_special)", NULL, 0, want_skip, lws, dec_skip, lds);
        }
        free(ids), free(want), free(want_skip), free(dec), free(dec_skip);
        return;
    }

    char *text;
    size_t tlen;
    get_text(cJSON_GetObjectItemCaseSensitive(c, "text"), &text, &tlen);
    int32_t *got = NULL, *got_plain = NULL;
    size_t ng = 0, ngp = 0, ld = 0, lds = 0;
    double t0 = now_s();
    int rc = m2u_tokenizer_encode(tok, text, tlen, 1, &got, &ng);
    t->enc_seconds += now_s() - t0;
    t->enc_bytes += (double)tlen;
    if (rc || m2u_tokenizer_encode(tok, text, tlen, 0, &got_plain, &ngp) ||
        m2u_tokenizer_decode_n(tok, got, ng, 0, &dec, &ld) ||
        m2u_tokenizer_decode_n(tok, got, ng, 1, &dec_skip, &lds)) {
        mismatch(t, line, set, m2u_last_error(), text, tlen);
    } else if (cJSON_GetObjectItemCaseSensitive(c, "fnv_ids")) { /* long text: lengths and hashes */
        int n = cJSON_GetObjectItemCaseSensitive(c, "n")->valueint;
        int np = cJSON_GetObjectItemCaseSensitive(c, "n_plain")->valueint;
        uint32_t h = (uint32_t)cJSON_GetObjectItemCaseSensitive(c, "fnv_ids")->valuedouble;
        uint32_t hp = (uint32_t)cJSON_GetObjectItemCaseSensitive(c, "fnv_ids_plain")->valuedouble;
        uint32_t hd = (uint32_t)cJSON_GetObjectItemCaseSensitive(c, "fnv_dec")->valuedouble;
        uint32_t hds = (uint32_t)cJSON_GetObjectItemCaseSensitive(c, "fnv_dec_skip")->valuedouble;
        if ((size_t)n != ng || fnv_ids(got, ng) != h) mismatch(t, line, set, "encode (hashed)", text, tlen);
        else if ((size_t)np != ngp || fnv_ids(got_plain, ngp) != hp)
            mismatch(t, line, set, "encode no special (hashed)", text, tlen);
        else if (fnv1a(dec, ld, 0x811C9DC5u) != hd) mismatch(t, line, set, "decode (hashed)", text, tlen);
        else if (fnv1a(dec_skip, lds, 0x811C9DC5u) != hds)
            mismatch(t, line, set, "decode skip_special (hashed)", text, tlen);
    } else {
        int32_t *want, *want_plain;
        size_t nw, nwp;
        get_ids(cJSON_GetObjectItemCaseSensitive(c, "ids"), &want, &nw);
        const cJSON *jp = cJSON_GetObjectItemCaseSensitive(c, "ids_plain");
        if (jp) {
            get_ids(jp, &want_plain, &nwp);
        } else { /* elided: ids[1:] */
            nwp = nw ? nw - 1 : 0;
            want_plain = malloc((nwp + 1) * sizeof *want_plain);
            if (nwp) memcpy(want_plain, want + 1, nwp * sizeof *want);
        }
        char *wd, *wds;
        size_t lwd, lwds;
        const cJSON *jds = cJSON_GetObjectItemCaseSensitive(c, "dec_skip");
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(c, "dec");
        if (jds) get_text(jds, &wds, &lwds); /* elided: equal to the text */
        else wds = malloc(tlen + 1), memcpy(wds, text, tlen + 1), lwds = tlen;
        if (jd) get_text(jd, &wd, &lwd); /* elided: equal to dec_skip */
        else wd = malloc(lwds + 1), memcpy(wd, wds, lwds + 1), lwd = lwds;
        cmp_ids(t, line, set, "encode(add_special=1)", text, tlen, want, nw, got, ng);
        cmp_ids(t, line, set, "encode(add_special=0)", text, tlen, want_plain, nwp, got_plain, ngp);
        cmp_str(t, line, set, "decode(ids)", text, tlen, wd, lwd, dec, ld);
        cmp_str(t, line, set, "decode(ids, skip_special)", text, tlen, wds, lwds, dec_skip, lds);
        free(want), free(want_plain), free(wd), free(wds);
    }
    free(text), free(got), free(got_plain), free(dec), free(dec_skip);
}

/* A broken or unsupported tokenizer.json must be refused, naming the file and the field. */
static void check_refused(const char *tmpdir, const char *tag, const char *json, const char *field) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/m2u_test_tokenizer_%ld_%s.json", tmpdir, (long)getpid(), tag) >=
        (int)sizeof path) {
        CHECK(0, "temporary path too long");
        return;
    }
    if (m2u_write_file_atomic(path, json, strlen(json))) {
        CHECK(0, "cannot write %s: %s", path, m2u_last_error());
        return;
    }
    m2u_tokenizer *tok = (m2u_tokenizer *)&tok; /* must be reset to NULL on failure */
    m2u_clear_error();
    int rc = m2u_tokenizer_load(path, &tok);
    const char *err = m2u_last_error();
    CHECK(rc == -1 && tok == NULL, "%s: load should fail (rc %d)", tag, rc);
    CHECK(strstr(err, path) != NULL, "%s: message should name the file: \"%s\"", tag, err);
    CHECK(strstr(err, field) != NULL, "%s: message should name \"%s\": \"%s\"", tag, field, err);
    if (rc == 0) m2u_tokenizer_free(tok);
    unlink(path);
}

static void error_cases(const char *tmpdir) {
    const char *bpe = "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]";
    char buf[1024];
    check_refused(tmpdir, "unigram", "{\"version\":\"1.0\",\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",0.0]]}}",
                  "model.type");
    check_refused(tmpdir, "wordpiece", "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{}}}", "model.type");
    check_refused(tmpdir, "malformed", "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\", ", "malformed JSON");
    check_refused(tmpdir, "empty", "", "malformed JSON");
    check_refused(tmpdir, "notutf8", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"\xc3\":0},\"merges\":[]}}", "not UTF-8");
    check_refused(tmpdir, "novocab", "{\"model\":{\"type\":\"BPE\",\"merges\":[]}}", "model.vocab");
    check_refused(tmpdir, "nomerges", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0}}}", "model.merges");
    check_refused(tmpdir, "nomodel", "{\"version\":\"1.0\"}", "model");
    check_refused(tmpdir, "badmerge", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"a b\"]}}",
                  "model.merges[0]");
    check_refused(tmpdir, "badmerge2", "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[\"ab\"]}}",
                  "model.merges[0]");
    snprintf(buf, sizeof buf, "{%s,\"dropout\":0.1}}", bpe);
    check_refused(tmpdir, "dropout", buf, "model.dropout");
    snprintf(buf, sizeof buf, "{%s},\"normalizer\":{\"type\":\"NFKC\"}}", bpe);
    check_refused(tmpdir, "nfkc", buf, "normalizer");
    snprintf(buf, sizeof buf,
             "{%s},\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Replace\","
             "\"pattern\":{\"Regex\":\" +\"},\"content\":\" \"}]}}",
             bpe);
    check_refused(tmpdir, "regex", buf, "normalizer.normalizers[].pattern");
    snprintf(buf, sizeof buf, "{%s},\"pre_tokenizer\":{\"type\":\"Punctuation\",\"behavior\":\"isolated\"}}", bpe);
    check_refused(tmpdir, "punctuation", buf, "pre_tokenizer");
    snprintf(buf, sizeof buf, "{%s},\"post_processor\":{\"type\":\"BertProcessing\",\"sep\":[\"a\",0]}}", bpe);
    check_refused(tmpdir, "bert", buf, "post_processor");
    snprintf(buf, sizeof buf, "{%s},\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"CTC\"}]}}", bpe);
    check_refused(tmpdir, "decoder", buf, "decoder.decoders[]");
    snprintf(buf, sizeof buf, "{%s},\"truncation\":{\"max_length\":8}}", bpe);
    check_refused(tmpdir, "truncation", buf, "truncation");
    /* Added tokens whose declared id is not the one they get: the reference renumbers them
     * silently (a warning in its log), so an embedding row would belong to another token. */
    static const char *const added_cases[][3] = {
        /* tag, added_tokens, text the message must contain */
        {"added_beyond", "[{\"id\":7,\"content\":\"<x>\",\"special\":true}]", "declared id 7, but the token gets id 3"},
        {"added_gap", "[{\"id\":3,\"content\":\"<x>\"},{\"id\":5,\"content\":\"<y>\"}]",
         "added_tokens[1] \"<y>\": declared id 5, but the token gets id 4"},
        {"added_vocab", "[{\"id\":1,\"content\":\"ab\"}]", "declared id 1, but the token gets id 2 (its id in model.vocab)"},
        {"added_noid", "[{\"content\":\"<x>\"}]", "added_tokens[0] \"<x>\": id must be a non-negative integer"},
        {"added_negid", "[{\"id\":-1,\"content\":\"<x>\"}]", "id must be a non-negative integer"},
    };
    for (size_t k = 0; k < sizeof added_cases / sizeof added_cases[0]; k++) {
        snprintf(buf, sizeof buf, "{%s},\"added_tokens\":%s}", bpe, added_cases[k][1]);
        check_refused(tmpdir, added_cases[k][0], buf, added_cases[k][2]);
    }
    /* ... and the ids the reference gives are accepted (a vocabulary entry, then the next ids). */
    {
        snprintf(buf, sizeof buf, "{%s},\"added_tokens\":[{\"id\":2,\"content\":\"ab\"},{\"id\":3,\"content\":"
                                  "\"<x>\"},{\"id\":4,\"content\":\"<y>\",\"special\":true}]}",
                 bpe);
        char path[4096];
        snprintf(path, sizeof path, "%s/m2u_test_tokenizer_%ld_added_ok.json", tmpdir, (long)getpid());
        m2u_tokenizer *tok = NULL;
        CHECK(m2u_write_file_atomic(path, buf, strlen(buf)) == 0 && m2u_tokenizer_load(path, &tok) == 0,
              "consistent added ids: %s", m2u_last_error());
        CHECK(tok && m2u_tokenizer_token_to_id(tok, "<x>") == 3 && m2u_tokenizer_token_to_id(tok, "<y>") == 4,
              "added ids kept");
        m2u_tokenizer_free(tok);
        unlink(path);
    }

    m2u_tokenizer *tok = (m2u_tokenizer *)&tok;
    CHECK(m2u_tokenizer_load(TOK_DIR "does-not-exist.json", &tok) == -1 && tok == NULL, "missing file must fail");
    CHECK(strstr(m2u_last_error(), "does-not-exist.json") != NULL, "message: %s", m2u_last_error());
}

/* Small API checks on the plain LLaMA tokenizer (a fresh copy: add_tokens changes it). */
static void api_checks(void) {
    m2u_tokenizer *tok;
    if (m2u_tokenizer_load(TOK_DIR "tokenizer.json", &tok)) {
        CHECK(0, "load: %s", m2u_last_error());
        return;
    }
    CHECK(m2u_tokenizer_vocab_size(tok) == 32000, "vocab size %d", m2u_tokenizer_vocab_size(tok));
    CHECK(m2u_tokenizer_bos_id(tok) == 1, "bos %d", m2u_tokenizer_bos_id(tok));
    CHECK(m2u_tokenizer_eos_id(tok) == 2, "eos %d", m2u_tokenizer_eos_id(tok));
    CHECK(m2u_tokenizer_token_to_id(tok, "<unk>") == 0, "unk id");
    CHECK(m2u_tokenizer_token_to_id(tok, "<0x0A>") == 13, "newline byte id");
    CHECK(m2u_tokenizer_token_to_id(tok, "no such token") == -1, "unknown token");
    CHECK(m2u_tokenizer_id_to_token(tok, 2) && !strcmp(m2u_tokenizer_id_to_token(tok, 2), "</s>"), "id 2");
    CHECK(m2u_tokenizer_id_to_token(tok, 32000) == NULL && m2u_tokenizer_id_to_token(tok, -1) == NULL, "bad ids");

    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(m2u_tokenizer_encode(tok, "", 0, 1, &ids, &n) == 0 && n == 1 && ids[0] == 1, "empty text -> [<s>]");
    free(ids);
    CHECK(m2u_tokenizer_encode(tok, "", 0, 0, &ids, &n) == 0 && n == 0 && ids != NULL, "empty text, no special");
    free(ids);
    const char bad[] = "ok \xC3\x28 bad";
    CHECK(m2u_tokenizer_encode(tok, bad, sizeof bad - 1, 1, &ids, &n) == -1 && ids == NULL, "invalid UTF-8 refused");
    CHECK(strstr(m2u_last_error(), "UTF-8") != NULL, "message: %s", m2u_last_error());
    const char surrogate[] = "\xED\xA0\x80";
    CHECK(m2u_tokenizer_encode(tok, surrogate, 3, 1, &ids, &n) == -1, "encoded surrogate refused");

    const char *aud[8] = {"[AUD0]", "[AUD1]", "[AUD2]", "[AUD3]", "[AUD4]", "[AUD5]", "[AUD6]", "[AUD7]"};
    CHECK(m2u_tokenizer_add_tokens(tok, aud, 8, 0) == 0, "add_tokens: %s", m2u_last_error());
    CHECK(m2u_tokenizer_add_tokens(tok, aud, 8, 0) == 0, "adding again is a no-op");
    CHECK(m2u_tokenizer_vocab_size(tok) == 32008, "vocab size after [AUD] %d", m2u_tokenizer_vocab_size(tok));
    CHECK(m2u_tokenizer_token_to_id(tok, "[AUD0]") == 32000 && m2u_tokenizer_token_to_id(tok, "[AUD7]") == 32007,
          "[AUD] ids");
    CHECK(!strcmp(m2u_tokenizer_id_to_token(tok, 32003), "[AUD3]"), "id 32003");
    m2u_tokenizer_free(tok);
}

/* Encode one 100 KB "word" (no spaces: the whole text is one BPE word) and check the round trip;
 * the heap-based merge keeps this to milliseconds where a quadratic loop takes minutes. */
static void long_word(const m2u_tokenizer *tok) {
    static const char *syl[] = {"mu", "sic", "gen", "ra", "tion", "ly", "ka", "zo", "pri", "ment"};
    size_t len = 100 * 1024;
    char *w = malloc(len + 1);
    uint32_t r = 12345;
    size_t n = 0;
    while (n < len) {
        r = r * 1103515245u + 12345u;
        const char *s = syl[(r >> 16) % 10];
        for (size_t k = 0; s[k] && n < len; k++) w[n++] = s[k];
    }
    w[len] = '\0';
    int32_t *ids;
    size_t n_ids;
    double t0 = now_s();
    int rc = m2u_tokenizer_encode(tok, w, len, 0, &ids, &n_ids);
    double dt = now_s() - t0;
    CHECK(rc == 0, "long word: %s", m2u_last_error());
    if (rc) {
        free(w);
        return;
    }
    char *back;
    CHECK(m2u_tokenizer_decode(tok, ids, n_ids, 1, &back) == 0 && !strcmp(back, w), "long word round trip");
    CHECK(dt < 5.0, "100 KB word took %.2f s", dt);
    printf("test_tokenizer: 100 KB single word: %zu ids in %.1f ms (%.1f MB/s)\n", n_ids, 1e3 * dt,
           (double)len / dt / 1e6);
    free(back);
    free(ids);
    free(w);
}

/* m2u_tokenizer_merge_ranks (the GGUF export's scores): the first merge making each piece, and the
 * pieces two pieces join to without a listed merge.  On LLaMA-2: every split is listed. */
static void merge_rank_checks(const char *tmpdir) {
    static const char json[] =
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"c\":2,\"ab\":3,\"bc\":4,\"abc\":5,\"x\":6},"
        "\"merges\":[\"a b\",\"ab c\",\"a b\"]}}";
    char path[4096];
    snprintf(path, sizeof path, "%s/m2u_test_tokenizer_%ld_ranks.json", tmpdir, (long)getpid());
    m2u_tokenizer *tok = NULL;
    CHECK(m2u_write_file_atomic(path, json, sizeof json - 1) == 0 && m2u_tokenizer_load(path, &tok) == 0, "load: %s",
          m2u_last_error());
    unlink(path);
    if (!tok) return;
    int32_t rank[8];
    int64_t unlisted = -1;
    CHECK(m2u_tokenizer_merge_ranks(tok, rank, 8, &unlisted) == 0, "%s", m2u_last_error());
    /* "a b" is listed twice: the last rank (2) counts, as in HF's merge map */
    static const int32_t want[8] = {-1, -1, -1, 2, -1, 1, -1, -1};
    for (int i = 0; i < 8; i++) CHECK(rank[i] == want[i], "rank of id %d: %d, want %d", i, rank[i], want[i]);
    /* "bc" = b + c and "abc" = a + bc: pairs model.merges does not list */
    CHECK(unlisted == 2, "unlisted splits: %lld, want 2", (long long)unlisted);
    m2u_tokenizer_free(tok);
    CHECK(m2u_tokenizer_load(TOK_DIR "tokenizer.json", &tok) == 0, "%s", m2u_last_error());
    if (!tok) return;
    int32_t *r = malloc(32000 * sizeof *r);
    CHECK(r && m2u_tokenizer_merge_ranks(tok, r, 32000, &unlisted) == 0 && unlisted == 0,
          "LLaMA-2: %lld pieces have an unlisted split", (long long)unlisted);
    /* "▁t" (id 260) is LLaMA-2's first merge; "<s>" and byte tokens come from none */
    CHECK(r && r[260] == 0 && r[1] == -1 && r[3 + 'A'] == -1, "LLaMA-2 ranks %d %d", r ? r[260] : 0, r ? r[1] : 0);
    free(r);
    m2u_tokenizer_free(tok);
}

int main(void) {
    const char *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    error_cases(tmpdir);
    api_checks();
    merge_rank_checks(tmpdir);

    char *data, *basetxt;
    size_t len, baselen;
    if (m2u_read_file(TOK_DIR "cases.jsonl", &data, &len) ||
        m2u_read_file(TOK_DIR "tokenizer.json", &basetxt, &baselen)) {
        CHECK(0, "%s", m2u_last_error());
        return t_finish("test_tokenizer");
    }
    cJSON *base = cJSON_Parse(basetxt);
    free(basetxt);

    /* Header: the sets. */
    char *line = data, *nl = strchr(line, '\n');
    *nl = '\0';
    cJSON *head = cJSON_Parse(line);
    const cJSON *sets_j = cJSON_GetObjectItemCaseSensitive(head, "sets");
    CHECK(base && head && sets_j, "cannot parse the fixtures");
    tok_set sets[32];
    int n_sets = 0;
    double t_load = 0;
    const cJSON *spec;
    cJSON_ArrayForEach(spec, sets_j) {
        if (n_sets == 32) break;
        tok_set *s = &sets[n_sets++];
        snprintf(s->name, sizeof s->name, "%s", spec->string);
        double t0 = now_s();
        s->tok = make_set(base, spec, s->name, tmpdir);
        if (!strcmp(s->name, "base")) t_load = now_s() - t0;
        CHECK(s->tok != NULL, "set %s did not load", s->name);
        int want = cJSON_GetObjectItemCaseSensitive(spec, "vocab_size")->valueint;
        CHECK(!s->tok || m2u_tokenizer_vocab_size(s->tok) == want, "set %s: vocab size %d, want %d", s->name,
              s->tok ? m2u_tokenizer_vocab_size(s->tok) : -1, want);
    }
    cJSON_Delete(head);
    cJSON_Delete(base);

    /* Cases. */
    tally t = {0};
    int line_no = 1;
    for (line = nl + 1; *line; line = nl + 1) {
        line_no++;
        nl = strchr(line, '\n');
        if (!nl) nl = line + strlen(line) - 1;
        *nl = '\0';
        cJSON *c = cJSON_Parse(line);
        if (!c) {
            CHECK(0, "cases.jsonl line %d does not parse", line_no);
            continue;
        }
        run_case(&t, line_no, c, sets, n_sets);
        cJSON_Delete(c);
        if (!nl[1]) break;
    }
    printf("test_tokenizer: %d cases in %d sets, %d mismatches\n", t.cases, n_sets, t.mismatches);
    CHECK(t.cases > 3000, "only %d cases", t.cases);
    CHECK(t.mismatches == 0, "%d of %d cases differ from tokenizers 0.20.3", t.mismatches, t.cases);
    printf("test_tokenizer: load %.1f ms, encode %.2f MB in %.3f s (%.2f MB/s, all sets, with special tokens)\n",
           1e3 * t_load, t.enc_bytes / 1e6, t.enc_seconds, t.enc_bytes / 1e6 / (t.enc_seconds > 0 ? t.enc_seconds : 1));

    if (n_sets && sets[0].tok) long_word(sets[0].tok);
    for (int i = 0; i < n_sets; i++) m2u_tokenizer_free(sets[i].tok);
    free(data);
    return t_finish("test_tokenizer");
}
