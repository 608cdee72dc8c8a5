#include "attention.h"
#include "attn_tiles.h"
#include "vmath.h"

#include "m2u_error.h"
#include "tensor.h"

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


#define B_T_S_EMPTY(a) ((a)->B == 0 || (a)->T == 0 || (a)->S == 0)

/* Last key visible to query t (-1: none). */
static int last_key(const m2u_attn *a, int t) {
    int last = a->S - 1;
    if (a->causal && a->pos0 + t < last) last = a->pos0 + t;
    return last;
}

/* Softmax of one row of scores in place over keys 0..last (all of them visible).  The
 * arithmetic (float max, float sum in key order, one reciprocal) is the causal kernel's
 * that LLaMA's training losses were fixed with; do not reorder it. */
/* p[s] = exp(p[s] - mx) for s < n: the float difference as before, the exponential in double
 * (vmath.h) rounded once, so the values are expf's but for its rare last-bit misroundings, and
 * the loop vectorises (expf is scalar only: 12 % of a PaSST forward went to it). */
M2U_VCLONES
static void exp_shifted(float *p, int n, float mx) {
    for (int s = 0; s < n; s++) p[s] = (float)m2u_vexp_neg((double)(p[s] - mx));
}

static void softmax_prefix(float *p, int last, int S) {
    float mx = -INFINITY;
    for (int s = 0; s <= last; s++) mx = p[s] > mx ? p[s] : mx;
    exp_shifted(p, last + 1, mx);
    float sum = 0.0f;
    for (int s = 0; s <= last; s++) sum += p[s]; /* in key order, as before */
    float inv = 1.0f / sum;
    for (int s = 0; s <= last; s++) p[s] *= inv;
    for (int s = last + 1; s < S; s++) p[s] = 0.0f;
}

/* softmax_prefix for the blocked forward (no probs kept; LLaMA's training step and the
 * encoders take it): the exponential in float (m2u_vexpf_neg, within 2 ulp of expf) and the max
 * and the sum in 8 lanes (value s into lane s % 8, the last partial group too, then the lanes in
 * order), so all three passes vectorise.  Values differ from softmax_prefix's in the last bits
 * (torch's own vectorised softmax orders its sums differently again); a forward that keeps the
 * probabilities keeps softmax_prefix.  Where the CPU has AVX2 the tiles' copy of it runs
 * (attn_tiles.c). */
#define LANES 8
M2U_VCLONES
static float softmax_fast(float *p, int last, int S) {
    int n = last + 1, n8 = n - n % LANES;
    float m[LANES], acc[LANES];
    for (int j = 0; j < LANES; j++) m[j] = -INFINITY, acc[j] = 0.0f;
    for (int s = 0; s < n8; s += LANES)
        for (int j = 0; j < LANES; j++) m[j] = p[s + j] > m[j] ? p[s + j] : m[j];
    float mx = -INFINITY;
    for (int j = 0; j < LANES; j++) mx = m[j] > mx ? m[j] : mx;
    for (int s = n8; s < n; s++) mx = p[s] > mx ? p[s] : mx;
    for (int s = 0; s < n8; s += LANES)
        for (int j = 0; j < LANES; j++) {
            float e = m2u_vexpf_neg(p[s + j] - mx);
            p[s + j] = e;
            acc[j] += e;
        }
    for (int s = n8; s < n; s++) { /* the last partial group into its lanes */
        p[s] = m2u_vexpf_neg(p[s] - mx);
        acc[s - n8] += p[s];
    }
    float sum = 0.0f;
    for (int j = 0; j < LANES; j++) sum += acc[j];
    float inv = 1.0f / sum;
    for (int s = 0; s < n; s++) p[s] *= inv;
    for (int s = n; s < S; s++) p[s] = 0.0f;
    return mx + logf(sum); /* the row's log-sum-exp, for a backward that recomputes p */
}

/* The same over keys 0..last where mask[s] != 0; hidden keys and rows with nothing
 * visible get 0. */
static float softmax_masked(float *p, int last, int S, const int32_t *mask) {
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
    return any ? mx + logf(sum) : INFINITY; /* +inf: every recomputed probability is 0 */
}

/* T = 1 with the query pre-scaled: one query row per (sequence, head), the decode step of a
 * BART-style decoder (MusicGen's self- and cross-attention).  Scalar loops instead of two
 * one-row GEMMs, and on the calling thread when the work is small: a fork/join costs more
 * than a short context's few thousand multiply-adds, and on a busy machine every join waits
 * for the slowest thread.  The arithmetic (q*scale rounded to float, the dot product in key
 * order, + bias, + key_bias, softmax_prefix / softmax_masked, sum_s p_s v_s in key order) is
 * the one MusicGen's transformers fixtures were matched with. */
static int attn_fwd_one(const m2u_attn *a, float *out, float *probs, const float *q, const float *k, const float *v,
                        size_t kbs, size_t vbs) {
    int B = a->B, S = a->S, H = a->H, hd = a->hd, group = H / a->KV, od = H * hd, last = last_key(a, 0);
    size_t row = (size_t)S + (size_t)hd;
    float *sc = malloc((size_t)B * H * row * sizeof(float));
    if (!sc) return m2u_fail("attention: out of memory for %d x %d x %d scores", B, H, S);
    int par = (size_t)B * H * S * hd >= ((size_t)1 << 16);
#pragma omp parallel for schedule(static) if (par)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, g = h / group;
        float *qh = sc + (size_t)bh * row + S, *p = probs ? probs + (size_t)bh * S : sc + (size_t)bh * row;
        const float *qb = q + (size_t)b * a->qs + (size_t)h * hd;
        float scale = a->scale; /* a local: the stores to qh could alias a->scale */
        for (int j = 0; j < hd; j++) qh[j] = qb[j] * scale;
        const float *kb = k + (size_t)b * kbs + (size_t)g * hd, *vb = v + (size_t)b * vbs + (size_t)g * hd;
        const float *bias = a->bias ? a->bias + (size_t)(a->bias_heads == 1 ? 0 : h) * S : NULL;
        const float *kbias = a->key_bias ? a->key_bias + (size_t)b * S : NULL;
        for (int s = 0; s <= last; s++) {
            const float *kr = kb + (size_t)s * a->ks;
            float d = 0;
            for (int j = 0; j < hd; j++) d += qh[j] * kr[j];
            if (bias) d += bias[s];
            if (kbias) d += kbias[s];
            p[s] = d;
        }
        if (a->key_mask) softmax_masked(p, last, S, a->key_mask + (size_t)b * S);
        else softmax_prefix(p, last, S);
        float *o = out + (size_t)b * od + (size_t)h * hd;
        for (int j = 0; j < hd; j++) o[j] = 0;
        for (int s = 0; s <= last; s++) {
            const float *vr = vb + (size_t)s * a->vs;
            float ps = p[s];
            for (int j = 0; j < hd; j++) o[j] += ps * vr[j];
        }
    }
    free(sc);
    return 0;
}

/* Inference (no probs kept), flash-style: blocks of QBLK query rows of one head, so a
 * block's scores (QBLK x S floats) stay in the core's L2 cache between the two GEMMs and the
 * softmax, where a whole head's T x S scores (5.6 MB for PaSST's 1190 tokens) went through
 * memory three times.  Blocks of all heads are shared among the threads; a causal block
 * multiplies only the keys its last row sees. */
#define QBLK 64
/* One block of query rows after its scores are in P (row stride ldp): the bias terms, then the
 * softmax of each row over its visible keys (0 past them up to ns), keeping the log-sum-exp
 * when asked. */
static void block_softmax(const m2u_attn *a, float *P, size_t ldp, int bh, int t0, int tn, int ns, const float *bias,
                          const float *kbias, const int32_t *mask, float *rowscale) {
    int T = a->T, S = a->S;
    for (int r = 0; r < tn; r++) {
        float *p = P + (size_t)r * ldp;
        int last = last_key(a, t0 + r);
        if (bias)
            for (int s = 0; s <= last; s++) p[s] += bias[(size_t)r * S + s];
        if (kbias)
            for (int s = 0; s <= last; s++) p[s] += kbias[s];
        float l;
        if (rowscale) rowscale[r] = 1.0f;
        if (mask) l = softmax_masked(p, last, ns, mask);
#ifdef M2U_HAVE_ATTN_TILES
        else if (rowscale) l = m2u_attn_tile_softmax(p, last, ns, &rowscale[r]);
#endif
        else l = softmax_fast(p, last, ns);
        if (a->lse) a->lse[(size_t)bh * T + t0 + r] = l;
    }
}

#ifdef M2U_HAVE_ATTN_TILES
/* The blocked forward on attn_tiles.h's register tiles: K and V of every (sequence, kv head)
 * packed once, then the same blocks of QBLK query rows, scores and softmax as below. */
/* 48 rows (8 tiles): the block's scores, K and V packed stay closer to L2 than with 64 (PaSST,
 * 1190 keys: the P x V product 81 -> 95 GFLOP/s on one core). */
#define TILE_QBLK 48
static int attn_fwd_tiled(const m2u_attn *a, float *out, const float *q, const float *k, const float *v,
                          size_t kbs, size_t vbs) {
    int B = a->B, T = a->T, S = a->S, H = a->H, KV = a->KV, hd = a->hd, group = H / KV, od = H * hd, failed = 0;
    int nblk = (T + TILE_QBLK - 1) / TILE_QBLK, Sp = m2u_tile_round(S, M2U_TILE_COLS);
    long items = (long)B * H * nblk;
    size_t pack = (size_t)Sp * hd;
    float *kp = aligned_alloc(64, (size_t)B * KV * pack * sizeof(float) * 2);
    if (!kp) return m2u_fail("attention: out of memory for the packed keys and values (%d x %d x %d)", B * KV, S, hd);
    float *vp = kp + (size_t)B * KV * pack;
#pragma omp parallel for schedule(static)
    for (int bg = 0; bg < B * KV; bg++) {
        int b = bg / KV, g = bg % KV;
        m2u_attn_pack_k(kp + (size_t)bg * pack, k + (size_t)b * kbs + (size_t)g * hd, a->ks, S, hd);
        m2u_attn_pack_v(vp + (size_t)bg * pack, v + (size_t)b * vbs + (size_t)g * hd, a->vs, S, hd);
    }
#pragma omp parallel
    {
        int rows = m2u_tile_round(TILE_QBLK, M2U_TILE_ROWS);
        float inv[TILE_QBLK]; /* 1 / each row's sum of exponentials */
        float *P = aligned_alloc(64, (size_t)rows * Sp * sizeof(float)),
              *qpk = aligned_alloc(64, (size_t)rows * hd * sizeof(float));
        if (!P || !qpk) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (long it = 0; it < items; it++) {
            if (failed) continue;
            int bh = (int)(it / nblk), t0 = (int)(it % nblk) * TILE_QBLK, b = bh / H, h = bh % H, bg = b * KV + h / group;
            int tn = T - t0 < TILE_QBLK ? T - t0 : TILE_QBLK, ns = last_key(a, t0 + tn - 1) + 1;
            const float *bias = a->bias ? a->bias + ((size_t)(a->bias_heads == 1 ? 0 : h) * T + t0) * S : NULL;
            const float *kbias = a->key_bias ? a->key_bias + (size_t)b * S : NULL;
            const int32_t *mask = a->key_mask ? a->key_mask + (size_t)b * S : NULL;
            m2u_attn_pack_q(qpk, q + ((size_t)b * T + t0) * a->qs + (size_t)h * hd, a->qs, tn, hd);
            m2u_attn_tile_scores(P, Sp, qpk, tn, kp + (size_t)bg * pack, ns, hd, a->scale);
            /* unnormalised exponentials; each output row is scaled by 1 / its sum instead */
            block_softmax(a, P, (size_t)Sp, bh, t0, tn, ns, bias, kbias, mask, inv);
            m2u_attn_tile_pv(out + ((size_t)b * T + t0) * od + (size_t)h * hd, od, P, Sp, tn, vp + (size_t)bg * pack,
                             Sp, ns, hd, inv);
        }
        free(P);
        free(qpk);
    }
    free(kp);
    return failed ? m2u_fail("attention: out of memory for %d x %d scores", TILE_QBLK, S) : 0;
}
#endif

static int attn_fwd_blocked(const m2u_attn *a, float *out, const float *q, const float *k, const float *v,
                            size_t kbs, size_t vbs) {
    int B = a->B, T = a->T, S = a->S, H = a->H, hd = a->hd, group = a->H / a->KV, od = H * hd, failed = 0;
    int nblk = (T + QBLK - 1) / QBLK;
    long items = (long)B * H * nblk;
#ifdef M2U_HAVE_ATTN_TILES
    if (m2u_attn_tiles_ok(hd)) return attn_fwd_tiled(a, out, q, k, v, kbs, vbs);
#endif
#pragma omp parallel
    {
        float *P = malloc((size_t)QBLK * S * sizeof(float));
        if (!P) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (long it = 0; it < items; it++) {
            if (failed) continue;
            int bh = (int)(it / nblk), t0 = (int)(it % nblk) * QBLK, b = bh / H, h = bh % H, g = h / group;
            int tn = T - t0 < QBLK ? T - t0 : QBLK, ns = last_key(a, t0 + tn - 1) + 1;
            const float *qb = q + ((size_t)b * T + t0) * a->qs + (size_t)h * hd;
            const float *kb = k + (size_t)b * kbs + (size_t)g * hd, *vb = v + (size_t)b * vbs + (size_t)g * hd;
            const float *bias = a->bias ? a->bias + ((size_t)(a->bias_heads == 1 ? 0 : h) * T + t0) * S : NULL;
            const float *kbias = a->key_bias ? a->key_bias + (size_t)b * S : NULL;
            const int32_t *mask = a->key_mask ? a->key_mask + (size_t)b * S : NULL;
            m2u_gemm(0, 1, tn, ns, hd, a->scale, qb, a->qs, kb, a->ks, 0.0f, P,
                        ns);
            block_softmax(a, P, (size_t)ns, bh, t0, tn, ns, bias, kbias, mask, NULL);
            m2u_gemm(0, 0, tn, hd, ns, 1.0f, P, ns, vb, a->vs, 0.0f,
                        out + ((size_t)b * T + t0) * od + (size_t)h * hd, od);
        }
        free(P);
    }
    return failed ? m2u_fail("attention: out of memory for %d x %d scores", QBLK, S) : 0;
}

int m2u_attn_fwd(const m2u_attn *a, float *out, float *probs, const float *q, const float *k, const float *v) {
    if (m2u_attn_check(a, "attention")) return -1;
    int B = a->B, T = a->T, S = a->S, H = a->H, hd = a->hd, group = a->H / a->KV, od = H * hd, failed = 0;
    if (B == 0 || T == 0) return 0;
    if (S == 0) {
        for (size_t i = 0; i < (size_t)B * T * od; i++) out[i] = 0.0f;
        return 0;
    }
    size_t kbs = a->kv_bstride ? a->kv_bstride : (size_t)S * a->ks, vbs = a->kv_bstride ? a->kv_bstride : (size_t)S * a->vs;
    if (T == 1 && a->prescale_q) return attn_fwd_one(a, out, probs, q, k, v, kbs, vbs);
    if (!probs && !a->prescale_q) return attn_fwd_blocked(a, out, q, k, v, kbs, vbs);
#pragma omp parallel
    {
        float *own = probs ? NULL : malloc((size_t)T * S * sizeof(float));
        /* prescale_q: the scaled query rows [T][hd] of one head, multiplied with alpha 1 */
        float *qsc = a->prescale_q ? malloc((size_t)T * hd * sizeof(float)) : NULL;
        if ((!probs && !own) || (a->prescale_q && !qsc)) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int bh = 0; bh < B * H; bh++) {
            if (failed) continue;
            int b = bh / H, h = bh % H, g = h / group;
            const float *qb = q + (size_t)b * T * a->qs, *kb = k + (size_t)b * kbs, *vb = v + (size_t)b * vbs;
            const float *bias = a->bias ? a->bias + (size_t)(a->bias_heads == 1 ? 0 : h) * T * S : NULL;
            const float *kbias = a->key_bias ? a->key_bias + (size_t)b * S : NULL;
            const int32_t *mask = a->key_mask ? a->key_mask + (size_t)b * S : NULL;
            float *P = probs ? probs + (size_t)bh * T * S : own;
            const float *qh = qb + (size_t)h * hd;
            int qld = a->qs;
            float alpha = a->scale;
            if (qsc) {
                for (int t = 0; t < T; t++)
                    for (int j = 0; j < hd; j++) qsc[(size_t)t * hd + j] = qh[(size_t)t * a->qs + j] * a->scale;
                qh = qsc, qld = hd, alpha = 1.0f;
            }
            m2u_gemm(0, 1, T, S, hd, alpha, qh, qld, kb + (size_t)g * hd, a->ks,
                        0.0f, P, S);
            for (int t = 0; t < T; t++) {
                float *p = P + (size_t)t * S;
                int last = last_key(a, t);
                if (bias)
                    for (int s = 0; s <= last; s++) p[s] += bias[(size_t)t * S + s];
                if (kbias)
                    for (int s = 0; s <= last; s++) p[s] += kbias[s];
                if (mask) softmax_masked(p, last, S, mask);
                else softmax_prefix(p, last, S);
            }
            m2u_gemm(0, 0, T, hd, S, 1.0f, P, S, vb + (size_t)g * hd, a->vs,
                        0.0f, out + (size_t)b * T * od + (size_t)h * hd, od);
        }
        free(own);
        free(qsc);
    }
    return failed ? m2u_fail("attention: out of memory for %d x %d scores", T, S) : 0;
}

/* p[s] = exp(p[s] - lse) for s <= last (0 beyond, up to S): the forward's probabilities again. */
M2U_VCLONES
static void probs_from_lse(float *p, int last, int S, float lse) {
    for (int s = 0; s <= last; s++) p[s] = m2u_vexpf_neg(p[s] - lse);
    for (int s = last + 1; s < S; s++) p[s] = 0.0f;
}

/* The backward without saved probabilities: per (sequence, kv head), each head of the group and
 * each block of QBLK query rows recomputes its scores (+ bias; hidden keys get 0) and
 * P = exp(score - lse), then the probs path's algebra on the block: dP = dO V^T,
 * dS = P (dP - sum_s P dP), dq += scale dS K, dk += scale dS^T Q, dv += P^T dO. */
static int attn_bwd_recompute(const m2u_attn *a, float *dq, float *dk, float *dv, const float *dout, const float *q,
                              const float *k, const float *v) {
    int B = a->B, T = a->T, S = a->S, H = a->H, KV = a->KV, hd = a->hd, group = H / KV, od = H * hd, failed = 0;
    int qs = a->qs, ks = a->ks, vs = a->vs;
    float scale = a->scale;
#pragma omp parallel
    {
        float *P = malloc((size_t)QBLK * S * sizeof(float)), *dP = malloc((size_t)QBLK * S * sizeof(float));
        if (!P || !dP) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (int bg = 0; bg < B * KV; bg++) {
            if (failed) continue;
            int b = bg / KV, g = bg % KV;
            size_t ko = (size_t)b * S * ks + (size_t)g * hd, vo = (size_t)b * S * vs + (size_t)g * hd;
            const int32_t *mask = a->key_mask ? a->key_mask + (size_t)b * S : NULL;
            for (int h = g * group; h < (g + 1) * group; h++)
                for (int t0 = 0; t0 < T; t0 += QBLK) {
                    int tn = T - t0 < QBLK ? T - t0 : QBLK, ns = last_key(a, t0 + tn - 1) + 1;
                    size_t qo = ((size_t)b * T + t0) * qs + (size_t)h * hd, oo = ((size_t)b * T + t0) * od + (size_t)h * hd;
                    const float *bias = a->bias ? a->bias + ((size_t)(a->bias_heads == 1 ? 0 : h) * T + t0) * S : NULL;
                    const float *lse = a->lse + ((size_t)b * H + h) * T + t0;
                    m2u_gemm(0, 1, tn, ns, hd, scale, q + qo, qs, k + ko, ks,
                                0.0f, P, ns);
                    m2u_gemm(0, 1, tn, ns, hd, 1.0f, dout + oo, od, v + vo, vs,
                                0.0f, dP, ns);
                    for (int r = 0; r < tn; r++) {
                        float *p = P + (size_t)r * ns, *d = dP + (size_t)r * ns;
                        int last = last_key(a, t0 + r);
                        if (bias)
                            for (int s = 0; s <= last; s++) p[s] += bias[(size_t)r * S + s];
#ifdef M2U_HAVE_ATTN_TILES
                        if (!mask && m2u_attn_tile_softmax_bwd(p, d, last, ns, lse[r])) continue;
#endif
                        probs_from_lse(p, last, ns, lse[r]);
                        if (mask)
                            for (int s = 0; s <= last; s++)
                                if (!mask[s]) p[s] = 0.0f;
                        float dot = 0.0f;
                        for (int s = 0; s <= last; s++) dot += p[s] * d[s];
                        for (int s = 0; s <= last; s++) d[s] = p[s] * (d[s] - dot);
                        for (int s = last + 1; s < ns; s++) d[s] = 0.0f;
                    }
                    if (dq)
                        m2u_gemm(0, 0, tn, hd, ns, scale, dP, ns, k + ko, ks,
                                    1.0f, dq + qo, qs);
                    if (dk)
                        m2u_gemm(1, 0, ns, hd, tn, scale, dP, ns, q + qo, qs,
                                    1.0f, dk + ko, ks);
                    if (dv)
                        m2u_gemm(1, 0, ns, hd, tn, 1.0f, P, ns, dout + oo, od,
                                    1.0f, dv + vo, vs);
                }
        }
        free(P);
        free(dP);
    }
    return failed ? m2u_fail("attention backward: out of memory for %d x %d scores", QBLK, S) : 0;
}

int m2u_attn_bwd(const m2u_attn *a, float *dq, float *dk, float *dv, const float *dout, const float *probs,
                 const float *q, const float *k, const float *v) {
    if (m2u_attn_check(a, "attention backward")) return -1;
    /* the decoder conventions exist for inference; a silent wrong gradient would be worse than none */
    if (a->key_bias || a->kv_bstride || a->prescale_q)
        return m2u_fail("attention backward: key_bias, kv_bstride and prescale_q are forward-only (got %s%s%s)",
                        a->key_bias ? "key_bias " : "", a->kv_bstride ? "kv_bstride " : "", a->prescale_q ? "prescale_q" : "");
    if (B_T_S_EMPTY(a)) return 0;
    if (!probs) {
        if (!a->lse) return m2u_fail("attention backward: neither probs nor lse from the forward");
        return attn_bwd_recompute(a, dq, dk, dv, dout, q, k, v);
    }
    int B = a->B, T = a->T, S = a->S, H = a->H, KV = a->KV, hd = a->hd, group = H / KV, od = H * hd, failed = 0;
    int qs = a->qs, ks = a->ks, vs = a->vs;
    float scale = a->scale;
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
                m2u_gemm(0, 1, T, S, hd, 1.0f, dO, od, v + vo, vs, 0.0f, dS, S);
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
                    m2u_gemm(0, 0, T, hd, S, scale, dS, S, k + ko, ks, 1.0f,
                                dq + qo + (size_t)h * hd, qs);
                if (dk)
                    m2u_gemm(1, 0, S, hd, T, scale, dS, S, q + qo + (size_t)h * hd,
                                qs, 1.0f, dk + ko, ks);
                if (dv)
                    m2u_gemm(1, 0, S, hd, T, 1.0f, P, S, dO, od, 1.0f, dv + vo, vs);
            }
        }
        free(dS);
    }
    return failed ? m2u_fail("attention backward: out of memory for %d x %d scores", T, S) : 0;
}
