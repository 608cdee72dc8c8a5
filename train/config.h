/* The trainer's YAML configuration (the recipes in configs/, m2u-train).
 *
 * One static schema table in config.c (key, type, offset into this struct,
 * default, allowed values, range, one-line doc) drives everything: parsing,
 * validation, defaults, `key=value` overrides, the resolved dump and the
 * Markdown reference (m2u_train_config_doc_markdown).  No field is parsed by
 * hand-written code, so a new key is one table row plus one struct member.
 *
 * Life cycle (m2u_train_config_load does all of it):
 *   m2u_train_config_init       every field at its default
 *   m2u_train_config_parse_file the YAML, on top of the defaults
 *   m2u_train_config_override   "train.lr=3e-4" from the command line, in order
 *   m2u_train_config_finalize   derived defaults, required keys, cross-field
 *                               checks, files that must exist
 * so every refusal (unknown key, wrong type, value out of range, missing file)
 * happens before any work, naming "file:line" or the override.
 *
 * Strictness: unknown keys, duplicate keys, aliases/anchors, tags, several
 * documents and a list where a scalar is expected (or the reverse) are refused.
 * A null value (`key:`, `key: ~`, `key: null`) resets the key to its default.
 *
 * Relative paths are used as written, i.e. relative to the working directory
 * the trainer runs in (the recipes assume the repository root).
 *
 * Ownership: the struct owns its strings; m2u_train_config_free releases them.
 * Not thread-safe per object (nothing here is shared between objects). */
#ifndef M2U_TRAIN_CONFIG_H
#define M2U_TRAIN_CONFIG_H

#include "m2u_error.h"

#include <stdio.h>

/* ---- enum fields: the value is the index into the schema's allowed values ---- */
typedef enum { M2U_COMPAT_PAPER = 0, M2U_COMPAT_RELEASED } m2u_compat;
typedef enum { M2U_DECODER_MUSICGEN = 0, M2U_DECODER_AUDIOLDM2 } m2u_decoder;
typedef enum { M2U_SCHEDULE_COSINE = 0, M2U_SCHEDULE_CONSTANT, M2U_SCHEDULE_LINEAR } m2u_schedule;
typedef enum { M2U_SPLIT_TRAIN = 0, M2U_SPLIT_VALID, M2U_SPLIT_TEST } m2u_split;
typedef enum { M2U_PRECISION_FP32 = 0, M2U_PRECISION_BF16 } m2u_precision;
typedef enum { M2U_PACKED_AUTO = 0, M2U_PACKED_ON, M2U_PACKED_OFF } m2u_packed_weights;

/* ---- list fields: a set of allowed names, stored as bits in schema order ---- */
enum { /* model.modalities */
    M2U_MOD_MUSIC = 1u << 0,
    M2U_MOD_IMAGE = 1u << 1,
    M2U_MOD_VIDEO = 1u << 2,
};
enum { /* lora.targets (Hugging Face module names) */
    M2U_LORA_Q_PROJ = 1u << 0,
    M2U_LORA_K_PROJ = 1u << 1,
    M2U_LORA_V_PROJ = 1u << 2,
    M2U_LORA_O_PROJ = 1u << 3,
    M2U_LORA_GATE_PROJ = 1u << 4,
    M2U_LORA_UP_PROJ = 1u << 5,
    M2U_LORA_DOWN_PROJ = 1u << 6,
};
enum { /* train.trainable */
    M2U_TRAIN_LORA = 1u << 0,
    M2U_TRAIN_BIAS = 1u << 1,
    M2U_TRAIN_NORM = 1u << 2,
    M2U_TRAIN_ADAPTERS = 1u << 3,
    M2U_TRAIN_GATES = 1u << 4,
    M2U_TRAIN_PREFIX_QUERY = 1u << 5,
    M2U_TRAIN_PROJECTOR = 1u << 6,
    M2U_TRAIN_AUD_EMBEDDINGS = 1u << 7,
};
enum { /* train.kinds: the shard's `kind` column; TEXT = samples with kind "" */
    M2U_KIND_MUCAPS = 1u << 0,
    M2U_KIND_MUSICQA = 1u << 1,
    M2U_KIND_MUEDIT = 1u << 2,
    M2U_KIND_MUIMAGE = 1u << 3,
    M2U_KIND_MUVIDEO = 1u << 4,
    M2U_KIND_TEXT = 1u << 5,
};

typedef struct {
    struct {
        char *name;        /* "" -> the YAML file's stem */
        char *out_dir;     /* "" -> runs/<name> */
        int seed;
        int keep_last;
        int save_every, log_every, eval_every; /* optimizer steps; 0 = off (save/eval) */
        int threads;       /* OpenMP threads per rank; 0 = auto */
        char *memory_limit; /* "auto", "off" or a size: a run whose memory plan exceeds it is refused (plan.h) */
    } run;
    struct {
        char *llm;         /* Hugging Face LLaMA directory (config.json, *.safetensors) */
        char *tokenizer;   /* "" -> <llm>/tokenizer.json */
        char *init_from;   /* "" = fresh trainables; else a run dir or checkpoint of an earlier stage */
        int compat;        /* m2u_compat */
        int aud_tokens, query_layer;
        unsigned modalities; /* M2U_MOD_* */
        int music_tokens, music_dim, image_tokens, image_dim, video_tokens, video_dim;
        int decoder;       /* m2u_decoder */
        struct {
            int d_model, heads, enc_layers, dec_layers, ffn, n_out, out_dim;
            double target_scale;
        } projector;
    } model;
    struct {
        int r;
        double alpha, dropout;
        unsigned targets;  /* M2U_LORA_* */
    } lora;
    struct {
        int stage;         /* 1, 2 or 3 */
        unsigned trainable; /* M2U_TRAIN_*; 0 before finalize -> the stage's default */
        char *data;        /* dataset manifest.json */
        int split;         /* m2u_split */
        int verify;        /* check each shard's sha256 against the manifest when first read */
        int checkpoint_activations; /* recompute each layer's forward in backward (llama.h) */
        int precision;     /* m2u_precision: BF16 = frozen base matrices held as bf16 (llama.h frozen_bf16) */
        int packed_weights; /* m2u_packed_weights: fp32 frozen linears also packed for oneDNN (llama.h packed) */
        unsigned kinds;    /* M2U_KIND_*; 0 before finalize -> all */
        int shuffle;
        int max_len, batch, accum, epochs, max_steps;
        double lr, min_lr;
        int warmup_steps;
        int schedule;      /* m2u_schedule */
        double weight_decay, beta1, beta2, eps, clip_grad, mse_weight;
        int ignore_index;
        char *prompt_template;
    } train;
    struct {
        int split;         /* m2u_split */
        int batches;       /* 0 = the whole split */
        int max_new_tokens;
    } eval;

    /* Bookkeeping, not configuration. */
    char *source;          /* the YAML file parsed last (NULL = none) */
    char **origin;         /* per schema key: "file:line", "override 'k=v'" or NULL (default) */
} m2u_train_config;

/* Flags for m2u_train_config_finalize / _load. */
#define M2U_CFG_NO_FILE_CHECKS 1u /* skip existence checks (dumping, tests, configs for another machine) */

/* Defaults for every key (strings malloc'ed).  -1 only when out of memory. */
int m2u_train_config_init(m2u_train_config *cfg);
void m2u_train_config_free(m2u_train_config *cfg);

/* Apply a YAML document (text of `len` bytes, `name` used in messages) / a file.
 * On failure keys read before the error keep their new values: free the struct. */
int m2u_train_config_parse(m2u_train_config *cfg, const char *text, size_t len, const char *name);
int m2u_train_config_parse_file(m2u_train_config *cfg, const char *path);

/* Apply one "key=value" override.  Lists: "a,b,c" or "[a, b, c]"; "" or "[]" = empty;
 * an empty value resets a scalar to its default, like a YAML null. */
int m2u_train_config_override(m2u_train_config *cfg, const char *assignment);

/* Derived defaults (tokenizer, name, out_dir, trainable per stage, kinds), required keys,
 * cross-field rules and, unless M2U_CFG_NO_FILE_CHECKS, the files that must exist. */
int m2u_train_config_finalize(m2u_train_config *cfg, unsigned flags);

/* All of the above: init, parse `path`, apply n overrides, finalize.  On failure
 * *cfg is freed (nothing to release) and the message names file:line or the override. */
int m2u_train_config_load(const char *path, const char *const *overrides, int n_overrides, unsigned flags,
                          m2u_train_config *cfg);

/* Write every key (resolved values, not the file's text) as YAML, atomically; loading it
 * back gives an identical struct (m2u_train_config_diff returns NULL). */
int m2u_train_config_save(const m2u_train_config *cfg, const char *path);
/* The same YAML as a malloc'ed NUL-terminated string. */
int m2u_train_config_to_yaml(const m2u_train_config *cfg, char **out);

/* The first key whose values differ ("train.lr"), or NULL when all are equal. */
const char *m2u_train_config_diff(const m2u_train_config *a, const m2u_train_config *b);

/* Where a key's value came from ("configs/x.yaml:12", "override 'train.lr=1'"), or the
 * file name / "default" when it was never set; NULL for an unknown key. */
const char *m2u_train_config_origin(const m2u_train_config *cfg, const char *key);
/* m2u_fail with the key's origin in front: "configs/x.yaml:6: <message>", for checks
 * the trainer can only make later (e.g. model.query_layer against the LLaMA depth). */
int m2u_train_config_fail(const m2u_train_config *cfg, const char *key, const char *fmt, ...) M2U_PRINTF(3, 4);

/* train.batch x train.max_len at most (m2u_train_config_finalize refuses more). */
#define M2U_TRAIN_MAX_TOKENS (1 << 24)

/* The schema as Markdown tables (key, type, default, meaning), for the README. */
void m2u_train_config_doc_markdown(FILE *fp);

/* Name of bit/enum value i of a key ("train.trainable", 0 -> "lora"); NULL if none. */
const char *m2u_train_config_value_name(const char *key, int i);

#endif
