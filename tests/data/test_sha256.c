/* SHA-256 against known digests (FIPS 180-4 examples) and sha256sum of a file. */
#include "sha256.h"
#include "test_util.h"

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

int main(void) {
    char hex[65];
    digest_hex("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "empty: %s", hex);
    digest_hex("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "abc: %s", hex);
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    digest_hex(two, strlen(two), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "448 bits: %s", hex);
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
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "million a: %s", hex);
    free(a);
    CHECK(m2u_sha256_file("/nonexistent/x", hex) != 0, "missing file accepted");
    return t_finish("test_sha256");
}
