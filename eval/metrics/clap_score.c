/* CLAP score of audio-caption pairs: see clap_score.h. */
#include "clap_score.h"

#include "backend.h"
#include "clap.h"
#include "audio_load.h"
#include "decode.h"
#include "fileio.h"
#include "json.h"
#include "m2u_error.h"
#include "sha256.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void m2u_clap_scores_free(m2u_clap_scores *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->items[i].audio);
        free(s->items[i].caption);
        free(s->items[i].path);
        free(s->items[i].error);
    }
    free(s->items);
    memset(s, 0, sizeof *s);
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int add_item(m2u_clap_scores *s, size_t *cap, const char *audio, size_t alen, const char *caption,
                    size_t clen) {
    if (s->n == *cap) {
        size_t nc = *cap ? 2 * *cap : 16;
        m2u_clap_item *it = realloc(s->items, nc * sizeof *it);
        if (!it) return -1;
        s->items = it, *cap = nc;
    }
    m2u_clap_item *it = &s->items[s->n];
    memset(it, 0, sizeof *it);
    it->cosine = NAN;
    it->audio = strndup(audio, alen);
    it->caption = strndup(caption, clen);
    s->n++;
    return it->audio && it->caption ? 0 : -1;
}

/* The pairs file into s->items (clap_score.h: TSV or JSON lines). */
static int read_pairs(const char *path, m2u_clap_scores *s) {
    memset(s, 0, sizeof *s);
    s->mean = NAN;
    char *data = NULL;
    size_t len = 0, cap = 0;
    if (m2u_read_file(path, &data, &len)) return -1; /* the message names the file */
    int tsv = ends_with(path, ".tsv"), rc = -1;
    long lineno = 0;
    for (char *p = data; p < data + len;) {
        char *e = memchr(p, '\n', (size_t)(data + len - p));
        if (!e) e = data + len;
        size_t l = (size_t)(e - p);
        char *line = p;
        p = e + 1;
        lineno++;
        if (l && line[l - 1] == '\r') l--;
        size_t k = 0;
        while (k < l && (line[k] == ' ' || line[k] == '\t')) k++;
        if (k == l) continue;
        if (tsv) {
            char *tab = memchr(line, '\t', l);
            if (!tab || tab == line) {
                m2u_fail("%s:%ld: expected AUDIO<TAB>CAPTION", path, lineno);
                goto done;
            }
            if (add_item(s, &cap, line, (size_t)(tab - line), tab + 1, l - (size_t)(tab - line) - 1)) {
                m2u_fail("%s: out of memory", path);
                goto done;
            }
            continue;
        }
        cJSON *o = cJSON_ParseWithLength(line, l);
        const cJSON *a = o ? cJSON_GetObjectItemCaseSensitive(o, "audio") : NULL;
        const cJSON *c = o ? cJSON_GetObjectItemCaseSensitive(o, "caption") : NULL;
        if (!cJSON_IsObject(o) || !cJSON_IsString(a) || !cJSON_IsString(c) || !a->valuestring[0]) {
            cJSON_Delete(o);
            m2u_fail("%s:%ld: expected a JSON object {\"audio\": \"FILE\", \"caption\": \"TEXT\"}", path, lineno);
            goto done;
        }
        int arc = add_item(s, &cap, a->valuestring, strlen(a->valuestring), c->valuestring, strlen(c->valuestring));
        cJSON_Delete(o);
        if (arc) {
            m2u_fail("%s: out of memory", path);
            goto done;
        }
    }
    if (!s->n) {
        m2u_fail("%s: no pairs", path);
        goto done;
    }
    rc = 0;
done:
    free(data);
    return rc;
}

int m2u_clap_pairs_read(const char *pairs_path, m2u_clap_scores *s) {
    int rc = read_pairs(pairs_path, s);
    if (rc) m2u_clap_scores_free(s);
    return rc;
}

/* The weights file m2u_st_open reads from a directory, for the provenance. */
static int weights_file(const char *dir, char *out, size_t cap) {
    static const char *const names[] = {"model.safetensors.index.json", "model.safetensors", "pytorch_model.bin"};
    for (int i = 0; i < 3; i++) {
        char *p = m2u_path_join(dir, names[i]);
        if (!p) return m2u_fail("out of memory");
        int ok = m2u_file_exists(p);
        if (ok) snprintf(out, cap, "%s", p);
        free(p);
        if (ok) return 0;
    }
    return m2u_fail("%s: no weights file", dir);
}

int m2u_clap_checkpoint_sha256(const char *dir, char *weights, size_t cap, char hex[65]) {
    return weights_file(dir, weights, cap) || m2u_sha256_file(weights, hex) ? -1 : 0;
}

/* The cosine of one clip with a caption's embedding et [proj_dim]: 1 with why[] when the clip
 * does not decode, -1 after m2u_fail. */
static int audio_cosine(const m2u_clap *m, const char *audio_path, const float *et, double *cosine, char *why,
                        size_t why_cap) {
    const m2u_clap_config *c = m2u_clap_config_of(m);
    float *pcm = NULL, *ea = malloc((size_t)c->proj_dim * sizeof *ea);
    int64_t n = 0;
    int rc = -1;
    *cosine = NAN;
    if (!ea) return m2u_fail("out of memory");
    /* as ClapModel's users load audio, librosa.load(path, sr=48000) (audio_load.h: libsoxr with
     * python-soxr's HQ settings, not clamped); only the first max_samples are scored (clap.h) */
    if (m2u_audio_load_librosa(audio_path, c->sample_rate, c->max_samples, &pcm, &n, NULL)) {
        snprintf(why, why_cap, "%s", m2u_last_error());
        rc = 1;
        goto done;
    }
    if (m2u_clap_audio_embed(m, pcm, (long)n, ea)) {
        m2u_fail_prefix("%s", audio_path);
        goto done;
    }
    double d = 0;
    for (int k = 0; k < c->proj_dim; k++) d += (double)ea[k] * et[k];
    *cosine = d;
    rc = 0;
done:
    free(pcm);
    free(ea);
    return rc;
}

typedef struct {
    const m2u_clap *m;
    const char *const *paths;
    const float *text; /* [n][proj_dim]: the captions' embeddings */
    double *cosines;
    char **errors;
} pair_job;

/* One item: its cosine, or its error (an audio file that cannot be read), or -1 (m2u_fail). */
static int score_pair(void *ctx, int i) {
    const pair_job *j = ctx;
    char why[1024];
    int prc = audio_cosine(j->m, j->paths[i], j->text + (size_t)i * m2u_clap_config_of(j->m)->proj_dim, &j->cosines[i],
                           why, sizeof why);
    if (prc < 0) return -1;
    if (prc > 0 && !(j->errors[i] = strdup(why))) return m2u_fail("out of memory");
    return 0;
}

/* captions per packed text-tower pass */
#define CLAP_TEXT_GROUP 64

int m2u_clap_pairs(const m2u_clap *m, int n, const char *const *audio_paths, const char *const *captions,
                   double *cosines, char **errors) {
    const m2u_clap_config *c = m2u_clap_config_of(m);
    for (int i = 0; i < n; i++) cosines[i] = NAN, errors[i] = NULL;
    if (n <= 0) return 0;
    /* the captions first, CLAP_TEXT_GROUP at a time through one packed text-tower pass each (its
     * weights read once per group, not once per caption); then the clips side by side, one per
     * thread (backend.h) */
    float *text = malloc((size_t)n * c->proj_dim * sizeof *text);
    if (!text) return m2u_fail("out of memory for %d captions", n);
    int rc = 0;
    for (int i = 0; !rc && i < n; i += CLAP_TEXT_GROUP)
        rc = m2u_clap_text_embed_many(m, captions + i, n - i < CLAP_TEXT_GROUP ? n - i : CLAP_TEXT_GROUP,
                                      text + (size_t)i * c->proj_dim);
    pair_job job = {m, audio_paths, text, cosines, errors};
    if (!rc) rc = m2u_parallel_items(n, score_pair, &job);
    free(text);
    if (rc)
        for (int i = 0; i < n; i++) free(errors[i]), errors[i] = NULL;
    return rc;
}

int m2u_clap_score(const char *clap_dir, const char *audio_dir, const char *pairs_path, m2u_clap_scores *s) {
    m2u_clap *m = NULL;
    int rc = -1;
    if (read_pairs(pairs_path, s)) goto done;
    if (m2u_clap_load(clap_dir, &m)) goto done;
    const m2u_clap_config *c = m2u_clap_config_of(m);
    if (!c->has_text) {
        m2u_fail("%s: the checkpoint has no text tower (text_model.*): a CLAP score needs ClapModel", clap_dir);
        goto done;
    }
    if (m2u_clap_checkpoint_sha256(clap_dir, s->weights, sizeof s->weights, s->sha256)) goto done;
    s->sample_rate = c->sample_rate, s->max_samples = c->max_samples, s->proj_dim = c->proj_dim;
    for (size_t i = 0; i < s->n; i++) {
        m2u_clap_item *it = &s->items[i];
        it->path = it->audio[0] == '/' || !audio_dir ? strdup(it->audio) : m2u_path_join(audio_dir, it->audio);
        if (!it->path) {
            m2u_fail("out of memory");
            goto done;
        }
    }
    if (s->n > (size_t)INT_MAX) {
        m2u_fail("%s: %zu pairs are too many", pairs_path, s->n);
        goto done;
    }
    /* every pair (m2u_clap_pairs), then the mean in item order */
    const char **paths = malloc((s->n ? s->n : 1) * sizeof *paths), **caps = malloc((s->n ? s->n : 1) * sizeof *caps);
    double *cos = malloc((s->n ? s->n : 1) * sizeof *cos);
    char **errs = malloc((s->n ? s->n : 1) * sizeof *errs);
    int prc = -1;
    if (!paths || !caps || !cos || !errs) m2u_fail("out of memory for %zu pairs", s->n);
    else {
        for (size_t i = 0; i < s->n; i++) paths[i] = s->items[i].path, caps[i] = s->items[i].caption;
        prc = m2u_clap_pairs(m, (int)s->n, paths, caps, cos, errs);
        for (size_t i = 0; !prc && i < s->n; i++) s->items[i].cosine = cos[i], s->items[i].error = errs[i];
    }
    free(paths), free(caps), free(cos), free(errs);
    if (prc) goto done;
    double sum = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i].error) continue; /* reported per item, left out of the mean */
        sum += s->items[i].cosine;
        s->n_scored++;
    }
    if (s->n_scored) s->mean = sum / (double)s->n_scored;
    rc = 0;
done:
    m2u_clap_free(m);
    if (rc) m2u_clap_scores_free(s);
    return rc;
}

int m2u_clap_scores_write(const char *path, const char *clap_dir, const char *pairs_path, const m2u_clap_scores *s) {
    cJSON *r = cJSON_CreateObject(), *set = cJSON_CreateObject(), *items = cJSON_CreateArray();
    if (!r || !set || !items) {
        cJSON_Delete(r);
        cJSON_Delete(set);
        cJSON_Delete(items);
        return m2u_fail("out of memory");
    }
    cJSON_AddStringToObject(r, "command", "clap");
    cJSON_AddStringToObject(r, "score", "mean over pairs of cos(audio, text) of transformers ClapModel embeddings");
    cJSON_AddStringToObject(r, "model", clap_dir);
    cJSON_AddStringToObject(r, "weights", s->weights);
    cJSON_AddStringToObject(r, "weights_sha256", s->sha256);
    cJSON_AddStringToObject(r, "pairs", pairs_path);
    cJSON_AddNumberToObject(r, "n_pairs", (double)s->n);
    cJSON_AddNumberToObject(r, "n_scored", (double)s->n_scored);
    if (s->n_scored) cJSON_AddNumberToObject(r, "mean_cosine", s->mean);
    else cJSON_AddNullToObject(r, "mean_cosine");
    cJSON_AddNumberToObject(set, "sample_rate", s->sample_rate);
    cJSON_AddNumberToObject(set, "max_samples", s->max_samples);
    cJSON_AddNumberToObject(set, "projection_dim", s->proj_dim);
    cJSON_AddStringToObject(set, "longer_clips", "first max_samples samples (rand_trunc at offset 0)");
    char dec[160];
    snprintf(dec, sizeof dec, "librosa.load(sr=sample_rate) equivalent: FFmpeg decode, channel mean, libsoxr %s HQ",
             m2u_soxr_version());
    cJSON_AddStringToObject(set, "decoder", dec);
    cJSON_AddItemToObject(r, "settings", set);
    for (size_t i = 0; i < s->n; i++) {
        const m2u_clap_item *it = &s->items[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) break;
        cJSON_AddStringToObject(o, "audio", it->audio);
        cJSON_AddStringToObject(o, "caption", it->caption);
        if (it->error) {
            cJSON_AddNullToObject(o, "cosine");
            cJSON_AddStringToObject(o, "error", it->error);
        } else {
            cJSON_AddNumberToObject(o, "cosine", it->cosine);
        }
        cJSON_AddItemToArray(items, o);
    }
    cJSON_AddItemToObject(r, "items", items);
    char *txt = cJSON_Print(r);
    cJSON_Delete(r);
    if (!txt) return m2u_fail("out of memory");
    size_t tl = strlen(txt);
    char *buf = realloc(txt, tl + 2);
    if (!buf) {
        free(txt);
        return m2u_fail("out of memory");
    }
    buf[tl] = '\n';
    int rc = m2u_write_file_atomic(path, buf, tl + 1);
    free(buf);
    return rc;
}
