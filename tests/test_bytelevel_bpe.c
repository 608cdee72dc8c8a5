/* models/tokenizers/bytelevel_bpe.c against transformers 4.46.3's slow RobertaTokenizer.
 *
 * tests/fixtures/roberta/model/ holds a byte-level BPE vocabulary trained with `tokenizers` and saved
 * as RobertaTokenizer saves it (vocab.json, merges.txt, tokenizer_config.json); tokenizer_cases.json
 * the ids the reference gives for ~2000 strings with add_prefix_space True ("p") and False ("n"), a
 * truncated encode at max_length 8 ("t8") and decodes ("d", "ds": skip_special_tokens).  All from
 * tests/make_roberta_fixtures.py.  Every id and every decoded byte must match.  The same vocabulary as
 * the fast tokenizer's tokenizer.json (ByteLevel pre-tokenizer and decoder, RobertaProcessing) through
 * the shared tokenizer.json pipeline (tokenizer.h) must give the fast tokenizer's ids ("f" / "fp" where
 * they differ from the slow one's: the fast one puts the prefix space before every piece between added
 * tokens) and decodes ("fd").  Then: the merges.txt line rules, the defaults without
 * tokenizer_config.json, and refusals naming the file. */
#include "bytelevel_bpe.h"
#include "fileio.h"
#include "m2u_error.h"
#include "test_util.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef M2U_FIXTURES
#error "M2U_FIXTURES must name the tests/fixtures directory"
#endif
#define DIR M2U_FIXTURES "/roberta/model"
#define MAX_SHOWN 8

static char *unhex(const char *h, size_t *n) {
    *n = strlen(h) / 2;
    char *s = malloc(*n + 1);
    for (size_t i = 0; i < *n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        s[i] = (char)v;
    }
    s[*n] = '\0';
    return s;
}

static int same_ids(const int32_t *ids, size_t n, const cJSON *want) {
    if (!cJSON_IsArray(want) || (size_t)cJSON_GetArraySize(want) != n) return 0;
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, want) if ((int32_t)e->valuedouble != ids[i++]) return 0;
    return 1;
}

static void check_cases(const m2u_bytebpe *t) {
    char *data;
    size_t len;
    if (m2u_read_file(M2U_FIXTURES "/roberta/tokenizer_cases.json", &data, &len)) {
        CHECK(0, "%s", m2u_last_error());
        return;
    }
    cJSON *cases = cJSON_Parse(data);
    free(data);
    CHECK(cJSON_GetArraySize(cases) >= 2000, "%d cases", cJSON_GetArraySize(cases));
    int bad[5] = {0}, n_case = 0, n_t8 = 0, n_dec = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        size_t n;
        char *text = unhex(cJSON_GetObjectItem(c, "hex")->valuestring, &n);
        static const char *const keys[3] = {"p", "n", "t8"};
        for (int k = 0; k < 3; k++) {
            const cJSON *want = cJSON_GetObjectItem(c, keys[k]);
            if (!want) continue;
            int32_t *ids;
            size_t m;
            int rc = m2u_bytebpe_encode(t, text, n, k != 1, 1, k == 2 ? 8 : 0, &ids, &m);
            if (k == 2) n_t8++;
            if (rc || !same_ids(ids, m, want)) {
                if (bad[k]++ < MAX_SHOWN) {
                    char *got = cJSON_PrintUnformatted(want);
                    fprintf(stderr, "  %s mismatch for \"%s\": want %s, got", keys[k], text, got);
                    for (size_t i = 0; !rc && i < m; i++) fprintf(stderr, " %d", ids[i]);
                    fprintf(stderr, "%s\n", rc ? m2u_last_error() : "");
                    free(got);
                }
            }
            if (k == 0) {
                for (int s = 0; s < 2 && !rc; s++) {
                    const cJSON *d = cJSON_GetObjectItem(c, s ? "ds" : "d");
                    if (!d) continue;
                    char *out;
                    size_t ol;
                    n_dec++;
                    if (m2u_bytebpe_decode(t, ids, m, s, &out, &ol) || ol != strlen(d->valuestring) ||
                        memcmp(out, d->valuestring, ol) != 0) {
                        if (bad[3 + s]++ < MAX_SHOWN)
                            fprintf(stderr, "  decode%s mismatch for \"%s\": want \"%s\"\n", s ? " (skip)" : "", text,
                                    d->valuestring);
                    }
                    free(out);
                }
            }
            free(ids);
        }
        free(text);
        n_case++;
    }
    CHECK(bad[0] == 0, "%d of %d encodes with add_prefix_space differ", bad[0], n_case);
    CHECK(bad[1] == 0, "%d of %d encodes without add_prefix_space differ", bad[1], n_case);
    CHECK(bad[2] == 0, "%d of %d truncated encodes differ", bad[2], n_t8);
    CHECK(bad[3] + bad[4] == 0, "%d of %d decodes differ", bad[3] + bad[4], n_dec);
    printf("  %d strings, %d truncated, %d decodes\n", n_case, n_t8, n_dec);
    cJSON_Delete(cases);
}

/* tokenizer.json through m2u_tokenizer (the fast tokenizer): model/tokenizer.json (add_prefix_space
 * false) against "f" (else "n"), tokenizer_aps.json (true) against "fp" (else "p"). */
static void check_fast(void) {
    m2u_tokenizer *tf = NULL, *tp = NULL;
    CHECK(m2u_tokenizer_load(DIR "/tokenizer.json", &tf) == 0, "%s", m2u_last_error());
    CHECK(m2u_tokenizer_load(M2U_FIXTURES "/roberta/tokenizer_aps.json", &tp) == 0, "%s", m2u_last_error());
    cJSON *cases = NULL;
    char *data;
    size_t len;
    if (tf && tp && m2u_read_file(M2U_FIXTURES "/roberta/tokenizer_cases.json", &data, &len) == 0) {
        cases = cJSON_Parse(data);
        free(data);
    }
    int bad[3] = {0}, n_case = 0, n_diff = 0, n_dec = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        size_t n;
        char *text = unhex(cJSON_GetObjectItem(c, "hex")->valuestring, &n);
        for (int k = 0; k < 2; k++) {
            const cJSON *want = cJSON_GetObjectItem(c, k ? "fp" : "f");
            n_diff += want != NULL;
            if (!want) want = cJSON_GetObjectItem(c, k ? "p" : "n");
            int32_t *ids;
            size_t m;
            int rc = m2u_tokenizer_encode(k ? tp : tf, text, n, 1, &ids, &m);
            if ((rc || !same_ids(ids, m, want)) && bad[k]++ < MAX_SHOWN) {
                char *w = cJSON_PrintUnformatted(want);
                fprintf(stderr, "  fast%s mismatch for \"%s\": want %s, got", k ? " (prefix)" : "", text, w);
                for (size_t i = 0; !rc && i < m; i++) fprintf(stderr, " %d", ids[i]);
                fprintf(stderr, "\n");
                free(w);
            }
            const cJSON *d = k ? NULL : cJSON_GetObjectItem(c, "fd");
            if (!rc && d) {
                char *out;
                size_t ol;
                n_dec++;
                if ((m2u_tokenizer_decode_n(tf, ids, m, 0, &out, &ol) || ol != strlen(d->valuestring) ||
                     memcmp(out, d->valuestring, ol)) && bad[2]++ < MAX_SHOWN)
                    fprintf(stderr, "  fast decode mismatch for \"%s\": want \"%s\"\n", text, d->valuestring);
                free(out);
            }
            free(ids);
        }
        free(text);
        n_case++;
    }
    CHECK(n_case >= 2000 && n_diff > 0, "%d cases, %d where fast and slow differ", n_case, n_diff);
    CHECK(bad[0] == 0, "%d of %d tokenizer.json encodes differ", bad[0], n_case);
    CHECK(bad[1] == 0, "%d of %d tokenizer.json (add_prefix_space) encodes differ", bad[1], n_case);
    CHECK(bad[2] == 0, "%d of %d tokenizer.json decodes differ", bad[2], n_dec);
    printf("  tokenizer.json: %d strings x 2 (%d where the fast tokenizer differs from the slow one), %d decodes\n",
           n_case, n_diff, n_dec);
    cJSON_Delete(cases);
    m2u_tokenizer_free(tf);
    m2u_tokenizer_free(tp);
}

static void write_text(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    fputs(s, f);
    fclose(f);
}

/* A hand-made vocabulary: the merges.txt rules (first line and last element dropped, split() on any
 * Python whitespace, a repeated pair keeps its last rank, other lines take a rank) and the defaults. */
static void check_rules(void) {
    char dir[] = "/tmp/m2u_bytebpe_XXXXXX";
    if (!mkdtemp(dir)) return;
    char vocab[128], merges[128], cfg[128];
    snprintf(vocab, sizeof vocab, "%s/vocab.json", dir);
    snprintf(merges, sizeof merges, "%s/merges.txt", dir);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    write_text(vocab, "{\"<s>\": 0, \"<pad>\": 1, \"</s>\": 2, \"<unk>\": 3, \"a\": 4, \"b\": 5, \"ab\": 6, \"c\": 7,"
                      " \"bc\": 8, \"\\u0120\": 9, \"\\u0120a\": 10, \"abc\": 11, \"<mask>\": 12}");
    /* "b c" (rank 1) before "a b" (rank 3, its earlier copy at 0 overridden); "x" takes rank 2 */
    write_text(merges, "#version: 0.2\na b\nb\x1f" "c\nx\na  b\n\xc4\xa0 a\nab c");
    m2u_bytebpe *t;
    CHECK(m2u_bytebpe_load(dir, &t) == 0, "%s", m2u_last_error());
    if (t) {
        int32_t *ids;
        size_t n;
        CHECK(m2u_bytebpe_encode(t, "abc a", 5, 0, 0, 0, &ids, &n) == 0, "%s", m2u_last_error());
        /* "abc": "b c" first -> a bc (no "a bc" merge); "ab c" is the dropped last element */
        CHECK(n == 3 && ids[0] == 4 && ids[1] == 8 && ids[2] == 10, "got %zu ids: %d %d", n, n ? ids[0] : -1,
              n > 1 ? ids[1] : -1);
        free(ids);
        CHECK(m2u_bytebpe_encode(t, "a<mask>", 7, 0, 1, 0, &ids, &n) == 0 && n == 4 && ids[2] == 12,
              "<mask> is a default special token");
        free(ids);
        CHECK(m2u_bytebpe_encode(t, "d", 1, 0, 0, 0, &ids, &n) == 0 && n == 1 && ids[0] == 3, "unknown -> <unk>");
        free(ids);
        CHECK(m2u_bytebpe_cls_id(t) == 0 && m2u_bytebpe_sep_id(t) == 2 && m2u_bytebpe_pad_id(t) == 1 &&
                  m2u_bytebpe_mask_id(t) == 12 && m2u_bytebpe_model_max_length(t) == 0,
              "default special ids");
        CHECK(m2u_bytebpe_encode(t, "a\xff", 2, 0, 0, 0, &ids, &n) != 0, "invalid UTF-8 refused");
        m2u_bytebpe_free(t);
    }
    write_text(cfg, "{\"tokenizer_class\": \"GPT2Tokenizer\"}");
    CHECK(m2u_bytebpe_load(dir, &t) != 0 && strstr(m2u_last_error(), "tokenizer_config.json"),
          "another tokenizer class is refused: %s", m2u_last_error());
    remove(cfg);
    write_text(vocab, "{\"a\": 1, \"b\": 1}");
    CHECK(m2u_bytebpe_load(dir, &t) != 0 && strstr(m2u_last_error(), "vocab.json"), "an id used twice: %s",
          m2u_last_error());
    write_text(vocab, "{\"a\": 1, \"b\": 2, \"a\": 3}");
    CHECK(m2u_bytebpe_load(dir, &t) != 0 && strstr(m2u_last_error(), "twice"), "a duplicate key: %s",
          m2u_last_error());
    write_text(vocab, "{\"a\": 1.5}");
    CHECK(m2u_bytebpe_load(dir, &t) != 0 && strstr(m2u_last_error(), "vocab.json"), "a fractional id: %s",
          m2u_last_error());
    write_text(vocab, "{\"<s>\": 0, \"</s>\": 2}");
    CHECK(m2u_bytebpe_load(dir, &t) != 0 && strstr(m2u_last_error(), "<unk>"), "a missing special token: %s",
          m2u_last_error());
    remove(merges);
    CHECK(m2u_bytebpe_load(dir, &t) != 0 && strstr(m2u_last_error(), "merges.txt"), "no merges.txt: %s",
          m2u_last_error());
    remove(vocab);
    rmdir(dir);
    m2u_clear_error();
}

int main(void) {
    m2u_bytebpe *t = NULL;
    CHECK(m2u_bytebpe_load(DIR, &t) == 0, "%s", m2u_last_error());
    if (t) {
        CHECK(m2u_bytebpe_model_max_length(t) == 40, "model_max_length %zu", m2u_bytebpe_model_max_length(t));
        CHECK(m2u_bytebpe_cls_id(t) == 0 && m2u_bytebpe_pad_id(t) == 1 && m2u_bytebpe_sep_id(t) == 2 &&
                  m2u_bytebpe_unk_id(t) == 3 && m2u_bytebpe_mask_id(t) == 4,
              "special ids");
        const char *tok = m2u_bytebpe_id_to_token(t, 100);
        CHECK(tok && m2u_bytebpe_token_to_id(t, tok) == 100, "id 100 round trip");
        check_cases(t);
        m2u_bytebpe_free(t);
    }
    check_fast();
    check_rules();
    return t_finish("test_bytelevel_bpe");
}
