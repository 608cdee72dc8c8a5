/* Products against frozen bf16 weights in bf16 arithmetic: the activations are rounded to bf16
 * (to nearest even) and oneDNN's matmul runs bf16 x bf16 with fp32 accumulation and an fp32
 * result.  This is the bf16 compute path of train.precision: bf16 (m2u_mat.bf16_math), used only
 * where the CPU multiplies bf16 natively (AVX-512 BF16: oneDNN's avx512_core_bf16 kernels, about
 * twice its fp32 sgemm).  Elsewhere, and in a build without oneDNN, the callers keep fp32
 * arithmetic on the bf16 weights (gemm_w16.c): rounding the activations there would cost
 * precision and buy nothing. */
#ifndef M2U_GEMM_BF16_H
#define M2U_GEMM_BF16_H

#include "ops.h"

/* m2u_gemm_bf16_ok and m2u_gemm_bf16_enable are in ops.h (callers above the kernels ask them). */

/* y[N, nrows] (leading dim ldy) = beta*y + bf16(x[N, cols]) @ W[row0:row0+nrows, :]^T, W bf16.
 * 0 when done; -1 when oneDNN could not (no memory, an unsupported shape): y is then untouched
 * and the caller computes it another way. */
int m2u_gemm_bf16_wt(float *y, int ldy, const float *x, int N, const m2u_mat *w, int row0, int nrows, float beta);

/* dx[N, cols] += bf16(dy[N, nrows] (leading dim ldy)) @ W[row0:row0+nrows, :]; 0 or -1 as above. */
int m2u_gemm_bf16_acc(float *dx, const float *dy, int ldy, int N, const m2u_mat *w, int row0, int nrows);

#endif
