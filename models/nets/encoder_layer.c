/* Shared pieces of the frozen encoders: see encoder_layer.h. */
#include "encoder_layer.h"

#include "fileio.h"
#include "m2u_error.h"
#include "ops_extra.h"
#include "tensor.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- activations ---------------------------------------------------------------------- */

int m2u_act_parse(const char *name, const char *origin, const char *key, m2u_act *out) {
    if (strcmp(name, "gelu") == 0 || strcmp(name, "gelu_python") == 0) *out = M2U_ACT_GELU;
    /* These three differ from each other only in fp32 rounding (transformers' activations.py). */
    else if (strcmp(name, "gelu_new") == 0 || strcmp(name, "gelu_pytorch_tanh") == 0 || strcmp(name, "gelu_fast") == 0)
        *out = M2U_ACT_GELU_TANH;
    else if (strcmp(name, "relu") == 0) *out = M2U_ACT_RELU;
    else
        return m2u_fail("%s: key '%s': activation '%s' is not supported (gelu, gelu_new, gelu_fast, "
                        "gelu_pytorch_tanh, relu)",
                        origin, key, name);
    return 0;
}

void m2u_act_apply(m2u_act act, float *x, size_t n) {
    switch (act) {
    case M2U_ACT_GELU: m2u_gelu_fwd(x, x, n); break;
    case M2U_ACT_GELU_TANH: m2u_gelu_tanh_fwd(x, x, n); break;
    case M2U_ACT_RELU: m2u_relu_fwd(x, x, n); break;
    }
}

/* ---- tensors ---------------------------------------------------------------------------- */

int m2u_enc_tensor(const m2u_safetensors *st, const char *prefix, const char *name, int ndim, const int64_t *shape,
                   float **out) {
    char full[512];
    *out = NULL;
    if (snprintf(full, sizeof full, "%s%s", prefix, name) >= (int)sizeof full)
        return m2u_fail("%s: tensor name '%s%s' is too long", m2u_st_path(st), prefix, name);
    const m2u_st_tensor *t = m2u_st_expect(st, full, ndim, shape);
    if (!t) return -1;
    float *buf = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    if (!buf) return m2u_fail("%s: out of memory for tensor '%s'", m2u_st_path(st), full);
    if (m2u_st_read_f32(t, buf, (size_t)t->numel) != 0) {
        free(buf);
        return m2u_fail_prefix("%s", m2u_st_path(st));
    }
    *out = buf;
    return 0;
}

/* ---- the transformer layer ------------------------------------------------------------------ */

static int load_linear(const m2u_safetensors *st, const char *prefix, const char *fmt, int index, int rows, int cols,
                       float *w_dst, float *b_dst, float **w_out, float **b_out) {
    char base[400], name[420];
    snprintf(base, sizeof base, fmt, index);
    int64_t ws[2] = {rows, cols}, bs[1] = {rows};
    float *w = NULL, *b = NULL;
    snprintf(name, sizeof name, "%s.weight", base);
    if (m2u_enc_tensor(st, prefix, name, 2, ws, &w) != 0) return -1;
    snprintf(name, sizeof name, "%s.bias", base);
    if (m2u_enc_tensor(st, prefix, name, 1, bs, &b) != 0) {
        free(w);
        return -1;
    }
    if (w_dst) { /* copy into a fused matrix */
        memcpy(w_dst, w, (size_t)rows * cols * sizeof(float));
        memcpy(b_dst, b, (size_t)rows * sizeof(float));
        free(w);
        free(b);
    } else {
        *w_out = w;
        *b_out = b;
    }
    return 0;
}

static int load_norm(const m2u_safetensors *st, const char *prefix, const char *fmt, int index, int C, float **w,
                     float **b) {
    char base[400], name[420];
    snprintf(base, sizeof base, fmt, index);
    int64_t s[1] = {C};
    snprintf(name, sizeof name, "%s.weight", base);
    if (m2u_enc_tensor(st, prefix, name, 1, s, w) != 0) return -1;
    snprintf(name, sizeof name, "%s.bias", base);
    return m2u_enc_tensor(st, prefix, name, 1, s, b);
}

int m2u_enc_layer_load(const m2u_safetensors *st, const char *prefix, const m2u_enc_names *nm, int index,
                       const m2u_enc_dims *d, m2u_enc_layer *L) {
    int H = d->hidden, n_inter = d->inter;
    memset(L, 0, sizeof *L);
    L->qkv_w = malloc((size_t)3 * H * H * sizeof(float));
    L->qkv_b = malloc((size_t)3 * H * sizeof(float));
    if (!L->qkv_w || !L->qkv_b) {
        m2u_enc_layer_free(L);
        return m2u_fail("%s: out of memory for layer %d", m2u_st_path(st), index);
    }
    const char *qkv[3] = {nm->q, nm->k, nm->v};
    for (int j = 0; j < 3; j++)
        if (load_linear(st, prefix, qkv[j], index, H, H, L->qkv_w + (size_t)j * H * H, L->qkv_b + (size_t)j * H, NULL,
                        NULL) != 0)
            goto fail;
    if (load_linear(st, prefix, nm->o, index, H, H, NULL, NULL, &L->o_w, &L->o_b) != 0 ||
        load_linear(st, prefix, nm->fc1, index, n_inter, H, NULL, NULL, &L->fc1_w, &L->fc1_b) != 0 ||
        load_linear(st, prefix, nm->fc2, index, H, n_inter, NULL, NULL, &L->fc2_w, &L->fc2_b) != 0 ||
        load_norm(st, prefix, nm->ln1, index, H, &L->ln1_w, &L->ln1_b) != 0 ||
        load_norm(st, prefix, nm->ln2, index, H, &L->ln2_w, &L->ln2_b) != 0)
        goto fail;
    if (m2u_enc_layer_pack(L, d) != 0) {
        m2u_enc_layer_free(L);
        return m2u_fail("%s: out of memory for layer %d", m2u_st_path(st), index);
    }
    return 0;
fail:
    m2u_enc_layer_free(L);
    return -1;
}

int m2u_enc_layer_pack(m2u_enc_layer *L, const m2u_enc_dims *d) {
    int H = d->hidden, I = d->inter;
    L->qkv_p = m2u_linear_pack_new(L->qkv_w, H, 3 * H);
    L->o_p = m2u_linear_pack_new(L->o_w, H, H);
    L->fc1_p = m2u_linear_pack_new(L->fc1_w, H, I);
    L->fc2_p = m2u_linear_pack_new(L->fc2_w, I, H);
    return L->qkv_p && L->o_p && L->fc1_p && L->fc2_p ? 0 : -1;
}

void m2u_enc_linear(m2u_linear_pack *p, float *y, const float *x, const float *w, const float *b, int N, int in,
                    int out) {
    if (p)
        m2u_linear_fwd_packed(p, y, x, b, N);
    else
        m2u_linear_fwd(y, x, w, b, N, in, out);
}

void m2u_enc_layer_free(m2u_enc_layer *L) {
    m2u_linear_pack *packs[] = {L->qkv_p, L->o_p, L->fc1_p, L->fc2_p};
    for (size_t i = 0; i < sizeof packs / sizeof packs[0]; i++) m2u_linear_pack_free(packs[i]);
    L->qkv_p = L->o_p = L->fc1_p = L->fc2_p = NULL;
    float **p[] = {&L->qkv_w, &L->qkv_b, &L->o_w,   &L->o_b,   &L->ln1_w, &L->ln1_b,
                   &L->ln2_w, &L->ln2_b, &L->fc1_w, &L->fc1_b, &L->fc2_w, &L->fc2_b};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) {
        free(*p[i]);
        *p[i] = NULL;
    }
}

size_t m2u_enc_layer_scratch(const m2u_enc_dims *d, int T) {
    return (size_t)T * (5 * (size_t)d->hidden + (size_t)d->inter) + 2 * (size_t)T;
}

/* Attention of each sequence over its own rows: qkv [T][3H] -> att [T][H]. */
static int attend_segments(const m2u_enc_dims *d, const float *qkv, float *att, int nseg, const int *lens) {
    int H = d->hidden;
    size_t row = 0;
    for (int i = 0; i < nseg; row += (size_t)lens[i++]) {
        if (lens[i] <= 0) continue;
        m2u_attn at = m2u_attn_make(1, lens[i], lens[i], d->heads, d->heads, H / d->heads, 3 * H, 3 * H, 3 * H, 0, 0);
        const float *q = qkv + row * 3 * H;
        if (m2u_attn_fwd(&at, att + row * H, NULL, q, q + H, q + 2 * H) != 0) return -1;
    }
    return 0;
}

int m2u_enc_layer_fwd(const m2u_enc_dims *d, const m2u_enc_layer *L, float *x, int T, float *scratch) {
    return m2u_enc_layer_fwd_seqs(d, L, x, 1, &T, scratch);
}

/* The layer after its attention, on N rows: x [N][H] (the layer's input rows) becomes its output;
 * att [N][H] is the attention's output; buf [N][H], ffn [N][inter], mean and rstd [N] scratch. */
static void after_attention(const m2u_enc_dims *d, const m2u_enc_layer *L, float *x, const float *att, int N,
                            float *buf, float *ffn, float *mean, float *rstd) {
    int H = d->hidden, I = d->inter;
    size_t NH = (size_t)N * H;
    m2u_enc_linear(L->o_p, buf, att, L->o_w, L->o_b, N, H, H);
    if (d->prenorm) {
        m2u_add_inplace(x, buf, NH);
        m2u_layernorm_fwd(buf, mean, rstd, x, L->ln2_w, L->ln2_b, N, H, d->eps);
        m2u_enc_linear(L->fc1_p, ffn, buf, L->fc1_w, L->fc1_b, N, H, I);
        m2u_act_apply(d->act, ffn, (size_t)N * I);
        m2u_enc_linear(L->fc2_p, buf, ffn, L->fc2_w, L->fc2_b, N, I, H);
        m2u_add_inplace(x, buf, NH);
    } else {
        m2u_add_inplace(buf, x, NH);
        m2u_layernorm_fwd(x, mean, rstd, buf, L->ln1_w, L->ln1_b, N, H, d->eps);
        m2u_enc_linear(L->fc1_p, ffn, x, L->fc1_w, L->fc1_b, N, H, I);
        m2u_act_apply(d->act, ffn, (size_t)N * I);
        m2u_enc_linear(L->fc2_p, buf, ffn, L->fc2_w, L->fc2_b, N, I, H);
        m2u_add_inplace(buf, x, NH);
        m2u_layernorm_fwd(x, mean, rstd, buf, L->ln2_w, L->ln2_b, N, H, d->eps);
    }
}

int m2u_enc_layer_fwd_seqs(const m2u_enc_dims *d, const m2u_enc_layer *L, float *x, int nseg, const int *lens,
                           float *scratch) {
    int H = d->hidden, n_inter = d->inter, T = 0;
    for (int i = 0; i < nseg; i++) T += lens[i] > 0 ? lens[i] : 0;
    size_t TH = (size_t)T * H;
    float *tmp = scratch, *qkv = tmp + TH, *att = qkv + 3 * TH, *ffn = att + TH, *mean = ffn + (size_t)T * n_inter,
          *rstd = mean + T;
    if (d->prenorm) m2u_layernorm_fwd(tmp, mean, rstd, x, L->ln1_w, L->ln1_b, T, H, d->eps);
    m2u_enc_linear(L->qkv_p, qkv, d->prenorm ? tmp : x, L->qkv_w, L->qkv_b, T, H, 3 * H);
    if (attend_segments(d, qkv, att, nseg, lens) != 0) return -1;
    after_attention(d, L, x, att, T, tmp, ffn, mean, rstd);
    return 0;
}

int m2u_enc_layer_fwd_rows(const m2u_enc_dims *d, const m2u_enc_layer *L, float *x, int T, int n_out,
                           float *scratch) {
    if (n_out >= T) return m2u_enc_layer_fwd(d, L, x, T, scratch);
    if (n_out <= 0) return 0;
    int H = d->hidden, n_inter = d->inter, hd = H / d->heads, R = n_out;
    size_t TH = (size_t)T * H, RH = (size_t)R * H;
    /* keys and values of every row [T][2H] (the k and v rows of the fused weight), queries and
     * everything after them for the first R rows only */
    float *tmp = scratch, *kv = tmp + TH, *q = kv + 2 * TH, *att = q + RH, *ffn = att + RH,
          *mean = ffn + (size_t)R * n_inter, *rstd = mean + T, *res = rstd + T;
    m2u_attn at = m2u_attn_make(1, R, T, d->heads, d->heads, hd, H, 2 * H, 2 * H, 0, 0);
    if (d->prenorm) m2u_layernorm_fwd(tmp, mean, rstd, x, L->ln1_w, L->ln1_b, T, H, d->eps);
    const float *src = d->prenorm ? tmp : x;
    m2u_linear_fwd(kv, src, L->qkv_w + (size_t)H * H, L->qkv_b ? L->qkv_b + H : NULL, T, H, 2 * H);
    m2u_linear_fwd(q, src, L->qkv_w, L->qkv_b, R, H, H);
    if (m2u_attn_fwd(&at, att, NULL, q, kv, kv + H) != 0) return -1;
    after_attention(d, L, x, att, R, res, ffn, mean, rstd);
    return 0;
}

int m2u_enc_layernorm(float *out, const float *x, const float *w, const float *b, int N, int C, float eps) {
    float *ms = malloc(2 * (size_t)(N > 0 ? N : 1) * sizeof(float));
    if (!ms) return m2u_fail("layernorm: out of memory for %d rows", N);
    /* each row is fully read (mean, variance) before it is written, so out may alias x */
    m2u_layernorm_fwd(out, ms, ms + N, x, w, b, N, C, eps);
    free(ms);
    return 0;
}
