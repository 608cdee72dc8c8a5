/* BERT-family text encoder (transformers BertModel; RoBERTa's position offset
 * optional), forward only, fp32, built on the shared post-norm layer of
 * encoder_layer.h:
 *   x = LN_emb(word[id] + position[p] + token_type[t]);  then per layer
 *   h = LN1(x + O(Attn(x)));   y = LN2(h + FC2(gelu(FC1(h))))
 * Positions are 0.. for "bert"; for "roberta" / "xlm-roberta" / "camembert"
 * they are transformers' create_position_ids_from_input_ids: padding_idx + 1 +
 * the count of non-<pad> tokens so far, and padding_idx at a <pad> (also one
 * inside the text).  The pooler (pooler_output = tanh(Dense(h[0])), what
 * LAION-CLAP's text tower uses) is loaded when the checkpoint has it.
 *
 * Padded batches: a right-padded batch with an attention mask gives, at every
 * real token, what the unpadded sequence gives (the masked keys get exp(-inf)
 * = 0 weight in transformers too), so each sequence is run at its own length.
 * Padded positions are written as 0: transformers' values there are
 * computed from pad tokens and carry no meaning. */
#ifndef M2U_BERT_ENCODER_H
#define M2U_BERT_ENCODER_H

#include "encoder_layer.h"

#include <stdint.h>

typedef struct {
    m2u_enc_dims dims;
    int layers, vocab, max_positions, type_vocab;
    int position_offset; /* 0 (bert) or padding_idx + 1 (roberta family) */
    int pad_token_id;
} m2u_bert_config;

typedef struct m2u_bert m2u_bert;

/* Load a checkpoint directory: config.json (model_type "bert", "roberta",
 * "xlm-roberta" or "camembert"; position_embedding_type "absolute") and
 * model.safetensors, a sharded index or pytorch_model.bin.  Names may carry
 * the "bert." / "roberta." prefix of the *ForMaskedLM etc. checkpoints. */
int m2u_bert_load(const char *dir, m2u_bert **out);
/* A text tower inside another model's checkpoint (ClapModel's text_model): cfg is its config
 * object as a config.json would hold it (the caller fills in its own config class's defaults
 * and model_type), origin names it in messages, and the weights are read from st under
 * prefix (e.g. "text_model."). */
int m2u_bert_load_sub(const cJSON *cfg, const char *origin, const m2u_safetensors *st, const char *prefix,
                      m2u_bert **out);
void m2u_bert_free(m2u_bert *m);
const m2u_bert_config *m2u_bert_config_of(const m2u_bert *m);

/* One unpadded sequence ids[0..T) (token type 0), run through the first
 * num_layers layers (0..layers; bert_score's num_layers).  hidden_states, when
 * not NULL, gets [num_layers+1][T][H] (embeddings first); last, when not NULL,
 * gets the output of layer num_layers [T][H]. */
int m2u_bert_forward(const m2u_bert *m, const int32_t *ids, int T, int num_layers, float *hidden_states,
                     float *last);

/* Several unpadded sequences packed one after another, ids [sum lens], each with its own
 * positions and attending only to itself (m2u_enc_layer_fwd_seqs): hidden_states
 * [num_layers+1][sum lens][H], last [sum lens][H], as m2u_bert_forward per sequence but for the
 * GEMMs' rounding, and one pass over the weights per layer for all of them. */
int m2u_bert_forward_packed(const m2u_bert *m, const int32_t *ids, int nseq, const int *lens, int num_layers,
                            float *hidden_states, float *last);

/* pooler_output of one sequence from its last hidden state at position 0
 * (h0 [H]): out [H] = tanh(pooler.dense(h0)).  Fails without a pooler. */
int m2u_bert_has_pooler(const m2u_bert *m);
int m2u_bert_pooler(const m2u_bert *m, const float *h0, float *out);

/* A right-padded batch ids [B][T] with attention_mask [B][T] (1s then 0s):
 * hidden_states [layers+1][B][T][H] as transformers' output_hidden_states,
 * padded positions 0. */
int m2u_bert_forward_batch(const m2u_bert *m, const int32_t *ids, const int32_t *attention_mask, int B, int T,
                           float *hidden_states);

#endif
