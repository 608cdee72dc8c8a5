/* What the stand-alone benchmark drivers (m2u-bench-llama, m2u-bench-mert) share:
 * option parsing, the median of a sample, and the machine's sgemm peak measured
 * in the same process with the same threads, the yardstick of their GFLOP/s.
 * Header-only: the drivers are programs that see BLAS directly, while the
 * m2u_bench library (perf_suite.c) does not link it. */
#ifndef M2U_BENCH_COMMON_H
#define M2U_BENCH_COMMON_H

#include "bench_args.h" /* parse_long, parse_positive */
#include "progress.h"   /* m2u_now */
#include "tensor.h"   /* m2u_gemm */

#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n), n >= 1 (v is left as it is). */
static inline double median(const double *v, int n) {
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return v[0];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

/* Best GFLOP/s of square sgemms C = A B (one warm-up call each, then at least 10 calls
 * and 2 s).  -1 when out of memory (said on stderr, with the program's name). */
static inline int sgemm_peak(const char *prog, int n, double *gflops) {
    size_t nn = (size_t)n * n;
    float *a = malloc(nn * sizeof(float)), *b = malloc(nn * sizeof(float)), *c = malloc(nn * sizeof(float));
    if (!a || !b || !c) {
        free(a);
        free(b);
        free(c);
        fprintf(stderr, "%s: out of memory for a %d x %d sgemm\n", prog, n, n);
        return -1;
    }
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
        b[i] = (float)((i * 40503u) % 1000) * 1e-3f - 0.5f;
    }
    /* both sgemms the process has, taken in turns: OpenBLAS's and m2u_gemm's (oneDNN's in the
     * default build), so the peak is the faster library's on this machine at this moment */
    double flop = 2.0 * n * (double)n * n, best = 0, t_start = m2u_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    m2u_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
    for (int rep = 0; rep < 10 || (m2u_now() - t_start < 2.0 && rep < 200); rep++) {
        double t0 = m2u_now();
        if (rep % 2)
            m2u_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double g = flop / (m2u_now() - t0) * 1e-9;
        if (g > best) best = g;
    }
    free(a);
    free(b);
    free(c);
    *gflops = best;
    return 0;
}

#endif
