/* models/nets/t5_encoder.c against transformers 4.46.3 (fixtures from tests/make_t5_fixtures.py):
 *   - relative position buckets equal T5Attention._relative_position_bucket for 8 settings;
 *   - three tiny random encoders (relu / pytorch_model.bin / T5EncoderModel; gated-gelu /
 *     safetensors / MusicGen "text_encoder." prefix and nested config; gated-gelu /
 *     T5ForConditionalGeneration with a decoder to ignore), each on a padded batch with an
 *     attention mask (one row all padding): last_hidden_state within 1e-5 relative;
 *   - the M2UGen projector target (caption -> 128 padded tokens -> encoder) against
 *     T5TokenizerFast(padding="max_length", truncation=True) + T5EncoderModel: ids and mask exact,
 *     output within 1e-5;
 *   - broken config.json / checkpoints refused with a message naming the file. */
#include "fileio.h"
#include "m2u_error.h"
#include "t5_encoder.h"
#include "test_fixture.h"
#include "test_util.h"
#include "unigram_tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef M2U_FIXTURES
#error "M2U_FIXTURES must name the tests/fixtures directory"
#endif
#define T5_DIR M2U_FIXTURES "/t5/"
#define TOL 1e-5

static void test_buckets(void) {
    m2u_safetensors *st;
    if (m2u_st_open(T5_DIR "buckets.safetensors", &st)) {
        CHECK(0, "%s", m2u_last_error());
        return;
    }
    int n_rel;
    int32_t *rel = t_st_ids(st, "relative_position", &n_rel);
    int n_sets = 0;
    for (int i = 0; i < m2u_st_count(st); i++) {
        const char *name = m2u_st_at(st, i)->name;
        int nb, md;
        if (sscanf(name, "bucket_%d_%d", &nb, &md) != 2) continue;
        n_sets++;
        int n;
        int32_t *want = t_st_ids(st, name, &n);
        int bad = 0;
        for (int k = 0; k < n && k < n_rel; k++) {
            int got = m2u_t5_relative_bucket(rel[k], nb, md);
            if (got != want[k] && bad++ < 5)
                fprintf(stderr, "  %s rel %d: got %d want %d\n", name, rel[k], got, want[k]);
        }
        CHECK(bad == 0 && n == n_rel, "%s: %d buckets differ", name, bad);
        free(want);
    }
    CHECK(n_sets == 8, "%d bucket settings", n_sets);
    free(rel);
    m2u_st_close(st);
}

static void test_encoder(const char *name, const char *prefix) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, T5_DIR "%s", name);
    m2u_t5_encoder *enc;
    if (m2u_t5_encoder_load(dir, prefix, &enc)) {
        CHECK(0, "%s: load: %s", name, m2u_last_error());
        return;
    }
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    m2u_safetensors *st;
    if (m2u_st_open(path, &st)) {
        CHECK(0, "%s", m2u_last_error());
        m2u_t5_encoder_free(enc);
        return;
    }
    const m2u_st_tensor *ti = m2u_st_find(st, "input_ids");
    int B = (int)ti->shape[0], T = (int)ti->shape[1], D = m2u_t5_encoder_config(enc)->d_model;
    int32_t *ids = t_st_ids(st, "input_ids", NULL), *mask = t_st_ids(st, "attention_mask", NULL);
    size_t n_want;
    float *want = t_st_f32(st, "last_hidden_state", &n_want);
    float *got = malloc((size_t)B * T * D * sizeof *got);
    CHECK(n_want == (size_t)B * T * D, "%s: reference size", name);
    int rc = m2u_t5_encode(enc, ids, mask, B, T, got);
    CHECK(rc == 0, "%s: encode: %s", name, m2u_last_error());
    if (rc == 0 && n_want == (size_t)B * T * D) {
        double worst = 0;
        for (int b = 0; b < B; b++) { /* per sequence, so a padded row is judged on its own scale */
            double e = t_max_rel_err(got + (size_t)b * T * D, want + (size_t)b * T * D, (size_t)T * D);
            worst = t_worse(worst, e);
        }
        CHECK(worst < TOL, "%s: last_hidden_state rel err %.3g", name, worst);
        printf("%s (%s): B %d T %d d_model %d, worst rel err %.3g\n", name, prefix ? prefix : "auto prefix", B, T, D,
               worst);
    }
    free(ids);
    free(mask);
    free(want);
    free(got);

    if (m2u_st_find(st, "caption_target")) {
        m2u_unigram *tok;
        char *js;
        size_t jl;
        snprintf(path, sizeof path, "%s/captions.json", dir);
        if (m2u_unigram_load(T5_DIR "tokenizer.json", &tok) || m2u_read_file(path, &js, &jl)) {
            CHECK(0, "caption fixtures: %s", m2u_last_error());
        } else {
            cJSON *cj = cJSON_Parse(js);
            free(js);
            int L = cJSON_GetObjectItemCaseSensitive(cj, "max_length")->valueint;
            const cJSON *caps = cJSON_GetObjectItemCaseSensitive(cj, "captions");
            int32_t *wids = t_st_ids(st, "caption_ids", NULL), *wmask = t_st_ids(st, "caption_mask", NULL);
            float *wt = t_st_f32(st, "caption_target", NULL);
            float *out = malloc((size_t)L * D * sizeof *out);
            int32_t *gids = malloc((size_t)L * sizeof *gids), *gmask = malloc((size_t)L * sizeof *gmask);
            int c = 0;
            const cJSON *cap;
            cJSON_ArrayForEach(cap, caps) {
                int n_tok = 0;
                int crc = m2u_t5_caption_target(enc, tok, cap->valuestring, strlen(cap->valuestring), L, out, gids,
                                                gmask, &n_tok);
                CHECK(crc == 0, "caption %d: %s", c, m2u_last_error());
                if (crc == 0) {
                    CHECK(!memcmp(gids, wids + (size_t)c * L, (size_t)L * sizeof *gids), "caption %d: ids differ", c);
                    CHECK(!memcmp(gmask, wmask + (size_t)c * L, (size_t)L * sizeof *gmask), "caption %d: mask differs",
                          c);
                    double e = t_max_rel_err(out, wt + (size_t)c * L * D, (size_t)L * D);
                    CHECK(e < TOL, "caption %d: target rel err %.3g", c, e);
                    printf("caption %d: %d real tokens of %d, target rel err %.3g\n", c, n_tok, L, e);
                }
                c++;
            }
            CHECK(c == 2, "%d captions", c);
            free(out);
            free(gids);
            free(gmask);
            free(wids);
            free(wmask);
            free(wt);
            cJSON_Delete(cj);
            m2u_unigram_free(tok);
        }
    }
    m2u_st_close(st);
    m2u_t5_encoder_free(enc);
}

/* ---------------------------------------------------------------- refusals */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void expect_config_refused(const char *json_text, const char *needle) {
    char path[] = "/tmp/m2u_t5cfg_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return;
    close(fd);
    write_text(path, json_text);
    m2u_t5_config cfg;
    int rc = m2u_t5_config_load(path, &cfg);
    CHECK(rc != 0, "config accepted: %s", json_text);
    if (rc) {
        CHECK(strstr(m2u_last_error(), path) != NULL, "message does not name the file: %s", m2u_last_error());
        CHECK(strstr(m2u_last_error(), needle) != NULL, "message lacks \"%s\": %s", needle, m2u_last_error());
    }
    unlink(path);
}

static void test_refusals(void) {
    expect_config_refused("{\"d_model\": \"768\"}", "d_model");
    expect_config_refused("{\"d_model\": 7.5}", "d_model");
    expect_config_refused("{\"num_heads\": 0}", "num_heads");
    expect_config_refused("{\"feed_forward_proj\": \"gated-foo\"}", "foo");
    expect_config_refused("{\"feed_forward_proj\": \"double-gated-gelu\"}", "feed_forward_proj");
    expect_config_refused("{\"relative_attention_num_buckets\": 2}", "relative_attention_num_buckets");
    expect_config_refused("{\"relative_attention_num_buckets\": 32, \"relative_attention_max_distance\": 8}",
                          "max_distance");
    expect_config_refused("{\"model_type\": \"umt5\"}", "umt5");
    expect_config_refused("{\"layer_norm_epsilon\": -1}", "layer_norm_epsilon");
    expect_config_refused("{\"text_encoder\": {\"d_kv\": null, \"num_layers\": \"x\"}}", "num_layers");
    expect_config_refused("[1, 2]", "JSON object");

    m2u_t5_config cfg;
    CHECK(m2u_t5_config_load(T5_DIR "enc_gated_musicgen/config.json", &cfg) == 0 && cfg.gated &&
              cfg.act == M2U_T5_ACT_GELU_NEW && cfg.d_model == 24 && cfg.num_buckets == 8 && cfg.eps == 1e-5f,
          "MusicGen nested config: %s", m2u_last_error());

    /* a checkpoint whose config does not fit its tensors, and a missing directory */
    char dir[] = "/tmp/m2u_t5dir_XXXXXX";
    if (mkdtemp(dir)) {
        char p[600], q[600];
        snprintf(p, sizeof p, "%s/config.json", dir);
        write_text(p, "{\"d_model\": 32, \"d_kv\": 8, \"num_heads\": 4, \"d_ff\": 48, \"num_layers\": 2, "
                      "\"vocab_size\": 800, \"relative_attention_num_buckets\": 16}");
        snprintf(q, sizeof q, "%s/pytorch_model.bin", dir);
        CHECK(symlink(T5_DIR "enc_relu_bin/pytorch_model.bin", q) == 0, "symlink");
        m2u_t5_encoder *enc = NULL;
        int rc = m2u_t5_encoder_load(dir, NULL, &enc);
        CHECK(rc != 0 && strstr(m2u_last_error(), "relative_attention_bias") &&
                  strstr(m2u_last_error(), "pytorch_model.bin"),
              "bucket-count mismatch: %s", m2u_last_error());
        m2u_t5_encoder_free(enc);
        write_text(p, "{\"d_model\": 32, \"d_kv\": 8, \"num_heads\": 4, \"d_ff\": 48, \"num_layers\": 1, "
                      "\"vocab_size\": 800}");
        rc = m2u_t5_encoder_load(dir, NULL, &enc);
        CHECK(rc != 0 && strstr(m2u_last_error(), "num_layers"), "extra layer: %s", m2u_last_error());
        m2u_t5_encoder_free(enc);
        rc = m2u_t5_encoder_load(dir, "text_encoder.", &enc);
        CHECK(rc != 0 && strstr(m2u_last_error(), "pytorch_model.bin"), "wrong prefix: %s", m2u_last_error());
        m2u_t5_encoder_free(enc);
        unlink(q);
        unlink(p);
        rmdir(dir);
    }
    m2u_t5_encoder *enc = NULL;
    CHECK(m2u_t5_encoder_load(T5_DIR "no_such_model", NULL, &enc) != 0 && strstr(m2u_last_error(), "no_such_model"),
          "missing dir: %s", m2u_last_error());
}

int main(void) {
    test_buckets();
    test_encoder("enc_relu_bin", NULL);
    test_encoder("enc_gated_musicgen", NULL);
    test_encoder("enc_gated_musicgen", "text_encoder.");
    test_encoder("enc_t5cg", NULL);
    test_encoder("enc_t5cg", "");
    test_refusals();
    return t_finish("test_t5");
}
