/* Ground-truth audio edits with known parameters, for MUEdit-style pairs:
 * tempo change and transposition with the Rubber Band Library (librubberband,
 * GPL-2.0-or-later), and gain.
 *
 * Rubber Band is run in offline mode (the whole input is studied first, so the
 * output has exactly the requested length and no start delay), mono, with the
 * R3 "finer" engine when the library has it (Rubber Band >= 3.0; else R2),
 * formants shifted with the pitch (not preserved), high-quality pitch mode,
 * and no threads.  Results are deterministic: the same input and parameters
 * give the same bits on the same library build (no threads, no randomness;
 * Debian's librubberband uses its built-in FFT).
 *
 * Lengths: m2u_time_stretch returns round(n / tempo_ratio) samples (Rubber
 * Band's offline mode pads or trims to the expected duration; checked in
 * tests/data/test_audio_edit.c); m2u_pitch_shift returns exactly n samples.
 * Output may exceed [-1, 1] slightly when the input peaks near full scale
 * (phase-vocoder resynthesis); nothing is clamped.
 *
 * Input must be finite; rate 8000..192000; n >= 1 and below 2^32 samples. */
#ifndef M2U_AUDIO_EDIT_H
#define M2U_AUDIO_EDIT_H

#include <stddef.h>

#define M2U_TEMPO_RATIO_MIN 0.25
#define M2U_TEMPO_RATIO_MAX 4.0
#define M2U_PITCH_SEMITONES_MAX 24.0 /* |semitones| */
#define M2U_GAIN_CLIP_PEAK 0.999

/* ratio > 1 = faster (duration / ratio), pitch unchanged.
 * tempo_ratio in [M2U_TEMPO_RATIO_MIN, M2U_TEMPO_RATIO_MAX]; *out malloc'ed. */
int m2u_time_stretch(const float *in, size_t n, int rate, double tempo_ratio, float **out, size_t *n_out);

/* semitones > 0 = higher, duration unchanged (*n_out == n exactly), formants
 * not preserved.  |semitones| <= M2U_PITCH_SEMITONES_MAX; *out malloc'ed. */
int m2u_pitch_shift(const float *in, size_t n, int rate, double semitones, float **out, size_t *n_out);

/* Scale x[0..n) in place by gain_db (finite, |gain_db| <= 120).  If any scaled
 * sample would exceed M2U_GAIN_CLIP_PEAK (0.999) in magnitude: without
 * allow_clip, return -1 with a message (peak before and after) and leave x
 * unchanged; with allow_clip, clamp those samples to +-0.999 and report how
 * many via *clipped (may be NULL; 0 when nothing clipped).  NaN/inf samples
 * are refused (x unchanged). */
int m2u_apply_gain(float *x, size_t n, double gain_db, int allow_clip, size_t *clipped);

/* Rubber Band engine used by the functions above: 3 (R3 "finer") or 2 (R2). */
int m2u_audio_edit_engine(void);

#endif
