/* models/tokenizers/unigram_tokenizer.c against the Hugging Face `tokenizers` 0.20.3 reference.
 *
 * tests/fixtures/t5/tokenizer.json is a T5-format tokenizer (SentencePiece Unigram, nmt_nfkc
 * Precompiled charsmap, converted by transformers' T5Converter) and unigram_cases.jsonl holds the
 * ids the reference gives for a few hundred strings, for it and for variants of it (other
 * normalizer / pre-tokenizer layouts, byte fallback, no unk, ...).  Both come from
 * tests/make_t5_fixtures.py.  Every id must match exactly.  Then: refusal of broken files with a
 * message naming the file. */
#include "fileio.h"
#include "m2u_error.h"
#include "test_util.h"
#include "unigram_tokenizer.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef M2U_FIXTURES
#error "M2U_FIXTURES must name the tests/fixtures directory"
#endif
#define T5_DIR M2U_FIXTURES "/t5/"
#define MAX_SHOWN 10

typedef struct {
    char *text;
    size_t len;
    const cJSON *rec; /* the base record */
} base_case;

static int get_text(const cJSON *j, char **s, size_t *n) {
    if (cJSON_IsString(j)) {
        *n = strlen(j->valuestring);
        *s = malloc(*n + 1);
        memcpy(*s, j->valuestring, *n + 1);
        return 0;
    }
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "hex");
    if (!cJSON_IsString(h)) return -1;
    *n = strlen(h->valuestring) / 2;
    *s = malloc(*n + 1);
    for (size_t i = 0; i < *n; i++) {
        unsigned v;
        sscanf(h->valuestring + 2 * i, "%2x", &v);
        (*s)[i] = (char)v;
    }
    (*s)[*n] = '\0';
    return 0;
}

/* Expected ids of a record (ids, or ids_plain with its default ids[:-1]); returns count or -1. */
static int expected_ids(const cJSON *rec, int plain, int32_t *out, int cap) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(rec, plain ? "ids_plain" : "ids");
    int drop = 0;
    if (!a && plain) {
        a = cJSON_GetObjectItemCaseSensitive(rec, "ids");
        drop = 1;
    }
    if (!cJSON_IsArray(a)) return -1;
    int n = cJSON_GetArraySize(a) - drop;
    if (n < 0) n = 0;
    if (n > cap) return -1;
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (i < n) out[i] = (int32_t)x->valuedouble;
        i++;
    }
    return n;
}

/* Write `root` with the replacements of a variant (see make_t5_fixtures.py: a Precompiled
 * charsmap "@base" takes the base file's) to a temporary file; returns its path (malloc'ed). */
static void resolve_base(cJSON *node, const char *charsmap) {
    if (!node) return;
    if (cJSON_IsObject(node)) {
        cJSON *cm = cJSON_GetObjectItemCaseSensitive(node, "precompiled_charsmap");
        if (cJSON_IsString(cm) && !strcmp(cm->valuestring, "@base"))
            cJSON_ReplaceItemInObjectCaseSensitive(node, "precompiled_charsmap", cJSON_CreateString(charsmap));
    }
    for (cJSON *c = node->child; c; c = c->next) resolve_base(c, charsmap);
}

static char *write_variant(const cJSON *base, const cJSON *spec) {
    cJSON *j = cJSON_Duplicate(base, 1);
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(base, "normalizer");
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(norm, "normalizers"), 0);
    const char *charsmap = cJSON_GetObjectItemCaseSensitive(first, "precompiled_charsmap")->valuestring;
    for (const cJSON *f = spec->child; f; f = f->next) {
        cJSON *v = cJSON_Duplicate(f, 1);
        resolve_base(v, charsmap);
        if (cJSON_GetObjectItemCaseSensitive(j, f->string)) cJSON_ReplaceItemInObjectCaseSensitive(j, f->string, v);
        else cJSON_AddItemToObject(j, f->string, v);
    }
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    char *path = strdup("/tmp/m2u_unigram_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        free(text);
        free(path);
        if (fd >= 0) close(fd);
        return NULL;
    }
    close(fd);
    free(text);
    return path;
}

static void run_cases(void) {
    char *data;
    size_t len;
    if (m2u_read_file(T5_DIR "tokenizer.json", &data, &len)) {
        CHECK(0, "fixture missing: %s", m2u_last_error());
        return;
    }
    cJSON *base_json = cJSON_ParseWithLength(data, len);
    free(data);
    CHECK(base_json != NULL, "tokenizer.json does not parse");
    if (m2u_read_file(T5_DIR "unigram_cases.jsonl", &data, &len)) {
        CHECK(0, "fixture missing: %s", m2u_last_error());
        cJSON_Delete(base_json);
        return;
    }
    /* split into lines */
    cJSON **lines = NULL;
    int n_lines = 0;
    for (char *p = data, *nl; p < data + len; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(data + len - p));
        if (!nl) nl = data + len;
        if (nl == p) continue;
        lines = realloc(lines, (size_t)(n_lines + 1) * sizeof *lines);
        lines[n_lines++] = cJSON_ParseWithLength(p, (size_t)(nl - p));
        CHECK(lines[n_lines - 1] != NULL, "case line %d does not parse", n_lines);
    }
    free(data);
    const cJSON *sets = cJSON_GetObjectItemCaseSensitive(lines[0], "sets");
    base_case *cases = NULL;
    int n_cases = 0;
    for (int i = 1; i < n_lines; i++) {
        const cJSON *set = cJSON_GetObjectItemCaseSensitive(lines[i], "set");
        if (strcmp(set->valuestring, "base")) continue;
        cases = realloc(cases, (size_t)(n_cases + 1) * sizeof *cases);
        get_text(cJSON_GetObjectItemCaseSensitive(lines[i], "text"), &cases[n_cases].text, &cases[n_cases].len);
        cases[n_cases].rec = lines[i];
        n_cases++;
    }
    CHECK(n_cases >= 200, "only %d base cases", n_cases);
    int32_t want[4096];
    int total = 0, bad = 0;
    for (const cJSON *s = sets->child; s; s = s->next) {
        const char *name = s->string;
        char *path = strcmp(name, "base") ? write_variant(base_json, s) : strdup(T5_DIR "tokenizer.json");
        m2u_unigram *tok = NULL;
        int rc = path ? m2u_unigram_load(path, &tok) : -1;
        CHECK(rc == 0, "set %s: load failed: %s", name, m2u_last_error());
        if (strcmp(name, "base")) unlink(path);
        free(path);
        if (rc) continue;
        const cJSON **over = calloc((size_t)n_cases, sizeof *over);
        for (int i = 1; i < n_lines; i++) {
            const cJSON *set = cJSON_GetObjectItemCaseSensitive(lines[i], "set");
            const cJSON *ci = cJSON_GetObjectItemCaseSensitive(lines[i], "case");
            if (!strcmp(set->valuestring, name) && cJSON_IsNumber(ci) && ci->valueint < n_cases)
                over[ci->valueint] = lines[i];
        }
        int set_bad = 0;
        for (int c = 0; c < n_cases; c++) {
            const cJSON *rec = over[c] ? over[c] : cases[c].rec;
            bool want_error = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rec, "error"));
            for (int plain = 0; plain < 2; plain++) {
                int32_t *ids = NULL;
                size_t n = 0;
                int erc = m2u_unigram_encode(tok, cases[c].text, cases[c].len, !plain, &ids, &n);
                total++;
                bool ok;
                if (want_error) {
                    ok = erc != 0;
                } else {
                    int nw = expected_ids(rec, plain, want, 4096);
                    ok = erc == 0 && nw >= 0 && (size_t)nw == n && (n == 0 || !memcmp(ids, want, n * sizeof *ids));
                }
                if (!ok) {
                    bad++;
                    if (set_bad++ < MAX_SHOWN) {
                        fprintf(stderr, "  set %s case %d%s text \"%s\": got", name, c, plain ? " (plain)" : "",
                                cases[c].text);
                        if (erc) fprintf(stderr, " error (%s)", m2u_last_error());
                        for (size_t k = 0; k < n && k < 40; k++) fprintf(stderr, " %d", ids[k]);
                        fprintf(stderr, "\n");
                    }
                }
                free(ids);
            }
        }
        CHECK(set_bad == 0, "set %s: %d of %d encodings differ from the reference", name, set_bad, 2 * n_cases);
        free(over);
        if (!strcmp(name, "base")) {
            CHECK(m2u_unigram_vocab_size(tok) == 800, "vocab size %d", m2u_unigram_vocab_size(tok));
            CHECK(m2u_unigram_pad_id(tok) == 0 && m2u_unigram_eos_id(tok) == 1 && m2u_unigram_unk_id(tok) == 2,
                  "special ids pad %d eos %d unk %d", m2u_unigram_pad_id(tok), m2u_unigram_eos_id(tok),
                  m2u_unigram_unk_id(tok));
            CHECK(m2u_unigram_token_to_id(tok, "<extra_id_0>") == 799, "<extra_id_0> id %d",
                  m2u_unigram_token_to_id(tok, "<extra_id_0>"));
            const char *t = m2u_unigram_id_to_token(tok, 1);
            CHECK(t && !strcmp(t, "</s>"), "id 1 -> %s", t ? t : "(null)");
            char *norm;
            size_t nn;
            CHECK(m2u_unigram_normalize(tok, "\xef\xbd\x86\xef\xbd\x95\xef\xbd\x8c\xef\xbd\x8c", 12, &norm, &nn) == 0 &&
                      !strcmp(norm, "full"),
                  "full-width folding");
            free(norm);
            int32_t *ids;
            size_t n;
            CHECK(m2u_unigram_encode(tok, "a\xff", 2, 1, &ids, &n) != 0 && strstr(m2u_last_error(), "UTF-8"),
                  "invalid UTF-8 accepted");
        }
        m2u_unigram_free(tok);
    }
    printf("unigram: %d encodings over %d strings x %d sets, %d differ\n", total, n_cases,
           cJSON_GetArraySize(sets), bad);
    for (int c = 0; c < n_cases; c++) free(cases[c].text);
    free(cases);
    for (int i = 0; i < n_lines; i++) cJSON_Delete(lines[i]);
    free(lines);
    cJSON_Delete(base_json);
}

/* A broken file must be refused with a message naming it. */
static void expect_refused(const char *json_text, const char *what, const char *needle) {
    char path[] = "/tmp/m2u_unigram_bad_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    CHECK(write(fd, json_text, strlen(json_text)) == (ssize_t)strlen(json_text), "write");
    close(fd);
    m2u_unigram *tok = NULL;
    int rc = m2u_unigram_load(path, &tok);
    CHECK(rc != 0 && tok == NULL, "%s: accepted", what);
    if (rc) {
        CHECK(strstr(m2u_last_error(), path) != NULL, "%s: message does not name the file: %s", what, m2u_last_error());
        CHECK(strstr(m2u_last_error(), needle) != NULL, "%s: message lacks \"%s\": %s", what, needle,
              m2u_last_error());
    }
    m2u_unigram_free(tok);
    unlink(path);
}

#define MODEL_OK "\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"<unk>\",0.0],[\"a\",-1.0]]}"

static void test_refusals(void) {
    expect_refused("{\"model\": ", "truncated JSON", "malformed JSON");
    expect_refused("{\"model\":{\"type\":\"BPE\",\"vocab\":{}}}", "BPE model", "Unigram");
    expect_refused("{\"model\":{\"type\":\"Unigram\",\"unk_id\":5,\"vocab\":[[\"<unk>\",0.0]]}}", "unk_id out of range",
                   "unk_id");
    expect_refused("{\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"<unk>\",\"x\"]]}}", "score not a number",
                   "vocab[0]");
    expect_refused("{" MODEL_OK ",\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"@@@@\"}}",
                   "bad base64", "base64");
    expect_refused("{" MODEL_OK ",\"normalizer\":{\"type\":\"Precompiled\",\"precompiled_charsmap\":\"QAAAAA==\"}}",
                   "charsmap trie too long", "does not fit");
    expect_refused("{" MODEL_OK ",\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"[a-z]+\"},\"content\":\"\"}}",
                   "unsupported regex", "Regex");
    expect_refused("{" MODEL_OK ",\"normalizer\":{\"type\":\"NFKC\"}}", "NFKC normalizer", "NFKC");
    /* bytes that are not UTF-8 inside a JSON string: a Replace content like this one put
     * a truncated character into the normalized text, and the Viterbi walk indexed past
     * its end (found by tests/fuzz, fuzz_tokenizer_unigram) */
    expect_refused("{" MODEL_OK ",\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\"a\"},"
                   "\"content\":\"\xe4\"}}",
                   "invalid UTF-8", "not UTF-8");
    expect_refused("{" MODEL_OK ",\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}", "ByteLevel", "ByteLevel");
    expect_refused("{" MODEL_OK ",\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"ab\"}}",
                   "two-character replacement", "replacement");
    expect_refused("{" MODEL_OK ",\"added_tokens\":[{\"id\":2,\"content\":\"<x>\",\"lstrip\":true}]}", "lstrip token",
                   "lstrip");
    expect_refused("{" MODEL_OK ",\"truncation\":{\"max_length\":5}}", "truncation", "truncation");
    expect_refused("{" MODEL_OK ",\"post_processor\":{\"type\":\"ByteLevel\"}}", "ByteLevel post-processor",
                   "post_processor");
    /* An added token whose declared id is not the one it gets would be renumbered silently. */
    expect_refused("{" MODEL_OK ",\"added_tokens\":[{\"id\":9,\"content\":\"<x>\"}]}", "added id beyond the vocabulary",
                   "added_tokens[0] \"<x>\": declared id 9, but the token gets id 2");
    expect_refused("{" MODEL_OK ",\"added_tokens\":[{\"id\":0,\"content\":\"a\"}]}", "added id of another entry",
                   "declared id 0, but the token gets id 1 (its id in model.vocab)");
    expect_refused("{" MODEL_OK ",\"added_tokens\":[{\"content\":\"<x>\"}]}", "added token without id",
                   "id must be a non-negative integer");
    m2u_unigram *tok = NULL;
    {
        char path[] = "/tmp/m2u_unigram_ok_XXXXXX";
        static const char ok[] = "{" MODEL_OK ",\"added_tokens\":[{\"id\":1,\"content\":\"a\"},{\"id\":2,"
                                 "\"content\":\"<x>\",\"special\":true},{\"id\":3,\"content\":\"<y>\"}]}";
        int fd = mkstemp(path);
        CHECK(fd >= 0 && write(fd, ok, sizeof ok - 1) == (ssize_t)(sizeof ok - 1), "write");
        if (fd >= 0) close(fd);
        CHECK(m2u_unigram_load(path, &tok) == 0, "consistent added ids refused: %s", m2u_last_error());
        m2u_unigram_free(tok);
        tok = NULL;
        unlink(path);
    }
    CHECK(m2u_unigram_load(T5_DIR "no_such_file.json", &tok) != 0 && strstr(m2u_last_error(), "no_such_file.json"),
          "missing file: %s", m2u_last_error());
}

int main(void) {
    run_cases();
    test_refusals();
    return t_finish("test_unigram_tokenizer");
}
