/* Minimal assertion helpers shared by the C tests.
 *
 * A test binary runs its checks, prints one line per failure with file:line,
 * and ends with "N passed, N failed"; its exit status is non-zero on any failure. */
#ifndef M2U_TEST_UTIL_H
#define M2U_TEST_UTIL_H

#include <math.h>
#include <stdio.h>

static int t_pass, t_fail;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) {                                                        \
            t_pass++;                                                      \
        } else {                                                           \
            t_fail++;                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

/* Largest |a-b| / (|b| + atol/rtol) style comparison: returns the worst relative error
 * max_i |a_i - b_i| / max(|b|_inf, tiny). Scaled by the tensor's magnitude so that
 * near-zero entries do not dominate; tolerances in the tests are stated against it. */
static inline double t_max_rel_err(const float *a, const float *b, size_t n) {
    double maxabs = 0, maxdiff = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= maxdiff)) maxdiff = d; /* NaN-propagating */
        if (fabs((double)b[i]) > maxabs) maxabs = fabs((double)b[i]);
    }
    return maxdiff / (maxabs > 1e-30 ? maxabs : 1e-30);
}

static inline int t_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, t_pass, t_fail);
    return t_fail ? 1 : 0;
}

#endif
