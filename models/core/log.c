#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static m2u_log_fn g_fn;
static void *g_user;

void m2u_log_set(m2u_log_fn fn, void *user) {
    g_fn = fn;
    g_user = user;
}

void m2u_log(m2u_log_level level, const char *fmt, ...) {
    m2u_log_fn fn = g_fn;
    if (!fn) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof buf) {
        fn(level, buf, g_user);
        return;
    }
    /* a long line (a held-out answer): format it again into a buffer of its size */
    char *big = malloc((size_t)n + 1);
    if (!big) {
        fn(level, buf, g_user); /* truncated rather than lost */
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    fn(level, big, g_user);
    free(big);
}

void m2u_log_stderr(m2u_log_level level, const char *msg, void *user) {
    (void)level;
    (void)user;
    fprintf(stderr, "%s\n", msg);
}
