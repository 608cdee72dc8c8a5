/* Near-duplicate audio with Chromaprint fingerprints.
 *
 * Three different songs are rendered (m2u_midi_render); the first is then
 * re-encoded through the ffmpeg CLI (MP3 64 kb/s, Ogg Vorbis ~64 kb/s, AAC
 * 48 kb/s at 16 kHz) and decoded back with m2u_audio_decode, raised by 4 dB,
 * cut to start 3 s later (not a multiple of Chromaprint's 0.124 s item), and
 * mixed with white noise at 10 dB SNR, cut to a 8 s excerpt from its
 * middle.  Every copy must score at least
 * M2U_FINGERPRINT_DUP_THRESHOLD against the original; the other songs, the
 * same song transposed by +2 semitones and the same notes played on other
 * instruments must score below it.  A 2 % tempo change and a half-semitone
 * detune are reported only.  All similarities are printed: they are the
 * measurements the threshold was chosen from (see fingerprint.h).
 * The duplicate decision (similarity and change agreement) must call every
 * copy a duplicate and none of the different music; and of 30 distinct steady
 * test tones (sines at 20 pitches, 330 and 440 Hz among them, harmonic tones,
 * tremolo tones) none may be called a duplicate of another: steady tones
 * score up to 1.0 in similarity across pitches, which made the builder drop
 * half of such a set. */
#include "audio_edit.h"
#include "decode.h"
#include "fingerprint.h"
#include "m2u_error.h"
#include "midi_render.h"
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

/* 32-bit float mono WAV */
static int write_wav(const char *path, const float *x, size_t n, int rate) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint32_t data = (uint32_t)(n * 4), riff = 36 + data;
    unsigned char h[44] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'A', 'V', 'E', 'f', 'm', 't', ' ', 16, 0, 0, 0, 3, 0, 1, 0};
    for (int i = 0; i < 4; i++) {
        h[4 + i] = (unsigned char)(riff >> (8 * i));
        h[24 + i] = (unsigned char)((uint32_t)rate >> (8 * i));
        h[28 + i] = (unsigned char)((uint32_t)rate * 4 >> (8 * i));
        h[40 + i] = (unsigned char)(data >> (8 * i));
    }
    h[32] = 4;  /* block align */
    h[34] = 32; /* bits */
    memcpy(h + 36, "data", 4);
    int ok = fwrite(h, 1, 44, f) == 44 && fwrite(x, 4, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int have_encoder(const char *name) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ffmpeg -hide_banner -encoders 2>/dev/null | grep -q ' %s '", name);
    return system(cmd) == 0;
}

typedef struct {
    const char *name;
    uint32_t *fp;
    size_t len;
} print;

static int fingerprint(const char *name, const float *x, size_t n, print *p) {
    p->name = name;
    p->fp = NULL;
    p->len = 0;
    if (m2u_fingerprint(x, n, RATE, 0, &p->fp, &p->len) != 0) {
        CHECK(0, "fingerprint %s: %s", name, m2u_last_error());
        return -1;
    }
    return 0;
}

/* Re-encode the WAV with ffmpeg arguments `args` into `out`, decode it back. */
static int reencode(const char *wav, const char *out, const char *args, const char *name, print *p) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -hide_banner -loglevel error -y -i '%s' %s '%s'", wav, args, out);
    if (system(cmd) != 0) {
        CHECK(0, "ffmpeg failed: %s", cmd);
        return -1;
    }
    float *y = NULL;
    int64_t ny = 0;
    if (m2u_audio_decode(out, RATE, &y, &ny, NULL) != 0) {
        CHECK(0, "decoding %s: %s", out, m2u_last_error());
        return -1;
    }
    int rc = fingerprint(name, y, (size_t)ny, p);
    free(y);
    return rc;
}

static void test_edges(void) {
    uint32_t a[40], b[40];
    uint32_t s = 1;
    for (int i = 0; i < 40; i++) a[i] = b[i] = (s = s * 1664525u + 1013904223u);
    CHECK(m2u_fingerprint_similarity(a, 40, b, 40) == 1.0, "identical");
    CHECK(m2u_fingerprint_similarity(a, 15, b, 40) == 0.0, "overlap below 16 items must give 0");
    CHECK(m2u_fingerprint_similarity(a, 16, b, 40) == 1.0, "16 items inside 40");
    CHECK(m2u_fingerprint_similarity(NULL, 0, b, 40) == 0.0, "empty");
    /* complement: every bit wrong */
    for (int i = 0; i < 40; i++) b[i] = ~a[i];
    double sim = m2u_fingerprint_similarity(a, 40, b, 40);
    CHECK(sim < 0.7, "complement scored %.3f", sim);
    /* b = a shifted by 10 items: found at that offset */
    for (int i = 0; i < 30; i++) b[i] = a[i + 10];
    CHECK(m2u_fingerprint_similarity(a, 40, b, 30) == 1.0 && m2u_fingerprint_similarity(b, 30, a, 40) == 1.0,
          "shifted copy not found");
    /* equal lengths, b starts 1/4 later and ends with 10 other items: the 30
     * overlapping items match at offset +10 (and -10 the other way round) */
    for (int i = 30; i < 40; i++) b[i] = (s = s * 1664525u + 1013904223u);
    CHECK(m2u_fingerprint_similarity(a, 40, b, 40) == 1.0 && m2u_fingerprint_similarity(b, 40, a, 40) == 1.0,
          "offset of 1/4 of the length not searched");
    /* short audio: success with no items */
    float z[RATE / 2];
    for (int i = 0; i < RATE / 2; i++) z[i] = 0.3f * (float)sin(0.05 * i);
    uint32_t *fp = (uint32_t *)1;
    size_t len = 7;
    CHECK(m2u_fingerprint(z, RATE / 2, RATE, 0, &fp, &len) == 0, "0.5 s: %s", m2u_last_error());
    printf("0.5 s of audio: %zu items\n", len);
    CHECK(len == 0 ? fp == NULL : fp != NULL, "empty fingerprint must be NULL");
    free(fp);
    z[3] = NAN;
    CHECK(m2u_fingerprint(z, RATE / 2, RATE, 0, &fp, &len) != 0 && strstr(m2u_last_error(), "finite"),
          "NaN accepted");
    CHECK(m2u_fingerprint(z, 10, 1000, 0, &fp, &len) != 0 && strstr(m2u_last_error(), "rate"), "rate 1000 accepted");
}

/* Distinct steady tones are never duplicates of each other (whatever their
 * similarity), yet a tone is still itself: the decision needs shared changes. */
static void test_tones(void) {
    enum { NT = 30 };
    print t[NT];
    memset(t, 0, sizeof t);
    size_t n = 12 * RATE;
    float *x = malloc(n * sizeof *x);
    char names[NT][48];
    for (int k = 0; k < NT; k++) {
        double f = k == 0 ? 330 : k == 1 ? 440 : k < 20 ? 110 * pow(2, (k - 2) * 0.29) : 130 * pow(2, (k - 20) * 0.37);
        for (size_t i = 0; i < n; i++) {
            double tt = (double)i / RATE, v = 0;
            if (k < 20)
                v = 0.5 * sin(2 * 3.14159265358979323846 * f * tt);
            else if (k < 25)
                for (int h = 1; h <= 6; h++) v += 0.3 / h * sin(2 * 3.14159265358979323846 * f * h * tt);
            else
                v = 0.5 * sin(2 * 3.14159265358979323846 * f * tt) * (0.6 + 0.4 * sin(2 * 3.14159265358979323846 * 3 * tt));
            x[i] = (float)v;
        }
        snprintf(names[k], sizeof names[k], "%s %.1f Hz", k < 20 ? "sine" : k < 25 ? "harmonic" : "tremolo", f);
        fingerprint(names[k], x, n, &t[k]);
    }
    free(x);
    int dups = 0, pairs = 0, high = 0;
    double max_sim = 0;
    for (int i = 0; i < NT; i++)
        for (int j = i + 1; j < NT; j++) {
            m2u_fingerprint_match m, r;
            m2u_fingerprint_compare(t[i].fp, t[i].len, t[j].fp, t[j].len, &m);
            m2u_fingerprint_compare(t[j].fp, t[j].len, t[i].fp, t[i].len, &r);
            CHECK(m.similarity == r.similarity && m.agreement == r.agreement, "%s / %s: not symmetric", names[i],
                  names[j]);
            int dup = m2u_fingerprint_is_duplicate(&m, M2U_FINGERPRINT_DUP_THRESHOLD);
            CHECK(!dup, "%s and %s called duplicates (similarity %.3f, agreement %.3f)", names[i], names[j],
                  m.similarity, m.agreement);
            dups += dup, pairs++, high += m.similarity >= M2U_FINGERPRINT_DUP_THRESHOLD;
            if (m.similarity > max_sim) max_sim = m.similarity;
            if (i == 0 && j == 1)
                printf("330 Hz vs 440 Hz: similarity %.4f, agreement %.4f\n", m.similarity, m.agreement);
        }
    printf("%d distinct tones: %d of %d pairs reach similarity %.2f (max %.4f), %d called duplicates\n", NT, high,
           pairs, M2U_FINGERPRINT_DUP_THRESHOLD, max_sim, dups);
    for (int k = 0; k < NT; k++) free(t[k].fp);
}

int main(void) {
    test_edges();
    test_tones();
    CHECK(system("ffmpeg -version >/dev/null 2>&1") == 0, "ffmpeg CLI not found: apt-get install ffmpeg");
    CHECK(have_encoder("libmp3lame") && have_encoder("libvorbis") && have_encoder("aac"),
          "ffmpeg lacks libmp3lame / libvorbis / aac encoders");
    snprintf(g_dir, sizeof g_dir, "%s/test_fingerprint.XXXXXX", M2U_BUILD_DIR);
    if (!mkdtemp(g_dir)) {
        CHECK(0, "mkdtemp %s: %s", g_dir, strerror(errno));
        return t_finish("test_fingerprint");
    }
    /* three different songs; A also with its melodic parts on other instruments */
    tm_piece song[3] = {
        {.bpm = 112, .tonic = 4, .mode = M2U_MIDI_MINOR, .acc_prog = 0, .mel_prog = 0, .bass_prog = 33,
         .arpeggio = 0, .drums = 1, .bars = 10, .seed = 4242u},
        {.bpm = 92, .tonic = 10, .mode = M2U_MIDI_MAJOR, .acc_prog = 48, .mel_prog = 73, .bass_prog = 32,
         .arpeggio = 1, .drums = 0, .bars = 8, .seed = 77u},
        {.bpm = 128, .tonic = 2, .mode = M2U_MIDI_MAJOR, .acc_prog = 25, .mel_prog = 81, .bass_prog = 34,
         .arpeggio = 1, .drums = 1, .bars = 11, .seed = 901u},
    };
    float *x[3] = {NULL, NULL, NULL};
    int64_t nx[3] = {0, 0, 0};
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "song%d.mid", i);
        m2u_midi_render_opts o = {NULL, RATE, -1, 0};
        if (tm_write(&song[i], P(name), NULL) != 0 || m2u_midi_render(P(name), &o, &x[i], &nx[i]) != 0) {
            CHECK(0, "song %d: %s", i, m2u_last_error());
            ok = 0;
        }
    }
    float *flute = NULL;
    int64_t nflute = 0;
    m2u_midi_render_opts of = {NULL, RATE, 73, 0};
    if (ok && m2u_midi_render(P("song0.mid"), &of, &flute, &nflute) != 0) {
        CHECK(0, "flute render: %s", m2u_last_error());
        ok = 0;
    }
    if (!ok) {
        for (int i = 0; i < 3; i++) free(x[i]);
        return t_finish("test_fingerprint");
    }
    enum { ORIG, MP3, OGG, AAC, GAIN, NOISE, CUT3, EXCERPT, N_SAME, SONG1 = N_SAME, SONG2, UP2, FLUTE, N_DIFF,
           TEMPO102 = N_DIFF, DETUNE, N_ALL };
    print fp[N_ALL];
    memset(fp, 0, sizeof fp);
    size_t n0 = (size_t)nx[0];
    fingerprint("original", x[0], n0, &fp[ORIG]);
    /* determinism */
    {
        print again;
        if (fingerprint("again", x[0], n0, &again) == 0)
            CHECK(again.len == fp[ORIG].len && !memcmp(again.fp, fp[ORIG].fp, again.len * sizeof *again.fp),
                  "two fingerprints of the same audio differ");
        free(again.fp);
    }
    CHECK(write_wav(P("a.wav"), x[0], n0, RATE) == 0, "writing a.wav");
    reencode(P("a.wav"), P("a.mp3"), "-c:a libmp3lame -b:a 64k", "mp3 64k", &fp[MP3]);
    reencode(P("a.wav"), P("a.ogg"), "-c:a libvorbis -q:a 0", "vorbis q0", &fp[OGG]);
    reencode(P("a.wav"), P("a.m4a"), "-ar 16000 -c:a aac -b:a 48k", "aac 48k 16kHz", &fp[AAC]);
    {
        float *g = malloc(n0 * sizeof *g);
        if (g) {
            memcpy(g, x[0], n0 * sizeof *g);
            size_t clipped = 0;
            CHECK(m2u_apply_gain(g, n0, 4, 1, &clipped) == 0, "gain: %s", m2u_last_error());
            fingerprint("+4 dB", g, n0, &fp[GAIN]);
            free(g);
        }
    }
    {
        /* white noise 10 dB below the music's RMS (uniform on +-h has RMS h / sqrt 3) */
        double ms = 0;
        for (size_t i = 0; i < n0; i++) ms += (double)x[0][i] * x[0][i];
        double h = sqrt(ms / (double)n0) * pow(10, -10 / 20.0) * sqrt(3.0);
        float *g = malloc(n0 * sizeof *g);
        uint32_t st = 12345u;
        for (size_t i = 0; g && i < n0; i++) {
            st = st * 1664525u + 1013904223u;
            g[i] = x[0][i] + (float)(2 * h * ((double)(st >> 8) / 16777216.0 - 0.5));
        }
        if (g) fingerprint("noise, SNR 10 dB", g, n0, &fp[NOISE]);
        free(g);
    }
    size_t cut = 3 * RATE;
    fingerprint("cut 3 s", x[0] + cut, n0 - cut, &fp[CUT3]);
    size_t ex0 = (size_t)(6.3 * RATE), exn = 8 * RATE;
    fingerprint("8 s excerpt", x[0] + ex0, exn, &fp[EXCERPT]);
    fingerprint("other song 1", x[1], (size_t)nx[1], &fp[SONG1]);
    fingerprint("other song 2", x[2], (size_t)nx[2], &fp[SONG2]);
    {
        float *y = NULL;
        size_t ny = 0;
        if (m2u_pitch_shift(x[0], n0, RATE, 2, &y, &ny) == 0)
            fingerprint("transposed +2", y, ny, &fp[UP2]);
        else
            CHECK(0, "pitch shift: %s", m2u_last_error());
        free(y);
    }
    fingerprint("same notes, flute", flute, (size_t)nflute, &fp[FLUTE]);
    /* edits between the two (reported, not asserted): a 2 % tempo change and a
     * +0.5 semitone detune */
    {
        float *y = NULL;
        size_t ny = 0;
        if (m2u_time_stretch(x[0], n0, RATE, 1.02, &y, &ny) == 0) fingerprint("tempo x1.02", y, ny, &fp[TEMPO102]);
        free(y);
        y = NULL;
        if (m2u_pitch_shift(x[0], n0, RATE, 0.5, &y, &ny) == 0) fingerprint("detuned +0.5 st", y, ny, &fp[DETUNE]);
        free(y);
    }

    printf("threshold %.2f; similarity to the original (items: original %zu)\n", M2U_FINGERPRINT_DUP_THRESHOLD,
           fp[ORIG].len);
    double min_same = 1, max_diff = 0;
    for (int i = 1; i < N_ALL; i++) {
        double sim = m2u_fingerprint_similarity(fp[ORIG].fp, fp[ORIG].len, fp[i].fp, fp[i].len);
        double rev = m2u_fingerprint_similarity(fp[i].fp, fp[i].len, fp[ORIG].fp, fp[ORIG].len);
        m2u_fingerprint_match m;
        m2u_fingerprint_compare(fp[ORIG].fp, fp[ORIG].len, fp[i].fp, fp[i].len, &m);
        int same = i < N_SAME, dup = m2u_fingerprint_is_duplicate(&m, M2U_FINGERPRINT_DUP_THRESHOLD);
        printf("  %-18s %4zu items  %.4f  agreement %.4f  %s\n", fp[i].name ? fp[i].name : "?", fp[i].len, sim,
               m.agreement, same ? "same recording" : i < N_DIFF ? "different" : "edit (reported only)");
        CHECK(sim == rev && m.similarity == sim, "%s: similarity not symmetric (%.6f vs %.6f)", fp[i].name, sim, rev);
        if (i >= N_DIFF) continue;
        CHECK(dup == same, "%s: %s by the duplicate decision (similarity %.4f, agreement %.4f)", fp[i].name,
              dup ? "a duplicate" : "not a duplicate", sim, m.agreement);
        if (same) {
            CHECK(sim >= M2U_FINGERPRINT_DUP_THRESHOLD, "%s: %.4f below the threshold", fp[i].name, sim);
            if (sim < min_same) min_same = sim;
        } else {
            CHECK(sim < M2U_FINGERPRINT_DUP_THRESHOLD, "%s: %.4f above the threshold", fp[i].name, sim);
            if (sim > max_diff) max_diff = sim;
        }
    }
    double s12 = m2u_fingerprint_similarity(fp[SONG1].fp, fp[SONG1].len, fp[SONG2].fp, fp[SONG2].len);
    printf("  other song 1 vs other song 2: %.4f\n", s12);
    CHECK(s12 < M2U_FINGERPRINT_DUP_THRESHOLD, "songs 1 and 2: %.4f", s12);
    if (s12 > max_diff) max_diff = s12;
    printf("lowest same-recording score %.4f, highest different-music score %.4f\n", min_same, max_diff);
    CHECK(fp[ORIG].len > 100, "a %.1f s song gave only %zu items", (double)n0 / RATE, fp[ORIG].len);

    for (int i = 0; i < N_ALL; i++) free(fp[i].fp);
    for (int i = 0; i < 3; i++) free(x[i]);
    free(flute);
    if (t_fail == 0)
        tm_remove_dir(g_dir);
    else
        fprintf(stderr, "keeping %s for inspection\n", g_dir);
    return t_finish("test_fingerprint");
}
