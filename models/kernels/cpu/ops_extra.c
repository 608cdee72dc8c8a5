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
