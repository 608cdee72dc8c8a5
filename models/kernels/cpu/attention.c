#include "attention.h"

#include "m2u_error.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

m2u_attn m2u_attn_make(int B, int T, int S, int H, int KV, int hd, int qs, int ks, int vs, int causal, int pos0) {
    m2u_attn a = {0};
    a.B = B, a.T = T, a.S = S, a.H = H, a.KV = KV, a.hd = hd;
    a.qs = qs, a.ks = ks, a.vs = vs, a.causal = causal, a.pos0 = pos0;
    a.scale = hd > 0 ? 1.0f / sqrtf((float)hd) : 1.0f;
    a.bias_heads = H;
    return a;
}

static int check(const m2u_attn *a, const char *what) {
    if (a->B < 0 || a->T < 0 || a->S < 0 || a->H <= 0 || a->KV <= 0 || a->hd <= 0 || a->H % a->KV)
        return m2u_fail("%s: bad dimensions B=%d T=%d S=%d H=%d KV=%d hd=%d (KV must divide H)", what, a->B, a->T,
                        a->S, a->H, a->KV, a->hd);
    if (a->bias && a->bias_heads != 1 && a->bias_heads != a->H)
        return m2u_fail("%s: bias has %d heads, expected 1 or %d", what, a->bias_heads, a->H);
    return 0;
}

/* Last key visible to query t (-1: none). */
static int last_key(const m2u_attn *a, int t) {
    int last = a->S - 1;
    if (a->causal && a->pos0 + t < last) last = a->pos0 + t;
    return last;
}

/* Softmax of one row of scores in place over keys 0..last (all of them visible).  The
 * arithmetic (float max, float sum in key order, one reciprocal) is the causal kernel's
 * that LLaMA's training losses were fixed with; do not reorder it. */
static void softmax_prefix(float *p, int last, int S) {
    float mx = -INFINITY;
    for (int s = 0; s <= last; s++) mx = p[s] > mx ? p[s] : mx;
    float sum = 0.0f;
    for (int s = 0; s <= last; s++) {
        p[s] = expf(p[s] - mx);
        sum += p[s];
    }
    float inv = 1.0f / sum;
    for (int s = 0; s <= last; s++) p[s] *= inv;
    for (int s = last + 1; s < S; s++) p[s] = 0.0f;
}

/* The same over keys 0..last where mask[s] != 0; hidden keys and rows with nothing
 * visible get 0. */
static void softmax_masked(float *p, int last, int S, const int32_t *mask) {
    float mx = -INFINITY;
    int any = 0;
    for (int s = 0; s <= last; s++)
        if (mask[s]) {
            mx = p[s] > mx ? p[s] : mx;
            any = 1;
        }
    float sum = 0.0f;
    for (int s = 0; s <= last; s++) {
        if (mask[s]) {
            p[s] = expf(p[s] - mx);
            sum += p[s];
        } else {
            p[s] = 0.0f;
        }
    }
    float inv = any ? 1.0f / sum : 0.0f;
    for (int s = 0; s <= last; s++) p[s] *= inv;
    for (int s = last + 1; s < S; s++) p[s] = 0.0f;
}

int m2u_attn_fwd(const m2u_attn *a, float *out, float *probs, const float *q, const float *k, const float *v) {
    if (check(a, "attention")) return -1;
    int B = a->B, T = a->T, S = a->S, H = a->H, hd = a->hd, group = a->H / a->KV, od = H * hd, failed = 0;
    if (B == 0 || T == 0) return 0;
    if (S == 0) {
        for (size_t i = 0; i < (size_t)B * T * od; i++) out[i] = 0.0f;
        return 0;
    }
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
            int b = bh / H, h = bh % H, g = h / group;
            const float *qb = q + (size_t)b * T * a->qs, *kb = k + (size_t)b * S * a->ks, *vb = v + (size_t)b * S * a->vs;
            const float *bias = a->bias ? a->bias + (size_t)(a->bias_heads == 1 ? 0 : h) * T * S : NULL;
            const int32_t *mask = a->key_mask ? a->key_mask + (size_t)b * S : NULL;
            float *P = probs ? probs + (size_t)bh * T * S : own;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, S, hd, a->scale, qb + (size_t)h * hd, a->qs,
                        kb + (size_t)g * hd, a->ks, 0.0f, P, S);
            for (int t = 0; t < T; t++) {
                float *p = P + (size_t)t * S;
                int last = last_key(a, t);
                if (bias)
                    for (int s = 0; s <= last; s++) p[s] += bias[(size_t)t * S + s];
                if (mask) softmax_masked(p, last, S, mask);
                else softmax_prefix(p, last, S);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, S, 1.0f, P, S, vb + (size_t)g * hd, a->vs,
                        0.0f, out + (size_t)b * T * od + (size_t)h * hd, od);
        }
        free(own);
    }
    return failed ? m2u_fail("attention: out of memory for %d x %d scores", T, S) : 0;
}

int m2u_attn_bwd(const m2u_attn *a, float *dq, float *dk, float *dv, const float *dout, const float *probs,
                 const float *q, const float *k, const float *v) {
    if (check(a, "attention backward")) return -1;
    int B = a->B, T = a->T, S = a->S, H = a->H, KV = a->KV, hd = a->hd, group = H / KV, od = H * hd, failed = 0;
    int qs = a->qs, ks = a->ks, vs = a->vs;
    float scale = a->scale;
    if (B == 0 || T == 0 || S == 0) return 0;
#pragma omp parallel
    {
        float *dS = malloc((size_t)T * S * sizeof(float));
        if (!dS) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int bg = 0; bg < B * KV; bg++) {
            if (failed) continue;
            int b = bg / KV, g = bg % KV;
            size_t qo = (size_t)b * T * qs, ko = (size_t)b * S * ks + (size_t)g * hd,
                   vo = (size_t)b * S * vs + (size_t)g * hd, oo = (size_t)b * T * od;
            for (int h = g * group; h < (g + 1) * group; h++) {
                const float *P = probs + ((size_t)b * H + h) * T * S;
                const float *dO = dout + oo + (size_t)h * hd;
                /* dP = dO V^T */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, S, hd, 1.0f, dO, od, v + vo, vs, 0.0f, dS, S);
                /* softmax backward: dS = P * (dP - sum_s P dP); hidden keys have P = 0 */
                for (int t = 0; t < T; t++) {
                    float *d = dS + (size_t)t * S;
                    const float *p = P + (size_t)t * S;
                    int last = last_key(a, t);
                    float dot = 0.0f;
                    for (int s = 0; s <= last; s++) dot += p[s] * d[s];
                    for (int s = 0; s <= last; s++) d[s] = p[s] * (d[s] - dot);
                    for (int s = last + 1; s < S; s++) d[s] = 0.0f;
                }
                if (dq)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, S, scale, dS, S, k + ko, ks, 1.0f,
                                dq + qo + (size_t)h * hd, qs);
                if (dk)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, S, hd, T, scale, dS, S, q + qo + (size_t)h * hd,
                                qs, 1.0f, dk + ko, ks);
                if (dv)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, S, hd, T, 1.0f, P, S, dO, od, 1.0f, dv + vo, vs);
            }
        }
        free(dS);
    }
    return failed ? m2u_fail("attention backward: out of memory for %d x %d scores", T, S) : 0;
}
