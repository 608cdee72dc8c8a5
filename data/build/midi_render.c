/* MIDI rendering with libfluidsynth and SMF summaries (see midi_render.h). */
#include "midi_render.h"

#include "m2u_error.h"

#include <errno.h>
#include <fluidsynth.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILE_BYTES (64u << 20) /* larger "MIDI files" are refused */
#define MAX_EVENTS 20000000u
#define BLOCK 1024 /* render block (frames) */
#define TAIL_PEAK 1e-4f /* -80 dBFS */
#define TAIL_REL 1e-3f  /* -60 dB below the peak so far */

/* ---- SMF parsing ------------------------------------------------------------ */

enum { K_CHANNEL, K_SYSEX, K_TEMPO, K_END };

typedef struct {
    int64_t tick;
    uint32_t track, seq; /* merge order for equal ticks */
    uint8_t kind;        /* K_* */
    uint8_t status;      /* channel events: 0x80..0xEF */
    uint8_t d1, d2;
    uint32_t off, len;   /* K_SYSEX: bytes in the file buffer (after F0, F7 included); K_TEMPO: off = us/quarter */
    double t;            /* seconds, filled after merging */
} smf_event;

typedef struct {
    const char *path;
    unsigned char *buf; /* whole file */
    size_t size;
    int format, ntracks_hdr, ntracks;
    int ppq;            /* > 0: ticks per quarter */
    double smpte_tps;   /* > 0: ticks per second (SMPTE division) */
    smf_event *ev;
    size_t n, cap;
    double end_s; /* time of the last event */
} smf;

static void smf_free(smf *s) {
    free(s->buf);
    free(s->ev);
    memset(s, 0, sizeof *s);
}

static uint32_t be32(const unsigned char *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint16_t be16(const unsigned char *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t le32(const unsigned char *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static int read_whole(const char *path, unsigned char **data, size_t *len) {
    *data = NULL;
    *len = 0;
    struct stat st;
    if (stat(path, &st) != 0) return m2u_fail("%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return m2u_fail("%s: is a directory, not a MIDI file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return m2u_fail("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = malloc(cap);
    if (!b) {
        fclose(f);
        return m2u_fail("%s: out of memory", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap >= MAX_FILE_BYTES) {
                free(b);
                fclose(f);
                return m2u_fail("%s: larger than %u MiB, not a MIDI file", path, MAX_FILE_BYTES >> 20);
            }
            unsigned char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                fclose(f);
                return m2u_fail("%s: out of memory", path);
            }
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(b);
        return m2u_fail("%s: read error", path);
    }
    *data = b;
    *len = n;
    return 0;
}

static int push_event(smf *s, const smf_event *e) {
    if (s->n == s->cap) {
        if (s->cap >= MAX_EVENTS) return m2u_fail("%s: more than %u MIDI events", s->path, MAX_EVENTS);
        size_t nc = s->cap ? s->cap * 2 : 4096;
        smf_event *ne = realloc(s->ev, nc * sizeof *ne);
        if (!ne) return m2u_fail("%s: out of memory", s->path);
        s->ev = ne;
        s->cap = nc;
    }
    s->ev[s->n++] = *e;
    return 0;
}

/* Variable-length quantity at *p (< end); advances *p.  -1 on overrun or > 4 bytes. */
static int vlq(const unsigned char **p, const unsigned char *end, uint32_t *v) {
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        if (*p >= end) return -1;
        unsigned char c = *(*p)++;
        x = x << 7 | (c & 0x7F);
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

static int parse_track(smf *s, const unsigned char *d, size_t len, uint32_t track) {
    const unsigned char *p = d, *end = d + len;
    int64_t tick = 0;
    uint32_t seq = 0;
    unsigned char running = 0;
    while (p < end) {
        const unsigned char *ev_start = p;
        uint32_t delta;
        if (vlq(&p, end, &delta) != 0) goto truncated;
        tick += delta;
        if (p >= end) goto truncated;
        unsigned char st = *p;
        smf_event e = {.tick = tick, .track = track, .seq = seq++};
        if (st >= 0xF0) {
            p++;
            /* the SMF spec says sysex and meta events cancel running status;
             * it is kept (as many players do) so that files relying on it
             * still parse; a conforming file never notices */
            if (st == 0xF0 || st == 0xF7) {
                uint32_t n;
                if (vlq(&p, end, &n) != 0 || n > (size_t)(end - p)) goto truncated;
                if (st == 0xF0 && n > 0) { /* complete sysex (escape F7 packets are skipped) */
                    e.kind = K_SYSEX;
                    e.off = (uint32_t)(p - s->buf);
                    e.len = n;
                    if (push_event(s, &e) != 0) return -1;
                }
                p += n;
            } else if (st == 0xFF) {
                if (p >= end) goto truncated;
                unsigned char type = *p++;
                uint32_t n;
                if (vlq(&p, end, &n) != 0 || n > (size_t)(end - p)) goto truncated;
                if (type == 0x51 && n >= 3) {
                    e.kind = K_TEMPO;
                    e.off = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
                    if (e.off == 0) e.off = 1;
                    if (push_event(s, &e) != 0) return -1;
                }
                p += n;
                if (type == 0x2F) break; /* End of Track */
            } else {
                return m2u_fail("%s: malformed MIDI track %u: status byte 0x%02X at byte %zu", s->path, track,
                                st, (size_t)(ev_start - s->buf));
            }
            continue;
        }
        if (st & 0x80) {
            running = st;
            p++;
        } else if (!running) {
            return m2u_fail("%s: malformed MIDI track %u: data byte without a status at byte %zu", s->path, track,
                            (size_t)(ev_start - s->buf));
        }
        int nd = ((running & 0xF0) == 0xC0 || (running & 0xF0) == 0xD0) ? 1 : 2;
        if ((size_t)(end - p) < (size_t)nd) goto truncated;
        for (int i = 0; i < nd; i++)
            if (p[i] & 0x80)
                return m2u_fail("%s: malformed MIDI track %u: data byte 0x%02X at byte %zu", s->path, track, p[i],
                                (size_t)(p + i - s->buf));
        e.kind = K_CHANNEL;
        e.status = running;
        e.d1 = p[0];
        e.d2 = nd == 2 ? p[1] : 0;
        p += nd;
        if (push_event(s, &e) != 0) return -1;
    }
    /* End of Track (explicit, or the chunk ended cleanly) */
    smf_event e = {.tick = tick, .track = track, .seq = seq, .kind = K_END};
    return push_event(s, &e);
truncated:
    return m2u_fail("%s: truncated or malformed MIDI track %u (an event runs past the end of its chunk)", s->path,
                    track);
}

static int cmp_event(const void *a, const void *b) {
    const smf_event *x = a, *y = b;
    if (x->tick != y->tick) return x->tick < y->tick ? -1 : 1;
    if (x->track != y->track) return x->track < y->track ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Read and parse path into s: events merged and timed. */
static int smf_load(const char *path, smf *s) {
    memset(s, 0, sizeof *s);
    s->path = path;
    if (!path) return m2u_fail("midi: no file name");
    if (read_whole(path, &s->buf, &s->size) != 0) return -1;
    const unsigned char *d = s->buf;
    size_t size = s->size;
    size_t base = 0;
    /* RIFF RMID wrapper: the SMF is the "data" chunk */
    if (size >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "RMID", 4)) {
        size_t off = 12, found = 0;
        while (off + 8 <= size) {
            uint32_t sz = le32(d + off + 4);
            if (!memcmp(d + off, "data", 4)) {
                base = off + 8;
                size = sz < size - base ? base + sz : size;
                found = 1;
                break;
            }
            if (sz > size - off - 8) break;
            off += 8 + sz + (sz & 1);
        }
        if (!found) {
            smf_free(s);
            return m2u_fail("%s: RIFF RMID file without a data chunk", path);
        }
    }
    if (size - base < 14 || memcmp(d + base, "MThd", 4)) {
        smf_free(s);
        return m2u_fail("%s: not a Standard MIDI File (no MThd header)", path);
    }
    uint32_t hlen = be32(d + base + 4);
    if (hlen < 6 || hlen > size - base - 8) {
        smf_free(s);
        return m2u_fail("%s: not a Standard MIDI File (header length %u)", path, hlen);
    }
    s->format = be16(d + base + 8);
    s->ntracks_hdr = be16(d + base + 10);
    uint16_t div = be16(d + base + 12);
    if (s->format > 2) {
        smf_free(s);
        return m2u_fail("%s: unknown MIDI file format %d", path, s->format);
    }
    if (div & 0x8000) {
        int fps = -(int)(int8_t)(div >> 8), tpf = div & 0xFF;
        if ((fps != 24 && fps != 25 && fps != 29 && fps != 30) || tpf == 0) {
            smf_free(s);
            return m2u_fail("%s: invalid SMPTE time division 0x%04X", path, div);
        }
        s->smpte_tps = (fps == 29 ? 29.97 : fps) * tpf;
    } else {
        if (div == 0) {
            smf_free(s);
            return m2u_fail("%s: time division 0 ticks per quarter note", path);
        }
        s->ppq = div;
    }
    size_t off = base + 8 + hlen;
    uint32_t track = 0;
    while (off + 8 <= size) {
        uint32_t clen = be32(d + off + 4);
        int is_trk = !memcmp(d + off, "MTrk", 4);
        if (clen > size - off - 8) {
            if (is_trk) {
                smf_free(s);
                return m2u_fail("%s: truncated MIDI file: track %u claims %u bytes, %zu remain", path, track, clen,
                                size - off - 8);
            }
            break; /* trailing junk after the tracks */
        }
        if (is_trk) {
            if (parse_track(s, d + off + 8, clen, track) != 0) {
                smf_free(s);
                return -1;
            }
            track++;
        }
        off += 8 + clen;
    }
    s->ntracks = (int)track;
    if (track == 0) {
        smf_free(s);
        return m2u_fail("%s: MIDI file without tracks", path);
    }
    if ((int)track < s->ntracks_hdr) {
        smf_free(s);
        return m2u_fail("%s: truncated MIDI file: %u of %d tracks present", path, track, s->ntracks_hdr);
    }
    qsort(s->ev, s->n, sizeof *s->ev, cmp_event);
    /* tempo map: seconds of every event */
    double sec = 0, us_per_q = 500000;
    int64_t last_tick = 0;
    for (size_t i = 0; i < s->n; i++) {
        smf_event *e = &s->ev[i];
        if (s->ppq) {
            sec += (double)(e->tick - last_tick) * us_per_q / (1e6 * s->ppq);
            last_tick = e->tick;
            e->t = sec;
            if (e->kind == K_TEMPO) us_per_q = e->off;
        } else {
            e->t = (double)e->tick / s->smpte_tps;
        }
    }
    s->end_s = s->n ? s->ev[s->n - 1].t : 0;
    return 0;
}

/* ---- summary ---------------------------------------------------------------- */

int m2u_midi_summarize(const char *mid_path, m2u_midi_summary *out) {
    if (!out) return m2u_fail("midi summary: no output");
    memset(out, 0, sizeof *out);
    out->main_program = -1;
    smf s;
    if (smf_load(mid_path, &s) != 0) return -1;
    int prog[16] = {0};
    for (size_t i = 0; i < s.n; i++) {
        const smf_event *e = &s.ev[i];
        if (e->kind != K_CHANNEL) continue;
        int ch = e->status & 0x0F, type = e->status & 0xF0;
        if (type == 0xC0) {
            prog[ch] = e->d1;
        } else if (type == 0x90 && e->d2 > 0) {
            if (ch == 9)
                out->drum_notes++;
            else
                out->notes[prog[ch]]++;
        }
    }
    /* The lead: the program with the most notes, leaving out the bass family
     * (GM 32-39) when anything else plays: a walking bass out-notes the tune
     * but is not what a listener calls the lead instrument. */
    int64_t best = 0;
    for (int pass = 0; pass < 2 && out->main_program < 0; pass++)
        for (int p = 0; p < 128; p++)
            if ((pass == 1 || p < 32 || p > 39) && out->notes[p] > best) {
                best = out->notes[p];
                out->main_program = p;
            }
    out->duration_s = s.end_s;
    smf_free(&s);
    return 0;
}

/* ---- fluidsynth logging: captured, never printed ---------------------------- */

static _Thread_local char g_fs_msg[256];
static _Thread_local int g_fs_capture;
static pthread_once_t g_log_once = PTHREAD_ONCE_INIT;

static void fs_log(int level, const char *message, void *data) {
    (void)data;
    if (level > FLUID_ERR || !g_fs_capture || g_fs_msg[0] || !message) return;
    snprintf(g_fs_msg, sizeof g_fs_msg, "%s", message);
    size_t l = strlen(g_fs_msg);
    while (l && (g_fs_msg[l - 1] == '\n' || g_fs_msg[l - 1] == '\r')) g_fs_msg[--l] = 0;
}

static void install_log(void) {
    for (int lv = FLUID_PANIC; lv <= FLUID_DBG; lv++) fluid_set_log_function(lv, fs_log, NULL);
    /* fluidsynth initialises its global tables (and libinstpatch) in the first
     * new_fluid_synth() with an atomic flag that does not make a concurrent
     * second caller wait: create one synthesizer here, under pthread_once */
    fluid_settings_t *st = new_fluid_settings();
    fluid_synth_t *syn = st ? new_fluid_synth(st) : NULL;
    if (syn) delete_fluid_synth(syn);
    if (st) delete_fluid_settings(st);
}

static void fs_begin(void) {
    pthread_once(&g_log_once, install_log);
    g_fs_msg[0] = 0;
    g_fs_capture = 1;
}

static const char *fs_detail(void) { return g_fs_msg[0] ? g_fs_msg : "no detail from fluidsynth"; }

/* ---- rendering -------------------------------------------------------------- */

typedef struct {
    fluid_settings_t *settings;
    fluid_synth_t *synth;
    float *out;
    int64_t n, cap, limit;
    float l[BLOCK], r[BLOCK];
    float last_peak; /* of the last block rendered */
    float song_peak; /* of everything rendered so far */
} renderer;

/* Render frames up to position `to` (capped at r->limit). */
static int render_to(renderer *r, int64_t to) {
    if (to > r->limit) to = r->limit;
    if (to <= r->n) return 0;
    if (to > r->cap) {
        int64_t nc = r->cap ? r->cap : 1 << 18;
        while (nc < to) nc *= 2;
        if (nc > r->limit) nc = r->limit;
        float *no = realloc(r->out, (size_t)nc * sizeof *no);
        if (!no) return m2u_fail("out of memory for %lld samples", (long long)nc);
        r->out = no;
        r->cap = nc;
    }
    while (r->n < to) {
        int len = to - r->n > BLOCK ? BLOCK : (int)(to - r->n);
        if (fluid_synth_write_float(r->synth, len, r->l, 0, 1, r->r, 0, 1) != FLUID_OK)
            return m2u_fail("fluidsynth failed to render: %s", fs_detail());
        float pk = 0;
        float *o = r->out + r->n;
        for (int i = 0; i < len; i++) {
            float v = 0.5f * (r->l[i] + r->r[i]);
            o[i] = v;
            float a = fabsf(v);
            if (a > pk) pk = a;
        }
        r->last_peak = pk;
        if (pk > r->song_peak) r->song_peak = pk;
        r->n += len;
    }
    return 0;
}

static void set_override(fluid_synth_t *syn, int program) {
    for (int ch = 0; ch < 16; ch++) {
        if (ch == 9) continue;
        fluid_synth_bank_select(syn, ch, 0);
        fluid_synth_program_change(syn, ch, program);
    }
}

static void send_event(const smf *s, const smf_event *e, fluid_synth_t *syn, int program) {
    if (e->kind == K_SYSEX) {
        /* fluidsynth wants the bytes between F0 and F7 */
        int len = (int)e->len;
        const char *data = (const char *)s->buf + e->off;
        if (len > 0 && (unsigned char)data[len - 1] == 0xF7) len--;
        if (len > 0) fluid_synth_sysex(syn, data, len, NULL, NULL, NULL, 0);
        if (program >= 0) set_override(syn, program);
        return;
    }
    if (e->kind != K_CHANNEL) return;
    int ch = e->status & 0x0F, type = e->status & 0xF0;
    int melodic_override = program >= 0 && ch != 9;
    /* return codes are ignored on purpose: e.g. a drum note the soundfont lacks */
    switch (type) {
    case 0x80: fluid_synth_noteoff(syn, ch, e->d1); break;
    case 0x90:
        if (e->d2)
            fluid_synth_noteon(syn, ch, e->d1, e->d2);
        else
            fluid_synth_noteoff(syn, ch, e->d1);
        break;
    case 0xA0: fluid_synth_key_pressure(syn, ch, e->d1, e->d2); break;
    case 0xB0:
        if (melodic_override && (e->d1 == 0 || e->d1 == 32)) break; /* bank select */
        fluid_synth_cc(syn, ch, e->d1, e->d2);
        break;
    case 0xC0: fluid_synth_program_change(syn, ch, melodic_override ? program : e->d1); break;
    case 0xD0: fluid_synth_channel_pressure(syn, ch, e->d1); break;
    case 0xE0: fluid_synth_pitch_bend(syn, ch, e->d1 | e->d2 << 7); break;
    default: break;
    }
}

static int setup_synth(renderer *r, const char *sf, int rate) {
    r->settings = new_fluid_settings();
    if (!r->settings) return m2u_fail("fluidsynth: cannot create settings: %s", fs_detail());
    int ok = fluid_settings_setnum(r->settings, "synth.sample-rate", rate) == FLUID_OK &&
             fluid_settings_setnum(r->settings, "synth.gain", M2U_MIDI_RENDER_GAIN) == FLUID_OK &&
             fluid_settings_setint(r->settings, "synth.cpu-cores", 1) == FLUID_OK &&
             fluid_settings_setint(r->settings, "synth.threadsafe-api", 0) == FLUID_OK &&
             fluid_settings_setint(r->settings, "synth.lock-memory", 0) == FLUID_OK &&
             fluid_settings_setint(r->settings, "synth.dynamic-sample-loading", 0) == FLUID_OK &&
             fluid_settings_setint(r->settings, "synth.reverb.active", 1) == FLUID_OK &&
             fluid_settings_setint(r->settings, "synth.chorus.active", 1) == FLUID_OK &&
             fluid_settings_setint(r->settings, "synth.midi-channels", 16) == FLUID_OK &&
             fluid_settings_setint(r->settings, "synth.verbose", 0) == FLUID_OK;
    if (!ok) return m2u_fail("fluidsynth: cannot apply settings (rate %d): %s", rate, fs_detail());
    r->synth = new_fluid_synth(r->settings);
    if (!r->synth) return m2u_fail("fluidsynth: cannot create a synthesizer: %s", fs_detail());
    struct stat st;
    if (stat(sf, &st) != 0) return m2u_fail("soundfont %s: %s", sf, strerror(errno));
    if (S_ISDIR(st.st_mode)) return m2u_fail("soundfont %s: is a directory", sf);
    /* fluidsynth would hand a non-SF2 file to libinstpatch's DLS loader, which
     * prints glib warnings: check the RIFF "sfbk" header (SF2 and SF3) first */
    unsigned char hdr[12] = {0};
    FILE *f = fopen(sf, "rb");
    if (!f) return m2u_fail("soundfont %s: %s", sf, strerror(errno));
    size_t got = fread(hdr, 1, sizeof hdr, f);
    fclose(f);
    if (got < sizeof hdr || memcmp(hdr, "RIFF", 4) || memcmp(hdr + 8, "sfbk", 4))
        return m2u_fail("soundfont %s: not a SoundFont 2 file (no RIFF sfbk header)", sf);
    if (fluid_synth_sfload(r->synth, sf, 1) == FLUID_FAILED)
        return m2u_fail("soundfont %s: fluidsynth cannot load it: %s", sf, fs_detail());
    return 0;
}

static void teardown(renderer *r) {
    if (r->synth) delete_fluid_synth(r->synth);
    if (r->settings) delete_fluid_settings(r->settings);
    r->synth = NULL;
    r->settings = NULL;
}

int m2u_midi_render(const char *mid_path, const m2u_midi_render_opts *o, float **pcm, int64_t *n) {
    if (!pcm || !n) return m2u_fail("midi render: no output");
    *pcm = NULL;
    *n = 0;
    if (!o) return m2u_fail("midi render %s: no options", mid_path ? mid_path : "(null)");
    if (o->rate < 8000 || o->rate > 96000)
        return m2u_fail("midi render %s: rate %d out of range 8000..96000", mid_path ? mid_path : "(null)", o->rate);
    if (o->program < -1 || o->program > 127)
        return m2u_fail("midi render %s: program %d out of range -1..127", mid_path ? mid_path : "(null)",
                        o->program);
    if (!isfinite(o->max_s))
        return m2u_fail("midi render %s: max_s is not finite", mid_path ? mid_path : "(null)");
    smf s;
    if (smf_load(mid_path, &s) != 0) return -1;
    if (s.n == 0) {
        smf_free(&s);
        return m2u_fail("%s: MIDI file has no events", mid_path);
    }
    const char *sf = o->soundfont ? o->soundfont : M2U_MIDI_DEFAULT_SOUNDFONT;
    double max_s = o->max_s > 0 && o->max_s < M2U_MIDI_RENDER_MAX_S ? o->max_s : M2U_MIDI_RENDER_MAX_S;
    renderer *r = calloc(1, sizeof *r);
    if (!r) {
        smf_free(&s);
        return m2u_fail("midi render %s: out of memory", mid_path);
    }
    r->limit = llround(max_s * o->rate);
    if (r->limit < 1) r->limit = 1;
    fs_begin();
    int rc = setup_synth(r, sf, o->rate);
    if (rc == 0 && o->program >= 0) set_override(r->synth, o->program);
    for (size_t i = 0; rc == 0 && i < s.n && r->n < r->limit; i++) {
        const smf_event *e = &s.ev[i];
        rc = render_to(r, llround(e->t * o->rate));
        if (rc == 0 && r->n < r->limit) send_event(&s, e, r->synth, o->program);
    }
    if (rc == 0 && r->n < r->limit) {
        /* release everything, then the tail */
        for (int ch = 0; ch < 16; ch++) {
            fluid_synth_cc(r->synth, ch, 64, 0);
            fluid_synth_cc(r->synth, ch, 66, 0);
        }
        fluid_synth_all_notes_off(r->synth, -1);
        int64_t tail_end = r->n + llround(M2U_MIDI_RENDER_TAIL_S * o->rate);
        float quiet = r->song_peak * TAIL_REL;
        while (rc == 0 && r->n < r->limit && r->n < tail_end) {
            rc = render_to(r, r->n + BLOCK);
            if (r->last_peak < quiet ||
                (fluid_synth_get_active_voice_count(r->synth) == 0 && r->last_peak < TAIL_PEAK))
                break;
        }
    }
    g_fs_capture = 0;
    teardown(r);
    smf_free(&s);
    if (rc != 0) {
        free(r->out);
        free(r);
        return m2u_fail_prefix("midi render %s", mid_path);
    }
    if (r->n == 0) {
        free(r->out);
        free(r);
        return m2u_fail("midi render %s: rendered no samples", mid_path);
    }
    float *out = r->out;
    if (r->cap > r->n) {
        float *shrunk = realloc(out, (size_t)r->n * sizeof *out);
        if (shrunk) out = shrunk;
    }
    *pcm = out;
    *n = r->n;
    free(r);
    return 0;
}

/* ---- General MIDI names ----------------------------------------------------- */

static const char *const GM_NAMES[128] = {
    /* piano */
    "acoustic grand piano", "bright acoustic piano", "electric grand piano", "honky-tonk piano", "electric piano",
    "fm electric piano", "harpsichord", "clavinet",
    /* chromatic percussion */
    "celesta", "glockenspiel", "music box", "vibraphone", "marimba", "xylophone", "tubular bells", "dulcimer",
    /* organ */
    "drawbar organ", "percussive organ", "rock organ", "church organ", "reed organ", "accordion", "harmonica",
    "bandoneon",
    /* guitar */
    "nylon-string guitar", "steel-string acoustic guitar", "jazz electric guitar", "clean electric guitar",
    "muted electric guitar", "overdriven guitar", "distortion guitar", "guitar harmonics",
    /* bass */
    "acoustic bass", "fingered electric bass", "picked electric bass", "fretless bass", "slap bass", "slap bass",
    "synth bass", "synth bass",
    /* strings */
    "violin", "viola", "cello", "double bass", "tremolo strings", "pizzicato strings", "harp", "timpani",
    /* ensemble */
    "string ensemble", "slow strings", "synth strings", "synth strings", "choir", "vocal oohs", "synth voice",
    "orchestra hit",
    /* brass */
    "trumpet", "trombone", "tuba", "muted trumpet", "french horn", "brass section", "synth brass", "synth brass",
    /* reed */
    "soprano saxophone", "alto saxophone", "tenor saxophone", "baritone saxophone", "oboe", "english horn",
    "bassoon", "clarinet",
    /* pipe */
    "piccolo", "flute", "recorder", "pan flute", "blown bottle", "shakuhachi", "whistle", "ocarina",
    /* synth lead */
    "square wave lead", "sawtooth lead", "calliope lead", "chiff lead", "charang lead", "synth voice lead",
    "fifths lead", "bass and lead synth",
    /* synth pad */
    "new age pad", "warm pad", "polysynth pad", "choir pad", "bowed pad", "metallic pad", "halo pad", "sweep pad",
    /* synth effects */
    "rain effect", "soundtrack pad", "crystal effect", "atmosphere pad", "bright synth", "goblins effect",
    "echo synth", "sci-fi effect",
    /* ethnic */
    "sitar", "banjo", "shamisen", "koto", "kalimba", "bagpipe", "fiddle", "shehnai",
    /* percussive */
    "tinkle bell", "agogo", "steel drums", "woodblock", "taiko drum", "melodic tom", "synth drum", "reverse cymbal",
    /* sound effects */
    "guitar fret noise", "breath noise", "seashore", "birdsong", "telephone ring", "helicopter", "applause",
    "gunshot",
};

static const char *const GM_FAMILIES[16] = {
    "piano", "chromatic percussion", "organ", "guitar", "bass",  "strings", "ensemble",   "brass",
    "reed",  "pipe",                 "synth", "synth",  "synth", "ethnic",  "percussion", "sound effects",
};

const char *m2u_gm_program_name(int program) {
    return program >= 0 && program < 128 ? GM_NAMES[program] : "unknown";
}

const char *m2u_gm_family_name(int program) {
    return program >= 0 && program < 128 ? GM_FAMILIES[program / 8] : "unknown";
}
