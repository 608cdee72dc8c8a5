#include "ops.h"
#include "ops_extra.h" /* m2u_linear_fwd_packed_ld */

#include "gemm_bf16.h"
#include "gemm_w16.h"
#include "m2u_error.h"
#include "tensor.h"
#include "vmath.h"
#include "vmath_avx2.h"

#include <cblas.h> /* openblas_get_parallel, openblas_get_config */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- matmuls against frozen weights ------------------------------------ */

/* Rows widened per block: at most ~4 MiB of fp32 scratch, so a 32000 x 4096
 * bf16 head never needs a 512 MiB fp32 copy. */
static int block_rows(const m2u_mat *w) {
    int r = (1 << 20) / (w->cols > 0 ? w->cols : 1);
    return r < 1 ? 1 : r;
}

static int direct_f32(const m2u_mat *w) {
    return w->dtype == M2U_F32 && ((uintptr_t)w->data % sizeof(float)) == 0;
}

void m2u_mat_row(const m2u_mat *w, int row, float *dst) {
    size_t es = m2u_dtype_size(w->dtype);
    m2u_convert_to_f32(w->dtype, (const unsigned char *)w->data + (size_t)row * w->cols * es, dst, (size_t)w->cols);
}

static void widen_rows(const m2u_mat *w, int row0, int n, float *dst) {
    size_t es = m2u_dtype_size(w->dtype);
    const unsigned char *src = (const unsigned char *)w->data + (size_t)row0 * w->cols * es;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < n; r++)
        m2u_convert_to_f32(w->dtype, src + (size_t)r * w->cols * es, dst + (size_t)r * w->cols, (size_t)w->cols);
}

/* Few rows against a 16-bit weight (token-by-token generation): dot products
 * straight from the stored bf16/f16, so the weight is read once at 2 bytes per
 * element instead of being widened into a buffer and read again at 4. */
static void matvec_16(float *y, int ldy, const float *x, int N, const m2u_mat *w, int row0, int nrows, float beta) {
    int K = w->cols;
    const uint16_t *W = (const uint16_t *)w->data + (size_t)row0 * K;
    int bf = w->dtype == M2U_BF16;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < nrows; r++) {
        const uint16_t *wr = W + (size_t)r * K;
        for (int n = 0; n < N; n++) {
            const float *xn = x + (size_t)n * K;
            float acc = 0.0f;
            /* omp simd lets the compiler reassociate the sum into vector lanes */
            if (bf) {
#pragma omp simd reduction(+ : acc)
                for (int k = 0; k < K; k++) acc += xn[k] * m2u_bf16_to_f32(wr[k]);
            } else {
#pragma omp simd reduction(+ : acc)
                for (int k = 0; k < K; k++) acc += xn[k] * m2u_f16_to_f32(wr[k]);
            }
            float *dst = y + (size_t)n * ldy + r;
            *dst = (beta == 0.0f ? 0.0f : beta * *dst) + acc;
        }
    }
}

#define STREAM_CHUNK 256

void m2u_matmul_wt_stream(float *y, int ldy, const float *x, int N, const m2u_mat *w, int row0, int nrows, float beta) {
    int K = w->cols;
    size_t es = m2u_dtype_size(w->dtype);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < nrows; r++) {
        const unsigned char *src = (const unsigned char *)w->data + (size_t)(row0 + r) * K * es;
        float buf[STREAM_CHUNK];
        for (int n = 0; n < N; n++) {
            float *d = y + (size_t)n * ldy + r;
            *d = beta == 0.0f ? 0.0f : beta * *d;
        }
        for (int k0 = 0; k0 < K; k0 += STREAM_CHUNK) {
            int kc = K - k0 < STREAM_CHUNK ? K - k0 : STREAM_CHUNK;
            m2u_convert_to_f32(w->dtype, src + (size_t)k0 * es, buf, (size_t)kc);
            for (int n = 0; n < N; n++) {
                const float *xn = x + (size_t)n * K + k0;
                float acc = 0.0f;
                for (int k = 0; k < kc; k++) acc += xn[k] * buf[k];
                y[(size_t)n * ldy + r] += acc;
            }
        }
    }
}

void m2u_matmul_w_acc_stream(float *dx, const float *dy, int ldy, int N, const m2u_mat *w, int row0, int nrows) {
    int K = w->cols;
    size_t es = m2u_dtype_size(w->dtype);
    /* threads own column chunks of dx, so no two write the same value */
#pragma omp parallel for schedule(static)
    for (int k0 = 0; k0 < K; k0 += STREAM_CHUNK) {
        int kc = K - k0 < STREAM_CHUNK ? K - k0 : STREAM_CHUNK;
        float buf[STREAM_CHUNK];
        for (int r = 0; r < nrows; r++) {
            m2u_convert_to_f32(w->dtype, (const unsigned char *)w->data + ((size_t)(row0 + r) * K + k0) * es, buf,
                               (size_t)kc);
            for (int n = 0; n < N; n++) {
                float g = dy[(size_t)n * ldy + r], *d = dx + (size_t)n * K + k0;
                for (int k = 0; k < kc; k++) d[k] += g * buf[k];
            }
        }
    }
}

void m2u_matmul_wt(float *y, int ldy, const float *x, int N, const m2u_mat *w, int row0, int nrows, float beta) {
    int K = w->cols;
    if (N == 0 || nrows == 0) return;
    if (N <= 4 && (w->dtype == M2U_BF16 || w->dtype == M2U_F16) && ((uintptr_t)w->data % 2) == 0) {
        matvec_16(y, ldy, x, N, w, row0, nrows, beta);
        return;
    }
    if (direct_f32(w)) {
        if (w->pack && row0 == 0 && nrows == w->rows && beta == 0.0f) {
            m2u_linear_fwd_packed_ld(w->pack, y, ldy, x, NULL, N);
            return;
        }
        const float *W = (const float *)w->data + (size_t)row0 * K;
        m2u_gemm(0, 1, N, nrows, K, 1.0f, x, K, W, K, beta, y, ldy);
        return;
    }
    /* bf16 arithmetic where asked for and native (bf16 weights); it answers -1 (y untouched) otherwise */
    if (w->bf16_math && m2u_gemm_bf16_wt(y, ldy, x, N, w, row0, nrows, beta) == 0) return;
#ifdef M2U_HAVE_AVX2_PATHS
    if (m2u_gemm_w16_ok(w)) {
        m2u_gemm_w16_wt(y, ldy, x, N, w, row0, nrows, beta);
        return;
    }
#endif
    int br = block_rows(w);
    if (br > nrows) br = nrows;
    float *buf = malloc((size_t)br * K * sizeof(float));
    if (!buf) {
        m2u_matmul_wt_stream(y, ldy, x, N, w, row0, nrows, beta);
        return;
    }
    for (int r = 0; r < nrows; r += br) {
        int n = nrows - r < br ? nrows - r : br;
        widen_rows(w, row0 + r, n, buf);
        m2u_gemm(0, 1, N, n, K, 1.0f, x, K, buf, K, beta, y + r, ldy);
    }
    free(buf);
}

void m2u_matmul_w_acc(float *dx, const float *dy, int ldy, int N, const m2u_mat *w, int row0, int nrows) {
    int K = w->cols;
    if (N == 0 || nrows == 0) return;
    if (direct_f32(w)) {
        const float *W = (const float *)w->data + (size_t)row0 * K;
        m2u_gemm(0, 0, N, K, nrows, 1.0f, dy, ldy, W, K, 1.0f, dx, K);
        return;
    }
    if (w->bf16_math && m2u_gemm_bf16_acc(dx, dy, ldy, N, w, row0, nrows) == 0) return;
#ifdef M2U_HAVE_AVX2_PATHS
    if (m2u_gemm_w16_ok(w)) {
        m2u_gemm_w16_acc(dx, dy, ldy, N, w, row0, nrows);
        return;
    }
#endif
    int br = block_rows(w);
    if (br > nrows) br = nrows;
    float *buf = malloc((size_t)br * K * sizeof(float));
    if (!buf) {
        m2u_matmul_w_acc_stream(dx, dy, ldy, N, w, row0, nrows);
        return;
    }
    for (int r = 0; r < nrows; r += br) {
        int n = nrows - r < br ? nrows - r : br;
        widen_rows(w, row0 + r, n, buf);
        m2u_gemm(0, 0, N, K, n, 1.0f, dy + r, ldy, buf, K, 1.0f, dx, K);
    }
    free(buf);
}

/* ---- RMSNorm ------------------------------------------------------------- */

/* A row's sums for the norms: value i into lane i % 16 (the last partial group too), then the
 * lanes pairwise (8, 4, 2, 1 apart).  The compiler vectorises the lanes (AVX-512 or AVX2 clones,
 * the same operations per lane, so the same bits on every width); the serial sum it replaced
 * waited on one addition per value, most of RMSNorm's time at LLaMA's row sizes. */
#define NORM_LANES 16
/* always_inline: called out of line, the AVX-512 clones below returned without a vzeroupper
 * (GCC put none before the call), and the SSE loops after them ran 2 to 3 times slower on the
 * Zen 5 machine (RMSNorm's backward went from 115 to 225 us) */
static inline __attribute__((always_inline)) float lanes_fold(float *acc) {
    for (int w = NORM_LANES / 2; w; w /= 2)
        for (int j = 0; j < w; j++) acc[j] += acc[j + w];
    return acc[0];
}

/* sum of x[i]^2 */
M2U_VCLONES static float row_sumsq(const float *x, int C) {
    float acc[NORM_LANES] = {0};
    int C16 = C - C % NORM_LANES;
    for (int i = 0; i < C16; i += NORM_LANES)
        for (int j = 0; j < NORM_LANES; j++) acc[j] += x[i + j] * x[i + j];
    for (int i = C16; i < C; i++) acc[i - C16] += x[i] * x[i];
    return lanes_fold(acc);
}

/* sum of (w[i] dy[i]) x[i] */
M2U_VCLONES static float row_dot3(const float *w, const float *dy, const float *x, int C) {
    float acc[NORM_LANES] = {0};
    int C16 = C - C % NORM_LANES;
    for (int i = 0; i < C16; i += NORM_LANES)
        for (int j = 0; j < NORM_LANES; j++) acc[j] += w[i + j] * dy[i + j] * x[i + j];
    for (int i = C16; i < C; i++) acc[i - C16] += w[i] * dy[i] * x[i];
    return lanes_fold(acc);
}

void m2u_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float ss = row_sumsq(xr, C);
        float r = 1.0f / sqrtf(ss / (float)C + eps);
#pragma omp simd
        for (int i = 0; i < C; i++) o[i] = w[i] * (xr[i] * r);
        rstd[n] = r;
    }
}

void m2u_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd, int N,
                     int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C, *dy = dout + (size_t)n * C;
        float *d = dx + (size_t)n * C;
        float r = rstd[n], dot = row_dot3(w, dy, xr, C);
        float c = dot * r * r * r / (float)C;
        /* elementwise, so vector lanes give the scalar loop's bits; without the pragma the
           compiler keeps it scalar (dx might overlap the inputs) */
#pragma omp simd
        for (int i = 0; i < C; i++) d[i] += w[i] * dy[i] * r - c * xr[i];
    }
    if (dw) {
        /* Each weight's sum runs over the rows in order, as a column-by-column loop would, so
           the bits are that loop's (and do not depend on the threads).  But a thread takes 16
           columns at a time and walks the rows once for all 16: contiguous reads the compiler
           vectorizes, where a column alone strides by a row and waits on one add at a time. */
        const int nblk = (C + 15) / 16;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < nblk; b++) {
            const int i0 = b * 16, w16 = C - i0 < 16 ? C - i0 : 16;
            float acc[16] = {0};
            for (int n = 0; n < N; n++) {
                const float *dr = dout + (size_t)n * C + i0, *xr = x + (size_t)n * C + i0;
                const float r = rstd[n];
#pragma omp simd
                for (int j = 0; j < w16; j++) acc[j] += dr[j] * xr[j] * r;
            }
            for (int j = 0; j < w16; j++) dw[i0 + j] += acc[j];
        }
    }
}

/* ---- RoPE ---------------------------------------------------------------- */

void m2u_rope_inv_freq(float *inv_freq, int head_dim, float theta) {
    /* transformers: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in fp32 */
    for (int j = 0; j < head_dim / 2; j++) {
        float e = (float)(2 * j) / (float)head_dim;
        inv_freq[j] = 1.0f / powf(theta, e);
    }
}

void m2u_rope_table(float *cos_t, float *sin_t, const int *pos, int N, int head_dim, const float *inv_freq) {
    int half = head_dim / 2;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        for (int j = 0; j < half; j++) {
            float f = (float)pos[n] * inv_freq[j]; /* fp32 product, as transformers */
            cos_t[(size_t)n * half + j] = (float)cos((double)f);
            sin_t[(size_t)n * half + j] = (float)sin((double)f);
        }
}

static void rope_apply(float *x, int N, int stride, int n_heads, int hd, const float *cos_t, const float *sin_t,
                       float sign) {
    int half = hd / 2;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *row = x + (size_t)n * stride;
        const float *cr = cos_t + (size_t)n * half, *sr = sin_t + (size_t)n * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = row + (size_t)h * hd;
            /* elementwise (v[j] and v[j + half] are distinct values), so vector lanes keep the
               bits; without the pragma the compiler kept it scalar (v might overlap the tables) */
#pragma omp simd
            for (int j = 0; j < half; j++) {
                float c = cr[j], s = sign * sr[j];
                float a = v[j], b = v[j + half];
                v[j] = a * c - b * s;
                v[j + half] = b * c + a * s;
            }
        }
    }
}

void m2u_rope_fwd(float *x, int N, int stride, int n_heads, int head_dim, const float *cos_t, const float *sin_t) {
    rope_apply(x, N, stride, n_heads, head_dim, cos_t, sin_t, 1.0f);
}

/* The rotation is orthogonal, so its gradient is the rotation by -angle. */
void m2u_rope_bwd(float *dx, int N, int stride, int n_heads, int head_dim, const float *cos_t, const float *sin_t) {
    rope_apply(dx, N, stride, n_heads, head_dim, cos_t, sin_t, -1.0f);
}

/* ---- SwiGLU ----------------------------------------------------------------- */

/* SiLU-gated MLP.  The sigmoid comes from e = exp(-|g|) (vmath's exp of a non-positive
 * value, which vectorises: glibc's expf is a scalar call per value) as 1 / (1 + e) for g >= 0
 * and e / (1 + e) below, so e never overflows.  The AVX2 spans do the same operations in the
 * same order, so a value has the same bits on every CPU. */
M2U_VINLINE float sigmoid_v(float g) {
    float e = m2u_vexpf_neg(-fabsf(g)), d = 1.0f / (1.0f + e);
    return g >= 0.0f ? d : e * d;
}

#ifdef M2U_HAVE_AVX2_PATHS
M2U_AVX2_TARGET static inline __m256 sigmoid8(__m256 g) {
    __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), g); /* |g| */
    __m256 e = m2u_vexpf_neg8(_mm256_sub_ps(_mm256_setzero_ps(), a));
    __m256 d = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    return _mm256_blendv_ps(_mm256_mul_ps(e, d), d, _mm256_cmp_ps(g, _mm256_setzero_ps(), _CMP_GE_OQ));
}

/* the same on 16 lanes where the CPU has AVX-512: the same operations, the same bits */
M2U_AVX512_TARGET static inline __m512 sigmoid16(__m512 g) {
    __m512 a = _mm512_andnot_ps(_mm512_set1_ps(-0.0f), g);
    __m512 e = m2u_vexpf_neg16(_mm512_sub_ps(_mm512_setzero_ps(), a));
    __m512 d = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(g, _mm512_setzero_ps(), _CMP_GE_OQ), _mm512_mul_ps(e, d), d);
}

/* The forward and backward spans (n a multiple of the lanes), written once for a width of W bits
 * and L lanes with that width's sigmoid; the backward is dout * u * sg * (1 + g * (1 - sg)),
 * left to right as the C loop. */
#define SWIGLU_SPANS(W, L, TARGET, SUFFIX, SIGMOID)                                                                \
    TARGET static void swiglu_fwd_##SUFFIX(float *out, const float *g, const float *u, size_t n) {                  \
        for (size_t i = 0; i < n; i += L) {                                                                         \
            __m##W gv = M2U_VPS(W, loadu)(g + i);                                                                   \
            M2U_VPS(W, storeu)(out + i, M2U_VPS(W, mul)(M2U_VPS(W, mul)(gv, SIGMOID(gv)), M2U_VPS(W, loadu)(u + i))); \
        }                                                                                                           \
    }                                                                                                               \
    TARGET static void swiglu_bwd_##SUFFIX(float *dg, float *du, const float *dout, const float *g, const float *u, \
                                           size_t n) {                                                              \
        const __m##W one = M2U_VSET(W, 1.0f);                                                                       \
        for (size_t i = 0; i < n; i += L) {                                                                         \
            __m##W gv = M2U_VPS(W, loadu)(g + i), uv = M2U_VPS(W, loadu)(u + i), ov = M2U_VPS(W, loadu)(dout + i); \
            __m##W sg = SIGMOID(gv), silu = M2U_VPS(W, mul)(gv, sg);                                                \
            M2U_VPS(W, storeu)(du + i, M2U_VPS(W, add)(M2U_VPS(W, loadu)(du + i), M2U_VPS(W, mul)(ov, silu)));     \
            __m##W t = M2U_VPS(W, add)(one, M2U_VPS(W, mul)(gv, M2U_VPS(W, sub)(one, sg)));                         \
            __m##W v = M2U_VPS(W, mul)(M2U_VPS(W, mul)(M2U_VPS(W, mul)(ov, uv), sg), t);                            \
            M2U_VPS(W, storeu)(dg + i, M2U_VPS(W, add)(M2U_VPS(W, loadu)(dg + i), v));                              \
        }                                                                                                           \
    }
SWIGLU_SPANS(256, 8, M2U_AVX2_TARGET, avx2, sigmoid8)
SWIGLU_SPANS(512, 16, M2U_AVX512_TARGET, avx512, sigmoid16)
#endif

/* the spans below split n into per-thread blocks of whole groups of 16 */
#define SPAN_BLOCK 4096

void m2u_swiglu_fwd(float *out, const float *g, const float *u, size_t n) {
    size_t nb = (n + SPAN_BLOCK - 1) / SPAN_BLOCK;
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < nb; b++) {
        size_t i0 = b * SPAN_BLOCK, i1 = i0 + SPAN_BLOCK < n ? i0 + SPAN_BLOCK : n, i = i0;
#ifdef M2U_HAVE_AVX2_PATHS
        if (m2u_avx512()) {
            size_t n16 = (i1 - i0) / 16 * 16;
            swiglu_fwd_avx512(out + i0, g + i0, u + i0, n16);
            i = i0 + n16;
        } else if (m2u_avx2_fma()) {
            size_t n8 = (i1 - i0) / 8 * 8;
            swiglu_fwd_avx2(out + i0, g + i0, u + i0, n8);
            i = i0 + n8;
        }
#endif
        for (; i < i1; i++) out[i] = g[i] * sigmoid_v(g[i]) * u[i];
    }
}

void m2u_swiglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
    size_t nb = (n + SPAN_BLOCK - 1) / SPAN_BLOCK;
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < nb; b++) {
        size_t i0 = b * SPAN_BLOCK, i1 = i0 + SPAN_BLOCK < n ? i0 + SPAN_BLOCK : n, i = i0;
#ifdef M2U_HAVE_AVX2_PATHS
        if (m2u_avx512()) {
            size_t n16 = (i1 - i0) / 16 * 16;
            swiglu_bwd_avx512(dg + i0, du + i0, dout + i0, g + i0, u + i0, n16);
            i = i0 + n16;
        } else if (m2u_avx2_fma()) {
            size_t n8 = (i1 - i0) / 8 * 8;
            swiglu_bwd_avx2(dg + i0, du + i0, dout + i0, g + i0, u + i0, n8);
            i = i0 + n8;
        }
#endif
        for (; i < i1; i++) {
            float sg = sigmoid_v(g[i]);
            float silu = g[i] * sg;
            du[i] += dout[i] * silu;
            dg[i] += dout[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
        }
    }
}

/* ---- loss -------------------------------------------------------------------- */

/* The values past the last whole group of 8, in order, added to s (every version's tail). */
static double row_tail(const float *l, int V8, int V, float mx, float *d, double s) {
    for (int i = V8; i < V; i++) {
        float e = m2u_vexpf_neg(l[i] - mx);
        if (d) d[i] = e;
        s += (double)e;
    }
    return s;
}

/* One row's max and sum of exp(l - max), and (d not NULL) the exponentials themselves in d.
 * The exponentials are vmath's (exact to about an ulp, and they vectorise: glibc's expf does
 * not), summed in double so that 32000 terms do not lose the small ones, in 8 lanes then
 * pairwise; each block of 16 values first adds its two groups of 8 in float (one rounding of
 * two terms <= 1, 6e-8 of the sum at most) so that one conversion to double and one double
 * addition serve 16 values: those were half the AVX-512 loop's time.  A last group of 8 goes
 * into the lanes alone.  The vector versions have this order and these bits. */
static double row_sumexp_c(const float *l, int V, float *mx_out, float *d) {
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = l[i] > mx ? l[i] : mx;
    double acc[8] = {0};
    int V16 = V - V % 16, V8 = V - V % 8;
    for (int i = 0; i < V16; i += 16)
        for (int j = 0; j < 8; j++) {
            float e0 = m2u_vexpf_neg(l[i + j] - mx), e1 = m2u_vexpf_neg(l[i + 8 + j] - mx);
            if (d) d[i + j] = e0, d[i + 8 + j] = e1;
            acc[j] += (double)(e0 + e1);
        }
    for (int i = V16; i < V8; i += 8)
        for (int j = 0; j < 8; j++) {
            float e = m2u_vexpf_neg(l[i + j] - mx);
            if (d) d[i + j] = e;
            acc[j] += (double)e;
        }
    double s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    *mx_out = mx;
    return row_tail(l, V8, V, mx, d, s);
}

#ifdef M2U_HAVE_AVX2_PATHS
/* The max of a vector pass's n lanes and of the values l[from..V) it left (both widths' end of
 * the max pass; max ignores NaN as the C loop does). */
static float lanes_max(const float *lanes, int n, const float *l, int from, int V) {
    float mx = -INFINITY;
    for (int j = 0; j < n; j++) mx = lanes[j] > mx ? lanes[j] : mx;
    for (int i = from; i < V; i++) mx = l[i] > mx ? l[i] : mx;
    return mx;
}

/* next: the row after this one (the row itself for the last), fetched into the cache while this
 * row's exponentials are computed, so that its max pass does not wait on memory: the
 * exponentials are bound by arithmetic, the max pass by memory, and the two overlap this way
 * with the same bits. */
M2U_AVX2_TARGET static double row_sumexp_avx2(const float *l, int V, float *mx_out, float *d, const float *next) {
    int V8 = V - V % 8;
    /* max ignores NaN as the C loop does: _mm256_max_ps returns its second operand (the
     * running max) when the logit is NaN */
    __m256 vm = _mm256_set1_ps(-INFINITY);
    for (int i = 0; i < V8; i += 8) vm = _mm256_max_ps(_mm256_loadu_ps(l + i), vm);
    float lanes[8];
    _mm256_storeu_ps(lanes, vm);
    float mx = lanes_max(lanes, 8, l, V8, V);
    __m256 m8 = _mm256_set1_ps(mx);
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    int V16 = V - V % 16;
    for (int i = 0; i < V16; i += 16) {
        _mm_prefetch((const char *)(next + i), _MM_HINT_T0);
        __m256 e0 = m2u_vexpf_neg8(_mm256_sub_ps(_mm256_loadu_ps(l + i), m8));
        __m256 e1 = m2u_vexpf_neg8(_mm256_sub_ps(_mm256_loadu_ps(l + i + 8), m8));
        if (d) _mm256_storeu_ps(d + i, e0), _mm256_storeu_ps(d + i + 8, e1);
        __m256 t = _mm256_add_ps(e0, e1);
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(t)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(t, 1)));
    }
    if (V8 > V16) { /* a last group of 8 alone */
        __m256 e = m2u_vexpf_neg8(_mm256_sub_ps(_mm256_loadu_ps(l + V16), m8));
        if (d) _mm256_storeu_ps(d + V16, e);
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(lo, hi));
    double s = (t[0] + t[1]) + (t[2] + t[3]);
    *mx_out = mx;
    return row_tail(l, V8, V, mx, d, s);
}

/* row_sumexp_avx2 with the exponentials on 16 lanes: a block's two halves added in float, then
 * into the same 8 double lanes in the same order (the low four are the 8-lane version's lo, the
 * high four its hi), so the sum has its bits. */
M2U_AVX512_TARGET static double row_sumexp_avx512(const float *l, int V, float *mx_out, float *d, const float *next) {
    int V16 = V - V % 16, V8 = V - V % 8;
    __m512 vm = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < V16; i += 16) vm = _mm512_max_ps(_mm512_loadu_ps(l + i), vm);
    float lanes[16];
    _mm512_storeu_ps(lanes, vm);
    float mx = lanes_max(lanes, 16, l, V16, V);
    __m512 m16 = _mm512_set1_ps(mx);
    __m512d acc = _mm512_setzero_pd();
    for (int i = 0; i < V16; i += 16) {
        _mm_prefetch((const char *)(next + i), _MM_HINT_T0);
        __m512 e = m2u_vexpf_neg16(_mm512_sub_ps(_mm512_loadu_ps(l + i), m16));
        if (d) _mm512_storeu_ps(d + i, e);
        __m256 t = _mm256_add_ps(_mm512_castps512_ps256(e), _mm512_extractf32x8_ps(e, 1));
        acc = _mm512_add_pd(acc, _mm512_cvtps_pd(t));
    }
    if (V8 > V16) { /* one more group of 8 */
        __m256 e = m2u_vexpf_neg8(_mm256_sub_ps(_mm256_loadu_ps(l + V16), _mm256_set1_ps(mx)));
        if (d) _mm256_storeu_ps(d + V16, e);
        acc = _mm512_add_pd(acc, _mm512_cvtps_pd(e));
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(_mm512_castpd512_pd256(acc), _mm512_extractf64x4_pd(acc, 1)));
    double s = (t[0] + t[1]) + (t[2] + t[3]);
    *mx_out = mx;
    return row_tail(l, V8, V, mx, d, s);
}

M2U_AVX2_TARGET static void row_scale_avx2(float *d, int V, float a) {
    int V8 = V - V % 8;
    __m256 a8 = _mm256_set1_ps(a);
    for (int i = 0; i < V8; i += 8) _mm256_storeu_ps(d + i, _mm256_mul_ps(_mm256_loadu_ps(d + i), a8));
    for (int i = V8; i < V; i++) d[i] *= a;
}

M2U_AVX512_TARGET static void row_scale_avx512(float *d, int V, float a) {
    int V16 = V - V % 16;
    __m512 a16 = _mm512_set1_ps(a);
    for (int i = 0; i < V16; i += 16) _mm512_storeu_ps(d + i, _mm512_mul_ps(_mm512_loadu_ps(d + i), a16));
    for (int i = V16; i < V; i++) d[i] *= a;
}
#endif

/* The row is read from memory once: its max pass brings it into the cache (a 32000-word row
 * is 128 KB), where the exponentials' pass and, for the gradient, the scaling pass find it.
 * The gradient is softmax = exp(l - max) x (1 / sum), the exponentials being the sum's own. */
double m2u_cross_entropy(const float *logits, const int32_t *targets, int N, int V, float *lse, int *n_valid,
                         float *dlogits) {
    double total = 0.0;
    int count = 0;
#pragma omp parallel for schedule(static) reduction(+ : total, count)
    for (int n = 0; n < N; n++) {
        const float *l = logits + (size_t)n * V;
        float *d = dlogits ? dlogits + (size_t)n * V : NULL;
        int t = targets[n];
        if (t < 0 || t >= V) {
            lse[n] = 0.0f;
            if (d) memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        float mx;
#ifdef M2U_HAVE_AVX2_PATHS
        int avx2 = m2u_avx2_fma();
        const float *next = n + 1 < N ? l + V : l;
        double sum = m2u_avx512()  ? row_sumexp_avx512(l, V, &mx, d, next)
                     : avx2        ? row_sumexp_avx2(l, V, &mx, d, next)
                                   : row_sumexp_c(l, V, &mx, d);
#else
        double sum = row_sumexp_c(l, V, &mx, d);
#endif
        double row_lse = (double)mx + log(sum);
        lse[n] = (float)row_lse;
        total += row_lse - (double)l[t];
        count++;
        if (d) {
            float inv = (float)(1.0 / sum); /* sum >= 1: the max's own term is exp(0) */
#ifdef M2U_HAVE_AVX2_PATHS
            if (m2u_avx512())
                row_scale_avx512(d, V, inv);
            else if (avx2)
                row_scale_avx2(d, V, inv);
            else
#endif
                for (int i = 0; i < V; i++) d[i] *= inv;
            d[t] -= 1.0f;
        }
    }
    if (n_valid) *n_valid = count;
    return count ? total / count : 0.0;
}

/* ---- dropout ---------------------------------------------------------------------- */

static inline uint64_t splitmix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void m2u_dropout(float *out, const float *x, size_t n, float p, uint64_t seed, uint64_t tag) {
    if (p <= 0.0f) {
        if (out != x) memmove(out, x, n * sizeof(float));
        return;
    }
    uint64_t base = splitmix64(seed ^ splitmix64(tag));
    uint32_t thresh = (uint32_t)fmin((double)p * 4294967296.0, 4294967295.0);
    float keep_scale = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        uint32_t r = (uint32_t)(splitmix64(base + i) >> 32);
        out[i] = r >= thresh ? x[i] * keep_scale : 0.0f;
    }
}

const char *m2u_blas_threading_warning(void) {
    static char msg[256];
    if (openblas_get_parallel() == 2) return NULL; /* 0 sequential, 1 pthreads, 2 OpenMP */
    snprintf(msg, sizeof msg,
             "the loaded OpenBLAS (%s) is not the OpenMP build; expect oversubscribed threads. "
             "Install libopenblas0-openmp or run with OPENBLAS_NUM_THREADS=1",
             openblas_get_config());
    return msg;
}

void m2u_softmax_rows(float *x, int N, int V) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *r = x + (size_t)n * V;
        float mx = -INFINITY;
        for (int i = 0; i < V; i++) mx = r[i] > mx ? r[i] : mx;
        float sum = 0.0f;
        for (int i = 0; i < V; i++) {
            r[i] = expf(r[i] - mx);
            sum += r[i];
        }
        for (int i = 0; i < V; i++) r[i] /= sum;
    }
}
