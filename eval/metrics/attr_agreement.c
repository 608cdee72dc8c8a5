#include "attr_agreement.h"

#include "describe.h"
#include "key.h"
#include "m2u_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const k_attr_names[M2U_ATTR_COUNT] = {"tempo", "key", "mode", "loudness", "mood"};
static const char *const k_tempo[] = {"slow", "relaxed", "moderate", "upbeat", "fast", "free-tempo"};
static const char *const k_mode[] = {"major", "minor"};
static const char *const k_loud[] = {"quiet", "moderately loud", "loud"};
static const char *const k_mood[] = {"cheerful", "calm", "tense", "melancholic"};
#define N_OF(a) ((int)(sizeof(a) / sizeof *(a)))

const char *m2u_attr_name(m2u_attr a) { return a >= 0 && a < M2U_ATTR_COUNT ? k_attr_names[a] : NULL; }

int m2u_attr_n_classes(m2u_attr a) {
    switch (a) {
    case M2U_ATTR_TEMPO: return N_OF(k_tempo);
    case M2U_ATTR_KEY: return 24;
    case M2U_ATTR_MODE: return N_OF(k_mode);
    case M2U_ATTR_LOUDNESS: return N_OF(k_loud);
    case M2U_ATTR_MOOD: return N_OF(k_mood);
    default: return 0;
    }
}

const char *m2u_attr_class_name(m2u_attr a, int c) {
    if (c < 0 || c >= m2u_attr_n_classes(a)) return NULL;
    switch (a) {
    case M2U_ATTR_TEMPO: return k_tempo[c];
    case M2U_ATTR_KEY: return m2u_key_name(c % 12, c < 12 ? M2U_MODE_MAJOR : M2U_MODE_MINOR);
    case M2U_ATTR_MODE: return k_mode[c];
    case M2U_ATTR_LOUDNESS: return k_loud[c];
    default: return k_mood[c];
    }
}

static int class_of(const char *const *names, int n, const char *word) {
    for (int i = 0; word && i < n; i++)
        if (!strcmp(names[i], word)) return i;
    return -1;
}

/* ---- parsing ----------------------------------------------------------------------------- */

static int is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* phrase (lower-case) at s[p], case-insensitively, ending on a word boundary; its length or 0 */
static size_t phrase_at(const char *s, size_t p, const char *phrase) {
    size_t n = strlen(phrase);
    if (strncasecmp(s + p, phrase, n) != 0) return 0;
    return is_alnum(s[p + n]) ? 0 : n;
}

/* The class whose phrase starts first (at a word start); the longer one at equal starts. */
static int first_word(const char *s, const char *const *names, int n, size_t *at) {
    for (size_t p = 0; s[p]; p++) {
        if (p > 0 && is_alnum(s[p - 1])) continue;
        int best = -1;
        size_t best_len = 0;
        for (int i = 0; i < n; i++) {
            size_t l = phrase_at(s, p, names[i]);
            if (l > best_len) best = i, best_len = l;
        }
        if (best >= 0) {
            if (at) *at = p;
            return best;
        }
    }
    return -1;
}

/* The first number directly followed (after spaces) by one of the units. */
static double number_before(const char *s, const char *const *units, int n_units) {
    for (size_t p = 0; s[p]; p++) {
        if (p > 0 && (is_alnum(s[p - 1]) || s[p - 1] == '.')) continue;
        size_t q = p;
        if (s[q] == '-' || s[q] == '+') q++;
        if (!(s[q] >= '0' && s[q] <= '9')) continue;
        char *end;
        double v = strtod(s + p, &end);
        size_t e = (size_t)(end - s);
        if (is_alnum(s[e])) continue;
        while (s[e] == ' ') e++;
        for (int u = 0; u < n_units; u++)
            if (phrase_at(s, e, units[u])) return v;
    }
    return NAN;
}

static const int k_letter_pc[7] = {9, 11, 0, 2, 4, 5, 7}; /* A B C D E F G */

/* A key name at s[p]: upper-case note letter, accidental, spaces, major|minor. */
static int key_at(const char *s, size_t p) {
    char c = s[p];
    if (c < 'A' || c > 'G' || (p > 0 && is_alnum(s[p - 1]))) return -1;
    int pc = k_letter_pc[c - 'A'];
    size_t q = p + 1;
    static const struct {
        const char *txt;
        int d;
    } acc[] = {{"\xe2\x99\xaf", 1}, {"\xe2\x99\xad", -1}, {"#", 1}, {" sharp", 1}, {"-sharp", 1},
               {" flat", -1},       {"-flat", -1},        {"b", -1}};
    for (int i = 0; i < N_OF(acc); i++) {
        size_t l = strlen(acc[i].txt);
        if (strncasecmp(s + q, acc[i].txt, l) == 0 && (i < 3 || !is_alnum(s[q + l]))) {
            if (i == 7 && s[q] != 'b') continue; /* a flat is a lower-case b */
            pc = (pc + acc[i].d + 12) % 12;
            q += l;
            break;
        }
    }
    if (s[q] != ' ') return -1;
    while (s[q] == ' ') q++;
    if (phrase_at(s, q, "major")) return pc;
    if (phrase_at(s, q, "minor")) return 12 + pc;
    return -1;
}

void m2u_attr_parse(const char *s, m2u_attr_set *o) {
    for (int a = 0; a < M2U_ATTR_COUNT; a++) o->cls[a] = -1;
    o->bpm = o->lufs = NAN;
    if (!s) return;
    static const char *const bpm_units[] = {"bpm", "beats per minute"};
    static const char *const lufs_units[] = {"lufs"};
    o->bpm = number_before(s, bpm_units, 2);
    o->lufs = number_before(s, lufs_units, 1);
    o->cls[M2U_ATTR_TEMPO] = first_word(s, k_tempo, N_OF(k_tempo), NULL);
    if (o->cls[M2U_ATTR_TEMPO] < 0 && isfinite(o->bpm))
        o->cls[M2U_ATTR_TEMPO] = class_of(k_tempo, N_OF(k_tempo), m2u_tempo_word(o->bpm));
    for (size_t p = 0; s[p]; p++) {
        int k = key_at(s, p);
        if (k >= 0) {
            o->cls[M2U_ATTR_KEY] = k;
            o->cls[M2U_ATTR_MODE] = k >= 12;
            break;
        }
    }
    if (o->cls[M2U_ATTR_MODE] < 0) o->cls[M2U_ATTR_MODE] = first_word(s, k_mode, N_OF(k_mode), NULL);
    o->cls[M2U_ATTR_LOUDNESS] = first_word(s, k_loud, N_OF(k_loud), NULL);
    if (o->cls[M2U_ATTR_LOUDNESS] < 0 && isfinite(o->lufs))
        o->cls[M2U_ATTR_LOUDNESS] = class_of(k_loud, N_OF(k_loud), m2u_loudness_word(o->lufs));
    o->cls[M2U_ATTR_MOOD] = first_word(s, k_mood, N_OF(k_mood), NULL);
}

/* ---- measured ---------------------------------------------------------------------------- */

void m2u_attr_measured_clear(m2u_attr_measured *m) {
    m->tempo_bpm = m->tempo_confidence = m->key = m->mode = m->key_confidence = m->loudness_lufs = m->valence =
        m->arousal = NAN;
}

void m2u_attr_measured_from_columns(m2u_attr_measured *m, const char *const *names, const float *v, int n) {
    m2u_attr_measured_clear(m);
    static const char *const cols[] = {"tempo_bpm", "tempo_confidence", "key",     "mode",
                                       "key_confidence", "loudness_lufs", "valence", "arousal"};
    double *dst[] = {&m->tempo_bpm, &m->tempo_confidence, &m->key,     &m->mode,
                     &m->key_confidence, &m->loudness_lufs, &m->valence, &m->arousal};
    for (int i = 0; names && v && i < n; i++)
        for (int c = 0; c < N_OF(cols); c++)
            if (names[i] && !strcmp(names[i], cols[c])) *dst[c] = v[i];
}

void m2u_attr_measured_classes(const m2u_attr_measured *m, m2u_attr_set *o) {
    for (int a = 0; a < M2U_ATTR_COUNT; a++) o->cls[a] = -1;
    o->bpm = m->tempo_bpm;
    o->lufs = m->loudness_lufs;
    if (isfinite(m->tempo_bpm)) {
        /* the rule the captioner uses to state a tempo at all (describe.h) */
        int stated = m2u_caption_states_tempo(m->tempo_bpm, isnan(m->tempo_confidence) ? 1 : m->tempo_confidence);
        o->cls[M2U_ATTR_TEMPO] = class_of(k_tempo, N_OF(k_tempo), m2u_tempo_word(stated ? m->tempo_bpm : 0));
    }
    if (isfinite(m->key) && isfinite(m->mode) && m->key >= 0 && m->key <= 11 && (m->mode == 0 || m->mode == 1) &&
        m2u_caption_states_key((int)m->key, isnan(m->key_confidence) ? 1 : m->key_confidence)) {
        int minor = m->mode == M2U_MODE_MINOR;
        o->cls[M2U_ATTR_KEY] = minor * 12 + (int)m->key;
        o->cls[M2U_ATTR_MODE] = minor;
    }
    if (isfinite(m->loudness_lufs))
        o->cls[M2U_ATTR_LOUDNESS] = class_of(k_loud, N_OF(k_loud), m2u_loudness_word(m->loudness_lufs));
    if (isfinite(m->valence) && isfinite(m->arousal))
        o->cls[M2U_ATTR_MOOD] = class_of(k_mood, N_OF(k_mood), m2u_mood_word(m->valence, m->arousal));
}

/* ---- agreement --------------------------------------------------------------------------- */

int m2u_attr_agreement_init(m2u_attr_agreement *ag) {
    memset(ag, 0, sizeof *ag);
    for (int a = 0; a < M2U_ATTR_COUNT; a++) {
        int n = m2u_attr_n_classes((m2u_attr)a);
        ag->confusion[a] = calloc((size_t)n * (size_t)(n + 1), sizeof(long));
        if (!ag->confusion[a]) {
            m2u_attr_agreement_free(ag);
            return m2u_fail("out of memory");
        }
    }
    return 0;
}

void m2u_attr_agreement_free(m2u_attr_agreement *ag) {
    for (int a = 0; a < M2U_ATTR_COUNT; a++) free(ag->confusion[a]);
    memset(ag, 0, sizeof *ag);
}

void m2u_attr_agreement_add(m2u_attr_agreement *ag, const m2u_attr_set *meas, const m2u_attr_set *st) {
    for (int a = 0; a < M2U_ATTR_COUNT; a++) {
        int n = m2u_attr_n_classes((m2u_attr)a), m = meas->cls[a], p = st->cls[a];
        if (m < 0 || m >= n) continue;
        ag->n_measured[a]++;
        if (p >= 0 && p < n) {
            ag->n_stated[a]++;
            ag->n_correct[a] += p == m;
        }
        ag->confusion[a][(size_t)m * (size_t)(n + 1) + (size_t)(p >= 0 && p < n ? p : n)]++;
    }
    if (isfinite(meas->bpm) && meas->bpm > 0 && isfinite(st->bpm)) {
        ag->bpm_n++;
        ag->bpm_within_4pct += fabs(st->bpm - meas->bpm) <= 0.04 * meas->bpm;
    }
}

double m2u_attr_accuracy(const m2u_attr_agreement *ag, m2u_attr a) {
    return ag->n_stated[a] ? (double)ag->n_correct[a] / (double)ag->n_stated[a] : NAN;
}

double m2u_attr_agreement_rate(const m2u_attr_agreement *ag, m2u_attr a) {
    return ag->n_measured[a] ? (double)ag->n_correct[a] / (double)ag->n_measured[a] : NAN;
}
