#include "m2u_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_msg[2048];

int m2u_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return -1;
}

int m2u_fail_prefix(const char *fmt, ...) {
    char prefix[1024], old[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, sizeof old);
    /* "prefix: old", truncated to the buffer (truncation is fine for a message) */
    size_t a = strlen(prefix), b = strlen(old);
    if (a > sizeof g_msg - 3) a = sizeof g_msg - 3;
    memcpy(g_msg, prefix, a);
    memcpy(g_msg + a, ": ", 2);
    if (b > sizeof g_msg - 3 - a) b = sizeof g_msg - 3 - a;
    memcpy(g_msg + a + 2, old, b);
    g_msg[a + 2 + b] = '\0';
    return -1;
}

const char *m2u_last_error(void) { return g_msg; }

void m2u_clear_error(void) { g_msg[0] = '\0'; }
