/* Iterative radix-2 complex FFT on a real frame (imaginary part zero), see fft.h.
 * A real-input FFT of half the size would be twice as fast but would round
 * differently; the plain form is easy to check against a direct DFT
 * (tests/test_kernels.c), and the music analysis (data/build) and the front ends
 * are pinned to its exact bits.  The butterflies run VW at a time with each
 * stage's twiddles stored contiguously: the same multiplications and additions
 * in the same order per element, so the results are bit-identical to the scalar
 * loop (no FMA: -std=c11 keeps GCC from contracting). */
#include "fft.h"

#include "m2u_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX__)
#define VW 4 /* doubles per vector */
#else
#define VW 2
#endif
typedef double vd __attribute__((vector_size(VW * sizeof(double))));

static inline vd v_load(const double *p) {
    vd v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void v_store(double *p, vd v) { memcpy(p, &v, sizeof v); }

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
    for (int half = 2; half < N; half <<= 1) {
        const double *cs = p->cs + half, *sn = p->sn + half;
        for (int i = 0; i < N; i += 2 * half) {
            double *ra = re + i, *ia = im + i, *rb = ra + half, *ib = ia + half;
            int k = 0;
            for (; k + VW <= half; k += VW) {
                vd wr = v_load(cs + k), wi = v_load(sn + k);
                vd xr = v_load(rb + k), xi = v_load(ib + k), ar = v_load(ra + k), ai = v_load(ia + k);
                vd tr = xr * wr - xi * wi;
                vd ti = xr * wi + xi * wr;
                v_store(rb + k, ar - tr);
                v_store(ib + k, ai - ti);
                v_store(ra + k, ar + tr);
                v_store(ia + k, ai + ti);
            }
            for (; k < half; k++) {
                double wr = cs[k], wi = sn[k];
                double tr = rb[k] * wr - ib[k] * wi;
                double ti = rb[k] * wi + ib[k] * wr;
                rb[k] = ra[k] - tr;
                ib[k] = ia[k] - ti;
                ra[k] += tr;
                ia[k] += ti;
            }
        }
    }
    for (int k = 0; k <= N / 2; k++) {
        out_re[k] = re[k];
        out_im[k] = im[k];
    }
}
