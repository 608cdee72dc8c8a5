/* MusicGen's decoder LM (transformers' MusicgenForCausalLM inside
 * MusicgenForConditionalGeneration, v4.46.3), forward and generation, exact to fp32 rounding.
 *
 * Math (modeling_musicgen.py): x = sum_k embed_tokens[k][ids[k]] (no scaling unless
 * scale_embedding) + sinusoid(position) (cos | sin, tensor2tensor layout); per layer, pre-LN
 * with nn.LayerNorm (eps 1e-5) and bias-free projections:
 *   x += SelfAttn(LN(x)) (causal, KV cache), x += CrossAttn(LN(x), enc, enc_mask),
 *   x += fc2(act(fc1(LN(x))));
 * then the final layer_norm and one lm_head per codebook: logits [K][vocab].
 * Conditioning: encoder states h [S, D_enc] -> enc_to_dec_proj (Linear with bias, present
 * when the text encoder's hidden size differs from the decoder's) -> h * mask[:, None]; the
 * same mask masks the cross-attention keys (finfo.min added).
 * Generation follows MusicgenForConditionalGeneration.generate: decoder start id in every
 * codebook, delay pattern (build_delay_pattern_mask / apply_delay_pattern_mask), one decoder
 * pass per step, classifier-free guidance as one batch of two (conditional, then the null
 * half: zero encoder states with attention mask 0, as generate adds for a text prompt),
 * logits = uncond + g (cond - uncond), then temperature / top-k / top-p and a draw (or argmax),
 * independently per codebook; at the end the delay is undone: [K, N] codes, N = max_length - K.
 *
 * Checkpoints: a directory with config.json (composite "musicgen": text_encoder,
 * audio_encoder, decoder) and model.safetensors / a sharded index / pytorch_model.bin;
 * tensors decoder.model.decoder.*, decoder.lm_heads.*, enc_to_dec_proj.*, text_encoder.*.
 * Weights stay in the mapping in their stored dtype (F32/F16/BF16).  musicgen-melody (prefix
 * conditioning, no cross-attention), stereo checkpoints and cross_attention_hidden_size are
 * refused.  The stored sinusoid table (embed_positions.weights) is used when present; positions
 * past its end are computed with the same formula (transformers would fail there with the KV
 * cache: it extends the table only for long inputs, not for long caches). */
#ifndef M2U_MUSICGEN_H
#define M2U_MUSICGEN_H

#include "ops_gen.h"
#include "unigram_tokenizer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int hidden, layers, heads, ffn; /* decoder */
    int codebooks, vocab;           /* K codebooks of `vocab` codes (2048); embeddings have vocab + 1 rows */
    int max_positions;              /* rows of the stored sinusoid table (max_position_embeddings) */
    int scale_embedding;
    int act;                  /* m2u_act of activation_function (encoder_layer.h) */
    int start_id, pad_id;     /* decoder_start_token_id (delay-pattern filler), pad_token_id */
    int text_hidden;          /* hidden size of the conditioning states (text encoder's d_model) */
    int has_proj;             /* enc_to_dec_proj present (text_hidden != hidden) */
    float guidance_scale;     /* generation_config.json's, or 1 */
    int has_text_encoder;     /* config has a text_encoder part */
} m2u_musicgen_config;

/* Parse a MusicGen config.json (composite, or a bare "musicgen_decoder" one) and the optional
 * generation_config.json next to it. */
int m2u_musicgen_config_load(const char *dir, m2u_musicgen_config *cfg);

typedef struct m2u_musicgen m2u_musicgen;

/* Load dir/config.json and the weights.  with_text_encoder: also load the T5 text encoder
 * (tensors text_encoder.*) for m2u_musicgen_encode_text. */
int m2u_musicgen_load(const char *dir, int with_text_encoder, m2u_musicgen **out);
void m2u_musicgen_free(m2u_musicgen *m);
const m2u_musicgen_config *m2u_musicgen_get_config(const m2u_musicgen *m);

/* Entry (a): T5 last_hidden_state [S, text_hidden] of token ids [S] with mask [S] (NULL: all
 * ones), to pass to m2u_musicgen_begin with the same mask. */
int m2u_musicgen_encode_text(const m2u_musicgen *m, const int32_t *ids, const int32_t *mask, int S, float *out);

/* Entry (a) from text: tokenise as MusicGen's T5 processor does for one prompt (pieces + </s>,
 * no padding, mask all ones), then the T5 encoder.  *states [*S, text_hidden] and *mask [*S]
 * are malloc'ed (free them); pass them to m2u_musicgen_begin / _generate. */
int m2u_musicgen_encode_prompt(const m2u_musicgen *m, const m2u_unigram *tok, const char *text, size_t len,
                               float **states, int32_t **mask, int *S);

/* The delay pattern of generate for one sequence: mask [K][max_length] with the filler id at
 * the K pad positions of each row and -1 elsewhere (build_delay_pattern_mask for the start
 * column).  Fails when max_length < 2K - 1 (transformers then applies no pattern, and the
 * codes cannot be un-delayed). */
int m2u_musicgen_delay_mask(int K, int max_length, int filler, int32_t *mask);

/* A generation session: self-attention KV caches, the cross-attention K/V of the conditioning
 * computed once, and the current position. */
typedef struct m2u_musicgen_session m2u_musicgen_session;

/* Entry (b): encoder states enc [S, text_hidden] (what the text encoder, or M2UGen's output
 * projector, produces) with mask [S] (NULL: every position attended, as generate with
 * encoder_outputs and no attention_mask).  cfg: also run the null half (zeros, mask 0), so each
 * step returns guided logits.  max_steps: decoder passes the cache must hold. */
int m2u_musicgen_begin(const m2u_musicgen *m, const float *enc, const int32_t *mask, int S, int cfg, int max_steps,
                       m2u_musicgen_session **out);
void m2u_musicgen_session_free(m2u_musicgen_session *s);

/* One decoder pass on the frame ids [K] at the next position.  raw (may be NULL) gets
 * [B][K][vocab] with B = 2 under CFG (conditional first) or 1; guided (may be NULL) gets
 * [K][vocab] after CFG with scale g (the raw logits when the session has no null half). */
int m2u_musicgen_step(m2u_musicgen_session *s, const int32_t *ids, float g, float *raw, float *guided);

typedef struct {
    int max_length;        /* generate's max_length = max_new_tokens + 1 (>= 2K - 1) */
    float guidance_scale;  /* > 1: classifier-free guidance */
    int do_sample;         /* 0: greedy */
    m2u_gen_sampling sampling;
    uint64_t seed;
    /* Audio prompt (continuation, transformers' generate(input_values=...)): EnCodec codes
     * [K][prompt_frames] of the prompt audio, or NULL.  As generate does, they follow the start id
     * in every codebook (codebook k delayed by k), are forced wherever the delay pattern puts them,
     * and the output codes begin with them: max_length counts the prompt (codes [K][max_length - K]
     * hold prompt_frames prompt codes, then the new ones).  Needs prompt_frames < max_length - K. */
    const int32_t *prompt_codes;
    int prompt_frames;
    /* Called after each decoder pass with (passes done, passes in all = max_length - 1); may be NULL.
     * For progress display only (the callback must not call into this model). */
    void (*progress)(void *ctx, int done, int total);
    void *progress_ctx;
} m2u_musicgen_gen_opts;

/* Defaults as audiocraft's MusicGen: sampling, top_k 250, top_p off, temperature 1, CFG 3. */
m2u_musicgen_gen_opts m2u_musicgen_default_opts(int max_length);

/* Generate from encoder states (entry b; see m2u_musicgen_begin for enc / mask).  codes
 * [K][max_length - K] (un-delayed); seq (may be NULL) gets the delayed sequence
 * [K][max_length] as generate's output_ids before the final un-delay. */
int m2u_musicgen_generate(const m2u_musicgen *m, const float *enc, const int32_t *mask, int S,
                          const m2u_musicgen_gen_opts *o, int32_t *codes, int32_t *seq);

#endif
