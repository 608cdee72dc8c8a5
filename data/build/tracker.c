/* aubio's tempo and onset detectors without their phases (see tracker.h).  Each step below is
 * the one in aubio 0.4.9's tempo.c / onset.c / phasevoc.c, in the same order and through the
 * same aubio function; the comments name where a step comes from. */
#define AUBIO_UNSTABLE 1 /* aubio_peakpicker_*, aubio_next_power_of_two */
#include "tracker.h"

#include "beattrack.h"
#include "m2u_error.h"

#include <aubio/aubio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int m2u_pow2_near(double x) {
    int p = 16;
    while (p < 65536 && (double)p * 1.41421356 < x) p *= 2; /* nearest in log2 */
    return p;
}

unsigned m2u_tempo_hop(int rate) {
    unsigned hop = (unsigned)m2u_pow2_near(rate / 344.5);
    return hop < 32 ? 32 : hop;
}

unsigned m2u_onset_hop(int rate) { return (unsigned)m2u_pow2_near(rate * 0.0116); }

/* aubio's ROUND (aubio_priv.h: FLOOR(x + .5), the sum in double, floorf of it) */
static float aubio_round(float x) { return floorf(x + .5); }

/* the hop of samples at pos (zeros past the end), as analysis.c fed aubio's objects */
static void fill_hop(fvec_t *in, const float *pcm, size_t n, size_t pos) {
    for (uint_t i = 0; i < in->length; i++) in->data[i] = pos + i < n ? pcm[pos + i] : 0.0f;
}

/* ---- aubio_pvoc_do less aubio_fft_get_phas ------------------------------------------ */

typedef struct {
    uint_t win, hop, end; /* end: the samples kept from the last window (phasevoc.c) */
    fvec_t *data, *old, *w, *comp;
    aubio_fft_t *fft;
    cvec_t *grain; /* norm only; phas stays 0 and nothing here reads it */
} mag_pvoc;

static void mag_pvoc_free(mag_pvoc *p) {
    if (p->data) del_fvec(p->data);
    if (p->old) del_fvec(p->old);
    if (p->w) del_fvec(p->w);
    if (p->comp) del_fvec(p->comp);
    if (p->fft) del_aubio_fft(p->fft);
    if (p->grain) del_cvec(p->grain);
    memset(p, 0, sizeof *p);
}

static int mag_pvoc_init(mag_pvoc *p, uint_t win, uint_t hop) {
    memset(p, 0, sizeof *p);
    p->win = win;
    p->hop = hop;
    p->end = win > hop ? win - hop : 0;
    p->data = new_fvec(win);
    p->old = new_fvec(win > hop ? win - hop : 1);
    p->w = new_aubio_window("hanningz", win);
    p->comp = new_fvec(win);
    p->fft = new_aubio_fft(win);
    p->grain = new_cvec(win);
    if (p->data && p->old && p->w && p->comp && p->fft && p->grain) return 0;
    mag_pvoc_free(p);
    return -1;
}

static void mag_pvoc_do(mag_pvoc *p, const fvec_t *in) {
    smpl_t *d = p->data->data, *old = p->old->data;
    /* aubio_pvoc_swapbuffers: slide the window by one hop */
    memcpy(d, old, p->end * sizeof(smpl_t));
    memcpy(d + p->end, in->data, p->hop * sizeof(smpl_t));
    memcpy(old, d + p->hop, p->end * sizeof(smpl_t));
    fvec_weight(p->data, p->w);
    fvec_shift(p->data);
    /* aubio_fft_do is aubio_fft_do_complex, aubio_fft_get_phas, aubio_fft_get_norm */
    aubio_fft_do_complex(p->fft, p->data, p->comp);
    aubio_fft_get_norm(p->comp, p->grain);
}

/* ---- aubio_tempo ("default") ------------------------------------------------------- */

int m2u_beat_times(const float *pcm, size_t n, int rate, double **beats, size_t *n_beats) {
    *beats = NULL;
    *n_beats = 0;
    if (rate <= 0) return m2u_fail("analysis: sample rate %d", rate);
    uint_t hop = m2u_tempo_hop(rate), buf = 4 * hop;
    /* new_aubio_tempo: about 6 s of onset-function frames, scanned every quarter */
    uint_t winlen = aubio_next_power_of_two((uint_t)(5.8 * (uint_t)rate / hop));
    if (winlen < 4) winlen = 4;
    uint_t step = winlen / 4;
    const smpl_t silence = -90.;
    mag_pvoc pv;
    int pv_ok = mag_pvoc_init(&pv, buf, hop) == 0;
    aubio_peakpicker_t *pp = new_aubio_peakpicker();
    aubio_specdesc_t *od = new_aubio_specdesc("specflux", buf);
    m2u_beattrack *bt = m2u_beattrack_new(winlen, hop, (uint_t)rate); /* aubio's, see beattrack.h */
    fvec_t *in = new_fvec(hop), *of = new_fvec(1), *dfframe = new_fvec(winlen), *out = new_fvec(step),
           *onset = new_fvec(1);
    size_t cap = 0;
    int rc = -1;
    if (!pv_ok || !pp || !od || !bt || !in || !of || !dfframe || !out || !onset) {
        m2u_fail("analysis: aubio tempo tracker could not be created (hop %u, rate %d)", hop, rate);
        goto done;
    }
    aubio_peakpicker_set_threshold(pp, 0.3);
    sint_t blockpos = 0;
    uint_t total_frames = 0, last_beat = 0;
    for (size_t pos = 0; pos < n; pos += hop) {
        fill_hop(in, pcm, n, pos);
        /* aubio_tempo_do */
        mag_pvoc_do(&pv, in);
        aubio_specdesc_do(od, pv.grain, of);
        if (blockpos == (sint_t)step - 1) {
            m2u_beattrack_do(bt, dfframe, out);
            memmove(dfframe->data, dfframe->data + step, (winlen - step) * sizeof(smpl_t));
            memset(dfframe->data + winlen - step, 0, step * sizeof(smpl_t));
            blockpos = -1;
        }
        blockpos++;
        aubio_peakpicker_do(pp, of, onset);
        dfframe->data[winlen - step + blockpos] = aubio_peakpicker_get_thresholded_input(pp)->data[0];
        smpl_t tactus = 0;
        for (uint_t i = 1; i < out->data[0]; i++)
            if (blockpos == floorf(out->data[i])) {
                tactus = out->data[i] - floorf(out->data[i]);
                if (aubio_silence_detection(in, silence) == 1) tactus = 0;
                last_beat = total_frames + (uint_t)aubio_round(tactus * hop);
            }
        total_frames += hop;
        /* the analysis: aubio_tempo_get_last (delay 0) after a hop that marks a beat */
        if (tactus == 0) continue;
        double t = (double)last_beat / rate;
        if (*n_beats && t <= (*beats)[*n_beats - 1]) continue; /* keep them increasing */
        if (*n_beats == cap) {
            size_t c = cap ? 2 * cap : 256;
            double *b = realloc(*beats, c * sizeof *b);
            if (!b) {
                m2u_fail("analysis: out of memory");
                goto done;
            }
            *beats = b;
            cap = c;
        }
        (*beats)[(*n_beats)++] = t;
    }
    rc = 0;
done:
    if (rc) {
        free(*beats);
        *beats = NULL;
        *n_beats = 0;
    }
    mag_pvoc_free(&pv);
    if (pp) del_aubio_peakpicker(pp);
    if (od) del_aubio_specdesc(od);
    m2u_beattrack_free(bt);
    if (in) del_fvec(in);
    if (of) del_fvec(of);
    if (dfframe) del_fvec(dfframe);
    if (out) del_fvec(out);
    if (onset) del_fvec(onset);
    return rc;
}

/* ---- aubio_onset ("hfc", minioi 50 ms, silence -70 dB) ----------------------------- */

int m2u_onset_count(const float *pcm, size_t n, int rate, size_t *count) {
    *count = 0;
    if (rate <= 0) return m2u_fail("analysis: sample rate %d", rate);
    uint_t hop = m2u_onset_hop(rate), buf = 2 * hop;
    /* aubio_onset_set_default_parameters for "hfc": threshold 0.058, delay 4.3 hops,
     * compression 1 (log(1 + |X|)), no whitening; then the analysis's minioi and silence */
    const uint_t delay = (uint_t)(4.3 * hop);
    const uint_t minioi = (uint_t)aubio_round((smpl_t)0.05 * (smpl_t)(uint_t)rate);
    const smpl_t silence = -70.;
    mag_pvoc pv;
    int pv_ok = mag_pvoc_init(&pv, buf, hop) == 0;
    aubio_peakpicker_t *pp = new_aubio_peakpicker();
    aubio_specdesc_t *od = new_aubio_specdesc("hfc", buf);
    fvec_t *in = new_fvec(hop), *desc = new_fvec(1), *res = new_fvec(1);
    int rc = -1;
    if (!pv_ok || !pp || !od || !in || !desc || !res) {
        m2u_fail("analysis: aubio onset detector could not be created (hop %u, rate %d)", hop, rate);
        goto done;
    }
    aubio_peakpicker_set_threshold(pp, 0.058);
    uint_t total_frames = 0, last_onset = 0;
    for (size_t pos = 0; pos < n; pos += hop) {
        fill_hop(in, pcm, n, pos);
        /* aubio_onset_do */
        mag_pvoc_do(&pv, in);
        cvec_logmag(pv.grain, 1.);
        aubio_specdesc_do(od, pv.grain, desc);
        aubio_peakpicker_do(pp, desc, res);
        smpl_t isonset = res->data[0];
        if (isonset > 0.) {
            if (aubio_silence_detection(in, silence) == 1) {
                isonset = 0;
            } else {
                uint_t new_onset = total_frames + (uint_t)aubio_round(isonset * hop);
                if (last_onset + minioi < new_onset) {
                    if (last_onset > 0 && delay > new_onset) isonset = 0;
                    else last_onset = delay > new_onset ? delay : new_onset;
                } else {
                    isonset = 0;
                }
            }
        } else if (total_frames <= delay && aubio_silence_detection(in, silence) == 0) {
            /* the start of the file, not silent */
            uint_t new_onset = total_frames;
            if (total_frames == 0 || last_onset + minioi < new_onset) {
                isonset = (smpl_t)(delay / hop);
                last_onset = total_frames + delay;
            }
        }
        total_frames += hop;
        if (isonset != 0) (*count)++;
    }
    rc = 0;
done:
    mag_pvoc_free(&pv);
    if (pp) del_aubio_peakpicker(pp);
    if (od) del_aubio_specdesc(od);
    if (in) del_fvec(in);
    if (desc) del_fvec(desc);
    if (res) del_fvec(res);
    return rc;
}
