/* Error reporting for the whole toolkit.
 *
 * Library functions never print or exit: they return 0 on success and -1 on
 * failure, after recording a message with m2u_fail().  Tools print
 * m2u_last_error() and choose their own exit code.  The message lives in
 * thread-local storage so OpenMP/pthread workers cannot clobber each other. */
#ifndef M2U_ERROR_H
#define M2U_ERROR_H

#if defined(__GNUC__)
#define M2U_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define M2U_PRINTF(a, b)
#endif

/* Record a formatted message and return -1 (so `return m2u_fail(...)` reads naturally). */
int m2u_fail(const char *fmt, ...) M2U_PRINTF(1, 2);
/* Prefix the current message with more context ("loading X: <old message>"); returns -1. */
int m2u_fail_prefix(const char *fmt, ...) M2U_PRINTF(1, 2);
/* The last message recorded on this thread ("" if none). */
const char *m2u_last_error(void);
void m2u_clear_error(void);

#endif
