#include "tensor.h"
#include "vmath.h"
#include "vmath_avx2.h"

#include "ops_extra.h"

#include <cblas.h>
#ifdef M2U_HAVE_DNNL
#include <dnnl.h>
#endif
#include <math.h>
#include <string.h>

/* Every fp32 product of the CPU kernels comes through here.  With oneDNN (M2U_HAVE_DNNL, the
 * default build) it is dnnl_sgemm: on this project's shapes (a few hundred token rows times 288 to
 * 4096 features) it ran as fast as OpenBLAS 0.3.21's sgemm or faster on 2 threads (0-9 % in a
 * quiet moment, up to 28 % when the cores were shared: OpenBLAS's threads wait for each other
 * around a small product; 1.4-1.7x on attention-sized blocks), and the same on large ones
 * (m2u-bench-gemm; README "oneDNN for the products").  For a given thread count its results are the same bits
 * from run to run; like OpenBLAS's they may differ in the last bits between thread counts.  It
 * runs on the caller's OpenMP threads (oneDNN is the libgomp build), one thread inside a parallel
 * region.  A failure (oneDNN could not get its packing memory) falls back to OpenBLAS. */
void m2u_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* C = beta C, C not read when beta is 0 (BLAS's rule; oneDNN 2.6 leaves C as it is) */
        for (int i = 0; i < M; i++) {
            float *c = C + (size_t)i * ldc;
            if (beta == 0.0f)
                memset(c, 0, (size_t)N * sizeof(float));
            else if (beta != 1.0f)
                for (int j = 0; j < N; j++) c[j] *= beta;
        }
        return;
    }
#ifdef M2U_HAVE_DNNL
    if (dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) ==
        dnnl_success)
        return;
#endif
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha,
                A, lda, B, ldb, beta, C, ldc);
}

void m2u_gemv(int trans_a, int M, int N, float alpha, const float *A, int lda, const float *x, float beta, float *y) {
    if (M <= 0 || N <= 0) return;
    cblas_sgemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, M, N, alpha, A, lda, x, 1, beta, y, 1);
}

void m2u_axpy(int n, float alpha, const float *x, float *y) {
    if (n > 0) cblas_saxpy(n, alpha, x, 1, y, 1);
}

void m2u_add_inplace(float *y, const float *x, size_t n) {
    /* small adds stay on one thread; large ones (EnCodec's residuals) are handed out in blocks */
#pragma omp parallel for schedule(dynamic, 16384) if (n > 65536)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void m2u_add(float *out, const float *a, const float *b, size_t n) {
    /* one thread for the row-sized adds of M2UGen's prefix and BERT's embeddings */
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void m2u_bias_add_rows(float *y, const float *b, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int j = 0; j < C; j++) y[(size_t)n * C + j] += b[j];
}

void m2u_bias_grad(float *db, const float *dy, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int j = 0; j < C; j++) {
        float acc = 0.0f;
        for (int n = 0; n < N; n++) acc += dy[(size_t)n * C + j];
        db[j] += acc;
    }
}

/* rows [t0, t1) of x: (x - mean) * rstd * w + b per channel */
static void affine_rows(float *x, int t0, int t1, int C, const float *mean, const float *rstd, const float *w,
                        const float *b) {
    for (int t = t0; t < t1; t++) {
        float *p = x + (size_t)t * C;
        for (int ch = 0; ch < C; ch++) p[ch] = (p[ch] - mean[ch]) * rstd[ch] * w[ch] + b[ch];
    }
}

void m2u_channel_affine(float *x, int N, int C, const float *mean, const float *rstd, const float *w, const float *b) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < N; t++) affine_rows(x, t, t + 1, C, mean, rstd, w, b);
}

void m2u_channel_affine_gelu(float *x, int N, int C, const float *mean, const float *rstd, const float *w,
                             const float *b) {
    /* blocks of about 64 KB (L2-resident) */
    int rows = C > 0 && C < 16384 ? 16384 / C : 1;
    int nblk = (N + rows - 1) / rows;
#pragma omp parallel for schedule(static)
    for (int k = 0; k < nblk; k++) {
        int t0 = k * rows, t1 = t0 + rows < N ? t0 + rows : N;
        affine_rows(x, t0, t1, C, mean, rstd, w, b);
        m2u_gelu_span(x + (size_t)t0 * C, x + (size_t)t0 * C, (size_t)(t1 - t0) * C);
    }
}

void m2u_col_mean(double *acc, const float *x, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int h = 0; h < C; h++) {
        double s = 0;
        for (int t = 0; t < N; t++) s += x[(size_t)t * C + h];
        acc[h] = s / N;
    }
}

void m2u_embedding_fwd(float *x, const int32_t *ids, int N, const m2u_mat *table, const float *extra, int rows_start) {
    int C = table->cols;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        int id = ids[n];
        if (id >= rows_start) memcpy(x + (size_t)n * C, extra + (size_t)(id - rows_start) * C, C * sizeof(float));
        else m2u_mat_row(table, id, x + (size_t)n * C);
    }
}

void m2u_embedding_bwd(float *dextra, const float *dx, const int32_t *ids, int N, int C, int rows_start) {
    for (int n = 0; n < N; n++)
        if (ids[n] >= rows_start)
            cblas_saxpy(C, 1.0f, dx + (size_t)n * C, 1, dextra + (size_t)(ids[n] - rows_start) * C, 1);
}

void m2u_head_gate_add(float *att, const float *av, const float *gate, int B, int T, int H, int KV, int hd) {
    int group = H / KV, kvd = KV * hd, qd = H * hd;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < B * T; n++) {
        const float *avn = av + (size_t)(n / T) * kvd;
        float *a = att + (size_t)n * qd;
        for (int h = 0; h < H; h++) {
            float tg = tanhf(gate[h]);
            const float *v = avn + (size_t)(h / group) * hd;
            for (int d = 0; d < hd; d++) a[h * hd + d] += tg * v[d];
        }
    }
}

/* GELU with the vectorisable erf of vmath.h (PyTorch's own algorithm); spans of 16 Ki values
 * so the threads share long arrays and a short one stays on the caller's thread. */
M2U_VCLONES
static void gelu_span_c(float *out, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = m2u_vgelu(x[i]);
}

#ifdef M2U_HAVE_AVX2_PATHS
/* The same on 8 lanes with intrinsics (vmath_avx2.h: the same bits): GCC's own vectorisation
 * of m2u_vgelu ran at 36 cycles per 8 values. */
M2U_AVX2_TARGET static void gelu_span_avx2(float *out, const float *x, size_t n) {
    size_t n8 = n - n % 8;
    for (size_t i = 0; i < n8; i += 8) _mm256_storeu_ps(out + i, m2u_vgelu8(_mm256_loadu_ps(x + i)));
    for (size_t i = n8; i < n; i++) out[i] = m2u_vgelu(x[i]);
}

/* and on 16 lanes where the CPU has AVX-512 (the same bits again) */
M2U_AVX512_TARGET static void gelu_span_avx512(float *out, const float *x, size_t n) {
    size_t n16 = n - n % 16;
    for (size_t i = 0; i < n16; i += 16) _mm512_storeu_ps(out + i, m2u_vgelu16(_mm512_loadu_ps(x + i)));
    for (size_t i = n16; i < n; i++) out[i] = m2u_vgelu(x[i]);
}
#endif

void m2u_gelu_span(float *out, const float *x, size_t n) {
#ifdef M2U_HAVE_AVX2_PATHS
    if (m2u_avx512()) {
        gelu_span_avx512(out, x, n);
        return;
    }
    if (m2u_avx2_fma()) {
        gelu_span_avx2(out, x, n);
        return;
    }
#endif
    gelu_span_c(out, x, n);
}

M2U_VCLONES
static void gelu_bwd_span(float *restrict dx, const float *restrict dout, const float *restrict x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double v = (double)x[i];
        double pdf = 0.3989422804014327 * m2u_vexp_neg(-0.5 * v * v);
        dx[i] += dout[i] * (float)(m2u_vgelu_cdf(v) + v * pdf);
    }
}

#define GELU_SPAN 16384

void m2u_gelu_fwd(float *out, const float *x, size_t n) {
    long nspan = (long)((n + GELU_SPAN - 1) / GELU_SPAN);
#pragma omp parallel for schedule(static) if (nspan > 1)
    for (long c = 0; c < nspan; c++) {
        size_t a = (size_t)c * GELU_SPAN;
        m2u_gelu_span(out + a, x + a, n - a < GELU_SPAN ? n - a : GELU_SPAN);
    }
}

void m2u_gelu_bwd(float *dx, const float *dout, const float *x, size_t n) {
    long nspan = (long)((n + GELU_SPAN - 1) / GELU_SPAN);
#pragma omp parallel for schedule(static) if (nspan > 1)
    for (long c = 0; c < nspan; c++) {
        size_t a = (size_t)c * GELU_SPAN;
        gelu_bwd_span(dx + a, dout + a, x + a, n - a < GELU_SPAN ? n - a : GELU_SPAN);
    }
}

void m2u_gelu_tanh_fwd(float *out, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        out[i] = 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
    }
}

void m2u_gelu_tanh_bwd(float *dx, const float *dout, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float th = tanhf(0.7978845608f * (v + 0.044715f * v * v * v));
        float dth = (1.0f - th * th) * 0.7978845608f * (1.0f + 3.0f * 0.044715f * v * v);
        dx[i] += dout[i] * (0.5f * (1.0f + th) + 0.5f * v * dth);
    }
}

void m2u_softmax_bwd(float *dx, const float *dy, const float *y, int N, int V) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *yr = y + (size_t)n * V, *dr = dy + (size_t)n * V;
        float *o = dx + (size_t)n * V;
        double dot = 0.0;
        for (int i = 0; i < V; i++) dot += (double)yr[i] * dr[i];
        for (int i = 0; i < V; i++) o[i] += yr[i] * (dr[i] - (float)dot);
    }
}

void m2u_head_gate_bwd(float *dgate, float *dav, const float *datt, const float *av, const float *gate, int B, int T,
                       int H, int KV, int hd) {
    int group = H / KV, kvd = KV * hd, qd = H * hd;
    for (int h = 0; h < H; h++) {
        float tg = tanhf(gate[h]);
        double dg = 0.0;
        for (int b = 0; b < B; b++) {
            const float *a = av + (size_t)b * kvd + (size_t)(h / group) * hd;
            float *dv = dav + (size_t)b * kvd + (size_t)(h / group) * hd;
            for (int t = 0; t < T; t++) {
                const float *d = datt + ((size_t)b * T + t) * qd + (size_t)h * hd;
                for (int k = 0; k < hd; k++) {
                    dg += (double)d[k] * a[k];
                    dv[k] += tg * d[k];
                }
            }
        }
        dgate[h] += (float)((1.0 - (double)tg * tg) * dg);
    }
}

void m2u_rmsnorm_dsum_fwd(float *out, const float *x, const float *w, int N, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const float *xr = x + (size_t)r * C;
        double ss = 0;
        for (int j = 0; j < C; j++) ss += (double)xr[j] * xr[j];
        float rs = 1.0f / sqrtf((float)(ss / C) + eps);
        for (int j = 0; j < C; j++) out[(size_t)r * C + j] = w[j] * (xr[j] * rs);
    }
}

static float act1(m2u_kact a, float x) {
    switch (a) {
    case M2U_KACT_RELU: return x > 0 ? x : 0.0f;
    case M2U_KACT_GELU: return m2u_vgelu(x);
    case M2U_KACT_GELU_TANH: return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    default: return x / (1.0f + expf(-x));
    }
}

void m2u_act_gated_fwd(float *x, const float *gate, size_t n, m2u_kact act) {
    if (gate) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) x[i] = act1(act, x[i]) * gate[i];
    } else {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) x[i] = act1(act, x[i]);
    }
}

#define ZERO_BLOCK 16384 /* floats: 64 KB per task */

void m2u_zero(float *x, size_t n) {
    size_t nb = (n + ZERO_BLOCK - 1) / ZERO_BLOCK;
    if (nb <= 1) {
        memset(x, 0, n * sizeof *x);
        return;
    }
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < nb; b++) {
        size_t i0 = b * ZERO_BLOCK, len = n - i0 < ZERO_BLOCK ? n - i0 : ZERO_BLOCK;
        memset(x + i0, 0, len * sizeof *x);
    }
}

void m2u_scale(float *out, const float *x, float alpha, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = alpha * x[i];
}

void m2u_relu_mask(float *dx, const float *y, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        if (!(y[i] > 0.0f)) dx[i] = 0.0f;
}

void m2u_layernorm_residual_bwd(float *G, float *A, float *dw, float *db, const float *r, const float *w,
                                const float *mean, const float *rstd, int N, int C) {
    memset(A, 0, (size_t)N * C * sizeof(float));
    m2u_layernorm_bwd(A, dw, db, G, r, w, mean, rstd, N, C);
    memcpy(G, A, (size_t)N * C * sizeof(float));
}

double m2u_sum(const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s;
}

void m2u_add_scalar(float *x, float c, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] += c;
}

void m2u_zero_mean_unit_var(float *out, const float *x, long n, double eps) {
    /* the sums stay serial: their order fixes the rounding, as in the reference */
    double s = 0;
    for (long i = 0; i < n; i++) s += x[i];
    float mean = (float)(s / (double)n);
    double v = 0;
    for (long i = 0; i < n; i++) {
        double d = (double)x[i] - (double)mean;
        v += d * d;
    }
    float var = (float)(v / (double)n);
    float den = (float)sqrt((double)var + eps);
#pragma omp parallel for schedule(static) if (n > 65536)
    for (long i = 0; i < n; i++) out[i] = (x[i] - mean) / den;
}

/* Rows per partial sum of m2u_channel_stats: fixed, so the sums do not depend on the thread count. */
#define CHANNEL_STATS_ROWS 256

/* One chunk's worth of rows (T <= CHANNEL_STATS_ROWS, where it gives the same sums as the
 * chunked code), or no memory for the partial sums: each thread owns blocks of 64 channels
 * (256 contiguous bytes of each row) and sums them over t in order. */
static void channel_stats_blocks(float *mean, float *rstd, double *work, const float *x, int T, int C, double eps) {
    double *s = work, *v = work + C;
    int nblk = (C + 63) / 64;
#pragma omp parallel for schedule(static) if ((long)T * C > 65536)
    for (int bi = 0; bi < nblk; bi++) {
        int c0 = bi * 64, c1 = c0 + 64 < C ? c0 + 64 : C;
        for (int ch = c0; ch < c1; ch++) s[ch] = v[ch] = 0;
        for (int t = 0; t < T; t++) {
            const float *row = x + (size_t)t * C;
            for (int ch = c0; ch < c1; ch++) s[ch] += row[ch];
        }
        for (int ch = c0; ch < c1; ch++) s[ch] /= T;
        for (int t = 0; t < T; t++) {
            const float *row = x + (size_t)t * C;
            for (int ch = c0; ch < c1; ch++) {
                double d = row[ch] - s[ch];
                v[ch] += d * d;
            }
        }
        for (int ch = c0; ch < c1; ch++) {
            mean[ch] = (float)s[ch];
            rstd[ch] = (float)(1.0 / sqrt(v[ch] / T + eps));
        }
    }
}

void m2u_channel_stats(float *mean, float *rstd, double *work, const float *x, int T, int C, double eps) {
    /* Two passes (mean, then squared deviations), each over chunks of CHANNEL_STATS_ROWS
     * whole rows: the threads stream x row after row (the first conv layer of MERT gives
     * 48000 x 512 values for 10 s of audio, and walking 64-channel column blocks, as the
     * fallback does, ran at a quarter of the memory's speed), each chunk keeps its own
     * double partial sums, and the partials are added in chunk order, so the result is the
     * same for any thread count. */
    int nch = (T + CHANNEL_STATS_ROWS - 1) / CHANNEL_STATS_ROWS;
    double *part = nch > 1 ? malloc((size_t)nch * C * sizeof(double)) : NULL;
    if (!part) {
        channel_stats_blocks(mean, rstd, work, x, T, C, eps);
        return;
    }
    double *s = work, *v = work + C;
    for (int pass = 0; pass < 2; pass++) {
#pragma omp parallel for schedule(static) if ((long)T * C > 65536)
        for (int k = 0; k < nch; k++) {
            double *p = part + (size_t)k * C;
            int t1 = (k + 1) * CHANNEL_STATS_ROWS < T ? (k + 1) * CHANNEL_STATS_ROWS : T;
            for (int ch = 0; ch < C; ch++) p[ch] = 0;
            for (int t = k * CHANNEL_STATS_ROWS; t < t1; t++) {
                const float *row = x + (size_t)t * C;
                if (pass == 0)
                    for (int ch = 0; ch < C; ch++) p[ch] += row[ch];
                else
                    for (int ch = 0; ch < C; ch++) {
                        double d = row[ch] - s[ch];
                        p[ch] += d * d;
                    }
            }
        }
        double *out = pass == 0 ? s : v;
        for (int ch = 0; ch < C; ch++) out[ch] = 0;
        for (int k = 0; k < nch; k++)
            for (int ch = 0; ch < C; ch++) out[ch] += part[(size_t)k * C + ch];
        if (pass == 0)
            for (int ch = 0; ch < C; ch++) s[ch] /= T;
    }
    for (int ch = 0; ch < C; ch++) {
        mean[ch] = (float)s[ch];
        rstd[ch] = (float)(1.0 / sqrt(v[ch] / T + eps));
    }
    free(part);
}

M2U_VCLONES void m2u_log1p_scaled(double *y, const double *x, size_t n, double a) {
    for (size_t i = 0; i < n; i++) y[i] = m2u_vlog1p(a * x[i]);
}

M2U_VCLONES void m2u_log10_array(double *y, const double *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = m2u_vlog10(x[i]);
}
