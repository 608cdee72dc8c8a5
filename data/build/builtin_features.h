/* Built-in features: what a dataset stores in the `mert`, `vit`, `vivit` and
 * `t5` columns when no encoder checkpoint is configured.
 *
 * They have exactly the shapes of the real encoders' outputs that M2UGen's
 * adapters and output projector consume (MERT-v1-330M layer means [25][1024],
 * ViT-B/16 last hidden state [197][768], ViViT-B 16x2 last hidden state
 * [3137][768], MusicGen's T5 encoder output [128][768]), and they depend on
 * the input in a simple, inspectable way, so the adapters and the projector
 * have something real to learn from in tests and demos.  They are NOT
 * substitutes for the encoders' semantics.
 *
 * Every definition below is complete: the numbers can be reimplemented from
 * this comment alone.  All arithmetic is in double precision, in the order
 * written, and each result is rounded to float once at the end.  No threads,
 * no randomness outside the documented generator: the same input gives the
 * same bits on the same build (and, with a correctly rounded libm for
 * log/cos/sin/sqrt, across machines).
 *
 * All functions return 0, or -1 after m2u_fail() (bad arguments, NaN/Inf
 * samples, out of memory); they never print.  Reentrant. */
#ifndef M2U_BUILTIN_FEATURES_H
#define M2U_BUILTIN_FEATURES_H

#include <stddef.h>
#include <stdint.h>

#define M2U_BUILTIN_MERT_ROWS 25
#define M2U_BUILTIN_MERT_DIM 1024
#define M2U_BUILTIN_VIT_ROWS 197 /* CLS + 14 x 14 patches */
#define M2U_BUILTIN_VIT_DIM 768  /* 16 x 16 x 3 */
#define M2U_BUILTIN_VIVIT_FRAMES 32
#define M2U_BUILTIN_VIVIT_ROWS 3137 /* CLS + 16 x 14 x 14 tubelets */
#define M2U_BUILTIN_VIVIT_DIM 768
#define M2U_BUILTIN_IMAGE_SIZE 224
#define M2U_BUILTIN_PATCH 16
#define M2U_BUILTIN_TEXT_ROWS 128 /* MusicGen: captions padded/truncated to 128 tokens */
#define M2U_BUILTIN_TEXT_DIM 768  /* musicgen-medium's T5 width */

/* ---- music: [25][1024] ---------------------------------------------------------
 * A 25-row log spectrogram summary (MERT keeps 25 hidden states; here the 25
 * rows are 25 stretches of time instead of 25 layers).
 *
 * Input: n >= 1 mono samples at `rate` Hz, 8000..192000 (no resampling: the
 * bins are those of a 2048-point FFT at the given rate, bin k = k * rate /
 * 2048 Hz; at MERT's 24 kHz a bin is 11.7 Hz wide).  NaN/Inf are refused.
 *
 * Frames: 2048 samples, hop 512, frame f covers samples [512 f, 512 f + 2048)
 * for f = 0 .. F-1 with F = 1 + floor((n - 2048) / 512) when n >= 2048, else
 * F = 1; samples outside [0, n) count as 0 (so a short clip is zero-padded).
 * Each frame is multiplied by the periodic Hann window
 * w[i] = 0.5 - 0.5 cos(2 pi i / 2048) and transformed (plain DFT
 * X[k] = sum_i x[i] w[i] exp(-2 pi j i k / 2048)); the frame's feature is
 * P[f][c] = log10(|X[c+1]|^2 + 1e-10) for c = 0..1023 (bins 1..1024: DC is
 * dropped, the Nyquist bin kept).
 *
 * Rows: row l (0..24) is the mean of P[f] over the frames
 * f = a_l .. b_l - 1 with a_l = floor(l F / 25), b_l = floor((l+1) F / 25);
 * when that range is empty (F < 25) the single frame a_l is used.  Then each
 * row is standardised over its 1024 values: (v - mean) / std with the
 * population std (divide by 1024); a row whose std is below 1e-9 (silence,
 * a constant spectrum) becomes all zeros.
 *
 * So a 1 kHz tone at 16 kHz peaks at bin 128, i.e. column 127 of every row.
 * Cost: one 2048-point FFT per 512 samples (a 3-minute clip at 24 kHz is
 * about 8400 frames, well under a second). */
int m2u_builtin_mert(const float *pcm, size_t n, int rate, float *out /* 25*1024 */);

/* ---- image: [197][768] -----------------------------------------------------------
 * ViT-B/16's token grid without weights.  Input: exactly 224 x 224 RGB,
 * uint8 [224][224][3] (data/build/frames.h layout, already resized/cropped).
 * Patch p = py * 14 + px (py, px = 0..13, row-major) is row 1 + p; within it
 * column (y * 16 + x) * 3 + ch holds
 *     rgb[py*16 + y][px*16 + x][ch] / 127.5 - 1        (in [-1, 1])
 * (the patch flattened in (y, x, channel) order; ViT's own normalisation is
 * mean 0.5, std 0.5, i.e. exactly this scaling).  Row 0 (the CLS slot) is the
 * mean of rows 1..196, column by column (summed in row order). */
int m2u_builtin_vit(const uint8_t *rgb /* 224*224*3 */, float *out /* 197*768 */);

/* ---- video: [3137][768] ----------------------------------------------------------
 * ViViT-B 16x2's tubelet grid without weights.  Input: 32 frames of 224 x 224
 * RGB, uint8 [32][224][224][3].  Tubelet (t, py, px) (t = 0..15 over frames
 * 2t and 2t+1) is row 1 + t * 196 + py * 14 + px (t-major, then y, then x, as
 * ViViT flattens its Conv3d output); column (y * 16 + x) * 3 + ch holds
 *     (a + b) / 255 - 1
 * with a, b the pixel values rgb[2t][py*16+y][px*16+x][ch] and
 * rgb[2t+1][...] (the mean of the two frames, scaled to [-1, 1] as for the
 * image).  Row 0 is the mean of rows 1..3136, column by column. */
int m2u_builtin_vivit(const uint8_t *rgb /* 32*224*224*3 */, float *out /* 3137*768 */);

/* ---- text: [rows][dim] (stand-in for the MusicGen T5 target, 128 x 768) -----------
 * Words: the text's bytes are scanned left to right; a word is a maximal run
 * of "word bytes": ASCII letters, digits, the apostrophe ' (0x27), and every
 * byte >= 0x80 (so UTF-8 letters stay inside words, as raw bytes, and accents
 * are not folded).  Everything else separates words.  ASCII letters are
 * lower-cased.  Apostrophes at the start or end of a word are stripped
 * ("'jazz'" -> "jazz", "don't" stays); a word left empty is dropped.  At most
 * `rows` words are used (the rest of the text is ignored).
 *
 * Word vector: h = FNV-1a 64 of the word's (lower-cased, stripped) bytes
 * (offset basis 0xcbf29ce484222325, prime 0x100000001b3: h ^= byte; h *= prime).
 * A splitmix64 generator seeded with state = h yields 64-bit outputs
 *     state += 0x9e3779b97f4a7c15; z = state;
 *     z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
 *     z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
 *     output z ^ (z >> 31)
 * each turned into a uniform u = ((output >> 11) + 0.5) / 2^53 in (0, 1).
 * Consecutive pairs (u1, u2) give two normals by Box-Muller,
 *     r = sqrt(-2 ln u1);  g[2i] = r cos(2 pi u2),  g[2i+1] = r sin(2 pi u2),
 * for i = 0, 1, ... until dim values are filled (an odd dim drops the last
 * sine).  v = g / |g| (Euclidean norm).
 *
 * Rows: row 0 = v_0; row j = (v_j + 0.5 row_{j-1}) / |v_j + 0.5 row_{j-1}|
 * (the previous row as stored, before rounding to float; a decaying trace of
 * the earlier words, so word order matters).  Each row has unit norm; rows
 * after the last word are all zero.  The same first word always gives the
 * same row 0.  An empty text (no words) gives all zeros.
 *
 * rows 1..4096, dim 2..65536. */
int m2u_builtin_text(const char *text, int rows, int dim, float *out /* rows*dim */);

/* The pieces of the text definition, for tests and for anyone reproducing it. */
uint64_t m2u_builtin_fnv1a64(const void *data, size_t len);
/* Number of words the text yields (before the `rows` cap). */
size_t m2u_builtin_text_words(const char *text);

#endif
