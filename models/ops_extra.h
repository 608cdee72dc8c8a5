/* Kernels for the modules around LLaMA (understanding adapters, output
 * projector), in the conventions of ops.h: fp32, row-major [N, C] with N rows,
 * backward functions ACCUMULATE (+=) into input and parameter gradients, and a
 * NULL gradient pointer means "not needed" (neither computed nor stored).
 *
 * Also: named parameter tables (the m2u_param views of llama.h) for modules
 * whose trainable tensors live in one caller-provided buffer. */
#ifndef M2U_OPS_EXTRA_H
#define M2U_OPS_EXTRA_H

#include "llama.h" /* m2u_param */
#include "safetensors.h"

#include <stddef.h>
#include <stdint.h>

/* ---- dense layers ---------------------------------------------------------------- */

/* y[N, out] = x[N, in] @ W[out, in]^T + b[out]  (nn.Linear; b may be NULL). */
void m2u_linear_fwd(float *y, const float *x, const float *w, const float *b, int N, int in, int out);
/* dx[N, in] += dy @ W;  dw[out, in] += dy^T @ x;  db[out] += sum_n dy.  Each of dx, dw, db may be NULL. */
void m2u_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int N, int in,
                    int out);

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

/* ---- attention without a mask (nn.MultiheadAttention's core) ------------------------------- */

/* B sequences, H heads of size hd.  Sequence b: queries q + b*T*qs ([T][H*hd], row stride qs),
 * keys k + b*S*ks and values v + b*S*vs ([S][H*hd], row strides ks, vs).  Every query sees
 * every key: out[b*T + t][h*hd + j] = sum_s softmax_s(q.k / sqrt(hd)) v.  out is [B*T][H*hd]
 * (dense).  probs [B][H][T][S] is written when non-NULL (the backward needs it).  Parallel over
 * (sequence, head).  Returns -1 only on allocation failure. */
int m2u_mha_fwd(float *out, float *probs, const float *q, int qs, const float *k, int ks, const float *v, int vs, int B,
                int T, int S, int H, int hd);
/* Backward: dq, dk, dv accumulate, in the layouts (and strides) of q, k, v; dout has out's layout. */
int m2u_mha_bwd(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q, int qs,
                const float *k, int ks, const float *v, int vs, int B, int T, int S, int H, int hd);

/* ---- loss ------------------------------------------------------------------------------------ */

/* nn.MSELoss() (mean) between pred and target_scale * target: the scaled target is formed in
 * fp32 as torch does (10 * t), the sum in double.  Backward: dpred += grad_scale * 2 (pred - s t) / n. */
double m2u_mse_fwd(const float *pred, const float *target, float target_scale, size_t n);
void m2u_mse_bwd(float *dpred, const float *pred, const float *target, float target_scale, size_t n,
                 float grad_scale);

/* ---- named parameter tables ---------------------------------------------------------------------- */

/* A module registers its trainable tensors in order, then lays them out at consecutive offsets
 * of one caller-provided parameter buffer (and gradient buffer, which may be NULL for inference).
 * m2u_param has at most two dimensions: a checkpoint tensor with unit dimensions (Conv1d weight
 * [1, C, 1], query embeddings [1, N, D]) is registered squeezed to 2-D, and m2u_params_load
 * accepts either form. */
typedef struct {
    m2u_param *v;
    float ***data_slot, ***grad_slot; /* where each view's pointers go */
    int n, cap;
    size_t n_floats;
} m2u_ptable;

/* Register `prefix``name` with shape [d0] (ndim 1) or [d0, d1] (ndim 2). */
int m2u_ptable_add(m2u_ptable *t, const char *prefix, const char *name, int ndim, int64_t d0, int64_t d1, int decay,
                   float **data_slot, float **grad_slot);
/* Point every view into params (and grads, may be NULL) at consecutive offsets, and hand the
 * table over: *out gets the m2u_param array (names owned by it; free with m2u_params_free), the
 * scratch of t is released.  On failure everything is released. */
int m2u_ptable_finish(m2u_ptable *t, float *params, float *grads, m2u_param **out, int *n_out);
void m2u_ptable_discard(m2u_ptable *t);
void m2u_params_free(m2u_param *params, int n);

/* The parameter called name, or NULL. */
m2u_param *m2u_params_find(m2u_param *params, int n, const char *name);
/* Copy parameters from a safetensors file whose tensor names are the parameter names (other
 * tensors are ignored, so a whole M2UGen checkpoint may be given).  Shapes must agree up to unit
 * dimensions.  With require_all, every parameter must be present; otherwise absent ones keep
 * their values.  *n_loaded (may be NULL) counts the tensors copied. */
int m2u_params_load(m2u_param *params, int n, const m2u_safetensors *st, int require_all, int *n_loaded);

#endif
