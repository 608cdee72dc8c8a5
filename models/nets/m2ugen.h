/* The M2UGen model: a frozen LLaMA with LoRA/bias/norm/[AUD] trainables, the
 * music / image / video understanding adapters injected into its last layers
 * through learned prefix queries and tanh gates, and the output projector that
 * maps the [AUD] hidden states to the music decoder's conditioning.
 *
 *   modality vector v_g[b] = adapter_g(features_g[b])      (absent modality: none)
 *   layer L - 3q + g*q + i receives a = v_g[b] + prefix_query[g*q + i]  (i < q = query_layer)
 *   x[b] = h_last[b, p_b .. p_b+7] + embed([AUD0..7])       p_b = position predicting [AUD0]
 *   loss = ce_scale * sum(token CE) + mse_scale * sum_b MSE_b(projector(x[b]), target[b])
 *
 * Everything trainable shares the LLaMA's one parameter buffer and gradient
 * buffer (reserve_floats), described by one table (params), so the trainer's
 * optimizer, all-reduce and checkpoints are unchanged. */
#ifndef M2U_M2UGEN_H
#define M2U_M2UGEN_H

#include "llama.h"
#include "mm_adapter.h"
#include "projector.h"

#define M2U_N_MODALITIES 3

typedef struct {
    m2u_train_spec llm;         /* LoRA, biases, norms, token rows; adapter_layers is set here */
    int query_layer;            /* q: layers per modality group (0 = no injection) */
    int use_adapter[M2U_N_MODALITIES];
    m2u_adapter_config adapter[M2U_N_MODALITIES]; /* dim is filled from the LLaMA */
    int use_projector;
    m2u_projector_config projector;               /* dim and n_in are filled in */
    int aud_id0, n_aud;
    uint64_t seed;
} m2u_m2ugen_config;

typedef struct {
    m2u_m2ugen_config cfg;
    m2u_llama *llm;
    m2u_adapter adapter[M2U_N_MODALITIES];
    m2u_projector proj;
    float *prefix, *dprefix;    /* [3q, hidden] */
    m2u_param *params;          /* all trainables: the LLaMA's, then prefix, adapters, projector */
    int n_params;
    size_t n_floats;            /* of the whole buffer */
    m2u_param *extra_params;    /* the tables the modules own (freed with them) */
    int n_extra;
    /* per forward */
    int B;
    float *adapter_in;          /* [3q][B][hidden] */
    float *vec;                 /* [3][B][hidden] modality vectors */
    int *present;               /* [3][B] */
    int n_target, *target_rows; /* samples with a projector target, and which */
    float *proj_in, *dproj_in;  /* [n_target, n_aud, hidden] */
    int *aud_pos;
} m2u_m2ugen;

int m2u_m2ugen_load(const char *llm_dir, const m2u_m2ugen_config *cfg, m2u_m2ugen **out);
void m2u_m2ugen_free(m2u_m2ugen *m);

/* Forward of a batch.  feats[g]: [B, n_tokens_g, feat_dim_g] (NULL when no sample has
 * that modality), present[g][b]: sample b has it.  aud_pos[b]: position predicting
 * [AUD0] or -1; target [B, n_out, out_dim] with has_target[b] (NULL: no MSE).
 * Returns the token CE sum in *ce_sum (with m->llm->n_valid tokens) and the sum
 * of per-sample MSEs in *mse_sum over *n_mse samples. */
int m2u_m2ugen_forward(m2u_m2ugen *m, const int32_t *ids, const int32_t *labels, int B, int T, int ignore_index,
                       const float *const *feats, const int *const *present, const int *aud_pos, const float *target,
                       const int *has_target, double *ce_sum, double *mse_sum, int *n_mse);
/* Accumulate gradients of ce_scale * CE_sum + mse_scale * MSE_sum of the last forward. */
int m2u_m2ugen_backward(m2u_m2ugen *m, float ce_scale, float mse_scale);
/* Bytes a forward and backward of a batch of B x T allocate beside the LLaMA's activations
 * (m2u_llama_activation_bytes): the adapters' and the projector's activations and scratch,
 * and the model's own step buffers, with every sample taken to have a target (the most). */
size_t m2u_m2ugen_act_bytes(const m2u_m2ugen *m, int B, int T);

/* Load the trainables of a checkpoint in the released M2UGen layout
 * (checkpoint.pth / safetensors, optionally under a "model." prefix): its LLaMA
 * is in Meta's layout, so LoRA B rows and the wq bias of q/k are permuted to the
 * Hugging Face rotate_half layout m2u computes in; lora_<w>_l1/_l2 -> lora_A/B
 * (M2UGen's LoRA has scale 1: lora_alpha must equal lora_r), biases of
 * wq/wo/w1/w2/w3, attention_norm/ffn_norm/norm, per-layer gates, the added
 * tok_embeddings (and untied output) rows, prefix_query, the adapters and the
 * projector.  Every trainable of m must be found; *n_loaded counts them. */
int m2u_m2ugen_load_released(m2u_m2ugen *m, const char *path, int *n_loaded);

#endif
