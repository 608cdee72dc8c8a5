/* PaSST (hear21passt 0.0.26, get_basic_model(mode="logits"), arch
 * passt_s_swa_p16_128_ap476): the AudioSet tagger whose class probabilities
 * M2UGen's KL compares (scorers.md §2).  Forward only, fp32.
 *
 * Front end (AugmentMelSTFT in eval mode), mono 32 kHz waveform x[N]:
 *   y[n] = x[n+1] - 0.97 x[n]                        (pre-emphasis, N-1 samples)
 *   STFT n_fft 1024, hop 320, symmetric Hann(800) centred in 1024, center=True
 *   with reflect padding: T = 1 + (N-1)/320 frames; power re^2 + im^2;
 *   kaldi mel banks (128 bins, 0..15000 Hz, one zero column for Nyquist);
 *   mel = log(banks @ power + 1e-5);  out = (mel + 4.5) / 5  -> [128][T].
 * Model: Conv2d(1->E, kf x kt, stride fstride x tstride) patches, + time
 * position (sliced to the patches' width) + frequency position, tokens in
 * frequency-major order (f * T' + t) after cls + new_pos_embed[0] and
 * dist + new_pos_embed[1]; pre-LN ViT blocks (LayerNorm eps 1e-6, exact
 * GELU); final LayerNorm eps 1e-6; logits = head.1(LN_1e-5((x_cls + x_dist) / 2)).
 *
 * Sizes come from the weights (embed dim, kernel, depth, MLP width, grid of
 * the position tables, classes); what the weights do not say is in
 * m2u_passt_opts. */
#ifndef M2U_PASST_H
#define M2U_PASST_H

#include "encoder_layer.h"

#include <stdint.h>

typedef struct {
    int heads;            /* attention heads; 0: 12 (all released PaSST models) */
    int fstride, tstride; /* patch strides; 0: 10 (passt-s-...-s10: get_model's defaults) */
} m2u_passt_opts;

typedef struct {
    m2u_enc_dims dims;    /* hidden = embed dim, heads, inter = MLP width, eps 1e-6, exact GELU */
    int layers;
    int kf, kt;           /* patch kernel (16 x 16) */
    int fstride, tstride;
    int grid_f;           /* frequency patches (freq_new_pos_embed) */
    int max_grid_t;       /* time patches the position table holds (99 for input_tdim 998) */
    int n_classes;        /* 527 */
    /* front end (fixed by get_basic_model) */
    int sample_rate, n_fft, hop, win, n_mels;
    double fmin, fmax;
} m2u_passt_config;

typedef struct m2u_passt m2u_passt;

/* Load a PaSST state dict (the hub checkpoint passt-s-f128-p16-s10-ap.476-swa.pt,
 * or a safetensors file / directory with the same names; a "net." prefix, as a
 * saved PasstBasicWrapper has, is accepted).  opts may be NULL (defaults). */
int m2u_passt_load(const char *path, const m2u_passt_opts *opts, m2u_passt **out);
void m2u_passt_free(m2u_passt *m);
const m2u_passt_config *m2u_passt_config_of(const m2u_passt *m);

/* Frames of the front end for n samples (1 + (n-1)/hop); 0 when n is too short
 * for the reflect padding (n - 1 <= n_fft / 2). */
int m2u_passt_frames(const m2u_passt *m, int64_t n);
/* Largest input (samples) the time position table allows. */
int64_t m2u_passt_max_samples(const m2u_passt *m);

/* wav[n] -> mel [n_mels][T], T = m2u_passt_frames(m, n). */
int m2u_passt_frontend(const m2u_passt *m, const float *wav, int64_t n, float *mel);

/* mel [n_mels][T] -> logits [n_classes].  Refuses T whose patches do not fit
 * the time position table, or T < kt. */
int m2u_passt_forward(const m2u_passt *m, const float *mel, int T, float *logits);

/* frontend + forward; refuses (naming the limit) inputs longer than
 * m2u_passt_max_samples or too short for one patch. */
int m2u_passt_logits(const m2u_passt *m, const float *wav, int64_t n, float *logits);

#endif
