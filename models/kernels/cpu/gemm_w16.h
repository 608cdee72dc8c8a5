/* Products against frozen 16-bit weights (bf16 or f16) that read the weight once, at 2 bytes
 * per value: the conversion to fp32 happens while a block of the weight is packed for the
 * register kernel, instead of widening rows into a scratch buffer that sgemm then reads and
 * packs again.  fp32 accumulation; AVX2 + FMA (+ F16C for f16) only, chosen at run time:
 * callers ask m2u_gemm_w16_ok() and fall back to widening + sgemm otherwise. */
#ifndef M2U_GEMM_W16_H
#define M2U_GEMM_W16_H

#include "ops.h"
#include "vmath_avx2.h"

#ifdef M2U_HAVE_AVX2_PATHS
/* 1 when the CPU has the instructions and w is a 2-byte-aligned bf16 or f16 matrix. */
int m2u_gemm_w16_ok(const m2u_mat *w);

/* y[N, nrows] (leading dim ldy) = beta*y + x[N, cols] @ W[row0:row0+nrows, :]^T
 * (beta 0 never reads y). */
void m2u_gemm_w16_wt(float *y, int ldy, const float *x, int N, const m2u_mat *w, int row0, int nrows, float beta);

/* dx[N, cols] += dy[N, nrows] (leading dim ldy) @ W[row0:row0+nrows, :] */
void m2u_gemm_w16_acc(float *dx, const float *dy, int ldy, int N, const m2u_mat *w, int row0, int nrows);
#endif

#endif
