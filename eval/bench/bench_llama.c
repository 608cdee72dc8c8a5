/* m2u-bench-llama: throughput of LoRA fine-tuning steps on a LLaMA checkpoint.
 *
 * One step = forward (with the mean cross-entropy of next-token prediction) +
 * zero_grad + backward into the LoRA gradients.  No optimizer step: the
 * PyTorch side (eval/bench/bench_llama_torch.py) times exactly the same work, and
 * eval/bench/bench_llama.sh runs both and prints the comparison table.
 *
 * Besides tokens/s it reports the achieved GFLOP/s of the step (FLOP formula
 * below, printed with the results) and the sgemm peak of this machine, measured
 * in the same process with the same thread count (best of several square
 * sgemm calls, OpenBLAS's and oneDNN's in turns). */
#include "backend.h"
#include "bench_common.h"
#include "log.h"
#include "progress.h"
#include "llama.h"
#include "m2u_error.h"

#include <cblas.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define FLOP_FORMULA                                                                                               \
    "FLOPs/step = 2*N*(P_lin + C*V) [forward matmuls] + 2*N*(P_lin - P_qkv0 + C*V) [backward dX only: frozen "   \
    "weights need no dW, frozen embeddings need no dX of layer 0's q/k/v] + 6*N*r*sum(in+out) [LoRA fwd+bwd] + "   \
    "12*B*L*H*hd*T*(T+1)/2 [causal attention fwd+bwd, unmasked pairs only]; N = B*T tokens, P_lin = frozen "       \
    "decoder linear weights, elementwise ops (norms, RoPE, softmax, SwiGLU, CE) not counted"

static void usage(FILE *f) {
    fprintf(f,
            "usage: m2u-bench-llama --model DIR [options]\n"
            "       m2u-bench-llama --peak-only [--threads N] [--peak-n N] [--json PATH]\n"
            "\n"
            "Times LoRA fine-tuning steps (forward + cross-entropy + backward, no optimizer step)\n"
            "of a Hugging Face LlamaForCausalLM checkpoint with LoRA on all 7 linears of every\n"
            "layer (frozen base, no dropout), and the sgemm peak of the machine.\n"
            "\n"
            "options:\n"
            "  --model DIR       checkpoint directory (config.json + *.safetensors)\n"
            "  --batch B         sequences per step (default 4)\n"
            "  --seq T           tokens per sequence (default 128)\n"
            "  --steps K         timed steps (default 10)\n"
            "  --warmup W        untimed steps before them (default 2)\n"
            "  --threads N       OpenMP and OpenBLAS threads (default: OMP_NUM_THREADS, else all cores)\n"
            "  --lora-r R        LoRA rank (default 16)\n"
            "  --lora-alpha A    LoRA alpha (default 32)\n"
            "  --precision P     fp32: frozen weights as stored (default); bf16: f32 / f16 frozen\n"
            "                    weights converted to bf16 copies at load (train.precision: bf16)\n"
            "  --bf16-math M     with --precision bf16: on (default) multiplies in bf16 where the CPU\n"
            "                    does that natively (AVX-512 BF16); off keeps fp32 arithmetic\n"
            "  --packed P        with --precision fp32: on (default, as train.packed_weights: auto where\n"
            "                    the memory allows) keeps a copy of the frozen weights packed for oneDNN's\n"
            "                    brgemm where the CPU has it; off: the products read them as stored\n"
            "  --seed S          seed of the token ids (default 1; same stream as bench_llama_torch.py)\n"
            "  --peak-n N        size of the square sgemm that measures the peak (default 2048, 0: skip)\n"
            "  --ops             also print where a step's time goes: each backend op (the products,\n"
            "                    norms, attention, cross-entropy, ...) timed over the timed steps\n"
            "  --peak-only       measure only the sgemm peak (no --model)\n"
            "  --name NAME       label of this run (default: the model directory's name)\n"
            "  --json PATH       also write the results as JSON to PATH\n"
            "  -h, --help        this text\n"
            "\n"
            "Tokens/s = B*T / median step time.\n"
            "%s.\n"
            "\n"
            "example:\n"
            "  m2u-bench-llama --model build/bench_ckpt/15m --batch 4 --seq 128 --steps 10 --threads 2 \\\n"
            "                  --json /tmp/m2u_15m.json\n"
            "  m2u-bench-llama --model build/bench_ckpt/15m --steps 20 --threads 2 --ops\n"
            "  (eval/bench/bench_llama.sh makes the checkpoints and runs this against PyTorch)\n",
            FLOP_FORMULA);
}


typedef struct {
    double base_params, trainable, flops, flops_lin, flops_head, flops_lora, flops_attn;
} model_counts;

/* Parameter and FLOP counts of one step (see FLOP_FORMULA). */
static model_counts count_model(const m2u_llama *m, int B, int T) {
    const m2u_llama_config *c = &m->cfg;
    double C = c->hidden_size, FF = c->intermediate_size, L = c->n_layers, V = c->vocab_size, H = c->n_heads,
           hd = c->head_dim, qd = H * hd, kvd = (double)c->n_kv_heads * hd, r = m->spec.lora_r, N = (double)B * T;
    double p_layer = C * qd + 2 * C * kvd + qd * C + 3 * C * FF, p_qkv0 = C * qd + 2 * C * kvd;
    double io_layer = (C + qd) + 2 * (C + kvd) + (qd + C) + 3 * (C + FF);
    model_counts k;
    k.base_params = V * C * (c->tie_word_embeddings ? 1 : 2) + L * (p_layer + 2 * C) + C;
    k.trainable = (double)m->n_param_floats;
    k.flops_lin = 2 * N * L * p_layer + 2 * N * (L * p_layer - p_qkv0);
    k.flops_head = 4 * N * C * V;
    k.flops_lora = m->spec.lora_r > 0 ? 6 * N * r * L * io_layer : 0;
    k.flops_attn = 12.0 * B * L * H * hd * ((double)T * (T + 1) / 2);
    k.flops = k.flops_lin + k.flops_head + k.flops_lora + k.flops_attn;
    return k;
}

/* The token stream shared with bench_llama_torch.py: a 64-bit LCG, id = (x >> 33) % V. */
static void make_ids(int32_t *ids, size_t n, int V, uint64_t seed) {
    uint64_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((x >> 33) % (uint64_t)V);
    }
}

static int write_json(const char *path, cJSON *root) {
    char *text = cJSON_Print(root);
    if (!text) {
        fprintf(stderr, "m2u-bench-llama: out of memory formatting JSON\n");
        return -1;
    }
    FILE *f = fopen(path, "w");
    int rc = 0;
    if (!f || fputs(text, f) < 0 || fputc('\n', f) == EOF) rc = -1;
    if (f && fclose(f)) rc = -1;
    if (rc) fprintf(stderr, "m2u-bench-llama: cannot write %s: %s\n", path, strerror(errno));
    free(text);
    return rc;
}

static const char *base_name(const char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    const char *p = path + n;
    while (p > path && p[-1] != '/') p--;
    return p;
}

/* ---- --ops: the backend's ops timing themselves ---------------------------------------------------
 * A copy of the CPU backend whose ops (those a LoRA step calls) each read the clock around the
 * real one.  An op returns when its threads are done, so the times add up to the step; the
 * rest of the step (the model's own loops, the allocations) is the "rest" line.  One timer per
 * process: the wrappers have no context pointer. */
enum {
    OP_GEMM, OP_GEMM_THIN, OP_MATMUL_WT, OP_MATMUL_W_ACC, OP_RMSNORM_FWD, OP_RMSNORM_BWD, OP_ROPE_FWD, OP_ROPE_BWD,
    OP_ATTN_FWD, OP_ATTN_BWD, OP_SWIGLU_FWD, OP_SWIGLU_BWD, OP_ADD, OP_ADD_INPLACE, OP_AXPY, OP_SCALE, OP_ZERO,
    OP_DROPOUT, OP_EMBEDDING_FWD, OP_EMBEDDING_BWD, OP_CROSS_ENTROPY, OP_COUNT
};
static const char *const OP_NAMES[OP_COUNT] = {
    "gemm", "gemm_thin (LoRA)", "matmul_wt (frozen x W^T)", "matmul_w_acc (frozen dy W)", "rmsnorm_fwd",
    "rmsnorm_bwd", "rope_fwd", "rope_bwd", "attn_fwd", "attn_bwd", "swiglu_fwd", "swiglu_bwd", "add", "add_inplace",
    "axpy", "scale", "zero", "dropout", "embedding_fwd", "embedding_bwd", "cross_entropy"};
static const m2u_backend *g_inner;
static m2u_backend g_timed;
static double g_op_s[OP_COUNT], g_op_flop[OP_COUNT];
static long g_op_calls[OP_COUNT];

#define OP_TIMED(k, flop, call)                                                                                     \
    do {                                                                                                             \
        double t0_ = m2u_now();                                                                                      \
        call;                                                                                                        \
        g_op_s[k] += m2u_now() - t0_;                                                                                \
        g_op_flop[k] += (flop);                                                                                     \
        g_op_calls[k]++;                                                                                             \
    } while (0)

static void t_gemm(int ta, int tb, int M, int N, int K, float al, const float *A, int lda, const float *B, int ldb,
                   float be, float *C, int ldc) {
    OP_TIMED(OP_GEMM, 2.0 * M * N * K, g_inner->gemm(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc));
}
static void t_gemm_thin(int ta, int tb, int M, int N, int K, float al, const float *A, int lda, const float *B,
                        int ldb, float be, float *C, int ldc) {
    OP_TIMED(OP_GEMM_THIN, 2.0 * M * N * K, g_inner->gemm_thin(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc));
}
static void t_matmul_wt(float *y, int ldy, const float *x, int N, const m2u_mat *w, int row0, int nrows, float beta) {
    OP_TIMED(OP_MATMUL_WT, 2.0 * N * nrows * w->cols, g_inner->matmul_wt(y, ldy, x, N, w, row0, nrows, beta));
}
static void t_matmul_w_acc(float *dx, const float *dy, int ldy, int N, const m2u_mat *w, int row0, int nrows) {
    OP_TIMED(OP_MATMUL_W_ACC, 2.0 * N * nrows * w->cols, g_inner->matmul_w_acc(dx, dy, ldy, N, w, row0, nrows));
}
static void t_rmsnorm_fwd(float *o, float *r, const float *x, const float *w, int N, int C, float eps) {
    OP_TIMED(OP_RMSNORM_FWD, 0, g_inner->rmsnorm_fwd(o, r, x, w, N, C, eps));
}
static void t_rmsnorm_bwd(float *dx, float *dw, const float *d, const float *x, const float *w, const float *r, int N,
                          int C) {
    OP_TIMED(OP_RMSNORM_BWD, 0, g_inner->rmsnorm_bwd(dx, dw, d, x, w, r, N, C));
}
static void t_rope_fwd(float *x, int N, int st, int h, int hd, const float *c, const float *sn) {
    OP_TIMED(OP_ROPE_FWD, 0, g_inner->rope_fwd(x, N, st, h, hd, c, sn));
}
static void t_rope_bwd(float *x, int N, int st, int h, int hd, const float *c, const float *sn) {
    OP_TIMED(OP_ROPE_BWD, 0, g_inner->rope_bwd(x, N, st, h, hd, c, sn));
}
static int t_attn_fwd(const m2u_attn *a, float *o, float *p, const float *q, const float *k, const float *v) {
    int rc;
    OP_TIMED(OP_ATTN_FWD, 0, rc = g_inner->attn_fwd(a, o, p, q, k, v));
    return rc;
}
static int t_attn_bwd(const m2u_attn *a, float *dq, float *dk, float *dv, const float *d, const float *p,
                      const float *q, const float *k, const float *v) {
    int rc;
    OP_TIMED(OP_ATTN_BWD, 0, rc = g_inner->attn_bwd(a, dq, dk, dv, d, p, q, k, v));
    return rc;
}
static void t_swiglu_fwd(float *o, const float *g, const float *u, size_t n) {
    OP_TIMED(OP_SWIGLU_FWD, 0, g_inner->swiglu_fwd(o, g, u, n));
}
static void t_swiglu_bwd(float *dg, float *du, const float *d, const float *g, const float *u, size_t n) {
    OP_TIMED(OP_SWIGLU_BWD, 0, g_inner->swiglu_bwd(dg, du, d, g, u, n));
}
static void t_add(float *o, const float *a, const float *b, size_t n) { OP_TIMED(OP_ADD, 0, g_inner->add(o, a, b, n)); }
static void t_add_inplace(float *y, const float *x, size_t n) {
    OP_TIMED(OP_ADD_INPLACE, 0, g_inner->add_inplace(y, x, n));
}
static void t_axpy(int n, float a, const float *x, float *y) { OP_TIMED(OP_AXPY, 0, g_inner->axpy(n, a, x, y)); }
static void t_scale(float *o, const float *x, float a, size_t n) { OP_TIMED(OP_SCALE, 0, g_inner->scale(o, x, a, n)); }
static void t_zero(float *x, size_t n) { OP_TIMED(OP_ZERO, 0, g_inner->zero(x, n)); }
static void t_dropout(float *o, const float *x, size_t n, float p, uint64_t seed, uint64_t tag) {
    OP_TIMED(OP_DROPOUT, 0, g_inner->dropout(o, x, n, p, seed, tag));
}
static void t_embedding_fwd(float *x, const int32_t *ids, int N, const m2u_mat *t, const float *e, int rs) {
    OP_TIMED(OP_EMBEDDING_FWD, 0, g_inner->embedding_fwd(x, ids, N, t, e, rs));
}
static void t_embedding_bwd(float *de, const float *dx, const int32_t *ids, int N, int C, int rs) {
    OP_TIMED(OP_EMBEDDING_BWD, 0, g_inner->embedding_bwd(de, dx, ids, N, C, rs));
}
static double t_cross_entropy(const float *l, const int32_t *t, int N, int V, float *lse, int *nv, float *d) {
    double r;
    OP_TIMED(OP_CROSS_ENTROPY, 0, r = g_inner->cross_entropy(l, t, N, V, lse, nv, d));
    return r;
}

static const m2u_backend *op_timer_wrap(const m2u_backend *inner) {
    g_inner = inner;
    g_timed = *inner;
    g_timed.gemm = t_gemm, g_timed.gemm_thin = t_gemm_thin, g_timed.matmul_wt = t_matmul_wt;
    g_timed.matmul_w_acc = t_matmul_w_acc, g_timed.rmsnorm_fwd = t_rmsnorm_fwd, g_timed.rmsnorm_bwd = t_rmsnorm_bwd;
    g_timed.rope_fwd = t_rope_fwd, g_timed.rope_bwd = t_rope_bwd, g_timed.attn_fwd = t_attn_fwd;
    g_timed.attn_bwd = t_attn_bwd, g_timed.swiglu_fwd = t_swiglu_fwd, g_timed.swiglu_bwd = t_swiglu_bwd;
    g_timed.add = t_add, g_timed.add_inplace = t_add_inplace, g_timed.axpy = t_axpy, g_timed.scale = t_scale;
    g_timed.zero = t_zero, g_timed.dropout = t_dropout, g_timed.embedding_fwd = t_embedding_fwd;
    g_timed.embedding_bwd = t_embedding_bwd, g_timed.cross_entropy = t_cross_entropy;
    return &g_timed;
}

static void op_timer_reset(void) {
    memset(g_op_s, 0, sizeof g_op_s);
    memset(g_op_flop, 0, sizeof g_op_flop);
    memset(g_op_calls, 0, sizeof g_op_calls);
}

/* The ops' share of `total` seconds over `steps` steps, largest first, and what GEMM-like ops ran
 * at; the same figures into root's "ops": {"op": {"ms_per_step", "calls_per_step", "gflops"?}, ...,
 * "rest": {"ms_per_step"}}. */
static void op_timer_report(double total, long steps, double peak, cJSON *root) {
    cJSON *o = cJSON_AddObjectToObject(root, "ops");
    int order[OP_COUNT], n = 0;
    for (int k = 0; k < OP_COUNT; k++)
        if (g_op_calls[k]) order[n++] = k;
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && g_op_s[order[j]] > g_op_s[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    double sum = 0;
    printf("  where the %.1f ms of a step go (--ops: the backend's ops timed one by one, over %ld steps):\n",
           1e3 * total / steps, steps);
    printf("    %-28s %9s %7s %9s %s\n", "op", "ms/step", "share", "calls", "GFLOP/s");
    for (int i = 0; i < n; i++) {
        int k = order[i];
        sum += g_op_s[k];
        printf("    %-28s %9.2f %6.1f%% %9.1f", OP_NAMES[k], 1e3 * g_op_s[k] / steps, 100 * g_op_s[k] / total,
               (double)g_op_calls[k] / steps);
        cJSON *e = cJSON_AddObjectToObject(o, OP_NAMES[k]);
        cJSON_AddNumberToObject(e, "ms_per_step", 1e3 * g_op_s[k] / steps);
        cJSON_AddNumberToObject(e, "calls_per_step", (double)g_op_calls[k] / steps);
        if (g_op_flop[k] > 0) {
            double gf = g_op_flop[k] / g_op_s[k] * 1e-9;
            printf(" %8.1f", gf);
            if (peak > 0) printf(" (%.0f%% of the peak)", 100 * gf / peak);
            cJSON_AddNumberToObject(e, "gflops", gf);
        }
        printf("\n");
    }
    printf("    %-28s %9.2f %6.1f%%\n", "rest (the model's own code)", 1e3 * (total - sum) / steps,
           100 * (total - sum) / total);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(o, "rest"), "ms_per_step", 1e3 * (total - sum) / steps);
}

int main(int argc, char **argv) {
    m2u_log_set(m2u_log_stderr, NULL); /* the library speaks through these two */
    m2u_progress_set_stream(stderr);
    const char *model_dir = NULL, *json_path = NULL, *name = NULL;
    long B = 4, T = 128, steps = 10, warmup = 2, threads = 0, lora_r = 16, seed = 1, peak_n = 2048;
    float lora_alpha = 32;
    int peak_only = 0, bf16 = 0, bf16_math = 1, packed = 1, ops = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--peak-only")) {
            peak_only = 1;
            continue;
        }
        if (!strcmp(a, "--ops")) {
            ops = 1;
            continue;
        }
        if (i + 1 >= argc || strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "m2u-bench-llama: %s '%s' (see --help)\n",
                    strncmp(a, "--", 2) ? "unexpected argument" : "missing value for", a);
            return 2;
        }
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "--model")) model_dir = v;
        else if (!strcmp(a, "--json")) json_path = v;
        else if (!strcmp(a, "--name")) name = v;
        else if (!strcmp(a, "--batch")) rc = parse_long("m2u-bench-llama", a, v, 1, 1 << 16, &B);
        else if (!strcmp(a, "--seq")) rc = parse_long("m2u-bench-llama", a, v, 2, 1 << 16, &T);
        else if (!strcmp(a, "--steps")) rc = parse_long("m2u-bench-llama", a, v, 1, 1000000, &steps);
        else if (!strcmp(a, "--warmup")) rc = parse_long("m2u-bench-llama", a, v, 0, 1000000, &warmup);
        else if (!strcmp(a, "--threads")) rc = parse_long("m2u-bench-llama", a, v, 1, 4096, &threads);
        else if (!strcmp(a, "--lora-r")) rc = parse_long("m2u-bench-llama", a, v, 1, 65536, &lora_r);
        else if (!strcmp(a, "--lora-alpha")) {
            double d;
            rc = parse_positive("m2u-bench-llama", a, v, &d);
            lora_alpha = (float)d;
        }
        else if (!strcmp(a, "--seed")) rc = parse_long("m2u-bench-llama", a, v, 0, LONG_MAX, &seed);
        else if (!strcmp(a, "--peak-n")) rc = parse_long("m2u-bench-llama", a, v, 0, 16384, &peak_n);
        else if (!strcmp(a, "--bf16-math")) {
            bf16_math = !strcmp(v, "on");
            if (!bf16_math && strcmp(v, "off")) {
                fprintf(stderr, "m2u-bench-llama: --bf16-math: expected on or off, got '%s'\n", v);
                return 2;
            }
        }
        else if (!strcmp(a, "--packed")) {
            packed = !strcmp(v, "on");
            if (!packed && strcmp(v, "off")) {
                fprintf(stderr, "m2u-bench-llama: --packed: expected on or off, got '%s'\n", v);
                return 2;
            }
        }
        else if (!strcmp(a, "--precision")) {
            bf16 = !strcmp(v, "bf16");
            if (!bf16 && strcmp(v, "fp32")) {
                fprintf(stderr, "m2u-bench-llama: --precision: expected fp32 or bf16, got '%s'\n", v);
                return 2;
            }
        }
        else {
            fprintf(stderr, "m2u-bench-llama: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        if (rc) return 2;
    }
    if (!peak_only && !model_dir) {
        fprintf(stderr, "m2u-bench-llama: --model DIR is required (or --peak-only); see --help\n");
        return 2;
    }
    if (peak_only && model_dir) {
        fprintf(stderr, "m2u-bench-llama: --peak-only takes no --model\n");
        return 2;
    }
    if (peak_only && peak_n == 0) {
        fprintf(stderr, "m2u-bench-llama: --peak-only with --peak-n 0 measures nothing\n");
        return 2;
    }
    if (B * T > INT_MAX / 4) {
        fprintf(stderr, "m2u-bench-llama: batch * seq = %ld tokens is too large\n", B * T);
        return 2;
    }
    if (threads > 0) {
        omp_set_num_threads((int)threads);
        openblas_set_num_threads((int)threads);
    } else {
        threads = omp_get_max_threads();
    }

    double peak = 0;
    if (peak_n > 0 && sgemm_peak("m2u-bench-llama", (int)peak_n, &peak)) return 1;

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "impl", "m2u");
    cJSON_AddNumberToObject(root, "threads", (double)threads);
    cJSON_AddStringToObject(root, "openblas", openblas_get_config());
    if (peak_n > 0) {
        cJSON_AddNumberToObject(root, "sgemm_n", (double)peak_n);
        cJSON_AddNumberToObject(root, "sgemm_peak_gflops", peak);
    }
    if (peak_only) {
        printf("sgemm %ld^3, %ld threads: %.1f GFLOP/s\n", peak_n, threads, peak);
        int rc = json_path ? write_json(json_path, root) : 0;
        cJSON_Delete(root);
        return rc ? 1 : 0;
    }

    /* bf16 products where the CPU has them (and --bf16-math on): the frozen products of
       --precision bf16 then round the activations to bf16 */
    int products_bf16 = bf16 && m2u_gemm_bf16_enable(bf16_math);
    m2u_train_spec spec = {.lora_r = (int)lora_r,
                           .lora_alpha = lora_alpha,
                           .lora_targets = M2U_ALL_LINEARS,
                           .seed = 1234,
                           .frozen_bf16 = bf16,
                           .packed = packed};
    m2u_llama *m;
    if (m2u_llama_load(model_dir, &spec, &m)) {
        fprintf(stderr, "m2u-bench-llama: %s\n", m2u_last_error());
        cJSON_Delete(root);
        return 1;
    }
    int V = m->cfg.vocab_size, N = (int)(B * T);
    int32_t *ids = malloc((size_t)N * sizeof(int32_t));
    int n_steps = (int)(warmup + steps);
    double *t_fwd = malloc((size_t)n_steps * sizeof(double)), *t_bwd = malloc((size_t)n_steps * sizeof(double)),
           *t_step = malloc((size_t)n_steps * sizeof(double));
    int rc = 0;
    if (!ids || !t_fwd || !t_bwd || !t_step) {
        fprintf(stderr, "m2u-bench-llama: out of memory\n");
        rc = 1;
    }
    float first_loss = 0;
    if (!rc) make_ids(ids, (size_t)N, V, (uint64_t)seed);
    m->training = 1;
    if (!rc && ops && m2u_llama_set_backend(m, op_timer_wrap(m->be))) {
        fprintf(stderr, "m2u-bench-llama: %s\n", m2u_last_error());
        rc = 1;
    }
    for (int s = 0; s < n_steps && !rc; s++) {
        float loss;
        if (s == warmup) op_timer_reset();
        double t0 = m2u_now();
        if (m2u_llama_forward(m, ids, ids, (int)B, (int)T, -100, &loss)) {
            rc = 1;
            break;
        }
        double t1 = m2u_now();
        m2u_llama_zero_grad(m);
        if (m2u_llama_backward(m, 1.0f / (float)m->n_valid)) {
            rc = 1;
            break;
        }
        double t2 = m2u_now();
        t_fwd[s] = t1 - t0;
        t_bwd[s] = t2 - t1;
        t_step[s] = t2 - t0;
        if (s == 0) first_loss = loss;
        if (!isfinite(loss)) {
            m2u_fail("step %d: loss is %g", s, (double)loss);
            rc = 1;
        }
    }
    if (rc && m2u_last_error()[0]) fprintf(stderr, "m2u-bench-llama: %s\n", m2u_last_error());

    if (!rc) {
        model_counts k = count_model(m, (int)B, (int)T);
        double med = median(t_step + warmup, (int)steps), tps = N / med, gflops = k.flops / med * 1e-9;
        if (!name) name = base_name(model_dir);
        printf("%s: %.2fM params (%.3fM trainable LoRA r=%ld), B=%ld T=%ld, %ld threads, precision %s%s\n", name,
               k.base_params * 1e-6, k.trainable * 1e-6, lora_r, B, T, threads, bf16 ? "bf16" : "fp32",
               !bf16 ? "" : products_bf16 ? " (bf16 products)" : " (fp32 products)");
        printf("  step median %.4f s (forward %.4f s, backward %.4f s) over %ld steps after %ld warm-up\n", med,
               median(t_fwd + warmup, (int)steps), median(t_bwd + warmup, (int)steps), steps, warmup);
        printf("  %.1f tokens/s, %.2f GFLOP/step, %.1f GFLOP/s", tps, k.flops * 1e-9, gflops);
        if (peak > 0) printf(" = %.1f%% of the sgemm peak %.1f GFLOP/s (%ld^3)", 100 * gflops / peak, peak, peak_n);
        printf("\n  first loss %.6f\n", (double)first_loss);
        if (ops) {
            double total = 0;
            for (long s = warmup; s < warmup + steps; s++) total += t_step[s];
            op_timer_report(total, steps, peak, root);
        }

        cJSON_AddStringToObject(root, "name", name);
        cJSON_AddStringToObject(root, "model", model_dir);
        cJSON_AddNumberToObject(root, "params", k.base_params);
        cJSON_AddNumberToObject(root, "trainable_params", k.trainable);
        cJSON_AddNumberToObject(root, "lora_r", (double)lora_r);
        cJSON_AddStringToObject(root, "precision", bf16 ? "bf16" : "fp32");
        cJSON_AddBoolToObject(root, "bf16_products", products_bf16);
        cJSON_AddNumberToObject(root, "lora_alpha", lora_alpha);
        cJSON_AddNumberToObject(root, "batch", (double)B);
        cJSON_AddNumberToObject(root, "seq", (double)T);
        cJSON_AddNumberToObject(root, "warmup", (double)warmup);
        cJSON_AddNumberToObject(root, "steps", (double)steps);
        cJSON_AddNumberToObject(root, "first_loss", first_loss);
        cJSON_AddNumberToObject(root, "step_s_median", med);
        cJSON_AddNumberToObject(root, "fwd_s_median", median(t_fwd + warmup, (int)steps));
        cJSON_AddNumberToObject(root, "bwd_s_median", median(t_bwd + warmup, (int)steps));
        cJSON_AddItemToObject(root, "step_s", cJSON_CreateDoubleArray(t_step + warmup, (int)steps));
        cJSON_AddNumberToObject(root, "tokens_per_s", tps);
        cJSON_AddNumberToObject(root, "flops_per_step", k.flops);
        cJSON *parts = cJSON_AddObjectToObject(root, "flops_parts");
        cJSON_AddNumberToObject(parts, "decoder_linears", k.flops_lin);
        cJSON_AddNumberToObject(parts, "lm_head", k.flops_head);
        cJSON_AddNumberToObject(parts, "lora", k.flops_lora);
        cJSON_AddNumberToObject(parts, "attention", k.flops_attn);
        cJSON_AddStringToObject(root, "flops_formula", FLOP_FORMULA);
        cJSON_AddNumberToObject(root, "gflops", gflops);
        if (peak > 0) cJSON_AddNumberToObject(root, "pct_of_peak", 100 * gflops / peak);
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0) cJSON_AddNumberToObject(root, "max_rss_mib", (double)ru.ru_maxrss / 1024);
        if (json_path && write_json(json_path, root)) rc = 1;
    }
    cJSON_Delete(root);
    free(ids);
    free(t_fwd);
    free(t_bwd);
    free(t_step);
    m2u_llama_free(m);
    return rc;
}
