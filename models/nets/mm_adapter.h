/* M2UGen's multimodal understanding adapters (M2UGen/llama/m2ugen.py,
 * forward_audio / forward_image / forward_video, legacy_bridge=False, knn=False).
 *
 * One per modality; input = frozen encoder features of B samples
 * [B, n_tokens, feat_dim] (MERT layer means [25, 1024], ViT tokens [197, 768],
 * ViViT tokens [3137, 768]); output = one LLaMA-width vector per sample [B, dim]
 * (M2UGen's [B, 1, dim] token):
 *
 *   a  = agg(x)            Conv1d(n_tokens -> 1, kernel 1, bias): a[f] = sum_t w[t] x[t, f] + b
 *   u  = a / max(|a|, 1e-12)                                     (F.normalize, last dim)
 *   h0 = proj(u)           Linear(feat_dim -> dim, bias)
 *   h_k = h_{k-1} + f2_k( silu(f1_k(n)) * f3_k(n) ),  n = norm_k(h_{k-1}),  k = 1..3
 *         norm_k = RMSNorm(dim, eps 1e-6, weight);  f1_k, f3_k: dim -> hidden, f2_k: hidden -> dim,
 *         all without bias;  hidden = dim (feature_scaler 1)
 *
 * Parameters (exactly the names of M2UGen's state_dict, so a released
 * checkpoint loads 1:1 with m2u_params_load):
 *   <p>agg.weight [1, n_tokens] (checkpoint [1, n_tokens, 1]), <p>agg.bias [1],
 *   <p>proj.weight [dim, feat_dim], <p>proj.bias [dim],
 *   <p>norm_k.weight [dim], <p>f1_k.weight [hidden, dim], <p>f2_k.weight [dim, hidden],
 *   <p>f3_k.weight [hidden, dim]   for k = 1..n_blocks,
 * with <p> = "mu_mert_" | "iu_vit_" | "iu_vivit_".  Weight decay (decay = 1) on
 * agg.weight and the linear weights, not on biases and norm weights.
 *
 * Not reproduced: the kNN cache mix (knn=True; training never uses it),
 * legacy_bridge (LayerNorm and biases), and the released forward's multiplication of u
 * by 1/(1 + 1e-6) (its weighting of a single input), a relative change of 1e-6. */
#ifndef M2U_MM_ADAPTER_H
#define M2U_MM_ADAPTER_H

#include "ops_extra.h"
#include "params.h"

#include <stddef.h>
#include <stdint.h>

#define M2U_ADAPTER_MAX_BLOCKS 8

typedef enum { M2U_MODALITY_MUSIC, M2U_MODALITY_IMAGE, M2U_MODALITY_VIDEO } m2u_modality;

typedef struct {
    char prefix[32]; /* parameter name prefix: "mu_mert_", "iu_vit_", "iu_vivit_" */
    int n_tokens;    /* Conv1d in_channels: 25 | 197 | 3137 */
    int feat_dim;    /* encoder width: 1024 | 768 */
    int dim;         /* LLaMA hidden size */
    int hidden;      /* f1/f3 width; 0 = dim */
    int n_blocks;    /* residual blocks, 3 */
    float norm_eps;  /* RMSNorm eps, 1e-6 (M2UGen's RMSNorm default) */
    float l2_eps;    /* F.normalize eps, 1e-12 */
} m2u_adapter_config;

/* M2UGen's configuration for a modality at LLaMA width dim (4096 for 7B). */
m2u_adapter_config m2u_adapter_preset(m2u_modality modality, int dim);

typedef struct {
    float *norm_w, *f1, *f2, *f3;
    float *dnorm_w, *df1, *df2, *df3;
} m2u_adapter_block;

typedef struct {
    m2u_adapter_config cfg;
    m2u_param *params; /* table of named views into the caller's buffers */
    int n_params;
    size_t n_floats;
    float *agg_w, *agg_b, *proj_w, *proj_b;
    float *dagg_w, *dagg_b, *dproj_w, *dproj_b; /* NULL without a gradient buffer */
    m2u_adapter_block blk[M2U_ADAPTER_MAX_BLOCKS];

    /* activations of the last forward (B samples) */
    int B, cap_B;
    float *feats;        /* [B, n_tokens, feat_dim] copy of the input */
    float *agg, *l2, *u; /* [B, feat], [B], [B, feat] */
    float *h;            /* [n_blocks + 1][B, dim] residual stream; h[n_blocks] is the output */
    float *nrm, *rstd;   /* [n_blocks][B, dim], [n_blocks][B] */
    float *a, *c, *s;    /* [n_blocks][B, hidden]: f1(n), f3(n), silu(a) * c */
    float *scratch;      /* backward */
} m2u_adapter;

/* Floats the adapter's parameters take (the size of both buffers); 0 (with an
 * error recorded) for an invalid configuration. */
size_t m2u_adapter_size(const m2u_adapter_config *cfg);
/* Lay the parameters out in params[0 .. m2u_adapter_size) and the gradients at the
 * same offsets of grads (NULL: inference only).  Values are not touched: load them
 * (m2u_params_load) or call m2u_adapter_reset_params. */
int m2u_adapter_init(m2u_adapter *a, const m2u_adapter_config *cfg, float *params, float *grads);
void m2u_adapter_free(m2u_adapter *a);
/* PyTorch's default initialisation (Conv1d and Linear: U(+-1/sqrt(fan_in)) for weight
 * and bias; RMSNorm weights 1), from a seeded m2u_rng stream. */
void m2u_adapter_reset_params(m2u_adapter *a, uint64_t seed);

/* Bytes of the activations and backward scratch the adapter allocates for a batch of B (the
 * memory plan's share of it; the same sizes the forward allocates). */
size_t m2u_adapter_act_bytes(const m2u_adapter_config *cfg, int B);
/* feats [B, n_tokens, feat_dim] (copied) -> out [B, dim].  Saves what the backward needs. */
int m2u_adapter_forward(m2u_adapter *a, const float *feats, int B, float *out);
/* Backward of the last forward: dout [B, dim]; ACCUMULATES into every parameter
 * gradient.  (No input gradient: the encoders are frozen.) */
int m2u_adapter_backward(m2u_adapter *a, const float *dout);

#endif
