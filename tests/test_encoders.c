/* The frozen encoders (ViT, ViViT, MERT) against transformers 4.46.3: the
 * fixtures of tests/make_encoder_fixtures.py hold tiny random checkpoints in
 * the real layouts, their inputs and every hidden state transformers computed.
 *
 * Checked: preprocessing (pixel_values / input_values), every hidden state and
 * last_hidden_state within 1e-5 relative (t_max_rel_err), the feature API
 * (token shapes; MERT per-layer time means over 60 s windows, with a short
 * trailing window and one too short for a frame), and that malformed configs,
 * missing / mis-shaped tensors and unsupported options are refused with a
 * message naming the file. */
#include "encoder_layer.h"
#include "fileio.h"
#include "m2u_error.h"
#include "mert_encoder.h"
#include "test_fixture.h"
#include "vit_encoder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENC_DIR M2U_FIXTURES "/encoders"
#define TOL 1e-5

static double worst_hidden, worst_pre, worst_means;

static m2u_safetensors *open_ref(const char *name) {
    char path[512];
    snprintf(path, sizeof path, ENC_DIR "/ref_%s.safetensors", name);
    m2u_safetensors *st = NULL;
    CHECK(m2u_st_open(path, &st) == 0, "%s", m2u_last_error());
    return st;
}

static void note(double *worst, double e) {
    if (e > *worst) *worst = e;
}

/* Every [n_tokens, hidden] slice of hs against the reference stack "hidden_states". */
static void compare_stack(const char *label, const float *hs, const float *ref, int n_states, size_t per_state) {
    for (int l = 0; l < n_states; l++) {
        double e = t_max_rel_err(hs + (size_t)l * per_state, ref + (size_t)l * per_state, per_state);
        note(&worst_hidden, e);
        CHECK(e < TOL, "%s: hidden state %d rel err %.3g", label, l, e);
    }
}

static void test_vision(const char *name, int video) {
    char dir[512];
    snprintf(dir, sizeof dir, ENC_DIR "/%s", name);
    m2u_vit *m = NULL;
    CHECK(m2u_vit_load(dir, &m) == 0, "%s: %s", name, m2u_last_error());
    m2u_safetensors *ref = open_ref(name);
    if (!m || !ref) {
        m2u_vit_free(m);
        m2u_st_close(ref);
        return;
    }
    const m2u_vit_config *c = m2u_vit_config_of(m);
    int N = c->n_tokens, H = c->dims.hidden, L = c->layers;
    CHECK(c->video == video, "%s: model kind", name);
    CHECK(N == t_st_meta_int(ref, "n_tokens") && H == t_st_meta_int(ref, "hidden") &&
              L == t_st_meta_int(ref, "layers"),
          "%s: config gives %d tokens x %d, %d layers", name, N, H, L);
    CHECK(c->frames == t_st_meta_int(ref, "frames") && c->image_h == t_st_meta_int(ref, "height") &&
              c->image_w == t_st_meta_int(ref, "width"),
          "%s: input size %dx%dx%d", name, c->frames, c->image_h, c->image_w);

    const m2u_st_tensor *img = m2u_st_find(ref, "image");
    size_t n_px = 0, n_hs = 0, n_last = 0;
    float *px_ref = t_st_f32(ref, "pixel_values", &n_px);
    float *hs_ref = t_st_f32(ref, "hidden_states", &n_hs);
    float *last_ref = t_st_f32(ref, "last_hidden_state", &n_last);
    size_t want_px = (size_t)c->frames * 3 * c->image_h * c->image_w;
    CHECK(img && img->dtype == M2U_U8 && (size_t)img->numel == want_px, "%s: image tensor", name);
    CHECK(px_ref && n_px == want_px, "%s: pixel_values", name);
    CHECK(hs_ref && n_hs == (size_t)(L + 1) * N * H && last_ref && n_last == (size_t)N * H, "%s: reference sizes",
          name);
    if (img && img->dtype == M2U_U8 && (size_t)img->numel == want_px && px_ref && n_px == want_px && hs_ref &&
        n_hs == (size_t)(L + 1) * N * H && last_ref && n_last == (size_t)N * H) {
        /* preprocessing: the processor's arithmetic is reproduced, so this is (nearly) exact */
        float *px = malloc(want_px * sizeof(float));
        CHECK(m2u_vit_preprocess(m, img->data, px) == 0, "%s", m2u_last_error());
        double e = t_max_rel_err(px, px_ref, want_px);
        note(&worst_pre, e);
        CHECK(e < 1e-7, "%s: pixel_values rel err %.3g", name, e);

        /* forward from the reference pixel_values: all hidden states and the output */
        float *hs = malloc(n_hs * sizeof(float)), *last = malloc(n_last * sizeof(float));
        CHECK(m2u_vit_forward(m, px_ref, hs, last) == 0, "%s", m2u_last_error());
        compare_stack(name, hs, hs_ref, L + 1, (size_t)N * H);
        e = t_max_rel_err(last, last_ref, n_last);
        note(&worst_hidden, e);
        CHECK(e < TOL, "%s: last_hidden_state rel err %.3g", name, e);

        /* feature API: uint8 frames -> [n_tokens, hidden] */
        float *tok = malloc(n_last * sizeof(float));
        CHECK(m2u_vit_features(m, img->data, tok) == 0, "%s", m2u_last_error());
        e = t_max_rel_err(tok, last_ref, n_last);
        CHECK(e < TOL, "%s: features rel err %.3g", name, e);
        printf("  %s: %d tokens x %d, %d layers: pixel err %.2g, last err %.2g\n", name, N, H, L,
               t_max_rel_err(px, px_ref, want_px), e);
        free(px);
        free(hs);
        free(last);
        free(tok);
    }
    free(px_ref);
    free(hs_ref);
    free(last_ref);
    m2u_st_close(ref);
    m2u_vit_free(m);
}

static void test_mert(const char *name) {
    char dir[512];
    snprintf(dir, sizeof dir, ENC_DIR "/%s", name);
    m2u_mert *m = NULL;
    CHECK(m2u_mert_load(dir, &m) == 0, "%s: %s", name, m2u_last_error());
    m2u_safetensors *ref = open_ref(name);
    if (!m || !ref) {
        m2u_mert_free(m);
        m2u_st_close(ref);
        return;
    }
    const m2u_mert_config *c = m2u_mert_config_of(m);
    int H = c->dims.hidden, L = c->layers;
    CHECK(H == t_st_meta_int(ref, "hidden") && L == t_st_meta_int(ref, "layers"), "%s: config %d x %d", name, L, H);
    CHECK(c->sampling_rate == t_st_meta_int(ref, "sampling_rate"), "%s: sampling rate %d", name, c->sampling_rate);

    size_t n = 0, n_iv = 0, n_hs = 0;
    float *clip = t_st_f32(ref, "clip", &n), *iv_ref = t_st_f32(ref, "input_values", &n_iv);
    float *hs_ref = t_st_f32(ref, "hidden_states", &n_hs);
    int T = m2u_mert_n_frames(m, (long)n);
    CHECK(T == t_st_meta_int(ref, "frames"), "%s: %zu samples give %d frames", name, n, T);
    if (clip && iv_ref && n_iv == n && hs_ref && n_hs == (size_t)(L + 1) * T * H) {
        float *iv = malloc(n * sizeof(float));
        m2u_mert_preprocess(m, clip, (long)n, iv);
        double e = t_max_rel_err(iv, iv_ref, n);
        note(&worst_pre, e);
        CHECK(e < 1e-6, "%s: input_values rel err %.3g", name, e);

        float *hs = malloc(n_hs * sizeof(float)), *means = malloc((size_t)(L + 1) * H * sizeof(float));
        CHECK(m2u_mert_forward(m, iv_ref, (long)n, hs, means) == 0, "%s", m2u_last_error());
        compare_stack(name, hs, hs_ref, L + 1, (size_t)T * H);
        /* forward's own time means agree with the means of the stored states */
        for (int l = 0; l <= L; l++)
            for (int h = 0; h < H; h++) {
                double s = 0;
                for (int t = 0; t < T; t++) s += hs_ref[((size_t)l * T + t) * H + h];
                hs[(size_t)l * H + h] = (float)(s / T);
            }
        e = t_max_rel_err(means, hs, (size_t)(L + 1) * H);
        CHECK(e < TOL, "%s: forward layer means rel err %.3g", name, e);
        printf("  %s: %d hidden states x %d frames x %d: input err %.2g\n", name, L + 1, T, H,
               t_max_rel_err(iv, iv_ref, n));
        free(iv);
        free(hs);
        free(means);
    } else {
        CHECK(0, "%s: reference tensors missing or of another size", name);
    }

    /* feature API: 60 s windows (6000 samples at the fixtures' 100 Hz) averaged; each clip
     * again through one workspace kept across the clips (they differ in length, so it grows
     * and is then reused for a shorter one): the same bits */
    static const char *const clips[] = {"clip", "clip_long", "clip_tail"};
    m2u_mert_ws ws = {0};
    for (int i = 0; i < 3; i++) {
        char mname[64];
        snprintf(mname, sizeof mname, "%s_means", clips[i]);
        size_t nc = 0, nm = 0;
        float *wav = t_st_f32(ref, clips[i], &nc), *want = t_st_f32(ref, mname, &nm);
        CHECK(wav && want && nm == (size_t)(L + 1) * H, "%s: %s / %s", name, clips[i], mname);
        if (wav && want && nm == (size_t)(L + 1) * H) {
            float *got = malloc(nm * sizeof(float));
            CHECK(m2u_mert_layer_means(m, NULL, wav, (long)nc, got) == 0, "%s", m2u_last_error());
            double e = t_max_rel_err(got, want, nm);
            note(&worst_means, e);
            CHECK(e < TOL, "%s: %s (%zu samples) layer means rel err %.3g", name, clips[i], nc, e);
            float *got_ws = malloc(nm * sizeof(float));
            CHECK(m2u_mert_layer_means(m, &ws, wav, (long)nc, got_ws) == 0, "%s", m2u_last_error());
            CHECK(!memcmp(got, got_ws, nm * sizeof(float)), "%s: %s through a kept workspace: other bits", name,
                  clips[i]);
            free(got);
            free(got_ws);
        }
        free(wav);
        free(want);
    }
    m2u_mert_ws_free(&ws);
    /* too short for one frame */
    float tiny[4] = {0.1f, -0.2f, 0.3f, 0.0f}, out[1];
    CHECK(m2u_mert_forward(m, tiny, 4, NULL, NULL) != 0 && strstr(m2u_last_error(), "too few"), "short input: %s",
          m2u_last_error());
    CHECK(m2u_mert_layer_means(m, NULL, tiny, 0, out) != 0, "empty clip accepted");
    free(clip);
    free(iv_ref);
    free(hs_ref);
    m2u_st_close(ref);
    m2u_mert_free(m);
}

/* ---- refusals ------------------------------------------------------------------------------- */

static char tmp_dir[256];
static const char *const tmp_files[] = {"config.json", "preprocessor_config.json", "model.safetensors",
                                        "pytorch_model.bin"};

static void clear_tmp(void) {
    for (size_t i = 0; i < sizeof tmp_files / sizeof tmp_files[0]; i++) {
        char *p = m2u_path_join(tmp_dir, tmp_files[i]);
        unlink(p);
        free(p);
    }
}

/* tmp_dir := a copy of fixture `name` (the files it has). */
static void copy_fixture(const char *name) {
    clear_tmp();
    for (size_t i = 0; i < sizeof tmp_files / sizeof tmp_files[0]; i++) {
        char src[512];
        snprintf(src, sizeof src, ENC_DIR "/%s/%s", name, tmp_files[i]);
        if (!m2u_file_exists(src)) continue;
        char *data = NULL, *dst = m2u_path_join(tmp_dir, tmp_files[i]);
        size_t len = 0;
        CHECK(m2u_read_file(src, &data, &len) == 0 && m2u_write_file_atomic(dst, data, len) == 0, "copy %s", src);
        free(data);
        free(dst);
    }
}

static void write_tmp(const char *file, const char *text) {
    char *p = m2u_path_join(tmp_dir, file);
    CHECK(m2u_write_file_atomic(p, text, strlen(text)) == 0, "write %s", p);
    free(p);
}

/* config.json of the copy with `key` replaced by the JSON value `value` (NULL: deleted). */
static void set_config_key(const char *key, const char *value) {
    char *p = m2u_path_join(tmp_dir, "config.json"), *text = NULL;
    CHECK(m2u_read_file(p, &text, NULL) == 0, "read %s", p);
    cJSON *root = cJSON_Parse(text);
    cJSON_DeleteItemFromObjectCaseSensitive(root, key);
    if (value) cJSON_AddItemToObject(root, key, cJSON_Parse(value));
    char *out = cJSON_Print(root);
    write_tmp("config.json", out);
    free(out);
    cJSON_Delete(root);
    free(text);
    free(p);
}

/* The error must name `file` (relative to tmp_dir) and contain `what`. */
static void expect_refused(int rc, const char *file, const char *what, const char *label) {
    char *p = m2u_path_join(tmp_dir, file);
    const char *msg = m2u_last_error();
    CHECK(rc != 0 && strstr(msg, p) && strstr(msg, what), "%s: rc %d, message \"%s\" (want %s and \"%s\")", label, rc,
          msg, p, what);
    free(p);
}

static int load_vit_tmp(void) {
    m2u_vit *m = NULL;
    int rc = m2u_vit_load(tmp_dir, &m);
    m2u_vit_free(m);
    return rc;
}

static int load_mert_tmp(void) {
    m2u_mert *m = NULL;
    int rc = m2u_mert_load(tmp_dir, &m);
    m2u_mert_free(m);
    return rc;
}

/* model.safetensors of the copy without tensor `drop`. */
static void drop_tensor(const char *name, const char *drop) {
    char src[512];
    snprintf(src, sizeof src, ENC_DIR "/%s/model.safetensors", name);
    m2u_safetensors *st = NULL;
    CHECK(m2u_st_open(src, &st) == 0, "%s", m2u_last_error());
    if (!st) return;
    int n = m2u_st_count(st), k = 0;
    m2u_st_entry *e = calloc((size_t)n, sizeof *e);
    for (int i = 0; i < n; i++) {
        const m2u_st_tensor *t = m2u_st_at(st, i);
        if (strcmp(t->name, drop) == 0) continue;
        e[k].name = t->name;
        e[k].dtype = t->dtype;
        e[k].ndim = t->ndim;
        memcpy(e[k].shape, t->shape, sizeof t->shape);
        e[k].data = t->data;
        k++;
    }
    CHECK(k == n - 1, "%s has no tensor %s", src, drop);
    char *dst = m2u_path_join(tmp_dir, "model.safetensors");
    CHECK(m2u_st_write(dst, e, k, NULL, NULL, 0) == 0, "%s", m2u_last_error());
    free(dst);
    free(e);
    m2u_st_close(st);
}

static void test_refusals(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/m2u_test_encoders.XXXXXX");
    CHECK(mkdtemp(tmp_dir) != NULL, "mkdtemp");

    /* ViT / ViViT configs */
    copy_fixture("vit_a");
    CHECK(load_vit_tmp() == 0, "unchanged copy: %s", m2u_last_error());
    write_tmp("config.json", "{\"model_type\": \"vit\", ");
    expect_refused(load_vit_tmp(), "config.json", "not valid JSON", "truncated config");
    copy_fixture("vit_a");
    set_config_key("hidden_size", "\"32\"");
    expect_refused(load_vit_tmp(), "config.json", "'hidden_size' must be an integer", "string hidden_size");
    set_config_key("hidden_size", "32");
    set_config_key("model_type", "\"bert\"");
    expect_refused(load_vit_tmp(), "config.json", "'model_type'", "wrong model_type");
    set_config_key("model_type", NULL);
    expect_refused(load_vit_tmp(), "config.json", "missing key 'model_type'", "no model_type");
    set_config_key("model_type", "\"vit\"");
    set_config_key("hidden_act", "\"swish\"");
    expect_refused(load_vit_tmp(), "config.json", "'hidden_act'", "unsupported activation");
    set_config_key("hidden_act", "\"gelu\"");
    set_config_key("patch_size", "[8, 8, 8]");
    expect_refused(load_vit_tmp(), "config.json", "'patch_size'", "3-D ViT patch");
    set_config_key("patch_size", "8");
    set_config_key("num_attention_heads", "5");
    expect_refused(load_vit_tmp(), "config.json", "'num_attention_heads'", "heads do not divide hidden");
    set_config_key("num_attention_heads", "4");
    write_tmp("preprocessor_config.json", "{\"image_mean\": [0.5, 0.5]}");
    expect_refused(load_vit_tmp(), "preprocessor_config.json", "'image_mean'", "short image_mean");
    clear_tmp();
    copy_fixture("vit_a");
    /* weights that do not match the config: the file and the tensor are named */
    set_config_key("intermediate_size", "40");
    expect_refused(load_vit_tmp(), "model.safetensors", "vit.encoder.layer.0.intermediate.dense.weight",
                   "mis-shaped tensor");
    copy_fixture("vit_b");
    drop_tensor("vit_b", "encoder.layer.2.output.dense.bias");
    expect_refused(load_vit_tmp(), "model.safetensors", "encoder.layer.2.output.dense.bias", "missing tensor");
    copy_fixture("vivit_a");
    set_config_key("tubelet_size", "[2, 8]");
    expect_refused(load_vit_tmp(), "config.json", "'tubelet_size'", "2-D tubelet");
    /* sizes whose product overflowed an int (found by fuzz_model_config) or would size the
       input past memory are refused, naming the limits */
    set_config_key("tubelet_size", "[2, 16, 16]");
    set_config_key("image_size", "1250724627");
    expect_refused(load_vit_tmp(), "config.json", "over this loader's limits", "huge ViViT frames");
    set_config_key("image_size", "224");
    set_config_key("num_frames", "100000");
    expect_refused(load_vit_tmp(), "config.json", "over this loader's limits", "100000 frames");
    copy_fixture("vit_a");
    set_config_key("image_size", "1250724627");
    set_config_key("patch_size", "8");
    expect_refused(load_vit_tmp(), "config.json", "tokens", "huge ViT image");

    /* MERT */
    copy_fixture("mert_a");
    CHECK(load_mert_tmp() == 0, "unchanged copy: %s", m2u_last_error());
    set_config_key("deepnorm", "true");
    expect_refused(load_mert_tmp(), "config.json", "'deepnorm'", "deepnorm");
    set_config_key("deepnorm", "false");
    set_config_key("feature_extractor_cqt", "true");
    expect_refused(load_mert_tmp(), "config.json", "'feature_extractor_cqt'", "cqt");
    set_config_key("feature_extractor_cqt", "false");
    set_config_key("conv_kernel", "[10, 3]");
    expect_refused(load_mert_tmp(), "config.json", "'conv_kernel'", "conv lists of different lengths");
    set_config_key("conv_kernel", "[10, 3, 3]");
    set_config_key("feat_extract_norm", "\"batch\"");
    expect_refused(load_mert_tmp(), "config.json", "'feat_extract_norm'", "unknown feature norm");
    set_config_key("feat_extract_norm", "\"group\"");
    set_config_key("layer_norm_eps", "\"1e-5\"");
    expect_refused(load_mert_tmp(), "config.json", "'layer_norm_eps'", "string eps");
    set_config_key("layer_norm_eps", "1e-5");
    write_tmp("preprocessor_config.json", "{\"sampling_rate\": 24000.5}");
    expect_refused(load_mert_tmp(), "preprocessor_config.json", "'sampling_rate'", "fractional rate");
    copy_fixture("mert_a");
    drop_tensor("mert_a", "encoder.pos_conv_embed.conv.weight_v");
    expect_refused(load_mert_tmp(), "model.safetensors", "positional conv", "no positional conv weight");
    copy_fixture("mert_a");
    drop_tensor("mert_a", "encoder.layers.1.final_layer_norm.weight");
    expect_refused(load_mert_tmp(), "model.safetensors", "encoder.layers.1.final_layer_norm.weight",
                   "missing layer norm");

    /* no preprocessor_config.json: the rate comes from config.json's sample_rate and
     * do_normalize is the extractor's default (true), which is what mert_a's file says */
    copy_fixture("mert_a");
    {
        char *p = m2u_path_join(tmp_dir, "preprocessor_config.json");
        unlink(p);
        free(p);
    }
    m2u_mert *m = NULL;
    CHECK(m2u_mert_load(tmp_dir, &m) == 0, "%s", m2u_last_error());
    if (m) {
        CHECK(m2u_mert_config_of(m)->sampling_rate == 100 && m2u_mert_config_of(m)->do_normalize, "defaults");
        m2u_safetensors *ref = open_ref("mert_a");
        size_t nc = 0, nm = 0;
        float *wav = ref ? t_st_f32(ref, "clip_long", &nc) : NULL, *want = ref ? t_st_f32(ref, "clip_long_means", &nm) : NULL;
        if (wav && want) {
            float *got = malloc(nm * sizeof(float));
            CHECK(m2u_mert_layer_means(m, NULL, wav, (long)nc, got) == 0, "%s", m2u_last_error());
            CHECK(t_max_rel_err(got, want, nm) < TOL, "means without preprocessor_config.json");
            free(got);
        }
        free(wav);
        free(want);
        m2u_st_close(ref);
        m2u_mert_free(m);
    }
    set_config_key("sample_rate", NULL);
    expect_refused(load_mert_tmp(), "preprocessor_config.json", "sample_rate", "no sampling rate anywhere");

    clear_tmp();
    rmdir(tmp_dir);
}

/* m2u_enc_layer_fwd_rows (PaSST's last layer: only the class rows) against the whole layer, with
 * random weights, pre- and post-norm: the rows it writes agree to float rounding, the others
 * are left untouched. */
static float *rnd_floats(size_t n, unsigned *seed, float scale) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        *seed = *seed * 1103515245u + 12345u;
        p[i] = scale * ((float)((*seed >> 8) & 0xffff) / 65536.0f - 0.5f);
    }
    return p;
}
static void test_layer_rows(void) {
    enum { H = 32, HEADS = 4, I = 48, T = 23, R = 3 };
    unsigned seed = 7;
    for (int prenorm = 0; prenorm < 2; prenorm++) {
        m2u_enc_dims d = {H, HEADS, I, 1e-5f, M2U_ACT_GELU, prenorm};
        m2u_enc_layer L = {0};
        L.qkv_w = rnd_floats(3 * H * H, &seed, 0.4f), L.qkv_b = rnd_floats(3 * H, &seed, 0.2f);
        L.o_w = rnd_floats(H * H, &seed, 0.4f), L.o_b = rnd_floats(H, &seed, 0.2f);
        L.ln1_w = rnd_floats(H, &seed, 2.0f), L.ln1_b = rnd_floats(H, &seed, 0.2f);
        L.ln2_w = rnd_floats(H, &seed, 2.0f), L.ln2_b = rnd_floats(H, &seed, 0.2f);
        L.fc1_w = rnd_floats(I * H, &seed, 0.4f), L.fc1_b = rnd_floats(I, &seed, 0.2f);
        L.fc2_w = rnd_floats(H * I, &seed, 0.4f), L.fc2_b = rnd_floats(H, &seed, 0.2f);
        float *x = rnd_floats(T * H, &seed, 2.0f), *full = malloc(T * H * sizeof *full),
              *rows = malloc(T * H * sizeof *rows), *scratch = malloc(m2u_enc_layer_scratch(&d, T) * sizeof(float));
        memcpy(full, x, T * H * sizeof *x);
        memcpy(rows, x, T * H * sizeof *x);
        CHECK(m2u_enc_layer_fwd(&d, &L, full, T, scratch) == 0, "%s", m2u_last_error());
        CHECK(m2u_enc_layer_fwd_rows(&d, &L, rows, T, R, scratch) == 0, "%s", m2u_last_error());
        double e = t_max_rel_err(rows, full, R * H);
        CHECK(e < 1e-5, "layer rows (prenorm %d): first %d rows differ from the whole layer by %.3g", prenorm, R, e);
        CHECK(memcmp(rows + R * H, x + R * H, (T - R) * H * sizeof *x) == 0,
              "layer rows (prenorm %d): rows past %d were written", prenorm, R);
        printf("layer rows (prenorm %d): rel err %.2e against the whole layer\n", prenorm, e);
        m2u_enc_layer_free(&L);
        free(x), free(full), free(rows), free(scratch);
    }
}

int main(void) {
    test_layer_rows();
    test_vision("vit_a", 0);
    test_vision("vit_b", 0);
    test_vision("vivit_a", 1);
    test_vision("vivit_b", 1);
    test_mert("mert_a");
    test_mert("mert_b");
    test_refusals();
    printf("worst rel err: hidden states %.3g, layer means %.3g, preprocessing %.3g\n", worst_hidden, worst_means,
           worst_pre);
    return t_finish("test_encoders");
}
