/* CLAP (transformers ClapModel) against the fixtures of tests/make_clap_fixtures.py: a tiny
 * random ClapModel with laion/clap-htsat-unfused's front end (48 kHz, 64 Slaney mels,
 * rand_trunc, repeatpad) and three 16-bit clips (shorter than, equal to and longer than
 * max_length_s).
 *
 * Tolerances (max |diff| / max |ref|, see t_max_rel_err):
 *   input features (dB)   2e-6: the DFT runs in double in both; what differs is the order of
 *                               the mel sums and libm vs numpy's log10, then one float rounding
 *   audio pooler_output   2e-5: fp32 network, summation orders differ (BLAS, attention)
 *   text pooler_output    2e-5
 *   audio / text embeds   2e-5 (unit vectors)
 *   token ids             exact (RobertaTokenizerFast's, from tokenizer.json and from the slow
 *                         tokenizer's vocab.json + merges.txt)
 *   cosines               1e-5 absolute */
#include "clap.h"
#include "m2u_error.h"
#include "test_fixture.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLAP_DIR M2U_FIXTURES "/clap"

/* The data chunk of a 16-bit mono WAV as float32 = int16 / 32768, what soundfile (and so
 * librosa.load at the file's own rate) returns. */
static float *read_pcm16(const char *path, long *n) {
    char *buf = NULL;
    size_t len = 0;
    *n = 0;
    if (m2u_read_file(path, &buf, &len) || len < 12) {
        free(buf);
        return NULL;
    }
    size_t p = 12;
    float *out = NULL;
    while (p + 8 <= len) {
        uint32_t sz = (uint32_t)(unsigned char)buf[p + 4] | (uint32_t)(unsigned char)buf[p + 5] << 8 |
                      (uint32_t)(unsigned char)buf[p + 6] << 16 | (uint32_t)(unsigned char)buf[p + 7] << 24;
        if (!memcmp(buf + p, "data", 4) && p + 8 + sz <= len) {
            *n = sz / 2;
            out = malloc((size_t)*n * sizeof *out);
            for (long i = 0; out && i < *n; i++) {
                int16_t v = (int16_t)((unsigned char)buf[p + 8 + 2 * i] | (unsigned char)buf[p + 9 + 2 * i] << 8);
                out[i] = (float)v / 32768.0f;
            }
            break;
        }
        p += 8 + sz + (sz & 1);
    }
    free(buf);
    return out;
}

static const char *const CLIPS[3] = {"short.wav", "exact.wav", "long.wav"};

static void test_audio(void) {
    m2u_clap *m = NULL;
    CHECK(m2u_clap_load(CLAP_DIR "/model", &m) == 0, "load: %s", m2u_last_error());
    if (!m) return;
    const m2u_clap_config *c = m2u_clap_config_of(m);
    CHECK(c->frames == 101 && c->n_mels == 64 && c->num_features == 32 && c->proj_dim == 16 && c->n_stages == 3,
          "config: frames %d mels %d features %d proj %d stages %d", c->frames, c->n_mels, c->num_features,
          c->proj_dim, c->n_stages);
    m2u_safetensors *ref = NULL;
    CHECK(m2u_st_open(CLAP_DIR "/expected.safetensors", &ref) == 0, "expected: %s", m2u_last_error());
    if (!ref) {
        m2u_clap_free(m);
        return;
    }
    size_t nf = 0, np = 0, ne = 0;
    float *feat_ref = t_st_f32(ref, "input_features", &nf);
    float *pool_ref = t_st_f32(ref, "audio_pooled", &np);
    float *emb_ref = t_st_f32(ref, "audio_embeds", &ne);
    size_t FS = (size_t)c->frames * c->n_mels;
    CHECK(feat_ref && nf == 3 * FS && pool_ref && np == 3 * 32 && emb_ref && ne == 3 * 16, "reference tensors");
    double worst_f = 0, worst_p = 0, worst_e = 0;
    for (int i = 0; i < 3 && feat_ref && pool_ref && emb_ref; i++) {
        char path[512];
        snprintf(path, sizeof path, CLAP_DIR "/audio/%s", CLIPS[i]);
        long n = 0;
        float *pcm = read_pcm16(path, &n);
        CHECK(pcm && n > 0, "read %s", path);
        if (!pcm) continue;
        float *feat = malloc(FS * sizeof(float)), pooled[32], emb[16], emb2[16];
        CHECK(m2u_clap_features(m, pcm, n, feat) == 0, "features %s: %s", CLIPS[i], m2u_last_error());
        double ef = t_max_rel_err(feat, feat_ref + i * FS, FS);
        CHECK(ef < 2e-6, "%s: input_features rel err %.3g", CLIPS[i], ef);
        /* the network on the reference's own features, so its error is measured alone */
        CHECK(m2u_clap_audio_forward(m, feat_ref + i * FS, pooled, emb) == 0, "forward: %s", m2u_last_error());
        double ep = t_max_rel_err(pooled, pool_ref + i * 32, 32), ee = t_max_rel_err(emb, emb_ref + i * 16, 16);
        CHECK(ep < 2e-5, "%s: pooler_output rel err %.3g", CLIPS[i], ep);
        CHECK(ee < 2e-5, "%s: audio_embeds rel err %.3g", CLIPS[i], ee);
        /* and the whole path from samples */
        CHECK(m2u_clap_audio_embed(m, pcm, n, emb2) == 0, "embed: %s", m2u_last_error());
        double ee2 = t_max_rel_err(emb2, emb_ref + i * 16, 16);
        CHECK(ee2 < 2e-5, "%s: audio_embeds from samples rel err %.3g", CLIPS[i], ee2);
        worst_f = fmax(worst_f, ef), worst_p = fmax(worst_p, ep), worst_e = fmax(worst_e, fmax(ee, ee2));
        free(feat);
        free(pcm);
    }
    printf("audio: worst rel err features %.3g, pooled %.3g, embeds %.3g\n", worst_f, worst_p, worst_e);
    free(feat_ref);
    free(pool_ref);
    free(emb_ref);
    m2u_st_close(ref);

    float x = 0.f, feat1[1];
    CHECK(m2u_clap_features(m, &x, 0, feat1) == -1 && strstr(m2u_last_error(), "no audio"), "empty clip refused");
    m2u_clap_free(m);
}

static void test_text(void) {
    m2u_clap *m = NULL;
    CHECK(m2u_clap_load(CLAP_DIR "/model", &m) == 0, "load: %s", m2u_last_error());
    if (!m) return;
    CHECK(m2u_clap_config_of(m)->has_text, "the ClapModel fixture has a text tower");
    m2u_safetensors *ref = NULL;
    CHECK(m2u_st_open(CLAP_DIR "/expected.safetensors", &ref) == 0, "expected: %s", m2u_last_error());
    cJSON *exp = t_json_load(CLAP_DIR "/expected.json");
    CHECK(exp != NULL, "expected.json");
    size_t np = 0, ne = 0, na = 0, nc = 0;
    float *pool_ref = ref ? t_st_f32(ref, "text_pooled", &np) : NULL;
    float *emb_ref = ref ? t_st_f32(ref, "text_embeds", &ne) : NULL;
    float *aud_ref = ref ? t_st_f32(ref, "audio_embeds", &na) : NULL;
    float *cos_ref = ref ? t_st_f32(ref, "cosine", &nc) : NULL;
    CHECK(pool_ref && np == 3 * 32 && emb_ref && ne == 3 * 16 && aud_ref && na == 3 * 16 && cos_ref && nc == 3,
          "reference tensors");
    double worst_p = 0, worst_e = 0, worst_c = 0;
    for (int i = 0; i < 3 && exp && pool_ref && emb_ref && aud_ref && cos_ref; i++) {
        const char *cap = cJSON_GetArrayItem(cJSON_GetObjectItem(exp, "captions"), i)->valuestring;
        const cJSON *want = cJSON_GetArrayItem(cJSON_GetObjectItem(exp, "text_ids"), i);
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK(m2u_clap_tokenize(m, cap, &ids, &n) == 0, "tokenize: %s", m2u_last_error());
        int same = ids && (int)n == cJSON_GetArraySize(want);
        for (size_t k = 0; same && k < n; k++) same = ids[k] == cJSON_GetArrayItem(want, (int)k)->valueint;
        CHECK(same, "caption %d: ids differ from RobertaTokenizerFast's", i);
        float pooled[32], emb[16], emb2[16];
        CHECK(ids && m2u_clap_text_forward(m, ids, (int)n, pooled, emb) == 0, "text forward: %s", m2u_last_error());
        double ep = t_max_rel_err(pooled, pool_ref + i * 32, 32), ee = t_max_rel_err(emb, emb_ref + i * 16, 16);
        CHECK(ep < 2e-5, "caption %d: text pooler_output rel err %.3g", i, ep);
        CHECK(ee < 2e-5, "caption %d: text_embeds rel err %.3g", i, ee);
        CHECK(m2u_clap_text_embed(m, cap, emb2) == 0, "text embed: %s", m2u_last_error());
        double ee2 = t_max_rel_err(emb2, emb_ref + i * 16, 16), dot = 0;
        CHECK(ee2 < 2e-5, "caption %d: text_embeds from the caption rel err %.3g", i, ee2);
        for (int k = 0; k < 16; k++) dot += (double)emb2[k] * aud_ref[i * 16 + k];
        double ec = fabs(dot - cos_ref[i]);
        CHECK(ec < 1e-5, "caption %d: cosine %.9g vs %.9g", i, dot, (double)cos_ref[i]);
        worst_p = fmax(worst_p, ep), worst_e = fmax(worst_e, fmax(ee, ee2)), worst_c = fmax(worst_c, ec);
        free(ids);
    }
    printf("text: worst rel err pooled %.3g, embeds %.3g; |cosine diff| %.3g\n", worst_p, worst_e, worst_c);
    /* the three captions packed into one text-tower pass (clap_score's path), in two orders and
     * with the long one among them: each equal to ClapModel's embeds */
    if (exp && emb_ref) {
        const cJSON *caps = cJSON_GetObjectItem(exp, "captions");
        char lc[4096] = "";
        for (int i = 0; i < 200; i++) strcat(lc, "piano ");
        const char *fwd[4] = {cJSON_GetArrayItem(caps, 0)->valuestring, cJSON_GetArrayItem(caps, 1)->valuestring,
                              lc, cJSON_GetArrayItem(caps, 2)->valuestring};
        const char *rev[3] = {fwd[3], fwd[1], fwd[0]};
        float many[4 * 16], lone[16];
        CHECK(m2u_clap_text_embed_many(m, fwd, 4, many) == 0, "packed captions: %s", m2u_last_error());
        double e0 = t_max_rel_err(many, emb_ref, 16), e1 = t_max_rel_err(many + 16, emb_ref + 16, 16),
               e3 = t_max_rel_err(many + 48, emb_ref + 32, 16);
        CHECK(m2u_clap_text_embed(m, lc, lone) == 0, "long caption: %s", m2u_last_error());
        double e2 = t_max_rel_err(many + 32, lone, 16);
        CHECK(e0 < 2e-5 && e1 < 2e-5 && e3 < 2e-5 && e2 < 1e-5,
              "packed captions: rel err %.3g %.3g %.3g (reference), long one %.3g (alone)", e0, e1, e3, e2);
        CHECK(m2u_clap_text_embed_many(m, rev, 3, many) == 0, "packed captions: %s", m2u_last_error());
        double r0 = t_max_rel_err(many, emb_ref + 32, 16), r2 = t_max_rel_err(many + 32, emb_ref, 16);
        CHECK(r0 < 2e-5 && r2 < 2e-5, "packed captions reversed: rel err %.3g %.3g", r0, r2);
        CHECK(m2u_clap_text_embed_many(m, fwd, 0, many) == 0, "no captions is not an error");
        printf("text packed: rel err %.3g %.3g %.3g; the long caption %.3g from alone\n", e0, e1, e3, e2);
    }
    /* a caption longer than the positions is truncated (ClapModel would fail) */
    char longcap[4096] = "";
    for (int i = 0; i < 200; i++) strcat(longcap, "piano ");
    int32_t *ids = NULL;
    size_t n = 0;
    float emb[16];
    CHECK(m2u_clap_tokenize(m, longcap, &ids, &n) == 0 && n == 64 && ids[0] == 0 && ids[n - 1] == 2,
          "long caption: %zu ids", n);
    CHECK(m2u_clap_text_embed(m, longcap, emb) == 0, "long caption embeds: %s", m2u_last_error());
    free(ids);
    free(pool_ref);
    free(emb_ref);
    free(aud_ref);
    free(cos_ref);
    cJSON_Delete(exp);
    m2u_st_close(ref);
    m2u_clap_free(m);
}

/* ---- refusals: a copy of the model directory with one thing changed ---- */

static char tmp_dir[64];
static const char *const TMP_FILES[] = {"config.json", "preprocessor_config.json", "model.safetensors",
                                        "vocab.json", "merges.txt", "tokenizer_config.json"};
#define N_TMP_FILES (sizeof TMP_FILES / sizeof TMP_FILES[0])

static void copy_model(void) {
    for (size_t i = 0; i < N_TMP_FILES; i++) {
        char src[512], *data = NULL, *dst = m2u_path_join(tmp_dir, TMP_FILES[i]);
        size_t len = 0;
        snprintf(src, sizeof src, CLAP_DIR "/model/%s", TMP_FILES[i]);
        CHECK(m2u_read_file(src, &data, &len) == 0 && m2u_write_file_atomic(dst, data, len) == 0, "copy %s", src);
        free(data);
        free(dst);
    }
}

/* In `file` of the copy, key `key` of the object `sub` (NULL: the top level) := JSON `value` (NULL: deleted). */
static void set_key(const char *file, const char *sub, const char *key, const char *value) {
    char *p = m2u_path_join(tmp_dir, file), *text = NULL;
    CHECK(m2u_read_file(p, &text, NULL) == 0, "read %s", p);
    cJSON *root = cJSON_Parse(text), *o = sub ? cJSON_GetObjectItemCaseSensitive(root, sub) : root;
    if (!o) cJSON_AddItemToObject(root, sub, o = cJSON_CreateObject());
    cJSON_DeleteItemFromObjectCaseSensitive(o, key);
    if (value) cJSON_AddItemToObject(o, key, cJSON_Parse(value));
    char *out = cJSON_Print(root);
    CHECK(m2u_write_file_atomic(p, out, strlen(out)) == 0, "write %s", p);
    free(out);
    cJSON_Delete(root);
    free(text);
    free(p);
}

/* Loading the copy fails with a message naming `file` and containing `what`. */
static void expect_refused(const char *file, const char *what, const char *label) {
    m2u_clap *m = NULL;
    int rc = m2u_clap_load(tmp_dir, &m);
    m2u_clap_free(m);
    char *p = m2u_path_join(tmp_dir, file);
    const char *msg = m2u_last_error();
    CHECK(rc != 0 && strstr(msg, p) && strstr(msg, what), "%s: rc %d, message \"%s\" (want %s and \"%s\")", label, rc,
          msg, p, what);
    free(p);
    copy_model();
}

/* ClapFeatureExtractor's padding "repeat" (tiled and cut) and "pad" (zeros) on the short clip */
static void test_padding_modes(void) {
    m2u_safetensors *ref = NULL;
    CHECK(m2u_st_open(CLAP_DIR "/expected.safetensors", &ref) == 0, "expected: %s", m2u_last_error());
    long n = 0;
    float *pcm = read_pcm16(CLAP_DIR "/audio/short.wav", &n);
    static const char *const modes[2] = {"repeat", "pad"};
    for (int k = 0; k < 2 && ref && pcm; k++) {
        char name[64], val[16];
        snprintf(name, sizeof name, "input_features_%s_short", modes[k]);
        snprintf(val, sizeof val, "\"%s\"", modes[k]);
        set_key("preprocessor_config.json", NULL, "padding", val);
        m2u_clap *m = NULL;
        size_t nf = 0;
        float *want = t_st_f32(ref, name, &nf), feat[101 * 64];
        CHECK(m2u_clap_load(tmp_dir, &m) == 0, "padding %s: %s", modes[k], m2u_last_error());
        CHECK(want && nf == 101 * 64, "reference %s", name);
        if (m && want && nf == 101 * 64) {
            CHECK(m2u_clap_features(m, pcm, n, feat) == 0, "features: %s", m2u_last_error());
            double e = t_max_rel_err(feat, want, nf);
            CHECK(e < 2e-6, "padding %s: input_features rel err %.3g", modes[k], e);
        }
        m2u_clap_free(m);
        free(want);
    }
    copy_model();
    free(pcm);
    m2u_st_close(ref);
}

/* The copy has no tokenizer.json: RobertaTokenizer's vocab.json + merges.txt give the same ids. */
static void test_slow_tokenizer(void) {
    m2u_clap *fast = NULL, *slow = NULL;
    CHECK(m2u_clap_load(CLAP_DIR "/model", &fast) == 0 && m2u_clap_load(tmp_dir, &slow) == 0, "load: %s",
          m2u_last_error());
    cJSON *exp = t_json_load(CLAP_DIR "/expected.json");
    for (int i = 0; fast && slow && exp && i < 4; i++) {
        char longcap[2048] = "";
        for (int k = 0; k < 100; k++) strcat(longcap, "soft strings ");
        const char *cap = i < 3 ? cJSON_GetArrayItem(cJSON_GetObjectItem(exp, "captions"), i)->valuestring : longcap;
        int32_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        CHECK(m2u_clap_tokenize(fast, cap, &a, &na) == 0 && m2u_clap_tokenize(slow, cap, &b, &nb) == 0, "tokenize: %s",
              m2u_last_error());
        CHECK(na == nb && na > 0 && !memcmp(a, b, na * sizeof *a), "caption %d: tokenizer.json and vocab.json + "
              "merges.txt give different ids", i);
        free(a);
        free(b);
    }
    cJSON_Delete(exp);
    m2u_clap_free(fast);
    m2u_clap_free(slow);
}

static void test_refusals(void) {
    m2u_clap *m = NULL;
    CHECK(m2u_clap_load(tmp_dir, &m) == 0, "unchanged copy: %s", m2u_last_error());
    m2u_clap_free(m);
    set_key("config.json", NULL, "model_type", "\"clip\"");
    expect_refused("config.json", "'model_type'", "not a CLAP config");
    set_key("config.json", "audio_config", "enable_fusion", "true");
    expect_refused("config.json", "enable_fusion", "fused model");
    set_key("preprocessor_config.json", NULL, "truncation", "\"fusion\"");
    expect_refused("preprocessor_config.json", "'truncation'", "fusion truncation");
    set_key("preprocessor_config.json", NULL, "padding", "\"wrap\"");
    expect_refused("preprocessor_config.json", "'padding'", "unknown padding");
    set_key("preprocessor_config.json", NULL, "fft_window_size", "1000");
    expect_refused("preprocessor_config.json", "power of two", "FFT size");
    set_key("preprocessor_config.json", NULL, "feature_size", "32");
    expect_refused("config.json", "square image", "mel bins differ");
    set_key("preprocessor_config.json", NULL, "max_length_s", "3");
    expect_refused("config.json", "frames do not fit", "too many frames for the image");
    set_key("config.json", "audio_config", "window_size", "16");
    expect_refused("config.json", "window_size", "stage smaller than a window");
    /* a spec_size whose square overflowed an int in the frames check (found by reading) */
    set_key("config.json", "audio_config", "spec_size", "2000000000");
    expect_refused("config.json", "past this loader's limits", "huge spec_size");
    set_key("config.json", "audio_config", "num_attention_heads", "[3, 2, 4]");
    expect_refused("config.json", "heads", "heads do not divide channels");
    set_key("config.json", "audio_config", "patch_stride", "[2, 2]");
    expect_refused("config.json", "patch_stride", "overlapping patches");
    set_key("config.json", "audio_config", "hidden_size", "64");
    expect_refused("config.json", "hidden_size", "hidden_size is not the last stage's width");
    set_key("config.json", NULL, "projection_dim", "8");
    expect_refused("model.safetensors", "audio_projection.linear1.weight", "mis-shaped projection");
    set_key("config.json", "text_config", "intermediate_size", "48");
    expect_refused("model.safetensors", "text_model.encoder.layer.0.intermediate.dense.weight", "mis-shaped text FFN");
    set_key("config.json", "text_config", "position_embedding_type", "\"relative_key\"");
    expect_refused("config.json", "text_config", "relative positions in the text tower");
    set_key("config.json", "audio_config", "mlp_ratio", "2.0");
    expect_refused("model.safetensors", "intermediate.dense.weight", "mis-shaped MLP");
    static const char *const needed[] = {"preprocessor_config.json", "vocab.json", "merges.txt"};
    for (int i = 0; i < 3; i++) {
        char *p = m2u_path_join(tmp_dir, needed[i]);
        unlink(p);
        free(p);
        expect_refused(needed[i], "", "a missing file");
    }
    for (size_t i = 0; i < N_TMP_FILES; i++) {
        char *f = m2u_path_join(tmp_dir, TMP_FILES[i]);
        unlink(f);
        free(f);
    }
    rmdir(tmp_dir);
}

int main(void) {
    test_audio();
    test_text();
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/m2u_test_clap.XXXXXX");
    CHECK(mkdtemp(tmp_dir) != NULL, "mkdtemp");
    copy_model();
    test_padding_modes();
    test_slow_tokenizer();
    test_refusals();
    return t_finish("test_clap");
}
