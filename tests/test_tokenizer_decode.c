/* The shared pipeline's decoders (models/tokenizers/tokenizer_pipeline.c) through the Unigram and
 * WordPiece models, against tokenizers 0.20.3's Tokenizer.decode: tests/fixtures/tokenizer_decode/
 * decode_cases.json (from tests/make_tokenizer_decode_fixtures.py) holds, for the T5 (Unigram,
 * Metaspace decoder) and BERT (WordPiece, WordPiece decoder with cleanup) fixtures, id lists and
 * the text the reference decodes them to, with and without skip_special_tokens.  Every text must
 * match byte for byte.  Then a decoder type a model does not run is refused with the field named. */
#include "fileio.h"
#include "m2u_error.h"
#include "test_util.h"
#include "unigram_tokenizer.h"
#include "wordpiece_tokenizer.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef M2U_FIXTURES
#error "M2U_FIXTURES must name the tests/fixtures directory"
#endif

static void run_cases(void) {
    char *data;
    size_t len;
    CHECK(m2u_read_file(M2U_FIXTURES "/tokenizer_decode/decode_cases.json", &data, &len) == 0, "%s",
          m2u_last_error());
    cJSON *root = cJSON_ParseWithLength(data, len);
    free(data);
    CHECK(cJSON_IsArray(root), "decode_cases.json: not a JSON array");
    m2u_unigram *uni = NULL;
    m2u_wordpiece *wp = NULL;
    CHECK(m2u_unigram_load(M2U_FIXTURES "/t5/tokenizer.json", &uni) == 0, "%s", m2u_last_error());
    CHECK(m2u_wordpiece_load(M2U_FIXTURES "/bertscore/model/tokenizer.json", &wp) == 0, "%s", m2u_last_error());
    int n_uni = 0, n_wp = 0, k = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, root) {
        const char *file = cJSON_GetObjectItemCaseSensitive(c, "file")->valuestring;
        const cJSON *idj = cJSON_GetObjectItemCaseSensitive(c, "ids");
        const char *want = cJSON_GetObjectItemCaseSensitive(c, "text")->valuestring;
        int skip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "skip"));
        size_t n = (size_t)cJSON_GetArraySize(idj), i = 0;
        int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
        const cJSON *e;
        cJSON_ArrayForEach(e, idj) ids[i++] = (int32_t)e->valuedouble;
        char *got = NULL;
        size_t got_len = 0;
        bool is_uni = strstr(file, "t5/") == file;
        int rc = is_uni ? m2u_unigram_decode(uni, ids, n, skip, &got, &got_len)
                        : m2u_wordpiece_decode(wp, ids, n, skip, &got, &got_len);
        CHECK(rc == 0, "case %d (%s): %s", k, file, m2u_last_error());
        if (rc == 0) {
            CHECK(got_len == strlen(want) && memcmp(got, want, got_len) == 0 && got[got_len] == '\0',
                  "case %d (%s, skip %d): got \"%s\", want \"%s\"", k, file, skip, got, want);
            if (is_uni) n_uni++;
            else n_wp++;
        }
        free(got);
        free(ids);
        k++;
    }
    CHECK(n_uni >= 20 && n_wp >= 20, "too few cases: %d Unigram, %d WordPiece", n_uni, n_wp);
    printf("decode: %d Unigram and %d WordPiece cases against tokenizers 0.20.3\n", n_uni, n_wp);
    m2u_unigram_free(uni);
    m2u_wordpiece_free(wp);
    cJSON_Delete(root);
}

/* A WordPiece file whose decoder is not WordPiece, and a Unigram one with a WordPiece decoder. */
static void test_refusals(void) {
    static const char *const files[2] = {
        "{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"[UNK]\":0}},\"decoder\":{\"type\":\"Metaspace\","
        "\"replacement\":\"_\"}}",
        "{\"model\":{\"type\":\"Unigram\",\"unk_id\":0,\"vocab\":[[\"<unk>\",0.0]]},\"decoder\":{\"type\":"
        "\"WordPiece\"}}"};
    for (int f = 0; f < 2; f++) {
        char path[] = "/tmp/m2u_decode_refusal_XXXXXX";
        int fd = mkstemp(path);
        size_t n = strlen(files[f]);
        CHECK(fd >= 0 && write(fd, files[f], n) == (ssize_t)n, "write %s", path);
        if (fd >= 0) close(fd);
        int rc;
        if (f == 0) {
            m2u_wordpiece *t = NULL;
            rc = m2u_wordpiece_load(path, &t);
            m2u_wordpiece_free(t);
        } else {
            m2u_unigram *t = NULL;
            rc = m2u_unigram_load(path, &t);
            m2u_unigram_free(t);
        }
        CHECK(rc != 0 && strstr(m2u_last_error(), path) && strstr(m2u_last_error(), "decoder") &&
                  strstr(m2u_last_error(), "not supported"),
              "file %d: want a refusal naming the file and the decoder, got rc %d: %s", f, rc, m2u_last_error());
        unlink(path);
    }
}

int main(void) {
    run_cases();
    test_refusals();
    return t_finish("test_tokenizer_decode");
}
