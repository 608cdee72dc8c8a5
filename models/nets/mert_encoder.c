/* MERT (HuBERT architecture) encoder: see mert_encoder.h.  Checked against
 * transformers 4.46.3 HubertModel + Wav2Vec2FeatureExtractor by
 * tests/test_encoders.c on the fixtures of tests/make_encoder_fixtures.py. */
#include "mert_encoder.h"

#include "fileio.h"
#include "m2u_error.h"
#include "ops_extra.h"
#include "progress.h"
#include "tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* nn.GroupNorm / nn.LayerNorm built without an eps argument in the conv feature encoder. */
#define FEAT_NORM_EPS 1e-5f

typedef struct {
    float *w;            /* tap-major [C_out, k, C_in] */
    float *b;            /* [C_out] or NULL */
    float *norm_w, *norm_b; /* GroupNorm (layer 0, "group") or LayerNorm ("layer"), else NULL */
    m2u_linear_pack *pack;  /* w as [C_out, k * C_in] packed (ops_extra.h); NULL for the one-channel first layer */
} conv_layer;

struct m2u_mert {
    m2u_mert_config cfg;
    conv_layer conv[M2U_MERT_MAX_CONV];
    float *fp_ln_w, *fp_ln_b; /* feature_projection.layer_norm (NULL when feat_proj_layer_norm is false) */
    float *fp_w, *fp_b;       /* feature_projection.projection [H, C_last], [H] */
    float *pos_w, *pos_b;     /* weight-normed positional conv, tap-major [H, K, H/G], [H] */
    float *enc_ln_w, *enc_ln_b;
    m2u_linear_pack *fp_pack;    /* fp_w packed */
    m2u_linear_pack **pos_packs; /* pos_w per group, [H/G, K * H/G] each, packed */
    m2u_enc_layer *layer;
};

static const m2u_enc_names HUBERT_NAMES = {
    .q = "encoder.layers.%d.attention.q_proj",
    .k = "encoder.layers.%d.attention.k_proj",
    .v = "encoder.layers.%d.attention.v_proj",
    .o = "encoder.layers.%d.attention.out_proj",
    .ln1 = "encoder.layers.%d.layer_norm",
    .ln2 = "encoder.layers.%d.final_layer_norm",
    .fc1 = "encoder.layers.%d.feed_forward.intermediate_dense",
    .fc2 = "encoder.layers.%d.feed_forward.output_dense",
};

/* A boolean that must be false: these switch on paths m2u does not implement. */
static int refuse_true(const cJSON *root, const char *origin, const char *key, const char *why) {
    int v;
    if (m2u_json_bool(root, origin, key, 0, &v) != 0) return -1;
    return v ? m2u_fail("%s: key '%s': true is not supported (%s)", origin, key, why) : 0;
}

static int parse_config(const cJSON *root, const char *origin, m2u_mert_config *c) {
    const char *mt, *act, *fact, *fnorm;
    if (m2u_json_str(root, origin, "model_type", NULL, &mt) != 0) return -1;
    if (!mt || (strcmp(mt, "mert_model") != 0 && strcmp(mt, "hubert") != 0))
        return m2u_fail("%s: key 'model_type': need \"mert_model\" or \"hubert\", got %s%s%s", origin, mt ? "'" : "",
                        mt ? mt : "nothing", mt ? "'" : "");
    m2u_enc_dims *d = &c->dims;
    double eps;
    /* defaults: HubertConfig (MERTConfig has the same ones) */
    if (m2u_json_int(root, origin, "hidden_size", 0, 768, 1, &d->hidden) ||
        m2u_json_int(root, origin, "num_hidden_layers", 0, 12, 1, &c->layers) ||
        m2u_json_int(root, origin, "num_attention_heads", 0, 12, 1, &d->heads) ||
        m2u_json_int(root, origin, "intermediate_size", 0, 3072, 1, &d->inter) ||
        m2u_json_num(root, origin, "layer_norm_eps", 0, 1e-5, &eps) ||
        m2u_json_str(root, origin, "hidden_act", "gelu", &act) ||
        m2u_act_parse(act, origin, "hidden_act", &d->act) ||
        m2u_json_str(root, origin, "feat_extract_activation", "gelu", &fact) ||
        m2u_act_parse(fact, origin, "feat_extract_activation", &c->feat_act) ||
        m2u_json_str(root, origin, "feat_extract_norm", "group", &fnorm) ||
        m2u_json_bool(root, origin, "conv_bias", 0, &c->conv_bias) ||
        m2u_json_bool(root, origin, "feat_proj_layer_norm", 1, &c->feat_proj_layer_norm) ||
        m2u_json_bool(root, origin, "do_stable_layer_norm", 0, &c->stable) ||
        m2u_json_int(root, origin, "num_conv_pos_embeddings", 0, 128, 1, &c->pos_kernel) ||
        m2u_json_int(root, origin, "num_conv_pos_embedding_groups", 0, 16, 1, &c->pos_groups))
        return -1;
    if (!(eps > 0)) return m2u_fail("%s: key 'layer_norm_eps' must be positive", origin);
    d->eps = (float)eps;
    d->prenorm = c->stable;
    if (d->hidden % d->heads != 0)
        return m2u_fail("%s: key 'num_attention_heads': hidden_size %d is not divisible by %d", origin, d->hidden,
                        d->heads);
    if (d->hidden % c->pos_groups != 0)
        return m2u_fail("%s: key 'num_conv_pos_embedding_groups': hidden_size %d is not divisible by %d", origin,
                        d->hidden, c->pos_groups);
    if (strcmp(fnorm, "group") == 0) c->feat_norm_layer = 0;
    else if (strcmp(fnorm, "layer") == 0) c->feat_norm_layer = 1;
    else return m2u_fail("%s: key 'feat_extract_norm': '%s' (need \"group\" or \"layer\")", origin, fnorm);
    if (refuse_true(root, origin, "feature_extractor_cqt", "MERT's CQT feature path; off in MERT-v1") ||
        refuse_true(root, origin, "deepnorm", "MERT's DeepNorm encoder; off in MERT-v1") ||
        refuse_true(root, origin, "conv_pos_batch_norm", "batch-normed positional conv"))
        return -1;
    if (cJSON_GetObjectItemCaseSensitive(root, "adapter_attn_dim") &&
        !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(root, "adapter_attn_dim")))
        return m2u_fail("%s: key 'adapter_attn_dim': attention adapters are not supported", origin);

    int nd, nk, ns;
    if (m2u_json_ints(root, origin, "conv_dim", M2U_MERT_MAX_CONV, 1, 0, c->conv_dim, &nd) ||
        m2u_json_ints(root, origin, "conv_kernel", M2U_MERT_MAX_CONV, 1, 0, c->conv_kernel, &nk) ||
        m2u_json_ints(root, origin, "conv_stride", M2U_MERT_MAX_CONV, 1, 0, c->conv_stride, &ns))
        return -1;
    if (nd != nk || nd != ns)
        return m2u_fail("%s: keys 'conv_dim', 'conv_kernel', 'conv_stride' have different lengths (%d, %d, %d)", origin,
                        nd, nk, ns);
    c->n_conv = nd;
    int nfe;
    if (m2u_json_int(root, origin, "num_feat_extract_layers", 0, nd, 1, &nfe) != 0) return -1;
    if (nfe != nd)
        return m2u_fail("%s: key 'num_feat_extract_layers' is %d but conv_dim has %d entries", origin, nfe, nd);
    return 0;
}

static int parse_preprocessor(const cJSON *pp, const char *pp_origin, const cJSON *cfg, const char *cfg_origin,
                              m2u_mert_config *c) {
    if (pp) {
        int fs;
        /* Wav2Vec2FeatureExtractor defaults: sampling_rate 16000, do_normalize true, feature_size 1 */
        if (m2u_json_int(pp, pp_origin, "sampling_rate", 0, 16000, 1, &c->sampling_rate) ||
            m2u_json_bool(pp, pp_origin, "do_normalize", 1, &c->do_normalize) ||
            m2u_json_int(pp, pp_origin, "feature_size", 0, 1, 1, &fs))
            return -1;
        if (fs != 1) return m2u_fail("%s: key 'feature_size' must be 1 (mono waveform), got %d", pp_origin, fs);
        return 0;
    }
    c->do_normalize = 1;
    if (m2u_json_int(cfg, cfg_origin, "sample_rate", 0, 0, 1, &c->sampling_rate) != 0) return -1;
    if (c->sampling_rate == 0)
        return m2u_fail("%s is absent and %s has no 'sample_rate': the sampling rate is unknown", pp_origin,
                        cfg_origin);
    return 0;
}

void m2u_mert_free(m2u_mert *m) {
    if (!m) return;
    for (int i = 0; i < M2U_MERT_MAX_CONV; i++) {
        free(m->conv[i].w);
        free(m->conv[i].b);
        free(m->conv[i].norm_w);
        free(m->conv[i].norm_b);
        m2u_linear_pack_free(m->conv[i].pack);
    }
    m2u_linear_pack_free(m->fp_pack);
    for (int g = 0; m->pos_packs && g < m->cfg.pos_groups; g++) m2u_linear_pack_free(m->pos_packs[g]);
    free(m->pos_packs);
    float *p[] = {m->fp_ln_w, m->fp_ln_b, m->fp_w, m->fp_b, m->pos_w, m->pos_b, m->enc_ln_w, m->enc_ln_b};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
    if (m->layer)
        for (int l = 0; l < m->cfg.layers; l++) m2u_enc_layer_free(&m->layer[l]);
    free(m->layer);
    free(m);
}

/* weight = g * v / ||v||, the norm taken over dims 0 and 1 for each kernel tap
 * (torch weight_norm with dim=2, as HubertPositionalConvEmbedding builds it). */
static int load_pos_conv(m2u_mert *m, const m2u_safetensors *st, const char *prefix) {
    const m2u_mert_config *c = &m->cfg;
    int H = c->dims.hidden, cig = H / c->pos_groups, K = c->pos_kernel;
    int64_t s_w[3] = {H, cig, K}, s_g[3] = {1, 1, K}, s_b[1] = {H};
    static const char *const pairs[2][2] = {
        {"encoder.pos_conv_embed.conv.weight_g", "encoder.pos_conv_embed.conv.weight_v"},
        {"encoder.pos_conv_embed.conv.parametrizations.weight.original0",
         "encoder.pos_conv_embed.conv.parametrizations.weight.original1"}};
    char probe[256];
    float *w = NULL, *g = NULL, *v = NULL;
    int form = -1;
    for (int i = 0; i < 2 && form < 0; i++) {
        snprintf(probe, sizeof probe, "%s%s", prefix, pairs[i][1]);
        if (m2u_st_find(st, probe)) form = i;
    }
    if (form < 0) {
        snprintf(probe, sizeof probe, "%sencoder.pos_conv_embed.conv.weight", prefix);
        if (!m2u_st_find(st, probe))
            return m2u_fail("%s: no positional conv weight (looked for %s%s, %s%s and %s)", m2u_st_path(st), prefix,
                            pairs[0][1], prefix, pairs[1][1], probe);
        if (m2u_enc_tensor(st, prefix, "encoder.pos_conv_embed.conv.weight", 3, s_w, &w) != 0) return -1;
    } else {
        if (m2u_enc_tensor(st, prefix, pairs[form][0], 3, s_g, &g) != 0 ||
            m2u_enc_tensor(st, prefix, pairs[form][1], 3, s_w, &v) != 0) {
            free(g);
            free(v);
            return -1;
        }
        w = v;
        for (int j = 0; j < K; j++) {
            double ss = 0;
            for (size_t r = 0; r < (size_t)H * cig; r++) ss += (double)v[r * K + j] * v[r * K + j];
            float scale = (float)(g[j] / sqrt(ss));
            for (size_t r = 0; r < (size_t)H * cig; r++) w[r * K + j] = v[r * K + j] * scale;
        }
        free(g);
    }
    m->pos_w = m2u_conv1d_weight_to_tap_major(w, H, cig, K);
    free(w);
    if (!m->pos_w) return m2u_fail("%s: out of memory", m2u_st_path(st));
    return m2u_enc_tensor(st, prefix, "encoder.pos_conv_embed.conv.bias", 1, s_b, &m->pos_b);
}

static int load_weights(m2u_mert *m, const m2u_safetensors *st) {
    const m2u_mert_config *c = &m->cfg;
    int H = c->dims.hidden;
    /* HubertFor* heads save the backbone under "hubert."; MERTModel at top level. */
    const char *prefix = "";
    if (!m2u_st_find(st, "feature_projection.projection.weight") &&
        m2u_st_find(st, "hubert.feature_projection.projection.weight"))
        prefix = "hubert.";
    char name[256];
    for (int i = 0; i < c->n_conv; i++) {
        int cin = i ? c->conv_dim[i - 1] : 1, cout = c->conv_dim[i], k = c->conv_kernel[i];
        int64_t s_w[3] = {cout, cin, k}, s_c[1] = {cout};
        float *w;
        snprintf(name, sizeof name, "feature_extractor.conv_layers.%d.conv.weight", i);
        if (m2u_enc_tensor(st, prefix, name, 3, s_w, &w) != 0) return -1;
        m->conv[i].w = m2u_conv1d_weight_to_tap_major(w, cout, cin, k);
        free(w);
        if (!m->conv[i].w) return m2u_fail("%s: out of memory", m2u_st_path(st));
        if (c->conv_bias) {
            snprintf(name, sizeof name, "feature_extractor.conv_layers.%d.conv.bias", i);
            if (m2u_enc_tensor(st, prefix, name, 1, s_c, &m->conv[i].b) != 0) return -1;
        }
        if (c->feat_norm_layer || i == 0) {
            snprintf(name, sizeof name, "feature_extractor.conv_layers.%d.layer_norm.weight", i);
            if (m2u_enc_tensor(st, prefix, name, 1, s_c, &m->conv[i].norm_w) != 0) return -1;
            snprintf(name, sizeof name, "feature_extractor.conv_layers.%d.layer_norm.bias", i);
            if (m2u_enc_tensor(st, prefix, name, 1, s_c, &m->conv[i].norm_b) != 0) return -1;
        }
    }
    int C = c->conv_dim[c->n_conv - 1];
    int64_t s_c[1] = {C}, s_h[1] = {H}, s_p[2] = {H, C};
    if (c->feat_proj_layer_norm &&
        (m2u_enc_tensor(st, prefix, "feature_projection.layer_norm.weight", 1, s_c, &m->fp_ln_w) ||
         m2u_enc_tensor(st, prefix, "feature_projection.layer_norm.bias", 1, s_c, &m->fp_ln_b)))
        return -1;
    if (m2u_enc_tensor(st, prefix, "feature_projection.projection.weight", 2, s_p, &m->fp_w) ||
        m2u_enc_tensor(st, prefix, "feature_projection.projection.bias", 1, s_h, &m->fp_b) ||
        m2u_enc_tensor(st, prefix, "encoder.layer_norm.weight", 1, s_h, &m->enc_ln_w) ||
        m2u_enc_tensor(st, prefix, "encoder.layer_norm.bias", 1, s_h, &m->enc_ln_b) || load_pos_conv(m, st, prefix))
        return -1;
    m->layer = calloc((size_t)c->layers, sizeof *m->layer);
    if (!m->layer) return m2u_fail("%s: out of memory", m2u_st_path(st));
    for (int l = 0; l < c->layers; l++)
        if (m2u_enc_layer_load(st, prefix, &HUBERT_NAMES, l, &c->dims, &m->layer[l]) != 0) return -1;
    /* the front end's products on packed weights too (the conv stack is a third of a forward) */
    int ok = 1;
    for (int i = 1; i < c->n_conv && ok; i++) {
        int K = c->conv_kernel[i] * c->conv_dim[i - 1];
        ok = (m->conv[i].pack = m2u_linear_pack_new(m->conv[i].w, K, c->conv_dim[i])) != NULL;
    }
    int G = c->pos_groups, cg = H / G, KP = c->pos_kernel * cg;
    ok = ok && (m->fp_pack = m2u_linear_pack_new(m->fp_w, C, H)) != NULL &&
         (m->pos_packs = calloc((size_t)G, sizeof *m->pos_packs)) != NULL;
    for (int g = 0; g < G && ok; g++)
        ok = (m->pos_packs[g] = m2u_linear_pack_new(m->pos_w + (size_t)g * cg * KP, KP, cg)) != NULL;
    return ok ? 0 : m2u_fail("%s: out of memory", m2u_st_path(st));
}

int m2u_mert_load(const char *dir, m2u_mert **out) {
    *out = NULL;
    m2u_mert *m = calloc(1, sizeof *m);
    char *cfg_path = m2u_path_join(dir, "config.json"), *pp_path = m2u_path_join(dir, "preprocessor_config.json");
    cJSON *cfg = NULL, *pp = NULL;
    m2u_safetensors *st = NULL;
    int rc = -1;
    if (!m || !cfg_path || !pp_path) {
        m2u_fail("%s: out of memory", dir);
        goto done;
    }
    if (m2u_json_load(cfg_path, 0, &cfg) != 0 || parse_config(cfg, cfg_path, &m->cfg) != 0 ||
        m2u_json_load(pp_path, 1, &pp) != 0 || parse_preprocessor(pp, pp_path, cfg, cfg_path, &m->cfg) != 0)
        goto done;
    if (m2u_st_open(dir, &st) != 0 || load_weights(m, st) != 0) goto done;
    rc = 0;
done:
    cJSON_Delete(cfg);
    cJSON_Delete(pp);
    m2u_st_close(st);
    free(cfg_path);
    free(pp_path);
    if (rc != 0) {
        m2u_mert_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

const m2u_mert_config *m2u_mert_config_of(const m2u_mert *m) { return &m->cfg; }

/* Frames out of conv layer i for n frames in (0 when n is shorter than its kernel). */
static long conv_out_len(const m2u_mert_config *c, int i, long n) {
    return n < c->conv_kernel[i] ? 0 : (n - c->conv_kernel[i]) / c->conv_stride[i] + 1;
}

int m2u_mert_n_frames(const m2u_mert *m, long n) {
    for (int i = 0; i < m->cfg.n_conv && n > 0; i++) n = conv_out_len(&m->cfg, i, n);
    return n > 0 && n <= 0x7fffffffL ? (int)n : 0;
}

void m2u_mert_preprocess(const m2u_mert *m, const float *wav, long n, float *out) {
    if (!m->cfg.do_normalize || n <= 0) {
        if (out != wav && n > 0) memmove(out, wav, (size_t)n * sizeof(float));
        return;
    }
    /* Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm on a float32 array: numpy's float32
     * mean and var (here accumulated in double and rounded), sqrt(var + 1e-7) in double,
     * then (x - mean) / that, in float32. */
    m2u_zero_mean_unit_var(out, wav, n, 1e-7);
}

/* Per-channel normalisation over time of x [T, C] (GroupNorm with one group per channel),
 * then the feature activation. */
static int group_norm_act_tm(float *x, int T, int C, const float *w, const float *b, m2u_act act) {
    double *s = malloc(2 * (size_t)C * sizeof(double));
    float *m = malloc(2 * (size_t)C * sizeof(float)), *r = m + C;
    if (!s || !m) {
        free(s);
        free(m);
        return m2u_fail("mert: out of memory for a group norm over %d channels", C);
    }
    m2u_channel_stats(m, r, s, x, T, C, (double)FEAT_NORM_EPS);
    if (act == M2U_ACT_GELU) { /* one pass over layer 0's 48000 x 512 values per 10 s of audio, not two */
        m2u_channel_affine_gelu(x, T, C, m, r, w, b);
    } else {
        m2u_channel_affine(x, T, C, m, r, w, b);
        m2u_act_apply(act, x, (size_t)T * C);
    }
    free(s);
    free(m);
    return 0;
}

/* Each hidden state's mean over frames into acc [H] (double, for long windows). */
static void accumulate_mean(double *acc, const float *x, int T, int H) { m2u_col_mean(acc, x, T, H); }

/* Record hidden state l: copy it out and/or take its time mean. */
static void tap(const float *x, int T, int H, int l, float *hidden_states, double *means) {
    if (hidden_states) memcpy(hidden_states + (size_t)l * T * H, x, (size_t)T * H * sizeof(float));
    if (means) accumulate_mean(means + (size_t)l * H, x, T, H);
}

void m2u_mert_ws_free(m2u_mert_ws *ws) {
    if (!ws) return;
    free(ws->conv[0]);
    free(ws->conv[1]);
    free(ws->x);
    free(ws->pos);
    free(ws->scratch);
    memset(ws, 0, sizeof *ws);
}

/* *buf with room for n floats: kept when it has it, else replaced (the old contents are not
 * needed, so no copy); NULL after m2u_fail when out of memory. */
static float *ws_take(float **buf, size_t *cap, size_t n, const char *what) {
    if (n <= *cap) return *buf;
    free(*buf);
    *cap = 0;
    if (!(*buf = malloc(n * sizeof(float)))) {
        m2u_fail("mert: out of memory for %s (%zu floats)", what, n);
        return NULL;
    }
    *cap = n;
    return *buf;
}

static int forward(const m2u_mert *m, m2u_mert_ws *ws, const float *in, long n, float *hidden_states, double *means,
                   m2u_mert_times *times) {
    double t0 = times ? m2u_now() : 0, t1 = 0;
    const m2u_mert_config *c = &m->cfg;
    int H = c->dims.hidden, T = m2u_mert_n_frames(m, n);
    if (T <= 0)
        return m2u_fail("mert: %ld samples are too few for one frame of the conv feature encoder", n);
    float *prev = NULL;
    /* conv feature encoder, time-major [T_i, C_i]; layer i writes ws->conv[i % 2] and
     * reads the other */
    long T_in = n;
    int C_in = 1;
    const float *src = in;
    for (int i = 0; i < c->n_conv; i++) {
        int k = c->conv_kernel[i], s = c->conv_stride[i], C = c->conv_dim[i];
        int T_out = (int)conv_out_len(c, i, T_in);
        float *feat = ws_take(&ws->conv[i % 2], &ws->conv_cap[i % 2], (size_t)T_out * C, "a conv layer's output");
        if (!feat) return -1;
        m2u_linear_pack *packs[1] = {m->conv[i].pack};
        if (m2u_conv1d_tm_packed(feat, T_out, src, (int)T_in, C_in, C, k, s, 0, 1, m->conv[i].w, m->conv[i].b,
                                 packs[0] ? packs : NULL) != 0)
            return -1;
        if (m->conv[i].norm_w && !c->feat_norm_layer) {
            if (group_norm_act_tm(feat, T_out, C, m->conv[i].norm_w, m->conv[i].norm_b, c->feat_act) != 0) return -1;
        } else {
            if (m->conv[i].norm_w &&
                m2u_enc_layernorm(feat, feat, m->conv[i].norm_w, m->conv[i].norm_b, T_out, C, FEAT_NORM_EPS) != 0)
                return -1;
            m2u_act_apply(c->feat_act, feat, (size_t)T_out * C);
        }
        prev = feat;
        src = prev;
        T_in = T_out;
        C_in = C;
    }
    /* feature projection (LayerNorm in place on the conv features, then Linear) */
    float *x = ws_take(&ws->x, &ws->x_cap, (size_t)T * H, "the hidden states");
    float *pos = x ? ws_take(&ws->pos, &ws->pos_cap, (size_t)T * H, "the positional conv") : NULL;
    float *scratch =
        pos ? ws_take(&ws->scratch, &ws->scratch_cap, m2u_enc_layer_scratch(&c->dims, T), "the layers' scratch") : NULL;
    if (!scratch) return -1;
    if (m->fp_ln_w && m2u_enc_layernorm(prev, prev, m->fp_ln_w, m->fp_ln_b, T, C_in, c->dims.eps) != 0) return -1;
    m2u_linear_fwd_packed(m->fp_pack, x, prev, m->fp_b, T);
    /* positional conv: padding K/2 both sides; for an even K that gives T+1 frames and
     * HubertSamePadLayer drops the last, so computing the first T is the same. */
    if (m2u_conv1d_tm_packed(pos, T, x, T, H, H, c->pos_kernel, 1, c->pos_kernel / 2, c->pos_groups, m->pos_w,
                             m->pos_b, m->pos_packs) != 0)
        return -1;
    m2u_act_apply(c->feat_act, pos, (size_t)T * H);
    m2u_add_inplace(x, pos, (size_t)T * H);
    if (!c->stable && m2u_enc_layernorm(x, x, m->enc_ln_w, m->enc_ln_b, T, H, c->dims.eps) != 0) return -1;
    if (times) t1 = m2u_now();
    for (int l = 0; l < c->layers; l++) {
        tap(x, T, H, l, hidden_states, means);
        if (m2u_enc_layer_fwd(&c->dims, &m->layer[l], x, T, scratch) != 0) return -1;
    }
    if (c->stable && m2u_enc_layernorm(x, x, m->enc_ln_w, m->enc_ln_b, T, H, c->dims.eps) != 0) return -1;
    tap(x, T, H, c->layers, hidden_states, means);
    if (times) {
        times->front_s = t1 - t0;
        times->layers_s = m2u_now() - t1;
    }
    return 0;
}

int m2u_mert_forward_timed(const m2u_mert *m, m2u_mert_ws *ws, const float *input_values, long n,
                           float *hidden_states, float *layer_means, m2u_mert_times *times) {
    size_t LH = (size_t)(m->cfg.layers + 1) * m->cfg.dims.hidden;
    double *acc = layer_means ? calloc(LH, sizeof(double)) : NULL;
    if (layer_means && !acc) return m2u_fail("mert: out of memory");
    m2u_mert_ws tmp = {0};
    if (!ws) ws = &tmp;
    int rc = forward(m, ws, input_values, n, hidden_states, acc, times);
    m2u_mert_ws_free(&tmp);
    if (rc == 0 && layer_means)
        for (size_t i = 0; i < LH; i++) layer_means[i] = (float)acc[i];
    free(acc);
    return rc;
}

int m2u_mert_forward(const m2u_mert *m, const float *input_values, long n, float *hidden_states, float *layer_means) {
    return m2u_mert_forward_timed(m, NULL, input_values, n, hidden_states, layer_means, NULL);
}

void m2u_mert_flops(const m2u_mert_config *c, long n, double *front, double *layers) {
    double f = 0, C_in = 1;
    long T_in = n;
    for (int i = 0; i < c->n_conv; i++) {
        long T_out = conv_out_len(c, i, T_in);
        f += 2.0 * (double)T_out * c->conv_dim[i] * C_in * c->conv_kernel[i];
        T_in = T_out, C_in = c->conv_dim[i];
    }
    double T = (double)T_in, H = c->dims.hidden, I = c->dims.inter;
    f += 2 * T * C_in * H;                                     /* feature projection */
    f += 2 * T * H * (H / c->pos_groups) * c->pos_kernel;      /* positional conv */
    *front = f;
    *layers = c->layers * (2 * T * (4 * H * H + 2 * H * I) + 4 * T * T * H);
}

#define WINDOW_S 60 /* m2u_mert_layer_means' windows */

int m2u_mert_layer_means(const m2u_mert *m, m2u_mert_ws *ws, const float *wav, long n, float *means) {
    long window = (long)WINDOW_S * m->cfg.sampling_rate;
    if (n <= 0) return m2u_fail("mert: empty clip");
    size_t LH = (size_t)(m->cfg.layers + 1) * m->cfg.dims.hidden;
    long wlen = n < window ? n : window;
    double *acc = calloc(LH, sizeof(double)), *one = calloc(LH, sizeof(double));
    float *buf = malloc((size_t)wlen * sizeof(float));
    m2u_mert_ws tmp = {0};
    if (!ws) ws = &tmp;
    int used = 0, rc = 0;
    if (!acc || !one || !buf) {
        rc = m2u_fail("mert: out of memory for a %ld-sample window", wlen);
        goto done;
    }
    for (long start = 0; start < n && rc == 0; start += window) {
        long len = n - start < window ? n - start : window;
        if (start > 0 && m2u_mert_n_frames(m, len) == 0) break; /* a tail shorter than one frame */
        m2u_mert_preprocess(m, wav + start, len, buf);
        rc = forward(m, ws, buf, len, NULL, one, NULL);
        if (rc == 0) {
            for (size_t i = 0; i < LH; i++) acc[i] += one[i];
            used++;
        }
    }
    if (rc == 0)
        for (size_t i = 0; i < LH; i++) means[i] = (float)(acc[i] / used);
done:
    free(acc);
    free(one);
    free(buf);
    m2u_mert_ws_free(&tmp);
    return rc;
}

