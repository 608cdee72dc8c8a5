/* Kernels for the modules around LLaMA (understanding adapters, output
 * projector), in the conventions of ops.h: fp32, row-major [N, C] with N rows,
 * backward functions ACCUMULATE (+=) into input and parameter gradients, and a
 * NULL gradient pointer means "not needed" (neither computed nor stored).
 */
#ifndef M2U_OPS_EXTRA_H
#define M2U_OPS_EXTRA_H

#include "ops.h"


#include <stddef.h>
#include <stdint.h>

/* ---- dense layers ---------------------------------------------------------------- */

/* y[N, out] = x[N, in] @ W[out, in]^T + b[out]  (nn.Linear; b may be NULL). */
void m2u_linear_fwd(float *y, const float *x, const float *w, const float *b, int N, int in, int out);
/* dx[N, in] += dy @ W;  dw[out, in] += dy^T @ x;  db[out] += sum_n dy.  Each of dx, dw, db may be NULL. */
void m2u_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int N, int in,
                    int out);

/* A frozen weight W[out, in] prepared for many forward products (linear_pack.c): on CPUs where
 * oneDNN has brgemm kernels (AVX-512) the first product reorders a copy of W into the layout they
 * read and keeps it, with one primitive for each of the first 8 row counts (later ones run in
 * blocks of 128 rows, the last padded to a multiple of 16); elsewhere the products are
 * m2u_linear_fwd's.  W is the caller's: it must stay, unchanged, until the pack is freed.  NULL:
 * out of memory (or a bad argument). */
typedef struct m2u_linear_pack m2u_linear_pack;
m2u_linear_pack *m2u_linear_pack_new(const float *w, int in, int out);
void m2u_linear_pack_free(m2u_linear_pack *p);
/* y[N, out] = x[N, in] @ W^T + b (b may be NULL): m2u_linear_fwd's values but for the products'
 * rounding.  Threads may share a pack. */
void m2u_linear_fwd_packed(m2u_linear_pack *p, float *y, const float *x, const float *b, int N);
/* The same into rows ldy >= out floats apart (a group's columns of a wider output). */
void m2u_linear_fwd_packed_ld(m2u_linear_pack *p, float *y, int ldy, const float *x, const float *b, int N);
/* 1 when products of N rows (with a bias or not) run on the packed weight, 0 when they fall
 * back to m2u_linear_fwd (tests and benchmarks say which one they measured). */
int m2u_linear_pack_used(m2u_linear_pack *p, int N, int bias);
/* Switch the packed products on (default) or off for the whole process (A/B runs, tests); returns
 * whether they were on.  Off, every pack's product is m2u_linear_fwd's. */
int m2u_linear_pack_enable(int want);
/* 1 when products on packs run packed on this CPU (oneDNN with brgemm kernels; not switched off). */
int m2u_linear_pack_available(void);

/* ---- normalisations ---------------------------------------------------------------- */

/* nn.LayerNorm over the last dim: out = (x - mean) * rstd * w + b, rstd = 1/sqrt(var + eps)
 * (biased variance).  mean[N], rstd[N] are saved for the backward. */
void m2u_layernorm_fwd(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int N,
                       int C, float eps);
void m2u_layernorm_bwd(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                       const float *mean, const float *rstd, int N, int C);

/* F.normalize(x, p=2, dim=-1, eps): out = x / max(||x||, eps).  norm[N] = ||x|| (unclamped) is
 * saved; the backward is the clamp's: dx = dy / eps where ||x|| <= eps, else (dy - out (out.dy)) / ||x||. */
void m2u_l2norm_fwd(float *out, float *norm, const float *x, int N, int C, float eps);
void m2u_l2norm_bwd(float *dx, const float *dout, const float *out, const float *norm, int N, int C, float eps);

/* ---- activations --------------------------------------------------------------------- */

/* out = max(x, 0) (may work in place).  Backward from the output: dx += dout where out > 0. */
void m2u_relu_fwd(float *out, const float *x, size_t n);
void m2u_relu_bwd(float *dx, const float *dout, const float *out, size_t n);

/* ---- loss ------------------------------------------------------------------------------------ */

/* nn.MSELoss() (mean) between pred and target_scale * target: the scaled target is formed in
 * fp32 as torch does (10 * t), the sum in double.  Backward: dpred += grad_scale * 2 (pred - s t) / n. */
double m2u_mse_fwd(const float *pred, const float *target, float target_scale, size_t n);
void m2u_mse_bwd(float *dpred, const float *pred, const float *target, float target_scale, size_t n,
                 float grad_scale);

#endif
