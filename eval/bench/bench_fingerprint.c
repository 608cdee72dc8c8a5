/* m2u-bench-fingerprint: the evidence behind the near-duplicate decision
 * (fingerprint.h), measured on real music and on test tones.
 *
 *   m2u-bench-fingerprint [MIDI_DIR [N_PIECES]]
 *     (default: Debian's OpenMSX set, /usr/share/games/openttd/baseset/openmsx, all pieces)
 *
 * Each Standard MIDI File (first N in name order) is rendered as the builder
 * does (m2u_midi_render, FluidR3 GM, 24 kHz, up to 130 s) and copied:
 *   true duplicates   MP3 64 kb/s, Ogg Vorbis q0, AAC 48 kb/s at 16 kHz (ffmpeg
 *                     CLI, decoded back with m2u_audio_decode), the same audio
 *                     starting 7 s later, a 30-s excerpt from 20 s
 *   different clips   the piece transposed -1 and +2 semitones (librubberband):
 *                     a transposition is another clip (another key: the builder's
 *                     own MUEdit pairs are made of such edits), and every other piece
 * and 100 test tones, 20 s each, are made: 20 sines (110 Hz to 1.76 kHz), 10
 * harmonic tones, 20 beeping sines (ffmpeg's sine beep_factor), 20 tremolo
 * sines, 20 four-note arpeggios at 20 base pitches; each sine, harmonic tone,
 * beep and arpeggio also as MP3 64 kb/s (a true duplicate of it).
 * Every pair is compared with m2u_fingerprint_compare; printed: the range of
 * similarity and agreement per class, then recall and precision of the old
 * decision (similarity >= 0.85) and of m2u_fingerprint_is_duplicate, and how
 * many distinct originals a build would drop (the later of a duplicate pair).
 * Needs ffmpeg with libmp3lame / libvorbis / aac.  About 10 minutes for the 31
 * OpenMSX pieces on one core. */
#include "audio_edit.h"
#include "bench_args.h"
#include "decode.h"
#include "fingerprint.h"
#include "m2u_error.h"
#include "midi_render.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define RATE 24000
#define PI 3.14159265358979323846

enum { ORIG, COPY, TRANSPOSED };
typedef struct {
    char name[96];
    uint32_t *fp;
    size_t n;
    int group;  /* same group + one of them ORIG or COPY: a true duplicate pair */
    int kind;   /* ORIG, COPY, TRANSPOSED */
    int family; /* 0 piece, 1 sine, 2 harmonic, 3 beep, 4 tremolo, 5 arpeggio */
} item;

static const char *const FAMILY[6] = {"piece", "sine", "harmonic", "beep", "tremolo", "arpeggio"};
static item *g_it;
static int g_n, g_cap;
static char g_tmp[256];

static int add(const char *name, const float *x, size_t n, int group, int kind, int family) {
    if (g_n == g_cap) g_it = realloc(g_it, (size_t)(g_cap = g_cap ? 2 * g_cap : 256) * sizeof *g_it);
    item *p = &g_it[g_n];
    snprintf(p->name, sizeof p->name, "%s", name);
    if (m2u_fingerprint(x, n, RATE, 120, &p->fp, &p->n)) return -1;
    p->group = group, p->kind = kind, p->family = family;
    g_n++;
    return 0;
}

static int write_wav(const char *path, const float *x, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    uint32_t data = (uint32_t)(n * 4), riff = 36 + data, rate = RATE, br = RATE * 4;
    unsigned char h[44] = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'A', 'V', 'E', 'f', 'm', 't', ' ', 16, 0, 0, 0, 3, 0, 1, 0};
    memcpy(h + 4, &riff, 4), memcpy(h + 24, &rate, 4), memcpy(h + 28, &br, 4);
    h[32] = 4, h[34] = 32;
    memcpy(h + 36, "data", 4), memcpy(h + 40, &data, 4);
    int ok = fwrite(h, 1, 44, f) == 44 && fwrite(x, 4, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* through the ffmpeg CLI (args: encoder options, ext: container) and back */
static int reencode(const float *x, size_t n, const char *args, const char *ext, const char *name, int group,
                    int family) {
    char wav[300], out[300], cmd[1024];
    snprintf(wav, sizeof wav, "%s/in.wav", g_tmp);
    snprintf(out, sizeof out, "%s/out.%s", g_tmp, ext);
    if (write_wav(wav, x, n)) return m2u_fail("%s: cannot write", wav);
    snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -loglevel error -y -i '%s' %s '%s'", wav, args, out);
    if (system(cmd) != 0) return m2u_fail("ffmpeg failed: %s", cmd);
    float *y;
    int64_t ny;
    if (m2u_audio_decode(out, RATE, &y, &ny, NULL)) return -1;
    int rc = add(name, y, (size_t)ny, group, COPY, family);
    free(y);
    return rc;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int make_pieces(const char *dir, int max_n) {
    DIR *d = opendir(dir);
    if (!d) return m2u_fail("%s: cannot list", dir);
    char *names[512];
    int nf = 0;
    for (struct dirent *e; (e = readdir(d)) && nf < 512;) {
        size_t L = strlen(e->d_name);
        if (L > 4 && !strcasecmp(e->d_name + L - 4, ".mid")) names[nf++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)nf, sizeof *names, cmp_name);
    int rc = 0;
    for (int f = 0; f < nf && !rc; f++) {
        if (f >= max_n) continue;
        char path[1024], nm[96];
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        m2u_midi_render_opts o = {.rate = RATE, .program = -1, .max_s = 130};
        float *x;
        int64_t n;
        if (m2u_midi_render(path, &o, &x, &n)) {
            fprintf(stderr, "skipped: %s\n", m2u_last_error());
            continue;
        }
        size_t un = (size_t)n;
        snprintf(nm, sizeof nm, "%.60s", names[f]);
        rc = add(nm, x, un, f, ORIG, 0);
        static const char *const enc[3][3] = {{"-c:a libmp3lame -b:a 64k", "mp3", "mp3"},
                                              {"-c:a libvorbis -q:a 0", "ogg", "vorbis"},
                                              {"-c:a aac -b:a 48k -ar 16000", "m4a", "aac16k"}};
        for (int k = 0; k < 3 && !rc; k++) {
            snprintf(nm, sizeof nm, "%.60s %s", names[f], enc[k][2]);
            rc = reencode(x, un, enc[k][0], enc[k][1], nm, f, 0);
        }
        if (!rc && un > 27 * RATE) {
            snprintf(nm, sizeof nm, "%.60s +7s", names[f]);
            rc = add(nm, x + 7 * RATE, un - 7 * RATE, f, COPY, 0);
        }
        if (!rc && un > 50 * RATE) {
            snprintf(nm, sizeof nm, "%.60s 20-50s", names[f]);
            rc = add(nm, x + 20 * RATE, 30 * RATE, f, COPY, 0);
        }
        static const double semis[2] = {-1, 2};
        for (int k = 0; k < 2 && !rc; k++) {
            float *y;
            size_t ny;
            if ((rc = m2u_pitch_shift(x, un, RATE, semis[k], &y, &ny))) break;
            snprintf(nm, sizeof nm, "%.60s %+g st", names[f], semis[k]);
            rc = add(nm, y, ny, f, TRANSPOSED, 0);
            free(y);
        }
        free(x);
        fprintf(stderr, "%d/%d %s\n", f + 1, nf < max_n ? nf : max_n, names[f]);
    }
    for (int f = 0; f < nf; f++) free(names[f]);
    return rc;
}

static int make_tones(void) {
    size_t n = 20 * RATE;
    float *x = malloc(n * sizeof *x);
    int rc = 0, group = 100000;
    for (int k = 0; k < 90 && !rc; k++, group++) {
        int family = k < 20 ? 1 : k < 30 ? 2 : k < 50 ? 3 : k < 70 ? 4 : 5;
        int j = k < 20 ? k : k < 30 ? k - 20 : k < 50 ? k - 30 : k < 70 ? k - 50 : k - 70;
        double f = family == 1 ? 110 * pow(2, j * 4.0 / 19 + 0.013 * j)
                   : family == 2 ? 130 * pow(2, j * 0.37)
                                 : 200 * pow(2, j * 1.37 / 12);
        for (size_t i = 0; i < n; i++) {
            double t = (double)i / RATE, v = 0;
            if (family == 1) v = 0.5 * sin(2 * PI * f * t);
            if (family == 2)
                for (int h = 1; h <= 6; h++) v += 0.3 / h * sin(2 * PI * f * h * t);
            if (family == 3) /* ffmpeg's sine beep_factor=4: a 1/25-s beep at 4 f every second */
                v = 0.5 * sin(2 * PI * (fmod(t, 1.0) < 0.04 ? 4 * f : f) * t);
            if (family == 4) v = 0.5 * sin(2 * PI * f * t) * (0.6 + 0.4 * sin(2 * PI * 3 * t));
            if (family == 5) {
                static const int st[4] = {0, 4, 7, 12};
                double ff = f * pow(2, st[(int)(t / 0.25) % 4] / 12.0), tt = fmod(t, 0.25);
                v = 0.5 * exp(-tt * 6) * sin(2 * PI * ff * t);
            }
            x[i] = (float)v;
        }
        char nm[96];
        snprintf(nm, sizeof nm, "%s %.1f Hz", FAMILY[family], f);
        rc = add(nm, x, n, group, ORIG, family);
        if (!rc && family != 4) {
            snprintf(nm, sizeof nm, "%s %.1f Hz mp3", FAMILY[family], f);
            rc = reencode(x, n, "-c:a libmp3lame -b:a 64k", "mp3", nm, group, family);
        }
    }
    free(x);
    return rc;
}

typedef struct {
    double s, a;
} pr;

int main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: m2u-bench-fingerprint [MIDI_DIR [N_PIECES]]\n\n"
               "Recall and precision of the near-duplicate decision on the first N_PIECES Standard MIDI\n"
               "Files of MIDI_DIR (default: all of %s), rendered, re-encoded, shifted,\n"
               "cut and transposed, and on 100 test tones.  About 10 minutes for 31 pieces.\n\n"
               "example: m2u-bench-fingerprint /usr/share/games/openttd/baseset/openmsx 8\n",
               "/usr/share/games/openttd/baseset/openmsx");
        return 0;
    }
    if (argc > 3) {
        fprintf(stderr, "m2u-bench-fingerprint: at most two arguments, MIDI_DIR and N_PIECES (see --help)\n");
        return 2;
    }
    const char *dir = argc > 1 ? argv[1] : "/usr/share/games/openttd/baseset/openmsx";
    long max_n = 1 << 30;
    if (argc > 2 && parse_long("m2u-bench-fingerprint", "N_PIECES", argv[2], 1, 1000000, &max_n)) return 2;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/m2u-bench-fingerprint.XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror(g_tmp);
        return 1;
    }
    if (make_pieces(dir, (int)max_n) || make_tones()) {
        fprintf(stderr, "m2u-bench-fingerprint: %s\n", m2u_last_error());
        return 1;
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);

    /* classes: 0 duplicate pieces, 1 duplicate tones, 2 transposed, 3 different pieces,
     * 4 piece vs tone, 5 different tones */
    static const char *const CLS[6] = {"same piece (copies)", "same tone (MP3)", "transposed piece",
                                       "different pieces", "piece vs tone", "different tones"};
    double smin[6], smax[6], amin[6], amax[6];
    long cnt[6] = {0}, old_yes[6] = {0}, new_yes[6] = {0};
    for (int c = 0; c < 6; c++) smin[c] = amin[c] = 2, smax[c] = amax[c] = -1;
    pr *m = malloc((size_t)g_n * (size_t)g_n * sizeof *m);
    for (int i = 0; i < g_n; i++)
        for (int j = i + 1; j < g_n; j++) {
            item *x = &g_it[i], *y = &g_it[j];
            int c;
            if (x->group == y->group) {
                if (x->kind == TRANSPOSED || y->kind == TRANSPOSED) {
                    if (x->kind != ORIG && y->kind != ORIG) continue; /* transposed vs a copy: skipped */
                    c = 2;
                } else {
                    c = x->family ? 1 : 0;
                }
            } else {
                c = !x->family && !y->family ? 3 : !x->family || !y->family ? 4 : 5;
            }
            m2u_fingerprint_match mm;
            m2u_fingerprint_compare(x->fp, x->n, y->fp, y->n, &mm);
            m[(size_t)i * g_n + j] = m[(size_t)j * g_n + i] = (pr){mm.similarity, mm.agreement};
            cnt[c]++;
            if (mm.similarity < smin[c]) smin[c] = mm.similarity;
            if (mm.similarity > smax[c]) smax[c] = mm.similarity;
            if (mm.agreement < amin[c]) amin[c] = mm.agreement;
            if (mm.agreement > amax[c]) amax[c] = mm.agreement;
            old_yes[c] += mm.similarity >= M2U_FINGERPRINT_DUP_THRESHOLD;
            new_yes[c] += m2u_fingerprint_is_duplicate(&mm, M2U_FINGERPRINT_DUP_THRESHOLD);
        }
    printf("%d clips; pairs per class: similarity [min, max], agreement [min, max], called duplicates by\n"
           "the old decision (similarity >= %.2f) / by m2u_fingerprint_is_duplicate (and agreement >= %.2f)\n",
           g_n, M2U_FINGERPRINT_DUP_THRESHOLD, M2U_FINGERPRINT_DUP_AGREEMENT);
    for (int c = 0; c < 6; c++)
        if (cnt[c])
            printf("  %-20s %6ld pairs  similarity [%.3f, %.3f]  agreement [%.3f, %.3f]  old %6ld  new %6ld\n", CLS[c],
                   cnt[c], smin[c], smax[c], amin[c], amax[c], old_yes[c], new_yes[c]);
    for (int rule = 0; rule < 2; rule++) {
        long *yes = rule ? new_yes : old_yes;
        long tp_p = yes[0], tp_t = yes[1], fp_p = yes[2] + yes[3], fp_all = yes[2] + yes[3] + yes[4] + yes[5];
        printf("%s: pieces recall %.3f (%ld/%ld) precision %.3f; all clips recall %.3f (%ld/%ld) precision %.3f "
               "(%ld false)\n",
               rule ? "new" : "old", cnt[0] ? (double)tp_p / cnt[0] : 0, tp_p, cnt[0],
               tp_p + fp_p ? (double)tp_p / (double)(tp_p + fp_p) : 1, (double)(tp_p + tp_t) / (double)(cnt[0] + cnt[1]),
               tp_p + tp_t, cnt[0] + cnt[1], (double)(tp_p + tp_t) / (double)(tp_p + tp_t + fp_all), fp_all);
    }
    /* a build of the distinct originals alone: the later file of a duplicate pair goes */
    for (int rule = 0; rule < 2; rule++) {
        int dropped[6] = {0}, total[6] = {0};
        int *kept = malloc((size_t)g_n * sizeof *kept), nk = 0;
        for (int i = 0; i < g_n; i++) {
            if (g_it[i].kind != ORIG) continue;
            total[g_it[i].family]++;
            int dup = 0;
            for (int k = 0; k < nk && !dup; k++) {
                pr p = m[(size_t)i * g_n + kept[k]];
                dup = rule ? p.s >= M2U_FINGERPRINT_DUP_THRESHOLD && p.a >= M2U_FINGERPRINT_DUP_AGREEMENT
                           : p.s >= M2U_FINGERPRINT_DUP_THRESHOLD;
            }
            if (dup) dropped[g_it[i].family]++;
            else kept[nk++] = i;
        }
        printf("%s: distinct originals a build would drop:", rule ? "new" : "old");
        for (int f = 0; f < 6; f++) printf(" %s %d/%d", FAMILY[f], dropped[f], total[f]);
        printf("\n");
        free(kept);
    }
    for (int i = 0; i < g_n; i++) free(g_it[i].fp);
    free(g_it);
    free(m);
    return 0;
}
