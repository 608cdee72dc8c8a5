/* Evaluating a trained run on a dataset split: load the run's resolved config
 * and its newest complete checkpoint as m2u-train does, answer the split's
 * samples greedily with the KV cache, feeding each sample's encoder features
 * (the mert / vit / vivit tensor columns) through the adapters, and keep
 * prompt, prediction, reference and the measured attributes per sample.
 *
 * What a sample asks and answers is m2u_sample_pair() at the chosen stage
 * (default: the run's train.stage), and the prompt is m2u_prompt_fill() of the
 * run's train.prompt_template, exactly as the trainer's held-out prompts:
 *   stage 3: mucaps "Describe this music." -> caption; musicqa question -> answer
 *   stage 1: "" (the modality speaks) -> caption
 *   stage 2: caption -> caption (+ [AUD] tokens)
 * Generation: BOS + prompt tokens, one forward of the prompt with the sample's
 * features (which sets the adapter inputs), then KV-cached greedy decoding up
 * to max_new_tokens, stopping at EOS.  [AUD] tokens are removed from the
 * prediction text (counted in n_aud_tokens).  Samples go in batches: each
 * prompt is prefilled alone (its own adapter inputs and KV cache), then the
 * batch decodes together with m2u_llama_decode_step, one GEMM per linear over
 * the unfinished sequences; the tokens are those of one-at-a-time decoding.
 *
 * Functions return 0, or -1 after m2u_fail(); nothing here prints. */
#ifndef M2U_EVAL_RUN_H
#define M2U_EVAL_RUN_H

#include <stdint.h>

#include "attr_agreement.h"

typedef struct {
    const char *run_dir;  /* required: the trainer's run.out_dir */
    const char *config;   /* NULL -> <run_dir>/config.yaml */
    const char *data;     /* NULL -> the config's train.data (applied as the override train.data=...) */
    const char *split;    /* NULL -> "test"; "valid", "train" */
    const char *kinds;    /* NULL -> "mucaps,musicqa"; comma-separated shard kinds */
    int stage;            /* 0 -> the config's train.stage */
    long max_samples;     /* 0 = every selected sample (in dataset order) */
    int max_new_tokens;   /* 0 -> 48 */
    int threads;          /* OpenMP threads; 0 -> the config's run.threads (0 = OpenMP's default) */
    int batch;            /* sequences decoded together; 0 -> 8 */
    int no_verify;        /* 1: do not check the shards' sha256 against the manifest (manifest.h) */
    /* Generation benchmarks (m2u-eval run --musicgen): with musicgen set, every selected sample of
     * a generation kind (mucaps, muedit, muimage, muvideo) whose (batch, greedy) answer has the
     * [AUD] block gets its conditioning from one more forward over the prompt and the answer
     * through [AUD0] with its own features (run_music.h's m2u_run_aud_states), which goes
     * through MusicGen (music.h) into
     * music_dir/<m2u_music_file_id(id)>.wav (16-bit PCM at MusicGen's rate) and a line
     * {"id", "audio", "text": the prediction} of music_dir/predictions.jsonl, which m2u_music_eval_run reads.  A
     * sample whose answer has no [AUD] block gets no line (scored as not generated). */
    const char *musicgen;  /* MusicGen directory (decoder + EnCodec), or NULL: no music */
    const char *music_dir; /* required with musicgen; created */
    double music_seconds;  /* clip length; 0 -> 10 (the dataset's clips) */
    double guidance;       /* CFG scale; 0 -> the MusicGen's generation_config.json (MusicGen: 3); 1: no CFG */
    long seed;             /* sampling seed of the first clip; clip k uses seed + k */
} m2u_eval_run_options;

typedef struct {
    char *id, *kind, *instruction, *prompt, *prediction, *reference;
    int n_prompt_tokens, n_new_tokens, n_aud_tokens;
    int has_feature[3]; /* music, image, video features were fed */
    int has_measured;   /* the sample has attribute columns */
    int music;          /* --musicgen: 0 not a generation kind, 1 the answer had no [AUD] block, 2 clip written */
    int32_t *aud_seq;   /* generation kinds whose answer has [AUD0]: BOS + prompt + answer through [AUD0] */
    int n_aud_seq;
    m2u_attr_measured measured;
} m2u_eval_item;

typedef struct {
    char *config_path, *checkpoint, *llm, *data, *split, *kinds, *prompt_template;
    long checkpoint_step;
    int stage, max_new_tokens, n_trainables;
    m2u_eval_item *items;
    int n_items;
    double seconds, new_tokens;
    /* --musicgen: samples of the generation kinds, clips written, seconds spent making them */
    int n_music_asked, n_music_written;
    double music_seconds;
} m2u_eval_run_result;

/* Called once with done = 0 and last = NULL when generation starts, then after each sample
 * (done of total); may be NULL. */
typedef void (*m2u_eval_progress_fn)(void *ctx, long done, long total, const m2u_eval_item *last);

int m2u_eval_run_generate(const m2u_eval_run_options *o, m2u_eval_progress_fn progress, void *ctx,
                          m2u_eval_run_result *out);
void m2u_eval_run_result_free(m2u_eval_run_result *r);

#endif
