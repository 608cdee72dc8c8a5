/* Every op of the kernel table (models/kernels/backend.h), forward and backward, against a
 * naive reference written here in double precision, on random shapes with odd sizes
 * (1, 3, 17, 33, 65), plus finite-difference spot checks of the backward formulas.
 *
 * Backends: the CPU table always; a second one (m2u_backend_cuda(), when the build has it and a
 * device is visible) runs the same suite, and each checked output is also compared with the
 * CPU's output of the same check (ggml's test-backend-ops idea).  All inputs are uploaded
 * through the backend's buffers and results downloaded, so a device backend sees only its own
 * memory.
 *
 * Tolerances (max |got - ref| / max(1, max |ref|)):
 *   element-wise ops                          2e-6
 *   reductions, norms, matmuls (K <= 65)      2e-5
 *   attention fwd/bwd, conv1d, losses          5e-5
 *   fp16 / bf16 weights (reference widens the same stored values)  2e-5
 *   backend vs CPU: the same as against the reference.
 *   finite differences (double reference, h = 1e-4, central): 1e-4 relative to max(1, |g|). */
#include "backend.h"
#include "dtype.h"
#include "conv1d.h"
#include "conv2d.h"
#include "fft.h"
#include "m2u_error.h"
#include "ops_extra.h"
#include "test_util.h"
#include "vmath.h"
#include "attn_tiles.h"

#include <float.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- random data --------------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 4503599627370496.0 - 1.0;
}
static int irand(int n) { return (int)((urand() + 1.0) * 0.5 * n) % n; }
static float *frand(size_t n, double scale) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)(urand() * scale);
    return p;
}
static double *todbl(const float *x, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof *d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}
static float *fdup(const float *x, size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    memcpy(p, x, n * sizeof *p);
    return p;
}

/* ---- backend plumbing ---------------------------------------------------------------------- */

static const m2u_backend *BE;       /* backend under test */
static int on_cpu;                  /* BE is the CPU: record outputs for the comparison */
#define MAXBUF 64
static m2u_buffer bufs[MAXBUF];
static int nbuf;

/* Device copy of host bytes (freed by dev_reset). */
static void *dev(const void *h, size_t bytes) {
    if (nbuf == MAXBUF) abort();
    m2u_buffer *b = &bufs[nbuf++];
    if (BE->buf_alloc(b, bytes ? bytes : 1) || (bytes && BE->upload(b, 0, h, bytes))) {
        fprintf(stderr, "buffer: %s\n", m2u_last_error());
        abort();
    }
    return b->data;
}
static float *devf(const float *h, size_t n) { return dev(h, n * sizeof(float)); }
static void host(void *dst, const void *d, size_t bytes) {
    for (int i = 0; i < nbuf; i++)
        if (bufs[i].data == d) {
            BE->synchronize();
            if (BE->download(dst, &bufs[i], 0, bytes)) abort();
            return;
        }
    abort();
}
static void dev_reset(void) {
    for (int i = 0; i < nbuf; i++) BE->buf_free(&bufs[i]);
    nbuf = 0;
}

/* CPU outputs of every check, in order, for the second backend to be compared with. */
typedef struct {
    char name[64];
    float *v;
    size_t n;
} recorded;
static recorded *rec;
static int nrec, irec;

/* Compare got with the double reference (and, on a second backend, with the CPU's output of
 * the same check). */
/* got against ref, relative to max(1, |ref|); nothing recorded */
static void check_only(const char *name, const float *got, const double *ref, size_t n, double tol) {
    double maxref = 1.0, err = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs(ref[i]) > maxref) maxref = fabs(ref[i]);
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]) / maxref;
        err = t_worse(err, e);
    }
    CHECK(err <= tol, "%s [%s]: max error %.3g > %.1g (n = %zu)", name, BE->name, err, tol, n);
    printf("  %-48s %-5s max error %.2e (tolerance %.0e, n = %zu)\n", name, BE->name, err, tol, n);
}

/* A CPU-only check (a CPU function, not an op of the table) goes through check_only: a recorded
 * one would have no counterpart in the other backends' runs, and shift their comparisons. */
static void check(const char *name, const float *got, const double *ref, size_t n, double tol) {
    check_only(name, got, ref, n, tol);
    if (on_cpu) {
        rec = realloc(rec, (size_t)(nrec + 1) * sizeof *rec);
        snprintf(rec[nrec].name, sizeof rec[nrec].name, "%s", name);
        rec[nrec].v = fdup(got, n);
        rec[nrec].n = n;
        nrec++;
    } else {
        CHECK(irec < nrec && rec[irec].n == n && !strcmp(rec[irec].name, name), "%s: no CPU record", name);
        if (irec < nrec && rec[irec].n == n) {
            double *c = todbl(rec[irec].v, n);
            double maxc = 1.0, e2 = 0.0;
            for (size_t i = 0; i < n; i++)
                if (fabs(c[i]) > maxc) maxc = fabs(c[i]);
            for (size_t i = 0; i < n; i++) {
                double e = fabs((double)got[i] - c[i]) / maxc;
                e2 = t_worse(e2, e);
            }
            CHECK(e2 <= tol, "%s: %s vs cpu: max difference %.3g > %.1g", name, BE->name, e2, tol);
            free(c);
        }
        irec++;
    }
}
static void check_scalar(const char *name, double got, double ref, double tol) {
    float g = (float)got;
    check(name, &g, &ref, 1, tol);
}

#define TOL_EW 2e-6
#define TOL_RED 2e-5
#define TOL_ATT 5e-5
#define TOL_FD 1e-4

/* Central difference of loss() with respect to x[i] (double). */
static double fd(double (*loss)(void *), void *ctx, double *x, size_t i) {
    double h = 1e-4, x0 = x[i];
    x[i] = x0 + h;
    double lp = loss(ctx);
    x[i] = x0 - h;
    double lm = loss(ctx);
    x[i] = x0;
    return (lp - lm) / (2 * h);
}
/* ---- matrix products ----------------------------------------------------------------------- */

static void t_gemm(void) {
    /* the last six are LoRA's products (rank 16 against 72 or 40 features, 37 tokens) with
     * tile tails in every direction, which gemm_thin runs without BLAS */
    int shapes[][3] = {{1, 1, 1}, {3, 17, 5}, {17, 33, 65}, {65, 3, 17},
                       {37, 16, 72}, {37, 40, 16}, {72, 16, 37}, {16, 40, 37}, {37, 16, 40}, {37, 72, 16},
                       {4, 5, 0}}; /* K = 0: C = beta C (oneDNN's sgemm alone left C unchanged for beta 0) */
    for (int thin = 0; thin < 2; thin++)
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                int lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 1, ldc = N + 3;
                size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
                float *A = frand(na, 1), *B = frand(nb, 1), *C = frand(nc, 1);
                float alpha = 0.75f, beta = ta ? 1.0f : 0.0f;
                double *ref = todbl(C, nc);
                /* beta 0: C is not read (NaN there must not come through) */
                if (beta == 0.0f)
                    for (size_t i = 0; i < nc; i++) C[i] = NAN, ref[i] = 0.0;
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double acc = 0;
                        for (int k = 0; k < K; k++)
                            acc += (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                                   (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                        ref[(size_t)i * ldc + j] = alpha * acc + beta * ref[(size_t)i * ldc + j];
                    }
                float *C0 = fdup(C, nc); /* C as the product found it */
                float *dA = devf(A, na), *dB = devf(B, nb), *dC = devf(C, nc);
                (thin ? BE->gemm_thin : BE->gemm)(ta, tb, M, N, K, alpha, dA, lda, dB, ldb, beta, dC, ldc);
                host(C, dC, nc * sizeof(float));
                /* the padding between rows of C is left as it was (NaN where beta is 0), then set to
                 * ref so that check() compares the products only */
                int pad_kept = 1;
                for (int i = 0; i < M; i++)
                    for (int j = N; j < ldc; j++) {
                        float *c = C + (size_t)i * ldc + j;
                        pad_kept &= beta == 0.0f ? isnan(*c) : *c == (float)ref[(size_t)i * ldc + j];
                        *c = (float)ref[(size_t)i * ldc + j];
                    }
                CHECK(pad_kept, "%s [%s]: wrote the padding between rows of C (%d x %d x %d)", thin ? "gemm_thin" : "gemm",
                      BE->name, M, N, K);
                check(thin ? "gemm_thin" : "gemm", C, ref, nc, TOL_RED);
                if (on_cpu && thin) {
                    /* the CPU backend gives AVX-512 CPUs oneDNN's sgemm here: gemm_thin.c's own
                       kernel is checked directly as well, whichever the backend chose */
                    m2u_gemm_thin(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, ldc);
                    for (int i = 0; i < M; i++)
                        for (int j = N; j < ldc; j++) C0[(size_t)i * ldc + j] = (float)ref[(size_t)i * ldc + j];
                    check_only("gemm_thin.c", C0, ref, nc, TOL_RED);
                }
                dev_reset();
                free(A), free(B), free(C), free(C0), free(ref);
            }
#ifdef _OPENMP
    if (on_cpu) { /* gemm_thin sums each element of C in K order on one thread: the same bits on 1, 2, 3 threads */
        int shapes2[][5] = {{301, 16, 288, 0, 1}, {288, 16, 301, 1, 0}, {16, 288, 301, 1, 0}, {301, 40, 288, 0, 0}};
        int same = 1, tmax = omp_get_max_threads();
        for (int s = 0; s < 4; s++) {
            int M = shapes2[s][0], N = shapes2[s][1], K = shapes2[s][2], ta = shapes2[s][3], tb = shapes2[s][4];
            float *A = frand((size_t)M * K, 1), *B = frand((size_t)K * N, 1), *C0 = frand((size_t)M * N, 2), *C[3];
            for (int t = 0; t < 3; t++) {
                C[t] = fdup(C0, (size_t)M * N);
                omp_set_num_threads(t + 1);
                m2u_gemm_thin(ta, tb, M, N, K, 0.5f, A, ta ? M : K, B, tb ? K : N, 1.0f, C[t], N);
            }
            int s1 = !memcmp(C[0], C[1], (size_t)M * N * sizeof(float)) &&
                     !memcmp(C[0], C[2], (size_t)M * N * sizeof(float));
            if (!s1) printf("  gemm_thin %d x %d x %d (ta %d, tb %d) differs across threads\n", M, N, K, ta, tb);
            same = same && s1;
            free(A), free(B), free(C0), free(C[0]), free(C[1]), free(C[2]);
        }
        omp_set_num_threads(tmax);
        CHECK(same, "gemm_thin: results differ between 1, 2 and 3 threads");
        printf("  %-48s cpu   the same bits on 1, 2 and 3 threads: %s\n", "gemm_thin", same ? "yes" : "NO");
    }
#endif
    /* gemv, both orientations */
    for (int ta = 0; ta < 2; ta++) {
        int M = 17, N = 33, lda = N + 1, ny = ta ? N : M, nx = ta ? M : N;
        float *A = frand((size_t)M * lda, 1), *x = frand(nx, 1), *y = frand(ny, 1);
        double *ref = todbl(y, ny);
        for (int i = 0; i < ny; i++) {
            double acc = 0;
            for (int k = 0; k < nx; k++) acc += (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) * x[k];
            ref[i] = 0.5 * acc + 1.0 * ref[i];
        }
        float *dA = devf(A, (size_t)M * lda), *dx = devf(x, nx), *dy = devf(y, ny);
        BE->gemv(ta, M, N, 0.5f, dA, lda, dx, 1.0f, dy);
        host(y, dy, ny * sizeof(float));
        check("gemv", y, ref, ny, TOL_RED);
        dev_reset();
        free(A), free(x), free(y), free(ref);
    }
}

/* y = beta*y + x W[row0:row0+nr]^T with W stored as f32 / f16 / bf16; dx += dy W.  The shapes
 * reach every edge of the CPU's 16-bit-weight GEMM (gemm_w16.c: 6 x 16 tiles, 256-deep and
 * 2048-wide blocks, 96-row A blocks, 8 x 8 transposes): few rows (the matvec path), partial
 * tiles, a row offset, a padded leading dimension, several K blocks, and beta 0 over NaN. */
static void t_matmul_stored(void) {
    m2u_dtype types[] = {M2U_F32, M2U_F16, M2U_BF16};
    /* N, rows, cols, row0, nr, ldy pad, beta */
    struct { int N, rows, cols, row0, nr, pad; float beta; } sh[] = {
        {3, 33, 17, 5, 17, 2, 0.5f},   {7, 40, 9, 3, 37, 0, 1.0f},     {13, 53, 23, 1, 45, 3, 0.0f},
        {100, 310, 600, 7, 300, 1, 0.5f}, {130, 2100, 40, 0, 2100, 0, 0.0f}, {9, 24, 517, 8, 16, 0, 1.0f}};
    for (size_t si = 0; si < sizeof sh / sizeof sh[0]; si++)
    for (int ti = 0; ti < 3; ti++) {
        int N = sh[si].N, rows = sh[si].rows, cols = sh[si].cols, row0 = sh[si].row0, nr = sh[si].nr,
            ldy = nr + sh[si].pad;
        float beta = sh[si].beta;
        float *wf = frand((size_t)rows * cols, 1);
        size_t es = m2u_dtype_size(types[ti]);
        void *ws = malloc((size_t)rows * cols * es);
        m2u_convert_from_f32(types[ti], wf, ws, (size_t)rows * cols);
        m2u_convert_to_f32(types[ti], ws, wf, (size_t)rows * cols); /* the values the kernel sees */
        float *x = frand((size_t)N * cols, 1), *y = frand((size_t)N * ldy, 1), *dy = frand((size_t)N * ldy, 1);
        float *dx = frand((size_t)N * cols, 1);
        if (beta == 0.0f) /* beta 0 must not read y */
            for (int n = 0; n < N; n++)
                for (int r = 0; r < nr; r++) y[(size_t)n * ldy + r] = NAN;
        double *ry = todbl(y, (size_t)N * ldy), *rdx = todbl(dx, (size_t)N * cols);
        for (int n = 0; n < N; n++)
            for (int r = 0; r < nr; r++) {
                double acc = 0;
                for (int c = 0; c < cols; c++) acc += (double)x[(size_t)n * cols + c] * wf[(size_t)(row0 + r) * cols + c];
                ry[(size_t)n * ldy + r] = acc + (beta != 0.0f ? beta * ry[(size_t)n * ldy + r] : 0.0);
            }
        for (int n = 0; n < N; n++)
            for (int c = 0; c < cols; c++) {
                double acc = 0;
                for (int r = 0; r < nr; r++) acc += (double)dy[(size_t)n * ldy + r] * wf[(size_t)(row0 + r) * cols + c];
                rdx[(size_t)n * cols + c] += acc;
            }
        if (on_cpu) { /* the fallback without heap memory, against the same sums */
            float *y2 = malloc((size_t)N * ldy * sizeof(float)), *dx2 = malloc((size_t)N * cols * sizeof(float));
            memcpy(y2, y, (size_t)N * ldy * sizeof(float));
            memcpy(dx2, dx, (size_t)N * cols * sizeof(float));
            m2u_mat wh = {.dtype = types[ti], .data = ws, .rows = rows, .cols = cols};
            m2u_matmul_wt_stream(y2, ldy, x, N, &wh, row0, nr, beta);
            m2u_matmul_w_acc_stream(dx2, dy, ldy, N, &wh, row0, nr);
            check_only("matmul_wt_stream", y2, ry, (size_t)N * ldy, TOL_RED);
            check_only("matmul_w_acc_stream", dx2, rdx, (size_t)N * cols, TOL_RED);
            free(y2), free(dx2);
        }
        if (on_cpu && types[ti] == M2U_BF16) {
            /* bf16_math (train.precision bf16): where the CPU multiplies bf16 natively, the
               activations are rounded to bf16 (nearest even) and the sums are fp32; the reference
               rounds them the same way.  A CPU without bf16 products and the switch turned off keep
               the fp32 sums above, and so does the forward of a few rows (the matvec path: it reads
               the weight once either way). */
            int native = m2u_gemm_bf16_ok();
            float *xb = fdup(x, (size_t)N * cols), *dyb = fdup(dy, (size_t)N * ldy);
            for (size_t i = 0; i < (size_t)N * cols; i++) xb[i] = m2u_bf16_to_f32(m2u_f32_to_bf16(xb[i]));
            for (size_t i = 0; i < (size_t)N * ldy; i++) dyb[i] = m2u_bf16_to_f32(m2u_f32_to_bf16(dyb[i]));
            double *by = todbl(y, (size_t)N * ldy), *bdx = todbl(dx, (size_t)N * cols);
            for (int n = 0; n < N; n++)
                for (int r = 0; r < nr; r++) {
                    double acc = 0;
                    for (int c = 0; c < cols; c++)
                        acc += (double)xb[(size_t)n * cols + c] * wf[(size_t)(row0 + r) * cols + c];
                    by[(size_t)n * ldy + r] = acc + (beta != 0.0f ? beta * by[(size_t)n * ldy + r] : 0.0);
                }
            for (int n = 0; n < N; n++)
                for (int c = 0; c < cols; c++) {
                    double acc = 0;
                    for (int r = 0; r < nr; r++)
                        acc += (double)dyb[(size_t)n * ldy + r] * wf[(size_t)(row0 + r) * cols + c];
                    bdx[(size_t)n * cols + c] += acc;
                }
            m2u_mat wb = {.dtype = M2U_BF16, .data = ws, .rows = rows, .cols = cols, .bf16_math = 1};
            for (int pass = 0; pass < 1 + native; pass++) { /* pass 1: switched off */
                if (pass) m2u_gemm_bf16_enable(0);
                int bmath = native && !pass, bmath_wt = bmath && N > 4;
                float *y3 = fdup(y, (size_t)N * ldy), *dx3 = fdup(dx, (size_t)N * cols);
                m2u_matmul_wt(y3, ldy, x, N, &wb, row0, nr, beta);
                m2u_matmul_w_acc(dx3, dy, ldy, N, &wb, row0, nr);
                check_only(bmath_wt ? "matmul_wt bf16_math (bf16 products)" : "matmul_wt bf16_math (fp32 products)",
                           y3, bmath_wt ? by : ry, (size_t)N * ldy, TOL_RED);
                check_only(bmath ? "matmul_w_acc bf16_math (bf16 products)" : "matmul_w_acc bf16_math (fp32 products)",
                           dx3, bmath ? bdx : rdx, (size_t)N * cols, TOL_RED);
                free(y3), free(dx3);
            }
            m2u_gemm_bf16_enable(1);
            free(xb), free(dyb), free(by), free(bdx);
        }
        m2u_mat w = {.dtype = types[ti], .data = dev(ws, (size_t)rows * cols * es), .rows = rows, .cols = cols};
        float *d_x = devf(x, (size_t)N * cols), *d_y = devf(y, (size_t)N * ldy), *d_dy = devf(dy, (size_t)N * ldy);
        float *d_dx = devf(dx, (size_t)N * cols);
        BE->matmul_wt(d_y, ldy, d_x, N, &w, row0, nr, beta);
        BE->matmul_w_acc(d_dx, d_dy, ldy, N, &w, row0, nr);
        host(y, d_y, (size_t)N * ldy * sizeof(float));
        host(dx, d_dx, (size_t)N * cols * sizeof(float));
        check("matmul_wt", y, ry, (size_t)N * ldy, TOL_RED);
        check("matmul_w_acc", dx, rdx, (size_t)N * cols, TOL_RED);
        dev_reset();
        free(wf), free(ws), free(x), free(y), free(dy), free(dx), free(ry), free(rdx);
    }
}

static void t_linear(void) {
    int shapes[][3] = {{1, 3, 1}, {17, 33, 5}, {3, 1, 65}};
    for (int s = 0; s < 3; s++) {
        int N = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        float *x = frand((size_t)N * in, 1), *w = frand((size_t)out * in, 1), *b = frand(out, 1);
        float *dy = frand((size_t)N * out, 1), *dx = frand((size_t)N * in, 1), *dw = frand((size_t)out * in, 1),
              *db = frand(out, 1), *y = malloc((size_t)N * out * sizeof *y);
        double *ry = malloc((size_t)N * out * sizeof *ry), *rdx = todbl(dx, (size_t)N * in),
               *rdw = todbl(dw, (size_t)out * in), *rdb = todbl(db, out);
        for (int n = 0; n < N; n++)
            for (int o = 0; o < out; o++) {
                double acc = b[o];
                for (int i = 0; i < in; i++) acc += (double)x[n * in + i] * w[o * in + i];
                ry[n * out + o] = acc;
                rdb[o] += dy[n * out + o];
                for (int i = 0; i < in; i++) {
                    rdx[n * in + i] += (double)dy[n * out + o] * w[o * in + i];
                    rdw[o * in + i] += (double)dy[n * out + o] * x[n * in + i];
                }
            }
        float *d_x = devf(x, (size_t)N * in), *d_w = devf(w, (size_t)out * in), *d_b = devf(b, out),
              *d_y = devf(y, (size_t)N * out), *d_dy = devf(dy, (size_t)N * out), *d_dx = devf(dx, (size_t)N * in),
              *d_dw = devf(dw, (size_t)out * in), *d_db = devf(db, out);
        BE->linear_fwd(d_y, d_x, d_w, d_b, N, in, out);
        BE->linear_bwd(d_dx, d_dw, d_db, d_dy, d_x, d_w, N, in, out);
        host(y, d_y, (size_t)N * out * 4);
        host(dx, d_dx, (size_t)N * in * 4);
        host(dw, d_dw, (size_t)out * in * 4);
        host(db, d_db, (size_t)out * 4);
        check("linear_fwd", y, ry, (size_t)N * out, TOL_RED);
        check("linear_bwd dx", dx, rdx, (size_t)N * in, TOL_RED);
        check("linear_bwd dw", dw, rdw, (size_t)out * in, TOL_RED);
        check("linear_bwd db", db, rdb, out, TOL_RED);
        dev_reset();
        free(x), free(w), free(b), free(dy), free(dx), free(dw), free(db), free(y);
        free(ry), free(rdx), free(rdw), free(rdb);
    }
}

/* m2u_linear_fwd_packed (cpu/linear_pack.c): the packed product against the double reference,
 * off (m2u_linear_pack_enable(0)) the same bits as m2u_linear_fwd, and two threads sharing one
 * pack each getting the single-thread answer. */
typedef struct {
    m2u_linear_pack *p;
    float *y;
    const float *x, *b;
    int N;
} pack_job;

static void *pack_worker(void *arg) {
    pack_job *j = arg;
#ifdef _OPENMP
    omp_set_num_threads(1); /* as a task thread of m2u_parallel_tasks runs */
#endif
    for (int r = 0; r < 3; r++) m2u_linear_fwd_packed(j->p, j->y, j->x, j->b, j->N);
    return NULL;
}

static int pack_item(void *ctx, int i) { /* inside m2u_parallel_items' OpenMP region */
    pack_job *j = (pack_job *)ctx + i;
    m2u_linear_fwd_packed(j->p, j->y, j->x, j->b, j->N);
    return 0;
}

static void t_linear_pack(void) {
    int shapes[][3] = {{1, 5, 3}, {37, 64, 48}, {128, 96, 200}, {300, 257, 31}, {749, 768, 96}};
    int used = 0;
    for (int s = 0; s < 5; s++) {
        int N = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        size_t ny = (size_t)N * out;
        float *x = frand((size_t)N * in, 1), *w = frand((size_t)out * in, 1), *b = frand(out, 1);
        float *y = malloc(ny * sizeof *y), *y0 = malloc(ny * sizeof *y0), *y1 = malloc(ny * sizeof *y1),
              *y2 = malloc(ny * sizeof *y2);
        double *ry = malloc(ny * sizeof *ry);
        m2u_linear_pack *p = m2u_linear_pack_new(w, in, out);
        CHECK(p != NULL, "linear_pack_new %dx%d", out, in);
        for (int bias = 0; bias < 2 && p; bias++) {
            const float *bb = bias ? b : NULL;
            for (int n = 0; n < N; n++)
                for (int o = 0; o < out; o++) {
                    double acc = bias ? b[o] : 0;
                    for (int i = 0; i < in; i++) acc += (double)x[(size_t)n * in + i] * w[(size_t)o * in + i];
                    ry[(size_t)n * out + o] = acc;
                }
            used += m2u_linear_pack_used(p, N, bias);
            m2u_linear_fwd_packed(p, y, x, bb, N);
            check_only("linear_fwd_packed", y, ry, ny, 5e-5);
            /* switched off: exactly m2u_linear_fwd */
            m2u_linear_pack_enable(0);
            CHECK(!m2u_linear_pack_used(p, N, bias), "linear_pack_used while switched off");
            m2u_linear_fwd_packed(p, y0, x, bb, N);
            m2u_linear_pack_enable(1);
            m2u_linear_fwd(y1, x, w, bb, N, in, out);
            CHECK(!memcmp(y0, y1, ny * sizeof *y0), "linear_fwd_packed switched off differs from linear_fwd (%dx%dx%d)",
                  N, in, out);
            /* two threads on one pack, one OpenMP thread each */
            pack_job j[2] = {{p, y1, x, bb, N}, {p, y2, x, bb, N}};
            pthread_t th;
#ifdef _OPENMP
            int nt = omp_get_max_threads();
#endif
            int started = pthread_create(&th, NULL, pack_worker, &j[1]) == 0;
            pack_worker(&j[0]);
            if (started) pthread_join(th, NULL);
            else pack_worker(&j[1]);
#ifdef _OPENMP
            omp_set_num_threads(nt);
#endif
            check_only("linear_fwd_packed, 2 threads", y1, ry, ny, 5e-5);
            CHECK(!memcmp(y1, y2, ny * sizeof *y1), "linear_fwd_packed: two threads on one pack disagree (%dx%dx%d)", N,
                  in, out);
            /* from inside a parallel region: three items on one pack */
            float *yi = malloc(3 * ny * sizeof *yi);
            pack_job items[3];
            for (int k = 0; k < 3; k++) items[k] = (pack_job){p, yi + (size_t)k * ny, x, bb, N};
            CHECK(m2u_parallel_items(3, pack_item, items) == 0, "linear_fwd_packed in parallel items: %s",
                  m2u_last_error());
            for (int k = 0; k < 3; k++) check_only("linear_fwd_packed, parallel items", yi + (size_t)k * ny, ry, ny, 5e-5);
            free(yi);
            /* into rows out + 3 apart: the three floats after each row are left as they were */
            float *yw = malloc((size_t)N * (out + 3) * sizeof *yw);
            for (size_t i = 0; i < (size_t)N * (out + 3); i++) yw[i] = -7.0f;
            m2u_linear_fwd_packed_ld(p, yw, out + 3, x, bb, N);
            int kept = 1;
            for (int n = 0; n < N; n++) {
                memcpy(y1 + (size_t)n * out, yw + (size_t)n * (out + 3), (size_t)out * sizeof *y1);
                for (int e = 0; e < 3; e++) kept &= yw[(size_t)n * (out + 3) + out + e] == -7.0f;
            }
            check_only("linear_fwd_packed_ld", y1, ry, ny, 5e-5);
            CHECK(kept, "linear_fwd_packed_ld wrote between the rows (%dx%dx%d)", N, in, out);
            free(yw);
        }
        m2u_linear_pack_free(p);
        free(x), free(w), free(b), free(y), free(y0), free(y1), free(y2), free(ry);
    }
    /* many row counts on one pack: past the first 8, blocks of 128 rows and a padded last one */
    {
        int in = 96, out = 80, Ns[] = {5, 17, 33, 64, 100, 128, 129, 150, 200, 255, 256, 300, 1, 7};
        int nN = (int)(sizeof Ns / sizeof Ns[0]), blocked = 0, ok = 1;
        float *x = frand((size_t)300 * in, 1), *w = frand((size_t)out * in, 1), *b = frand(out, 1);
        float *y = malloc((size_t)300 * out * sizeof *y), *y1 = malloc((size_t)300 * out * sizeof *y1);
        m2u_linear_pack *p = m2u_linear_pack_new(w, in, out);
        CHECK(p != NULL, "linear_pack_new");
        for (int k = 0; k < nN && p; k++) {
            int N = Ns[k];
            size_t ny = (size_t)N * out;
            double *ry = malloc(ny * sizeof *ry);
            for (int n = 0; n < N; n++)
                for (int o = 0; o < out; o++) {
                    double acc = b[o];
                    for (int i = 0; i < in; i++) acc += (double)x[(size_t)n * in + i] * w[(size_t)o * in + i];
                    ry[(size_t)n * out + o] = acc;
                }
            m2u_linear_fwd_packed(p, y, x, b, N);
            check_only("linear_fwd_packed, many row counts", y, ry, ny, 5e-5);
            /* and the same product again gives the same bits */
            if (k >= 8) blocked += m2u_linear_pack_used(p, N, 1);
            m2u_linear_fwd_packed(p, y1, x, b, N);
            ok &= !memcmp(y, y1, ny * sizeof *y);
            free(ry);
        }
        CHECK(ok, "linear_fwd_packed: the same product twice gave different bits");
        CHECK(!m2u_linear_pack_available() || blocked == nN - 8,
              "linear_fwd_packed: %d of %d row counts past the first 8 ran packed", blocked, nN - 8);
        m2u_linear_pack_free(p);
        free(x), free(w), free(b), free(y), free(y1);
    }
    CHECK(m2u_linear_pack_new(NULL, 3, 3) == NULL && m2u_linear_pack_new((float[1]){0}, 0, 3) == NULL,
          "linear_pack_new must refuse a missing weight or an empty shape");
    printf("linear_pack: %d of 10 products on packed weights (oneDNN brgemm; 0 on CPUs without it)\n", used);
    CHECK(used == (m2u_linear_pack_available() ? 10 : 0), "linear_pack: %d of 10 products packed where packs %s", used,
          m2u_linear_pack_available() ? "are available" : "are not");
}

/* ---- norms ------------------------------------------------------------------------------------ */

typedef struct {
    int N, C, kind; /* 0 rms, 1 layer, 2 l2 */
    double *x, *w, *b, *g, eps;
} norm_ctx;

static void norm_ref(const norm_ctx *c, double *out) {
    for (int n = 0; n < c->N; n++) {
        const double *x = c->x + (size_t)n * c->C;
        double mean = 0, var = 0, ss = 0;
        for (int i = 0; i < c->C; i++) mean += x[i], ss += x[i] * x[i];
        mean /= c->C;
        for (int i = 0; i < c->C; i++) var += (x[i] - mean) * (x[i] - mean);
        var /= c->C;
        for (int i = 0; i < c->C; i++) {
            double o;
            if (c->kind == 0) o = c->w[i] * x[i] / sqrt(ss / c->C + c->eps);
            else if (c->kind == 1) o = (x[i] - mean) / sqrt(var + c->eps) * c->w[i] + c->b[i];
            else o = x[i] / fmax(sqrt(ss), c->eps);
            out[(size_t)n * c->C + i] = o;
        }
    }
}
static double norm_loss(void *p) {
    norm_ctx *c = p;
    size_t n = (size_t)c->N * c->C;
    double *o = malloc(n * sizeof *o), l = 0;
    norm_ref(c, o);
    for (size_t i = 0; i < n; i++) l += o[i] * c->g[i];
    free(o);
    return l;
}

/* RMSNorm's weight gradient sums each column over the rows in order, 16 columns at a time: the
 * bits of the plain column loop, whatever the width (C not a multiple of 16) and threads. */
static void t_rmsnorm_dw_bits(void) {
    if (!on_cpu) return;
    int shapes[][2] = {{37, 53}, {512, 288}, {5, 7}};
    int same = 1;
    for (int s = 0; s < 3; s++) {
        int N = shapes[s][0], C = shapes[s][1];
        size_t n = (size_t)N * C;
        float *x = frand(n, 2), *w = frand(C, 1), *g = frand(n, 1), *rstd = frand(N, 1), *dx = frand(n, 1);
        float *dw = frand(C, 1), *ref = fdup(dw, C);
        for (int i = 0; i < C; i++) {
            float acc = 0.0f;
            for (int r = 0; r < N; r++) acc += g[(size_t)r * C + i] * x[(size_t)r * C + i] * rstd[r];
            ref[i] += acc;
        }
        m2u_rmsnorm_bwd(dx, dw, g, x, w, rstd, N, C);
        same = same && !memcmp(dw, ref, (size_t)C * sizeof *dw);
        free(x), free(w), free(g), free(rstd), free(dx), free(dw), free(ref);
    }
    CHECK(same, "rmsnorm_bwd: dw differs from the column-by-column sums");
    printf("  %-48s cpu   dw the bits of the column loop: %s\n", "rmsnorm_bwd", same ? "yes" : "NO");
}

static void t_norms(void) {
    int shapes[][2] = {{1, 1}, {3, 17}, {17, 65}};
    const char *names[] = {"rmsnorm", "layernorm", "l2norm"};
    for (int kind = 0; kind < 3; kind++)
        for (int s = 0; s < 3; s++) {
            int N = shapes[s][0], C = shapes[s][1];
            size_t n = (size_t)N * C;
            float eps = kind == 2 ? 1e-12f : 1e-5f;
            float *x = frand(n, 2), *w = frand(C, 1), *b = frand(C, 1), *g = frand(n, 1);
            float *dx = frand(n, 1), *dw = frand(C, 1), *db = frand(C, 1), *out = malloc(n * sizeof *out);
            norm_ctx c = {N, C, kind, todbl(x, n), todbl(w, C), todbl(b, C), todbl(g, n), eps};
            double *ro = malloc(n * sizeof *ro);
            norm_ref(&c, ro);
            float *d_x = devf(x, n), *d_w = devf(w, C), *d_b = devf(b, C), *d_out = devf(out, n), *d_g = devf(g, n),
                  *d_dx = devf(dx, n), *d_dw = devf(dw, C), *d_db = devf(db, C);
            float *st = calloc(2 * (size_t)N, sizeof *st);
            float *d_s1 = devf(st, N), *d_s2 = devf(st, N);
            if (kind == 0) {
                BE->rmsnorm_fwd(d_out, d_s1, d_x, d_w, N, C, eps);
                BE->rmsnorm_bwd(d_dx, d_dw, d_g, d_x, d_w, d_s1, N, C);
            } else if (kind == 1) {
                BE->layernorm_fwd(d_out, d_s1, d_s2, d_x, d_w, d_b, N, C, eps);
                BE->layernorm_bwd(d_dx, d_dw, d_db, d_g, d_x, d_w, d_s1, d_s2, N, C);
            } else {
                BE->l2norm_fwd(d_out, d_s1, d_x, N, C, eps);
                BE->l2norm_bwd(d_dx, d_g, d_out, d_s1, N, C, eps);
            }
            float *dx0 = fdup(dx, n), *dw0 = fdup(dw, C), *db0 = fdup(db, C);
            host(out, d_out, n * 4);
            host(dx, d_dx, n * 4);
            host(dw, d_dw, (size_t)C * 4);
            host(db, d_db, (size_t)C * 4);
            char nm[64];
            snprintf(nm, sizeof nm, "%s_fwd", names[kind]);
            check(nm, out, ro, n, TOL_RED);
            /* backward: the accumulated gradients minus their start values against finite
             * differences of the double reference, on every element (sizes are small) */
            double *rdx = malloc(n * sizeof *rdx), *rdw = malloc((size_t)C * sizeof *rdw),
                   *rdb = malloc((size_t)C * sizeof *rdb);
            for (size_t i = 0; i < n; i++) rdx[i] = dx0[i] + fd(norm_loss, &c, c.x, i);
            for (int i = 0; i < C; i++) rdw[i] = dw0[i] + fd(norm_loss, &c, c.w, i);
            for (int i = 0; i < C; i++) rdb[i] = db0[i] + fd(norm_loss, &c, c.b, i);
            snprintf(nm, sizeof nm, "%s_bwd dx (vs finite differences)", names[kind]);
            check(nm, dx, rdx, n, TOL_FD);
            if (kind < 2) {
                snprintf(nm, sizeof nm, "%s_bwd dw (vs finite differences)", names[kind]);
                check(nm, dw, rdw, C, TOL_FD);
            }
            if (kind == 1) check("layernorm_bwd db (vs finite differences)", db, rdb, C, TOL_FD);
            dev_reset();
            free(x), free(w), free(b), free(g), free(dx), free(dw), free(db), free(out), free(st), free(dx0),
                free(dw0), free(db0);
            free(c.x), free(c.w), free(c.b), free(c.g), free(ro), free(rdx), free(rdw), free(rdb);
        }
}

/* ---- rope ----------------------------------------------------------------------------------- */

static void t_rope(void) {
    int N = 17, H = 3, hd = 8, stride = H * hd + 5, half = hd / 2;
    float inv[4];
    m2u_rope_inv_freq(inv, hd, 10000.0f);
    int pos[17];
    for (int i = 0; i < N; i++) pos[i] = irand(4096);
    size_t n = (size_t)N * stride;
    float *x = frand(n, 1), *cs = malloc((size_t)N * half * 4), *sn = malloc((size_t)N * half * 4);
    double *rc = malloc((size_t)N * half * sizeof *rc), *rs = malloc((size_t)N * half * sizeof *rs);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < half; j++) {
            float f = (float)pos[i] * inv[j]; /* the fp32 angle, as transformers */
            rc[i * half + j] = cos((double)f);
            rs[i * half + j] = sin((double)f);
        }
    int *d_pos = dev(pos, sizeof pos);
    float *d_inv = devf(inv, 4), *d_c = devf(cs, (size_t)N * half), *d_s = devf(sn, (size_t)N * half);
    BE->rope_table(d_c, d_s, d_pos, N, hd, d_inv);
    host(cs, d_c, (size_t)N * half * 4);
    host(sn, d_s, (size_t)N * half * 4);
    check("rope_table cos", cs, rc, (size_t)N * half, TOL_EW);
    check("rope_table sin", sn, rs, (size_t)N * half, TOL_EW);
    double *ry = todbl(x, n), *rb = todbl(x, n);
    for (int i = 0; i < N; i++)
        for (int h = 0; h < H; h++)
            for (int j = 0; j < half; j++) {
                size_t a = (size_t)i * stride + h * hd + j, b = a + half;
                double c = rc[i * half + j], s = rs[i * half + j];
                ry[a] = x[a] * c - x[b] * s, ry[b] = x[b] * c + x[a] * s;
                rb[a] = x[a] * c + x[b] * s, rb[b] = x[b] * c - x[a] * s;
            }
    float *d_x = devf(x, n), *d_x2 = devf(x, n), *y = malloc(n * 4);
    BE->rope_fwd(d_x, N, stride, H, hd, d_c, d_s);
    BE->rope_bwd(d_x2, N, stride, H, hd, d_c, d_s);
    host(y, d_x, n * 4);
    check("rope_fwd", y, ry, n, TOL_RED);
    host(y, d_x2, n * 4);
    check("rope_bwd", y, rb, n, TOL_RED);
    dev_reset();
    free(x), free(cs), free(sn), free(rc), free(rs), free(ry), free(rb), free(y);
}

/* ---- attention -------------------------------------------------------------------------------- */

typedef struct {
    m2u_attn a;
    double *q, *k, *v, *bias, *g; /* g: weights of the loss sum(out * g) */
    int32_t *mask;
    double *key_bias; /* [B][S] or NULL */
} att_ctx;

static int visible(const att_ctx *c, int b, int t, int s) {
    if (c->a.causal && s > c->a.pos0 + t) return 0;
    if (c->mask && !c->mask[(size_t)b * c->a.S + s]) return 0;
    return 1;
}

/* out [B*T][H*hd], probs [B][H][T][S] (either may be NULL) */
static void att_ref(const att_ctx *c, double *out, double *probs) {
    const m2u_attn *a = &c->a;
    int od = a->H * a->hd, group = a->H / a->KV;
    double *sc = malloc((size_t)a->S * sizeof *sc);
    size_t kbs = a->kv_bstride ? a->kv_bstride : (size_t)a->S * a->ks;
    size_t vbs = a->kv_bstride ? a->kv_bstride : (size_t)a->S * a->vs;
    for (int b = 0; b < a->B; b++)
        for (int h = 0; h < a->H; h++)
            for (int t = 0; t < a->T; t++) {
                const double *q = c->q + ((size_t)b * a->T + t) * a->qs + (size_t)h * a->hd;
                double mx = -INFINITY, sum = 0;
                for (int s = 0; s < a->S; s++) {
                    const double *k = c->k + b * kbs + (size_t)s * a->ks + (size_t)(h / group) * a->hd;
                    double d = 0;
                    for (int j = 0; j < a->hd; j++) d += q[j] * k[j];
                    d *= a->scale;
                    if (c->bias) d += c->bias[((size_t)(a->bias_heads == 1 ? 0 : h) * a->T + t) * a->S + s];
                    if (c->key_bias) d += c->key_bias[(size_t)b * a->S + s];
                    sc[s] = d;
                    if (visible(c, b, t, s) && d > mx) mx = d;
                }
                for (int s = 0; s < a->S; s++) {
                    sc[s] = visible(c, b, t, s) ? exp(sc[s] - mx) : 0.0;
                    sum += sc[s];
                }
                for (int s = 0; s < a->S; s++) sc[s] = sum > 0 ? sc[s] / sum : 0.0;
                if (probs)
                    for (int s = 0; s < a->S; s++) probs[(((size_t)b * a->H + h) * a->T + t) * a->S + s] = sc[s];
                if (out)
                    for (int j = 0; j < a->hd; j++) {
                        double acc = 0;
                        for (int s = 0; s < a->S; s++)
                            acc += sc[s] * c->v[b * vbs + (size_t)s * a->vs + (size_t)(h / group) * a->hd + j];
                        out[((size_t)b * a->T + t) * od + (size_t)h * a->hd + j] = acc;
                    }
            }
    free(sc);
}
static double att_loss(void *p) {
    att_ctx *c = p;
    size_t n = (size_t)c->a.B * c->a.T * c->a.H * c->a.hd;
    double *o = malloc(n * sizeof *o), l = 0;
    att_ref(c, o, NULL);
    for (size_t i = 0; i < n; i++) l += o[i] * c->g[i];
    free(o);
    return l;
}

static void t_attention_case(const char *name, int B, int T, int S, int H, int KV, int hd, int pad, int causal,
                             int pos0, int bias_heads, int use_mask, float scale) {
    att_ctx c = {0};
    int qs = H * hd + pad, ks = KV * hd + 2 * pad, vs = KV * hd + pad + 1;
    c.a = m2u_attn_make(B, T, S, H, KV, hd, qs, ks, vs, causal, pos0);
    if (scale > 0) c.a.scale = scale;
    size_t nq = (size_t)B * T * qs, nk = (size_t)B * S * ks, nv = (size_t)B * S * vs, no = (size_t)B * T * H * hd,
           np = (size_t)B * H * T * S, nb = (size_t)bias_heads * T * S;
    float *q = frand(nq, 1), *k = frand(nk, 1), *v = frand(nv, 1), *g = frand(no, 1);
    float *bias = bias_heads ? frand(nb, 2) : NULL;
    int32_t *mask = NULL;
    if (use_mask) {
        mask = malloc((size_t)B * S * sizeof *mask);
        for (int i = 0; i < B * S; i++) mask[i] = irand(4) != 0;
        mask[0] = 1; /* every row of sequence 0 sees key 0 */
        if (B > 1)
            for (int s = 0; s < S; s++) mask[S + s] = 0; /* sequence 1 sees nothing: zero rows */
    }
    float *dq = frand(nq, 1), *dk = frand(nk, 1), *dv = frand(nv, 1);
    c.q = todbl(q, nq), c.k = todbl(k, nk), c.v = todbl(v, nv), c.g = todbl(g, no);
    c.bias = bias ? todbl(bias, nb) : NULL;
    c.mask = mask;
    c.a.bias = NULL;
    c.a.bias_heads = bias_heads ? bias_heads : H;
    double *ro = malloc(no * sizeof *ro), *rp = malloc(np * sizeof *rp);
    att_ref(&c, ro, rp);
    m2u_attn a = c.a;
    a.bias = bias ? devf(bias, nb) : NULL;
    a.key_mask = mask ? dev(mask, (size_t)B * S * sizeof *mask) : NULL;
    float *d_q = devf(q, nq), *d_k = devf(k, nk), *d_v = devf(v, nv), *d_g = devf(g, no);
    float *out = malloc(no * 4), *probs = malloc(np * 4);
    float *d_o = devf(out, no), *d_p = devf(probs, np), *d_o2 = devf(out, no);
    float *d_dq = devf(dq, nq), *d_dk = devf(dk, nk), *d_dv = devf(dv, nv);
    char nm[96];
    CHECK(BE->attn_fwd(&a, d_o, d_p, d_q, d_k, d_v) == 0, "%s: %s", name, m2u_last_error());
    CHECK(BE->attn_fwd(&a, d_o2, NULL, d_q, d_k, d_v) == 0, "%s: %s", name, m2u_last_error());
    CHECK(BE->attn_bwd(&a, d_dq, d_dk, d_dv, d_g, d_p, d_q, d_k, d_v) == 0, "%s: %s", name, m2u_last_error());
    /* the memory-light pair: the forward keeps each row's log-sum-exp, the backward recomputes */
    size_t nl = (size_t)B * H * T;
    float *lse = malloc(nl * 4), *d_o3 = devf(out, no), *d_lse = devf(lse, nl);
    float *d_dq2 = devf(dq, nq), *d_dk2 = devf(dk, nk), *d_dv2 = devf(dv, nv);
    m2u_attn al = a;
    al.lse = d_lse;
    CHECK(BE->attn_fwd(&al, d_o3, NULL, d_q, d_k, d_v) == 0, "%s: %s", name, m2u_last_error());
    CHECK(BE->attn_bwd(&al, d_dq2, d_dk2, d_dv2, d_g, NULL, d_q, d_k, d_v) == 0, "%s: %s", name, m2u_last_error());
    m2u_attn none = a;
    CHECK(BE->attn_bwd(&none, d_dq2, d_dk2, d_dv2, d_g, NULL, d_q, d_k, d_v) != 0,
          "%s: a backward with neither probs nor lse must fail", name);
    host(out, d_o, no * 4);
    host(probs, d_p, np * 4);
    snprintf(nm, sizeof nm, "attn_fwd %s out", name);
    check(nm, out, ro, no, TOL_ATT);
    snprintf(nm, sizeof nm, "attn_fwd %s probs", name);
    check(nm, probs, rp, np, TOL_ATT);
    host(out, d_o2, no * 4);
    snprintf(nm, sizeof nm, "attn_fwd %s out (no probs)", name);
    check(nm, out, ro, no, TOL_ATT);
    /* backward: the reference gradient by finite differences of the double forward, on every
     * element of q, k and v (the strided padding must stay untouched: its gradient is 0) */
    float *gq = malloc(nq * 4), *gk = malloc(nk * 4), *gv = malloc(nv * 4);
    host(gq, d_dq, nq * 4);
    host(gk, d_dk, nk * 4);
    host(gv, d_dv, nv * 4);
    double *rq = todbl(dq, nq), *rk = todbl(dk, nk), *rv = todbl(dv, nv);
    for (size_t i = 0; i < nq; i++) rq[i] += fd(att_loss, &c, c.q, i);
    for (size_t i = 0; i < nk; i++) rk[i] += fd(att_loss, &c, c.k, i);
    for (size_t i = 0; i < nv; i++) rv[i] += fd(att_loss, &c, c.v, i);
    snprintf(nm, sizeof nm, "attn_bwd %s dq", name);
    check(nm, gq, rq, nq, TOL_FD);
    snprintf(nm, sizeof nm, "attn_bwd %s dk", name);
    check(nm, gk, rk, nk, TOL_FD);
    snprintf(nm, sizeof nm, "attn_bwd %s dv", name);
    check(nm, gv, rv, nv, TOL_FD);
    host(out, d_o3, no * 4);
    snprintf(nm, sizeof nm, "attn_fwd %s out (lse kept)", name);
    check(nm, out, ro, no, TOL_ATT);
    host(gq, d_dq2, nq * 4);
    host(gk, d_dk2, nk * 4);
    host(gv, d_dv2, nv * 4);
    snprintf(nm, sizeof nm, "attn_bwd %s dq (recomputed probs)", name);
    check(nm, gq, rq, nq, TOL_FD);
    snprintf(nm, sizeof nm, "attn_bwd %s dk (recomputed probs)", name);
    check(nm, gk, rk, nk, TOL_FD);
    snprintf(nm, sizeof nm, "attn_bwd %s dv (recomputed probs)", name);
    check(nm, gv, rv, nv, TOL_FD);
    free(lse);
    dev_reset();
    free(q), free(k), free(v), free(g), free(bias), free(mask), free(dq), free(dk), free(dv);
    free(c.q), free(c.k), free(c.v), free(c.g), free(c.bias), free(ro), free(rp), free(out), free(probs);
    free(gq), free(gk), free(gv), free(rq), free(rk), free(rv);
}

static void t_attention(void) {
    /*                 name                       B  T   S   H  KV hd pad causal pos0 bias mask scale */
    t_attention_case("causal gqa", 2, 17, 17, 4, 2, 8, 0, 1, 0, 0, 0, 0);
    t_attention_case("causal mqa strided", 1, 5, 5, 3, 1, 3, 3, 1, 0, 0, 0, 0);
    t_attention_case("causal decode pos0", 1, 3, 9, 4, 2, 4, 1, 1, 6, 0, 0, 0);
    t_attention_case("causal single", 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0);
    t_attention_case("full mha", 2, 17, 33, 2, 2, 5, 2, 0, 0, 0, 0, 0);
    t_attention_case("full gqa bias mask", 2, 7, 9, 4, 2, 4, 1, 0, 0, 4, 1, 1.0f);
    t_attention_case("full bias broadcast", 1, 3, 17, 2, 1, 3, 0, 0, 0, 1, 0, 0.5f);
    t_attention_case("causal bias mask", 2, 9, 9, 2, 2, 4, 0, 1, 0, 2, 1, 0);
    /* longer than one query block of the inference path (64 rows): full, causal, masked */
    t_attention_case("full blocks", 1, 70, 37, 2, 1, 4, 1, 0, 0, 0, 0, 0);
    t_attention_case("causal blocks pos0", 1, 67, 70, 2, 2, 3, 0, 1, 3, 1, 0, 0);
    t_attention_case("full blocks bias mask", 2, 66, 9, 2, 2, 3, 0, 0, 0, 2, 1, 0);
    /* head dims that are multiples of 8: the inference path's register tiles (attn_tiles.h) where
     * the CPU has AVX2 (16-wide V panels, 8-wide for 24); rows past one tile row group (6) and
     * one block (48), keys past one 16-key panel */
    t_attention_case("tiles hd16 gqa", 2, 13, 21, 2, 1, 16, 1, 0, 0, 0, 0, 0);
    t_attention_case("tiles hd24 bias mask", 2, 7, 17, 2, 2, 24, 0, 0, 0, 2, 1, 0);
    t_attention_case("tiles hd32 causal pos0", 1, 9, 20, 2, 1, 32, 2, 1, 11, 0, 0, 0);
    t_attention_case("tiles hd64 blocks", 1, 50, 7, 1, 1, 64, 0, 0, 0, 1, 0, 0);
    t_attention_case("tiles hd8 causal blocks", 1, 53, 53, 2, 2, 8, 0, 1, 0, 0, 0, 0);
    /* bad dimensions are an error, not a crash */
    m2u_attn bad = m2u_attn_make(1, 1, 1, 3, 2, 4, 12, 8, 8, 0, 0);
    CHECK(BE->attn_fwd(&bad, NULL, NULL, NULL, NULL, NULL) != 0, "KV not dividing H must fail");
}

/* The decoder conventions (forward only): q scaled before the dot product, a finfo.min key
 * bias per sequence, a KV cache of cap >= S keys per sequence (kv_bstride).  Sequence 1 has
 * every key padded: its rows must come out uniform over the S keys (torch's behaviour), which
 * is checked against the plain mean of v as well as against the reference. */
static void t_attention_decoder_case(const char *name, int B, int T, int S, int cap, int H, int KV, int hd,
                                     int causal, int pos0, int bias_heads, int use_mask) {
    att_ctx c = {0};
    int qs = H * hd + 1, ks = KV * hd + 2, vs = KV * hd + 3;
    c.a = m2u_attn_make(B, T, S, H, KV, hd, qs, ks, vs, causal, pos0);
    c.a.prescale_q = 1;
    c.a.kv_bstride = (size_t)cap * vs; /* vs > ks: a stride valid for both */
    size_t nq = (size_t)B * T * qs, nkv = (size_t)B * cap * vs, no = (size_t)B * T * H * hd,
           np = (size_t)B * H * T * S, nb = (size_t)bias_heads * T * S;
    float *q = frand(nq, 1), *k = frand(nkv, 1), *v = frand(nkv, 1), *kb = malloc((size_t)B * S * sizeof *kb);
    float *bias = bias_heads ? frand(nb, 2) : NULL;
    int32_t *mask = NULL;
    for (int i = 0; i < B * S; i++) kb[i] = (i >= S && i < 2 * S) || irand(3) == 0 ? -FLT_MAX : 0.0f;
    kb[0] = 0.0f; /* sequence 0 keeps key 0 */
    if (use_mask) {
        mask = malloc((size_t)B * S * sizeof *mask);
        for (int i = 0; i < B * S; i++) mask[i] = i < S ? irand(4) != 0 : 1;
        mask[0] = 1;
    }
    c.q = todbl(q, nq), c.k = todbl(k, nkv), c.v = todbl(v, nkv), c.key_bias = todbl(kb, (size_t)B * S);
    c.bias = bias ? todbl(bias, nb) : NULL;
    c.mask = mask;
    c.a.bias_heads = bias_heads ? bias_heads : H;
    double *ro = malloc(no * sizeof *ro), *rp = malloc(np * sizeof *rp);
    att_ref(&c, ro, rp);
    m2u_attn a = c.a;
    a.bias = bias ? devf(bias, nb) : NULL;
    a.key_mask = mask ? dev(mask, (size_t)B * S * sizeof *mask) : NULL;
    a.key_bias = devf(kb, (size_t)B * S);
    float *d_q = devf(q, nq), *d_k = devf(k, nkv), *d_v = devf(v, nkv);
    float *out = malloc(no * 4), *probs = malloc(np * 4);
    float *d_o = devf(out, no), *d_p = devf(probs, np), *d_o2 = devf(out, no);
    char nm[96];
    CHECK(BE->attn_fwd(&a, d_o, d_p, d_q, d_k, d_v) == 0, "%s: %s", name, m2u_last_error());
    CHECK(BE->attn_fwd(&a, d_o2, NULL, d_q, d_k, d_v) == 0, "%s: %s", name, m2u_last_error());
    host(out, d_o, no * 4);
    host(probs, d_p, np * 4);
    snprintf(nm, sizeof nm, "attn_fwd %s out", name);
    check(nm, out, ro, no, TOL_ATT);
    snprintf(nm, sizeof nm, "attn_fwd %s probs", name);
    check(nm, probs, rp, np, TOL_ATT);
    /* the fully padded sequence 1, query t sees keys 0..last: uniform over them */
    if (B > 1) {
        size_t n1 = (size_t)T * H * hd;
        double *uo = malloc(n1 * sizeof *uo), *up = malloc((size_t)H * T * S * sizeof *up);
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                int last = causal && pos0 + t < S - 1 ? pos0 + t : S - 1;
                for (int s2 = 0; s2 < S; s2++) up[((size_t)h * T + t) * S + s2] = s2 <= last ? 1.0 / (last + 1) : 0.0;
                for (int j = 0; j < hd; j++) {
                    double m = 0;
                    for (int s2 = 0; s2 <= last; s2++)
                        m += v[(size_t)cap * vs + (size_t)s2 * vs + (size_t)(h / (H / KV)) * hd + j];
                    uo[((size_t)t * H + h) * hd + j] = m / (last + 1);
                }
            }
        snprintf(nm, sizeof nm, "attn_fwd %s padded row uniform", name);
        check(nm, out + n1, uo, n1, TOL_ATT);
        snprintf(nm, sizeof nm, "attn_fwd %s padded probs uniform", name);
        check(nm, probs + (size_t)H * T * S, up, (size_t)H * T * S, TOL_ATT);
        free(uo), free(up);
    }
    host(out, d_o2, no * 4);
    snprintf(nm, sizeof nm, "attn_fwd %s out (no probs)", name);
    check(nm, out, ro, no, TOL_ATT);
    /* forward only: the backward must refuse rather than return a wrong gradient */
    CHECK(BE->attn_bwd(&a, NULL, NULL, NULL, d_o, d_p, d_q, d_k, d_v) != 0, "%s: backward must refuse", name);
    dev_reset();
    free(q), free(k), free(v), free(kb), free(bias), free(mask), free(out), free(probs), free(ro), free(rp);
    free(c.q), free(c.k), free(c.v), free(c.key_bias), free(c.bias);
}

static void t_attention_decoder(void) {
    /*                         name                      B  T   S  cap  H KV  hd causal pos0 bias mask */
    t_attention_decoder_case("decode cross", 2, 1, 13, 13, 4, 4, 8, 0, 0, 0, 0);
    t_attention_decoder_case("decode self cache", 2, 1, 9, 20, 4, 2, 8, 1, 8, 0, 0);
    t_attention_decoder_case("decode wide (parallel)", 3, 1, 64, 70, 8, 8, 64, 0, 0, 1, 1);
    t_attention_decoder_case("prefill causal gqa", 2, 6, 11, 16, 4, 2, 5, 1, 5, 4, 1);
    t_attention_decoder_case("prefill full", 2, 5, 7, 7, 2, 2, 4, 0, 0, 0, 0);
    m2u_attn bad = m2u_attn_make(2, 1, 4, 2, 2, 4, 8, 8, 8, 0, 0);
    bad.kv_bstride = 3 * 8; /* 3 rows for 4 keys */
    CHECK(BE->attn_fwd(&bad, NULL, NULL, NULL, NULL, NULL) != 0, "a kv_bstride below S rows must fail");
}

/* ---- softmax and element-wise ------------------------------------------------------------------- */

static void t_softmax(void) {
    int shapes[][2] = {{1, 1}, {3, 17}, {17, 65}};
    for (int s = 0; s < 3; s++) {
        int N = shapes[s][0], V = shapes[s][1];
        size_t n = (size_t)N * V;
        float *x = frand(n, 4), *dy = frand(n, 1), *dx = frand(n, 1), *y = malloc(n * 4);
        double *ry = malloc(n * sizeof *ry), *rdx = todbl(dx, n);
        for (int r = 0; r < N; r++) {
            double mx = -INFINITY, sum = 0, dot = 0;
            for (int i = 0; i < V; i++) mx = fmax(mx, x[r * V + i]);
            for (int i = 0; i < V; i++) sum += exp(x[r * V + i] - mx);
            for (int i = 0; i < V; i++) ry[r * V + i] = exp(x[r * V + i] - mx) / sum;
            for (int i = 0; i < V; i++) dot += ry[r * V + i] * dy[r * V + i];
            for (int i = 0; i < V; i++) rdx[r * V + i] += ry[r * V + i] * (dy[r * V + i] - dot);
        }
        float *d_x = devf(x, n), *d_dy = devf(dy, n), *d_dx = devf(dx, n);
        BE->softmax_fwd(d_x, N, V);
        BE->softmax_bwd(d_dx, d_dy, d_x, N, V);
        host(y, d_x, n * 4);
        host(dx, d_dx, n * 4);
        check("softmax_fwd", y, ry, n, TOL_RED);
        check("softmax_bwd", dx, rdx, n, TOL_RED);
        dev_reset();
        free(x), free(dy), free(dx), free(y), free(ry), free(rdx);
    }
}

static double gelu_d(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double gelu_tanh_d(double x) { return 0.5 * x * (1 + tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x))); }
static double relu_d(double x) { return x > 0 ? x : 0; }
static double silu_d(double x) { return x / (1 + exp(-x)); }

static void t_elementwise(void) {
    size_t sizes[] = {1, 3, 65, 1025};
    for (int si = 0; si < 4; si++) {
        size_t n = sizes[si];
        float *x = frand(n, 4), *u = frand(n, 2), *dy = frand(n, 1), *dx = frand(n, 1), *du = frand(n, 1);
        float *out = malloc(n * 4), *gx = malloc(n * 4), *gu = malloc(n * 4);
        double *ro = malloc(n * sizeof *ro), *rdx = malloc(n * sizeof *rdx), *rdu = malloc(n * sizeof *rdu);
        struct {
            const char *name;
            double (*f)(double);
        } acts[] = {{"gelu", gelu_d}, {"gelu_tanh", gelu_tanh_d}, {"relu", relu_d}};
        for (int ai = 0; ai < 3; ai++) {
            float *d_x = devf(x, n), *d_o = devf(out, n), *d_dy = devf(dy, n), *d_dx = devf(dx, n);
            if (ai == 0) BE->gelu_fwd(d_o, d_x, n), BE->gelu_bwd(d_dx, d_dy, d_x, n);
            else if (ai == 1) BE->gelu_tanh_fwd(d_o, d_x, n), BE->gelu_tanh_bwd(d_dx, d_dy, d_x, n);
            else BE->relu_fwd(d_o, d_x, n), BE->relu_bwd(d_dx, d_dy, d_o, n);
            host(out, d_o, n * 4);
            host(gx, d_dx, n * 4);
            for (size_t i = 0; i < n; i++) {
                double h = 1e-5, xi = x[i];
                ro[i] = acts[ai].f(xi);
                double der = ai == 2 ? (xi > 0 ? 1.0 : 0.0) : (acts[ai].f(xi + h) - acts[ai].f(xi - h)) / (2 * h);
                rdx[i] = dx[i] + dy[i] * der;
            }
            char nm[64];
            snprintf(nm, sizeof nm, "%s_fwd", acts[ai].name);
            check(nm, out, ro, n, TOL_EW);
            snprintf(nm, sizeof nm, "%s_bwd (vs finite differences)", acts[ai].name);
            check(nm, gx, rdx, n, TOL_FD);
            dev_reset();
        }
        /* swiglu: out = silu(g) u */
        {
            float *d_g = devf(x, n), *d_u = devf(u, n), *d_o = devf(out, n), *d_dy = devf(dy, n),
                  *d_dg = devf(dx, n), *d_du = devf(du, n);
            BE->swiglu_fwd(d_o, d_g, d_u, n);
            BE->swiglu_bwd(d_dg, d_du, d_dy, d_g, d_u, n);
            host(out, d_o, n * 4);
            host(gx, d_dg, n * 4);
            host(gu, d_du, n * 4);
            for (size_t i = 0; i < n; i++) {
                double h = 1e-5;
                ro[i] = silu_d(x[i]) * u[i];
                rdx[i] = dx[i] + dy[i] * u[i] * (silu_d(x[i] + h) - silu_d(x[i] - h)) / (2 * h);
                rdu[i] = du[i] + dy[i] * silu_d(x[i]);
            }
            check("swiglu_fwd", out, ro, n, TOL_EW);
            check("swiglu_bwd dg (vs finite differences)", gx, rdx, n, TOL_FD);
            check("swiglu_bwd du", gu, rdu, n, TOL_EW);
            dev_reset();
        }
        /* add, add_inplace, axpy */
        {
            float *d_a = devf(x, n), *d_b = devf(u, n), *d_o = devf(out, n);
            BE->add(d_o, d_a, d_b, n);
            host(out, d_o, n * 4);
            for (size_t i = 0; i < n; i++) ro[i] = (double)x[i] + u[i];
            check("add", out, ro, n, TOL_EW);
            BE->add_inplace(d_a, d_b, n);
            host(out, d_a, n * 4);
            check("add_inplace", out, ro, n, TOL_EW);
            BE->axpy((int)n, -0.5f, d_b, d_a);
            host(out, d_a, n * 4);
            for (size_t i = 0; i < n; i++) ro[i] = (double)x[i] + 0.5 * u[i];
            check("axpy", out, ro, n, TOL_EW);
            dev_reset();
        }
        /* dropout: each element is 0 or x / (1 - p), the same mask twice, about p dropped */
        {
            float p = 0.25f;
            float *d_x = devf(x, n), *d_o = devf(out, n), *d_o2 = devf(out, n);
            BE->dropout(d_o, d_x, n, p, 1234, 7);
            BE->dropout(d_o2, d_x, n, p, 1234, 7);
            host(out, d_o, n * 4);
            host(gx, d_o2, n * 4);
            size_t dropped = 0, bad = 0;
            for (size_t i = 0; i < n; i++) {
                if (out[i] == 0.0f && x[i] != 0.0f) dropped++;
                else if (fabs(out[i] - x[i] / (1 - p)) > 1e-6 * fabs(x[i])) bad++;
                ro[i] = gx[i];
            }
            CHECK(bad == 0, "dropout: %zu kept values not scaled by 1/(1-p)", bad);
            check("dropout (same mask twice)", out, ro, n, 0.0);
            if (n >= 1000) CHECK(fabs((double)dropped / n - p) < 0.05, "dropout dropped %zu of %zu", dropped, n);
            dev_reset();
        }
        free(x), free(u), free(dy), free(dx), free(du), free(out), free(gx), free(gu), free(ro), free(rdx), free(rdu);
    }
    /* bias rows and their gradient */
    int N = 17, C = 33;
    float *y = frand((size_t)N * C, 1), *b = frand(C, 1), *db = frand(C, 1);
    double *ry = todbl(y, (size_t)N * C), *rdb = todbl(db, C);
    for (int n = 0; n < N; n++)
        for (int j = 0; j < C; j++) ry[n * C + j] += b[j], rdb[j] += y[n * C + j];
    float *d_y = devf(y, (size_t)N * C), *d_b = devf(b, C), *d_db = devf(db, C);
    BE->bias_grad(d_db, d_y, N, C);
    BE->bias_add_rows(d_y, d_b, N, C);
    host(y, d_y, (size_t)N * C * 4);
    host(db, d_db, (size_t)C * 4);
    check("bias_add_rows", y, ry, (size_t)N * C, TOL_EW);
    check("bias_grad", db, rdb, C, TOL_RED);
    dev_reset();
    free(y), free(b), free(db), free(ry), free(rdb);
}

/* ---- conv1d ------------------------------------------------------------------------------------ */

typedef struct {
    int T_in, T_out, C_in, C_out, k, stride, pad, groups;
    double *x, *w, *b, *g;
} conv_ctx;

static void conv_ref(const conv_ctx *c, double *y) {
    int cig = c->C_in / c->groups, cog = c->C_out / c->groups;
    for (int t = 0; t < c->T_out; t++)
        for (int o = 0; o < c->C_out; o++) {
            int g = o / cog;
            double acc = c->b ? c->b[o] : 0;
            for (int j = 0; j < c->k; j++) {
                long s = (long)t * c->stride + j - c->pad;
                if (s < 0 || s >= c->T_in) continue;
                for (int ci = 0; ci < cig; ci++)
                    acc += c->w[((size_t)o * c->k + j) * cig + ci] * c->x[(size_t)s * c->C_in + g * cig + ci];
            }
            y[(size_t)t * c->C_out + o] = acc;
        }
}
static double conv_loss(void *p) {
    conv_ctx *c = p;
    size_t n = (size_t)c->T_out * c->C_out;
    double *y = malloc(n * sizeof *y), l = 0;
    conv_ref(c, y);
    for (size_t i = 0; i < n; i++) l += y[i] * c->g[i];
    free(y);
    return l;
}

static void t_conv1d(void) {
    /* T_in C_in C_out k stride pad groups */
    /* the last three have one input channel (the CPU's direct path), one of them padded */
    int cases[][7] = {{17, 3, 5, 3, 1, 1, 1},  {33, 4, 6, 5, 2, 2, 2}, {65, 6, 3, 10, 5, 0, 3},
                      {1, 1, 1, 1, 1, 0, 1},    {53, 1, 44, 10, 5, 0, 1}, {30, 1, 19, 7, 2, 3, 1}};
    for (int ci = 0; ci < 6; ci++) {
        conv_ctx c = {0};
        c.T_in = cases[ci][0], c.C_in = cases[ci][1], c.C_out = cases[ci][2], c.k = cases[ci][3];
        c.stride = cases[ci][4], c.pad = cases[ci][5], c.groups = cases[ci][6];
        c.T_out = (c.T_in + 2 * c.pad - c.k) / c.stride + 1;
        int cig = c.C_in / c.groups;
        size_t nx = (size_t)c.T_in * c.C_in, nw = (size_t)c.C_out * c.k * cig, ny = (size_t)c.T_out * c.C_out;
        float *x = frand(nx, 1), *w = frand(nw, 1), *b = frand(c.C_out, 1), *g = frand(ny, 1);
        float *dx = frand(nx, 1), *dw = frand(nw, 1), *db = frand(c.C_out, 1), *y = malloc(ny * 4);
        c.x = todbl(x, nx), c.w = todbl(w, nw), c.b = todbl(b, c.C_out), c.g = todbl(g, ny);
        double *ry = malloc(ny * sizeof *ry);
        conv_ref(&c, ry);
        double *rdx = todbl(dx, nx), *rdw = todbl(dw, nw), *rdb = todbl(db, c.C_out);
        for (size_t i = 0; i < nx; i++) rdx[i] += fd(conv_loss, &c, c.x, i);
        for (size_t i = 0; i < nw; i++) rdw[i] += fd(conv_loss, &c, c.w, i);
        for (int i = 0; i < c.C_out; i++) rdb[i] += fd(conv_loss, &c, c.b, i);
        float *d_x = devf(x, nx), *d_w = devf(w, nw), *d_b = devf(b, c.C_out), *d_g = devf(g, ny), *d_y = devf(y, ny);
        float *d_dx = devf(dx, nx), *d_dw = devf(dw, nw), *d_db = devf(db, c.C_out);
        CHECK(BE->conv1d_fwd(d_y, c.T_out, d_x, c.T_in, c.C_in, c.C_out, c.k, c.stride, c.pad, c.groups, d_w, d_b) == 0,
              "conv1d: %s", m2u_last_error());
        CHECK(BE->conv1d_bwd(d_dx, d_dw, d_db, d_g, c.T_out, d_x, c.T_in, c.C_in, c.C_out, c.k, c.stride, c.pad,
                             c.groups, d_w) == 0,
              "conv1d_bwd: %s", m2u_last_error());
        host(y, d_y, ny * 4);
        host(dx, d_dx, nx * 4);
        host(dw, d_dw, nw * 4);
        host(db, d_db, (size_t)c.C_out * 4);
        check("conv1d_fwd", y, ry, ny, TOL_ATT);
        if (on_cpu) { /* each group's weight packed (cpu/linear_pack.c): its product writes every C_out-th row */
            int cog = c.C_out / c.groups, K = c.k * cig;
            m2u_linear_pack *packs[8] = {0};
            int ok = c.groups <= 8;
            for (int gi = 0; gi < c.groups && ok; gi++)
                ok = (packs[gi] = m2u_linear_pack_new(w + (size_t)gi * cog * K, K, cog)) != NULL;
            float *yp = malloc(ny * 4);
            CHECK(ok && m2u_conv1d_tm_packed(yp, c.T_out, x, c.T_in, c.C_in, c.C_out, c.k, c.stride, c.pad, c.groups,
                                             w, b, packs) == 0,
                  "conv1d packed: %s", m2u_last_error());
            check_only("conv1d_fwd, packed weights", yp, ry, ny, TOL_ATT);
            for (int gi = 0; gi < c.groups; gi++) m2u_linear_pack_free(packs[gi]);
            free(yp);
        }
        check("conv1d_bwd dx (vs finite differences)", dx, rdx, nx, TOL_FD);
        check("conv1d_bwd dw (vs finite differences)", dw, rdw, nw, TOL_FD);
        check("conv1d_bwd db (vs finite differences)", db, rdb, c.C_out, TOL_FD);
        dev_reset();
        free(x), free(w), free(b), free(g), free(dx), free(dw), free(db), free(y);
        free(c.x), free(c.w), free(c.b), free(c.g), free(ry), free(rdx), free(rdw), free(rdb);
    }
}

/* ---- embeddings ----------------------------------------------------------------------------------- */

static void t_embedding(void) {
    int V = 33, C = 17, rows_start = 29, N = 65;
    float *table = frand((size_t)V * C, 1), *extra = frand((size_t)(V - rows_start) * C, 1);
    uint16_t *t16 = malloc((size_t)V * C * 2);
    for (size_t i = 0; i < (size_t)V * C; i++) t16[i] = m2u_f32_to_bf16(table[i]);
    int32_t ids[65];
    for (int n = 0; n < N; n++) ids[n] = n % 5 == 0 ? rows_start + irand(V - rows_start) : irand(V);
    float *x = malloc((size_t)N * C * 4), *dx = frand((size_t)N * C, 1), *dextra = frand((size_t)(V - rows_start) * C, 1);
    double *rx = malloc((size_t)N * C * sizeof *rx), *rde = todbl(dextra, (size_t)(V - rows_start) * C);
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            rx[n * C + c] = ids[n] >= rows_start ? extra[(ids[n] - rows_start) * C + c]
                                                 : m2u_bf16_to_f32(t16[(size_t)ids[n] * C + c]);
            if (ids[n] >= rows_start) rde[(ids[n] - rows_start) * C + c] += dx[n * C + c];
        }
    m2u_mat tab = {.dtype = M2U_BF16, .data = dev(t16, (size_t)V * C * 2), .rows = V, .cols = C};
    int32_t *d_ids = dev(ids, sizeof ids);
    float *d_extra = devf(extra, (size_t)(V - rows_start) * C), *d_x = devf(x, (size_t)N * C),
          *d_dx = devf(dx, (size_t)N * C), *d_de = devf(dextra, (size_t)(V - rows_start) * C);
    BE->embedding_fwd(d_x, d_ids, N, &tab, d_extra, rows_start);
    BE->embedding_bwd(d_de, d_dx, d_ids, N, C, rows_start);
    host(x, d_x, (size_t)N * C * 4);
    host(dextra, d_de, (size_t)(V - rows_start) * C * 4);
    check("embedding_fwd", x, rx, (size_t)N * C, 0.0);
    check("embedding_bwd (scatter-add)", dextra, rde, (size_t)(V - rows_start) * C, TOL_EW);
    dev_reset();
    free(table), free(extra), free(t16), free(x), free(dx), free(dextra), free(rx), free(rde);
}

/* ---- losses and the optimizer --------------------------------------------------------------------- */

static void t_losses(void) {
    int N = 17, V = 65;
    float *logits = frand((size_t)N * V, 5);
    int32_t targets[17];
    for (int n = 0; n < N; n++) targets[n] = n % 4 == 3 ? -100 : irand(V);
    double total = 0;
    int count = 0;
    double *rd = malloc((size_t)N * V * sizeof *rd);
    for (int n = 0; n < N; n++) {
        double mx = -INFINITY, sum = 0;
        for (int i = 0; i < V; i++) mx = fmax(mx, logits[n * V + i]);
        for (int i = 0; i < V; i++) sum += exp(logits[n * V + i] - mx);
        double lse = mx + log(sum);
        for (int i = 0; i < V; i++) {
            int valid = targets[n] >= 0;
            rd[n * V + i] = valid ? exp(logits[n * V + i] - lse) - (i == targets[n]) : 0.0;
        }
        if (targets[n] >= 0) total += lse - logits[n * V + targets[n]], count++;
    }
    float *d_l = devf(logits, (size_t)N * V), *lse = calloc(N, 4), *d_lse = devf(lse, N);
    int32_t *d_t = dev(targets, sizeof targets);
    int nv = 0;
    double ce = BE->cross_entropy(d_l, d_t, N, V, d_lse, &nv, NULL);
    CHECK(nv == count, "cross_entropy: %d counted rows, expected %d", nv, count);
    check_scalar("cross_entropy (loss only)", ce, total / count, TOL_RED);
    /* the gradient buffer starts as the logits, so the ignored rows' zeros are checked */
    float *d_d = devf(logits, (size_t)N * V), *dl = malloc((size_t)N * V * 4);
    nv = 0;
    double ce2 = BE->cross_entropy(d_l, d_t, N, V, d_lse, &nv, d_d);
    CHECK(nv == count && ce2 == ce, "cross_entropy with the gradient: loss %.17g over %d rows, %.17g over %d without",
          ce2, nv, ce, count);
    host(dl, d_d, (size_t)N * V * 4);
    check("cross_entropy gradient (softmax - onehot)", dl, rd, (size_t)N * V, TOL_RED);
    dev_reset();
    /* mse */
    size_t n = 65;
    float *pred = frand(n, 1), *tgt = frand(n, 0.1), *dp = frand(n, 1);
    double m = 0, *rdp = todbl(dp, n);
    for (size_t i = 0; i < n; i++) {
        double d = (double)pred[i] - 10.0 * tgt[i];
        m += d * d;
        rdp[i] += 0.5 * 2 * d / n;
    }
    float *d_p = devf(pred, n), *d_tg = devf(tgt, n), *d_dp = devf(dp, n);
    check_scalar("mse_fwd", BE->mse_fwd(d_p, d_tg, 10.0f, n), m / n, TOL_RED);
    BE->mse_bwd(d_dp, d_p, d_tg, 10.0f, n, 0.5f);
    host(dp, d_dp, n * 4);
    check("mse_bwd", dp, rdp, n, TOL_RED);
    dev_reset();
    free(logits), free(rd), free(lse), free(dl), free(pred), free(tgt), free(dp), free(rdp);
}

static void t_adamw(void) {
    size_t n1 = 33, n2 = 3, n = n1 + n2;
    float *w = frand(n, 1), *g = frand(n, 1);
    m2u_adamw_config cfg = {0.9f, 0.95f, 1e-8f, 0.1f};
    float lr = 1e-2f;
    double *rw = todbl(w, n), *rm = calloc(n, sizeof *rm), *rv = calloc(n, sizeof *rv);
    float *d_w = devf(w, n), *d_g = devf(g, n);
    float *zeros = calloc(n, 4);
    m2u_adamw opt = {devf(zeros, n), devf(zeros, n), n, 0};
    m2u_param params[2] = {{(char *)"w", d_w, d_g, n1, 2, {3, 11}, 1}, {(char *)"b", d_w + n1, d_g + n1, n2, 1, {3, 0}, 0}};
    for (int step = 1; step <= 3; step++) {
        BE->adamw_step(&opt, &cfg, lr, params, 2);
        double bc1 = 1 - pow(cfg.beta1, step), bc2 = 1 - pow(cfg.beta2, step);
        for (size_t i = 0; i < n; i++) {
            if (i < n1) rw[i] *= 1 - (double)lr * cfg.weight_decay;
            rm[i] = cfg.beta1 * rm[i] + (1 - cfg.beta1) * g[i];
            rv[i] = cfg.beta2 * rv[i] + (1 - cfg.beta2) * (double)g[i] * g[i];
            rw[i] -= lr / bc1 * rm[i] / (sqrt(rv[i]) / sqrt(bc2) + cfg.eps);
        }
    }
    host(w, d_w, n * 4);
    check("adamw_step (3 steps)", w, rw, n, TOL_RED);
    double ss = 0;
    for (size_t i = 0; i < n; i++) ss += (double)g[i] * g[i];
    double norm = BE->grad_norm(d_g, n);
    check_scalar("grad_norm", norm, sqrt(ss), TOL_RED);
    BE->clip_grad(d_g, n, norm, 0.5f);
    double coef = 0.5 / (sqrt(ss) + 1e-6), *rg = todbl(g, n);
    for (size_t i = 0; i < n; i++) rg[i] *= coef < 1 ? coef : 1;
    host(g, d_g, n * 4);
    check("clip_grad", g, rg, n, TOL_EW);
    dev_reset();
    free(w), free(g), free(rw), free(rm), free(rv), free(zeros), free(rg);
}

/* ---- network-specific pieces: T5's norm and activations, the post-norm residual backward,
 * M2UGen's gated adapter prefix, ViT/ViViT pixel normalisation and patch im2col ----------------- */

static double kact_d(m2u_kact a, double x) {
    switch (a) {
    case M2U_KACT_RELU: return relu_d(x);
    case M2U_KACT_GELU: return gelu_d(x);
    case M2U_KACT_GELU_TANH: return gelu_tanh_d(x);
    default: return silu_d(x);
    }
}

static void t_net_pieces(void) {
    /* T5 RMSNorm (double square sum, weight last) */
    int shapes[][2] = {{1, 1}, {3, 5}, {17, 65}};
    for (int si = 0; si < 3; si++) {
        int N = shapes[si][0], C = shapes[si][1];
        size_t n = (size_t)N * C;
        float *x = frand(n, 3), *w = frand((size_t)C, 2), *out = malloc(n * 4);
        double *ro = malloc(n * sizeof *ro);
        float eps = 1e-6f;
        for (int r = 0; r < N; r++) {
            double ss = 0;
            for (int j = 0; j < C; j++) ss += (double)x[r * C + j] * x[r * C + j];
            double rs = 1.0 / sqrt(ss / C + eps);
            for (int j = 0; j < C; j++) ro[r * C + j] = w[j] * x[r * C + j] * rs;
        }
        float *d_x = devf(x, n), *d_w = devf(w, (size_t)C), *d_o = devf(out, n);
        BE->rmsnorm_dsum_fwd(d_o, d_x, d_w, N, C, eps);
        host(out, d_o, n * 4);
        check("rmsnorm_dsum_fwd (T5)", out, ro, n, TOL_RED);
        dev_reset();
        free(x), free(w), free(out), free(ro);
    }
    /* activations by name, gated and not; scale; relu_mask */
    size_t sizes[] = {1, 3, 1025};
    for (int si = 0; si < 3; si++) {
        size_t n = sizes[si];
        float *x = frand(n, 4), *g = frand(n, 2), *out = malloc(n * 4);
        double *ro = malloc(n * sizeof *ro);
        const char *names[] = {"relu", "gelu", "gelu_tanh", "silu"};
        for (int ai = 0; ai < 4; ai++)
            for (int gated = 0; gated < 2; gated++) {
                for (size_t i = 0; i < n; i++) ro[i] = kact_d((m2u_kact)ai, x[i]) * (gated ? g[i] : 1.0);
                float *d_x = devf(x, n), *d_g = devf(g, n);
                BE->act_gated_fwd(d_x, gated ? d_g : NULL, n, (m2u_kact)ai);
                host(out, d_x, n * 4);
                char nm[64];
                snprintf(nm, sizeof nm, "act_gated_fwd %s%s", names[ai], gated ? " * gate" : "");
                check(nm, out, ro, n, TOL_EW);
                dev_reset();
            }
        for (size_t i = 0; i < n; i++) ro[i] = -0.37 * (double)x[i];
        float *d_x = devf(x, n), *d_o = devf(out, n);
        BE->scale(d_o, d_x, -0.37f, n);
        host(out, d_o, n * 4);
        check("scale", out, ro, n, TOL_EW);
        /* zero: every word of out (non-zero after scale) back to +0 */
        BE->zero(d_o, n);
        host(out, d_o, n * 4);
        size_t nz = 0;
        for (size_t i = 0; i < n; i++) nz += memcmp(&out[i], &(float){0.0f}, sizeof(float)) != 0;
        CHECK(nz == 0, "zero (n = %zu): %zu words are not +0", n, nz);
        /* relu_mask: y has zeros, negatives and a NaN-free mix; dx kept only where y > 0 */
        for (size_t i = 0; i < n; i++) g[i] = i % 4 == 1 ? 0.0f : g[i];
        for (size_t i = 0; i < n; i++) ro[i] = g[i] > 0 ? x[i] : 0.0;
        float *d_y = devf(g, n);
        BE->relu_mask(d_x, d_y, n);
        host(out, d_x, n * 4);
        check("relu_mask", out, ro, n, 0.0);
        dev_reset();
        free(x), free(g), free(out), free(ro);
    }
    { /* zero across several of the CPU's 16384-word blocks, the last one partial */
        size_t n = 3 * 16384 + 5, nz = 0;
        float *x = frand(n, 1);
        float *d_x = devf(x, n);
        BE->zero(d_x, n);
        host(x, d_x, n * 4);
        for (size_t i = 0; i < n; i++) nz += memcmp(&x[i], &(float){0.0f}, sizeof(float)) != 0;
        CHECK(nz == 0, "zero (n = %zu): %zu words are not +0", n, nz);
        dev_reset();
        free(x);
    }
    /* add_scalar, sum (double, in order) */
    for (int si = 0; si < 3; si++) {
        size_t n = sizes[si];
        float *x = frand(n, 3), *out = malloc(n * 4);
        double *ro = malloc(n * sizeof *ro), rs = 0;
        for (size_t i = 0; i < n; i++) ro[i] = (double)x[i] + 0.625, rs += x[i];
        float *d_x = devf(x, n);
        check_scalar("sum", BE->sum(d_x, n), rs, TOL_RED);
        BE->add_scalar(d_x, 0.625f, n);
        host(out, d_x, n * 4);
        check("add_scalar", out, ro, n, TOL_EW);
        dev_reset();
        free(x), free(out), free(ro);
    }
    /* zero-mean unit-variance (MERT's input) and per-channel statistics over time (its group norm) */
    long wn[] = {1, 7, 4097};
    for (int si = 0; si < 3; si++) {
        long n = wn[si];
        float *x = frand((size_t)n, 0.8), *out = malloc((size_t)n * 4);
        for (long i = 0; i < n; i++) x[i] += 0.1f; /* a mean to remove */
        double *ro = malloc((size_t)n * sizeof *ro), m = 0, v = 0;
        for (long i = 0; i < n; i++) m += x[i];
        m /= n;
        for (long i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
        v /= n;
        for (long i = 0; i < n; i++) ro[i] = (x[i] - m) / sqrt(v + 1e-7);
        float *d_x = devf(x, (size_t)n), *d_o = devf(out, (size_t)n);
        BE->zero_mean_unit_var(d_o, d_x, n, 1e-7);
        host(out, d_o, (size_t)n * 4);
        /* n = 1: x - mean is 0 exactly, out 0 */
        check("zero_mean_unit_var", out, ro, (size_t)n, TOL_RED);
        dev_reset();
        free(x), free(out), free(ro);
    }
    int cs[][2] = {{1, 1}, {3, 5}, {1025, 17}}; /* T C */
    for (int si = 0; si < 3; si++) {
        int T = cs[si][0], C = cs[si][1];
        float *x = frand((size_t)T * C, 2), *mean = malloc((size_t)C * 4), *rstd = malloc((size_t)C * 4);
        double *rm = calloc((size_t)C, sizeof *rm), *rr = calloc((size_t)C, sizeof *rr), *work = malloc(2 * (size_t)C * 8);
        for (int c = 0; c < C; c++) {
            double m = 0, v = 0;
            for (int t = 0; t < T; t++) m += x[(size_t)t * C + c];
            m /= T;
            for (int t = 0; t < T; t++) v += (x[(size_t)t * C + c] - m) * (x[(size_t)t * C + c] - m);
            rm[c] = m, rr[c] = 1.0 / sqrt(v / T + 1e-5);
        }
        for (int c = 0; c < 2 * C; c++) work[c] = 1e30; /* the kernel clears its scratch */
        float *d_x = devf(x, (size_t)T * C), *d_m = devf(mean, (size_t)C), *d_r = devf(rstd, (size_t)C);
        double *d_w = dev(work, 2 * (size_t)C * 8);
        BE->channel_stats(d_m, d_r, d_w, d_x, T, C, 1e-5);
        host(mean, d_m, (size_t)C * 4);
        host(rstd, d_r, (size_t)C * 4);
        check("channel_stats mean", mean, rm, (size_t)C, TOL_RED);
        check("channel_stats rstd", rstd, rr, (size_t)C, TOL_RED);
        dev_reset();
        free(x), free(mean), free(rstd), free(rm), free(rr), free(work);
    }
    /* post-norm residual backward: A = LayerNorm'(r)^T G (overwritten), dw/db accumulate, G = A */
    int lshapes[][2] = {{1, 1}, {5, 3}, {17, 33}};
    for (int si = 0; si < 3; si++) {
        int N = lshapes[si][0], C = lshapes[si][1];
        size_t n = (size_t)N * C;
        float *r = frand(n, 2), *w = frand((size_t)C, 1), *G = frand(n, 1), *A = frand(n, 5);
        float *dw = frand((size_t)C, 1), *db = frand((size_t)C, 1), *mean = malloc((size_t)N * 4),
              *rstd = malloc((size_t)N * 4);
        double *rA = malloc(n * sizeof *rA), *rdw = todbl(dw, (size_t)C), *rdb = todbl(db, (size_t)C);
        for (int i = 0; i < N; i++) {
            double m = 0, v = 0;
            for (int j = 0; j < C; j++) m += r[i * C + j];
            m /= C;
            for (int j = 0; j < C; j++) v += (r[i * C + j] - m) * (r[i * C + j] - m);
            mean[i] = (float)m, rstd[i] = (float)(1.0 / sqrt(v / C + 1e-5));
            double mg = 0, mgx = 0;
            for (int j = 0; j < C; j++) {
                double xh = (r[i * C + j] - (double)mean[i]) * rstd[i], gw = (double)G[i * C + j] * w[j];
                mg += gw, mgx += gw * xh;
                rdw[j] += (double)G[i * C + j] * xh, rdb[j] += G[i * C + j];
            }
            mg /= C, mgx /= C;
            for (int j = 0; j < C; j++) {
                double xh = (r[i * C + j] - (double)mean[i]) * rstd[i], gw = (double)G[i * C + j] * w[j];
                rA[i * C + j] = rstd[i] * (gw - mg - xh * mgx);
            }
        }
        float *d_G = devf(G, n), *d_A = devf(A, n), *d_dw = devf(dw, (size_t)C), *d_db = devf(db, (size_t)C),
              *d_r = devf(r, n), *d_w = devf(w, (size_t)C), *d_m = devf(mean, (size_t)N), *d_s = devf(rstd, (size_t)N);
        BE->layernorm_residual_bwd(d_G, d_A, d_dw, d_db, d_r, d_w, d_m, d_s, N, C);
        host(A, d_A, n * 4);
        host(G, d_G, n * 4);
        host(dw, d_dw, (size_t)C * 4);
        host(db, d_db, (size_t)C * 4);
        check("layernorm_residual_bwd A", A, rA, n, TOL_RED);
        check("layernorm_residual_bwd G = A", G, rA, n, TOL_RED);
        check("layernorm_residual_bwd dw", dw, rdw, (size_t)C, TOL_RED);
        check("layernorm_residual_bwd db", db, rdb, (size_t)C, TOL_RED);
        dev_reset();
        free(r), free(w), free(G), free(A), free(dw), free(db), free(mean), free(rstd), free(rA), free(rdw), free(rdb);
    }
    /* gated adapter prefix: att[b,t,h] += tanh(gate[h]) av[b, kv(h)], and its backward */
    int gshapes[][5] = {{1, 1, 1, 1, 1}, {3, 5, 6, 2, 5}, {2, 17, 4, 4, 3}}; /* B T H KV hd */
    for (int si = 0; si < 3; si++) {
        int B = gshapes[si][0], T = gshapes[si][1], H = gshapes[si][2], KV = gshapes[si][3], hd = gshapes[si][4];
        int group = H / KV, kvd = KV * hd, qd = H * hd;
        size_t na = (size_t)B * T * qd, nv = (size_t)B * kvd;
        float *att = frand(na, 1), *av = frand(nv, 1), *gate = frand((size_t)H, 1.5), *datt = frand(na, 1);
        float *dgate = frand((size_t)H, 1), *dav = frand(nv, 1);
        double *ratt = todbl(att, na), *rdg = todbl(dgate, (size_t)H), *rdav = todbl(dav, nv);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                for (int h = 0; h < H; h++) {
                    double tg = tanh((double)gate[h]);
                    for (int d = 0; d < hd; d++) {
                        size_t ia = ((size_t)b * T + t) * qd + (size_t)h * hd + d, iv = (size_t)b * kvd + (h / group) * hd + d;
                        ratt[ia] += tg * av[iv];
                        rdg[h] += (1 - tg * tg) * datt[ia] * av[iv];
                        rdav[iv] += tg * datt[ia];
                    }
                }
        float *d_att = devf(att, na), *d_av = devf(av, nv), *d_g = devf(gate, (size_t)H), *d_datt = devf(datt, na),
              *d_dg = devf(dgate, (size_t)H), *d_dav = devf(dav, nv);
        BE->head_gate_add(d_att, d_av, d_g, B, T, H, KV, hd);
        BE->head_gate_bwd(d_dg, d_dav, d_datt, d_av, d_g, B, T, H, KV, hd);
        host(att, d_att, na * 4);
        host(dgate, d_dg, (size_t)H * 4);
        host(dav, d_dav, nv * 4);
        check("head_gate_add", att, ratt, na, TOL_EW);
        check("head_gate_bwd dgate", dgate, rdg, (size_t)H, TOL_RED);
        check("head_gate_bwd dav", dav, rdav, nv, TOL_RED);
        dev_reset();
        free(att), free(av), free(gate), free(datt), free(dgate), free(dav), free(ratt), free(rdg), free(rdav);
    }
    /* pixel normalisation: [frames][HW][3] uint8 -> [frames][3][HW] */
    struct {
        int frames, HW, rescale, offset, normalize;
    } pc[] = {{1, 1, 1, 0, 1}, {3, 17, 1, 1, 0}, {2, 35, 0, 0, 1}, {1, 5, 1, 1, 1}};
    const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
    for (int ci = 0; ci < 4; ci++) {
        size_t HW = (size_t)pc[ci].HW, n = (size_t)pc[ci].frames * HW * 3;
        uint8_t *rgb = malloc(n);
        for (size_t i = 0; i < n; i++) rgb[i] = (uint8_t)(i == 0 ? 255 : i == 1 ? 0 : irand(256));
        float *px = malloc(n * 4);
        double *rp = malloc(n * sizeof *rp), rf = 1.0 / 127.5;
        for (int f = 0; f < pc[ci].frames; f++)
            for (size_t p = 0; p < HW; p++)
                for (int ch = 0; ch < 3; ch++) {
                    double x = rgb[((size_t)f * HW + p) * 3 + ch];
                    if (pc[ci].rescale) x *= rf;
                    if (pc[ci].offset) x -= 1;
                    if (pc[ci].normalize) x = (x - mean[ch]) / stdv[ch];
                    rp[((size_t)f * 3 + ch) * HW + p] = x;
                }
        uint8_t *d_rgb = dev(rgb, n);
        float *d_px = devf(px, n);
        BE->pixels_normalize(d_px, d_rgb, pc[ci].frames, HW, pc[ci].rescale, rf, pc[ci].offset, pc[ci].normalize, mean,
                             stdv);
        host(px, d_px, n * 4);
        check("pixels_normalize", px, rp, n, TOL_EW);
        dev_reset();
        free(rgb), free(px), free(rp);
    }
    /* patch im2col, trailing pixels / frames dropped: exact copies */
    int ic[][7] = {{1, 1, 1, 1, 1, 1, 1}, {3, 7, 9, 2, 3, 2, 5}, {3, 6, 6, 1, 2, 3, 1}}; /* C H W pt ph pw frames */
    for (int ci = 0; ci < 3; ci++) {
        int C = ic[ci][0], Hh = ic[ci][1], W = ic[ci][2], pt = ic[ci][3], ph = ic[ci][4], pw = ic[ci][5],
            F = ic[ci][6];
        int gt = F / pt, gh = Hh / ph, gw = W / pw, P = gt * gh * gw, K = C * pt * ph * pw;
        size_t npx = (size_t)F * C * Hh * W, nc = (size_t)P * K;
        float *px = frand(npx, 1), *col = malloc(nc * 4);
        double *rc = malloc(nc * sizeof *rc);
        for (int p = 0; p < P; p++) {
            int pgt = p / (gh * gw), pgy = (p / gw) % gh, pgx = p % gw;
            for (int ch = 0; ch < C; ch++)
                for (int dt = 0; dt < pt; dt++)
                    for (int dy = 0; dy < ph; dy++)
                        for (int dx = 0; dx < pw; dx++)
                            rc[(size_t)p * K + ((ch * pt + dt) * ph + dy) * pw + dx] =
                                px[(((size_t)(pgt * pt + dt) * C + ch) * Hh + pgy * ph + dy) * W + pgx * pw + dx];
        }
        float *d_px = devf(px, npx), *d_col = devf(col, nc);
        BE->patch_im2col(d_col, d_px, C, Hh, W, pt, ph, pw, gt, gh, gw);
        host(col, d_col, nc * 4);
        check("patch_im2col", col, rc, nc, 0.0);
        dev_reset();
        free(px), free(col), free(rc);
    }
}

/* ---- buffers ---------------------------------------------------------------------------------------- */

static void t_buffers(void) {
    m2u_buffer a = {0}, b = {0};
    CHECK(BE->buf_alloc(&a, 64) == 0 && a.dev == BE->dev && a.bytes == 64, "buf_alloc");
    CHECK(BE->buf_alloc(&b, 64) == 0, "buf_alloc");
    char src[64], dst[64];
    for (int i = 0; i < 64; i++) src[i] = (char)i;
    CHECK(BE->upload(&a, 0, src, 64) == 0, "upload");
    CHECK(BE->copy(&b, 8, &a, 0, 32) == 0, "copy");
    memset(dst, 0, sizeof dst);
    CHECK(BE->download(dst, &b, 8, 32) == 0 && memcmp(dst, src, 32) == 0, "download after copy");
    CHECK(BE->upload(&a, 60, src, 8) != 0, "an upload past the end must fail");
    BE->buf_free(&a);
    BE->buf_free(&b);
    CHECK(a.data == NULL && b.data == NULL, "buf_free resets");
}

/* ---- FFT (host-only: the front ends run it on the CPU) -------------------------------------------- */

/* fft.c's arithmetic written out one element at a time: the radix-2 butterflies in the same
 * order, each product and sum rounded on its own, twiddles from the same cos / sin calls.  The
 * vectorised transform (2 doubles per vector, 4 on CPUs with AVX; stages fused two per pass
 * up to 256, the larger ones alone; the last one into the outputs) must give these bits
 * exactly: the music analysis and the front ends are pinned to them. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif
static void fft_scalar_ref(int n, const double *x, double *re, double *im) {
    const double two_pi = 6.28318530717958647692;
    int bits = 0;
    while ((1 << bits) < n) bits++;
    for (int i = 0; i < n; i++) {
        int r = 0;
        for (int b = 0; b < bits; b++)
            if (i & (1 << b)) r |= 1 << (bits - 1 - b);
        re[i] = x[r];
        im[i] = 0.0;
    }
    for (int h = 1; h < n; h <<= 1)
        for (int i = 0; i < n; i += 2 * h)
            for (int k = 0; k < h; k++) {
                int t = k * (n / (2 * h));
                double wr = cos(two_pi * t / n), wi = -sin(two_pi * t / n);
                double *ra = re + i + k, *ia = im + i + k, *rb = ra + h, *ib = ia + h;
                double tr = *rb * wr - *ib * wi, ti = *rb * wi + *ib * wr;
                *rb = *ra - tr;
                *ib = *ia - ti;
                *ra = *ra + tr;
                *ia = *ia + ti;
            }
}
#ifdef __clang__
#pragma STDC FP_CONTRACT ON
#endif

static void t_fft(void) {
    const int sizes[] = {2, 4, 8, 16, 32, 512, 1024, 2048, 4096};
    for (int si = 0; si < 9; si++) {
        int n = sizes[si];
        m2u_fft *p = m2u_fft_new(n);
        CHECK(p && m2u_fft_size(p) == n, "fft_new %d", n);
        if (!p) continue;
        double *x = malloc(n * sizeof(double)), *work = malloc(2 * n * sizeof(double));
        double *re = malloc((n / 2 + 1) * sizeof(double)), *im = malloc((n / 2 + 1) * sizeof(double));
        for (int i = 0; i < n; i++) x[i] = urand();
        m2u_fft_real(p, x, re, im, work);
        double err = 0;
        for (int k = 0; k <= n / 2; k++) { /* direct DFT in long double */
            long double sr = 0, sim = 0;
            for (int j = 0; j < n; j++) {
                long double a = -2.0L * 3.14159265358979323846264338L * (long double)((long long)j * k % n) / n;
                sr += x[j] * cosl(a);
                sim += x[j] * sinl(a);
            }
            double e = fabs((double)(re[k] - sr)) + fabs((double)(im[k] - sim));
            err = t_worse(err, e);
        }
        CHECK(err < 1e-12 * n, "fft %d: max error %.3g against a direct DFT", n, err);
        double *rr = malloc(n * sizeof(double)), *ri = malloc(n * sizeof(double));
        fft_scalar_ref(n, x, rr, ri);
        int bad = -1;
        for (int k = 0; k <= n / 2 && bad < 0; k++)
            if (memcmp(&rr[k], &re[k], sizeof(double)) || memcmp(&ri[k], &im[k], sizeof(double))) bad = k;
        CHECK(bad < 0, "fft %d: bin %d is %.17g%+.17gi, the scalar butterflies give %.17g%+.17gi", n, bad,
              bad < 0 ? 0 : re[bad], bad < 0 ? 0 : im[bad], bad < 0 ? 0 : rr[bad], bad < 0 ? 0 : ri[bad]);
        free(rr), free(ri);
        m2u_fft_free(p);
        free(x), free(work), free(re), free(im);
    }
    CHECK(m2u_fft_new(12) == NULL && m2u_fft_new(0) == NULL, "fft_new refuses a size that is not a power of two");
}

/* ---- GELU's erf: PyTorch's Abramowitz & Stegun 7.1.26 (kernels/cpu/vmath.h) ------------------- */

static void t_gelu_dense(void) {
    /* the bound of the formula (|erf error| <= 1.5e-7, so GELU's <= 0.75e-7 |x|) plus float
     * rounding in the evaluation, counted in ulps of x/2 (not of the result: for negative x,
     * 1 + erf cancels in float, in PyTorch's kernel as here, so tiny results carry an absolute
     * error of a few ulps of x/2) */
    const int n = 120001;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    for (int i = 0; i < n; i++) x[i] = (float)(-6.0 + 12.0 * i / (n - 1));
    m2u_gelu_fwd(y, x, (size_t)n);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double ex = gelu_d(x[i]), h = fabs(0.5 * x[i]);
        double ulp = fabs((double)nextafterf((float)h, INFINITY) - (float)h);
        double e = (fabs(y[i] - ex) - 0.75e-7 * fabs(x[i])) / (ulp > 0 ? ulp : 1e-45);
        worst = t_worse(worst, e);
    }
    printf("  gelu: %.2f ulp of x/2 beyond the A&S bound at most on [-6, 6]\n", worst);
    CHECK(worst <= 8.0, "gelu over [-6, 6]: %.3g ulp of x/2 beyond the A&S bound (measured: 5.6)", worst);
    /* a NaN stays NaN (a broken activation must reach the loss, not vanish) */
    x[0] = NAN;
    m2u_gelu_fwd(y, x, 1);
    CHECK(y[0] != y[0], "gelu(NaN) = %g, not NaN", y[0]);
    /* the vectorised path (vmath_avx2.h where the CPU has AVX2) gives vmath.h's scalar bits, on
     * [-12, 12], the specials and a length that is not a multiple of 8 (GCC; clang contracts the
     * scalar version's products and sums, so there the bound above is what holds) */
    for (int i = 0; i < n; i++) x[i] = (float)(-12.0 + 24.0 * i / (n - 1));
    x[1] = 0.0f, x[2] = -0.0f, x[3] = INFINITY, x[4] = -INFINITY, x[5] = 1e-30f, x[6] = -1e-30f, x[7] = 80.0f;
    x[8] = -80.0f, x[9] = FLT_MIN, x[10] = -FLT_MAX;
    m2u_gelu_fwd(y, x, (size_t)n - 3);
    int bad = -1;
    for (int i = 0; i < n - 3 && bad < 0; i++) {
        float r = m2u_vgelu(x[i]);
#ifdef __clang__
        if (!(r == y[i] || (r != r && y[i] != y[i]) || fabsf(r - y[i]) <= 1e-6f * (1.0f + fabsf(r)))) bad = i;
#else
        if (memcmp(&r, &y[i], sizeof r) != 0) bad = i;
#endif
    }
    CHECK(bad < 0, "gelu(%.9g) = %.9g, vmath's m2u_vgelu %.9g", bad < 0 ? 0.0 : x[bad], bad < 0 ? 0.0 : y[bad],
          bad < 0 ? 0.0 : m2u_vgelu(x[bad]));
    free(x), free(y);
}

/* MERT's GroupNorm affine and GELU in one pass: the same bits as the two passes, for blocks
 * of rows that end inside x and for rows wider than one block. */
static void t_channel_affine_gelu(void) {
    int shapes[][2] = {{1000, 40}, {3, 20000}, {1, 1}};
    for (int si = 0; si < 3; si++) {
        int N = shapes[si][0], C = shapes[si][1];
        size_t n = (size_t)N * C;
        float *x = frand(n, 3), *y = malloc(n * sizeof(float)), *mean = frand((size_t)C, 1), *rstd = frand((size_t)C, 1),
              *w = frand((size_t)C, 1), *b = frand((size_t)C, 1);
        memcpy(y, x, n * sizeof(float));
        m2u_channel_affine(x, N, C, mean, rstd, w, b);
        m2u_gelu_fwd(x, x, n);
        m2u_channel_affine_gelu(y, N, C, mean, rstd, w, b);
        size_t bad = n;
        for (size_t i = 0; i < n && bad == n; i++)
            if (memcmp(&x[i], &y[i], sizeof(float))) bad = i;
        CHECK(bad == n, "channel_affine_gelu %d x %d: element %zu is %.9g, the two passes give %.9g", N, C, bad,
              bad < n ? y[bad] : 0.0, bad < n ? x[bad] : 0.0);
        free(x), free(y), free(mean), free(rstd), free(w), free(b);
    }
}

/* SwiGLU and the cross-entropy on the CPU: vmath's exponential, vectorised where the CPU has
 * AVX2, with the same bits as the scalar formulas written out here (so a run gives the same
 * numbers on every x86-64 CPU), over lengths that leave tails, the specials, and a
 * LLaMA-sized vocabulary: every float output (SwiGLU's three, the rows' lse, the logits'
 * gradient) bit for bit.  The double sums' order shows only in rare last bits of the loss,
 * which these rows do not reach.  GCC only (clang contracts the scalar products into FMAs). */
static float sigmoid_ref(float g) {
    float e = m2u_vexpf_neg(-fabsf(g)), d = 1.0f / (1.0f + e);
    return g >= 0.0f ? d : e * d;
}

static int same_bits(float a, float b) { return !memcmp(&a, &b, sizeof a) || (a != a && b != b); }

static void t_swiglu_ce_bits(void) {
#ifndef __clang__
    enum { N = 3 * 4096 + 13 };
    float *g = malloc(N * sizeof *g), *u = frand(N, 1), *dy = frand(N, 1), *o = malloc(N * sizeof *o);
    float *dg = frand(N, 1), *du = frand(N, 1), *dg0 = fdup(dg, N), *du0 = fdup(du, N);
    for (int i = 0; i < N; i++) g[i] = (float)(-30.0 + 60.0 * i / (N - 1));
    g[5] = 0.0f, g[6] = -0.0f, g[7] = NAN, g[8] = INFINITY, g[9] = -INFINITY, g[10] = 88.0f, g[11] = -88.0f;
    g[N - 1] = -1e-30f;
    m2u_swiglu_fwd(o, g, u, N);
    m2u_swiglu_bwd(dg, du, dy, g, u, N);
    int bad = -1;
    for (int i = 0; i < N && bad < 0; i++) {
        float sg = sigmoid_ref(g[i]), silu = g[i] * sg;
        if (!same_bits(o[i], g[i] * sg * u[i]) || !same_bits(du[i], du0[i] + dy[i] * silu) ||
            !same_bits(dg[i], dg0[i] + dy[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg))))
            bad = i;
    }
    CHECK(bad < 0, "swiglu at g = %.9g: not the scalar formula's bits", bad < 0 ? 0.0 : g[bad]);
    double worst = 0; /* and the sigmoid itself against double */
    for (int i = 12; i < N - 1; i++) {
        double r = 1.0 / (1.0 + exp(-(double)g[i]));
        double e = fabs(sigmoid_ref(g[i]) - r) / r;
        worst = t_worse(worst, e);
    }
    CHECK(worst <= 1e-6, "sigmoid on [-30, 30]: relative error %.3g", worst);
    free(g), free(u), free(dy), free(o), free(dg), free(du), free(dg0), free(du0);

    enum { R = 16 };
    /* 32005: a 5-value tail; 32013: one more group of 8 past the last 16 (the AVX-512 path) */
    for (int vi = 0; vi < 2; vi++) {
        const int V = vi ? 32013 : 32005;
        float *l = frand((size_t)R * V, 8), *lse = malloc(R * sizeof *lse), *d = malloc((size_t)R * V * sizeof *d);
        l[7] = 40.0f, l[V + 3] = -200.0f;
        int32_t tg[R] = {7, 0, 0, 5, 9, 11, 13, 100, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000};
        tg[2] = V - 1;
        int nv = 0, nv0 = 0;
        float lse0[R];
        double ce0 = m2u_cross_entropy(l, tg, R, V, lse0, &nv0, NULL); /* the loss only */
        double ce = m2u_cross_entropy(l, tg, R, V, lse, &nv, d);
        CHECK(ce0 == ce && nv0 == nv && !memcmp(lse0, lse, sizeof lse0),
              "cross-entropy: the loss or log-sum-exps differ with the gradient (%.17g) and without (%.17g)", ce, ce0);
        double total = 0;
        int bad = -1;
        for (int r = 0; r < R; r++) {
            const float *lr = l + (size_t)r * V;
            float mx = -INFINITY;
            for (int i = 0; i < V; i++) mx = lr[i] > mx ? lr[i] : mx;
            /* blocks of 16: their two groups of 8 added in float, then into 8 double lanes; a last
               group of 8 alone; the lanes pairwise; the tail in order */
            double acc[8] = {0};
            int V16 = V - V % 16, V8 = V - V % 8;
            for (int i = 0; i < V16; i += 16)
                for (int j = 0; j < 8; j++)
                    acc[j] += (double)(m2u_vexpf_neg(lr[i + j] - mx) + m2u_vexpf_neg(lr[i + 8 + j] - mx));
            for (int i = V16; i < V8; i += 8)
                for (int j = 0; j < 8; j++) acc[j] += (double)m2u_vexpf_neg(lr[i + j] - mx);
            double sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
            for (int i = V8; i < V; i++) sum += (double)m2u_vexpf_neg(lr[i] - mx);
            double rl = (double)mx + log(sum);
            total += rl - (double)lr[tg[r]];
            if (!same_bits(lse[r], (float)rl)) bad = r;
            float inv = (float)(1.0 / sum);
            for (int i = 0; i < V && bad < 0; i++) {
                float want = m2u_vexpf_neg(lr[i] - mx) * inv;
                if (i == tg[r]) want -= 1.0f;
                if (!same_bits(d[(size_t)r * V + i], want)) bad = r;
            }
        }
        /* every float above bit for bit; the mean loss is a double sum over rows whose order is the
         * kernel's (threads), so it is held to 1e-14 relative, not to equality: an input stream
         * shifted by other cases once gave a last-bit difference there */
        CHECK(bad < 0 && nv == R && fabs(ce - total / R) <= 1e-14 * fabs(total / R),
              "cross-entropy row %d: not the scalar order's bits (mean %.17g, scalar %.17g)", bad, ce, total / R);
        free(l), free(lse), free(d);
    }
    printf("  swiglu, cross-entropy: the scalar formulas' bits (sigmoid within %.2g of double; the mean loss within 1e-14)\n", worst);
#endif
}

/* m2u_log1p_scaled (vmath.h's m2u_vlog1p): within 1 ulp of the exact log1p (long double's) over
 * 2^-50 .. 2^30 and at the edges of its branches (sqrt(2) - 1, the exponent steps) and of the
 * doubles (DBL_MAX), 0 at 0, +inf at +inf, NaN for NaN; and the scale applied before the logarithm. */
static void t_vlog1p(void) {
    enum { N = 200003 };
    double *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++) x[i] = ldexp(1.0 + (double)(i % 997) / 997.0, -50 + (int)((long)i * 80 / N));
    const double edges[] = {0.0, 0.41421353816986084, 0x1.a827999fcef31p-2, 0x1.a827ap-2, 1.0, 3.0, 0x1.fffffffffffffp+0,
                            1e-300, 5e-324, 1e300, DBL_MAX, 1.795e308};
    for (int i = 0; i < 10; i++) x[i] = edges[i];
    x[10] = INFINITY, x[11] = NAN, x[12] = edges[10], x[13] = edges[11];
    m2u_log1p_scaled(y, x, N, 1.0);
    double worst = 0;
    int bad = -1;
    for (int i = 0; i < N && bad < 0; i++) {
        if (i == 10) {
            if (!(isinf(y[i]) && y[i] > 0)) bad = i;
            continue;
        }
        if (i == 11) {
            if (y[i] == y[i]) bad = i;
            continue;
        }
        long double r = log1pl((long double)x[i]);
        double ulp = r == 0 ? 5e-324 : nextafter(fabs((double)r), INFINITY) - fabs((double)r);
        double e = (double)(fabsl((long double)y[i] - r) / ulp);
        worst = t_worse(worst, e);
        if (e > 1.0) bad = i;
    }
    CHECK(bad < 0, "vlog1p(%.17g) = %.17g, log1pl %.17Lg", bad < 0 ? 0.0 : x[bad], bad < 0 ? 0.0 : y[bad],
          bad < 0 ? 0.0L : log1pl((long double)x[bad]));
    double s[3] = {0.5, 2.0, 1e-3}, t[3];
    m2u_log1p_scaled(t, s, 3, 1000.0);
    for (int i = 0; i < 3; i++)
        CHECK(fabs(t[i] - log1p(1000.0 * s[i])) <= 2e-16 * log1p(1000.0 * s[i]), "log1p_scaled: %.17g, %.17g", t[i],
              log1p(1000.0 * s[i]));
    printf("  vlog1p: %.2f ulp at most from the exact log1p\n", worst);
    /* and m2u_log10_array over 2^-60 .. 2^40, 1, 10, 100 and the branch edge sqrt(2) exact */
    for (int i = 0; i < N; i++) x[i] = ldexp(1.0 + (double)(i % 991) / 991.0, -60 + (int)((long)i * 100 / N));
    x[0] = 1.0, x[1] = 10.0, x[2] = 100.0, x[3] = 0x1.6a09e667f3bcdp+0, x[4] = 0x1.6a09e667f3bccp+0, x[5] = 1e-10;
    m2u_log10_array(y, x, N);
    double worst10 = 0;
    bad = -1;
    for (int i = 0; i < N && bad < 0; i++) {
        long double r = log10l((long double)x[i]);
        double ulp = r == 0 ? 5e-324 : nextafter(fabs((double)r), INFINITY) - fabs((double)r);
        double e = (double)(fabsl((long double)y[i] - r) / ulp);
        worst10 = t_worse(worst10, e);
        if (e > 1.0) bad = i;
    }
    CHECK(bad < 0 && y[0] == 0.0 && y[1] == 1.0 && y[2] == 2.0, "vlog10(%.17g) = %.17g, log10l %.17Lg",
          bad < 0 ? 0.0 : x[bad], bad < 0 ? 0.0 : y[bad], bad < 0 ? 0.0L : log10l((long double)x[bad]));
    printf("  vlog10: %.2f ulp at most from the exact log10; 1, 10, 100 exact\n", worst10);
    free(x), free(y);
}

/* The softmax's float exponential (vmath.h): within 2 ulp of glibc's expf over its normal range,
 * 0 below -87, exactly 1 at 0, NaN kept. */
static void t_vexpf(void) {
    const int n = 400001;
    double worst = 0;
    for (int i = 0; i < n; i++) {
        float v = (float)(-87.0 * i / (n - 1));
        float got = m2u_vexpf_neg(v), ref = expf(v);
        double ulp = fabs((double)nextafterf(ref, INFINITY) - ref);
        double e = fabs((double)got - ref) / ulp;
        worst = t_worse(worst, e);
    }
    CHECK(worst <= 2.0, "vexpf over [-87, 0]: %.2f ulp from expf", worst);
    CHECK(m2u_vexpf_neg(0.0f) == 1.0f, "vexpf(0) = %.9g", m2u_vexpf_neg(0.0f));
    CHECK(m2u_vexpf_neg(-87.5f) == 0.0f && m2u_vexpf_neg(-INFINITY) == 0.0f, "vexpf below -87 is not 0");
    float nan = NAN;
    CHECK(m2u_vexpf_neg(nan) != m2u_vexpf_neg(nan), "vexpf(NaN) is not NaN");
    printf("  vexpf: %.2f ulp at most from expf on [-87, 0]\n", worst);
#ifdef M2U_HAVE_ATTN_TILES
    /* the attention tiles' 8-lane copy: the same bits (GCC does not contract the C version's
     * products and sums under -std=c11; clang would, so there only the same bound) */
    if (m2u_attn_tiles_ok(8)) {
        enum { N = 4099 };
        float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
        for (int i = 0; i < N; i++) x[i] = (float)(-90.0 * i / (N - 8));
        x[N - 7] = 0.0f, x[N - 6] = -0.0f, x[N - 5] = NAN, x[N - 4] = -INFINITY, x[N - 3] = -87.0f;
        x[N - 2] = -86.99999f, x[N - 1] = -1e-30f;
        m2u_attn_tile_vexpf(y, x, N);
        int bad = -1;
        for (int i = 0; i < N && bad < 0; i++) {
            float r = m2u_vexpf_neg(x[i]);
#ifdef __clang__
            if (!(r == y[i] || fabsf(r - y[i]) <= 4 * FLT_EPSILON * r || (r != r && y[i] != y[i]))) bad = i;
#else
            if (memcmp(&r, &y[i], sizeof r) != 0) bad = i;
#endif
        }
        CHECK(bad < 0, "tiles' vexpf(%.9g) = %.9g, vmath's %.9g", bad < 0 ? 0.0 : x[bad], bad < 0 ? 0.0 : y[bad],
              bad < 0 ? 0.0 : m2u_vexpf_neg(x[bad]));
        free(x), free(y);
    } else
        printf("  vexpf: no AVX2 + FMA here, the attention tiles are not used\n");
#endif
}

#ifdef M2U_HAVE_ATTN_TILES
/* The attention tiles (8 lanes, and 16 where the CPU has AVX-512: 12 rows at a time) against
 * fmaf chains in the tiles' order: each score one chain over the dimensions then the scale,
 * each output one chain over the keys then the row factor, bit for bit.  31 rows: the 12-row
 * tiles twice, a 6-row group and a single row; 37 keys: a partial panel; hd 24: 8-wide V. */
static void t_attn_tiles_bits(void) {
    if (!m2u_attn_tiles_ok(8)) {
        printf("  attention tiles: no AVX2 + FMA here, not used\n");
        return;
    }
    int bad = 0;
    for (int hi = 0; hi < 2; hi++) {
        const int tn = 31, ns = 37, hd = hi ? 24 : 64, Sp = m2u_tile_round(ns, M2U_TILE_COLS);
        const int tp = m2u_tile_round(tn, M2U_TILE_ROWS), ldp = Sp + 3, ldo = hd + 5;
        const float scale = 0.125f;
        float *q = frand((size_t)tn * hd, 1), *k = frand((size_t)ns * hd, 1), *v = frand((size_t)ns * hd, 1);
        float *qp = calloc((size_t)tp * hd, sizeof *qp), *kp = calloc((size_t)Sp * hd, sizeof *kp);
        float *vp = calloc((size_t)Sp * hd, sizeof *vp), *P = calloc((size_t)tp * ldp, sizeof *P);
        float *out = calloc((size_t)tn * ldo, sizeof *out), *rs = frand(tn, 1);
        m2u_attn_pack_q(qp, q, hd, tn, hd);
        m2u_attn_pack_k(kp, k, hd, ns, hd);
        m2u_attn_pack_v(vp, v, hd, ns, hd);
        m2u_attn_tile_scores(P, ldp, qp, tn, kp, ns, hd, scale);
        for (int r = 0; r < tn; r++)
            for (int s = 0; s < ns; s++) {
                float c = 0.0f;
                for (int d = 0; d < hd; d++) c = fmaf(q[(size_t)r * hd + d], k[(size_t)s * hd + d], c);
                bad += !same_bits(P[(size_t)r * ldp + s], c * scale);
            }
        m2u_attn_tile_pv(out, ldo, P, ldp, tn, vp, Sp, ns, hd, rs);
        for (int r = 0; r < tn; r++)
            for (int j = 0; j < hd; j++) {
                float c = 0.0f;
                for (int s = 0; s < ns; s++) c = fmaf(P[(size_t)r * ldp + s], v[(size_t)s * hd + j], c);
                bad += !same_bits(out[(size_t)r * ldo + j], c * rs[r]);
            }
        free(q), free(k), free(v), free(qp), free(kp), free(vp), free(P), free(out), free(rs);
    }
    /* the tiles' softmax: exponentials added into 8 float lanes, value s into lane s % 8 in key
       order (the last partial group too), then the lanes; one reciprocal (attention.c's softmax_fast).  GCC only:
       clang contracts the scalar exponential's products and sums. */
#ifndef __clang__
    const int lens[] = {1, 7, 8, 9, 15, 16, 17, 24, 37, 749};
    for (int li = 0; li < 10; li++) {
        int n = lens[li], S = n + 5;
        float *p = frand((size_t)S, 6), *ref = fdup(p, (size_t)S);
        float mx = -INFINITY, lane[8] = {0}, sum = 0.0f;
        for (int s = 0; s < n; s++) mx = ref[s] > mx ? ref[s] : mx;
        for (int s = 0; s < n; s++) lane[s % 8] += ref[s] = m2u_vexpf_neg(ref[s] - mx);
        for (int j = 0; j < 8; j++) sum += lane[j];
        float inv = 1.0f / sum;
        for (int s = 0; s < n; s++) ref[s] *= inv;
        for (int s = n; s < S; s++) ref[s] = 0.0f;
        float lse = m2u_attn_tile_softmax(p, n - 1, S, NULL);
        bad += !same_bits(lse, mx + logf(sum));
        for (int s = 0; s < S; s++) bad += !same_bits(p[s], ref[s]);
        free(p), free(ref);
    }
#endif
    CHECK(bad == 0, "attention tiles: %d values differ from the fmaf chains or the softmax's order", bad);
    printf("  attention tiles (%s): scores, P V and softmax the scalar order's bits: %s\n", m2u_avx512() ? "AVX-512 and AVX2" : "AVX2",
           bad ? "NO" : "yes");
}
#endif

/* m2u_parallel_items: every item once, and an item's failure raised on the caller's thread with
 * the lowest failing item's message. */
typedef struct {
    int fail_from; /* items >= this fail (their message names them) */
    int *hits;
} items_ctx;
static int item_fn(void *ctx, int i) {
    items_ctx *c = ctx;
    if (i >= c->fail_from) return m2u_fail("item %d failed", i);
#pragma omp atomic
    c->hits[i]++;
    return 0;
}
static void t_parallel_items(void) {
    int hits[64] = {0};
    items_ctx c = {64, hits};
    CHECK(m2u_parallel_items(64, item_fn, &c) == 0, "parallel_items: %s", m2u_last_error());
    int once = 1;
    for (int i = 0; i < 64; i++) once &= hits[i] == 1;
    CHECK(once, "parallel_items: not every item ran exactly once");
    c.fail_from = 40;
    m2u_clear_error();
    CHECK(m2u_parallel_items(64, item_fn, &c) == -1 && strstr(m2u_last_error(), "item 40 failed"),
          "parallel_items: a failure gave '%s', expected item 40's message", m2u_last_error());
    c.fail_from = 0;
    CHECK(m2u_parallel_items(1, item_fn, &c) == -1 && strstr(m2u_last_error(), "item 0 failed"),
          "parallel_items (one item, on the caller): '%s'", m2u_last_error());
    CHECK(m2u_parallel_items(0, item_fn, &c) == 0, "parallel_items of nothing failed");
}

/* m2u_parallel_tasks: two tasks run at the same time on two threads (each waits, up to 60 s,
 * to see the other start), inside a task the kernels get one thread, a task inside a task
 * runs on its caller's thread, and errors are reported as for items */
typedef struct {
    _Atomic int started[2];
    int saw_other[2], inner_threads[2];
    pthread_t self[2], nested_self;
    int wait, fail_from;
} tasks_ctx;
static int nested_fn(void *ctx, int i) {
    if (i == 0) ((tasks_ctx *)ctx)->nested_self = pthread_self();
    return 0;
}
static int task_fn(void *ctx, int i) {
    tasks_ctx *c = ctx;
    if (i >= c->fail_from) return m2u_fail("task %d failed", i);
    if (i < 2) {
        c->self[i] = pthread_self();
        c->inner_threads[i] = m2u_max_threads();
        c->started[i] = 1;
        for (int w = 0; c->wait && w < 600000 && !c->started[1 - i]; w++) nanosleep(&(struct timespec){0, 100000}, NULL);
        c->saw_other[i] = c->started[1 - i];
    }
    return i == 1 ? m2u_parallel_tasks(2, nested_fn, c) : 0;
}
static void t_parallel_tasks(void) {
    const int dflt = m2u_max_threads();
    for (int threads = 2; threads <= 3; threads++) { /* 2 tasks on 2 and on 3 threads */
        m2u_set_threads(threads);
        tasks_ctx c = {.wait = 1, .fail_from = 2};
        CHECK(m2u_parallel_tasks(2, task_fn, &c) == 0, "parallel_tasks: %s", m2u_last_error());
        CHECK(c.saw_other[0] && c.saw_other[1] && !pthread_equal(c.self[0], c.self[1]),
              "parallel_tasks on %d threads: the two tasks did not run at the same time on two threads", threads);
        CHECK(c.inner_threads[0] == 1 && c.inner_threads[1] == 1, "parallel_tasks: a task sees %d and %d threads, not 1",
              c.inner_threads[0], c.inner_threads[1]);
        CHECK(pthread_equal(c.nested_self, c.self[1]), "parallel_tasks: a nested task left its caller's thread");
        CHECK(m2u_max_threads() == threads, "parallel_tasks: the caller's threads are %d after, not %d",
              m2u_max_threads(), threads);
    }
    m2u_set_threads(1); /* one thread: in order on the caller */
    tasks_ctx c1 = {.wait = 0, .fail_from = 2};
    CHECK(m2u_parallel_tasks(2, task_fn, &c1) == 0 && pthread_equal(c1.self[0], pthread_self()) &&
              pthread_equal(c1.self[1], pthread_self()),
          "parallel_tasks on one thread left the caller");
    m2u_set_threads(3);
    tasks_ctx c2 = {.wait = 0, .fail_from = 1};
    CHECK(m2u_parallel_tasks(3, task_fn, &c2) == -1 && strstr(m2u_last_error(), "task 1 failed"),
          "parallel_tasks: a failure gave '%s', expected task 1's message", m2u_last_error());
    m2u_set_threads(dflt);
}

/* conv2d / maxpool (NHWC, CPU only): against direct double loops in torch's NCHW indexing */
static double max_rel_err(const float *got, const double *ref, size_t n) {
    double maxref = 1.0, err = 0.0;
    for (size_t i = 0; i < n; i++)
        if (fabs(ref[i]) > maxref) maxref = fabs(ref[i]);
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]) / maxref;
        err = t_worse(err, e);
    }
    return err;
}
static void t_conv2d(void) {
    const int cases[][6] = {{7, 5, 1, 4, 3, 1}, {6, 9, 5, 3, 3, 1}, {4, 4, 3, 2, 1, 0}, {96, 64, 1, 8, 3, 1}};
    for (int ci = 0; ci < 4; ci++) {
        int H = cases[ci][0], W = cases[ci][1], Ci = cases[ci][2], Co = cases[ci][3], k = cases[ci][4], pad = cases[ci][5];
        int Ho = H + 2 * pad - k + 1, Wo = W + 2 * pad - k + 1;
        size_t nx = (size_t)H * W * Ci, nw = (size_t)Co * Ci * k * k, ny = (size_t)Ho * Wo * Co;
        float *x = frand(nx, 1), *w = frand(nw, 1), *b = frand(Co, 1), *y = malloc(ny * sizeof *y);
        float *wp = m2u_conv2d_pack(w, Co, Ci, k);
        double *ry = malloc(ny * sizeof *ry);
        for (int oy = 0; oy < Ho; oy++)
            for (int ox = 0; ox < Wo; ox++)
                for (int o = 0; o < Co; o++) {
                    double acc = b[o];
                    for (int c = 0; c < Ci; c++)
                        for (int dy = 0; dy < k; dy++)
                            for (int dx = 0; dx < k; dx++) {
                                int iy = oy + dy - pad, ix = ox + dx - pad;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += (double)w[(((size_t)o * Ci + c) * k + dy) * k + dx] * x[((size_t)iy * W + ix) * Ci + c];
                            }
                    ry[((size_t)oy * Wo + ox) * Co + o] = acc;
                }
        CHECK(wp && m2u_conv2d_nhwc(y, x, H, W, Ci, Co, k, pad, wp, b, 0) == 0, "conv2d: %s", m2u_last_error());
        double e1 = max_rel_err(y, ry, ny);
        CHECK(e1 <= TOL_ATT, "conv2d_nhwc case %d: max error %.3g", ci, e1);
        /* with the ReLU fused: exactly the unfused result through m2u_relu_fwd */
        float *yr = malloc(ny * sizeof *yr);
        CHECK(m2u_conv2d_nhwc(yr, x, H, W, Ci, Co, k, pad, wp, b, 1) == 0, "conv2d relu: %s", m2u_last_error());
        m2u_relu_fwd(y, y, ny);
        CHECK(memcmp(y, yr, ny * sizeof *y) == 0, "conv2d_nhwc case %d: the fused ReLU differs from conv + relu", ci);
        free(yr);
        /* 2x2 max pooling of the result (odd sizes drop the last row / column) */
        int Hp = Ho / 2, Wp = Wo / 2;
        float *p = malloc(((size_t)Hp * Wp * Co + 1) * sizeof *p);
        double *rp = malloc(((size_t)Hp * Wp * Co + 1) * sizeof *rp);
        for (int oy = 0; oy < Hp; oy++)
            for (int ox = 0; ox < Wp; ox++)
                for (int o = 0; o < Co; o++) {
                    double m = -INFINITY;
                    for (int d = 0; d < 4; d++) {
                        double v = y[((size_t)(2 * oy + d / 2) * Wo + 2 * ox + d % 2) * Co + o];
                        m = v > m ? v : m;
                    }
                    rp[((size_t)oy * Wp + ox) * Co + o] = m;
                }
        m2u_maxpool2d_nhwc(p, y, Ho, Wo, Co, 2);
        double e2 = max_rel_err(p, rp, (size_t)Hp * Wp * Co);
        CHECK(e2 == 0, "maxpool2d_nhwc case %d: max error %.3g", ci, e2);
        printf("  conv2d_nhwc %dx%dx%d -> %d (k %d): max error %.2e; maxpool2d exact\n", H, W, Ci, Co, k, e1);
        free(x), free(w), free(b), free(y), free(wp), free(ry), free(p), free(rp);
    }
}

static void run_suite(void) {
    rng_state = 0x9E3779B97F4A7C15ull; /* the same inputs on every backend */
    irec = 0;
    t_buffers();
    t_gemm();
    t_matmul_stored();
    t_linear();
    t_norms();
    t_rope();
    t_attention();
    t_attention_decoder();
    t_softmax();
    t_elementwise();
    t_conv1d();
    t_embedding();
    t_losses();
    t_adamw();
    t_net_pieces();
}

int main(void) {
    BE = m2u_backend_cpu();
    on_cpu = 1;
    run_suite();
    /* the bit-for-bit checks of the vector paths: on an AVX-512 CPU once with its 16-lane
       paths and once more with them switched off, so the 8-lane ones are checked there too */
    for (int pass = 0; pass < 2; pass++) {
#ifdef M2U_HAVE_AVX2_PATHS
        if (pass) {
            if (!m2u_avx512()) break;
            m2u_avx512_enable(0);
            printf("cpu, AVX-512 paths switched off:\n");
        }
#else
        if (pass) break;
#endif
        t_fft();
        t_gelu_dense();
        t_channel_affine_gelu();
        t_vexpf();
        t_vlog1p();
        t_swiglu_ce_bits();
        t_rmsnorm_dw_bits();
#ifdef M2U_HAVE_ATTN_TILES
        t_attn_tiles_bits();
#endif
    }
#ifdef M2U_HAVE_AVX2_PATHS
    m2u_avx512_enable(1);
#endif
    t_parallel_items();
    t_parallel_tasks();
    t_linear_pack();
    t_conv2d();
    printf("cpu: %d checks, %d failed\n", t_pass + t_fail, t_fail);
    const char *why = NULL;
    const m2u_backend *cuda = m2u_backend_cuda(&why);
    if (cuda) {
        int f0 = t_fail, p0 = t_pass;
        BE = cuda;
        on_cpu = 0;
        run_suite();
        printf("cuda: %d checks (each also against the cpu output), %d failed\n", t_pass + t_fail - p0 - f0,
               t_fail - f0);
    } else {
        printf("cuda: skipped (%s)\n", why ? why : "no device");
    }
    for (int i = 0; i < nrec; i++) free(rec[i].v);
    free(rec);
    return t_finish("test_kernels");
}
