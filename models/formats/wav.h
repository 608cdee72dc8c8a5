/* RIFF/WAVE writer for generated audio: mono or interleaved multi-channel, any rate,
 * 16-bit PCM (format 1) or 32-bit IEEE float (format 3, with the fact chunk the spec asks
 * for non-PCM data).  Written atomically (temp file, fsync, rename, m2u_atomic_*): on any
 * error no file, and no partial file, is left at `path`.
 *
 * 16-bit conversion: x clamped to [-1, 1], then lrintf(x * 32767) (symmetric, so +1 and -1
 * map to +-32767 and 0 stays 0; NaN is written as 0).  Float files keep the samples as
 * they are, except that a non-finite sample is refused (players treat it differently). */
#ifndef M2U_WAV_H
#define M2U_WAV_H

#include <stddef.h>
#include <stdint.h>

typedef enum { M2U_WAV_PCM16 = 0, M2U_WAV_FLOAT32 = 1 } m2u_wav_format;

/* samples: n_frames * channels values, interleaved (frame-major). */
int m2u_wav_write(const char *path, const float *samples, size_t n_frames, int channels, int rate,
                  m2u_wav_format fmt);

/* Read back a file this writer produced (PCM16 or float32, any channel count): *samples
 * malloc'ed, interleaved, PCM16 scaled by 1/32767 (the writer's inverse).  Other WAV
 * variants (extensible headers, 24-bit) are refused: this is a round-trip check, not a
 * general decoder (data/build/decode.h reads any audio). */
int m2u_wav_read(const char *path, float **samples, size_t *n_frames, int *channels, int *rate, m2u_wav_format *fmt);

#endif
