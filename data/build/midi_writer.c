/* Standard MIDI File type-1 writer (see midi_writer.h). */
#include "midi_writer.h"

#include "fileio.h"
#include "m2u_error.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Largest tick a 4-byte variable-length quantity can hold; keeping absolute
 * ticks below it keeps every delta encodable too. */
#define MAX_TICK 0x0FFFFFFFL
#define MAX_NAME 255

typedef enum {
    EV_TEMPO,   /* a: microseconds per quarter */
    EV_TIMESIG, /* a: numerator, b: log2 denominator */
    EV_KEYSIG,  /* a: tonic pitch class, b: mode */
    EV_NOTE_OFF,
    EV_PROGRAM, /* a: program */
    EV_CONTROL, /* a: controller, b: value */
    EV_NOTE_ON, /* a: pitch, b: velocity */
} ev_kind;

typedef struct {
    long tick;
    long seq; /* insertion order: ties keep the caller's order */
    ev_kind kind;
    int a, b;
} midi_event;

typedef struct {
    midi_event *ev;
    size_t n, cap;
    int channel;
    char name[MAX_NAME + 1];
} midi_track;

struct m2u_midi {
    int ppq;
    long seq;
    midi_track conductor; /* file track 0 */
    midi_track *tracks;
    int n_tracks, cap_tracks;
};

m2u_midi *m2u_midi_new(int ppq) {
    if (ppq < 24 || ppq > 32767) {
        m2u_fail("midi: ppq %d out of range 24..32767", ppq);
        return NULL;
    }
    m2u_midi *m = calloc(1, sizeof *m);
    if (!m) {
        m2u_fail("midi: out of memory");
        return NULL;
    }
    m->ppq = ppq;
    return m;
}

void m2u_midi_free(m2u_midi *m) {
    if (!m) return;
    free(m->conductor.ev);
    for (int i = 0; i < m->n_tracks; i++) free(m->tracks[i].ev);
    free(m->tracks);
    free(m);
}

static int beat_to_tick(const m2u_midi *m, double beat, long *tick) {
    if (!isfinite(beat) || beat < 0) return m2u_fail("midi: time %g beats is not a time >= 0", beat);
    double t = nearbyint(beat * m->ppq);
    if (t > (double)MAX_TICK) return m2u_fail("midi: time %g beats is past the largest encodable tick", beat);
    *tick = (long)t;
    return 0;
}

static int push(m2u_midi *m, midi_track *t, long tick, ev_kind kind, int a, int b) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        midi_event *ev = realloc(t->ev, cap * sizeof *ev);
        if (!ev) return m2u_fail("midi: out of memory");
        t->ev = ev;
        t->cap = cap;
    }
    t->ev[t->n++] = (midi_event){tick, m->seq++, kind, a, b};
    return 0;
}

static int check_track(const m2u_midi *m, int track) {
    if (track < 0 || track >= m->n_tracks)
        return m2u_fail("midi: no track %d (song has %d)", track, m->n_tracks);
    return 0;
}

int m2u_midi_add_track(m2u_midi *m, const char *name, int channel, int program) {
    if (channel < 0 || channel > 15) return m2u_fail("midi: channel %d out of range 0..15", channel);
    if (program < -1 || program > 127) return m2u_fail("midi: program %d out of range -1..127", program);
    if (name && strlen(name) > MAX_NAME) return m2u_fail("midi: track name longer than %d bytes", MAX_NAME);
    if (m->n_tracks >= 65534) return m2u_fail("midi: too many tracks");
    if (m->n_tracks == m->cap_tracks) {
        int cap = m->cap_tracks ? 2 * m->cap_tracks : 8;
        midi_track *t = realloc(m->tracks, (size_t)cap * sizeof *t);
        if (!t) return m2u_fail("midi: out of memory");
        m->tracks = t;
        m->cap_tracks = cap;
    }
    midi_track *t = &m->tracks[m->n_tracks];
    memset(t, 0, sizeof *t);
    t->channel = channel;
    if (name) strcpy(t->name, name);
    m->n_tracks++;
    if (program >= 0 && push(m, t, 0, EV_PROGRAM, program, 0) != 0) {
        m->n_tracks--;
        return -1;
    }
    return m->n_tracks - 1;
}

static int tempo_us(double bpm, long *us) {
    if (!isfinite(bpm) || bpm <= 0) return m2u_fail("midi: tempo %g bpm is not positive", bpm);
    double v = nearbyint(60e6 / bpm);
    if (v < 1 || v > 0xFFFFFF) return m2u_fail("midi: tempo %g bpm outside what SMF can store", bpm);
    *us = (long)v;
    return 0;
}

int m2u_midi_tempo(m2u_midi *m, double beat, double bpm) {
    long tick, us;
    if (beat_to_tick(m, beat, &tick) != 0 || tempo_us(bpm, &us) != 0) return -1;
    return push(m, &m->conductor, tick, EV_TEMPO, (int)us, 0);
}

int m2u_midi_time_signature(m2u_midi *m, double beat, int numerator, int denominator) {
    long tick;
    if (beat_to_tick(m, beat, &tick) != 0) return -1;
    if (numerator < 1 || numerator > 255) return m2u_fail("midi: time signature numerator %d out of range", numerator);
    int lg = -1;
    for (int i = 0; i <= 7; i++)
        if (denominator == 1 << i) lg = i;
    if (lg < 0) return m2u_fail("midi: time signature denominator %d is not 1,2,4,...,128", denominator);
    return push(m, &m->conductor, tick, EV_TIMESIG, numerator, lg);
}

int m2u_midi_key_signature(m2u_midi *m, double beat, int tonic, int mode) {
    long tick;
    if (beat_to_tick(m, beat, &tick) != 0) return -1;
    if (tonic < 0 || tonic > 11) return m2u_fail("midi: key tonic %d is not a pitch class 0..11", tonic);
    if (mode != M2U_MIDI_MAJOR && mode != M2U_MIDI_MINOR) return m2u_fail("midi: key mode %d is not major/minor", mode);
    return push(m, &m->conductor, tick, EV_KEYSIG, tonic, mode);
}

int m2u_midi_program(m2u_midi *m, int track, double beat, int program) {
    long tick;
    if (check_track(m, track) != 0 || beat_to_tick(m, beat, &tick) != 0) return -1;
    if (program < 0 || program > 127) return m2u_fail("midi: program %d out of range 0..127", program);
    return push(m, &m->tracks[track], tick, EV_PROGRAM, program, 0);
}

int m2u_midi_control(m2u_midi *m, int track, double beat, int controller, int value) {
    long tick;
    if (check_track(m, track) != 0 || beat_to_tick(m, beat, &tick) != 0) return -1;
    if (controller < 0 || controller > 127 || value < 0 || value > 127)
        return m2u_fail("midi: controller %d value %d out of range 0..127", controller, value);
    return push(m, &m->tracks[track], tick, EV_CONTROL, controller, value);
}

int m2u_midi_note(m2u_midi *m, int track, double start_beat, double dur_beats, int pitch, int velocity) {
    long on, off;
    if (check_track(m, track) != 0) return -1;
    if (pitch < 0 || pitch > 127) return m2u_fail("midi: pitch %d out of range 0..127", pitch);
    if (velocity < 1 || velocity > 127) return m2u_fail("midi: velocity %d out of range 1..127", velocity);
    if (!isfinite(dur_beats) || dur_beats <= 0) return m2u_fail("midi: note duration %g beats is not positive", dur_beats);
    if (beat_to_tick(m, start_beat, &on) != 0 || beat_to_tick(m, start_beat + dur_beats, &off) != 0) return -1;
    if (off <= on) off = on + 1; /* a zero-length note would be dropped or stuck by some players */
    if (off > MAX_TICK) return m2u_fail("midi: note ends past the largest encodable tick");
    midi_track *t = &m->tracks[track];
    if (push(m, t, on, EV_NOTE_ON, pitch, velocity) != 0) return -1;
    if (push(m, t, off, EV_NOTE_OFF, pitch, 0) != 0) {
        t->n--; /* keep the pair all-or-nothing */
        return -1;
    }
    return 0;
}

int m2u_midi_transpose(m2u_midi *m, int semitones) {
    /* check first so a failure changes nothing */
    for (int i = 0; i < m->n_tracks; i++) {
        const midi_track *t = &m->tracks[i];
        if (t->channel == M2U_MIDI_DRUM_CHANNEL) continue; /* drum notes are sounds, not pitches */
        for (size_t j = 0; j < t->n; j++) {
            const midi_event *e = &t->ev[j];
            if ((e->kind == EV_NOTE_ON || e->kind == EV_NOTE_OFF) &&
                (e->a + semitones < 0 || e->a + semitones > 127))
                return m2u_fail("midi: transposing by %d moves pitch %d out of 0..127 (track %d)", semitones,
                                e->a, i);
        }
    }
    for (int i = 0; i < m->n_tracks; i++) {
        midi_track *t = &m->tracks[i];
        if (t->channel == M2U_MIDI_DRUM_CHANNEL) continue;
        for (size_t j = 0; j < t->n; j++)
            if (t->ev[j].kind == EV_NOTE_ON || t->ev[j].kind == EV_NOTE_OFF) t->ev[j].a += semitones;
    }
    for (size_t j = 0; j < m->conductor.n; j++) {
        midi_event *e = &m->conductor.ev[j];
        if (e->kind == EV_KEYSIG) e->a = ((e->a + semitones) % 12 + 12) % 12;
    }
    return 0;
}

int m2u_midi_scale_tempo(m2u_midi *m, double factor) {
    if (!isfinite(factor) || factor <= 0) return m2u_fail("midi: tempo factor %g is not positive", factor);
    for (size_t j = 0; j < m->conductor.n; j++) {
        const midi_event *e = &m->conductor.ev[j];
        long us;
        if (e->kind == EV_TEMPO && tempo_us(60e6 / e->a * factor, &us) != 0) return -1;
    }
    for (size_t j = 0; j < m->conductor.n; j++) {
        midi_event *e = &m->conductor.ev[j];
        long us;
        if (e->kind == EV_TEMPO && tempo_us(60e6 / e->a * factor, &us) == 0) e->a = (int)us;
    }
    return 0;
}

int m2u_midi_set_track_program(m2u_midi *m, int track, int program) {
    if (check_track(m, track) != 0) return -1;
    if (program < 0 || program > 127) return m2u_fail("midi: program %d out of range 0..127", program);
    midi_track *t = &m->tracks[track];
    for (size_t j = 0; j < t->n; j++)
        if (t->ev[j].kind == EV_PROGRAM) t->ev[j].a = program;
    return 0;
}

static long track_end(const midi_track *t) {
    long end = 0;
    for (size_t j = 0; j < t->n; j++)
        if (t->ev[j].tick > end) end = t->ev[j].tick;
    return end;
}

static long song_end(const m2u_midi *m) {
    long end = track_end(&m->conductor);
    for (int i = 0; i < m->n_tracks; i++) {
        long e = track_end(&m->tracks[i]);
        if (e > end) end = e;
    }
    return end;
}

double m2u_midi_length_beats(const m2u_midi *m) { return (double)song_end(m) / m->ppq; }
int m2u_midi_track_count(const m2u_midi *m) { return m->n_tracks; }

int m2u_midi_key_sharps(int tonic, int mode) {
    /* major keys by tonic pitch class; pitch class 6 spelled Gb (-6) */
    static const int major[12] = {0, -5, 2, -3, 4, -1, -6, 1, -4, 3, -2, 5};
    if (tonic < 0 || tonic > 11) return 0;
    if (mode == M2U_MIDI_MINOR) return major[(tonic + 3) % 12]; /* relative major */
    if (mode == M2U_MIDI_MAJOR) return major[tonic];
    return 0;
}

/* ---- encoding -------------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->oom || n == 0) return; /* n == 0: src may be NULL (empty meta events) */
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_u8(buf *b, int v) {
    unsigned char c = (unsigned char)v;
    put(b, &c, 1);
}

static void put_be(buf *b, uint32_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--) put_u8(b, (int)((v >> (8 * i)) & 0xFF));
}

static void put_vlq(buf *b, uint32_t v) {
    unsigned char tmp[5];
    int n = 0;
    tmp[n++] = v & 0x7F;
    while (v >>= 7) tmp[n++] = (unsigned char)(0x80 | (v & 0x7F));
    while (n) put_u8(b, tmp[--n]);
}

static int order(ev_kind k) {
    switch (k) {
    case EV_TEMPO:
    case EV_TIMESIG:
    case EV_KEYSIG: return 0;
    case EV_NOTE_OFF: return 1;
    case EV_PROGRAM:
    case EV_CONTROL: return 2;
    case EV_NOTE_ON: return 3;
    }
    return 4;
}

static int cmp_event(const void *pa, const void *pb) {
    const midi_event *a = pa, *b = pb;
    if (a->tick != b->tick) return a->tick < b->tick ? -1 : 1;
    int oa = order(a->kind), ob = order(b->kind);
    if (oa != ob) return oa < ob ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static void put_meta(buf *b, int type, const void *data, size_t n) {
    put_u8(b, 0xFF);
    put_u8(b, type);
    put_vlq(b, (uint32_t)n);
    put(b, data, n);
}

static int encode_track(buf *b, const midi_track *t, int channel, long end_tick) {
    /* sort a copy: encoding must not reorder the caller's song (const) */
    midi_event *ev = NULL;
    if (t->n) {
        ev = malloc(t->n * sizeof *ev);
        if (!ev) return m2u_fail("midi: out of memory");
        memcpy(ev, t->ev, t->n * sizeof *ev);
        qsort(ev, t->n, sizeof *ev, cmp_event);
    }
    put(b, "MTrk", 4);
    size_t len_at = b->n;
    put_be(b, 0, 4); /* patched below */
    size_t body = b->n;
    if (t->name[0]) {
        put_vlq(b, 0);
        put_meta(b, 0x03, t->name, strlen(t->name));
    }
    long now = 0;
    for (size_t j = 0; j < t->n; j++) {
        const midi_event *e = &ev[j];
        put_vlq(b, (uint32_t)(e->tick - now));
        now = e->tick;
        unsigned char d[5];
        switch (e->kind) {
        case EV_TEMPO:
            d[0] = (unsigned char)(e->a >> 16);
            d[1] = (unsigned char)(e->a >> 8);
            d[2] = (unsigned char)e->a;
            put_meta(b, 0x51, d, 3);
            break;
        case EV_TIMESIG:
            /* 24 MIDI clocks per metronome click, 8 32nds per quarter: the usual values */
            d[0] = (unsigned char)e->a;
            d[1] = (unsigned char)e->b;
            d[2] = 24;
            d[3] = 8;
            put_meta(b, 0x58, d, 4);
            break;
        case EV_KEYSIG:
            d[0] = (unsigned char)(signed char)m2u_midi_key_sharps(e->a, e->b);
            d[1] = (unsigned char)e->b;
            put_meta(b, 0x59, d, 2);
            break;
        case EV_NOTE_OFF:
            /* a real note-off (0x80) rather than note-on velocity 0: unambiguous for any reader */
            put_u8(b, 0x80 | channel);
            put_u8(b, e->a);
            put_u8(b, 64);
            break;
        case EV_PROGRAM:
            put_u8(b, 0xC0 | channel);
            put_u8(b, e->a);
            break;
        case EV_CONTROL:
            put_u8(b, 0xB0 | channel);
            put_u8(b, e->a);
            put_u8(b, e->b);
            break;
        case EV_NOTE_ON:
            put_u8(b, 0x90 | channel);
            put_u8(b, e->a);
            put_u8(b, e->b);
            break;
        }
    }
    free(ev);
    /* every track ends at the song's end so players agree on its length */
    put_vlq(b, (uint32_t)(end_tick > now ? end_tick - now : 0));
    put_meta(b, 0x2F, NULL, 0);
    if (b->oom) return m2u_fail("midi: out of memory");
    size_t len = b->n - body;
    if (len > 0xFFFFFFFFu) return m2u_fail("midi: track too long for SMF");
    for (int i = 0; i < 4; i++) b->p[len_at + (size_t)i] = (unsigned char)(len >> (8 * (3 - i)));
    return 0;
}

int m2u_midi_encode(const m2u_midi *m, unsigned char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    buf b = {0};
    long end = song_end(m);
    put(&b, "MThd", 4);
    put_be(&b, 6, 4);
    put_be(&b, 1, 2); /* type 1: conductor + parallel tracks */
    put_be(&b, (uint32_t)(m->n_tracks + 1), 2);
    put_be(&b, (uint32_t)m->ppq, 2);
    if (encode_track(&b, &m->conductor, 0, end) != 0) goto fail;
    for (int i = 0; i < m->n_tracks; i++)
        if (encode_track(&b, &m->tracks[i], m->tracks[i].channel, end) != 0) goto fail;
    if (b.oom) {
        m2u_fail("midi: out of memory");
        goto fail;
    }
    *data = b.p;
    *len = b.n;
    return 0;
fail:
    free(b.p);
    return -1;
}

int m2u_midi_write(const m2u_midi *m, const char *path) {
    unsigned char *data;
    size_t len;
    if (m2u_midi_encode(m, &data, &len) != 0) return -1;
    int rc = m2u_write_file_atomic(path, data, len);
    free(data);
    if (rc != 0) return m2u_fail_prefix("midi: writing %s", path);
    return 0;
}
