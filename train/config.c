/* The trainer's YAML configuration: one schema table drives parsing, checks,
 * defaults, overrides, the resolved dump and the Markdown reference. */
#include "config.h"
#include "plan.h"

#include "fileio.h"
#include "strbuf.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

/* ======================= schema ======================= */

typedef enum { T_INT, T_FLOAT, T_BOOL, T_STRING, T_PATH, T_ENUM, T_LIST } ftype;

enum {
    F_REQUIRED = 1u << 0,  /* no usable default: must be set */
    F_MIN = 1u << 1,       /* value >= min (> min with F_MIN_EXCL) */
    F_MAX = 1u << 2,       /* value <= max (< max with F_MAX_EXCL) */
    F_MIN_EXCL = 1u << 3,
    F_MAX_EXCL = 1u << 4,
    F_LLM_DIR = 1u << 5,   /* path: a directory holding config.json */
    F_FILE = 1u << 6,      /* path: a regular file */
    F_EXISTS = 1u << 7,    /* path: anything that exists, when non-empty */
    F_NONEMPTY = 1u << 8,  /* list: an explicit empty list is refused */
};

typedef struct {
    const char *key;
    ftype type;
    size_t off;
    const char *def;          /* default as the text a user would write (lists "a,b"); NULL = "" / unset */
    const char *def_doc;      /* what the reference shows when the default is derived */
    const char *const *values; /* enum / list names, NULL-terminated; index = enum value / bit */
    double min, max;
    unsigned flags;
    const char *doc;
} field;

static const char *const V_COMPAT[] = {"paper", "released", NULL};
static const char *const V_DECODER[] = {"musicgen", "audioldm2", NULL};
static const char *const V_SCHEDULE[] = {"cosine", "constant", "linear", NULL};
static const char *const V_SPLIT[] = {"train", "valid", "test", NULL};
static const char *const V_PRECISION[] = {"fp32", "bf16", NULL};
static const char *const V_PACKED[] = {"auto", "on", "off", NULL};
static const char *const V_MOD[] = {"music", "image", "video", NULL};
static const char *const V_LORA[] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", NULL};
static const char *const V_TRAINABLE[] = {"lora",  "bias",      "norm",           "adapters", "gates",
                                          "prefix_query", "projector", "aud_embeddings", NULL};
static const char *const V_KINDS[] = {"mucaps", "musicqa", "muedit", "muimage", "muvideo", "text", NULL};

/* M2UGen's format_prompt (m2ugen-code.md 2.4), verbatim. */
#define M2UGEN_PROMPT                                                                                         \
    "Below is an instruction that describes a task. Write a response that appropriately completes the "     \
    "request.\n\n### Instruction:\n{instruction}\n\n### Response:"

#define OFF(m) offsetof(m2u_train_config, m)
#define INT_ROW(k, m, d, lo, doc_) {k, T_INT, OFF(m), d, NULL, NULL, lo, 0, F_MIN, doc_}
#define FLT_ROW(k, m, d, lo, fl, doc_) {k, T_FLOAT, OFF(m), d, NULL, NULL, lo, 0, F_MIN | (fl), doc_}

/* Sections must stay contiguous (the dump opens each mapping once) and in the
 * order a reader meets them; test_train_config checks every default parses. */
static const field FIELDS[] = {
    /* ---- run ---- */
    {"run.name", T_STRING, OFF(run.name), NULL, "the YAML file's stem", NULL, 0, 0, 0,
     "Run name: names the default output directory and the log lines. Letters, digits, `.`, `_`, `-`."},
    {"run.out_dir", T_PATH, OFF(run.out_dir), NULL, "`runs/<name>`", NULL, 0, 0, 0,
     "Directory for `checkpoints/`, `metrics.jsonl` and the resolved `config.yaml` (created)."},
    {"run.seed", T_INT, OFF(run.seed), "42", NULL, NULL, 0, INT_MAX, F_MIN | F_MAX,
     "Seed of initialisation, dropout and the data order (M2UGen shuffles with 42 + epoch)."},
    INT_ROW("run.keep_last", run.keep_last, "3", 1, "Complete checkpoints kept; older ones are deleted."),
    INT_ROW("run.save_every", run.save_every, "1000", 0,
            "Checkpoint every N optimizer steps (0 = only at the end; the end is always saved)."),
    INT_ROW("run.log_every", run.log_every, "10", 1, "Log loss, lr, tokens/s every N optimizer steps."),
    INT_ROW("run.eval_every", run.eval_every, "1000", 0,
            "Evaluate on `eval.split` every N optimizer steps (0 = only at the end)."),
    INT_ROW("run.threads", run.threads, "0", 0,
            "OpenMP threads per rank (0 = `OMP_NUM_THREADS`, else the node's cores shared among its ranks)."),
    {"run.memory_limit", T_STRING, OFF(run.memory_limit), "auto", NULL, NULL, 0, 0, 0,
     "Memory of the node to plan against before step 1 (`m2u-train --plan`): a run whose plan exceeds it is "
     "refused, counting the mmap'ed weights once and the rest once per rank on the node. `auto`: the cgroup's "
     "limit, else MemAvailable; a size (`20G`, `512M`); `off`: no check."},
    /* ---- model ---- */
    {"model.llm", T_PATH, OFF(model.llm), NULL, NULL, NULL, 0, 0, F_REQUIRED | F_LLM_DIR,
     "Hugging Face LLaMA-2 directory (`config.json`, `*.safetensors`); frozen. Its `config.json` sets the LLM sizes."},
    {"model.tokenizer", T_PATH, OFF(model.tokenizer), NULL, "`<llm>/tokenizer.json`", NULL, 0, 0, F_FILE,
     "`tokenizer.json` of the LLM; the `[AUD]` tokens are added to it."},
    {"model.init_from", T_PATH, OFF(model.init_from), NULL, "none", NULL, 0, 0, F_EXISTS,
     "Trainables to start from: an earlier stage's run directory (its newest complete checkpoint), or a "
     "file in the released M2UGen layout (`checkpoint.pth` or safetensors; its Meta RoPE layout is "
     "converted); empty = fresh initialisation."},
    {"model.compat", T_ENUM, OFF(model.compat), "paper", NULL, V_COMPAT, 0, 0, 0,
     "`paper`: the paper's design (gates trained, whole clip encoded, true losses logged). `released`: the "
     "released code's choices where they differ (gates frozen, its per-stage trainable sets, `ignore_index` "
     "left to you); its +100 logged-loss artefact is never reproduced."},
    INT_ROW("model.aud_tokens", model.aud_tokens, "8", 1, "Output tokens `[AUD0]`..`[AUD<n-1>]` added to the vocabulary."),
    INT_ROW("model.query_layer", model.query_layer, "6", 1,
            "Layers per modality group: music, image and video adapters enter the last 3 x `query_layer` layers."),
    {"model.modalities", T_LIST, OFF(model.modalities), "music,image,video", NULL, V_MOD, 0, 0, 0,
     "Understanding adapters built (empty = text only)."},
    INT_ROW("model.music_tokens", model.music_tokens, "25", 1, "Music feature rows per sample (MERT-v1-330M: 25 hidden states)."),
    INT_ROW("model.music_dim", model.music_dim, "1024", 1, "Music feature width (MERT-v1-330M: 1024)."),
    INT_ROW("model.image_tokens", model.image_tokens, "197", 1, "Image feature tokens (ViT-B/16 at 224: CLS + 196)."),
    INT_ROW("model.image_dim", model.image_dim, "768", 1, "Image feature width (ViT-B: 768)."),
    INT_ROW("model.video_tokens", model.video_tokens, "3137", 1, "Video feature tokens (ViViT-B 16x2, 32 frames: 3137)."),
    INT_ROW("model.video_dim", model.video_dim, "768", 1, "Video feature width (ViViT-B: 768)."),
    {"model.decoder", T_ENUM, OFF(model.decoder), "musicgen", NULL, V_DECODER, 0, 0, 0,
     "Music decoder the projector conditions: `musicgen` (T5 text-encoder states) or `audioldm2` "
     "(flattened prompt + LOA embeddings)."},
    INT_ROW("model.projector.d_model", model.projector.d_model, "512", 1, "Output projector transformer width."),
    INT_ROW("model.projector.heads", model.projector.heads, "4", 1, "Attention heads (must divide `d_model`)."),
    INT_ROW("model.projector.enc_layers", model.projector.enc_layers, "4", 1, "Encoder layers (post-norm, ReLU)."),
    INT_ROW("model.projector.dec_layers", model.projector.dec_layers, "4", 1, "Decoder layers over the learned queries."),
    INT_ROW("model.projector.ffn", model.projector.ffn, "2048", 1, "Feed-forward width."),
    INT_ROW("model.projector.n_out", model.projector.n_out, "128", 1,
            "Output tokens = learned decoder queries (MusicGen: 128 T5 positions)."),
    INT_ROW("model.projector.out_dim", model.projector.out_dim, "768", 1,
            "Width of each output token (MusicGen-medium's T5: 768)."),
    FLT_ROW("model.projector.target_scale", model.projector.target_scale, "10", 0, F_MIN_EXCL,
            "Conditioning targets are multiplied by this before the MSE; generation divides by it (M2UGen: 10)."),
    /* ---- lora ---- */
    INT_ROW("lora.r", lora.r, "16", 1, "LoRA rank (M2UGen: 16)."),
    FLT_ROW("lora.alpha", lora.alpha, "16", 0, F_MIN_EXCL, "LoRA scale = alpha / r (M2UGen: scale 1, i.e. alpha = r)."),
    {"lora.dropout", T_FLOAT, OFF(lora.dropout), "0", NULL, NULL, 0, 1, F_MIN | F_MAX | F_MAX_EXCL,
     "Dropout on the LoRA input (M2UGen: none)."},
    {"lora.targets", T_LIST, OFF(lora.targets), "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", NULL,
     V_LORA, 0, 0, 0, "Linear layers that get LoRA (M2UGen: all seven)."},
    /* ---- train ---- */
    {"train.stage", T_INT, OFF(train.stage), NULL, NULL, NULL, 1, 3, F_REQUIRED | F_MIN | F_MAX,
     "1: encoder side (captioning), 2: decoder side (caption -> conditioning), 3: instruction tuning."},
    {"train.trainable", T_LIST, OFF(train.trainable), NULL, "per stage (below)", V_TRAINABLE, 0, 0, F_NONEMPTY,
     "Parameter groups trained; everything else is frozen."},
    {"train.data", T_PATH, OFF(train.data), NULL, NULL, NULL, 0, 0, F_REQUIRED | F_FILE,
     "Dataset `manifest.json` written by `m2u-dataset build`."},
    {"train.split", T_ENUM, OFF(train.split), "train", NULL, V_SPLIT, 0, 0, 0, "Split trained on."},
    {"train.verify", T_BOOL, OFF(train.verify), "true", NULL, NULL, 0, 0, 0,
     "Check each shard's hash (the manifest's xxh128, else its sha256) when it is first read, so a damaged "
     "shard is an error naming it (false: skip; hashing reads each shard once more)."},
    {"train.checkpoint_activations", T_BOOL, OFF(train.checkpoint_activations), "false", NULL, NULL, 0, 0, 0,
     "Activation checkpointing: keep one decoder layer's activations and recompute each layer's forward in the "
     "backward pass (one more forward per step; the LLaMA's activation memory drops by about (layers - 1) / "
     "layers). The gradients are bit-identical to a run without it."},
    {"train.precision", T_ENUM, OFF(train.precision), "fp32", NULL, V_PRECISION, 0, 0, 0,
     "`fp32`: the frozen LLaMA weights are read as the checkpoint stores them. `bf16`: the frozen decoder "
     "linears, embedding table and `lm_head` stored as f32 are rounded once, when the model loads, to "
     "bf16 copies the GEMMs read directly (bf16 and f16 checkpoints are used as they are: both take 2 bytes a "
     "value and the kernels read both): half the memory of fp32 weights, per rank. Where the CPU multiplies "
     "bf16 natively (AVX-512 BF16, through oneDNN), the products with the bf16 matrices round the "
     "activations to bf16 and accumulate in fp32 (about twice the fp32 products' speed); elsewhere they "
     "are fp32 arithmetic. Accumulation, activations, trainables, gradients and AdamW stay fp32. Measured "
     "(test_train_precision, 20 steps, 16 seeds): per-step training loss within 2.6e-4 (relative) of `fp32` in "
     "stage-1 and 3.4e-4 in stage-3 recipes, 8.5e-3 in stage 2 (the projector's clipped early steps) with "
     "fp32 products; 3.2e-4, 1.0e-2 and 3.7e-4 with bf16 products (a Zen 5 CPU, the same 16 seeds)."},
    {"train.packed_weights", T_ENUM, OFF(train.packed_weights), "auto", NULL, V_PACKED, 0, 0, 0,
     "With `train.precision: fp32` on a CPU where oneDNN has brgemm kernels (AVX-512): the frozen "
     "decoder linears and `lm_head` stored as f32 also get a copy packed for those kernels, which the "
     "forward's products read (the backward's read the weights as stored: packing did not speed "
     "them up). Faster forward products (about 1.06x on the 15M shapes), one more copy of those "
     "weights per rank, and the products' last bits differ from `off`. `auto`: packed where the "
     "memory plan still fits with the copies (`--plan` shows them), else not, said in the log; "
     "`on`: packed, and a plan that does not fit is an error; `off`: never. Ignored with `bf16` "
     "and where the CPU has no brgemm kernels."},
    {"train.kinds", T_LIST, OFF(train.kinds), NULL, "all", V_KINDS, 0, 0, 0,
     "Sample kinds used (empty = all); `text` = samples without a kind (plain text / general instructions)."},
    {"train.shuffle", T_BOOL, OFF(train.shuffle), "true", NULL, NULL, 0, 0, 0,
     "Reshuffle the samples every epoch (seeded by `run.seed` and the epoch)."},
    INT_ROW("train.max_len", train.max_len, "1024", 2,
            "Tokens per sample (prompt + answer + [AUD]); longer samples are truncated (M2UGen: 1024)."),
    INT_ROW("train.batch", train.batch, "1", 1,
            "Micro-batch per rank (M2UGen: 1); train.batch x train.max_len is at most 16777216 tokens."),
    INT_ROW("train.accum", train.accum, "1", 1,
            "Micro-batches accumulated per optimizer step; global batch = batch x accum x ranks "
            "(M2UGen: 1 for MusicGen, 4 for AudioLDM 2)."),
    INT_ROW("train.epochs", train.epochs, "1", 1, "Passes over the data (M2UGen: 5 / 5 / 2)."),
    INT_ROW("train.max_steps", train.max_steps, "0", 0,
            "If > 0: exactly this many optimizer steps (epochs repeat as needed; the schedule spans them) "
            "and `epochs` is ignored. 0 = `epochs` decide."),
    FLT_ROW("train.lr", train.lr, "1e-4", 0, F_MIN_EXCL, "Peak learning rate (M2UGen: 1e-4)."),
    FLT_ROW("train.min_lr", train.min_lr, "1e-6", 0, 0,
            "Learning rate at the end of the `cosine` / `linear` decay (M2UGen: 1e-6); must not exceed `lr`."),
    INT_ROW("train.warmup_steps", train.warmup_steps, "0", 0, "Linear warmup from 0 over N optimizer steps (M2UGen: none)."),
    {"train.schedule", T_ENUM, OFF(train.schedule), "cosine", NULL, V_SCHEDULE, 0, 0, 0,
     "After warmup: half-cosine per step from `lr` to `min_lr` (M2UGen), linear, or constant `lr`."},
    FLT_ROW("train.weight_decay", train.weight_decay, "0.05", 0, 0,
            "AdamW decoupled weight decay, on tensors of rank >= 2 only (biases, norms, gates: 0) (M2UGen: 0.05)."),
    {"train.beta1", T_FLOAT, OFF(train.beta1), "0.9", NULL, NULL, 0, 1, F_MIN | F_MAX | F_MAX_EXCL, "AdamW beta1."},
    {"train.beta2", T_FLOAT, OFF(train.beta2), "0.95", NULL, NULL, 0, 1, F_MIN | F_MAX | F_MAX_EXCL,
     "AdamW beta2 (M2UGen: 0.95)."},
    FLT_ROW("train.eps", train.eps, "1e-8", 0, F_MIN_EXCL, "AdamW epsilon."),
    FLT_ROW("train.clip_grad", train.clip_grad, "0", 0, 0, "Clip the global gradient norm (all ranks) to this; 0 = off (M2UGen: off)."),
    FLT_ROW("train.mse_weight", train.mse_weight, "1", 0, 0, "loss = cross-entropy + mse_weight x projector MSE (M2UGen: 1)."),
    {"train.ignore_index", T_INT, OFF(train.ignore_index), "-100", NULL, NULL, 0, 0, 0,
     "Label id the cross-entropy ignores (prompt and padding positions). -100 as in PyTorch / HF. M2UGen used "
     "0 (`<unk>`), which also drops any real `<unk>` in answers; set 0 only to match it."},
    {"train.prompt_template", T_STRING, OFF(train.prompt_template), M2UGEN_PROMPT, "M2UGen's Alpaca prompt (below)",
     NULL, 0, 0, 0, "Text around each instruction; must contain `{instruction}` exactly once."},
    /* ---- eval ---- */
    {"eval.split", T_ENUM, OFF(eval.split), "valid", NULL, V_SPLIT, 0, 0, 0, "Held-out split evaluated."},
    INT_ROW("eval.batches", eval.batches, "0", 0, "Batches per evaluation (0 = the whole split)."),
    INT_ROW("eval.max_new_tokens", eval.max_new_tokens, "0", 0,
            "Tokens generated for the sample answers logged at each evaluation (0 = none)."),
};
#define N_FIELDS ((int)(sizeof FIELDS / sizeof FIELDS[0]))

static const struct {
    const char *name, *doc;
} SECTIONS[] = {
    {"run", "Identity of the run, outputs, logging."},
    {"model", "The frozen LLaMA-2, M2UGen's adapters, `[AUD]` tokens and output projector. LLM sizes "
              "come from `model.llm`'s `config.json`; everything else is set here."},
    {"lora", "LoRA on the frozen LLaMA linears (HF/PEFT names)."},
    {"train", "Stage, data, optimisation (AdamW with fp32 state)."},
    {"eval", "Held-out evaluation during the run."},
};
#define N_SECTIONS ((int)(sizeof SECTIONS / sizeof SECTIONS[0]))

/* Default trainable groups per stage, [compat][stage-1]. */
static const unsigned STAGE_TRAINABLE[2][3] = {
    /* paper (m2ugen.md "paper's intent"): encoder side, decoder side, everything */
    {M2U_TRAIN_LORA | M2U_TRAIN_BIAS | M2U_TRAIN_NORM | M2U_TRAIN_ADAPTERS | M2U_TRAIN_GATES | M2U_TRAIN_PREFIX_QUERY,
     M2U_TRAIN_LORA | M2U_TRAIN_BIAS | M2U_TRAIN_NORM | M2U_TRAIN_PROJECTOR | M2U_TRAIN_AUD_EMBEDDINGS,
     0xffu},
    /* released (m2ugen-code.md 2.1 get_trainable_params; its whole-embedding training is
     * approximated by the [AUD] rows, the only rows the stage's losses need) */
    {M2U_TRAIN_LORA | M2U_TRAIN_BIAS | M2U_TRAIN_NORM | M2U_TRAIN_ADAPTERS | M2U_TRAIN_PREFIX_QUERY |
         M2U_TRAIN_PROJECTOR | M2U_TRAIN_AUD_EMBEDDINGS,
     M2U_TRAIN_LORA | M2U_TRAIN_BIAS | M2U_TRAIN_NORM | M2U_TRAIN_PREFIX_QUERY | M2U_TRAIN_PROJECTOR |
         M2U_TRAIN_AUD_EMBEDDINGS,
     M2U_TRAIN_LORA | M2U_TRAIN_BIAS | M2U_TRAIN_NORM | M2U_TRAIN_PREFIX_QUERY},
};

/* ======================= small helpers ======================= */

static void *fptr(const m2u_train_config *cfg, const field *f) { return (char *)cfg + f->off; }
static int *ival(const m2u_train_config *cfg, const field *f) { return (int *)fptr(cfg, f); }
static double *dval(const m2u_train_config *cfg, const field *f) { return (double *)fptr(cfg, f); }
static unsigned *uval(const m2u_train_config *cfg, const field *f) { return (unsigned *)fptr(cfg, f); }
static char **sval(const m2u_train_config *cfg, const field *f) { return (char **)fptr(cfg, f); }

static int field_index(const char *key) {
    for (int i = 0; i < N_FIELDS; i++)
        if (strcmp(FIELDS[i].key, key) == 0) return i;
    return -1;
}
static const field *find_field(const char *key) {
    int i = field_index(key);
    return i < 0 ? NULL : &FIELDS[i];
}

/* "model.projector" is a section when some key starts with "model.projector." */
static int is_section(const char *prefix) {
    size_t n = strlen(prefix);
    for (int i = 0; i < N_FIELDS; i++)
        if (strncmp(FIELDS[i].key, prefix, n) == 0 && FIELDS[i].key[n] == '.') return 1;
    return 0;
}

static int n_values(const char *const *v) {
    int n = 0;
    while (v && v[n]) n++;
    return n;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static char *xasprintf(const char *fmt, ...) M2U_PRINTF(1, 2);
static char *xasprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *p = malloc((size_t)n + 1);
    if (!p) return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* Optimal-string-alignment distance (a transposition costs 1), for "did you mean". */
static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v) v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

/* Typos worth suggesting a fix for: 1 edit in short names, 2+ in longer ones. */
static int close_enough(const char *typed, int dist) {
    size_t n = strlen(typed);
    return dist <= (n <= 3 ? 1 : 2 + (int)(n / 8));
}

/* Closest allowed value of an enum/list field, or NULL. */
static const char *suggest_value(const field *f, const char *typed) {
    const char *best = NULL;
    int bd = 99;
    for (int i = 0; f->values && f->values[i]; i++) {
        int d = edit_distance(typed, f->values[i]);
        if (d < bd) bd = d, best = f->values[i];
    }
    return best && close_enough(typed, bd) ? best : NULL;
}

/* Direct children (keys and sub-sections) of `prefix` ("" = top level), written as
 * "a, b, c" into buf; the closest one to `typed` goes to *best (static storage of FIELDS). */
static void children(const char *prefix, const char *typed, char *buf, size_t cap, char *best, size_t best_cap) {
    size_t pn = strlen(prefix), used = 0;
    int bd = 99;
    buf[0] = '\0';
    if (best) best[0] = '\0';
    const char *seen[N_FIELDS];
    size_t seen_len[N_FIELDS];
    int n_seen = 0;
    for (int i = 0; i < N_FIELDS; i++) {
        const char *k = FIELDS[i].key;
        if (pn && (strncmp(k, prefix, pn) != 0 || k[pn] != '.')) continue;
        const char *c = pn ? k + pn + 1 : k;
        size_t cl = strcspn(c, ".");
        int dup = 0;
        for (int j = 0; j < n_seen; j++)
            if (seen_len[j] == cl && strncmp(seen[j], c, cl) == 0) dup = 1;
        if (dup) continue;
        seen[n_seen] = c, seen_len[n_seen++] = cl;
        int w = snprintf(buf + used, cap - used, "%s%.*s", used ? ", " : "", (int)cl, c);
        if (w > 0 && (size_t)w < cap - used) used += (size_t)w;
        if (best && typed) {
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)cl, c);
            int d = edit_distance(typed, name);
            if (d < bd && close_enough(typed, d)) {
                bd = d;
                snprintf(best, best_cap, "%s", name);
            }
        }
    }
}

/* A key with this last component elsewhere in the schema ("lr" -> "train.lr"). */
static const char *same_leaf_elsewhere(const char *name) {
    for (int i = 0; i < N_FIELDS; i++) {
        const char *dot = strrchr(FIELDS[i].key, '.');
        if (dot && strcmp(dot + 1, name) == 0) return FIELDS[i].key;
    }
    return NULL;
}

/* Shortest text that reads back to the same double, so dumps round-trip exactly;
 * fixed notation for ordinary magnitudes ("10", not the equally short "1e+01"). */
static void fmt_num(char *buf, size_t n, double v) {
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    if (strchr(buf, 'e') && fabs(v) >= 1e-4 && fabs(v) < 1e15)
        for (int prec = 0; prec <= 20; prec++) {
            snprintf(buf, n, "%.*f", prec, v);
            if (strtod(buf, NULL) == v) break;
        }
}

/* What a value of this field must be: "an integer >= 1", "a number in [0, 1)", ... */
static void describe(const field *f, char *buf, size_t cap) {
    char lo[32], hi[32];
    fmt_num(lo, sizeof lo, f->min);
    fmt_num(hi, sizeof hi, f->max);
    const char *what = f->type == T_INT ? "an integer" : "a number";
    size_t used = 0;
    buf[0] = '\0';
    switch (f->type) {
    case T_INT:
    case T_FLOAT:
        if ((f->flags & F_MIN) && (f->flags & F_MAX) && !(f->type == T_INT && f->max == INT_MAX))
            snprintf(buf, cap, "%s in %c%s, %s%c", what, (f->flags & F_MIN_EXCL) ? '(' : '[', lo, hi,
                     (f->flags & F_MAX_EXCL) ? ')' : ']');
        else if (f->flags & F_MIN)
            snprintf(buf, cap, "%s %s %s", what, (f->flags & F_MIN_EXCL) ? ">" : ">=", lo);
        else
            snprintf(buf, cap, "%s", what);
        break;
    case T_BOOL: snprintf(buf, cap, "true or false"); break;
    case T_STRING: snprintf(buf, cap, "a string"); break;
    case T_PATH: snprintf(buf, cap, "a path"); break;
    case T_ENUM:
    case T_LIST:
        used = (size_t)snprintf(buf, cap, "%s", f->type == T_ENUM ? "one of " : "a list of ");
        for (int i = 0; f->values[i] && used < cap; i++)
            used += (size_t)snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", f->values[i]);
        break;
    }
}

/* ======================= typed values from text ======================= */

static int parse_int_text(const char *s, long long *out) {
    if (!*s || isspace((unsigned char)*s)) return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *out = v;
    return 0;
}

static int parse_float_text(const char *s, double *out) {
    if (!*s || isspace((unsigned char)*s)) return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

/* ASCII case-insensitive compare (strcasecmp is POSIX <strings.h>; this is its only use). */
static int strcasecmp_c(const char *a, const char *b) {
    for (;; a++, b++) {
        int d = tolower((unsigned char)*a) - tolower((unsigned char)*b);
        if (d || !*a) return d;
    }
}

static int parse_bool_text(const char *s, int *out) {
    static const char *const T[] = {"true", "yes", "on"}, *const F[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (strcasecmp_c(s, T[i]) == 0) return *out = 1, 0;
        if (strcasecmp_c(s, F[i]) == 0) return *out = 0, 0;
    }
    return -1;
}

static int in_range(const field *f, double v) {
    if (f->flags & F_MIN) {
        if ((f->flags & F_MIN_EXCL) ? !(v > f->min) : !(v >= f->min)) return 0;
    }
    if (f->flags & F_MAX) {
        if ((f->flags & F_MAX_EXCL) ? !(v < f->max) : !(v <= f->max)) return 0;
    }
    return 1;
}

static int value_index(const field *f, const char *s) {
    for (int i = 0; f->values[i]; i++)
        if (strcmp(f->values[i], s) == 0) return i;
    return -1;
}

/* Set a scalar field from text; `loc` ("file:line" / "override '...'") prefixes errors. */
static int set_scalar(m2u_train_config *cfg, const field *f, const char *text, const char *loc) {
    char want[256];
    describe(f, want, sizeof want);
    switch (f->type) {
    case T_INT: {
        long long v;
        if (parse_int_text(text, &v) != 0 || v < INT_MIN || v > INT_MAX || !in_range(f, (double)v))
            return m2u_fail("%s: %s must be %s, got '%s'", loc, f->key, want, text);
        *ival(cfg, f) = (int)v;
        return 0;
    }
    case T_FLOAT: {
        double v;
        if (parse_float_text(text, &v) != 0 || !in_range(f, v))
            return m2u_fail("%s: %s must be %s, got '%s'", loc, f->key, want, text);
        *dval(cfg, f) = v == 0 ? 0.0 : v; /* no "-0.0" in dumps */
        return 0;
    }
    case T_BOOL: {
        int v;
        if (parse_bool_text(text, &v) != 0) return m2u_fail("%s: %s must be %s, got '%s'", loc, f->key, want, text);
        *ival(cfg, f) = v;
        return 0;
    }
    case T_STRING:
    case T_PATH: {
        char *p = xstrdup(text);
        if (!p) return m2u_fail("%s: out of memory", loc);
        free(*sval(cfg, f));
        *sval(cfg, f) = p;
        return 0;
    }
    case T_ENUM: {
        int i = value_index(f, text);
        if (i < 0) {
            const char *s = suggest_value(f, text);
            return m2u_fail("%s: %s must be %s, got '%s'%s%s%s", loc, f->key, want, text, s ? " (did you mean '" : "",
                            s ? s : "", s ? "'?)" : "");
        }
        *ival(cfg, f) = i;
        return 0;
    }
    case T_LIST: break;
    }
    return m2u_fail("%s: %s must be %s, got '%s'", loc, f->key, want, text);
}

/* Add one list item to *bits; duplicates and unknown names are refused. */
static int add_item(const field *f, const char *item, unsigned *bits, const char *loc) {
    int i = value_index(f, item);
    if (i < 0) {
        const char *s = suggest_value(f, item);
        char want[256];
        describe(f, want, sizeof want);
        return m2u_fail("%s: %s must be %s; '%s' is not one of them%s%s%s", loc, f->key, want, item,
                        s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
    }
    if (*bits & (1u << i)) return m2u_fail("%s: %s lists '%s' twice", loc, f->key, item);
    *bits |= 1u << i;
    return 0;
}

static int check_list_nonempty(const field *f, unsigned bits, const char *loc) {
    if ((f->flags & F_NONEMPTY) && bits == 0) {
        char want[256];
        describe(f, want, sizeof want);
        return m2u_fail("%s: %s must not be empty (it must be %s); leave it out for the default (%s)", loc, f->key,
                        want, f->def_doc ? f->def_doc : "");
    }
    return 0;
}

/* A comma-separated list ("a,b" / "[a, b]" / "") into bits, as overrides and defaults write them. */
static int set_list_text(m2u_train_config *cfg, const field *f, const char *text, const char *loc) {
    size_t n = strlen(text);
    while (n && isspace((unsigned char)text[n - 1])) n--;
    while (n && isspace((unsigned char)*text)) text++, n--;
    if (n >= 2 && text[0] == '[' && text[n - 1] == ']') text++, n -= 2;
    unsigned bits = 0;
    const char *p = text, *end = text + n;
    while (n && p <= end) { /* n == 0: "" or "[]", the empty list */
        const char *c = memchr(p, ',', (size_t)(end - p));
        if (!c) c = end;
        const char *a = p, *b = c;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        if (a == b) return m2u_fail("%s: %s has an empty item in '%.*s'", loc, f->key, (int)n, text);
        char item[64];
        snprintf(item, sizeof item, "%.*s", (int)(b - a), a);
        if (add_item(f, item, &bits, loc) != 0) return -1;
        p = c + 1;
    }
    if (check_list_nonempty(f, bits, loc) != 0) return -1;
    *uval(cfg, f) = bits;
    return 0;
}

/* The key's default; lists and scalars go through the same parsers as user text. */
static int set_default(m2u_train_config *cfg, const field *f) {
    if (f->type == T_LIST) {
        if (!f->def) return *uval(cfg, f) = 0, 0; /* derived in finalize (trainable, kinds) */
        return set_list_text(cfg, f, f->def, "schema");
    }
    if (!f->def) {
        if (f->type == T_STRING || f->type == T_PATH) return set_scalar(cfg, f, "", "schema");
        *ival(cfg, f) = 0; /* a required int: 0 is below its minimum, i.e. "not set" */
        return 0;
    }
    return set_scalar(cfg, f, f->def, "schema");
}

static int set_origin(m2u_train_config *cfg, int idx, const char *loc) {
    char *o = NULL;
    if (loc && !(o = xstrdup(loc))) return m2u_fail("%s: out of memory", loc);
    free(cfg->origin[idx]);
    cfg->origin[idx] = o;
    return 0;
}

/* ======================= init / free ======================= */

int m2u_train_config_init(m2u_train_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->origin = calloc((size_t)N_FIELDS, sizeof *cfg->origin);
    if (!cfg->origin) return m2u_fail("train config: out of memory");
    for (int i = 0; i < N_FIELDS; i++)
        if (set_default(cfg, &FIELDS[i]) != 0) {
            m2u_train_config_free(cfg);
            return -1;
        }
    return 0;
}

void m2u_train_config_free(m2u_train_config *cfg) {
    if (!cfg) return;
    for (int i = 0; i < N_FIELDS; i++) {
        const field *f = &FIELDS[i];
        if (f->type == T_STRING || f->type == T_PATH) {
            free(*sval(cfg, f));
            *sval(cfg, f) = NULL;
        }
        if (cfg->origin) free(cfg->origin[i]);
    }
    free(cfg->origin);
    free(cfg->source);
    memset(cfg, 0, sizeof *cfg);
}

/* ======================= YAML ======================= */

typedef struct {
    yaml_parser_t p;
    const char *name;
    m2u_train_config *cfg;
} yctx;

static size_t line_of(const yaml_event_t *ev) { return ev->start_mark.line + 1; }

static const char *event_what(const yaml_event_t *ev) {
    switch (ev->type) {
    case YAML_SCALAR_EVENT: return "a scalar";
    case YAML_SEQUENCE_START_EVENT: return "a list";
    case YAML_MAPPING_START_EVENT: return "a mapping";
    default: return "something else";
    }
}

/* Next event, refusing what this loader does not support (aliases, anchors, tags):
 * a silently shared or retyped value in a training recipe is a trap, not a feature. */
static int next_event(yctx *c, yaml_event_t *ev) {
    if (!yaml_parser_parse(&c->p, ev)) {
        const yaml_parser_t *p = &c->p;
        return m2u_fail("%s:%zu: YAML syntax error: %s%s%s", c->name, p->problem_mark.line + 1,
                        p->problem ? p->problem : "unknown problem", p->context ? " " : "", p->context ? p->context : "");
    }
    const yaml_char_t *anchor = NULL, *tag = NULL;
    switch (ev->type) {
    case YAML_ALIAS_EVENT: {
        int rc = m2u_fail("%s:%zu: YAML aliases (*%s) are not supported; write the value out", c->name, line_of(ev),
                          (const char *)ev->data.alias.anchor);
        yaml_event_delete(ev);
        return rc;
    }
    case YAML_SCALAR_EVENT: anchor = ev->data.scalar.anchor, tag = ev->data.scalar.tag; break;
    case YAML_SEQUENCE_START_EVENT: anchor = ev->data.sequence_start.anchor, tag = ev->data.sequence_start.tag; break;
    case YAML_MAPPING_START_EVENT: anchor = ev->data.mapping_start.anchor, tag = ev->data.mapping_start.tag; break;
    default: break;
    }
    if (anchor) {
        int rc = m2u_fail("%s:%zu: YAML anchors (&%s) are not supported; write each value out", c->name, line_of(ev),
                          (const char *)anchor);
        yaml_event_delete(ev);
        return rc;
    }
    if (tag) {
        int rc = m2u_fail("%s:%zu: YAML tags (%s) are not supported; the schema types every key", c->name,
                          line_of(ev), (const char *)tag);
        yaml_event_delete(ev);
        return rc;
    }
    return 0;
}

/* `key:`, `key: ~`, `key: null` (plain, not quoted) */
static int is_null(const yaml_event_t *ev) {
    if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return 0;
    const char *v = (const char *)ev->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* The value of a known key; consumes a whole sequence when the value is one. */
static int apply_value(yctx *c, int idx, yaml_event_t *ev) {
    const field *f = &FIELDS[idx];
    m2u_train_config *cfg = c->cfg;
    char loc[1024], want[256];
    snprintf(loc, sizeof loc, "%s:%zu", c->name, line_of(ev));
    describe(f, want, sizeof want);
    if (is_null(ev)) {
        if (set_default(cfg, f) != 0) return -1;
        return set_origin(cfg, idx, NULL);
    }
    if (ev->type == YAML_SCALAR_EVENT) {
        const char *v = (const char *)ev->data.scalar.value;
        if (f->type == T_LIST)
            return m2u_fail("%s: %s must be %s, written [a, b], got '%s'", loc, f->key, want, v);
        if (set_scalar(cfg, f, v, loc) != 0) return -1;
        return set_origin(cfg, idx, loc);
    }
    if (ev->type != YAML_SEQUENCE_START_EVENT || f->type != T_LIST)
        return m2u_fail("%s: %s must be %s, got %s", loc, f->key, want, event_what(ev));
    unsigned bits = 0;
    for (;;) {
        yaml_event_t item;
        if (next_event(c, &item) != 0) return -1;
        if (item.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&item);
            break;
        }
        char iloc[1024];
        snprintf(iloc, sizeof iloc, "%s:%zu", c->name, line_of(&item));
        int rc = item.type == YAML_SCALAR_EVENT
                     ? add_item(f, (const char *)item.data.scalar.value, &bits, iloc)
                     : m2u_fail("%s: %s must be %s; its items must be names, got %s", iloc, f->key, want,
                                event_what(&item));
        yaml_event_delete(&item);
        if (rc != 0) return -1;
    }
    if (check_list_nonempty(f, bits, loc) != 0) return -1;
    *uval(cfg, f) = bits;
    return set_origin(cfg, idx, loc);
}

typedef struct {
    char *key;
    size_t line;
} seen_key;

/* The keys of one mapping whose start event was consumed; `prefix` "" = top level. */
static int parse_mapping(yctx *c, const char *prefix) {
    seen_key *seen = NULL;
    int n_seen = 0, rc = -1;
    char where[160];
    if (*prefix)
        snprintf(where, sizeof where, "in '%s'", prefix);
    else
        snprintf(where, sizeof where, "at the top level");
    for (;;) {
        yaml_event_t kev, vev;
        if (next_event(c, &kev) != 0) goto done;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            break;
        }
        size_t kline = line_of(&kev);
        if (kev.type != YAML_SCALAR_EVENT) {
            m2u_fail("%s:%zu: keys must be names, got %s %s", c->name, kline, event_what(&kev), where);
            yaml_event_delete(&kev);
            goto done;
        }
        char key[128];
        snprintf(key, sizeof key, "%s", (const char *)kev.data.scalar.value);
        yaml_event_delete(&kev);
        for (int i = 0; i < n_seen; i++)
            if (strcmp(seen[i].key, key) == 0) {
                m2u_fail("%s:%zu: duplicate key '%s' %s (first at line %zu)", c->name, kline, key, where, seen[i].line);
                goto done;
            }
        seen_key *ns = realloc(seen, (size_t)(n_seen + 1) * sizeof *seen);
        if (!ns || !(ns[n_seen].key = xstrdup(key))) {
            if (ns) seen = ns;
            m2u_fail("%s: out of memory", c->name);
            goto done;
        }
        seen = ns;
        seen[n_seen++].line = kline;

        char full[256];
        snprintf(full, sizeof full, "%s%s%s", prefix, *prefix ? "." : "", key);
        if (strchr(key, '.')) {
            m2u_fail("%s:%zu: key '%s' %s: nest sections instead of dotted keys (dotted keys are for "
                     "command-line overrides)",
                     c->name, kline, key, where);
            goto done;
        }
        int idx = field_index(full);
        if (idx < 0 && !is_section(full)) {
            char list[1024], best[64];
            children(prefix, key, list, sizeof list, best, sizeof best);
            const char *elsewhere = best[0] ? NULL : same_leaf_elsewhere(key);
            if (best[0])
                m2u_fail("%s:%zu: unknown key '%s' %s (did you mean '%s'?)", c->name, kline, key, where, best);
            else if (elsewhere)
                m2u_fail("%s:%zu: unknown key '%s' %s (did you mean '%s'?)", c->name, kline, key, where, elsewhere);
            else
                m2u_fail("%s:%zu: unknown key '%s' %s (valid keys: %s)", c->name, kline, key, where, list);
            goto done;
        }
        if (next_event(c, &vev) != 0) goto done;
        int r;
        if (idx >= 0) {
            r = apply_value(c, idx, &vev);
        } else if (vev.type == YAML_MAPPING_START_EVENT) {
            r = parse_mapping(c, full);
        } else if (is_null(&vev)) {
            r = 0; /* an empty section: its keys keep their values */
        } else {
            char list[1024];
            children(full, NULL, list, sizeof list, NULL, 0);
            r = m2u_fail("%s:%zu: '%s' is a section: it must be a mapping of its keys (%s), got %s", c->name,
                         line_of(&vev), full, list, event_what(&vev));
        }
        yaml_event_delete(&vev);
        if (r != 0) goto done;
    }
    rc = 0;
done:
    for (int i = 0; i < n_seen; i++) free(seen[i].key);
    free(seen);
    return rc;
}

static int parse_document(yctx *c) {
    yaml_event_t ev;
    if (next_event(c, &ev) != 0) return -1;
    int rc = ev.type == YAML_STREAM_START_EVENT ? 0 : m2u_fail("%s: not a YAML stream", c->name);
    yaml_event_delete(&ev);
    if (rc) return -1;
    if (next_event(c, &ev) != 0) return -1;
    if (ev.type == YAML_STREAM_END_EVENT) { /* empty file: everything at its default */
        yaml_event_delete(&ev);
        return 0;
    }
    yaml_event_delete(&ev); /* DOCUMENT_START */
    if (next_event(c, &ev) != 0) return -1;
    if (ev.type == YAML_MAPPING_START_EVENT)
        rc = parse_mapping(c, "");
    else if (!is_null(&ev))
        rc = m2u_fail("%s:%zu: the top level must be a mapping of sections (run, model, lora, train, eval), got %s",
                      c->name, line_of(&ev), event_what(&ev));
    yaml_event_delete(&ev);
    if (rc) return -1;
    if (next_event(c, &ev) != 0) return -1; /* DOCUMENT_END */
    yaml_event_delete(&ev);
    if (next_event(c, &ev) != 0) return -1;
    if (ev.type != YAML_STREAM_END_EVENT)
        rc = m2u_fail("%s:%zu: a second YAML document; a config file holds exactly one", c->name, line_of(&ev));
    yaml_event_delete(&ev);
    return rc;
}

/* A config nests three levels (top, section, subsection) plus a list.  libyaml
 * rechecks every open level for each token, so tens of thousands of levels took
 * minutes; the caps stop a wrong or hostile file at once, with room to spare. */
#define M2U_CFG_MAX_DEPTH 64
#define M2U_CFG_MAX_BYTES ((size_t)1 << 20)

static int check_size(size_t len, const char *name) {
    if (len > M2U_CFG_MAX_BYTES)
        return m2u_fail("%s: %zu bytes, larger than a config can be (%zu); is this the right file?", name, len,
                        M2U_CFG_MAX_BYTES);
    return 0;
}

/* A whole pass over the events first, so that a syntax error anywhere is reported
 * as such rather than as whatever half-read value precedes it (libyaml streams).
 * The nesting cap is checked here too, before the first deep level is parsed further. */
static int check_syntax(const char *text, size_t len, const char *name) {
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) return m2u_fail("%s: out of memory", name);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc = 0, depth = 0;
    for (int done = 0; !done;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            size_t line = p.problem_mark.line + 1;
            if (p.error == YAML_READER_ERROR) { /* the reader reports a byte offset, not a mark */
                line = 1;
                for (size_t i = 0; i < p.problem_offset && i < len; i++) line += text[i] == '\n';
            }
            rc = m2u_fail("%s:%zu: YAML syntax error: %s%s%s", name, line,
                          p.problem ? p.problem : "unknown problem", p.context ? " " : "", p.context ? p.context : "");
            break;
        }
        done = ev.type == YAML_STREAM_END_EVENT;
        if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT) depth++;
        if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) depth--;
        if (depth > M2U_CFG_MAX_DEPTH) {
            rc = m2u_fail("%s:%zu: nesting deeper than %d levels (a config needs 3)", name, line_of(&ev),
                          M2U_CFG_MAX_DEPTH);
            done = 1;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    return rc;
}

int m2u_train_config_parse(m2u_train_config *cfg, const char *text, size_t len, const char *name) {
    if (check_size(len, name) != 0) return -1;
    if (check_syntax(text, len, name) != 0) return -1;
    yctx c = {.name = name, .cfg = cfg};
    if (!yaml_parser_initialize(&c.p)) return m2u_fail("%s: out of memory", name);
    yaml_parser_set_input_string(&c.p, (const unsigned char *)text, len);
    int rc = parse_document(&c);
    yaml_parser_delete(&c.p);
    if (rc != 0) return -1;
    char *src = xstrdup(name);
    if (!src) return m2u_fail("%s: out of memory", name);
    free(cfg->source);
    cfg->source = src;
    return 0;
}

int m2u_train_config_parse_file(m2u_train_config *cfg, const char *path) {
    char *text = NULL;
    size_t len = 0;
    struct stat st;
    if (stat(path, &st) != 0) return m2u_fail("config %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return m2u_fail("config %s: not a regular file", path);
    if (check_size((size_t)st.st_size, path) != 0) return -1; /* before reading it all */
    if (m2u_read_file(path, &text, &len) != 0) return m2u_fail_prefix("config %s", path);
    int rc = m2u_train_config_parse(cfg, text, len, path);
    free(text);
    return rc;
}

/* ======================= overrides ======================= */

int m2u_train_config_override(m2u_train_config *cfg, const char *assignment) {
    char loc[1024];
    snprintf(loc, sizeof loc, "override '%s'", assignment);
    const char *eq = strchr(assignment, '=');
    if (!eq) return m2u_fail("%s: expected key=value (e.g. train.lr=3e-4)", loc);
    const char *k0 = assignment, *k1 = eq;
    while (k0 < k1 && isspace((unsigned char)*k0)) k0++;
    while (k1 > k0 && isspace((unsigned char)k1[-1])) k1--;
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(k1 - k0), k0);
    const char *v = eq + 1;
    while (isspace((unsigned char)*v)) v++;
    char *value = xstrdup(v);
    if (!value) return m2u_fail("%s: out of memory", loc);
    size_t n = strlen(value);
    while (n && isspace((unsigned char)value[n - 1])) value[--n] = '\0';

    int rc = -1, idx = field_index(key);
    if (idx < 0) {
        if (is_section(key)) {
            char list[1024];
            children(key, NULL, list, sizeof list, NULL, 0);
            m2u_fail("%s: '%s' is a section; set one of its keys (%s) as %s.<key>=value", loc, key, list, key);
            goto out;
        }
        const char *best = NULL, *dot = strrchr(key, '.');
        int bd = 99;
        for (int i = 0; i < N_FIELDS; i++) {
            int d = edit_distance(key, FIELDS[i].key);
            if (d < bd) bd = d, best = FIELDS[i].key;
        }
        if (!close_enough(key, bd)) best = same_leaf_elsewhere(dot ? dot + 1 : key);
        if (best)
            m2u_fail("%s: unknown key '%s' (did you mean '%s'?)", loc, key, best);
        else
            m2u_fail("%s: unknown key '%s' (keys are section.name, e.g. train.lr)", loc, key);
        goto out;
    }
    const field *f = &FIELDS[idx];
    /* shells usually strip quotes; strip one matching pair left in (train.prompt_template='...') */
    if (f->type != T_LIST && n >= 2 && (value[0] == '"' || value[0] == '\'') && value[n - 1] == value[0]) {
        memmove(value, value + 1, n - 2);
        value[n - 2] = '\0';
    } else if (!*value && f->type != T_LIST) {
        if (set_default(cfg, f) != 0 || set_origin(cfg, idx, NULL) != 0) goto out;
        rc = 0;
        goto out;
    }
    if ((f->type == T_LIST ? set_list_text(cfg, f, value, loc) : set_scalar(cfg, f, value, loc)) != 0) goto out;
    rc = set_origin(cfg, idx, loc);
out:
    free(value);
    return rc;
}

/* ======================= finalize ======================= */

const char *m2u_train_config_origin(const m2u_train_config *cfg, const char *key) {
    int i = field_index(key);
    if (i < 0) return NULL;
    if (cfg->origin && cfg->origin[i]) return cfg->origin[i];
    return cfg->source ? cfg->source : "default";
}

int m2u_train_config_fail(const m2u_train_config *cfg, const char *key, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *o = m2u_train_config_origin(cfg, key);
    return m2u_fail("%s: %s", o ? o : "config", msg);
}

static int set_string(m2u_train_config *cfg, const char *key, char *owned) {
    if (!owned) return m2u_fail("train config: out of memory");
    char **p = sval(cfg, find_field(key));
    free(*p);
    *p = owned;
    return 0;
}

static int check_paths(const m2u_train_config *cfg) {
    for (int i = 0; i < N_FIELDS; i++) {
        const field *f = &FIELDS[i];
        if (f->type != T_PATH) continue;
        const char *p = *sval(cfg, f);
        struct stat st;
        if (!*p || !(f->flags & (F_LLM_DIR | F_FILE | F_EXISTS))) continue;
        if (stat(p, &st) != 0)
            return m2u_train_config_fail(cfg, f->key, "%s: '%s' does not exist (%s)", f->key, p, strerror(errno));
        if ((f->flags & F_FILE) && !S_ISREG(st.st_mode))
            return m2u_train_config_fail(cfg, f->key, "%s: '%s' is not a regular file", f->key, p);
        if (f->flags & F_LLM_DIR) {
            if (!S_ISDIR(st.st_mode))
                return m2u_train_config_fail(cfg, f->key, "%s: '%s' is not a directory (expected a Hugging Face "
                                                          "LLaMA checkpoint directory)", f->key, p);
            char *cj = m2u_path_join(p, "config.json");
            int ok = cj && m2u_file_exists(cj);
            free(cj);
            if (!ok)
                return m2u_train_config_fail(cfg, f->key, "%s: '%s' has no config.json (expected a Hugging Face "
                                                          "LLaMA checkpoint directory)", f->key, p);
        }
    }
    return 0;
}

int m2u_train_config_finalize(m2u_train_config *cfg, unsigned flags) {
    const char *src = cfg->source ? cfg->source : "config";
    /* required keys first: the derived defaults below need them */
    for (int i = 0; i < N_FIELDS; i++) {
        const field *f = &FIELDS[i];
        if (!(f->flags & F_REQUIRED)) continue;
        int missing = (f->type == T_STRING || f->type == T_PATH) ? !**sval(cfg, f) : !in_range(f, *ival(cfg, f));
        if (missing) return m2u_fail("%s: missing required key '%s' (%s)", src, f->key, f->doc);
    }
    /* derived defaults */
    if (!*cfg->run.name) {
        const char *base = cfg->source ? strrchr(cfg->source, '/') : NULL;
        base = base ? base + 1 : cfg->source ? cfg->source : "run";
        size_t l = strlen(base);
        if (l > 5 && !strcmp(base + l - 5, ".yaml")) l -= 5;
        else if (l > 4 && !strcmp(base + l - 4, ".yml")) l -= 4;
        if (set_string(cfg, "run.name", xasprintf("%.*s", (int)l, base)) != 0) return -1;
    }
    for (const char *p = cfg->run.name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
            return m2u_train_config_fail(cfg, "run.name",
                                         "run.name '%s' may only use letters, digits, '.', '_' and '-' (it names "
                                         "the output directory)", cfg->run.name);
    if (cfg->run.name[0] == '.' || !cfg->run.name[0])
        return m2u_train_config_fail(cfg, "run.name", "run.name '%s' must not be empty or start with '.'",
                                     cfg->run.name);
    if (!*cfg->run.out_dir && set_string(cfg, "run.out_dir", xasprintf("runs/%s", cfg->run.name)) != 0) return -1;
    if (strcmp(cfg->run.memory_limit, "auto") != 0 && strcmp(cfg->run.memory_limit, "off") != 0) {
        size_t bytes;
        if (m2u_parse_bytes(cfg->run.memory_limit, &bytes) != 0) {
            char why[256];
            snprintf(why, sizeof why, "%s", m2u_last_error());
            return m2u_train_config_fail(cfg, "run.memory_limit", "run.memory_limit: %s (or auto, off)", why);
        }
    }
    if (!*cfg->model.tokenizer &&
        set_string(cfg, "model.tokenizer", m2u_path_join(cfg->model.llm, "tokenizer.json")) != 0)
        return -1;
    if (!cfg->train.trainable) cfg->train.trainable = STAGE_TRAINABLE[cfg->model.compat][cfg->train.stage - 1];
    if (!cfg->train.kinds) cfg->train.kinds = (1u << n_values(V_KINDS)) - 1;

    /* rules between keys */
    if (cfg->train.schedule != M2U_SCHEDULE_CONSTANT && cfg->train.min_lr > cfg->train.lr)
        return m2u_train_config_fail(cfg, "train.min_lr", "train.min_lr (%g) must not exceed train.lr (%g)",
                                     cfg->train.min_lr, cfg->train.lr);
    if (cfg->train.max_steps > 0 && cfg->train.warmup_steps > cfg->train.max_steps)
        return m2u_train_config_fail(cfg, "train.warmup_steps",
                                     "train.warmup_steps (%d) must not exceed train.max_steps (%d)",
                                     cfg->train.warmup_steps, cfg->train.max_steps);
    /* a micro-batch's tokens index int arrays and size every activation buffer: bounded so that
     * no product of them overflows (2^24 tokens is 4096 sequences of 4096) */
    if ((int64_t)cfg->train.batch * cfg->train.max_len > M2U_TRAIN_MAX_TOKENS)
        return m2u_train_config_fail(cfg, "train.batch",
                                     "train.batch x train.max_len (%d x %d) is over %d tokens a micro-batch; use "
                                     "train.accum for larger batches",
                                     cfg->train.batch, cfg->train.max_len, M2U_TRAIN_MAX_TOKENS);
    if (cfg->model.projector.d_model % cfg->model.projector.heads != 0)
        return m2u_train_config_fail(cfg, "model.projector.heads",
                                     "model.projector.heads (%d) must divide model.projector.d_model (%d)",
                                     cfg->model.projector.heads, cfg->model.projector.d_model);
    if ((cfg->train.trainable & M2U_TRAIN_LORA) && !cfg->lora.targets)
        return m2u_train_config_fail(cfg, "lora.targets",
                                     "lora.targets is empty but train.trainable includes 'lora'");
    if ((cfg->train.trainable & M2U_TRAIN_ADAPTERS) && !cfg->model.modalities)
        return m2u_train_config_fail(cfg, "model.modalities",
                                     "model.modalities is empty but train.trainable includes 'adapters'");
    if (cfg->model.compat == M2U_COMPAT_RELEASED && (cfg->train.trainable & M2U_TRAIN_GATES))
        return m2u_train_config_fail(cfg, "train.trainable",
                                     "train.trainable includes 'gates' but model.compat is 'released', whose "
                                     "gates stay frozen at zero");
    const char *t = strstr(cfg->train.prompt_template, "{instruction}");
    if (!t || strstr(t + 1, "{instruction}"))
        return m2u_train_config_fail(cfg, "train.prompt_template",
                                     "train.prompt_template must contain '{instruction}' exactly once");

    if (!(flags & M2U_CFG_NO_FILE_CHECKS) && check_paths(cfg) != 0) return -1;
    return 0;
}

int m2u_train_config_load(const char *path, const char *const *overrides, int n_overrides, unsigned flags,
                          m2u_train_config *cfg) {
    if (m2u_train_config_init(cfg) != 0) return -1;
    int rc = m2u_train_config_parse_file(cfg, path);
    for (int i = 0; rc == 0 && i < n_overrides; i++) rc = m2u_train_config_override(cfg, overrides[i]);
    if (rc == 0) rc = m2u_train_config_finalize(cfg, flags);
    if (rc != 0) m2u_train_config_free(cfg);
    return rc;
}

/* ======================= dump ======================= */

/* libyaml's write handler: 1 = written, 0 = failed */
static int sbuf_write(void *data, unsigned char *bytes, size_t size) {
    m2u_strbuf *s = data;
    m2u_sb_put(s, (const char *)bytes, size);
    return !s->oom;
}

static int emit_scalar(yaml_emitter_t *e, const char *v, yaml_scalar_style_t style) {
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)v, (int)strlen(v), 1, 1, style)) return -1;
    return yaml_emitter_emit(e, &ev) ? 0 : -1;
}
static int emit_mapping(yaml_emitter_t *e, int start) {
    yaml_event_t ev;
    int ok = start ? yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE)
                   : yaml_mapping_end_event_initialize(&ev);
    return ok && yaml_emitter_emit(e, &ev) ? 0 : -1;
}

static int emit_value(yaml_emitter_t *e, const m2u_train_config *cfg, const field *f) {
    char buf[64];
    yaml_event_t ev;
    switch (f->type) {
    case T_INT: snprintf(buf, sizeof buf, "%d", *ival(cfg, f)); return emit_scalar(e, buf, YAML_PLAIN_SCALAR_STYLE);
    case T_FLOAT:
        fmt_num(buf, sizeof buf, *dval(cfg, f));
        /* "1.0" and "1.0e-06", not "1" and "1e-06": YAML 1.1 readers (PyYAML) then see floats too */
        if (!strchr(buf, '.')) {
            char *ex = strchr(buf, 'e');
            size_t at = ex ? (size_t)(ex - buf) : strlen(buf);
            memmove(buf + at + 2, buf + at, strlen(buf + at) + 1);
            memcpy(buf + at, ".0", 2);
        }
        return emit_scalar(e, buf, YAML_PLAIN_SCALAR_STYLE);
    case T_BOOL: return emit_scalar(e, *ival(cfg, f) ? "true" : "false", YAML_PLAIN_SCALAR_STYLE);
    case T_STRING:
    case T_PATH: return emit_scalar(e, *sval(cfg, f), YAML_DOUBLE_QUOTED_SCALAR_STYLE);
    case T_ENUM: return emit_scalar(e, f->values[*ival(cfg, f)], YAML_PLAIN_SCALAR_STYLE);
    case T_LIST:
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_FLOW_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return -1;
        for (int i = 0; f->values[i]; i++)
            if ((*uval(cfg, f) & (1u << i)) && emit_scalar(e, f->values[i], YAML_PLAIN_SCALAR_STYLE) != 0) return -1;
        if (!yaml_sequence_end_event_initialize(&ev) || !yaml_emitter_emit(e, &ev)) return -1;
        return 0;
    }
    return -1;
}

/* Emit every key in table order, opening and closing section mappings as the
 * keys' prefixes change (sections are contiguous in FIELDS). */
static int emit_all(yaml_emitter_t *e, const m2u_train_config *cfg) {
    yaml_event_t ev;
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) || !yaml_emitter_emit(e, &ev)) return -1;
    if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) || !yaml_emitter_emit(e, &ev)) return -1;
    if (emit_mapping(e, 1) != 0) return -1;
    char open[4][64];
    int depth = 0;
    for (int i = 0; i < N_FIELDS; i++) {
        const field *f = &FIELDS[i];
        char parts[4][64];
        int np = 0;
        for (const char *p = f->key; np < 4;) {
            size_t l = strcspn(p, ".");
            snprintf(parts[np++], sizeof parts[0], "%.*s", (int)l, p);
            if (!p[l]) break;
            p += l + 1;
        }
        int common = 0;
        while (common < depth && common < np - 1 && !strcmp(open[common], parts[common])) common++;
        for (; depth > common; depth--)
            if (emit_mapping(e, 0) != 0) return -1;
        for (; depth < np - 1; depth++) {
            if (emit_scalar(e, parts[depth], YAML_PLAIN_SCALAR_STYLE) != 0 || emit_mapping(e, 1) != 0) return -1;
            snprintf(open[depth], sizeof open[0], "%s", parts[depth]);
        }
        if (emit_scalar(e, parts[np - 1], YAML_PLAIN_SCALAR_STYLE) != 0 || emit_value(e, cfg, f) != 0) return -1;
    }
    for (; depth > 0; depth--)
        if (emit_mapping(e, 0) != 0) return -1;
    if (emit_mapping(e, 0) != 0) return -1;
    if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(e, &ev)) return -1;
    if (!yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(e, &ev)) return -1;
    return yaml_emitter_flush(e) ? 0 : -1;
}

int m2u_train_config_to_yaml(const m2u_train_config *cfg, char **out) {
    *out = NULL;
    m2u_strbuf s = {0};
    static const char head[] = "# m2u-train resolved configuration (m2u " M2U_VERSION "): every key, as the run used it.\n"
                               "# Load it again with: m2u-train <this file>\n";
    if (!sbuf_write(&s, (unsigned char *)head, sizeof head - 1)) return m2u_fail("train config: out of memory");
    yaml_emitter_t e;
    if (!yaml_emitter_initialize(&e)) {
        free(s.s);
        return m2u_fail("train config: out of memory");
    }
    yaml_emitter_set_output(&e, sbuf_write, &s);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1); /* no folding: one key per line */
    yaml_emitter_set_indent(&e, 2);
    int rc = emit_all(&e, cfg);
    if (rc != 0) {
        rc = s.oom ? m2u_fail("train config: out of memory")
                   : m2u_fail("train config: YAML emitter: %s", e.problem ? e.problem : "failed");
        free(s.s);
    } else {
        *out = s.s;
    }
    yaml_emitter_delete(&e);
    return rc;
}

int m2u_train_config_save(const m2u_train_config *cfg, const char *path) {
    char *text;
    if (m2u_train_config_to_yaml(cfg, &text) != 0) return m2u_fail_prefix("%s", path);
    int rc = m2u_write_file_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

const char *m2u_train_config_diff(const m2u_train_config *a, const m2u_train_config *b) {
    for (int i = 0; i < N_FIELDS; i++) {
        const field *f = &FIELDS[i];
        int same = 1;
        switch (f->type) {
        case T_INT:
        case T_BOOL:
        case T_ENUM: same = *ival(a, f) == *ival(b, f); break;
        case T_FLOAT: same = *dval(a, f) == *dval(b, f); break;
        case T_LIST: same = *uval(a, f) == *uval(b, f); break;
        case T_STRING:
        case T_PATH: same = !strcmp(*sval(a, f), *sval(b, f)); break;
        }
        if (!same) return f->key;
    }
    return NULL;
}

const char *m2u_train_config_value_name(const char *key, int i) {
    const field *f = find_field(key);
    if (!f || !f->values || i < 0 || i >= n_values(f->values)) return NULL;
    return f->values[i];
}

/* ======================= Markdown reference ======================= */

static void md_type(const field *f, char *buf, size_t cap) {
    char lo[32], hi[32];
    fmt_num(lo, sizeof lo, f->min);
    fmt_num(hi, sizeof hi, f->max);
    size_t used = 0;
    switch (f->type) {
    case T_INT:
    case T_FLOAT: {
        const char *t = f->type == T_INT ? "int" : "float";
        if ((f->flags & F_MIN) && (f->flags & F_MAX) && !(f->type == T_INT && f->max == INT_MAX))
            snprintf(buf, cap, "%s in %c%s, %s%c", t, (f->flags & F_MIN_EXCL) ? '(' : '[', lo, hi,
                     (f->flags & F_MAX_EXCL) ? ')' : ']');
        else if (f->flags & F_MIN)
            snprintf(buf, cap, "%s %s %s", t, (f->flags & F_MIN_EXCL) ? ">" : "≥", lo);
        else
            snprintf(buf, cap, "%s", t);
        break;
    }
    case T_BOOL: snprintf(buf, cap, "bool"); break;
    case T_STRING: snprintf(buf, cap, "string"); break;
    case T_PATH: snprintf(buf, cap, "path"); break;
    case T_ENUM:
    case T_LIST:
        used = (size_t)snprintf(buf, cap, "%s", f->type == T_ENUM ? "one of " : "list of ");
        for (int i = 0; f->values[i] && used < cap; i++)
            used += (size_t)snprintf(buf + used, cap - used, "%s`%s`", i ? ", " : "", f->values[i]);
        break;
    }
}

static void md_default(const field *f, char *buf, size_t cap) {
    if (f->flags & F_REQUIRED) {
        snprintf(buf, cap, "**required**");
    } else if (f->def_doc) {
        snprintf(buf, cap, "%s", f->def_doc);
    } else if (f->type == T_LIST) { /* "a,b" -> `[a, b]` */
        size_t used = (size_t)snprintf(buf, cap, "`[");
        for (const char *p = f->def ? f->def : ""; *p && used < cap; p++)
            used += *p == ',' ? (size_t)snprintf(buf + used, cap - used, ", ")
                              : (size_t)snprintf(buf + used, cap - used, "%c", *p);
        if (used < cap) snprintf(buf + used, cap - used, "]`");
    } else {
        snprintf(buf, cap, "`%s`", f->def ? f->def : "");
    }
}

void m2u_train_config_doc_markdown(FILE *fp) {
    fprintf(fp, "Every key of an `m2u-train` YAML config. Sections nest as shown by the dotted names "
                "(`train.lr` is `lr:` under `train:`); the same dotted names override keys on the command "
                "line (`m2u-train configs/stage2.yaml train.lr=3e-4 model.modalities=music,image`).\n\n"
                "- A config is refused before any work, with `file:line`, on an unknown key (with a "
                "suggestion), a duplicate key, a value of the wrong type or out of range, a list where a "
                "single value belongs (or the reverse), YAML anchors/aliases/tags, or a second document; "
                "a bad override is refused naming the override.\n"
                "- After the file and the overrides: required keys, rules between keys (`min_lr` ≤ `lr`, "
                "`heads` divides `d_model`, ...) and paths (`model.llm` must hold `config.json`; "
                "`model.tokenizer`, `train.data` and a non-empty `model.init_from` must exist).\n"
                "- A null value (`key:`, `~`, `null`) resets a key to its default; so does `key=` on the "
                "command line. Lists are written `[a, b]` (YAML) or `a,b` (override); `[]` / empty is the "
                "empty list.\n"
                "- Relative paths are relative to the working directory (the recipes assume the repository root).\n"
                "- Each run saves the resolved config (every key, derived defaults filled in) as "
                "`<run.out_dir>/config.yaml`; it loads back to the identical configuration.\n");
    for (int s = 0; s < N_SECTIONS; s++) {
        fprintf(fp, "\n### `%s`\n\n%s\n\n| key | type | default | meaning |\n|---|---|---|---|\n", SECTIONS[s].name,
                SECTIONS[s].doc);
        size_t sl = strlen(SECTIONS[s].name);
        for (int i = 0; i < N_FIELDS; i++) {
            const field *f = &FIELDS[i];
            if (strncmp(f->key, SECTIONS[s].name, sl) != 0 || f->key[sl] != '.') continue;
            char type[256], def[512];
            md_type(f, type, sizeof type);
            md_default(f, def, sizeof def);
            fprintf(fp, "| `%s` | %s | %s | %s |\n", f->key, type, def, f->doc);
        }
    }
    fprintf(fp, "\n`train.trainable` by stage when the key is left out (`model.compat: paper` follows the "
                "paper's intent; `released` the released code's `get_trainable_params`):\n\n"
                "| stage | paper | released |\n|---|---|---|\n");
    for (int st = 0; st < 3; st++) {
        fprintf(fp, "| %d |", st + 1);
        for (int c = 0; c < 2; c++) {
            int first = 1;
            fputc(' ', fp);
            for (int i = 0; V_TRAINABLE[i]; i++)
                if (STAGE_TRAINABLE[c][st] & (1u << i)) {
                    fprintf(fp, "%s`%s`", first ? "" : ", ", V_TRAINABLE[i]);
                    first = 0;
                }
            fprintf(fp, " |");
        }
        fputc('\n', fp);
    }
    fprintf(fp, "\nThe released code trains the whole embedding matrix in stages 1-2; m2u approximates that by the "
                "`[AUD]` rows (`aud_embeddings`) and keeps the base vocabulary frozen.\n"
                "\nDefault `train.prompt_template` (M2UGen's `format_prompt`; `\\n` is a newline):\n\n"
                "    Below is an instruction that describes a task. Write a response that appropriately completes "
                "the request.\\n\\n### Instruction:\\n{instruction}\\n\\n### Response:\n");
}
