#include "sinc_resample.h"

#include "m2u_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int gcd(int a, int b) {
    while (b) {
        int t = a % b;
        a = b, b = t;
    }
    return a;
}

void m2u_sinc_resampler_free(m2u_sinc_resampler *r) {
    free(r->kernel), free(r->lo), free(r->hi);
    memset(r, 0, sizeof *r);
}

int m2u_sinc_resampler_init(m2u_sinc_resampler *r, int orig_rate, int new_rate) {
    memset(r, 0, sizeof *r);
    if (orig_rate <= 0 || new_rate <= 0) return m2u_fail("resampler: bad rates %d -> %d Hz", orig_rate, new_rate);
    int g = gcd(orig_rate, new_rate), o = orig_rate / g, n = new_rate / g;
    r->orig = o, r->new_ = n;
    if (o == n) return 0; /* identity */
    const double pi = 3.14159265358979323846, lpw = 6.0;
    double base = (double)(o < n ? o : n) * 0.99;
    double wd = ceil(lpw * o / base);
    if (wd > 1e6 || (double)n * (2 * wd + o) > 2e8)
        return m2u_fail("resampler: %d -> %d Hz reduces to %d -> %d, a kernel too large to build", orig_rate,
                        new_rate, o, n);
    r->width = (int)wd, r->taps = 2 * r->width + o;
    r->kernel = malloc((size_t)n * r->taps * sizeof *r->kernel);
    r->lo = malloc((size_t)n * sizeof *r->lo), r->hi = malloc((size_t)n * sizeof *r->hi);
    if (!r->kernel || !r->lo || !r->hi) {
        m2u_sinc_resampler_free(r);
        return m2u_fail("resampler: out of memory (%d x %d kernel)", n, 2 * (int)wd + o);
    }
    double scale = base / o;
    for (int k = 0; k < n; k++) {
        /* torch.arange(0, -n, -1) / n is an int64 tensor divided in the default float32 */
        double tk = (double)((float)(-k) / (float)n);
        float *h = r->kernel + (size_t)k * r->taps;
        r->lo[k] = r->taps, r->hi[k] = 0;
        for (int i = 0; i < r->taps; i++) {
            double t = (tk + (double)(i - r->width) / o) * base;
            t = t < -lpw ? -lpw : t > lpw ? lpw : t;
            double c = cos(t * pi / lpw / 2), win = c * c;
            t *= pi;
            double v = t == 0 ? 1.0 : sin(t) / t;
            h[i] = (float)(v * (win * scale));
            if (h[i] != 0.0f) {
                if (i < r->lo[k]) r->lo[k] = i;
                r->hi[k] = i + 1;
            }
        }
        if (r->hi[k] == 0) r->lo[k] = 0;
    }
    return 0;
}

int64_t m2u_sinc_resampled_length(const m2u_sinc_resampler *r, int64_t n) {
    if (r->orig == r->new_) return n;
    return (n * r->new_ + r->orig - 1) / r->orig;
}

void m2u_sinc_resample(const m2u_sinc_resampler *r, const float *x, int64_t n, float *y, int64_t n_out) {
    if (r->orig == r->new_) {
        memcpy(y, x, (size_t)n_out * sizeof *y);
        return;
    }
    for (int64_t m = 0; m < n_out; m++) {
        int64_t j = m / r->new_;
        int k = (int)(m % r->new_);
        const float *h = r->kernel + (size_t)k * r->taps;
        int64_t s0 = j * r->orig - r->width; /* input index of tap 0 */
        int lo = r->lo[k], hi = r->hi[k];
        if (s0 + lo < 0) lo = (int)-s0;
        if (s0 + hi > n) hi = (int)(n - s0);
        double acc = 0.0;
        for (int i = lo; i < hi; i++) acc += (double)h[i] * x[s0 + i];
        y[m] = (float)acc;
    }
}
