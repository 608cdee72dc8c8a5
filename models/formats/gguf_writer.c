#include "gguf_writer.h"

#include "fileio.h"
#include "m2u_error.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN 32

typedef struct {
    char *name;
    int type, n_dims;
    int64_t ne[4];
    uint64_t offset, nbytes;
} tinfo;

struct m2u_gguf_writer {
    unsigned char *kv; /* the serialized KV section */
    size_t kv_n, kv_cap;
    char **keys;
    int n_keys, cap_keys;
    tinfo *t;
    int n_t, cap_t;
    m2u_atomic_file af;
    int open, next, oom;
};

static void put(m2u_gguf_writer *w, const void *d, size_t n) {
    if (w->oom) return;
    if (w->kv_n + n > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap < w->kv_n + n) cap *= 2;
        unsigned char *p = realloc(w->kv, cap);
        if (!p) {
            w->oom = 1;
            return;
        }
        w->kv = p;
        w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_n, d, n);
    w->kv_n += n;
}
static void put_le(m2u_gguf_writer *w, uint64_t v, int n) {
    unsigned char x[8];
    for (int i = 0; i < n; i++) x[i] = (unsigned char)(v >> (8 * i));
    put(w, x, (size_t)n);
}
static void put_str(m2u_gguf_writer *w, const char *s) {
    size_t n = strlen(s);
    put_le(w, n, 8);
    put(w, s, n);
}

int m2u_gguf_new(m2u_gguf_writer **out) {
    *out = calloc(1, sizeof **out);
    return *out ? 0 : m2u_fail("out of memory");
}

void m2u_gguf_free(m2u_gguf_writer *w) {
    if (!w) return;
    if (w->open) m2u_atomic_abort(&w->af);
    for (int i = 0; i < w->n_keys; i++) free(w->keys[i]);
    for (int i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->keys);
    free(w->t);
    free(w->kv);
    free(w);
}

static int add_key(m2u_gguf_writer *w, const char *key, uint32_t type) {
    if (w->open) return m2u_fail("gguf: KV '%s' added after the header was written", key);
    size_t n = strlen(key);
    if (n == 0 || n >= 65536) return m2u_fail("gguf: bad key length for '%s'", key);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] >= 128) return m2u_fail("gguf: key '%s' is not ASCII", key);
    for (int i = 0; i < w->n_keys; i++)
        if (!strcmp(w->keys[i], key)) return m2u_fail("gguf: duplicate key '%s'", key);
    if (w->n_keys == w->cap_keys) {
        int cap = w->cap_keys ? 2 * w->cap_keys : 32;
        char **k = realloc(w->keys, (size_t)cap * sizeof *k);
        if (!k) return m2u_fail("out of memory");
        w->keys = k;
        w->cap_keys = cap;
    }
    if (!(w->keys[w->n_keys] = strdup(key))) return m2u_fail("out of memory");
    w->n_keys++;
    put_str(w, key);
    put_le(w, type, 4);
    return w->oom ? m2u_fail("out of memory") : 0;
}

static int type_size(int t) {
    switch (t) {
    case M2U_GGUF_UINT8: case M2U_GGUF_INT8: case M2U_GGUF_BOOL: return 1;
    case M2U_GGUF_UINT16: case M2U_GGUF_INT16: return 2;
    case M2U_GGUF_UINT32: case M2U_GGUF_INT32: case M2U_GGUF_FLOAT32: return 4;
    case M2U_GGUF_UINT64: case M2U_GGUF_INT64: case M2U_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static int add_scalar(m2u_gguf_writer *w, const char *key, int type, uint64_t bits) {
    if (add_key(w, key, (uint32_t)type)) return -1;
    put_le(w, bits, type_size(type));
    return w->oom ? m2u_fail("out of memory") : 0;
}

int m2u_gguf_add_u8(m2u_gguf_writer *w, const char *k, uint8_t v) { return add_scalar(w, k, M2U_GGUF_UINT8, v); }
int m2u_gguf_add_i8(m2u_gguf_writer *w, const char *k, int8_t v) { return add_scalar(w, k, M2U_GGUF_INT8, (uint8_t)v); }
int m2u_gguf_add_u16(m2u_gguf_writer *w, const char *k, uint16_t v) { return add_scalar(w, k, M2U_GGUF_UINT16, v); }
int m2u_gguf_add_i16(m2u_gguf_writer *w, const char *k, int16_t v) {
    return add_scalar(w, k, M2U_GGUF_INT16, (uint16_t)v);
}
int m2u_gguf_add_u32(m2u_gguf_writer *w, const char *k, uint32_t v) { return add_scalar(w, k, M2U_GGUF_UINT32, v); }
int m2u_gguf_add_i32(m2u_gguf_writer *w, const char *k, int32_t v) {
    return add_scalar(w, k, M2U_GGUF_INT32, (uint32_t)v);
}
int m2u_gguf_add_u64(m2u_gguf_writer *w, const char *k, uint64_t v) { return add_scalar(w, k, M2U_GGUF_UINT64, v); }
int m2u_gguf_add_i64(m2u_gguf_writer *w, const char *k, int64_t v) {
    return add_scalar(w, k, M2U_GGUF_INT64, (uint64_t)v);
}
int m2u_gguf_add_f32(m2u_gguf_writer *w, const char *k, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    return add_scalar(w, k, M2U_GGUF_FLOAT32, u);
}
int m2u_gguf_add_f64(m2u_gguf_writer *w, const char *k, double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    return add_scalar(w, k, M2U_GGUF_FLOAT64, u);
}
int m2u_gguf_add_bool(m2u_gguf_writer *w, const char *k, int v) { return add_scalar(w, k, M2U_GGUF_BOOL, v ? 1 : 0); }
int m2u_gguf_add_str(m2u_gguf_writer *w, const char *k, const char *v) {
    if (add_key(w, k, M2U_GGUF_STRING)) return -1;
    put_str(w, v);
    return w->oom ? m2u_fail("out of memory") : 0;
}

int m2u_gguf_add_array(m2u_gguf_writer *w, const char *key, int elem_type, const void *values, uint64_t n) {
    int es = type_size(elem_type);
    if (!es) return m2u_fail("gguf: key '%s': array element type %d is not a scalar type", key, elem_type);
    if (add_key(w, key, M2U_GGUF_ARRAY)) return -1;
    put_le(w, (uint64_t)elem_type, 4);
    put_le(w, n, 8);
    const unsigned char *p = values;
    for (uint64_t i = 0; i < n; i++) { /* host -> little-endian, element by element */
        uint64_t v = 0;
        switch (es) {
        case 1: v = p[i]; break;
        case 2: { uint16_t x; memcpy(&x, p + 2 * i, 2); v = x; break; }
        case 4: { uint32_t x; memcpy(&x, p + 4 * i, 4); v = x; break; }
        default: memcpy(&v, p + 8 * i, 8); break;
        }
        put_le(w, v, es);
    }
    return w->oom ? m2u_fail("out of memory") : 0;
}

int m2u_gguf_add_str_array(m2u_gguf_writer *w, const char *key, const char *const *values, uint64_t n) {
    if (add_key(w, key, M2U_GGUF_ARRAY)) return -1;
    put_le(w, M2U_GGUF_STRING, 4);
    put_le(w, n, 8);
    for (uint64_t i = 0; i < n; i++) put_str(w, values[i]);
    return w->oom ? m2u_fail("out of memory") : 0;
}

static uint64_t pad_to(uint64_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

int m2u_gguf_add_tensor_info(m2u_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne) {
    if (w->open) return m2u_fail("gguf: tensor '%s' added after the header was written", name);
    if (strlen(name) == 0 || strlen(name) > 63) return m2u_fail("gguf: tensor name '%s' longer than 63 bytes", name);
    if (n_dims < 1 || n_dims > 4) return m2u_fail("gguf: tensor '%s': %d dimensions", name, n_dims);
    int es = type == M2U_GGML_F32 ? 4 : (type == M2U_GGML_F16 || type == M2U_GGML_BF16) ? 2 : 0;
    if (!es) return m2u_fail("gguf: tensor '%s': unsupported ggml type %d", name, type);
    for (int i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return m2u_fail("gguf: duplicate tensor name '%s'", name);
    uint64_t n = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 0 || (ne[d] && n > UINT64_MAX / 8 / (uint64_t)ne[d]))
            return m2u_fail("gguf: tensor '%s': bad dimension", name);
        n *= (uint64_t)ne[d];
    }
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? 2 * w->cap_t : 64;
        tinfo *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t) return m2u_fail("out of memory");
        w->t = t;
        w->cap_t = cap;
    }
    tinfo *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return m2u_fail("out of memory");
    t->type = type;
    t->n_dims = n_dims;
    memcpy(t->ne, ne, (size_t)n_dims * sizeof *ne);
    t->nbytes = n * (uint64_t)es;
    t->offset = w->n_t ? pad_to(w->t[w->n_t - 1].offset + w->t[w->n_t - 1].nbytes) : 0;
    w->n_t++;
    return 0;
}

int m2u_gguf_n_tensors(const m2u_gguf_writer *w) { return w->n_t; }
size_t m2u_gguf_tensor_nbytes(const m2u_gguf_writer *w, int i) { return i >= 0 && i < w->n_t ? w->t[i].nbytes : 0; }

static int fput_le(FILE *fp, uint64_t v, int n) {
    unsigned char x[8];
    for (int i = 0; i < n; i++) x[i] = (unsigned char)(v >> (8 * i));
    return fwrite(x, 1, (size_t)n, fp) == (size_t)n ? 0 : -1;
}

static uint64_t g_zero[ALIGN / 8];

int m2u_gguf_begin(m2u_gguf_writer *w, const char *path) {
    if (w->oom) return m2u_fail("out of memory");
    if (w->open) return m2u_fail("gguf: already writing");
    if (m2u_atomic_open(&w->af, path)) return -1;
    w->open = 1;
    w->next = 0;
    FILE *fp = w->af.fp;
    int bad = fwrite("GGUF", 1, 4, fp) != 4;
    bad |= fput_le(fp, 3, 4);
    bad |= fput_le(fp, (uint64_t)w->n_t, 8);
    bad |= fput_le(fp, (uint64_t)w->n_keys, 8);
    bad |= fwrite(w->kv, 1, w->kv_n, fp) != w->kv_n;
    uint64_t pos = 24 + w->kv_n;
    for (int i = 0; i < w->n_t; i++) {
        const tinfo *t = &w->t[i];
        size_t nl = strlen(t->name);
        bad |= fput_le(fp, nl, 8);
        bad |= fwrite(t->name, 1, nl, fp) != nl;
        bad |= fput_le(fp, (uint64_t)t->n_dims, 4);
        for (int d = 0; d < t->n_dims; d++) bad |= fput_le(fp, (uint64_t)t->ne[d], 8);
        bad |= fput_le(fp, (uint64_t)t->type, 4);
        bad |= fput_le(fp, t->offset, 8);
        pos += 8 + nl + 4 + 8 * (uint64_t)t->n_dims + 4 + 8;
    }
    uint64_t pad = pad_to(pos) - pos;
    bad |= fwrite(g_zero, 1, pad, fp) != pad;
    if (bad) return m2u_fail("%s: write error", path);
    return 0;
}

int m2u_gguf_write_data(m2u_gguf_writer *w, int i, const void *data, size_t nbytes) {
    if (!w->open) return m2u_fail("gguf: header not written");
    if (i != w->next || i >= w->n_t) return m2u_fail("gguf: tensor data out of order (%d, expected %d)", i, w->next);
    const tinfo *t = &w->t[i];
    if (nbytes != t->nbytes)
        return m2u_fail("gguf: tensor '%s': %zu bytes given, %llu expected", t->name, nbytes,
                        (unsigned long long)t->nbytes);
    FILE *fp = w->af.fp;
    uint64_t pad = pad_to(t->nbytes) - t->nbytes;
    if ((nbytes && fwrite(data, 1, nbytes, fp) != nbytes) || fwrite(g_zero, 1, pad, fp) != pad)
        return m2u_fail("%s: write error", w->af.path);
    w->next++;
    return 0;
}

int m2u_gguf_finish(m2u_gguf_writer *w) {
    if (!w->open) return m2u_fail("gguf: header not written");
    if (w->next != w->n_t) return m2u_fail("gguf: %d of %d tensors written", w->next, w->n_t);
    w->open = 0;
    return m2u_atomic_commit(&w->af);
}
