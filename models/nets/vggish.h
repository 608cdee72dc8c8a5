/* VGGish (harritaylor/torchvggish f3f9096, the port fad_pytorch 0.0.6 loads through
 * torch.hub) as fad_pytorch runs it: no PCA / quantisation post-processing and the final
 * ReLU removed, so an example's embedding is the raw output of the last Linear.
 *
 * Front end (torchvggish/mel_features.py, vggish_input.py, float64 as numpy): 16 kHz mono;
 * frames of 400 samples every 160, no padding (1 + (N - 400) / 160 frames); periodic Hann;
 * |rfft| with 512 points; HTK mel matrix of 64 triangles between 125 and 7500 Hz in the mel
 * domain (no area normalisation, the DC bin's row zeroed); log(mel + 0.01); examples of 96
 * frames every 96 frames (an incomplete tail is dropped), rounded to float32 [96][64]
 * (time, mel).
 *
 * Network (torchvggish/vggish.py): conv3x3/pad 1 + ReLU layers and 2x2 max pools in the
 * pattern c1 M c2 M c3 c3' M c4 c4' M (state-dict keys features.{0,3,6,8,11,13}), flatten in
 * (time, mel, channel) order, Linear + ReLU, Linear + ReLU, Linear (embeddings.{0,2,4}).
 * Every width comes from the weight shapes, so a small network with the same pattern loads
 * too; the real one is 64/128/256/256/512/512, 12288 -> 4096 -> 4096 -> 128. */
#ifndef M2U_VGGISH_H
#define M2U_VGGISH_H

#include <stddef.h>

#define M2U_VGGISH_RATE 16000
#define M2U_VGGISH_FRAMES 96 /* log-mel frames per example (0.96 s) */
#define M2U_VGGISH_BANDS 64  /* mel bands */

typedef struct {
    int conv[6];          /* output channels of features.0, 3, 6, 8, 11, 13 */
    int fc_in, fc1, fc2;  /* embeddings.0 in / out, embeddings.2 out */
    int dim;              /* embeddings.4 out: the embedding size (128) */
    long long n_params;
} m2u_vggish_config;

typedef struct m2u_vggish m2u_vggish;

/* Load the torchvggish state dict (features.N.weight/bias, embeddings.N.weight/bias) from a
 * torch.save zip (.pth) or a .safetensors file (models/formats; other keys, e.g. a PCA's, are
 * ignored).  Weights are copied to fp32. */
int m2u_vggish_load(const char *path, m2u_vggish **out);
void m2u_vggish_free(m2u_vggish *m);
const m2u_vggish_config *m2u_vggish_config_of(const m2u_vggish *m);

/* Number of examples waveform_to_examples makes of n samples (0 when n < 15,600). */
int m2u_vggish_n_examples(size_t n);
/* wav [n] (16 kHz mono float32) -> examples [m2u_vggish_n_examples(n)][96][64]. */
int m2u_vggish_log_mel(const float *wav, size_t n, float *examples);
/* examples [n][96][64] -> emb [n][dim]: m2u_vggish_features, then m2u_vggish_head. */
int m2u_vggish_forward(const m2u_vggish *m, const float *examples, int n, float *emb);
/* The convolutional part: examples [n][96][64] -> flat [n][fc_in] (the input of the first
 * fully connected layer).  One example at a time. */
int m2u_vggish_features(const m2u_vggish *m, const float *examples, int n, float *flat);
/* The fully connected part on n rows at once: flat [n][fc_in] -> emb [n][dim].  Its first
 * weight is 12288 x 4096 (200 MB in fp32): give it many rows per call (a row's result does not
 * depend on the others), or the weights' traffic, not the arithmetic, sets the time. */
int m2u_vggish_head(const m2u_vggish *m, const float *flat, int n, float *emb);

#endif
