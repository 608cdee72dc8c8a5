/* aubio's beat tracker (aubio 0.4.9, tempo/beattracking.c) with its autocorrelation computed
 * eight lags at a time.
 *
 * aubio_beattracking_do starts each step (a quarter of a ~6 s window of the onset function) with
 * aubio_autocorr, which sums every lag's products one after the other: at the analysis's
 * 2.7 ms hop that is 4096 lags of up to 4096 terms, a third of the whole music analysis.  Eight
 * lags can share one AVX2 register, each lane still summing its own lag's products in aubio's
 * order, each product and each sum rounded as aubio's scalar loop rounds them (the C build does
 * not contract a product and a sum under -std=c11).  So the autocorrelation has aubio's bits,
 * and so do the periods, phases and beats that follow.  aubio's tracker keeps its state in an
 * opaque struct, so the rest of aubio_beattracking_do and aubio_beattracking_checkstate is here
 * too, step for step, through aubio's own vector functions where it calls them; each expression
 * keeps aubio's types (where aubio mixes float with double literals, the sum runs in double).
 * test_analysis compares the autocorrelation and every step's output with aubio's own.
 *
 *   m2u_beattrack *bt = m2u_beattrack_new(winlen, hop, rate);   as new_aubio_beattracking
 *   m2u_beattrack_do(bt, dfframe, out);                          as aubio_beattracking_do
 *   m2u_beattrack_free(bt);
 */
#ifndef M2U_BEATTRACK_H
#define M2U_BEATTRACK_H

#include <aubio/aubio.h>
#include <stddef.h>

typedef struct m2u_beattrack m2u_beattrack;

/* winlen: the onset-function window (a power of two, at least 4); hop and rate: the onset
 * function's hop and the audio's sample rate.  NULL when out of memory or winlen < 4. */
m2u_beattrack *m2u_beattrack_new(unsigned winlen, unsigned hop, unsigned rate);
void m2u_beattrack_free(m2u_beattrack *bt);

/* One step: dfframe (winlen values) in; out (winlen / 4 values) gets the number of beats plus
 * one in out[0] and the beat positions, in onset-function frames, in out[1..]. */
void m2u_beattrack_do(m2u_beattrack *bt, const fvec_t *dfframe, fvec_t *out);

/* The beat period in onset-function frames after the last step (aubio_beattracking_get_period
 * divided by the hop), and the time signature: 0 while the general model runs, 3 or 4 once the
 * context-dependent one has started.  For tests and diagnostics. */
float m2u_beattrack_period(const m2u_beattrack *bt);
unsigned m2u_beattrack_timesig(const m2u_beattrack *bt);

/* aubio_autocorr's result: acf[i] = sum over j >= i of x[j - i] * x[j], summed in j order,
 * divided by n - i.  x and acf must not overlap. */
void m2u_autocorr(const float *x, float *acf, size_t n);

#endif
