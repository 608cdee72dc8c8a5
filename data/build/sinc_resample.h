/* torchaudio.transforms.Resample(orig, new) with its defaults (sinc_interp_hann,
 * lowpass_filter_width 6, rolloff 0.99), the resampler of aeiou's load_audio and so of
 * fad_pytorch's `fad_embed`.
 *
 * Rates reduced by their gcd (o -> n); base = min(o, n) * 0.99; width = ceil(6 o / base);
 * for output phase k < n and tap i < 2 width + o:
 *   t = clamp(base * (float32(-k / n) + (i - width) / o), -6, 6)
 *   h[k][i] = float32( sin(pi t) / (pi t) * cos^2(pi t / 12) * base / o )   (1 at t = 0)
 * computed in double as torchaudio does (its -k/n term is a float32 division), rounded to
 * float32 once; output y[j n + k] = sum_i h[k][i] x[j o + i - width] (x zero outside its
 * samples), of ceil(n L / o) samples.  torchaudio applies h as a float32 conv1d; here each
 * sum is taken in double and rounded once, which lands within a float32 ulp or two of it. */
#ifndef M2U_SINC_RESAMPLE_H
#define M2U_SINC_RESAMPLE_H

#include <stdint.h>

typedef struct {
    int orig, new_, width, taps; /* reduced rates; taps = 2 width + orig */
    float *kernel;               /* [new_][taps] */
    int *lo, *hi;                /* per phase: the non-zero taps are [lo, hi) */
} m2u_sinc_resampler;

/* Rates in Hz (> 0).  Equal rates give the identity (as Resample does: no filtering). */
int m2u_sinc_resampler_init(m2u_sinc_resampler *r, int orig_rate, int new_rate);
void m2u_sinc_resampler_free(m2u_sinc_resampler *r);
/* Output length for n input samples: ceil(new_ n / orig). */
int64_t m2u_sinc_resampled_length(const m2u_sinc_resampler *r, int64_t n);
/* The first n_out (<= m2u_sinc_resampled_length(n)) output samples of x [n] (stride 1). */
void m2u_sinc_resample(const m2u_sinc_resampler *r, const float *x, int64_t n, float *y, int64_t n_out);

#endif
