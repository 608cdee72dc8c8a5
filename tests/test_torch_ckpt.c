/* The torch.save reader: state dicts of several dtypes, views into shared
 * storage, nested dicts; non-contiguous tensors, truncated files and a
 * malicious pickle (os.system in __reduce__) are refused, nothing executed. */
#include "fileio.h"
#include "m2u_error.h"
#include "test_util.h"
#include "torch_ckpt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char path[1024];

static const char *fx(const char *name) {
    snprintf(path, sizeof path, "%s/torch/%s", M2U_FIXTURES, name);
    return path;
}

static void check_state(m2u_torch_ckpt *c, const char *prefix) {
    char name[128];
    float v[6];
    snprintf(name, sizeof name, "%sa.weight", prefix);
    const m2u_st_tensor *t = m2u_torch_find(c, name);
    CHECK(t && t->dtype == M2U_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3, "%s", name);
    if (t) {
        m2u_st_read_f32(t, v, 6);
        for (int i = 0; i < 6; i++) CHECK(v[i] == (float)i, "%s[%d] = %g", name, i, v[i]);
    }
    snprintf(name, sizeof name, "%sb", prefix);
    t = m2u_torch_find(c, name);
    CHECK(t && t->dtype == M2U_BF16 && t->numel == 2, "%s", name);
    if (t) {
        m2u_st_read_f32(t, v, 2);
        CHECK(v[0] == 1.5f && v[1] == 2.5f, "bf16 values %g %g", v[0], v[1]);
    }
    snprintf(name, sizeof name, "%sc", prefix);
    t = m2u_torch_find(c, name);
    CHECK(t && t->dtype == M2U_F16 && t->numel == 4, "%s", name);
    if (t) {
        m2u_st_read_f32(t, v, 4);
        CHECK(v[3] == 3.0f, "f16 value %g", v[3]);
    }
    snprintf(name, sizeof name, "%sd", prefix);
    t = m2u_torch_find(c, name);
    int64_t d[3] = {0, 0, 0};
    if (t && t->dtype == M2U_I64) memcpy(d, t->data, sizeof d);
    CHECK(t && d[0] == 7 && d[1] == -8 && d[2] == 9, "int64 values");
    snprintf(name, sizeof name, "%sview", prefix);
    t = m2u_torch_find(c, name);
    CHECK(t && t->ndim == 1 && t->numel == 3, "%s", name);
    if (t) {
        m2u_st_read_f32(t, v, 3);
        CHECK(v[0] == 3.0f && v[2] == 5.0f, "view into shared storage: %g %g", v[0], v[2]);
    }
}

/* ---- hand-built hostile archives: a stored zip with a pickle we write byte by byte ---- */

typedef struct {
    unsigned char b[4096];
    size_t n;
} buf;

static void put(buf *o, const void *p, size_t k) {
    memcpy(o->b + o->n, p, k);
    o->n += k;
}
static void put8(buf *o, unsigned v) { o->b[o->n++] = (unsigned char)v; }
static void put16(buf *o, unsigned v) { put8(o, v & 0xff), put8(o, v >> 8 & 0xff); }
static void put32(buf *o, uint32_t v) { put16(o, v & 0xffff), put16(o, v >> 16); }
static void put64(buf *o, uint64_t v) { put32(o, (uint32_t)v), put32(o, (uint32_t)(v >> 32)); }
static void pstr(buf *o, const char *s) { /* BINUNICODE */
    put8(o, 'X');
    put32(o, (uint32_t)strlen(s));
    put(o, s, strlen(s));
}
static void pint(buf *o, int64_t v) { /* LONG1, 8 bytes: any int64 */
    put8(o, 0x8a);
    put8(o, 8);
    put64(o, (uint64_t)v);
}
static void ptuple(buf *o, const int64_t *v, int n) {
    put8(o, '(');
    for (int i = 0; i < n; i++) pint(o, v[i]);
    put8(o, 't');
}

/* {"t": _rebuild_tensor_v2(storage('0', FloatStorage, numel=storage_numel), offset, shape, stride)} */
static void tensor_pickle(buf *o, int64_t storage_numel, int64_t offset, const int64_t *shape, const int64_t *stride,
                          int ndim) {
    put8(o, 0x80), put8(o, 2), put8(o, '}');
    pstr(o, "t");
    put(o, "ctorch._utils\n_rebuild_tensor_v2\n", 33);
    put8(o, '(');
    put8(o, '(');
    pstr(o, "storage");
    put(o, "ctorch\nFloatStorage\n", 20);
    pstr(o, "0");
    pstr(o, "cpu");
    pint(o, storage_numel);
    put8(o, 't'), put8(o, 'Q');
    pint(o, offset);
    ptuple(o, shape, ndim);
    ptuple(o, stride, ndim);
    put8(o, 't'), put8(o, 'R'), put8(o, 's'), put8(o, '.');
}

/* A stored zip of "a/data.pkl" and "a/data/0" (16 bytes of floats).  zip64_off:
   write data.pkl's central-directory offset as 0xffffffff with this 64-bit value in
   a zip64 extra field; bad_extra: an extra field whose length runs past its block. */
static void write_zip(const char *file, const buf *pkl, uint64_t zip64_off, int bad_extra) {
    static buf z;
    z.n = 0;
    const char *names[2] = {"a/data.pkl", "a/data/0"};
    const unsigned char floats[16] = {0};
    const unsigned char *data[2] = {pkl->b, floats};
    size_t len[2] = {pkl->n, 16}, off[2];
    for (int i = 0; i < 2; i++) {
        off[i] = z.n;
        put32(&z, 0x04034b50u), put16(&z, 20), put16(&z, 0), put16(&z, 0), put32(&z, 0), put32(&z, 0);
        put32(&z, (uint32_t)len[i]), put32(&z, (uint32_t)len[i]), put16(&z, (unsigned)strlen(names[i])), put16(&z, 0);
        put(&z, names[i], strlen(names[i]));
        put(&z, data[i], len[i]);
    }
    size_t cd = z.n;
    for (int i = 0; i < 2; i++) {
        int z64 = i == 0 && zip64_off, bx = i == 0 && bad_extra;
        put32(&z, 0x02014b50u), put16(&z, 20), put16(&z, 20), put16(&z, 0), put16(&z, 0), put32(&z, 0), put32(&z, 0);
        put32(&z, (uint32_t)len[i]), put32(&z, (uint32_t)len[i]), put16(&z, (unsigned)strlen(names[i]));
        put16(&z, z64 || bx ? 12 : 0), put16(&z, 0), put16(&z, 0), put16(&z, 0), put32(&z, 0);
        put32(&z, z64 || bx ? 0xffffffffu : (uint32_t)off[i]);
        put(&z, names[i], strlen(names[i]));
        if (z64) put16(&z, 1), put16(&z, 8), put64(&z, zip64_off);
        if (bx) put16(&z, 1), put16(&z, 0xfff0), put64(&z, 0); /* claims 65520 bytes, has 8 */
    }
    size_t cd_size = z.n - cd;
    put32(&z, 0x06054b50u), put16(&z, 0), put16(&z, 0), put16(&z, 2), put16(&z, 2);
    put32(&z, (uint32_t)cd_size), put32(&z, (uint32_t)cd), put16(&z, 0);
    FILE *f = fopen(file, "wb");
    fwrite(z.b, 1, z.n, f);
    fclose(f);
}

/* 1: refused, with `want` in the message; 0: accepted (the bug this guards against) */
static int refused(const char *file, const char *want) {
    m2u_torch_ckpt *c = NULL;
    if (m2u_torch_open(file, &c) == 0) {
        m2u_torch_close(c);
        return 0;
    }
    if (want && !strstr(m2u_last_error(), want)) {
        fprintf(stderr, "unexpected message: %s\n", m2u_last_error());
        return 0;
    }
    return 1;
}

static void hostile_files(void) {
    char tmp[] = "/tmp/m2u_torch_hostile_XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) return;
    close(fd);
    static buf pkl;
    const int64_t big = (int64_t)1 << 32;
    /* the good case first, so the helpers are known to build a readable archive */
    int64_t shape1[1] = {4}, stride1[1] = {1};
    pkl.n = 0;
    tensor_pickle(&pkl, 4, 0, shape1, stride1, 1);
    write_zip(tmp, &pkl, 0, 0);
    m2u_torch_ckpt *c = NULL;
    CHECK(m2u_torch_open(tmp, &c) == 0 && m2u_torch_count(c) == 1 && m2u_torch_at(c, 0)->numel == 4,
          "hand-built archive: %s", m2u_last_error());
    m2u_torch_close(c);
    /* 2^32 x 2^32 elements: the count wraps to 0 in 64 bits and used to pass as an empty tensor */
    int64_t shape2[2] = {big, big}, stride2[2] = {big, 1};
    pkl.n = 0;
    tensor_pickle(&pkl, 4, 0, shape2, stride2, 2);
    write_zip(tmp, &pkl, 0, 0);
    CHECK(refused(tmp, "overflows"), "shape [2^32, 2^32] accepted");
    /* 2^62+1 floats in a storage that claims as many: the byte count (x4) wraps to 4,
       which the 16-byte entry holds, and used to be accepted with numel 2^62+1 */
    int64_t shape3[1] = {((int64_t)1 << 62) + 1}, stride3[1] = {1};
    pkl.n = 0;
    tensor_pickle(&pkl, shape3[0], 0, shape3, stride3, 1);
    write_zip(tmp, &pkl, 0, 0);
    CHECK(refused(tmp, NULL), "2^62+1 elements in 16 bytes accepted");
    /* an offset of 2^62 - 1 elements: (offset + 1) * 4 wraps, the data pointer lies far outside */
    int64_t shape4[1] = {1};
    pkl.n = 0;
    tensor_pickle(&pkl, INT64_MAX, ((int64_t)1 << 62) - 1, shape4, stride1, 1);
    write_zip(tmp, &pkl, 0, 0);
    CHECK(refused(tmp, "outside its storage"), "offset 2^62-1 accepted");
    /* negative offset and negative storage size */
    pkl.n = 0;
    tensor_pickle(&pkl, 4, -1, shape1, stride1, 1);
    write_zip(tmp, &pkl, 0, 0);
    CHECK(refused(tmp, "outside its storage"), "offset -1 accepted");
    /* a zip64 local-header offset near 2^64: offset + 30 wraps below the file size */
    pkl.n = 0;
    tensor_pickle(&pkl, 4, 0, shape1, stride1, 1);
    write_zip(tmp, &pkl, UINT64_MAX - 10, 0);
    CHECK(refused(tmp, "local header"), "zip64 offset 2^64-11 accepted");
    write_zip(tmp, &pkl, 0, 1);
    CHECK(refused(tmp, "extra field"), "zip extra field longer than its block accepted");
    /* LONG_BINGET 0xffffffff: the index must not become -1 */
    pkl.n = 0;
    put8(&pkl, 0x80), put8(&pkl, 2), put8(&pkl, '}'), put8(&pkl, 0x94), put8(&pkl, 'j'), put32(&pkl, 0xffffffffu);
    write_zip(tmp, &pkl, 0, 0);
    CHECK(refused(tmp, "unknown memo"), "memo index 0xffffffff accepted");
    /* a dict that contains itself (memo): refused, not unbounded recursion */
    pkl.n = 0;
    put8(&pkl, 0x80), put8(&pkl, 2), put8(&pkl, '}'), put8(&pkl, 'q'), put8(&pkl, 0);
    pstr(&pkl, "self");
    put8(&pkl, 'h'), put8(&pkl, 0), put8(&pkl, 's'), put8(&pkl, '.');
    write_zip(tmp, &pkl, 0, 0);
    CHECK(refused(tmp, "nested deeper"), "self-containing dict accepted");
    /* D_k = {a: D_k-1, b: D_k-1} over 40 levels through the memo: 2^40 paths in ~600 bytes,
       refused quickly rather than walked (used to hang) */
    pkl.n = 0;
    put8(&pkl, 0x80), put8(&pkl, 2);
    for (int lv = 40; lv >= 0; lv--) { /* opening D_40 .. D_0, each memoized as its level */
        put8(&pkl, '}'), put8(&pkl, 'q'), put8(&pkl, (unsigned)lv);
        if (lv) put8(&pkl, '('), pstr(&pkl, "a");
    }
    for (int lv = 1; lv <= 40; lv++) { /* closing D_1 .. D_40: second key b -> D_lv-1 again */
        pstr(&pkl, "b");
        put8(&pkl, 'h'), put8(&pkl, (unsigned)(lv - 1)), put8(&pkl, 'u');
    }
    put8(&pkl, '.');
    write_zip(tmp, &pkl, 0, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(refused(tmp, "dict entries"), "a dict shared 2^40 ways accepted");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    CHECK(secs < 30.0, "the shared dict took %.1f s to refuse (2^40 entries to walk)", secs); /* generous: ASan, loaded CI */
    unlink(tmp);
}

int main(void) {
    m2u_torch_ckpt *c;
    CHECK(m2u_torch_open(fx("state.pth"), &c) == 0, "%s", m2u_last_error());
    if (c) {
        CHECK(m2u_torch_count(c) == 5, "%d tensors", m2u_torch_count(c));
        check_state(c, "");
        m2u_torch_close(c);
    }
    CHECK(m2u_torch_open(fx("nested.pth"), &c) == 0, "%s", m2u_last_error());
    if (c) {
        check_state(c, "model.");
        CHECK(m2u_torch_n_other(c) == 1, "non-tensor values: %d", m2u_torch_n_other(c));
        m2u_torch_close(c);
    }
    /* the same file through the safetensors interface every loader uses */
    m2u_safetensors *st;
    CHECK(m2u_st_open(fx("state.pth"), &st) == 0, "%s", m2u_last_error());
    if (st) {
        int64_t shape[2] = {2, 3};
        const m2u_st_tensor *a = m2u_st_expect(st, "a.weight", 2, shape);
        float v[6] = {0};
        CHECK(a && m2u_st_read_f32(a, v, 6) == 0 && v[5] == 5.0f, "a.weight through m2u_st_open");
        CHECK(m2u_st_count(st) == 5, "%d tensors", m2u_st_count(st));
        m2u_st_close(st);
    }
    CHECK(m2u_torch_open(fx("strided.pth"), &c) != 0 && strstr(m2u_last_error(), "contiguous"), "strided: %s",
          m2u_last_error());
    CHECK(m2u_torch_open(fx("malicious.pth"), &c) != 0 && strstr(m2u_last_error(), "refusing global") &&
              strstr(m2u_last_error(), "system"),
          "malicious pickle: %s", m2u_last_error());
    /* truncated copies of a good file are refused, never read out of bounds */
    char *data;
    size_t len;
    CHECK(m2u_read_file(fx("state.pth"), &data, &len) == 0, "read");
    char tmp[] = "/tmp/m2u_torch_XXXXXX";
    int fd = mkstemp(tmp);
    int refused = 0, tries = 0;
    for (size_t cut = 1; fd >= 0 && cut < len; cut += len / 37 + 1, tries++) {
        FILE *f = fopen(tmp, "wb");
        fwrite(data, 1, cut, f);
        fclose(f);
        if (m2u_torch_open(tmp, &c) != 0) refused++;
        else m2u_torch_close(c);
    }
    CHECK(refused == tries, "%d of %d truncated files accepted", tries - refused, tries);
    /* corrupted bytes anywhere: refused or read, never a crash or an out-of-bounds
       read (this test also runs under AddressSanitizer) */
    unsigned seed = 12345;
    int opened = 0;
    for (int it = 0; fd >= 0 && it < 400; it++) {
        char *bad = malloc(len);
        memcpy(bad, data, len);
        for (int k = 0; k < 1 + it % 3; k++) {
            seed = seed * 1103515245u + 12345u;
            bad[(seed >> 8) % len] ^= (char)(1u << (seed % 8));
        }
        FILE *f = fopen(tmp, "wb");
        fwrite(bad, 1, len, f);
        fclose(f);
        free(bad);
        if (m2u_torch_open(tmp, &c) == 0) {
            opened++;
            for (int i = 0; i < m2u_torch_count(c); i++) { /* every tensor lies inside the file */
                const m2u_st_tensor *t = m2u_torch_at(c, i);
                volatile unsigned char sink = 0;
                for (size_t b = 0; b < t->nbytes; b++) sink ^= ((const unsigned char *)t->data)[b];
                (void)sink;
            }
            m2u_torch_close(c);
        }
    }
    printf("corrupted copies: %d of 400 still readable (flips in tensor data), the rest refused\n", opened);
    CHECK(m2u_torch_open("/nonexistent.pth", &c) != 0, "missing file accepted");
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(data);
    hostile_files();
    return t_finish("test_torch_ckpt");
}
