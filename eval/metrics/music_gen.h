/* Scores of generated music against a dataset split (issue 12, "generation
 * benchmarks"): for each sample of the generation kinds (mucaps: caption ->
 * music, muedit: music + instruction -> music, muimage / muvideo: picture ->
 * music) a generated clip is looked up, analysed with m2u's own music
 * analysis (analysis.h) and compared with what the sample asked for; the
 * whole generated set is compared with the reference clips by FAD.
 *
 * Where a generated clip is.  For the sample with id ID, in gen_dir:
 *   - if gen_dir/predictions.jsonl exists, its line {"id": ID, "audio": PATH}
 *     (PATH absolute, or relative to gen_dir; an optional "text" field is the
 *     model's text answer, shown in the report);
 *   - else gen_dir/<file id>.wav, where <file id> is ID with every character
 *     other than A-Z a-z 0-9 . _ - replaced by '_' (m2u_music_file_id).
 * A missing or undecodable clip is not fatal: the item is kept with
 * generated = 0 and the reason, and counts as "not measured" in agreement.
 * Clips are decoded (any format FFmpeg reads) to mono at the shard's rate.
 *
 * The reference clip: the sample's /target_audio when it has one (muedit's
 * edited music; muimage / muvideo's chosen music), else its /audio (mucaps).
 *
 * What was asked (the "asked" classes), from the sample's attribute columns
 * (data/build/build.c writes them):
 *   mucaps, muimage, muvideo  the reference's analysis columns (tempo_bpm,
 *       key, mode, loudness_lufs, centroid_hz, percussiveness; valence and
 *       arousal, which for muimage / muvideo are the picture's mood: the music
 *       should match it).  The caption / instruction was written from them.
 *   muedit  the source's columns with the target_* columns in place
 *       (target_tempo_bpm, target_key, target_mode, target_loudness_lufs,
 *       target_centroid_hz), the mood recomputed from those with
 *       m2u_mood_from_analysis, percussiveness unknown after an instrument
 *       edit.  The attribute the edit changed (edit_attr):
 *         key        target_key known and != key;
 *         tempo      else target_tempo_bpm / tempo_bpm off 1 by more than 4 %;
 *         loudness   else edit_value one of -9, -6, 4, 6 dB and the target
 *                    loudness moved by edit_value within 1.5 LU;
 *         brightness else (the instrument edit: the timbre, as the centroid).
 * Classes (attr_agreement.h for the first five; the caption's words):
 *   tempo, key, mode, loudness, mood   m2u_attr_measured_classes;
 *   brightness   dark / warm / bright (m2u_brightness_word; unknown when the
 *                centroid is 0 or NaN);
 *   percussion   no drums / drums (percussiveness >= 0.35, describe.c's rule).
 * The generated clip's classes come from the same rules on its analysis (so
 * tempo is "free-tempo" when the tracker finds no confident tempo, key
 * unknown when key_confidence < 0.5).
 *
 * Agreement per attribute and group ("all", then each kind, then "edited":
 * muedit items on the attribute their edit changed only):
 *   n_asked    items whose asked class is known
 *   n_correct  of those, items whose generated clip's class equals it
 *   rate       n_correct / n_asked (a missing clip or an unknown measured
 *              class counts as wrong)
 *   confusion  [asked class][generated class, or the last column "not measured"]
 *
 * FAD: audio_embed.h's embedding (built-in spectral by default, MERT with
 * mert_dir: then the shard rate must be MERT's sampling rate) of the
 * reference clips of the selected samples vs the generated clips found,
 * Fréchet distance (distribution_metrics.h).  Not measured (with the reason)
 * when fewer than 2 clips embed on either side.
 * CLAP (with clap_dir, a transformers ClapModel directory: clap_score.h): for
 * each mucaps item with a generated clip, the cosine of the clip (decoded
 * again from gen_path at CLAP's 48 kHz) and the sample's caption; the score
 * is their mean (M2UGen's Text2Music CLAP).  The other kinds have no caption
 * of the music and are not scored.  Without clap_dir, or with no mucaps clip,
 * not measured, with the reason.
 * The paper's FAD and KL (with vggish_ckpt / passt_ckpt): the folder scorers
 * run on files, as in M2UGen's protocol.  Into work_dir (default: a temporary
 * folder, removed after) go ref/<file id>.wav, each selected sample's
 * reference clip as the shard holds it (16-bit PCM at the shard's rate, so
 * the WAV is the shard's samples exactly), and gen/<file id><ext>, a copy of
 * each generated clip found, in its own format.  Then
 *   FAD  fad_vggish.h on ref/ vs gen/ (fad_pytorch's protocol); it replaces
 *        the spectral / MERT FAD above, and fad_embedding says which ran;
 *   KL   passt_kl.h on the pairs by file id (M2UGen's KL); references
 *        without a generated clip are unpaired and not scored.
 * Without passt_ckpt the KL is not measured, with that reason.
 *
 * Functions return 0, or -1 after m2u_fail(); nothing prints. */
#ifndef M2U_MUSIC_GEN_H
#define M2U_MUSIC_GEN_H

#include <stddef.h>

typedef enum {
    M2U_GA_TEMPO,
    M2U_GA_KEY,
    M2U_GA_MODE,
    M2U_GA_LOUDNESS,
    M2U_GA_MOOD,
    M2U_GA_BRIGHTNESS,
    M2U_GA_PERCUSSION,
    M2U_GA_COUNT
} m2u_gen_attr;

const char *m2u_gen_attr_name(m2u_gen_attr a); /* "tempo" ... "brightness", "percussion" */
int m2u_gen_attr_n_classes(m2u_gen_attr a);
const char *m2u_gen_attr_class_name(m2u_gen_attr a, int cls); /* NULL when out of range */

/* Measured values a class is made from (NaN = unknown). */
typedef struct {
    double tempo_bpm, tempo_confidence, key, mode, key_confidence, loudness_lufs, valence, arousal, centroid_hz,
        percussiveness;
} m2u_gen_values;
void m2u_gen_values_clear(m2u_gen_values *v);
/* cls[M2U_GA_COUNT]: the class of each attribute, -1 where unknown. */
void m2u_gen_classes(const m2u_gen_values *v, int *cls);

typedef struct {
    char *id, *kind, *prompt, *reference_text, *answer_text; /* answer_text: predictions.jsonl "text", or NULL */
    char *gen_path;                                          /* where the clip was looked for */
    int generated;                                           /* the clip decoded and was analysed */
    char why[256];                                           /* when not generated */
    int edit_attr;                                           /* muedit: the attribute changed, else -1 */
    m2u_gen_values asked_v, got_v;
    int asked[M2U_GA_COUNT], got[M2U_GA_COUNT];
    double duration_s;
    double clap; /* CLAP cosine (mucaps with clap_dir), NAN when not scored */
    float *pcm;  /* the generated clip at rate (for the report), NULL when not generated */
    size_t n_pcm;
} m2u_music_item;

typedef struct {
    long n_asked[M2U_GA_COUNT], n_correct[M2U_GA_COUNT];
    long *confusion[M2U_GA_COUNT]; /* [n_classes][n_classes + 1] */
} m2u_music_agreement;

#define M2U_MUSIC_MAX_GROUPS 8
typedef struct {
    char *data, *split, *kinds, *gen_dir;
    int rate; /* the shard's audio rate; every clip is at this rate */
    m2u_music_item *items;
    int n_items, n_generated;
    int n_groups; /* "all", kinds in first-seen order, then "edited" when a muedit item exists */
    char group[M2U_MUSIC_MAX_GROUPS][16];
    int group_n[M2U_MUSIC_MAX_GROUPS];
    m2u_music_agreement ag[M2U_MUSIC_MAX_GROUPS];
    /* FAD */
    int fad_measured;
    double fad;
    char fad_embedding[128], fad_reason[256];
    size_t fad_ref_clips, fad_gen_clips, fad_dim;
    const char *kl_reason, *clap_reason; /* why not measured (clap_reason may point at clap_why) */
    char fad_sha256[65];  /* the VGGish weights' sha256 (VGGish FAD only) */
    /* KL (PaSST) */
    int kl_measured;
    double kl;
    long kl_pairs;
    char kl_sha256[65], kl_why[512];
    /* CLAP */
    int clap_measured;
    double clap;      /* mean cosine over the clap_n scored mucaps clips */
    long clap_n;
    char clap_sha256[65], clap_why[512];
} m2u_music_eval;

typedef struct {
    const char *gen_dir; /* required */
    const char *data;    /* required: manifest.json */
    const char *split;   /* NULL -> "test" */
    const char *kinds;   /* NULL -> "mucaps,muedit,muimage,muvideo" */
    const char *mert_dir;
    const char *clap_dir; /* NULL: CLAP not measured */
    const char *vggish_ckpt; /* torchvggish state dict: the FAD is fad_pytorch's VGGish FAD */
    const char *passt_ckpt;  /* hear21passt state dict: M2UGen's KL is measured */
    const char *work_dir;    /* where ref/ and gen/ are written for those two (NULL: a temporary folder) */
    int layer;      /* MERT hidden state; -1 = last */
    double clip_s;  /* FAD clip length; 0 -> 10 */
    long max_samples; /* 0 = all */
} m2u_music_eval_options;

/* The file id of a sample id (see above) into out[cap]. */
void m2u_music_file_id(const char *id, char *out, size_t cap);

int m2u_music_eval_run(const m2u_music_eval_options *o, m2u_music_eval *out);
void m2u_music_eval_free(m2u_music_eval *e);
/* rate of group g, attribute a: n_correct / n_asked, NaN when n_asked is 0 */
double m2u_music_agreement_rate(const m2u_music_agreement *ag, m2u_gen_attr a);

/* Mono 16-bit PCM WAV bytes (samples clamped to [-1, 1], NaN as 0) into a
 * malloc'ed *buf of *len bytes; m2u_wav_write_pcm16 writes them atomically. */
int m2u_wav_encode_pcm16(const float *pcm, size_t n, int rate, unsigned char **buf, size_t *len);
int m2u_wav_write_pcm16(const char *path, const float *pcm, size_t n, int rate);

#endif
