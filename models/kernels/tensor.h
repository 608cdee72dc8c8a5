/* Small building blocks the networks need besides the layer kernels of ops.h / ops_extra.h:
 * plain fp32 matrix products (the LoRA factors, trainable head rows, adapter blocks),
 * element-wise adds, bias rows, embedding gather / scatter-add, the GELUs and the softmax
 * backward.  Conventions as in ops.h: row-major, *_acc / backward functions accumulate.
 * They live here so that models/nets holds no BLAS call and no OpenMP loop. */
#ifndef M2U_TENSOR_H
#define M2U_TENSOR_H

#include "ops.h"

#include <stddef.h>
#include <stdint.h>

/* C[M, N] = alpha * op(A) op(B) + beta * C, row-major with leading dimensions (floats);
 * op(X) = X^T when trans_x.  A is [M, K] (or [K, M] transposed), B is [K, N] (or [N, K]). */
void m2u_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc);
/* m2u_gemm for products where M or N is small: a LoRA rank (gemm_thin.c).  With AVX2 and
 * min(M, N) at most M2U_GEMM_THIN_MAX (16 with A transposed) and at most K, no operand is packed
 * but a transposed B (K x N, small here), and each element of C is summed in K order by one
 * thread, so the result is the same for any thread count; otherwise it is m2u_gemm. */
#define M2U_GEMM_THIN_MAX 64
void m2u_gemm_thin(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc);
/* y[M or N] = alpha * op(A) x + beta * y for A [M, N] row-major (leading dim lda). */
void m2u_gemv(int trans_a, int M, int N, float alpha, const float *A, int lda, const float *x, float beta, float *y);

/* y += alpha * x (BLAS saxpy: the product is rounded before the add) */
void m2u_axpy(int n, float alpha, const float *x, float *y);
/* y += x */
void m2u_add_inplace(float *y, const float *x, size_t n);
/* out = a + b (out may alias a or b) */
void m2u_add(float *out, const float *a, const float *b, size_t n);
/* y[n][j] += b[j] for N rows of C */
void m2u_bias_add_rows(float *y, const float *b, int N, int C);
/* db[j] += sum_n dy[n][j], each column summed in fp32 in row order */
void m2u_bias_grad(float *db, const float *dy, int N, int C);
/* x[n][c] = (x[n][c] - mean[c]) * rstd[c] * w[c] + b[c]: a per-channel normalisation whose
 * statistics were taken elsewhere (MERT's feature norm over time). */
void m2u_channel_affine(float *x, int N, int C, const float *mean, const float *rstd, const float *w, const float *b);
/* m2u_channel_affine followed by m2u_gelu_fwd in place, with the same bits, in one pass over
 * memory: each block of rows is normalised and then activated while it is in cache. */
void m2u_channel_affine_gelu(float *x, int N, int C, const float *mean, const float *rstd, const float *w,
                             const float *b);
/* acc[c] = mean over the N rows of x[n][c], summed in double (long windows). */
void m2u_col_mean(double *acc, const float *x, int N, int C);

/* Embedding gather: x[n] = row ids[n] of the table, where rows >= rows_start come from the
 * fp32 array extra [*, C] (trainable new tokens) and the others from the stored-dtype table.
 * ids must be valid (checked by the caller). */
void m2u_embedding_fwd(float *x, const int32_t *ids, int N, const m2u_mat *table, const float *extra, int rows_start);
/* Scatter-add: dextra[ids[n] - rows_start] += dx[n] for rows >= rows_start (the frozen
 * table has no gradient).  Serial: two positions may hold the same token. */
void m2u_embedding_bwd(float *dextra, const float *dx, const int32_t *ids, int N, int C, int rows_start);

/* att[b*T + t][h] += tanh(gate[h]) * av[b][h / (H/KV)] (M2UGen's gated adapter prefix, length 1). */
void m2u_head_gate_add(float *att, const float *av, const float *gate, int B, int T, int H, int KV, int hd);

/* GELU, erf form and tanh-approximated ("gelu_new"), fp32 as torch's fp32 kernels (the erf is
 * PyTorch's vectorised Abramowitz & Stegun 7.1.26, see kernels/cpu/vmath.h).  Forward may work in
 * place; backward from the input accumulates dx += dout * gelu'(x).  m2u_gelu_span: the same on
 * the calling thread only. */
void m2u_gelu_fwd(float *out, const float *x, size_t n);
void m2u_gelu_span(float *out, const float *x, size_t n);
void m2u_gelu_bwd(float *dx, const float *dout, const float *x, size_t n);
void m2u_gelu_tanh_fwd(float *out, const float *x, size_t n);
void m2u_gelu_tanh_bwd(float *dx, const float *dout, const float *x, size_t n);

/* Backward of m2u_softmax_rows from its output y: dx += y * (dy - sum(y * dy)). */
void m2u_softmax_bwd(float *dx, const float *dy, const float *y, int N, int V);

/* Backward of m2u_head_gate_add: dgate[h] += (1 - tanh^2(gate[h])) * sum over b, t, d of
 * datt * av (summed in double per head, in (b, t, d) order), dav[b][kv head] += tanh(gate[h])
 * * datt summed over t and the heads of its group (in head order).  Serial per head: each head
 * reads all B*T rows and heads of a group share dav. */
void m2u_head_gate_bwd(float *dgate, float *dav, const float *datt, const float *av, const float *gate, int B, int T,
                       int H, int KV, int hd);

/* T5's RMSNorm (T5LayerNorm): out = w * (x * rsqrt(mean(x^2) + eps)), the square sum in
 * double per row and the weight applied last (LLaMA's m2u_rmsnorm_fwd sums in float and keeps
 * rstd for a backward; T5 here is inference only).  out must not alias x. */
void m2u_rmsnorm_dsum_fwd(float *out, const float *x, const float *w, int N, int C, float eps);

/* Activations by name, fp32, for networks that pick one from their config (T5's
 * dense_act_fn).  Element-wise, x[i] = act(x[i]) * gate[i] (gate NULL: act(x[i])); in place. */
typedef enum { M2U_KACT_RELU, M2U_KACT_GELU, M2U_KACT_GELU_TANH, M2U_KACT_SILU } m2u_kact;
void m2u_act_gated_fwd(float *x, const float *gate, size_t n, m2u_kact act);

/* out[i] = alpha * x[i] (out may alias x) */
void m2u_scale(float *out, const float *x, float alpha, size_t n);
/* x[0..n) = +0, in blocks across the threads: a gradient buffer of a few MB cleared by one
 * thread leaves the others idle meanwhile */
void m2u_zero(float *x, size_t n);
/* Backward of an in-place ReLU whose output was y: dx[i] = 0 where !(y[i] > 0), else kept
 * (m2u_relu_bwd accumulates into a separate dx; this masks a gradient already in place). */
void m2u_relu_mask(float *dx, const float *y, size_t n);
/* Backward of a post-norm residual block out = LayerNorm(r), r = h + sub(h): from G = d out,
 * A = d r (overwritten, not accumulated), dw/db accumulate, and G = A (the residual's share of
 * d h; the caller adds the sublayer's). */
void m2u_layernorm_residual_bwd(float *G, float *A, float *dw, float *db, const float *r, const float *w,
                                const float *mean, const float *rstd, int N, int C);

/* Serial double sum of x[0..n) in index order (a scalar gradient: a bias shared by all). */
double m2u_sum(const float *x, size_t n);
/* x[i] += c */
void m2u_add_scalar(float *x, float c, size_t n);
/* Wav2Vec2FeatureExtractor.zero_mean_unit_var_norm: mean and variance accumulated in double
 * (serially, in sample order) and rounded to float32 as numpy's float32 mean / var are, then
 * out[i] = (x[i] - mean) / float(sqrt(var + eps)) in float32.  out may alias x. */
void m2u_zero_mean_unit_var(float *out, const float *x, long n, double eps);
/* Per-channel statistics over time of x [T, C] (GroupNorm with one group per channel):
 * mean[c] and rstd[c] = 1 / sqrt(var[c] + eps), both from double sums taken along rows (time
 * order per channel), for m2u_channel_affine.  work [2 C] doubles of scratch. */
void m2u_channel_stats(float *mean, float *rstd, double *work, const float *x, int T, int C, double eps);

/* y[i] = log1p(a x[i]) for a x[i] >= 0, in double (vmath.h's m2u_vlog1p: within 1 ulp, vectorised,
 * where glibc's log1p is a call per value).  y may be x. */
void m2u_log1p_scaled(double *y, const double *x, size_t n, double a);
/* y[i] = log10(x[i]) for normal x[i] > 0 (m2u_vlog10: within 1 ulp, vectorised).  y may be x. */
void m2u_log10_array(double *y, const double *x, size_t n);

#endif
