/* M2UGen's output projector (M2UGen/llama/projector.py, class ProjectionLayer,
 * registered as `output_projector` in M2UGen):
 *
 *   x   = h_last[AUD positions] + embed([AUD0..7])        [B, n_in, dim]   (the caller adds them)
 *   z   = fc(x)                                             Linear(dim -> d_model)
 *   y   = tfm(z, query_embs.repeat(B, 1, 1))                nn.Transformer(batch_first=True,
 *         norm_first=False (post-LN), ReLU, dropout 0, no masks, LayerNorm eps 1e-5); the
 *         encoder and decoder stacks each end with their own LayerNorm; query_embs [1, n_out, d_model]
 *   out = model(y)                                          Linear(d_model -> out_dim)   [B, n_out, out_dim]
 *
 *   loss = MSELoss()(out, target_scale * target)            mean over B * n_out * out_dim
 *
 * Parameters carry the names of M2UGen's state_dict ("output_projector." + the
 * ProjectionLayer's own names), so a released checkpoint loads 1:1 with m2u_params_load:
 *   fc.weight [d_model, dim], fc.bias
 *   tfm.encoder.layers.<i>.self_attn.in_proj_weight [3 d_model, d_model], .in_proj_bias,
 *       .self_attn.out_proj.weight/.bias, .linear1.weight [ffn, d_model]/.bias,
 *       .linear2.weight [d_model, ffn]/.bias, .norm1.weight/.bias, .norm2.weight/.bias
 *   tfm.encoder.norm.weight/.bias
 *   tfm.decoder.layers.<i>.self_attn.*, .multihead_attn.* (cross attention, same shapes),
 *       .linear1.*, .linear2.*, .norm1.*, .norm2.*, .norm3.*
 *   tfm.decoder.norm.weight/.bias
 *   model.weight [out_dim, d_model], model.bias
 *   query_embs [n_out, d_model] (checkpoint [1, n_out, d_model])
 * Weight decay on matrices (and query_embs), not on biases and LayerNorm parameters. */
#ifndef M2U_PROJECTOR_H
#define M2U_PROJECTOR_H

#include "ops_extra.h"
#include "params.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char prefix[32];    /* "output_projector." */
    int dim;            /* LLaMA hidden size (fc input) */
    int n_in;           /* input tokens: the 8 [AUD] positions */
    int d_model;        /* 512 */
    int n_heads;        /* 4 */
    int n_enc, n_dec;   /* 4, 4 */
    int ffn;            /* dim_feedforward, 2048 */
    int n_out;          /* query tokens: 128 (MusicGen), 1 (AudioLDM 2) */
    int out_dim;        /* 768 (MusicGen T5 width), 137216 (AudioLDM 2) */
    float ln_eps;       /* 1e-5 (nn.Transformer's layer_norm_eps) */
    float target_scale; /* the MSE target is target_scale * target: 10 in M2UGen */
} m2u_projector_config;

/* M2UGen's MusicGen projector at LLaMA width dim: 8 -> 128 x 768. */
m2u_projector_config m2u_projector_preset_musicgen(int dim);
/* M2UGen's AudioLDM 2 projector: 8 -> 1 x 137216 (T5 128 x 1024 and GPT-2 8 x 768, flattened). */
m2u_projector_config m2u_projector_preset_audioldm2(int dim);

typedef struct {
    float *in_w, *in_b, *out_w, *out_b; /* MultiheadAttention: in_proj [3E, E] (q, k, v rows), out_proj [E, E] */
    float *din_w, *din_b, *dout_w, *dout_b;
} m2u_proj_attn;

typedef struct {
    float *w, *b, *dw, *db;
} m2u_proj_ln;

typedef struct {
    int is_dec;
    m2u_proj_attn sa, ca; /* ca: decoder layers only */
    float *l1_w, *l1_b, *l2_w, *l2_b, *dl1_w, *dl1_b, *dl2_w, *dl2_b;
    m2u_proj_ln n1, n2, n3; /* after self attention, after cross attention (decoder) or the FFN
                               (encoder), after the FFN (decoder only) */
    /* activations, R = B*n_in rows (encoder) or B*n_out (decoder) */
    const float *in;             /* layer input [R, E] (the previous layer's output) */
    float *qkv, *p1, *att1;      /* [R, 3E], probs [B, H, T, T], [R, E] */
    float *r1, *m1, *s1, *h1;    /* x + sa(x) [R, E], its LN mean/rstd [R], LN output [R, E] */
    float *q2, *kv2, *p2, *att2; /* decoder cross attention: [R, E], [B*n_in, 2E], [B, H, T, S], [R, E] */
    float *r2, *m2, *s2, *h2;    /* decoder: h1 + ca(h1, mem) and its LN */
    float *f;                    /* relu(linear1(.)) [R, ffn] */
    float *rf, *mf, *sf, *out;   /* h + ffn(h), its LN stats, the layer output [R, E] */
} m2u_proj_layer;

typedef struct {
    m2u_projector_config cfg;
    m2u_param *params;
    int n_params;
    size_t n_floats;
    float *fc_w, *fc_b, *head_w, *head_b, *query;
    float *dfc_w, *dfc_b, *dhead_w, *dhead_b, *dquery;
    m2u_proj_layer *enc, *dec;
    m2u_proj_ln enc_norm, dec_norm;

    /* activations of the last forward */
    int B, cap_B;
    float *x;                 /* [B*n_in, dim] copy of the input */
    float *z;                 /* fc output [B*n_in, E] */
    float *mem, *mem_m, *mem_s;  /* encoder final LN output [B*n_in, E] and stats */
    float *q0;                /* decoder input: query_embs repeated [B*n_out, E] */
    float *y, *y_m, *y_s;     /* decoder final LN output [B*n_out, E] and stats */
    float *out;               /* [B*n_out, out_dim] */
    float *dloss;             /* d loss / d out from m2u_projector_loss [B*n_out, out_dim] */
    int has_loss;
    float *arena;             /* all activations */
    float *scratch;           /* backward */
} m2u_projector;

/* Floats the parameters take (size of both buffers); 0 (error recorded) if the config is invalid. */
size_t m2u_projector_size(const m2u_projector_config *cfg);
/* Lay out the parameters in params[0 .. size) and gradients at the same offsets in grads
 * (NULL: inference only).  Values are not touched: load them or call m2u_projector_reset_params. */
int m2u_projector_init(m2u_projector *p, const m2u_projector_config *cfg, float *params, float *grads);
void m2u_projector_free(m2u_projector *p);
/* PyTorch's initialisation of ProjectionLayer: fc and model as nn.Linear (U(+-1/sqrt(fan_in))),
 * tfm as nn.Transformer._reset_parameters (xavier_uniform_ on every matrix; in_proj and out_proj
 * biases 0, linear1/linear2 biases U(+-1/sqrt(fan_in)); LayerNorm 1, 0), query_embs N(0, 1). */
void m2u_projector_reset_params(m2u_projector *p, uint64_t seed);

/* x [B, n_in, dim] (copied) -> out [B, n_out, out_dim] (out may be NULL; p->out holds it). */
int m2u_projector_forward(m2u_projector *p, const float *x, int B, float *out);
/* Bytes of the activations and backward scratch the projector allocates for a batch of B. */
size_t m2u_projector_act_bytes(const m2u_projector *p, int B);
/* MSE of the last forward's output against target_scale * target [B, n_out, out_dim]; keeps
 * d loss / d out for m2u_projector_backward. */
int m2u_projector_loss(m2u_projector *p, const float *target, float *loss);
/* Backward of the last forward with output gradient grad_scale * dout, or grad_scale * the
 * gradient of the last m2u_projector_loss when dout is NULL.  ACCUMULATES into every parameter
 * gradient and, when dx is non-NULL, into dx [B, n_in, dim] (the gradient reaching LLaMA's last
 * hidden states and the [AUD] embeddings alike). */
int m2u_projector_backward(m2u_projector *p, const float *dout, float grad_scale, float *dx);

#endif
