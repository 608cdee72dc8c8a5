#include "audio_embed.h"

#include "builtin_features.h"
#include "decode.h"
#include "inputs.h"
#include "m2u_error.h"
#include "mert_encoder.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void m2u_audio_embeddings_free(m2u_audio_embeddings *e) {
    free(e->rows);
    memset(e, 0, sizeof *e);
}

static int push_row(m2u_audio_embeddings *e, size_t *cap, const float *v) {
    if (e->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 64;
        double *r = realloc(e->rows, nc * e->dim * sizeof *r);
        if (!r) return m2u_fail("out of memory");
        e->rows = r, *cap = nc;
    }
    for (size_t k = 0; k < e->dim; k++) e->rows[e->n * e->dim + k] = v[k];
    e->n++;
    return 0;
}

/* The encoder of a set: MERT (loaded once) or the built-in spectral rows. */
typedef struct {
    m2u_mert *mert;
    int layers, layer, rate;
    double clip_s;
    float *feat, *row;
    size_t cap;
} embedder;

static int embedder_open(embedder *em, const m2u_audio_embed_opts *o, m2u_audio_embeddings *out) {
    memset(em, 0, sizeof *em);
    memset(out, 0, sizeof *out);
    em->clip_s = o->clip_s > 0 ? o->clip_s : 10;
    em->rate = o->rate > 0 ? o->rate : 24000;
    if (o->mert_dir) {
        if (m2u_mert_load(o->mert_dir, &em->mert)) return -1;
        const m2u_mert_config *mc = m2u_mert_config_of(em->mert);
        em->rate = mc->sampling_rate, em->layers = mc->layers + 1, out->dim = (size_t)mc->dims.hidden;
        em->layer = o->layer < 0 ? em->layers - 1 : o->layer;
        if (em->layer >= em->layers) {
            m2u_mert_free(em->mert);
            em->mert = NULL;
            return m2u_fail("%s has %d hidden states; --layer %d does not exist", o->mert_dir, em->layers, o->layer);
        }
        const char *base = strrchr(o->mert_dir, '/');
        snprintf(out->encoder, sizeof out->encoder, "%s:layer%d", base && base[1] ? base + 1 : o->mert_dir, em->layer);
    } else {
        out->dim = M2U_BUILTIN_MERT_DIM;
        snprintf(out->encoder, sizeof out->encoder, "m2u-builtin-spectral-v1");
    }
    size_t big = em->mert ? (size_t)em->layers * out->dim : (size_t)M2U_BUILTIN_MERT_ROWS * M2U_BUILTIN_MERT_DIM;
    em->feat = malloc(big * sizeof *em->feat), em->row = malloc(out->dim * sizeof *em->row);
    if (!em->feat || !em->row) {
        free(em->feat), free(em->row);
        m2u_mert_free(em->mert);
        memset(em, 0, sizeof *em);
        return m2u_fail("out of memory");
    }
    return 0;
}

static void embedder_close(embedder *em) {
    free(em->feat), free(em->row);
    m2u_mert_free(em->mert);
    memset(em, 0, sizeof *em);
}

/* One file's samples at em->rate -> its clips' rows; 1 when no clip (skipped), 0 done, -1 error. */
static int embed_pcm(embedder *em, const float *pcm, int64_t n, int max_clips, m2u_audio_embeddings *out) {
    m2u_clip *clips = NULL;
    size_t nc = 0;
    if (m2u_audio_clips(pcm, n, em->rate, em->clip_s, em->clip_s, -60, 1.0, &clips, &nc) || nc == 0) {
        free(clips);
        return 1;
    }
    if (max_clips > 0 && nc > (size_t)max_clips) nc = (size_t)max_clips;
    int rc = 0;
    for (size_t c = 0; c < nc && !rc; c++) {
        const float *x = pcm + clips[c].start;
        size_t len = (size_t)(clips[c].end - clips[c].start);
        if (em->mert) {
            rc = m2u_mert_layer_means(em->mert, NULL, x, (long)len, em->feat);
            if (!rc) memcpy(em->row, em->feat + (size_t)em->layer * out->dim, out->dim * sizeof *em->row);
        } else {
            rc = m2u_builtin_mert(x, len, em->rate, em->feat);
            for (size_t k = 0; k < out->dim && !rc; k++) {
                double s = 0;
                for (int r = 0; r < M2U_BUILTIN_MERT_ROWS; r++) s += em->feat[(size_t)r * out->dim + k];
                em->row[k] = (float)(s / M2U_BUILTIN_MERT_ROWS);
            }
        }
        if (!rc) rc = push_row(out, &em->cap, em->row);
    }
    free(clips);
    return rc;
}

static int finish(int rc, const char *what, m2u_audio_embeddings *out) {
    if (!rc && out->n == 0) rc = m2u_fail("%s: no clip could be embedded (%ld files skipped)", what, out->files_skipped);
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", m2u_last_error());
        m2u_audio_embeddings_free(out);
        return m2u_fail("%s", msg);
    }
    return 0;
}

int m2u_audio_embed_set(const char *spec, const m2u_audio_embed_opts *o, m2u_audio_embeddings *out) {
    embedder em;
    if (embedder_open(&em, o, out)) return -1;
    m2u_input_list in = {0};
    m2u_input_opts io = {.kinds = M2U_KIND_AUDIO, .default_licence = "not recorded (evaluation)"};
    int rc = m2u_inputs_add(&in, spec, &io);
    if (!rc) rc = m2u_inputs_finish(&in);
    if (!rc && in.n == 0) rc = m2u_fail("%s: no audio file", spec);
    for (size_t f = 0; f < in.n && !rc; f++) {
        float *pcm = NULL;
        int64_t n = 0;
        out->files++;
        if (m2u_audio_decode(in.items[f].path, em.rate, &pcm, &n, NULL)) {
            out->files_skipped++;
            free(pcm);
            continue;
        }
        int r = embed_pcm(&em, pcm, n, o->max_clips, out);
        if (r > 0) out->files_skipped++;
        else rc = r;
        free(pcm);
    }
    m2u_inputs_free(&in);
    embedder_close(&em);
    return finish(rc, spec, out);
}

int m2u_audio_embed_pcm_set(const float *const *pcm, const size_t *n, size_t count, int rate,
                            const m2u_audio_embed_opts *o, m2u_audio_embeddings *out) {
    embedder em;
    if (embedder_open(&em, o, out)) return -1;
    int rc = 0;
    if (em.rate != rate)
        rc = m2u_fail("audio at %d Hz given to an embedding that takes %d Hz%s", rate, em.rate,
                      em.mert ? " (the MERT checkpoint's sampling rate)" : "");
    for (size_t f = 0; f < count && !rc; f++) {
        out->files++;
        int r = pcm[f] && n[f] ? embed_pcm(&em, pcm[f], (int64_t)n[f], o->max_clips, out) : 1;
        if (r > 0) out->files_skipped++;
        else rc = r;
    }
    embedder_close(&em);
    return finish(rc, "in-memory audio set", out);
}
