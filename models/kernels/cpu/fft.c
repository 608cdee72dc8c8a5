/* Iterative radix-2 complex FFT on a real frame (imaginary part zero), see fft.h.
 * A real-input FFT of half the size would be twice as fast; the front ends that
 * use this spend their time in the networks after them, and the plain form is
 * easy to check against a direct DFT (tests/test_kernels.c). */
#include "fft.h"

#include "m2u_error.h"

#include <math.h>
#include <stdlib.h>

#define TWO_PI 6.28318530717958647692

struct m2u_fft {
    int n;
    double *cs, *sn; /* cos / -sin of 2 pi k / n, k < n/2 */
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
    p->cs = malloc((size_t)n / 2 * sizeof(double));
    p->sn = malloc((size_t)n / 2 * sizeof(double));
    p->rev = malloc((size_t)n * sizeof(int));
    if (!p->cs || !p->sn || !p->rev) goto oom;
    for (int i = 0; i < n / 2; i++) {
        p->cs[i] = cos(TWO_PI * i / n);
        p->sn[i] = -sin(TWO_PI * i / n);
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
    for (int i = 0; i < N; i++) {
        re[p->rev[i]] = x[i];
        im[p->rev[i]] = 0.0;
    }
    for (int len = 2; len <= N; len <<= 1) {
        int half = len >> 1, step = N / len;
        for (int i = 0; i < N; i += len) {
            for (int k = 0; k < half; k++) {
                double wr = p->cs[k * step], wi = p->sn[k * step];
                int a = i + k, b = a + half;
                double tr = re[b] * wr - im[b] * wi;
                double ti = re[b] * wi + im[b] * wr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
    }
    for (int k = 0; k <= N / 2; k++) {
        out_re[k] = re[k];
        out_im[k] = im[k];
    }
}
