/* The dataset card of a build (build.h): Markdown written from what the
 * shards actually hold, not from what the builder meant to write. */
#include "build.h"

#include "describe.h"
#include "fileio.h"
#include "key.h"
#include "m2u_error.h"
#include "manifest.h"
#include "midi_render.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 64

typedef struct {
    char *name[MAX_ROWS];
    long count[MAX_ROWS];
    int n;
    long other; /* values past MAX_ROWS distinct names */
} tally;

static void tally_add(tally *t, const char *name, long k) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->name[i], name)) {
            t->count[i] += k;
            return;
        }
    if (t->n == MAX_ROWS) {
        t->other += k;
        return;
    }
    t->name[t->n] = strdup(name);
    t->count[t->n++] = k;
}

static void tally_free(tally *t) {
    for (int i = 0; i < t->n; i++) free(t->name[i]);
}

/* rows by count (most first), or by the number the names start with */
static void tally_sort(tally *t, int numeric) {
    for (int i = 1; i < t->n; i++)
        for (int j = i; j > 0; j--) {
            int swap = numeric ? atoi(t->name[j]) < atoi(t->name[j - 1]) : t->count[j] > t->count[j - 1];
            if (!swap) break;
            char *nm = t->name[j];
            long c = t->count[j];
            t->name[j] = t->name[j - 1], t->count[j] = t->count[j - 1];
            t->name[j - 1] = nm, t->count[j - 1] = c;
        }
}

static void bar_table(FILE *f, const char *title, const char *col, const tally *t) {
    long max = 1, total = 0;
    for (int i = 0; i < t->n; i++) max = t->count[i] > max ? t->count[i] : max, total += t->count[i];
    fprintf(f, "\n### %s\n\n| %s | samples | |\n|---|---:|---|\n", title, col);
    for (int i = 0; i < t->n; i++) {
        int w = (int)lround(30.0 * (double)t->count[i] / (double)max);
        fprintf(f, "| %s | %ld | ", t->name[i], t->count[i]);
        for (int k = 0; k < w; k++) fputs("█", f);
        fputs(" |\n", f);
    }
    if (t->other) fprintf(f, "| (other values) | %ld | |\n", t->other);
    if (!t->n) fputs("| (none) | 0 | |\n", f);
}

/* sources: source -> licence, attribution (first seen) */
typedef struct {
    char *source, *licence, *attribution;
    long samples;
} src_row;

int m2u_build_write_card(const char *manifest_path, const char *errors_path, const char *card_path, int verify) {
    m2u_dataset *ds;
    m2u_dataset_options opt = {.no_verify = !verify};
    if (m2u_dataset_open(manifest_path, &opt, &ds)) return -1;
    const m2u_manifest *m = m2u_dataset_manifest(ds);
    static const char *const kinds[5] = {"mucaps", "musicqa", "muedit", "muimage", "muvideo"};
    static const char *const splits[3] = {"train", "valid", "test"};
    long per[5][3] = {{0}};
    double audio_s = 0, target_s = 0;
    tally tempo = {0}, keys = {0}, moods = {0}, loud = {0}, lic = {0}, inst = {0};
    src_row *src = NULL;
    int n_src = 0, cap_src = 0, rc = 0;
    for (int s = 0; s < m->n_shards && !rc; s++) {
        m2u_shard_reader *r;
        if ((rc = m2u_dataset_shard(ds, s, &r))) break;
        int64_t n = m2u_shard_count(r);
        char *col[5];
        const int64_t *off[5];
        size_t nb;
        m2u_text_col which[5] = {M2U_TEXT_KIND, M2U_TEXT_SPLIT, M2U_TEXT_SOURCE, M2U_TEXT_LICENCE,
                                 M2U_TEXT_ATTRIBUTION};
        for (int k = 0; k < 5; k++) col[k] = NULL;
        for (int k = 0; k < 5 && !rc; k++) rc = m2u_shard_text_column(r, which[k], &col[k], &nb, &off[k]);
        int na = m2u_shard_n_attrs(r);
        float *at = malloc(((size_t)na + 1) * sizeof *at);
        int i_tempo = m2u_shard_attr_index(r, "tempo_bpm"), i_key = m2u_shard_attr_index(r, "key");
        int i_mode = m2u_shard_attr_index(r, "mode"), i_lufs = m2u_shard_attr_index(r, "loudness_lufs");
        int i_val = m2u_shard_attr_index(r, "valence"), i_aro = m2u_shard_attr_index(r, "arousal");
        int i_prog = m2u_shard_attr_index(r, "midi_program");
        for (int64_t i = 0; i < n && !rc; i++) {
            char *v[5];
            for (int k = 0; k < 5; k++) {
                size_t L = (size_t)(off[k][i + 1] - off[k][i]);
                v[k] = malloc(L + 1);
                memcpy(v[k], col[k] + off[k][i], L);
                v[k][L] = 0;
            }
            int ki = -1, si = 0;
            for (int k = 0; k < 5; k++)
                if (!strcmp(v[0], kinds[k])) ki = k;
            for (int k = 0; k < 3; k++)
                if (!strcmp(v[1], splits[k])) si = k;
            if (ki >= 0) per[ki][si]++;
            size_t len;
            if (m2u_shard_audio_rate(r) > 0) {
                if (!m2u_shard_audio_len(r, 0, i, &len)) audio_s += (double)len / m2u_shard_audio_rate(r);
                if (m2u_shard_has_target_audio(r) && !m2u_shard_audio_len(r, 1, i, &len))
                    target_s += (double)len / m2u_shard_audio_rate(r);
            }
            int found = -1;
            for (int k = 0; k < n_src && found < 0; k++)
                if (!strcmp(src[k].source, v[2])) found = k;
            if (found < 0) {
                if (n_src == cap_src) src = realloc(src, (size_t)(cap_src = cap_src ? 2 * cap_src : 64) * sizeof *src);
                src[n_src] = (src_row){strdup(v[2]), strdup(v[3]), strdup(v[4]), 0};
                found = n_src++;
                tally_add(&lic, v[3][0] ? v[3] : "(none)", 0);
            }
            src[found].samples++;
            tally_add(&lic, v[3][0] ? v[3] : "(none)", 1);
            /* attribute histograms over the clips' own analysis (MUCaps: one per clip) */
            if (ki == 0 && na > 0 && !m2u_shard_get_attrs(r, i, at)) {
                char b[64];
                if (i_tempo >= 0 && at[i_tempo] >= 240) {
                    tally_add(&tempo, "240+ bpm (a sub-beat pulse; captions do not state it)", 1);
                } else if (i_tempo >= 0 && at[i_tempo] > 0) {
                    int lo = (int)(at[i_tempo] / 20) * 20;
                    snprintf(b, sizeof b, "%d-%d bpm (%s)", lo, lo + 19, m2u_tempo_word(lo + 10));
                    tally_add(&tempo, b, 1);
                } else {
                    tally_add(&tempo, "no steady tempo", 1);
                }
                if (i_key >= 0 && i_mode >= 0 && !isnan(at[i_key]))
                    tally_add(&keys, m2u_key_name((int)at[i_key], (int)at[i_mode]), 1);
                else
                    tally_add(&keys, "no key", 1);
                if (i_val >= 0 && i_aro >= 0) tally_add(&moods, m2u_mood_word(at[i_val], at[i_aro]), 1);
                if (i_lufs >= 0) tally_add(&loud, m2u_loudness_word(at[i_lufs]), 1);
                if (i_prog >= 0 && !isnan(at[i_prog])) {
                    tally_add(&inst, m2u_gm_program_name((int)at[i_prog]), 1);
                }
            }
            for (int k = 0; k < 5; k++) free(v[k]);
        }
        free(at);
        for (int k = 0; k < 5; k++) free(col[k]);
    }
    /* the error report: counts per reason */
    tally reasons = {0};
    long n_err = 0;
    FILE *ef = errors_path ? fopen(errors_path, "r") : NULL;
    if (ef) {
        char *line = NULL;
        size_t lc = 0;
        while (getline(&line, &lc, ef) > 0) {
            cJSON *o = cJSON_Parse(line);
            const cJSON *rs = cJSON_GetObjectItemCaseSensitive(o, "reason");
            tally_add(&reasons, cJSON_IsString(rs) ? rs->valuestring : "?", 1);
            n_err++;
            cJSON_Delete(o);
        }
        free(line);
        fclose(ef);
    }
    m2u_atomic_file af;
    if (!rc) rc = m2u_atomic_open(&af, card_path);
    if (!rc) {
        FILE *f = af.fp;
        long total = 0;
        for (int k = 0; k < 5; k++)
            for (int s = 0; s < 3; s++) total += per[k][s];
        fprintf(f, "# Dataset card\n\nBuilt by `m2u-dataset build` (m2u %s) on %s.  %ld samples in %d shards "
                   "(HDF5, zstd filter 32015; schema in the m2u README), from %d sources.\n",
                m->tool_version ? m->tool_version : "?", m->created ? m->created : "?", total, m->n_shards, n_src);
        fprintf(f, "\nAudio stored: %.2f h of clips and %.2f h of targets (edited or paired music).\n", audio_s / 3600,
                target_s / 3600);
        fputs("\n## Samples per recipe and split\n\n| recipe | train | valid | test | total |\n|---|---:|---:|---:|---:|\n",
              f);
        for (int k = 0; k < 5; k++)
            fprintf(f, "| %s | %ld | %ld | %ld | %ld |\n", kinds[k], per[k][0], per[k][1], per[k][2],
                    per[k][0] + per[k][1] + per[k][2]);
        fputs("\nSplits are by source: every sample made from one track (or image, or video) is in the same "
              "split.\n",
              f);
        fputs("\n## Attributes of the music clips (MUCaps samples)\n\nMeasured by m2u's analysis (tempo: aubio beat "
              "tracking; key: chroma + Krumhansl-Kessler profiles; loudness: EBU R 128), the facts the captions "
              "are written from.\n",
              f);
        tally_sort(&tempo, 1), tally_sort(&keys, 0), tally_sort(&moods, 0), tally_sort(&loud, 0);
        tally_sort(&inst, 0), tally_sort(&lic, 0), tally_sort(&reasons, 0);
        bar_table(f, "Tempo", "tempo", &tempo);
        bar_table(f, "Key", "key", &keys);
        bar_table(f, "Mood (valence / arousal quadrant)", "mood", &moods);
        bar_table(f, "Loudness", "loudness", &loud);
        if (inst.n) bar_table(f, "Lead instrument of MIDI sources (General MIDI program with the most notes)", "instrument", &inst);
        fputs("\n## Licences\n", f);
        bar_table(f, "Samples per licence", "licence", &lic);
        for (int i = 1; i < n_src; i++) /* by name, so the table does not depend on the shard layout */
            for (int j = i; j > 0 && strcmp(src[j].source, src[j - 1].source) < 0; j--) {
                src_row t = src[j];
                src[j] = src[j - 1], src[j - 1] = t;
            }
        fputs("\n### Sources\n\n| source | licence | attribution | samples |\n|---|---|---|---:|\n", f);
        for (int k = 0; k < n_src; k++)
            fprintf(f, "| %s | %s | %s | %ld |\n", src[k].source, src[k].licence[0] ? src[k].licence : "(none)",
                    src[k].attribution, src[k].samples);
        fprintf(f, "\n## Skipped and dropped (%ld entries in errors.jsonl)\n", n_err);
        if (n_err)
            bar_table(f, "Reasons", "reason", &reasons);
        else
            fputs("\nNothing was skipped.\n", f);
        rc = m2u_atomic_commit(&af);
    }
    for (int k = 0; k < n_src; k++) free(src[k].source), free(src[k].licence), free(src[k].attribution);
    free(src);
    tally_free(&tempo), tally_free(&keys), tally_free(&moods), tally_free(&loud), tally_free(&lic);
    tally_free(&inst), tally_free(&reasons);
    m2u_dataset_close(ds);
    return rc;
}
