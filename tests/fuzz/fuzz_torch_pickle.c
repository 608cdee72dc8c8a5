/* libFuzzer target: the input is data.pkl of a torch.save archive.  The
 * target wraps it in a valid stored zip (archive/data.pkl, archive/data/0 and
 * archive/data/1 holding 256 and 1024 bytes), so every mutation reaches the
 * pickle machine instead of dying in the zip reader; fuzz_torch.c covers the
 * container.  Seeds: data.pkl of the fixtures (tests/fuzz/run.sh extracts them). */
#include "fuzz_torch_common.h"

typedef struct {
    unsigned char *p;
    size_t n, cap;
} zbuf;

static void put(zbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = 2 * (b->n + n);
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put16(zbuf *b, unsigned v) {
    unsigned char x[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    put(b, x, 2);
}
static void put32(zbuf *b, uint32_t v) {
    put16(b, v & 0xffff);
    put16(b, v >> 16);
}

typedef struct {
    const char *name;
    const void *data;
    size_t n;
    uint32_t off;
} zent;

/* A stored zip (no compression, CRC left 0: m2u does not check it, as torch's
 * own reader only checks it on request). */
static void write_zip(zbuf *b, zent *e, int n) {
    for (int i = 0; i < n; i++) {
        e[i].off = (uint32_t)b->n;
        put32(b, 0x04034b50);
        put16(b, 20), put16(b, 0), put16(b, 0), put16(b, 0), put16(b, 0);
        put32(b, 0), put32(b, (uint32_t)e[i].n), put32(b, (uint32_t)e[i].n);
        put16(b, (unsigned)strlen(e[i].name)), put16(b, 0);
        put(b, e[i].name, strlen(e[i].name));
        put(b, e[i].data, e[i].n);
    }
    uint32_t cd = (uint32_t)b->n;
    for (int i = 0; i < n; i++) {
        put32(b, 0x02014b50);
        put16(b, 20), put16(b, 20), put16(b, 0), put16(b, 0), put16(b, 0), put16(b, 0);
        put32(b, 0), put32(b, (uint32_t)e[i].n), put32(b, (uint32_t)e[i].n);
        put16(b, (unsigned)strlen(e[i].name)), put16(b, 0), put16(b, 0), put16(b, 0), put16(b, 0);
        put32(b, 0), put32(b, e[i].off);
        put(b, e[i].name, strlen(e[i].name));
    }
    uint32_t cd_len = (uint32_t)b->n - cd;
    put32(b, 0x06054b50);
    put16(b, 0), put16(b, 0), put16(b, (unsigned)n), put16(b, (unsigned)n);
    put32(b, cd_len), put32(b, cd), put16(b, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static unsigned char s0[256], s1[1024];
    zent e[] = {{"archive/data.pkl", data, size, 0},
                {"archive/byteorder", "little", 6, 0},
                {"archive/data/0", s0, sizeof s0, 0},
                {"archive/data/1", s1, sizeof s1, 0},
                {"archive/version", "3\n", 2, 0}};
    zbuf b = {0};
    write_zip(&b, e, (int)(sizeof e / sizeof e[0]));
    const char *path = fuzz_write(0, "x.pth", b.p, b.n);
    free(b.p);
    fuzz_torch_open(path);
    return 0;
}
