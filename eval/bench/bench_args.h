/* Option values of the benchmark drivers (eval/bench): strict integers and positive
 * numbers, refused on stderr with the program's and the option's names.  Header-only and
 * free of BLAS, so that every driver can use it (bench_common.h includes it). */
#ifndef M2U_BENCH_ARGS_H
#define M2U_BENCH_ARGS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* An option's value: an integer in [lo, hi], or a positive number up to 1e6; -1 (said on
 * stderr with the program's and the option's names) when it is not. */
static inline int parse_long(const char *prog, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: %s expects an integer in [%ld, %ld], got '%s'\n", prog, opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static inline int parse_positive(const char *prog, const char *opt, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v > 0) || v > 1e6) {
        fprintf(stderr, "%s: %s expects a positive number, got '%s'\n", prog, opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

#endif
