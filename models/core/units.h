/* Byte counts as people type and read them (memory limits, shard sizes). */
#ifndef M2U_UNITS_H
#define M2U_UNITS_H

#include <stddef.h>

/* "1073741824", "512K", "24G", "40GiB", "1.5TiB" (powers of 1024), "200MB", "5GB" (powers of
 * 1000, as disks count them).  -1 with m2u_fail naming s when it is not a positive size. */
int m2u_parse_bytes(const char *s, size_t *out);

/* "12.5 GiB" / "340.2 MiB" / "512 B" into buf; returns buf. */
const char *m2u_fmt_bytes(size_t bytes, char *buf, size_t cap);

#endif
