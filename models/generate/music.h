/* Music out of m2u, end to end: MusicGen's decoder LM (musicgen.h) makes EnCodec codes from
 * conditioning states, EnCodec (encodec.h) turns them into a waveform.
 *
 *   (a) text -> music:  prompt -> MusicGen's T5 (m2u unigram tokenizer + T5 encoder) -> states
 *       [S, text_hidden] with mask -> codes -> waveform;
 *   (b) M2UGen's path:  x [n_aud, dim] (LLaMA's last hidden states at the [AUD] positions plus
 *       the [AUD] embeddings, exactly the projector input the trainer builds, m2ugen.h) ->
 *       output projector -> / target_scale -> states [n_out, out_dim] with every position
 *       attended (mask all ones) -> codes -> waveform.
 *
 * Why / target_scale: the projector is trained to regress target_scale * T5 states (M2UGen's
 * x10), and M2UGen's original generation divides by 10 before handing the states to MusicGen
 * as encoder_outputs (research/musicgen.md section 2.3).
 *
 * Classifier-free guidance on path (b): transformers' generate(encoder_outputs=..., guidance_scale
 * > 1) doubles the decoder batch but not the encoder batch (the null half is only appended on
 * the text path), which mis-shapes the cross-attention.  Here the null half is appended the way
 * the text path appends it (all-zero states, mask 0) by m2u_musicgen_generate itself, so path (b)
 * with guidance g is exactly what generate would do for a text prompt whose T5 states were
 * these.  guidance <= 1 runs the conditional half only (M2UGen's original code: no CFG).
 *
 * Library code: nothing printed; functions return 0, or -1 after m2u_fail(). */
#ifndef M2U_MUSIC_H
#define M2U_MUSIC_H

#include "encodec.h"
#include "musicgen.h"
#include "projector.h"
#include "unigram_tokenizer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *dir;
    m2u_musicgen *lm;
    m2u_encodec *codec;  /* the checkpoint's audio_encoder part (decoder only) */
    m2u_unigram *tok;    /* dir/tokenizer.json, with the text encoder only */
    int with_text, with_encoder;
} m2u_music;

/* Open a MusicGen directory (config.json with text_encoder / audio_encoder / decoder parts and
 * the weights).  with_text: also load the T5 text encoder and dir/tokenizer.json (path a).
 * The codec's code count and size must match the decoder's (num_codebooks, vocab_size). */
int m2u_music_open(const char *dir, int with_text, m2u_music **out);
/* As m2u_music_open; with_codec_encoder also loads EnCodec's encoder (audio prompts); tokenizer:
 * the T5 tokenizer.json for the text path (NULL: dir/tokenizer.json). */
int m2u_music_open_ex(const char *dir, int with_text, int with_codec_encoder, const char *tokenizer, m2u_music **out);

/* An audio prompt for continuation: mono wav [n] at m2u_music_sample_rate -> *codes [K][*frames]
 * (malloc'ed) with K the decoder's codebooks, as transformers' generate(input_values=...) encodes
 * it (EncodecModel.encode); put them in m2u_musicgen_gen_opts.prompt_codes / prompt_frames.  The
 * clip then starts with the prompt (re-synthesised from its codes), as generate's output does.
 * Needs m2u_music_open_ex(..., with_codec_encoder 1). */
int m2u_music_prompt_codes(const m2u_music *m, const float *wav, size_t n, int32_t **codes, int *frames);
void m2u_music_close(m2u_music *m);

int m2u_music_sample_rate(const m2u_music *m);
int m2u_music_frame_rate(const m2u_music *m);
/* generate's max_length for `seconds` of audio: frames N = round(seconds * frame_rate) (>= 1),
 * max_length = N + K (N = max_length - K frames come out). */
int m2u_music_max_length(const m2u_music *m, double seconds);

typedef struct {
    int32_t *codes; /* [K][N] */
    int K, N;
    float *wav;     /* [n] mono at m2u_music_sample_rate */
    size_t n;
} m2u_music_clip;
void m2u_music_clip_free(m2u_music_clip *c);

/* Path (a) and (b)'s common end: conditioning states [S, text_hidden] (mask NULL: all ones)
 * -> codes (o: m2u_musicgen_gen_opts, CFG as above) -> waveform. */
int m2u_music_from_states(const m2u_music *m, const float *states, const int32_t *mask, int S,
                          const m2u_musicgen_gen_opts *o, m2u_music_clip *out);
/* Path (a): text through the T5 encoder (needs with_text). */
int m2u_music_from_text(const m2u_music *m, const char *text, const m2u_musicgen_gen_opts *o, m2u_music_clip *out);

/* Path (b)'s first half: the output projector on x [n_in, dim] (one sample), divided by
 * target_scale: *states [n_out, out_dim] (malloc'ed).  p must be an initialised projector
 * with its parameters loaded (m2ugen.h's mg->proj). */
int m2u_music_states_from_aud(m2u_projector *p, const float *x, float **states);
/* The projector's output width must be MusicGen's conditioning width (text_hidden). */
int m2u_music_check_projector(const m2u_music *m, const m2u_projector_config *pc);

#endif
