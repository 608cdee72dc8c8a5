/* Progress for long jobs: a live line with rate and ETA on a terminal, a line
 * every few seconds otherwise (logs, CI), and JSON-lines records for machines. */
#ifndef M2U_PROGRESS_H
#define M2U_PROGRESS_H

#include <stdio.h>

typedef struct {
    const char *what;  /* "step", "file", ... */
    long total;
    double t_start, t_last_print;
    int tty;
    FILE *out;
} m2u_progress;

double m2u_now(void); /* monotonic seconds */
/* Where every progress line of this process goes (tools pass stderr); NULL, the
 * default, prints nothing, so library code stays silent unless its program asks. */
void m2u_progress_set_stream(FILE *out);
void m2u_progress_start(m2u_progress *p, const char *what, long total);
/* done units so far; extra is a short text such as "loss 2.31 lr 3e-4". */
void m2u_progress_update(m2u_progress *p, long done, const char *extra);
void m2u_progress_end(m2u_progress *p, long done, const char *extra);

#endif
