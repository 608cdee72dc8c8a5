#include "progress.h"

#include <time.h>
#include <unistd.h>

double m2u_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* where progress lines go: nowhere until a program says (the library never prints) */
static FILE *g_stream;

void m2u_progress_set_stream(FILE *out) { g_stream = out; }

void m2u_progress_start(m2u_progress *p, const char *what, long total) {
    p->what = what;
    p->total = total;
    p->t_start = p->t_last_print = m2u_now();
    p->out = g_stream;
    p->tty = p->out && isatty(fileno(p->out));
}

static void fmt_time(char *buf, size_t n, double s) {
    if (s < 0 || s > 1e7) snprintf(buf, n, "?");
    else if (s >= 3600) snprintf(buf, n, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else snprintf(buf, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

static void print_line(m2u_progress *p, long done, const char *extra, int final) {
    if (!p->out) return;
    double el = m2u_now() - p->t_start;
    double rate = el > 0 ? (double)done / el : 0;
    char eta[32], elapsed[32];
    fmt_time(eta, sizeof eta, rate > 0 ? (double)(p->total - done) / rate : -1);
    fmt_time(elapsed, sizeof elapsed, el);
    fprintf(p->out, "%s%s %ld/%ld (%.0f%%) %.2f %s/s elapsed %s ETA %s%s%s%s", p->tty ? "\r\033[K" : "", p->what, done,
            p->total, p->total ? 100.0 * (double)done / (double)p->total : 0.0, rate, p->what, elapsed,
            final ? "0m00s" : eta, extra ? "  " : "", extra ? extra : "", (p->tty && !final) ? "" : "\n");
    fflush(p->out);
}

void m2u_progress_update(m2u_progress *p, long done, const char *extra) {
    double now = m2u_now();
    double every = p->tty ? 0.2 : 5.0;
    if (now - p->t_last_print < every) return;
    p->t_last_print = now;
    print_line(p, done, extra, 0);
}

void m2u_progress_end(m2u_progress *p, long done, const char *extra) { print_line(p, done, extra, 1); }
