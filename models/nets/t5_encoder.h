/* T5 encoder stack, forward only (t5-base as MusicGen's text encoder; flan-T5's gated-GELU
 * variant), exact to fp32 rounding against transformers' T5EncoderModel.
 *
 * Math (transformers modeling_t5.py): shared embedding (not scaled); per block
 * h += O(softmax(Q K^T + bias + mask) V) of T5LayerNorm(h) (no 1/sqrt(d_kv) scaling), then
 * h += FF(T5LayerNorm(h)) with FF = wo(act(wi x)) or wo(act(wi_0 x) * wi_1 x) when gated;
 * T5LayerNorm is RMS (no mean, no bias); the relative position bias (bidirectional buckets,
 * Embedding[num_buckets, heads]) belongs to block 0 and is shared by every block; padded keys get
 * finfo(float32).min added; a final T5LayerNorm closes the stack.  Padded query rows are
 * computed like the others (their outputs are real values, not zeros).
 *
 * Checkpoints: a directory with config.json and model.safetensors / a sharded index /
 * pytorch_model.bin (see safetensors.h) of a T5EncoderModel, a T5ForConditionalGeneration (its
 * decoder and lm_head are ignored) or a MusicGen model (tensors under "text_encoder.", the T5
 * config under config.json's "text_encoder" key).  Weights stay in the mapping in their stored
 * dtype (fp32/fp16/bf16). */
#ifndef M2U_T5_ENCODER_H
#define M2U_T5_ENCODER_H

#include "unigram_tokenizer.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { M2U_T5_ACT_RELU, M2U_T5_ACT_GELU, M2U_T5_ACT_GELU_NEW, M2U_T5_ACT_SILU } m2u_t5_act;

typedef struct {
    int vocab_size, d_model, d_kv, num_heads, d_ff, num_layers;
    int num_buckets, max_distance; /* relative_attention_num_buckets / _max_distance */
    int gated;                     /* feed_forward_proj "gated-*" */
    m2u_t5_act act;                /* "gated-gelu" means gelu_new (tanh), as in T5Config */
    float eps;                     /* layer_norm_epsilon */
    int pad_token_id;
} m2u_t5_config;

/* Parse a T5 config.json (or the "text_encoder" part of a MusicGen one).  Keys absent take
 * T5Config's defaults; wrong types, unknown activations and unusable bucket settings are refused
 * with a message naming the file. */
int m2u_t5_config_load(const char *config_json_path, m2u_t5_config *cfg);

typedef struct m2u_t5_encoder m2u_t5_encoder;

/* Load dir/config.json and the weights in dir.  prefix: the tensor-name prefix before
 * "shared.weight" / "encoder.block..." ("" for T5EncoderModel / T5ForConditionalGeneration,
 * "text_encoder." for MusicGen), or NULL to detect it. */
int m2u_t5_encoder_load(const char *dir, const char *prefix, m2u_t5_encoder **out);
void m2u_t5_encoder_free(m2u_t5_encoder *enc);
const m2u_t5_config *m2u_t5_encoder_config(const m2u_t5_encoder *enc);

/* last_hidden_state out [B, T, d_model] for ids [B, T]; mask [B, T] of 0/1 (NULL: all ones). */
int m2u_t5_encode(const m2u_t5_encoder *enc, const int32_t *ids, const int32_t *mask, int B, int T, float *out);

/* Bucket of key_pos - query_pos (bidirectional, as T5Attention._relative_position_bucket,
 * including its float32 logarithm). */
int m2u_t5_relative_bucket(int rel, int num_buckets, int max_distance);

/* M2UGen's MusicGen projector target for one caption, unscaled: the caption tokenised as the
 * T5 processor does with padding="max_length", max_length, truncation=True (tokens + </s>, cut
 * to max_length, right-padded with <pad>), then the encoder's last_hidden_state over all
 * max_length positions with that attention mask.  Rows at padding positions hold the encoder's
 * real outputs for the <pad> inputs (what MusicGen's text encoder returns; MusicGen only zeroes
 * them later, after enc_to_dec_proj), not zeros.  M2UGen trains on 10 x this (m2ugen.md).
 * out [max_length, d_model]; ids_out / mask_out [max_length] may be NULL; *n_tokens (may be
 * NULL) = number of real tokens. */
int m2u_t5_caption_target(const m2u_t5_encoder *enc, const m2u_unigram *tok, const char *text, size_t len,
                          int max_length, float *out, int32_t *ids_out, int32_t *mask_out, int *n_tokens);

#endif
