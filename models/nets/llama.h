/* LLaMA-2 (Hugging Face layout) forward, backward and KV-cached generation,
 * with LoRA and the other trainable pieces M2UGen uses.
 *
 * The frozen base stays in the checkpoint's mapping in its stored dtype and
 * gets no gradient buffer.  Everything trainable lives in ONE fp32 parameter
 * buffer with ONE gradient buffer of the same layout (llm.c style), described
 * by a table of named views, so the optimizer, the MPI all-reduce and the
 * checkpoint writer each see one flat array. */
#ifndef M2U_LLAMA_H
#define M2U_LLAMA_H

#include "llama_config.h"
#include "ops.h"
#include "param.h"
#include "safetensors.h"

#include <stdint.h>

struct m2u_backend;

/* The seven linears of a decoder layer, in HF module names. */
enum { M2U_Q, M2U_K, M2U_V, M2U_O, M2U_GATE, M2U_UP, M2U_DOWN, M2U_N_LINEAR };
extern const char *const m2u_linear_names[M2U_N_LINEAR]; /* "q_proj", ..., "down_proj" */
#define M2U_ALL_LINEARS ((1u << M2U_N_LINEAR) - 1u)

/* What is trainable.  Zero-initialised = nothing trainable (pure inference). */
typedef struct {
    int lora_r;             /* 0: no LoRA */
    float lora_alpha;       /* scale = alpha / r  (alpha / sqrt(r) with use_rslora) */
    float lora_dropout;     /* on the LoRA input only, as peft */
    int use_rslora;
    unsigned lora_targets;  /* bit set of M2U_Q.. */
    unsigned bias_targets;  /* trainable biases on these linears (from checkpoint, else zero-init) */
    int train_norms;        /* every RMSNorm weight trainable */
    int token_rows_start;   /* > 0: rows [start, vocab) of embed_tokens (and an untied lm_head) trainable */
    int extra_vocab;        /* tokens added after the checkpoint's vocabulary (M2UGen's [AUD0..7]):
                               trainable rows, embeddings initialised to 1.0 as M2UGen does, lm_head
                               rows like nn.Linear (U(+-1/sqrt(hidden))); vocab_size grows by this */
    uint64_t seed;          /* LoRA A init and dropout streams */
    /* M2UGen / LLaMA-Adapter injection: the last adapter_layers layers each take
       one vector a [B, hidden] per forward (m2u_llama.adapter_in) and add
       tanh(gate_h) * (W_v a)_h to every position's attention output of head h,
       before o_proj.  gate [n_heads] per layer is zero-initialised and trainable
       (the paper's design; the released code never trains it, see README). */
    int adapter_layers;
    /* floats reserved after the LLaMA's own trainables in both flat buffers, for
       modules trained with it (M2UGen's adapters, projector, prefix queries), so
       the optimizer, the all-reduce and the checkpoint still see ONE buffer */
    size_t reserve_floats;
    /* 1: the frozen base matrices (decoder linears, embedding table, lm_head) stored as f32 are
       rounded once, at load, to bf16 copies the model owns (m2u_llama.frozen16), which the
       GEMMs read directly: half the memory of f32 weights and half the bytes each product
       streams.  bf16- and f16-stored ones are read in place as always (2 bytes a value already).
       The products with the bf16 matrices run in bf16 arithmetic where the CPU has it
       (m2u_mat.bf16_math, m2u_gemm_bf16_ok: the activations rounded to bf16, fp32 accumulation)
       and in fp32 arithmetic elsewhere.  Nothing else changes: trainables (their initial values
       included, e.g. token rows copied from the table), gradients and the optimizer stay fp32.
       0: every weight as the checkpoint stores it, fp32 arithmetic. */
    int frozen_bf16;
    /* 1: the fp32 frozen decoder linears (and an fp32 lm_head whose rows are all frozen) also get
       a copy packed for oneDNN's brgemm kernels, which the forward's products x W^T read
       (m2u_llama_pack_frozen): the same values but for the products' rounding, faster forward
       products, one more copy of those weights in memory.  Where the CPU has no brgemm kernels
       nothing is packed.  Ignored with frozen_bf16. */
    int packed;
} m2u_train_spec;

/* Parse a linear name list ("q_proj,v_proj" or "all") into a bit set. */
int m2u_parse_linear_targets(const char *list, unsigned *mask);


typedef struct {
    m2u_mat w;   /* frozen weight [out, in] */
    int in, out;
    float *bias; /* NULL, an owned frozen copy, or a view into the parameter buffer */
    float *dbias;
    float *lora_a, *lora_b, *dlora_a, *dlora_b; /* A [r, in], B [out, r] */
    float *act_u; /* saved x_dropped @ A^T [N, r] */
} m2u_linear;

typedef struct {
    float *w, *dw; /* fp32; dw NULL when frozen */
} m2u_norm;

typedef struct {
    m2u_norm ln1, ln2;
    m2u_linear lin[M2U_N_LINEAR];
    float *gate, *dgate;  /* [n_heads] adapter gate (adapter layers only) */
    float *adapter_v;     /* [B, kv_dim] = W_v a, saved for backward */
    /* saved activations, [N = B*T] rows */
    float *ln1_out, *rstd1, *q, *k, *v, *lse, *att, *h, *ln2_out, *rstd2, *g, *u, *act;
    /* lse [B][H][T]: attention's log-sum-exp per query; the backward recomputes the
       probabilities from it (attention.h), so no B x H x T x T activation is kept */
} m2u_layer;

typedef struct {
    m2u_llama_config cfg;
    m2u_train_spec spec;
    /* the kernels every pass calls through (backend.h); m2u_backend_cpu() from the load, another
     * one via m2u_llama_set_backend, so a second backend needs no edit here */
    const struct m2u_backend *be;
    m2u_safetensors *st;
    m2u_mat embed, lm_head; /* lm_head == embed when tied */
    int rows_start, n_rows; /* trainable token rows, [rows_start, vocab) */
    float *embed_rows, *dembed_rows, *head_rows, *dhead_rows; /* head_rows == embed_rows when tied */
    m2u_layer *layers;
    m2u_norm norm;
    float *inv_freq;

    m2u_param *params;
    int n_params;
    float *param_buf, *grad_buf;
    size_t n_param_floats;

    const float *adapter_in; /* caller's [adapter_layers][B][hidden] for the next forward, or NULL */
    float *dadapter_in;      /* written by backward: d loss / d adapter_in, same layout */
    int first_adapter_layer; /* n_layers - adapter_layers */

    int training;        /* dropout active */
    int checkpoint_acts; /* activation checkpointing: one layer's activations, recomputed in backward */
    uint64_t step_seed;  /* changes per forward; dropout streams derive from it */

    /* activations for the last forward */
    int B, T, cap_N;
    float *x;             /* [L+1][N, C] residual stream: x[l] = input of layer l */
    float *lnf, *rstdf, *logits;
    int32_t *targets;     /* [N] shifted labels */
    int *pos;             /* [N] positions */
    float *rope_cos, *rope_sin; /* [N][head_dim/2] angles of pos */
    float *lse;           /* [N] log-sum-exp of each row's logits (labels given) */
    float *dlogits;       /* [N, V], the end of scratch: each row's softmax - onehot, from the
                             forward's loss (labels given); the backward scales it */
    int has_dlogits;
    int32_t *ids;         /* [N] */
    int n_valid;
    float *owned[64];     /* frozen fp32 copies we allocated (norms, biases) */
    int n_owned;
    void *frozen16;       /* spec.frozen_bf16: one block holding the bf16 copies of the frozen matrices */
    size_t frozen16_bytes, frozen16_src_bytes, frozen16_elems; /* its size, the stored bytes it replaced,
                                                                  the elements it holds */
    float *scratch;       /* workspace for backward */
    struct m2u_linear_pack **packs; /* spec.packed: the packs the frozen matrices point to, owned */
    int n_packs;
} m2u_llama;

/* Load a Hugging Face checkpoint directory (config.json + safetensors) and set
 * up the trainable parameters described by spec (may be NULL: inference only).
 * LoRA A is initialised like peft (kaiming-uniform, a = sqrt(5)), B = 0. */
int m2u_llama_load(const char *dir, const m2u_train_spec *spec, m2u_llama **out);
void m2u_llama_free(m2u_llama *m);
/* Route the model's kernels through be (backend.h).  The model's weights, parameters and
 * activations are host arrays, so only a backend whose buffers are host memory (the CPU one)
 * is accepted for now; -1 (m2u_fail) otherwise or for NULL. */
int m2u_llama_set_backend(m2u_llama *m, const struct m2u_backend *be);

/* Activation checkpointing (on != 0): the forward keeps only each layer's input (the residual
 * stream) and one layer's worth of saved activations, which every layer overwrites; the
 * backward recomputes layer l's forward from its input just before layer l's backward.  The
 * recomputation runs the same kernels on the same inputs with the same dropout streams, so the
 * gradients are bit-identical to a run without it; the cost is one more forward per step, the
 * saving (L - 1) layers of activations (attention probabilities included).  Takes effect at the
 * next forward. */
void m2u_llama_set_checkpointing(m2u_llama *m, int on);
/* Bytes of activations a forward over B x T keeps with the current setting (the plan). */
size_t m2u_llama_activation_bytes(const m2u_llama *m, int B, int T);

/* What spec.frozen_bf16 does at load, for a model loaded without it (a trainer that checks its
 * memory plan before allocating the copies).  Sets m->spec.frozen_bf16; a no-op when the copies
 * exist or every frozen matrix is stored as bf16.  Call before the first forward. */
int m2u_llama_convert_frozen_bf16(m2u_llama *m);
/* Bytes of bf16 copies spec.frozen_bf16 makes of the frozen matrices (embedding table, an untied
 * lm_head, the decoder linears): those stored as f32, at 2 bytes per element (each copy
 * padded to 64 bytes); *src gets the stored bytes they replace (the mapping's pages then only
 * back a cache the kernel can drop) and *n_elems (may be NULL) their elements.  Of a model
 * loaded with frozen_bf16, the copies it holds; of one loaded without, the copies it would make
 * -- so a memory plan needs no conversion (m2u-train --plan). */
size_t m2u_llama_frozen_bf16_bytes(const m2u_llama *m, size_t *src, size_t *n_elems);
/* What spec.packed does at load, for a model loaded without it (a trainer that checks its memory
 * plan first).  Sets m->spec.packed where something is packed; a no-op when done already, with
 * frozen_bf16, or where the CPU has no brgemm kernels.  Each packed copy is made on its matrix's
 * first product. */
int m2u_llama_pack_frozen(m2u_llama *m);
/* Bytes of the packed copies spec.packed makes (or has made): 0 where nothing would be packed. */
size_t m2u_llama_packed_bytes(const m2u_llama *m);

/* Find a trainable parameter by name (NULL if absent). */
m2u_param *m2u_llama_param(m2u_llama *m, const char *name);
/* Load trainable values from a safetensors file whose names are parameter names
 * (e.g. a peft adapter_model.safetensors).  Every tensor in the file must be a
 * parameter of the model with the same shape; with require_all, every LoRA
 * parameter must be in the file. */
int m2u_llama_load_params(m2u_llama *m, const char *path, int require_all);
/* Save all trainable parameters (fp32) as safetensors under their names (atomic). */
int m2u_llama_save_params(const m2u_llama *m, const char *path);

/* Batched forward over ids [B, T] (right padding is fine: causal attention never
 * lets a real token see a later pad).  With labels (may be NULL) it computes the
 * mean cross-entropy of position t predicting labels[t+1] over labels !=
 * ignore_index (transformers' shift), returned in *loss; m->n_valid counts them.
 * Logits are left in m->logits [B*T, V]. */
int m2u_llama_forward(m2u_llama *m, const int32_t *ids, const int32_t *labels, int B, int T, int ignore_index,
                      float *loss);
/* Backward of the last forward: accumulates into the gradient buffer the
 * gradient of grad_scale * (sum of the token losses).  Pass 1/n_valid for the
 * plain mean. */
int m2u_llama_backward(m2u_llama *m, float grad_scale);
void m2u_llama_zero_grad(m2u_llama *m);
/* The same, plus an outside gradient dhidden [B*T, hidden] on the last layer's
 * output before the final norm (m->x + n_layers*N*hidden) -- where M2UGen's
 * output projector reads the [AUD] states.  dhidden may be NULL. */
int m2u_llama_backward_hidden(m2u_llama *m, float grad_scale, const float *dhidden);
/* Last layer's output before the final norm, [B*T, hidden], from the last forward. */
const float *m2u_llama_last_hidden(const m2u_llama *m);
/* Input embedding of token id (0 <= id < vocab): the frozen table's row converted into tmp
 * [hidden] (returns tmp), or for an added token (id >= rows_start) its trainable row. */
const float *m2u_llama_embed_row(const m2u_llama *m, int id, float *tmp);

/* ---- inference with a KV cache ---- */
typedef struct {
    int cap, len;  /* positions held / used */
    float *k, *v;  /* [n_layers][cap][n_kv_heads * head_dim], keys after RoPE */
} m2u_kv_cache;
int m2u_kv_cache_init(m2u_kv_cache *kc, const m2u_llama *m, int cap);
void m2u_kv_cache_free(m2u_kv_cache *kc);
/* Run n tokens at positions kc->len .. kc->len+n-1, appending their keys and
 * values; the logits of the last of them go to logits_last [V].  No dropout. */
int m2u_llama_forward_cached(m2u_llama *m, m2u_kv_cache *kc, const int32_t *ids, int n, float *logits_last);
/* One decoding step for B sequences at once: ids[b] is appended to sequence b
 * at position kc[b]->len, and its logits go to logits[b * V].  The seven linears
 * and the head run as one GEMM over the B rows (where batching pays); attention
 * reads each sequence's own cache.  With adapter injection m->adapter_in holds
 * [adapter layers][B][hidden] (row b = sequence b).  Equals B separate
 * m2u_llama_forward_cached calls of one token up to float summation order. */
int m2u_llama_decode_step(m2u_llama *m, m2u_kv_cache *const *kc, int B, const int32_t *ids, float *logits);

/* ---- generation ---- */
typedef struct {
    int max_new_tokens;
    float temperature; /* 0: greedy */
    int top_k;         /* 0: off */
    float top_p;       /* 1: off */
    uint64_t seed;
    int stop_at_eos;
} m2u_sample_config;

/* Generate after `prompt` with a KV cache.  Writes up to max_new_tokens ids to
 * out and their count to *n_out; when step_logits is non-NULL it receives the
 * logits that chose each new token [n_out, V]. */
int m2u_llama_generate(m2u_llama *m, const int32_t *prompt, int n_prompt, const m2u_sample_config *sc, int32_t *out,
                       int *n_out, float *step_logits);

/* Pick a token from logits [V] as configured (modifies logits). rng: xorshift state. */
int m2u_sample_token(float *logits, int V, const m2u_sample_config *sc, uint64_t *rng);

#endif
