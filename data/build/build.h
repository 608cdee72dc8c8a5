/* `m2u-dataset build`: media files -> MUCaps / MusicQA / MUEdit / MUImage /
 * MUVideo samples in HDF5 shards, a manifest, a dataset card and an error report.
 *
 * Two phases, each split across ranks by file (file k of the canonical input
 * order, inputs.h, belongs to rank k mod world):
 *
 *   1. survey   every file is decoded (MIDI rendered), cut into clips, analysed
 *               (analysis.h), fingerprinted (audio) or described (images and
 *               videos, visual.h); the result is one JSON record per file in
 *               <out>/work/records/<id>.json, written atomically.  A file that
 *               cannot be used gets a record with its reason (decode.h).
 *   -- barrier --
 *   2. samples  every rank reads all records and derives the same global
 *               facts: near-duplicate files (chromaprint, the later file in
 *               canonical order is dropped), the split of each source (hash of
 *               its id: no track in two splits), the music pool images and
 *               videos are paired from (nearest on the valence/arousal plane).
 *               Then each rank makes the samples of its own files, in order,
 *               into <out>/shard-r<rank>-<seq>.h5; a shard is closed at a file
 *               boundary once it holds shard_size samples.
 *   -- barrier --
 *   3. rank 0   manifest.json (every shard, sha256), errors.jsonl (every file
 *               skipped, duplicate, unconfirmed edit, captioner failure), and the
 *               dataset card README.md.
 *
 * Determinism: a sample's id is "<file id>-c<clip>-<kind>[<n>]" and every
 * random choice (phrasing, edit kind and amount, pairing among near
 * candidates) is seeded by that id, so the same inputs give the same samples
 * and text for any number of ranks (only their distribution over shard files
 * differs).
 *
 * Resume: killed at any moment and run again with the same arguments, phase 1
 * skips files that have a record, and phase 2 keeps each rank's finished
 * shards (a shard exists only once complete: shard.h), finds the last file
 * they hold and continues after it, so no sample is duplicated or lost.  The
 * configuration and world size are stored in <out>/work/build.json; a run with
 * different ones is refused (start a new output folder or pass overwrite).
 *
 * Sample content (shard.h columns):
 *   mucaps   audio = the clip; caption; features/mert; features/t5 = the
 *            caption's text target; attrs; analysis JSON.
 *   musicqa  instruction = question, answer; features/mert (audio is stored
 *            once, in the clip's mucaps sample: same id prefix).
 *   muedit   audio = source clip, target_audio = edited clip, instruction,
 *            input_text = source caption, output_text = target caption;
 *            features/mert of the source, features/t5 of output_text.
 *            Kept only when the target's analysis confirms the edit (a tempo
 *            tracked at half or double the pulse still confirms a stretch).
 *            The target's caption and target_* attributes are the source's
 *            facts with the edited property as measured: properties an edit
 *            does not touch are not re-measured into noise.
 *   muimage  media/image (when store_images), features/vit, instruction,
 *            output_text = pairing rationale + music caption, target_audio =
 *            the paired clip, features/t5 of the paired music's caption.
 *   muvideo  features/vivit; the video's own soundtrack is its target when it
 *            has one, else a paired clip as for images.
 * Features are the encoders' when their checkpoints are given (mert [layers+1,
 * hidden] layer means, vit / vivit last_hidden_state, t5 = the T5 encoder's
 * output for the text padded to text_rows tokens, unscaled), else the built-in
 * ones of the same shapes (builtin_features.h).  Either way a tensor column's
 * `encoder` attribute names its source (the checkpoint folder's name, or
 * "m2u-builtin-v1") and `config_hash` is the first 16 hex digits of the
 * SHA-256 of the checkpoint's config.json, so features of different encoders
 * are never mixed up. */
#ifndef M2U_BUILD_H
#define M2U_BUILD_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

enum {
    M2U_RECIPE_MUCAPS = 1,
    M2U_RECIPE_MUSICQA = 2,
    M2U_RECIPE_MUEDIT = 4,
    M2U_RECIPE_MUIMAGE = 8,
    M2U_RECIPE_MUVIDEO = 16,
    M2U_RECIPE_ALL = 31
};

typedef struct {
    const char *const *inputs; /* folders, globs, files, JSON-lines manifests (inputs.h) */
    int n_inputs;
    const char *default_licence;     /* for inputs without one (folders, globs) */
    const char *default_attribution;
    const char *out_dir;
    int overwrite;           /* 1: remove an existing build of other settings first */
    int strict;              /* 1: a named input that does not exist stops the build; 0 (default):
                                it is recorded in errors.jsonl (cannot-open) and the build goes on */
    int verify;              /* 1 (default): the card check the shards' sha256 as they are read */

    int recipes;             /* M2U_RECIPE_* mask; 0 = all */
    int audio_rate;          /* Hz of stored audio and of the analysis (24000) */
    double clip_s, hop_s;    /* clip length and hop, seconds (10, 10) */
    double min_clip_s;       /* shortest clip kept, incl. a file's tail (5) */
    double silence_db;       /* clips under this RMS are skipped (-50) */
    int max_clips;           /* per file; 0 = all */
    const char *soundfont;   /* for .mid sources; NULL = the Debian GM soundfont */
    int qa_per_clip;         /* MusicQA pairs per clip (2) */
    double valid_frac, test_frac; /* share of sources in valid / test (0.1, 0.1) */
    double dup_threshold;    /* fingerprint similarity above which a file is a duplicate */
    int image_size;          /* square side for images and video frames (224) */
    int video_frames;        /* frames sampled per video (32) */
    int store_images;        /* 1: media/image column with the pixels */
    int text_rows, text_dim; /* text target shape (128 x 768: MusicGen's T5) */
    int shard_size;          /* samples per shard, closed at file boundaries (256) */
    int zstd_level;          /* 0 = 3 */
    uint64_t seed;           /* mixed into every per-sample seed */

    /* Encoder checkpoints (HF directories); NULL = the built-in features of the
     * same role (builtin_features.h).  MERT needs audio_rate = its sampling rate;
     * ViT / ViViT set the image size and frame count of the feature inputs. */
    const char *mert_dir, *vit_dir, *vivit_dir;
    const char *t5_dir;        /* T5 encoder (T5EncoderModel, T5ForConditionalGeneration or MusicGen) */
    const char *t5_tokenizer;  /* its tokenizer.json; NULL = <t5_dir>/tokenizer.json */

    const char *captioner_cmd; /* optional JSON-lines captioner (captioner_process.h) that
                                  rewrites MUCaps captions; failures keep the built-in one */
    double captioner_timeout_s;
    /* optional OpenAI-compatible chat endpoint (captioner_http.h: llama.cpp server,
     * vLLM) that rewrites MUEdit / MUImage / MUVideo instructions from the target
     * music's caption and analysis, as M2UGen used an LLM; failures keep the
     * built-in instruction and are recorded.  Deterministic only if the server
     * is (the request carries seed 0 and temperature 0.7). */
    const char *llm_url, *llm_model;

    int progress;            /* 1: progress lines on stderr (rank 0) */
    size_t audio_cache_mb;   /* decoded audio kept in memory from the survey for the samples,
                                per process (1024; 0: none).  Not a setting of the samples:
                                they are the same for any value */
    double stop_after_s;     /* > 0: stop (as if killed) after this many seconds in phase 2 (tests) */
} m2u_build_config;

void m2u_build_config_default(m2u_build_config *c);
/* The configuration as JSON (stored in the manifest and build.json). */
cJSON *m2u_build_config_json(const m2u_build_config *c);

/* How ranks meet; NULL or world == 1: a single process. */
typedef struct {
    int rank, world;
    void *ctx;
    int (*barrier)(void *ctx);
    /* every rank passes its ok flag; returns 1 only if all are 1 */
    int (*all_ok)(void *ctx, int ok);
} m2u_build_comm;

typedef struct {
    long files, files_failed, files_duplicate;
    long clips;
    double audio_s;          /* seconds of source audio surveyed */
    long samples[5];         /* per recipe: mucaps, musicqa, muedit, muimage, muvideo (this rank) */
    long edits_dropped;
    long caption_failures;
    int shards_kept;         /* finished shards found on resume */
    double t_survey, t_samples, t_final;
} m2u_build_stats;

/* Run the whole build on this rank.  Returns 0 on success; -1 with
 * m2u_last_error() when the build cannot go on (bad configuration, unwritable
 * output, a fatal library failure).  Bad media never fails the build on its
 * own, but a build that ends with no sample at all fails (after writing
 * errors.jsonl and the card) with the count of skipped files per reason. */
int m2u_build_run(const m2u_build_config *c, const m2u_build_comm *comm, m2u_build_stats *stats);

/* The dataset card (Markdown) of a finished build, from its manifest and
 * shards and the error report; written atomically to card_path.  verify: check
 * each shard's sha256 against the manifest before reading it (manifest.h). */
int m2u_build_write_card(const char *manifest_path, const char *errors_path, const char *card_path, int verify);

#endif
