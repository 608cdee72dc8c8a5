/* safetensors reader/writer: round trip, every validation rule of formats.md 1.4,
 * sharded checkpoints, and agreement with the Python reference writer
 * (fixture made by tests/make_safetensors_fixture.py). */
#include "dtype.h"
#include "fileio.h"
#include "m2u_error.h"
#include "safetensors.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef M2U_FIXTURES
#define M2U_FIXTURES "tests/fixtures"
#endif

static char g_dir[64];

static char *tpath(const char *name) {
    char *p = m2u_path_join(g_dir, name);
    if (!p) abort();
    return p;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp || (n && fwrite(data, 1, n, fp) != n) || fclose(fp) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        abort();
    }
}

/* A file with header length `n_field` (the real header length when (uint64_t)-1), then
 * the header text (hlen bytes), then `data_len` bytes of data (0x11 each). */
static void write_st_raw(const char *path, uint64_t n_field, const char *header, size_t hlen, size_t data_len) {
    size_t total = 8 + hlen + data_len;
    unsigned char *buf = malloc(total);
    if (n_field == (uint64_t)-1) n_field = hlen;
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(n_field >> (8 * i));
    memcpy(buf + 8, header, hlen);
    memset(buf + 8 + hlen, 0x11, data_len);
    write_bytes(path, buf, total);
    free(buf);
}

static void write_st(const char *path, const char *header, size_t data_len) {
    write_st_raw(path, (uint64_t)-1, header, strlen(header), data_len);
}

/* The file must be refused, with a message naming the file and containing `word`. */
static void expect_refused_at(int line, const char *name, const char *word) {
    char *p = tpath(name);
    m2u_safetensors *st = (m2u_safetensors *)1;
    m2u_clear_error();
    int rc = m2u_st_open(p, &st);
    const char *msg = m2u_last_error();
    CHECK(rc == -1 && st == NULL, "line %d: %s was accepted", line, name);
    CHECK(strstr(msg, name) != NULL, "line %d: message does not name the file: %s", line, msg);
    CHECK(strstr(msg, word) != NULL, "line %d: message lacks '%s': %s", line, word, msg);
    if (rc == 0) m2u_st_close(st);
    free(p);
}
#define EXPECT_REFUSED(name, word) expect_refused_at(__LINE__, name, word)

static m2u_safetensors *open_ok_at(int line, const char *path) {
    m2u_safetensors *st = NULL;
    int rc = m2u_st_open(path, &st);
    CHECK(rc == 0 && st, "line %d: open %s: %s", line, path, m2u_last_error());
    return rc == 0 ? st : NULL;
}
#define OPEN_OK(path) open_ok_at(__LINE__, path)

static void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *p = m2u_path_join(dir, e->d_name);
        if (m2u_is_dir(p)) rm_tree(p);
        else unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static int read_whole(const char *path, char **data, size_t *len) { return m2u_read_file(path, data, len); }

/* ------------------------------------------------------------------ round trip */

static void test_round_trip(void) {
    float w[6] = {1, -2, 3.5f, 0, -0.0f, 1e-40f};
    uint16_t h[5], b[4];
    float hsrc[5] = {1, -2.5f, 65504, 6e-8f, 0.1f}, bsrc[4] = {3.14159f, -1, 1e-3f, 1e30f};
    m2u_convert_from_f32(M2U_F16, hsrc, h, 5);
    m2u_convert_from_f32(M2U_BF16, bsrc, b, 4);
    double d[2] = {0.1, -3};
    int64_t i64[3] = {0, -1, INT64_MAX};
    int32_t i32[2] = {-5, 7};
    int16_t i16[3] = {1, -2, 3};
    int8_t i8[3] = {-128, 0, 127};
    uint8_t u8[1] = {200}, flag[2] = {1, 0};
    float scalar = 0.25f, odd = 42;
    m2u_st_entry e[] = {
        {"w", M2U_F32, 2, {2, 3}, w},
        {"h", M2U_F16, 1, {5}, h},
        {"b", M2U_BF16, 2, {2, 2}, b},
        {"d", M2U_F64, 1, {2}, d},
        {"i64", M2U_I64, 1, {3}, i64},
        {"i32", M2U_I32, 1, {2}, i32},
        {"i16", M2U_I16, 1, {3}, i16},
        {"i8", M2U_I8, 1, {3}, i8},
        {"u8", M2U_U8, 1, {1}, u8},
        {"flag", M2U_BOOL, 1, {2}, flag},
        {"scalar", M2U_F32, 0, {0}, &scalar},
        {"empty", M2U_F32, 2, {0, 4}, NULL},
        {"empty_bf16", M2U_BF16, 2, {3, 0}, NULL},
        {"\xc3\xa9\"q\n\x01\\", M2U_F32, 1, {1}, &odd}, /* escaping: UTF-8, quote, control, backslash */
        {"r8", M2U_F32, 8, {1, 1, 1, 1, 1, 1, 1, 1}, &odd},
    };
    int n = (int)(sizeof e / sizeof e[0]);
    const char *mk[] = {"step", "note"}, *mv[] = {"100", "\xc3\xbc tab\t\"q\""};
    char *p = tpath("rt.safetensors");
    CHECK(m2u_st_write(p, e, n, mk, mv, 2) == 0, "write: %s", m2u_last_error());

    m2u_safetensors *st = OPEN_OK(p);
    if (st) {
        CHECK(m2u_st_count(st) == n, "count %d", m2u_st_count(st));
        CHECK(strcmp(m2u_st_path(st), p) == 0, "path %s", m2u_st_path(st));
        for (int i = 0; i < n; i++) {
            const m2u_st_tensor *t = m2u_st_find(st, e[i].name);
            CHECK(t != NULL, "missing %s", e[i].name);
            if (!t) continue;
            size_t nb = m2u_dtype_size(e[i].dtype);
            for (int k = 0; k < e[i].ndim; k++) nb *= (size_t)e[i].shape[k];
            CHECK(t->dtype == e[i].dtype && t->ndim == e[i].ndim && t->nbytes == nb, "%s: dtype/ndim/nbytes",
                  e[i].name);
            CHECK(memcmp(t->shape, e[i].shape, sizeof(int64_t) * (size_t)e[i].ndim) == 0, "%s: shape", e[i].name);
            CHECK(t->shard == 0, "%s: shard %d", e[i].name, t->shard);
            if (nb) {
                CHECK(t->data && memcmp(t->data, e[i].data, nb) == 0, "%s: bytes differ", e[i].name);
                /* reference layout: data buffer 8-aligned and sorted by dtype, so every tensor is aligned */
                CHECK((uintptr_t)t->data % m2u_dtype_size(t->dtype) == 0, "%s: misaligned", e[i].name);
            } else {
                CHECK(t->data == NULL && t->numel == 0, "%s: empty tensor has data", e[i].name);
            }
        }
        const m2u_st_tensor *s = m2u_st_find(st, "scalar");
        CHECK(s && s->ndim == 0 && s->numel == 1 && s->nbytes == 4, "rank-0 tensor");
        CHECK(m2u_st_find(st, "nope") == NULL, "found an absent name");
        CHECK(m2u_st_at(st, -1) == NULL && m2u_st_at(st, n) == NULL && m2u_st_at(st, 0) != NULL, "m2u_st_at bounds");
        const char *fmt = m2u_st_metadata(st, "format"), *step = m2u_st_metadata(st, "step"),
                   *note = m2u_st_metadata(st, "note");
        CHECK(fmt && strcmp(fmt, "pt") == 0, "format metadata");
        CHECK(step && strcmp(step, "100") == 0, "step metadata");
        CHECK(note && strcmp(note, mv[1]) == 0, "note metadata");
        CHECK(m2u_st_metadata(st, "absent") == NULL, "absent metadata");

        /* read_f32 converts; refuses wrong n and non-float types */
        float out[5];
        const m2u_st_tensor *th = m2u_st_find(st, "h");
        CHECK(th && m2u_st_read_f32(th, out, 5) == 0, "read h: %s", m2u_last_error());
        for (int i = 0; th && i < 5; i++) CHECK(out[i] == m2u_f16_to_f32(h[i]), "h[%d]", i);
        CHECK(th && m2u_st_read_f32(th, out, 4) == -1, "read_f32 accepted a wrong count");
        CHECK(m2u_st_read_f32(m2u_st_find(st, "i64"), out, 3) == -1, "read_f32 accepted I64");
        const m2u_st_tensor *te = m2u_st_find(st, "empty");
        CHECK(te && m2u_st_read_f32(te, out, 0) == 0, "read empty");

        /* expect: shape and type checks */
        int64_t ws[2] = {2, 3}, bad[2] = {3, 2};
        CHECK(m2u_st_expect(st, "w", 2, ws) != NULL, "expect w: %s", m2u_last_error());
        CHECK(m2u_st_expect(st, "w", 2, bad) == NULL, "expect accepted a wrong shape");
        CHECK(strstr(m2u_last_error(), "rt.safetensors") && strstr(m2u_last_error(), "[2, 3]") &&
                  strstr(m2u_last_error(), "[3, 2]"),
              "expect message: %s", m2u_last_error());
        CHECK(m2u_st_expect(st, "w", 1, ws) == NULL, "expect accepted a wrong rank");
        CHECK(m2u_st_expect(st, "i64", 1, (int64_t[]){3}) == NULL && strstr(m2u_last_error(), "float"),
              "expect accepted I64: %s", m2u_last_error());
        CHECK(m2u_st_expect(st, "zz", 1, ws) == NULL && strstr(m2u_last_error(), "not found"),
              "expect missing: %s", m2u_last_error());
        m2u_st_close(st);
    }

    /* header length is a multiple of 8 */
    char *raw;
    size_t len;
    if (read_whole(p, &raw, &len) == 0) {
        uint64_t hn = 0;
        for (int i = 7; i >= 0; i--) hn = (hn << 8) | (unsigned char)raw[i];
        CHECK(hn % 8 == 0 && raw[8] == '{' && raw[8 + hn - 1] != '\0', "header length %llu", (unsigned long long)hn);
        free(raw);
    }

    /* writer refusals; none may leave a file or temp file behind */
    char *q = tpath("bad.safetensors");
    m2u_st_entry dup[2] = {{"x", M2U_F32, 1, {1}, &odd}, {"x", M2U_F32, 1, {1}, &odd}};
    CHECK(m2u_st_write(q, dup, 2, NULL, NULL, 0) == -1 && strstr(m2u_last_error(), "duplicate"),
          "duplicate names: %s", m2u_last_error());
    m2u_st_entry r9 = {"x", M2U_F32, 9, {1, 1, 1, 1, 1, 1, 1, 1}, &odd};
    CHECK(m2u_st_write(q, &r9, 1, NULL, NULL, 0) == -1 && strstr(m2u_last_error(), "rank"), "rank 9: %s",
          m2u_last_error());
    m2u_st_entry neg = {"x", M2U_F32, 1, {-1}, &odd};
    CHECK(m2u_st_write(q, &neg, 1, NULL, NULL, 0) == -1, "negative dim accepted");
    m2u_st_entry meta = {"__metadata__", M2U_F32, 1, {1}, &odd};
    CHECK(m2u_st_write(q, &meta, 1, NULL, NULL, 0) == -1, "reserved name accepted");
    const char *fk[] = {"format"}, *fv[] = {"np"};
    CHECK(m2u_st_write(q, e, 1, fk, fv, 1) == -1 && strstr(m2u_last_error(), "format"), "format override: %s",
          m2u_last_error());
    const char *dk[] = {"k", "k"}, *dv[] = {"1", "2"};
    CHECK(m2u_st_write(q, e, 1, dk, dv, 2) == -1 && strstr(m2u_last_error(), "duplicate"), "dup meta");
    CHECK(!m2u_file_exists(q), "refused write left a file");

    /* no tensors at all is a valid file */
    CHECK(m2u_st_write(q, NULL, 0, NULL, NULL, 0) == 0, "empty write: %s", m2u_last_error());
    st = OPEN_OK(q);
    if (st) {
        CHECK(m2u_st_count(st) == 0 && m2u_st_find(st, "x") == NULL, "empty file has tensors");
        m2u_st_close(st);
    }
    free(q);
    free(p);
}

/* ------------------------------------------------------------------ malformed */

#define T4 "{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"

static void test_malformed(void) {
    char *p;
#define MK(name, hdr, dlen) (p = tpath(name), write_st(p, hdr, dlen), free(p))

    /* rule 1: sizes */
    p = tpath("small.safetensors");
    write_bytes(p, "\x02\0\0\0", 4);
    free(p);
    EXPECT_REFUSED("small.safetensors", "too small");
    p = tpath("huge.safetensors");
    write_st_raw(p, 100000001ull, "{}", 2, 0);
    free(p);
    EXPECT_REFUSED("huge.safetensors", "too large");
    p = tpath("wrap.safetensors");
    write_st_raw(p, UINT64_MAX - 3, "{}", 2, 0); /* 8 + N wraps around */
    free(p);
    EXPECT_REFUSED("wrap.safetensors", "too large");
    p = tpath("beyond.safetensors");
    write_st_raw(p, 1000, "{}", 2, 0);
    free(p);
    EXPECT_REFUSED("beyond.safetensors", "header length");

    /* rule 2: first byte, UTF-8, JSON, trailing bytes in the header */
    MK("brace.safetensors", " {}", 0);
    EXPECT_REFUSED("brace.safetensors", "'{'");
    MK("array.safetensors", "[]", 0);
    EXPECT_REFUSED("array.safetensors", "'{'");
    MK("utf8.safetensors", "{\"a\xff\":" T4 "}", 4);
    EXPECT_REFUSED("utf8.safetensors", "UTF-8");
    MK("overlong.safetensors", "{\"a\xc0\xaf\":" T4 "}", 4);
    EXPECT_REFUSED("overlong.safetensors", "UTF-8");
    MK("surrogate.safetensors", "{\"a\xed\xa0\x80\":" T4 "}", 4);
    EXPECT_REFUSED("surrogate.safetensors", "UTF-8");
    MK("cut_utf8.safetensors", "{\"a\":" T4 "}\xe2\x82", 4);
    EXPECT_REFUSED("cut_utf8.safetensors", "UTF-8");
    MK("json.safetensors", "{\"a\":", 0);
    EXPECT_REFUSED("json.safetensors", "JSON");
    MK("ctrl.safetensors", "{\"a\x01\":" T4 "}", 4);
    EXPECT_REFUSED("ctrl.safetensors", "control");
    MK("trail.safetensors", "{\"a\":" T4 "}  x", 4);
    EXPECT_REFUSED("trail.safetensors", "trailing");
    MK("trail_nl.safetensors", "{\"a\":" T4 "}\n", 4);
    EXPECT_REFUSED("trail_nl.safetensors", "trailing");
    MK("spaces.safetensors", "{\"a\":" T4 "}     ", 4); /* trailing spaces are allowed */
    p = tpath("spaces.safetensors");
    m2u_safetensors *st = OPEN_OK(p);
    if (st) {
        CHECK(m2u_st_count(st) == 1, "spaces: count");
        m2u_st_close(st);
    }
    free(p);

    /* rule 3: duplicates, fields, dtypes, metadata */
    MK("dup.safetensors", "{\"a\":" T4 ",\"a\":" T4 "}", 4);
    EXPECT_REFUSED("dup.safetensors", "duplicate");
    MK("dup_field.safetensors", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    EXPECT_REFUSED("dup_field.safetensors", "duplicate");
    MK("dup_meta.safetensors", "{\"__metadata__\":{\"k\":\"1\"},\"__metadata__\":{\"k\":\"2\"}}", 0);
    EXPECT_REFUSED("dup_meta.safetensors", "duplicate");
    MK("extra.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4);
    EXPECT_REFUSED("extra.safetensors", "unknown field");
    MK("missing.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4);
    EXPECT_REFUSED("missing.safetensors", "missing");
    MK("notobj.safetensors", "{\"a\":[1]}", 0);
    EXPECT_REFUSED("notobj.safetensors", "not a JSON object");
    MK("dtype.safetensors", "{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    EXPECT_REFUSED("dtype.safetensors", "dtype");
    MK("dtype_num.safetensors", "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    EXPECT_REFUSED("dtype_num.safetensors", "dtype");
    MK("meta_val.safetensors", "{\"__metadata__\":{\"format\":\"pt\",\"n\":1}}", 0);
    EXPECT_REFUSED("meta_val.safetensors", "__metadata__");
    MK("meta_obj.safetensors", "{\"__metadata__\":\"pt\"}", 0);
    EXPECT_REFUSED("meta_obj.safetensors", "__metadata__");

    /* shape entries */
    MK("shape_neg.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
    EXPECT_REFUSED("shape_neg.safetensors", "shape");
    MK("shape_float.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4);
    EXPECT_REFUSED("shape_float.safetensors", "shape");
    MK("shape_str.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4);
    EXPECT_REFUSED("shape_str.safetensors", "shape");
    MK("rank.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4);
    EXPECT_REFUSED("rank.safetensors", "rank");
    MK("overflow.safetensors",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 4);
    EXPECT_REFUSED("overflow.safetensors", "overflow");
    MK("offs.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4);
    EXPECT_REFUSED("offs.safetensors", "data_offsets");
    MK("offs_rev.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4);
    EXPECT_REFUSED("offs_rev.safetensors", "end before begin");

    /* rule 4: tiling of the data buffer */
    MK("hole.safetensors",
       "{\"a\":" T4 ",\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12);
    EXPECT_REFUSED("hole.safetensors", "hole");
    MK("start.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    EXPECT_REFUSED("start.safetensors", "hole");
    MK("overlap.safetensors",
       "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
       8);
    EXPECT_REFUSED("overlap.safetensors", "overlap");
    MK("same.safetensors", "{\"a\":" T4 ",\"b\":" T4 "}", 4); /* two names, one buffer */
    EXPECT_REFUSED("same.safetensors", "overlap");

    /* rule 5: byte count */
    MK("size.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,10]}}", 10);
    EXPECT_REFUSED("size.safetensors", "hold 10 bytes but F32 [3] needs 12");

    /* rule 6: buffer length */
    MK("trailing.safetensors", "{\"a\":" T4 "}", 6);
    EXPECT_REFUSED("trailing.safetensors", "trailing bytes");
    MK("truncated.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4);
    EXPECT_REFUSED("truncated.safetensors", "truncated");
    MK("nodata.safetensors", "{}", 3);
    EXPECT_REFUSED("nodata.safetensors", "trailing bytes");

    /* valid but unaligned (header length 5 + 44): read via memcpy */
    {
        const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        float v[2] = {1.5f, -7.25f};
        size_t hl = strlen(hdr);
        unsigned char buf[256];
        for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
        memcpy(buf + 8, hdr, hl);
        memcpy(buf + 8 + hl, v, 8);
        p = tpath("unaligned.safetensors");
        write_bytes(p, buf, 8 + hl + 8);
        st = OPEN_OK(p);
        if (st) {
            float out[2] = {0};
            const m2u_st_tensor *t = m2u_st_find(st, "a");
            CHECK(t && m2u_st_read_f32(t, out, 2) == 0 && out[0] == 1.5f && out[1] == -7.25f, "unaligned read");
            m2u_st_close(st);
        }
        free(p);
    }
    EXPECT_REFUSED("does_not_exist.safetensors", "cannot open");
#undef MK
}

/* ------------------------------------------------------------------ sharded */

static const char *S1 = "model-00001-of-00002.safetensors", *S2 = "model-00002-of-00002.safetensors";

static void write_shard(const char *dir, const char *file, const m2u_st_entry *e, int n) {
    char *p = m2u_path_join(dir, file);
    CHECK(m2u_st_write(p, e, n, NULL, NULL, 0) == 0, "shard %s: %s", p, m2u_last_error());
    free(p);
}

static void write_index(const char *dir, const char *weight_map_json) {
    char text[1024];
    snprintf(text, sizeof text, "{\"metadata\": {\"total_size\": 24}, \"weight_map\": %s}", weight_map_json);
    char *p = m2u_path_join(dir, "model.safetensors.index.json");
    CHECK(m2u_write_file_atomic(p, text, strlen(text)) == 0, "index: %s", m2u_last_error());
    free(p);
}

static char *make_subdir(const char *name) {
    char *d = tpath(name);
    mkdir(d, 0700);
    return d;
}

static void expect_dir_refused_at(int line, const char *dir, const char *word) {
    m2u_safetensors *st = NULL;
    m2u_clear_error();
    int rc = m2u_st_open(dir, &st);
    const char *msg = m2u_last_error();
    CHECK(rc == -1 && !st, "line %d: %s accepted", line, dir);
    CHECK(strstr(msg, "index.json") || strstr(msg, dir), "line %d: message names no file: %s", line, msg);
    CHECK(strstr(msg, word), "line %d: message lacks '%s': %s", line, word, msg);
    if (st) m2u_st_close(st);
}
#define EXPECT_DIR_REFUSED(dir, word) expect_dir_refused_at(__LINE__, dir, word)

static void test_sharded(void) {
    float a[2] = {1, 2}, b[3] = {3, 4, 5}, c[1] = {6};
    m2u_st_entry s1[] = {{"a", M2U_F32, 1, {2}, a}, {"b", M2U_F32, 1, {3}, b}};
    m2u_st_entry s2[] = {{"c", M2U_F32, 1, {1}, c}};
    m2u_st_entry s2a[] = {{"c", M2U_F32, 1, {1}, c}, {"a", M2U_F32, 1, {2}, a}};
    char wm_ok[256];
    snprintf(wm_ok, sizeof wm_ok, "{\"a\": \"%s\", \"b\": \"%s\", \"c\": \"%s\"}", S1, S1, S2);

    char *d = make_subdir("sharded");
    write_shard(d, S1, s1, 2);
    write_shard(d, S2, s2, 1);
    write_index(d, wm_ok);
    /* a stray single file beside the index: the index must win */
    char *single = m2u_path_join(d, "model.safetensors");
    m2u_st_entry z = {"zzz", M2U_F32, 1, {1}, c};
    CHECK(m2u_st_write(single, &z, 1, NULL, NULL, 0) == 0, "single: %s", m2u_last_error());
    char *ipath = m2u_path_join(d, "model.safetensors.index.json");
    const char *opens[2] = {d, ipath};
    for (int k = 0; k < 2; k++) {
        m2u_safetensors *st = OPEN_OK(opens[k]);
        if (!st) continue;
        CHECK(m2u_st_count(st) == 3, "sharded count %d", m2u_st_count(st));
        CHECK(m2u_st_find(st, "zzz") == NULL, "index not preferred over model.safetensors");
        const m2u_st_tensor *ta = m2u_st_find(st, "a"), *tb = m2u_st_find(st, "b"), *tc = m2u_st_find(st, "c");
        CHECK(ta && tb && tc, "sharded lookup");
        if (ta && tb && tc) {
            CHECK(ta->shard == tb->shard && tc->shard != ta->shard, "shard indices %d %d %d", ta->shard, tb->shard,
                  tc->shard);
            float out[3];
            CHECK(m2u_st_read_f32(tb, out, 3) == 0 && out[0] == 3 && out[2] == 5, "sharded values");
            CHECK(m2u_st_read_f32(tc, out, 1) == 0 && out[0] == 6, "sharded values 2");
        }
        CHECK(strstr(m2u_st_path(st), S1) != NULL, "first path %s", m2u_st_path(st));
        CHECK(m2u_st_metadata(st, "format") && strcmp(m2u_st_metadata(st, "format"), "pt") == 0, "shard metadata");
        m2u_st_close(st);
    }
    free(ipath);

    /* directory with just model.safetensors */
    char *d1 = make_subdir("single");
    char *sp = m2u_path_join(d1, "model.safetensors");
    CHECK(m2u_st_write(sp, &z, 1, NULL, NULL, 0) == 0, "single: %s", m2u_last_error());
    m2u_safetensors *st = OPEN_OK(d1);
    if (st) {
        CHECK(m2u_st_count(st) == 1 && m2u_st_find(st, "zzz"), "single dir");
        m2u_st_close(st);
    }
    free(sp);

    char *d0 = make_subdir("emptydir");
    EXPECT_DIR_REFUSED(d0, "has none of");

    char wm[512];
    /* weight_map entry missing from its shard */
    char *dm = make_subdir("missing");
    write_shard(dm, S1, s1, 2);
    write_shard(dm, S2, s2, 1);
    snprintf(wm, sizeof wm, "{\"a\": \"%s\", \"b\": \"%s\", \"c\": \"%s\", \"d\": \"%s\"}", S1, S1, S2, S2);
    write_index(dm, wm);
    EXPECT_DIR_REFUSED(dm, "'d' is missing from shard");

    /* a tensor in two shards */
    char *dt = make_subdir("twice");
    write_shard(dt, S1, s1, 2);
    write_shard(dt, S2, s2a, 2);
    write_index(dt, wm_ok);
    EXPECT_DIR_REFUSED(dt, "two shards");

    /* the same name twice in weight_map (JSON duplicate) */
    char *dd = make_subdir("dupmap");
    write_shard(dd, S1, s1, 2);
    write_shard(dd, S2, s2, 1);
    snprintf(wm, sizeof wm, "{\"a\": \"%s\", \"b\": \"%s\", \"c\": \"%s\", \"a\": \"%s\"}", S1, S1, S2, S2);
    write_index(dd, wm);
    EXPECT_DIR_REFUSED(dd, "twice");

    /* a shard tensor the weight_map does not list */
    char *dn = make_subdir("unlisted");
    write_shard(dn, S1, s1, 2);
    write_shard(dn, S2, s2, 1);
    snprintf(wm, sizeof wm, "{\"a\": \"%s\", \"c\": \"%s\"}", S1, S2);
    write_index(dn, wm);
    EXPECT_DIR_REFUSED(dn, "'b' is in shard");
    EXPECT_DIR_REFUSED(dn, "not in the index weight_map");

    /* weight_map names the wrong shard */
    char *dw = make_subdir("wrong");
    write_shard(dw, S1, s1, 2);
    write_shard(dw, S2, s2, 1);
    snprintf(wm, sizeof wm, "{\"a\": \"%s\", \"b\": \"%s\", \"c\": \"%s\"}", S1, S2, S2);
    write_index(dw, wm);
    EXPECT_DIR_REFUSED(dw, "weight_map names");

    /* shard names must be plain file names; missing shard files and broken shards are reported */
    char *dx = make_subdir("paths");
    write_index(dx, "{\"a\": \"../x.safetensors\"}");
    EXPECT_DIR_REFUSED(dx, "shard file name");
    write_index(dx, "{\"a\": \"nope.safetensors\"}");
    EXPECT_DIR_REFUSED(dx, "cannot open");
    write_index(dx, "{}");
    EXPECT_DIR_REFUSED(dx, "empty");
    write_index(dx, "[1]");
    EXPECT_DIR_REFUSED(dx, "weight_map");
    char *bad = m2u_path_join(dx, "bad.safetensors");
    write_st(bad, "{\"a\":" T4 "}", 5);
    write_index(dx, "{\"a\": \"bad.safetensors\"}");
    EXPECT_DIR_REFUSED(dx, "bad.safetensors: 1 trailing bytes");
    free(bad);

    free(d);
    free(single);
    free(d1);
    free(d0);
    free(dm);
    free(dt);
    free(dd);
    free(dn);
    free(dw);
    free(dx);
}

/* ------------------------------------------------------------------ Python reference */

static m2u_dtype dtype_from_torch(const char *s) {
    static const struct {
        const char *torch;
        m2u_dtype t;
    } map[] = {{"float32", M2U_F32}, {"float16", M2U_F16}, {"bfloat16", M2U_BF16}, {"float64", M2U_F64},
               {"int64", M2U_I64},   {"int32", M2U_I32},   {"int16", M2U_I16},     {"int8", M2U_I8},
               {"uint8", M2U_U8},    {"bool", M2U_BOOL}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].torch, s) == 0) return map[i].t;
    return M2U_DTYPE_COUNT;
}

static void test_reference(void) {
    const char *ref = M2U_FIXTURES "/safetensors/reference.safetensors";
    const char *vals = M2U_FIXTURES "/safetensors/reference_values.json";
    char *text = NULL;
    if (read_whole(vals, &text, NULL) != 0) {
        CHECK(0, "fixture missing: %s", m2u_last_error());
        return;
    }
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    CHECK(cJSON_IsObject(tensors), "reference_values.json has no tensors");
    m2u_safetensors *st = OPEN_OK(ref);
    if (!st || !cJSON_IsObject(tensors)) {
        m2u_st_close(st);
        cJSON_Delete(root);
        return;
    }
    CHECK(m2u_st_count(st) == cJSON_GetArraySize(tensors), "reference count %d", m2u_st_count(st));
    CHECK(m2u_st_metadata(st, "format") && strcmp(m2u_st_metadata(st, "format"), "pt") == 0, "reference metadata");
    int checked = 0;
    for (const cJSON *c = tensors->child; c; c = c->next) {
        const m2u_st_tensor *t = m2u_st_find(st, c->string);
        CHECK(t != NULL, "reference tensor %s missing", c->string);
        if (!t) continue;
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(c, "dtype"), *sh = cJSON_GetObjectItemCaseSensitive(c, "shape"),
                    *vs = cJSON_GetObjectItemCaseSensitive(c, "values");
        CHECK(t->dtype == dtype_from_torch(dt->valuestring), "%s: dtype %s", c->string, dt->valuestring);
        CHECK(t->ndim == cJSON_GetArraySize(sh), "%s: rank", c->string);
        int k = 0;
        for (const cJSON *s = sh->child; s; s = s->next, k++)
            CHECK(k < t->ndim && t->shape[k] == (int64_t)s->valuedouble, "%s: dim %d", c->string, k);
        int n = cJSON_GetArraySize(vs);
        CHECK(t->numel == n, "%s: numel %lld vs %d", c->string, (long long)t->numel, n);
        if (t->numel != n) continue;
        float *f = malloc(sizeof(float) * (size_t)(n ? n : 1));
        int is_float = t->dtype == M2U_F32 || t->dtype == M2U_F16 || t->dtype == M2U_BF16 || t->dtype == M2U_F64;
        if (is_float) CHECK(m2u_st_read_f32(t, f, (size_t)n) == 0, "%s: %s", c->string, m2u_last_error());
        const unsigned char *raw = t->data;
        k = 0;
        for (const cJSON *v = vs->child; v; v = v->next, k++) {
            double want = v->valuedouble, got;
            if (t->dtype == M2U_F64) {
                memcpy(&got, raw + 8 * k, 8);
                CHECK(got == want, "%s[%d]: %.17g vs %.17g", c->string, k, got, want);
                CHECK(f[k] == (float)want, "%s[%d] as f32", c->string, k);
            } else if (is_float) {
                /* the JSON holds the stored value exactly, so widening must be exact */
                CHECK(f[k] == (float)want && !signbit(f[k]) == !signbit(want), "%s[%d]: %.9g vs %.9g", c->string, k,
                      (double)f[k], want);
            } else if (t->dtype == M2U_I64) {
                int64_t x;
                memcpy(&x, raw + 8 * k, 8);
                CHECK(x == (int64_t)want, "%s[%d]: %lld", c->string, k, (long long)x);
            } else if (t->dtype == M2U_I32) {
                int32_t x;
                memcpy(&x, raw + 4 * k, 4);
                CHECK(x == (int32_t)want, "%s[%d]: %d", c->string, k, x);
            } else if (t->dtype == M2U_U8) {
                CHECK(raw[k] == (unsigned char)want, "%s[%d]: %d", c->string, k, raw[k]);
            }
            checked++;
        }
        free(f);
    }
    CHECK(checked >= 20, "only %d reference values checked", checked);

    /* Our writer, given the same tensors in a different order, must produce the same bytes:
     * both sort by the Rust dtype enum then name, pad the header to 8, and with metadata
     * {"format":"pt"} alone the header text is deterministic. */
    int n = m2u_st_count(st);
    m2u_st_entry *e = calloc((size_t)n, sizeof *e);
    for (int i = 0; i < n; i++) {
        const m2u_st_tensor *t = m2u_st_at(st, n - 1 - i);
        e[i].name = t->name;
        e[i].dtype = t->dtype;
        e[i].ndim = t->ndim;
        memcpy(e[i].shape, t->shape, sizeof e[i].shape);
        e[i].data = t->data;
    }
    char *out = tpath("ours.safetensors");
    CHECK(m2u_st_write(out, e, n, NULL, NULL, 0) == 0, "rewrite: %s", m2u_last_error());
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    if (read_whole(out, &a, &la) == 0 && read_whole(ref, &b, &lb) == 0)
        CHECK(la == lb && memcmp(a, b, la) == 0, "our file differs from safetensors.torch.save_file's (%zu vs %zu bytes)",
              la, lb);
    free(a);
    free(b);
    free(out);
    free(e);
    m2u_st_close(st);
    cJSON_Delete(root);
}

int main(void) {
    strcpy(g_dir, "/tmp/m2u_st_XXXXXX");
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_malformed();
    test_sharded();
    test_reference();
    rm_tree(g_dir);
    return t_finish("test_safetensors");
}
