/* CLAP (LAION-CLAP as transformers' ClapModel lays it out; laion/clap-htsat-unfused =
 * LAION-CLAP 630k-audioset-best), forward only, fp32: the audio embedding of a clip and,
 * when the text tower is present, the text embedding of a caption, both L2-normalised, so
 * that the CLAP score of a pair is their dot product (ClapModel's cosine).
 *
 * Audio front end = ClapFeatureExtractor with truncation "rand_trunc" and padding
 * "repeatpad" (the unfused model's preprocessor_config.json), computed as transformers
 * 4.46.3 does (audio_utils.spectrogram):
 *   - a clip shorter than max_length_s * sampling_rate samples is tiled floor(max/len)
 *     times and zero-padded to max ("repeat": tiled and cut; "pad": zero-padded);
 *   - a longer clip is cropped to max samples.  The reference draws the offset with an
 *     unseeded np.random.randint; m2u takes offset 0 (the first max samples), so scores
 *     are reproducible; a clip longer than 10 s is thus scored on its first 10 s;
 *   - reflect padding by n_fft/2 on both sides, frames every hop samples, periodic Hann
 *     window (np.hanning(n+1)[:-1]), a double-precision DFT whose bins are rounded to
 *     complex64 (the reference stores them so), power |X|^2 in double, Slaney-scale mel
 *     filters with Slaney area norm (mel_filter_bank(norm="slaney", mel_scale="slaney"),
 *     fmin..fmax), 10 log10(max(mel, 1e-10)), rounded to float: [frames][n_mels] with
 *     frames = 1 + max / hop (1001 for 10 s at 48 kHz, hop 480).
 * Text tower: see below.
 * Audio tower = ClapAudioModel (HTSAT): BatchNorm over the mel bins (running statistics),
 * the time axis interpolated bicubically (align_corners, a = -0.75, as torch's CPU kernel)
 * to spec_size * freq_ratio and folded into a spec_size x spec_size image (freq_ratio =
 * spec_size / n_mels blocks of time stacked along frequency), patch embedding (Conv2d
 * kernel = stride) + LayerNorm, Swin stages (window attention with the relative-position
 * bias; odd blocks shifted by window/2 with the -100 mask unless the stage is a single
 * window; patch merging between stages), final LayerNorm, the mean over all tokens
 * (pooler_output), then audio_projection (Linear, ReLU, Linear) and F.normalize.
 *
 * What m2u refuses (ClapModel configurations no LAION checkpoint uses): enable_fusion /
 * truncation "fusion" (laion/clap-htsat-fused), patch_size != patch_stride, n_mels !=
 * spec_size / freq_ratio, a stage whose resolution is not a multiple of window_size or
 * smaller than it (transformers itself fails there), odd resolutions before a merge. */
#ifndef M2U_CLAP_H
#define M2U_CLAP_H

#include "encoder_layer.h"

#include <stdint.h>

#define M2U_CLAP_MAX_STAGES 8

typedef enum { M2U_CLAP_PAD_REPEATPAD = 0, M2U_CLAP_PAD_REPEAT, M2U_CLAP_PAD_PAD } m2u_clap_padding;

typedef struct {
    /* ClapFeatureExtractor (preprocessor_config.json) */
    int sample_rate, n_fft, hop, n_mels, max_samples, frames;
    double fmin, fmax;
    m2u_clap_padding padding;
    /* ClapAudioConfig (config.json "audio_config") */
    int spec_size, freq_ratio, patch, window, n_stages;
    int depths[M2U_CLAP_MAX_STAGES], heads[M2U_CLAP_MAX_STAGES];
    int embed_dim;    /* patch_embeds_hidden_size: channels of stage 1 */
    int num_features; /* embed_dim * 2^(n_stages - 1): the pooled size */
    double mlp_ratio;
    float ln_eps;     /* layer_norm_eps of the Swin blocks (the other LayerNorms use 1e-5) */
    m2u_act act;
    /* the joint space */
    int proj_dim;
    int has_text;     /* the checkpoint holds text_model.* (ClapModel; not ClapAudioModelWithProjection) */
} m2u_clap_config;

typedef struct m2u_clap m2u_clap;

/* A ClapModel directory (save_pretrained, or laion/clap-htsat-unfused's snapshot):
 * config.json (model_type "clap"; absent keys take ClapConfig / ClapAudioConfig /
 * ClapTextConfig's defaults, as transformers writes only the others), model.safetensors (or a
 * sharded index / pytorch_model.bin) with ClapModel's names (audio_model.audio_encoder.*,
 * audio_projection.*, text_model.*, text_projection.*), and preprocessor_config.json, which is
 * required (ClapFeatureExtractor's own defaults are the fused model's: truncation "fusion",
 * frequency_min 0).  When the weights have text_model.*, a tokenizer is required too:
 * tokenizer.json, or vocab.json and merges.txt (tokenizer_config.json optional). */
int m2u_clap_load(const char *dir, m2u_clap **out);
void m2u_clap_free(m2u_clap *m);
const m2u_clap_config *m2u_clap_config_of(const m2u_clap *m);

/* The front end: n samples of mono audio at cfg.sample_rate -> input_features
 * [frames][n_mels].  n must be > 0 (and > n_fft / 2 after padding, always true for the
 * shipped settings). */
int m2u_clap_features(const m2u_clap *m, const float *pcm, long n, float *features);

/* input_features [frames][n_mels] -> pooled [num_features] (ClapAudioModel's pooler_output;
 * may be NULL) and embed [proj_dim] (get_audio_features: projected, L2-normalised; may be
 * NULL). */
int m2u_clap_audio_forward(const m2u_clap *m, const float *features, float *pooled, float *embed);

/* Both steps: pcm -> embed [proj_dim]. */
int m2u_clap_audio_embed(const m2u_clap *m, const float *pcm, long n, float *embed);

/* ---- text tower (cfg.has_text) ----
 * ClapTextModel is a RobertaModel with its pooler (models/nets/bert_encoder.h); the caption is
 * tokenised by the checkpoint's tokenizer.json when it has one (RobertaTokenizerFast, what
 * AutoTokenizer gives ClapModel's users; models/tokenizers/tokenizer.h), else by RobertaTokenizer's
 * vocab.json + merges.txt (models/tokenizers/bytelevel_bpe.h), as tokenizer(caption) does:
 * <s> ... </s>, no padding (a padded batch gives the same values per row).  Unlike
 * laion_clap, captions are not padded / truncated to 77 tokens; a caption longer than the
 * model's positions (or model_max_length) is truncated there, where ClapModel would fail. */

/* caption -> ids (<s> ... </s>), *ids malloc'ed */
int m2u_clap_tokenize(const m2u_clap *m, const char *text, int32_t **ids, size_t *n_ids);
/* ids [T] -> pooled [text hidden] (pooler_output; may be NULL) and embed [proj_dim]
 * (get_text_features: projected, L2-normalised; may be NULL) */
int m2u_clap_text_forward(const m2u_clap *m, const int32_t *ids, int T, float *pooled, float *embed);
/* both: caption -> embed [proj_dim] */
int m2u_clap_text_embed(const m2u_clap *m, const char *text, float *embed);
/* n captions -> embeds [n][proj_dim], the captions packed into one text-tower pass
 * (m2u_bert_forward_packed: each caption's values as alone but for the GEMMs' rounding). */
int m2u_clap_text_embed_many(const m2u_clap *m, const char *const *texts, int n, float *embeds);

#endif
