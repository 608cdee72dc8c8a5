#include "ops_extra.h"

#include "m2u_error.h"
#include "tensor.h"

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
    m2u_gemm(0, 1, N, out, in, 1.0f, x, in, w, in, beta, y, out);
}

void m2u_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int N, int in,
                    int out) {
    if (N <= 0 || out <= 0) return;
    if (dx && in > 0)
        m2u_gemm(0, 0, N, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in);
    if (dw && in > 0)
        m2u_gemm(1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in);
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
        /* the two sums in double over 8 interleaved partial sums: one running sum is a chain of
         * C dependent adds (the two passes were 2 % of a PaSST forward); the order changes the
         * double results by ulps, far below the float mean and rstd they are rounded to */
        double p[8] = {0}, q[8] = {0};
        int C8 = C - C % 8;
        for (int i = 0; i < C8; i += 8)
            for (int j = 0; j < 8; j++) p[j] += xr[i + j];
        double s = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
        for (int i = C8; i < C; i++) s += xr[i];
        double mu = s / C;
        for (int i = 0; i < C8; i += 8)
            for (int j = 0; j < 8; j++) {
                double d = xr[i + j] - mu;
                q[j] += d * d;
            }
        double v = ((q[0] + q[1]) + (q[2] + q[3])) + ((q[4] + q[5]) + (q[6] + q[7]));
        for (int i = C8; i < C; i++) {
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
