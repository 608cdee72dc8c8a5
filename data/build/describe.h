/* The deterministic captioner: music analysis (analysis.h) -> natural captions,
 * MusicQA question/answer pairs, edit instructions and pairing rationales.
 *
 * Every sentence states only what was measured (tempo, key and mode, loudness,
 * brightness, percussiveness, dynamics, mood from valence/arousal) or known
 * (the instrument of a MIDI source), so different music gets different,
 * correct text.  Phrasing is varied by a seed (the sample id's hash): the same
 * seed and facts give the same text on every machine, whatever the number of
 * ranks.  Words are chosen from thresholds documented next to each function,
 * so m2u-eval's attribute agreement can read them back.
 *
 * All outputs are malloc'ed NUL-terminated strings (caller frees); NULL only
 * when out of memory. */
#ifndef M2U_DESCRIBE_H
#define M2U_DESCRIBE_H

#include "analysis.h"

#include <stdint.h>

typedef struct {
    const m2u_analysis *a;  /* required */
    const char *instrument; /* lead instrument when known (MIDI program name), else NULL */
    const char *family;     /* its family word ("piano", "strings", ...), else NULL */
    int has_drums;          /* 1 known drums, 0 known none, -1 unknown (use percussiveness) */
} m2u_music_facts;

/* Tempo word: < 72 bpm "slow", < 100 "relaxed", < 125 "moderate", < 150 "upbeat",
 * else "fast"; "free-tempo" when no tempo was found. */
const char *m2u_tempo_word(double bpm);
/* Whether a caption states these measurements at all: a tempo of 40..240 bpm
 * with tempo_confidence >= 0.3 (a beat tracker locked on a sub-beat can
 * report 400 bpm), a key with key_confidence >= 0.5.  m2u-eval's attribute
 * agreement reads captions back with the same rule. */
int m2u_caption_states_tempo(double bpm, double confidence);
int m2u_caption_states_key(int key, double confidence);
/* Mood word from the valence/arousal quadrant of m2u_mood_from_analysis:
 * v >= 0, a >= 0 "cheerful"; v >= 0, a < 0 "calm"; v < 0, a >= 0 "tense";
 * v < 0, a < 0 "melancholic". */
const char *m2u_mood_word(double valence, double arousal);
/* Loudness word: < -30 LUFS "quiet", < -18 "moderately loud", else "loud". */
const char *m2u_loudness_word(double lufs);
/* Timbre word from the spectral centroid: < 1000 Hz "dark", < 2200 "warm", else "bright". */
const char *m2u_brightness_word(double centroid_hz);

/* A one- or two-sentence caption, e.g. "A calm, relaxed piano piece in D
 * minor at about 84 BPM, quiet and warm-sounding." */
char *m2u_describe_music(const m2u_music_facts *f, uint64_t seed);

/* Up to max MusicQA pairs about the clip (tempo, key, mood, instrument,
 * loudness, percussion), the subjects drawn without repetition by the seed.
 * q[i], ans[i] malloc'ed; returns the number made (0..max), -1 out of memory. */
int m2u_music_qa(const m2u_music_facts *f, uint64_t seed, int max, char **q, char **ans);

/* Edit instructions (MUEdit).  `from` is the source's analysis, `to` the
 * target's (measured after the edit), so numbers in the text are true. */
typedef enum {
    M2U_EDIT_TEMPO = 0,  /* time-stretch: value = tempo ratio (1.25 = 25 % faster) */
    M2U_EDIT_KEY,        /* pitch-shift: value = semitones */
    M2U_EDIT_LOUDNESS,   /* gain: value = dB */
    M2U_EDIT_INSTRUMENT, /* MIDI re-render: value = GM program; instrument names in facts */
    M2U_EDIT_COUNT
} m2u_edit_kind;
/* "tempo", "key", "loudness", "instrument". */
const char *m2u_edit_name(m2u_edit_kind k);
char *m2u_describe_edit(m2u_edit_kind k, double value, const m2u_music_facts *from, const m2u_music_facts *to,
                        uint64_t seed);

/* MUImage / MUVideo: the request ("Compose music for this image.") and the
 * answer's rationale joining the picture's phrase (visual.h) to the music's
 * caption.  is_video selects the wording. */
char *m2u_describe_visual_request(int is_video, uint64_t seed);
char *m2u_describe_pairing(int is_video, const char *visual_phrase, const char *music_caption, double valence,
                           double arousal, uint64_t seed);

/* 64-bit seed of a string (FNV-1a): the sample id -> its phrasing. */
uint64_t m2u_text_seed(const char *s);

#endif
