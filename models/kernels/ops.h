/* Forward and backward kernels on plain fp32 arrays (llm.c style).
 *
 * Conventions: activations are row-major [N, C] with N = batch*time rows.
 * Backward functions ACCUMULATE (+=) into input gradients, because several
 * consumers share one input (q/k/v all read the same normed x).  Parameter
 * gradients are accumulated too, so gradient accumulation over micro-batches
 * needs no extra buffers.  A NULL parameter-gradient pointer means "frozen":
 * that gradient is neither computed nor stored. */
#ifndef M2U_OPS_H
#define M2U_OPS_H

#include "attention.h"
#include "dtype.h"

#include <stddef.h>
#include <stdint.h>

/* A frozen weight matrix [rows, cols] in its stored type (often a view into a
 * mapped checkpoint).  fp32 and aligned -> BLAS reads it directly; otherwise
 * rows are widened to fp32 block by block just before use. */
typedef struct {
    m2u_dtype dtype;
    const void *data;
    int rows, cols;
    /* 1: a bf16 matrix may be multiplied in bf16 arithmetic (the activations rounded to bf16,
     * fp32 accumulation) where the CPU does that natively: train.precision bf16's compute path
     * (cpu/gemm_bf16.h).  0: fp32 arithmetic whatever the storage, the exact path. */
    int bf16_math;
    /* fp32 matrices only: NULL, or W packed for y = x W^T (cpu/linear_pack.c; not owned), which
     * the CPU's m2u_matmul_wt reads for products over every row into a y it does not read
     * (beta 0).  Other backends ignore it. */
    struct m2u_linear_pack *pack;
} m2u_mat;

/* bf16_math (cpu/gemm_bf16.c).  1 when bf16 products run natively here (oneDNN in the build, its effective ISA at least
 * avx512_core_bf16) and they are not switched off (m2u_gemm_bf16_enable). */
int m2u_gemm_bf16_ok(void);

/* want = 0: fp32 arithmetic on bf16 weights even where bf16 products exist (tests compare the
 * two); 1: the default.  Returns m2u_gemm_bf16_ok() afterwards.  A product already running finishes
 * the way it started. */
int m2u_gemm_bf16_enable(int want);

/* y[N, nrows] (leading dim ldy) = beta*y + x[N, cols] @ W[row0:row0+nrows, :]^T */
void m2u_matmul_wt(float *y, int ldy, const float *x, int N, const m2u_mat *w, int row0, int nrows, float beta);
/* dx[N, cols] += dy[N, nrows] (leading dim ldy) @ W[row0:row0+nrows, :] */
void m2u_matmul_w_acc(float *dx, const float *dy, int ldy, int N, const m2u_mat *w, int row0, int nrows);
/* The same two products through a 1 KiB stack buffer, 256 weights at a time, without any
 * heap memory: slow, and what the two above fall back to when the widened block cannot be
 * allocated (these ops cannot fail).  Sums in another order than BLAS's. */
void m2u_matmul_wt_stream(float *y, int ldy, const float *x, int N, const m2u_mat *w, int row0, int nrows, float beta);
void m2u_matmul_w_acc_stream(float *dx, const float *dy, int ldy, int N, const m2u_mat *w, int row0, int nrows);
/* One row of W widened to fp32. */
void m2u_mat_row(const m2u_mat *w, int row, float *dst);

/* RMSNorm as transformers' LlamaRMSNorm: out = w * (x * rsqrt(mean(x^2) + eps)). rstd[N] saved for backward. */
void m2u_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps);
void m2u_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, int N,
                     int C);

/* RoPE in the Hugging Face layout (rotate_half: dim j pairs with j + hd/2).
 * The angles depend only on positions, so they are tabulated once per forward
 * (cos/sin [N][hd/2], row r at position pos[r]) and shared by q, k, every layer
 * and the backward.  x is [N rows][n_heads][hd] with row stride `stride` floats.
 * The backward is the inverse rotation. */
void m2u_rope_inv_freq(float *inv_freq, int head_dim, float theta);
void m2u_rope_table(float *cos_t, float *sin_t, const int *pos, int N, int head_dim, const float *inv_freq);
void m2u_rope_fwd(float *x, int N, int stride, int n_heads, int head_dim, const float *cos_t, const float *sin_t);
void m2u_rope_bwd(float *dx, int N, int stride, int n_heads, int head_dim, const float *cos_t, const float *sin_t);

/* SiLU-gated unit: out = silu(g) * u. */
void m2u_swiglu_fwd(float *out, const float *g, const float *u, size_t n);
void m2u_swiglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n);

/* Cross-entropy over rows [N][V] whose target is in [0, V) (any other target,
 * e.g. -1, is ignored): returns the mean over counted rows, their count in
 * *n_valid, and each row's log-sum-exp in lse[N].  When dlogits is not NULL it
 * also gets, in the same pass, each row's gradient of that row's own loss:
 * softmax - onehot on counted rows and 0 on the others (written, not
 * accumulated; it must not alias logits).  The backward multiplies it by the
 * loss's weight (1 / n_valid, the gradient accumulation's share, ...), which is
 * known only then, so the logits are read once per training step, not twice. */
double m2u_cross_entropy(const float *logits, const int32_t *targets, int N, int V, float *lse, int *n_valid,
                         float *dlogits);

/* Dropout mask from a counter-based hash, so backward regenerates the forward
 * mask without storing it: element i of stream (seed, tag) is kept iff its hash
 * is >= p * 2^32.  out = keep ? x / (1 - p) : 0.  Works in place. */
void m2u_dropout(float *out, const float *x, size_t n, float p, uint64_t seed, uint64_t tag);

/* NULL when the BLAS in use shares OpenMP's thread pool; otherwise a warning
 * to show the user (a pthread OpenBLAS next to our OpenMP loops oversubscribes
 * the cores and runs several times slower). */
const char *m2u_blas_threading_warning(void);

/* Softmax over the last dimension of rows [N][V] (in place). */
void m2u_softmax_rows(float *x, int N, int V);

#endif
