/* m2u-llm: run a Hugging Face LLaMA checkpoint directory with m2u's numeric core.
 *
 * Subcommands: tokenize, decode, logits, generate, init, finetune.  See usage(). */
#include "log.h"
#include "adamw.h"
#include "backend.h"
#include "fileio.h"
#include "llama.h"
#include "m2u_error.h"
#include "npy.h"
#include "peft.h"
#include "progress.h"
#include "rng.h"
#include "tokenizer.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One entry per command: synopsis and what it does, and its examples.  `m2u-llm
 * --help` prints them all; `m2u-llm CMD --help` and a mistake on CMD's command
 * line print CMD's own. */
typedef struct {
    const char *name, *text, *examples;
} command_help;

static const command_help k_commands[] = {
    {"tokenize",
     "  tokenize  --model DIR [--adapter DIR] [--no-bos] [--] TEXT\n"
     "            print token ids (JSON); with --adapter, its tokenizer.json when it has one\n"
     "            (added tokens); after --, TEXT may start with '-'\n",
     "  m2u-llm tokenize --model ~/models/Llama-2-7b-hf \"Hello world\"\n"
     "  m2u-llm tokenize --model ~/models/Llama-2-7b-hf --no-bos -- \"--verbose is a flag\"\n"},
    {"decode",
     "  decode    --model DIR [--adapter DIR] [--skip-special] ID...\n"
     "            print the text of token ids\n",
     "  m2u-llm decode --model ~/models/Llama-2-7b-hf --skip-special 1 15043 3186\n"},
    {"logits",
     "  logits    --model DIR (--text TEXT | --ids 1,2,3) --out FILE.npy [--adapter DIR] [--no-bos]\n"
     "            write logits [T, vocab] as float32 .npy; an adapter that saved embed_tokens /\n"
     "            lm_head (a grown vocabulary, e.g. [AUD] tokens) grows the model's vocabulary\n",
     "  m2u-llm logits --model ~/models/Llama-2-7b-hf --text \"The capital of France is\" --out l.npy\n"
     "      python3 -c \"import numpy; print(numpy.load('l.npy').argmax(-1))\"\n"
     "  m2u-llm logits --model ~/models/Llama-2-7b-hf --adapter exports/stage3-peft --ids 1,32000 --out l.npy\n"},
    {"generate",
     "  generate  --model DIR --prompt TEXT [--adapter DIR] [--max-new-tokens 64]\n"
     "            [--temperature 0] [--top-k 0] [--top-p 1] [--seed 0] [--no-stop]\n"
     "            continue a prompt (temperature 0: greedy); stops at EOS unless --no-stop\n",
     "  m2u-llm generate --model ~/models/Llama-2-7b-hf --adapter out/adapter --prompt \"A calm\" \\\n"
     "      --temperature 0.8 --top-p 0.95 --seed 1\n"},
    {"init",
     "  init      --config FILE.json --tokenizer tokenizer.json --out DIR [--seed 0] [--dtype f32|bf16]\n"
     "            [--std 0.02] [--embed-std 0.02]\n"
     "            write a randomly initialised checkpoint (normal weights, unit norms)\n",
     "  m2u-llm init --config configs/tiny_llama.json --tokenizer tokenizer.json --out /tmp/tiny\n"},
    {"finetune",
     "  finetune  --model DIR --text FILE --out ADAPTER_DIR [--steps 200] [--batch 4] [--seq 64]\n"
     "            [--lr 3e-3] [--warmup 10] [--lora-r 8] [--lora-alpha 16] [--lora-dropout 0]\n"
     "            [--targets all|q_proj,v_proj,...] [--seed 0] [--log FILE.jsonl] [--precision fp32|bf16]\n"
     "            train a LoRA adapter on a text file; writes a PEFT adapter directory; --precision bf16\n"
     "            holds the frozen f32 weights as bf16 copies and multiplies the bf16 ones in bf16 where\n"
     "            the CPU can (AVX-512 BF16; fp32 arithmetic elsewhere), as train.precision\n",
     "  m2u-llm finetune --model /tmp/tiny --text data/demo/captions.txt --out /tmp/tiny-lora --steps 300\n"},
};
#define N_COMMANDS (int)(sizeof k_commands / sizeof *k_commands)

static const command_help *find_command(const char *name) {
    for (int i = 0; name && i < N_COMMANDS; i++)
        if (!strcmp(k_commands[i].name, name)) return &k_commands[i];
    return NULL;
}

static void usage(FILE *f) {
    fputs("usage: m2u-llm COMMAND [options]   (m2u-llm COMMAND --help: that command only)\n"
          "\n"
          "Run a Hugging Face LlamaForCausalLM checkpoint directory (config.json, *.safetensors,\n"
          "tokenizer.json) on the CPU, optionally with a PEFT LoRA adapter directory.\n"
          "\n"
          "commands:\n",
          f);
    for (int i = 0; i < N_COMMANDS; i++) fputs(k_commands[i].text, f);
    fputs("common: --threads N (default: OMP_NUM_THREADS or all cores); -- ends the options\n\nexamples:\n", f);
    for (int i = 0; i < N_COMMANDS; i++) fputs(k_commands[i].examples, f);
}

static void command_usage(FILE *f, const char *name) {
    const command_help *c = find_command(name);
    if (!c) {
        usage(f);
        return;
    }
    fprintf(f, "usage: m2u-llm %s", c->text + 2);
    fprintf(f, "            --threads N (default: OMP_NUM_THREADS or all cores)\n\nexamples:\n%s", c->examples);
}

/* A mistake on the command line (as opposed to a failure while running): main
   prints it with the command's usage and exits 2. */
static int g_usage_error;
static int usage_fail(const char *fmt, ...) M2U_PRINTF(1, 2);
static int usage_fail(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_usage_error = 1;
    return m2u_fail("%s", buf);
}

typedef struct {
    const char *model, *adapter, *text, *ids, *out, *prompt, *config, *tokenizer, *dtype, *targets, *log, *precision;
    int no_bos, skip_special, max_new, top_k, no_stop, threads, steps, batch, seq, warmup, lora_r;
    float temperature, top_p, lr, lora_alpha, lora_dropout, std, embed_std;
    unsigned long long seed;
    char **rest;
    int n_rest;
} options;

static int parse_int(const char *s, const char *opt, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < -2147483647L || v > 2147483647L)
        return usage_fail("%s: expected an integer, got '%s'", opt, s);
    *out = (int)v;
    return 0;
}

static int parse_float(const char *s, const char *opt, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v)) return usage_fail("%s: expected a number, got '%s'", opt, s);
    *out = (float)v;
    return 0;
}

static int parse_options(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    o->max_new = 64;
    o->top_p = 1.0f;
    o->steps = 200;
    o->batch = 4;
    o->seq = 64;
    o->lr = 3e-3f;
    o->warmup = 10;
    o->lora_r = 8;
    o->lora_alpha = 16.0f;
    o->targets = "all";
    o->dtype = "f32";
    o->precision = "fp32";
    o->std = 0.02f;
    o->embed_std = 0.02f;
    o->rest = calloc((size_t)argc + 1, sizeof(char *));
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        const char **str = NULL;
        int *ival = NULL;
        float *fval = NULL;
        if (!strcmp(a, "--")) { /* the end of the options: the rest is TEXT or IDs, even "--x" */
            while (++i < argc) o->rest[o->n_rest++] = argv[i];
            break;
        }
        if (!strcmp(a, "--model")) str = &o->model;
        else if (!strcmp(a, "--adapter")) str = &o->adapter;
        else if (!strcmp(a, "--text")) str = &o->text;
        else if (!strcmp(a, "--ids")) str = &o->ids;
        else if (!strcmp(a, "--out")) str = &o->out;
        else if (!strcmp(a, "--prompt")) str = &o->prompt;
        else if (!strcmp(a, "--config")) str = &o->config;
        else if (!strcmp(a, "--tokenizer")) str = &o->tokenizer;
        else if (!strcmp(a, "--dtype")) str = &o->dtype;
        else if (!strcmp(a, "--targets")) str = &o->targets;
        else if (!strcmp(a, "--log")) str = &o->log;
        else if (!strcmp(a, "--precision")) str = &o->precision;
        else if (!strcmp(a, "--max-new-tokens")) ival = &o->max_new;
        else if (!strcmp(a, "--top-k")) ival = &o->top_k;
        else if (!strcmp(a, "--threads")) ival = &o->threads;
        else if (!strcmp(a, "--steps")) ival = &o->steps;
        else if (!strcmp(a, "--batch")) ival = &o->batch;
        else if (!strcmp(a, "--seq")) ival = &o->seq;
        else if (!strcmp(a, "--warmup")) ival = &o->warmup;
        else if (!strcmp(a, "--lora-r")) ival = &o->lora_r;
        else if (!strcmp(a, "--temperature")) fval = &o->temperature;
        else if (!strcmp(a, "--top-p")) fval = &o->top_p;
        else if (!strcmp(a, "--lr")) fval = &o->lr;
        else if (!strcmp(a, "--lora-alpha")) fval = &o->lora_alpha;
        else if (!strcmp(a, "--lora-dropout")) fval = &o->lora_dropout;
        else if (!strcmp(a, "--std")) fval = &o->std;
        else if (!strcmp(a, "--embed-std")) fval = &o->embed_std;
        else if (!strcmp(a, "--no-bos")) { o->no_bos = 1; continue; }
        else if (!strcmp(a, "--skip-special")) { o->skip_special = 1; continue; }
        else if (!strcmp(a, "--no-stop")) { o->no_stop = 1; continue; }
        else if (!strcmp(a, "--seed")) {
            char *end;
            if (!v) return usage_fail("--seed needs a value");
            o->seed = strtoull(v, &end, 10);
            if (*end || end == v) return usage_fail("--seed: expected an integer, got '%s'", v);
            i++;
            continue;
        } else if (a[0] == '-' && a[1] == '-')
            return usage_fail("unknown option %s%s", a, find_command(argv[1]) && !strcmp(argv[1], "tokenize")
                                                            ? " (text that starts with -- goes after --)"
                                                            : "");
        else {
            o->rest[o->n_rest++] = argv[i];
            continue;
        }
        if (!v) return usage_fail("%s needs a value", a);
        i++;
        if (str) *str = v;
        else if (ival && parse_int(v, a, ival)) return -1;
        else if (fval && parse_float(v, a, fval)) return -1;
    }
    if (o->threads > 0) m2u_set_threads(o->threads);
    return 0;
}

static int need(const char *value, const char *opt) { return value ? 0 : usage_fail("missing required option %s", opt); }

/* The adapter's tokenizer.json when it has one (an export over a grown vocabulary
   carries the tokenizer with its added tokens), else the model's. */
static int load_tokenizer(const options *o, m2u_tokenizer **tok) {
    char *path = o->adapter ? m2u_path_join(o->adapter, "tokenizer.json") : NULL;
    if (!path || !m2u_file_exists(path)) {
        free(path);
        path = m2u_path_join(o->model, "tokenizer.json");
    }
    int rc = path ? m2u_tokenizer_load(path, tok) : m2u_fail("out of memory");
    free(path);
    return rc;
}

/* Model, with the adapter's LoRA when one is given, and its vocabulary grown to
   the adapter's saved embed_tokens / lm_head when it carries them. */
static int load_model(const options *o, m2u_llama **m) {
    m2u_train_spec spec = {0};
    if (o->adapter && (m2u_peft_read_config(o->adapter, &spec) || m2u_peft_prepare_vocab(o->adapter, o->model, &spec)))
        return -1;
    if (m2u_llama_load(o->model, &spec, m)) return -1;
    if (o->adapter && m2u_peft_load_weights(*m, o->adapter)) {
        m2u_llama_free(*m);
        *m = NULL;
        return -1;
    }
    return 0;
}

static int encode(const m2u_tokenizer *tok, const char *text, int bos, int32_t **ids, size_t *n) {
    return m2u_tokenizer_encode(tok, text, strlen(text), bos, ids, n);
}

static int cmd_tokenize(const options *o) {
    if (need(o->model, "--model")) return -1;
    if (o->n_rest != 1)
        return usage_fail("tokenize takes exactly one TEXT argument, got %d (quote it; text that starts with -- goes "
                          "after --)", o->n_rest);
    m2u_tokenizer *tok;
    if (load_tokenizer(o, &tok)) return -1;
    int32_t *ids;
    size_t n;
    int rc = encode(tok, o->rest[0], !o->no_bos, &ids, &n);
    if (!rc) {
        printf("[");
        for (size_t i = 0; i < n; i++) printf("%s%d", i ? ", " : "", ids[i]);
        printf("]\n");
        free(ids);
    }
    m2u_tokenizer_free(tok);
    return rc;
}

static int cmd_decode(const options *o) {
    if (need(o->model, "--model")) return -1;
    m2u_tokenizer *tok;
    if (load_tokenizer(o, &tok)) return -1;
    int32_t *ids = malloc(((size_t)o->n_rest + 1) * sizeof(int32_t));
    int rc = 0;
    for (int i = 0; i < o->n_rest && !rc; i++) rc = parse_int(o->rest[i], "ID", &ids[i]);
    char *text = NULL;
    if (!rc) rc = m2u_tokenizer_decode(tok, ids, (size_t)o->n_rest, o->skip_special, &text);
    if (!rc) printf("%s\n", text);
    free(text);
    free(ids);
    m2u_tokenizer_free(tok);
    return rc;
}

static int parse_id_list(const char *s, int32_t **ids, size_t *n) {
    size_t cap = 16, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    const char *p = s;
    while (*p) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p) {
            free(v);
            return usage_fail("--ids: expected comma-separated integers, got '%s'", s);
        }
        if (k == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        v[k++] = (int32_t)x;
        p = end;
        if (*p == ',') p++;
    }
    *ids = v;
    *n = k;
    return k ? 0 : usage_fail("--ids: empty list");
}

static int cmd_logits(const options *o) {
    if (need(o->model, "--model") || need(o->out, "--out")) return -1;
    if (!o->text == !o->ids) return usage_fail("logits needs exactly one of --text or --ids");
    int32_t *ids = NULL;
    size_t n = 0;
    if (o->ids) {
        if (parse_id_list(o->ids, &ids, &n)) return -1;
    } else {
        m2u_tokenizer *tok;
        if (load_tokenizer(o, &tok)) return -1;
        int rc = encode(tok, o->text, !o->no_bos, &ids, &n);
        m2u_tokenizer_free(tok);
        if (rc) return -1;
    }
    m2u_llama *m;
    if (load_model(o, &m)) {
        free(ids);
        return -1;
    }
    int rc = m2u_llama_forward(m, ids, NULL, 1, (int)n, -100, NULL);
    if (!rc) {
        int64_t shape[2] = {(int64_t)n, m->cfg.vocab_size};
        rc = m2u_npy_write(o->out, M2U_F32, m->logits, 2, shape);
        if (!rc) printf("wrote %s: float32 [%zu, %d]\n", o->out, n, m->cfg.vocab_size);
    }
    m2u_llama_free(m);
    free(ids);
    return rc;
}

static int cmd_generate(const options *o) {
    if (need(o->model, "--model") || need(o->prompt, "--prompt")) return -1;
    if (o->max_new <= 0) return usage_fail("--max-new-tokens must be positive");
    m2u_tokenizer *tok;
    if (load_tokenizer(o, &tok)) return -1;
    int32_t *ids;
    size_t n;
    if (encode(tok, o->prompt, 1, &ids, &n)) {
        m2u_tokenizer_free(tok);
        return -1;
    }
    m2u_llama *m;
    int rc = load_model(o, &m);
    if (!rc) {
        m2u_sample_config sc = {.max_new_tokens = o->max_new, .temperature = o->temperature, .top_k = o->top_k,
                                .top_p = o->top_p, .seed = o->seed, .stop_at_eos = !o->no_stop};
        int32_t *out = malloc((size_t)o->max_new * sizeof(int32_t));
        int n_out = 0;
        double t0 = m2u_now();
        rc = m2u_llama_generate(m, ids, (int)n, &sc, out, &n_out, NULL);
        double dt = m2u_now() - t0;
        /* decode prompt and continuation together: SentencePiece decoding strips the
           leading space of a sequence, which would glue the first new word to the prompt */
        char *text = NULL;
        int32_t *all = malloc((n + (size_t)n_out) * sizeof(int32_t));
        memcpy(all, ids, n * sizeof(int32_t));
        memcpy(all + n, out, (size_t)n_out * sizeof(int32_t));
        if (!rc) rc = m2u_tokenizer_decode(tok, all, n + (size_t)n_out, 1, &text);
        free(all);
        if (!rc) {
            printf("%s\n", text);
            fflush(stdout);
            fprintf(stderr, "[%d prompt tokens, %d new tokens, %.1f tokens/s]\n", (int)n, n_out, n_out / dt);
        }
        free(text);
        free(out);
        m2u_llama_free(m);
    }
    free(ids);
    m2u_tokenizer_free(tok);
    return rc;
}

/* ---- init: a random checkpoint (HF initialiser: normal(0, 0.02), norms 1) ---- */

static int copy_file(const char *src, const char *dst) {
    char *data;
    size_t len;
    if (m2u_read_file(src, &data, &len)) return -1;
    int rc = m2u_write_file_atomic(dst, data, len);
    free(data);
    return rc;
}

/* One tensor: normal(0, std) weights, or ones for a norm (std 0; d1 == 0: a vector). */
static void add_random(m2u_st_entry *e, char **names, void **bufs, int *k, const char *name, int d0, int d1, float std,
                       m2u_dtype dt, m2u_rng *rng) {
    size_t cnt = (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1);
    float *w = malloc(cnt * sizeof(float));
    for (size_t q = 0; q < cnt; q++) w[q] = std == 0.0f ? 1.0f : std * m2u_rng_normal(rng);
    bufs[*k] = malloc(cnt * m2u_dtype_size(dt));
    m2u_convert_from_f32(dt, w, bufs[*k], cnt);
    free(w);
    names[*k] = strdup(name);
    e[*k].name = names[*k];
    e[*k].dtype = dt;
    e[*k].ndim = d1 > 0 ? 2 : 1;
    e[*k].shape[0] = d0;
    e[*k].shape[1] = d1;
    e[*k].data = bufs[*k];
    (*k)++;
}

static int cmd_init(const options *o) {
    if (need(o->config, "--config") || need(o->tokenizer, "--tokenizer") || need(o->out, "--out")) return -1;
    if (!(o->std > 0) || !(o->embed_std > 0)) return usage_fail("--std and --embed-std must be positive");
    m2u_dtype dt;
    if (!strcmp(o->dtype, "f32")) dt = M2U_F32;
    else if (!strcmp(o->dtype, "bf16")) dt = M2U_BF16;
    else return usage_fail("--dtype must be f32 or bf16");
    m2u_llama_config c;
    if (m2u_llama_config_load(o->config, &c)) return -1;
    m2u_tokenizer *tok;
    if (m2u_tokenizer_load(o->tokenizer, &tok)) return -1;
    int tv = m2u_tokenizer_vocab_size(tok);
    m2u_tokenizer_free(tok);
    if (tv > c.vocab_size)
        return m2u_fail("%s: vocab_size %d is smaller than the tokenizer's %d tokens", o->config, c.vocab_size, tv);
    if (mkdir(o->out, 0755) != 0 && errno != EEXIST) return m2u_fail("%s: cannot create: %s", o->out, strerror(errno));
    int C = c.hidden_size, F = c.intermediate_size, qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
    int n_t = 3 + 9 * c.n_layers;
    m2u_st_entry *e = calloc((size_t)n_t, sizeof *e);
    char **names = calloc((size_t)n_t, sizeof(char *));
    void **bufs = calloc((size_t)n_t, sizeof(void *));
    m2u_rng rng;
    m2u_rng_seed(&rng, o->seed);
    int k = 0, rc = 0;
    char nm[128];
    add_random(e, names, bufs, &k, "model.embed_tokens.weight", c.vocab_size, C, o->embed_std, dt, &rng);
    for (int l = 0; l < c.n_layers; l++) {
        static const char *const lin[7] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                                           "mlp.gate_proj",    "mlp.up_proj",      "mlp.down_proj"};
        int rows[7] = {qd, kvd, kvd, C, F, F, C}, cols[7] = {C, C, C, qd, C, C, F};
        for (int j = 0; j < 7; j++) {
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, lin[j]);
            add_random(e, names, bufs, &k, nm, rows[j], cols[j], o->std, dt, &rng);
        }
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        add_random(e, names, bufs, &k, nm, C, 0, 0.0f, dt, &rng);
        snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
        add_random(e, names, bufs, &k, nm, C, 0, 0.0f, dt, &rng);
    }
    add_random(e, names, bufs, &k, "model.norm.weight", C, 0, 0.0f, dt, &rng);
    if (!c.tie_word_embeddings) add_random(e, names, bufs, &k, "lm_head.weight", c.vocab_size, C, o->embed_std, dt, &rng);
    if (c.attention_bias || c.mlp_bias) rc = m2u_fail("%s: init does not create biased checkpoints", o->config);
    char *path = m2u_path_join(o->out, "model.safetensors");
    if (!rc) rc = m2u_st_write(path, e, k, NULL, NULL, 0);
    free(path);
    path = m2u_path_join(o->out, "config.json");
    if (!rc) rc = m2u_llama_config_save(path, &c);
    free(path);
    path = m2u_path_join(o->out, "tokenizer.json");
    if (!rc) rc = copy_file(o->tokenizer, path);
    free(path);
    for (int i = 0; i < k; i++) {
        free(names[i]);
        free(bufs[i]);
    }
    free(names);
    free(bufs);
    free(e);
    if (!rc) printf("wrote %s (%d tensors, %s)\n", o->out, k, m2u_dtype_name(dt));
    return rc;
}

/* ---- finetune: LoRA on a text file, held-out loss on its last tenth ---- */

static float lr_at(const options *o, int step) {
    if (step < o->warmup) return o->lr * (float)(step + 1) / (float)o->warmup;
    float t = (float)(step - o->warmup) / (float)(o->steps - o->warmup > 0 ? o->steps - o->warmup : 1);
    return 0.1f * o->lr + 0.9f * o->lr * 0.5f * (1.0f + cosf(3.14159265f * t));
}

static float eval_loss(m2u_llama *m, const int32_t *ids, size_t n, int seq) {
    double total = 0;
    long count = 0;
    for (size_t s = 0; s + (size_t)seq <= n; s += (size_t)seq) {
        float l;
        if (m2u_llama_forward(m, ids + s, ids + s, 1, seq, -100, &l)) return NAN;
        total += (double)l * m->n_valid;
        count += m->n_valid;
    }
    return count ? (float)(total / count) : NAN;
}

static int cmd_finetune(const options *o) {
    if (need(o->model, "--model") || need(o->text, "--text") || need(o->out, "--out")) return -1;
    if (o->steps <= 0 || o->batch <= 0 || o->seq < 2 || o->lora_r <= 0)
        return usage_fail("--steps, --batch, --lora-r must be positive and --seq at least 2");
    if (strcmp(o->precision, "fp32") && strcmp(o->precision, "bf16"))
        return usage_fail("--precision: expected fp32 or bf16, got '%s'", o->precision);
    char *text;
    size_t len;
    if (m2u_read_file(o->text, &text, &len)) return -1;
    m2u_tokenizer *tok;
    if (load_tokenizer(o, &tok)) {
        free(text);
        return -1;
    }
    int32_t *ids;
    size_t n;
    int rc = m2u_tokenizer_encode(tok, text, len, 1, &ids, &n);
    free(text);
    m2u_tokenizer_free(tok);
    if (rc) return m2u_fail_prefix("%s", o->text);
    size_t n_train = n - n / 10;
    if (n_train < (size_t)o->seq + 1 || n - n_train < (size_t)o->seq)
        return free(ids), m2u_fail("%s: %zu tokens is too little text for --seq %d", o->text, n, o->seq);
    m2u_train_spec spec = {.lora_r = o->lora_r, .lora_alpha = o->lora_alpha, .lora_dropout = o->lora_dropout,
                           .seed = o->seed, .frozen_bf16 = !strcmp(o->precision, "bf16")};
    if (m2u_parse_linear_targets(o->targets, &spec.lora_targets)) return free(ids), m2u_fail_prefix("--targets");
    m2u_llama *m;
    if (m2u_llama_load(o->model, &spec, &m)) return free(ids), -1;
    FILE *log = NULL;
    if (o->log && !(log = fopen(o->log, "a"))) rc = m2u_fail("%s: cannot open log: %s", o->log, strerror(errno));
    m2u_adamw opt = {0};
    if (!rc) rc = m2u_adamw_init(&opt, m->n_param_floats);
    int32_t *batch = malloc((size_t)o->batch * o->seq * sizeof(int32_t));
    m2u_adamw_config ac = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.01f};
    m2u_rng rng;
    m2u_rng_seed(&rng, o->seed ^ 0x5eedull);
    float held0 = rc ? NAN : eval_loss(m, ids + n_train, n - n_train, o->seq);
    if (!rc) fprintf(stderr, "%zu training tokens, %zu held-out; %zu trainable parameters; held-out loss %.4f\n",
                     n_train, n - n_train, m->n_param_floats, held0);
    m2u_progress pr;
    m2u_progress_start(&pr, "step", o->steps);
    float loss = 0;
    double t0 = m2u_now();
    for (int s = 0; s < o->steps && !rc; s++) {
        for (int b = 0; b < o->batch; b++) {
            size_t start = (size_t)(m2u_rng_next(&rng) % (n_train - (size_t)o->seq));
            memcpy(batch + (size_t)b * o->seq, ids + start, (size_t)o->seq * sizeof(int32_t));
        }
        m->training = 1;
        if ((rc = m2u_llama_forward(m, batch, batch, o->batch, o->seq, -100, &loss))) break;
        if (!isfinite(loss)) {
            rc = m2u_fail("step %d: loss is %f; stopping (lower --lr?)", s, loss);
            break;
        }
        m2u_llama_zero_grad(m);
        if ((rc = m2u_llama_backward(m, 1.0f / (float)m->n_valid))) break;
        double gn = m2u_grad_norm(m->grad_buf, m->n_param_floats);
        if (!isfinite(gn)) {
            rc = m2u_fail("step %d: gradient norm is %f; stopping", s, gn);
            break;
        }
        m2u_clip_grad(m->grad_buf, m->n_param_floats, gn, 1.0f);
        float lr = lr_at(o, s);
        m2u_adamw_step(&opt, &ac, lr, m->params, m->n_params);
        m->training = 0;
        char extra[96];
        snprintf(extra, sizeof extra, "loss %.4f lr %.2e", loss, lr);
        m2u_progress_update(&pr, s + 1, extra);
        if (log) {
            fprintf(log, "{\"step\": %d, \"loss\": %.6f, \"lr\": %.6g, \"grad_norm\": %.6g, \"tokens\": %ld, \"time\": %.3f}\n",
                    s + 1, loss, lr, gn, (long)(s + 1) * o->batch * o->seq, m2u_now() - t0);
            fflush(log);
        }
    }
    if (!rc) {
        m2u_progress_end(&pr, o->steps, NULL);
        float held1 = eval_loss(m, ids + n_train, n - n_train, o->seq);
        float train1 = eval_loss(m, ids, n_train, o->seq);
        fprintf(stderr, "held-out loss %.4f -> %.4f; training-text loss %.4f\n", held0, held1, train1);
        if (log) fprintf(log, "{\"event\": \"done\", \"heldout_loss_start\": %.6f, \"heldout_loss_end\": %.6f, \"train_loss_end\": %.6f}\n", held0, held1, train1);
        rc = m2u_peft_save(m, o->out, o->model);
        if (!rc) printf("wrote PEFT adapter %s\n", o->out);
    }
    if (log) fclose(log);
    free(batch);
    m2u_adamw_free(&opt);
    m2u_llama_free(m);
    free(ids);
    return rc;
}

int main(int argc, char **argv) {
    m2u_log_set(m2u_log_stderr, NULL); /* the library speaks through these two */
    m2u_progress_set_stream(stderr);
    if (argc < 2) {
        fputs("m2u-llm: no command given\n\n", stderr);
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        if (argc > 2 && find_command(argv[2])) command_usage(stdout, argv[2]); /* m2u-llm help CMD */
        else usage(stdout);
        return 0;
    }
    const char *c = argv[1];
    if (!find_command(c)) {
        fprintf(stderr, "m2u-llm: unknown command '%s'\n\n", c);
        usage(stderr);
        return 2;
    }
    /* --help before any "--": no option takes "--help" as its value */
    for (int i = 2; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            command_usage(stdout, c);
            return 0;
        }
    options o;
    int rc = parse_options(argc, argv, &o);
    /* only tokenize and decode take positional arguments */
    if (!rc && o.n_rest && strcmp(c, "tokenize") && strcmp(c, "decode"))
        rc = usage_fail("unexpected argument '%s'", o.rest[0]);
    if (!rc) {
        const char *warn = m2u_blas_threading_warning();
        if (warn) fprintf(stderr, "m2u-llm: warning: %s\n", warn);
        if (!strcmp(c, "tokenize")) rc = cmd_tokenize(&o);
        else if (!strcmp(c, "decode")) rc = cmd_decode(&o);
        else if (!strcmp(c, "logits")) rc = cmd_logits(&o);
        else if (!strcmp(c, "generate")) rc = cmd_generate(&o);
        else if (!strcmp(c, "init")) rc = cmd_init(&o);
        else rc = cmd_finetune(&o);
    }
    free(o.rest);
    if (rc && g_usage_error) {
        fprintf(stderr, "m2u-llm %s: %s\n\n", c, m2u_last_error());
        command_usage(stderr, c);
        return 2;
    }
    if (rc) {
        fprintf(stderr, "m2u-llm: %s\n", m2u_last_error());
        return 1;
    }
    return 0;
}
