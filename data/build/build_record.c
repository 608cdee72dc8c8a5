#include "build_record.h"

#include "fileio.h"
#include "json.h" /* m2u_json_whole */
#include "m2u_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void m2u_record_free(m2u_record *r) {
    if (!r) return;
    free(r->id), free(r->path), free(r->rel), free(r->kind), free(r->licence), free(r->attribution);
    free(r->source), free(r->status), free(r->message), free(r->clips), free(r->fp);
    memset(r, 0, sizeof *r);
}

/* JSON has no NaN/inf: non-finite numbers are written as null and read back as NaN */
static void add_num(cJSON *o, const char *k, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

static double get_num(const cJSON *o, const char *k, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsNumber(v)) return v->valuedouble;
    if (cJSON_IsNull(v)) return NAN;
    return dflt;
}

/* An integer field: absent or null gives dflt; anything else must be an integral number
 * in [lo, hi].  The record is m2u's own, but a disk or a hand edit can damage it, and a
 * value outside its type's range must not reach a cast (undefined behaviour) or an index. */
static int get_int(const cJSON *o, const char *k, double dflt, double lo, double hi, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    *out = dflt;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!m2u_json_whole(v, lo, hi)) return -1;
    *out = v->valuedouble;
    return 0;
}

static char *get_str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return strdup(cJSON_IsString(v) ? v->valuestring : "");
}

cJSON *m2u_analysis_to_json(const m2u_analysis *a) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    add_num(o, "duration_s", a->duration_s);
    add_num(o, "tempo_bpm", a->tempo_bpm);
    add_num(o, "tempo_confidence", a->tempo_confidence);
    cJSON_AddNumberToObject(o, "n_beats", (double)a->n_beats);
    add_num(o, "onset_density", a->onset_density);
    cJSON_AddNumberToObject(o, "key", a->key);
    cJSON_AddNumberToObject(o, "mode", a->mode);
    cJSON_AddStringToObject(o, "key_name", a->key >= 0 ? m2u_key_name(a->key, a->mode) : "none");
    add_num(o, "key_confidence", a->key_confidence);
    add_num(o, "tuning_cents", a->tuning_cents);
    add_num(o, "loudness_lufs", a->loudness_lufs);
    add_num(o, "loudness_range_lu", a->loudness_range_lu);
    add_num(o, "peak_dbfs", a->peak_dbfs);
    add_num(o, "centroid_hz", a->centroid_hz);
    add_num(o, "percussiveness", a->percussiveness);
    add_num(o, "dynamics_db", a->dynamics_db);
    double v, ar;
    m2u_mood_from_analysis(a, &v, &ar);
    add_num(o, "valence", v);
    add_num(o, "arousal", ar);
    return o;
}

/* 0, or the name of the first field out of range */
static const char *analysis_from_json(const cJSON *o, m2u_analysis *a) {
    memset(a, 0, sizeof *a);
    double nb, key, mode;
    if (get_int(o, "n_beats", 0, 0, 1e12, &nb)) return "n_beats";
    if (get_int(o, "key", -1, -1, 11, &key)) return "key";
    if (get_int(o, "mode", -1, -1, 1, &mode)) return "mode";
    a->n_beats = (size_t)nb;
    a->key = (int)key;
    a->mode = (int)mode;
    a->duration_s = get_num(o, "duration_s", 0);
    a->tempo_bpm = get_num(o, "tempo_bpm", 0);
    a->tempo_confidence = get_num(o, "tempo_confidence", 0);
    a->onset_density = get_num(o, "onset_density", 0);
    a->key_confidence = get_num(o, "key_confidence", 0);
    a->tuning_cents = get_num(o, "tuning_cents", 0);
    a->loudness_lufs = get_num(o, "loudness_lufs", M2U_LOUDNESS_FLOOR_LUFS);
    a->loudness_range_lu = get_num(o, "loudness_range_lu", 0);
    a->peak_dbfs = get_num(o, "peak_dbfs", M2U_LOUDNESS_FLOOR_LUFS);
    a->centroid_hz = get_num(o, "centroid_hz", 0);
    a->percussiveness = get_num(o, "percussiveness", 0);
    a->dynamics_db = get_num(o, "dynamics_db", 0);
    return NULL;
}

int m2u_record_write(const char *path, const m2u_record *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "path", r->path ? r->path : "");
    cJSON_AddStringToObject(o, "rel", r->rel ? r->rel : "");
    cJSON_AddStringToObject(o, "kind", r->kind ? r->kind : "unknown");
    cJSON_AddStringToObject(o, "licence", r->licence ? r->licence : "");
    cJSON_AddStringToObject(o, "attribution", r->attribution ? r->attribution : "");
    cJSON_AddStringToObject(o, "source", r->source ? r->source : "");
    cJSON_AddStringToObject(o, "status", r->status ? r->status : "ok");
    cJSON_AddStringToObject(o, "message", r->message ? r->message : "");
    add_num(o, "duration_s", r->duration_s);
    if (r->is_midi) {
        cJSON *m = cJSON_AddObjectToObject(o, "midi");
        cJSON_AddNumberToObject(m, "main_program", r->main_program);
        cJSON_AddNumberToObject(m, "drum_notes", (double)r->drum_notes);
    }
    cJSON *clips = cJSON_AddArrayToObject(o, "clips");
    for (int i = 0; i < r->n_clips; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "start", r->clips[i].start);
        cJSON_AddNumberToObject(c, "end", r->clips[i].end);
        cJSON_AddItemToObject(c, "analysis", m2u_analysis_to_json(&r->clips[i].a));
        cJSON_AddItemToArray(clips, c);
    }
    if (r->fp_len) {
        cJSON *fp = cJSON_AddArrayToObject(o, "fp");
        for (size_t i = 0; i < r->fp_len; i++) cJSON_AddItemToArray(fp, cJSON_CreateNumber((double)r->fp[i]));
    }
    if (r->has_visual) {
        cJSON *v = cJSON_AddObjectToObject(o, "visual");
        add_num(v, "brightness", r->visual.brightness);
        add_num(v, "saturation", r->visual.saturation);
        add_num(v, "colorfulness", r->visual.colorfulness);
        add_num(v, "warmth", r->visual.warmth);
        add_num(v, "contrast", r->visual.contrast);
        add_num(v, "motion", r->visual.motion);
        add_num(v, "hue_deg", r->visual.hue_deg);
        add_num(v, "valence", r->valence);
        add_num(v, "arousal", r->arousal);
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) return m2u_fail("%s: out of memory", path);
    int rc = m2u_write_file_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

int m2u_record_read(const char *path, m2u_record *r) {
    memset(r, 0, sizeof *r);
    char *text;
    size_t len;
    if (m2u_read_file(path, &text, &len)) return -1;
    cJSON *o = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(o) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "id")) ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "status"))) {
        cJSON_Delete(o);
        return m2u_fail("%s: not a build record (JSON object with id and status expected)", path);
    }
    r->id = get_str(o, "id"), r->path = get_str(o, "path"), r->rel = get_str(o, "rel"), r->kind = get_str(o, "kind");
    r->licence = get_str(o, "licence"), r->attribution = get_str(o, "attribution"), r->source = get_str(o, "source");
    r->status = get_str(o, "status"), r->message = get_str(o, "message");
    r->duration_s = get_num(o, "duration_s", 0);
    const char *bad = NULL, *oom = NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, "midi");
    if (cJSON_IsObject(m)) {
        double prog, drums;
        r->is_midi = 1;
        if (get_int(m, "main_program", -1, -1, 127, &prog)) bad = "midi.main_program";
        if (get_int(m, "drum_notes", 0, 0, 9e18, &drums)) bad = "midi.drum_notes";
        r->main_program = (int)prog;
        r->drum_notes = (int64_t)drums;
    }
    const cJSON *clips = cJSON_GetObjectItemCaseSensitive(o, "clips");
    int n = cJSON_IsArray(clips) ? cJSON_GetArraySize(clips) : 0;
    if (n && !bad) {
        r->clips = calloc((size_t)n, sizeof *r->clips);
        if (!r->clips) oom = "clips";
        const cJSON *c;
        if (r->clips) cJSON_ArrayForEach(c, clips) {
            m2u_record_clip *rc = &r->clips[r->n_clips++];
            rc->start = get_num(c, "start", 0);
            rc->end = get_num(c, "end", 0);
            /* the clip is cut again from these on a resumed build */
            if (!(rc->start >= 0 && rc->end >= rc->start && isfinite(rc->end))) bad = "clips[].start/end";
            const char *b = analysis_from_json(cJSON_GetObjectItemCaseSensitive(c, "analysis"), &rc->a);
            if (b && !bad) bad = b;
            if (bad) break;
        }
    }
    const cJSON *fp = cJSON_GetObjectItemCaseSensitive(o, "fp");
    if (cJSON_IsArray(fp) && cJSON_GetArraySize(fp) > 0 && !bad && !oom) {
        r->fp = malloc((size_t)cJSON_GetArraySize(fp) * sizeof *r->fp);
        if (!r->fp) oom = "fp";
        const cJSON *x;
        if (r->fp) cJSON_ArrayForEach(x, fp) {
            if (!m2u_json_whole(x, 0, UINT32_MAX)) { /* chromaprint's sub-fingerprints are unsigned 32-bit */
                bad = "fp[]";
                break;
            }
            r->fp[r->fp_len++] = (uint32_t)x->valuedouble;
        }
    }
    if (bad || oom) {
        cJSON_Delete(o);
        m2u_record_free(r);
        if (oom) return m2u_fail("%s: out of memory for the record's %s", path, oom);
        return m2u_fail("%s: damaged build record: '%s' is out of range (delete the file to redo this input)",
                        path, bad);
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "visual");
    if (cJSON_IsObject(v)) {
        r->has_visual = 1;
        r->visual.brightness = get_num(v, "brightness", 0);
        r->visual.saturation = get_num(v, "saturation", 0);
        r->visual.colorfulness = get_num(v, "colorfulness", 0);
        r->visual.warmth = get_num(v, "warmth", 0);
        r->visual.contrast = get_num(v, "contrast", 0);
        r->visual.motion = get_num(v, "motion", 0);
        r->visual.hue_deg = get_num(v, "hue_deg", -1);
        r->valence = get_num(v, "valence", 0);
        r->arousal = get_num(v, "arousal", 0);
    }
    cJSON_Delete(o);
    return 0;
}
