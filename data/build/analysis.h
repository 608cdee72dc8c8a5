/* Built-in music analysis: the facts the deterministic captioner, the edit
 * checks and the image/video pairing are built on.
 *
 *   m2u_analysis a;
 *   if (m2u_analyze(pcm, n, rate, &a) != 0) ... m2u_last_error()
 *   ... a.tempo_bpm, a.key, ...
 *   m2u_analysis_free(&a);                 (frees a.beat_s)
 *
 * Input: mono float PCM in [-1, 1] (values beyond are accepted; NaN/inf are
 * refused) at `rate` Hz (8000..192000).  Any rate works; the time constants
 * below are in seconds, the FFT sizes scale with the rate.
 *
 * Deterministic: the same samples at the same rate give the same bits on the
 * same build and machine (aubio's FFTW plans are FFTW_ESTIMATE; our own FFT
 * and all sums run in a fixed order; no threads, no randomness).
 * Reentrant: one call may run per thread.
 *
 * Definitions (what each number means, so captions and tests agree):
 *   duration_s        n / rate.
 *   tempo_bpm         aubio "default" tempo tracker at a fine hop (~2.9 ms:
 *                     64 samples at 22.05 kHz, 128 at 44.1 kHz; 4-hop window),
 *                     collecting every beat; tempo = 60 / median inter-beat
 *                     interval.  The median of all intervals avoids the lag
 *                     quantisation of aubio's own bpm (3-4 % steps at 150 bpm
 *                     with hop 512).  0 when fewer than 3 beats were found.
 *                     Metrical-level check: aubio favours beat periods near
 *                     120 bpm and so tracks many slow pieces with a running
 *                     eighth-note pulse at double tempo; when the tempo is
 *                     above M2U_TEMPO_HALVE_MIN_BPM and the mean onset
 *                     strength (spectral flux) on one of the two alternating
 *                     beat phases is >= M2U_TEMPO_HALVE_RATIO times the
 *                     other's, the weak phase is dropped and the tempo
 *                     halved.  Thresholds were set on the test's first 18
 *                     rendered pieces (tests/data/test_analysis.c, which
 *                     reports the accuracy on held-out ones).  Like every
 *                     beat tracker it can still land on another metrical
 *                     level (x2, x1/2, 3:2).
 *   tempo_confidence  fraction of inter-beat intervals within 8 % of the
 *                     median (1 = a steady pulse), 0 with no tempo.
 *   beat_s, n_beats   beat times in seconds (owned; freed by
 *                     m2u_analysis_free).
 *   onset_density     aubio "hfc" onsets per second (~11.6 ms hop, 50 ms
 *                     minimum inter-onset interval: closer onsets are heard
 *                     as one; silence gate -70 dBFS).
 *   key, mode         tonic pitch class 0 (C) .. 11 (B) and M2U_MODE_MAJOR /
 *                     M2U_MODE_MINOR from the clip chroma with Krumhansl–
 *                     Kessler profiles (key.h); -1 / -1 when the clip has no
 *                     pitched content (silence).
 *   key_confidence    the winning correlation, 0..1 (key.h).
 *   chroma            the clip's pitch-class profile (sums to 1, or all 0).
 *   tuning_cents      deviation from A4 = 440 Hz estimated with the chroma.
 *   loudness_lufs     EBU R128 / BS.1770 integrated loudness (libebur128,
 *                     one channel at `rate`); M2U_LOUDNESS_FLOOR_LUFS when
 *                     the signal is below the -70 LUFS absolute gate
 *                     (silence), so the field is always finite.
 *   loudness_range_lu EBU R128 loudness range (LRA), 0 when undefined.
 *   peak_dbfs         sample peak in dBFS; M2U_LOUDNESS_FLOOR_LUFS for
 *                     digital silence.
 *   centroid_hz       brightness: mean over frames louder than -60 dBFS RMS
 *                     of the magnitude-weighted mean frequency (~46 ms Hann
 *                     frames, hop 1/4); 0 when no frame is that loud.
 *   percussiveness    share of spectral energy that HPSS assigns to the
 *                     percussive part, 0..1: on the same spectrogram,
 *                     harmonic = median over 17 frames (~200 ms) per bin,
 *                     percussive = median over 17 bins (~370 Hz at 22.05 kHz)
 *                     per frame (Fitzgerald 2010), Wiener masks
 *                     P^2 / (H^2 + P^2); 0 for silence.  Sustained tones ->
 *                     near 0, drums and noise bursts -> high.
 *   dynamics_db       p95 - p10 of the RMS level in dB over 400 ms windows
 *                     every 100 ms, windows under -70 dBFS left out (digital
 *                     silence would make it infinite); 0 with fewer than 2
 *                     windows. */
#ifndef M2U_ANALYSIS_H
#define M2U_ANALYSIS_H

#include "key.h"

#include <stddef.h>

#define M2U_LOUDNESS_FLOOR_LUFS (-70.0)
/* tempo metrical-level check (see tempo_bpm above) */
#define M2U_TEMPO_HALVE_MIN_BPM 125.0
#define M2U_TEMPO_HALVE_RATIO 1.5

typedef struct {
    double duration_s;
    double tempo_bpm;
    double tempo_confidence;
    size_t n_beats;
    double *beat_s; /* owned */
    double onset_density;
    int key, mode;
    double key_confidence;
    double chroma[12];
    double tuning_cents;
    double loudness_lufs;
    double loudness_range_lu;
    double peak_dbfs;
    double centroid_hz;
    double percussiveness;
    double dynamics_db;
} m2u_analysis;

/* Analyse n > 0 samples.  On failure out holds nothing to free. */
int m2u_analyze(const float *pcm, size_t n, int rate, m2u_analysis *out);
/* The spectrum's HPSS windows and medians run 8 wide where the CPU has AVX-512, with the same
 * results (comparisons and copies only).  want = 0 keeps the portable paths (tests compare the
 * two); 1, the default, uses the wide ones where the CPU has them.  Returns 1 when they are in use.
 * Call it before analyses start. */
int m2u_analysis_wide(int want);
void m2u_analysis_free(m2u_analysis *a);

/* Mood on the valence/arousal plane, each in [-1, 1]; the image and video
 * descriptors map onto the same axes for pairing.  With
 *   M = +1 major / -1 minor / 0 no key, times min(1, key_confidence / 0.5)
 *   T = clamp((tempo_bpm - 110) / 50)            (0 when no tempo)
 *   L = clamp((loudness_lufs + 23) / 10)         (-23 LUFS = EBU broadcast level)
 *   B = clamp(log2(centroid_hz / 1500) / 1.5)    (-1 when centroid is 0)
 * valence = 0.50 M + 0.25 T + 0.15 B + 0.10 L
 * arousal = 0.40 T + 0.40 L + 0.20 B
 * (clamp to [-1, 1]; the weights sum to 1 so the results stay in range).
 * Major mode, faster tempo and brighter timbre read as happier; tempo and
 * loudness dominate arousal (the usual findings in music-emotion research,
 * e.g. Gabrielsson & Lindström 2010).  NULL outputs are skipped. */
void m2u_mood_from_analysis(const m2u_analysis *a, double *valence, double *arousal);

#endif
