#include "mm_adapter.h"

#include "m2u_error.h"
#include "rng.h"
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

m2u_adapter_config m2u_adapter_preset(m2u_modality modality, int dim) {
    m2u_adapter_config c = {.dim = dim, .hidden = dim, .n_blocks = 3, .norm_eps = 1e-6f, .l2_eps = 1e-12f};
    switch (modality) {
    case M2U_MODALITY_MUSIC:
        snprintf(c.prefix, sizeof c.prefix, "mu_mert_");
        c.n_tokens = 25;
        c.feat_dim = 1024;
        break;
    case M2U_MODALITY_IMAGE:
        snprintf(c.prefix, sizeof c.prefix, "iu_vit_");
        c.n_tokens = 197;
        c.feat_dim = 768;
        break;
    case M2U_MODALITY_VIDEO:
        snprintf(c.prefix, sizeof c.prefix, "iu_vivit_");
        c.n_tokens = 3137;
        c.feat_dim = 768;
        break;
    }
    return c;
}

static int check_config(const m2u_adapter_config *c) {
    if (c->n_tokens <= 0 || c->feat_dim <= 0 || c->dim <= 0 || c->hidden < 0)
        return m2u_fail("adapter %s: n_tokens %d, feat_dim %d, dim %d, hidden %d must be positive", c->prefix,
                        c->n_tokens, c->feat_dim, c->dim, c->hidden);
    if (c->n_blocks < 0 || c->n_blocks > M2U_ADAPTER_MAX_BLOCKS)
        return m2u_fail("adapter %s: n_blocks %d outside 0..%d", c->prefix, c->n_blocks, M2U_ADAPTER_MAX_BLOCKS);
    if (!(c->norm_eps > 0.0f) || !(c->l2_eps > 0.0f))
        return m2u_fail("adapter %s: norm_eps and l2_eps must be positive", c->prefix);
    if (memchr(c->prefix, '\0', sizeof c->prefix) == NULL) return m2u_fail("adapter: prefix not terminated");
    return 0;
}

static int hidden_of(const m2u_adapter_config *c) { return c->hidden > 0 ? c->hidden : c->dim; }

size_t m2u_adapter_size(const m2u_adapter_config *cfg) {
    if (check_config(cfg)) return 0;
    size_t D = (size_t)cfg->dim, Hd = (size_t)hidden_of(cfg);
    return (size_t)cfg->n_tokens + 1 + D * (size_t)cfg->feat_dim + D + (size_t)cfg->n_blocks * (D + 3 * D * Hd);
}

int m2u_adapter_init(m2u_adapter *a, const m2u_adapter_config *cfg, float *params, float *grads) {
    memset(a, 0, sizeof *a);
    if (check_config(cfg)) return -1;
    if (!params) return m2u_fail("adapter %s: no parameter buffer", cfg->prefix);
    a->cfg = *cfg;
    a->cfg.hidden = hidden_of(cfg);
    const char *p = a->cfg.prefix;
    int D = a->cfg.dim, Hd = a->cfg.hidden;
    m2u_ptable t = {0};
    int rc = 0;
    rc |= m2u_ptable_add(&t, p, "agg.weight", 2, 1, cfg->n_tokens, 1, &a->agg_w, &a->dagg_w);
    rc |= m2u_ptable_add(&t, p, "agg.bias", 1, 1, 0, 0, &a->agg_b, &a->dagg_b);
    rc |= m2u_ptable_add(&t, p, "proj.weight", 2, D, cfg->feat_dim, 1, &a->proj_w, &a->dproj_w);
    rc |= m2u_ptable_add(&t, p, "proj.bias", 1, D, 0, 0, &a->proj_b, &a->dproj_b);
    for (int k = 0; k < a->cfg.n_blocks && !rc; k++) {
        m2u_adapter_block *b = &a->blk[k];
        char name[64];
        snprintf(name, sizeof name, "norm_%d.weight", k + 1);
        rc |= m2u_ptable_add(&t, p, name, 1, D, 0, 0, &b->norm_w, &b->dnorm_w);
        snprintf(name, sizeof name, "f1_%d.weight", k + 1);
        rc |= m2u_ptable_add(&t, p, name, 2, Hd, D, 1, &b->f1, &b->df1);
        snprintf(name, sizeof name, "f2_%d.weight", k + 1);
        rc |= m2u_ptable_add(&t, p, name, 2, D, Hd, 1, &b->f2, &b->df2);
        snprintf(name, sizeof name, "f3_%d.weight", k + 1);
        rc |= m2u_ptable_add(&t, p, name, 2, Hd, D, 1, &b->f3, &b->df3);
    }
    if (rc) {
        m2u_ptable_discard(&t);
        return -1;
    }
    a->n_floats = t.n_floats;
    return m2u_ptable_finish(&t, params, grads, &a->params, &a->n_params);
}

static void free_acts(m2u_adapter *a) {
    free(a->feats);
    free(a->agg);
    free(a->l2);
    free(a->u);
    free(a->h);
    free(a->nrm);
    free(a->rstd);
    free(a->a);
    free(a->c);
    free(a->s);
    free(a->scratch);
    a->feats = a->agg = a->l2 = a->u = a->h = a->nrm = a->rstd = a->a = a->c = a->s = a->scratch = NULL;
    a->cap_B = 0;
}

void m2u_adapter_free(m2u_adapter *a) {
    if (!a) return;
    free_acts(a);
    m2u_params_free(a->params, a->n_params);
    memset(a, 0, sizeof *a);
}

static void uniform_fill(float *x, size_t n, float bound, m2u_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (2.0f * m2u_rng_uniform(r) - 1.0f) * bound;
}

void m2u_adapter_reset_params(m2u_adapter *a, uint64_t seed) {
    m2u_rng r;
    m2u_rng_seed(&r, seed);
    const m2u_adapter_config *c = &a->cfg;
    size_t D = (size_t)c->dim, Hd = (size_t)c->hidden;
    float bt = 1.0f / sqrtf((float)c->n_tokens), bf = 1.0f / sqrtf((float)c->feat_dim);
    uniform_fill(a->agg_w, (size_t)c->n_tokens, bt, &r);
    uniform_fill(a->agg_b, 1, bt, &r);
    uniform_fill(a->proj_w, D * (size_t)c->feat_dim, bf, &r);
    uniform_fill(a->proj_b, D, bf, &r);
    for (int k = 0; k < c->n_blocks; k++) {
        m2u_adapter_block *b = &a->blk[k];
        for (size_t i = 0; i < D; i++) b->norm_w[i] = 1.0f;
        uniform_fill(b->f1, Hd * D, 1.0f / sqrtf((float)D), &r);
        uniform_fill(b->f2, D * Hd, 1.0f / sqrtf((float)Hd), &r);
        uniform_fill(b->f3, Hd * D, 1.0f / sqrtf((float)D), &r);
    }
}

/* The floats of each buffer ensure_acts allocates for a batch of B, in its order; the memory
 * plan counts the same sizes (m2u_adapter_act_bytes). */
enum { N_ACT_BUFS = 11 };
static void act_floats(const m2u_adapter_config *c, int B, size_t n[N_ACT_BUFS]) {
    size_t Bz = (size_t)B, D = (size_t)c->dim, Hd = (size_t)c->hidden, F = (size_t)c->feat_dim,
           K = (size_t)c->n_blocks, K1 = K ? K : 1;
    size_t big = D > Hd ? D : Hd;
    const size_t v[N_ACT_BUFS] = {Bz * (size_t)c->n_tokens * F, Bz * F, Bz, Bz * F, (K + 1) * Bz * D, K1 * Bz * D,
                                  K1 * Bz, K1 * Bz * Hd, K1 * Bz * Hd, K1 * Bz * Hd,
                                  Bz * D + 3 * Bz * big + 2 * Bz * F};
    memcpy(n, v, sizeof v);
}

size_t m2u_adapter_act_bytes(const m2u_adapter_config *c, int B) {
    size_t n[N_ACT_BUFS], total = 0;
    act_floats(c, B, n);
    for (int i = 0; i < N_ACT_BUFS; i++) total += n[i];
    return total * sizeof(float);
}

static int ensure_acts(m2u_adapter *a, int B) {
    if (B <= a->cap_B) return 0;
    free_acts(a);
    const m2u_adapter_config *c = &a->cfg;
    size_t n[N_ACT_BUFS];
    act_floats(c, B, n);
    float **buf[N_ACT_BUFS] = {&a->feats, &a->agg, &a->l2, &a->u, &a->h, &a->nrm,
                               &a->rstd, &a->a, &a->c, &a->s, &a->scratch};
    for (int i = 0; i < N_ACT_BUFS; i++) *buf[i] = malloc(n[i] * sizeof(float));
    if (!a->feats || !a->agg || !a->l2 || !a->u || !a->h || !a->nrm || !a->rstd || !a->a || !a->c || !a->s ||
        !a->scratch) {
        free_acts(a);
        return m2u_fail("adapter %s: out of memory for a batch of %d", c->prefix, B);
    }
    a->cap_B = B;
    return 0;
}

int m2u_adapter_forward(m2u_adapter *a, const float *feats, int B, float *out) {
    if (!a->params) return m2u_fail("adapter: not initialised");
    if (B <= 0) return m2u_fail("adapter %s: batch %d", a->cfg.prefix, B);
    if (ensure_acts(a, B)) return -1;
    const m2u_adapter_config *c = &a->cfg;
    int T = c->n_tokens, F = c->feat_dim, D = c->dim, Hd = c->hidden;
    size_t BD = (size_t)B * D, BH = (size_t)B * Hd;
    a->B = B;
    memcpy(a->feats, feats, (size_t)B * T * F * sizeof(float));
    /* Conv1d(T -> 1, k=1): agg[b] = x_b^T w + bias */
    for (int b = 0; b < B; b++) {
        float *ag = a->agg + (size_t)b * F;
        m2u_gemv(1, T, F, 1.0f, a->feats + (size_t)b * T * F, F, a->agg_w, 0.0f, ag);
        m2u_add_scalar(ag, a->agg_b[0], (size_t)F);
    }
    m2u_l2norm_fwd(a->u, a->l2, a->agg, B, F, c->l2_eps);
    m2u_linear_fwd(a->h, a->u, a->proj_w, a->proj_b, B, F, D);
    for (int k = 0; k < c->n_blocks; k++) {
        const m2u_adapter_block *bk = &a->blk[k];
        const float *hin = a->h + (size_t)k * BD;
        float *hout = a->h + (size_t)(k + 1) * BD, *n = a->nrm + (size_t)k * BD;
        float *ak = a->a + (size_t)k * BH, *ck = a->c + (size_t)k * BH, *sk = a->s + (size_t)k * BH;
        m2u_rmsnorm_fwd(n, a->rstd + (size_t)k * B, hin, bk->norm_w, B, D, c->norm_eps);
        m2u_linear_fwd(ak, n, bk->f1, NULL, B, D, Hd);
        m2u_linear_fwd(ck, n, bk->f3, NULL, B, D, Hd);
        m2u_swiglu_fwd(sk, ak, ck, BH);
        memcpy(hout, hin, BD * sizeof(float));
        m2u_gemm(0, 1, B, D, Hd, 1.0f, sk, Hd, bk->f2, Hd, 1.0f, hout, D);
    }
    if (out) memcpy(out, a->h + (size_t)c->n_blocks * BD, BD * sizeof(float));
    return 0;
}

int m2u_adapter_backward(m2u_adapter *a, const float *dout) {
    if (!a->params || a->B <= 0) return m2u_fail("adapter: backward without a forward");
    if (!a->dproj_w) return m2u_fail("adapter %s: no gradient buffer (initialised for inference)", a->cfg.prefix);
    const m2u_adapter_config *c = &a->cfg;
    int B = a->B, T = c->n_tokens, F = c->feat_dim, D = c->dim, Hd = c->hidden;
    size_t BD = (size_t)B * D, BH = (size_t)B * Hd, big = (size_t)(D > Hd ? D : Hd);
    float *dh = a->scratch;           /* [B, D] gradient of the residual stream */
    float *ds = dh + BD;              /* [B, max(D, Hd)]: d s, then d n */
    float *da = ds + (size_t)B * big; /* [B, Hd] */
    float *dc = da + (size_t)B * big; /* [B, Hd] */
    float *du = dc + (size_t)B * big; /* [B, F] */
    float *dagg = du + (size_t)B * F; /* [B, F] */
    memcpy(dh, dout, BD * sizeof(float));
    for (int k = c->n_blocks - 1; k >= 0; k--) {
        m2u_adapter_block *bk = &a->blk[k];
        const float *hin = a->h + (size_t)k * BD, *n = a->nrm + (size_t)k * BD;
        const float *ak = a->a + (size_t)k * BH, *ck = a->c + (size_t)k * BH, *sk = a->s + (size_t)k * BH;
        /* hout = hin + s f2^T: dh is d hout, and also d hin through the identity */
        memset(ds, 0, BH * sizeof(float));
        m2u_linear_bwd(ds, bk->df2, NULL, dh, sk, bk->f2, B, Hd, D);
        memset(da, 0, BH * sizeof(float));
        memset(dc, 0, BH * sizeof(float));
        m2u_swiglu_bwd(da, dc, ds, ak, ck, BH);
        float *dn = ds; /* d s is consumed */
        memset(dn, 0, BD * sizeof(float));
        m2u_linear_bwd(dn, bk->df1, NULL, da, n, bk->f1, B, D, Hd);
        m2u_linear_bwd(dn, bk->df3, NULL, dc, n, bk->f3, B, D, Hd);
        m2u_rmsnorm_bwd(dh, bk->dnorm_w, dn, hin, bk->norm_w, a->rstd + (size_t)k * B, B, D);
    }
    memset(du, 0, (size_t)B * F * sizeof(float));
    m2u_linear_bwd(du, a->dproj_w, a->dproj_b, dh, a->u, a->proj_w, B, F, D);
    memset(dagg, 0, (size_t)B * F * sizeof(float));
    m2u_l2norm_bwd(dagg, du, a->u, a->l2, B, F, c->l2_eps);
    /* agg[b, f] = sum_t w[t] x[b, t, f] + bias */
    for (int b = 0; b < B; b++)
        m2u_gemv(0, T, F, 1.0f, a->feats + (size_t)b * T * F, F, dagg + (size_t)b * F, 1.0f, a->dagg_w);
    a->dagg_b[0] += (float)m2u_sum(dagg, (size_t)B * F); /* rows in order: the same double sum */
    return 0;
}
