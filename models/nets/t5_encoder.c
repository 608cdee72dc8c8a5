/* T5 encoder forward (see t5_encoder.h). */
#include "t5_encoder.h"

#include "fileio.h"
#include "m2u_error.h"
#include "ops.h"
#include "safetensors.h"
#include "tensor.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================== config.json */

static int cfg_int(const cJSON *root, const char *origin, const char *key, int def, int min, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < INT_MIN ||
        v->valuedouble > INT_MAX)
        return m2u_fail("%s: key '%s' must be an integer", origin, key);
    *out = (int)v->valuedouble;
    if (*out < min) return m2u_fail("%s: key '%s' must be at least %d, got %d", origin, key, min, *out);
    return 0;
}

static int parse_t5_config(const cJSON *root, const char *origin, m2u_t5_config *c) {
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (mt && !cJSON_IsNull(mt)) {
        if (!cJSON_IsString(mt)) return m2u_fail("%s: key 'model_type' must be a string", origin);
        if (strcmp(mt->valuestring, "t5") && strcmp(mt->valuestring, "mt5"))
            return m2u_fail("%s: model_type '%s' is not a T5 encoder (only t5, mt5)", origin, mt->valuestring);
    }
    /* defaults of transformers' T5Config */
    if (cfg_int(root, origin, "vocab_size", 32128, 1, &c->vocab_size) ||
        cfg_int(root, origin, "d_model", 512, 1, &c->d_model) || cfg_int(root, origin, "d_kv", 64, 1, &c->d_kv) ||
        cfg_int(root, origin, "d_ff", 2048, 1, &c->d_ff) || cfg_int(root, origin, "num_layers", 6, 1, &c->num_layers) ||
        cfg_int(root, origin, "num_heads", 8, 1, &c->num_heads) ||
        cfg_int(root, origin, "relative_attention_num_buckets", 32, 4, &c->num_buckets) ||
        cfg_int(root, origin, "relative_attention_max_distance", 128, 1, &c->max_distance) ||
        cfg_int(root, origin, "pad_token_id", 0, 0, &c->pad_token_id))
        return -1;
    if (c->max_distance <= c->num_buckets / 4)
        return m2u_fail("%s: relative_attention_max_distance %d must exceed num_buckets/4 = %d (the bucket "
                        "logarithm divides by log(max_distance / (num_buckets/4)))",
                        origin, c->max_distance, c->num_buckets / 4);
    if ((long)c->d_kv * c->num_heads > INT_MAX / 4) return m2u_fail("%s: d_kv * num_heads is too large", origin);
    c->eps = 1e-6f;
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_epsilon");
    if (eps && !cJSON_IsNull(eps)) {
        if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0) || !isfinite(eps->valuedouble))
            return m2u_fail("%s: key 'layer_norm_epsilon' must be a positive number", origin);
        c->eps = (float)eps->valuedouble;
    }
    const char *ffp = "relu";
    const cJSON *fj = cJSON_GetObjectItemCaseSensitive(root, "feed_forward_proj");
    if (fj && !cJSON_IsNull(fj)) {
        if (!cJSON_IsString(fj)) return m2u_fail("%s: key 'feed_forward_proj' must be a string", origin);
        ffp = fj->valuestring;
    }
    /* T5Config: "ACT" or "gated-ACT"; "gated-gelu" is gelu_new */
    const char *act = ffp;
    c->gated = 0;
    if (!strncmp(ffp, "gated-", 6)) {
        c->gated = 1;
        act = ffp + 6;
    }
    if (strchr(act, '-'))
        return m2u_fail("%s: feed_forward_proj '%s' is not of the form ACT or gated-ACT", origin, ffp);
    if (!strcmp(act, "relu")) c->act = M2U_T5_ACT_RELU;
    else if (!strcmp(act, "gelu")) c->act = c->gated ? M2U_T5_ACT_GELU_NEW : M2U_T5_ACT_GELU;
    else if (!strcmp(act, "gelu_new")) c->act = M2U_T5_ACT_GELU_NEW;
    else if (!strcmp(act, "silu") || !strcmp(act, "swish")) c->act = M2U_T5_ACT_SILU;
    else
        return m2u_fail("%s: feed_forward_proj '%s': activation '%s' is not supported (relu, gelu, gelu_new, silu)",
                        origin, ffp, act);
    return 0;
}

int m2u_t5_config_load(const char *path, m2u_t5_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    char *data;
    size_t len;
    if (m2u_read_file(path, &data, &len)) return -1;
    cJSON *root = cJSON_ParseWithLength(data, len);
    free(data);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return m2u_fail("%s: not a JSON object", path);
    }
    const cJSON *te = cJSON_GetObjectItemCaseSensitive(root, "text_encoder"); /* MusicGen composite config */
    int rc;
    if (te) {
        char origin[1200];
        snprintf(origin, sizeof origin, "%s (text_encoder)", path);
        rc = cJSON_IsObject(te) ? parse_t5_config(te, origin, cfg) : m2u_fail("%s: 'text_encoder' must be an object", path);
    } else {
        rc = parse_t5_config(root, path, cfg);
    }
    cJSON_Delete(root);
    return rc;
}

/* ======================================================================== weights */

typedef struct {
    float *ln0, *ln1; /* [d_model] */
    m2u_mat q, k, v, o, wi, wi1, wo;
} t5_layer;

struct m2u_t5_encoder {
    m2u_t5_config cfg;
    m2u_safetensors *st;
    m2u_mat embed;
    float *rel_bias; /* [num_buckets, heads] */
    float *final_ln;
    t5_layer *layers;
};

const m2u_t5_config *m2u_t5_encoder_config(const m2u_t5_encoder *enc) { return enc ? &enc->cfg : NULL; }

void m2u_t5_encoder_free(m2u_t5_encoder *enc) {
    if (!enc) return;
    if (enc->layers)
        for (int l = 0; l < enc->cfg.num_layers; l++) {
            free(enc->layers[l].ln0);
            free(enc->layers[l].ln1);
        }
    free(enc->layers);
    free(enc->rel_bias);
    free(enc->final_ln);
    m2u_st_close(enc->st);
    free(enc);
}

static int get_mat(const m2u_t5_encoder *e, const char *prefix, const char *name, int rows, int cols, m2u_mat *m) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    int64_t shape[2] = {rows, cols};
    const m2u_st_tensor *t = m2u_st_expect(e->st, full, 2, shape);
    if (!t) return -1;
    if (t->dtype != M2U_F32 && t->dtype != M2U_F16 && t->dtype != M2U_BF16)
        return m2u_fail("%s: tensor %s: dtype must be F32, F16 or BF16", m2u_st_path(e->st), full);
    *m = (m2u_mat){.dtype = t->dtype, .data = t->data, .rows = rows, .cols = cols};
    return 0;
}

static float *get_vec(const m2u_t5_encoder *e, const char *prefix, const char *name, int ndim, int64_t d0, int64_t d1) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    int64_t shape[2] = {d0, d1};
    const m2u_st_tensor *t = m2u_st_expect(e->st, full, ndim, shape);
    if (!t) return NULL;
    float *v = malloc((size_t)t->numel * sizeof *v);
    if (!v) {
        m2u_fail("out of memory");
        return NULL;
    }
    if (m2u_st_read_f32(t, v, (size_t)t->numel)) {
        free(v);
        return NULL;
    }
    return v;
}

/* The prefix before "encoder.block.0.layer.0.SelfAttention.q.weight" (unique), or an error. */
static int detect_prefix(const m2u_safetensors *st, char *out, size_t cap) {
    static const char tail[] = "encoder.block.0.layer.0.SelfAttention.q.weight";
    size_t tl = strlen(tail);
    int found = 0;
    for (int i = 0; i < m2u_st_count(st); i++) {
        const char *nm = m2u_st_at(st, i)->name;
        size_t n = strlen(nm);
        if (n < tl || strcmp(nm + n - tl, tail)) continue;
        if (n - tl > 0 && nm[n - tl - 1] != '.') continue; /* e.g. "text_encoder.encoder..." vs "decoder..." */
        if (n - tl + 1 > cap) continue;
        if (found++) return m2u_fail("%s: several T5 encoders (e.g. '%s' and '%s...'); pass the prefix",
                                     m2u_st_path(st), out, nm);
        memcpy(out, nm, n - tl);
        out[n - tl] = '\0';
    }
    if (!found) return m2u_fail("%s: no T5 encoder tensors (no '*%s')", m2u_st_path(st), tail);
    return 0;
}

int m2u_t5_encoder_load(const char *dir, const char *prefix, m2u_t5_encoder **out) {
    *out = NULL;
    m2u_t5_encoder *e = calloc(1, sizeof *e);
    if (!e) return m2u_fail("out of memory");
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (m2u_t5_config_load(path, &e->cfg) || m2u_st_open(dir, &e->st)) {
        m2u_t5_encoder_free(e);
        return -1;
    }
    char pre[256];
    if (prefix) {
        snprintf(pre, sizeof pre, "%s", prefix);
    } else if (detect_prefix(e->st, pre, sizeof pre)) {
        m2u_t5_encoder_free(e);
        return -1;
    }
    const m2u_t5_config *c = &e->cfg;
    int D = c->d_model, inner = c->d_kv * c->num_heads, F = c->d_ff;
    char nm[512];
    int rc = 0;
    snprintf(nm, sizeof nm, "%sshared.weight", pre);
    rc = get_mat(e, pre, m2u_st_find(e->st, nm) ? "shared.weight" : "encoder.embed_tokens.weight", c->vocab_size, D,
                 &e->embed);
    if (rc == 0) {
        e->rel_bias = get_vec(e, pre, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", 2,
                              c->num_buckets, c->num_heads);
        e->final_ln = get_vec(e, pre, "encoder.final_layer_norm.weight", 1, D, 0);
        e->layers = calloc((size_t)c->num_layers, sizeof *e->layers);
        if (!e->rel_bias || !e->final_ln || !e->layers) rc = -1;
    }
    for (int l = 0; l < c->num_layers && rc == 0; l++) {
        t5_layer *L = &e->layers[l];
        char b[128];
#define NAME(s) (snprintf(b, sizeof b, "encoder.block.%d.%s", l, s), b)
        if (!(L->ln0 = get_vec(e, pre, NAME("layer.0.layer_norm.weight"), 1, D, 0)) ||
            !(L->ln1 = get_vec(e, pre, NAME("layer.1.layer_norm.weight"), 1, D, 0)) ||
            get_mat(e, pre, NAME("layer.0.SelfAttention.q.weight"), inner, D, &L->q) ||
            get_mat(e, pre, NAME("layer.0.SelfAttention.k.weight"), inner, D, &L->k) ||
            get_mat(e, pre, NAME("layer.0.SelfAttention.v.weight"), inner, D, &L->v) ||
            get_mat(e, pre, NAME("layer.0.SelfAttention.o.weight"), D, inner, &L->o) ||
            get_mat(e, pre, NAME("layer.1.DenseReluDense.wo.weight"), D, F, &L->wo))
            rc = -1;
        else if (c->gated)
            rc = get_mat(e, pre, NAME("layer.1.DenseReluDense.wi_0.weight"), F, D, &L->wi) ||
                         get_mat(e, pre, NAME("layer.1.DenseReluDense.wi_1.weight"), F, D, &L->wi1)
                     ? -1
                     : 0;
        else
            rc = get_mat(e, pre, NAME("layer.1.DenseReluDense.wi.weight"), F, D, &L->wi);
#undef NAME
    }
    if (rc == 0) { /* a deeper stack than num_layers says means the config does not fit the weights */
        snprintf(nm, sizeof nm, "%sencoder.block.%d.layer.0.SelfAttention.q.weight", pre, c->num_layers);
        if (m2u_st_find(e->st, nm))
            rc = m2u_fail("%s: has tensor '%s' but config.json says num_layers %d", m2u_st_path(e->st), nm,
                          c->num_layers);
    }
    if (rc) {
        m2u_t5_encoder_free(e);
        return -1;
    }
    *out = e;
    return 0;
}

/* ======================================================================== forward */

int m2u_t5_relative_bucket(int rel, int num_buckets, int max_distance) {
    int nb = num_buckets / 2;
    int bucket = rel > 0 ? nb : 0;
    int n = rel < 0 ? -rel : rel;
    int max_exact = nb / 2;
    if (n < max_exact) return bucket + n;
    /* float32 throughout, like torch: log(n / max_exact) / log(max_distance / max_exact) * (nb - max_exact) */
    float v = logf((float)n / (float)max_exact);
    v = v / (float)log((double)max_distance / (double)max_exact);
    v = v * (float)(nb - max_exact);
    long large = (long)max_exact + (long)v;
    if (large > nb - 1) large = nb - 1;
    return bucket + (int)large;
}

/* T5's dense_act_fn as the kernels name it */
static m2u_kact kernel_act(m2u_t5_act a) {
    switch (a) {
    case M2U_T5_ACT_RELU: return M2U_KACT_RELU;
    case M2U_T5_ACT_GELU: return M2U_KACT_GELU;
    case M2U_T5_ACT_GELU_NEW: return M2U_KACT_GELU_TANH;
    default: return M2U_KACT_SILU;
    }
}

/* One sequence: ids/mask [T], out [T, d_model]. */
static int encode_one(const m2u_t5_encoder *e, const int32_t *ids, const int32_t *mask, int T, float *out) {
    const m2u_t5_config *c = &e->cfg;
    int D = c->d_model, H = c->num_heads, dk = c->d_kv, inner = H * dk, F = c->d_ff;
    size_t TD = (size_t)T * D, TI = (size_t)T * inner, TF = (size_t)T * F;
    float *h = malloc(TD * sizeof *h), *x = malloc(TD * sizeof *x);
    float *q = malloc(TI * sizeof *q), *k = malloc(TI * sizeof *k), *v = malloc(TI * sizeof *v);
    float *att = malloc(TI * sizeof *att);
    float *bias = malloc((size_t)H * T * T * sizeof *bias);
    float *f0 = malloc(TF * sizeof *f0), *f1 = c->gated ? malloc(TF * sizeof *f1) : NULL;
    int rc = 0;
    if (!h || !x || !q || !k || !v || !att || !bias || !f0 || (c->gated && !f1)) {
        rc = m2u_fail("out of memory (T5 encoder over %d tokens)", T);
        goto done;
    }
    for (int t = 0; t < T; t++) {
        if (ids[t] < 0 || ids[t] >= c->vocab_size) {
            rc = m2u_fail("T5 encoder: token id %d outside the vocabulary (%d)", ids[t], c->vocab_size);
            goto done;
        }
        m2u_mat_row(&e->embed, ids[t], h + (size_t)t * D);
    }
    /* position bias + mask, [H][T][T]: the mask (finfo.min) is added to the bias first, as
     * transformers does, rather than given to the kernel as a key mask: a fully padded
     * sequence then attends uniformly (as in transformers) instead of to nothing. */
    for (int qi = 0; qi < T; qi++)
        for (int ki = 0; ki < T; ki++) {
            int bk = m2u_t5_relative_bucket(ki - qi, c->num_buckets, c->max_distance);
            float m = (mask && !mask[ki]) ? -FLT_MAX : -0.0f;
            for (int hh = 0; hh < H; hh++) bias[((size_t)hh * T + qi) * T + ki] = e->rel_bias[bk * H + hh] + m;
        }
    /* T5 does not scale q.k (the scale is folded into its initialisation) */
    m2u_attn at = m2u_attn_make(1, T, T, H, H, dk, inner, inner, inner, 0, 0);
    at.scale = 1.0f;
    at.bias = bias;
    at.bias_heads = H;
    for (int l = 0; l < c->num_layers; l++) {
        const t5_layer *L = &e->layers[l];
        m2u_rmsnorm_dsum_fwd(x, h, L->ln0, T, D, c->eps);
        m2u_matmul_wt(q, inner, x, T, &L->q, 0, inner, 0.0f);
        m2u_matmul_wt(k, inner, x, T, &L->k, 0, inner, 0.0f);
        m2u_matmul_wt(v, inner, x, T, &L->v, 0, inner, 0.0f);
        if (m2u_attn_fwd(&at, att, NULL, q, k, v)) {
            rc = -1;
            goto done;
        }
        m2u_matmul_wt(x, D, att, T, &L->o, 0, D, 0.0f);
        m2u_add_inplace(h, x, TD);
        m2u_rmsnorm_dsum_fwd(x, h, L->ln1, T, D, c->eps);
        m2u_matmul_wt(f0, F, x, T, &L->wi, 0, F, 0.0f);
        if (c->gated) m2u_matmul_wt(f1, F, x, T, &L->wi1, 0, F, 0.0f);
        m2u_act_gated_fwd(f0, c->gated ? f1 : NULL, TF, kernel_act(c->act));
        m2u_matmul_wt(x, D, f0, T, &L->wo, 0, D, 0.0f);
        m2u_add_inplace(h, x, TD);
    }
    m2u_rmsnorm_dsum_fwd(out, h, e->final_ln, T, D, c->eps);
done:
    free(h);
    free(x);
    free(q);
    free(k);
    free(v);
    free(att);
    free(bias);
    free(f0);
    free(f1);
    return rc;
}

int m2u_t5_encode(const m2u_t5_encoder *enc, const int32_t *ids, const int32_t *mask, int B, int T, float *out) {
    if (!enc || !ids || !out || B < 0 || T < 0) return m2u_fail("m2u_t5_encode: bad arguments");
    for (int b = 0; b < B; b++)
        if (T > 0 && encode_one(enc, ids + (size_t)b * T, mask ? mask + (size_t)b * T : NULL, T,
                                out + (size_t)b * T * enc->cfg.d_model))
            return -1;
    return 0;
}

int m2u_t5_caption_target(const m2u_t5_encoder *enc, const m2u_unigram *tok, const char *text, size_t len,
                          int max_length, float *out, int32_t *ids_out, int32_t *mask_out, int *n_tokens) {
    if (!enc || !tok || !out || max_length <= 0) return m2u_fail("m2u_t5_caption_target: bad arguments");
    int32_t *tids;
    size_t n;
    if (m2u_unigram_encode_truncated(tok, text, len, 1, (size_t)max_length, &tids, &n)) return -1;
    int pad = m2u_unigram_pad_id(tok);
    if (pad < 0) pad = enc->cfg.pad_token_id;
    int32_t *ids = malloc((size_t)max_length * sizeof *ids), *mask = malloc((size_t)max_length * sizeof *mask);
    int rc = 0;
    if (!ids || !mask) {
        rc = m2u_fail("out of memory");
    } else {
        for (int t = 0; t < max_length; t++) {
            ids[t] = (size_t)t < n ? tids[t] : pad;
            mask[t] = (size_t)t < n;
        }
        rc = m2u_t5_encode(enc, ids, mask, 1, max_length, out);
        if (rc == 0 && ids_out) memcpy(ids_out, ids, (size_t)max_length * sizeof *ids);
        if (rc == 0 && mask_out) memcpy(mask_out, mask, (size_t)max_length * sizeof *mask);
        if (rc == 0 && n_tokens) *n_tokens = (int)n;
    }
    free(tids);
    free(ids);
    free(mask);
    return rc;
}
