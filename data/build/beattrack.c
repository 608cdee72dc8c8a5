/* SPDX-License-Identifier: GPL-3.0-or-later
 *
 * aubio's beat tracker with a vectorised autocorrelation (see beattrack.h).  The steps follow
 * aubio 0.4.9's src/tempo/beattracking.c, Copyright (C) 2005-2009 Matthew Davies and Paul
 * Brossier, GPL-3.0-or-later, and so does this file's licence (the rest of m2u is MIT; binaries
 * that link data/build carry aubio's GPL anyway: README, licence).
 *
 * Every expression keeps the types of aubio's: smpl_t is float, EXP/LOG/FLOOR/ABS are expf,
 * logf, floorf and fabsf, and where aubio writes a double literal (1., .5, 2.) the arithmetic
 * runs in double before the float is stored.  The bit-for-bit agreement with aubio is tested,
 * not assumed (test_analysis). */
#define AUBIO_UNSTABLE 1 /* fvec_max_elem, fvec_quadratic_peak_pos */
#include "beattrack.h"

#include "vmath_avx2.h" /* M2U_AVX2_TARGET, m2u_avx2_fma */

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct m2u_beattrack {
    uint_t step;     /* onset-function frames per step (winlen / 4) */
    uint_t rayparam; /* the Rayleigh parameter, truncated as aubio stores it */
    uint_t timesig;  /* 0 until the context-dependent model starts, then 3 or 4 */
    uint_t flagstep;
    sint_t counter;
    smpl_t lastbeat, g_var, gp, bp, rp, rp1, rp2;
    fvec_t *rwv;    /* Rayleigh weighting of the beat period (laglen) */
    fvec_t *dfwv;   /* exponential weighting of the onset function (winlen) */
    fvec_t *gwv;    /* Gaussian weighting of the period, context-dependent model (laglen) */
    fvec_t *phwv;   /* weighting of the beat phase (2 laglen) */
    fvec_t *dfrev;  /* weighted onset function, reversed (winlen) */
    fvec_t *acf;    /* its autocorrelation (winlen) */
    fvec_t *acfout; /* the comb filterbank's output (laglen) */
    fvec_t *phout;  /* phase scores (winlen) */
    float *rev;     /* the autocorrelation's scratch: the input reversed (winlen + 32) */
};

/* ---- the autocorrelation -------------------------------------------------------------- */

/* aubio_autocorr's loop: one sum per lag, in j order */
static void autocorr_lags_c(const float *x, float *acf, size_t n, size_t from) {
    for (size_t i = from; i < n; i++) {
        float tmp = 0.;
        for (size_t j = i; j < n; j++) tmp += x[j - i] * x[j];
        acf[i] = tmp / (float)(n - i);
    }
}

#ifdef M2U_HAVE_AVX2_PATHS
/* Lags i0 .. i0 + 31 of each block of 32 in four registers, lane k of register b holding lag
 * i0 + 8b + k.  x[j - lag] for the eight lanes are consecutive in the reversed copy rev
 * (rev[m] = x[n - 1 - m], then 32 zeros), so one unaligned load serves a register.  A lane
 * starts adding at j = its lag: before that its product is masked to +0, and +0 + +0 stays the
 * +0 that aubio's sum starts from.  Products and sums are rounded one by one (no FMA), as in
 * aubio's scalar loop. */
M2U_AVX2_TARGET static size_t autocorr_avx2(const float *x, float *acf, size_t n, float *rev) {
    for (size_t m = 0; m < n; m++) rev[m] = x[n - 1 - m];
    memset(rev + n, 0, 32 * sizeof(float));
    /* first[d]: lanes 0..d (d = 0..6) */
    __m256i first[7];
    for (int d = 0; d < 7; d++)
        first[d] = _mm256_setr_epi32(-(0 <= d), -(1 <= d), -(2 <= d), -(3 <= d), -(4 <= d), -(5 <= d), -(6 <= d), 0);
    size_t i0 = 0;
    for (; i0 + 32 <= n; i0 += 32) {
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (size_t j = i0; j < i0 + 32; j++) {
            const __m256 xj = _mm256_set1_ps(x[j]);
            const float *r = rev + (n - 1 - j + i0);
            for (int b = 0; b < 4; b++) {
                int d = (int)(j - i0) - 8 * b; /* lane k has started when k <= d */
                if (d < 0) break;
                __m256 p = _mm256_mul_ps(xj, _mm256_loadu_ps(r + 8 * b));
                if (d < 7) p = _mm256_and_ps(p, _mm256_castsi256_ps(first[d]));
                acc[b] = _mm256_add_ps(acc[b], p);
            }
        }
        __m256 a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
        for (size_t j = i0 + 32; j < n; j++) {
            const __m256 xj = _mm256_set1_ps(x[j]);
            const float *r = rev + (n - 1 - j + i0);
            a0 = _mm256_add_ps(a0, _mm256_mul_ps(xj, _mm256_loadu_ps(r)));
            a1 = _mm256_add_ps(a1, _mm256_mul_ps(xj, _mm256_loadu_ps(r + 8)));
            a2 = _mm256_add_ps(a2, _mm256_mul_ps(xj, _mm256_loadu_ps(r + 16)));
            a3 = _mm256_add_ps(a3, _mm256_mul_ps(xj, _mm256_loadu_ps(r + 24)));
        }
        float s[32];
        _mm256_storeu_ps(s, a0);
        _mm256_storeu_ps(s + 8, a1);
        _mm256_storeu_ps(s + 16, a2);
        _mm256_storeu_ps(s + 24, a3);
        for (int k = 0; k < 32; k++) acf[i0 + k] = s[k] / (float)(n - i0 - k);
    }
    return i0;
}
#endif

/* rev: NULL or n + 32 floats of scratch */
static void autocorr(const float *x, float *acf, size_t n, float *rev) {
    size_t done = 0;
#ifdef M2U_HAVE_AVX2_PATHS
    if (rev && n >= 32 && m2u_avx2_fma()) done = autocorr_avx2(x, acf, n, rev);
#else
    (void)rev;
#endif
    autocorr_lags_c(x, acf, n, done);
}

void m2u_autocorr(const float *x, float *acf, size_t n) {
    float *rev = n >= 32 ? malloc((n + 32) * sizeof *rev) : NULL;
    autocorr(x, acf, n, rev); /* without scratch, aubio's loop */
    free(rev);
}

/* ---- the tracker ------------------------------------------------------------------------ */

void m2u_beattrack_free(m2u_beattrack *p) {
    if (!p) return;
    fvec_t *v[] = {p->rwv, p->dfwv, p->gwv, p->phwv, p->dfrev, p->acf, p->acfout, p->phout};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++)
        if (v[i]) del_fvec(v[i]);
    free(p->rev);
    free(p);
}

m2u_beattrack *m2u_beattrack_new(unsigned winlen, unsigned hop, unsigned rate) {
    if (winlen < 4 || hop == 0) return NULL;
    m2u_beattrack *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    /* the Rayleigh weighting prefers 120 bpm */
    smpl_t rayparam = 60. * rate / 120. / hop;
    smpl_t dfwvnorm = expf((logf(2.0) / rayparam) * (winlen + 2));
    uint_t laglen = winlen / 4;
    p->step = winlen / 4;
    p->rayparam = rayparam;
    p->g_var = 3.901; /* aubio: "constthresh empirically derived" */
    p->rp = 1;
    p->rwv = new_fvec(laglen);
    p->gwv = new_fvec(laglen);
    p->dfwv = new_fvec(winlen);
    p->dfrev = new_fvec(winlen);
    p->acf = new_fvec(winlen);
    p->acfout = new_fvec(laglen);
    p->phwv = new_fvec(2 * laglen);
    p->phout = new_fvec(winlen);
    p->rev = malloc((winlen + 32) * sizeof *p->rev);
    if (!p->rwv || !p->gwv || !p->dfwv || !p->dfrev || !p->acf || !p->acfout || !p->phwv || !p->phout || !p->rev) {
        m2u_beattrack_free(p);
        return NULL;
    }
    for (uint_t i = 0; i < winlen; i++) p->dfwv->data[i] = (expf((logf(2.0) / rayparam) * (i + 1))) / dfwvnorm;
    for (uint_t i = 0; i < laglen; i++) {
        smpl_t l = (smpl_t)(i + 1.), r = rayparam;
        p->rwv->data[i] = (l / (r * r)) * expf((-(l * l) / (2. * (r * r))));
    }
    return p;
}

/* the time signature (3 or 4) from the autocorrelation's energy at 3 and 4 periods.  aubio reads
 * past the end of acf when 6 gp + 2 >= acflen (a period over a sixth of the window); those
 * terms count as 0 here. */
static uint_t gettimesig(const fvec_t *acf, uint_t acflen, uint_t gp) {
    smpl_t three_energy = 0., four_energy = 0.;
    if (gp < 2) return 4;
#define ACF(i) ((i) < acflen ? acf->data[(i)] : 0.f)
    if (acflen > 6 * gp + 2) {
        for (sint_t k = -2; k < 2; k++) {
            three_energy += acf->data[3 * gp + k];
            four_energy += acf->data[4 * gp + k];
        }
    } else {
        for (sint_t k = -2; k < 2; k++) {
            three_energy += ACF(3 * gp + k) + ACF(6 * gp + k);
            four_energy += ACF(4 * gp + k) + ACF(2 * gp + k);
        }
    }
#undef ACF
    return (three_energy > four_energy) ? 3 : 4;
}

/* aubio_beattracking_checkstate: the general model until the period holds for three steps,
 * then the context-dependent one; sets bp */
static void checkstate(m2u_beattrack *bt) {
    uint_t flagconst = 0;
    sint_t counter = bt->counter;
    uint_t flagstep = bt->flagstep;
    smpl_t gp = bt->gp, bp = bt->bp, rp = bt->rp, rp1 = bt->rp1, rp2 = bt->rp2;
    uint_t laglen = bt->rwv->length, acflen = bt->acf->length, step = bt->step;
    const fvec_t *acf = bt->acf;
    fvec_t *acfout = bt->acfout;

    if (gp) {
        /* the comb filterbank with the known time signature */
        fvec_zeros(acfout);
        for (uint_t i = 1; i < laglen - 1; i++)
            for (uint_t a = 1; a <= bt->timesig; a++)
                for (uint_t b = 1; b < 2 * a; b++) acfout->data[i] += acf->data[i * a + b - 1];
        fvec_weight(acfout, bt->gwv);
        gp = fvec_quadratic_peak_pos(acfout, fvec_max_elem(acfout));
    } else {
        gp = 0;
    }
    /* a step change: gp and rp differ by more than twice the threshold */
    if (counter == 0) {
        if (fabsf(gp - rp) > 2. * bt->g_var) {
            flagstep = 1;
            counter = 3;
        } else {
            flagstep = 0;
        }
    }
    if (counter == 1 && flagstep == 1) {
        /* three steps on: is the period consistent? */
        if (fabsf(2 * rp - rp1 - rp2) < bt->g_var) {
            flagconst = 1;
            counter = 0;
        } else {
            flagconst = 0;
            counter = 2;
        }
    } else if (counter > 0) {
        counter = counter - 1;
    }
    rp2 = rp1;
    rp1 = rp;
    if (flagconst) {
        /* the context-dependent model's first step */
        gp = rp;
        bt->timesig = gettimesig(acf, acflen, gp);
        for (uint_t j = 0; j < laglen; j++) {
            smpl_t d = (smpl_t)(j + 1. - gp);
            bt->gwv->data[j] = expf(-.5 * (d * d) / (bt->g_var * bt->g_var));
        }
        bp = gp;
        fvec_ones(bt->phwv);
    } else if (bt->timesig) {
        bp = gp;
        if (step > bt->lastbeat) {
            /* Gaussian weighting of the phase around the last beat */
            for (uint_t j = 0; j < 2 * laglen; j++) {
                smpl_t d = (smpl_t)(1. + j - step + bt->lastbeat);
                bt->phwv->data[j] = expf(-.5 * (d * d) / (bp / 8.));
            }
        } else {
            fvec_ones(bt->phwv);
        }
    } else {
        bp = rp;
        fvec_ones(bt->phwv);
    }
    /* over 206 bpm: halve the tempo */
    while (0 < bp && bp < 25) bp = bp * 2;
    bt->counter = counter;
    bt->flagstep = flagstep;
    bt->gp = gp;
    bt->bp = bp;
    bt->rp1 = rp1;
    bt->rp2 = rp2;
}

void m2u_beattrack_do(m2u_beattrack *bt, const fvec_t *dfframe, fvec_t *output) {
    uint_t step = bt->step, laglen = bt->rwv->length, winlen = bt->dfwv->length;
    uint_t numelem = bt->timesig ? bt->timesig : 4; /* harmonics in the comb filterbank */

    fvec_copy(dfframe, bt->dfrev);
    fvec_weight(bt->dfrev, bt->dfwv);
    fvec_rev(bt->dfrev);
    autocorr(dfframe->data, bt->acf->data, winlen, bt->rev);

    /* the shift-invariant comb filterbank; its first and last outputs stay 0 */
    fvec_zeros(bt->acfout);
    for (uint_t i = 1; i < laglen - 1; i++)
        for (uint_t a = 1; a <= numelem; a++)
            for (uint_t b = 1; b < 2 * a; b++) bt->acfout->data[i] += bt->acf->data[i * a + b - 1] * 1. / (2. * a - 1.);
    fvec_weight(bt->acfout, bt->rwv);

    /* the Rayleigh period */
    uint_t maxindex = fvec_max_elem(bt->acfout);
    if (maxindex > 0 && maxindex < bt->acfout->length - 1) bt->rp = fvec_quadratic_peak_pos(bt->acfout, maxindex);
    else bt->rp = bt->rayparam;

    checkstate(bt);
    smpl_t bp = bt->bp;
    if (bp == 0) {
        fvec_zeros(output);
        return;
    }

    /* the beat phase */
    uint_t kmax = floorf(winlen / bp);
    fvec_zeros(bt->phout);
    for (uint_t i = 0; i < bp; i++) {
        for (uint_t k = 0; k < kmax; k++) {
            uint_t idx = i + (uint_t)floorf(bp * k + .5);
            if (idx < bt->dfrev->length) bt->phout->data[i] += bt->dfrev->data[idx];
        }
    }
    fvec_weight(bt->phout, bt->phwv);
    maxindex = fvec_max_elem(bt->phout);
    smpl_t phase;
    if (maxindex >= winlen - 1) phase = step - bt->lastbeat;
    else phase = fvec_quadratic_peak_pos(bt->phout, maxindex);
    phase += 1.; /* one frame of delay */

    fvec_zeros(output);
    uint_t i = 1;
    smpl_t beat = bp - phase;
    /* a beat earlier than 60 % of the period after the last one is skipped */
    if ((step - bt->lastbeat - phase) < -0.40 * bp) beat += bp;
    while (beat + bp < 0) beat += bp;
    if (beat >= 0 && i < output->length) output->data[i++] = beat;
    while (beat + bp <= step && i < output->length) {
        beat += bp;
        output->data[i++] = beat;
    }
    bt->lastbeat = beat;
    output->data[0] = i; /* the number of beats plus one */
}

float m2u_beattrack_period(const m2u_beattrack *bt) { return bt->bp; }

unsigned m2u_beattrack_timesig(const m2u_beattrack *bt) { return bt->timesig; }
