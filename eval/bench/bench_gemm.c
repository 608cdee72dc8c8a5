/* m2u-bench-gemm: the kernels' fp32 product (m2u_gemm: oneDNN's dnnl_sgemm in the default
 * build) against OpenBLAS's cblas_sgemm on the products of a LoRA step, in one process with
 * the same threads.  This is the measurement behind the choice of library for m2u_gemm
 * (README "oneDNN for the products"): the two are called in turns, `--rounds` times, each
 * keeping its best round, because this machine's speed drifts by tens of percent. */
#include "bench_common.h"
#include "tensor.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *what;
    int trans_b, M, N, K; /* row-major C[M, N] = A[M, K] op(B); trans_b: B is [N, K] */
} shape;

/* a LoRA step on B x T = 512 tokens: the forward's x W^T (trans_b; W is [out, in]) and the
 * backward's dX = dy W (M tokens, N = in, K = out) */
static const shape SHAPES[] = {
    {"15M x Wt (q, k, v, o)", 1, 512, 288, 288},     {"15M x Wt (gate, up)", 1, 512, 768, 288},
    {"15M x Wt (down)", 1, 512, 288, 768},           {"15M x Wt (classifier)", 1, 512, 32000, 288},
    {"15M dy W (q, k, v, o)", 0, 512, 288, 288},     {"15M dy W (gate, up)", 0, 512, 288, 768},
    {"15M dy W (down)", 0, 512, 768, 288},       {"15M dy W (classifier)", 0, 512, 288, 32000},
    {"110M x Wt (q, k, v, o)", 1, 512, 768, 768},    {"110M x Wt (gate, up)", 1, 512, 2048, 768},
    {"110M x Wt (down)", 1, 512, 768, 2048},         {"110M x Wt (classifier)", 1, 512, 32000, 768},
    {"110M dy W (q, k, v, o)", 0, 512, 768, 768},    {"110M dy W (gate, up)", 0, 512, 768, 2048},
    {"110M dy W (down)", 0, 512, 2048, 768},     {"110M dy W (classifier)", 0, 512, 768, 32000},
    {"attention block q kt", 1, 64, 64, 64},         {"attention block, short head", 1, 128, 128, 32},
    {"square", 0, 2048, 2048, 2048},
};
enum { NSHAPES = sizeof SHAPES / sizeof SHAPES[0] };

static void usage(FILE *f) {
    fprintf(f, "usage: m2u-bench-gemm [--threads N] [--rounds R] [--seconds S]\n"
               "\n"
               "Times the fp32 products of a LoRA step on the 15M and 110M LLaMA shapes (512 token rows),\n"
               "two attention-sized ones and 2048^3 with m2u_gemm (the kernels' product: %s)\n"
               "and with OpenBLAS's cblas_sgemm, in turns, R rounds (default 3) of at least S seconds\n"
               "(default 0.2) per product and library, and prints each one's best GFLOP/s.\n"
               "\n"
               "example:\n"
               "  m2u-bench-gemm --threads 2 --rounds 3\n",
#ifdef M2U_HAVE_DNNL
            "oneDNN's dnnl_sgemm"
#else
            "OpenBLAS, this build has no oneDNN"
#endif
    );
}

static double time_one(int lib, const shape *s, const float *A, const float *B, float *C, double min_s) {
    int ldb = s->trans_b ? s->K : s->N;
    double t0 = m2u_now(), t;
    long reps = 0;
    do {
        if (lib)
            m2u_gemm(0, s->trans_b, s->M, s->N, s->K, 1.0f, A, s->K, B, ldb, 0.0f, C, s->N);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, s->trans_b ? CblasTrans : CblasNoTrans, s->M, s->N, s->K, 1.0f,
                        A, s->K, B, ldb, 0.0f, C, s->N);
        reps++;
        t = m2u_now() - t0;
    } while (t < min_s || reps < 3);
    return 2.0 * s->M * (double)s->N * s->K * reps / t * 1e-9;
}

int main(int argc, char **argv) {
    long threads = 0, rounds = 3;
    double min_s = 0.2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "m2u-bench-gemm: %s: unknown option or missing value (see --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        int rc;
        if (!strcmp(a, "--threads"))
            rc = parse_long("m2u-bench-gemm", a, v, 1, 4096, &threads);
        else if (!strcmp(a, "--rounds"))
            rc = parse_long("m2u-bench-gemm", a, v, 1, 100, &rounds);
        else if (!strcmp(a, "--seconds"))
            rc = parse_positive("m2u-bench-gemm", a, v, &min_s);
        else {
            fprintf(stderr, "m2u-bench-gemm: unknown option %s (see --help)\n", a);
            return 2;
        }
        if (rc) return 2;
    }
    if (threads > 0) {
        omp_set_num_threads((int)threads);
        openblas_set_num_threads((int)threads);
    }
    size_t most_a = 0, most_b = 0, most_c = 0;
    for (int i = 0; i < NSHAPES; i++) {
        const shape *s = &SHAPES[i];
        size_t a = (size_t)s->M * s->K, b = (size_t)s->N * s->K, c = (size_t)s->M * s->N;
        most_a = a > most_a ? a : most_a;
        most_b = b > most_b ? b : most_b;
        most_c = c > most_c ? c : most_c;
    }
    float *A = malloc(most_a * sizeof(float)), *B = malloc(most_b * sizeof(float)), *C = calloc(most_c, sizeof(float));
    if (!A || !B || !C) {
        fprintf(stderr, "m2u-bench-gemm: out of memory for the operands\n");
        free(A);
        free(B);
        free(C);
        return 1;
    }
    for (size_t i = 0; i < most_a; i++) A[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    for (size_t i = 0; i < most_b; i++) B[i] = (float)((i * 40503u) % 1000) * 1e-3f - 0.5f;
    printf("fp32 products, %d threads, best of %ld alternated rounds (GFLOP/s); m2u_gemm is %s\n",
           omp_get_max_threads(), rounds,
#ifdef M2U_HAVE_DNNL
           "oneDNN's dnnl_sgemm"
#else
           "OpenBLAS (no oneDNN in this build)"
#endif
    );
    printf("| product | M x N x K | OpenBLAS | m2u_gemm | ratio |\n|---|---|---:|---:|---:|\n");
    for (int i = 0; i < NSHAPES; i++) {
        const shape *s = &SHAPES[i];
        double best[2] = {0, 0};
        for (int lib = 0; lib < 2; lib++) (void)time_one(lib, s, A, B, C, 0); /* warm-up: packing buffers, JIT */
        for (long r = 0; r < rounds; r++)
            for (int lib = 0; lib < 2; lib++) {
                double g = time_one(lib, s, A, B, C, min_s);
                if (g > best[lib]) best[lib] = g;
            }
        printf("| %s | %d x %d x %d%s | %.1f | %.1f | %.2f |\n", s->what, s->M, s->N, s->K, s->trans_b ? " (B^T)" : "",
               best[0], best[1], best[1] / best[0]);
        fflush(stdout);
    }
    free(A);
    free(B);
    free(C);
    return 0;
}
