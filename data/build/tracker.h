/* Beat times and onset counts from aubio's own detectors, without the phases aubio computes
 * and never reads here.
 *
 * aubio_tempo_do and aubio_onset_do each start with aubio_pvoc_do, which takes atan2f of every
 * bin of every frame (aubio_fft_get_phas).  The spectral-flux tempo tracker and the HFC onset
 * detector read only the magnitudes: the phases were 13 % of a dataset survey's CPU time.
 * These functions run the same steps as those two objects (aubio 0.4.9's tempo.c, onset.c and
 * phasevoc.c), each through aubio's own function (the window slide, the hanningz window,
 * fvec_shift, aubio_fft_do_complex, aubio_fft_get_norm, the spectral descriptor, the peak
 * picker, the beat tracker, the silence test), leaving out only aubio_fft_get_phas.  The
 * magnitudes have the same bits, so the results are the same as the objects': test_analysis
 * runs both on the same signals and compares every beat and every onset.
 *
 *   uint_t hop = m2u_tempo_hop(rate);          tempo: window 4 * hop, hop hop
 *   m2u_beat_times(pcm, n, rate, &beats, &nb)  beats (seconds, increasing; free() them)
 *   m2u_onset_count(pcm, n, rate, &count)      HFC onsets, window 2 * m2u_onset_hop(rate),
 *                                              minimum inter-onset 50 ms, silence -70 dB
 */
#ifndef M2U_TRACKER_H
#define M2U_TRACKER_H

#include <stddef.h>

/* the power of two nearest x in log2, 16 to 65536: the analysis's frame sizes */
int m2u_pow2_near(double x);

/* ~2.9 ms: fine beat-time resolution for the inter-beat median (64 samples at 24 kHz) */
unsigned m2u_tempo_hop(int rate);
/* ~11.6 ms (256 at 22.05 kHz, 512 at 44.1 kHz) */
unsigned m2u_onset_hop(int rate);

/* Beat times in seconds, as aubio_tempo ("default": spectral flux) reports them with
 * aubio_tempo_get_last after each hop that marks a beat, each later than the one before.
 * *beats is malloc'd (NULL when there are none).  -1 on a bad rate or out of memory. */
int m2u_beat_times(const float *pcm, size_t n, int rate, double **beats, size_t *n_beats);

/* How many hops aubio_onset ("hfc", minioi 50 ms, silence -70 dB) marks as an onset. */
int m2u_onset_count(const float *pcm, size_t n, int rate, size_t *count);

#endif
