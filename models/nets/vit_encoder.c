/* ViT / ViViT encoders: see vit_encoder.h.  Checked against transformers 4.46.3
 * (ViTModel, VivitModel, ViTImageProcessor, VivitImageProcessor) by
 * tests/test_encoders.c on the fixtures of tests/make_encoder_fixtures.py. */
#include "vit_encoder.h"

#include "fileio.h"
#include "m2u_error.h"
#include "image.h"
#include "ops_extra.h"
#include "tensor.h"

#include <stdlib.h>
#include <string.h>

struct m2u_vit {
    m2u_vit_config cfg;
    float *cls, *pos;          /* [H], [n_tokens, H] */
    float *patch_w, *patch_b;  /* [H, C*pt*ph*pw] (torch's Conv2d/Conv3d layout flattened), [H] */
    m2u_enc_layer *layer;      /* [layers] */
    float *final_w, *final_b;  /* the last LayerNorm */
};

/* ViTLayer / VivitLayer names (identical in both models). */
static const m2u_enc_names VIT_NAMES = {
    .q = "encoder.layer.%d.attention.attention.query",
    .k = "encoder.layer.%d.attention.attention.key",
    .v = "encoder.layer.%d.attention.attention.value",
    .o = "encoder.layer.%d.attention.output.dense",
    .ln1 = "encoder.layer.%d.layernorm_before",
    .ln2 = "encoder.layer.%d.layernorm_after",
    .fc1 = "encoder.layer.%d.intermediate.dense",
    .fc2 = "encoder.layer.%d.output.dense",
};

static int parse_config(const cJSON *root, const char *origin, m2u_vit_config *c) {
    const char *mt, *act;
    if (m2u_json_str(root, origin, "model_type", NULL, &mt) != 0) return -1;
    if (!mt) return m2u_fail("%s: missing key 'model_type' (need \"vit\" or \"vivit\")", origin);
    if (strcmp(mt, "vit") == 0) c->video = 0;
    else if (strcmp(mt, "vivit") == 0) c->video = 1;
    else return m2u_fail("%s: key 'model_type': '%s' is not a ViT/ViViT model (need \"vit\" or \"vivit\")", origin, mt);

    m2u_enc_dims *d = &c->dims;
    d->prenorm = 1;
    double eps;
    int qkv_bias;
    /* defaults: ViTConfig / VivitConfig */
    if (m2u_json_int(root, origin, "hidden_size", 0, 768, 1, &d->hidden) ||
        m2u_json_int(root, origin, "num_hidden_layers", 0, 12, 1, &c->layers) ||
        m2u_json_int(root, origin, "num_attention_heads", 0, 12, 1, &d->heads) ||
        m2u_json_int(root, origin, "intermediate_size", 0, 3072, 1, &d->inter) ||
        m2u_json_int(root, origin, "num_channels", 0, 3, 1, &c->channels) ||
        m2u_json_num(root, origin, "layer_norm_eps", 0, c->video ? 1e-6 : 1e-12, &eps) ||
        m2u_json_bool(root, origin, "qkv_bias", 1, &qkv_bias) ||
        m2u_json_str(root, origin, "hidden_act", c->video ? "gelu_fast" : "gelu", &act) ||
        m2u_act_parse(act, origin, "hidden_act", &d->act))
        return -1;
    if (!(eps > 0)) return m2u_fail("%s: key 'layer_norm_eps' must be positive", origin);
    d->eps = (float)eps;
    if (!qkv_bias) return m2u_fail("%s: key 'qkv_bias': false is not supported (ViT/ViViT checkpoints use true)", origin);
    if (d->hidden % d->heads != 0)
        return m2u_fail("%s: key 'num_attention_heads': hidden_size %d is not divisible by %d", origin, d->hidden,
                        d->heads);

    int v[3], n;
    if (c->video) {
        /* VivitConfig: image_size is one int (square frames), tubelet_size [t, h, w]. */
        if (m2u_json_int(root, origin, "image_size", 0, 224, 1, &c->image_h) ||
            m2u_json_int(root, origin, "num_frames", 0, 32, 1, &c->frames))
            return -1;
        c->image_w = c->image_h;
        if (!cJSON_GetObjectItemCaseSensitive(root, "tubelet_size")) {
            c->patch_t = 2, c->patch_h = 16, c->patch_w = 16;
        } else {
            if (m2u_json_ints(root, origin, "tubelet_size", 3, 1, 0, v, &n) != 0) return -1;
            if (n != 3) return m2u_fail("%s: key 'tubelet_size' must be a list of 3 integers", origin);
            c->patch_t = v[0], c->patch_h = v[1], c->patch_w = v[2];
        }
    } else {
        /* ViTConfig: image_size and patch_size are an int or an (h, w) pair. */
        c->frames = 1, c->patch_t = 1;
        if (!cJSON_GetObjectItemCaseSensitive(root, "image_size")) v[0] = v[1] = 224;
        else if (m2u_json_ints(root, origin, "image_size", 2, 1, 1, v, &n) != 0) return -1;
        else if (n != 2) return m2u_fail("%s: key 'image_size' must be an integer or a list of 2", origin);
        c->image_h = v[0], c->image_w = v[1];
        if (!cJSON_GetObjectItemCaseSensitive(root, "patch_size")) v[0] = v[1] = 16;
        else if (m2u_json_ints(root, origin, "patch_size", 2, 1, 1, v, &n) != 0) return -1;
        else if (n != 2) return m2u_fail("%s: key 'patch_size' must be an integer or a list of 2", origin);
        c->patch_h = v[0], c->patch_w = v[1];
    }
    c->grid_t = c->frames / c->patch_t;
    c->grid_h = c->image_h / c->patch_h;
    c->grid_w = c->image_w / c->patch_w;
    if (c->grid_t < 1 || c->grid_h < 1 || c->grid_w < 1)
        return m2u_fail("%s: the %s (%dx%dx%d) is larger than the input (%d frames, %dx%d)", origin,
                        c->video ? "tubelet_size" : "patch_size", c->patch_t, c->patch_h, c->patch_w, c->frames,
                        c->image_h, c->image_w);
    /* Bounds before any product of them: a damaged or hostile config must not overflow the
     * token count or size the input buffers (frames x channels x h x w floats) past memory. */
    /* (in double: four ints multiplied can pass even int64's range; exact below 2^53) */
    double tokens = 1 + (double)c->grid_t * c->grid_h * c->grid_w,
           values = (double)c->frames * c->channels * c->image_h * c->image_w;
    if (tokens > M2U_VIT_MAX_TOKENS || values > (double)M2U_VIT_MAX_INPUT)
        return m2u_fail("%s: %d frames of %dx%d (%d channels) in patches of %dx%dx%d make %.4g tokens and %.4g input "
                        "values, over this loader's limits (%d tokens, %lld values)",
                        origin, c->frames, c->image_h, c->image_w, c->channels, c->patch_t, c->patch_h, c->patch_w,
                        tokens, values, M2U_VIT_MAX_TOKENS, (long long)M2U_VIT_MAX_INPUT);
    c->n_tokens = (int)tokens;
    return 0;
}

/* ViTImageProcessor / VivitImageProcessor keys that change the pixel values we
 * are given (the caller has already resized and cropped). */
static int parse_preprocessor(const cJSON *root, const char *origin, m2u_vit_config *c) {
    static const double half[3] = {0.5, 0.5, 0.5}; /* IMAGENET_STANDARD_MEAN / _STD */
    if (m2u_json_bool(root, origin, "do_rescale", 1, &c->do_rescale) ||
        m2u_json_num(root, origin, "rescale_factor", 0, c->video ? 1 / 127.5 : 1 / 255.0, &c->rescale_factor) ||
        m2u_json_bool(root, origin, "do_normalize", 1, &c->do_normalize) ||
        m2u_json_nums(root, origin, "image_mean", 3, half, c->image_mean) ||
        m2u_json_nums(root, origin, "image_std", 3, half, c->image_std))
        return -1;
    /* ViTImageProcessor has no offset; VivitImageProcessor defaults it to true. */
    c->offset = 0;
    if (c->video && m2u_json_bool(root, origin, "offset", 1, &c->offset) != 0) return -1;
    if (c->offset && !c->do_rescale) return m2u_fail("%s: key 'offset' needs do_rescale true", origin);
    for (int i = 0; i < 3; i++)
        if (c->image_std[i] == 0) return m2u_fail("%s: key 'image_std' has a zero entry", origin);
    return 0;
}

void m2u_vit_free(m2u_vit *m) {
    if (!m) return;
    if (m->layer)
        for (int l = 0; l < m->cfg.layers; l++) m2u_enc_layer_free(&m->layer[l]);
    free(m->layer);
    free(m->cls);
    free(m->pos);
    free(m->patch_w);
    free(m->patch_b);
    free(m->final_w);
    free(m->final_b);
    free(m);
}

static int load_weights(m2u_vit *m, const m2u_safetensors *st) {
    const m2u_vit_config *c = &m->cfg;
    int H = c->dims.hidden;
    /* Classification checkpoints save the backbone under "vit." / "vivit.". */
    const char *prefix = "";
    const char *wrapped = c->video ? "vivit." : "vit.";
    char probe[64];
    snprintf(probe, sizeof probe, "%sembeddings.cls_token", wrapped);
    if (!m2u_st_find(st, "embeddings.cls_token") && m2u_st_find(st, probe)) prefix = wrapped;

    int64_t s_cls[3] = {1, 1, H}, s_pos[3] = {1, c->n_tokens, H}, s_b[1] = {H}, s_ln[1] = {H};
    int64_t s_pw[5] = {H, c->channels, c->patch_t, c->patch_h, c->patch_w};
    int64_t s_pw2[4] = {H, c->channels, c->patch_h, c->patch_w};
    if (m2u_enc_tensor(st, prefix, "embeddings.cls_token", 3, s_cls, &m->cls) ||
        m2u_enc_tensor(st, prefix, "embeddings.position_embeddings", 3, s_pos, &m->pos) ||
        m2u_enc_tensor(st, prefix, "embeddings.patch_embeddings.projection.weight", c->video ? 5 : 4,
                       c->video ? s_pw : s_pw2, &m->patch_w) ||
        m2u_enc_tensor(st, prefix, "embeddings.patch_embeddings.projection.bias", 1, s_b, &m->patch_b) ||
        m2u_enc_tensor(st, prefix, "layernorm.weight", 1, s_ln, &m->final_w) ||
        m2u_enc_tensor(st, prefix, "layernorm.bias", 1, s_ln, &m->final_b))
        return -1;
    m->layer = calloc((size_t)c->layers, sizeof *m->layer);
    if (!m->layer) return m2u_fail("%s: out of memory", m2u_st_path(st));
    for (int l = 0; l < c->layers; l++)
        if (m2u_enc_layer_load(st, prefix, &VIT_NAMES, l, &c->dims, &m->layer[l]) != 0) return -1;
    return 0;
}

int m2u_vit_load(const char *dir, m2u_vit **out) {
    *out = NULL;
    m2u_vit *m = calloc(1, sizeof *m);
    char *cfg_path = m2u_path_join(dir, "config.json"), *pp_path = m2u_path_join(dir, "preprocessor_config.json");
    cJSON *cfg = NULL, *pp = NULL;
    m2u_safetensors *st = NULL;
    int rc = -1;
    if (!m || !cfg_path || !pp_path) {
        m2u_fail("%s: out of memory", dir);
        goto done;
    }
    if (m2u_json_load(cfg_path, 0, &cfg) != 0 || parse_config(cfg, cfg_path, &m->cfg) != 0) goto done;
    if (m2u_json_load(pp_path, 1, &pp) != 0) goto done;
    {
        /* an absent file means the processor's defaults: parse an empty object */
        cJSON *empty = pp ? NULL : cJSON_CreateObject();
        int prc = parse_preprocessor(pp ? pp : empty, pp_path, &m->cfg);
        cJSON_Delete(empty);
        if (prc != 0) goto done;
    }
    if (m2u_st_open(dir, &st) != 0 || load_weights(m, st) != 0) goto done;
    rc = 0;
done:
    cJSON_Delete(cfg);
    cJSON_Delete(pp);
    m2u_st_close(st);
    free(cfg_path);
    free(pp_path);
    if (rc != 0) {
        m2u_vit_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

const m2u_vit_config *m2u_vit_config_of(const m2u_vit *m) { return &m->cfg; }

int m2u_vit_preprocess(const m2u_vit *m, const uint8_t *rgb, float *px) {
    const m2u_vit_config *c = &m->cfg;
    if (c->channels != 3)
        return m2u_fail("vit: preprocessing takes RGB images but the model has %d channels", c->channels);
    size_t HW = (size_t)c->image_h * c->image_w;
    float mean[3], std[3];
    for (int i = 0; i < 3; i++) mean[i] = (float)c->image_mean[i], std[i] = (float)c->image_std[i];
    m2u_pixels_normalize(px, rgb, c->frames, HW, c->do_rescale, c->rescale_factor, c->offset, c->do_normalize, mean,
                         std);
    return 0;
}

int m2u_vit_forward(const m2u_vit *m, const float *px, float *hidden_states, float *last) {
    const m2u_vit_config *c = &m->cfg;
    int H = c->dims.hidden, N = c->n_tokens, P = N - 1, C = c->channels;
    int pt = c->patch_t, ph = c->patch_h, pw = c->patch_w;
    int K = C * pt * ph * pw;
    float *x = malloc((size_t)N * H * sizeof(float));
    float *col = malloc((size_t)P * K * sizeof(float));
    float *scratch = malloc(m2u_enc_layer_scratch(&c->dims, N) * sizeof(float));
    int rc = -1;
    if (!x || !col || !scratch) {
        m2u_fail("vit: out of memory for %d tokens", N);
        goto done;
    }
    /* one row per patch, columns in the (c, dt, dy, dx) order of the conv weight;
     * pixel_values are [frames][C][H][W] (ViT: one frame) */
    m2u_patch_im2col(col, px, C, c->image_h, c->image_w, pt, ph, pw, c->grid_t, c->grid_h, c->grid_w);
    memcpy(x, m->cls, (size_t)H * sizeof(float));
    m2u_linear_fwd(x + H, col, m->patch_w, m->patch_b, P, K, H);
    m2u_add_inplace(x, m->pos, (size_t)N * H);

    size_t NH = (size_t)N * H;
    for (int l = 0; l < c->layers; l++) {
        if (hidden_states) memcpy(hidden_states + (size_t)l * NH, x, NH * sizeof(float));
        if (m2u_enc_layer_fwd(&c->dims, &m->layer[l], x, N, scratch) != 0) goto done;
    }
    /* the last hidden_states entry is the encoder output, before the final LayerNorm */
    if (hidden_states) memcpy(hidden_states + (size_t)c->layers * NH, x, NH * sizeof(float));
    if (last && m2u_enc_layernorm(last, x, m->final_w, m->final_b, N, H, c->dims.eps) != 0) goto done;
    rc = 0;
done:
    free(x);
    free(col);
    free(scratch);
    return rc;
}

int m2u_vit_features(const m2u_vit *m, const uint8_t *rgb, float *tokens) {
    const m2u_vit_config *c = &m->cfg;
    float *px = malloc((size_t)c->frames * c->channels * c->image_h * c->image_w * sizeof(float));
    if (!px) return m2u_fail("vit: out of memory for the pixel values");
    int rc = m2u_vit_preprocess(m, rgb, px);
    if (rc == 0) rc = m2u_vit_forward(m, px, NULL, tokens);
    free(px);
    return rc;
}
