/* Primitives of autoregressive generation (MusicGen's decoder LM): small-batch
 * matrix products that stream each weight row once for all rows of the batch,
 * single-query attention over a key cache with an optional additive key mask,
 * sinusoidal positions, and the logits processors of transformers' generate
 * (classifier-free guidance, temperature, top-k, top-p, greedy, sampling).
 *
 * Conventions of ops.h: fp32 activations, row-major [N, C].  These are the only
 * generation functions that use OpenMP / BLAS; the net files call them. */
#ifndef M2U_OPS_GEN_H
#define M2U_OPS_GEN_H

#include "ops.h"
#include "rng.h"

#include <stddef.h>
#include <stdint.h>

/* y[N, w->rows] = x[N, w->cols] @ W^T (+ bias[w->rows] when non-NULL).
 * For N <= 4 (one decoding step, CFG halves included) every weight row is read
 * once from memory for all N rows, in its stored dtype (F32/F16/BF16), with the
 * rows split over the OpenMP threads; larger N goes through m2u_matmul_wt (BLAS). */
void m2u_gen_linear(float *y, const float *x, int N, const m2u_mat *w, const float *bias);

typedef enum { M2U_GEN_ACT_NONE, M2U_GEN_ACT_GELU, M2U_GEN_ACT_GELU_TANH, M2U_GEN_ACT_RELU } m2u_gen_act;

/* One output of m2u_gen_linear_many: y[n*ldy + r] = x_n . W_r (+ bias[r]). */
typedef struct {
    float *y;
    int ldy;
    const m2u_mat *w;
    const float *bias; /* may be NULL */
} m2u_gen_out;

/* Several products of the same input x [N, cols] (every W must have the same cols) in one
 * parallel region,
 * then act (GELU erf / tanh, ReLU, or none) on the results; N <= 4 streams the weights as
 * m2u_gen_linear does.  For q/k/v projections, the K heads, fc1 + GELU. */
void m2u_gen_linear_many(const m2u_gen_out *outs, int n_outs, const float *x, int N, m2u_gen_act act);

/* nn.LayerNorm of a few rows [N, C] on the calling thread (the arithmetic of
 * m2u_layernorm_fwd, without its parallel region: a decoding step normalises 1-2 rows, where
 * a fork/join costs more than the work). */
void m2u_gen_layernorm(float *out, const float *x, const float *w, const float *b, int N, int C, float eps);

/* key_bias[i] = 0 where mask[i] != 0, else -FLT_MAX (transformers' _prepare_4d_attention_mask),
 * for m2u_attn's key_bias. */
void m2u_gen_key_bias(float *key_bias, const int32_t *mask, size_t n);

/* Rows pos0 .. pos0+n-1 of transformers' sinusoidal table (tensor2tensor layout: cos in the
 * first dim/2 columns, sin in the next, zero column when dim is odd), computed in fp32 the
 * way MusicgenSinusoidalPositionalEmbedding.get_embedding does. */
void m2u_gen_sinusoid(float *out, int pos0, int n, int dim);

/* ClassifierFreeGuidanceLogitsProcessor: out[i] = uncond[i] + g (cond[i] - uncond[i]). */
void m2u_gen_cfg(float *out, const float *cond, const float *uncond, size_t n, float g);

/* Index of the largest value (first one on ties, as torch.argmax). */
int m2u_gen_argmax(const float *x, int n);

typedef struct {
    float temperature; /* > 0; 1 = off */
    int top_k;         /* 0 = off */
    float top_p;       /* 1 = off */
} m2u_gen_sampling;

/* Draw one id from logits [n] as transformers' sample() does after CFG: TemperatureLogitsWarper
 * (x / t), TopKLogitsWarper (values below the k-th largest -> -inf, ties kept), TopPLogitsWarper
 * (ascending sort, drop tokens whose cumulative probability <= 1 - top_p, the largest always
 * kept), softmax, then one multinomial draw with r (inverse CDF of one uniform: the same
 * distribution as torch.multinomial, not the same stream).  scratch: m2u_gen_sample_scratch(n)
 * bytes.  Returns the id. */
size_t m2u_gen_sample_scratch(int n);
int m2u_gen_sample(const float *logits, int n, const m2u_gen_sampling *s, m2u_rng *r, void *scratch);

#endif
