/* Iterative radix-2 complex FFT on a real frame (imaginary part zero), see fft.h.
 * A real-input FFT of half the size would be twice as fast but would round
 * differently; the plain form is easy to check against a direct DFT
 * (tests/test_kernels.c), and the music analysis (data/build) and the front ends
 * are pinned to its exact bits.  The butterflies run VW at a time with each
 * stage's twiddles stored contiguously, the stages up to a half-length of 256
 * two per pass (four quarter-blocks in registers, with an AVX version picked at
 * run time), and the last stage writes only the bins that are returned: the same
 * multiplications and additions in the same order per element, so the results
 * are bit-identical to the scalar loop (no FMA: -std=c11 keeps GCC from
 * contracting; tests/test_kernels.c compares them bit for bit). */
#include "fft.h"

#include "m2u_error.h"
#include "vmath_avx2.h" /* m2u_avx2_fma */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX__)
#define VW 4 /* doubles per vector */
#else
#define VW 2
#endif
typedef double vd __attribute__((vector_size(VW * sizeof(double))));

#define TWO_PI 6.28318530717958647692

struct m2u_fft {
    int n;
    double *cs, *sn; /* stage with half-length h: cos / -sin of 2 pi k / (2h) at [h + k], k < h */
    int *rev;        /* bit reversal */
};

m2u_fft *m2u_fft_new(int n) {
    if (n < 2 || n > (1 << 20) || (n & (n - 1))) {
        m2u_fail("fft: size %d is not a power of two in 2..2^20", n);
        return NULL;
    }
    m2u_fft *p = calloc(1, sizeof *p);
    if (!p) goto oom;
    p->n = n;
    p->cs = malloc((size_t)n * sizeof(double));
    p->sn = malloc((size_t)n * sizeof(double));
    p->rev = malloc((size_t)n * sizeof(int));
    if (!p->cs || !p->sn || !p->rev) goto oom;
    /* the angle of twiddle k at stage h is that of k * (n / 2h) of n: the same value the
     * strided lookup into one n/2 table gave */
    for (int h = 1; h < n; h <<= 1)
        for (int k = 0; k < h; k++) {
            int i = k * (n / (2 * h));
            p->cs[h + k] = cos(TWO_PI * i / n);
            p->sn[h + k] = -sin(TWO_PI * i / n);
        }
    int bits = 0;
    while ((1 << bits) < n) bits++;
    for (int i = 0; i < n; i++) {
        int r = 0;
        for (int b = 0; b < bits; b++)
            if (i & (1 << b)) r |= 1 << (bits - 1 - b);
        p->rev[i] = r;
    }
    return p;
oom:
    m2u_fft_free(p);
    m2u_fail("fft: out of memory");
    return NULL;
}

void m2u_fft_free(m2u_fft *p) {
    if (!p) return;
    free(p->cs);
    free(p->sn);
    free(p->rev);
    free(p);
}

int m2u_fft_size(const m2u_fft *p) { return p->n; }

/* Two stages per pass (half, then 2 half, from half = 2 while 2 half < N) over groups of four
 * quarter-blocks held in registers: the same butterflies with the same twiddles in the same
 * order per element as one stage per pass, with half the loads and stores.  Returns the
 * half-length of the first stage left to do.  Written once for a vector type VT of W doubles:
 * the build's own width, and where GCC builds for the baseline x86-64 ISA an AVX version
 * besides (picked at run time), since the butterflies are bound by arithmetic. */
#ifndef FFT_FUSE_MAX
#define FFT_FUSE_MAX 256 /* measured: fusing larger stages lost to cache-set conflicts (4 quarter-blocks at power-of-two distances) */
#endif
#define FFT_LD(v, ptr) memcpy(&(v), (ptr), sizeof(v))
#define FFT_ST(ptr, e)                      \
    do {                                    \
        VT t_ = (e);                        \
        memcpy((ptr), &t_, sizeof t_);      \
    } while (0)
#define FFT_FUSED_PASSES(NAME, ATTR)                                                                              \
    ATTR static int NAME(const m2u_fft *p, double *re, double *im, int half) {                                  \
        const int N = p->n;                                                                                     \
        for (; 2 * half < N && half <= FFT_FUSE_MAX; half <<= 2) {                                              \
            const double *c1 = p->cs + half, *s1 = p->sn + half, *c2 = p->cs + 2 * half, *s2 = p->sn + 2 * half; \
            for (int i = 0; i < N; i += 4 * half) {                                                             \
                double *r0 = re + i, *r1 = r0 + half, *r2 = r1 + half, *r3 = r2 + half;                         \
                double *i0 = im + i, *i1 = i0 + half, *i2 = i1 + half, *i3 = i2 + half;                         \
                int k = 0;                                                                                      \
                for (; k + W <= half; k += W) {                                                                 \
                    VT w1r, w1i, war, wai, wbr, wbi, a0r, a0i, a1r, a1i, a2r, a2i, a3r, a3i;                    \
                    FFT_LD(w1r, c1 + k), FFT_LD(w1i, s1 + k), FFT_LD(war, c2 + k), FFT_LD(wai, s2 + k);         \
                    FFT_LD(wbr, c2 + half + k), FFT_LD(wbi, s2 + half + k);                                     \
                    FFT_LD(a0r, r0 + k), FFT_LD(a0i, i0 + k), FFT_LD(a1r, r1 + k), FFT_LD(a1i, i1 + k);         \
                    FFT_LD(a2r, r2 + k), FFT_LD(a2i, i2 + k), FFT_LD(a3r, r3 + k), FFT_LD(a3i, i3 + k);         \
                    /* stage half: (0, 1) and (2, 3) */                                                         \
                    VT tr = a1r * w1r - a1i * w1i, ti = a1r * w1i + a1i * w1r;                                  \
                    VT b1r = a0r - tr, b1i = a0i - ti, b0r = a0r + tr, b0i = a0i + ti;                          \
                    tr = a3r * w1r - a3i * w1i, ti = a3r * w1i + a3i * w1r;                                     \
                    VT b3r = a2r - tr, b3i = a2i - ti, b2r = a2r + tr, b2i = a2i + ti;                          \
                    /* stage 2 half: (0, 2) with twiddle k, (1, 3) with twiddle half + k */                     \
                    tr = b2r * war - b2i * wai, ti = b2r * wai + b2i * war;                                     \
                    FFT_ST(r2 + k, b0r - tr); FFT_ST(i2 + k, b0i - ti);                                         \
                    FFT_ST(r0 + k, b0r + tr); FFT_ST(i0 + k, b0i + ti);                                         \
                    tr = b3r * wbr - b3i * wbi, ti = b3r * wbi + b3i * wbr;                                     \
                    FFT_ST(r3 + k, b1r - tr); FFT_ST(i3 + k, b1i - ti);                                         \
                    FFT_ST(r1 + k, b1r + tr); FFT_ST(i1 + k, b1i + ti);                                         \
                }                                                                                               \
                for (; k < half; k++) {                                                                         \
                    double tr = r1[k] * c1[k] - i1[k] * s1[k], ti = r1[k] * s1[k] + i1[k] * c1[k];              \
                    double b1r = r0[k] - tr, b1i = i0[k] - ti, b0r = r0[k] + tr, b0i = i0[k] + ti;              \
                    tr = r3[k] * c1[k] - i3[k] * s1[k], ti = r3[k] * s1[k] + i3[k] * c1[k];                     \
                    double b3r = r2[k] - tr, b3i = i2[k] - ti, b2r = r2[k] + tr, b2i = i2[k] + ti;              \
                    tr = b2r * c2[k] - b2i * s2[k], ti = b2r * s2[k] + b2i * c2[k];                             \
                    r2[k] = b0r - tr, i2[k] = b0i - ti, r0[k] = b0r + tr, i0[k] = b0i + ti;                     \
                    tr = b3r * c2[half + k] - b3i * s2[half + k], ti = b3r * s2[half + k] + b3i * c2[half + k]; \
                    r3[k] = b1r - tr, i3[k] = b1i - ti, r1[k] = b1r + tr, i1[k] = b1i + ti;                     \
                }                                                                                               \
            }                                                                                                   \
        }                                                                                                       \
        return half;                                                                                            \
    }

/* The stages left after the fused passes, one per pass, then the last one (half = N / 2)
 * straight into the outputs, of which only bins 0..N/2 are wanted (the upper outputs are skipped
 * but bin N/2).  W at a time with the scalar code for a tail, the same products and sums per
 * element either way; written once for a vector type VT of W doubles like the fused passes. */
#define FFT_LATE_STAGES(NAME, ATTR)                                                                              \
    ATTR static void NAME(const m2u_fft *p, double *re, double *im, int half, double *out_re, double *out_im) {   \
        const int N = p->n;                                                                                     \
        for (; 2 * half < N; half <<= 1) {                                                                      \
            const double *cs = p->cs + half, *sn = p->sn + half;                                                \
            for (int i = 0; i < N; i += 2 * half) {                                                             \
                double *ra = re + i, *ia = im + i, *rb = ra + half, *ib = ia + half;                            \
                int k = 0;                                                                                      \
                for (; k + W <= half; k += W) {                                                                 \
                    VT wr, wi, xr, xi, ar, ai;                                                                  \
                    FFT_LD(wr, cs + k), FFT_LD(wi, sn + k), FFT_LD(xr, rb + k), FFT_LD(xi, ib + k);             \
                    FFT_LD(ar, ra + k), FFT_LD(ai, ia + k);                                                     \
                    VT tr = xr * wr - xi * wi, ti = xr * wi + xi * wr;                                          \
                    FFT_ST(rb + k, ar - tr); FFT_ST(ib + k, ai - ti);                                           \
                    FFT_ST(ra + k, ar + tr); FFT_ST(ia + k, ai + ti);                                           \
                }                                                                                               \
                for (; k < half; k++) {                                                                         \
                    double tr = rb[k] * cs[k] - ib[k] * sn[k], ti = rb[k] * sn[k] + ib[k] * cs[k];              \
                    rb[k] = ra[k] - tr, ib[k] = ia[k] - ti, ra[k] += tr, ia[k] += ti;                           \
                }                                                                                               \
            }                                                                                                   \
        }                                                                                                       \
        if (half == N) { /* no stage left (N = 2, or the fused passes ended the transform) */                  \
            memcpy(out_re, re, (size_t)(N / 2 + 1) * sizeof *re);                                              \
            memcpy(out_im, im, (size_t)(N / 2 + 1) * sizeof *im);                                              \
            return;                                                                                             \
        }                                                                                                       \
        const double *cs = p->cs + half, *sn = p->sn + half, *rb = re + half, *ib = im + half;                  \
        int k = 0;                                                                                              \
        for (; k + W <= half; k += W) {                                                                         \
            VT wr, wi, xr, xi, ar, ai;                                                                          \
            FFT_LD(wr, cs + k), FFT_LD(wi, sn + k), FFT_LD(xr, rb + k), FFT_LD(xi, ib + k);                     \
            FFT_LD(ar, re + k), FFT_LD(ai, im + k);                                                             \
            VT tr = xr * wr - xi * wi, ti = xr * wi + xi * wr;                                                  \
            FFT_ST(out_re + k, ar + tr); FFT_ST(out_im + k, ai + ti);                                           \
        }                                                                                                       \
        for (; k < half; k++) {                                                                                 \
            double tr = rb[k] * cs[k] - ib[k] * sn[k], ti = rb[k] * sn[k] + ib[k] * cs[k];                      \
            out_re[k] = re[k] + tr, out_im[k] = im[k] + ti;                                                     \
        }                                                                                                       \
        double tr = rb[0] * cs[0] - ib[0] * sn[0], ti = rb[0] * sn[0] + ib[0] * cs[0];                          \
        out_re[half] = re[0] - tr;                                                                              \
        out_im[half] = im[0] - ti;                                                                              \
    }

#define VT vd
#define W VW
FFT_FUSED_PASSES(fused_passes_base, )
FFT_LATE_STAGES(late_stages_base, )
#undef VT
#undef W

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__AVX__)
typedef double vd4 __attribute__((vector_size(4 * sizeof(double))));
#define VT vd4
#define W 4
FFT_FUSED_PASSES(fused_passes_avx, __attribute__((target("avx"))))
#undef VT
#undef W
typedef double vd8 __attribute__((vector_size(8 * sizeof(double))));
#define VT vd8
#define W 8
FFT_FUSED_PASSES(fused_passes_avx512, __attribute__((target("avx512f"))))
#undef VT
#undef W

/* 4 x 4 transpose of the 128-bit lanes of four vectors (its own inverse): lane j of out[i] is
 * lane i of in[j] */
__attribute__((target("avx512f"))) static inline void lanes4x4(__m512d v[4]) {
    __m512d t0 = _mm512_shuffle_f64x2(v[0], v[1], 0x44), t1 = _mm512_shuffle_f64x2(v[0], v[1], 0xEE);
    __m512d t2 = _mm512_shuffle_f64x2(v[2], v[3], 0x44), t3 = _mm512_shuffle_f64x2(v[2], v[3], 0xEE);
    v[0] = _mm512_shuffle_f64x2(t0, t2, 0x88);
    v[1] = _mm512_shuffle_f64x2(t0, t2, 0xDD);
    v[2] = _mm512_shuffle_f64x2(t1, t3, 0x88);
    v[3] = _mm512_shuffle_f64x2(t1, t3, 0xDD);
}

/* The first fused pass (stages of half-length 2 and 4), which the W-wide loop leaves to scalar
 * code (2 < W): four 8-value blocks at a time, their lanes transposed so that each vector holds
 * one quarter-block (2 values) of each of the four.  The butterflies are the fused loop's, with
 * the same products and sums per element.  N >= 32. */
__attribute__((target("avx512f"))) static void first_pass_avx512(const m2u_fft *p, double *re, double *im) {
    const int N = p->n;
    const double *c1 = p->cs + 2, *s1 = p->sn + 2, *c2 = p->cs + 4, *s2 = p->sn + 4;
    const vd8 w1r = {c1[0], c1[1], c1[0], c1[1], c1[0], c1[1], c1[0], c1[1]};
    const vd8 w1i = {s1[0], s1[1], s1[0], s1[1], s1[0], s1[1], s1[0], s1[1]};
    const vd8 war = {c2[0], c2[1], c2[0], c2[1], c2[0], c2[1], c2[0], c2[1]};
    const vd8 wai = {s2[0], s2[1], s2[0], s2[1], s2[0], s2[1], s2[0], s2[1]};
    const vd8 wbr = {c2[2], c2[3], c2[2], c2[3], c2[2], c2[3], c2[2], c2[3]};
    const vd8 wbi = {s2[2], s2[3], s2[2], s2[3], s2[2], s2[3], s2[2], s2[3]};
    for (int i = 0; i < N; i += 32) {
        __m512d R[4], I[4];
        for (int j = 0; j < 4; j++) R[j] = _mm512_loadu_pd(re + i + 8 * j), I[j] = _mm512_loadu_pd(im + i + 8 * j);
        lanes4x4(R), lanes4x4(I);
        vd8 a0r = (vd8)R[0], a1r = (vd8)R[1], a2r = (vd8)R[2], a3r = (vd8)R[3];
        vd8 a0i = (vd8)I[0], a1i = (vd8)I[1], a2i = (vd8)I[2], a3i = (vd8)I[3];
        vd8 tr = a1r * w1r - a1i * w1i, ti = a1r * w1i + a1i * w1r;
        vd8 b1r = a0r - tr, b1i = a0i - ti, b0r = a0r + tr, b0i = a0i + ti;
        tr = a3r * w1r - a3i * w1i, ti = a3r * w1i + a3i * w1r;
        vd8 b3r = a2r - tr, b3i = a2i - ti, b2r = a2r + tr, b2i = a2i + ti;
        tr = b2r * war - b2i * wai, ti = b2r * wai + b2i * war;
        R[2] = (__m512d)(b0r - tr), I[2] = (__m512d)(b0i - ti), R[0] = (__m512d)(b0r + tr), I[0] = (__m512d)(b0i + ti);
        tr = b3r * wbr - b3i * wbi, ti = b3r * wbi + b3i * wbr;
        R[3] = (__m512d)(b1r - tr), I[3] = (__m512d)(b1i - ti), R[1] = (__m512d)(b1r + tr), I[1] = (__m512d)(b1i + ti);
        lanes4x4(R), lanes4x4(I);
        for (int j = 0; j < 4; j++) _mm512_storeu_pd(re + i + 8 * j, R[j]), _mm512_storeu_pd(im + i + 8 * j, I[j]);
    }
}
#define VT vd8
#define W 8
FFT_LATE_STAGES(late_stages_avx512, __attribute__((target("avx512f"))))
#undef VT
#undef W
/* the kernels' one CPU test (AVX2 and FMA imply AVX; the AVX code has no FMA to use) */
static int fused_passes(const m2u_fft *p, double *re, double *im) {
    if (m2u_avx512()) {
        if (p->n < 32) return fused_passes_avx512(p, re, im, 2);
        first_pass_avx512(p, re, im);
        return fused_passes_avx512(p, re, im, 8);
    }
    return m2u_avx2_fma() ? fused_passes_avx(p, re, im, 2) : fused_passes_base(p, re, im, 2);
}
static void late_stages(const m2u_fft *p, double *re, double *im, int half, double *out_re, double *out_im) {
    if (m2u_avx512()) late_stages_avx512(p, re, im, half, out_re, out_im);
    else late_stages_base(p, re, im, half, out_re, out_im);
}
#else
static int fused_passes(const m2u_fft *p, double *re, double *im) { return fused_passes_base(p, re, im, 2); }
static void late_stages(const m2u_fft *p, double *re, double *im, int half, double *out_re, double *out_im) {
    late_stages_base(p, re, im, half, out_re, out_im);
}
#endif

void m2u_fft_real(const m2u_fft *p, const double *x, double *out_re, double *out_im, double *work) {
    const int N = p->n;
    double *re = work, *im = work + N;
    /* bit reversal fused with the first stage: positions 2m and 2m+1 receive x[r] and
     * x[r + N/2] (r = rev[2m]); the butterfly is the general one with their zero
     * imaginary parts written out */
    const double wr1 = p->cs[1], wi1 = p->sn[1];
    for (int m = 0; m < N; m += 2) {
        const double xa = x[p->rev[m]], xb = x[p->rev[m] + N / 2];
        double tr = xb * wr1 - 0.0 * wi1;
        double ti = xb * wi1 + 0.0 * wr1;
        re[m + 1] = xa - tr;
        im[m + 1] = 0.0 - ti;
        re[m] = xa + tr;
        im[m] = 0.0 + ti;
    }
    late_stages(p, re, im, fused_passes(p, re, im), out_re, out_im);
}
