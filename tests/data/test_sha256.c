/* SHA-256 against known digests (FIPS 180-4 examples) and sha256sum of a file. */
#include "sha256.h"
#include "test_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void digest_hex(const void *data, size_t len, char hex[65]) {
    m2u_sha256 s;
    unsigned char d[32];
    m2u_sha256_init(&s);
    m2u_sha256_update(&s, data, len);
    m2u_sha256_final(&s, d);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* The known digests, through whichever block code m2u_sha256_accel chose. */
static void known_digests(const char *which) {
    char hex[65];
    digest_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "%s empty: %s", which, hex);
    digest_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "%s abc: %s", which, hex);
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    digest_hex(two, strlen(two), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "%s 448 bits: %s", which, hex);
    /* one million 'a', fed in uneven pieces to exercise the buffering */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    m2u_sha256 s;
    unsigned char d[32];
    m2u_sha256_init(&s);
    for (size_t off = 0, step = 1; off < 1000000; off += step, step = step * 7 % 997 + 1)
        m2u_sha256_update(&s, a + off, off + step > 1000000 ? 1000000 - off : step);
    m2u_sha256_final(&s, d);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "%s million a: %s", which, hex);
    free(a);
}

/* Digest of n pseudo-random bytes fed in pieces of varying size. */
static void random_digest(size_t n, uint32_t seed, unsigned char d[32]) {
    unsigned char *b = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        b[i] = (unsigned char)(seed >> 24);
    }
    m2u_sha256 s;
    m2u_sha256_init(&s);
    for (size_t off = 0, step = 3; off < n; off += step, step = step * 5 % 331 + 1)
        m2u_sha256_update(&s, b + off, off + step > n ? n - off : step);
    m2u_sha256_final(&s, d);
    free(b);
}

int main(void) {
    char hex[65];
    /* the portable code always; the SHA instructions too where the CPU has them */
    CHECK(m2u_sha256_accel(0) == 0, "accel(0) did not turn the SHA instructions off");
    known_digests("portable");
    int accel = m2u_sha256_accel(1);
    printf("test_sha256: SHA instructions %s\n", accel ? "present: both paths checked" : "absent: portable only");
    if (accel) {
        known_digests("sha-ni");
        /* the two paths agree on every length around block boundaries and on long inputs */
        static const size_t lens[] = {0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 65536, 1 << 20};
        for (size_t k = 0; k < sizeof lens / sizeof *lens; k++) {
            unsigned char x[32], c[32];
            m2u_sha256_accel(1);
            random_digest(lens[k], (uint32_t)k + 7, x);
            m2u_sha256_accel(0);
            random_digest(lens[k], (uint32_t)k + 7, c);
            CHECK(!memcmp(x, c, 32), "length %zu: SHA instructions and portable code differ", lens[k]);
        }
        m2u_sha256_accel(1);
    }
    CHECK(m2u_sha256_file("/nonexistent/x", hex) != 0, "missing file accepted");
    return t_finish("test_sha256");
}
