/* The pieces the frozen encoders (ViT, ViViT, MERT/HuBERT) share: one
 * BERT-style transformer encoder layer, the GELU activations, a grouped
 * strided Conv1d on time-major data, fp32 tensor loading and config.json /
 * preprocessor_config.json readers.
 *
 * Forward only, fp32, row-major [T, C] activations as in ops.h.  The layer is
 *   pre-norm  (ViT, ViViT, HuBERT do_stable_layer_norm):
 *       h = x + O(Attn(LN1(x)));   y = h + FC2(act(FC1(LN2(h))))
 *   post-norm (HuBERT / MERT-95M):
 *       h = LN1(x + O(Attn(x)));   y = LN2(h + FC2(act(FC1(h))))
 * with biased q/k/v/o projections and softmax(q k^T / sqrt(head_dim)) over all
 * tokens (no mask: the encoders always see one unpadded sequence). */
#ifndef M2U_ENCODER_LAYER_H
#define M2U_ENCODER_LAYER_H

#include "conv1d.h"
#include "ops_extra.h"
#include "json.h"
#include "safetensors.h"

#include <stddef.h>

/* transformers' ACT2FN names, grouped by the formula they compute. */
typedef enum {
    M2U_ACT_GELU = 0,  /* "gelu": exact erf GELU */
    M2U_ACT_GELU_TANH, /* "gelu_new", "gelu_pytorch_tanh", "gelu_fast": the tanh approximation */
    M2U_ACT_RELU,      /* "relu" */
} m2u_act;

/* Map a hidden_act string; fails naming origin and key for anything else. */
int m2u_act_parse(const char *name, const char *origin, const char *key, m2u_act *out);
/* In place over n values (OpenMP). */
void m2u_act_apply(m2u_act act, float *x, size_t n);

typedef struct {
    int hidden, heads, inter;
    float eps;
    m2u_act act;
    int prenorm; /* 1: ViT / HuBERT stable layer norm; 0: HuBERT post-norm */
} m2u_enc_dims;

/* One layer's weights, fp32, owned.  q/k/v are fused into one [3H, H] matrix
 * (rows q, then k, then v) so a single GEMM projects all three. */
typedef struct {
    float *qkv_w, *qkv_b; /* [3H, H], [3H] */
    float *o_w, *o_b;     /* [H, H], [H] */
    float *ln1_w, *ln1_b; /* before attention (pre) / after it (post) */
    float *ln2_w, *ln2_b; /* before the FFN (pre) / after it (post) */
    float *fc1_w, *fc1_b; /* [I, H], [I] */
    float *fc2_w, *fc2_b; /* [H, I], [H] */
    /* the four weights prepared for the forward's products (m2u_linear_pack_new; each may be NULL:
     * then the plain product runs) */
    m2u_linear_pack *qkv_p, *o_p, *fc1_p, *fc2_p;
} m2u_enc_layer;

/* Checkpoint names of one layer's tensors, as printf formats taking the layer
 * index (e.g. "encoder.layer.%d.attention.attention.query").  ".weight" and
 * ".bias" are appended. */
typedef struct {
    const char *q, *k, *v, *o, *ln1, *ln2, *fc1, *fc2;
} m2u_enc_names;

/* Load layer `index` (names prefixed with `prefix`, may be ""). */
int m2u_enc_layer_load(const m2u_safetensors *st, const char *prefix, const m2u_enc_names *names, int index,
                       const m2u_enc_dims *d, m2u_enc_layer *layer);
void m2u_enc_layer_free(m2u_enc_layer *layer);
/* Make the layer's packs once its weights are in place (m2u_enc_layer_load does it; a loader that
 * fills the weights itself calls it).  Fails only when out of memory. */
int m2u_enc_layer_pack(m2u_enc_layer *layer, const m2u_enc_dims *d);
/* y[N, out] = x[N, in] @ W^T + b through the pack p when there is one, else with w. */
void m2u_enc_linear(m2u_linear_pack *p, float *y, const float *x, const float *w, const float *b, int N, int in,
                    int out);

/* Floats of scratch m2u_enc_layer_fwd needs for T tokens. */
size_t m2u_enc_layer_scratch(const m2u_enc_dims *d, int T);
/* x [T, H] is replaced by the layer's output.  scratch: m2u_enc_layer_scratch floats.
 * Fails only when attention cannot allocate its score buffer. */
int m2u_enc_layer_fwd(const m2u_enc_dims *d, const m2u_enc_layer *layer, float *x, int T, float *scratch);
/* Several sequences packed one after another in x [sum lens][H], each attending only to its own
 * rows: the linears run on all rows at once (one pass over the weights for the whole pack, which
 * is what makes short sequences cheap).  Each sequence's rows equal m2u_enc_layer_fwd on it alone
 * but for the GEMMs' rounding.  scratch: m2u_enc_layer_scratch(sum lens) floats. */
int m2u_enc_layer_fwd_seqs(const m2u_enc_dims *d, const m2u_enc_layer *layer, float *x, int nseq, const int *lens,
                           float *scratch);
/* The same layer where only the first n_out rows of its output are used (a last layer whose
 * head reads the class tokens): those rows of x are replaced, every row still serves as a key
 * and value, and rows n_out.. are left as they were.  Equal to m2u_enc_layer_fwd on the rows it
 * writes but for the products' rounding (the GEMMs have other shapes).  Same scratch. */
int m2u_enc_layer_fwd_rows(const m2u_enc_dims *d, const m2u_enc_layer *layer, float *x, int T, int n_out,
                           float *scratch);

/* LayerNorm of rows [N, C] (out may alias x); mean/rstd scratch is internal. */
int m2u_enc_layernorm(float *out, const float *x, const float *w, const float *b, int N, int C, float eps);

/* ---- tensors ---- */

/* Allocate and read tensor `prefix``name` (shape checked, any float dtype) into *out. */
int m2u_enc_tensor(const m2u_safetensors *st, const char *prefix, const char *name, int ndim, const int64_t *shape,
                   float **out);

#endif
