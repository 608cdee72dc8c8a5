/* PaSST KL of two folders: see passt_kl.h. */
#include "passt_kl.h"

#include "audio_load.h"
#include "distribution_metrics.h"
#include "inputs.h"
#include "backend.h"
#include "m2u_error.h"
#include "sha256.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define KL_SR 32000
#define KL_MAX_SAMPLES 320000 /* evaluate.py: y[:320000], 10 s */
#define KL_EPS 1e-6

/* The pairing key: the path inside the listed folder, without the extension. */
static char *pair_key(const char *rel) {
    const char *s = strchr(rel, '/');
    s = s ? s + 1 : rel;
    char *k = strdup(s);
    if (!k) return NULL;
    char *dot = strrchr(k, '.'), *slash = strrchr(k, '/');
    if (dot && (!slash || dot > slash) && dot != k && dot[-1] != '/') *dot = 0;
    return k;
}

typedef struct {
    char *key;
    const char *path;
} keyed;

static int cmp_keyed(const void *a, const void *b) { return strcmp(((const keyed *)a)->key, ((const keyed *)b)->key); }

/* List a folder's audio files sorted by key; two files with one key is an error. */
static int list_dir(const char *dir, m2u_input_list *l, keyed **out, size_t *n) {
    m2u_input_opts io = {.kinds = M2U_KIND_AUDIO, .default_licence = "n/a", .strict = 1};
    *out = NULL;
    *n = 0;
    if (m2u_inputs_add_dir(l, dir, &io) != 0 || m2u_inputs_finish(l) != 0) return -1;
    keyed *k = calloc(l->n ? l->n : 1, sizeof *k);
    if (!k) return m2u_fail("%s: out of memory", dir);
    for (size_t i = 0; i < l->n; i++) {
        k[i].path = l->items[i].path;
        if (!(k[i].key = pair_key(l->items[i].rel))) {
            for (size_t j = 0; j < i; j++) free(k[j].key);
            free(k);
            return m2u_fail("%s: out of memory", dir);
        }
    }
    qsort(k, l->n, sizeof *k, cmp_keyed);
    for (size_t i = 1; i < l->n; i++)
        if (!strcmp(k[i].key, k[i - 1].key)) {
            int rc = m2u_fail("%s: %s and %s have the same name without extension; pairs would be ambiguous", dir,
                              k[i - 1].path, k[i].path);
            for (size_t j = 0; j < l->n; j++) free(k[j].key);
            free(k);
            return rc;
        }
    *out = k;
    *n = l->n;
    return 0;
}

static void free_keyed(keyed *k, size_t n) {
    if (!k) return;
    for (size_t i = 0; i < n; i++) free(k[i].key);
    free(k);
}

static int file_logits(const m2u_passt *m, const char *path, double *out) {
    const m2u_passt_config *c = m2u_passt_config_of(m);
    float *pcm = NULL, *lg = malloc((size_t)c->n_classes * sizeof *lg);
    int64_t n = 0;
    if (!lg) return m2u_fail("%s: out of memory", path);
    int rc = m2u_audio_load_librosa(path, KL_SR, KL_MAX_SAMPLES, &pcm, &n, NULL);
    if (rc == 0) {
        rc = m2u_passt_logits(m, pcm, n, lg);
        if (rc != 0) m2u_fail_prefix("%s: ", path);
    }
    if (rc == 0)
        for (int i = 0; i < c->n_classes; i++) out[i] = lg[i];
    free(pcm);
    free(lg);
    return rc;
}

/* item 2p: pair p's reference clip, 2p + 1: its generated one */
typedef struct {
    const m2u_passt *m;
    const char **ref, **gen;
    double *ar, *ag;
    int C;
} clip_job;

static int clip_logits(void *ctx, int i) {
    const clip_job *j = ctx;
    size_t p = (size_t)i / 2;
    return i % 2 ? file_logits(j->m, j->gen[p], j->ag + p * j->C) : file_logits(j->m, j->ref[p], j->ar + p * j->C);
}

static cJSON *provenance(const m2u_passt_kl_opts *o, const m2u_passt *m, const char *sha) {
    const m2u_passt_config *c = m2u_passt_config_of(m);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "embedder", "PaSST (hear21passt 0.0.26 get_basic_model mode=logits), native m2u");
    cJSON_AddStringToObject(p, "checkpoint", o->checkpoint);
    cJSON_AddStringToObject(p, "checkpoint_sha256", sha);
    cJSON_AddNumberToObject(p, "embed_dim", c->dims.hidden);
    cJSON_AddNumberToObject(p, "layers", c->layers);
    cJSON_AddNumberToObject(p, "heads", c->dims.heads);
    cJSON_AddNumberToObject(p, "fstride", c->fstride);
    cJSON_AddNumberToObject(p, "tstride", c->tstride);
    cJSON_AddNumberToObject(p, "classes", c->n_classes);
    cJSON_AddNumberToObject(p, "max_input_samples", (double)m2u_passt_max_samples(m));
    cJSON_AddStringToObject(p, "loader", "librosa.load(sr=32000) equivalent: FFmpeg decode, channel mean, "
                                         "libsoxr HQ as python-soxr 0.3.7, fix_length");
    cJSON_AddStringToObject(p, "libsoxr", m2u_soxr_version());
    cJSON_AddNumberToObject(p, "sample_rate", KL_SR);
    cJSON_AddNumberToObject(p, "max_samples", KL_MAX_SAMPLES);
    cJSON_AddNumberToObject(p, "eps", KL_EPS);
    cJSON_AddStringToObject(p, "formula", "mean_pairs sum_c p_ref (log p_ref - log(p_gen + eps)), p = softmax(logits)");
    return p;
}

int m2u_passt_kl(const m2u_passt_kl_opts *o, cJSON **report, double *kl) {
    *report = NULL;
    m2u_passt *m = NULL;
    m2u_input_list lr = {0}, lg = {0};
    keyed *kr = NULL, *kg = NULL;
    size_t nr = 0, ng = 0, np = 0;
    double *ar = NULL, *ag = NULL, *per = NULL;
    cJSON *rep = NULL;
    char sha[65];
    int rc = -1;
    if (m2u_sha256_file(o->checkpoint, sha) != 0) goto done;
    if (m2u_passt_load(o->checkpoint, &o->passt, &m) != 0) goto done;
    if (list_dir(o->ref_dir, &lr, &kr, &nr) != 0 || list_dir(o->gen_dir, &lg, &kg, &ng) != 0) goto done;
    int C = m2u_passt_config_of(m)->n_classes;
    size_t cap = nr < ng ? nr : ng;
    ar = malloc((cap ? cap : 1) * C * sizeof *ar);
    ag = malloc((cap ? cap : 1) * C * sizeof *ag);
    per = malloc((cap ? cap : 1) * sizeof *per);
    rep = cJSON_CreateObject();
    if (!ar || !ag || !per || !rep) {
        m2u_fail("passt kl: out of memory");
        goto done;
    }
    cJSON *pairs = cJSON_CreateArray(), *ur = cJSON_CreateArray(), *ug = cJSON_CreateArray();
    size_t i = 0, j = 0;
    const char **pr = calloc(cap ? cap : 1, sizeof *pr), **pg = calloc(cap ? cap : 1, sizeof *pg);
    const char **pk = calloc(cap ? cap : 1, sizeof *pk);
    if (!pairs || !ur || !ug || !pr || !pg || !pk) {
        cJSON_Delete(pairs), cJSON_Delete(ur), cJSON_Delete(ug);
        free(pr), free(pg), free(pk);
        m2u_fail("passt kl: out of memory");
        goto done;
    }
    /* merge the two sorted key lists */
    while (i < nr || j < ng) {
        int c = i >= nr ? 1 : j >= ng ? -1 : strcmp(kr[i].key, kg[j].key);
        if (c < 0) cJSON_AddItemToArray(ur, cJSON_CreateString(kr[i++].path));
        else if (c > 0) cJSON_AddItemToArray(ug, cJSON_CreateString(kg[j++].path));
        else {
            pk[np] = kr[i].key, pr[np] = kr[i++].path, pg[np] = kg[j++].path;
            np++;
        }
    }
    cJSON_AddStringToObject(rep, "metric", "kl_passt");
    cJSON_AddItemToObject(rep, "pairs", pairs);
    cJSON_AddItemToObject(rep, "unmatched_ref", ur);
    cJSON_AddItemToObject(rep, "unmatched_gen", ug);
    int frc = 0;
    if (np == 0) frc = m2u_fail("passt kl: no file of %s has a partner of the same name in %s", o->ref_dir, o->gen_dir);
    if (frc == 0 && np > (size_t)INT_MAX / 2) frc = m2u_fail("passt kl: %zu pairs are too many", np);
    if (frc == 0) { /* the clips side by side, one per thread (backend.h) */
        clip_job job = {m, pr, pg, ar, ag, C};
        frc = m2u_parallel_items((int)(2 * np), clip_logits, &job);
    }
    double mean = 0;
    if (frc == 0) frc = m2u_kl_divergence(ar, ag, np, (size_t)C, 1, KL_EPS, per, &mean);
    for (size_t p = 0; frc == 0 && p < np; p++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", pk[p]);
        cJSON_AddStringToObject(e, "ref", pr[p]);
        cJSON_AddStringToObject(e, "gen", pg[p]);
        cJSON_AddNumberToObject(e, "kl", per[p]);
        cJSON_AddItemToArray(pairs, e);
    }
    free(pr), free(pg), free(pk);
    if (frc != 0) goto done;
    cJSON_AddNumberToObject(rep, "kl", mean);
    cJSON_AddNumberToObject(rep, "n_pairs", (double)np);
    cJSON_AddStringToObject(rep, "ref_dir", o->ref_dir);
    cJSON_AddStringToObject(rep, "gen_dir", o->gen_dir);
    cJSON_AddItemToObject(rep, "provenance", provenance(o, m, sha));
    *kl = mean;
    *report = rep;
    rep = NULL;
    rc = 0;
done:
    cJSON_Delete(rep);
    free(ar), free(ag), free(per);
    free_keyed(kr, nr);
    free_keyed(kg, ng);
    m2u_inputs_free(&lr);
    m2u_inputs_free(&lg);
    m2u_passt_free(m);
    return rc;
}
