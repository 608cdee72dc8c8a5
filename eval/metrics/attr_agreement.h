/* Attribute agreement: do a model's words about tempo, key, mode, loudness and
 * mood agree with what was measured on the audio?
 *
 * The vocabulary is the one data/build/describe.h writes captions and MusicQA
 * answers with, so a reference text parsed here gives back exactly the
 * measured words (tests/eval/test_eval_report.c checks this on captions made
 * by m2u_describe_music and m2u_music_qa):
 *
 *   attribute  classes (index order)                                measured value -> word
 *   tempo      slow relaxed moderate upbeat fast free-tempo         m2u_tempo_word(bpm) when the caption
 *                                                                   would state a tempo (40..240 bpm and
 *                                                                   tempo_confidence >= 0.3), else free-tempo
 *   key        C major .. B major, C minor .. B minor (mode*12+pc)  key/mode when key_confidence >= 0.5
 *   mode       major minor                                          as key
 *   loudness   quiet, moderately loud, loud                         m2u_loudness_word(loudness_lufs)
 *   mood       cheerful calm tense melancholic                      m2u_mood_word(valence, arousal)
 *
 * The parser (m2u_attr_parse) works on the prediction text:
 *   - Words are matched case-insensitively on word boundaries (a boundary is
 *     any character that is not an ASCII letter or digit, so "warm-sounding"
 *     and "tempo:" split, "loudness" is not "loud", "moderately" is not
 *     "moderate").  Multi-word entries ("moderately loud", "free-tempo") are
 *     matched as phrases.
 *   - Per attribute the FIRST mention in the text wins (the earliest start;
 *     at equal starts the longer phrase).  Negations ("not fast") are not
 *     understood.
 *   - Tempo: a tempo word; if there is none, a number followed by "bpm" or
 *     "beats per minute" (e.g. "about 84 BPM") is mapped through
 *     m2u_tempo_word.  The first such number is also returned as `bpm`.
 *   - Key: a note letter A-G written UPPER-case (so the article in "a minor
 *     key" is not the note A), an optional accidental ("#", "b", "♯", "♭",
 *     " sharp", " flat", "-sharp", "-flat"), one or more spaces, then "major"
 *     or "minor".  Enharmonic spellings map to the same pitch class
 *     (C# = Db).  "E#"/"Cb" etc. map arithmetically (E# = F).
 *   - Mode: the key's mode when a key was found; else the first standalone
 *     "major" or "minor".
 *   - Loudness: a loudness word; if there is none, a number followed by
 *     "LUFS" (e.g. "around -14 LUFS") mapped through m2u_loudness_word; the
 *     first such number is also returned as `lufs`.
 *   - Mood: a mood word.
 *
 * Scores per attribute, over the items whose measured class is known:
 *   n_measured   items with a known measured class
 *   n_stated     of those, items whose text states a class
 *   n_correct    of those, items whose stated class equals the measured one
 *   accuracy     n_correct / n_stated   (when it says something, is it right?)
 *   agreement    n_correct / n_measured (unstated counts as wrong)
 *   confusion    [measured class][stated class, or the last column "not stated"]
 * plus, for tempo, stated bpm numbers within 4 % of the measured tempo. */
#ifndef M2U_ATTR_AGREEMENT_H
#define M2U_ATTR_AGREEMENT_H

typedef enum { M2U_ATTR_TEMPO, M2U_ATTR_KEY, M2U_ATTR_MODE, M2U_ATTR_LOUDNESS, M2U_ATTR_MOOD, M2U_ATTR_COUNT } m2u_attr;

/* Parsed (or measured) classes: cls[a] is a class index of attribute a, or -1. */
typedef struct {
    int cls[M2U_ATTR_COUNT];
    double bpm;  /* a stated "N BPM" / measured tempo; NaN when none */
    double lufs; /* a stated "N LUFS" / measured loudness; NaN when none */
} m2u_attr_set;

/* "tempo", "key", "mode", "loudness", "mood". */
const char *m2u_attr_name(m2u_attr a);
int m2u_attr_n_classes(m2u_attr a);
/* Class names, e.g. (M2U_ATTR_KEY, 14) -> "D minor"; NULL when out of range. */
const char *m2u_attr_class_name(m2u_attr a, int cls);

/* Parse a text (rules above).  Never fails; a NULL text states nothing. */
void m2u_attr_parse(const char *text, m2u_attr_set *out);

/* Measured values from a sample's attribute columns (NaN = unknown). */
typedef struct {
    double tempo_bpm, tempo_confidence, key, mode, key_confidence, loudness_lufs, valence, arousal;
} m2u_attr_measured;
void m2u_attr_measured_clear(m2u_attr_measured *m); /* all NaN */
/* Fill from parallel arrays of attribute names and values (a shard's attr_names
 * and one sample's attrs); unknown names are ignored. */
void m2u_attr_measured_from_columns(m2u_attr_measured *m, const char *const *names, const float *values, int n);
/* The classes the measured values give (table above); -1 where unknown. */
void m2u_attr_measured_classes(const m2u_attr_measured *m, m2u_attr_set *out);

/* Accumulated agreement. */
typedef struct {
    long n_measured[M2U_ATTR_COUNT], n_stated[M2U_ATTR_COUNT], n_correct[M2U_ATTR_COUNT];
    long *confusion[M2U_ATTR_COUNT]; /* [n_classes][n_classes + 1] */
    long bpm_n, bpm_within_4pct;     /* items with a stated bpm and a measured tempo / within 4 % */
} m2u_attr_agreement;

int m2u_attr_agreement_init(m2u_attr_agreement *ag); /* 0, or -1 after m2u_fail (out of memory) */
void m2u_attr_agreement_free(m2u_attr_agreement *ag);
/* Count one item: measured classes vs the classes its text states. */
void m2u_attr_agreement_add(m2u_attr_agreement *ag, const m2u_attr_set *measured, const m2u_attr_set *stated);
/* accuracy / agreement as defined above; NaN when the denominator is 0. */
double m2u_attr_accuracy(const m2u_attr_agreement *ag, m2u_attr a);
double m2u_attr_agreement_rate(const m2u_attr_agreement *ag, m2u_attr a);

#endif
