/* m2u-eval music: generated clips scored against a split (music_gen.h) and
 * the music report (music_report.h), on songs rendered here with known
 * tempo and key (tests/data/test_music.h + the built-in MIDI renderer):
 *   - a dataset of one shard: two mucaps samples (90 bpm D minor with drums,
 *     140 bpm G major with drums), one muedit sample (the 90 bpm song made
 *     1.25x faster: target_tempo_bpm etc. as the builder stores them), one
 *     muimage sample (108 bpm E major, no drums), plus a musicqa and a
 *     train-split mucaps sample that must be left out;
 *   - "good" folder: every sample's own reference clip, named by the file-id
 *     rule: every asked attribute agrees, the edit's tempo agrees, FAD of the
 *     set against itself ~ 0;
 *   - "seed" folder: each song re-rendered with another melody seed at the
 *     same tempo and key: tempo agrees;
 *   - "wrong" folder through predictions.jsonl: the two mucaps clips swapped
 *     (tempo and key disagree), the edit answered with the unedited source
 *     (edited tempo disagrees), the muimage id missing (not measured);
 *   - "noise" folder: white noise: FAD far above the good set's;
 *   - KL and CLAP reported as not measured with a reason, no number; with
 *     --clap (the tiny ClapModel of tests/fixtures/clap) CLAP is measured over
 *     the two mucaps clips only and equals m2u-eval clap's mean on the same
 *     clips and captions;
 *   - the CLI writes music.json with the documented keys, music.md and a
 *     music.html with one playable <audio> (WAV data URI) and one PNG
 *     spectrogram per clip; the PNG decodes (tests/eval/png_min.h) to the
 *     stated size; an embedding budget of 0 links the files instead;
 *   - headless Chromium renders the page (when installed): the spectrogram
 *     colours are on the screenshot. */
#include "analysis.h"
#include "clap_score.h"
#include "wav.h"
#include "eval_report.h"
#include "fileio.h"
#include "m2u_error.h"
#include "manifest.h"
#include "midi_render.h"
#include "music_gen.h"
#include "music_report.h"
#include "png_min.h"
#include "shard.h"
#include "../data/test_music.h" /* tests/data is not on the eval tests' include path */
#include "test_util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RATE 24000

static char g_dir[256];

static char *slurp(const char *path) {
    char *t = NULL;
    size_t n;
    return m2u_read_file(path, &t, &n) == 0 ? t : NULL;
}

/* render a test song to float PCM at RATE */
static float *render(const tm_piece *p, const char *name, size_t *n) {
    char mid[512];
    snprintf(mid, sizeof mid, "%s/%s.mid", g_dir, name);
    if (tm_write(p, mid, NULL)) return NULL;
    m2u_midi_render_opts o = {.soundfont = NULL, .rate = RATE, .program = -1, .max_s = 0};
    float *pcm = NULL;
    int64_t len = 0;
    if (m2u_midi_render(mid, &o, &pcm, &len)) {
        fprintf(stderr, "render %s: %s\n", name, m2u_last_error());
        return NULL;
    }
    *n = (size_t)len;
    return pcm;
}

enum { C_TEMPO, C_TCONF, C_KEY, C_MODE, C_KCONF, C_LUFS, C_CENT, C_PERC, C_VAL, C_AR, C_EDIT, C_TT, C_TK, C_TM, C_TL, C_TC, C_N };
static const char *const k_cols[C_N] = {"tempo_bpm", "tempo_confidence", "key", "mode", "key_confidence", "loudness_lufs",
                                        "centroid_hz", "percussiveness", "valence", "arousal", "edit_value",
                                        "target_tempo_bpm", "target_key", "target_mode", "target_loudness_lufs",
                                        "target_centroid_hz"};

static void attrs_of(const m2u_analysis *a, float *at) {
    double v, ar;
    m2u_mood_from_analysis(a, &v, &ar);
    for (int k = 0; k < C_N; k++) at[k] = NAN;
    at[C_TEMPO] = (float)a->tempo_bpm, at[C_TCONF] = (float)a->tempo_confidence;
    at[C_KEY] = a->key >= 0 ? (float)a->key : NAN, at[C_MODE] = a->key >= 0 ? (float)a->mode : NAN;
    at[C_KCONF] = (float)a->key_confidence, at[C_LUFS] = (float)a->loudness_lufs;
    at[C_CENT] = (float)a->centroid_hz, at[C_PERC] = (float)a->percussiveness;
    at[C_VAL] = (float)v, at[C_AR] = (float)ar;
}

static int16_t *to16(const float *x, size_t n) {
    int16_t *y = malloc(n * sizeof *y);
    for (size_t i = 0; y && i < n; i++) {
        double v = x[i] * 32767.0;
        y[i] = (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : lrint(v));
    }
    return y;
}

static int wav(const char *dir, const char *leaf, const float *pcm, size_t n) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, leaf);
    int rc = m2u_wav_write_pcm16(p, pcm, n, RATE);
    if (rc) fprintf(stderr, "%s\n", m2u_last_error());
    return rc;
}

/* the clips (and their analyses) of the test */
enum { P_A, P_B, P_C, P_E, P_A2, P_B2, P_C2, P_E2, P_N };
static float *g_pcm[P_N];
static size_t g_n[P_N];
static m2u_analysis g_an[P_N];

static int make_audio(void) {
    tm_piece ps[P_N] = {
        {90, 2, M2U_MIDI_MINOR, 0, 0, 33, 0, 1, 6, 1},      {140, 7, M2U_MIDI_MAJOR, 0, 73, 33, 1, 1, 8, 2},
        {108, 4, M2U_MIDI_MAJOR, 48, 0, 32, 0, 0, 6, 3},    {112.5, 2, M2U_MIDI_MINOR, 0, 0, 33, 0, 1, 6, 1},
        {90, 2, M2U_MIDI_MINOR, 0, 0, 33, 0, 1, 6, 11},     {140, 7, M2U_MIDI_MAJOR, 0, 73, 33, 1, 1, 8, 12},
        {108, 4, M2U_MIDI_MAJOR, 48, 0, 32, 0, 0, 6, 13},   {112.5, 2, M2U_MIDI_MINOR, 0, 0, 33, 0, 1, 6, 14},
    };
    static const char *const names[P_N] = {"a", "b", "c", "e", "a2", "b2", "c2", "e2"};
    for (int k = 0; k < P_N; k++) {
        g_pcm[k] = render(&ps[k], names[k], &g_n[k]);
        if (!g_pcm[k] || m2u_analyze(g_pcm[k], g_n[k], RATE, &g_an[k])) return -1;
        printf("piece %-2s %6.1f bpm (asked %.1f, conf %.2f) key %d mode %d (conf %.2f) %.1f LUFS centroid %.0f perc %.2f\n",
               names[k], g_an[k].tempo_bpm, ps[k].bpm, g_an[k].tempo_confidence, g_an[k].key, g_an[k].mode,
               g_an[k].key_confidence, g_an[k].loudness_lufs, g_an[k].centroid_hz, g_an[k].percussiveness);
    }
    return 0;
}

/* one shard + manifest in g_dir/data */
static int make_dataset(void) {
    char d[400], p[500];
    snprintf(d, sizeof d, "%s/data", g_dir);
    if (m2u_mkdir_p(d)) return -1;
    m2u_shard_spec spec = {.audio_rate = RATE, .target_audio = 1, .n_attrs = C_N, .attr_names = k_cols};
    m2u_shard_writer *w = NULL;
    snprintf(p, sizeof p, "%s/shard-00000.h5", d);
    if (m2u_shard_create(p, &spec, &w)) return -1;
    struct {
        const char *id, *split, *kind, *caption, *instr;
        int audio, target; /* piece indices, -1 none */
    } S[6] = {
        {"song/a#0", "test", "mucaps", "A relaxed piece in D minor with drums.", "", P_A, -1},
        {"song/b#0", "test", "mucaps", "An upbeat piece in G major.", "", P_B, -1},
        {"song/a#0-c000-muedit", "test", "muedit", "", "Make it 25% faster.", P_A, P_E},
        {"img/c#0", "test", "muimage", "A bright photo.", "Compose music for this picture.", -1, P_C},
        {"song/b#0-qa", "test", "musicqa", "", "What is the tempo?", P_B, -1},
        {"song/c#0-train", "train", "mucaps", "A moderate piece.", "", P_C, -1},
    };
    int rc = 0;
    for (int i = 0; i < 6 && !rc; i++) {
        m2u_shard_sample s;
        memset(&s, 0, sizeof s);
        float at[C_N];
        s.text[M2U_TEXT_ID] = S[i].id, s.text[M2U_TEXT_SPLIT] = S[i].split, s.text[M2U_TEXT_KIND] = S[i].kind;
        s.text[M2U_TEXT_CAPTION] = S[i].caption, s.text[M2U_TEXT_INSTRUCTION] = S[i].instr;
        s.clip_start = 0, s.clip_end = NAN;
        int src = S[i].audio >= 0 ? S[i].audio : S[i].target;
        attrs_of(&g_an[src], at);
        if (S[i].target >= 0 && S[i].audio >= 0) { /* the edit: as build.c's make_edit stores it */
            const m2u_analysis *t = &g_an[S[i].target];
            at[C_EDIT] = 1.25f, at[C_TT] = (float)t->tempo_bpm;
            at[C_TK] = t->key >= 0 ? (float)t->key : NAN, at[C_TM] = t->key >= 0 ? (float)t->mode : NAN;
            at[C_TL] = (float)t->loudness_lufs, at[C_TC] = (float)t->centroid_hz;
            s.text[M2U_TEXT_OUTPUT_TEXT] = "A moderate piece in D minor.";
        }
        s.attrs = at;
        int16_t *a16 = S[i].audio >= 0 ? to16(g_pcm[S[i].audio], g_n[S[i].audio]) : NULL;
        int16_t *t16 = S[i].target >= 0 ? to16(g_pcm[S[i].target], g_n[S[i].target]) : NULL;
        s.audio = a16, s.audio_len = a16 ? g_n[S[i].audio] : 0;
        s.target_audio = t16, s.target_audio_len = t16 ? g_n[S[i].target] : 0;
        rc = m2u_shard_append(w, &s);
        free(a16), free(t16);
    }
    if (rc) {
        m2u_shard_abort(w);
        return -1;
    }
    if (m2u_shard_close(w)) return -1;
    m2u_manifest m;
    m2u_manifest_init(&m);
    m2u_manifest_shard sh0;
    rc = m2u_manifest_scan_shard(d, "shard-00000.h5", &sh0);
    if (!rc) {
        rc = m2u_manifest_add(&m, &sh0);
        m2u_manifest_shard_free(&sh0);
    }
    snprintf(p, sizeof p, "%s/manifest.json", d);
    if (!rc) rc = m2u_manifest_write(p, &m);
    m2u_manifest_free(&m);
    return rc;
}

static int item_index(const m2u_music_eval *e, const char *id) {
    for (int i = 0; i < e->n_items; i++)
        if (!strcmp(e->items[i].id, id)) return i;
    return -1;
}

static int group_index(const m2u_music_eval *e, const char *g) {
    for (int i = 0; i < e->n_groups; i++)
        if (!strcmp(e->group[i], g)) return i;
    return -1;
}

static int run_eval(const char *leaf, m2u_music_eval *e) {
    char gen[400], data[400];
    snprintf(gen, sizeof gen, "%s/%s", g_dir, leaf);
    snprintf(data, sizeof data, "%s/data/manifest.json", g_dir);
    m2u_music_eval_options o = {.gen_dir = gen, .data = data, .layer = -1, .clip_s = 2};
    int rc = m2u_music_eval_run(&o, e);
    if (rc) fprintf(stderr, "music eval %s: %s\n", leaf, m2u_last_error());
    return rc;
}

static void test_scores(void) {
    char d[4][400];
    static const char *const leaves[4] = {"good", "seed", "wrong", "noise"};
    for (int k = 0; k < 4; k++) {
        snprintf(d[k], sizeof d[k], "%s/%s", g_dir, leaves[k]);
        m2u_mkdir_p(d[k]);
    }
    char f[4][128];
    static const char *const ids[4] = {"song/a#0", "song/b#0", "song/a#0-c000-muedit", "img/c#0"};
    for (int k = 0; k < 4; k++) {
        m2u_music_file_id(ids[k], f[k], sizeof f[k]);
        strcat(f[k], ".wav");
    }
    CHECK(!strcmp(f[0], "song_a_0.wav") && !strcmp(f[2], "song_a_0-c000-muedit.wav"), "file ids: %s, %s", f[0], f[2]);
    static const int good[4] = {P_A, P_B, P_E, P_C}, seed[4] = {P_A2, P_B2, P_E2, P_C2};
    int ok = 1;
    for (int k = 0; k < 4; k++)
        ok &= !wav(d[0], f[k], g_pcm[good[k]], g_n[good[k]]) && !wav(d[1], f[k], g_pcm[seed[k]], g_n[seed[k]]);
    /* wrong: swapped mucaps, the unedited source for the edit, no line for the picture */
    ok &= !wav(d[2], "x.wav", g_pcm[P_B], g_n[P_B]) && !wav(d[2], "y.wav", g_pcm[P_A], g_n[P_A]);
    char p[600];
    snprintf(p, sizeof p, "%s/predictions.jsonl", d[2]);
    const char *pj = "{\"id\": \"song/a#0\", \"audio\": \"x.wav\", \"text\": \"Here is a relaxed piece.\"}\n"
                     "{\"id\": \"song/b#0\", \"audio\": \"y.wav\"}\n\n"
                     "{\"id\": \"song/a#0-c000-muedit\", \"audio\": \"y.wav\"}\n";
    ok &= m2u_write_file_atomic(p, pj, strlen(pj)) == 0;
    uint32_t s = 7;
    for (int k = 0; k < 4 && ok; k++) {
        size_t n = 6 * RATE;
        float *x = malloc(n * sizeof *x);
        for (size_t i = 0; i < n; i++) x[i] = 0.3f * ((float)(tm_lcg(&s) % 65536) / 32768.0f - 1.0f);
        ok &= !wav(d[3], f[k], x, n);
        free(x);
    }
    CHECK(ok, "could not write the generated folders");
    if (!ok) return;

    m2u_music_eval e;
    if (run_eval("good", &e) == 0) {
        CHECK(e.n_items == 4 && e.n_generated == 4 && e.rate == RATE, "good: %d items, %d generated", e.n_items,
              e.n_generated);
        /* the same samples (the shard's int16 and the WAV's are equal); what is left is the rounding of
         * tr sqrt over 1024 dimensions of a rank-deficient covariance (test_fad allows 1e-6 of noise's) */
        CHECK(e.fad_measured && fabs(e.fad) < 1e-3, "FAD of the references against themselves: %g", e.fad);
        CHECK(e.fad_ref_clips == e.fad_gen_clips && e.fad_ref_clips >= 20, "%zu / %zu clips of 2 s", e.fad_ref_clips,
              e.fad_gen_clips);
        CHECK(!strcmp(e.fad_embedding, "m2u-builtin-spectral-v1"), "embedding %s", e.fad_embedding);
        long asked = 0;
        for (int a = 0; a < M2U_GA_COUNT; a++) {
            CHECK(e.ag[0].n_correct[a] == e.ag[0].n_asked[a], "good: %s %ld of %ld", m2u_gen_attr_name(a),
                  e.ag[0].n_correct[a], e.ag[0].n_asked[a]);
            asked += e.ag[0].n_asked[a];
        }
        CHECK(e.ag[0].n_asked[M2U_GA_TEMPO] == 4 && asked >= 20, "asked: tempo %ld, all %ld",
              e.ag[0].n_asked[M2U_GA_TEMPO], asked);
        int g = group_index(&e, "edited"), ie = item_index(&e, "song/a#0-c000-muedit");
        CHECK(g > 0 && ie >= 0 && e.items[ie].edit_attr == M2U_GA_TEMPO, "the edit is a tempo edit");
        CHECK(g > 0 && e.ag[g].n_asked[M2U_GA_TEMPO] == 1 && e.ag[g].n_correct[M2U_GA_TEMPO] == 1 &&
                  e.ag[g].n_asked[M2U_GA_KEY] == 0,
              "edited group: the tempo only");
        CHECK(group_index(&e, "mucaps") == 1 && e.group_n[0] == 4 && e.group_n[1] == 2 && group_index(&e, "musicqa") < 0,
              "groups: all, mucaps, ...; musicqa left out");
        CHECK(item_index(&e, "song/c#0-train") < 0 && item_index(&e, "song/b#0-qa") < 0, "train and musicqa left out");
        CHECK(e.kl_reason && strstr(e.kl_reason, "PaSST") && e.clap_reason && strstr(e.clap_reason, "CLAP"),
              "KL / CLAP reasons");
        double good_fad = e.fad;
        /* the run report with a music section (what m2u-eval run writes when it generated music) */
        char rd[500];
        snprintf(rd, sizeof rd, "%s/runrep", g_dir);
        m2u_eval_report rr = {.run_dir = "runs/test", .music = &e};
        CHECK(m2u_eval_report_write(rd, &rr) == 0, "run report with music: %s", m2u_last_error());
        char rp[600];
        snprintf(rp, sizeof rp, "%s/report.json", rd);
        char *rj = slurp(rp);
        cJSON *rjo = rj ? cJSON_Parse(rj) : NULL, *mu = cJSON_GetObjectItem(rjo, "music");
        CHECK(mu && cJSON_GetNumberValue(cJSON_GetObjectItem(mu, "n_generated")) == 4 &&
                  cJSON_GetArraySize(cJSON_GetObjectItem(mu, "items")) == 4,
              "report.json's music");
        cJSON_Delete(rjo);
        free(rj);
        snprintf(rp, sizeof rp, "%s/report.md", rd);
        char *rm = slurp(rp);
        CHECK(rm && strstr(rm, "## Generated music") && strstr(rm, "### Analysis agreement"), "report.md's music");
        free(rm);
        snprintf(rp, sizeof rp, "%s/report.html", rd);
        char *rh = slurp(rp);
        CHECK(rh && strstr(rh, "<h2>Generated music</h2>") && strstr(rh, "section.clip{") &&
                  strstr(rh, "data:audio/wav;base64,") && strstr(rh, "<svg class=\"spectrogram\""),
              "report.html's music section");
        free(rh);
        m2u_music_eval_free(&e);
        if (run_eval("noise", &e) == 0) {
            printf("FAD: good %.3g, noise %.4g\n", good_fad, e.fad);
            CHECK(e.fad_measured && e.fad > 1e-3 && fabs(good_fad) < 1e-6 * e.fad, "noise FAD %g vs %g", e.fad, good_fad);
            CHECK(e.ag[0].n_correct[M2U_GA_TEMPO] == 0 && e.ag[0].n_correct[M2U_GA_KEY] == 0,
                  "noise: tempo %ld, key %ld agree", e.ag[0].n_correct[M2U_GA_TEMPO], e.ag[0].n_correct[M2U_GA_KEY]);
            m2u_music_eval_free(&e);
        }
    }
    if (run_eval("seed", &e) == 0) {
        int g = group_index(&e, "mucaps");
        CHECK(g > 0 && e.ag[g].n_asked[M2U_GA_TEMPO] == 2 && e.ag[g].n_correct[M2U_GA_TEMPO] == 2,
              "another melody at the asked tempo agrees: %ld of %ld", g > 0 ? e.ag[g].n_correct[M2U_GA_TEMPO] : -1,
              g > 0 ? e.ag[g].n_asked[M2U_GA_TEMPO] : -1);
        CHECK(e.fad_measured && e.fad > 0, "another rendering is not the same set: FAD %g", e.fad);
        m2u_music_eval_free(&e);
    }
    if (run_eval("wrong", &e) == 0) {
        int g = group_index(&e, "mucaps"), ge = group_index(&e, "edited"), ii = item_index(&e, "img/c#0"),
            ia = item_index(&e, "song/a#0");
        CHECK(e.n_items == 4 && e.n_generated == 3, "wrong: %d generated", e.n_generated);
        CHECK(g > 0 && e.ag[g].n_asked[M2U_GA_TEMPO] == 2 && e.ag[g].n_correct[M2U_GA_TEMPO] == 0,
              "swapped tempos disagree");
        CHECK(g > 0 && e.ag[g].n_correct[M2U_GA_KEY] == 0, "swapped keys disagree");
        CHECK(ge > 0 && e.ag[ge].n_asked[M2U_GA_TEMPO] == 1 && e.ag[ge].n_correct[M2U_GA_TEMPO] == 0,
              "the unedited source does not do the edit");
        CHECK(ii >= 0 && !e.items[ii].generated && strstr(e.items[ii].why, "predictions.jsonl"), "missing: %s",
              ii >= 0 ? e.items[ii].why : "?");
        CHECK(ia >= 0 && e.items[ia].answer_text && !strcmp(e.items[ia].answer_text, "Here is a relaxed piece."),
              "the answer text");
        /* the missing clip lands in the "not measured" column of its asked tempo class */
        int k = m2u_gen_attr_n_classes(M2U_GA_TEMPO), cls = ii >= 0 ? e.items[ii].asked[M2U_GA_TEMPO] : -1;
        CHECK(cls >= 0 && e.ag[0].confusion[M2U_GA_TEMPO][(size_t)cls * (k + 1) + k] == 1, "confusion: not measured");
        m2u_music_eval_free(&e);
    }
    /* errors: a missing folder, a kind that is not generated */
    m2u_music_eval_options o = {.gen_dir = "/nonexistent/gen", .data = "x", .layer = -1};
    CHECK(m2u_music_eval_run(&o, &e) != 0 && strstr(m2u_last_error(), "/nonexistent/gen"), "missing folder: %s",
          m2u_last_error());
    o.gen_dir = d[0], o.kinds = "mucaps,musicqa";
    CHECK(m2u_music_eval_run(&o, &e) != 0 && strstr(m2u_last_error(), "musicqa"), "musicqa refused: %s", m2u_last_error());
}

/* base64 decoding for the test */
static unsigned char *unb64(const char *s, size_t n, size_t *out_n) {
    unsigned char *o = malloc(n);
    size_t j = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; o && i < n && s[i] != '='; i++) {
        const char *T = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = strchr(T, s[i]);
        if (!p || !s[i]) break;
        acc = acc << 6 | (uint32_t)(p - T), bits += 6;
        if (bits >= 8) bits -= 8, o[j++] = (unsigned char)(acc >> bits);
    }
    *out_n = j;
    return o;
}

static int count_str(const char *h, const char *s) {
    int n = 0;
    for (const char *p = h; (p = strstr(p, s)); p += strlen(s)) n++;
    return n;
}

static void test_cli_and_html(void) {
    char out[400];
    snprintf(out, sizeof out, "%s/rep", g_dir);
    int rc = t_sh("'%s/m2u-eval' music --gen '%s/good' --data '%s/data/manifest.json' --clip 2 --out '%s' > '%s/cli.txt' "
                "2>&1",
                M2U_BUILD_DIR, g_dir, g_dir, out, g_dir);
    CHECK(rc == 0, "m2u-eval music failed (see %s/cli.txt)", g_dir);
    char p[600];
    snprintf(p, sizeof p, "%s/music.json", out);
    char *js = slurp(p);
    cJSON *r = js ? cJSON_Parse(js) : NULL, *m = cJSON_GetObjectItem(r, "music");
    CHECK(m != NULL, "music.json");
    static const char *const keys[] = {"data", "split", "kinds", "generated_dir", "audio_rate", "n_items",
                                       "n_generated", "fad", "kl", "clap_score", "agreement", "items"};
    for (int k = 0; k < (int)(sizeof keys / sizeof *keys); k++)
        CHECK(cJSON_GetObjectItem(m, keys[k]) != NULL, "music.json lacks %s", keys[k]);
    cJSON *kl = cJSON_GetObjectItem(m, "kl");
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(kl, "measured")) && cJSON_IsNull(cJSON_GetObjectItem(kl, "value")) &&
              cJSON_IsString(cJSON_GetObjectItem(kl, "reason")),
          "kl: not measured, null, a reason");
    cJSON *fad = cJSON_GetObjectItem(m, "fad");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(fad, "measured")) &&
              fabs(cJSON_GetNumberValue(cJSON_GetObjectItem(fad, "value"))) < 1e-3,
          "fad in music.json");
    cJSON *tempo = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "agreement"), "all"), "tempo");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(tempo, "rate")) == 1 &&
              cJSON_GetArraySize(cJSON_GetObjectItem(tempo, "confusion")) == 6 &&
              cJSON_GetArraySize(cJSON_GetArrayItem(cJSON_GetObjectItem(tempo, "confusion"), 0)) == 7,
          "tempo agreement: rate 1, 6 x 7 confusion");
    cJSON *it0 = cJSON_GetArrayItem(cJSON_GetObjectItem(m, "items"), 0);
    static const char *const ikeys[] = {"id", "kind", "prompt", "reference_text", "answer_text", "audio", "generated",
                                        "edit_attribute", "duration_s", "asked", "measured", "asked_values",
                                        "measured_values"};
    for (int k = 0; k < (int)(sizeof ikeys / sizeof *ikeys); k++)
        CHECK(cJSON_GetObjectItem(it0, ikeys[k]) != NULL, "item lacks %s", ikeys[k]);
    CHECK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(it0, "prompt")), "A relaxed piece in D minor with drums."),
          "mucaps prompt is the caption");
    cJSON_Delete(r);
    free(js);
    snprintf(p, sizeof p, "%s/music.md", out);
    char *mdt = slurp(p);
    CHECK(mdt && strstr(mdt, "| FAD |") && strstr(mdt, "KL (PaSST) | not measured"), "music.md");
    free(mdt);

    snprintf(p, sizeof p, "%s/music.html", out);
    char *html = slurp(p);
    CHECK(html != NULL, "music.html");
    if (!html) return;
    CHECK(count_str(html, "<section class=\"clip\"") == 4 && count_str(html, "data:audio/wav;base64,") == 4 &&
              count_str(html, "<svg class=\"spectrogram\"") == 4 && count_str(html, "class=\"heatmap\" id=\"music-confusion-") == 7,
          "4 clips with audio and spectrogram, 7 heatmaps");
    CHECK(!strstr(html, "http://") || count_str(html, "http://") == count_str(html, "http://www.w3.org/2000/svg"),
          "no external resources");
    /* the first embedded WAV and PNG decode */
    const char *a = strstr(html, "data:audio/wav;base64,");
    if (a) {
        a += strlen("data:audio/wav;base64,");
        size_t n = strcspn(a, "\""), bn = 0;
        unsigned char *w = unb64(a, n, &bn);
        CHECK(w && bn > 44 && !memcmp(w, "RIFF", 4) && !memcmp(w + 8, "WAVE", 4) &&
                  (w[24] | w[25] << 8 | w[26] << 16) == RATE && bn - 44 == 2 * g_n[P_A],
              "embedded WAV: %zu bytes", bn);
        free(w);
    }
    const char *s = strstr(html, "data:image/png;base64,");
    if (s) {
        s += strlen("data:image/png;base64,");
        size_t n = strcspn(s, "\""), bn = 0;
        unsigned char *png = unb64(s, n, &bn);
        snprintf(p, sizeof p, "%s/spec.png", g_dir);
        FILE *f = fopen(p, "wb");
        if (f) fwrite(png, 1, bn, f), fclose(f);
        free(png);
        uint8_t *rgb = NULL;
        int w = 0, h = 0;
        int prc = png_read(p, &rgb, &w, &h);
        CHECK(prc == 0 && w == 480 && h == 128, "spectrogram PNG: %s %dx%d", prc ? png_err : "", w, h);
        if (prc == 0) {
            /* the bass and low harmonics (bottom rows) are brighter than the top band of 24 kHz audio */
            double lo = 0, hi = 0;
            for (int x = 0; x < w; x++)
                for (int y = 0; y < 8; y++) {
                    const uint8_t *t = rgb + ((size_t)y * w + x) * 3, *b = rgb + ((size_t)(h - 64 + y) * w + x) * 3;
                    hi += t[0] + t[1] + t[2], lo += b[0] + b[1] + b[2];
                }
            CHECK(lo > hi, "spectrogram: low bands %g should outshine the top %g", lo, hi);
            free(rgb);
        }
    }
    /* a budget of 0 bytes: the clips are linked, not embedded */
    rc = t_sh("'%s/m2u-eval' music --gen '%s/good' --data '%s/data/manifest.json' --clip 2 --embed-mb 0 --out '%s/rep0' "
            "> /dev/null 2>&1",
            M2U_BUILD_DIR, g_dir, g_dir, g_dir);
    snprintf(p, sizeof p, "%s/rep0/music.html", g_dir);
    char *h0 = rc == 0 ? slurp(p) : NULL;
    CHECK(h0 && count_str(h0, "data:audio/wav") == 0 && count_str(h0, "class=\"clip-link\"") == 4,
          "--embed-mb 0 links the clips");
    free(h0);
    CHECK(t_sh("'%s/m2u-eval' music --gen '%s/good' > /dev/null 2>&1", M2U_BUILD_DIR, g_dir) == 2, "--data is required");

    if (t_sh("command -v chromium > /dev/null 2>&1") != 0) {
        printf("SKIP rendering check: chromium is not installed (Debian package: chromium)\n");
        free(html);
        return;
    }
    /* the standalone page, and the run report's music section */
    static const char *const pages[2] = {"rep/music.html", "runrep/report.html"};
    for (int pg = 0; pg < 2; pg++) {
    char png[600];
    snprintf(png, sizeof png, "%s/shot%d.png", g_dir, pg);
    rc = t_sh("cd %s && HOME=%s timeout 120 chromium --headless --disable-gpu --no-sandbox --hide-scrollbars "
            "--screenshot=%s --window-size=1000,3000 file://%s/%s > %s/chromium.log 2>&1",
            g_dir, g_dir, png, g_dir, pages[pg], g_dir);
    CHECK(rc == 0, "chromium failed on %s (see %s/chromium.log)", pages[pg], g_dir);
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    int prc = rc == 0 ? png_read(png, &rgb, &w, &h) : -1;
    CHECK(prc == 0, "screenshot of %s: %s", pages[pg], png_err);
    if (prc == 0) {
        long spec = 0, heat = 0;
        for (long i = 0; i < (long)w * h; i++) {
            const uint8_t *px = rgb + i * 3;
            /* the ramp's purple-to-orange middle: red high, green low (nothing else on the page is) */
            spec += px[0] > 120 && px[1] < 110 && px[0] > px[1] + 60;
            heat += px[2] > px[0] + 30 && px[2] > px[1] + 10;
        }
        printf("render %s: %ld spectrogram pixels, %ld heatmap pixels\n", pages[pg], spec, heat);
        CHECK(spec > 4 * 2000, "%s: spectrograms not visible (%ld pixels)", pages[pg], spec);
        CHECK(heat > 2000, "%s: heatmaps not visible (%ld pixels)", pages[pg], heat);
        free(rgb);
    }
    }
    free(html);
}

/* --clap: the mucaps items' cosines and their mean, the same as the clap command's on those pairs */
static void test_clap(void) {
    char out[400], pairs[400];
    snprintf(out, sizeof out, "%s/rep_clap", g_dir);
    snprintf(pairs, sizeof pairs, "%s/clap_pairs.jsonl", g_dir);
    int rc = t_sh("'%s/m2u-eval' music --gen '%s/good' --data '%s/data/manifest.json' --clip 2 --clap '%s/clap/model' "
                "--out '%s' > '%s/cli_clap.txt' 2>&1",
                M2U_BUILD_DIR, g_dir, g_dir, M2U_FIXTURES, out, g_dir);
    CHECK(rc == 0, "m2u-eval music --clap failed (see %s/cli_clap.txt)", g_dir);
    char p[600];
    snprintf(p, sizeof p, "%s/music.json", out);
    char *js = slurp(p);
    cJSON *r = js ? cJSON_Parse(js) : NULL, *m = cJSON_GetObjectItem(r, "music");
    cJSON *clap = cJSON_GetObjectItem(m, "clap_score"), *items = cJSON_GetObjectItem(m, "items");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(clap, "measured")) &&
              cJSON_GetNumberValue(cJSON_GetObjectItem(clap, "clips")) == 2 &&
              cJSON_IsString(cJSON_GetObjectItem(clap, "weights_sha256")),
          "clap_score measured over the 2 mucaps clips");
    /* the same pairs through the clap command's library */
    FILE *f = fopen(pairs, "w");
    int n_scored = 0;
    for (int i = 0; f && i < cJSON_GetArraySize(items); i++) {
        cJSON *it = cJSON_GetArrayItem(items, i), *c = cJSON_GetObjectItem(it, "clap");
        int mucaps = !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(it, "kind")), "mucaps");
        CHECK(mucaps == cJSON_IsNumber(c), "item %d (%s): a cosine only for mucaps", i,
              cJSON_GetStringValue(cJSON_GetObjectItem(it, "kind")));
        if (!mucaps) continue;
        cJSON *line = cJSON_CreateObject();
        cJSON_AddStringToObject(line, "audio", cJSON_GetStringValue(cJSON_GetObjectItem(it, "audio")));
        cJSON_AddStringToObject(line, "caption", cJSON_GetStringValue(cJSON_GetObjectItem(it, "prompt")));
        char *t = cJSON_PrintUnformatted(line);
        fprintf(f, "%s\n", t);
        free(t);
        cJSON_Delete(line);
        n_scored++;
    }
    if (f) fclose(f);
    m2u_clap_scores s;
    CHECK(n_scored == 2 && m2u_clap_score(M2U_FIXTURES "/clap/model", NULL, pairs, &s) == 0, "clap on the pairs: %s",
          m2u_last_error());
    if (n_scored == 2 && s.n == 2) {
        double v = cJSON_GetNumberValue(cJSON_GetObjectItem(clap, "value"));
        CHECK(fabs(v - s.mean) < 1e-12, "music's CLAP %.9g vs clap's %.9g", v, s.mean);
        m2u_clap_scores_free(&s);
    }
    cJSON_Delete(r);
    free(js);
}

/* --vggish / --passt: the reference clips and the generated ones are staged as files (--scored-dir) and
 * the paper's folder scorers run on them: music's FAD equals m2u-eval fad --embed vggish on the staged
 * folders, each reference WAV holds the shard's samples, and the tiny PaSST (whose position table
 * stops at 3.15 s) refuses these longer clips naming the file and the limit. */
static void test_paper_scorers(void) {
    char out[400], sd[400], p[700];
    snprintf(out, sizeof out, "%s/rep_paper", g_dir);
    snprintf(sd, sizeof sd, "%s/scored", g_dir);
    int rc = t_sh("'%s/m2u-eval' music --gen '%s/good' --data '%s/data/manifest.json' --vggish '%s/vggish/vggish_tiny.pth' "
                "--scored-dir '%s' --out '%s' > '%s/cli_vggish.txt' 2>&1",
                M2U_BUILD_DIR, g_dir, g_dir, M2U_FIXTURES, sd, out, g_dir);
    CHECK(rc == 0, "m2u-eval music --vggish failed (see %s/cli_vggish.txt)", g_dir);
    snprintf(p, sizeof p, "%s/music.json", out);
    char *js = slurp(p);
    cJSON *r = js ? cJSON_Parse(js) : NULL, *m = cJSON_GetObjectItem(r, "music");
    cJSON *fad = cJSON_GetObjectItem(m, "fad");
    double v = cJSON_GetNumberValue(cJSON_GetObjectItem(fad, "value"));
    const char *emb = cJSON_GetStringValue(cJSON_GetObjectItem(fad, "embedding"));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(fad, "measured")) && emb && strstr(emb, "VGGish") &&
              cJSON_IsString(cJSON_GetObjectItem(fad, "checkpoint_sha256")) &&
              cJSON_GetNumberValue(cJSON_GetObjectItem(fad, "generated_clips")) == 4,
          "music.json fad: VGGish, measured over 4 clips, with the weights' hash");
    /* the same folders through the fad command */
    rc = t_sh("'%s/m2u-eval' fad --embed vggish --vggish '%s/vggish/vggish_tiny.pth' --ref '%s/ref' --gen '%s/gen' "
            "--out '%s/fad_staged.json' > /dev/null 2> '%s/cli_fad_staged.txt'",
            M2U_BUILD_DIR, M2U_FIXTURES, sd, sd, g_dir, g_dir);
    snprintf(p, sizeof p, "%s/fad_staged.json", g_dir);
    char *js2 = slurp(p);
    cJSON *r2 = js2 ? cJSON_Parse(js2) : NULL;
    double v2 = cJSON_GetNumberValue(cJSON_GetObjectItem(r2, "frechet_distance"));
    CHECK(rc == 0 && v == v2 && isfinite(v), "music's VGGish FAD %.9g vs fad on the staged folders %.9g", v, v2);
    /* a staged reference holds the shard's samples (16-bit at the shard's rate) */
    float *w = NULL;
    size_t nf = 0;
    int ch = 0, rate = 0;
    m2u_wav_format wf;
    snprintf(p, sizeof p, "%s/ref/song_a_0.wav", sd);
    CHECK(m2u_wav_read(p, &w, &nf, &ch, &rate, &wf) == 0 && ch == 1 && rate == RATE && nf > 0,
          "staged reference %s: %s", p, m2u_last_error());
    free(w);
    cJSON_Delete(r2), free(js2);
    cJSON_Delete(r), free(js);
    /* PaSST: the tiny model's position table is shorter than these clips: refused, named */
    rc = t_sh("'%s/m2u-eval' music --gen '%s/good' --data '%s/data/manifest.json' --passt '%s/passt/passt_tiny.pt' "
            "--out '%s/rep_passt' > '%s/cli_passt.txt' 2>&1",
            M2U_BUILD_DIR, g_dir, g_dir, M2U_FIXTURES, g_dir, g_dir);
    snprintf(p, sizeof p, "%s/cli_passt.txt", g_dir);
    char *txt = slurp(p);
    CHECK(rc == 1 && txt && strstr(txt, ".wav") && strstr(txt, "samples"),
          "--passt with clips longer than the model takes: exit 1 naming the file (%d): %s", rc, txt ? txt : "");
    free(txt);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/m2u_musiceval_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    if (access(M2U_MIDI_DEFAULT_SOUNDFONT, R_OK) != 0) {
        printf("SKIP: no soundfont at %s (Debian package fluid-soundfont-gm)\n", M2U_MIDI_DEFAULT_SOUNDFONT);
        CHECK(0, "the soundfont is needed to render the test music");
        return t_finish("test_music_eval");
    }
    int ok = make_audio() == 0;
    CHECK(ok, "rendering the test music: %s", m2u_last_error());
    if (ok) {
        ok = make_dataset() == 0;
        CHECK(ok, "writing the test dataset: %s", m2u_last_error());
    }
    if (ok) {
        test_scores();
        test_cli_and_html();
        test_clap();
        test_paper_scorers();
    }
    for (int k = 0; k < P_N; k++) free(g_pcm[k]), m2u_analysis_free(&g_an[k]);
    if (!t_fail && !getenv("M2U_KEEP_TEST_DIR")) t_sh("rm -rf %s", g_dir);
    else fprintf(stderr, "kept %s for inspection\n", g_dir);
    return t_finish("test_music_eval");
}
