/* Register-tiled products for the inference attention (attention.c's blocked path), AVX2 + FMA.
 *
 * Why not cblas_sgemm: the blocked forward multiplies each block of 64 query rows by the
 * whole K^T (head dim 64 deep) and then P by the whole V; OpenBLAS packs K^T and V again
 * for every block, scales a C it is told to overwrite, and runs a K = 64 product at 70 % of
 * its large-GEMM rate.  Here K and V are packed once per (sequence, kv head) into the panel
 * layouts the 6 x 16 register tiles read, and the block products run straight from them:
 * PaSST's attention at 1190 tokens went from 90 to about 55 ms per layer on one core.
 *
 * Layouts (Sp = S rounded up to 16; zero padding):
 *   K pack [Sp/16][hd][16]   panel j holds keys 16j..16j+15, one row of 16 per dimension
 *   V pack [hd/w][Sp][w]     panel j holds dimensions wj..wj+w-1, one row of w per key (w = 16,
 *                            or 8 for head dims that are not multiples of 16)
 *   Q pack [ceil(tn/6)][hd][6]  six query rows interleaved per dimension
 * Each output element is one float sum in key (or dimension) order with fused
 * multiply-adds; the scores are multiplied by the scale after the sum, as torch's
 * (q @ k^T) * scale. */
#ifndef M2U_ATTN_TILES_H
#define M2U_ATTN_TILES_H

#include <stddef.h>

#include "vmath_avx2.h"

/* The tiles exist where the AVX2 paths do (x86-64, GCC or clang; AVX2 + FMA chosen at run
 * time); elsewhere the blocked attention keeps cblas. */
#ifdef M2U_HAVE_AVX2_PATHS
#define M2U_HAVE_ATTN_TILES 1

#define M2U_TILE_ROWS 6
#define M2U_TILE_COLS 16

/* 1 when this CPU runs the tiles (AVX2 and FMA) and hd is a multiple of 8. */
int m2u_attn_tiles_ok(int hd);

static inline int m2u_tile_round(int n, int m) { return (n + m - 1) / m * m; }
/* the width of V's panels: 16, or 8 where hd is not a multiple of 16 */
static inline int m2u_tile_vw(int hd) { return hd % 16 == 0 ? 16 : 8; }

void m2u_attn_pack_k(float *dst, const float *k, int ks, int S, int hd);
void m2u_attn_pack_v(float *dst, const float *v, int vs, int S, int hd);
void m2u_attn_pack_q(float *dst, const float *q, int qs, int tn, int hd);

/* P[r][s] = scale * q_r . k_s for r < round(tn, 6) (rows past tn from the zero padding) and
 * s < round(ns, 16); P has row stride ldp >= round(ns, 16). */
void m2u_attn_tile_scores(float *P, int ldp, const float *qpack, int tn, const float *kpack, int ns, int hd,
                          float scale);

/* out[r][j] = (sum_{s < ns} P[r][s] v_s[j]) * rowscale[r] for r < tn, j < hd (rowscale NULL:
 * no factor); out has row stride ldo. */
void m2u_attn_tile_pv(float *out, int ldo, const float *P, int ldp, int tn, const float *vpack, int Sp, int ns,
                      int hd, const float *rowscale);

/* attention.c's softmax_fast (same order of operations, same bits) on 8 lanes: returns the
 * row's log-sum-exp.  inv != NULL: the exponentials are left unnormalised and *inv = 1 / their
 * sum, for m2u_attn_tile_pv to scale the row's output instead (one pass less over the row). */
float m2u_attn_tile_softmax(float *p, int last, int S, float *inv);

/* One row of the backward that recomputes the probabilities from the forward's log-sum-exp,
 * where the CPU has AVX-512 (returns 0 elsewhere, having done nothing; 1 when done):
 * p[s] = exp(p[s] - lse) and d[s] = p[s] (d[s] - sum_s p[s] d[s]) for s <= last, both 0 from
 * last + 1 to n.  The sum runs in 16 lanes of fused multiply-adds, then a fixed tree. */
int m2u_attn_tile_softmax_bwd(float *p, float *d, int last, int n, float lse);

/* y[i] = m2u_vexpf_neg(x[i]) (vmath.h), bit for bit: for the tests. */
void m2u_attn_tile_vexpf(float *y, const float *x, int n);

#endif /* M2U_HAVE_ATTN_TILES */
#endif
