/* Minimal assertion helpers shared by the C tests.
 *
 * A test binary runs its checks, prints one line per failure with file:line,
 * and ends with "N passed, N failed"; its exit status is non-zero on any failure. */
#ifndef M2U_TEST_UTIL_H
#define M2U_TEST_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

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

/* The running worst of a sequence of errors: a NaN, once seen, stays (a bare `if (e > worst)`
 * skips it, and `if (!(e <= worst))` forgets it at the next finite error). */
static inline double t_worse(double worst, double e) { return worst != worst || e <= worst ? worst : e; }

/* Largest |a-b| / (|b| + atol/rtol) style comparison: returns the worst relative error
 * max_i |a_i - b_i| / max(|b|_inf, tiny). Scaled by the tensor's magnitude so that
 * near-zero entries do not dominate; tolerances in the tests are stated against it. */
static inline double t_max_rel_err(const float *a, const float *b, size_t n) {
    double maxabs = 0, maxdiff = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        maxdiff = t_worse(maxdiff, d);
        if (fabs((double)b[i]) > maxabs) maxabs = fabs((double)b[i]);
    }
    return maxdiff / (maxabs > 1e-30 ? maxabs : 1e-30);
}

/* Run a shell command (printf-style) and return its exit status, or -1 when it did not exit
 * normally or did not fit the buffer (a cut command must not run).  Output so far is flushed
 * first, so the test's own lines and the command's stay in order. */
static inline int t_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int t_sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd) return -1;
    fflush(NULL);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static inline int t_finish(const char *name) {
    printf("%s: %d passed, %d failed\n", name, t_pass, t_fail);
    return t_fail ? 1 : 0;
}

#endif
