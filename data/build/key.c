/* Chromagram and key estimation (see key.h). */
#include "key.h"

#include "fft.h"
#include "m2u_error.h"

#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <stdlib.h>
#include <string.h>

#define TWO_PI 6.28318530717958647692

/* ---- STFT ---------------------------------------------------------------------
 * A periodic-Hann-windowed frame through the shared double FFT (kernels/fft.h).
 * The analysis spends far more time in aubio than here. */
struct m2u_stft {
    int n;
    m2u_fft *fft;
    double *win, *x, *re, *im, *work;
};

m2u_stft *m2u_stft_new(int n_fft) {
    if (n_fft < 16 || n_fft > 65536 || (n_fft & (n_fft - 1))) {
        m2u_fail("stft: size %d is not a power of two in 16..65536", n_fft);
        return NULL;
    }
    m2u_stft *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->n = n_fft;
    s->fft = m2u_fft_new(n_fft);
    if (!s->fft) {
        m2u_stft_free(s);
        return NULL;
    }
    s->win = malloc((size_t)n_fft * sizeof(double));
    s->x = malloc((size_t)n_fft * sizeof(double));
    s->re = malloc(((size_t)n_fft / 2 + 1) * sizeof(double));
    s->im = malloc(((size_t)n_fft / 2 + 1) * sizeof(double));
    s->work = malloc(2 * (size_t)n_fft * sizeof(double));
    if (!s->win || !s->x || !s->re || !s->im || !s->work) goto oom;
    for (int i = 0; i < n_fft; i++) s->win[i] = 0.5 - 0.5 * cos(TWO_PI * i / n_fft); /* periodic Hann */
    return s;
oom:
    m2u_stft_free(s);
    m2u_fail("stft: out of memory");
    return NULL;
}

void m2u_stft_free(m2u_stft *s) {
    if (!s) return;
    m2u_fft_free(s->fft);
    free(s->win);
    free(s->x);
    free(s->re);
    free(s->im);
    free(s->work);
    free(s);
}

int m2u_stft_size(const m2u_stft *s) { return s->n; }

void m2u_stft_frame(m2u_stft *s, const float *pcm, size_t n, long long start, double *mag) {
    const int N = s->n;
    /* the samples inside the signal, [i0, i1), without a test per sample (so the loop is
     * vectorised); zeros around them */
    long long lo = start < 0 ? -start : 0, hi = (long long)n - start;
    int i0 = lo > N ? N : (int)lo, i1 = hi < i0 ? i0 : hi > N ? N : (int)hi;
    memset(s->x, 0, (size_t)i0 * sizeof *s->x); /* 0 x the window (>= 0): +0 */
    int i = i0;
#if defined(__SSE2__)
    for (; i + 2 <= i1; i += 2) { /* two floats widened, times the window: the scalar loop's bits */
        __m128d x = _mm_cvtps_pd(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)(pcm + start + i))));
        _mm_storeu_pd(s->x + i, _mm_mul_pd(x, _mm_loadu_pd(s->win + i)));
    }
#endif
    for (; i < i1; i++) s->x[i] = (double)pcm[start + i] * s->win[i];
    memset(s->x + i1, 0, (size_t)(N - i1) * sizeof *s->x);
    m2u_fft_real(s->fft, s->x, s->re, s->im, s->work);
    int k = 0;
#if defined(__SSE2__)
    /* sqrtpd is IEEE's correctly rounded square root, as sqrt() is: the same bits; the C call
     * is not vectorised because it may set errno */
    for (; k + 2 <= N / 2 + 1; k += 2) {
        __m128d re = _mm_loadu_pd(s->re + k), im = _mm_loadu_pd(s->im + k);
        _mm_storeu_pd(mag + k, _mm_sqrt_pd(_mm_add_pd(_mm_mul_pd(re, re), _mm_mul_pd(im, im))));
    }
#endif
    for (; k <= N / 2; k++) mag[k] = sqrt(s->re[k] * s->re[k] + s->im[k] * s->im[k]);
}

/* ---- chroma ----------------------------------------------------------------- */

#define HIST_BINS 240 /* 5 cents each over one octave */
#define CHROMA_FMIN 80.0
#define CHROMA_FMAX 5000.0

int m2u_chroma(const float *pcm, size_t n, int rate, double chroma[12], double *tuning_cents) {
    memset(chroma, 0, 12 * sizeof(double));
    if (tuning_cents) *tuning_cents = 0;
    if (rate < 4000 || rate > 384000) return m2u_fail("chroma: sample rate %d out of range 4000..384000", rate);
    if (!pcm && n) return m2u_fail("chroma: no samples");
    /* ~186 ms windows (4096 at 22.05 kHz): 5.4 Hz bins separate semitones down to ~100 Hz */
    int n_fft = 256;
    while (n_fft < 0.15 * rate && n_fft < 65536) n_fft *= 2;
    int hop = n_fft / 2;
    m2u_stft *st = m2u_stft_new(n_fft);
    double *mag = malloc(((size_t)n_fft / 2 + 1) * sizeof(double));
    if (!st || !mag) {
        m2u_stft_free(st);
        free(mag);
        return m2u_fail("chroma: out of memory");
    }
    double hist[HIST_BINS] = {0};
    double sc = 0, ss = 0; /* tuning: weighted circular mean of each peak's deviation */
    int kmin = (int)ceil(CHROMA_FMIN * n_fft / rate);
    int kmax = (int)floor(CHROMA_FMAX * n_fft / rate);
    if (kmin < 1) kmin = 1;
    if (kmax > n_fft / 2 - 1) kmax = n_fft / 2 - 1;
    /* a full-scale sine peaks at n_fft/4; ignore peaks under -120 dBFS (float noise) */
    const double floor_abs = 1e-6 * n_fft / 4;
    for (size_t start = 0; start < n || start == 0; start += (size_t)hop) {
        m2u_stft_frame(st, pcm, n, (long long)start, mag);
        double mx = 0;
        for (int k = kmin; k <= kmax; k++)
            if (mag[k] > mx) mx = mag[k];
        double thr = mx * 1e-3; /* 60 dB under the frame's strongest peak */
        if (thr < floor_abs) thr = floor_abs;
        for (int k = kmin; k <= kmax; k++) {
            if (!(mag[k] > thr && mag[k] > mag[k - 1] && mag[k] >= mag[k + 1])) continue;
            double a = log(mag[k - 1] + 1e-300), b = log(mag[k]), c = log(mag[k + 1] + 1e-300);
            double den = a - 2 * b + c;
            double p = den < 0 ? 0.5 * (a - c) / den : 0.0;
            if (p > 0.5) p = 0.5;
            if (p < -0.5) p = -0.5;
            double f = (k + p) * rate / n_fft;
            double amp = exp(b - 0.25 * (a - c) * p);
            double cents = 1200.0 * log2(f / 440.0) + 6900.0; /* MIDI pitch x 100: C = 0 mod 1200 */
            long idx = (long)floor(cents / 5.0 + 0.5);
            idx %= HIST_BINS;
            if (idx < 0) idx += HIST_BINS;
            double w = sqrt(amp);
            hist[idx] += w;
            double ang = TWO_PI * (cents / 100.0 - floor(cents / 100.0));
            sc += w * cos(ang);
            ss += w * sin(ang);
        }
        if (start + (size_t)hop >= n) break;
    }
    m2u_stft_free(st);
    free(mag);

    double total = 0;
    for (int i = 0; i < HIST_BINS; i++) total += hist[i];
    if (total <= 0) return 0; /* silence: no peaks, no key */
    double tuning = (sc == 0 && ss == 0) ? 0.0 : atan2(ss, sc) / TWO_PI * 100.0;
    if (tuning_cents) *tuning_cents = tuning;
    /* fold: each histogram bin feeds the pitch class within 50 cents of it, weighted
     * cos^2 by the distance so that in-between energy counts little */
    double sum = 0;
    for (int pc = 0; pc < 12; pc++) {
        double centre = pc * 100.0 + tuning, acc = 0;
        for (int i = 0; i < HIST_BINS; i++) {
            double d = fmod(i * 5.0 - centre + 1800.0, 1200.0) - 600.0; /* -600..600 */
            if (fabs(d) >= 50.0) continue;
            double w = cos(0.25 * TWO_PI * d / 50.0);
            acc += hist[i] * w * w;
        }
        chroma[pc] = acc;
        sum += acc;
    }
    if (sum > 0)
        for (int pc = 0; pc < 12; pc++) chroma[pc] /= sum;
    return 0;
}

/* ---- key ---------------------------------------------------------------------- */

static const double PROFILES[2][2][12] = {
    /* Krumhansl & Kessler (1982) probe-tone ratings, tonic first */
    {{6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88},
     {6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17}},
    /* Temperley (1999) */
    {{5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0},
     {5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0}},
};

static double pearson(const double *x, const double *y) {
    double mx = 0, my = 0;
    for (int i = 0; i < 12; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= 12;
    my /= 12;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < 12; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    if (sxx <= 0 || syy <= 0) return 0;
    return sxy / sqrt(sxx * syy);
}

int m2u_key_from_chroma(const double chroma[12], m2u_key_profile profile, int *key, int *mode,
                        double *confidence, double scores[24]) {
    *key = *mode = -1;
    *confidence = 0;
    if (profile != M2U_KEY_PROFILE_KRUMHANSL && profile != M2U_KEY_PROFILE_TEMPERLEY)
        return m2u_fail("key: unknown profile %d", (int)profile);
    int flat = 1;
    for (int i = 0; i < 12; i++) {
        if (!isfinite(chroma[i]) || chroma[i] < 0) return m2u_fail("key: chroma[%d] = %g is not >= 0", i, chroma[i]);
        if (chroma[i] != chroma[0]) flat = 0;
    }
    if (scores)
        for (int i = 0; i < 24; i++) scores[i] = 0;
    if (flat) return 0;
    double best = -2;
    for (int md = 0; md < 2; md++) {
        for (int tonic = 0; tonic < 12; tonic++) {
            double rot[12];
            for (int pc = 0; pc < 12; pc++) rot[pc] = PROFILES[profile][md][(pc - tonic + 12) % 12];
            double r = pearson(chroma, rot);
            if (scores) scores[md * 12 + tonic] = r;
            if (r > best) { /* strict: ties keep the earlier (major, lower tonic) */
                best = r;
                *key = tonic;
                *mode = md;
            }
        }
    }
    *confidence = best < 0 ? 0 : best > 1 ? 1 : best;
    return 0;
}

const char *m2u_key_name(int key, int mode) {
    static const char *major[12] = {"C major",  "Db major", "D major",  "Eb major", "E major",  "F major",
                                    "F# major", "G major",  "Ab major", "A major",  "Bb major", "B major"};
    static const char *minor[12] = {"C minor",  "C# minor", "D minor",  "Eb minor", "E minor",  "F minor",
                                    "F# minor", "G minor",  "G# minor", "A minor",  "Bb minor", "B minor"};
    if (key < 0 || key > 11) return "none";
    if (mode == M2U_MODE_MAJOR) return major[key];
    if (mode == M2U_MODE_MINOR) return minor[key];
    return "none";
}

double m2u_key_mirex_score(int ref_key, int ref_mode, int est_key, int est_mode) {
    if (ref_key < 0 || est_key < 0 || ref_key > 11 || est_key > 11) return 0;
    if (ref_mode == est_mode) {
        if (est_key == ref_key) return 1.0;
        if ((est_key - ref_key + 12) % 12 == 7) return 0.5;
        return 0;
    }
    if (ref_mode == M2U_MODE_MAJOR && est_mode == M2U_MODE_MINOR && est_key == (ref_key + 9) % 12) return 0.3;
    if (ref_mode == M2U_MODE_MINOR && est_mode == M2U_MODE_MAJOR && est_key == (ref_key + 3) % 12) return 0.3;
    if (est_key == ref_key) return 0.2;
    return 0;
}
