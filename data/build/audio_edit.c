/* Time stretch, pitch shift (Rubber Band, offline) and gain (see audio_edit.h). */
#include "audio_edit.h"

#include "m2u_error.h"

#include <limits.h>
#include <math.h>
#include <rubberband/rubberband-c.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 8192

#if RUBBERBAND_API_MAJOR_VERSION > 2 || (RUBBERBAND_API_MAJOR_VERSION == 2 && RUBBERBAND_API_MINOR_VERSION >= 7)
#define ENGINE_OPTION RubberBandOptionEngineFiner
#else
#define ENGINE_OPTION 0
#endif

static const RubberBandOptions RB_OPTIONS = RubberBandOptionProcessOffline | RubberBandOptionThreadingNever |
                                            RubberBandOptionFormantShifted | RubberBandOptionPitchHighQuality |
                                            ENGINE_OPTION;

static int check_input(const char *what, const float *in, size_t n, int rate) {
    if (!in || n == 0) return m2u_fail("%s: no samples", what);
    if (n >= UINT_MAX) return m2u_fail("%s: %zu samples is too long (limit %u)", what, n, UINT_MAX - 1);
    if (rate < 8000 || rate > 192000) return m2u_fail("%s: sample rate %d out of range 8000..192000", what, rate);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(in[i])) return m2u_fail("%s: sample %zu is not finite", what, i);
    return 0;
}

/* Offline Rubber Band run; the output is exactly `want` samples. */
static int rb_run(const char *what, const float *in, size_t n, int rate, double time_ratio, double pitch_scale,
                  size_t want, float **out, size_t *n_out) {
    RubberBandState rb = rubberband_new((unsigned)rate, 1, RB_OPTIONS, time_ratio, pitch_scale);
    if (!rb) return m2u_fail("%s: cannot create a Rubber Band stretcher", what);
    rubberband_set_debug_level(rb, 0);
    rubberband_set_expected_input_duration(rb, (unsigned)n);
    rubberband_set_max_process_size(rb, CHUNK);
    size_t cap = want + 2 * CHUNK;
    float *o = malloc(cap * sizeof *o);
    float *tmp = malloc(CHUNK * sizeof *tmp);
    if (!o || !tmp) {
        free(o);
        free(tmp);
        rubberband_delete(rb);
        return m2u_fail("%s: out of memory", what);
    }
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t len = n - i < CHUNK ? n - i : CHUNK;
        const float *p = in + i;
        rubberband_study(rb, &p, (unsigned)len, i + len == n);
    }
    size_t got = 0;
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t len = n - i < CHUNK ? n - i : CHUNK;
        const float *p = in + i;
        rubberband_process(rb, &p, (unsigned)len, i + len == n);
        for (;;) {
            int avail = rubberband_available(rb);
            if (avail <= 0) break;
            while (avail > 0) {
                unsigned take = avail > CHUNK ? CHUNK : (unsigned)avail;
                float *q = tmp;
                unsigned r = rubberband_retrieve(rb, &q, take);
                if (r == 0) break;
                if (got + r > cap) {
                    size_t nc = (got + r) * 2;
                    float *no = realloc(o, nc * sizeof *no);
                    if (!no) {
                        free(o);
                        free(tmp);
                        rubberband_delete(rb);
                        return m2u_fail("%s: out of memory", what);
                    }
                    o = no;
                    cap = nc;
                }
                memcpy(o + got, tmp, r * sizeof *tmp);
                got += r;
                avail -= (int)r;
            }
        }
    }
    free(tmp);
    rubberband_delete(rb);
    /* offline mode gives the expected duration; pad/trim defensively so the
     * documented length always holds */
    if (got < want) {
        if (want > cap) {
            float *no = realloc(o, want * sizeof *no);
            if (!no) {
                free(o);
                return m2u_fail("%s: out of memory", what);
            }
            o = no;
        }
        memset(o + got, 0, (want - got) * sizeof *o);
    }
    float *shrunk = realloc(o, (want ? want : 1) * sizeof *o);
    *out = shrunk ? shrunk : o;
    *n_out = want;
    return 0;
}

int m2u_time_stretch(const float *in, size_t n, int rate, double tempo_ratio, float **out, size_t *n_out) {
    if (!out || !n_out) return m2u_fail("time stretch: no output");
    *out = NULL;
    *n_out = 0;
    if (!(tempo_ratio >= M2U_TEMPO_RATIO_MIN && tempo_ratio <= M2U_TEMPO_RATIO_MAX))
        return m2u_fail("time stretch: tempo ratio %g out of range %g..%g", tempo_ratio, M2U_TEMPO_RATIO_MIN,
                        M2U_TEMPO_RATIO_MAX);
    if (check_input("time stretch", in, n, rate) != 0) return -1;
    size_t want = (size_t)llround((double)n / tempo_ratio);
    if (want == 0) want = 1;
    return rb_run("time stretch", in, n, rate, 1.0 / tempo_ratio, 1.0, want, out, n_out);
}

int m2u_pitch_shift(const float *in, size_t n, int rate, double semitones, float **out, size_t *n_out) {
    if (!out || !n_out) return m2u_fail("pitch shift: no output");
    *out = NULL;
    *n_out = 0;
    if (!(fabs(semitones) <= M2U_PITCH_SEMITONES_MAX))
        return m2u_fail("pitch shift: %g semitones out of range +-%g", semitones, M2U_PITCH_SEMITONES_MAX);
    if (check_input("pitch shift", in, n, rate) != 0) return -1;
    return rb_run("pitch shift", in, n, rate, 1.0, pow(2.0, semitones / 12.0), n, out, n_out);
}

int m2u_apply_gain(float *x, size_t n, double gain_db, int allow_clip, size_t *clipped) {
    if (clipped) *clipped = 0;
    if (!isfinite(gain_db) || fabs(gain_db) > 120) return m2u_fail("gain: %g dB out of range +-120", gain_db);
    if (!x && n) return m2u_fail("gain: no samples");
    double g = pow(10.0, gain_db / 20.0);
    double peak = 0;
    size_t over = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return m2u_fail("gain: sample %zu is not finite", i);
        double a = fabs((double)x[i]);
        if (a > peak) peak = a;
        if ((float)(a * g) > (float)M2U_GAIN_CLIP_PEAK) over++;
    }
    if (over && !allow_clip)
        return m2u_fail("gain %+.2f dB would clip: peak %.4f -> %.4f exceeds %.3f on %zu samples", gain_db, peak,
                        peak * g, M2U_GAIN_CLIP_PEAK, over);
    const float lim = (float)M2U_GAIN_CLIP_PEAK;
    for (size_t i = 0; i < n; i++) {
        float v = (float)((double)x[i] * g);
        if (v > lim) v = lim;
        if (v < -lim) v = -lim;
        x[i] = v;
    }
    if (clipped) *clipped = over;
    return 0;
}

int m2u_audio_edit_engine(void) {
    RubberBandState rb = rubberband_new(44100, 1, RB_OPTIONS, 1.0, 1.0);
    if (!rb) return 0;
    int v = rubberband_get_engine_version(rb);
    rubberband_delete(rb);
    return v;
}
