/* Chromaprint fingerprints and their similarity (see fingerprint.h). */
#include "fingerprint.h"

#include "m2u_error.h"

#include <chromaprint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FEED 65536
#define MIN_OVERLAP 16

int m2u_fingerprint(const float *pcm, size_t n, int rate, double max_s, uint32_t **fp, size_t *len) {
    if (!fp || !len) return m2u_fail("fingerprint: no output");
    *fp = NULL;
    *len = 0;
    if (rate < 8000 || rate > 192000) return m2u_fail("fingerprint: sample rate %d out of range 8000..192000", rate);
    if (!pcm && n) return m2u_fail("fingerprint: no samples");
    if (!isfinite(max_s)) return m2u_fail("fingerprint: max_s is not finite");
    double lim_s = max_s > 0 ? max_s : 120.0;
    double lim = lim_s * rate;
    size_t use = (double)n < lim ? n : (size_t)llround(lim);
    for (size_t i = 0; i < use; i++)
        if (!isfinite(pcm[i])) return m2u_fail("fingerprint: sample %zu is not finite", i);
    ChromaprintContext *ctx = chromaprint_new(CHROMAPRINT_ALGORITHM_DEFAULT);
    if (!ctx) return m2u_fail("fingerprint: cannot create a Chromaprint context");
    int16_t *buf = malloc(FEED * sizeof *buf);
    if (!buf) {
        chromaprint_free(ctx);
        return m2u_fail("fingerprint: out of memory");
    }
    if (!chromaprint_start(ctx, rate, 1)) {
        free(buf);
        chromaprint_free(ctx);
        return m2u_fail("fingerprint: Chromaprint refused rate %d", rate);
    }
    int ok = 1;
    for (size_t i = 0; ok && i < use; i += FEED) {
        size_t m = use - i < FEED ? use - i : FEED;
        for (size_t k = 0; k < m; k++) {
            double v = nearbyint((double)pcm[i + k] * 32767.0);
            if (v > 32767) v = 32767;
            if (v < -32768) v = -32768;
            buf[k] = (int16_t)v;
        }
        ok = chromaprint_feed(ctx, buf, (int)m) == 1;
    }
    free(buf);
    if (!ok || !chromaprint_finish(ctx)) {
        chromaprint_free(ctx);
        return m2u_fail("fingerprint: Chromaprint failed while processing the audio");
    }
    uint32_t *raw = NULL;
    int size = 0;
    if (!chromaprint_get_raw_fingerprint(ctx, &raw, &size) || size < 0) {
        chromaprint_free(ctx);
        return m2u_fail("fingerprint: Chromaprint returned no fingerprint");
    }
    chromaprint_free(ctx);
    if (size == 0) {
        chromaprint_dealloc(raw);
        return 0;
    }
    uint32_t *o = malloc((size_t)size * sizeof *o);
    if (!o) {
        chromaprint_dealloc(raw);
        return m2u_fail("fingerprint: out of memory");
    }
    memcpy(o, raw, (size_t)size * sizeof *o);
    chromaprint_dealloc(raw);
    *fp = o;
    *len = (size_t)size;
    return 0;
}

/* At offset d (a[i + d] against b[i]): do the two change at the same items in
 * the same bits?  A steady sound gives a constant fingerprint (no bit ever
 * changes), and two constant fingerprints can agree on most bits whatever the
 * pitch (Chromaprint's filters compare chroma regions, all alike for one
 * steady tone): matching changes are the evidence of the same music. */
static double agreement_at(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, long long d) {
    size_t ia = d > 0 ? (size_t)d : 0, ib = d < 0 ? (size_t)(-d) : 0;
    size_t ov = na - ia < nb - ib ? na - ia : nb - ib;
    uint64_t both = 0, any = 0;
    for (size_t i = 0; i + 1 < ov; i++) {
        uint32_t da = a[ia + i] ^ a[ia + i + 1], db = b[ib + i] ^ b[ib + i + 1];
        both += (uint64_t)__builtin_popcount(da & db);
        any += (uint64_t)__builtin_popcount(da | db);
    }
    return any ? (double)both / (double)any : 0;
}

void m2u_fingerprint_compare(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, m2u_fingerprint_match *m) {
    memset(m, 0, sizeof *m);
    if (!a || !b) return;
    size_t shorter = na < nb ? na : nb;
    if (shorter < MIN_OVERLAP) return;
    size_t need = (shorter + 1) / 2;
    if (need < MIN_OVERLAP) need = MIN_OVERLAP;
    /* offset d: a[i + d] against b[i]; overlap = min(na, nb + d) - max(0, d) */
    long long lo = -(long long)(nb - need), hi = (long long)(na - need);
    for (long long d = lo; d <= hi; d++) {
        size_t ia = d > 0 ? (size_t)d : 0, ib = d < 0 ? (size_t)(-d) : 0;
        size_t ov = na - ia < nb - ib ? na - ia : nb - ib;
        if (ov < need) continue;
        uint64_t err = 0;
        for (size_t i = 0; i < ov; i++) err += (uint64_t)__builtin_popcount(a[ia + i] ^ b[ib + i]);
        double sim = 1.0 - (double)err / (32.0 * (double)ov);
        if (sim < m->similarity) continue;
        /* on a tie the best agreement counts, so that (a, b) and (b, a) agree */
        double agr = agreement_at(a, na, b, nb, d);
        if (sim > m->similarity || agr > m->agreement) m->agreement = agr, m->offset = (long)d;
        m->similarity = sim;
    }
}

int m2u_fingerprint_is_duplicate(const m2u_fingerprint_match *m, double threshold) {
    return m->similarity >= threshold && m->agreement >= M2U_FINGERPRINT_DUP_AGREEMENT;
}

double m2u_fingerprint_similarity(const uint32_t *a, size_t na, const uint32_t *b, size_t nb) {
    m2u_fingerprint_match m;
    m2u_fingerprint_compare(a, na, b, nb, &m);
    return m.similarity;
}
