/* Built-in music analysis (see analysis.h for every definition). */
#include "analysis.h"

#include "backend.h" /* m2u_parallel_tasks */
#include "m2u_error.h"
#include "tensor.h" /* m2u_log1p_scaled */
#include "tracker.h"

#include <ebur128.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

static int cmp_double(const void *pa, const void *pb) {
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

/* numpy-style linear-interpolated percentile of a sorted array */
static double percentile_sorted(const double *v, size_t m, double p) {
    double idx = p * (double)(m - 1);
    size_t lo = (size_t)floor(idx), hi = lo + 1 < m ? lo + 1 : lo;
    return v[lo] + (v[hi] - v[lo]) * (idx - (double)lo);
}

static double clamp1(double x) { return x < -1 ? -1 : x > 1 ? 1 : x; }

/* Onset-strength envelope (spectral flux) from analyze_spectrum, used by the
 * tempo's metrical-level check. */
typedef struct {
    double *v; /* per frame */
    size_t n;
    double frame_s, offset_s; /* frame t is centred at offset_s + t * frame_s */
} odf_env;

/* ---- tempo and beats (aubio, through tracker.c) -------------------------------------------------- */

/* Onset strength at time t: the envelope's maximum within +-35 ms (beat times
 * from aubio are not sample-exact). */
static double odf_at(const odf_env *o, double t) {
    long a = (long)floor((t - 0.035 - o->offset_s) / o->frame_s), b = (long)ceil((t + 0.035 - o->offset_s) / o->frame_s);
    double mx = 0;
    for (long j = a < 0 ? 0 : a; j <= b && (size_t)j < o->n; j++)
        if (o->v[j] > mx) mx = o->v[j];
    return mx;
}

/* 60 / median inter-beat interval and the share of intervals within 8 % of it;
 * 0, 0 with fewer than 3 beats. */
static int tempo_from_beats(const double *beats, size_t n, double *bpm, double *conf) {
    *bpm = *conf = 0;
    if (n < 3) return 0;
    size_t m = 0;
    double *ibi = malloc(n * sizeof *ibi);
    if (!ibi) return m2u_fail("analysis: out of memory");
    for (size_t i = 0; i + 1 < n; i++) ibi[m++] = beats[i + 1] - beats[i];
    if (m >= 2) {
        qsort(ibi, m, sizeof *ibi, cmp_double);
        double med = percentile_sorted(ibi, m, 0.5);
        size_t steady = 0;
        for (size_t i = 0; i < m; i++)
            if (fabs(ibi[i] - med) <= 0.08 * med) steady++;
        if (med > 0) {
            *bpm = 60.0 / med;
            *conf = (double)steady / (double)m;
        }
    }
    free(ibi);
    return 0;
}

/* the tempo from out->beat_s (m2u_beat_times) and the spectrum's onset envelope */
static int analyze_tempo(const odf_env *odf, m2u_analysis *out) {
    if (tempo_from_beats(out->beat_s, out->n_beats, &out->tempo_bpm, &out->tempo_confidence) != 0) return -1;
    /* Metrical-level check.  aubio's tracker weights beat periods around 120 bpm,
     * so a slow piece with a running eighth-note pulse (hi-hats, arpeggios) is
     * often tracked at twice its tempo.  Then every other beat falls on an
     * off-beat eighth with much weaker onsets; at the notated level the two
     * alternating beat phases are comparably strong (kick and snare, bass on
     * every beat).  So when the tempo is above M2U_TEMPO_HALVE_MIN_BPM and one
     * phase's mean onset strength is at least M2U_TEMPO_HALVE_RATIO times the
     * other's, keep the strong phase and halve the tempo. */
    if (out->tempo_bpm > M2U_TEMPO_HALVE_MIN_BPM && out->n_beats >= 8 && odf->n) {
        double s[2] = {0, 0};
        size_t c[2] = {0, 0};
        for (size_t i = 0; i < out->n_beats; i++) {
            s[i % 2] += odf_at(odf, out->beat_s[i]);
            c[i % 2]++;
        }
        double m0 = s[0] / (double)c[0], m1 = s[1] / (double)c[1];
        size_t strong = m0 >= m1 ? 0 : 1;
        double hi = strong ? m1 : m0, lo = strong ? m0 : m1;
        if (hi > 0 && hi >= M2U_TEMPO_HALVE_RATIO * lo) {
            size_t k = 0;
            for (size_t i = strong; i < out->n_beats; i += 2) out->beat_s[k++] = out->beat_s[i];
            out->n_beats = k;
            if (tempo_from_beats(out->beat_s, out->n_beats, &out->tempo_bpm, &out->tempo_confidence) != 0) return -1;
        }
    }
    if (out->tempo_bpm == 0) out->tempo_confidence = 0;
    return 0;
}

static int analyze_onsets(const float *pcm, size_t n, int rate, m2u_analysis *out) {
    size_t count;
    if (m2u_onset_count(pcm, n, rate, &count) != 0) return -1;
    out->onset_density = (double)count / out->duration_s;
    return 0;
}

/* ---- loudness (libebur128) ----------------------------------------------------- */

static int analyze_loudness(const float *pcm, size_t n, int rate, m2u_analysis *out) {
    ebur128_state *st = ebur128_init(1, (unsigned long)rate, EBUR128_MODE_I | EBUR128_MODE_LRA);
    if (!st) return m2u_fail("analysis: libebur128 init failed (rate %d)", rate);
    /* mono: channel 0 is weighted 1 (ebur128's default map is left, right, ...) */
    int rc = ebur128_add_frames_float(st, pcm, n);
    double lufs = -HUGE_VAL, lra = 0;
    if (rc == EBUR128_SUCCESS) rc = ebur128_loudness_global(st, &lufs);
    if (rc == EBUR128_SUCCESS) rc = ebur128_loudness_range(st, &lra);
    ebur128_destroy(&st);
    if (rc != EBUR128_SUCCESS) return m2u_fail("analysis: libebur128 error %d", rc);
    /* below the absolute gate libebur128 answers -inf: keep fields finite */
    out->loudness_lufs = isfinite(lufs) && lufs > M2U_LOUDNESS_FLOOR_LUFS ? lufs : M2U_LOUDNESS_FLOOR_LUFS;
    out->loudness_range_lu = isfinite(lra) && lra > 0 ? lra : 0;
    return 0;
}

/* ---- dynamics -------------------------------------------------------------------- */

static int analyze_dynamics(const float *pcm, size_t n, int rate, m2u_analysis *out) {
    size_t w = (size_t)lround(0.4 * rate), h = (size_t)lround(0.1 * rate);
    if (w > n) w = n;
    size_t count = n <= w ? 1 : (n - w) / h + 1;
    double *lev = malloc(count * sizeof *lev);
    if (!lev) return m2u_fail("analysis: out of memory");
    size_t m = 0;
    for (size_t i = 0; i < count; i++) {
        double e = 0;
        for (size_t j = i * h; j < i * h + w; j++) e += (double)pcm[j] * pcm[j];
        double db = 10.0 * log10(e / (double)w + 1e-30);
        if (db >= -70.0) lev[m++] = db;
    }
    if (m >= 2) {
        qsort(lev, m, sizeof *lev, cmp_double);
        out->dynamics_db = percentile_sorted(lev, m, 0.95) - percentile_sorted(lev, m, 0.10);
    }
    free(lev);
    return 0;
}

/* ---- brightness and percussiveness (one spectrogram, streamed) ------------------ */

#define HPSS_HALF 8 /* medians over 2*8+1 = 17 frames / bins */
#define HPSS_LEN (2 * HPSS_HALF + 1)

/* The medians come from sorted sliding windows, padded with +inf to a fixed
 * length: a window holding m values has them in slots 0..m-1 and its median in
 * slot (m-1)/2.  A step removes the value leaving and inserts the one entering
 * without a branch on the data, so it runs as vector code:
 *   v[i]   = w[i] < out ? w[i] : w[i+1]        (w with one copy of out removed)
 *   new[i] = max(min(v[i], in), v[i-1])        (v with in inserted; v[-1] = -inf)
 * Removing or inserting +inf changes nothing, so filling and draining windows use
 * the same step.  Only comparisons and copies: the medians are exactly those of a
 * sort, whichever of several equal copies is removed. */
#if defined(__AVX__)
#define VW 4 /* doubles per vector */
#else
#define VW 2
#endif
typedef double vd __attribute__((vector_size(VW * sizeof(double))));
typedef long long vl __attribute__((vector_size(VW * sizeof(long long))));

static inline vd v_load(const double *p) {
    vd v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void v_store(double *p, vd v) { memcpy(p, &v, sizeof v); }
static inline vd v_sel(vl m, vd a, vd b) { return (vd)(((vl)a & m) | ((vl)b & ~m)); }
/* x86's min/max instructions are defined as exactly these selections (a < b ? a : b,
 * a > b ? a : b), one instruction instead of four */
#if defined(__AVX__)
static inline vd v_min(vd a, vd b) { return (vd)_mm256_min_pd((__m256d)a, (__m256d)b); }
static inline vd v_max(vd a, vd b) { return (vd)_mm256_max_pd((__m256d)a, (__m256d)b); }
#elif defined(__SSE2__)
static inline vd v_min(vd a, vd b) { return (vd)_mm_min_pd((__m128d)a, (__m128d)b); }
static inline vd v_max(vd a, vd b) { return (vd)_mm_max_pd((__m128d)a, (__m128d)b); }
#else
static inline vd v_min(vd a, vd b) { return v_sel(a < b, a, b); }
static inline vd v_max(vd a, vd b) { return v_sel(a > b, a, b); }
#endif
static inline vd v_set1(double x) {
    vd v;
    for (int i = 0; i < VW; i++) v[i] = x;
    return v;
}

/* Time windows, one per bin, VW bins side by side: slot i of bin k at tw[i * nbp + k]
 * (nbp = bins rounded up to TW_ALIGN, a multiple of VW and of the 8 lanes below).  out[k]
 * leaves and in[k] enters bin k's window; NULL stands for +inf (nothing). */
#define TW_ALIGN 8
#if defined(__x86_64__) && defined(__GNUC__)
/* The same step on 8 bins at a time where the CPU has AVX-512: only comparisons and copies,
 * so the windows hold exactly the same values (4 % of a MUCaps build on 2 lanes). */
typedef double vd8 __attribute__((vector_size(8 * sizeof(double))));
typedef long long vl8 __attribute__((vector_size(8 * sizeof(long long))));
__attribute__((target("avx512f"))) static void tw_step8(double *tw, int nbp, const double *out, const double *in) {
    vd8 inf;
    for (int i = 0; i < 8; i++) inf[i] = HUGE_VAL;
    for (int k = 0; k < nbp; k += 8) {
        vd8 o, x, w, prev = -inf;
        if (out) memcpy(&o, out + k, sizeof o); else o = inf;
        if (in) memcpy(&x, in + k, sizeof x); else x = inf;
        memcpy(&w, tw + k, sizeof w);
        for (int i = 0; i < HPSS_LEN; i++) {
            vd8 wn = inf;
            if (i + 1 < HPSS_LEN) memcpy(&wn, tw + (size_t)(i + 1) * (size_t)nbp + k, sizeof wn);
            vl8 m = w < o;
            vd8 v = (vd8)(((vl8)w & m) | ((vl8)wn & ~m));
            vd8 r = (vd8)_mm512_max_pd((__m512d)_mm512_min_pd((__m512d)v, (__m512d)x), (__m512d)prev);
            memcpy(tw + (size_t)i * (size_t)nbp + k, &r, sizeof r);
            prev = v;
            w = wn;
        }
    }
}
#define HAVE_TW_STEP8 1
#endif

/* -1: not decided; 0: the portable paths; 1: the AVX-512 ones (m2u_analysis_wide) */
static _Atomic int g_wide = -1;

int m2u_analysis_wide(int want) {
    int have = 0;
#ifdef HAVE_TW_STEP8
    __builtin_cpu_init();
    have = __builtin_cpu_supports("avx512f") != 0;
#endif
    g_wide = want && have;
    return want && have;
}

static int wide_cpu(void) {
    int wd = g_wide;
    return wd >= 0 ? wd : m2u_analysis_wide(1);
}

static void tw_step(double *tw, int nbp, const double *out, const double *in) {
#ifdef HAVE_TW_STEP8
    if (wide_cpu()) {
        tw_step8(tw, nbp, out, in);
        return;
    }
#endif
    const vd inf = v_set1(HUGE_VAL);
    for (int k = 0; k < nbp; k += VW) {
        vd o = out ? v_load(out + k) : inf, x = in ? v_load(in + k) : inf;
        vd prev = -inf, w = v_load(tw + k);
        for (int i = 0; i < HPSS_LEN; i++) {
            vd wn = i + 1 < HPSS_LEN ? v_load(tw + (size_t)(i + 1) * (size_t)nbp + k) : inf;
            vd v = v_sel(w < o, w, wn);
            v_store(tw + (size_t)i * (size_t)nbp + k, v_max(v_min(v, x), prev));
            prev = v;
            w = wn;
        }
    }
}

/* Median over bins k-8..k+8 (those that exist) of one frame's magnitudes, for every bin.
 * The window steps one bin at a time, each step depending on the last, so it is kept
 * in registers where SSE2 is there (the memory form reloads what the step before just
 * stored at an offset of one slot, which stalls on store forwarding). */
#if defined(__SSE2__)
#define FW_REGS ((HPSS_LEN + 1) / 2) /* pairs of slots */
static void freq_medians(const double *mag, int nb, double *med) {
    __m128d w[FW_REGS + 1], v[FW_REGS];
    double wb[2 * FW_REGS];
    for (int j = 0; j <= FW_REGS; j++) w[j] = _mm_set1_pd(HUGE_VAL);
    const __m128d ninf = _mm_set1_pd(-HUGE_VAL);
    int m = 0;
    for (int k = -HPSS_HALF; k < nb; k++) {
        /* bin k-9 leaves, bin k+8 enters: the window is then bins k-8..k+8 */
        int lo = k - HPSS_HALF - 1, hi = k + HPSS_HALF;
        double out = lo >= 0 ? mag[lo] : HUGE_VAL, in = hi < nb ? mag[hi] : HUGE_VAL;
        if (lo >= 0 || hi < nb) {
            const __m128d o = _mm_set1_pd(out), x = _mm_set1_pd(in);
            /* unrolled, so that w and v stay in registers */
#pragma GCC unroll 16
            for (int j = 0; j < FW_REGS; j++) { /* v[i] = w[i] < out ? w[i] : w[i+1] */
                __m128d next = _mm_shuffle_pd(w[j], w[j + 1], 1), lt = _mm_cmplt_pd(w[j], o);
                v[j] = _mm_or_pd(_mm_and_pd(lt, w[j]), _mm_andnot_pd(lt, next));
            }
#pragma GCC unroll 16
            for (int j = 0; j < FW_REGS; j++) { /* w[i] = max(min(v[i], in), v[i-1]) */
                __m128d before = _mm_shuffle_pd(j ? v[j - 1] : ninf, v[j], 1);
                w[j] = _mm_max_pd(_mm_min_pd(v[j], x), before);
                _mm_storeu_pd(wb + 2 * j, w[j]);
            }
            m += (hi < nb) - (lo >= 0);
        }
        if (k >= 0) med[k] = wb[(m - 1) / 2];
    }
}
#else
#define FW_SLOTS ((HPSS_LEN + VW - 1) / VW * VW) /* HPSS_LEN rounded up to VW */
static void freq_medians(const double *mag, int nb, double *med) {
    /* w: the window in slots 0..FW_SLOTS-1, +inf after; vb: v[-1..FW_SLOTS-1] */
    double w[FW_SLOTS + VW], vb[FW_SLOTS + VW];
    for (int i = 0; i < FW_SLOTS + VW; i++) w[i] = HUGE_VAL;
    vb[0] = -HUGE_VAL;
    int m = 0;
    for (int k = -HPSS_HALF; k < nb; k++) {
        /* bin k-9 leaves, bin k+8 enters: the window is then bins k-8..k+8 */
        int lo = k - HPSS_HALF - 1, hi = k + HPSS_HALF;
        double out = lo >= 0 ? mag[lo] : HUGE_VAL, in = hi < nb ? mag[hi] : HUGE_VAL;
        if (lo >= 0 || hi < nb) {
            vd o = v_set1(out), x = v_set1(in);
            for (int j = 0; j < FW_SLOTS; j += VW) {
                vd a = v_load(w + j), b = v_load(w + j + 1);
                v_store(vb + 1 + j, v_sel(a < o, a, b));
            }
            for (int j = 0; j < FW_SLOTS; j += VW)
                v_store(w + j, v_max(v_min(v_load(vb + 1 + j), x), v_load(vb + j)));
            m += (hi < nb) - (lo >= 0);
        }
        if (k >= 0) med[k] = w[(m - 1) / 2];
    }
}
#endif

#ifdef HAVE_TW_STEP8
/* freq_medians for 8 frames at once where the CPU has AVX-512: each lane holds one frame's
 * window and takes the same steps (comparisons and copies only), so each frame gets exactly the
 * medians freq_medians gives it; a step costs one instruction per slot for 8 frames instead of
 * per pair of slots for one.  mags[j]: frame j's magnitudes (lanes past the frames given repeat
 * frame 0); magT: 8 x nb scratch; medT[k * 8 + j]: frame j's median at bin k. */
__attribute__((target("avx512f"))) static void freq_medians8(const double *const mags[8], int nb, double *magT,
                                                             double *medT) {
    for (int k = 0; k < nb; k++)
        for (int j = 0; j < 8; j++) magT[(size_t)k * 8 + j] = mags[j][k];
    const __m512d inf = _mm512_set1_pd(HUGE_VAL), ninf = _mm512_set1_pd(-HUGE_VAL);
    __m512d w[HPSS_LEN + 1];
    for (int i = 0; i <= HPSS_LEN; i++) w[i] = inf;
    int m = 0;
    for (int k = -HPSS_HALF; k < nb; k++) {
        /* bin k-9 leaves, bin k+8 enters: the window is then bins k-8..k+8 */
        int lo = k - HPSS_HALF - 1, hi = k + HPSS_HALF;
        if (lo >= 0 || hi < nb) {
            __m512d o = lo >= 0 ? _mm512_loadu_pd(magT + (size_t)lo * 8) : inf;
            __m512d x = hi < nb ? _mm512_loadu_pd(magT + (size_t)hi * 8) : inf;
            __m512d prev = ninf;
#pragma GCC unroll 17
            for (int i = 0; i < HPSS_LEN; i++) {
                /* v = w[i] < out ? w[i] : w[i+1]; w[i] = max(min(v, in), v[i-1]) */
                __m512d v = _mm512_mask_blend_pd(_mm512_cmp_pd_mask(w[i], o, _CMP_LT_OQ), w[i + 1], w[i]);
                w[i] = _mm512_max_pd(_mm512_min_pd(v, x), prev);
                prev = v;
            }
            m += (hi < nb) - (lo >= 0);
        }
        if (k < 0) continue;
        __m512d md;
        switch ((m - 1) / 2) { /* the median slot: 8 in a full window, less at the edges */
        case 0: md = w[0]; break;
        case 1: md = w[1]; break;
        case 2: md = w[2]; break;
        case 3: md = w[3]; break;
        case 4: md = w[4]; break;
        case 5: md = w[5]; break;
        case 6: md = w[6]; break;
        case 7: md = w[7]; break;
        default: md = w[8]; break;
        }
        _mm512_storeu_pd(medT + (size_t)k * 8, md);
    }
}
#endif

static int analyze_spectrum(const float *pcm, size_t n, int rate, m2u_analysis *out, odf_env *odf) {
    const int n_fft = m2u_pow2_near(0.046 * rate), hop = n_fft / 4, nb = n_fft / 2 + 1, L = HPSS_LEN;
    const int nbp = (nb + TW_ALIGN - 1) / TW_ALIGN * TW_ALIGN;
    const size_t T = (n + (size_t)hop - 1) / (size_t)hop;
    m2u_stft *st = m2u_stft_new(n_fft);
    double *ring = malloc((size_t)L * (size_t)nbp * sizeof(double));
    double *tw = malloc((size_t)L * (size_t)nbp * sizeof(double)); /* per-bin sorted time windows */
    /* the new frame's magnitudes, log1p(gain x magnitude) of it and of the frame before,
     * each bin's centre frequency and the frequency medians */
    double *cur = malloc(5 * (size_t)nbp * sizeof(double));
    /* 8 frames' frequency medians at a time where the CPU has AVX-512, and their magnitudes
       transposed (freq_medians8) */
    const int batch8 = wide_cpu();
    double *med8 = batch8 ? malloc(16 * (size_t)nbp * sizeof(double)) : NULL;
    int *loud = malloc((size_t)L * sizeof(int));
    odf->v = malloc(T * sizeof(double));
    odf->n = T;
    odf->frame_s = (double)hop / rate;
    odf->offset_s = 0.5 * n_fft / rate;
    if (!st || !ring || !tw || !cur || !loud || !odf->v || (batch8 && !med8)) {
        m2u_stft_free(st);
        free(med8);
        free(ring);
        free(tw);
        free(cur);
        free(loud);
        free(odf->v);
        odf->v = NULL;
        return m2u_fail("analysis: out of memory");
    }
    double *lcur = cur + nbp, *lprev = cur + 2 * (size_t)nbp, *freq = cur + 3 * (size_t)nbp;
    double *pmed = cur + 4 * (size_t)nbp;
    for (int k = 0; k < nbp; k++) cur[k] = HUGE_VAL; /* padding bins: + inf, never counted */
    for (size_t i = 0; i < (size_t)L * (size_t)nbp; i++) tw[i] = HUGE_VAL;
    for (int k = 0; k < nb; k++) freq[k] = (double)k * rate / n_fft;
    /* flux on log(1 + 1000 x magnitude relative to a full-scale sine): level-independent
     * above the noise floor */
    const double gain = 1000.0 / (n_fft / 4.0);
    double cen_sum = 0, e_perc = 0, e_total = 0;
    size_t cen_frames = 0;
    int tcnt = 0;
    /* frame t goes into ring slot t % L; frame c = t - HPSS_HALF is then processed,
     * its 17-frame neighbourhood [c-8, c+8] = [t-16, t] being in the ring */
    for (size_t t = 0; t < T + HPSS_HALF; t++) {
        const size_t slot = t % (size_t)L;
        double *ring_t = ring + slot * (size_t)nbp; /* frame t-17 (leaving the time windows), then frame t */
        if (t < T) {
            long long start = (long long)(t * (size_t)hop);
            m2u_stft_frame(st, pcm, n, start, cur);
            double e = 0;
            for (int i = 0; i < n_fft; i++) {
                long long j = start + i;
                double x = (size_t)j < n ? pcm[j] : 0.0;
                e += x * x;
            }
            loud[slot] = 10.0 * log10(e / n_fft + 1e-30) >= -60.0;
            m2u_log1p_scaled(lcur, cur, (size_t)nb, gain); /* vectorised: glibc's log1p was 6 % of a build */
            double flux = 0;
            if (t)
                for (int k = 0; k < nb; k++) {
                    double d = lcur[k] - lprev[k];
                    if (d > 0) flux += d;
                }
            odf->v[t] = flux;
            double *sw = lcur;
            lcur = lprev, lprev = sw;
            tw_step(tw, nbp, t >= (size_t)L ? ring_t : NULL, cur); /* frame t-17 leaves, frame t enters */
            tcnt += t < (size_t)L;
            memcpy(ring_t, cur, (size_t)nbp * sizeof *cur);
        } else if (t >= (size_t)L) { /* past the end: frame t-17 leaves */
            tw_step(tw, nbp, ring_t, NULL);
            tcnt--;
        }
        if (t < HPSS_HALF) continue;
        const size_t c = t - HPSS_HALF;
        const double *mag = ring + (c % (size_t)L) * (size_t)nbp;
        const double *H = tw + (size_t)(tcnt - 1) / 2 * (size_t)nbp;
        const double *P_at = pmed; /* frame c's median at bin k: P_at[k * P_step] */
        size_t P_step = 1;
#ifdef HAVE_TW_STEP8
        if (batch8) {
            /* at every 8th frame, the medians of it and the next 7 (all in the ring by now:
               frame c + 7 <= t, and none leaves it before t + 9) */
            if (c % 8 == 0) {
                const double *mags[8];
                for (int j = 0; j < 8; j++) {
                    size_t f = c + (size_t)j < T ? c + (size_t)j : c;
                    mags[j] = ring + (f % (size_t)L) * (size_t)nbp;
                }
                freq_medians8(mags, nb, med8 + 8 * (size_t)nbp, med8);
            }
            P_at = med8 + c % 8;
            P_step = 8;
        } else
#endif
            freq_medians(mag, nb, pmed);
        double num = 0, den = 0;
        for (int k = 0; k < nb; k++) {
            double P = P_at[(size_t)k * P_step];
            double e = mag[k] * mag[k], hp = H[k] * H[k] + P * P;
            e_total += e;
            if (hp > 0) e_perc += e * (P * P) / hp;
            num += freq[k] * mag[k];
            den += mag[k];
        }
        if (loud[c % (size_t)L] && den > 0) {
            cen_sum += num / den;
            cen_frames++;
        }
    }
    m2u_stft_free(st);
    free(ring);
    free(tw);
    free(cur);
    free(med8);
    free(loud);
    out->centroid_hz = cen_frames ? cen_sum / (double)cen_frames : 0;
    out->percussiveness = e_total > 0 ? e_perc / e_total : 0;
    return 0;
}

/* ---- entry points -------------------------------------------------------------- */

/* The analysis's independent parts, each writing its own fields of out.  They run side by
 * side where there are threads (m2u_parallel_tasks): the spectrum is about half the work, the
 * beat tracker a fifth, so two threads finish close together.  The results do not depend on
 * the thread count: every part is the same serial code either way. */
typedef struct {
    const float *pcm;
    size_t n;
    int rate;
    m2u_analysis *out;
    odf_env odf; /* the spectrum's onset envelope, for the tempo's metrical check */
} analysis_job;

enum { PART_SPECTRUM, PART_BEATS, PART_CHROMA_KEY, PART_ONSETS, PART_LEVELS, ANALYSIS_PARTS };

static int analysis_part(void *ctx, int part) {
    analysis_job *j = ctx;
    m2u_analysis *out = j->out;
    switch (part) {
    case PART_SPECTRUM: /* centroid, percussiveness, onset envelope */
        return analyze_spectrum(j->pcm, j->n, j->rate, out, &j->odf);
    case PART_BEATS:
        return m2u_beat_times(j->pcm, j->n, j->rate, &out->beat_s, &out->n_beats);
    case PART_CHROMA_KEY:
        if (m2u_chroma(j->pcm, j->n, j->rate, out->chroma, &out->tuning_cents) != 0) return -1;
        return m2u_key_from_chroma(out->chroma, M2U_KEY_PROFILE_KRUMHANSL, &out->key, &out->mode, &out->key_confidence,
                                   NULL);
    case PART_ONSETS:
        return analyze_onsets(j->pcm, j->n, j->rate, out);
    default: /* PART_LEVELS */
        if (analyze_loudness(j->pcm, j->n, j->rate, out) != 0) return -1;
        return analyze_dynamics(j->pcm, j->n, j->rate, out);
    }
}

int m2u_analyze(const float *pcm, size_t n, int rate, m2u_analysis *out) {
    memset(out, 0, sizeof *out);
    out->key = out->mode = -1;
    if (rate < 8000 || rate > 192000) return m2u_fail("analysis: sample rate %d out of range 8000..192000", rate);
    if (!pcm || n == 0) return m2u_fail("analysis: no samples");
    if (n > (size_t)rate * 86400) return m2u_fail("analysis: %zu samples is more than a day of audio", n);
    double peak = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(pcm[i])) return m2u_fail("analysis: sample %zu is not finite", i);
        double a = fabs((double)pcm[i]);
        if (a > peak) peak = a;
    }
    out->duration_s = (double)n / rate;
    out->peak_dbfs = peak > 0 ? 20.0 * log10(peak) : M2U_LOUDNESS_FLOOR_LUFS;
    if (out->peak_dbfs < M2U_LOUDNESS_FLOOR_LUFS) out->peak_dbfs = M2U_LOUDNESS_FLOOR_LUFS;
    analysis_job job = {pcm, n, rate, out, {0}};
    int rc = m2u_parallel_tasks(ANALYSIS_PARTS, analysis_part, &job);
    if (rc == 0) rc = analyze_tempo(&job.odf, out);
    free(job.odf.v);
    if (rc != 0) {
        m2u_analysis_free(out);
        out->key = out->mode = -1;
        return -1;
    }
    return 0;
}

void m2u_analysis_free(m2u_analysis *a) {
    if (!a) return;
    free(a->beat_s);
    memset(a, 0, sizeof *a);
}

void m2u_mood_from_analysis(const m2u_analysis *a, double *valence, double *arousal) {
    double M = 0;
    if (a->key >= 0 && (a->mode == M2U_MODE_MAJOR || a->mode == M2U_MODE_MINOR)) {
        double s = a->key_confidence / 0.5;
        M = (a->mode == M2U_MODE_MAJOR ? 1.0 : -1.0) * (s > 1 ? 1 : s < 0 ? 0 : s);
    }
    double T = a->tempo_bpm > 0 ? clamp1((a->tempo_bpm - 110.0) / 50.0) : 0;
    double L = clamp1((a->loudness_lufs + 23.0) / 10.0);
    double B = a->centroid_hz > 0 ? clamp1(log2(a->centroid_hz / 1500.0) / 1.5) : -1;
    if (valence) *valence = clamp1(0.50 * M + 0.25 * T + 0.15 * B + 0.10 * L);
    if (arousal) *arousal = clamp1(0.40 * T + 0.40 * L + 0.20 * B);
}
