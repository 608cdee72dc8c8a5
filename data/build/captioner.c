/* Helpers both captioner back ends (captioner_process.c, captioner_http.c) use. */
#include "captioner.h"

#include <errno.h>
#include <string.h>
#include <time.h>

void m2u_captioner_count_failure(m2u_captioner_stats *s, m2u_caption_status st) {
    switch (st) {
    case M2U_CAPTION_ERR_TIMEOUT: s->timeouts++; break;
    case M2U_CAPTION_ERR_MALFORMED: s->malformed++; break;
    case M2U_CAPTION_ERR_CRASHED: s->crashes++; break;
    case M2U_CAPTION_ERR_REFUSED: s->refused++; break;
    case M2U_CAPTION_ERR_HTTP: s->http_errors++; break;
    case M2U_CAPTION_ERR_TRANSPORT: s->transport_errors++; break;
    default: break;
    }
}

void m2u_captioner_copy_str(char *dst, size_t dstsz, const char *src) {
    size_t n = strlen(src);
    if (n >= dstsz) n = dstsz - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void m2u_captioner_sleep(double s) {
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
