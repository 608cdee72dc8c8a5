/* models/tokenizers/wordpiece_tokenizer.c and models/nets/bert_encoder.c against tokenizers
 * 0.20.3 and transformers 4.46.3 (BertModel), on the fixtures of
 * tests/make_bertscore_fixtures.py (tests/fixtures/bertscore):
 *   - token ids of ~100 strings, exact;
 *   - all hidden states of a padded batch within 1e-5 relative at the real
 *     tokens (padded positions are 0 by contract), for a BertModel
 *     (model.safetensors) and a RobertaModel (pytorch_model.bin);
 *   - malformed checkpoints and tokenizer.json files refused, naming the file. */
#include "bert_encoder.h"
#include "fileio.h"
#include "m2u_error.h"
#include "safetensors.h"
#include "test_util.h"
#include "wordpiece_tokenizer.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef M2U_FIXTURES
#error "M2U_FIXTURES must name the tests/fixtures directory"
#endif
#define BS_DIR M2U_FIXTURES "/bertscore"
#define MODEL_DIR BS_DIR "/model"

static char *hex_text(const char *hex, size_t *n) {
    *n = strlen(hex) / 2;
    char *s = malloc(*n + 1);
    for (size_t i = 0; i < *n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        s[i] = (char)v;
    }
    s[*n] = '\0';
    return s;
}

static void test_tokenizer(void) {
    m2u_wordpiece *tok;
    int rc = m2u_wordpiece_load(MODEL_DIR "/tokenizer.json", &tok);
    CHECK(rc == 0, "load: %s", m2u_last_error());
    if (rc) return;
    CHECK(m2u_wordpiece_cls_id(tok) == m2u_wordpiece_token_to_id(tok, "[CLS]"), "cls id");
    CHECK(m2u_wordpiece_sep_id(tok) == m2u_wordpiece_token_to_id(tok, "[SEP]"), "sep id");
    char *data;
    size_t len;
    CHECK(m2u_read_file(BS_DIR "/tokenizer_cases.json", &data, &len) == 0, "read cases");
    cJSON *cases = cJSON_ParseWithLength(data, len);
    free(data);
    CHECK(cJSON_IsArray(cases) && cJSON_GetArraySize(cases) >= 90, "cases");
    const cJSON *c;
    int n_ok = 0, n_cases = 0;
    cJSON_ArrayForEach(c, cases) {
        size_t n;
        char *text = hex_text(cJSON_GetObjectItemCaseSensitive(c, "hex")->valuestring, &n);
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(c, "ids");
        int32_t *ids;
        size_t n_ids;
        n_cases++;
        if (m2u_wordpiece_encode(tok, text, n, 1, 0, &ids, &n_ids) != 0) {
            CHECK(0, "encode \"%s\": %s", text, m2u_last_error());
            free(text);
            continue;
        }
        int same = (int)n_ids == cJSON_GetArraySize(want);
        for (size_t i = 0; same && i < n_ids; i++) same = ids[i] == cJSON_GetArrayItem(want, (int)i)->valueint;
        if (!same) {
            fprintf(stderr, "mismatch \"%s\":\n  got ", text);
            for (size_t i = 0; i < n_ids; i++) fprintf(stderr, " %d", ids[i]);
            char *w = cJSON_PrintUnformatted(want);
            fprintf(stderr, "\n  want %s\n", w);
            free(w);
        }
        CHECK(same, "ids of \"%s\"", text);
        n_ok += same;
        /* without special tokens: the template's two ids are gone */
        int32_t *plain;
        size_t n_plain;
        CHECK(m2u_wordpiece_encode(tok, text, n, 0, 0, &plain, &n_plain) == 0 && n_plain + 2 == n_ids &&
                  (n_plain == 0 || !memcmp(plain, ids + 1, n_plain * sizeof *plain)),
              "plain ids of \"%s\"", text);
        free(plain);
        /* truncation as transformers' encode(max_length=8, truncation=True) */
        int32_t *cut;
        size_t n_cut;
        CHECK(m2u_wordpiece_encode(tok, text, n, 1, 8, &cut, &n_cut) == 0 && n_cut == (n_ids < 8 ? n_ids : 8) &&
                  cut[n_cut - 1] == ids[n_ids - 1] && !memcmp(cut, ids, (n_cut - 1) * sizeof *cut),
              "truncated ids of \"%s\"", text);
        free(cut);
        free(ids);
        free(text);
    }
    printf("tokenizer: %d / %d strings id-exact\n", n_ok, n_cases);
    /* an added token in the text is matched before normalisation */
    int32_t *ids;
    size_t n_ids;
    const char *s = "piano [SEP] [sep]";
    CHECK(m2u_wordpiece_encode(tok, s, strlen(s), 0, 0, &ids, &n_ids) == 0 && n_ids >= 3 &&
              ids[1] == m2u_wordpiece_sep_id(tok) && ids[2] != m2u_wordpiece_sep_id(tok),
          "added token");
    free(ids);
    /* a stretch after an added token that is longer than the one before it, but
     * not twice as long, reuses the word buffer (found by tests/fuzz: it wrote
     * past the buffer, caught under ASan) and must tokenize as on its own */
    {
        char text[600], tail[320];
        for (int k = 0; k < 150; k++) memcpy(tail + 2 * k, "\xd0\xb6", 2); /* U+0436, 2 bytes in UTF-8 */
        tail[300] = '\0';
        memset(text, 'e', 100); /* the first stretch: 100 one-byte letters */
        snprintf(text + 100, sizeof text - 100, "[SEP]%s", tail);
        int32_t *whole, *part;
        size_t n_whole, n_part;
        CHECK(m2u_wordpiece_encode(tok, text, strlen(text), 0, 0, &whole, &n_whole) == 0, "encode long stretches");
        CHECK(m2u_wordpiece_encode(tok, tail, 300, 0, 0, &part, &n_part) == 0, "encode one stretch");
        CHECK(n_whole > n_part && !memcmp(whole + n_whole - n_part, part, n_part * sizeof *part),
              "stretch after an added token");
        free(whole);
        free(part);
    }
    CHECK(m2u_wordpiece_encode(tok, "\xff", 1, 1, 0, &ids, &n_ids) != 0 && strstr(m2u_last_error(), "UTF-8"),
          "invalid UTF-8 refused: %s", m2u_last_error());
    cJSON_Delete(cases);
    m2u_wordpiece_free(tok);
}

static void test_hidden(const char *model_dir, const char *hidden_path, int position_offset) {
    m2u_bert *m;
    int rc = m2u_bert_load(model_dir, &m);
    CHECK(rc == 0, "load: %s", m2u_last_error());
    if (rc) return;
    const m2u_bert_config *c = m2u_bert_config_of(m);
    CHECK(c->position_offset == position_offset, "%s: position offset %d", model_dir, c->position_offset);
    m2u_safetensors *st;
    rc = m2u_st_open(hidden_path, &st);
    CHECK(rc == 0, "open hidden: %s", m2u_last_error());
    if (rc) {
        m2u_bert_free(m);
        return;
    }
    const m2u_st_tensor *t_ids = m2u_st_find(st, "input_ids"), *t_mask = m2u_st_find(st, "attention_mask");
    const m2u_st_tensor *t_hs = m2u_st_find(st, "hidden_states");
    CHECK(t_ids && t_mask && t_hs && t_ids->ndim == 2 && t_hs->ndim == 4, "tensors");
    int B = (int)t_ids->shape[0], T = (int)t_ids->shape[1], H = c->dims.hidden, L = c->layers;
    CHECK(t_hs->shape[0] == L + 1 && t_hs->shape[1] == B && t_hs->shape[2] == T && t_hs->shape[3] == H, "shape");
    size_t n_hs = (size_t)(L + 1) * B * T * H;
    int32_t *ids = malloc((size_t)B * T * sizeof(int32_t)), *mask = malloc((size_t)B * T * sizeof(int32_t));
    float *want = malloc(n_hs * sizeof(float)), *got = malloc(n_hs * sizeof(float));
    CHECK(m2u_st_read_f32(t_hs, want, n_hs) == 0, "read: %s", m2u_last_error());
    CHECK(t_ids->dtype == M2U_I32 && t_mask->dtype == M2U_I32, "int32 ids and mask");
    memcpy(ids, t_ids->data, (size_t)B * T * sizeof(int32_t)); /* may be unaligned in the mapping */
    memcpy(mask, t_mask->data, (size_t)B * T * sizeof(int32_t));
    rc = m2u_bert_forward_batch(m, ids, mask, B, T, got);
    CHECK(rc == 0, "forward_batch: %s", m2u_last_error());
    if (rc == 0) {
        int padded = 0;
        for (int l = 0; l <= L; l++)
            for (int b = 0; b < B; b++)
                for (int t = 0; t < T; t++) {
                    float *w = want + (((size_t)l * B + b) * T + t) * H;
                    if (!mask[b * T + t]) { /* padded: compare our zeros with zeros */
                        memset(w, 0, (size_t)H * sizeof(float));
                        padded++;
                    }
                }
        CHECK(padded > 0, "the batch has padding");
        for (int l = 0; l <= L; l++) {
            double e = t_max_rel_err(got + (size_t)l * B * T * H, want + (size_t)l * B * T * H, (size_t)B * T * H);
            printf("%s hidden_states[%d]: max rel err %.3g\n", model_dir + strlen(BS_DIR) + 1, l, e);
            CHECK(e < 1e-5, "hidden_states[%d] rel err %g", l, e);
        }
        /* one sequence, num_layers < layers: the same values as the batch */
        float *last = malloc((size_t)T * H * sizeof(float));
        int n0 = 0;
        while (n0 < T && mask[n0]) n0++;
        CHECK(m2u_bert_forward(m, ids, n0, L - 1, NULL, last) == 0, "forward: %s", m2u_last_error());
        const float *w2 = got + (size_t)(L - 1) * B * T * H;
        /* the batch runs packed (one GEMM over every sequence's rows), so the float sums round
         * differently from the lone sequence's: equal to float rounding, not bit for bit */
        double e1 = t_max_rel_err(last, w2, (size_t)n0 * H);
        CHECK(e1 < 1e-6, "forward(num_layers=L-1) vs hidden_states[L-1]: rel err %.3g", e1);
        free(last);
    }
    int32_t bad_mask[4] = {1, 0, 1, 0}, bad_ids[4] = {2, 3, 2, 3};
    float *tmp = malloc((size_t)(L + 1) * 4 * H * sizeof(float));
    CHECK(m2u_bert_forward_batch(m, bad_ids, bad_mask, 1, 4, tmp) != 0, "left gap in the mask refused");
    int32_t big[1] = {c->vocab};
    CHECK(m2u_bert_forward(m, big, 1, 1, NULL, tmp) != 0 && strstr(m2u_last_error(), "vocabulary"),
          "id out of range refused");
    free(tmp);
    free(ids);
    free(mask);
    free(want);
    free(got);
    m2u_st_close(st);
    m2u_bert_free(m);
}

/* ---- malformed inputs ---- */

static char tmp_dir[] = "/tmp/m2u_test_bert_XXXXXX";

static void put(const char *name, const char *text) {
    char *p = m2u_path_join(tmp_dir, name);
    CHECK(m2u_write_file_atomic(p, text, strlen(text)) == 0, "write %s", p);
    free(p);
}

static void copy_in(const char *name) {
    char src[512], *dst = m2u_path_join(tmp_dir, name), *data;
    size_t len;
    snprintf(src, sizeof src, "%s/%s", MODEL_DIR, name);
    CHECK(m2u_read_file(src, &data, &len) == 0 && m2u_write_file_atomic(dst, data, len) == 0, "copy %s", src);
    free(data);
    free(dst);
}

static void expect_model_fail(const char *what, const char *needle) {
    m2u_bert *m = NULL;
    int rc = m2u_bert_load(tmp_dir, &m);
    CHECK(rc != 0 && strstr(m2u_last_error(), needle), "%s: want failure naming '%s', got rc %d: %s", what, needle, rc,
          m2u_last_error());
    m2u_bert_free(m);
}

static void expect_tok_fail(const char *what, const char *json, const char *needle) {
    put("tokenizer.json", json);
    char *p = m2u_path_join(tmp_dir, "tokenizer.json");
    m2u_wordpiece *tok = NULL;
    int rc = m2u_wordpiece_load(p, &tok);
    CHECK(rc != 0 && strstr(m2u_last_error(), "tokenizer.json") && strstr(m2u_last_error(), needle),
          "%s: want failure naming the file and '%s', got rc %d: %s", what, needle, rc, m2u_last_error());
    m2u_wordpiece_free(tok);
    free(p);
}

static void test_malformed(void) {
    CHECK(mkdtemp(tmp_dir) != NULL, "mkdtemp");
    /* config without weights */
    copy_in("config.json");
    expect_model_fail("no weights", tmp_dir);
    /* truncated safetensors */
    char *data, *p = m2u_path_join(tmp_dir, "model.safetensors");
    size_t len;
    CHECK(m2u_read_file(MODEL_DIR "/model.safetensors", &data, &len) == 0, "read weights");
    CHECK(m2u_write_file_atomic(p, data, len / 2) == 0, "write truncated");
    expect_model_fail("truncated weights", "model.safetensors");
    CHECK(m2u_write_file_atomic(p, data, len) == 0, "write weights");
    free(data);
    free(p);
    /* configs */
    put("config.json", "{\"model_type\": \"gpt2\"}");
    expect_model_fail("wrong model_type", "config.json");
    put("config.json", "{\"model_type\": \"bert\", \"hidden_size\": 32, \"num_attention_heads\": 4, "
                       "\"num_hidden_layers\": 4, \"intermediate_size\": 64, \"vocab_size\": 400, "
                       "\"max_position_embeddings\": 64, \"position_embedding_type\": \"relative_key\"}");
    expect_model_fail("relative positions", "position_embedding_type");
    put("config.json", "{\"model_type\": \"bert\", \"hidden_size\": 48, \"num_attention_heads\": 4, "
                       "\"num_hidden_layers\": 4, \"intermediate_size\": 64, \"vocab_size\": 400, "
                       "\"max_position_embeddings\": 64}");
    expect_model_fail("wrong hidden size", "model.safetensors");
    put("config.json", "{\"model_type\": \"bert\", \"hidden_size\": 32,");
    expect_model_fail("bad JSON", "config.json");
    /* tokenizer.json */
    expect_tok_fail("not JSON", "{\"model\": ", "JSON");
    expect_tok_fail("BPE model", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}", "model.type");
    expect_tok_fail("no unk in vocab", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", "unk_token");
    expect_tok_fail("other normalizer",
                    "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}, \"normalizer\": {\"type\": "
                    "\"NFKC\"}}",
                    "normalizer");
    expect_tok_fail("duplicated token",
                    "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"a\": 1, \"a\": 2}}}",
                    "twice");
    expect_tok_fail("bad id",
                    "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": -3}}}", "model.vocab");
    expect_tok_fail("lstrip added token",
                    "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}, \"added_tokens\": [{\"id\": 0, "
                    "\"content\": \"[UNK]\", \"lstrip\": true}]}",
                    "lstrip");
    /* added tokens whose declared id is not the one they get (the reference would renumber them) */
    expect_tok_fail("added id beyond the vocabulary",
                    "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"a\": 1}}, \"added_tokens\": "
                    "[{\"id\": 0, \"content\": \"[UNK]\"}, {\"id\": 5, \"content\": \"[X]\"}]}",
                    "added_tokens[1] \"[X]\": declared id 5, but the token gets id 2");
    expect_tok_fail("added id of another vocabulary entry",
                    "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"a\": 1}}, \"added_tokens\": "
                    "[{\"id\": 1, \"content\": \"[UNK]\"}]}",
                    "declared id 1, but the token gets id 0 (its id in model.vocab)");
    expect_tok_fail("added token without id",
                    "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}, \"added_tokens\": "
                    "[{\"content\": \"[X]\"}]}",
                    "id must be a non-negative integer");
    expect_tok_fail("RobertaProcessing",
                    "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}, \"post_processor\": "
                    "{\"type\": \"RobertaProcessing\"}}",
                    "post_processor");
    expect_tok_fail("template id out of range",
                    "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}, \"post_processor\": "
                    "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"[CLS]\"}}, "
                    "{\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {\"[CLS]\": {\"ids\": [7]}}}}",
                    "out of range");
    const char *names[] = {"config.json", "model.safetensors", "tokenizer.json"};
    for (int k = 0; k < 3; k++) {
        char *q = m2u_path_join(tmp_dir, names[k]);
        unlink(q);
        free(q);
    }
    rmdir(tmp_dir);
}

int main(void) {
    test_tokenizer();
    test_hidden(MODEL_DIR, BS_DIR "/hidden.safetensors", 0);
    test_hidden(BS_DIR "/roberta_bin", BS_DIR "/hidden_roberta.safetensors", 2); /* pytorch_model.bin */
    test_malformed();
    return t_finish("test_bert");
}
