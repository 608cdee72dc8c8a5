/* Labelled music for the media tests (midi_render, audio_edit, fingerprint):
 * a small song with known tempo, key, mode and instruments written with the
 * MIDI writer, the same recipe as tests/data/test_analysis.c (chord
 * accompaniment, a melody of chord and scale tones, a bass on every beat,
 * optional drums on GM channel 10). */
#ifndef M2U_TEST_MUSIC_H
#define M2U_TEST_MUSIC_H

#include "m2u_error.h"
#include "midi_writer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
    double bpm;
    int tonic, mode; /* pitch class, M2U_MIDI_MAJOR / M2U_MIDI_MINOR */
    int acc_prog, mel_prog, bass_prog;
    int arpeggio; /* accompaniment: 0 block chords on each beat, 1 eighth-note arpeggio */
    int drums;
    int bars;
    uint32_t seed;
} tm_piece;

/* note-ons written per track (accompaniment, melody, bass, drums) */
typedef struct {
    long acc, mel, bass, drums;
} tm_counts;

static const int TM_SCALE[2][7] = {{0, 2, 4, 5, 7, 9, 11}, {0, 2, 3, 5, 7, 8, 10}};
static const int TM_PROG[2][4] = {{0, 5, 3, 4}, {0, 5, 3, 4}}; /* I-vi-IV-V / i-VI-iv-V */

static inline int tm_deg(int mode, int deg) { return TM_SCALE[mode][deg % 7] + 12 * (deg / 7); }

static inline uint32_t tm_lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

#define TM_OK(x)                                                              \
    do {                                                                      \
        if ((x) != 0) {                                                       \
            fprintf(stderr, "midi build failed: %s\n", m2u_last_error());    \
            m2u_midi_free(m);                                                 \
            return -1;                                                        \
        }                                                                     \
    } while (0)

/* Length of the music in seconds (without the release tail). */
static inline double tm_seconds(const tm_piece *p) { return p->bars * 240.0 / p->bpm; }

static inline int tm_write(const tm_piece *p, const char *path, tm_counts *cnt) {
    tm_counts c = {0, 0, 0, 0};
    m2u_midi *m = m2u_midi_new(480);
    if (!m) return fprintf(stderr, "%s\n", m2u_last_error()), -1;
    TM_OK(m2u_midi_tempo(m, 0, p->bpm));
    TM_OK(m2u_midi_time_signature(m, 0, 4, 4));
    TM_OK(m2u_midi_key_signature(m, 0, p->tonic, p->mode));
    int acc = m2u_midi_add_track(m, "accompaniment", 0, p->acc_prog);
    int mel = m2u_midi_add_track(m, "melody", 1, p->mel_prog);
    int bass = m2u_midi_add_track(m, "bass", 2, p->bass_prog);
    int drm = p->drums ? m2u_midi_add_track(m, "drums", 9, -1) : 0;
    if (acc < 0 || mel < 0 || bass < 0 || drm < 0) TM_OK(-1);
    uint32_t s = p->seed;
    int mdeg = 7, base = 48 + p->tonic;
    for (int bar = 0; bar < p->bars; bar++) {
        double b0 = 4.0 * bar;
        int last = bar == p->bars - 1;
        int deg = last ? 0 : TM_PROG[p->mode][bar % 4];
        int t[3];
        for (int i = 0; i < 3; i++) t[i] = tm_deg(p->mode, deg + 2 * i);
        if (p->mode == 1 && deg == 4) t[1] += 1; /* harmonic minor V */
        if (last) {
            for (int i = 0; i < 3; i++, c.acc++) TM_OK(m2u_midi_note(m, acc, b0, 4.0, base + t[i], 70));
        } else if (!p->arpeggio) {
            for (int q = 0; q < 4; q++)
                for (int i = 0; i < 3; i++, c.acc++)
                    TM_OK(m2u_midi_note(m, acc, b0 + q, 0.9, base + t[i], q == 0 ? 80 : 68));
        } else {
            static const int arp[8] = {0, 1, 2, 3, 2, 1, 0, 1};
            for (int e = 0; e < 8; e++, c.acc++) {
                int k = arp[e];
                TM_OK(m2u_midi_note(m, acc, b0 + 0.5 * e, 0.5, base + (k < 3 ? t[k] : t[0] + 12), e % 2 ? 64 : 78));
            }
        }
        int root = 36 + (p->tonic + t[0]) % 12;
        for (int q = 0; q < (last ? 1 : 4); q++, c.bass++)
            TM_OK(m2u_midi_note(m, bass, b0 + q, last ? 4.0 : 0.9, root, q ? 75 : 90));
        if (last) {
            TM_OK(m2u_midi_note(m, mel, b0, 4.0, 60 + p->tonic + 12, 95));
            c.mel++;
        } else {
            double b = 0;
            while (b < 4.0) {
                double dur = (tm_lcg(&s) % 3 == 0) ? 0.5 : 1.0;
                if (b == 0 || b == 2)
                    mdeg = deg + 2 * (int)(tm_lcg(&s) % 3) + 7;
                else
                    mdeg += (int)(tm_lcg(&s) % 5) - 2;
                if (mdeg < 4) mdeg = 4;
                if (mdeg > 16) mdeg = 16;
                int semi = tm_deg(p->mode, mdeg);
                if (p->mode == 1 && mdeg % 7 == 6 && deg == 4) semi++;
                TM_OK(m2u_midi_note(m, mel, b0 + b, dur * 0.95, 60 + p->tonic + semi - 12, 96));
                c.mel++;
                b += dur;
            }
        }
        if (p->drums) {
            for (int e = 0; e < 8; e++, c.drums++) TM_OK(m2u_midi_note(m, drm, b0 + 0.5 * e, 0.25, 42, e % 2 ? 55 : 75));
            TM_OK(m2u_midi_note(m, drm, b0 + 0, 0.25, 36, 110));
            TM_OK(m2u_midi_note(m, drm, b0 + 2, 0.25, 36, 100));
            TM_OK(m2u_midi_note(m, drm, b0 + 1, 0.25, 38, 95));
            TM_OK(m2u_midi_note(m, drm, b0 + 3, 0.25, 38, 95));
            c.drums += 4;
        }
    }
    TM_OK(m2u_midi_write(m, path));
    m2u_midi_free(m);
    if (cnt) *cnt = c;
    return 0;
}

static inline void tm_remove_dir(const char *dir) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

#endif
