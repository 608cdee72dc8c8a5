#include "music_gen.h"

#include "analysis.h"
#include "attr_agreement.h"
#include "audio_embed.h"
#include "clap.h"
#include "clap_score.h"
#include "decode.h"
#include "describe.h"
#include "distribution_metrics.h"
#include "fad_vggish.h"
#include "fileio.h"
#include "json.h"
#include "m2u_error.h"
#include "manifest.h"
#include "passt_kl.h"
#include "wav.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_OF(a) (int)(sizeof(a) / sizeof *(a))

static const char *const k_bright[] = {"dark", "warm", "bright"};
static const char *const k_perc[] = {"no drums", "drums"};

const char *m2u_gen_attr_name(m2u_gen_attr a) {
    if (a < M2U_GA_BRIGHTNESS) return m2u_attr_name((m2u_attr)a);
    return a == M2U_GA_BRIGHTNESS ? "brightness" : a == M2U_GA_PERCUSSION ? "percussion" : NULL;
}

int m2u_gen_attr_n_classes(m2u_gen_attr a) {
    if (a < M2U_GA_BRIGHTNESS) return m2u_attr_n_classes((m2u_attr)a);
    return a == M2U_GA_BRIGHTNESS ? N_OF(k_bright) : a == M2U_GA_PERCUSSION ? N_OF(k_perc) : 0;
}

const char *m2u_gen_attr_class_name(m2u_gen_attr a, int cls) {
    if (cls < 0 || cls >= m2u_gen_attr_n_classes(a)) return NULL;
    if (a < M2U_GA_BRIGHTNESS) return m2u_attr_class_name((m2u_attr)a, cls);
    return a == M2U_GA_BRIGHTNESS ? k_bright[cls] : k_perc[cls];
}

void m2u_gen_values_clear(m2u_gen_values *v) {
    v->tempo_bpm = v->tempo_confidence = v->key = v->mode = v->key_confidence = NAN;
    v->loudness_lufs = v->valence = v->arousal = v->centroid_hz = v->percussiveness = NAN;
}

void m2u_gen_classes(const m2u_gen_values *v, int *cls) {
    m2u_attr_measured m = {v->tempo_bpm, v->tempo_confidence, v->key,     v->mode,
                           v->key_confidence, v->loudness_lufs, v->valence, v->arousal};
    m2u_attr_set s;
    m2u_attr_measured_classes(&m, &s);
    for (int a = 0; a < M2U_ATTR_COUNT; a++) cls[a] = s.cls[a];
    cls[M2U_GA_BRIGHTNESS] = -1;
    if (isfinite(v->centroid_hz) && v->centroid_hz > 0) {
        const char *w = m2u_brightness_word(v->centroid_hz);
        for (int k = 0; k < N_OF(k_bright); k++)
            if (!strcmp(w, k_bright[k])) cls[M2U_GA_BRIGHTNESS] = k;
    }
    cls[M2U_GA_PERCUSSION] = isfinite(v->percussiveness) ? v->percussiveness >= 0.35 : -1;
}

void m2u_music_file_id(const char *id, char *out, size_t cap) {
    size_t j = 0;
    for (const char *p = id; *p && j + 1 < cap; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                 c == '-';
        out[j++] = ok ? c : '_';
    }
    if (cap) out[j] = 0;
}

double m2u_music_agreement_rate(const m2u_music_agreement *ag, m2u_gen_attr a) {
    return ag->n_asked[a] ? (double)ag->n_correct[a] / (double)ag->n_asked[a] : NAN;
}

static void agreement_free(m2u_music_agreement *ag) {
    for (int a = 0; a < M2U_GA_COUNT; a++) free(ag->confusion[a]);
    memset(ag, 0, sizeof *ag);
}

static int agreement_init(m2u_music_agreement *ag) {
    memset(ag, 0, sizeof *ag);
    for (int a = 0; a < M2U_GA_COUNT; a++) {
        int k = m2u_gen_attr_n_classes((m2u_gen_attr)a);
        ag->confusion[a] = calloc((size_t)k * (size_t)(k + 1), sizeof(long));
        if (!ag->confusion[a]) {
            agreement_free(ag);
            return m2u_fail("out of memory");
        }
    }
    return 0;
}

/* Count one item on attribute a (only = -1: every attribute). */
static void agreement_add(m2u_music_agreement *ag, const m2u_music_item *it, int only) {
    for (int a = 0; a < M2U_GA_COUNT; a++) {
        if (only >= 0 && a != only) continue;
        int want = it->asked[a], got = it->generated ? it->got[a] : -1;
        if (want < 0) continue;
        int k = m2u_gen_attr_n_classes((m2u_gen_attr)a);
        ag->n_asked[a]++;
        if (got == want) ag->n_correct[a]++;
        ag->confusion[a][(size_t)want * (size_t)(k + 1) + (size_t)(got >= 0 ? got : k)]++;
    }
}

void m2u_music_eval_free(m2u_music_eval *e) {
    for (int i = 0; i < e->n_items; i++) {
        m2u_music_item *it = &e->items[i];
        free(it->id), free(it->kind), free(it->prompt), free(it->reference_text), free(it->answer_text);
        free(it->gen_path), free(it->pcm);
    }
    free(e->items);
    for (int g = 0; g < e->n_groups; g++) agreement_free(&e->ag[g]);
    free(e->data), free(e->split), free(e->kinds), free(e->gen_dir);
    memset(e, 0, sizeof *e);
}

static int kind_in(const char *kinds, const char *kind) {
    size_t n = strlen(kind);
    for (const char *p = kinds; *p;) {
        size_t l = strcspn(p, ",");
        if (n && l == n && !strncmp(p, kind, n)) return 1;
        p += l + (p[l] == ',');
    }
    return 0;
}

static int check_kinds(const char *kinds) {
    static const char *const ok[] = {"mucaps", "muedit", "muimage", "muvideo"};
    if (!kinds[0]) return m2u_fail("--kinds: empty list");
    for (const char *p = kinds; *p;) {
        size_t l = strcspn(p, ",");
        int found = 0;
        for (int k = 0; k < N_OF(ok); k++) found |= strlen(ok[k]) == l && !strncmp(p, ok[k], l);
        if (!found)
            return m2u_fail("--kinds: '%.*s' is not a generation kind (mucaps, muedit, muimage, muvideo)", (int)l, p);
        p += l + (p[l] == ',');
    }
    return 0;
}

/* predictions.jsonl of the generation: id -> audio path (and text) */
typedef struct {
    char **id, **audio, **text;
    int n;
} pred_map;

static void pred_free(pred_map *p) {
    for (int i = 0; i < p->n; i++) free(p->id[i]), free(p->audio[i]), free(p->text[i]);
    free(p->id), free(p->audio), free(p->text);
    memset(p, 0, sizeof *p);
}

static int pred_read(const char *path, pred_map *p) {
    memset(p, 0, sizeof *p);
    char *txt = NULL;
    size_t len;
    if (m2u_read_file(path, &txt, &len)) return -1;
    int line = 0, rc = 0;
    for (char *s = txt; s && *s && !rc;) {
        char *nl = strchr(s, '\n');
        if (nl) *nl = 0;
        line++;
        const char *q = s;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (*q) {
            cJSON *o = cJSON_Parse(s);
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id"),
                        *au = cJSON_GetObjectItemCaseSensitive(o, "audio"),
                        *tx = cJSON_GetObjectItemCaseSensitive(o, "text");
            if (!cJSON_IsObject(o) || !cJSON_IsString(id) || !cJSON_IsString(au)) {
                rc = m2u_fail("%s line %d: expected {\"id\": \"...\", \"audio\": \"PATH\"}", path, line);
            } else {
                char **a = realloc(p->id, (size_t)(p->n + 1) * sizeof *a);
                if (a) p->id = a;
                char **b = realloc(p->audio, (size_t)(p->n + 1) * sizeof *b);
                if (b) p->audio = b;
                char **c = realloc(p->text, (size_t)(p->n + 1) * sizeof *c);
                if (c) p->text = c;
                if (!a || !b || !c) {
                    rc = m2u_fail("out of memory");
                } else {
                    p->id[p->n] = strdup(id->valuestring), p->audio[p->n] = strdup(au->valuestring);
                    p->text[p->n] = cJSON_IsString(tx) ? strdup(tx->valuestring) : NULL;
                    p->n++;
                }
            }
            cJSON_Delete(o);
        }
        s = nl ? nl + 1 : NULL;
    }
    free(txt);
    if (rc) pred_free(p);
    return rc;
}

static char *join(const char *dir, const char *leaf) {
    if (leaf[0] == '/') return strdup(leaf);
    size_t n = strlen(dir) + strlen(leaf) + 2;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s", dir, leaf);
    return s;
}

/* a sample's attribute value by column name; NaN when absent */
static double col(const m2u_sample *s, m2u_shard_reader *r, const char *name) {
    int k = m2u_shard_attr_index(r, name);
    return k >= 0 && s->attrs && k < s->n_attrs ? (double)s->attrs[k] : NAN;
}

/* What the sample asked for (music_gen.h) */
static void asked_values(const m2u_sample *s, m2u_shard_reader *r, const char *kind, m2u_gen_values *v, int *edit) {
    m2u_gen_values_clear(v);
    v->tempo_bpm = col(s, r, "tempo_bpm"), v->tempo_confidence = col(s, r, "tempo_confidence");
    v->key = col(s, r, "key"), v->mode = col(s, r, "mode"), v->key_confidence = col(s, r, "key_confidence");
    v->loudness_lufs = col(s, r, "loudness_lufs"), v->valence = col(s, r, "valence"), v->arousal = col(s, r, "arousal");
    v->centroid_hz = col(s, r, "centroid_hz"), v->percussiveness = col(s, r, "percussiveness");
    *edit = -1;
    if (strcmp(kind, "muedit")) return;
    double tt = col(s, r, "target_tempo_bpm"), tk = col(s, r, "target_key"), tm = col(s, r, "target_mode"),
           tl = col(s, r, "target_loudness_lufs"), tc = col(s, r, "target_centroid_hz"), ev = col(s, r, "edit_value");
    if (isfinite(tk) && isfinite(v->key) && tk != v->key) *edit = M2U_GA_KEY;
    else if (isfinite(tt) && isfinite(v->tempo_bpm) && v->tempo_bpm > 0 && fabs(tt / v->tempo_bpm - 1) > 0.04)
        *edit = M2U_GA_TEMPO;
    else if ((ev == -9 || ev == -6 || ev == 4 || ev == 6) && isfinite(tl) && isfinite(v->loudness_lufs) &&
             fabs(tl - v->loudness_lufs - ev) <= 1.5)
        *edit = M2U_GA_LOUDNESS;
    else
        *edit = M2U_GA_BRIGHTNESS;
    if (isfinite(tt)) v->tempo_bpm = tt;
    if (isfinite(tk) && isfinite(tm)) v->key = tk, v->mode = tm;
    if (isfinite(tl)) v->loudness_lufs = tl;
    if (isfinite(tc)) v->centroid_hz = tc;
    if (*edit == M2U_GA_BRIGHTNESS) v->percussiveness = NAN; /* a new instrument: not stored */
    /* the target's mood, from the target's values as the builder computes moods */
    m2u_analysis a;
    memset(&a, 0, sizeof a);
    a.tempo_bpm = isfinite(v->tempo_bpm) ? v->tempo_bpm : 0;
    a.key = isfinite(v->key) ? (int)v->key : -1, a.mode = isfinite(v->mode) ? (int)v->mode : -1;
    a.key_confidence = isfinite(v->key_confidence) ? v->key_confidence : 0;
    a.loudness_lufs = isfinite(v->loudness_lufs) ? v->loudness_lufs : M2U_LOUDNESS_FLOOR_LUFS;
    a.centroid_hz = isfinite(v->centroid_hz) ? v->centroid_hz : 0;
    m2u_mood_from_analysis(&a, &v->valence, &v->arousal);
}

static void values_from_analysis(const m2u_analysis *a, m2u_gen_values *v) {
    double va, ar;
    m2u_mood_from_analysis(a, &va, &ar);
    v->tempo_bpm = a->tempo_bpm, v->tempo_confidence = a->tempo_confidence;
    v->key = a->key >= 0 ? a->key : NAN, v->mode = a->key >= 0 ? a->mode : NAN;
    v->key_confidence = a->key_confidence, v->loudness_lufs = a->loudness_lufs;
    v->valence = va, v->arousal = ar, v->centroid_hz = a->centroid_hz, v->percussiveness = a->percussiveness;
}

static int group_of(m2u_music_eval *e, const char *name) {
    for (int g = 0; g < e->n_groups; g++)
        if (!strcmp(e->group[g], name)) return g;
    if (e->n_groups == M2U_MUSIC_MAX_GROUPS) return m2u_fail("too many groups");
    int g = e->n_groups;
    if (agreement_init(&e->ag[g])) return -1;
    snprintf(e->group[g], sizeof e->group[g], "%s", name);
    e->n_groups++;
    return g;
}

/* Decode and analyse the generated clip of item it. */
static void analyse_generated(m2u_music_item *it, int rate) {
    struct stat st;
    if (stat(it->gen_path, &st) != 0) {
        snprintf(it->why, sizeof it->why, "no generated clip at %s", it->gen_path);
        return;
    }
    float *pcm = NULL;
    int64_t n = 0;
    int bad = m2u_audio_decode(it->gen_path, rate, &pcm, &n, NULL);
    if (bad || n <= 0) {
        snprintf(it->why, sizeof it->why, "%s", bad ? m2u_last_error() : "empty clip");
        free(pcm);
        return;
    }
    m2u_analysis a;
    if (m2u_analyze(pcm, (size_t)n, rate, &a)) {
        snprintf(it->why, sizeof it->why, "analysis failed: %s", m2u_last_error());
        free(pcm);
        return;
    }
    values_from_analysis(&a, &it->got_v);
    m2u_gen_classes(&it->got_v, it->got);
    it->duration_s = a.duration_s;
    m2u_analysis_free(&a);
    it->pcm = pcm, it->n_pcm = (size_t)n, it->generated = 1;
}

/* CLAP of the generated mucaps clips against their captions (music_gen.h). */
static int clap_items(const char *clap_dir, m2u_music_eval *out) {
    m2u_clap *m = NULL;
    char weights[512];
    if (m2u_clap_load(clap_dir, &m)) return -1;
    int rc = -1;
    if (!m2u_clap_config_of(m)->has_text) {
        m2u_fail("%s: the checkpoint has no text tower (text_model.*): a CLAP score needs ClapModel", clap_dir);
        goto done;
    }
    if (m2u_clap_checkpoint_sha256(clap_dir, weights, sizeof weights, out->clap_sha256)) goto done;
    double sum = 0;
    long n_failed = 0;
    int n = 0, *which = malloc((size_t)(out->n_items > 0 ? out->n_items : 1) * sizeof *which);
    const char **paths = malloc((size_t)(out->n_items > 0 ? out->n_items : 1) * sizeof *paths),
               **caps = malloc((size_t)(out->n_items > 0 ? out->n_items : 1) * sizeof *caps);
    double *cos = malloc((size_t)(out->n_items > 0 ? out->n_items : 1) * sizeof *cos);
    char **errs = malloc((size_t)(out->n_items > 0 ? out->n_items : 1) * sizeof *errs);
    int prc = -1;
    if (!which || !paths || !caps || !cos || !errs) m2u_fail("out of memory for %d items", out->n_items);
    else {
        for (int i = 0; i < out->n_items; i++) {
            m2u_music_item *it = &out->items[i];
            if (!it->generated || strcmp(it->kind, "mucaps") != 0) continue;
            which[n] = i, paths[n] = it->gen_path, caps[n++] = it->prompt;
        }
        /* the same pairs function as m2u-eval clap, so the two agree exactly */
        prc = m2u_clap_pairs(m, n, paths, caps, cos, errs);
        for (int k = 0; !prc && k < n; k++) {
            m2u_music_item *it = &out->items[which[k]];
            it->clap = cos[k];
            if (errs[k]) n_failed++; /* it decoded for the analysis; at 48 kHz it did not */
            else sum += it->clap, out->clap_n++;
            free(errs[k]);
        }
    }
    free(which), free(paths), free(caps), free(cos), free(errs);
    if (prc) goto done;
    if (out->clap_n) {
        out->clap_measured = 1, out->clap = sum / (double)out->clap_n;
    } else {
        snprintf(out->clap_why, sizeof out->clap_why, "%s", n_failed ? "no mucaps clip decoded at CLAP's rate"
                                                                       : "no generated clip of a mucaps sample");
        out->clap_reason = out->clap_why;
    }
    rc = 0;
done:
    m2u_clap_free(m);
    return rc;
}

/* ---- the paper's folder scorers: VGGish FAD and PaSST KL on ref/ and gen/ files ---- */

static int copy_file(const char *from, const char *to) {
    char *data = NULL;
    size_t len = 0;
    if (m2u_read_file(from, &data, &len)) return -1;
    int rc = m2u_write_file_atomic(to, data, len);
    free(data);
    return rc;
}

/* ref/<file id>.wav for every item (its reference clip), gen/<file id><ext> for every generated one. */
static int stage_files(const m2u_music_eval *e, float *const *ref, const size_t *ref_n, const char *dir, char **rdir,
                       char **gdir) {
    *rdir = m2u_path_join(dir, "ref");
    *gdir = m2u_path_join(dir, "gen");
    if (!*rdir || !*gdir) return m2u_fail("out of memory");
    if (m2u_mkdir_p(*rdir) || m2u_mkdir_p(*gdir)) return -1;
    for (int i = 0; i < e->n_items; i++) {
        const m2u_music_item *it = &e->items[i];
        char fid[512], leaf[600], *p;
        m2u_music_file_id(it->id, fid, sizeof fid);
        snprintf(leaf, sizeof leaf, "%s.wav", fid);
        p = m2u_path_join(*rdir, leaf);
        /* the shard's int16 samples / 32768 -> PCM16 again: the same samples (the writer scales by
         * 32767 and clamps to [-1, 1], so -32768 alone comes back as -32767) */
        float *x = malloc((ref_n[i] ? ref_n[i] : 1) * sizeof(float));
        int rc = p && x ? 0 : m2u_fail("out of memory");
        for (size_t k = 0; !rc && k < ref_n[i]; k++) x[k] = ref[i][k] * (32768.0f / 32767.0f);
        if (!rc) rc = m2u_wav_write(p, x, ref_n[i], 1, e->rate, M2U_WAV_PCM16);
        free(x);
        free(p);
        if (rc) return -1;
        if (!it->generated) continue;
        const char *dot = strrchr(it->gen_path, '.'), *slash = strrchr(it->gen_path, '/');
        snprintf(leaf, sizeof leaf, "%s%s", fid, dot && (!slash || dot > slash) ? dot : ".wav");
        p = m2u_path_join(*gdir, leaf);
        rc = p ? copy_file(it->gen_path, p) : m2u_fail("out of memory");
        free(p);
        if (rc) return -1;
    }
    return 0;
}

static int paper_scorers(const m2u_music_eval_options *o, float *const *ref, const size_t *ref_n,
                         m2u_music_eval *out) {
    char tmpl[] = "/tmp/m2u_music_scored_XXXXXX";
    const char *dir = o->work_dir;
    if (!dir && !(dir = mkdtemp(tmpl))) return m2u_fail("cannot make a temporary folder: %s", strerror(errno));
    char *rdir = NULL, *gdir = NULL;
    int rc = stage_files(out, ref, ref_n, dir, &rdir, &gdir);
    if (!rc && o->vggish_ckpt) {
        m2u_fad_vggish_result res;
        memset(&res, 0, sizeof res);
        out->fad_measured = 0;
        if (out->n_generated < 2) {
            snprintf(out->fad_reason, sizeof out->fad_reason, "a covariance needs 2 generated clips (%d found)",
                     out->n_generated);
        } else if (m2u_fad_vggish(o->vggish_ckpt, rdir, gdir, &res)) {
            rc = -1; /* a bad checkpoint is the user's mistake */
        } else {
            out->fad_measured = 1, out->fad = res.fad;
            out->fad_ref_clips = res.e[0].n / M2U_FAD_CHUNKS, out->fad_gen_clips = res.e[1].n / M2U_FAD_CHUNKS;
            out->fad_dim = res.e[0].dim;
            snprintf(out->fad_sha256, sizeof out->fad_sha256, "%s", res.sha256);
        }
        snprintf(out->fad_embedding, sizeof out->fad_embedding,
                 "VGGish as fad_pytorch 0.0.6 (16 kHz sinc resampling, 2^18 pad/crop, 10 chunks, NS-20)");
        m2u_fad_vggish_result_free(&res);
    }
    if (!rc && o->passt_ckpt) {
        m2u_passt_kl_opts ko = {.checkpoint = o->passt_ckpt, .ref_dir = rdir, .gen_dir = gdir};
        cJSON *rep = NULL;
        double kl = 0;
        if (out->n_generated < 1) {
            snprintf(out->kl_why, sizeof out->kl_why, "no generated clip was found");
            out->kl_reason = out->kl_why;
        } else if (m2u_passt_kl(&ko, &rep, &kl)) {
            rc = -1;
        } else {
            const cJSON *np = cJSON_GetObjectItemCaseSensitive(rep, "n_pairs");
            const cJSON *pv = cJSON_GetObjectItemCaseSensitive(rep, "provenance");
            const cJSON *sha = pv ? cJSON_GetObjectItemCaseSensitive(pv, "checkpoint_sha256") : NULL;
            out->kl_measured = 1, out->kl = kl;
            out->kl_pairs = m2u_json_whole(np, 0, M2U_JSON_EXACT_MAX) ? (long)np->valuedouble : 0;
            snprintf(out->kl_sha256, sizeof out->kl_sha256, "%s", cJSON_IsString(sha) ? sha->valuestring : "");
        }
        cJSON_Delete(rep);
    }
    free(rdir), free(gdir);
    if (!o->work_dir) m2u_rm_tree(dir);
    return rc;
}

int m2u_music_eval_run(const m2u_music_eval_options *o, m2u_music_eval *out) {
    memset(out, 0, sizeof *out);
    out->kl_reason = "needs a PaSST checkpoint: m2u-eval music --passt CKPT (hear21passt's passt-s-f128-p16-s10-ap.476-swa.pt)";
    out->clap_reason = "needs a CLAP checkpoint: m2u-eval music --clap DIR (laion/clap-htsat-unfused)";
    if (!o->gen_dir || !o->data) return m2u_fail("music evaluation needs the generated folder and the manifest");
    const char *split = o->split ? o->split : "test";
    const char *kinds = o->kinds ? o->kinds : "mucaps,muedit,muimage,muvideo";
    if (strcmp(split, "test") && strcmp(split, "valid") && strcmp(split, "train"))
        return m2u_fail("--split %s: expected test, valid or train", split);
    if (check_kinds(kinds)) return -1;
    struct stat st;
    if (stat(o->gen_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return m2u_fail("%s: not a folder of generated clips", o->gen_dir);
    out->data = strdup(o->data), out->split = strdup(split), out->kinds = strdup(kinds), out->gen_dir = strdup(o->gen_dir);
    if (!out->data || !out->split || !out->kinds || !out->gen_dir) return m2u_fail("out of memory");

    pred_map pm = {0};
    char *pred_path = join(o->gen_dir, "predictions.jsonl");
    int have_pred = pred_path && stat(pred_path, &st) == 0;
    int rc = 0;
    if (!pred_path) rc = m2u_fail("out of memory");
    else if (have_pred) rc = pred_read(pred_path, &pm);
    free(pred_path);
    m2u_dataset *ds = NULL;
    m2u_dataset_options dopt = {.split = split};
    if (!rc) rc = m2u_dataset_open(o->data, &dopt, &ds);
    float **ref = NULL;
    size_t *ref_n = NULL, cap = 0;
    int64_t count = rc ? 0 : m2u_dataset_count(ds);
    if (!rc && group_of(out, "all") < 0) rc = -1;
    for (int64_t i = 0; i < count && !rc; i++) {
        if (o->max_samples > 0 && out->n_items >= o->max_samples) break;
        m2u_sample s;
        int shard;
        int64_t local;
        m2u_shard_reader *r = NULL;
        if (m2u_dataset_get(ds, i, &s)) {
            rc = -1;
            break;
        }
        const char *kind = s.text[M2U_TEXT_KIND] ? s.text[M2U_TEXT_KIND] : "";
        if (!kind_in(kinds, kind)) {
            m2u_sample_free(&s);
            continue;
        }
        if (m2u_dataset_locate(ds, i, &shard, &local) || m2u_dataset_shard(ds, shard, &r)) {
            m2u_sample_free(&s);
            rc = -1;
            break;
        }
        if (!s.audio_rate || (!s.audio && !s.target_audio)) {
            rc = m2u_fail("%s: sample %s has no audio to compare generated music with", o->data, s.text[M2U_TEXT_ID]);
            m2u_sample_free(&s);
            break;
        }
        if (out->rate && out->rate != s.audio_rate) {
            rc = m2u_fail("%s: shards at %d and %d Hz; the evaluation needs one rate", o->data, out->rate, s.audio_rate);
            m2u_sample_free(&s);
            break;
        }
        out->rate = s.audio_rate;
        if ((size_t)out->n_items == cap) {
            size_t nc = cap ? 2 * cap : 16;
            m2u_music_item *ni = realloc(out->items, nc * sizeof *ni);
            if (ni) out->items = ni;
            float **nr = realloc(ref, nc * sizeof *nr);
            if (nr) ref = nr;
            size_t *nn = realloc(ref_n, nc * sizeof *nn);
            if (nn) ref_n = nn;
            if (!ni || !nr || !nn) {
                rc = m2u_fail("out of memory");
                m2u_sample_free(&s);
                break;
            }
            cap = nc;
        }
        m2u_music_item *it = &out->items[out->n_items];
        memset(it, 0, sizeof *it);
        it->clap = NAN;
        out->n_items++;
        const char *id = s.text[M2U_TEXT_ID] ? s.text[M2U_TEXT_ID] : "";
        const char *prompt = !strcmp(kind, "mucaps") ? s.text[M2U_TEXT_CAPTION] : s.text[M2U_TEXT_INSTRUCTION];
        const char *rtext = s.text[M2U_TEXT_OUTPUT_TEXT] && s.text[M2U_TEXT_OUTPUT_TEXT][0] ? s.text[M2U_TEXT_OUTPUT_TEXT]
                                                                                             : s.text[M2U_TEXT_CAPTION];
        it->id = strdup(id), it->kind = strdup(kind), it->prompt = strdup(prompt ? prompt : "");
        it->reference_text = strdup(rtext ? rtext : "");
        /* the reference clip, as float */
        int tgt = s.target_audio && s.target_audio_len > 0;
        const int16_t *src = tgt ? s.target_audio : s.audio;
        size_t sn = tgt ? s.target_audio_len : s.audio_len;
        ref[out->n_items - 1] = malloc((sn ? sn : 1) * sizeof(float));
        ref_n[out->n_items - 1] = sn;
        if (ref[out->n_items - 1])
            for (size_t k = 0; k < sn; k++) ref[out->n_items - 1][k] = (float)src[k] / 32768.0f;
        int p = -1;
        for (int k = 0; k < pm.n && p < 0; k++)
            if (!strcmp(pm.id[k], id)) p = k;
        if (p >= 0) {
            it->gen_path = join(o->gen_dir, pm.audio[p]);
            if (pm.text[p]) it->answer_text = strdup(pm.text[p]);
        } else {
            char fid[512], leaf[520];
            m2u_music_file_id(id, fid, sizeof fid);
            snprintf(leaf, sizeof leaf, "%s.wav", fid);
            it->gen_path = join(o->gen_dir, leaf);
        }
        if (!it->id || !it->kind || !it->prompt || !it->reference_text || !it->gen_path || !ref[out->n_items - 1] ||
            (p >= 0 && pm.text[p] && !it->answer_text)) {
            rc = m2u_fail("out of memory");
            m2u_sample_free(&s);
            break;
        }
        asked_values(&s, r, kind, &it->asked_v, &it->edit_attr);
        m2u_gen_classes(&it->asked_v, it->asked);
        for (int a = 0; a < M2U_GA_COUNT; a++) it->got[a] = -1;
        m2u_gen_values_clear(&it->got_v);
        m2u_sample_free(&s);
        if (have_pred && p < 0) snprintf(it->why, sizeof it->why, "predictions.jsonl has no line for this id");
        else analyse_generated(it, out->rate);
        out->n_generated += it->generated;
        int g = group_of(out, it->kind);
        if (g < 0) {
            rc = -1;
            break;
        }
        agreement_add(&out->ag[0], it, -1);
        agreement_add(&out->ag[g], it, -1);
        out->group_n[0]++, out->group_n[g]++;
    }
    if (!rc && out->n_items == 0)
        rc = m2u_fail("%s: split '%s' has no samples of kind(s) %s", o->data, split, kinds);
    for (int i = 0; i < out->n_items && !rc; i++)
        if (out->items[i].edit_attr >= 0) {
            int g = group_of(out, "edited");
            if (g < 0) rc = -1;
            else agreement_add(&out->ag[g], &out->items[i], out->items[i].edit_attr), out->group_n[g]++;
        }
    /* FAD of the generated clips found vs the references of every selected sample */
    if (!rc) {
        m2u_audio_embed_opts eo = {.mert_dir = o->mert_dir, .layer = o->layer, .clip_s = o->clip_s > 0 ? o->clip_s : 10,
                                   .rate = out->rate};
        const float **gp = calloc((size_t)out->n_items, sizeof *gp);
        size_t *gn = calloc((size_t)out->n_items, sizeof *gn);
        if (!gp || !gn) rc = m2u_fail("out of memory");
        for (int i = 0; i < out->n_items && !rc; i++) gp[i] = out->items[i].pcm, gn[i] = out->items[i].n_pcm;
        m2u_audio_embeddings e[2];
        memset(e, 0, sizeof e);
        if (!rc && out->n_generated == 0) {
            snprintf(out->fad_reason, sizeof out->fad_reason, "no generated clip was found");
        } else if (!rc) {
            if (m2u_audio_embed_pcm_set((const float *const *)ref, ref_n, (size_t)out->n_items, out->rate, &eo, &e[0]) ||
                m2u_audio_embed_pcm_set(gp, gn, (size_t)out->n_items, out->rate, &eo, &e[1])) {
                /* a bad MERT checkpoint or rate is the user's mistake: fail; no clip to embed is a finding */
                if (o->mert_dir) rc = -1;
                else snprintf(out->fad_reason, sizeof out->fad_reason, "%s", m2u_last_error());
            } else if (e[0].n < 2 || e[1].n < 2) {
                snprintf(out->fad_reason, sizeof out->fad_reason,
                         "a covariance needs 2 clips per side (%zu reference, %zu generated)", e[0].n, e[1].n);
            } else if (m2u_frechet_distance(e[0].rows, e[0].n, e[1].rows, e[1].n, e[0].dim, &out->fad)) {
                rc = -1;
            } else {
                out->fad_measured = 1;
            }
            snprintf(out->fad_embedding, sizeof out->fad_embedding, "%s", e[0].encoder[0] ? e[0].encoder : e[1].encoder);
            out->fad_ref_clips = e[0].n, out->fad_gen_clips = e[1].n, out->fad_dim = e[0].dim ? e[0].dim : e[1].dim;
        }
        m2u_audio_embeddings_free(&e[0]);
        m2u_audio_embeddings_free(&e[1]);
        free(gp), free(gn);
    }
    if (!rc && o->clap_dir) rc = clap_items(o->clap_dir, out);
    if (!rc && (o->vggish_ckpt || o->passt_ckpt)) rc = paper_scorers(o, ref, ref_n, out);
    for (size_t i = 0; i < cap && ref; i++)
        if ((int)i < out->n_items) free(ref[i]);
    free(ref), free(ref_n);
    pred_free(&pm);
    m2u_dataset_close(ds);
    if (rc) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", m2u_last_error());
        m2u_music_eval_free(out);
        return m2u_fail("%s", msg);
    }
    return 0;
}

int m2u_wav_encode_pcm16(const float *pcm, size_t n, int rate, unsigned char **buf, size_t *len) {
    *buf = NULL, *len = 0;
    if (rate <= 0 || n > (0xffffffffu - 44) / 2) return m2u_fail("cannot make a WAV of %zu samples at %d Hz", n, rate);
    size_t L = 44 + 2 * n;
    uint8_t *b = malloc(L);
    if (!b) return m2u_fail("out of memory");
    uint32_t data = (uint32_t)(2 * n), riff = (uint32_t)(36 + 2 * n), r = (uint32_t)rate, br = (uint32_t)rate * 2;
#define LE32(p, v) ((p)[0] = (uint8_t)(v), (p)[1] = (uint8_t)((v) >> 8), (p)[2] = (uint8_t)((v) >> 16), (p)[3] = (uint8_t)((v) >> 24))
#define LE16(p, v) ((p)[0] = (uint8_t)(v), (p)[1] = (uint8_t)((v) >> 8))
    memcpy(b, "RIFF", 4), LE32(b + 4, riff), memcpy(b + 8, "WAVEfmt ", 8), LE32(b + 16, 16u);
    LE16(b + 20, 1u), LE16(b + 22, 1u), LE32(b + 24, r), LE32(b + 28, br), LE16(b + 32, 2u), LE16(b + 34, 16u);
    memcpy(b + 36, "data", 4), LE32(b + 40, data);
    for (size_t i = 0; i < n; i++) {
        float x = pcm[i];
        if (x != x) x = 0.0f; /* NaN: silence (as models/formats/wav.h does) */
        if (x < -1.0f) x = -1.0f;
        if (x > 1.0f) x = 1.0f;
        long v = lrintf(x * 32767.0f);
        uint16_t u = (uint16_t)(int16_t)v;
        LE16(b + 44 + 2 * i, u);
    }
#undef LE32
#undef LE16
    *buf = b, *len = L;
    return 0;
}

int m2u_wav_write_pcm16(const char *path, const float *pcm, size_t n, int rate) {
    unsigned char *b = NULL;
    size_t len = 0;
    if (m2u_wav_encode_pcm16(pcm, n, rate, &b, &len)) return m2u_fail_prefix("%s: ", path);
    int rc = m2u_write_file_atomic(path, b, len);
    free(b);
    return rc;
}
