/* SHA-256 (FIPS 180-4), for the dataset manifest's per-shard checksums. */
#ifndef M2U_SHA256_H
#define M2U_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t len;
    unsigned char buf[64];
    size_t n;
} m2u_sha256;

void m2u_sha256_init(m2u_sha256 *s);
void m2u_sha256_update(m2u_sha256 *s, const void *data, size_t len);
void m2u_sha256_final(m2u_sha256 *s, unsigned char out[32]);
/* Use the CPU's SHA instructions when it has them (the default, decided on
 * first use) or not (want = 0: the portable code, for tests).  Returns 1 when
 * they are in use now.  Not thread-safe: call it before hashing starts. */
int m2u_sha256_accel(int want);
/* Hex digest of a whole file (65 bytes with the NUL). */
int m2u_sha256_file(const char *path, char hex[65]);
/* n bytes as 2n lowercase hex digits and a NUL (digests as sha256sum and xxh128sum print them). */
void m2u_hex(const unsigned char *d, size_t n, char *hex);
/* A stable number in [0, 1) from SHA-256(prefix + key): its first 32 bits / 2^32.
 * Splits by source use it, so a source lands in the same split everywhere. */
double m2u_sha256_unit(const char *prefix, const char *key);

#endif
