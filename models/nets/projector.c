#include "projector.h"

#include "m2u_error.h"
#include "rng.h"
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

m2u_projector_config m2u_projector_preset_musicgen(int dim) {
    m2u_projector_config c = {.dim = dim, .n_in = 8, .d_model = 512, .n_heads = 4, .n_enc = 4, .n_dec = 4,
                              .ffn = 2048, .n_out = 128, .out_dim = 768, .ln_eps = 1e-5f, .target_scale = 10.0f};
    snprintf(c.prefix, sizeof c.prefix, "output_projector.");
    return c;
}

m2u_projector_config m2u_projector_preset_audioldm2(int dim) {
    m2u_projector_config c = m2u_projector_preset_musicgen(dim);
    c.n_out = 1;
    c.out_dim = 128 * 1024 + 8 * 768;
    return c;
}

static int check_config(const m2u_projector_config *c) {
    if (memchr(c->prefix, '\0', sizeof c->prefix) == NULL) return m2u_fail("projector: prefix not terminated");
    if (c->dim <= 0 || c->n_in <= 0 || c->d_model <= 0 || c->n_heads <= 0 || c->ffn <= 0 || c->n_out <= 0 ||
        c->out_dim <= 0 || c->n_enc < 0 || c->n_dec < 0)
        return m2u_fail("projector: dim %d, n_in %d, d_model %d, n_heads %d, ffn %d, n_out %d, out_dim %d must be "
                        "positive, n_enc %d and n_dec %d non-negative",
                        c->dim, c->n_in, c->d_model, c->n_heads, c->ffn, c->n_out, c->out_dim, c->n_enc, c->n_dec);
    if (c->d_model % c->n_heads)
        return m2u_fail("projector: d_model %d is not a multiple of n_heads %d", c->d_model, c->n_heads);
    if (!(c->ln_eps > 0.0f)) return m2u_fail("projector: ln_eps must be positive");
    return 0;
}

size_t m2u_projector_size(const m2u_projector_config *c) {
    if (check_config(c)) return 0;
    size_t E = (size_t)c->d_model, F = (size_t)c->ffn;
    size_t attn = 3 * E * E + 3 * E + E * E + E, ffn = F * E + F + E * F + E, ln = 2 * E;
    return E * (size_t)c->dim + E + (size_t)c->n_enc * (attn + ffn + 2 * ln) + ln +
           (size_t)c->n_dec * (2 * attn + ffn + 3 * ln) + ln + (size_t)c->out_dim * E + (size_t)c->out_dim +
           (size_t)c->n_out * E;
}

/* ---- parameter table ------------------------------------------------------------------ */

static int add_attn(m2u_ptable *t, const char *pre, const char *base, m2u_proj_attn *a, int E) {
    char n[256];
    int rc = 0;
    snprintf(n, sizeof n, "%s.in_proj_weight", base);
    rc |= m2u_ptable_add(t, pre, n, 2, 3 * E, E, 1, &a->in_w, &a->din_w);
    snprintf(n, sizeof n, "%s.in_proj_bias", base);
    rc |= m2u_ptable_add(t, pre, n, 1, 3 * E, 0, 0, &a->in_b, &a->din_b);
    snprintf(n, sizeof n, "%s.out_proj.weight", base);
    rc |= m2u_ptable_add(t, pre, n, 2, E, E, 1, &a->out_w, &a->dout_w);
    snprintf(n, sizeof n, "%s.out_proj.bias", base);
    rc |= m2u_ptable_add(t, pre, n, 1, E, 0, 0, &a->out_b, &a->dout_b);
    return rc;
}

static int add_ln(m2u_ptable *t, const char *pre, const char *base, m2u_proj_ln *l, int E) {
    char n[256];
    int rc = 0;
    snprintf(n, sizeof n, "%s.weight", base);
    rc |= m2u_ptable_add(t, pre, n, 1, E, 0, 0, &l->w, &l->dw);
    snprintf(n, sizeof n, "%s.bias", base);
    rc |= m2u_ptable_add(t, pre, n, 1, E, 0, 0, &l->b, &l->db);
    return rc;
}

static int add_layer(m2u_ptable *t, const char *pre, const char *stack, int i, m2u_proj_layer *L, int E, int F) {
    char base[192], n[256];
    int rc = 0;
    snprintf(base, sizeof base, "tfm.%s.layers.%d", stack, i);
    snprintf(n, sizeof n, "%s.self_attn", base);
    rc |= add_attn(t, pre, n, &L->sa, E);
    if (L->is_dec) {
        snprintf(n, sizeof n, "%s.multihead_attn", base);
        rc |= add_attn(t, pre, n, &L->ca, E);
    }
    snprintf(n, sizeof n, "%s.linear1.weight", base);
    rc |= m2u_ptable_add(t, pre, n, 2, F, E, 1, &L->l1_w, &L->dl1_w);
    snprintf(n, sizeof n, "%s.linear1.bias", base);
    rc |= m2u_ptable_add(t, pre, n, 1, F, 0, 0, &L->l1_b, &L->dl1_b);
    snprintf(n, sizeof n, "%s.linear2.weight", base);
    rc |= m2u_ptable_add(t, pre, n, 2, E, F, 1, &L->l2_w, &L->dl2_w);
    snprintf(n, sizeof n, "%s.linear2.bias", base);
    rc |= m2u_ptable_add(t, pre, n, 1, E, 0, 0, &L->l2_b, &L->dl2_b);
    snprintf(n, sizeof n, "%s.norm1", base);
    rc |= add_ln(t, pre, n, &L->n1, E);
    snprintf(n, sizeof n, "%s.norm2", base);
    rc |= add_ln(t, pre, n, &L->n2, E);
    if (L->is_dec) {
        snprintf(n, sizeof n, "%s.norm3", base);
        rc |= add_ln(t, pre, n, &L->n3, E);
    }
    return rc;
}

int m2u_projector_init(m2u_projector *p, const m2u_projector_config *cfg, float *params, float *grads) {
    memset(p, 0, sizeof *p);
    if (check_config(cfg)) return -1;
    if (!params) return m2u_fail("projector: no parameter buffer");
    p->cfg = *cfg;
    int E = cfg->d_model, F = cfg->ffn;
    const char *pre = p->cfg.prefix;
    p->enc = calloc(cfg->n_enc ? (size_t)cfg->n_enc : 1, sizeof *p->enc);
    p->dec = calloc(cfg->n_dec ? (size_t)cfg->n_dec : 1, sizeof *p->dec);
    if (!p->enc || !p->dec) {
        m2u_projector_free(p);
        return m2u_fail("out of memory");
    }
    m2u_ptable t = {0};
    int rc = 0;
    rc |= m2u_ptable_add(&t, pre, "fc.weight", 2, E, cfg->dim, 1, &p->fc_w, &p->dfc_w);
    rc |= m2u_ptable_add(&t, pre, "fc.bias", 1, E, 0, 0, &p->fc_b, &p->dfc_b);
    for (int i = 0; i < cfg->n_enc && !rc; i++) rc |= add_layer(&t, pre, "encoder", i, &p->enc[i], E, F);
    if (!rc) rc |= add_ln(&t, pre, "tfm.encoder.norm", &p->enc_norm, E);
    for (int i = 0; i < cfg->n_dec && !rc; i++) {
        p->dec[i].is_dec = 1;
        rc |= add_layer(&t, pre, "decoder", i, &p->dec[i], E, F);
    }
    if (!rc) rc |= add_ln(&t, pre, "tfm.decoder.norm", &p->dec_norm, E);
    if (!rc) rc |= m2u_ptable_add(&t, pre, "model.weight", 2, cfg->out_dim, E, 1, &p->head_w, &p->dhead_w);
    if (!rc) rc |= m2u_ptable_add(&t, pre, "model.bias", 1, cfg->out_dim, 0, 0, &p->head_b, &p->dhead_b);
    if (!rc) rc |= m2u_ptable_add(&t, pre, "query_embs", 2, cfg->n_out, E, 1, &p->query, &p->dquery);
    if (rc) {
        m2u_ptable_discard(&t);
        m2u_projector_free(p);
        return -1;
    }
    p->n_floats = t.n_floats;
    if (m2u_ptable_finish(&t, params, grads, &p->params, &p->n_params)) {
        m2u_projector_free(p);
        return -1;
    }
    return 0;
}

void m2u_projector_free(m2u_projector *p) {
    if (!p) return;
    free(p->arena);
    free(p->scratch);
    free(p->enc);
    free(p->dec);
    m2u_params_free(p->params, p->n_params);
    memset(p, 0, sizeof *p);
}

static void fill_uniform(float *x, size_t n, float bound, m2u_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (2.0f * m2u_rng_uniform(r) - 1.0f) * bound;
}

static void fill_const(float *x, size_t n, float v) {
    for (size_t i = 0; i < n; i++) x[i] = v;
}

static void reset_attn(m2u_proj_attn *a, int E, m2u_rng *r) {
    fill_uniform(a->in_w, (size_t)3 * E * E, sqrtf(6.0f / (float)(4 * E)), r); /* xavier: fan_in E, fan_out 3E */
    fill_const(a->in_b, (size_t)3 * E, 0.0f);
    fill_uniform(a->out_w, (size_t)E * E, sqrtf(6.0f / (float)(2 * E)), r);
    fill_const(a->out_b, (size_t)E, 0.0f);
}

static void reset_ln(m2u_proj_ln *l, int E) {
    fill_const(l->w, (size_t)E, 1.0f);
    fill_const(l->b, (size_t)E, 0.0f);
}

static void reset_layer(m2u_proj_layer *L, int E, int F, m2u_rng *r) {
    reset_attn(&L->sa, E, r);
    if (L->is_dec) reset_attn(&L->ca, E, r);
    float xb = sqrtf(6.0f / (float)(E + F));
    fill_uniform(L->l1_w, (size_t)F * E, xb, r);
    fill_uniform(L->l1_b, (size_t)F, 1.0f / sqrtf((float)E), r);
    fill_uniform(L->l2_w, (size_t)E * F, xb, r);
    fill_uniform(L->l2_b, (size_t)E, 1.0f / sqrtf((float)F), r);
    reset_ln(&L->n1, E);
    reset_ln(&L->n2, E);
    if (L->is_dec) reset_ln(&L->n3, E);
}

void m2u_projector_reset_params(m2u_projector *p, uint64_t seed) {
    const m2u_projector_config *c = &p->cfg;
    int E = c->d_model, F = c->ffn;
    m2u_rng r;
    m2u_rng_seed(&r, seed);
    float bd = 1.0f / sqrtf((float)c->dim), be = 1.0f / sqrtf((float)E);
    fill_uniform(p->fc_w, (size_t)E * c->dim, bd, &r);
    fill_uniform(p->fc_b, (size_t)E, bd, &r);
    for (int i = 0; i < c->n_enc; i++) reset_layer(&p->enc[i], E, F, &r);
    reset_ln(&p->enc_norm, E);
    for (int i = 0; i < c->n_dec; i++) reset_layer(&p->dec[i], E, F, &r);
    reset_ln(&p->dec_norm, E);
    fill_uniform(p->head_w, (size_t)c->out_dim * E, be, &r);
    fill_uniform(p->head_b, (size_t)c->out_dim, be, &r);
    for (size_t i = 0; i < (size_t)c->n_out * E; i++) p->query[i] = m2u_rng_normal(&r);
}

/* ---- activations ---------------------------------------------------------------------- */

static float *take(float **cur, size_t n) {
    float *r = *cur;
    *cur += n;
    return r;
}

/* Lay out the activations of batch B from base (NULL: count only); returns the float count. */
static size_t layout(m2u_projector *p, int B, float *base) {
    const m2u_projector_config *c = &p->cfg;
    size_t E = (size_t)c->d_model, F = (size_t)c->ffn, H = (size_t)c->n_heads, S = (size_t)c->n_in,
           T = (size_t)c->n_out, N = (size_t)B * S, M = (size_t)B * T;
    size_t off = 0;
#define TAKE(field, n)                       \
    do {                                     \
        if (base) *(field) = base + off;     \
        off += (n);                          \
    } while (0)
    TAKE(&p->x, N * (size_t)c->dim);
    TAKE(&p->z, N * E);
    for (int l = 0; l < c->n_enc + c->n_dec; l++) {
        int dec = l >= c->n_enc;
        m2u_proj_layer *L = dec ? &p->dec[l - c->n_enc] : &p->enc[l];
        size_t R = dec ? M : N, Tq = dec ? T : S;
        TAKE(&L->qkv, R * 3 * E);
        TAKE(&L->p1, (size_t)B * H * Tq * Tq);
        TAKE(&L->att1, R * E);
        TAKE(&L->r1, R * E);
        TAKE(&L->m1, R);
        TAKE(&L->s1, R);
        TAKE(&L->h1, R * E);
        if (dec) {
            TAKE(&L->q2, R * E);
            TAKE(&L->kv2, N * 2 * E);
            TAKE(&L->p2, (size_t)B * H * T * S);
            TAKE(&L->att2, R * E);
            TAKE(&L->r2, R * E);
            TAKE(&L->m2, R);
            TAKE(&L->s2, R);
            TAKE(&L->h2, R * E);
        }
        TAKE(&L->f, R * F);
        TAKE(&L->rf, R * E);
        TAKE(&L->mf, R);
        TAKE(&L->sf, R);
        TAKE(&L->out, R * E);
    }
    TAKE(&p->mem, N * E);
    TAKE(&p->mem_m, N);
    TAKE(&p->mem_s, N);
    TAKE(&p->q0, M * E);
    TAKE(&p->y, M * E);
    TAKE(&p->y_m, M);
    TAKE(&p->y_s, M);
    TAKE(&p->out, M * (size_t)c->out_dim);
    TAKE(&p->dloss, M * (size_t)c->out_dim);
#undef TAKE
    return off;
}

/* Backward workspace, in floats. */
static size_t scratch_size(const m2u_projector_config *c, int B) {
    size_t E = (size_t)c->d_model, F = (size_t)c->ffn, N = (size_t)B * c->n_in, M = (size_t)B * c->n_out;
    size_t R = N > M ? N : M;
    /* dout_scaled, dstream_dec, dmem, dstream_enc, A, datt, dqkv, dffn, dq2, dkv */
    return M * (size_t)c->out_dim + M * E + N * E + N * E + R * E + R * E + R * 3 * E + R * F + M * E + N * 2 * E;
}

size_t m2u_projector_act_bytes(const m2u_projector *p, int B) {
    /* layout with no arena only adds up sizes: it reads p, writes nothing */
    return (layout((m2u_projector *)p, B, NULL) + scratch_size(&p->cfg, B)) * sizeof(float);
}

static int ensure_acts(m2u_projector *p, int B) {
    if (B <= p->cap_B) return 0;
    free(p->arena);
    free(p->scratch);
    p->arena = p->scratch = NULL;
    p->cap_B = 0;
    size_t n = layout(p, B, NULL);
    p->arena = malloc(n * sizeof(float));
    p->scratch = malloc(scratch_size(&p->cfg, B) * sizeof(float));
    if (!p->arena || !p->scratch) {
        free(p->arena);
        free(p->scratch);
        p->arena = p->scratch = NULL;
        return m2u_fail("projector: out of memory for a batch of %d", B);
    }
    p->cap_B = B;
    return 0;
}

/* ---- forward ----------------------------------------------------------------------------- */

static int layer_fwd(m2u_projector *p, m2u_proj_layer *L, const float *in, int B) {
    const m2u_projector_config *c = &p->cfg;
    int E = c->d_model, F = c->ffn, H = c->n_heads, hd = E / H, S = c->n_in;
    int Tq = L->is_dec ? c->n_out : S, R = B * Tq, N = B * S;
    size_t RE = (size_t)R * E;
    L->in = in;
    /* self attention, post-norm */
    m2u_linear_fwd(L->qkv, in, L->sa.in_w, L->sa.in_b, R, E, 3 * E);
    m2u_attn sa = m2u_attn_make(B, Tq, Tq, H, H, hd, 3 * E, 3 * E, 3 * E, 0, 0);
    if (m2u_attn_fwd(&sa, L->att1, L->p1, L->qkv, L->qkv + E, L->qkv + 2 * E)) return -1;
    m2u_linear_fwd(L->r1, L->att1, L->sa.out_w, L->sa.out_b, R, E, E);
    m2u_add_inplace(L->r1, in, RE);
    m2u_layernorm_fwd(L->h1, L->m1, L->s1, L->r1, L->n1.w, L->n1.b, R, E, c->ln_eps);
    const float *h = L->h1;
    const m2u_proj_ln *nf = &L->n2;
    if (L->is_dec) {
        /* cross attention: queries from h1, keys and values from the encoder's memory */
        m2u_linear_fwd(L->q2, L->h1, L->ca.in_w, L->ca.in_b, R, E, E);
        m2u_linear_fwd(L->kv2, p->mem, L->ca.in_w + (size_t)E * E, L->ca.in_b + E, N, E, 2 * E);
        m2u_attn ca = m2u_attn_make(B, Tq, S, H, H, hd, E, 2 * E, 2 * E, 0, 0);
        if (m2u_attn_fwd(&ca, L->att2, L->p2, L->q2, L->kv2, L->kv2 + E)) return -1;
        m2u_linear_fwd(L->r2, L->att2, L->ca.out_w, L->ca.out_b, R, E, E);
        m2u_add_inplace(L->r2, L->h1, RE);
        m2u_layernorm_fwd(L->h2, L->m2, L->s2, L->r2, L->n2.w, L->n2.b, R, E, c->ln_eps);
        h = L->h2;
        nf = &L->n3;
    }
    /* feed-forward */
    m2u_linear_fwd(L->f, h, L->l1_w, L->l1_b, R, E, F);
    m2u_relu_fwd(L->f, L->f, (size_t)R * F);
    m2u_linear_fwd(L->rf, L->f, L->l2_w, L->l2_b, R, F, E);
    m2u_add_inplace(L->rf, h, RE);
    m2u_layernorm_fwd(L->out, L->mf, L->sf, L->rf, nf->w, nf->b, R, E, c->ln_eps);
    return 0;
}

int m2u_projector_forward(m2u_projector *p, const float *x, int B, float *out) {
    if (!p->params) return m2u_fail("projector: not initialised");
    if (B <= 0) return m2u_fail("projector: batch %d", B);
    if (ensure_acts(p, B)) return -1;
    layout(p, B, p->arena);
    const m2u_projector_config *c = &p->cfg;
    int E = c->d_model, N = B * c->n_in, M = B * c->n_out;
    p->B = B;
    p->has_loss = 0;
    memcpy(p->x, x, (size_t)N * c->dim * sizeof(float));
    m2u_linear_fwd(p->z, p->x, p->fc_w, p->fc_b, N, c->dim, E);
    const float *h = p->z;
    for (int l = 0; l < c->n_enc; l++) {
        if (layer_fwd(p, &p->enc[l], h, B)) return -1;
        h = p->enc[l].out;
    }
    m2u_layernorm_fwd(p->mem, p->mem_m, p->mem_s, h, p->enc_norm.w, p->enc_norm.b, N, E, c->ln_eps);
    size_t qn = (size_t)c->n_out * E;
    for (int b = 0; b < B; b++) memcpy(p->q0 + (size_t)b * qn, p->query, qn * sizeof(float));
    h = p->q0;
    for (int l = 0; l < c->n_dec; l++) {
        if (layer_fwd(p, &p->dec[l], h, B)) return -1;
        h = p->dec[l].out;
    }
    m2u_layernorm_fwd(p->y, p->y_m, p->y_s, h, p->dec_norm.w, p->dec_norm.b, M, E, c->ln_eps);
    m2u_linear_fwd(p->out, p->y, p->head_w, p->head_b, M, E, c->out_dim);
    if (out) memcpy(out, p->out, (size_t)M * c->out_dim * sizeof(float));
    return 0;
}

int m2u_projector_loss(m2u_projector *p, const float *target, float *loss) {
    if (!p->params || p->B <= 0) return m2u_fail("projector: loss without a forward");
    size_t n = (size_t)p->B * p->cfg.n_out * p->cfg.out_dim;
    double l = m2u_mse_fwd(p->out, target, p->cfg.target_scale, n);
    memset(p->dloss, 0, n * sizeof(float));
    m2u_mse_bwd(p->dloss, p->out, target, p->cfg.target_scale, n, 1.0f);
    p->has_loss = 1;
    if (loss) *loss = (float)l;
    return 0;
}

/* ---- backward ---------------------------------------------------------------------------- */

typedef struct {
    float *A, *datt, *dqkv, *dffn, *dq2, *dkv, *dmem;
} bwd_ws;

/* G holds d out of a post-norm sublayer out = LN(h + sub(h)); leaves d (h + sub(h)) in A and
 * sets G = A (the residual's share of d h).  The caller adds the sublayer's share to G. */
static void ln_residual_bwd(float *G, float *A, const m2u_proj_ln *ln, const float *r, const float *mean,
                            const float *rstd, int R, int E) {
    m2u_layernorm_residual_bwd(G, A, ln->dw, ln->db, r, ln->w, mean, rstd, R, E);
}

static int layer_bwd(m2u_projector *p, m2u_proj_layer *L, float *G, const bwd_ws *w, int B) {
    const m2u_projector_config *c = &p->cfg;
    int E = c->d_model, F = c->ffn, H = c->n_heads, hd = E / H, S = c->n_in;
    int Tq = L->is_dec ? c->n_out : S, R = B * Tq, N = B * S;
    const m2u_proj_ln *nf = L->is_dec ? &L->n3 : &L->n2;
    const float *h = L->is_dec ? L->h2 : L->h1;
    /* feed-forward: out = LN(h + linear2(relu(linear1(h)))) */
    ln_residual_bwd(G, w->A, nf, L->rf, L->mf, L->sf, R, E);
    size_t RF = (size_t)R * F;
    memset(w->dffn, 0, RF * sizeof(float));
    m2u_linear_bwd(w->dffn, L->dl2_w, L->dl2_b, w->A, L->f, L->l2_w, R, F, E);
    m2u_relu_mask(w->dffn, L->f, RF);
    m2u_linear_bwd(G, L->dl1_w, L->dl1_b, w->dffn, h, L->l1_w, R, E, F);
    if (L->is_dec) {
        /* cross attention: h2 = LN(h1 + out_proj(attn(q(h1), k(mem), v(mem)))) */
        ln_residual_bwd(G, w->A, &L->n2, L->r2, L->m2, L->s2, R, E);
        memset(w->datt, 0, (size_t)R * E * sizeof(float));
        m2u_linear_bwd(w->datt, L->ca.dout_w, L->ca.dout_b, w->A, L->att2, L->ca.out_w, R, E, E);
        memset(w->dq2, 0, (size_t)R * E * sizeof(float));
        memset(w->dkv, 0, (size_t)N * 2 * E * sizeof(float));
        m2u_attn ca = m2u_attn_make(B, Tq, S, H, H, hd, E, 2 * E, 2 * E, 0, 0);
        if (m2u_attn_bwd(&ca, w->dq2, w->dkv, w->dkv + E, w->datt, L->p2, L->q2, L->kv2, L->kv2 + E)) return -1;
        m2u_linear_bwd(G, L->ca.din_w, L->ca.din_b, w->dq2, L->h1, L->ca.in_w, R, E, E);
        m2u_linear_bwd(w->dmem, L->ca.din_w + (size_t)E * E, L->ca.din_b + E, w->dkv, p->mem,
                       L->ca.in_w + (size_t)E * E, N, E, 2 * E);
    }
    /* self attention: h1 = LN(in + out_proj(attn(qkv(in)))) */
    ln_residual_bwd(G, w->A, &L->n1, L->r1, L->m1, L->s1, R, E);
    memset(w->datt, 0, (size_t)R * E * sizeof(float));
    m2u_linear_bwd(w->datt, L->sa.dout_w, L->sa.dout_b, w->A, L->att1, L->sa.out_w, R, E, E);
    memset(w->dqkv, 0, (size_t)R * 3 * E * sizeof(float));
    m2u_attn sa = m2u_attn_make(B, Tq, Tq, H, H, hd, 3 * E, 3 * E, 3 * E, 0, 0);
    if (m2u_attn_bwd(&sa, w->dqkv, w->dqkv + E, w->dqkv + 2 * E, w->datt, L->p1, L->qkv, L->qkv + E, L->qkv + 2 * E))
        return -1;
    m2u_linear_bwd(G, L->sa.din_w, L->sa.din_b, w->dqkv, L->in, L->sa.in_w, R, E, 3 * E);
    return 0;
}

int m2u_projector_backward(m2u_projector *p, const float *dout, float grad_scale, float *dx) {
    if (!p->params || p->B <= 0) return m2u_fail("projector: backward without a forward");
    if (!p->dfc_w) return m2u_fail("projector: no gradient buffer (initialised for inference)");
    if (!dout && !p->has_loss) return m2u_fail("projector: backward without an output gradient or a loss");
    const m2u_projector_config *c = &p->cfg;
    int B = p->B, E = c->d_model, N = B * c->n_in, M = B * c->n_out;
    size_t N_E = (size_t)N * E, M_E = (size_t)M * E, R = (size_t)(N > M ? N : M);
    size_t n_out = (size_t)M * c->out_dim;
    float *cur = p->scratch;
    float *dres = take(&cur, n_out), *Gd = take(&cur, M_E), *dmem = take(&cur, N_E), *Ge = take(&cur, N_E);
    bwd_ws w;
    w.A = take(&cur, R * E);
    w.datt = take(&cur, R * E);
    w.dqkv = take(&cur, R * 3 * E);
    w.dffn = take(&cur, R * c->ffn);
    w.dq2 = take(&cur, M_E);
    w.dkv = take(&cur, N_E * 2);
    w.dmem = dmem;

    const float *src = dout ? dout : p->dloss;
    m2u_scale(dres, src, grad_scale, n_out);
    /* head and the decoder's final norm */
    memset(w.A, 0, M_E * sizeof(float));
    m2u_linear_bwd(w.A, p->dhead_w, p->dhead_b, dres, p->y, p->head_w, M, E, c->out_dim);
    const float *dec_last = c->n_dec ? p->dec[c->n_dec - 1].out : p->q0;
    memset(Gd, 0, M_E * sizeof(float));
    m2u_layernorm_bwd(Gd, p->dec_norm.dw, p->dec_norm.db, w.A, dec_last, p->dec_norm.w, p->y_m, p->y_s, M, E);
    memset(dmem, 0, N_E * sizeof(float));
    for (int l = c->n_dec - 1; l >= 0; l--)
        if (layer_bwd(p, &p->dec[l], Gd, &w, B)) return -1;
    /* the decoder input is query_embs repeated over the batch */
    for (int b = 0; b < B; b++) m2u_add_inplace(p->dquery, Gd + (size_t)b * c->n_out * E, (size_t)c->n_out * E);
    /* encoder: final norm, layers, fc */
    const float *enc_last = c->n_enc ? p->enc[c->n_enc - 1].out : p->z;
    memset(Ge, 0, N_E * sizeof(float));
    m2u_layernorm_bwd(Ge, p->enc_norm.dw, p->enc_norm.db, dmem, enc_last, p->enc_norm.w, p->mem_m, p->mem_s, N, E);
    for (int l = c->n_enc - 1; l >= 0; l--)
        if (layer_bwd(p, &p->enc[l], Ge, &w, B)) return -1;
    m2u_linear_bwd(dx, p->dfc_w, p->dfc_b, Ge, p->x, p->fc_w, N, c->dim, E);
    return 0;
}
