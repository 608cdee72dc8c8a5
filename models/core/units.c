/* Byte counts: see units.h. */
#include "units.h"

#include "m2u_error.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int m2u_parse_bytes(const char *s, size_t *out) {
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (end == s || errno || !(v > 0)) return m2u_fail("'%s' is not a size (e.g. 24G, 40GiB, 200MB, 80000M)", s);
    static const char *const units = "KMGT";
    double mul = 1;
    const char *u = *end ? strchr(units, toupper((unsigned char)*end)) : NULL;
    if (u) {
        int p = (int)(u - units) + 1;
        const char *rest = end + 1;
        /* K, Ki, KiB: 1024^p; KB: 1000^p */
        double base = !strcmp(rest, "B") || !strcmp(rest, "b") ? 1000.0 : 1024.0;
        if (*rest && strcmp(rest, "B") && strcmp(rest, "b") && strcmp(rest, "iB") && strcmp(rest, "i"))
            return m2u_fail("'%s' is not a size (e.g. 24G, 40GiB, 200MB, 80000M): unexpected '%s'", s, rest);
        while (p--) mul *= base;
        end += strlen(end);
    }
    if (*end) return m2u_fail("'%s' is not a size (e.g. 24G, 40GiB, 200MB, 80000M): unexpected '%s'", s, end);
    if (v * mul > 1.8e19) return m2u_fail("'%s' is too large", s);
    *out = (size_t)(v * mul);
    return 0;
}

const char *m2u_fmt_bytes(size_t bytes, char *buf, size_t cap) {
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024.0 && u < 4) v /= 1024.0, u++;
    if (u == 0) snprintf(buf, cap, "%zu B", bytes);
    else snprintf(buf, cap, "%.*f %s", v < 10 ? 2 : 1, v, unit[u]);
    return buf;
}
