/* librosa.load(path, sr=SR) (librosa 0.10.1 defaults: mono, res_type "soxr_hq"), natively:
 * the reference loader of the paper's PaSST KL (scorers.md §2.3) and CLAP score.
 *
 *   1. decode at the file's own rate (decode.h with native_rate, no clamping);
 *      mono = the mean of the channels, as librosa.to_mono;
 *   2. if the rate differs from SR: libsoxr with python-soxr's "HQ" settings
 *      (m2u_soxr_resample), then librosa's fix_length to ceil(n * SR / rate)
 *      samples (zero-padded or cut).
 *
 * Decoders: librosa reads through soundfile (libsndfile) and falls back to
 * audioread; we read through FFmpeg.  PCM WAV/FLAC give the same samples; lossy
 * formats (MP3) can differ in decoder delay / padding handling. */
#ifndef M2U_AUDIO_LOAD_H
#define M2U_AUDIO_LOAD_H

#include "decode.h"

#include <stdint.h>

/* soxr.resample(x, in_rate, out_rate, quality="soxr_hq") of python-soxr for a
 * mono float32 signal: libsoxr, recipe SOXR_HQ with no flags (20-bit
 * precision, linear phase, passband end 0.913), float32 in and out, one
 * thread, fed as python-soxr 0.3.7 feeds it (its chunking, its output cap
 * ceil(n * out / in), one flush); *y (malloc'ed) holds what came out. */
int m2u_soxr_resample(const float *x, int64_t n, double in_rate, double out_rate, float **y, int64_t *ny);

/* librosa.load(path, sr=sr, mono=True) as above; max_samples > 0 keeps only the
 * first max_samples output samples (the caller's y[:max_samples]).  info may be
 * NULL; on failure its status says why (decode.h). */
int m2u_audio_load_librosa(const char *path, int sr, int64_t max_samples, float **pcm, int64_t *n,
                           m2u_audio_info *info);

/* The libsoxr version string the resampler runs with (provenance). */
const char *m2u_soxr_version(void);

#endif
