/* Embeddings of audio sets for generation metrics (Fréchet distance, cosine):
 * every clip of every audio file a spec lists (a folder, glob, file or
 * JSON-lines manifest: data/build/inputs.h) becomes one row.
 *
 *   encoder  with a MERT checkpoint (mert_dir): the mean over time of hidden
 *            state `layer` (-1 = the last; 0 = the conv features' projection),
 *            one 60 s window per clip at most (clips are shorter), so the row
 *            has the model's hidden size;
 *            without: the built-in spectral embedding, the mean over the 25
 *            rows of m2u_builtin_mert (data/build/builtin_features.h): a 1024-bin
 *            log-power spectrum, each segment standardised, averaged.  It is
 *            a documented stand-in to compare sets with each other under the
 *            same settings, not a replacement for VGGish / MERT scores.
 *   clips    clip_s seconds every clip_s seconds (the tail kept when >= 1 s),
 *            silent clips (< -60 dBFS RMS) skipped, at most max_clips per file
 *            (0 = all), decoded to mono at `rate` (MERT's sampling rate when a
 *            checkpoint is given).
 * Files that cannot be decoded are skipped and counted, never fatal. */
#ifndef M2U_AUDIO_EMBED_H
#define M2U_AUDIO_EMBED_H

#include <stddef.h>

typedef struct {
    const char *mert_dir; /* NULL: built-in spectral embedding */
    int layer;            /* MERT hidden state; -1 = last */
    double clip_s;        /* 10 */
    int max_clips;        /* per file; 0 = all */
    int rate;             /* 24000 (ignored with MERT: its sampling rate) */
} m2u_audio_embed_opts;

typedef struct {
    double *rows; /* [n][dim], malloc'ed */
    size_t n, dim;
    long files, files_skipped;
    char encoder[128]; /* "m2u-builtin-spectral-v1" or "<checkpoint folder>:layer<k>" */
} m2u_audio_embeddings;

int m2u_audio_embed_set(const char *spec, const m2u_audio_embed_opts *o, m2u_audio_embeddings *out);
/* The same for clips already in memory: pcm[i] holds n[i] mono samples at
 * `rate`, which must be the embedding's rate (o->rate, or MERT's sampling
 * rate); every pcm[i] counts as one "file" (NULL or empty: skipped). */
int m2u_audio_embed_pcm_set(const float *const *pcm, const size_t *n, size_t count, int rate,
                            const m2u_audio_embed_opts *o, m2u_audio_embeddings *out);
void m2u_audio_embeddings_free(m2u_audio_embeddings *e);

#endif
