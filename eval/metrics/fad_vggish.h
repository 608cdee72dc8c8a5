/* FAD on VGGish embeddings as fad_pytorch 0.0.6 computes it (`fad_embed vggish REF GEN`, then
 * `fad_score REF_emb_vggish GEN_emb_vggish`), with the one deterministic choice the
 * reference leaves random:
 *
 *   files    every .wav .flac .ogg .aiff .aif .mp3 (extension case-insensitive) under the
 *            folder, recursively (aeiou get_audio_filenames), taken in sorted path order
 *   decode   FFmpeg, each file's own rate and first two channels (torchaudio.load; MP3s:
 *            aeiou uses pedalboard, whose decoder delay handling may shift samples)
 *   resample torchaudio Resample(rate, 16000) defaults per channel (data/build/sinc_resample.h)
 *   crop     aeiou PadCrop to 2^18 = 262,144 samples (16.384 s): shorter files are zero-padded
 *            at the end; LONGER FILES ARE CROPPED AT START 0 (the reference draws an unseeded
 *            random start), counted in `cropped`
 *   channels mono duplicated, the first two kept (aeiou Stereo), clamped to [-1, 1], averaged
 *   chunks   10 chunks of 26,214 samples at k * 26,214 (fad_embed's hops), each one VGGish
 *            example (models/nets/vggish.h: no PCA, no final ReLU) -> 10 rows per file
 *   score    m2u_frechet_distance_ns with 20 Newton-Schulz iterations, float32
 *
 * Differences kept on purpose, each counted: a file that cannot be decoded is skipped
 * (aeiou substitutes a random other file); a crop whose peak is below -60 dBFS ("silent") is
 * kept (aeiou redraws it, then substitutes random other files). */
#ifndef M2U_FAD_VGGISH_H
#define M2U_FAD_VGGISH_H

#include "audio_embed.h"
#include "vggish.h"

#include <stddef.h>

#define M2U_FAD_SAMPLE_SIZE 262144 /* 2^18: fad_embed's --sample_size */
#define M2U_FAD_HOP 26214          /* int(0.1 * 2^18): its hop and chunk length */
#define M2U_FAD_CHUNKS 10
#define M2U_FAD_NS_ITERS 20

typedef struct {
    long cropped, silent; /* files longer than 2^18 samples (cropped at 0); silent crops kept */
} m2u_fad_vggish_counts;

/* The fad_embed front end of one decoded file: pcm [n frames][channels] interleaved at `rate`
 * -> mono [M2U_FAD_SAMPLE_SIZE] at 16 kHz (resampled, padded / cropped at 0, clamped, channel
 * mean).  *cropped / *silent (may be NULL) are set to 0 or 1. */
int m2u_fad_vggish_prepare(const float *pcm, long n, int channels, int rate, float *mono, int *cropped, int *silent);

/* Every audio file under `dir` -> out (10 rows per decodable file, encoder "vggish"). */
int m2u_fad_vggish_embed_dir(const m2u_vggish *m, const char *dir, m2u_audio_embeddings *out,
                             m2u_fad_vggish_counts *counts);

/* The whole command: load ckpt, embed both folders, score.  e[0] = ref, e[1] = gen (freed by
 * the caller with m2u_audio_embeddings_free), sha256 = the checkpoint file's hex digest. */
typedef struct {
    double fad;
    m2u_audio_embeddings e[2];
    m2u_fad_vggish_counts counts[2];
    m2u_vggish_config config;
    char sha256[65];
} m2u_fad_vggish_result;
int m2u_fad_vggish(const char *ckpt, const char *ref, const char *gen, m2u_fad_vggish_result *res);
void m2u_fad_vggish_result_free(m2u_fad_vggish_result *res);

/* The report `m2u-eval fad --embed vggish --out` writes (JSON text, malloc'ed; NULL after
 * m2u_fail): the existing fad report's keys plus the checkpoint, its sha256, the network's
 * widths and every front-end / scoring setting. */
char *m2u_fad_vggish_report(const m2u_fad_vggish_result *res, const char *ckpt, const char *ref, const char *gen);

#endif
