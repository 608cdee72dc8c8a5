#include "ops_extra.h"

#include "m2u_error.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- dense layers ----------------------------------------------------------------- */

void m2u_linear_fwd(float *y, const float *x, const float *w, const float *b, int N, int in, int out) {
    if (N <= 0 || out <= 0) return;
    float beta = 0.0f;
    if (b) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) memcpy(y + (size_t)n * out, b, (size_t)out * sizeof(float));
        beta = 1.0f;
    }
    if (in <= 0) {
        if (!b) memset(y, 0, (size_t)N * out * sizeof(float));
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1.0f, x, in, w, in, beta, y, out);
}

void m2u_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int N, int in,
                    int out) {
    if (N <= 0 || out <= 0) return;
    if (dx && in > 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in);
    if (dw && in > 0)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in);
    if (db) {
#pragma omp parallel for schedule(static)
        for (int o = 0; o < out; o++) {
            float acc = 0.0f;
            for (int n = 0; n < N; n++) acc += dy[(size_t)n * out + o];
            db[o] += acc;
        }
    }
}

/* ---- normalisations -------------------------------------------------------------------- */

void m2u_layernorm_fwd(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int N,
                       int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float *o = out + (size_t)n * C;
        double s = 0.0;
        for (int i = 0; i < C; i++) s += xr[i];
        double mu = s / C, v = 0.0;
        for (int i = 0; i < C; i++) {
            double d = xr[i] - mu;
            v += d * d;
        }
        float m = (float)mu, r = (float)(1.0 / sqrt(v / C + (double)eps));
        for (int i = 0; i < C; i++) o[i] = (xr[i] - m) * r * w[i] + b[i];
        mean[n] = m;
        rstd[n] = r;
    }
}

void m2u_layernorm_bwd(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                       const float *mean, const float *rstd, int N, int C) {
    if (dx) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * C, *dy = dout + (size_t)n * C;
            float *d = dx + (size_t)n * C;
            float m = mean[n], r = rstd[n];
            /* dxhat = dy * w;  dx = r * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) */
            double s1 = 0.0, s2 = 0.0;
            for (int i = 0; i < C; i++) {
                double dxh = (double)dy[i] * w[i];
                s1 += dxh;
                s2 += dxh * ((xr[i] - m) * r);
            }
            float a = (float)(s1 / C), c = (float)(s2 / C);
            for (int i = 0; i < C; i++) {
                float xh = (xr[i] - m) * r;
                d[i] += r * (dy[i] * w[i] - a - xh * c);
            }
        }
    }
    if (dw || db) {
#pragma omp parallel for schedule(static)
        for (int i = 0; i < C; i++) {
            float aw = 0.0f, ab = 0.0f;
            for (int n = 0; n < N; n++) {
                float dy = dout[(size_t)n * C + i];
                aw += dy * (x[(size_t)n * C + i] - mean[n]) * rstd[n];
                ab += dy;
            }
            if (dw) dw[i] += aw;
            if (db) db[i] += ab;
        }
    }
}

void m2u_l2norm_fwd(float *out, float *norm, const float *x, int N, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float *o = out + (size_t)n * C;
        double ss = 0.0;
        for (int i = 0; i < C; i++) ss += (double)xr[i] * xr[i];
        float nr = (float)sqrt(ss);
        float den = nr > eps ? nr : eps;
        for (int i = 0; i < C; i++) o[i] = xr[i] / den;
        norm[n] = nr;
    }
}

void m2u_l2norm_bwd(float *dx, const float *dout, const float *out, const float *norm, int N, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *dy = dout + (size_t)n * C, *y = out + (size_t)n * C;
        float *d = dx + (size_t)n * C;
        float nr = norm[n];
        if (!(nr > eps)) { /* clamped: the denominator is the constant eps */
            for (int i = 0; i < C; i++) d[i] += dy[i] / eps;
            continue;
        }
        double dot = 0.0;
        for (int i = 0; i < C; i++) dot += (double)y[i] * dy[i];
        float fd = (float)dot;
        for (int i = 0; i < C; i++) d[i] += (dy[i] - y[i] * fd) / nr;
    }
}

/* ---- activations ------------------------------------------------------------------------- */

void m2u_relu_fwd(float *out, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void m2u_relu_bwd(float *dx, const float *dout, const float *out, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        if (out[i] > 0.0f) dx[i] += dout[i];
}

/* ---- attention without a mask --------------------------------------------------------------- */

int m2u_mha_fwd(float *out, float *probs, const float *q, int qs, const float *k, int ks, const float *v, int vs, int B,
                int T, int S, int H, int hd) {
    int failed = 0, od = H * hd;
    float scale = 1.0f / sqrtf((float)hd);
    if (B <= 0 || T <= 0 || S <= 0) return 0;
#pragma omp parallel
    {
        float *own = probs ? NULL : malloc((size_t)T * S * sizeof(float));
        if (!probs && !own) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int bh = 0; bh < B * H; bh++) {
            if (failed) continue;
            int b = bh / H, h = bh % H;
            const float *qb = q + (size_t)b * T * qs + (size_t)h * hd;
            const float *kb = k + (size_t)b * S * ks + (size_t)h * hd;
            const float *vb = v + (size_t)b * S * vs + (size_t)h * hd;
            float *P = probs ? probs + (size_t)bh * T * S : own;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, S, hd, scale, qb, qs, kb, ks, 0.0f, P, S);
            for (int t = 0; t < T; t++) {
                float *p = P + (size_t)t * S;
                float mx = -INFINITY;
                for (int s = 0; s < S; s++) mx = p[s] > mx ? p[s] : mx;
                float sum = 0.0f;
                for (int s = 0; s < S; s++) {
                    p[s] = expf(p[s] - mx);
                    sum += p[s];
                }
                float inv = 1.0f / sum;
                for (int s = 0; s < S; s++) p[s] *= inv;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, S, 1.0f, P, S, vb, vs, 0.0f,
                        out + (size_t)b * T * od + (size_t)h * hd, od);
        }
        free(own);
    }
    return failed ? m2u_fail("attention: out of memory for %d x %d scores", T, S) : 0;
}

int m2u_mha_bwd(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q, int qs,
                const float *k, int ks, const float *v, int vs, int B, int T, int S, int H, int hd) {
    int failed = 0, od = H * hd;
    float scale = 1.0f / sqrtf((float)hd);
    if (B <= 0 || T <= 0 || S <= 0) return 0;
    /* (sequence, head) pairs touch disjoint rows/columns of dq, dk, dv */
#pragma omp parallel
    {
        float *dS = malloc((size_t)T * S * sizeof(float));
        if (!dS) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int bh = 0; bh < B * H; bh++) {
            if (failed) continue;
            int b = bh / H, h = bh % H;
            size_t qo = (size_t)b * T * qs + (size_t)h * hd, ko = (size_t)b * S * ks + (size_t)h * hd,
                   vo = (size_t)b * S * vs + (size_t)h * hd;
            const float *P = probs + (size_t)bh * T * S;
            const float *dO = dout + (size_t)b * T * od + (size_t)h * hd;
            /* dP = dO V^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, S, hd, 1.0f, dO, od, v + vo, vs, 0.0f, dS, S);
            for (int t = 0; t < T; t++) {
                float *d = dS + (size_t)t * S;
                const float *p = P + (size_t)t * S;
                float dot = 0.0f;
                for (int s = 0; s < S; s++) dot += p[s] * d[s];
                for (int s = 0; s < S; s++) d[s] = p[s] * (d[s] - dot);
            }
            if (dq)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, S, scale, dS, S, k + ko, ks, 1.0f,
                            dq + qo, qs);
            if (dk)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, S, hd, T, scale, dS, S, q + qo, qs, 1.0f,
                            dk + ko, ks);
            if (dv)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, S, hd, T, 1.0f, P, S, dO, od, 1.0f, dv + vo, vs);
        }
        free(dS);
    }
    return failed ? m2u_fail("attention backward: out of memory for %d x %d scores", T, S) : 0;
}

/* ---- loss ----------------------------------------------------------------------------------- */

double m2u_mse_fwd(const float *pred, const float *target, float target_scale, size_t n) {
    double total = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : total)
    for (size_t i = 0; i < n; i++) {
        float d = pred[i] - target_scale * target[i];
        total += (double)d * d;
    }
    return n ? total / (double)n : 0.0;
}

void m2u_mse_bwd(float *dpred, const float *pred, const float *target, float target_scale, size_t n,
                 float grad_scale) {
    if (!n) return;
    float c = 2.0f * grad_scale / (float)n;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dpred[i] += c * (pred[i] - target_scale * target[i]);
}

/* ---- named parameter tables ------------------------------------------------------------------- */

int m2u_ptable_add(m2u_ptable *t, const char *prefix, const char *name, int ndim, int64_t d0, int64_t d1, int decay,
                   float **data_slot, float **grad_slot) {
    if (ndim < 1 || ndim > 2 || d0 <= 0 || (ndim == 2 && d1 <= 0))
        return m2u_fail("parameter %s%s: bad shape", prefix ? prefix : "", name);
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 32;
        m2u_param *nv = realloc(t->v, (size_t)cap * sizeof *nv);
        if (!nv) return m2u_fail("out of memory");
        t->v = nv;
        float ***nd = realloc(t->data_slot, (size_t)cap * sizeof *nd);
        if (!nd) return m2u_fail("out of memory");
        t->data_slot = nd;
        float ***ng = realloc(t->grad_slot, (size_t)cap * sizeof *ng);
        if (!ng) return m2u_fail("out of memory");
        t->grad_slot = ng;
        t->cap = cap;
    }
    m2u_param *p = &t->v[t->n];
    memset(p, 0, sizeof *p);
    size_t len = strlen(prefix ? prefix : "") + strlen(name) + 1;
    p->name = malloc(len);
    if (!p->name) return m2u_fail("out of memory");
    snprintf(p->name, len, "%s%s", prefix ? prefix : "", name);
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = ndim > 1 ? d1 : 1;
    p->n = (size_t)d0 * (size_t)p->shape[1];
    p->decay = decay;
    t->data_slot[t->n] = data_slot;
    t->grad_slot[t->n] = grad_slot;
    t->n_floats += p->n;
    t->n++;
    return 0;
}

void m2u_params_free(m2u_param *params, int n) {
    if (!params) return;
    for (int i = 0; i < n; i++) free(params[i].name);
    free(params);
}

void m2u_ptable_discard(m2u_ptable *t) {
    m2u_params_free(t->v, t->n);
    free(t->data_slot);
    free(t->grad_slot);
    memset(t, 0, sizeof *t);
}

int m2u_ptable_finish(m2u_ptable *t, float *params, float *grads, m2u_param **out, int *n_out) {
    if (!params) {
        m2u_ptable_discard(t);
        return m2u_fail("no parameter buffer given");
    }
    size_t off = 0;
    for (int i = 0; i < t->n; i++) {
        m2u_param *p = &t->v[i];
        p->data = params + off;
        p->grad = grads ? grads + off : NULL;
        *t->data_slot[i] = p->data;
        if (t->grad_slot[i]) *t->grad_slot[i] = p->grad;
        off += p->n;
    }
    *out = t->v;
    *n_out = t->n;
    free(t->data_slot);
    free(t->grad_slot);
    memset(t, 0, sizeof *t);
    return 0;
}

m2u_param *m2u_params_find(m2u_param *params, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(params[i].name, name) == 0) return &params[i];
    return NULL;
}

/* Shapes equal after dropping unit dimensions. */
static int same_squeezed(const int64_t *a, int na, const int64_t *b, int nb) {
    int i = 0, j = 0;
    for (;;) {
        while (i < na && a[i] == 1) i++;
        while (j < nb && b[j] == 1) j++;
        if (i == na || j == nb) return i == na && j == nb;
        if (a[i++] != b[j++]) return 0;
    }
}

static void shape_str(char *buf, size_t cap, const int64_t *s, int nd) {
    size_t len = 0;
    len += (size_t)snprintf(buf + len, cap - len, "[");
    for (int i = 0; i < nd && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)s[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

int m2u_params_load(m2u_param *params, int n, const m2u_safetensors *st, int require_all, int *n_loaded) {
    int loaded = 0;
    for (int i = 0; i < n; i++) {
        m2u_param *p = &params[i];
        const m2u_st_tensor *t = m2u_st_find(st, p->name);
        if (!t) {
            if (require_all) return m2u_fail("%s: parameter %s is missing", m2u_st_path(st), p->name);
            continue;
        }
        if ((size_t)t->numel != p->n || !same_squeezed(t->shape, t->ndim, p->shape, p->ndim)) {
            char a[128], b[128];
            shape_str(a, sizeof a, t->shape, t->ndim);
            shape_str(b, sizeof b, p->shape, p->ndim);
            return m2u_fail("%s: tensor %s has shape %s, the module expects %s", m2u_st_path(st), p->name, a, b);
        }
        if (t->dtype != M2U_F32 && t->dtype != M2U_F16 && t->dtype != M2U_BF16 && t->dtype != M2U_F64)
            return m2u_fail("%s: tensor %s is not a float tensor", m2u_st_path(st), p->name);
        if (m2u_st_read_f32(t, p->data, p->n)) return m2u_fail_prefix("%s: tensor %s", m2u_st_path(st), p->name);
        loaded++;
    }
    if (n_loaded) *n_loaded = loaded;
    return 0;
}
