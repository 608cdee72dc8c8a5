/* m2u-generate: music out of m2u.  Text -> MusicGen -> EnCodec -> WAV, or a trained M2UGen run's
 * answer: its [AUD] hidden states -> output projector -> MusicGen -> EnCodec -> WAV.  Also
 * `init`, a small random MusicGen directory in the Hugging Face layout for demos and tests.
 * The numeric work is in models/generate/music.h, the run side (open a run, media features, the
 * answer's [AUD] conditioning) in eval/report/run_music.h, shared with m2u-eval run --musicgen;
 * this file is the command line and the files it writes. */
#include "builtin_features.h"
#include "checkpoint.h"
#include "config.h"
#include "decode.h"
#include "fileio.h"
#include "frames.h"
#include "log.h"
#include "mert_encoder.h"
#include "m2u_error.h"
#include "model_setup.h"
#include "music.h"
#include "progress.h"
#include "prompt.h"
#include "rng.h"
#include "run_music.h"
#include "safetensors.h"
#include "sha256.h"
#include "tokenizer.h"
#include "vit_encoder.h"
#include "wav.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *fp) {
    fputs(
        "usage: m2u-generate --musicgen DIR (--text TEXT | --run RUN --prompt TEXT [media]) --out FILE.wav [options]\n"
        "       m2u-generate init --out DIR [--hidden 64 --layers 2 --heads 4 --codebooks 4 --text-hidden 768 ...]\n"
        "\n"
        "Makes music with MusicGen (decoder LM) and EnCodec (codec), both in C.\n"
        "  --musicgen DIR   a MusicGen directory as Hugging Face ships it (facebook/musicgen-small, -medium,\n"
        "                   -large: config.json, generation_config.json, model.safetensors or shards or\n"
        "                   pytorch_model.bin, tokenizer.json), or one made by `m2u-generate init`.\n"
        "                   musicgen-melody and stereo checkpoints are refused.\n"
        "  --text TEXT      text -> music: the prompt goes through MusicGen's T5 text encoder (needs the\n"
        "                   text encoder and tokenizer.json in DIR; `init` directories have none).\n"
        "  --tokenizer FILE the T5 tokenizer.json when DIR has none\n"
        "  --run RUN        a trained m2u run (config.yaml + checkpoints/step-N/, as m2u-train writes it): the\n"
        "                   LLaMA answers --prompt (greedily, with the media through its adapters); when the\n"
        "                   answer starts the [AUD] block, the [AUD] hidden states -> the run's output projector\n"
        "                   -> / target_scale -> MusicGen's conditioning (every position attended). An answer\n"
        "                   without [AUD] is printed, no WAV is written, exit status 1.\n"
        "  --prompt TEXT    the instruction (the run's prompt template is applied)\n"
        "  --checkpoint FILE  trainables in the released M2UGen layout (its checkpoint.pth or safetensors,\n"
        "                   or m2u-export m2ugen's) instead of RUN's newest checkpoint; RUN's config.yaml\n"
        "                   must describe that model (model.llm, LoRA rank = alpha, adapters, projector)\n"
        "  --music FILE --image FILE --video FILE   media for the run's adapters, turned into features as\n"
        "                   m2u-dataset build does: by the built-in features (data/build/builtin_features.h,\n"
        "                   what the tiny demo runs learned), or with --mert/--vit/--vivit DIR by the real\n"
        "                   encoders (MERT-v1-330M layer means of the first 10 s, ViT / ViViT last hidden state)\n"
        "  --out FILE.wav   the WAV (written atomically) and FILE.wav.json beside it (prompt, answer, settings,\n"
        "                   seed, sha256 of the model files and of the run's config and checkpoint)\n"
        "\n"
        "options:\n"
        "  --seconds S      length (default 8); frames = S x the codec's frame rate (50 Hz for 32 kHz)\n"
        "  --guidance G     classifier-free guidance scale (default: generation_config.json's, MusicGen 3.0);\n"
        "                   <= 1: no guidance.  On the --run path the null half (zero states, mask 0) is added\n"
        "                   here, as transformers adds it for text prompts (README, Making music)\n"
        "  --top-k K        (250, audiocraft's default; 0 = off)   --top-p P (1 = off)   --temperature T (1)\n"
        "  --greedy         argmax instead of sampling\n"
        "  --seed N         sampling seed (default: from the clock; always recorded in the sidecar)\n"
        "  --batch FILE     one prompt per line (--text, or --prompt with --run): FILE-000.wav, -001.wav ...\n"
        "                   named after --out (a.wav -> a-000.wav); prompt i uses seed + i\n"
        "  --float          32-bit float WAV (default 16-bit PCM)\n"
        "  --max-new-tokens N   LLaMA answer length on the --run path (default 64)\n"
        "  --threads N      OpenMP threads (default: all)\n"
        "  --continue FILE  continue this audio (any format FFmpeg reads, resampled to the codec's rate, mono):\n"
        "                   its EnCodec codes prompt the decoder as transformers' generate(input_values=...);\n"
        "                   the WAV holds the prompt (re-synthesised from its codes) then --seconds of new music\n"
        "\n"
        "init options (a small RANDOM MusicGen, Hugging Face layout: config.json with text_encoder /\n"
        "audio_encoder / decoder parts, generation_config.json, model.safetensors with the decoder LM and a\n"
        "32 kHz-style EnCodec with the real ratios [8,5,4,4] and few filters).  It has no text encoder\n"
        "weights: only the --run (M2UGen states) path works with it, not --text.\n"
        "  --hidden 64 --layers 2 --heads 4 --ffn 4*hidden --codebooks 4 --vocab 2048\n"
        "  --text-hidden 768 (the conditioning width: a run's projector out_dim)\n"
        "  --codec-hidden 32 --codec-filters 4 --seed 1 --force (replace an existing DIR)\n"
        "\n"
        "examples:\n"
        "  m2u-generate --musicgen /models/musicgen-small --text \"calm piano\" --seconds 8 --out a.wav\n"
        "  m2u-generate --run runs/stage3 --musicgen /models/musicgen-small \\\n"
        "               --prompt \"Compose music for this picture\" --image x.png --out b.wav\n"
        "  m2u-generate --musicgen /models/musicgen-small --text \"add drums\" --continue a.wav --seconds 6 --out a2.wav\n"
        "  m2u-generate init --out build/demo/musicgen-tiny --text-hidden 768\n",
        fp);
}

static int bad_usage(const char *fmt, ...) M2U_PRINTF(1, 2);
static int bad_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("m2u-generate: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    usage(stderr);
    return 2;
}

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *e;
    long v = strtol(s, &e, 10);
    if (!*s || *e || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static int parse_num(const char *s, double lo, double hi, double *out) {
    char *e;
    double v = strtod(s, &e);
    if (!*s || *e || !(v >= lo && v <= hi)) return -1;
    *out = v;
    return 0;
}

/* ---- init: a small random MusicGen ----------------------------------------------------------- */

typedef struct {
    m2u_st_entry *e;
    float **bufs;
    int n, cap;
    m2u_rng rng;
} tensors;

/* add a tensor filled with kind 0: N(0, scale), 1: U(-scale, scale), 2: constant scale */
static float *add_t(tensors *t, const char *name, int ndim, const int64_t *shape, int kind, float scale) {
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 64;
        m2u_st_entry *e = realloc(t->e, (size_t)cap * sizeof *e);
        if (!e) return NULL;
        t->e = e;
        float **b = realloc(t->bufs, (size_t)cap * sizeof *b);
        if (!b) return NULL;
        t->bufs = b;
        t->cap = cap;
    }
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *d = malloc(n * sizeof *d);
    char *nm = strdup(name);
    if (!d || !nm) {
        free(d);
        free(nm);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        d[i] = kind == 0 ? scale * m2u_rng_normal(&t->rng)
               : kind == 1 ? scale * (2.0f * m2u_rng_uniform(&t->rng) - 1.0f)
                           : scale;
    m2u_st_entry *e = &t->e[t->n];
    memset(e, 0, sizeof *e);
    e->name = nm;
    e->dtype = M2U_F32;
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->data = d;
    t->bufs[t->n++] = d;
    return d;
}

static void tensors_free(tensors *t) {
    for (int i = 0; i < t->n; i++) {
        free((void *)t->e[i].name);
        free(t->bufs[i]);
    }
    free(t->e);
    free(t->bufs);
}

#define ADD(t, name, kind, scale, ...)                                                                              \
    do {                                                                                                            \
        int64_t shp_[] = {__VA_ARGS__};                                                                             \
        if (!add_t(t, name, (int)(sizeof shp_ / sizeof *shp_), shp_, kind, scale)) return m2u_fail("out of memory"); \
    } while (0)

/* A weight-normed conv as transformers stores it (weight_g [d0,1,1], weight_v [d0,d1,k]) + bias,
 * torch's default init scale U(+-1/sqrt(fan_in)); g = ||v|| row by row, so the folded weight is v. */
static int add_wn_conv(tensors *t, const char *base, int d0, int d1, int k, int fan_in, int bias_n) {
    char nm[256];
    float s = 1.0f / sqrtf((float)fan_in);
    snprintf(nm, sizeof nm, "%s.weight_v", base);
    int64_t sv[3] = {d0, d1, k}, sg[3] = {d0, 1, 1}, sb[1] = {bias_n};
    float *v = add_t(t, nm, 3, sv, 1, s);
    if (!v) return m2u_fail("out of memory");
    snprintf(nm, sizeof nm, "%s.weight_g", base);
    float *g = add_t(t, nm, 3, sg, 2, 0.0f);
    if (!g) return m2u_fail("out of memory");
    for (int i = 0; i < d0; i++) {
        double ss = 0;
        for (int j = 0; j < d1 * k; j++) ss += (double)v[(size_t)i * d1 * k + j] * v[(size_t)i * d1 * k + j];
        g[i] = (float)sqrt(ss);
    }
    snprintf(nm, sizeof nm, "%s.bias", base);
    return add_t(t, nm, 1, sb, 1, s) ? 0 : m2u_fail("out of memory");
}

static int add_lstm(tensors *t, const char *base, int dim, int layers) {
    char nm[256];
    float s = 1.0f / sqrtf((float)dim);
    for (int i = 0; i < layers; i++) {
        snprintf(nm, sizeof nm, "%s.lstm.weight_ih_l%d", base, i);
        ADD(t, nm, 1, s, 4 * (int64_t)dim, dim);
        snprintf(nm, sizeof nm, "%s.lstm.weight_hh_l%d", base, i);
        ADD(t, nm, 1, s, 4 * (int64_t)dim, dim);
        snprintf(nm, sizeof nm, "%s.lstm.bias_ih_l%d", base, i);
        ADD(t, nm, 1, s, 4 * (int64_t)dim);
        snprintf(nm, sizeof nm, "%s.lstm.bias_hh_l%d", base, i);
        ADD(t, nm, 1, s, 4 * (int64_t)dim);
    }
    return 0;
}

typedef struct {
    int hidden, layers, heads, ffn, codebooks, vocab, text_hidden, codec_hidden, codec_filters;
    long seed;
} init_opts;

static const int k_ratios[4] = {8, 5, 4, 4};

static int add_resblock(tensors *t, const char *base, int dim) {
    char nm[256];
    int hid = dim / 2; /* compress 2 */
    snprintf(nm, sizeof nm, "%s.block.1.conv", base);
    if (add_wn_conv(t, nm, hid, dim, 3, dim * 3, hid)) return -1;
    snprintf(nm, sizeof nm, "%s.block.3.conv", base);
    return add_wn_conv(t, nm, dim, hid, 1, hid, dim);
}

/* EncodecModel's tensors for the config written below (module indices as EncodecEncoder /
 * EncodecDecoder number their ModuleLists, ELUs included). */
static int add_encodec(tensors *t, const init_opts *o) {
    const char *P = "audio_encoder.";
    char nm[256];
    int nf = o->codec_filters, hd = o->codec_hidden, ch = nf, idx = 1;
    snprintf(nm, sizeof nm, "%sencoder.layers.0.conv", P);
    if (add_wn_conv(t, nm, nf, 1, 7, 7, nf)) return -1;
    for (int i = 0; i < 4; i++) {
        int r = k_ratios[3 - i];
        snprintf(nm, sizeof nm, "%sencoder.layers.%d", P, idx++);
        if (add_resblock(t, nm, ch)) return -1;
        idx++; /* ELU */
        snprintf(nm, sizeof nm, "%sencoder.layers.%d.conv", P, idx++);
        if (add_wn_conv(t, nm, 2 * ch, ch, 2 * r, ch * 2 * r, 2 * ch)) return -1;
        ch *= 2;
    }
    snprintf(nm, sizeof nm, "%sencoder.layers.%d", P, idx++);
    if (add_lstm(t, nm, ch, 2)) return -1;
    idx++;
    snprintf(nm, sizeof nm, "%sencoder.layers.%d.conv", P, idx);
    if (add_wn_conv(t, nm, hd, ch, 7, ch * 7, hd)) return -1;
    /* decoder */
    ch = 16 * nf;
    snprintf(nm, sizeof nm, "%sdecoder.layers.0.conv", P);
    if (add_wn_conv(t, nm, ch, hd, 7, hd * 7, ch)) return -1;
    snprintf(nm, sizeof nm, "%sdecoder.layers.1", P);
    if (add_lstm(t, nm, ch, 2)) return -1;
    idx = 2;
    for (int i = 0; i < 4; i++) {
        int r = k_ratios[i];
        idx++; /* ELU */
        snprintf(nm, sizeof nm, "%sdecoder.layers.%d.conv", P, idx++);
        /* ConvTranspose1d weight [in, out, k]; weight norm over dim 0 as well */
        if (add_wn_conv(t, nm, ch, ch / 2, 2 * r, ch * 2 * r, ch / 2)) return -1;
        ch /= 2;
        snprintf(nm, sizeof nm, "%sdecoder.layers.%d", P, idx++);
        if (add_resblock(t, nm, ch)) return -1;
    }
    idx++;
    snprintf(nm, sizeof nm, "%sdecoder.layers.%d.conv", P, idx);
    if (add_wn_conv(t, nm, 1, nf, 7, nf * 7, 1)) return -1;
    for (int q = 0; q < o->codebooks; q++) {
        snprintf(nm, sizeof nm, "%squantizer.layers.%d.codebook.embed", P, q);
        ADD(t, nm, 0, 1.0f, o->vocab, hd);
    }
    return 0;
}

static int add_decoder(tensors *t, const init_opts *o) {
    char nm[256];
    int H = o->hidden, F = o->ffn;
    const float sd = 0.02f; /* MusicgenDecoderConfig.initializer_factor */
    for (int k = 0; k < o->codebooks; k++) {
        snprintf(nm, sizeof nm, "decoder.model.decoder.embed_tokens.%d.weight", k);
        ADD(t, nm, 0, sd, o->vocab + 1, H);
        snprintf(nm, sizeof nm, "decoder.lm_heads.%d.weight", k);
        ADD(t, nm, 0, sd, o->vocab, H);
    }
    static const char *const lns[] = {"self_attn_layer_norm", "encoder_attn_layer_norm", "final_layer_norm"};
    static const char *const att[] = {"self_attn", "encoder_attn"};
    static const char *const prj[] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    for (int l = 0; l < o->layers; l++) {
        for (int i = 0; i < 3; i++) {
            snprintf(nm, sizeof nm, "decoder.model.decoder.layers.%d.%s.weight", l, lns[i]);
            ADD(t, nm, 2, 1.0f, H);
            snprintf(nm, sizeof nm, "decoder.model.decoder.layers.%d.%s.bias", l, lns[i]);
            ADD(t, nm, 2, 0.0f, H);
        }
        for (int a = 0; a < 2; a++)
            for (int p = 0; p < 4; p++) {
                snprintf(nm, sizeof nm, "decoder.model.decoder.layers.%d.%s.%s.weight", l, att[a], prj[p]);
                ADD(t, nm, 0, sd, H, H);
            }
        snprintf(nm, sizeof nm, "decoder.model.decoder.layers.%d.fc1.weight", l);
        ADD(t, nm, 0, sd, F, H);
        snprintf(nm, sizeof nm, "decoder.model.decoder.layers.%d.fc2.weight", l);
        ADD(t, nm, 0, sd, H, F);
    }
    ADD(t, "decoder.model.decoder.layer_norm.weight", 2, 1.0f, H);
    ADD(t, "decoder.model.decoder.layer_norm.bias", 2, 0.0f, H);
    if (o->text_hidden != H) {
        ADD(t, "enc_to_dec_proj.weight", 1, 1.0f / sqrtf((float)o->text_hidden), H, o->text_hidden);
        ADD(t, "enc_to_dec_proj.bias", 1, 1.0f / sqrtf((float)o->text_hidden), H);
    }
    return 0;
}

static int write_json(const char *path, cJSON *j) {
    char *s = cJSON_Print(j);
    if (!s) return m2u_fail("out of memory");
    size_t n = strlen(s);
    char *s2 = realloc(s, n + 2);
    if (!s2) {
        free(s);
        return m2u_fail("out of memory");
    }
    s2[n] = '\n', s2[n + 1] = 0;
    int rc = m2u_write_file_atomic(path, s2, n + 1);
    free(s2);
    return rc;
}

static int write_init_configs(const char *dir, const init_opts *o) {
    cJSON *root = cJSON_CreateObject(), *te = cJSON_CreateObject(), *ae = cJSON_CreateObject(),
          *de = cJSON_CreateObject(), *gen = cJSON_CreateObject();
    int rc = -1;
    if (!root || !te || !ae || !de || !gen) goto done;
    cJSON_AddItemToObject(root, "architectures", cJSON_CreateStringArray((const char *[]){"MusicgenForConditionalGeneration"}, 1));
    cJSON_AddStringToObject(root, "model_type", "musicgen");
    cJSON_AddBoolToObject(root, "is_encoder_decoder", 1);
    cJSON_AddStringToObject(root, "torch_dtype", "float32");
    cJSON_AddStringToObject(root, "m2u_note", "random weights from m2u-generate init; no text_encoder weights");
    /* T5 sub-config: only its width matters (the conditioning width); no weights are written */
    cJSON_AddStringToObject(te, "model_type", "t5");
    cJSON_AddNumberToObject(te, "d_model", o->text_hidden);
    cJSON_AddNumberToObject(te, "vocab_size", 32128);
    cJSON_AddStringToObject(ae, "model_type", "encodec");
    cJSON_AddNumberToObject(ae, "audio_channels", 1);
    cJSON_AddNumberToObject(ae, "sampling_rate", 32000);
    cJSON_AddNumberToObject(ae, "hidden_size", o->codec_hidden);
    cJSON_AddNumberToObject(ae, "num_filters", o->codec_filters);
    cJSON_AddNumberToObject(ae, "num_residual_layers", 1);
    cJSON_AddItemToObject(ae, "upsampling_ratios", cJSON_CreateIntArray(k_ratios, 4));
    cJSON_AddStringToObject(ae, "norm_type", "weight_norm");
    cJSON_AddNumberToObject(ae, "kernel_size", 7);
    cJSON_AddNumberToObject(ae, "last_kernel_size", 7);
    cJSON_AddNumberToObject(ae, "residual_kernel_size", 3);
    cJSON_AddNumberToObject(ae, "dilation_growth_rate", 2);
    cJSON_AddBoolToObject(ae, "use_causal_conv", 0);
    cJSON_AddStringToObject(ae, "pad_mode", "reflect");
    cJSON_AddNumberToObject(ae, "compress", 2);
    cJSON_AddNumberToObject(ae, "num_lstm_layers", 2);
    cJSON_AddNumberToObject(ae, "trim_right_ratio", 1.0);
    cJSON_AddNumberToObject(ae, "codebook_size", o->vocab);
    cJSON_AddNumberToObject(ae, "codebook_dim", o->codec_hidden);
    cJSON_AddBoolToObject(ae, "use_conv_shortcut", 0);
    cJSON_AddBoolToObject(ae, "normalize", 0);
    cJSON_AddNullToObject(ae, "chunk_length_s");
    cJSON_AddNullToObject(ae, "overlap");
    /* num_quantizers = int(1000 bw // (frame_rate 50 * 10)) = floor(2 bw): K codebooks at K/2 + 0.2 kbps
     * (encodec_32khz: 4 at 2.2) */
    double bw = 0.5 * o->codebooks + 0.2;
    cJSON_AddItemToObject(ae, "target_bandwidths", cJSON_CreateDoubleArray(&bw, 1));
    cJSON_AddStringToObject(de, "model_type", "musicgen_decoder");
    cJSON_AddNumberToObject(de, "hidden_size", o->hidden);
    cJSON_AddNumberToObject(de, "num_hidden_layers", o->layers);
    cJSON_AddNumberToObject(de, "num_attention_heads", o->heads);
    cJSON_AddNumberToObject(de, "ffn_dim", o->ffn);
    cJSON_AddNumberToObject(de, "num_codebooks", o->codebooks);
    cJSON_AddNumberToObject(de, "vocab_size", o->vocab);
    cJSON_AddNumberToObject(de, "max_position_embeddings", 2048);
    cJSON_AddNumberToObject(de, "audio_channels", 1);
    cJSON_AddNumberToObject(de, "pad_token_id", o->vocab);
    cJSON_AddNumberToObject(de, "bos_token_id", o->vocab);
    cJSON_AddBoolToObject(de, "scale_embedding", 0);
    cJSON_AddStringToObject(de, "activation_function", "gelu");
    cJSON_AddNumberToObject(de, "initializer_factor", 0.02);
    cJSON_AddBoolToObject(de, "tie_word_embeddings", 0);
    cJSON_AddItemToObject(root, "text_encoder", te);
    te = NULL;
    cJSON_AddItemToObject(root, "audio_encoder", ae);
    ae = NULL;
    cJSON_AddItemToObject(root, "decoder", de);
    de = NULL;
    cJSON_AddNumberToObject(gen, "decoder_start_token_id", o->vocab);
    cJSON_AddNumberToObject(gen, "pad_token_id", o->vocab);
    cJSON_AddNumberToObject(gen, "guidance_scale", 3.0);
    cJSON_AddBoolToObject(gen, "do_sample", 1);
    cJSON_AddNumberToObject(gen, "max_length", 1500);
    char *p = m2u_path_join(dir, "config.json");
    rc = p ? write_json(p, root) : m2u_fail("out of memory");
    free(p);
    if (!rc) {
        p = m2u_path_join(dir, "generation_config.json");
        rc = p ? write_json(p, gen) : m2u_fail("out of memory");
        free(p);
    }
done:
    if (!root || !gen) rc = m2u_fail("out of memory");
    cJSON_Delete(root);
    cJSON_Delete(te);
    cJSON_Delete(ae);
    cJSON_Delete(de);
    cJSON_Delete(gen);
    return rc;
}

static int cmd_init(int argc, char **argv) {
    init_opts o = {.hidden = 64, .layers = 2, .heads = 4, .ffn = 0, .codebooks = 4, .vocab = 2048,
                   .text_hidden = 768, .codec_hidden = 32, .codec_filters = 4, .seed = 1};
    const char *out = NULL;
    int force = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--force")) {
            force = 1;
            continue;
        }
        if (i + 1 >= argc) return bad_usage("init: %s needs a value", a);
        const char *v = argv[++i];
        long x;
        struct {
            const char *name;
            int *dst;
            long lo, hi;
        } ints[] = {{"--hidden", &o.hidden, 2, 1024},           {"--layers", &o.layers, 1, 24},
                    {"--heads", &o.heads, 1, 16},               {"--ffn", &o.ffn, 1, 4096},
                    {"--codebooks", &o.codebooks, 1, 4},        {"--vocab", &o.vocab, 2, 2048},
                    {"--text-hidden", &o.text_hidden, 1, 4096}, {"--codec-hidden", &o.codec_hidden, 1, 512},
                    {"--codec-filters", &o.codec_filters, 2, 64}};
        int done = 0;
        for (size_t k = 0; k < sizeof ints / sizeof *ints && !done; k++)
            if (!strcmp(a, ints[k].name)) {
                if (parse_int(v, ints[k].lo, ints[k].hi, &x))
                    return bad_usage("init: %s '%s': need an integer in %ld..%ld", a, v, ints[k].lo, ints[k].hi);
                *ints[k].dst = (int)x;
                done = 1;
            }
        if (done) continue;
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--seed")) {
            if (parse_int(v, 0, 2147483647L, &o.seed)) return bad_usage("init: --seed '%s': need an integer >= 0", v);
        } else
            return bad_usage("init: unknown option '%s'", a);
    }
    if (!out) return bad_usage("init: --out DIR is required");
    if (o.hidden % o.heads) return bad_usage("init: --hidden %d is not a multiple of --heads %d", o.hidden, o.heads);
    if (o.codec_filters % 2) return bad_usage("init: --codec-filters %d must be even (compress 2)", o.codec_filters);
    if (!o.ffn) o.ffn = 4 * o.hidden > 4096 ? 4096 : 4 * o.hidden;
    if (m2u_file_exists(out) && !force) {
        fprintf(stderr, "m2u-generate: %s exists (use --force to replace it)\n", out);
        return 1;
    }
    if (m2u_mkdir_p(out)) {
        fprintf(stderr, "m2u-generate: %s\n", m2u_last_error());
        return 1;
    }
    tensors t = {0};
    m2u_rng_seed(&t.rng, (uint64_t)o.seed);
    char *p = m2u_path_join(out, "model.safetensors");
    const char *mk[1] = {"m2u"}, *mv[1] = {"m2u-generate init (random weights)"};
    int rc = !p ? m2u_fail("out of memory") : 0;
    if (!rc) rc = add_decoder(&t, &o);
    if (!rc) rc = add_encodec(&t, &o);
    if (!rc) rc = m2u_st_write(p, t.e, t.n, mk, mv, 1);
    if (!rc) rc = write_init_configs(out, &o);
    size_t nparam = 0;
    for (int i = 0; i < t.n; i++) {
        size_t n = 1;
        for (int d = 0; d < t.e[i].ndim; d++) n *= (size_t)t.e[i].shape[d];
        nparam += n;
    }
    tensors_free(&t);
    free(p);
    if (rc) {
        fprintf(stderr, "m2u-generate: init: %s\n", m2u_last_error());
        return 1;
    }
    printf("wrote a random MusicGen to %s: decoder %d x %d (%d heads, %d codebooks x %d codes), conditioning "
           "width %d, EnCodec 32 kHz ratios 8,5,4,4 with %d filters; %zu parameters; no text encoder\n",
           out, o.layers, o.hidden, o.heads, o.codebooks, o.vocab, o.text_hidden, o.codec_filters, nparam);
    return 0;
}

/* ---- outputs ----------------------------------------------------------------------------- */

/* sha256 of every regular file directly in dir whose name ends in one of the suffixes */
static int hash_dir_files(cJSON *obj, const char *dir, const char *const *names, int n_names) {
    for (int i = 0; i < n_names; i++) {
        char *p = m2u_path_join(dir, names[i]);
        if (!p) return m2u_fail("out of memory");
        if (m2u_file_exists(p)) {
            char hex[65];
            if (m2u_sha256_file(p, hex)) {
                free(p);
                return -1;
            }
            cJSON_AddStringToObject(obj, p, hex);
        }
        free(p);
    }
    return 0;
}

static int model_hashes(cJSON *obj, const char *dir) {
    static const char *const fixed[] = {"config.json", "generation_config.json", "model.safetensors",
                                        "model.safetensors.index.json", "pytorch_model.bin", "tokenizer.json"};
    if (hash_dir_files(obj, dir, fixed, 6)) return -1;
    /* shards named by the index */
    char *ip = m2u_path_join(dir, "model.safetensors.index.json"), *txt = NULL;
    size_t len;
    if (ip && m2u_file_exists(ip) && !m2u_read_file(ip, &txt, &len)) {
        cJSON *j = cJSON_Parse(txt);
        cJSON *wm = j ? cJSON_GetObjectItemCaseSensitive(j, "weight_map") : NULL, *e;
        const char *seen[64];
        int ns = 0;
        cJSON_ArrayForEach(e, wm) {
            if (!cJSON_IsString(e)) continue;
            int dup = 0;
            for (int k = 0; k < ns && !dup; k++) dup = !strcmp(seen[k], e->valuestring);
            if (dup || ns == 64) continue;
            seen[ns++] = e->valuestring;
            const char *one[1] = {e->valuestring};
            if (hash_dir_files(obj, dir, one, 1)) {
                cJSON_Delete(j);
                free(txt), free(ip);
                return -1;
            }
        }
        cJSON_Delete(j);
    }
    free(txt);
    free(ip);
    return 0;
}

typedef struct {
    const char *musicgen, *run, *text, *prompt, *out, *batch, *media[3], *enc_dir[3], *checkpoint, *cont, *tokenizer;
    double seconds, guidance, top_p, temperature;
    long top_k, seed, max_new, threads;
    int greedy, is_float, have_guidance, have_seed;
} gen_opts;

static char *numbered(const char *out, int i) {
    size_t l = strlen(out);
    const char *dot = l > 4 && !strcmp(out + l - 4, ".wav") ? out + l - 4 : out + l;
    char *s = malloc(l + 16);
    if (s) snprintf(s, l + 16, "%.*s-%03d.wav", (int)(dot - out), out, i);
    return s;
}

static int write_outputs(const gen_opts *g, const char *wav_path, const m2u_music *mu, const m2u_music_clip *clip,
                         const char *prompt, const char *answer, const m2u_musicgen_gen_opts *mo, const m2u_run_model *rm,
                         double secs) {
    int sr = m2u_music_sample_rate(mu);
    if (m2u_wav_write(wav_path, clip->wav, clip->n, 1, sr, g->is_float ? M2U_WAV_FLOAT32 : M2U_WAV_PCM16)) return -1;
    cJSON *j = cJSON_CreateObject(), *s = cJSON_CreateObject(), *h = cJSON_CreateObject();
    int rc = -1;
    if (!j || !s || !h) {
        cJSON_Delete(j), cJSON_Delete(s), cJSON_Delete(h);
        m2u_fail("out of memory");
        goto fail;
    }
    cJSON_AddStringToObject(j, "tool", "m2u-generate " M2U_VERSION);
    cJSON_AddStringToObject(j, "wav", wav_path);
    cJSON_AddStringToObject(j, "mode", rm ? "m2ugen" : "text");
    cJSON_AddStringToObject(j, "prompt", prompt);
    if (rm) {
        cJSON_AddStringToObject(j, "answer", answer ? answer : "");
        cJSON_AddStringToObject(j, "run_config", rm->config_path);
        cJSON_AddStringToObject(j, "checkpoint", rm->checkpoint);
        cJSON_AddStringToObject(j, "prompt_template", rm->c.train.prompt_template);
        const char *mn[3] = {"music", "image", "video"};
        for (int k = 0; k < 3; k++)
            if (g->media[k]) cJSON_AddStringToObject(j, mn[k], g->media[k]);
        cJSON_AddNumberToObject(j, "target_scale", rm->em.mg->cfg.projector.target_scale);
    }
    cJSON_AddStringToObject(j, "musicgen", g->musicgen);
    if (g->cont) {
        cJSON_AddStringToObject(j, "continue", g->cont);
        cJSON_AddNumberToObject(j, "prompt_frames", mo->prompt_frames);
    }
    cJSON_AddNumberToObject(s, "seconds_requested", g->seconds);
    cJSON_AddNumberToObject(s, "frames", clip->N);
    cJSON_AddNumberToObject(s, "codebooks", clip->K);
    cJSON_AddNumberToObject(s, "max_length", mo->max_length);
    cJSON_AddNumberToObject(s, "sample_rate", sr);
    cJSON_AddNumberToObject(s, "samples", (double)clip->n);
    cJSON_AddStringToObject(s, "format", g->is_float ? "float32" : "pcm16");
    cJSON_AddNumberToObject(s, "guidance_scale", mo->guidance_scale);
    cJSON_AddBoolToObject(s, "cfg_null_half_appended", mo->guidance_scale > 1.0f);
    cJSON_AddBoolToObject(s, "do_sample", mo->do_sample);
    cJSON_AddNumberToObject(s, "top_k", mo->sampling.top_k);
    cJSON_AddNumberToObject(s, "top_p", mo->sampling.top_p);
    cJSON_AddNumberToObject(s, "temperature", mo->sampling.temperature);
    cJSON_AddNumberToObject(s, "seed", (double)mo->seed);
    cJSON_AddNumberToObject(s, "generate_seconds", secs);
    cJSON_AddItemToObject(j, "settings", s);
    cJSON_AddItemToObject(j, "sha256", h);
    if (model_hashes(h, g->musicgen)) goto fail_j;
    if (rm) {
        char hex[65];
        char *tp = m2u_is_dir(rm->checkpoint) ? m2u_path_join(rm->checkpoint, "trainable.safetensors")
                                               : strdup(rm->checkpoint);
        if (!tp || m2u_sha256_file(rm->config_path, hex)) goto fail_tp;
        cJSON_AddStringToObject(h, rm->config_path, hex);
        if (m2u_sha256_file(tp, hex)) goto fail_tp;
        cJSON_AddStringToObject(h, tp, hex);
        free(tp);
        goto hashed;
    fail_tp:
        free(tp);
        goto fail_j;
    }
hashed: {
    size_t l = strlen(wav_path) + 8;
    char *jp = malloc(l);
    if (!jp) {
        m2u_fail("out of memory");
        goto fail_j;
    }
    snprintf(jp, l, "%s.json", wav_path);
    rc = write_json(jp, j);
    free(jp);
}
fail_j:
    cJSON_Delete(j);
    if (!rc) return 0;
fail:
    unlink(wav_path); /* no WAV without its sidecar */
    return -1;
}

/* one decoder pass done: the live progress line (rate and ETA, m2u_progress) */
static void on_step(void *ctx, int done, int total) {
    (void)total;
    m2u_progress_update((m2u_progress *)ctx, done, NULL);
}

static int generate_one(const gen_opts *g, const m2u_music *mu, m2u_run_model *rm, const m2u_run_encoders *enc,
                        const char *prompt, const char *wav_path,
                        uint64_t seed, m2u_musicgen_gen_opts mo) {
    mo.seed = seed;
    m2u_music_clip clip;
    memset(&clip, 0, sizeof clip);
    char *answer = NULL;
    float *states = NULL;
    int rc = -1;
    if (rm) {
        float *feat[3] = {0};
        int present[3] = {0};
        if (m2u_run_media_features(rm, enc, g->media, feat, present) ||
            m2u_run_answer(&rm->em, rm->c.train.prompt_template, rm->c.train.ignore_index, prompt, feat, present, (int)g->max_new, &answer, &states)) {
            for (int k = 0; k < 3; k++) free(feat[k]);
            goto done;
        }
        for (int k = 0; k < 3; k++) free(feat[k]);
        printf("answer: %s\n", answer[0] ? answer : "(no text: the model went straight to the [AUD] block)");
        if (!states) {
            fprintf(stderr, "m2u-generate: the answer has no [AUD] block: no music was asked for, no WAV written\n");
            rc = 1;
            goto done;
        }
    }
    m2u_progress pr;
    m2u_progress_start(&pr, "step", mo.max_length - 1);
    mo.progress = on_step;
    mo.progress_ctx = &pr;
    double t0 = m2u_now();
    int e = rm ? m2u_music_from_states(mu, states, NULL, rm->em.mg->cfg.projector.n_out, &mo, &clip)
               : m2u_music_from_text(mu, prompt, &mo, &clip);
    double dt = m2u_now() - t0;
    if (e) goto done;
    double audio_s = (double)clip.n / m2u_music_sample_rate(mu);
    char extra[128];
    snprintf(extra, sizeof extra, "%.2f frames/s, real-time factor %.2f (%.2f s for %.2f s of audio)", clip.N / dt,
             dt / audio_s, dt, audio_s);
    m2u_progress_end(&pr, mo.max_length - 1, extra);
    if (write_outputs(g, wav_path, mu, &clip, prompt, answer, &mo, rm, dt)) goto done;
    printf("wrote %s (%.2f s, %d Hz, %s) and %s.json\n", wav_path, audio_s, m2u_music_sample_rate(mu),
           g->is_float ? "float32" : "16-bit PCM", wav_path);
    rc = 0;
done:
    if (rc < 0) fprintf(stderr, "m2u-generate: %s\n", m2u_last_error());
    m2u_music_clip_free(&clip);
    free(answer);
    free(states);
    return rc;
}

int main(int argc, char **argv) {
    m2u_progress_set_stream(stderr);
    if (argc >= 2 && !strcmp(argv[1], "init")) return cmd_init(argc, argv);
    gen_opts g = {.seconds = 8, .top_p = 1.0, .temperature = 1.0, .top_k = 250, .max_new = 64};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--greedy")) {
            g.greedy = 1;
            continue;
        }
        if (!strcmp(a, "--float")) {
            g.is_float = 1;
            continue;
        }
        if (a[0] != '-') return bad_usage("unexpected argument '%s'", a);
        if (i + 1 >= argc) return bad_usage("%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--musicgen")) g.musicgen = v;
        else if (!strcmp(a, "--run")) g.run = v;
        else if (!strcmp(a, "--text")) g.text = v;
        else if (!strcmp(a, "--prompt")) g.prompt = v;
        else if (!strcmp(a, "--out")) g.out = v;
        else if (!strcmp(a, "--batch")) g.batch = v;
        else if (!strcmp(a, "--music")) g.media[0] = v;
        else if (!strcmp(a, "--image")) g.media[1] = v;
        else if (!strcmp(a, "--video")) g.media[2] = v;
        else if (!strcmp(a, "--checkpoint")) g.checkpoint = v;
        else if (!strcmp(a, "--mert")) g.enc_dir[0] = v;
        else if (!strcmp(a, "--vit")) g.enc_dir[1] = v;
        else if (!strcmp(a, "--vivit")) g.enc_dir[2] = v;
        else if (!strcmp(a, "--continue")) g.cont = v;
        else if (!strcmp(a, "--tokenizer")) g.tokenizer = v;
        else if (!strcmp(a, "--seconds")) {
            if (parse_num(v, 0.02, 3600, &g.seconds)) return bad_usage("--seconds '%s': need a number in 0.02..3600", v);
        } else if (!strcmp(a, "--guidance")) {
            if (parse_num(v, 0, 100, &g.guidance)) return bad_usage("--guidance '%s': need a number in 0..100", v);
            g.have_guidance = 1;
        } else if (!strcmp(a, "--top-k")) {
            if (parse_int(v, 0, 1 << 20, &g.top_k)) return bad_usage("--top-k '%s': need an integer >= 0", v);
        } else if (!strcmp(a, "--top-p")) {
            if (parse_num(v, 1e-6, 1, &g.top_p)) return bad_usage("--top-p '%s': need a number in (0, 1]", v);
        } else if (!strcmp(a, "--temperature")) {
            if (parse_num(v, 1e-6, 100, &g.temperature))
                return bad_usage("--temperature '%s': need a number > 0 (use --greedy for argmax)", v);
        } else if (!strcmp(a, "--seed")) {
            if (parse_int(v, 0, 2147483647L, &g.seed)) return bad_usage("--seed '%s': need an integer >= 0", v);
            g.have_seed = 1;
        } else if (!strcmp(a, "--max-new-tokens")) {
            if (parse_int(v, 1, 4096, &g.max_new)) return bad_usage("--max-new-tokens '%s': need 1..4096", v);
        } else if (!strcmp(a, "--threads")) {
            if (parse_int(v, 1, 1024, &g.threads)) return bad_usage("--threads '%s': need 1..1024", v);
        } else
            return bad_usage("unknown option '%s'", a);
    }
    if (!g.musicgen) return bad_usage("--musicgen DIR is required");
    if (!g.out) return bad_usage("--out FILE.wav is required");
    if (g.run) {
        if (g.text) return bad_usage("--text is the plain MusicGen path; with --run give the instruction as --prompt");
        if (!g.prompt && !g.batch) return bad_usage("--run needs --prompt TEXT (or --batch FILE)");
    } else {
        if (g.prompt) return bad_usage("--prompt needs --run RUN (for MusicGen alone use --text)");
        if (g.media[0] || g.media[1] || g.media[2]) return bad_usage("--music/--image/--video need --run RUN");
        if (g.enc_dir[0] || g.enc_dir[1] || g.enc_dir[2]) return bad_usage("--mert/--vit/--vivit need --run RUN");
        if (g.checkpoint) return bad_usage("--checkpoint needs --run RUN (its config.yaml describes the model)");
        if (!g.text && !g.batch) return bad_usage("give --text TEXT, --batch FILE, or --run RUN --prompt TEXT");
    }
    if (g.batch && (g.text || g.prompt)) return bad_usage("--batch replaces --text / --prompt");
    /* libgomp reads OMP_NUM_THREADS when it loads, so a setenv here would come too late */
    if (g.threads > 0) omp_set_num_threads((int)g.threads);
    /* the prompts */
    char **prompts = NULL;
    int n_prompts = 0;
    char *batch_txt = NULL;
    if (g.batch) {
        size_t len;
        if (m2u_read_file(g.batch, &batch_txt, &len)) {
            fprintf(stderr, "m2u-generate: --batch: %s\n", m2u_last_error());
            return 1;
        }
        prompts = calloc(len / 1 + 1, sizeof *prompts);
        for (char *p = batch_txt, *e; prompts && p && *p; p = e ? e + 1 : NULL) {
            e = strchr(p, '\n');
            if (e) *e = 0;
            size_t l = strlen(p);
            if (l && p[l - 1] == '\r') p[--l] = 0;
            if (l) prompts[n_prompts++] = p;
            if (!e) break;
        }
        if (!n_prompts) {
            fprintf(stderr, "m2u-generate: --batch %s: no prompts (one per line)\n", g.batch);
            free(prompts), free(batch_txt);
            return 1;
        }
    } else {
        prompts = calloc(1, sizeof *prompts);
        if (prompts) prompts[n_prompts++] = (char *)(g.run ? g.prompt : g.text);
    }
    if (!prompts) {
        fprintf(stderr, "m2u-generate: out of memory\n");
        return 1;
    }
    if (g.cont && !m2u_file_exists(g.cont)) {
        fprintf(stderr, "m2u-generate: --continue %s: no such file\n", g.cont);
        free(prompts), free(batch_txt);
        return 1;
    }
    for (int k = 0; k < 3; k++)
        if (g.media[k] && !m2u_file_exists(g.media[k])) {
            fprintf(stderr, "m2u-generate: %s: no such file\n", g.media[k]);
            free(prompts), free(batch_txt);
            return 1;
        }
    int rc = 1;
    m2u_music *mu = NULL;
    m2u_run_model rm;
    m2u_run_encoders enc = {0};
    int32_t *pcodes = NULL;
    int P = 0;
    int have_run = 0;
    memset(&rm, 0, sizeof rm);
    if (m2u_music_open_ex(g.musicgen, !g.run, g.cont != NULL, g.tokenizer, &mu)) {
        fprintf(stderr, "m2u-generate: %s\n", m2u_last_error());
        if (!g.run && strstr(m2u_last_error(), "text_encoder"))
            fprintf(stderr, "m2u-generate: --text needs MusicGen's T5 text encoder in %s (a directory from "
                            "`m2u-generate init` has none: use it with --run)\n", g.musicgen);
        goto done;
    }
    if (g.run) {
        have_run = 1;
        if (m2u_run_open(g.run, g.checkpoint, &rm) || m2u_music_check_projector(mu, &rm.em.mg->cfg.projector)) {
            fprintf(stderr, "m2u-generate: %s\n", m2u_last_error());
            goto done;
        }
    }
    if ((g.enc_dir[0] && m2u_mert_load(g.enc_dir[0], &enc.mert)) || (g.enc_dir[1] && m2u_vit_load(g.enc_dir[1], &enc.vit)) ||
        (g.enc_dir[2] && m2u_vit_load(g.enc_dir[2], &enc.vivit))) {
        fprintf(stderr, "m2u-generate: %s\n", m2u_last_error());
        rc = 1;
        goto done;
    }
    if ((enc.vit && m2u_vit_config_of(enc.vit)->video) || (enc.vivit && !m2u_vit_config_of(enc.vivit)->video)) {
        fprintf(stderr, "m2u-generate: %s is %s model\n", enc.vit && m2u_vit_config_of(enc.vit)->video ? g.enc_dir[1] : g.enc_dir[2],
                enc.vit && m2u_vit_config_of(enc.vit)->video ? "a video (use --vivit)" : "an image (use --vit)");
        rc = 1;
        goto done;
    }
    const m2u_musicgen_config *lc = m2u_musicgen_get_config(mu->lm);
    if (g.cont) {
        float *pcm = NULL;
        int64_t n = 0;
        if (m2u_audio_decode(g.cont, m2u_music_sample_rate(mu), &pcm, &n, NULL) ||
            m2u_music_prompt_codes(mu, pcm, (size_t)n, &pcodes, &P)) {
            fprintf(stderr, "m2u-generate: --continue %s: %s\n", g.cont, m2u_last_error());
            free(pcm);
            rc = 1;
            goto done;
        }
        free(pcm);
    }
    /* max_length counts the prompt's frames too (generate's output starts with them) */
    m2u_musicgen_gen_opts mo = m2u_musicgen_default_opts(m2u_music_max_length(mu, g.seconds) + P);
    mo.prompt_codes = pcodes;
    mo.prompt_frames = P;
    mo.guidance_scale = g.have_guidance ? (float)g.guidance : lc->guidance_scale;
    mo.do_sample = !g.greedy;
    mo.sampling.top_k = (int)g.top_k;
    mo.sampling.top_p = (float)g.top_p;
    mo.sampling.temperature = (float)g.temperature;
    uint64_t seed = g.have_seed ? (uint64_t)g.seed : (uint64_t)time(NULL) % 2147483647u;
    rc = 0;
    for (int i = 0; i < n_prompts; i++) {
        char *path = g.batch ? numbered(g.out, i) : strdup(g.out);
        if (!path) {
            fprintf(stderr, "m2u-generate: out of memory\n");
            rc = 1;
            break;
        }
        int e = generate_one(&g, mu, have_run ? &rm : NULL, &enc, prompts[i], path, seed + (uint64_t)i, mo);
        free(path);
        if (e) rc = 1;
    }
done:
    free(pcodes);
    m2u_mert_free(enc.mert);
    m2u_vit_free(enc.vit);
    m2u_vit_free(enc.vivit);
    if (have_run) m2u_run_close(&rm);
    m2u_music_close(mu);
    free(prompts);
    free(batch_txt);
    return rc;
}
