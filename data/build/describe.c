#include "describe.h"

#include "rng.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t m2u_text_seed(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* printf into a fresh malloc'ed string */
static char *vfmt(const char *f, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, f, ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) vsnprintf(s, (size_t)n + 1, f, ap2);
    va_end(ap2);
    return s;
}

static char *fmt(const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    char *s = vfmt(f, ap);
    va_end(ap);
    return s;
}

/* pick one of n strings */
static const char *pick(m2u_rng *r, const char *const *opts, int n) { return opts[m2u_rng_next(r) % (uint64_t)n]; }
#define PICK(r, ...)                                                                                    \
    pick(r, (const char *const[]){__VA_ARGS__},                                                         \
         (int)(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)))

const char *m2u_tempo_word(double bpm) {
    if (!(bpm > 0)) return "free-tempo";
    if (bpm < 72) return "slow";
    if (bpm < 100) return "relaxed";
    if (bpm < 125) return "moderate";
    if (bpm < 150) return "upbeat";
    return "fast";
}

const char *m2u_mood_word(double v, double a) {
    if (v >= 0) return a >= 0 ? "cheerful" : "calm";
    return a >= 0 ? "tense" : "melancholic";
}

const char *m2u_loudness_word(double lufs) {
    if (lufs < -30) return "quiet";
    if (lufs < -18) return "moderately loud";
    return "loud";
}

const char *m2u_brightness_word(double c) {
    if (c < 1000) return "dark";
    if (c < 2200) return "warm";
    return "bright";
}

const char *m2u_edit_name(m2u_edit_kind k) {
    static const char *const n[M2U_EDIT_COUNT] = {"tempo", "key", "loudness", "instrument"};
    return k >= 0 && k < M2U_EDIT_COUNT ? n[k] : "unknown";
}

int m2u_caption_states_tempo(double bpm, double confidence) { return bpm >= 40 && bpm <= 240 && confidence >= 0.3; }
int m2u_caption_states_key(int key, double confidence) { return key >= 0 && confidence >= 0.5; }
static int has_key(const m2u_analysis *a) { return m2u_caption_states_key(a->key, a->key_confidence); }
static int has_tempo(const m2u_analysis *a) { return m2u_caption_states_tempo(a->tempo_bpm, a->tempo_confidence); }
static int drums(const m2u_music_facts *f) {
    return f->has_drums >= 0 ? f->has_drums : f->a->percussiveness >= 0.35;
}

static const char *article(const char *w) { return strchr("aeiouAEIOU", w[0]) ? "An" : "A"; }

char *m2u_describe_music(const m2u_music_facts *f, uint64_t seed) {
    const m2u_analysis *a = f->a;
    m2u_rng r;
    m2u_rng_seed(&r, seed ^ 0xca9710ULL);
    double v, ar;
    m2u_mood_from_analysis(a, &v, &ar);
    const char *mood = m2u_mood_word(v, ar), *tempo = m2u_tempo_word(has_tempo(a) ? a->tempo_bpm : 0);
    const char *noun = PICK(&r, "piece", "track", "tune", "composition");
    char inst[96] = "";
    if (f->instrument) snprintf(inst, sizeof inst, "%s ", f->instrument);
    char key[48] = "", bpm[48] = "";
    if (has_key(a)) snprintf(key, sizeof key, " in %s", m2u_key_name(a->key, a->mode));
    if (has_tempo(a)) snprintf(bpm, sizeof bpm, " at about %.0f BPM", a->tempo_bpm);
    const char *loud = m2u_loudness_word(a->loudness_lufs), *bright = m2u_brightness_word(a->centroid_hz);
    const char *perc = drums(f) ? PICK(&r, "with a clear percussive beat", "driven by drums and percussion",
                                       "with prominent percussion")
                                : PICK(&r, "without drums", "with smooth, sustained sounds", "with no percussion");
    char first[320];
    int form = (int)(m2u_rng_next(&r) % 3);
    if (form == 0)
        snprintf(first, sizeof first, "%s %s, %s %s%s%s%s.", article(mood), mood, tempo, inst, noun, key, bpm);
    else if (form == 1)
        snprintf(first, sizeof first, "This %s%s is %s and %s%s%s.", inst, noun, mood, tempo, key, bpm);
    else
        snprintf(first, sizeof first, "%s %s %s%s%s with a %s feel%s.", article(tempo), tempo, inst, noun, key, mood,
                 bpm);
    first[0] = (char)(first[0] >= 'a' && first[0] <= 'z' ? first[0] - 32 : first[0]);
    const char *second = PICK(&r, "It sounds %s and %s, %s.", "The sound is %s and %s, %s.",
                              "Overall it is %s and %s-sounding, %s.");
    char tail[256];
    snprintf(tail, sizeof tail, second, loud, bright, perc);
    return fmt("%s %s", first, tail);
}

/* ---- MusicQA ---- */
enum { Q_TEMPO, Q_KEY, Q_MOOD, Q_INSTRUMENT, Q_LOUDNESS, Q_DRUMS, Q_COUNT };

static int qa_one(const m2u_music_facts *f, int subject, m2u_rng *r, char **q, char **ans) {
    const m2u_analysis *a = f->a;
    double v, ar;
    m2u_mood_from_analysis(a, &v, &ar);
    switch (subject) {
    case Q_TEMPO:
        *q = strdup(PICK(r, "What is the tempo of this music?", "How fast is this piece?",
                         "Roughly how many beats per minute does this track have?"));
        *ans = fmt("The tempo is about %.0f beats per minute, a %s pace.", a->tempo_bpm, m2u_tempo_word(a->tempo_bpm));
        break;
    case Q_KEY:
        *q = strdup(PICK(r, "What key is this music in?", "Which key and mode is this piece in?",
                         "Is this music in a major or a minor key?"));
        *ans = fmt("It is in %s, a %s key.", m2u_key_name(a->key, a->mode),
                   a->mode == M2U_MODE_MAJOR ? "major" : "minor");
        break;
    case Q_MOOD:
        *q = strdup(PICK(r, "What mood does this music convey?", "How would you describe the feeling of this music?",
                         "What emotion does this track express?"));
        *ans = fmt("It feels %s: %s %s and %s.", m2u_mood_word(v, ar),
                   v >= 0 ? "the harmony sounds" : "the harmony sounds rather",
                   v >= 0 ? "positive" : "dark", ar >= 0 ? "the energy is high" : "the energy is low");
        break;
    case Q_INSTRUMENT:
        *q = strdup(PICK(r, "Which instrument plays the lead in this music?", "What instrument do you hear most?",
                         "What is the main instrument of this piece?"));
        *ans = fmt("The lead is played on the %s.", f->instrument);
        break;
    case Q_LOUDNESS:
        *q = strdup(PICK(r, "Is this music loud or quiet?", "How loud is this track?"));
        *ans = fmt("It is %s, around %.0f LUFS, with %s dynamics.", m2u_loudness_word(a->loudness_lufs),
                   a->loudness_lufs, a->dynamics_db >= 12 ? "wide" : "fairly even");
        break;
    default:
        *q = strdup(PICK(r, "Are there drums in this music?", "Does this piece have percussion?"));
        *ans = strdup(drums(f) ? "Yes, percussion carries a clear rhythm." : "No, there is no noticeable percussion.");
        break;
    }
    return *q && *ans ? 0 : -1;
}

int m2u_music_qa(const m2u_music_facts *f, uint64_t seed, int max, char **q, char **ans) {
    int avail[Q_COUNT], n = 0;
    for (int s = 0; s < Q_COUNT; s++) {
        if (s == Q_TEMPO && !has_tempo(f->a)) continue;
        if (s == Q_KEY && !has_key(f->a)) continue;
        if (s == Q_INSTRUMENT && !f->instrument) continue;
        avail[n++] = s;
    }
    m2u_rng r;
    m2u_rng_seed(&r, seed ^ 0x9a0ULL);
    int made = 0;
    for (; made < max && n > 0; made++) {
        int k = (int)(m2u_rng_next(&r) % (uint64_t)n);
        q[made] = ans[made] = NULL;
        if (qa_one(f, avail[k], &r, &q[made], &ans[made])) {
            free(q[made]);
            free(ans[made]);
            for (int i = 0; i < made; i++) free(q[i]), free(ans[i]);
            return -1;
        }
        avail[k] = avail[--n];
    }
    return made;
}

/* ---- edits ---- */
char *m2u_describe_edit(m2u_edit_kind k, double value, const m2u_music_facts *from, const m2u_music_facts *to,
                        uint64_t seed) {
    m2u_rng r;
    m2u_rng_seed(&r, seed ^ 0xed17ULL);
    switch (k) {
    case M2U_EDIT_TEMPO:
        return fmt(PICK(&r, "Make this music %s, at about %.0f BPM instead of %.0f.",
                        "Change the tempo: play it %s, around %.0f BPM rather than %.0f.",
                        "Could you make it %s? Aim for roughly %.0f BPM (it is %.0f now)."),
                   value > 1 ? "faster" : "slower", to->a->tempo_bpm, from->a->tempo_bpm);
    case M2U_EDIT_KEY: {
        int st = (int)lround(value);
        return fmt(PICK(&r, "Transpose this music %s by %d semitone%s, from %s to %s.",
                        "Shift the key %s %d semitone%s so it moves from %s to %s.",
                        "Move the piece %s by %d semitone%s: %s becomes %s."),
                   st > 0 ? "up" : "down", abs(st), abs(st) == 1 ? "" : "s", m2u_key_name(from->a->key, from->a->mode),
                   m2u_key_name(to->a->key, to->a->mode));
    }
    case M2U_EDIT_LOUDNESS:
        return fmt(PICK(&r, "Make this music %s by about %.0f dB.", "Turn it %s, roughly %.0f dB.",
                        "Please make the track %s: about %.0f dB of change."),
                   value > 0 ? "louder" : "quieter", fabs(value));
    case M2U_EDIT_INSTRUMENT:
        return fmt(PICK(&r, "Play this music on %s instead of %s.", "Replace the %2$s with %1$s.",
                        "Keep the melody but switch the instrument to %s (it is %s now)."),
                   to->instrument ? to->instrument : "another instrument",
                   from->instrument ? from->instrument : "the current instrument");
    default: return NULL;
    }
}

char *m2u_describe_visual_request(int is_video, uint64_t seed) {
    m2u_rng r;
    m2u_rng_seed(&r, seed ^ 0x5151ULL);
    if (is_video)
        return strdup(PICK(&r, "Compose background music for this video.", "Write music that fits this video.",
                           "Generate a soundtrack that matches the mood of this clip."));
    return strdup(PICK(&r, "Compose music that fits this image.", "Create music inspired by this picture.",
                       "Generate music that matches the mood of this image."));
}

char *m2u_describe_pairing(int is_video, const char *visual_phrase, const char *music_caption, double v, double a,
                           uint64_t seed) {
    m2u_rng r;
    m2u_rng_seed(&r, seed ^ 0x9a1bULL);
    const char *mood = m2u_mood_word(v, a);
    return fmt(PICK(&r, "The %s shows %s, which feels %s, so here is music to match. %s",
                    "Since the %s is %s and reads as %s, the music follows that mood. %s",
                    "Matching the %s (%s, a %s atmosphere): %s"),
               is_video ? "video" : "image", visual_phrase, mood, music_caption);
}
