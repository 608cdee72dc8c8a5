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

int m2u_audio_embed_set(const char *spec, const m2u_audio_embed_opts *o, m2u_audio_embeddings *out) {
    memset(out, 0, sizeof *out);
    double clip_s = o->clip_s > 0 ? o->clip_s : 10;
    int rate = o->rate > 0 ? o->rate : 24000;
    m2u_mert *mert = NULL;
    int layers = 0;
    if (o->mert_dir) {
        if (m2u_mert_load(o->mert_dir, &mert)) return -1;
        const m2u_mert_config *mc = m2u_mert_config_of(mert);
        rate = mc->sampling_rate, layers = mc->layers + 1, out->dim = (size_t)mc->dims.hidden;
        int layer = o->layer < 0 ? layers - 1 : o->layer;
        if (layer >= layers) {
            m2u_mert_free(mert);
            return m2u_fail("%s has %d hidden states; --layer %d does not exist", o->mert_dir, layers, o->layer);
        }
        const char *base = strrchr(o->mert_dir, '/');
        snprintf(out->encoder, sizeof out->encoder, "%s:layer%d", base && base[1] ? base + 1 : o->mert_dir, layer);
    } else {
        out->dim = M2U_BUILTIN_MERT_DIM;
        snprintf(out->encoder, sizeof out->encoder, "m2u-builtin-spectral-v1");
    }
    m2u_input_list in = {0};
    m2u_input_opts io = {.kinds = M2U_KIND_AUDIO, .default_licence = "not recorded (evaluation)"};
    int rc = m2u_inputs_add(&in, spec, &io);
    if (!rc) rc = m2u_inputs_finish(&in);
    if (!rc && in.n == 0) rc = m2u_fail("%s: no audio file", spec);
    size_t big = mert ? (size_t)layers * out->dim : (size_t)M2U_BUILTIN_MERT_ROWS * M2U_BUILTIN_MERT_DIM;
    float *feat = malloc(big * sizeof *feat), *row = malloc(out->dim * sizeof *row);
    size_t cap = 0;
    for (size_t f = 0; f < in.n && !rc; f++) {
        float *pcm = NULL;
        int64_t n = 0;
        m2u_clip *clips = NULL;
        size_t nc = 0;
        out->files++;
        if (m2u_audio_decode(in.items[f].path, rate, &pcm, &n, NULL) ||
            m2u_audio_clips(pcm, n, rate, clip_s, clip_s, -60, 1.0, &clips, &nc) || nc == 0) {
            out->files_skipped++;
            free(pcm), free(clips);
            continue;
        }
        if (o->max_clips > 0 && nc > (size_t)o->max_clips) nc = (size_t)o->max_clips;
        for (size_t c = 0; c < nc && !rc; c++) {
            const float *x = pcm + clips[c].start;
            size_t len = (size_t)(clips[c].end - clips[c].start);
            if (mert) {
                rc = m2u_mert_layer_means(mert, x, (long)len, feat);
                int layer = o->layer < 0 ? layers - 1 : o->layer;
                if (!rc) memcpy(row, feat + (size_t)layer * out->dim, out->dim * sizeof *row);
            } else {
                rc = m2u_builtin_mert(x, len, rate, feat);
                for (size_t k = 0; k < out->dim && !rc; k++) {
                    double s = 0;
                    for (int r = 0; r < M2U_BUILTIN_MERT_ROWS; r++) s += feat[(size_t)r * out->dim + k];
                    row[k] = (float)(s / M2U_BUILTIN_MERT_ROWS);
                }
            }
            if (!rc) rc = push_row(out, &cap, row);
        }
        free(pcm), free(clips);
    }
    free(feat), free(row);
    m2u_inputs_free(&in);
    m2u_mert_free(mert);
    if (!rc && out->n == 0) rc = m2u_fail("%s: no clip could be embedded (%ld files skipped)", spec, out->files_skipped);
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", m2u_last_error());
        m2u_audio_embeddings_free(out);
        return m2u_fail("%s", msg);
    }
    return 0;
}
