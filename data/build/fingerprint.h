/* Near-duplicate audio detection with Chromaprint (libchromaprint, MIT; Debian
 * builds it on FFmpeg's FFT and resampler, which m2u_data links anyway).
 *
 *   uint32_t *fa, *fb; size_t na, nb;
 *   m2u_fingerprint(pcm_a, n_a, rate, 0, &fa, &na);
 *   m2u_fingerprint(pcm_b, n_b, rate, 0, &fb, &nb);
 *   m2u_fingerprint_match m;
 *   m2u_fingerprint_compare(fa, na, fb, nb, &m);
 *   if (m2u_fingerprint_is_duplicate(&m, M2U_FINGERPRINT_DUP_THRESHOLD)) ... duplicate
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

/* The comparison behind the duplicate decision.
 *   similarity  as m2u_fingerprint_similarity: the best offset's agreement of
 *               all bits (0.5 unrelated, 1 identical)
 *   agreement   at that offset, |changes in a AND changes in b| / |changes in
 *               a OR changes in b| over the bits that change from one item to
 *               the next (0 when neither changes).  A steady tone has a
 *               constant fingerprint: two steady tones at any pitches agree on
 *               most bits (similarity 0.75-1.00) but share no change, so this
 *               is 0; a copy of music changes where the original does.
 *   offset      of the best match (a[i + offset] against b[i]).
 * On ties of similarity the best agreement counts, so the result is symmetric. */
typedef struct {
    double similarity, agreement;
    long offset;
} m2u_fingerprint_match;
void m2u_fingerprint_compare(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, m2u_fingerprint_match *m);

/* Duplicate: similarity >= threshold (M2U_FINGERPRINT_DUP_THRESHOLD) and
 * agreement >= M2U_FINGERPRINT_DUP_AGREEMENT. */
int m2u_fingerprint_is_duplicate(const m2u_fingerprint_match *m, double threshold);

/* The decision, measured by eval/bench_fingerprint.c (m2u-bench-fingerprint:
 * the 31 OpenMSX pieces rendered as the builder does, each re-encoded as MP3
 * 64k / Vorbis q0 / AAC 48k at 16 kHz, started 7 s later, cut to a 30-s
 * excerpt, and transposed -1 / +2 semitones; 100 test tones) and
 * tests/data/test_fingerprint.c:
 *   same piece        similarity 0.918-1.000 (a cut that is not a multiple of
 *                     the 0.124-s item lowest), agreement 0.337-1.000
 *   different pieces  similarity 0.46-0.64, agreement <= 0.163
 *   transposed piece  similarity 0.52-0.69, agreement <= 0.215 (another clip)
 *   steady tones      similarity up to 1.000 between different pitches, and
 *                     against a steady stretch of a piece, but agreement 0
 * So similarity >= 0.85 keeps lossy copies, offsets, gain and moderate noise
 * as duplicates, and agreement >= 0.30 requires them to share the music's
 * changes: pieces recall 1.000 and precision 1.000 (465 duplicate pairs,
 * 29,822 distinct), as before; over all 408 clips the old rule (similarity
 * alone) had precision 0.088 and dropped 19 of 20 distinct sines, this one
 * has precision 0.865 and drops none.  Not caught: an MP3 copy of a steady
 * tone (nothing in it to match; keeping a distinct clip matters more).  Known
 * limit: the fingerprint hears pitch classes, so the same rhythm of beeps or
 * arpeggios about an octave apart can still match (6 of 20 beeping tones, 8
 * of 20 arpeggios of one pattern were dropped). */
#define M2U_FINGERPRINT_DUP_THRESHOLD 0.85
#define M2U_FINGERPRINT_DUP_AGREEMENT 0.30

#endif
