/* The library's one way to say something that is not an error: a log callback.
 *
 * Library code never prints; it calls m2u_log(), which hands the formatted line
 * to the callback the program installed (tools install m2u_log_stderr).  With no
 * callback installed the line is dropped, so a program embedding m2u decides
 * where its messages go.  The callback may be called from any thread. */
#ifndef M2U_LOG_H
#define M2U_LOG_H

#include "m2u_error.h" /* M2U_PRINTF */

typedef enum { M2U_LOG_DEBUG, M2U_LOG_INFO, M2U_LOG_WARN } m2u_log_level;

/* msg has no trailing newline. */
typedef void (*m2u_log_fn)(m2u_log_level level, const char *msg, void *user);

/* Install (or with NULL remove) the process-wide callback. */
void m2u_log_set(m2u_log_fn fn, void *user);
/* Format and pass one line to the callback. */
void m2u_log(m2u_log_level level, const char *fmt, ...) M2U_PRINTF(2, 3);
/* A ready-made callback for command-line tools: the line and a newline on stderr. */
void m2u_log_stderr(m2u_log_level level, const char *msg, void *user);

#endif
