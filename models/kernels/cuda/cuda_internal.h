/* The CUDA backend's internals (issue 14): one m2u_cuda_<entry> per entry of backend.h's op
 * table, with the CPU op's exact signature and semantics (the CPU headers beside each entry:
 * ops.h, ops_extra.h, attention.h, tensor.h, conv1d.h, image.h, adamw.h; the CPU code in
 * models/kernels/cpu is the reference).  Every pointer an op receives is device memory (the
 * m2u_attn's bias / key_mask / key_bias / lse, an m2u_mat's data, m2u_param's data and grad, the
 * m2u_adamw moments too), except plain host scalars and out-parameters noted below
 * (cross_entropy_fwd's n_valid, pixels_normalize's mean / std arrays are host).  Ops returning
 * a double compute it on the device and copy it back (they synchronize).
 *
 * Errors: an op's CUDA or cuBLAS failure is recorded (m2u_cuda_note*) and the first one is
 * reported by the next synchronize / download / a returning op, as m2u_fail; library code
 * never exits.  Matrix products run on cuBLAS in fp32 with TF32 off (CUBLAS_DEFAULT_MATH), so
 * test_kernels can hold them to the CPU's tolerances.
 *
 * Compiled by nvcc as C++; nothing here is run on this machine (no GPU): see the README. */
#ifndef M2U_CUDA_INTERNAL_H
#define M2U_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "backend.h"
#include "m2u_error.h"
}

/* ---- shared plumbing (backend_cuda.cu) ---- */
cublasHandle_t m2u_cuda_blas(void);                    /* the one handle, created with the backend */
void m2u_cuda_note(cudaError_t e, const char *what);    /* records the first failure */
void m2u_cuda_note_blas(cublasStatus_t s, const char *what);
void m2u_cuda_note_launch(const char *what);            /* cudaGetLastError() after a launch */
int m2u_cuda_failed(void);                              /* -1 (m2u_fail with the first failure) or 0 */
/* A device scratch area of at least `bytes`, grown on demand and owned by the backend: valid
 * until the next call from any op, so an op uses it only within itself.  NULL (noted) on failure. */
void *m2u_cuda_scratch(size_t bytes);
/* A second one, for an op that needs two at once. */
void *m2u_cuda_scratch2(size_t bytes);

#define M2U_CUDA_THREADS 256
#define M2U_CUDA_GRID(n) ((unsigned)(((size_t)(n) + M2U_CUDA_THREADS - 1) / M2U_CUDA_THREADS))

/* ---- the ops (file by concern: cuda_gemm.cu, cuda_norm.cu, cuda_attn.cu, cuda_elementwise.cu) ---- */
extern "C" {
void m2u_cuda_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
void m2u_cuda_gemv(int trans_a, int M, int N, float alpha, const float *A, int lda, const float *x, float beta, float *y);
void m2u_cuda_matmul_wt(float *y, int ldy, const float *x, int N, const m2u_mat *w, int row0, int nrows, float beta);
void m2u_cuda_matmul_w_acc(float *dx, const float *dy, int ldy, int N, const m2u_mat *w, int row0, int nrows);
void m2u_cuda_linear_fwd(float *y, const float *x, const float *w, const float *b, int N, int in, int out);
void m2u_cuda_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int N, int in, int out);
void m2u_cuda_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps);
void m2u_cuda_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, int N, int C);
void m2u_cuda_layernorm_fwd(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int N, int C, float eps);
void m2u_cuda_layernorm_bwd(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w, const float *mean, const float *rstd, int N, int C);
void m2u_cuda_l2norm_fwd(float *out, float *norm, const float *x, int N, int C, float eps);
void m2u_cuda_l2norm_bwd(float *dx, const float *dout, const float *out, const float *norm, int N, int C, float eps);
void m2u_cuda_rope_table(float *cos_t, float *sin_t, const int *pos, int N, int head_dim, const float *inv_freq);
void m2u_cuda_rope_fwd(float *x, int N, int stride, int n_heads, int head_dim, const float *cos_t, const float *sin_t);
void m2u_cuda_rope_bwd(float *dx, int N, int stride, int n_heads, int head_dim, const float *cos_t, const float *sin_t);
int m2u_cuda_attn_fwd(const m2u_attn *a, float *out, float *probs, const float *q, const float *k, const float *v);
int m2u_cuda_attn_bwd(const m2u_attn *a, float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q, const float *k, const float *v);
void m2u_cuda_softmax_fwd(float *x, int N, int V);
void m2u_cuda_softmax_bwd(float *dx, const float *dy, const float *y, int N, int V);
void m2u_cuda_swiglu_fwd(float *out, const float *g, const float *u, size_t n);
void m2u_cuda_swiglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n);
void m2u_cuda_gelu_fwd(float *out, const float *x, size_t n);
void m2u_cuda_gelu_bwd(float *dx, const float *dout, const float *x, size_t n);
void m2u_cuda_gelu_tanh_fwd(float *out, const float *x, size_t n);
void m2u_cuda_gelu_tanh_bwd(float *dx, const float *dout, const float *x, size_t n);
void m2u_cuda_relu_fwd(float *out, const float *x, size_t n);
void m2u_cuda_relu_bwd(float *dx, const float *dout, const float *out, size_t n);
void m2u_cuda_add(float *out, const float *a, const float *b, size_t n);
void m2u_cuda_add_inplace(float *y, const float *x, size_t n);
void m2u_cuda_axpy(int n, float alpha, const float *x, float *y);
void m2u_cuda_bias_add_rows(float *y, const float *b, int N, int C);
void m2u_cuda_bias_grad(float *db, const float *dy, int N, int C);
void m2u_cuda_dropout(float *out, const float *x, size_t n, float p, uint64_t seed, uint64_t tag);
void m2u_cuda_scale(float *out, const float *x, float alpha, size_t n);
void m2u_cuda_zero(float *x, size_t n);
void m2u_cuda_relu_mask(float *dx, const float *y, size_t n);
void m2u_cuda_act_gated_fwd(float *x, const float *gate, size_t n, m2u_kact act);
void m2u_cuda_add_scalar(float *x, float c, size_t n);
double m2u_cuda_sum(const float *x, size_t n);
void m2u_cuda_rmsnorm_dsum_fwd(float *out, const float *x, const float *w, int N, int C, float eps);
void m2u_cuda_layernorm_residual_bwd(float *G, float *A, float *dw, float *db, const float *r, const float *w, const float *mean, const float *rstd, int N, int C);
void m2u_cuda_zero_mean_unit_var(float *out, const float *x, long n, double eps);
void m2u_cuda_channel_stats(float *mean, float *rstd, double *work, const float *x, int T, int C, double eps);
void m2u_cuda_head_gate_add(float *att, const float *av, const float *gate, int B, int T, int H, int KV, int hd);
void m2u_cuda_head_gate_bwd(float *dgate, float *dav, const float *datt, const float *av, const float *gate, int B, int T, int H, int KV, int hd);
void m2u_cuda_pixels_normalize(float *px, const uint8_t *rgb, int frames, size_t HW, int do_rescale, double rescale_factor, int offset, int do_normalize, const float mean[3], const float std[3]);
void m2u_cuda_patch_im2col(float *col, const float *px, int C, int img_h, int img_w, int pt, int ph, int pw, int grid_t, int grid_h, int grid_w);
int m2u_cuda_conv1d_fwd(float *y, int T_out, const float *x, int T_in, int C_in, int C_out, int k, int stride, int pad, int groups, const float *w, const float *b);
int m2u_cuda_conv1d_bwd(float *dx, float *dw, float *db, const float *dy, int T_out, const float *x, int T_in, int C_in, int C_out, int k, int stride, int pad, int groups, const float *w);
void m2u_cuda_embedding_fwd(float *x, const int32_t *ids, int N, const m2u_mat *table, const float *extra, int rows_start);
void m2u_cuda_embedding_bwd(float *dextra, const float *dx, const int32_t *ids, int N, int C, int rows_start);
double m2u_cuda_cross_entropy(const float *logits, const int32_t *targets, int N, int V, float *lse, int *n_valid, float *dlogits);
double m2u_cuda_mse_fwd(const float *pred, const float *target, float target_scale, size_t n);
void m2u_cuda_mse_bwd(float *dpred, const float *pred, const float *target, float target_scale, size_t n, float grad_scale);
void m2u_cuda_adamw_step(m2u_adamw *opt, const m2u_adamw_config *cfg, float lr, const m2u_param *params, int n_params);
double m2u_cuda_grad_norm(const float *grad, size_t n);
void m2u_cuda_clip_grad(float *grad, size_t n, double norm, float max_norm);
}

#endif
