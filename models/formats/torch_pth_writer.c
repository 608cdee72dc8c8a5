#include "torch_pth_writer.h"

#include "fileio.h"
#include "m2u_error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- growable byte buffer (the pickle) ------------------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *b, const void *d, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n) cap *= 2;
        unsigned char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put1(buf *b, unsigned c) {
    unsigned char x = (unsigned char)c;
    put(b, &x, 1);
}
static void put_le(buf *b, uint64_t v, int n) {
    unsigned char x[8];
    for (int i = 0; i < n; i++) x[i] = (unsigned char)(v >> (8 * i));
    put(b, x, (size_t)n);
}

/* ---- the pickle, as CPython's C pickler writes it at protocol 2 --------------------------------- */

typedef struct {
    buf b;
    uint32_t memo; /* next memo index */
    /* memo slots of objects pickled once and then referenced (-1 = not yet) */
    int64_t m_odict, m_rebuild, m_storage_str, m_cpu, m_stype[M2U_DTYPE_COUNT];
} pickler;

static void memo_put(pickler *pk) {
    if (pk->memo < 256) {
        put1(&pk->b, 'q');
        put1(&pk->b, pk->memo);
    } else {
        put1(&pk->b, 'r');
        put_le(&pk->b, pk->memo, 4);
    }
    pk->memo++;
}
static void memo_get(pickler *pk, int64_t idx) {
    if (idx < 256) {
        put1(&pk->b, 'h');
        put1(&pk->b, (unsigned)idx);
    } else {
        put1(&pk->b, 'j');
        put_le(&pk->b, (uint64_t)idx, 4);
    }
}
static void p_str(pickler *pk, const char *s) { /* BINUNICODE + memo */
    size_t n = strlen(s);
    put1(&pk->b, 'X');
    put_le(&pk->b, n, 4);
    put(&pk->b, s, n);
    memo_put(pk);
}
static void p_int(pickler *pk, int64_t v) {
    if (v >= 0 && v < 256) {
        put1(&pk->b, 'K');
        put1(&pk->b, (unsigned)v);
    } else if (v >= 0 && v < 65536) {
        put1(&pk->b, 'M');
        put_le(&pk->b, (uint64_t)v, 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        put1(&pk->b, 'J');
        put_le(&pk->b, (uint64_t)(uint32_t)(int32_t)v, 4);
    } else { /* LONG1: (bit_length >> 3) + 1 bytes, two's complement (values here are positive) */
        int bits = 0;
        for (uint64_t u = (uint64_t)v; u; u >>= 1) bits++;
        int nb = (bits >> 3) + 1;
        put1(&pk->b, 0x8a);
        put1(&pk->b, (unsigned)nb);
        for (int i = 0; i < nb; i++) put1(&pk->b, i < 8 ? (unsigned)(((uint64_t)v >> (8 * i)) & 0xff) : 0);
    }
}
static void p_global(pickler *pk, int64_t *slot, const char *mod, const char *name) {
    if (*slot >= 0) {
        memo_get(pk, *slot);
        return;
    }
    put1(&pk->b, 'c');
    put(&pk->b, mod, strlen(mod));
    put1(&pk->b, '\n');
    put(&pk->b, name, strlen(name));
    put1(&pk->b, '\n');
    *slot = pk->memo;
    memo_put(pk);
}
static void p_shared_str(pickler *pk, int64_t *slot, const char *s) {
    if (*slot >= 0) {
        memo_get(pk, *slot);
        return;
    }
    *slot = pk->memo;
    p_str(pk, s);
}
static void p_tuple_ints(pickler *pk, const int64_t *v, int n) {
    if (n == 0) { /* EMPTY_TUPLE: not memoized */
        put1(&pk->b, ')');
        return;
    }
    if (n > 3) put1(&pk->b, '(');
    for (int i = 0; i < n; i++) p_int(pk, v[i]);
    put1(&pk->b, n > 3 ? 't' : (unsigned)(0x84 + n)); /* TUPLE or TUPLE1..3 */
    memo_put(pk);
}
static void p_empty_odict(pickler *pk) {
    p_global(pk, &pk->m_odict, "collections", "OrderedDict");
    put1(&pk->b, ')');
    put1(&pk->b, 'R');
    memo_put(pk);
}

static const char *storage_name(m2u_dtype t) {
    switch (t) {
    case M2U_F32: return "FloatStorage";
    case M2U_F16: return "HalfStorage";
    case M2U_BF16: return "BFloat16Storage";
    case M2U_F64: return "DoubleStorage";
    case M2U_I64: return "LongStorage";
    case M2U_I32: return "IntStorage";
    case M2U_I16: return "ShortStorage";
    case M2U_I8: return "CharStorage";
    case M2U_U8: return "ByteStorage";
    case M2U_BOOL: return "BoolStorage";
    default: return NULL;
    }
}

static int64_t numel_of(const m2u_st_entry *e) {
    int64_t n = 1;
    for (int d = 0; d < e->ndim; d++) n *= e->shape[d];
    return n;
}

static void p_tensor(pickler *pk, const m2u_st_entry *e, int key) {
    p_global(pk, &pk->m_rebuild, "torch._utils", "_rebuild_tensor_v2");
    put1(&pk->b, '('); /* args: (storage, offset, size, stride, requires_grad, backward_hooks) */
    put1(&pk->b, '('); /* persistent id: ('storage', type, key, location, numel) */
    p_shared_str(pk, &pk->m_storage_str, "storage");
    p_global(pk, &pk->m_stype[e->dtype], "torch", storage_name(e->dtype));
    char k[24];
    snprintf(k, sizeof k, "%d", key);
    p_str(pk, k);
    p_shared_str(pk, &pk->m_cpu, "cpu");
    p_int(pk, numel_of(e));
    put1(&pk->b, 't');
    memo_put(pk);
    put1(&pk->b, 'Q');
    p_int(pk, 0);
    int64_t stride[M2U_ST_MAX_DIMS], s = 1;
    for (int d = e->ndim - 1; d >= 0; d--) {
        stride[d] = s;
        s *= e->shape[d];
    }
    p_tuple_ints(pk, e->shape, e->ndim);
    p_tuple_ints(pk, stride, e->ndim);
    put1(&pk->b, 0x89); /* requires_grad False */
    p_empty_odict(pk);  /* backward_hooks */
    put1(&pk->b, 't');
    memo_put(pk);
    put1(&pk->b, 'R');
    memo_put(pk);
}

static int build_pickle(const m2u_st_entry *e, int n, const char *wrap_key, buf *out) {
    pickler pk;
    memset(&pk, 0, sizeof pk);
    pk.m_odict = pk.m_rebuild = pk.m_storage_str = pk.m_cpu = -1;
    for (int i = 0; i < M2U_DTYPE_COUNT; i++) pk.m_stype[i] = -1;
    put1(&pk.b, 0x80);
    put1(&pk.b, 2);
    if (wrap_key) {
        put1(&pk.b, '}');
        memo_put(&pk);
        p_str(&pk, wrap_key);
    }
    p_empty_odict(&pk);
    /* items in batches of 1000: MARK k v ... SETITEMS; a batch of one is k v SETITEM */
    for (int i = 0; i < n; i += 1000) {
        int m = n - i < 1000 ? n - i : 1000;
        if (m > 1) put1(&pk.b, '(');
        for (int j = i; j < i + m; j++) {
            p_str(&pk, e[j].name);
            p_tensor(&pk, &e[j], j);
        }
        put1(&pk.b, m > 1 ? 'u' : 's');
    }
    if (wrap_key) put1(&pk.b, 's');
    put1(&pk.b, '.');
    if (pk.b.oom) {
        free(pk.b.p);
        return m2u_fail("out of memory");
    }
    *out = pk.b;
    return 0;
}

/* ---- CRC-32 (zip) --------------------------------------------------------------------------------- */

static uint32_t crc_table[256];
static void crc_init(void) {
    if (crc_table[1]) return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}
static uint32_t crc32_of(const void *d, size_t n) {
    const unsigned char *p = d;
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* ---- torch's serialization id: libstdc++ std::hash<std::string> over an unordered_set ---------- */

static uint64_t load_bytes(const unsigned char *p, int n) {
    uint64_t r = 0;
    for (int i = n - 1; i >= 0; i--) r = (r << 8) + p[i];
    return r;
}
static uint64_t shift_mix(uint64_t v) { return v ^ (v >> 47); }
/* libstdc++ _Hash_bytes (64-bit size_t), seed 0xc70f6907 */
static uint64_t std_hash(const char *s) {
    const uint64_t mul = ((uint64_t)0xc6a4a793u << 32) + 0x5bd1e995u;
    const unsigned char *p = (const unsigned char *)s;
    size_t len = strlen(s), aligned = len & ~(size_t)7;
    uint64_t h = 0xc70f6907u ^ ((uint64_t)len * mul);
    for (size_t i = 0; i < aligned; i += 8) {
        uint64_t d = shift_mix(load_bytes(p + i, 8) * mul) * mul;
        h ^= d;
        h *= mul;
    }
    if (len & 7) {
        h ^= load_bytes(p + aligned, (int)(len & 7));
        h *= mul;
    }
    h = shift_mix(h) * mul;
    return shift_mix(h);
}
static uint64_t hash_combine(uint64_t seed, uint64_t v) { return seed ^ (v + 0x9e3779b9u + (seed << 6) + (seed >> 2)); }

/* Iteration order of a libstdc++ std::unordered_set<std::string> after inserting
 * names[0..n) in order (prime rehash policy, max load 1.0), combined with
 * hash_combine as torch's writeSerializationId does. */
static const uint64_t k_buckets[] = {13,     29,     59,      127,     257,     541,     1109,
                                     2357,   5087,   10273,   20753,   42043,   85229,   172933,
                                     351061, 712697, 1447153, 2938679, 5967347};
static int names_hash(char *const *names, int n, uint64_t *out) {
    uint64_t *h = malloc((size_t)(n ? n : 1) * sizeof *h);
    int *next = malloc((size_t)(n ? n : 1) * sizeof *next);
    int *bucket = NULL; /* bucket -> index of the node BEFORE its first node (-1 = before_begin), -2 empty */
    if (!h || !next) {
        free(h);
        free(next);
        return m2u_fail("out of memory");
    }
    int head = -1; /* before_begin.next */
    uint64_t nb = 0;
    int bi = -1;
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        h[i] = std_hash(names[i]);
        if ((uint64_t)i + 1 > nb) { /* rehash to the next size */
            if (++bi >= (int)(sizeof k_buckets / sizeof *k_buckets)) {
                rc = m2u_fail("too many records");
                break;
            }
            uint64_t nnb = k_buckets[bi];
            int *nbk = malloc(nnb * sizeof *nbk);
            if (!nbk) {
                rc = m2u_fail("out of memory");
                break;
            }
            for (uint64_t k = 0; k < nnb; k++) nbk[k] = -2;
            int p = head;
            head = -1;
            uint64_t bbegin_bkt = 0;
            while (p >= 0) {
                int nx = next[p];
                uint64_t bk = h[p] % nnb;
                if (nbk[bk] == -2) {
                    next[p] = head;
                    head = p;
                    nbk[bk] = -1;
                    if (next[p] >= 0) nbk[bbegin_bkt] = p;
                    bbegin_bkt = bk;
                } else {
                    int before = nbk[bk];
                    int *slot = before == -1 ? &head : &next[before];
                    next[p] = *slot;
                    *slot = p;
                }
                p = nx;
            }
            free(bucket);
            bucket = nbk;
            nb = nnb;
        }
        uint64_t bk = h[i] % nb;
        if (bucket[bk] != -2) { /* insert at the beginning of its bucket */
            int before = bucket[bk];
            int *slot = before == -1 ? &head : &next[before];
            next[i] = *slot;
            *slot = i;
        } else { /* at the front of the list; the old first node's bucket now starts after i */
            next[i] = head;
            head = i;
            if (next[i] >= 0) bucket[h[next[i]] % nb] = i;
            bucket[bk] = -1;
        }
    }
    uint64_t comb = 0;
    for (int p = head; !rc && p >= 0; p = next[p]) comb = hash_combine(comb, h[p]);
    free(h);
    free(next);
    free(bucket);
    *out = comb;
    return rc;
}

/* ---- the zip (stored, data descriptors, 64-byte aligned data, zip64 end records) ---------------- */

typedef struct {
    FILE *fp;
    uint64_t pos;
    int err;
    char *archive;
    struct rec {
        char *name; /* without the archive prefix */
        uint64_t off, size;
        uint32_t crc;
    } *r;
    int n, cap;
    uint64_t comb_crc;
} zipw;

static void zw(zipw *z, const void *d, size_t n) {
    if (z->err) return;
    if (n && fwrite(d, 1, n, z->fp) != n) z->err = 1;
    z->pos += n;
}
static void zle(zipw *z, uint64_t v, int n) {
    unsigned char x[8];
    for (int i = 0; i < n; i++) x[i] = (unsigned char)(v >> (8 * i));
    zw(z, x, (size_t)n);
}

/* One record; data may be written in pieces (parts) so a tensor is not copied. */
static int zip_record(zipw *z, const char *name, const void *data, uint64_t size) {
    if (z->n == z->cap) {
        z->cap = z->cap ? 2 * z->cap : 16;
        struct rec *nr = realloc(z->r, (size_t)z->cap * sizeof *nr);
        if (!nr) return m2u_fail("out of memory");
        z->r = nr;
    }
    char full[1024];
    int fl = snprintf(full, sizeof full, "%s/%s", z->archive, name);
    if (fl < 0 || fl >= (int)sizeof full) return m2u_fail("record name too long: %s", name);
    struct rec *r = &z->r[z->n];
    r->name = strdup(name);
    if (!r->name) return m2u_fail("out of memory");
    z->n++;
    r->off = z->pos;
    r->size = size;
    r->crc = crc32_of(data, (size_t)size);
    uint64_t start = z->pos + 30 + (uint64_t)fl + 4;
    uint64_t pad = (64 - start % 64) % 64;
    zle(z, 0x04034b50u, 4);
    zle(z, 0, 2);      /* version needed */
    zle(z, size ? 0x0808 : 0x0800, 2); /* data descriptor follows (not for an empty record); UTF-8 name */
    zle(z, 0, 2);      /* stored */
    zle(z, 0, 4);      /* time, date */
    zle(z, 0, 4);      /* crc (in the descriptor) */
    zle(z, 0, 4);
    zle(z, 0, 4);
    zle(z, (uint64_t)fl, 2);
    zle(z, 4 + pad, 2);
    zw(z, full, (size_t)fl);
    zw(z, "FB", 2);
    zle(z, pad, 2);
    for (uint64_t i = 0; i < pad; i++) zw(z, "Z", 1);
    zw(z, data, (size_t)size);
    if (!size) /* miniz writes no descriptor for an empty record, so torch combines no CRC for it */
        return z->err ? m2u_fail("write error") : 0;
    zle(z, 0x08074b50u, 4);
    zle(z, r->crc, 4);
    if (size >= 0xffffffffu) { /* zip64 descriptor */
        zle(z, size, 8);
        zle(z, size, 8);
    } else {
        zle(z, size, 4);
        zle(z, size, 4);
    }
    z->comb_crc = hash_combine(z->comb_crc, r->crc);
    return z->err ? m2u_fail("write error") : 0;
}

static int zip_finish(zipw *z) {
    uint64_t cd_off = z->pos;
    for (int i = 0; i < z->n; i++) {
        struct rec *r = &z->r[i];
        char full[1024];
        int fl = snprintf(full, sizeof full, "%s/%s", z->archive, r->name);
        int big_size = r->size >= 0xffffffffu, big_off = r->off >= 0xffffffffu;
        int xlen = (big_size ? 16 : 0) + (big_off ? 8 : 0);
        zle(z, 0x02014b50u, 4);
        zle(z, 0, 2); /* made by */
        zle(z, xlen ? 45 : 0, 2);
        zle(z, r->size ? 0x0808 : 0x0800, 2);
        zle(z, 0, 2);
        zle(z, 0, 4);
        zle(z, r->crc, 4);
        zle(z, big_size ? 0xffffffffu : r->size, 4);
        zle(z, big_size ? 0xffffffffu : r->size, 4);
        zle(z, (uint64_t)fl, 2);
        zle(z, (uint64_t)(xlen ? xlen + 4 : 0), 2);
        zle(z, 0, 2); /* comment */
        zle(z, 0, 2); /* disk */
        zle(z, 0, 2); /* internal attributes */
        zle(z, 0, 4); /* external attributes */
        zle(z, big_off ? 0xffffffffu : r->off, 4);
        zw(z, full, (size_t)fl);
        if (xlen) {
            zle(z, 1, 2);
            zle(z, (uint64_t)xlen, 2);
            if (big_size) {
                zle(z, r->size, 8);
                zle(z, r->size, 8);
            }
            if (big_off) zle(z, r->off, 8);
        }
    }
    uint64_t cd_size = z->pos - cd_off, z64 = z->pos;
    zle(z, 0x06064b50u, 4);
    zle(z, 44, 8);
    zle(z, 0x031e, 2);
    zle(z, 0x2d, 2);
    zle(z, 0, 4);
    zle(z, 0, 4);
    zle(z, (uint64_t)z->n, 8);
    zle(z, (uint64_t)z->n, 8);
    zle(z, cd_size, 8);
    zle(z, cd_off, 8);
    zle(z, 0x07064b50u, 4);
    zle(z, 0, 4);
    zle(z, z64, 8);
    zle(z, 1, 4);
    zle(z, 0x06054b50u, 4);
    zle(z, 0, 2);
    zle(z, 0, 2);
    zle(z, z->n < 0xffff ? (uint64_t)z->n : 0xffff, 2);
    zle(z, z->n < 0xffff ? (uint64_t)z->n : 0xffff, 2);
    zle(z, cd_size < 0xffffffffu ? cd_size : 0xffffffffu, 4);
    zle(z, cd_off < 0xffffffffu ? cd_off : 0xffffffffu, 4);
    zle(z, 0, 2);
    return z->err ? m2u_fail("write error") : 0;
}

static int cmp_key(const void *a, const void *b) { /* sorted as strings, as torch sorts the keys */
    char ka[24], kb[24];
    snprintf(ka, sizeof ka, "%d", *(const int *)a);
    snprintf(kb, sizeof kb, "%d", *(const int *)b);
    return strcmp(ka, kb);
}

static int write_archive(FILE *fp, const char *archive, const m2u_st_entry *e, int n, const char *wrap_key) {
    for (int i = 0; i < n; i++) {
        if (!storage_name(e[i].dtype)) return m2u_fail("tensor '%s': dtype not supported by torch storages", e[i].name);
        if (e[i].ndim < 0 || e[i].ndim > M2U_ST_MAX_DIMS) return m2u_fail("tensor '%s': bad rank", e[i].name);
        for (int j = 0; j < i; j++)
            if (!strcmp(e[i].name, e[j].name)) return m2u_fail("duplicate tensor name '%s'", e[i].name);
    }
    crc_init();
    buf pkl = {0};
    if (build_pickle(e, n, wrap_key, &pkl)) return -1;
    zipw z = {.fp = fp, .archive = (char *)archive};
    int rc = zip_record(&z, "data.pkl", pkl.p, pkl.n);
    free(pkl.p);
    if (!rc) rc = zip_record(&z, "byteorder", "little", 6);
    int *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!order && !rc) rc = m2u_fail("out of memory");
    for (int i = 0; order && i < n; i++) order[i] = i;
    if (order) qsort(order, (size_t)n, sizeof *order, cmp_key);
    for (int i = 0; !rc && i < n; i++) {
        const m2u_st_entry *t = &e[order[i]];
        char name[32];
        snprintf(name, sizeof name, "data/%d", order[i]);
        rc = zip_record(&z, name, t->data, (uint64_t)numel_of(t) * m2u_dtype_size(t->dtype));
    }
    free(order);
    if (!rc) rc = zip_record(&z, "version", "3\n", 2);
    if (!rc) { /* serialization id over the records written so far */
        char **names = malloc((size_t)z.n * sizeof *names);
        uint64_t nh = 0;
        if (!names) rc = m2u_fail("out of memory");
        for (int i = 0; !rc && i < z.n; i++) names[i] = z.r[i].name;
        if (!rc) rc = names_hash(names, z.n, &nh);
        free(names);
        char id[48];
        snprintf(id, sizeof id, "%020llu%020llu", (unsigned long long)nh, (unsigned long long)z.comb_crc);
        if (!rc) rc = zip_record(&z, ".data/serialization_id", id, 40);
    }
    if (!rc) rc = zip_finish(&z);
    for (int i = 0; i < z.n; i++) free(z.r[i].name);
    free(z.r);
    return rc;
}

/* torch's archive name: the base name up to its last '.' */
static char *archive_name(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    size_t n = dot ? (size_t)(dot - b) : strlen(b);
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, b, n);
    s[n] = '\0';
    return s;
}

int m2u_pth_write(const char *path, const m2u_st_entry *entries, int n, const char *wrap_key) {
    char *arch = archive_name(path);
    if (!arch) return m2u_fail("out of memory");
    if (!arch[0]) {
        free(arch);
        return m2u_fail("%s: the file name gives an empty archive name", path);
    }
    m2u_atomic_file af;
    if (m2u_atomic_open(&af, path)) {
        free(arch);
        return -1;
    }
    int rc = write_archive(af.fp, arch, entries, n, wrap_key);
    free(arch);
    if (rc) {
        m2u_atomic_abort(&af);
        return m2u_fail_prefix("%s", path);
    }
    return m2u_atomic_commit(&af);
}

int m2u_pth_serialize(const char *archive, const m2u_st_entry *entries, int n, const char *wrap_key,
                      unsigned char **out, size_t *out_len) {
    char *p = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&p, &len);
    if (!fp) return m2u_fail("out of memory");
    int rc = write_archive(fp, archive, entries, n, wrap_key);
    if (fclose(fp) != 0 && !rc) rc = m2u_fail("out of memory");
    if (rc) {
        free(p);
        return -1;
    }
    *out = (unsigned char *)p;
    *out_len = len;
    return 0;
}
