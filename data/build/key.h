/* Chromagram and musical key estimation (Krumhansl–Schmuckler).
 *
 * Key: a 12-bin pitch-class profile of the whole clip (chroma) is correlated
 * (Pearson) with the 12 rotations of a major and a minor key profile; the best
 * of the 24 is the key.  Debian 12 ships no key-detection library (no
 * essentia, libkeyfinder), so this is implemented here.
 *
 * Chroma: a Hann-windowed STFT (about 186 ms windows, half overlap) in double
 * precision with our own FFT (bit-for-bit deterministic, no planner).  In each
 * frame the spectral peaks between 80 Hz and 5 kHz, at most 60 dB under the
 * frame's strongest, are located to a fraction of a bin (parabolic
 * interpolation on log magnitude) and their compressed magnitude (sqrt, so a
 * loud bass does not drown the harmony) goes into a 5-cent pitch histogram.
 * Peaks rather than all bins, because the bins between harmonics carry
 * noise (drums, reverb) that would flatten the profile.  A global tuning
 * estimate (weighted circular mean of the peaks' deviation from equal
 * temperament at A4 = 440 Hz) centres the 12 pitch classes the histogram is
 * folded into (cos^2 weights within +-50 cents).
 *
 * All functions are reentrant; none print. */
#ifndef M2U_KEY_H
#define M2U_KEY_H

#include <stddef.h>

#define M2U_MODE_MAJOR 0
#define M2U_MODE_MINOR 1

typedef enum {
    M2U_KEY_PROFILE_KRUMHANSL = 0, /* Krumhansl–Kessler probe-tone ratings (1982) */
    M2U_KEY_PROFILE_TEMPERLEY = 1, /* Temperley (1999), "What's key for key?" */
} m2u_key_profile;

/* ---- STFT (shared with analysis.c) -----------------------------------------
 * Magnitude spectrum of one Hann-windowed frame of n_fft samples starting at
 * sample `start` of pcm[0..n) (samples outside are zeros).  n_fft is a power
 * of two, 16..65536.  mag has n_fft/2+1 entries. */
typedef struct m2u_stft m2u_stft;
m2u_stft *m2u_stft_new(int n_fft); /* NULL after m2u_fail() */
void m2u_stft_free(m2u_stft *s);
int m2u_stft_size(const m2u_stft *s);
void m2u_stft_frame(m2u_stft *s, const float *pcm, size_t n, long long start, double *mag);

/* Clip chroma: 12 values (C, C#, ..., B) summing to 1, or all zero when the
 * clip has no spectral peaks (silence).  tuning_cents (may be NULL) receives
 * the estimated deviation from A4 = 440 Hz in cents, -50..50.
 * rate 4000..384000. */
int m2u_chroma(const float *pcm, size_t n, int rate, double chroma[12], double *tuning_cents);

/* Key from a chroma vector.  *key = tonic pitch class 0..11, *mode =
 * M2U_MODE_MAJOR/MINOR, *confidence = the winning Pearson correlation clipped
 * to [0,1].  A flat (all-equal, e.g. all-zero) chroma has no key: *key =
 * *mode = -1, *confidence = 0.  scores (may be NULL) receives all 24
 * correlations, index mode*12 + tonic. */
int m2u_key_from_chroma(const double chroma[12], m2u_key_profile profile, int *key, int *mode,
                        double *confidence, double scores[24]);

/* "C major", "F# minor", "Bb major", ...; "none" for key < 0. Static strings. */
const char *m2u_key_name(int key, int mode);

/* MIREX key score of an estimate against a reference, as mir_eval's
 * weighted_score: 1 same key, 0.5 the estimate a perfect fifth above the
 * reference in the same mode, 0.3 relative major/minor, 0.2 parallel
 * major/minor, else 0. */
double m2u_key_mirex_score(int ref_key, int ref_mode, int est_key, int est_mode);

#endif
