/* The CLAP score of (audio, caption) pairs as transformers' ClapModel gives it
 * (laion/clap-htsat-unfused): per pair the cosine of the L2-normalised audio and text
 * embeddings (ClapModel's logits_per_audio / logit_scale), and their mean over the pairs
 * (the paper convention).  models/nets/clap.h says how each embedding is computed.
 *
 * Pairs file:
 *   *.tsv   one "AUDIO<TAB>CAPTION" per line (the caption is the rest of the line; a
 *           trailing CR is dropped; blank lines are skipped);
 *   other   JSON lines {"audio": "AUDIO", "caption": "CAPTION"} (other keys, e.g. "id",
 *           are ignored; blank lines are skipped).
 * AUDIO is relative to audio_dir unless absolute.  Audio is decoded with FFmpeg
 * (data/build/decode.h: channels averaged, resampled to the model's rate with soxr when
 * FFmpeg has it).  ClapModel's users load with librosa.load(path, sr=48000) (soundfile or
 * audioread, then soxr_hq): for 48 kHz files nothing is resampled and the samples are the
 * same; for other rates the resamplers differ (FFmpeg's soxr defaults vs soxr_hq) by a
 * little, and so do the scores.  A file that does not decode is reported in its item
 * (error) and left out of the mean.
 *
 * Differences from laion_clap's CLAP_Module(enable_fusion=False) with 630k-audioset-best
 * (the same weights; what M2UGen's scripts load), none of which ClapModel or m2u does:
 *   - get_audio_embedding_from_data rounds each clip through int16 (x 32767, truncated,
 *     / 32767) before the spectrogram;
 *   - its spectrogram is a float32 conv1d STFT whose DFT kernels and mel matrix are stored in
 *     the checkpoint (the same periodic Hann, 1024 / 480, Slaney filters, rounded to float),
 *     where ClapFeatureExtractor works in float64 and rounds once;
 *   - captions are padded / truncated to 77 tokens (padding is masked and changes nothing;
 *     truncation shortens captions over 75 BPE tokens).
 * Both crop audio longer than 10 s at a random offset (unseeded), m2u at offset 0 (clap.h), so
 * no implementation reproduces another's score on such clips exactly.  M2UGen's released
 * evaluate.py cannot run as written (it passes numpy arrays to torch's cosine_similarity),
 * so there is no reference value of theirs to match. */
#ifndef M2U_CLAP_SCORE_H
#define M2U_CLAP_SCORE_H

#include <stddef.h>

typedef struct {
    char *audio, *caption; /* as in the pairs file */
    char *path;            /* the file read */
    double cosine;         /* NAN when not scored */
    char *error;           /* why not scored, or NULL */
} m2u_clap_item;

typedef struct {
    m2u_clap_item *items;
    size_t n, n_scored;
    double mean; /* over the scored items; NAN when none */
    char weights[512], sha256[65];
    int sample_rate, max_samples, proj_dim;
} m2u_clap_scores;

struct m2u_clap;
/* n pairs with a loaded model (clap.h): cosines[i] of the clip at audio_paths[i] (decoded as
 * above) with captions[i].  The captions go through the text tower packed, 64 at a time; the
 * clips one per thread.  A clip that does not decode is not an error: cosines[i] = NAN and
 * errors[i] = the decoder's message (malloc'ed; NULL for scored pairs).  -1 (m2u_fail) when the
 * model fails (errors[] then all NULL). */
int m2u_clap_pairs(const struct m2u_clap *m, int n, const char *const *audio_paths, const char *const *captions,
                   double *cosines, char **errors);

/* The weights file a model directory is read from (into weights[cap]) and its sha256, for reports. */
int m2u_clap_checkpoint_sha256(const char *dir, char *weights, size_t cap, char hex[65]);

/* Only read the pairs file into s->items / s->n (scores NAN); what m2u_clap_score does first. */
int m2u_clap_pairs_read(const char *pairs_path, m2u_clap_scores *s);

/* Score every pair of pairs_path with the ClapModel directory clap_dir (clap.h).  Fails
 * (-1, m2u_fail) on an unreadable model or pairs file, not on a clip that does not decode. */
int m2u_clap_score(const char *clap_dir, const char *audio_dir, const char *pairs_path, m2u_clap_scores *out);
void m2u_clap_scores_free(m2u_clap_scores *s);

/* The report (atomically): the mean, per-item scores and the provenance (model directory,
 * weights file and its sha256, front-end settings, the crop rule). */
int m2u_clap_scores_write(const char *path, const char *clap_dir, const char *pairs_path, const m2u_clap_scores *s);

#endif
