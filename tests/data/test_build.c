/* m2u-dataset build end to end, on media the test makes:
 *   - three MIDI pieces with known tempo, key and instrument (midi_writer.h),
 *     one of them also rendered to WAV by the fluidsynth CLI (a near duplicate);
 *   - broken files: empty, not media, truncated;
 *   - two images and two videos (one with a soundtrack) made with ffmpeg.
 * Checks: per-recipe counts, unique ids, splits by source, licences, captions
 * naming the MIDI instrument, MUEdit targets confirmed by their attributes,
 * the error report (reasons and the duplicate), the card, a shard read by h5py;
 * then the same build killed with SIGKILL mid-way and resumed, and run on 2
 * MPI ranks, must give exactly the same samples and text. */
#include "build.h"
#include "describe.h"
#include "fileio.h"
#include "key.h"
#include "m2u_error.h"
#include "manifest.h"
#include "test_music.h"
#include "progress.h"
#include "test_util.h"

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DIR M2U_BUILD_DIR "/test_build_work"
#define TOOL M2U_BUILD_DIR "/m2u-dataset"

/* a labelled piece of `bars` bars (tests/data/test_music.h) */
static int write_piece(const char *path, double bpm, int tonic, int mode, int program, int drums) {
    tm_piece p = {.bpm = bpm, .tonic = tonic, .mode = mode, .acc_prog = program, .mel_prog = program, .bass_prog = 33,
                  .drums = drums, .bars = 8, .seed = (uint32_t)(bpm * 10 + tonic)};
    return tm_write(&p, path, NULL);
}

typedef struct {
    char *id, *text; /* text: kind|split|caption|instruction|answer|output_text */
} row;

static int cmp_row(const void *a, const void *b) { return strcmp(((const row *)a)->id, ((const row *)b)->id); }

/* every sample of a build, sorted by id */
static int read_rows(const char *out, row **rows, int64_t *n) {
    char mp[1024];
    snprintf(mp, sizeof mp, "%s/manifest.json", out);
    m2u_dataset *ds;
    if (m2u_dataset_open(mp, NULL, &ds)) return -1;
    *n = m2u_dataset_count(ds);
    *rows = calloc((size_t)*n + 1, sizeof **rows);
    for (int64_t i = 0; i < *n; i++) {
        m2u_sample s;
        if (m2u_dataset_get(ds, i, &s)) {
            m2u_dataset_close(ds);
            return -1;
        }
        (*rows)[i].id = strdup(s.text[M2U_TEXT_ID]);
        size_t L = 64;
        for (int k = 0; k < M2U_TEXT_COUNT; k++) L += s.text_len[k] + 1;
        char *t = malloc(L);
        snprintf(t, L, "%s|%s|%s|%s|%s|%s|%s|%zu|%zu", s.text[M2U_TEXT_KIND], s.text[M2U_TEXT_SPLIT],
                 s.text[M2U_TEXT_CAPTION], s.text[M2U_TEXT_INSTRUCTION], s.text[M2U_TEXT_ANSWER],
                 s.text[M2U_TEXT_OUTPUT_TEXT], s.text[M2U_TEXT_LICENCE], s.audio_len, s.target_audio_len);
        (*rows)[i].text = t;
        m2u_sample_free(&s);
    }
    m2u_dataset_close(ds);
    qsort(*rows, (size_t)*n, sizeof **rows, cmp_row);
    return 0;
}

static void free_rows(row *r, int64_t n) {
    for (int64_t i = 0; i < n; i++) free(r[i].id), free(r[i].text);
    free(r);
}

static int same_rows(const row *a, int64_t na, const row *b, int64_t nb, const char *what) {
    if (na != nb) {
        fprintf(stderr, "%s: %lld samples, reference %lld\n", what, (long long)nb, (long long)na);
        return 0;
    }
    for (int64_t i = 0; i < na; i++)
        if (strcmp(a[i].id, b[i].id) || strcmp(a[i].text, b[i].text)) {
            fprintf(stderr, "%s: sample %lld differs:\n  %s %s\n  %s %s\n", what, (long long)i, a[i].id, a[i].text,
                    b[i].id, b[i].text);
            return 0;
        }
    return 1;
}

static const char *ARGS = "--input " DIR "/media/music.jsonl --input " DIR "/media/other --input " DIR
                          "/media/missing.wav --licence CC0-1.0 "
                          "--attribution 'm2u tests' --audio-rate 16000 --clip 6 --hop 6 --min-clip 3 "
                          "--shard-size 3 --valid 0.34 --test 0 --quiet";

static void make_media(void) {
    t_sh("rm -rf '%s' && mkdir -p '%s/media/other'", DIR, DIR);
    CHECK(write_piece(DIR "/media/piano.mid", 100, 0, M2U_MIDI_MAJOR, 0, 1) == 0, "piano.mid: %s", m2u_last_error());
    CHECK(write_piece(DIR "/media/violin.mid", 132, 9, M2U_MIDI_MINOR, 40, 0) == 0, "violin.mid");
    CHECK(write_piece(DIR "/media/flute.mid", 84, 3, M2U_MIDI_MAJOR, 73, 0) == 0, "flute.mid");
    const char *jl = "{\"path\": \"piano.mid\", \"licence\": \"CC0-1.0\", \"attribution\": \"piano by the test\"}\n"
                     "{\"path\": \"violin.mid\", \"licence\": \"CC-BY-4.0\", \"attribution\": \"violin by the test\"}\n"
                     "{\"path\": \"flute.mid\", \"licence\": \"CC0-1.0\", \"attribution\": \"flute by the test\"}\n";
    CHECK(m2u_write_file_atomic(DIR "/media/music.jsonl", jl, strlen(jl)) == 0, "music.jsonl");
    /* the piano piece again, as audio: a near duplicate the fingerprints must catch */
    CHECK(t_sh("fluidsynth -ni -q -r 22050 -F '%s/media/other/piano_copy.wav' /usr/share/sounds/sf2/FluidR3_GM.sf2 "
             "'%s/media/piano.mid' > /dev/null 2>&1",
             DIR, DIR) == 0,
          "fluidsynth render");
    CHECK(t_sh("cd '%s/media/other' && : > empty.wav && echo 'not audio at all' > notes.mp3 && "
             "ffmpeg -v error -f lavfi -i 'sine=frequency=440:duration=12' -ar 16000 long.wav && "
             "head -c 60000 long.wav > truncated.wav && rm long.wav && "
             "ffmpeg -v error -f lavfi -i 'color=c=0xe03020:s=320x240' -frames:v 1 warm.png && "
             "ffmpeg -v error -f lavfi -i 'mandelbrot=s=320x240' -frames:v 1 fractal.png && "
             "ffmpeg -v error -f lavfi -i 'testsrc2=s=320x240:r=15:d=7' -f lavfi -i "
             "'sine=frequency=330:beep_factor=4:duration=7' -ar 16000 -shortest -pix_fmt yuv420p sound.mp4 && "
             "ffmpeg -v error -f lavfi -i 'life=s=160x120:r=10:mold=10' -t 4 -pix_fmt yuv420p silent.mp4",
             DIR) == 0,
          "ffmpeg media");
    /* a dangling link: must be recorded, not skipped without a word */
    CHECK(t_sh("ln -s '%s/media/nowhere.ogg' '%s/media/other/gone.ogg'", DIR, DIR) == 0, "symlink");
}

static void check_first_build(const char *out) {
    char p[1024];
    snprintf(p, sizeof p, "%s/manifest.json", out);
    m2u_dataset *ds;
    CHECK(m2u_dataset_open(p, NULL, &ds) == 0, "open %s: %s", p, m2u_last_error());
    if (!ds) return;
    int64_t n = m2u_dataset_count(ds);
    long kinds[5] = {0};
    static const char *const kn[5] = {"mucaps", "musicqa", "muedit", "muimage", "muvideo"};
    int caption_inst = 0, mucaps_piano = 0, mucaps_copy = 0, mucaps_midi = 0, edits_checked = 0, t5_ok = 0, mert_diff = 0;
    float *mert0 = malloc(25 * 1024 * sizeof(float)), *mert = malloc(25 * 1024 * sizeof(float));
    float *t5 = malloc(128 * 768 * sizeof(float));
    int have_mert0 = 0;
    /* music sources' licence and attribution, and the picture/video samples' own
     * (checked after the loop: a sample carries its music's licence too) */
    enum { MAXV = 64 };
    char *msrc[MAXV], *mlic[MAXV], *mattr[MAXV], *vmusic[MAXV], *vlic[MAXV], *vattr[MAXV], *vsrc[MAXV];
    int nm = 0, nv = 0;
    for (int64_t i = 0; i < n; i++) {
        m2u_sample s;
        CHECK(m2u_dataset_get(ds, i, &s) == 0, "get %lld", (long long)i);
        const char *k = s.text[M2U_TEXT_KIND];
        for (int j = 0; j < 5; j++)
            if (!strcmp(k, kn[j])) kinds[j]++;
        CHECK(s.text[M2U_TEXT_LICENCE][0], "sample %s has no licence", s.text[M2U_TEXT_ID]);
        const char *src = s.text[M2U_TEXT_SOURCE];
        if (strstr(src, "violin.mid")) CHECK(!strcmp(s.text[M2U_TEXT_LICENCE], "CC-BY-4.0"), "violin licence");
        if (!strcmp(k, "mucaps") && nm < MAXV) {
            int seen = 0;
            for (int j = 0; j < nm; j++) seen |= !strcmp(msrc[j], src);
            if (!seen) {
                msrc[nm] = strdup(src), mlic[nm] = strdup(s.text[M2U_TEXT_LICENCE]);
                mattr[nm++] = strdup(s.text[M2U_TEXT_ATTRIBUTION]);
            }
        }
        if ((!strcmp(k, "muimage") || !strcmp(k, "muvideo")) && nv < MAXV) {
            const char *in = s.text[M2U_TEXT_INPUT_TEXT], *pre = "target music: ";
            const char *end = strstr(in, " [");
            CHECK(!strncmp(in, pre, strlen(pre)) && end, "%s input_text: %s", s.text[M2U_TEXT_ID], in);
            if (end) vmusic[nv] = strndup(in + strlen(pre), (size_t)(end - in - (long)strlen(pre)));
            else vmusic[nv] = strdup("");
            vlic[nv] = strdup(s.text[M2U_TEXT_LICENCE]), vattr[nv] = strdup(s.text[M2U_TEXT_ATTRIBUTION]);
            vsrc[nv++] = strdup(src);
        }
        if (!strcmp(k, "mucaps")) {
            CHECK(s.audio_len > 0, "mucaps %s has no audio", s.text[M2U_TEXT_ID]);
            if (strstr(src, "piano.mid")) mucaps_piano++;
            if (strstr(src, "piano_copy.wav")) mucaps_copy++;
            if (strstr(src, ".mid")) mucaps_midi++;
            if ((strstr(src, "piano.mid") && strstr(s.text[M2U_TEXT_CAPTION], "piano")) ||
                (strstr(src, "violin.mid") && strstr(s.text[M2U_TEXT_CAPTION], "violin")) ||
                (strstr(src, "flute.mid") && strstr(s.text[M2U_TEXT_CAPTION], "flute")))
                caption_inst++;
            int pres = 0;
            CHECK(m2u_dataset_get_tensor_f32(ds, i, "t5", t5, 128 * 768, &pres) == 0 && pres, "t5 target");
            double nrm = 0;
            for (int r = 0; r < 768; r++) nrm += (double)t5[r] * t5[r];
            t5_ok += fabs(nrm - 1) < 1e-2; /* first word's row: unit norm (fp16) */
            CHECK(m2u_dataset_get_tensor_f32(ds, i, "mert", mert, 25 * 1024, &pres) == 0 && pres, "mert");
            if (!have_mert0)
                memcpy(mert0, mert, 25 * 1024 * sizeof(float)), have_mert0 = 1;
            else
                mert_diff += memcmp(mert0, mert, 25 * 1024 * sizeof(float)) != 0;
        }
        if (!strcmp(k, "muedit")) {
            CHECK(s.audio_len > 0 && s.target_audio_len > 0, "muedit %s lacks audio", s.text[M2U_TEXT_ID]);
            CHECK(s.text[M2U_TEXT_INSTRUCTION][0] && s.text[M2U_TEXT_OUTPUT_TEXT][0], "muedit text");
            m2u_shard_reader *r;
            int sh_i;
            int64_t loc;
            m2u_dataset_locate(ds, i, &sh_i, &loc);
            m2u_dataset_shard(ds, sh_i, &r);
            int iv = m2u_shard_attr_index(r, "edit_value"), it = m2u_shard_attr_index(r, "tempo_bpm"),
                itt = m2u_shard_attr_index(r, "target_tempo_bpm"), ik = m2u_shard_attr_index(r, "key"),
                itk = m2u_shard_attr_index(r, "target_key");
            float at[64];
            m2u_shard_get_attrs(r, loc, at);
            const char *ins = s.text[M2U_TEXT_INSTRUCTION];
            if (strstr(ins, "BPM")) { /* a tempo edit: the measured ratio matches the request */
                double got = at[itt] / at[it];
                CHECK(fabs(got / at[iv] - 1) <= 0.08, "tempo edit %s: ratio %.3f vs %.3f", s.text[M2U_TEXT_ID], got,
                      at[iv]);
                edits_checked++;
            } else if (strstr(ins, "semitone")) {
                int want = (((int)at[ik] + (int)lround(at[iv])) % 12 + 12) % 12;
                CHECK((int)at[itk] == want, "key edit %s: key %d expected, %d measured", s.text[M2U_TEXT_ID], want,
                      (int)at[itk]);
                edits_checked++;
            }
        }
        if (!strcmp(k, "muimage") || !strcmp(k, "muvideo")) {
            CHECK(s.target_audio_len > 0, "%s %s has no target music", k, s.text[M2U_TEXT_ID]);
            int pres = 0, img = !strcmp(k, "muimage");
            size_t numel = img ? 197 * 768 : (size_t)3137 * 768;
            float *f = malloc(numel * sizeof *f);
            CHECK(m2u_dataset_get_tensor_f32(ds, i, img ? "vit" : "vivit", f, numel, &pres) == 0 && pres,
                  "%s %s lacks its %s features", k, s.text[M2U_TEXT_ID], img ? "vit" : "vivit");
            free(f);
        }
        m2u_sample_free(&s);
    }
    printf("test_build: %lld samples: mucaps %ld musicqa %ld muedit %ld muimage %ld muvideo %ld; %d edits checked\n",
           (long long)n, kinds[0], kinds[1], kinds[2], kinds[3], kinds[4], edits_checked);
    CHECK(kinds[0] >= 6, "mucaps: %ld", kinds[0]);
    CHECK(kinds[1] == 2 * kinds[0], "musicqa %ld != 2 x mucaps %ld", kinds[1], kinds[0]);
    CHECK(kinds[2] >= 1, "no muedit sample");
    CHECK(kinds[3] == 2, "muimage: %ld", kinds[3]);
    CHECK(kinds[4] == 2, "muvideo: %ld", kinds[4]);
    CHECK(caption_inst == mucaps_midi, "captions naming the MIDI instrument: %d of %d", caption_inst, mucaps_midi);
    CHECK(t5_ok == kinds[0], "t5 targets with unit first row: %d of %ld", t5_ok, kinds[0]);
    CHECK(mert_diff == kinds[0] - 1, "mert features identical across clips (%d differ)", mert_diff);
    /* exactly one of piano.mid / piano_copy.wav survives (the other is the duplicate) */
    CHECK((mucaps_piano > 0) != (mucaps_copy > 0), "piano.mid (%d clips) and its WAV copy (%d): exactly one must stay",
          mucaps_piano, mucaps_copy);
    m2u_dataset_close(ds);
    free(mert0), free(mert), free(t5);
    /* a picture or video paired with music carries both licences and both
     * attributions (pictures: --licence CC0-1.0, --attribution 'm2u tests');
     * a video's own soundtrack is the same file and changes nothing */
    int paired = 0, combined = 0;
    for (int v = 0; v < nv; v++) {
        if (!strcmp(vmusic[v], vsrc[v])) {
            CHECK(!strcmp(vlic[v], "CC0-1.0") && !strcmp(vattr[v], "m2u tests"), "own soundtrack %s: %s / %s",
                  vsrc[v], vlic[v], vattr[v]);
            continue;
        }
        int m = -1;
        for (int j = 0; j < nm; j++)
            if (!strcmp(msrc[j], vmusic[v])) m = j;
        CHECK(m >= 0, "%s: its music %s has no mucaps sample", vsrc[v], vmusic[v]);
        if (m < 0) continue;
        char want[256];
        if (!strcmp(mlic[m], "CC0-1.0"))
            snprintf(want, sizeof want, "CC0-1.0");
        else
            snprintf(want, sizeof want, "CC0-1.0 AND %s", mlic[m]), combined++;
        CHECK(!strcmp(vlic[v], want), "%s paired with %s (%s): licence '%s', expected '%s'", vsrc[v], vmusic[v],
              mlic[m], vlic[v], want);
        char wattr[512];
        snprintf(wattr, sizeof wattr, "%s: m2u tests | music: %s", strstr(vsrc[v], ".mp4") ? "video" : "picture",
                 mattr[m]);
        CHECK(!strcmp(vattr[v], wattr), "%s attribution '%s', expected '%s'", vsrc[v], vattr[v], wattr);
        paired++;
    }
    printf("test_build: %d pictures/videos paired with music, %d under two licences\n", paired, combined);
    CHECK(paired >= 3, "only %d paired pictures/videos", paired);
    char **lics = malloc(((size_t)nv + 1) * sizeof *lics);
    for (int v = 0; v < nv; v++) lics[v] = vlic[v];

    /* the error report */
    char *errs = NULL;
    size_t len = 0;
    snprintf(p, sizeof p, "%s/errors.jsonl", out);
    CHECK(m2u_read_file(p, &errs, &len) == 0, "errors.jsonl");
    if (errs) {
        CHECK(strstr(errs, "empty.wav") && strstr(errs, "\"reason\":\"empty\""), "empty.wav not reported: %s", errs);
        CHECK(strstr(errs, "notes.mp3") && strstr(errs, "\"reason\":\"not-media\""), "notes.mp3 not reported");
        CHECK(strstr(errs, "truncated.wav") && strstr(errs, "\"reason\":\"truncated\""), "truncated.wav not reported");
        CHECK(strstr(errs, "\"reason\":\"duplicate\"") && strstr(errs, "piano"), "the duplicate was not found: %s",
              errs);
        CHECK(strstr(errs, "gone.ogg\"") && strstr(errs, "dangling symbolic link"),
              "the dangling link gone.ogg is not reported: %s", errs);
        CHECK(strstr(errs, "missing.wav\"") && strstr(errs, "\"reason\":\"cannot-open\"") &&
                  strstr(errs, "file does not exist"),
              "the missing named input is not reported: %s", errs);
        free(errs);
    }
    char *card = NULL;
    snprintf(p, sizeof p, "%s/README.md", out);
    CHECK(m2u_read_file(p, &card, &len) == 0, "card");
    if (card) {
        CHECK(strstr(card, "CC-BY-4.0") && strstr(card, "violin by the test") && strstr(card, "## Licences"),
              "card lacks the licences");
        CHECK(strstr(card, "| mucaps |") && strstr(card, "### Tempo"), "card lacks counts / histograms");
        for (int v = 0; v < nv; v++) {
            char row[300];
            snprintf(row, sizeof row, "| %s | ", lics[v]); /* a row of the "Samples per licence" table */
            CHECK(strstr(card, row) != NULL, "the card does not count the licence '%s'", lics[v]);
        }
        free(card);
    }
    free(lics);
    for (int j = 0; j < nm; j++) free(msrc[j]), free(mlic[j]), free(mattr[j]);
    for (int v = 0; v < nv; v++) free(vmusic[v]), free(vlic[v]), free(vattr[v]), free(vsrc[v]);
}

int main(void) {
    setenv("ASAN_OPTIONS", "detect_leaks=0", 1); /* for the MPI children (OpenMPI's exit leaks) */
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    make_media();
    if (t_fail) return t_finish("test_build");

    /* 1. straight build, in process */
    const char *out1 = DIR "/out1";
    /* a named input that does not exist is recorded and the build goes on */
    const char *inputs[3] = {DIR "/media/music.jsonl", DIR "/media/other", DIR "/media/missing.wav"};
    m2u_build_config c;
    m2u_build_config_default(&c);
    c.inputs = inputs, c.n_inputs = 3, c.out_dir = out1;
    c.default_licence = "CC0-1.0", c.default_attribution = "m2u tests";
    c.audio_rate = 16000, c.clip_s = 6, c.hop_s = 6, c.min_clip_s = 3, c.shard_size = 3;
    c.valid_frac = 0.34, c.test_frac = 0;
    m2u_build_stats st;
    double t0 = m2u_now();
    int rc = m2u_build_run(&c, NULL, &st);
    CHECK(rc == 0, "build: %s", m2u_last_error());
    printf("test_build: straight build %.1f s (survey %.1f s, samples %.1f s); %ld edits dropped\n", m2u_now() - t0,
           st.t_survey, st.t_samples, st.edits_dropped);
    if (rc) return t_finish("test_build");
    check_first_build(out1);
    row *ref;
    int64_t nref;
    CHECK(read_rows(out1, &ref, &nref) == 0, "read rows: %s", m2u_last_error());

    /* the same settings again: nothing to do, nothing changes */
    CHECK(m2u_build_run(&c, NULL, &st) == 0, "rerun: %s", m2u_last_error());
    CHECK(st.shards_kept > 0 && st.clips == 0, "rerun: kept %d shards, analysed %ld clips again", st.shards_kept,
          st.clips);
    row *again;
    int64_t nagain;
    CHECK(read_rows(out1, &again, &nagain) == 0 && same_rows(ref, nref, again, nagain, "rerun"), "rerun changed it");
    free_rows(again, nagain);
    /* --strict: the missing input stops the build, naming it, before any work */
    m2u_build_config cs = c;
    cs.strict = 1, cs.out_dir = DIR "/out_strict";
    CHECK(m2u_build_run(&cs, NULL, &st) != 0 && strstr(m2u_last_error(), "missing.wav") &&
              !m2u_file_exists(DIR "/out_strict"),
          "strict build with a missing input: %s", m2u_last_error());
    /* other settings into the same folder are refused before any work */
    m2u_build_config c2 = c;
    c2.clip_s = 5;
    CHECK(m2u_build_run(&c2, NULL, &st) != 0 && strstr(m2u_last_error(), "other settings"),
          "a build of other settings was not refused: %s", m2u_last_error());

    /* 2. the tool, killed with SIGKILL once a shard exists, then run again */
    const char *out2 = DIR "/out2";
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec '%s' build %s --out '%s' > '%s/kill.log' 2>&1", TOOL, ARGS, out2, DIR);
    pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int killed = 0;
    for (int t = 0; t < 120000; t++) { /* poll every 1 ms for up to 2 min */
        if (m2u_file_exists(DIR "/out2/shard-r000-00001.h5")) {
            kill(pid, SIGKILL);
            killed = 1;
            break;
        }
        int ws;
        if (waitpid(pid, &ws, WNOHANG) == pid) {
            pid = -1;
            break;
        }
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    if (pid > 0) waitpid(pid, NULL, 0);
    printf("test_build: tool %s mid-way\n", killed ? "killed with SIGKILL" : "finished before it could be killed");
    CHECK(killed, "the build finished before the kill (make the test's input larger)");
    CHECK(!m2u_file_exists(DIR "/out2/manifest.json"), "a killed build left a manifest");
    CHECK(t_sh("'%s' build %s --out '%s' > '%s/resume.log' 2>&1", TOOL, ARGS, out2, DIR) == 0, "resume failed (see %s/resume.log)",
          DIR);
    row *r2;
    int64_t n2;
    CHECK(read_rows(out2, &r2, &n2) == 0, "read resumed: %s", m2u_last_error());
    CHECK(same_rows(ref, nref, r2, n2, "killed + resumed"), "killed + resumed differs from the straight build");
    free_rows(r2, n2);

    /* 3. two MPI ranks: same samples and text */
    if (t_sh("command -v mpirun > /dev/null") == 0) {
        const char *out3 = DIR "/out3";
        CHECK(t_sh("mpirun -np 2 --oversubscribe '%s' build %s --out '%s' > '%s/mpi.log' 2>&1", TOOL, ARGS, out3, DIR) ==
                  0,
              "mpirun build failed (see %s/mpi.log)", DIR);
        row *r3;
        int64_t n3;
        CHECK(read_rows(out3, &r3, &n3) == 0, "read 2-rank build: %s", m2u_last_error());
        CHECK(same_rows(ref, nref, r3, n3, "2 ranks"), "2 ranks differ from 1");
        CHECK(m2u_file_exists(DIR "/out3/shard-r001-00000.h5"), "rank 1 wrote no shard");
        free_rows(r3, n3);
    } else {
        CHECK(0, "mpirun not found (apt-get install openmpi-bin)");
    }

    /* 4. h5py reads a built shard through the zstd plugin (release build only:
     * an instrumented plugin cannot load into python) */
#if !defined(__SANITIZE_ADDRESS__)
    CHECK(t_sh("HDF5_PLUGIN_PATH='%s/hdf5-plugins' /usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1]); "
             "n=int(f.attrs['n_samples']); o=f['text/caption_offsets'][:]; assert len(o)==n+1; "
             "m=f['features/mert']; assert m.shape[1:]==(25,1024), m.shape; a=f['audio'][:1000]; "
             "print('h5py read', n, 'samples, mert', m.shape)\" '%s/shard-r000-00000.h5'",
             M2U_BUILD_DIR, out1) == 0,
          "h5py could not read the shard");
#endif
    free_rows(ref, nref);
    if (!t_fail) t_sh("rm -rf '%s'", DIR);
    return t_finish("test_build");
}
