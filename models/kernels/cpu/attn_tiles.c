#include "attn_tiles.h"

#include <math.h>
#include <string.h>

#ifdef M2U_HAVE_ATTN_TILES
#include "vmath_avx2.h"

#include <stdint.h>

/* ---- packing (one pass over K, V or a block of Q) ---------------------------------------------- */

/* A whole panel of 16 keys on AVX-512: each dimension's 16 values in one gather (the scalar
 * transpose wrote one float at a time). */
M2U_AVX512_TARGET static void pack_k_panel16(float *panel, const float *k, int ks, int hd) {
    __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                     _mm512_set1_epi32(ks));
    for (int d = 0; d < hd; d++) _mm512_storeu_ps(panel + (size_t)d * 16, _mm512_i32gather_ps(idx, k + d, 4));
}

void m2u_attn_pack_k(float *dst, const float *k, int ks, int S, int hd) {
    int Sp = m2u_tile_round(S, M2U_TILE_COLS);
    int wide = M2U_TILE_COLS == 16 && m2u_avx512() && (long)15 * ks <= INT32_MAX / 4;
    for (int s0 = 0; s0 < Sp; s0 += M2U_TILE_COLS) {
        float *panel = dst + (size_t)s0 * hd;
        if (wide && s0 + 16 <= S) {
            pack_k_panel16(panel, k + (size_t)s0 * ks, ks, hd);
            continue;
        }
        for (int c = 0; c < M2U_TILE_COLS; c++) {
            int s = s0 + c;
            const float *row = k + (size_t)s * ks;
            for (int d = 0; d < hd; d++) panel[(size_t)d * M2U_TILE_COLS + c] = s < S ? row[d] : 0.0f;
        }
    }
}

/* A panel row is 8 or 16 floats: inlined with vw a constant, each row is copied in one or two
 * vector moves rather than a memcpy call, which was as slow as the copies themselves. */
static inline __attribute__((always_inline)) void pack_v_rows(float *panel, const float *v, int vs, int S, int vw) {
    for (int s = 0; s < S; s++)
        for (int j = 0; j < vw; j++) panel[(size_t)s * vw + j] = v[(size_t)s * vs + j];
}

void m2u_attn_pack_v(float *dst, const float *v, int vs, int S, int hd) {
    int Sp = m2u_tile_round(S, M2U_TILE_COLS), vw = m2u_tile_vw(hd);
    for (int j0 = 0; j0 < hd; j0 += vw) {
        float *panel = dst + (size_t)j0 * Sp;
        if (vw == 16) pack_v_rows(panel, v + j0, vs, S, 16);
        else pack_v_rows(panel, v + j0, vs, S, 8);
        memset(panel + (size_t)S * vw, 0, (size_t)(Sp - S) * vw * sizeof(float));
    }
}

void m2u_attn_pack_q(float *dst, const float *q, int qs, int tn, int hd) {
    int tp = m2u_tile_round(tn, M2U_TILE_ROWS);
    for (int r = 0; r < tp; r++) {
        float *col = dst + (size_t)(r / M2U_TILE_ROWS) * M2U_TILE_ROWS * hd + r % M2U_TILE_ROWS;
        const float *row = q + (size_t)r * qs;
        if (r < tn)
            for (int d = 0; d < hd; d++) col[(size_t)d * M2U_TILE_ROWS] = row[d];
        else
            for (int d = 0; d < hd; d++) col[(size_t)d * M2U_TILE_ROWS] = 0.0f;
    }
}

#define TILE_TARGET M2U_AVX2_TARGET

int m2u_attn_tiles_ok(int hd) { return hd > 0 && hd % 8 == 0 && m2u_avx2_fma(); }

TILE_TARGET void m2u_attn_tile_vexpf(float *y, const float *x, int n) {
    int n8 = n - n % 8;
    for (int i = 0; i < n8; i += 8) _mm256_storeu_ps(y + i, m2u_vexpf_neg8(_mm256_loadu_ps(x + i)));
    if (n8 < n) {
        float t[8] = {0};
        memcpy(t, x + n8, (size_t)(n - n8) * sizeof(float));
        _mm256_storeu_ps(t, m2u_vexpf_neg8(_mm256_loadu_ps(t)));
        memcpy(y + n8, t, (size_t)(n - n8) * sizeof(float));
    }
}

/* The softmax's order (attention.c's softmax_fast, and the bits test_kernels checks): the row's
 * max; the exponentials added into 8 float lanes, value s into lane s % 8 in key order, the
 * last partial group too; then the lanes in order 0..7; one reciprocal.  The last partial group
 * runs as one masked vector (its missing lanes add exact zeros), where a scalar tail spent a
 * whole vector exponential on each of up to 7 values: with a causal mask every row ends in one,
 * and they were half the forward's softmax time at 128 keys.  softmax_end: both widths' end,
 * from the 8 lanes: the sum in order, its reciprocal (kept in *inv_out, or the row scaled by
 * it), zeros from n to S, and the row's log-sum-exp.  Inlined, so it runs in the caller's ISA
 * and the compiler vectorises the scaling there. */
static inline __attribute__((always_inline)) float softmax_end(float *p, int n, int S, const float lanes[8], float mx,
                                                               float *inv_out) {
    float sum = 0.0f;
    for (int j = 0; j < 8; j++) sum += lanes[j];
    float inv = 1.0f / sum;
    if (inv_out)
        *inv_out = inv;
    else
        for (int s = 0; s < n; s++) p[s] *= inv;
    for (int s = n; s < S; s++) p[s] = 0.0f;
    return mx + logf(sum);
}

/* 16 lanes where the CPU has AVX-512; each exponential vector's halves go into the 8 lanes. */
M2U_AVX512_TARGET static float softmax16(float *p, int n, int S, float *inv_out) {
    int n16 = n - n % 16;
    __mmask16 tail = (__mmask16)((1u << (n % 16)) - 1u);
    /* max ignores NaN: VMAXPS returns its second operand (the running max) for a NaN logit */
    __m512 m = _mm512_set1_ps(-INFINITY);
    for (int s = 0; s < n16; s += 16) m = _mm512_max_ps(_mm512_loadu_ps(p + s), m);
    if (tail) m = _mm512_mask_max_ps(m, tail, _mm512_maskz_loadu_ps(tail, p + n16), m);
    float ml[16], mx = -INFINITY;
    _mm512_storeu_ps(ml, m);
    for (int j = 0; j < 16; j++) mx = ml[j] > mx ? ml[j] : mx;
    __m512 vm = _mm512_set1_ps(mx);
    __m256 acc = _mm256_setzero_ps();
    for (int s = 0; s < n16; s += 16) {
        __m512 e = m2u_vexpf_neg16(_mm512_sub_ps(_mm512_loadu_ps(p + s), vm));
        _mm512_storeu_ps(p + s, e);
        acc = _mm256_add_ps(acc, _mm512_castps512_ps256(e));
        acc = _mm256_add_ps(acc, _mm512_extractf32x8_ps(e, 1));
    }
    if (tail) {
        __m512 e = _mm512_maskz_mov_ps(tail, m2u_vexpf_neg16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, p + n16), vm)));
        _mm512_mask_storeu_ps(p + n16, tail, e);
        acc = _mm256_add_ps(acc, _mm512_castps512_ps256(e));
        acc = _mm256_add_ps(acc, _mm512_extractf32x8_ps(e, 1));
    }
    float al[8];
    _mm256_storeu_ps(al, acc);
    return softmax_end(p, n, S, al, mx, inv_out);
}

TILE_TARGET float m2u_attn_tile_softmax(float *p, int last, int S, float *inv_out) {
    int n = last + 1, n8 = n - n % 8, r = n % 8;
    if (m2u_avx512()) return softmax16(p, n, S, inv_out);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i tm = _mm256_cmpgt_epi32(_mm256_set1_epi32(r), lane); /* the last partial group's lanes */
    __m256 m = _mm256_set1_ps(-INFINITY);
    for (int s = 0; s < n8; s += 8) m = _mm256_max_ps(_mm256_loadu_ps(p + s), m);
    if (r) m = _mm256_blendv_ps(m, _mm256_max_ps(_mm256_maskload_ps(p + n8, tm), m), _mm256_castsi256_ps(tm));
    float ml[8], mx = -INFINITY;
    _mm256_storeu_ps(ml, m);
    for (int j = 0; j < 8; j++) mx = ml[j] > mx ? ml[j] : mx;
    __m256 vm = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    for (int s = 0; s < n8; s += 8) {
        __m256 e = m2u_vexpf_neg8(_mm256_sub_ps(_mm256_loadu_ps(p + s), vm));
        _mm256_storeu_ps(p + s, e);
        acc = _mm256_add_ps(acc, e);
    }
    if (r) {
        __m256 e = _mm256_and_ps(m2u_vexpf_neg8(_mm256_sub_ps(_mm256_maskload_ps(p + n8, tm), vm)), _mm256_castsi256_ps(tm));
        _mm256_maskstore_ps(p + n8, tm, e);
        acc = _mm256_add_ps(acc, e);
    }
    float al[8];
    _mm256_storeu_ps(al, acc);
    return softmax_end(p, n, S, al, mx, inv_out);
}

M2U_AVX512_TARGET static void softmax_bwd16(float *p, float *d, int m, int n, float lse) {
    int m16 = m - m % 16;
    __mmask16 tail = (__mmask16)((1u << (m % 16)) - 1u);
    __m512 vl = _mm512_set1_ps(lse), acc = _mm512_setzero_ps();
    for (int s = 0; s < m16; s += 16) {
        __m512 e = m2u_vexpf_neg16(_mm512_sub_ps(_mm512_loadu_ps(p + s), vl));
        _mm512_storeu_ps(p + s, e);
        acc = _mm512_fmadd_ps(e, _mm512_loadu_ps(d + s), acc);
    }
    if (tail) {
        __m512 e = _mm512_maskz_mov_ps(tail, m2u_vexpf_neg16(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, p + m16), vl)));
        _mm512_mask_storeu_ps(p + m16, tail, e);
        acc = _mm512_fmadd_ps(e, _mm512_maskz_loadu_ps(tail, d + m16), acc);
    }
    __m512 vd = _mm512_set1_ps(_mm512_reduce_add_ps(acc));
    for (int s = 0; s < m16; s += 16)
        _mm512_storeu_ps(d + s, _mm512_mul_ps(_mm512_loadu_ps(p + s), _mm512_sub_ps(_mm512_loadu_ps(d + s), vd)));
    if (tail)
        _mm512_mask_storeu_ps(d + m16, tail,
                              _mm512_mul_ps(_mm512_maskz_loadu_ps(tail, p + m16),
                                            _mm512_sub_ps(_mm512_maskz_loadu_ps(tail, d + m16), vd)));
    for (int s = m; s < n; s++) p[s] = 0.0f, d[s] = 0.0f;
}

int m2u_attn_tile_softmax_bwd(float *p, float *d, int last, int n, float lse) {
    if (!m2u_avx512()) return 0;
    softmax_bwd16(p, d, last + 1, n, lse);
    return 1;
}

/* 6 query rows x 16 keys, hd deep: 12 accumulators, two K loads and six broadcasts per step. */
TILE_TARGET static void scores_6x16(float *P, int ldp, const float *qp, const float *kp, int hd, __m256 scale) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int d = 0; d < hd; d++, qp += M2U_TILE_ROWS, kp += M2U_TILE_COLS) {
        __m256 b0 = _mm256_loadu_ps(kp), b1 = _mm256_loadu_ps(kp + 8), a;
        a = _mm256_broadcast_ss(qp + 0), c00 = _mm256_fmadd_ps(a, b0, c00), c01 = _mm256_fmadd_ps(a, b1, c01);
        a = _mm256_broadcast_ss(qp + 1), c10 = _mm256_fmadd_ps(a, b0, c10), c11 = _mm256_fmadd_ps(a, b1, c11);
        a = _mm256_broadcast_ss(qp + 2), c20 = _mm256_fmadd_ps(a, b0, c20), c21 = _mm256_fmadd_ps(a, b1, c21);
        a = _mm256_broadcast_ss(qp + 3), c30 = _mm256_fmadd_ps(a, b0, c30), c31 = _mm256_fmadd_ps(a, b1, c31);
        a = _mm256_broadcast_ss(qp + 4), c40 = _mm256_fmadd_ps(a, b0, c40), c41 = _mm256_fmadd_ps(a, b1, c41);
        a = _mm256_broadcast_ss(qp + 5), c50 = _mm256_fmadd_ps(a, b0, c50), c51 = _mm256_fmadd_ps(a, b1, c51);
    }
    _mm256_storeu_ps(P, _mm256_mul_ps(c00, scale)), _mm256_storeu_ps(P + 8, _mm256_mul_ps(c01, scale)), P += ldp;
    _mm256_storeu_ps(P, _mm256_mul_ps(c10, scale)), _mm256_storeu_ps(P + 8, _mm256_mul_ps(c11, scale)), P += ldp;
    _mm256_storeu_ps(P, _mm256_mul_ps(c20, scale)), _mm256_storeu_ps(P + 8, _mm256_mul_ps(c21, scale)), P += ldp;
    _mm256_storeu_ps(P, _mm256_mul_ps(c30, scale)), _mm256_storeu_ps(P + 8, _mm256_mul_ps(c31, scale)), P += ldp;
    _mm256_storeu_ps(P, _mm256_mul_ps(c40, scale)), _mm256_storeu_ps(P + 8, _mm256_mul_ps(c41, scale)), P += ldp;
    _mm256_storeu_ps(P, _mm256_mul_ps(c50, scale)), _mm256_storeu_ps(P + 8, _mm256_mul_ps(c51, scale));
}

/* Where the CPU has AVX-512: two packed groups of 6 query rows x 16 keys, one 16-key load and
 * twelve broadcast multiply-adds per dimension (twice the 8-lane tile's work per instruction).
 * Each score is still one fused multiply-add chain in dimension order, then the scale: the
 * same bits as scores_6x16. */
M2U_AVX512_TARGET static void scores_12x16(float *P, int ldp, const float *qp, const float *kp, int hd, float scale) {
    __m512 c[12];
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) c[i] = _mm512_setzero_ps();
    const float *q1 = qp + (size_t)M2U_TILE_ROWS * hd; /* the second group of 6 */
    for (int d = 0; d < hd; d++, qp += M2U_TILE_ROWS, q1 += M2U_TILE_ROWS, kp += M2U_TILE_COLS) {
        __m512 b = _mm512_loadu_ps(kp);
#pragma GCC unroll 6
        for (int i = 0; i < 6; i++) {
            c[i] = _mm512_fmadd_ps(_mm512_set1_ps(qp[i]), b, c[i]);
            c[6 + i] = _mm512_fmadd_ps(_mm512_set1_ps(q1[i]), b, c[6 + i]);
        }
    }
    __m512 sc = _mm512_set1_ps(scale);
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) _mm512_storeu_ps(P + (size_t)i * ldp, _mm512_mul_ps(c[i], sc));
}

TILE_TARGET void m2u_attn_tile_scores(float *P, int ldp, const float *qpack, int tn, const float *kpack, int ns,
                                      int hd, float scale) {
    __m256 sc = _mm256_set1_ps(scale);
    int np = m2u_tile_round(ns, M2U_TILE_COLS), tp = m2u_tile_round(tn, M2U_TILE_ROWS);
    int wide = m2u_avx512();
    /* key panel outer: its hd x 16 floats stay in L1 while every row group passes over it */
    for (int s0 = 0; s0 < np; s0 += M2U_TILE_COLS) {
        int r0 = 0;
        if (wide)
            for (; r0 + 2 * M2U_TILE_ROWS <= tp; r0 += 2 * M2U_TILE_ROWS)
                scores_12x16(P + (size_t)r0 * ldp + s0, ldp, qpack + (size_t)r0 * hd, kpack + (size_t)s0 * hd, hd,
                             scale);
        for (; r0 < tp; r0 += M2U_TILE_ROWS)
            scores_6x16(P + (size_t)r0 * ldp + s0, ldp, qpack + (size_t)r0 * hd, kpack + (size_t)s0 * hd, hd, sc);
    }
}

/* mr (<= 6) rows of P x one 16-wide V panel over ns keys.  Inlined with a constant mr, the
 * accumulators stay in registers. */
TILE_TARGET static inline __attribute__((always_inline)) void pv_tile(float *out, int ldo, const float *P, int ldp,
                                                                      const float *vp, int ns, int mr,
                                                                      const float *rs) {
    __m256 c0[M2U_TILE_ROWS], c1[M2U_TILE_ROWS];
#pragma GCC unroll 6
    for (int i = 0; i < M2U_TILE_ROWS; i++) c0[i] = c1[i] = _mm256_setzero_ps();
    for (int s = 0; s < ns; s++, vp += M2U_TILE_COLS) {
        __m256 b0 = _mm256_loadu_ps(vp), b1 = _mm256_loadu_ps(vp + 8);
#pragma GCC unroll 6
        for (int i = 0; i < M2U_TILE_ROWS; i++)
            if (i < mr) {
                __m256 a = _mm256_broadcast_ss(P + (size_t)i * ldp + s);
                c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
                c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
            }
    }
#pragma GCC unroll 6
    for (int i = 0; i < M2U_TILE_ROWS; i++)
        if (i < mr) {
            __m256 sc = _mm256_set1_ps(rs ? rs[i] : 1.0f);
            _mm256_storeu_ps(out + (size_t)i * ldo, _mm256_mul_ps(c0[i], sc));
            _mm256_storeu_ps(out + (size_t)i * ldo + 8, _mm256_mul_ps(c1[i], sc));
        }
}

/* The same with 8-wide V panels (head dims that are multiples of 8 but not 16: HTSAT's 24). */
TILE_TARGET static inline __attribute__((always_inline)) void pv_tile8(float *out, int ldo, const float *P, int ldp,
                                                                       const float *vp, int ns, int mr,
                                                                       const float *rs) {
    __m256 c0[M2U_TILE_ROWS];
#pragma GCC unroll 6
    for (int i = 0; i < M2U_TILE_ROWS; i++) c0[i] = _mm256_setzero_ps();
    for (int s = 0; s < ns; s++, vp += 8) {
        __m256 b0 = _mm256_loadu_ps(vp);
#pragma GCC unroll 6
        for (int i = 0; i < M2U_TILE_ROWS; i++)
            if (i < mr) c0[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(P + (size_t)i * ldp + s), b0, c0[i]);
    }
#pragma GCC unroll 6
    for (int i = 0; i < M2U_TILE_ROWS; i++)
        if (i < mr) _mm256_storeu_ps(out + (size_t)i * ldo, _mm256_mul_ps(c0[i], _mm256_set1_ps(rs ? rs[i] : 1.0f)));
}

#define PV_CASES(fn)                                                                                                   \
    switch (tn - r0 < M2U_TILE_ROWS ? tn - r0 : M2U_TILE_ROWS) {                                                       \
    case 1: fn(o, ldo, p, ldp, vp, ns, 1, r); break;                                                                      \
    case 2: fn(o, ldo, p, ldp, vp, ns, 2, r); break;                                                                      \
    case 3: fn(o, ldo, p, ldp, vp, ns, 3, r); break;                                                                      \
    case 4: fn(o, ldo, p, ldp, vp, ns, 4, r); break;                                                                      \
    case 5: fn(o, ldo, p, ldp, vp, ns, 5, r); break;                                                                      \
    default: fn(o, ldo, p, ldp, vp, ns, 6, r); break;                                                                     \
    }

/* 12 rows of P x one 16-wide V panel on 16 lanes: each output the same multiply-add chain in
 * key order as pv_tile's, then the row's factor, so the same bits. */
M2U_AVX512_TARGET static void pv_tile12(float *out, int ldo, const float *P, int ldp, const float *vp, int ns,
                                        const float *rs) {
    __m512 c[12];
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) c[i] = _mm512_setzero_ps();
    for (int s = 0; s < ns; s++, vp += M2U_TILE_COLS) {
        __m512 b = _mm512_loadu_ps(vp);
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) c[i] = _mm512_fmadd_ps(_mm512_set1_ps(P[(size_t)i * ldp + s]), b, c[i]);
    }
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++)
        _mm512_storeu_ps(out + (size_t)i * ldo, _mm512_mul_ps(c[i], _mm512_set1_ps(rs ? rs[i] : 1.0f)));
}

TILE_TARGET void m2u_attn_tile_pv(float *out, int ldo, const float *P, int ldp, int tn, const float *vpack, int Sp,
                                  int ns, int hd, const float *rowscale) {
    int vw = m2u_tile_vw(hd), r0 = 0;
    if (vw == 16 && m2u_avx512())
        for (; r0 + 12 <= tn; r0 += 12)
            for (int j0 = 0; j0 < hd; j0 += 16)
                pv_tile12(out + (size_t)r0 * ldo + j0, ldo, P + (size_t)r0 * ldp, ldp, vpack + (size_t)j0 * Sp, ns,
                          rowscale ? rowscale + r0 : NULL);
    for (; r0 < tn; r0 += M2U_TILE_ROWS)
        for (int j0 = 0; j0 < hd; j0 += vw) {
            float *o = out + (size_t)r0 * ldo + j0;
            const float *p = P + (size_t)r0 * ldp, *vp = vpack + (size_t)j0 * Sp, *r = rowscale ? rowscale + r0 : NULL;
            if (vw == 16) PV_CASES(pv_tile)
            else PV_CASES(pv_tile8)
        }
}

#endif
