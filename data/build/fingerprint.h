/* Near-duplicate audio detection with Chromaprint (libchromaprint, MIT; Debian
 * builds it on FFmpeg's FFT and resampler, which m2u_data links anyway).
 *
 *   uint32_t *fa, *fb; size_t na, nb;
 *   m2u_fingerprint(pcm_a, n_a, rate, 0, &fa, &na);
 *   m2u_fingerprint(pcm_b, n_b, rate, 0, &fb, &nb);
 *   if (m2u_fingerprint_similarity(fa, na, fb, nb) >= M2U_FINGERPRINT_DUP_THRESHOLD) ... duplicate
 *   free(fa); free(fb);
 *
 * The fingerprint is Chromaprint's raw fingerprint with its default algorithm
 * (TEST2): one 32-bit item per ~0.124 s (1365.33 samples at Chromaprint's
 * internal 11025 Hz), each bit a quantised chroma-image filter response, so it
 * survives lossy coding, gain and resampling but not a change of key or tempo.
 * Deterministic for the same samples. */
#ifndef M2U_FINGERPRINT_H
#define M2U_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

/* Chromaprint raw fingerprint of the first max_s seconds (<= 0: 120 s) of mono
 * float PCM at rate (8000..192000).  Samples are converted to int16 (x * 32767,
 * rounded, clamped; NaN/inf refused); Chromaprint resamples internally.  *fp is
 * malloc'ed (uint32 items, caller frees).  Audio shorter than about 3 s gives
 * few or no items: that is success with *len == 0 and *fp == NULL (such a
 * fingerprint matches nothing: the similarity is 0). */
int m2u_fingerprint(const float *pcm, size_t n, int rate, double max_s, uint32_t **fp, size_t *len);

/* Best match over relative offsets of 1 - (bit errors / bits compared) on the
 * overlapping items; 0.5 = unrelated, 1 = identical.  Offsets tried: every
 * shift whose overlap is at least half the shorter fingerprint (so at least
 * +-1/2 of the shorter length, and a short clip is found anywhere inside a
 * longer one), and never an overlap below 16 items: when the shorter
 * fingerprint has fewer than 16 items the result is 0.  Symmetric in a and b. */
double m2u_fingerprint_similarity(const uint32_t *a, size_t na, const uint32_t *b, size_t nb);

/* Duplicate threshold, from the measurements in tests/data/test_fingerprint.c
 * (a 22 s rendered song, 154 items; the test prints them) and a few more made
 * while writing it:
 *   same recording   MP3 64k 0.996, Vorbis q0 0.980, AAC 48k at 16 kHz 0.990,
 *                    MP3 24k at 11 kHz 0.987, 3 kHz low-pass 0.994, +4 dB
 *                    1.000, 3 s later start 0.970, 8 s excerpt 0.984, white
 *                    noise at SNR 10 dB 0.983 (SNR ~2 dB 0.94, ~-5 dB 0.82)
 *   different music  other songs 0.515-0.555, the same song transposed +2
 *                    semitones 0.588, the same notes on another instrument 0.626
 *   in between       tempo x1.01 0.918, x1.02 0.880, x0.97 0.841, x1.04 0.827;
 *                    detuned +0.3 / +0.5 semitone 0.759 / 0.753
 * 0.85 sits 0.12 below the weakest copy (3 s offset) and 0.22 above the most
 * similar different music, so lossy copies, offsets, gain and moderate noise
 * are duplicates, as is a copy sped up by up to ~2 %; the builder's own edits
 * (>= 1 semitone, >= 5 % tempo, an instrument swap) are not. */
#define M2U_FINGERPRINT_DUP_THRESHOLD 0.85

#endif
