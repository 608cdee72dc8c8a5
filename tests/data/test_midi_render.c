/* MIDI rendering with libfluidsynth, SMF summaries and GM names.
 *
 * A song with known tempo, key and instruments is written with the MIDI writer,
 * rendered with m2u_midi_render (FluidR3_GM, a declared dependency: missing
 * FAILS) and checked: not silent, the right length, bit-identical on a second
 * render, m2u_analyze recovers its tempo and key; rendered again with every
 * melodic part on another instrument (program override), the timbre changes
 * measurably while tempo and key stay.  The summary counts the notes per
 * program as written (also with a mid-song program change), and broken or
 * non-MIDI files are refused with the file named.  Measured numbers are
 * printed. */
#include "analysis.h"
#include "m2u_error.h"
#include "midi_render.h"
#include "midi_writer.h"
#include "test_music.h"
#include "test_util.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RATE 22050

static char g_dir[512];

static const char *P(const char *name) {
    static char buf[8][600];
    static int slot;
    slot = (slot + 1) % 8;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", g_dir, name);
    return buf[slot];
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static double peak_of(const float *x, int64_t n) {
    double pk = 0;
    for (int64_t i = 0; i < n; i++)
        if (fabs(x[i]) > pk) pk = fabs(x[i]);
    return pk;
}

static int within(double est, double ref, double tol) { return ref > 0 && fabs(est - ref) <= tol * ref; }

static void test_names(void) {
    CHECK(!strcmp(m2u_gm_program_name(0), "acoustic grand piano"), "%s", m2u_gm_program_name(0));
    CHECK(!strcmp(m2u_gm_program_name(40), "violin") && !strcmp(m2u_gm_family_name(40), "strings"), "violin");
    CHECK(!strcmp(m2u_gm_program_name(73), "flute") && !strcmp(m2u_gm_family_name(73), "pipe"), "flute");
    CHECK(!strcmp(m2u_gm_program_name(56), "trumpet") && !strcmp(m2u_gm_family_name(56), "brass"), "trumpet");
    CHECK(!strcmp(m2u_gm_program_name(127), "gunshot") && !strcmp(m2u_gm_family_name(127), "sound effects"), "127");
    CHECK(!strcmp(m2u_gm_family_name(81), "synth") && !strcmp(m2u_gm_family_name(33), "bass") &&
              !strcmp(m2u_gm_family_name(24), "guitar") && !strcmp(m2u_gm_family_name(16), "organ") &&
              !strcmp(m2u_gm_family_name(66), "reed") && !strcmp(m2u_gm_family_name(3), "piano"),
          "families");
    CHECK(!strcmp(m2u_gm_program_name(-1), "unknown") && !strcmp(m2u_gm_family_name(128), "unknown"), "out of range");
    int lower = 1;
    for (int p = 0; p < 128; p++) {
        const char *s = m2u_gm_program_name(p);
        if (!s || !*s) lower = 0;
        for (; s && *s; s++)
            if (*s >= 'A' && *s <= 'Z') lower = 0;
    }
    CHECK(lower, "program names must be non-empty lower case");
}

/* Summary with a mid-song program change, a channel with no program change
 * and drums; also an SMPTE-division, format-0 file written by hand. */
static void test_summary(void) {
    m2u_midi *m = m2u_midi_new(96);
    CHECK(m != NULL, "new");
    if (!m) return;
    m2u_midi_tempo(m, 0, 120);
    m2u_midi_tempo(m, 4, 60); /* 4 beats at 120 = 2 s, then 60 bpm */
    int a = m2u_midi_add_track(m, "a", 0, 24);
    int b = m2u_midi_add_track(m, "b", 3, -1); /* no program change: program 0 */
    int d = m2u_midi_add_track(m, "d", 9, -1);
    for (int i = 0; i < 4; i++) m2u_midi_note(m, a, i, 1, 60, 90); /* 4 on nylon guitar */
    m2u_midi_program(m, a, 4, 73);
    for (int i = 4; i < 6; i++) m2u_midi_note(m, a, i, 1, 62, 90); /* 2 on flute */
    for (int i = 0; i < 3; i++) m2u_midi_note(m, b, i, 0.5, 48, 90);
    for (int i = 0; i < 5; i++) m2u_midi_note(m, d, i * 0.5, 0.25, 36, 100);
    CHECK(m2u_midi_write(m, P("summary.mid")) == 0, "write: %s", m2u_last_error());
    m2u_midi_free(m);
    /* the same notes written for violin throughout: rendering summary.mid with
     * the program override 40 must give exactly this file's audio (the
     * mid-song change, the channel without a program change and a bank select
     * all follow the override; the drums do not) */
    for (int k = 0; k < 2; k++) {
        m = m2u_midi_new(96);
        m2u_midi_tempo(m, 0, 120);
        m2u_midi_tempo(m, 4, 60);
        a = m2u_midi_add_track(m, "a", 0, k ? 40 : 24);
        b = m2u_midi_add_track(m, "b", 3, k ? 40 : -1);
        d = m2u_midi_add_track(m, "d", 9, -1);
        if (!k) m2u_midi_control(m, a, 0, 0, 8); /* bank select 8 (dropped by the override) */
        for (int i = 0; i < 4; i++) m2u_midi_note(m, a, i, 1, 60, 90);
        if (!k) m2u_midi_program(m, a, 4, 73);
        for (int i = 4; i < 6; i++) m2u_midi_note(m, a, i, 1, 62, 90);
        for (int i = 0; i < 3; i++) m2u_midi_note(m, b, i, 0.5, 48, 90);
        for (int i = 0; i < 5; i++) m2u_midi_note(m, d, i * 0.5, 0.25, 36, 100);
        CHECK(m2u_midi_write(m, P(k ? "violin.mid" : "mixed.mid")) == 0, "write: %s", m2u_last_error());
        m2u_midi_free(m);
    }
    {
        m2u_midi_render_opts ov = {NULL, RATE, 40, 0}, asw = {NULL, RATE, -1, 0};
        float *x = NULL, *y = NULL, *z = NULL;
        int64_t nx = 0, ny = 0, nz = 0;
        CHECK(m2u_midi_render(P("mixed.mid"), &ov, &x, &nx) == 0, "override render: %s", m2u_last_error());
        CHECK(m2u_midi_render(P("violin.mid"), &asw, &y, &ny) == 0, "violin render: %s", m2u_last_error());
        CHECK(m2u_midi_render(P("mixed.mid"), &asw, &z, &nz) == 0, "mixed render: %s", m2u_last_error());
        if (x && y && z) {
            CHECK(nx == ny && !memcmp(x, y, (size_t)nx * sizeof *x),
                  "override 40 differs from the same notes written for violin (%lld vs %lld samples)",
                  (long long)nx, (long long)ny);
            int64_t nmin = nx < nz ? nx : nz;
            CHECK(nmin > 0 && memcmp(x, z, (size_t)nmin * sizeof *x) != 0, "override changed nothing");
        }
        free(x);
        free(y);
        free(z);
    }
    m2u_midi_summary s;
    CHECK(m2u_midi_summarize(P("summary.mid"), &s) == 0, "summarize: %s", m2u_last_error());
    printf("summary: nylon guitar %lld, flute %lld, piano %lld, drums %lld, main %d, %.3f s\n",
           (long long)s.notes[24], (long long)s.notes[73], (long long)s.notes[0], (long long)s.drum_notes,
           s.main_program, s.duration_s);
    CHECK(s.notes[24] == 4 && s.notes[73] == 2 && s.notes[0] == 3 && s.drum_notes == 5, "note counts");
    int64_t total = 0;
    for (int p = 0; p < 128; p++) total += s.notes[p];
    CHECK(total == 9, "total melodic notes %lld", (long long)total);
    CHECK(s.main_program == 24, "main program %d", s.main_program);
    /* last event: the flute note ending at beat 6 = 2 s + 2 beats at 60 bpm = 4 s */
    CHECK(fabs(s.duration_s - 4.0) < 1e-9, "duration %.6f, expected 4", s.duration_s);

    /* format 0, SMPTE division 25 fps x 40 ticks = 1000 ticks/s, running status */
    static const unsigned char smpte[] = {
        'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 0, 0, 1, 0xE7, 40, 'M', 'T', 'r', 'k', 0, 0, 0, 23,
        0,   0xC0, 40,                 /* violin */
        0,   0x90, 67, 100,            /* note on */
        0x87, 0x68, 67, 0,             /* +1000 ticks: running-status note off (vel 0) */
        0,   69, 100,                  /* running-status note on */
        0x83, 0x74, 0x80, 69, 0,       /* +500 ticks: note off */
        0,   0xFF, 0x2F, 0};
    write_bytes(P("smpte.mid"), smpte, sizeof smpte);
    CHECK(m2u_midi_summarize(P("smpte.mid"), &s) == 0, "smpte: %s", m2u_last_error());
    CHECK(s.notes[40] == 2 && s.main_program == 40 && fabs(s.duration_s - 1.5) < 1e-9,
          "smpte summary: violin %lld, main %d, %.4f s", (long long)s.notes[40], s.main_program, s.duration_s);
    /* nothing melodic */
    m = m2u_midi_new(480);
    d = m2u_midi_add_track(m, "d", 9, -1);
    m2u_midi_note(m, d, 0, 1, 38, 100);
    m2u_midi_write(m, P("drums.mid"));
    m2u_midi_free(m);
    CHECK(m2u_midi_summarize(P("drums.mid"), &s) == 0 && s.main_program == -1 && s.drum_notes == 1,
          "drums only: main %d drums %lld", s.main_program, (long long)s.drum_notes);
    /* a busy bass line does not make the bass the lead; alone it does */
    m = m2u_midi_new(480);
    int bass = m2u_midi_add_track(m, "bass", 0, 33), fl = m2u_midi_add_track(m, "flute", 1, 73);
    for (int q = 0; q < 16; q++) m2u_midi_note(m, bass, q * 0.5, 0.4, 40, 90);
    for (int q = 0; q < 4; q++) m2u_midi_note(m, fl, q * 2.0, 1.5, 76, 90);
    m2u_midi_write(m, P("bassy.mid"));
    m2u_midi_free(m);
    CHECK(m2u_midi_summarize(P("bassy.mid"), &s) == 0 && s.notes[33] == 16 && s.notes[73] == 4 && s.main_program == 73,
          "bass + flute: main %d", s.main_program);
    m = m2u_midi_new(480);
    bass = m2u_midi_add_track(m, "bass", 0, 33);
    m2u_midi_note(m, bass, 0, 1, 40, 90);
    m2u_midi_write(m, P("bassonly.mid"));
    m2u_midi_free(m);
    CHECK(m2u_midi_summarize(P("bassonly.mid"), &s) == 0 && s.main_program == 33, "bass alone: main %d",
          s.main_program);
}

static void test_bad_files(void) {
    float *pcm = (float *)1;
    int64_t n = 7;
    m2u_midi_render_opts o = {NULL, RATE, -1, 0};
    m2u_midi_summary s;
    write_bytes(P("notes.txt"), "this is not a MIDI file\n", 24);
    CHECK(m2u_midi_render(P("notes.txt"), &o, &pcm, &n) != 0 && pcm == NULL && n == 0, "text file rendered");
    printf("text file: %s\n", m2u_last_error());
    CHECK(strstr(m2u_last_error(), P("notes.txt")) && strstr(m2u_last_error(), "not a Standard MIDI File"),
          "message does not name the file: %s", m2u_last_error());
    CHECK(m2u_midi_summarize(P("notes.txt"), &s) != 0 && strstr(m2u_last_error(), "notes.txt"), "summary of text");
    CHECK(m2u_midi_render(P("missing.mid"), &o, &pcm, &n) != 0 && strstr(m2u_last_error(), "missing.mid"),
          "missing file: %s", m2u_last_error());
    CHECK(m2u_midi_render(g_dir, &o, &pcm, &n) != 0 && strstr(m2u_last_error(), "directory"), "directory: %s",
          m2u_last_error());
    write_bytes(P("empty.mid"), "", 0);
    CHECK(m2u_midi_render(P("empty.mid"), &o, &pcm, &n) != 0 && strstr(m2u_last_error(), "empty.mid"),
          "empty file: %s", m2u_last_error());
    /* a real file cut in the middle of its last track */
    unsigned char *d = NULL;
    size_t len = 0;
    FILE *f = fopen(P("summary.mid"), "rb");
    if (f) {
        d = malloc(1 << 16);
        len = fread(d, 1, 1 << 16, f);
        fclose(f);
    }
    CHECK(d && len > 40, "reading summary.mid back");
    if (d && len > 40) {
        write_bytes(P("cut.mid"), d, len - 9);
        CHECK(m2u_midi_render(P("cut.mid"), &o, &pcm, &n) != 0 && strstr(m2u_last_error(), "cut.mid") &&
                  strstr(m2u_last_error(), "truncated"),
              "truncated file: %s", m2u_last_error());
        printf("truncated file: %s\n", m2u_last_error());
        /* a data byte with the high bit set inside a note event */
        unsigned char bad[] = {'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 0, 0, 1, 0, 96, 'M', 'T', 'r', 'k',
                               0,   0,   0,   8,   0, 0x90, 60, 0xF0, 0, 0xFF, 0x2F, 0};
        write_bytes(P("bad.mid"), bad, sizeof bad);
        CHECK(m2u_midi_summarize(P("bad.mid"), &s) != 0 && strstr(m2u_last_error(), "bad.mid") &&
                  strstr(m2u_last_error(), "malformed"),
              "malformed: %s", m2u_last_error());
        /* wrong soundfont, wrong options */
        m2u_midi_render_opts bad_sf = {P("notes.txt"), RATE, -1, 0};
        CHECK(m2u_midi_render(P("summary.mid"), &bad_sf, &pcm, &n) != 0 && strstr(m2u_last_error(), "soundfont") &&
                  strstr(m2u_last_error(), "notes.txt"),
              "bad soundfont: %s", m2u_last_error());
        printf("bad soundfont: %s\n", m2u_last_error());
        m2u_midi_render_opts bad_rate = {NULL, 4000, -1, 0}, bad_prog = {NULL, RATE, 128, 0};
        CHECK(m2u_midi_render(P("summary.mid"), &bad_rate, &pcm, &n) != 0 && strstr(m2u_last_error(), "rate"),
              "rate 4000");
        CHECK(m2u_midi_render(P("summary.mid"), &bad_prog, &pcm, &n) != 0 && strstr(m2u_last_error(), "program"),
              "program 128");
    }
    free(d);
}

int main(void) {
    test_names();
    CHECK(access(M2U_MIDI_DEFAULT_SOUNDFONT, R_OK) == 0, "%s missing: apt-get install fluid-soundfont-gm",
          M2U_MIDI_DEFAULT_SOUNDFONT);
    snprintf(g_dir, sizeof g_dir, "%s/test_midi_render.XXXXXX", M2U_BUILD_DIR);
    if (!mkdtemp(g_dir)) {
        CHECK(0, "mkdtemp %s: %s", g_dir, strerror(errno));
        return t_finish("test_midi_render");
    }
    test_summary();
    test_bad_files();

    /* ---- a labelled song: 112 bpm, E minor, piano chords, piano melody, bass, drums ---- */
    tm_piece pc = {.bpm = 112, .tonic = 4, .mode = M2U_MIDI_MINOR, .acc_prog = 0, .mel_prog = 0, .bass_prog = 33,
                   .arpeggio = 0, .drums = 1, .bars = 8, .seed = 4242u};
    tm_counts cnt = {0, 0, 0, 0};
    CHECK(tm_write(&pc, P("song.mid"), &cnt) == 0, "writing the song");
    m2u_midi_summary s;
    CHECK(m2u_midi_summarize(P("song.mid"), &s) == 0, "summarize song: %s", m2u_last_error());
    printf("song summary: piano %lld (written %ld), bass %lld (written %ld), drums %lld (written %ld), main %s, "
           "%.3f s (expected %.3f)\n",
           (long long)s.notes[0], cnt.acc + cnt.mel, (long long)s.notes[33], cnt.bass, (long long)s.drum_notes,
           cnt.drums, m2u_gm_program_name(s.main_program), s.duration_s, tm_seconds(&pc));
    CHECK(s.notes[0] == cnt.acc + cnt.mel && s.notes[33] == cnt.bass && s.drum_notes == cnt.drums,
          "song note counts");
    CHECK(s.main_program == 0, "main program %d", s.main_program);
    CHECK(fabs(s.duration_s - tm_seconds(&pc)) < 1e-4, /* tempo stored in whole microseconds */ "song duration %.6f", s.duration_s);

    m2u_midi_render_opts o = {NULL, RATE, -1, 0};
    float *x = NULL, *y = NULL, *c = NULL;
    int64_t nx = 0, ny = 0, nc = 0;
    CHECK(m2u_midi_render(P("song.mid"), &o, &x, &nx) == 0, "render: %s", m2u_last_error());
    CHECK(m2u_midi_render(P("song.mid"), &o, &y, &ny) == 0, "render 2: %s", m2u_last_error());
    m2u_midi_render_opts oc = {NULL, RATE, -1, 5.0};
    CHECK(m2u_midi_render(P("song.mid"), &oc, &c, &nc) == 0, "render 5 s: %s", m2u_last_error());
    /* every melodic part (piano chords, piano melody, bass) on violin, then on flute; drums stay */
    enum { PIANO, VIOLIN, FLUTE, NR };
    static const int prog[NR] = {-1, 40, 73};
    float *r[NR] = {x, NULL, NULL};
    int64_t nr[NR] = {nx, 0, 0};
    for (int k = 1; k < NR; k++) {
        m2u_midi_render_opts ov = {M2U_MIDI_DEFAULT_SOUNDFONT, RATE, prog[k], 0};
        CHECK(m2u_midi_render(P("song.mid"), &ov, &r[k], &nr[k]) == 0, "render program %d: %s", prog[k],
              m2u_last_error());
    }
    if (x && y && c) {
        double len = tm_seconds(&pc), dur = (double)nx / RATE;
        printf("render: %lld samples = %.3f s for %.3f s of music (tail %.3f s), peak %.3f\n", (long long)nx, dur,
               len, dur - len, peak_of(x, nx));
        CHECK(dur >= len && dur <= len + M2U_MIDI_RENDER_TAIL_S, "duration %.3f for %.3f s of music", dur, len);
        CHECK(peak_of(x, nx) > 0.05, "render is (nearly) silent: peak %g", peak_of(x, nx));
        CHECK(nx == ny && !memcmp(x, y, (size_t)nx * sizeof *x), "two renders of the same file differ");
        CHECK(nc == 5 * RATE, "max_s 5: %lld samples", (long long)nc);
        CHECK(nc <= nx && !memcmp(c, x, (size_t)nc * sizeof *c), "the 5 s render is not the start of the full one");
        /* the tail decays to silence, and the music itself is not silent near its end */
        double tail_pk = peak_of(x + nx - 1024, 1024), pk = peak_of(x, nx);
        CHECK(tail_pk < 1e-4 || tail_pk < 1e-3 * pk, "tail did not decay: last block peak %g (song peak %g)", tail_pk,
              pk);
        int64_t e0 = (int64_t)((len - 1.0) * RATE);
        CHECK(peak_of(x + e0, RATE / 2) > 0.01, "the last second of music is silent");
    }
    m2u_analysis a[NR];
    int ok = 1;
    for (int k = 0; k < NR; k++) {
        if (!r[k] || m2u_analyze(r[k], (size_t)nr[k], RATE, &a[k]) != 0) {
            CHECK(0, "analysis of render %d: %s", k, m2u_last_error());
            memset(&a[k], 0, sizeof a[k]);
            ok = 0;
        }
    }
    if (ok) {
        static const char *name[NR] = {"piano", "violin", "flute"};
        printf("%-8s %7s %-9s %6s %7s %6s %6s\n", "render", "bpm", "key", "LUFS", "cent Hz", "perc", "ons/s");
        for (int k = 0; k < NR; k++) {
            printf("%-8s %7.2f %-9s %6.1f %7.0f %6.3f %6.2f\n", name[k], a[k].tempo_bpm,
                   m2u_key_name(a[k].key, a[k].mode), a[k].loudness_lufs, a[k].centroid_hz, a[k].percussiveness,
                   a[k].onset_density);
            CHECK(within(a[k].tempo_bpm, pc.bpm, 0.04), "%s: tempo %.2f, expected %.0f", name[k], a[k].tempo_bpm,
                  pc.bpm);
            CHECK(a[k].key == pc.tonic && a[k].mode == M2U_MODE_MINOR, "%s: key %s, expected E minor", name[k],
                  m2u_key_name(a[k].key, a[k].mode));
            CHECK(a[k].loudness_lufs > -40 && a[k].loudness_lufs < -20, "%s: loudness %.1f LUFS", name[k],
                  a[k].loudness_lufs);
        }
        /* the instrument swap is audible: bowed violin is brighter than the piano
         * (measured 1.28x), the flute has no hammer attack (percussiveness
         * measured 0.262 -> 0.134) */
        CHECK(a[VIOLIN].centroid_hz > 1.15 * a[PIANO].centroid_hz, "centroid piano %.0f vs violin %.0f",
              a[PIANO].centroid_hz, a[VIOLIN].centroid_hz);
        CHECK(a[PIANO].percussiveness - a[FLUTE].percussiveness > 0.06, "percussiveness piano %.3f vs flute %.3f",
              a[PIANO].percussiveness, a[FLUTE].percussiveness);
        CHECK(a[PIANO].percussiveness > a[VIOLIN].percussiveness, "percussiveness piano %.3f vs violin %.3f",
              a[PIANO].percussiveness, a[VIOLIN].percussiveness);
    }
    for (int k = 0; k < NR; k++) {
        if (ok) m2u_analysis_free(&a[k]);
        free(r[k]);
    }
    free(y);
    free(c);
    if (t_fail == 0)
        tm_remove_dir(g_dir);
    else
        fprintf(stderr, "keeping %s for inspection\n", g_dir);
    return t_finish("test_midi_render");
}
