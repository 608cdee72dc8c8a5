/* librosa.load natively: see audio_load.h. */
#include "audio_load.h"

#include "m2u_error.h"

#include <math.h>
#include <soxr.h>
#include <stdlib.h>
#include <string.h>

const char *m2u_soxr_version(void) { return soxr_version(); }

int m2u_soxr_resample(const float *x, int64_t n, double in_rate, double out_rate, float **y, int64_t *ny) {
    *y = NULL;
    *ny = 0;
    if (n < 0 || !(in_rate > 0) || !(out_rate > 0)) return m2u_fail("soxr: bad arguments (%g Hz -> %g Hz)", in_rate, out_rate);
    /* python-soxr 0.3.7 cysoxr_divide_proc, call for call: quality soxr_quality_spec(HQ, 0),
     * float32 io, default runtime (one thread); input in chunks of int(48000 * in / out)
     * samples, output capped at ceil(n * out / in), one flush, what came out is returned. */
    size_t ilen = (size_t)n, olen = (size_t)ceil((double)ilen * out_rate / in_rate),
           chunk = (size_t)(48000 * in_rate / out_rate);
    if (chunk == 0) chunk = 1;
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_error_t err = NULL;
    soxr_t s = soxr_create(in_rate, out_rate, 1, &err, &io, &q, NULL);
    if (!s || err) return m2u_fail("soxr: cannot create a %g Hz -> %g Hz resampler: %s", in_rate, out_rate, err ? err : "?");
    float *out = malloc((olen ? olen : 1) * sizeof *out);
    if (!out) {
        soxr_delete(s);
        return m2u_fail("soxr: out of memory for %zu samples", olen);
    }
    size_t odone = 0, pos = 0, idx = 0;
    while (!err && idx + chunk < ilen) {
        err = soxr_process(s, x + idx, chunk, NULL, out + pos, olen - pos, &odone);
        pos += odone;
        idx += chunk;
    }
    if (!err && idx < ilen) {
        err = soxr_process(s, x + idx, ilen - idx, NULL, out + pos, olen - pos, &odone);
        pos += odone;
    }
    if (!err && pos < olen) {
        err = soxr_process(s, NULL, 0, NULL, out + pos, olen - pos, &odone);
        pos += odone;
    }
    soxr_delete(s);
    if (err) {
        free(out);
        return m2u_fail("soxr: resampling %g Hz -> %g Hz failed: %s", in_rate, out_rate, err);
    }
    *y = out;
    *ny = (int64_t)pos;
    return 0;
}

int m2u_audio_load_librosa(const char *path, int sr, int64_t max_samples, float **pcm, int64_t *n,
                           m2u_audio_info *info) {
    *pcm = NULL;
    *n = 0;
    m2u_audio_info local;
    if (!info) info = &local;
    if (sr <= 0) {
        m2u_fail("%s: bad target rate %d", path, sr);
        info->status = M2U_DECODE_INTERNAL;
        return -1;
    }
    m2u_audio_opts o = {.native_rate = 1, .no_clamp = 1};
    float *x = NULL;
    int64_t nx = 0;
    if (m2u_audio_decode_ex(path, 0, &o, &x, &nx, info) != 0) return -1;
    int rate = info->src_rate;
    if (rate != sr) {
        float *y = NULL;
        int64_t ny = 0;
        if (m2u_soxr_resample(x, nx, rate, sr, &y, &ny) != 0) {
            free(x);
            info->status = M2U_DECODE_INTERNAL;
            return m2u_fail_prefix("%s: ", path);
        }
        free(x);
        /* librosa.resample: ratio = sr / rate; fix_length(y, size=int(ceil(n * ratio))), the
         * rounding of the double ratio included (48 kHz -> 32 kHz rounds n * ratio) */
        double ratio = (double)sr / rate;
        int64_t want = (int64_t)ceil((double)nx * ratio);
        if (ny < want) {
            float *p = realloc(y, (size_t)want * sizeof *p);
            if (!p) {
                free(y);
                info->status = M2U_DECODE_INTERNAL;
                return m2u_fail("%s: out of memory", path);
            }
            y = p;
            memset(y + ny, 0, (size_t)(want - ny) * sizeof *y);
        }
        x = y, nx = want;
    }
    if (max_samples > 0 && nx > max_samples) nx = max_samples;
    *pcm = x;
    *n = nx;
    return 0;
}
