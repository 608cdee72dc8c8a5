/* m2u-dataset build: orchestration of the survey, the samples and the final
 * files (see build.h for the design). */
#include "build.h"

#include "audio_edit.h"
#include "backend.h" /* m2u_parallel_tasks */
#include "build_record.h"
#include "builtin_features.h"
#include "captioner_http.h"
#include "captioner_process.h"
#include "decode.h"
#include "describe.h"
#include "fileio.h"
#include "fingerprint.h"
#include "frames.h"
#include "inputs.h"
#include "m2u_error.h"
#include "manifest.h"
#include "mert_encoder.h"
#include "midi_render.h"
#include "progress.h"
#include "rng.h"
#include "sha256.h"
#include "shard.h"
#include "t5_encoder.h"
#include "unigram_tokenizer.h"
#include "visual.h"
#include "vit_encoder.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BUILD_VERSION 1 /* bump when the samples a configuration gives change */

void m2u_build_config_default(m2u_build_config *c) {
    memset(c, 0, sizeof *c);
    c->recipes = M2U_RECIPE_ALL;
    c->audio_rate = 24000;
    c->clip_s = 10, c->hop_s = 10, c->min_clip_s = 5, c->silence_db = -50;
    c->qa_per_clip = 2;
    c->valid_frac = 0.1, c->test_frac = 0.1;
    c->dup_threshold = M2U_FINGERPRINT_DUP_THRESHOLD;
    c->verify = 1;
    c->image_size = 224, c->video_frames = 32;
    c->store_images = 1;
    c->text_rows = 128, c->text_dim = 768;
    c->shard_size = 256;
    c->zstd_level = 3;
    c->seed = 0;
    c->captioner_timeout_s = 60;
    c->audio_cache_mb = 1024;
}

/* Everything that changes the samples; stored in build.json and the manifest.
 * Inputs are listed as given (the file list itself is in the records). */
cJSON *m2u_build_config_json(const m2u_build_config *c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "build_version", BUILD_VERSION);
    cJSON *in = cJSON_AddArrayToObject(o, "inputs");
    for (int i = 0; i < c->n_inputs; i++) cJSON_AddItemToArray(in, cJSON_CreateString(c->inputs[i]));
    cJSON_AddStringToObject(o, "default_licence", c->default_licence ? c->default_licence : "");
    cJSON_AddStringToObject(o, "default_attribution", c->default_attribution ? c->default_attribution : "");
    cJSON *rec = cJSON_AddArrayToObject(o, "recipes");
    static const char *const names[5] = {"mucaps", "musicqa", "muedit", "muimage", "muvideo"};
    for (int k = 0; k < 5; k++)
        if (c->recipes & (1 << k)) cJSON_AddItemToArray(rec, cJSON_CreateString(names[k]));
    cJSON_AddNumberToObject(o, "audio_rate", c->audio_rate);
    cJSON_AddNumberToObject(o, "clip_s", c->clip_s);
    cJSON_AddNumberToObject(o, "hop_s", c->hop_s);
    cJSON_AddNumberToObject(o, "min_clip_s", c->min_clip_s);
    cJSON_AddNumberToObject(o, "silence_db", c->silence_db);
    cJSON_AddNumberToObject(o, "max_clips", c->max_clips);
    cJSON_AddStringToObject(o, "soundfont", c->soundfont ? c->soundfont : "");
    cJSON_AddNumberToObject(o, "qa_per_clip", c->qa_per_clip);
    cJSON_AddNumberToObject(o, "valid_frac", c->valid_frac);
    cJSON_AddNumberToObject(o, "test_frac", c->test_frac);
    cJSON_AddNumberToObject(o, "dup_threshold", c->dup_threshold);
    cJSON_AddNumberToObject(o, "image_size", c->image_size);
    cJSON_AddNumberToObject(o, "video_frames", c->video_frames);
    cJSON_AddBoolToObject(o, "store_images", c->store_images != 0);
    cJSON_AddNumberToObject(o, "text_rows", c->text_rows);
    cJSON_AddNumberToObject(o, "text_dim", c->text_dim);
    cJSON_AddNumberToObject(o, "shard_size", c->shard_size);
    cJSON_AddNumberToObject(o, "zstd_level", c->zstd_level);
    char seed[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)c->seed);
    cJSON_AddStringToObject(o, "seed", seed);
    cJSON_AddStringToObject(o, "captioner", c->captioner_cmd ? c->captioner_cmd : "");
    cJSON_AddStringToObject(o, "llm", c->llm_url ? c->llm_url : "");
    cJSON_AddStringToObject(o, "llm_model", c->llm_model ? c->llm_model : "");
    cJSON *enc = cJSON_AddObjectToObject(o, "encoders");
    const char *dirs[4] = {c->mert_dir, c->vit_dir, c->vivit_dir, c->t5_dir};
    static const char *const roles[4] = {"mert", "vit", "vivit", "t5"};
    for (int k = 0; k < 4; k++) cJSON_AddStringToObject(enc, roles[k], dirs[k] ? dirs[k] : "m2u-builtin-v1");
    return o;
}

/* ---- build context ---------------------------------------------------------------------------- */

enum { K_MUCAPS, K_MUSICQA, K_MUEDIT, K_MUIMAGE, K_MUVIDEO };

/* attribute columns of every shard (NaN = not applicable) */
enum {
    A_TEMPO, A_TEMPO_CONF, A_KEY, A_MODE, A_KEY_CONF, A_LUFS, A_LRA, A_CENTROID, A_PERC, A_DYN, A_ONSETS,
    A_VALENCE, A_AROUSAL, A_EDIT_VALUE, A_T_TEMPO, A_T_KEY, A_T_MODE, A_T_LUFS, A_T_CENTROID, A_BRIGHT, A_SAT,
    A_MOTION, A_PROGRAM, A_N
};
static const char *const k_attr_names[A_N] = {
    "tempo_bpm", "tempo_confidence", "key", "mode", "key_confidence", "loudness_lufs", "loudness_range_lu",
    "centroid_hz", "percussiveness", "dynamics_db", "onset_density", "valence", "arousal", "edit_value",
    "target_tempo_bpm", "target_key", "target_mode", "target_loudness_lufs", "target_centroid_hz", "brightness",
    "saturation", "motion", "midi_program"};

enum { T_MERT, T_VIT, T_VIVIT, T_T5, T_IMAGE, T_N };

typedef struct {
    int file;   /* index into records */
    int clip;
    double v, a;
    int split;  /* 0 train 1 valid 2 test */
} pool_entry;

typedef struct {
    const m2u_build_config *c;
    int rank, world;
    const m2u_build_comm *comm;
    char *work, *records_dir, *logs_dir;
    FILE *log;     /* this rank's JSON-lines log */
    FILE *events;  /* this rank's phase-2 events (dropped edits, caption failures), merged by rank 0 */
    m2u_input_list in;
    m2u_record *rec; /* [in.n], phase 2 */
    int *dup_of;     /* [in.n]: index of the file this one duplicates, or -1 */
    double *dup_sim, *dup_agree; /* similarity and change agreement with the file it duplicates */
    pool_entry *pool;
    int n_pool;
    m2u_shard_spec spec;
    m2u_shard_tensor_spec tspec[T_N];
    m2u_shard_writer *w;
    int shard_seq;
    m2u_build_stats *st;
    m2u_captioner *captioner;
    m2u_captioner *llm;
    double t0;
    /* encoders (NULL: built-in features) and the feature shapes */
    m2u_mert *enc_mert;
    m2u_mert_ws mert_ws; /* kept from clip to clip: MERT's buffers are fresh pages otherwise */
    m2u_vit *enc_vit, *enc_vivit;
    m2u_t5_encoder *enc_t5;
    m2u_unigram *t5_tok;
    int mert_rows, mert_dim, vit_rows, vit_dim, vivit_rows, vivit_dim, t5_rows, t5_dim;
    int img_h, img_w, vid_frames, vid_h, vid_w;
    char enc_name[4][256], enc_hash[4][17];
    /* scratch */
    float *mert, *t5, *vit, *vivit;
    /* decoded audio kept from the survey for the samples, per input file (load_audio) */
    struct {
        float *pcm;
        int64_t n;
    } *audio_cache;
    size_t audio_cache_bytes;
} build_ctx;

static double wall(void) { return m2u_now(); }

static void log_event(build_ctx *b, const char *event, cJSON *fields) {
    if (!b->log) {
        cJSON_Delete(fields);
        return;
    }
    cJSON *o = fields ? fields : cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "t", wall() - b->t0);
    cJSON_AddNumberToObject(o, "rank", b->rank);
    cJSON_AddStringToObject(o, "event", event);
    char *s = cJSON_PrintUnformatted(o);
    if (s) fprintf(b->log, "%s\n", s), fflush(b->log);
    free(s);
    cJSON_Delete(o);
}

static void record_event(build_ctx *b, cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    if (s && b->events) fprintf(b->events, "%s\n", s), fflush(b->events);
    free(s);
    cJSON_Delete(o);
}

static int is_midi_path(const char *p) {
    const char *dot = strrchr(p, '.');
    return dot && (!strcasecmp(dot, ".mid") || !strcasecmp(dot, ".midi") || !strcasecmp(dot, ".kar"));
}

static int barrier(build_ctx *b) { return b->comm && b->comm->barrier ? b->comm->barrier(b->comm->ctx) : 0; }
static int all_ok(build_ctx *b, int ok) {
    return b->comm && b->comm->all_ok ? b->comm->all_ok(b->comm->ctx, ok) : ok;
}

static char *path2(const char *dir, const char *name) { return m2u_path_join(dir, name); }

static char *record_path(build_ctx *b, const char *id) {
    char name[64];
    snprintf(name, sizeof name, "%s.json", id);
    return path2(b->records_dir, name);
}

/* Split of a source: from the hash of its id, so a track's clips and all the
 * samples made from them land in one split, on any machine. */
static int split_of(const build_ctx *b, const char *id) {
    double u = m2u_sha256_unit("m2u-split\n", id);
    return u < b->c->test_frac ? 2 : u < b->c->test_frac + b->c->valid_frac ? 1 : 0;
}
static const char *split_name(int s) { return s == 2 ? "test" : s == 1 ? "valid" : "train"; }

static uint64_t sample_seed(const build_ctx *b, const char *sample_id) {
    return m2u_text_seed(sample_id) ^ (b->c->seed * 0x9e3779b97f4a7c15ULL);
}

/* ---- audio of a file (decoded, or rendered MIDI) -------------------------------------------------- */

/* Only what the clips can use is decoded or rendered: with max_clips set, the
 * first (max_clips - 1) * hop + clip seconds (+1 s of slack). */
static int decode_audio(build_ctx *b, const char *path, int program, float **pcm, int64_t *n, int *status) {
    const m2u_build_config *c = b->c;
    double max_s = c->max_clips > 0 ? (c->max_clips - 1) * c->hop_s + c->clip_s + 1 : 0;
    *status = M2U_DECODE_OK;
    if (is_midi_path(path)) {
        m2u_midi_render_opts o = {.soundfont = c->soundfont, .rate = c->audio_rate, .program = program, .max_s = max_s};
        if (m2u_midi_render(path, &o, pcm, n)) {
            *status = M2U_DECODE_CORRUPT;
            return -1;
        }
        /* A render's level is the synthesizer's, not a mastering decision: peak-
         * normalise to -1 dBFS so captions and loudness edits see music at a
         * produced level (the renderer keeps a low gain to avoid clipping). */
        float peak = 0;
        for (int64_t i = 0; i < *n; i++) peak = fabsf((*pcm)[i]) > peak ? fabsf((*pcm)[i]) : peak;
        if (peak > 0) {
            float g = 0.891f / peak;
            for (int64_t i = 0; i < *n; i++) (*pcm)[i] *= g;
        }
        return 0;
    }
    m2u_audio_info info;
    m2u_audio_opts o = {.max_s = max_s};
    int rc = m2u_audio_decode_ex(path, c->audio_rate, &o, pcm, n, &info);
    *status = info.status;
    return rc;
}

/* Input file `file`'s audio (program -1: as it is; else a MIDI file rendered with that
 * General MIDI program) as malloc'd samples.  The survey decodes every file and the samples
 * need most of them again: the first decodes of program -1 are kept in memory, up to
 * audio_cache_mb, and handed out as copies.  Decoding and rendering are deterministic, so a
 * copy has the bytes a new decode would have: the samples are the same either way. */
static int load_audio(build_ctx *b, int file, const char *path, int program, float **pcm, int64_t *n, int *status) {
    int cacheable = program == -1 && file >= 0 && (size_t)file < b->in.n && b->audio_cache;
    if (cacheable && b->audio_cache[file].pcm) {
        size_t bytes = (size_t)b->audio_cache[file].n * sizeof(float);
        *pcm = malloc(bytes ? bytes : 1);
        if (!*pcm) return m2u_fail("%s: out of memory", path);
        memcpy(*pcm, b->audio_cache[file].pcm, bytes);
        *n = b->audio_cache[file].n;
        *status = M2U_DECODE_OK;
        return 0;
    }
    if (decode_audio(b, path, program, pcm, n, status)) return -1;
    size_t bytes = (size_t)*n * sizeof(float);
    if (cacheable && bytes <= b->c->audio_cache_mb * 1048576.0 - (double)b->audio_cache_bytes) {
        float *keep = malloc(bytes ? bytes : 1);
        if (keep) { /* without memory for it the file is decoded again later: not an error */
            memcpy(keep, *pcm, bytes);
            b->audio_cache[file].pcm = keep;
            b->audio_cache[file].n = *n;
            b->audio_cache_bytes += bytes;
        }
    }
    return 0;
}

/* ---- phase 1: survey ------------------------------------------------------------------------------ */

static void rec_fail(m2u_record *r, int status, const char *msg) {
    free(r->status), free(r->message);
    r->status = strdup(m2u_decode_reason(status));
    r->message = strdup(msg ? msg : "");
}

/* one clip's analysis into its own slot (the beat times are not kept) */
typedef struct {
    const float *pcm;
    const m2u_clip *clips;
    int rate;
    m2u_analysis *a;
} clips_job;

static int analyse_clip(void *ctx, int k) {
    clips_job *j = ctx;
    m2u_analysis t;
    if (m2u_analyze(j->pcm + j->clips[k].start, (size_t)(j->clips[k].end - j->clips[k].start), j->rate, &t)) return -1;
    j->a[k] = t;
    j->a[k].beat_s = NULL;
    m2u_analysis_free(&t);
    return 0;
}

/* The clips are analysed side by side where there are threads (a file with one clip runs the
 * analysis's own parts side by side instead); each clip's result is the same either way. */
static int survey_clips(build_ctx *b, const float *pcm, int64_t n, m2u_record *r) {
    const m2u_build_config *c = b->c;
    m2u_clip *clips = NULL;
    size_t nc = 0;
    if (m2u_audio_clips(pcm, n, c->audio_rate, c->clip_s, c->hop_s, c->silence_db, c->min_clip_s, &clips, &nc))
        return -1;
    if (c->max_clips > 0 && nc > (size_t)c->max_clips) nc = (size_t)c->max_clips;
    if (nc > INT_MAX) nc = INT_MAX;
    r->clips = nc ? calloc(nc, sizeof *r->clips) : NULL;
    m2u_analysis *a = nc ? calloc(nc, sizeof *a) : NULL;
    if (nc && (!r->clips || !a)) {
        free(clips), free(a);
        return m2u_fail("survey: out of memory");
    }
    clips_job job = {pcm, clips, c->audio_rate, a};
    int rc = m2u_parallel_tasks((int)nc, analyse_clip, &job);
    /* on a failure, the clips before the first failing one are kept, as a serial loop would */
    for (size_t k = 0; k < nc && a[k].duration_s > 0; k++) {
        m2u_record_clip *rcl = &r->clips[r->n_clips++];
        rcl->start = (double)clips[k].start / c->audio_rate;
        rcl->end = (double)clips[k].end / c->audio_rate;
        rcl->a = a[k];
        b->st->clips++;
    }
    free(clips);
    free(a);
    return rc;
}

static int survey_audio(build_ctx *b, const m2u_input *in, m2u_record *r) {
    float *pcm = NULL;
    int64_t n = 0;
    int status;
    if (is_midi_path(in->path)) {
        m2u_midi_summary s;
        if (m2u_midi_summarize(in->path, &s)) {
            rec_fail(r, M2U_DECODE_CORRUPT, m2u_last_error());
            return 0;
        }
        r->is_midi = 1;
        r->main_program = s.main_program;
        r->drum_notes = s.drum_notes;
    }
    if (load_audio(b, (int)(in - b->in.items), in->path, -1, &pcm, &n, &status)) {
        rec_fail(r, status, m2u_last_error());
        return 0;
    }
    r->duration_s = (double)n / b->c->audio_rate;
    b->st->audio_s += r->duration_s;
    if (survey_clips(b, pcm, n, r)) {
        free(pcm);
        return -1;
    }
    if (r->n_clips == 0) {
        rec_fail(r, r->duration_s < b->c->min_clip_s ? M2U_DECODE_TOO_SHORT : M2U_DECODE_SILENT,
                 r->duration_s < b->c->min_clip_s ? "shorter than min_clip_s" : "no clip above the silence threshold");
    } else if (m2u_fingerprint(pcm, (size_t)n, b->c->audio_rate, 120, &r->fp, &r->fp_len)) {
        free(pcm);
        return -1;
    }
    free(pcm);
    return 0;
}

static void set_visual(m2u_record *r, const m2u_visual_desc *d) {
    r->has_visual = 1;
    r->visual = *d;
    m2u_mood_from_visual(d, &r->valence, &r->arousal);
}

static int survey_image(build_ctx *b, const m2u_input *in, m2u_record *r) {
    uint8_t *rgb = NULL;
    m2u_image_info info;
    int s = b->c->image_size;
    if (m2u_image_load(in->path, s, s, M2U_FIT_CROP, &rgb, &info)) {
        rec_fail(r, info.status, m2u_last_error());
        return 0;
    }
    m2u_visual_desc d;
    int rc = m2u_image_descriptors(rgb, s, s, &d);
    free(rgb);
    if (rc) return -1;
    set_visual(r, &d);
    return 0;
}

static int survey_video(build_ctx *b, const m2u_input *in, m2u_record *r) {
    uint8_t *rgb = NULL;
    m2u_video_info info;
    int s = b->c->image_size, f = b->c->video_frames;
    if (m2u_video_frames(in->path, f, s, s, &rgb, &info)) {
        rec_fail(r, info.status, m2u_last_error());
        return 0;
    }
    m2u_visual_desc d;
    int rc = m2u_video_descriptors(rgb, f, s, s, &d);
    free(rgb);
    if (rc) return -1;
    set_visual(r, &d);
    r->duration_s = info.duration_s;
    if (info.has_audio) {
        /* the soundtrack, when usable, is the video's own music target */
        float *pcm = NULL;
        int64_t n = 0;
        int status;
        if (load_audio(b, (int)(in - b->in.items), in->path, -1, &pcm, &n, &status) == 0) {
            int rc2 = survey_clips(b, pcm, n, r);
            free(pcm);
            if (rc2) return -1;
        }
    }
    return 0;
}

static int survey_file(build_ctx *b, const m2u_input *in) {
    char *rp = record_path(b, in->id);
    if (m2u_file_exists(rp)) { /* resumed: done before */
        free(rp);
        return 0;
    }
    m2u_record r = {0};
    r.id = strdup(in->id), r.path = strdup(in->path), r.rel = strdup(in->rel);
    r.kind = strdup(m2u_media_kind_name(in->kind));
    r.licence = strdup(in->licence ? in->licence : ""), r.attribution = strdup(in->attribution ? in->attribution : "");
    r.source = strdup(in->source && in->source[0] ? in->source : in->rel);
    r.status = strdup("ok"), r.message = strdup("");
    r.main_program = -1;
    double t = wall();
    int rc = 0;
    if (in->size < 0) {
        /* say why: the user's fix differs for a broken link, a pattern, a typo */
        struct stat sb;
        char msg[160];
        if (lstat(in->path, &sb) == 0 && S_ISLNK(sb.st_mode))
            snprintf(msg, sizeof msg, "dangling symbolic link (its target does not exist)");
        else if (strpbrk(in->path, "*?["))
            snprintf(msg, sizeof msg, "the pattern matches no file");
        else
            snprintf(msg, sizeof msg, "file does not exist");
        rec_fail(&r, M2U_DECODE_CANNOT_OPEN, msg);
    }
    else if (in->kind == M2U_KIND_AUDIO)
        rc = survey_audio(b, in, &r);
    else if (in->kind == M2U_KIND_IMAGE)
        rc = survey_image(b, in, &r);
    else if (in->kind == M2U_KIND_VIDEO)
        rc = survey_video(b, in, &r);
    else
        rec_fail(&r, M2U_DECODE_NOT_MEDIA, "unknown media kind");
    if (!rc) rc = m2u_record_write(rp, &r);
    if (!rc) {
        if (strcmp(r.status, "ok")) b->st->files_failed++;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", r.id);
        cJSON_AddStringToObject(o, "path", r.path);
        cJSON_AddStringToObject(o, "status", r.status);
        cJSON_AddNumberToObject(o, "clips", r.n_clips);
        cJSON_AddNumberToObject(o, "seconds", wall() - t);
        log_event(b, "survey", o);
    }
    m2u_record_free(&r);
    free(rp);
    return rc;
}

/* ---- phase 2: global facts --------------------------------------------------------------------------- */

static int rec_ok(const m2u_record *r) { return !strcmp(r->status, "ok"); }

static int load_records(build_ctx *b) {
    b->rec = calloc(b->in.n ? b->in.n : 1, sizeof *b->rec);
    b->dup_of = malloc((b->in.n ? b->in.n : 1) * sizeof *b->dup_of);
    b->dup_sim = calloc(b->in.n ? b->in.n : 1, sizeof *b->dup_sim);
    b->dup_agree = calloc(b->in.n ? b->in.n : 1, sizeof *b->dup_agree);
    for (size_t i = 0; i < b->in.n; i++) {
        b->dup_of[i] = -1;
        char *rp = record_path(b, b->in.items[i].id);
        int rc = m2u_record_read(rp, &b->rec[i]);
        free(rp);
        if (rc) return -1;
    }
    /* near duplicates: the later file (canonical order) goes.  Quadratic in the
     * number of audio files; fine for the tens of thousands a rank handles. */
    for (size_t i = 0; i < b->in.n; i++) {
        if (!rec_ok(&b->rec[i]) || !b->rec[i].fp_len) continue;
        for (size_t j = 0; j < i; j++) {
            if (!rec_ok(&b->rec[j]) || !b->rec[j].fp_len || b->dup_of[j] >= 0) continue;
            m2u_fingerprint_match m;
            m2u_fingerprint_compare(b->rec[i].fp, b->rec[i].fp_len, b->rec[j].fp, b->rec[j].fp_len, &m);
            if (m2u_fingerprint_is_duplicate(&m, b->c->dup_threshold)) {
                b->dup_of[i] = (int)j;
                b->dup_sim[i] = m.similarity;
                b->dup_agree[i] = m.agreement;
                break;
            }
        }
    }
    /* the music pool for pairing: every clip of a kept audio file */
    int cap = 64;
    b->pool = malloc((size_t)cap * sizeof *b->pool);
    for (size_t i = 0; i < b->in.n; i++) {
        const m2u_record *r = &b->rec[i];
        if (!rec_ok(r) || b->dup_of[i] >= 0 || strcmp(r->kind, "audio")) continue;
        for (int k = 0; k < r->n_clips; k++) {
            if (b->n_pool == cap) b->pool = realloc(b->pool, (size_t)(cap *= 2) * sizeof *b->pool);
            pool_entry *p = &b->pool[b->n_pool++];
            p->file = (int)i, p->clip = k;
            m2u_mood_from_analysis(&r->clips[k].a, &p->v, &p->a);
            p->split = split_of(b, r->id);
        }
    }
    return 0;
}

/* ---- phase 2: samples ---------------------------------------------------------------------------------- */

static void music_facts(const m2u_record *r, const m2u_analysis *a, int program, m2u_music_facts *f) {
    f->a = a;
    f->instrument = NULL, f->family = NULL, f->has_drums = -1;
    if (r->is_midi) {
        int p = program >= 0 ? program : r->main_program;
        if (p >= 0) f->instrument = m2u_gm_program_name(p), f->family = m2u_gm_family_name(p);
        f->has_drums = r->drum_notes > 0;
    }
}

static void attrs_from_analysis(float *at, const m2u_analysis *a) {
    double v, ar;
    m2u_mood_from_analysis(a, &v, &ar);
    at[A_TEMPO] = (float)a->tempo_bpm, at[A_TEMPO_CONF] = (float)a->tempo_confidence;
    at[A_KEY] = a->key >= 0 ? (float)a->key : NAN, at[A_MODE] = a->key >= 0 ? (float)a->mode : NAN;
    at[A_KEY_CONF] = (float)a->key_confidence, at[A_LUFS] = (float)a->loudness_lufs;
    at[A_LRA] = (float)a->loudness_range_lu, at[A_CENTROID] = (float)a->centroid_hz;
    at[A_PERC] = (float)a->percussiveness, at[A_DYN] = (float)a->dynamics_db, at[A_ONSETS] = (float)a->onset_density;
    at[A_VALENCE] = (float)v, at[A_AROUSAL] = (float)ar;
}

static void attrs_clear(float *at) {
    for (int k = 0; k < A_N; k++) at[k] = NAN;
}

static char *analysis_text(const m2u_analysis *a) {
    cJSON *o = m2u_analysis_to_json(a);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void to_i16(const float *x, size_t n, int16_t *y) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i] * 32768.0f;
        y[i] = (int16_t)(v > 32767.f ? 32767 : v < -32768.f ? -32768 : lrintf(v));
    }
}

static int open_shard(build_ctx *b) {
    char name[64];
    snprintf(name, sizeof name, "shard-r%03d-%05d.h5", b->rank, b->shard_seq);
    char *p = path2(b->c->out_dir, name);
    int rc = m2u_shard_create(p, &b->spec, &b->w);
    free(p);
    return rc;
}

static int close_shard(build_ctx *b) {
    if (!b->w) return 0;
    int64_t n = m2u_shard_writer_count(b->w);
    int rc = m2u_shard_close(b->w);
    b->w = NULL;
    if (rc) return -1;
    if (b->events) fsync(fileno(b->events));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "shard", b->shard_seq);
    cJSON_AddNumberToObject(o, "samples", (double)n);
    log_event(b, "shard", o);
    b->shard_seq++;
    return 0;
}

typedef struct {
    const char *text[M2U_TEXT_COUNT];
    const float *clip;        /* audio (float) or NULL */
    size_t clip_n;
    const float *target;      /* target audio or NULL */
    size_t target_n;
    double start, end;
    float attrs[A_N];
    const float *tensor[T_N];
} sample_in;

static int put_sample(build_ctx *b, const sample_in *s, int kind) {
    if (!b->w && open_shard(b)) return -1;
    m2u_shard_sample x;
    memset(&x, 0, sizeof x);
    for (int k = 0; k < M2U_TEXT_COUNT; k++) x.text[k] = s->text[k];
    x.clip_start = s->start, x.clip_end = s->end;
    int16_t *a16 = NULL, *t16 = NULL;
    if (s->clip) {
        a16 = malloc(s->clip_n * sizeof *a16);
        to_i16(s->clip, s->clip_n, a16);
        x.audio = a16, x.audio_len = s->clip_n;
    }
    if (s->target) {
        t16 = malloc(s->target_n * sizeof *t16);
        to_i16(s->target, s->target_n, t16);
        x.target_audio = t16, x.target_audio_len = s->target_n;
    }
    x.attrs = s->attrs;
    for (int t = 0; t < T_N; t++) x.tensor[t] = s->tensor[t];
    int rc = m2u_shard_append(b->w, &x);
    free(a16), free(t16);
    if (!rc) b->st->samples[kind]++;
    return rc;
}

/* The caption of clip k of record r: built-in, optionally rewritten by the
 * plugged captioner (a failure keeps the built-in one and is recorded). */
static char *clip_caption(build_ctx *b, const m2u_record *r, int k, const char *sample_id, int use_captioner) {
    m2u_music_facts f;
    music_facts(r, &r->clips[k].a, -1, &f);
    char *cap = m2u_describe_music(&f, sample_seed(b, sample_id));
    if (!use_captioner || !b->captioner || !cap) return cap;
    char *an = analysis_text(&r->clips[k].a);
    m2u_caption_request req = {.id = sample_id, .kind = M2U_MEDIA_AUDIO, .path = r->path, .start_s = r->clips[k].start,
                               .end_s = r->clips[k].end, .analysis_json = an, .caption = cap};
    m2u_caption_reply rep;
    m2u_caption_reply_init(&rep);
    if (m2u_captioner_caption(b->captioner, &req, &rep) == 0 && rep.text && rep.text[0]) {
        free(cap);
        cap = strdup(rep.text);
    } else {
        b->st->caption_failures++;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "sample", sample_id);
        cJSON_AddStringToObject(o, "file", r->path);
        cJSON_AddStringToObject(o, "reason", "captioner-failed");
        cJSON_AddStringToObject(o, "message", rep.error);
        record_event(b, o);
    }
    m2u_caption_reply_free(&rep);
    free(an);
    return cap;
}

/* The instruction of a music-producing sample: built in, or rewritten by the
 * LLM from the target music's caption and analysis.  *instr is replaced only
 * on success; a failure is recorded and the built-in one stays. */
static void llm_instruction(build_ctx *b, const char *sample_id, const char *music_caption, const char *analysis,
                            char **instr) {
    if (!b->llm || !*instr) return;
    m2u_caption_request req = {.id = sample_id, .kind = M2U_MEDIA_TEXT, .analysis_json = analysis,
                               .caption = music_caption};
    m2u_caption_reply rep;
    m2u_caption_reply_init(&rep);
    if (m2u_captioner_caption(b->llm, &req, &rep) == 0 && rep.text && rep.text[0]) {
        free(*instr);
        *instr = strdup(rep.text);
    } else {
        b->st->caption_failures++;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "sample", sample_id);
        cJSON_AddStringToObject(o, "reason", "llm-failed");
        cJSON_AddStringToObject(o, "status", m2u_caption_status_name(rep.status));
        cJSON_AddStringToObject(o, "message", rep.error);
        record_event(b, o);
    }
    m2u_caption_reply_free(&rep);
}

/* ---- features: the encoders', or the built-in ones ------------------------------------------------- */

static int text_target(build_ctx *b, const char *text) {
    if (!b->enc_t5) return m2u_builtin_text(text, b->t5_rows, b->t5_dim, b->t5);
    return m2u_t5_caption_target(b->enc_t5, b->t5_tok, text, strlen(text), b->t5_rows, b->t5, NULL, NULL, NULL);
}

static int music_features(build_ctx *b, const float *clip, size_t n) {
    if (!b->enc_mert) return m2u_builtin_mert(clip, n, b->c->audio_rate, b->mert);
    return m2u_mert_layer_means(b->enc_mert, &b->mert_ws, clip, (long)n, b->mert);
}

static int image_features(build_ctx *b, const uint8_t *rgb) {
    return b->enc_vit ? m2u_vit_features(b->enc_vit, rgb, b->vit) : m2u_builtin_vit(rgb, b->vit);
}

static int video_features(build_ctx *b, const uint8_t *rgb) {
    return b->enc_vivit ? m2u_vit_features(b->enc_vivit, rgb, b->vivit) : m2u_builtin_vivit(rgb, b->vivit);
}

/* The tensor columns' encoder attributes: the checkpoint folder's name and its config.json's hash. */
static int name_encoder(build_ctx *b, int k, const char *dir) {
    if (!dir) {
        snprintf(b->enc_name[k], sizeof b->enc_name[k], "m2u-builtin-v1");
        b->enc_hash[k][0] = 0;
        return 0;
    }
    char *cfg = path2(dir, "config.json"), *text = NULL;
    size_t len;
    int rc = m2u_read_file(cfg, &text, &len);
    free(cfg);
    if (rc) return -1;
    unsigned char d[32];
    m2u_sha256 h;
    m2u_sha256_init(&h);
    m2u_sha256_update(&h, text, len);
    m2u_sha256_final(&h, d);
    free(text);
    for (int i = 0; i < 8; i++) snprintf(b->enc_hash[k] + 2 * i, 3, "%02x", d[i]);
    size_t L = strlen(dir);
    while (L > 1 && dir[L - 1] == '/') L--;
    size_t s0 = L;
    while (s0 > 0 && dir[s0 - 1] != '/') s0--;
    snprintf(b->enc_name[k], sizeof b->enc_name[k], "%.*s", (int)(L - s0), dir + s0);
    return 0;
}

/* Load the configured encoders before any work: a bad checkpoint stops the build at once. */
static int load_encoders(build_ctx *b) {
    const m2u_build_config *c = b->c;
    b->mert_rows = M2U_BUILTIN_MERT_ROWS, b->mert_dim = M2U_BUILTIN_MERT_DIM;
    b->vit_rows = 197, b->vit_dim = 768, b->img_h = b->img_w = c->image_size;
    b->vivit_rows = 3137, b->vivit_dim = 768, b->vid_frames = c->video_frames, b->vid_h = b->vid_w = c->image_size;
    b->t5_rows = c->text_rows, b->t5_dim = c->text_dim;
    if (c->mert_dir) {
        if (m2u_mert_load(c->mert_dir, &b->enc_mert)) return m2u_fail_prefix("build: --mert %s: ", c->mert_dir);
        const m2u_mert_config *mc = m2u_mert_config_of(b->enc_mert);
        if (mc->sampling_rate != c->audio_rate)
            return m2u_fail("build: the MERT checkpoint %s takes %d Hz audio; use --audio-rate %d", c->mert_dir,
                            mc->sampling_rate, mc->sampling_rate);
        b->mert_rows = mc->layers + 1, b->mert_dim = mc->dims.hidden;
    }
    if (c->vit_dir) {
        if (m2u_vit_load(c->vit_dir, &b->enc_vit)) return m2u_fail_prefix("build: --vit %s: ", c->vit_dir);
        const m2u_vit_config *vc = m2u_vit_config_of(b->enc_vit);
        if (vc->video) return m2u_fail("build: --vit %s is a video model (use --vivit)", c->vit_dir);
        b->vit_rows = vc->n_tokens, b->vit_dim = vc->dims.hidden, b->img_h = vc->image_h, b->img_w = vc->image_w;
    }
    if (c->vivit_dir) {
        if (m2u_vit_load(c->vivit_dir, &b->enc_vivit)) return m2u_fail_prefix("build: --vivit %s: ", c->vivit_dir);
        const m2u_vit_config *vc = m2u_vit_config_of(b->enc_vivit);
        if (!vc->video) return m2u_fail("build: --vivit %s is an image model (use --vit)", c->vivit_dir);
        b->vivit_rows = vc->n_tokens, b->vivit_dim = vc->dims.hidden;
        b->vid_frames = vc->frames, b->vid_h = vc->image_h, b->vid_w = vc->image_w;
    }
    if (c->t5_dir) {
        if (m2u_t5_encoder_load(c->t5_dir, NULL, &b->enc_t5)) return m2u_fail_prefix("build: --t5 %s: ", c->t5_dir);
        char *tp = c->t5_tokenizer ? strdup(c->t5_tokenizer) : path2(c->t5_dir, "tokenizer.json");
        int rc = m2u_unigram_load(tp, &b->t5_tok);
        free(tp);
        if (rc) return m2u_fail_prefix("build: T5 tokenizer: ");
        b->t5_dim = m2u_t5_encoder_config(b->enc_t5)->d_model;
    }
    if (!c->vit_dir && (b->img_h != 224 || b->img_w != 224))
        return m2u_fail("build: the built-in ViT features need image_size 224");
    if (!c->vivit_dir && (b->vid_frames != 32 || b->vid_h != 224))
        return m2u_fail("build: the built-in ViViT features need image_size 224 and video_frames 32");
    const char *dirs[4] = {c->mert_dir, c->vit_dir, c->vivit_dir, c->t5_dir};
    for (int k = 0; k < 4; k++)
        if (name_encoder(b, k, dirs[k])) return -1;
    size_t need[4] = {(size_t)b->mert_rows * b->mert_dim, (size_t)b->vit_rows * b->vit_dim,
                      (size_t)b->vivit_rows * b->vivit_dim, (size_t)b->t5_rows * b->t5_dim};
    b->mert = malloc(need[0] * sizeof(float)), b->vit = malloc(need[1] * sizeof(float));
    b->vivit = malloc(need[2] * sizeof(float)), b->t5 = malloc(need[3] * sizeof(float));
    if (!b->mert || !b->vit || !b->vivit || !b->t5) return m2u_fail("build: out of memory for feature buffers");
    return 0;
}

static void free_encoders(build_ctx *b) {
    m2u_mert_free(b->enc_mert);
    m2u_mert_ws_free(&b->mert_ws);
    m2u_vit_free(b->enc_vit);
    m2u_vit_free(b->enc_vivit);
    m2u_t5_encoder_free(b->enc_t5);
    m2u_unigram_free(b->t5_tok);
}

/* One clip's MUEdit target, rendered and analysed (edit_render), then checked and written
 * (make_edit).  The rendering touches nothing shared, so a batch of clips renders side by
 * side (samples_audio); the checks, events and samples follow in clip order. */
typedef struct {
    int kind;        /* m2u_edit_kind, or -1: no edit applies to this clip */
    double value;    /* the edit's parameter */
    float *out;      /* the edited clip */
    size_t out_n;
    m2u_analysis t;  /* its analysis */
} edit_render_out;

static void edit_render_free(edit_render_out *e) {
    free(e->out);
    m2u_analysis_free(&e->t);
    memset(e, 0, sizeof *e);
    e->kind = -1;
}

static int edit_render(const build_ctx *b, const m2u_record *r, int k, const float *clip, size_t n,
                       const float *alt_clip, size_t alt_n, int alt_program, edit_render_out *e) {
    const m2u_build_config *c = b->c;
    const m2u_analysis *a = &r->clips[k].a;
    memset(e, 0, sizeof *e);
    e->kind = -1;
    char id[160];
    snprintf(id, sizeof id, "%s-c%03d-muedit", r->id, k);
    m2u_rng rng;
    m2u_rng_seed(&rng, sample_seed(b, id));
    /* which edits apply: tempo and key need a confident measurement to check against */
    int kinds[M2U_EDIT_COUNT], nk = 0;
    if (a->tempo_bpm > 0 && a->tempo_confidence >= 0.5) kinds[nk++] = M2U_EDIT_TEMPO;
    if (a->key >= 0 && a->key_confidence >= 0.6) kinds[nk++] = M2U_EDIT_KEY;
    if (a->loudness_lufs > -45) kinds[nk++] = M2U_EDIT_LOUDNESS;
    if (alt_clip) kinds[nk++] = M2U_EDIT_INSTRUMENT;
    if (!nk) return 0;
    m2u_edit_kind ek = (m2u_edit_kind)kinds[m2u_rng_next(&rng) % (uint64_t)nk];
    float *out = NULL;
    size_t out_n = 0;
    double value = 0;
    int rc = 0;
    if (ek == M2U_EDIT_TEMPO) {
        static const double ratios[4] = {0.8, 0.87, 1.15, 1.25};
        value = ratios[m2u_rng_next(&rng) % 4];
        rc = m2u_time_stretch(clip, n, c->audio_rate, value, &out, &out_n);
    } else if (ek == M2U_EDIT_KEY) {
        static const int steps[6] = {-3, -2, -1, 1, 2, 3};
        value = steps[m2u_rng_next(&rng) % 6];
        rc = m2u_pitch_shift(clip, n, c->audio_rate, value, &out, &out_n);
    } else if (ek == M2U_EDIT_LOUDNESS) {
        /* louder only with headroom; otherwise quieter */
        static const double gains[4] = {-9, -6, 4, 6};
        value = gains[m2u_rng_next(&rng) % 4];
        if (value > 0 && a->peak_dbfs + value > -1) value = -value;
        out = malloc((n ? n : 1) * sizeof *out);
        if (!out) return m2u_fail("out of memory");
        out_n = n;
        memcpy(out, clip, n * sizeof *out);
        rc = m2u_apply_gain(out, n, value, 0, NULL);
    } else {
        value = alt_program;
        out = malloc((alt_n ? alt_n : 1) * sizeof *out);
        if (!out) return m2u_fail("out of memory");
        out_n = alt_n;
        memcpy(out, alt_clip, alt_n * sizeof *out);
    }
    if (rc || m2u_analyze(out, out_n, c->audio_rate, &e->t)) {
        free(out);
        return -1;
    }
    e->kind = (int)ek, e->value = value, e->out = out, e->out_n = out_n;
    return 0;
}

/* 0: no edit or not confirmed (recorded); 1: a sample; -1: failure.  Takes e's buffers. */
static int make_edit(build_ctx *b, const m2u_record *r, int k, const float *clip, size_t n, int alt_program,
                     const char *src_caption, edit_render_out *e) {
    if (e->kind < 0) return 0;
    const m2u_analysis *a = &r->clips[k].a;
    char id[160];
    snprintf(id, sizeof id, "%s-c%03d-muedit", r->id, k);
    m2u_edit_kind ek = (m2u_edit_kind)e->kind;
    double value = e->value;
    float *out = e->out;
    size_t out_n = e->out_n;
    m2u_analysis t = e->t;
    e->out = NULL, e->t.beat_s = NULL; /* taken */
    e->kind = -1;
    /* does the target's analysis confirm the edit? */
    int ok = 1;
    char why[160] = "";
    double level = 1; /* metrical level the target's tempo was tracked at, relative to the source's */
    if (ek == M2U_EDIT_TEMPO) {
        /* A beat tracker may lock onto half or double the pulse of the stretched
         * clip (analysis.h); that still confirms the stretch, at another level. */
        double got = t.tempo_bpm / a->tempo_bpm;
        static const double levels[3] = {1, 2, 0.5};
        ok = 0;
        for (int l = 0; l < 3 && !ok && t.tempo_bpm > 0; l++)
            if (fabs(got * levels[l] / value - 1) <= 0.08) ok = 1, level = levels[l];
        snprintf(why, sizeof why, "tempo ratio %.3f requested, %.3f measured", value, got);
    } else if (ek == M2U_EDIT_KEY) {
        int want = ((a->key + (int)value) % 12 + 12) % 12;
        ok = t.key == want && t.mode == a->mode;
        snprintf(why, sizeof why, "key %s expected, %s measured", m2u_key_name(want, a->mode),
                 t.key >= 0 ? m2u_key_name(t.key, t.mode) : "none");
    } else if (ek == M2U_EDIT_LOUDNESS) {
        double got = t.loudness_lufs - a->loudness_lufs;
        ok = fabs(got - value) <= 1.0;
        snprintf(why, sizeof why, "gain %.1f dB requested, %.2f LU measured", value, got);
    } else {
        /* same music, other timbre: tempo and key kept, the spectrum moved */
        /* kept up to the metrical level the tracker locks onto (x1/2, x1, x2) */
        int tempo_kept = !(a->tempo_bpm > 0);
        for (double lv = 0.5; lv <= 2 && !tempo_kept && t.tempo_bpm > 0; lv *= 2)
            tempo_kept = fabs(t.tempo_bpm * lv / a->tempo_bpm - 1) <= 0.08;
        int key_kept = a->key < 0 || a->key_confidence < 0.6 || t.key == a->key;
        int timbre = a->centroid_hz > 0 && t.centroid_hz > 0 &&
                     (fabs(log2(t.centroid_hz / a->centroid_hz)) >= 0.1 || fabs(t.percussiveness - a->percussiveness) >= 0.05);
        ok = tempo_kept && key_kept && timbre;
        snprintf(why, sizeof why, "tempo %s, key %s, timbre %s (centroid %.0f -> %.0f Hz)", tempo_kept ? "kept" : "changed",
                 key_kept ? "kept" : "changed", timbre ? "changed" : "unchanged", a->centroid_hz, t.centroid_hz);
    }
    if (!ok) {
        b->st->edits_dropped++;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "sample", id);
        cJSON_AddStringToObject(o, "file", r->path);
        cJSON_AddStringToObject(o, "reason", "edit-unconfirmed");
        cJSON_AddStringToObject(o, "edit", m2u_edit_name(ek));
        cJSON_AddStringToObject(o, "message", why);
        record_event(b, o);
        m2u_analysis_free(&t);
        free(out);
        return 0;
    }
    /* The target's facts: the source's, with what the edit changed as
     * measured (the analysis of untouched properties can wobble between two
     * renders of the same music; the truth is that they did not change). */
    m2u_analysis tf = *a;
    tf.beat_s = NULL;
    if (ek == M2U_EDIT_TEMPO) {
        tf.tempo_bpm = t.tempo_bpm * level, tf.tempo_confidence = t.tempo_confidence;
        tf.duration_s = t.duration_s;
    } else if (ek == M2U_EDIT_KEY) {
        tf.key = t.key, tf.mode = t.mode, tf.key_confidence = t.key_confidence;
        tf.centroid_hz = t.centroid_hz;
    } else if (ek == M2U_EDIT_LOUDNESS) {
        tf.loudness_lufs = t.loudness_lufs, tf.peak_dbfs = t.peak_dbfs;
    } else {
        tf.centroid_hz = t.centroid_hz, tf.percussiveness = t.percussiveness, tf.onset_density = t.onset_density;
        tf.loudness_lufs = t.loudness_lufs, tf.peak_dbfs = t.peak_dbfs;
    }
    m2u_music_facts from, to;
    music_facts(r, a, -1, &from);
    music_facts(r, &tf, ek == M2U_EDIT_INSTRUMENT ? alt_program : -1, &to);
    uint64_t seed = sample_seed(b, id);
    char *instr = m2u_describe_edit(ek, value, &from, &to, seed);
    char *tcap = m2u_describe_music(&to, seed ^ 0x7a);
    char *an = analysis_text(a);
    if (tcap && an) llm_instruction(b, id, tcap, an, &instr);
    sample_in s;
    memset(&s, 0, sizeof s);
    s.text[M2U_TEXT_ID] = id;
    s.text[M2U_TEXT_SOURCE] = r->source, s.text[M2U_TEXT_LICENCE] = r->licence;
    s.text[M2U_TEXT_ATTRIBUTION] = r->attribution;
    s.text[M2U_TEXT_SPLIT] = split_name(split_of(b, r->id));
    s.text[M2U_TEXT_KIND] = "muedit";
    s.text[M2U_TEXT_INSTRUCTION] = instr, s.text[M2U_TEXT_INPUT_TEXT] = src_caption;
    s.text[M2U_TEXT_OUTPUT_TEXT] = tcap, s.text[M2U_TEXT_ANALYSIS] = an;
    s.clip = clip, s.clip_n = n, s.target = out, s.target_n = out_n;
    s.start = r->clips[k].start, s.end = r->clips[k].end;
    attrs_clear(s.attrs);
    attrs_from_analysis(s.attrs, a);
    s.attrs[A_EDIT_VALUE] = (float)value;
    s.attrs[A_T_TEMPO] = (float)tf.tempo_bpm, s.attrs[A_T_KEY] = t.key >= 0 ? (float)t.key : NAN;
    s.attrs[A_T_MODE] = t.key >= 0 ? (float)t.mode : NAN, s.attrs[A_T_LUFS] = (float)t.loudness_lufs;
    s.attrs[A_T_CENTROID] = (float)t.centroid_hz;
    if (r->is_midi) s.attrs[A_PROGRAM] = (float)(ek == M2U_EDIT_INSTRUMENT ? alt_program : r->main_program);
    int rc2 = 0;
    if (instr && tcap && an) {
        rc2 = music_features(b, clip, n) || text_target(b, tcap);
        s.tensor[T_MERT] = b->mert, s.tensor[T_T5] = b->t5;
        if (!rc2) rc2 = put_sample(b, &s, K_MUEDIT);
    } else {
        rc2 = m2u_fail("out of memory");
    }
    free(instr), free(tcap), free(an), free(out);
    m2u_analysis_free(&t);
    return rc2 ? -1 : 1;
}

/* a GM program of another family than the source's, for the instrument edit */
static int other_program(const m2u_record *r, uint64_t seed) {
    static const int choices[8] = {0, 24, 40, 56, 73, 19, 11, 65};
    const char *fam = r->main_program >= 0 ? m2u_gm_family_name(r->main_program) : "";
    for (int t = 0; t < 8; t++) {
        int p = choices[(seed + (uint64_t)t) % 8];
        if (strcmp(m2u_gm_family_name(p), fam)) return p;
    }
    return 0;
}

/* clip k's samples in a file of n samples; 0 when it is empty (the file got shorter) */
static int clip_bounds(const m2u_record *r, int k, int rate, int64_t n, int64_t *s0, int64_t *s1) {
    *s0 = (int64_t)llround(r->clips[k].start * rate);
    *s1 = (int64_t)llround(r->clips[k].end * rate);
    if (*s1 > n) *s1 = n;
    return *s1 > *s0;
}

#define EDIT_BATCH 16 /* clips whose edits are held at once: 16 x 10 s of float at 24 kHz is 15 MB */

typedef struct {
    const build_ctx *b;
    const m2u_record *r;
    const float *pcm, *alt;
    int64_t n, alt_n;
    int alt_program;
    int k0;
    edit_render_out *edits;
} edit_batch_job;

static int edit_batch_task(void *ctx, int j) {
    edit_batch_job *job = ctx;
    int k = job->k0 + j;
    int64_t s0, s1;
    if (!clip_bounds(job->r, k, job->b->c->audio_rate, job->n, &s0, &s1)) return 0;
    const float *aclip = NULL;
    size_t an_n = 0;
    if (job->alt && s0 < job->alt_n) {
        aclip = job->alt + s0;
        an_n = (size_t)((s1 < job->alt_n ? s1 : job->alt_n) - s0);
    }
    return edit_render(job->b, job->r, k, job->pcm + s0, (size_t)(s1 - s0), aclip, an_n, job->alt_program,
                       &job->edits[j]);
}

static int samples_audio(build_ctx *b, int fi) {
    const m2u_record *r = &b->rec[fi];
    const m2u_build_config *c = b->c;
    float *pcm = NULL, *alt = NULL;
    int64_t n = 0, alt_n = 0;
    int status;
    if (load_audio(b, fi, r->path, -1, &pcm, &n, &status)) {
        /* it decoded in phase 1: the file changed under us; record and go on */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", r->path);
        cJSON_AddStringToObject(o, "reason", m2u_decode_reason(status));
        cJSON_AddStringToObject(o, "message", m2u_last_error());
        record_event(b, o);
        return 0;
    }
    int alt_program = -1;
    if ((c->recipes & M2U_RECIPE_MUEDIT) && r->is_midi) {
        alt_program = other_program(r, m2u_text_seed(r->id) ^ c->seed);
        if (load_audio(b, fi, r->path, alt_program, &alt, &alt_n, &status)) alt = NULL, alt_program = -1;
    }
    int rc = 0;
    const char *split = split_name(split_of(b, r->id));
    /* MUEdit's targets are rendered and analysed EDIT_BATCH clips at a time, side by side */
    edit_render_out edits[EDIT_BATCH];
    edit_batch_job job = {.b = b, .r = r, .pcm = pcm, .alt = alt, .n = n, .alt_n = alt_n, .alt_program = alt_program,
                          .edits = edits};
    for (int j = 0; j < EDIT_BATCH; j++) memset(&edits[j], 0, sizeof edits[j]), edits[j].kind = -1;
    for (int k = 0; k < r->n_clips && !rc; k++) {
        const m2u_analysis *a = &r->clips[k].a;
        if ((c->recipes & M2U_RECIPE_MUEDIT) && k % EDIT_BATCH == 0) {
            for (int j = 0; j < EDIT_BATCH; j++) edit_render_free(&edits[j]);
            job.k0 = k;
            int nb = r->n_clips - k < EDIT_BATCH ? r->n_clips - k : EDIT_BATCH;
            if (m2u_parallel_tasks(nb, edit_batch_task, &job)) {
                rc = -1;
                break;
            }
        }
        int64_t s0, s1;
        if (!clip_bounds(r, k, c->audio_rate, n, &s0, &s1)) continue;
        const float *clip = pcm + s0;
        size_t cn = (size_t)(s1 - s0);
        char id[160];
        snprintf(id, sizeof id, "%s-c%03d-mucaps", r->id, k);
        char *cap = clip_caption(b, r, k, id, 1);
        char *an = analysis_text(a);
        if (!cap || !an) {
            free(cap), free(an);
            rc = m2u_fail("out of memory");
            break;
        }
        if (music_features(b, clip, cn)) {
            free(cap), free(an);
            rc = -1;
            break;
        }
        sample_in s;
        memset(&s, 0, sizeof s);
        s.text[M2U_TEXT_SOURCE] = r->source, s.text[M2U_TEXT_LICENCE] = r->licence;
        s.text[M2U_TEXT_ATTRIBUTION] = r->attribution, s.text[M2U_TEXT_SPLIT] = split;
        s.text[M2U_TEXT_ANALYSIS] = an;
        s.start = r->clips[k].start, s.end = r->clips[k].end;
        attrs_clear(s.attrs);
        attrs_from_analysis(s.attrs, a);
        if (r->is_midi) s.attrs[A_PROGRAM] = (float)r->main_program;
        s.tensor[T_MERT] = b->mert;
        if (c->recipes & M2U_RECIPE_MUCAPS) {
            s.text[M2U_TEXT_ID] = id, s.text[M2U_TEXT_KIND] = "mucaps", s.text[M2U_TEXT_CAPTION] = cap;
            s.clip = clip, s.clip_n = cn;
            s.tensor[T_T5] = b->t5;
            rc = text_target(b, cap) || put_sample(b, &s, K_MUCAPS);
            s.clip = NULL, s.tensor[T_T5] = NULL;
        }
        if (!rc && (c->recipes & M2U_RECIPE_MUSICQA)) {
            char qid[160];
            snprintf(qid, sizeof qid, "%s-c%03d-musicqa", r->id, k);
            m2u_music_facts f;
            music_facts(r, a, -1, &f);
            char *q[8] = {0}, *ans[8] = {0};
            int nq = m2u_music_qa(&f, sample_seed(b, qid), c->qa_per_clip < 8 ? c->qa_per_clip : 8, q, ans);
            if (nq < 0) rc = m2u_fail("out of memory");
            for (int j = 0; j < nq; j++) {
                char qidj[176];
                snprintf(qidj, sizeof qidj, "%s%d", qid, j);
                s.text[M2U_TEXT_ID] = qidj, s.text[M2U_TEXT_KIND] = "musicqa", s.text[M2U_TEXT_CAPTION] = cap;
                s.text[M2U_TEXT_INSTRUCTION] = q[j], s.text[M2U_TEXT_ANSWER] = ans[j];
                if (!rc) rc = put_sample(b, &s, K_MUSICQA);
                free(q[j]), free(ans[j]);
            }
            s.text[M2U_TEXT_INSTRUCTION] = s.text[M2U_TEXT_ANSWER] = NULL;
        }
        if (!rc && (c->recipes & M2U_RECIPE_MUEDIT)) {
            int e = make_edit(b, r, k, clip, cn, alt_program, cap, &edits[k % EDIT_BATCH]);
            if (e < 0) rc = -1;
        }
        free(cap), free(an);
    }
    for (int j = 0; j < EDIT_BATCH; j++) edit_render_free(&edits[j]);
    free(pcm), free(alt);
    return rc;
}

/* nearest clips on the mood plane, preferring the visual's own split; one of
 * the 3 nearest, chosen by the sample's seed */
static const pool_entry *pair_music(build_ctx *b, double v, double a, int split, uint64_t seed) {
    if (!b->n_pool) return NULL;
    int any_same = 0;
    for (int i = 0; i < b->n_pool; i++) any_same |= b->pool[i].split == split;
    const pool_entry *best[3] = {0};
    double bd[3] = {INFINITY, INFINITY, INFINITY};
    for (int i = 0; i < b->n_pool; i++) {
        const pool_entry *p = &b->pool[i];
        if (any_same && p->split != split) continue;
        double d = (p->v - v) * (p->v - v) + (p->a - a) * (p->a - a);
        for (int j = 0; j < 3; j++)
            if (d < bd[j]) {
                for (int m = 2; m > j; m--) bd[m] = bd[m - 1], best[m] = best[m - 1];
                bd[j] = d, best[j] = p;
                break;
            }
    }
    int n = best[2] ? 3 : best[1] ? 2 : 1;
    return best[seed % (uint64_t)n];
}

/* audio of a pooled clip (decoded or rendered again: only the clip is kept) */
/* Clip k of input file `file` as malloc'd samples, cut straight from the survey's kept decode
 * when there is one (no copy of the whole file), else from a new decode. */
static int load_clip(build_ctx *b, int file, int k, float **clip, size_t *n) {
    const m2u_record *r = &b->rec[file];
    float *pcm = NULL;
    const float *src;
    int64_t total = 0, s0, s1;
    int status, rc = 0;
    if (b->audio_cache && b->audio_cache[file].pcm) {
        src = b->audio_cache[file].pcm, total = b->audio_cache[file].n;
    } else {
        if (load_audio(b, file, r->path, -1, &pcm, &total, &status)) return -1;
        src = pcm;
    }
    if (!clip_bounds(r, k, b->c->audio_rate, total, &s0, &s1)) {
        rc = m2u_fail("%s: clip %d is outside the decoded audio", r->path, k);
    } else {
        *n = (size_t)(s1 - s0);
        *clip = malloc(*n * sizeof **clip);
        if (*clip) memcpy(*clip, src + s0, *n * sizeof **clip);
        else rc = m2u_fail("%s: out of memory", r->path);
    }
    free(pcm);
    return rc;
}

/* An SPDX licence expression; one with OR or WITH goes in parentheses inside a conjunction. */
static int needs_parens(const char *l) { return strstr(l, " OR ") || strstr(l, " WITH ") || strstr(l, " AND "); }

/* "A AND B" for a sample made of sources under licences a and b (a alone when
 * they are the same); malloc'ed. */
static char *combine_licences(const char *a, const char *b) {
    if (!strcmp(a, b) || !b[0]) return strdup(a);
    if (!a[0]) return strdup(b);
    size_t n = strlen(a) + strlen(b) + 16;
    char *o = malloc(n);
    if (o)
        snprintf(o, n, "%s%s%s AND %s%s%s", needs_parens(a) ? "(" : "", a, needs_parens(a) ? ")" : "",
                 needs_parens(b) ? "(" : "", b, needs_parens(b) ? ")" : "");
    return o;
}

/* "picture: A | music: B": every source credited with its role (B alone when
 * the music is the picture's own soundtrack, the same file); malloc'ed. */
static char *combine_attributions(const char *a, const char *role, const char *b, int same_file) {
    if (same_file) return strdup(a);
    size_t n = strlen(a) + strlen(b) + strlen(role) + 32;
    char *o = malloc(n);
    if (o) snprintf(o, n, "%s: %s | music: %s", role, a[0] ? a : "(none given)", b[0] ? b : "(none given)");
    return o;
}

static int samples_visual(build_ctx *b, int fi, int is_video) {
    const m2u_record *r = &b->rec[fi];
    const m2u_build_config *c = b->c;
    uint8_t *rgb = NULL;
    /* at the feature encoder's input size (the survey's descriptors used image_size) */
    if (is_video) {
        m2u_video_info vi;
        if (m2u_video_frames(r->path, b->vid_frames, b->vid_w, b->vid_h, &rgb, &vi)) return 0;
    } else {
        m2u_image_info ii;
        if (m2u_image_load(r->path, b->img_w, b->img_h, M2U_FIT_CROP, &rgb, &ii)) return 0;
    }
    char id[160];
    snprintf(id, sizeof id, "%s-c000-%s", r->id, is_video ? "muvideo" : "muimage");
    uint64_t seed = sample_seed(b, id);
    int split = split_of(b, r->id);
    float *music = NULL;
    size_t mn = 0;
    char *mcap = NULL;
    const char *music_source = NULL;
    double ms = NAN, me = NAN;
    int rc = 0;
    const m2u_analysis *ma = NULL;
    const m2u_record *mr = NULL;
    int mclip = 0;
    if (is_video && r->n_clips > 0) {
        /* the video's own soundtrack */
        if (load_clip(b, fi, 0, &music, &mn) == 0) {
            mr = r, mclip = 0, ma = &r->clips[0].a;
            ms = r->clips[0].start, me = r->clips[0].end;
        } else {
            music = NULL; /* undecodable or empty: paired with pooled music below */
        }
    }
    if (!music) {
        const pool_entry *p = pair_music(b, r->valence, r->arousal, split, seed);
        if (!p) { /* no music to pair with: nothing to make */
            free(rgb);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "file", r->path);
            cJSON_AddStringToObject(o, "reason", "no-music-to-pair");
            cJSON_AddStringToObject(o, "message", "the build has no usable music clip");
            record_event(b, o);
            return 0;
        }
        if (load_clip(b, p->file, p->clip, &music, &mn)) {
            free(rgb);
            return -1;
        }
        mr = &b->rec[p->file], mclip = p->clip, ma = &mr->clips[p->clip].a;
    }
    music_source = mr->source;
    char mid[160];
    snprintf(mid, sizeof mid, "%s-c%03d-mucaps", mr->id, mclip);
    mcap = clip_caption(b, mr, mclip, mid, 0);
    char phrase[160];
    m2u_visual_phrase(&r->visual, is_video, phrase, sizeof phrase);
    char *req = m2u_describe_visual_request(is_video, seed);
    char *out = m2u_describe_pairing(is_video, phrase, mcap ? mcap : "", r->valence, r->arousal, seed);
    char *an = analysis_text(ma);
    if (mcap && an) llm_instruction(b, id, mcap, an, &req);
    if (!mcap || !req || !out || !an) rc = m2u_fail("out of memory");
    if (!rc) {
        sample_in s;
        memset(&s, 0, sizeof s);
        s.text[M2U_TEXT_ID] = id;
        /* the sample is made of the picture and the music: it carries both
         * licences (an SPDX conjunction: both apply) and both attributions */
        char *lic = combine_licences(r->licence, mr->licence);
        char *attr = combine_attributions(r->attribution, is_video ? "video" : "picture", mr->attribution, mr == r);
        if (!lic || !attr) rc = m2u_fail("out of memory");
        s.text[M2U_TEXT_SOURCE] = r->source, s.text[M2U_TEXT_LICENCE] = lic;
        s.text[M2U_TEXT_ATTRIBUTION] = attr, s.text[M2U_TEXT_SPLIT] = split_name(split);
        s.text[M2U_TEXT_KIND] = is_video ? "muvideo" : "muimage";
        /* the caption describes the picture (stage 1 learns to say it); the
         * music it asks for is in output_text */
        char vcap[200];
        snprintf(vcap, sizeof vcap, "%c%s.", phrase[0] >= 'a' && phrase[0] <= 'z' ? phrase[0] - 32 : phrase[0],
                 phrase[0] ? phrase + 1 : "");
        s.text[M2U_TEXT_CAPTION] = vcap, s.text[M2U_TEXT_INSTRUCTION] = req;
        s.text[M2U_TEXT_OUTPUT_TEXT] = out, s.text[M2U_TEXT_ANALYSIS] = an;
        /* input_text names the music used as the target and where it comes from */
        char src[512];
        snprintf(src, sizeof src, "target music: %s [%.1f-%.1f s]", music_source, mr->clips[mclip].start,
                 mr->clips[mclip].end);
        s.text[M2U_TEXT_INPUT_TEXT] = src;
        s.target = music, s.target_n = mn;
        s.start = ms, s.end = me;
        attrs_clear(s.attrs);
        attrs_from_analysis(s.attrs, ma);
        s.attrs[A_BRIGHT] = (float)r->visual.brightness, s.attrs[A_SAT] = (float)r->visual.saturation;
        s.attrs[A_MOTION] = (float)r->visual.motion;
        s.attrs[A_VALENCE] = (float)r->valence, s.attrs[A_AROUSAL] = (float)r->arousal;
        s.tensor[T_T5] = b->t5;
        if (rc) {
            /* out of memory above */
        } else if (is_video) {
            rc = video_features(b, rgb);
            s.tensor[T_VIVIT] = b->vivit;
        } else {
            rc = image_features(b, rgb);
            s.tensor[T_VIT] = b->vit;
            if (c->store_images) s.tensor[T_IMAGE] = (const float *)(const void *)rgb;
        }
        if (!rc) rc = text_target(b, mcap) || put_sample(b, &s, is_video ? K_MUVIDEO : K_MUIMAGE);
        free(lic), free(attr);
    }
    free(req), free(out), free(an), free(mcap), free(music), free(rgb);
    return rc;
}

/* Which of this rank's files are already in finished shards: the last sample
 * id of the last shard names the last file completed (files are never split
 * across shards).  Leftover temp files of a killed run are removed. */
static int resume_position(build_ctx *b, const size_t *mine, size_t n_mine, size_t *first) {
    *first = 0;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "shard-r%03d-", b->rank);
    DIR *d = opendir(b->c->out_dir);
    if (!d) return m2u_fail("%s: cannot list: %s", b->c->out_dir, strerror(errno));
    struct dirent *e;
    int max_seq = -1;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix))) continue;
        if (strstr(e->d_name, ".tmp.")) {
            char *p = path2(b->c->out_dir, e->d_name);
            unlink(p);
            free(p);
            continue;
        }
        int seq;
        if (sscanf(e->d_name + strlen(prefix), "%d.h5", &seq) == 1 && seq > max_seq) max_seq = seq;
    }
    closedir(d);
    b->shard_seq = max_seq + 1;
    b->st->shards_kept = max_seq + 1;
    if (max_seq < 0) return 0;
    char name[64];
    snprintf(name, sizeof name, "shard-r%03d-%05d.h5", b->rank, max_seq);
    char *p = path2(b->c->out_dir, name);
    m2u_shard_reader *rd;
    int rc = m2u_shard_open(p, &rd);
    free(p);
    if (rc) return -1;
    char *last = NULL;
    int64_t cnt = m2u_shard_count(rd);
    rc = cnt > 0 ? m2u_shard_get_text(rd, M2U_TEXT_ID, cnt - 1, &last, NULL) : m2u_fail("%s: empty shard", name);
    m2u_shard_reader_close(rd);
    if (rc) return -1;
    /* file id = everything before "-c" */
    char *cut = strstr(last, "-c");
    if (cut) *cut = 0;
    for (size_t i = 0; i < n_mine; i++)
        if (!strcmp(b->in.items[mine[i]].id, last)) *first = i + 1;
    free(last);
    if (*first == 0) return m2u_fail("%s: its last sample is from no file of this rank (inputs changed?)", name);
    return 0;
}

/* ---- final files (rank 0) --------------------------------------------------------------------------- */

static int cmp_str(const void *x, const void *y) { return strcmp(*(char *const *)x, *(char *const *)y); }

static int write_manifest(build_ctx *b) {
    DIR *d = opendir(b->c->out_dir);
    if (!d) return m2u_fail("%s: cannot list: %s", b->c->out_dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t L = strlen(e->d_name);
        if (strncmp(e->d_name, "shard-r", 7) || L < 4 || strcmp(e->d_name + L - 3, ".h5")) continue;
        if (n == cap) names = realloc(names, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n > 1) qsort(names, (size_t)n, sizeof *names, cmp_str); /* names is NULL when no shard was made */
    m2u_manifest m;
    m2u_manifest_init(&m);
    cJSON *cfg = m2u_build_config_json(b->c);
    int rc = m2u_manifest_set_config(&m, cfg);
    cJSON_Delete(cfg);
    for (int i = 0; i < n && !rc; i++) {
        m2u_manifest_shard s;
        rc = m2u_manifest_scan_shard(b->c->out_dir, names[i], &s);
        if (!rc) rc = m2u_manifest_add(&m, &s), m2u_manifest_shard_free(&s);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    char *mp = path2(b->c->out_dir, "manifest.json");
    if (!rc) rc = m2u_manifest_write(mp, &m);
    free(mp);
    m2u_manifest_free(&m);
    return rc;
}

/* errors.jsonl: failed files and duplicates from the records, then the
 * ranks' phase-2 events, each once (a resumed rank may repeat an event). */
static int write_errors(build_ctx *b) {
    char *ep = path2(b->c->out_dir, "errors.jsonl");
    m2u_atomic_file af;
    if (m2u_atomic_open(&af, ep)) {
        free(ep);
        return -1;
    }
    free(ep);
    for (size_t i = 0; i < b->in.n; i++) {
        const m2u_record *r = &b->rec[i];
        cJSON *o = NULL;
        if (!rec_ok(r)) {
            o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "file", r->path);
            cJSON_AddStringToObject(o, "id", r->id);
            cJSON_AddStringToObject(o, "reason", r->status);
            cJSON_AddStringToObject(o, "message", r->message);
        } else if (b->dup_of[i] >= 0) {
            o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "file", r->path);
            cJSON_AddStringToObject(o, "id", r->id);
            cJSON_AddStringToObject(o, "reason", "duplicate");
            cJSON_AddStringToObject(o, "of", b->rec[b->dup_of[i]].path);
            cJSON_AddNumberToObject(o, "similarity", b->dup_sim[i]);
            cJSON_AddNumberToObject(o, "agreement", b->dup_agree[i]);
        }
        if (o) {
            char *s = cJSON_PrintUnformatted(o);
            fprintf(af.fp, "%s\n", s);
            free(s);
            cJSON_Delete(o);
        }
    }
    /* phase-2 events of every rank, deduplicated */
    char **seen = NULL;
    int n_seen = 0, cap = 0;
    for (int rk = 0; rk < b->world; rk++) {
        char name[64];
        snprintf(name, sizeof name, "events-r%03d.jsonl", rk);
        char *p = path2(b->work, name);
        FILE *f = fopen(p, "r");
        free(p);
        if (!f) continue;
        char *line = NULL;
        size_t lc = 0;
        ssize_t len;
        while ((len = getline(&line, &lc, f)) > 0) {
            if (line[len - 1] != '\n') continue; /* torn last line of a killed run */
            int dup = 0;
            for (int i = 0; i < n_seen && !dup; i++) dup = !strcmp(seen[i], line);
            if (dup) continue;
            if (n_seen == cap) seen = realloc(seen, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *seen);
            seen[n_seen++] = strdup(line);
            fputs(line, af.fp);
        }
        free(line);
        fclose(f);
    }
    for (int i = 0; i < n_seen; i++) free(seen[i]);
    free(seen);
    return m2u_atomic_commit(&af);
}

/* The message of a build that made no sample: files per reason, from the records. */
static int empty_build_error(build_ctx *b) {
    const char *names[16];
    long counts[16];
    int n = 0;
    long usable = 0, dups = 0;
    for (size_t i = 0; i < b->in.n; i++) {
        const m2u_record *r = &b->rec[i];
        if (rec_ok(r)) {
            if (b->dup_of[i] >= 0) dups++;
            else usable++;
            continue;
        }
        int k = 0;
        while (k < n && strcmp(names[k], r->status)) k++;
        if (k == n && n < 16) names[n] = r->status, counts[n++] = 0;
        if (k < n) counts[k]++;
    }
    char why[512] = "";
    size_t w = 0;
    for (int k = 0; k < n && w < sizeof why; k++)
        w += (size_t)snprintf(why + w, sizeof why - w, "%s%ld %s", k ? ", " : "", counts[k], names[k]);
    if (dups && w < sizeof why) w += (size_t)snprintf(why + w, sizeof why - w, "%s%ld duplicate", w ? ", " : "", dups);
    if (usable && w < sizeof why)
        snprintf(why + w, sizeof why - w, "%s%ld usable file(s) gave no sample (e.g. pictures with no music to pair)",
                 w ? ", " : "", usable);
    return m2u_fail("build: no sample was made from %zu input file(s): %s; see %s/errors.jsonl", b->in.n, why,
                    b->c->out_dir);
}

/* ---- setup ------------------------------------------------------------------------------------------ */

static int check_config(const m2u_build_config *c) {
    if (!c->out_dir || !c->out_dir[0]) return m2u_fail("build: no output folder");
    if (c->n_inputs <= 0) return m2u_fail("build: no inputs");
    if (c->audio_rate < 8000 || c->audio_rate > 192000) return m2u_fail("build: audio_rate %d out of 8000..192000", c->audio_rate);
    if (!(c->clip_s > 0) || !(c->hop_s > 0) || c->min_clip_s > c->clip_s)
        return m2u_fail("build: clip_s and hop_s must be > 0 and min_clip_s <= clip_s");
    if (c->image_size < 16 || c->video_frames < 1) return m2u_fail("build: image_size >= 16 and video_frames >= 1");
    if (c->text_rows < 1 || c->text_dim < 1) return m2u_fail("build: text_rows and text_dim must be >= 1");
    if (c->shard_size < 1) return m2u_fail("build: shard_size must be >= 1");
    if (c->valid_frac < 0 || c->test_frac < 0 || c->valid_frac + c->test_frac >= 1)
        return m2u_fail("build: valid_frac + test_frac must be in [0, 1)");
    return 0;
}

/* build.json: the configuration + world size of the build in this folder. */
static int check_state(build_ctx *b) {
    cJSON *cfg = m2u_build_config_json(b->c);
    cJSON_AddNumberToObject(cfg, "world", b->world);
    char *want = cJSON_PrintUnformatted(cfg);
    cJSON_Delete(cfg);
    char *sp = path2(b->work, "build.json");
    int rc = 0;
    char *have = NULL;
    size_t len;
    if (m2u_file_exists(sp)) {
        if (m2u_read_file(sp, &have, &len) == 0 && strcmp(have, want))
            rc = m2u_fail("%s: this folder holds a build with other settings (or another number of ranks); "
                          "use a new output folder, the same settings, or --overwrite",
                          b->c->out_dir);
    } else if (b->rank == 0) {
        rc = m2u_write_file_atomic(sp, want, strlen(want));
    }
    free(have), free(want), free(sp);
    return rc;
}

static void spec_setup(build_ctx *b) {
    const m2u_build_config *c = b->c;
    m2u_shard_tensor_spec *t = b->tspec;
    t[T_MERT] = (m2u_shard_tensor_spec){.name = "mert", .dtype = M2U_F16, .rank = 2, .dims = {b->mert_rows, b->mert_dim},
                                         .encoder = b->enc_name[0], .config_hash = b->enc_hash[0]};
    t[T_VIT] = (m2u_shard_tensor_spec){.name = "vit", .dtype = M2U_F16, .rank = 2, .dims = {b->vit_rows, b->vit_dim},
                                        .encoder = b->enc_name[1], .config_hash = b->enc_hash[1]};
    t[T_VIVIT] = (m2u_shard_tensor_spec){.name = "vivit", .dtype = M2U_F16, .rank = 2,
                                          .dims = {b->vivit_rows, b->vivit_dim}, .encoder = b->enc_name[2],
                                          .config_hash = b->enc_hash[2]};
    t[T_T5] = (m2u_shard_tensor_spec){.name = "t5", .dtype = M2U_F16, .rank = 2, .dims = {b->t5_rows, b->t5_dim},
                                       .encoder = b->enc_name[3], .config_hash = b->enc_hash[3]};
    t[T_IMAGE] = (m2u_shard_tensor_spec){.name = "image", .dtype = M2U_U8, .rank = 3, .dims = {b->img_h, b->img_w, 3}};
    b->spec = (m2u_shard_spec){.audio_rate = c->audio_rate, .target_audio = 1, .n_attrs = A_N,
                               .attr_names = k_attr_names, .n_tensors = T_N, .tensors = t,
                               .zstd_level = c->zstd_level, .shuffle = 1};
}

int m2u_build_run(const m2u_build_config *c, const m2u_build_comm *comm, m2u_build_stats *stats) {
    m2u_build_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    if (check_config(c)) return -1;
    build_ctx b;
    memset(&b, 0, sizeof b);
    b.c = c, b.comm = comm, b.st = stats, b.t0 = wall();
    b.rank = comm ? comm->rank : 0, b.world = comm && comm->world > 0 ? comm->world : 1;
    int rc = 0;
    /* the inputs, in the canonical order every rank computes alike, and the
     * encoders: refused here, before the output folder is touched */
    m2u_input_opts io = {.kinds = M2U_KIND_ALL, .default_licence = c->default_licence,
                         .default_attribution = c->default_attribution, .strict = c->strict};
    for (int i = 0; i < c->n_inputs && !rc; i++) rc = m2u_inputs_add(&b.in, c->inputs[i], &io);
    if (!rc) rc = m2u_inputs_finish(&b.in);
    if (!rc && b.in.n == 0) rc = m2u_fail("build: the inputs list no media file");
    if (!rc && c->audio_cache_mb > 0 && !(b.audio_cache = calloc(b.in.n, sizeof *b.audio_cache)))
        rc = m2u_fail("build: out of memory");
    if (!rc) rc = load_encoders(&b);
    if (!all_ok(&b, rc == 0)) goto done_err;
    if (c->overwrite && b.rank == 0 && m2u_is_dir(c->out_dir)) m2u_rm_tree(c->out_dir);
    if (barrier(&b)) {
        rc = m2u_fail("build: barrier failed");
        goto done_err;
    }
    b.work = path2(c->out_dir, "work");
    b.records_dir = path2(b.work, "records");
    b.logs_dir = path2(c->out_dir, "logs");
    if (m2u_mkdir_p(b.records_dir) || m2u_mkdir_p(b.logs_dir)) rc = -1;
    if (!all_ok(&b, rc == 0)) rc = rc ? rc : m2u_fail("build: another rank could not create its folders");
    if (!rc) rc = barrier(&b) || check_state(&b);
    if (!all_ok(&b, rc == 0) && !rc) rc = m2u_fail("build: another rank refused the output folder");
    char name[64];
    if (!rc) {
        snprintf(name, sizeof name, "build-r%03d.jsonl", b.rank);
        char *lp = path2(b.logs_dir, name);
        b.log = fopen(lp, "a");
        free(lp);
        snprintf(name, sizeof name, "events-r%03d.jsonl", b.rank);
        char *ev = path2(b.work, name);
        b.events = fopen(ev, "a");
        free(ev);
        if (!b.log || !b.events) rc = m2u_fail("%s: cannot write logs: %s", c->out_dir, strerror(errno));
    }
    if (!all_ok(&b, rc == 0)) goto done_err;

    /* ---- phase 1 ---- */
    {
        double t = wall();
        size_t mine = 0;
        for (size_t i = b.rank; i < b.in.n; i += (size_t)b.world) mine++;
        m2u_progress pr;
        if (c->progress && b.rank == 0) m2u_progress_start(&pr, "file", (long)mine);
        log_event(&b, "phase", cJSON_CreateObject());
        size_t done = 0;
        for (size_t i = b.rank; i < b.in.n && !rc; i += (size_t)b.world) {
            rc = survey_file(&b, &b.in.items[i]);
            stats->files++;
            done++;
            if (c->progress && b.rank == 0) {
                char extra[96];
                snprintf(extra, sizeof extra, "survey: %ld clips, %.2f h audio", stats->clips, stats->audio_s / 3600);
                m2u_progress_update(&pr, (long)done, extra);
            }
        }
        if (c->progress && b.rank == 0) m2u_progress_end(&pr, (long)done, "survey done");
        stats->t_survey = wall() - t;
    }
    if (!all_ok(&b, rc == 0)) goto done_err;

    /* ---- phase 2 ---- */
    {
        double t = wall();
        rc = load_records(&b);
        if (!all_ok(&b, rc == 0)) goto done_err;
        for (size_t i = 0; i < b.in.n; i++)
            if (b.dup_of[i] >= 0 && (int)(i % (size_t)b.world) == b.rank) stats->files_duplicate++;
        spec_setup(&b);
        if (c->captioner_cmd) {
            m2u_process_captioner_config pc;
            m2u_process_captioner_config_default(&pc);
            pc.command = c->captioner_cmd;
            if (c->captioner_timeout_s > 0) pc.timeout_s = c->captioner_timeout_s;
            rc = m2u_process_captioner_open(&pc, &b.captioner);
        }
        if (!rc && c->llm_url) {
            m2u_http_captioner_config hc;
            m2u_http_captioner_config_default(&hc);
            hc.base_url = c->llm_url, hc.model = c->llm_model;
            hc.system_template = M2U_INSTRUCTION_SYSTEM, hc.user_template = M2U_INSTRUCTION_TEMPLATE;
            if (c->captioner_timeout_s > 0) hc.timeout_s = c->captioner_timeout_s;
            rc = m2u_http_captioner_open(&hc, &b.llm);
        }
        size_t *mine = malloc((b.in.n / (size_t)b.world + 1) * sizeof *mine), n_mine = 0, first = 0;
        for (size_t i = b.rank; i < b.in.n; i += (size_t)b.world) mine[n_mine++] = i;
        if (!rc) rc = resume_position(&b, mine, n_mine, &first);
        m2u_progress pr;
        if (c->progress && b.rank == 0) m2u_progress_start(&pr, "file", (long)n_mine);
        for (size_t q = first; q < n_mine && !rc; q++) {
            size_t i = mine[q];
            const m2u_record *r = &b.rec[i];
            if (rec_ok(r) && b.dup_of[i] < 0) {
                if (!strcmp(r->kind, "audio"))
                    rc = samples_audio(&b, (int)i);
                else if (!strcmp(r->kind, "image") && (c->recipes & M2U_RECIPE_MUIMAGE))
                    rc = samples_visual(&b, (int)i, 0);
                else if (!strcmp(r->kind, "video") && (c->recipes & M2U_RECIPE_MUVIDEO))
                    rc = samples_visual(&b, (int)i, 1);
            }
            /* close at a file boundary: a finished shard always holds whole files */
            if (!rc && b.w && m2u_shard_writer_count(b.w) >= c->shard_size) rc = close_shard(&b);
            if (c->progress && b.rank == 0) {
                long ns = 0;
                for (int k = 0; k < 5; k++) ns += stats->samples[k];
                char extra[96];
                snprintf(extra, sizeof extra, "samples: %ld, %d shards", ns, b.shard_seq);
                m2u_progress_update(&pr, (long)(q + 1), extra);
            }
            if (c->stop_after_s > 0 && wall() - t > c->stop_after_s) {
                if (b.w) m2u_shard_abort(b.w), b.w = NULL; /* as a kill would leave it */
                rc = m2u_fail("build: stopped after %.1f s as asked (stop_after_s)", c->stop_after_s);
            }
        }
        if (!rc) rc = close_shard(&b);
        if (b.w) m2u_shard_abort(b.w), b.w = NULL;
        if (c->progress && b.rank == 0) m2u_progress_end(&pr, (long)n_mine, "samples done");
        free(mine);
        stats->t_samples = wall() - t;
    }
    if (!all_ok(&b, rc == 0)) goto done_err;

    /* ---- phase 3 ---- */
    if (b.rank == 0) {
        double t = wall();
        fflush(b.events);
        rc = write_manifest(&b);
        if (!rc) rc = write_errors(&b);
        if (!rc) {
            char *mp = path2(c->out_dir, "manifest.json"), *ep = path2(c->out_dir, "errors.jsonl"),
                 *cp = path2(c->out_dir, "README.md");
            rc = m2u_build_write_card(mp, ep, cp, c->verify);
            free(mp), free(ep), free(cp);
        }
        stats->t_final = wall() - t;
    }
    if (!all_ok(&b, rc == 0) && !rc) rc = m2u_fail("build: rank 0 could not write the manifest");
    /* An empty dataset is a failed build, whatever the reason: say why, after
     * errors.jsonl and the card are written for the details.  Rank 0 counts the
     * samples in the manifest it wrote; every rank can summarise the records. */
    if (!rc) {
        int64_t total = 1;
        if (b.rank == 0) {
            char *mp = path2(c->out_dir, "manifest.json");
            m2u_manifest m;
            rc = m2u_manifest_read(mp, &m);
            total = m.total;
            m2u_manifest_free(&m);
            free(mp);
        }
        if (!all_ok(&b, rc == 0 && total > 0) && !rc) rc = empty_build_error(&b);
    }
    {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "ok", rc == 0);
        log_event(&b, "end", o);
    }
    goto done;
done_err:
    if (!rc) rc = m2u_fail("build: stopped because another rank failed");
    else rc = -1;
done:
    if (b.captioner) m2u_captioner_close(b.captioner);
    if (b.llm) m2u_captioner_close(b.llm);
    if (b.log) fclose(b.log);
    if (b.events) fclose(b.events);
    if (b.rec)
        for (size_t i = 0; i < b.in.n; i++) m2u_record_free(&b.rec[i]);
    free(b.rec), free(b.dup_of), free(b.dup_sim), free(b.dup_agree), free(b.pool);
    free(b.mert), free(b.t5), free(b.vit), free(b.vivit);
    if (b.audio_cache)
        for (size_t i = 0; i < b.in.n; i++) free(b.audio_cache[i].pcm);
    free(b.audio_cache);
    free_encoders(&b);
    m2u_inputs_free(&b.in);
    free(b.work), free(b.records_dir), free(b.logs_dir);
    return rc ? -1 : 0;
}
