#include "torch_ckpt.h"

#include "fileio.h"
#include "m2u_error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- zip (stored entries only) ----------------------------------------------------- */

typedef struct {
    char *name;
    const unsigned char *data;
    uint64_t size;
} zentry;

static uint16_t rd16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static int read_zip(const char *path, const unsigned char *f, size_t n, zentry **out, int *n_out) {
    if (n < 22) return m2u_fail("%s: not a zip archive (too short)", path);
    size_t eocd = (size_t)-1;
    size_t lo = n > 22 + 65535 ? n - 22 - 65535 : 0;
    for (size_t i = n - 22 + 1; i-- > lo;)
        if (rd32(f + i) == 0x06054b50u) {
            eocd = i;
            break;
        }
    if (eocd == (size_t)-1) return m2u_fail("%s: not a zip archive (no end of central directory)", path);
    uint64_t count = rd16(f + eocd + 10), cd_size = rd32(f + eocd + 12), cd_off = rd32(f + eocd + 16);
    if (count == 0xffff || cd_size == 0xffffffffu || cd_off == 0xffffffffu) { /* zip64 */
        if (eocd < 20 || rd32(f + eocd - 20) != 0x07064b50u) return m2u_fail("%s: zip64 locator missing", path);
        uint64_t z = rd64(f + eocd - 20 + 8);
        /* z comes from the file: compare by subtraction so a huge value cannot wrap past n */
        if (z > n || n - z < 56 || rd32(f + z) != 0x06064b50u) return m2u_fail("%s: zip64 end record missing", path);
        count = rd64(f + z + 32);
        cd_size = rd64(f + z + 40);
        cd_off = rd64(f + z + 48);
    }
    if (cd_off > n || cd_size > n - cd_off || count > 1000000) return m2u_fail("%s: zip central directory out of range", path);
    zentry *e = calloc(count ? count : 1, sizeof *e);
    if (!e) return m2u_fail("out of memory");
    size_t p = cd_off;
    int rc = 0, k = 0;
    for (uint64_t i = 0; i < count && !rc; i++) {
        if (p + 46 > cd_off + cd_size || rd32(f + p) != 0x02014b50u) {
            rc = m2u_fail("%s: corrupt zip central directory entry %llu", path, (unsigned long long)i);
            break;
        }
        uint16_t method = rd16(f + p + 10), nlen = rd16(f + p + 28), xlen = rd16(f + p + 30), clen = rd16(f + p + 32);
        uint64_t csize = rd32(f + p + 20), usize = rd32(f + p + 24), loff = rd32(f + p + 42);
        if (p + 46 + nlen + xlen + clen > cd_off + cd_size) {
            rc = m2u_fail("%s: corrupt zip central directory", path);
            break;
        }
        const unsigned char *x = f + p + 46 + nlen, *xe = x + xlen;
        while (x + 4 <= xe) { /* zip64 extended information: the 0xffffffff fields, in order */
            uint16_t id = rd16(x), sz = rd16(x + 2);
            const unsigned char *v = x + 4;
            if (sz > xe - v) break; /* a field longer than the extra block: refused below */
            if (id == 1) {
                if (usize == 0xffffffffu && v + 8 <= x + 4 + sz) usize = rd64(v), v += 8;
                if (csize == 0xffffffffu && v + 8 <= x + 4 + sz) csize = rd64(v), v += 8;
                if (loff == 0xffffffffu && v + 8 <= x + 4 + sz) loff = rd64(v), v += 8;
            }
            x += 4 + sz;
        }
        if (x != xe) {
            rc = m2u_fail("%s: corrupt zip extra field in central directory entry %llu", path, (unsigned long long)i);
            break;
        }
        e[k].name = malloc((size_t)nlen + 1);
        if (!e[k].name) {
            rc = m2u_fail("out of memory");
            break;
        }
        memcpy(e[k].name, f + p + 46, nlen);
        e[k].name[nlen] = '\0';
        if (method != 0 || csize != usize)
            rc = m2u_fail("%s: zip entry '%s' is compressed; torch.save writes stored entries", path, e[k].name);
        else if (loff > n || n - loff < 30 || rd32(f + loff) != 0x04034b50u) /* zip64 offsets are 64-bit */
            rc = m2u_fail("%s: zip entry '%s' has no local header", path, e[k].name);
        else {
            uint64_t start = loff + 30 + rd16(f + loff + 26) + rd16(f + loff + 28);
            /* loff <= n - 30, so start cannot wrap; usize (zip64) is compared by subtraction */
            if (start > n || usize > n - start)
                rc = m2u_fail("%s: zip entry '%s' runs past the end of the file (truncated?)", path, e[k].name);
            else {
                e[k].data = f + start;
                e[k].size = usize;
            }
        }
        k++;
        p += 46 + nlen + xlen + clen;
    }
    *out = e;
    *n_out = k;
    return rc;
}

/* ---- the pickle subset ------------------------------------------------------------------- */

enum { V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_TUPLE, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR, V_MARK };
enum { G_ODICT, G_REBUILD, G_PARAM, G_STORAGE };

typedef struct val {
    int kind;
    int64_t i;   /* INT, BOOL; GLOBAL: which; STORAGE: numel */
    double f;
    char *s;     /* STR; STORAGE: key */
    m2u_dtype dtype;      /* GLOBAL storage type, STORAGE, TENSOR */
    struct val **items;   /* TUPLE items; DICT: key, value, key, value... */
    int n, cap;
    struct val *storage;  /* TENSOR */
    int64_t offset, shape[M2U_ST_MAX_DIMS], stride[M2U_ST_MAX_DIMS];
    int ndim;
} val;

typedef struct {
    const char *path;
    val **all; /* every value, freed at the end */
    int n_all, cap_all;
    val **stack;
    int sp, cap_stack;
    val **memo;
    int n_memo, cap_memo;
} vm;

static val *mk(vm *m, int kind) {
    val *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = kind;
    if (m->n_all == m->cap_all) {
        m->cap_all = m->cap_all ? 2 * m->cap_all : 256;
        m->all = realloc(m->all, (size_t)m->cap_all * sizeof *m->all);
    }
    m->all[m->n_all++] = v;
    return v;
}

static void push(vm *m, val *v) {
    if (m->sp == m->cap_stack) {
        m->cap_stack = m->cap_stack ? 2 * m->cap_stack : 64;
        m->stack = realloc(m->stack, (size_t)m->cap_stack * sizeof *m->stack);
    }
    m->stack[m->sp++] = v;
}

static void add_item(val *c, val *x) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->items = realloc(c->items, (size_t)c->cap * sizeof *c->items);
    }
    c->items[c->n++] = x;
}

static int find_mark(vm *m) {
    for (int i = m->sp - 1; i >= 0; i--)
        if (m->stack[i]->kind == V_MARK) return i;
    return -1;
}

static const struct {
    const char *name;
    int which;
    m2u_dtype dtype;
} k_globals[] = {
    {"collections\nOrderedDict", G_ODICT, M2U_F32},         {"torch._utils\n_rebuild_tensor_v2", G_REBUILD, M2U_F32},
    {"torch._utils\n_rebuild_parameter", G_PARAM, M2U_F32}, {"torch\nFloatStorage", G_STORAGE, M2U_F32},
    {"torch\nHalfStorage", G_STORAGE, M2U_F16},             {"torch\nBFloat16Storage", G_STORAGE, M2U_BF16},
    {"torch\nDoubleStorage", G_STORAGE, M2U_F64},           {"torch\nLongStorage", G_STORAGE, M2U_I64},
    {"torch\nIntStorage", G_STORAGE, M2U_I32},              {"torch\nShortStorage", G_STORAGE, M2U_I16},
    {"torch\nCharStorage", G_STORAGE, M2U_I8},              {"torch\nByteStorage", G_STORAGE, M2U_U8},
    {"torch\nBoolStorage", G_STORAGE, M2U_BOOL},
};

static int int_tuple(const val *t, int64_t *out, int *n) {
    if (t->kind != V_TUPLE || t->n > M2U_ST_MAX_DIMS) return -1;
    for (int i = 0; i < t->n; i++) {
        if (t->items[i]->kind != V_INT) return -1;
        out[i] = t->items[i]->i;
    }
    *n = t->n;
    return 0;
}

/* callable(args) for the allowed callables */
static val *reduce(vm *m, val *fn, val *args, size_t at) {
    if (fn->kind != V_GLOBAL || args->kind != V_TUPLE) {
        m2u_fail("%s: data.pkl byte %zu: REDUCE on something that is not an allowed global", m->path, at);
        return NULL;
    }
    if (fn->i == G_ODICT && args->n == 0) return mk(m, V_DICT);
    if (fn->i == G_PARAM && args->n >= 1 && args->items[0]->kind == V_TENSOR) return args->items[0];
    if (fn->i == G_REBUILD && args->n >= 4 && args->items[0]->kind == V_STORAGE && args->items[1]->kind == V_INT) {
        val *t = mk(m, V_TENSOR);
        int ns = 0;
        if (!t || int_tuple(args->items[2], t->shape, &t->ndim) || int_tuple(args->items[3], t->stride, &ns) ||
            ns != t->ndim) {
            m2u_fail("%s: data.pkl byte %zu: malformed _rebuild_tensor_v2 arguments", m->path, at);
            return NULL;
        }
        t->storage = args->items[0];
        t->offset = args->items[1]->i;
        t->dtype = t->storage->dtype;
        return t;
    }
    m2u_fail("%s: data.pkl byte %zu: refusing to call this global with these arguments", m->path, at);
    return NULL;
}

static int run_pickle(vm *m, const unsigned char *p, size_t n, val **result) {
    size_t i = 0;
#define NEED(k)                                                                                              \
    do {                                                                                                     \
        if (i + (k) > n) return m2u_fail("%s: data.pkl is truncated at byte %zu", m->path, i);              \
    } while (0)
#define POP(v)                                                                                               \
    do {                                                                                                     \
        if (m->sp == 0) return m2u_fail("%s: data.pkl byte %zu: stack underflow", m->path, at);             \
        (v) = m->stack[--m->sp];                                                                            \
    } while (0)
    while (i < n) {
        size_t at = i;
        unsigned char op = p[i++];
        val *v = NULL, *a = NULL, *b = NULL;
        switch (op) {
        case 0x80: NEED(1); i++; break;                /* PROTO */
        case 0x95: NEED(8); i += 8; break;             /* FRAME */
        case '.':                                      /* STOP */
            if (m->sp != 1) return m2u_fail("%s: data.pkl: %d values left at STOP", m->path, m->sp);
            *result = m->stack[0];
            return 0;
        case '(': push(m, mk(m, V_MARK)); break;
        case ')': push(m, mk(m, V_TUPLE)); break;
        case '}': push(m, mk(m, V_DICT)); break;
        case ']': push(m, mk(m, V_TUPLE)); break;      /* lists are kept as tuples */
        case 'N': push(m, mk(m, V_NONE)); break;
        case 0x88: case 0x89:                          /* NEWTRUE, NEWFALSE */
            v = mk(m, V_BOOL);
            v->i = op == 0x88;
            push(m, v);
            break;
        case 'K': NEED(1); v = mk(m, V_INT); v->i = p[i]; i += 1; push(m, v); break;
        case 'M': NEED(2); v = mk(m, V_INT); v->i = rd16(p + i); i += 2; push(m, v); break;
        case 'J': NEED(4); v = mk(m, V_INT); v->i = (int32_t)rd32(p + i); i += 4; push(m, v); break;
        case 0x8a: {                                   /* LONG1 */
            NEED(1);
            int k = p[i++];
            NEED((size_t)k);
            if (k > 8) return m2u_fail("%s: data.pkl byte %zu: integer too large", m->path, at);
            uint64_t u = 0;
            for (int j = 0; j < k; j++) u |= (uint64_t)p[i + j] << (8 * j);
            if (k && k < 8 && (p[i + k - 1] & 0x80)) u |= ~0ull << (8 * k); /* sign-extend */
            i += (size_t)k;
            v = mk(m, V_INT);
            v->i = (int64_t)u;
            push(m, v);
            break;
        }
        case 'G': {                                    /* BINFLOAT, big-endian */
            NEED(8);
            uint64_t u = 0;
            for (int j = 0; j < 8; j++) u = u << 8 | p[i + j];
            i += 8;
            v = mk(m, V_FLOAT);
            memcpy(&v->f, &u, 8);
            push(m, v);
            break;
        }
        case 'X': case 0x8c: {                         /* BINUNICODE, SHORT_BINUNICODE */
            size_t len;
            if (op == 'X') { NEED(4); len = rd32(p + i); i += 4; }
            else { NEED(1); len = p[i++]; }
            NEED(len);
            v = mk(m, V_STR);
            v->s = malloc(len + 1);
            memcpy(v->s, p + i, len);
            v->s[len] = '\0';
            i += len;
            push(m, v);
            break;
        }
        case 'c': {                                    /* GLOBAL "module\nname\n" */
            size_t e1 = i;
            while (e1 < n && p[e1] != '\n') e1++;
            size_t e2 = e1 + 1;
            while (e2 < n && p[e2] != '\n') e2++;
            if (e2 >= n) return m2u_fail("%s: data.pkl is truncated at byte %zu", m->path, at);
            size_t len = e2 - i;
            int found = -1;
            for (size_t g = 0; g < sizeof k_globals / sizeof *k_globals; g++)
                if (strlen(k_globals[g].name) == len && !memcmp(k_globals[g].name, p + i, len)) found = (int)g;
            if (found < 0)
                return m2u_fail("%s: data.pkl byte %zu: refusing global '%.*s.%.*s' (not part of a saved state dict)",
                                m->path, at, (int)(e1 - i), (const char *)p + i, (int)(e2 - e1 - 1),
                                (const char *)p + e1 + 1);
            v = mk(m, V_GLOBAL);
            v->i = k_globals[found].which;
            v->dtype = k_globals[found].dtype;
            i = e2 + 1;
            push(m, v);
            break;
        }
        case 'q': NEED(1); i += 1; goto memo_put;      /* BINPUT */
        case 'r': NEED(4); i += 4; goto memo_put;      /* LONG_BINPUT */
        case 0x94:                                     /* MEMOIZE */
        memo_put: {
            size_t idx = op == 'q' ? p[i - 1] : op == 'r' ? rd32(p + i - 4) : (size_t)m->n_memo;
            if (!m->sp) return m2u_fail("%s: data.pkl byte %zu: memo of an empty stack", m->path, at);
            if (idx > 10000000) return m2u_fail("%s: data.pkl byte %zu: memo index too large", m->path, at);
            if ((int)idx >= m->n_memo) {
                /* geometric growth: after one large LONG_BINPUT index, growing by one slot
                 * per MEMOIZE recopied the whole memo each time (quadratic; tests/fuzz) */
                if ((int)idx >= m->cap_memo) {
                    size_t cap = 2 * (size_t)m->cap_memo > idx + 1 ? 2 * (size_t)m->cap_memo : idx + 1;
                    val **grown = realloc(m->memo, cap * sizeof *m->memo);
                    if (!grown) return m2u_fail("%s: data.pkl byte %zu: out of memory (memo)", m->path, at);
                    m->memo = grown;
                    m->cap_memo = (int)cap;
                }
                for (size_t j = (size_t)m->n_memo; j <= idx; j++) m->memo[j] = NULL;
                m->n_memo = (int)idx + 1;
            }
            m->memo[idx] = m->stack[m->sp - 1];
            break;
        }
        case 'h': case 'j': {                          /* BINGET, LONG_BINGET */
            size_t idx;
            if (op == 'h') { NEED(1); idx = p[i]; i += 1; }
            else { NEED(4); idx = rd32(p + i); i += 4; }
            if (idx >= (size_t)m->n_memo || !m->memo[idx]) /* a 32-bit index must not turn negative as an int */
                return m2u_fail("%s: data.pkl byte %zu: unknown memo %zu", m->path, at, idx);
            push(m, m->memo[idx]);
            break;
        }
        case 't': {                                    /* TUPLE from MARK */
            int mk_at = find_mark(m);
            if (mk_at < 0) return m2u_fail("%s: data.pkl byte %zu: TUPLE without MARK", m->path, at);
            v = mk(m, V_TUPLE);
            for (int j = mk_at + 1; j < m->sp; j++) add_item(v, m->stack[j]);
            m->sp = mk_at;
            push(m, v);
            break;
        }
        case 0x85: case 0x86: case 0x87: {             /* TUPLE1..3 */
            int k = op - 0x84;
            if (m->sp < k) return m2u_fail("%s: data.pkl byte %zu: stack underflow", m->path, at);
            v = mk(m, V_TUPLE);
            for (int j = m->sp - k; j < m->sp; j++) add_item(v, m->stack[j]);
            m->sp -= k;
            push(m, v);
            break;
        }
        case 'Q':                                      /* BINPERSID: ('storage', type, key, location, numel) */
            POP(a);
            if (a->kind != V_TUPLE || a->n < 5 || a->items[0]->kind != V_STR || strcmp(a->items[0]->s, "storage") ||
                a->items[1]->kind != V_GLOBAL || a->items[1]->i != G_STORAGE || a->items[2]->kind != V_STR ||
                a->items[4]->kind != V_INT)
                return m2u_fail("%s: data.pkl byte %zu: unsupported persistent id", m->path, at);
            v = mk(m, V_STORAGE);
            v->dtype = a->items[1]->dtype;
            v->s = strdup(a->items[2]->s);
            v->i = a->items[4]->i;
            push(m, v);
            break;
        case 'R':                                      /* REDUCE */
            POP(a);
            POP(b);
            if (!(v = reduce(m, b, a, at))) return -1;
            push(m, v);
            break;
        case 'b':                                      /* BUILD: state on a dict (OrderedDict _metadata) is dropped */
            POP(a);
            if (!m->sp || (m->stack[m->sp - 1]->kind != V_DICT && m->stack[m->sp - 1]->kind != V_TENSOR))
                return m2u_fail("%s: data.pkl byte %zu: BUILD on an unsupported object", m->path, at);
            break;
        case 's':                                      /* SETITEM */
            POP(a);
            POP(b);
            if (!m->sp || m->stack[m->sp - 1]->kind != V_DICT)
                return m2u_fail("%s: data.pkl byte %zu: SETITEM on a non-dict", m->path, at);
            add_item(m->stack[m->sp - 1], b);
            add_item(m->stack[m->sp - 1], a);
            break;
        case 'u': case 'e': {                          /* SETITEMS, APPENDS */
            int mk_at = find_mark(m);
            if (mk_at < 1) return m2u_fail("%s: data.pkl byte %zu: SETITEMS without MARK", m->path, at);
            val *d = m->stack[mk_at - 1];
            if ((op == 'u' && d->kind != V_DICT) || (op == 'e' && d->kind != V_TUPLE) ||
                (op == 'u' && (m->sp - mk_at - 1) % 2))
                return m2u_fail("%s: data.pkl byte %zu: malformed SETITEMS/APPENDS", m->path, at);
            for (int j = mk_at + 1; j < m->sp; j++) add_item(d, m->stack[j]);
            m->sp = mk_at;
            break;
        }
        case 'a':                                      /* APPEND */
            POP(a);
            if (!m->sp || m->stack[m->sp - 1]->kind != V_TUPLE)
                return m2u_fail("%s: data.pkl byte %zu: APPEND on a non-list", m->path, at);
            add_item(m->stack[m->sp - 1], a);
            break;
        default:
            return m2u_fail("%s: data.pkl byte %zu: refusing pickle opcode 0x%02x (not used by a saved state dict)",
                            m->path, at, op);
        }
    }
#undef NEED
#undef POP
    return m2u_fail("%s: data.pkl ends without STOP", m->path);
}

/* ---- the checkpoint ------------------------------------------------------------------------------------- */

struct m2u_torch_ckpt {
    m2u_mapping map;
    m2u_st_tensor *t;
    int n, cap, n_other;
    char *path;
};

typedef struct {
    m2u_torch_ckpt *c;
    zentry *z;
    int nz;
    const char *prefix; /* "<archive>/" */
    long visits;        /* dict entries walked, against M2U_TORCH_MAX_ENTRIES */
} flatten_ctx;

static const zentry *find_entry(const flatten_ctx *f, const char *key) {
    char name[1024];
    snprintf(name, sizeof name, "%sdata/%s", f->prefix, key);
    for (int i = 0; i < f->nz; i++)
        if (!strcmp(f->z[i].name, name)) return &f->z[i];
    return NULL;
}

static int add_tensor(flatten_ctx *f, const char *name, const val *t) {
    m2u_torch_ckpt *c = f->c;
    const zentry *e = find_entry(f, t->storage->s);
    if (!e) return m2u_fail("%s: tensor '%s': storage '%s' is missing from the archive", c->path, name, t->storage->s);
    /* Shape, offset and storage size all come from the file.  Every product and sum
       is checked before it is formed (as the safetensors reader does): a wrapped
       element count would pass the bounds check and hand out a view past the file.
       Counts stay <= 2^62, so offset + numel and numel * dtype size cannot overflow. */
    const int64_t lim = (int64_t)1 << 62;
    int64_t es = (int64_t)m2u_dtype_size(t->dtype);
    int64_t numel = 1; /* also the stride a contiguous tensor has at dimension d */
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] < 0) return m2u_fail("%s: tensor '%s': negative size", c->path, name);
        if (t->shape[d] != 1 && t->stride[d] != numel)
            return m2u_fail("%s: tensor '%s' is not contiguous (strides); save it with .contiguous()", c->path, name);
        if (t->shape[d] != 0 && numel > lim / t->shape[d])
            return m2u_fail("%s: tensor '%s': shape overflows the element count", c->path, name);
        numel *= t->shape[d];
    }
    if (t->offset < 0 || t->offset > lim - numel || t->storage->i < 0 || t->offset + numel > t->storage->i ||
        (uint64_t)(t->offset + numel) > e->size / (uint64_t)es)
        return m2u_fail("%s: tensor '%s' lies outside its storage (truncated file?)", c->path, name);
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->t = realloc(c->t, (size_t)c->cap * sizeof *c->t);
    }
    m2u_st_tensor *o = &c->t[c->n++];
    memset(o, 0, sizeof *o);
    o->name = strdup(name);
    o->dtype = t->dtype;
    o->ndim = t->ndim;
    memcpy(o->shape, t->shape, sizeof o->shape);
    o->numel = numel;
    o->data = numel ? e->data + (size_t)t->offset * es : NULL;
    o->nbytes = (size_t)numel * es;
    return 0;
}

/* Memo references let a pickle put a dict inside itself, or the same dict under two
   keys at every level (a few hundred bytes that name 2^40 tensors).  The depth cap
   turns a cycle into an error instead of unbounded recursion, the entry budget the
   shared structure into an error instead of a hang.  State dicts nest a few levels
   and hold thousands of tensors at most. */
#define M2U_TORCH_MAX_NEST 64
#define M2U_TORCH_MAX_ENTRIES (1L << 20)

static int flatten(flatten_ctx *f, const char *prefix, const val *d, int depth) {
    if (depth > M2U_TORCH_MAX_NEST)
        return m2u_fail("%s: dicts nested deeper than %d levels at '%s' (a dict that contains itself?)", f->c->path,
                        M2U_TORCH_MAX_NEST, prefix);
    for (int i = 0; i + 1 < d->n; i += 2) {
        const val *k = d->items[i], *v = d->items[i + 1];
        char name[1024];
        if (++f->visits > M2U_TORCH_MAX_ENTRIES)
            return m2u_fail("%s: more than %ld dict entries (the same dict reached through many keys?)", f->c->path,
                            M2U_TORCH_MAX_ENTRIES);
        if (k->kind != V_STR) {
            f->c->n_other++;
            continue;
        }
        snprintf(name, sizeof name, "%s%s%s", prefix, prefix[0] ? "." : "", k->s);
        int rc = 0;
        if (v->kind == V_TENSOR) rc = add_tensor(f, name, v);
        else if (v->kind == V_DICT) rc = flatten(f, name, v, depth + 1);
        else f->c->n_other++;
        if (rc) return -1;
    }
    return 0;
}

void m2u_torch_close(m2u_torch_ckpt *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) free((char *)c->t[i].name);
    free(c->t);
    free(c->path);
    m2u_unmap_file(&c->map);
    free(c);
}

int m2u_torch_open(const char *path, m2u_torch_ckpt **out) {
    *out = NULL;
    m2u_torch_ckpt *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return m2u_fail("out of memory");
    }
    if (m2u_map_file(path, &c->map)) {
        m2u_torch_close(c);
        return -1;
    }
    zentry *z = NULL;
    int nz = 0, rc = read_zip(path, c->map.data, c->map.size, &z, &nz);
    const zentry *pkl = NULL;
    char prefix[512] = "";
    for (int i = 0; !rc && i < nz; i++) {
        size_t len = strlen(z[i].name);
        if (len >= 8 && !strcmp(z[i].name + len - 8, "data.pkl") && (len == 8 || z[i].name[len - 9] == '/') &&
            len - 8 < sizeof prefix) {
            pkl = &z[i];
            memcpy(prefix, z[i].name, len - 8);
            prefix[len - 8] = '\0';
        }
    }
    if (!rc && !pkl) rc = m2u_fail("%s: no data.pkl in the archive (not a torch.save file?)", path);
    vm m = {.path = path};
    val *root = NULL;
    if (!rc) rc = run_pickle(&m, pkl->data, pkl->size, &root);
    if (!rc && root->kind != V_DICT) rc = m2u_fail("%s: the pickle does not hold a dict of tensors", path);
    if (!rc) {
        flatten_ctx f = {.c = c, .z = z, .nz = nz, .prefix = prefix};
        rc = flatten(&f, "", root, 0);
    }
    for (int i = 0; i < m.n_all; i++) {
        free(m.all[i]->s);
        free(m.all[i]->items);
        free(m.all[i]);
    }
    free(m.all);
    free(m.stack);
    free(m.memo);
    for (int i = 0; i < nz; i++) free(z[i].name);
    free(z);
    if (rc) {
        m2u_torch_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

int m2u_torch_count(const m2u_torch_ckpt *c) { return c->n; }
const m2u_st_tensor *m2u_torch_at(const m2u_torch_ckpt *c, int i) { return i >= 0 && i < c->n ? &c->t[i] : NULL; }
int m2u_torch_n_other(const m2u_torch_ckpt *c) { return c->n_other; }

const m2u_st_tensor *m2u_torch_find(const m2u_torch_ckpt *c, const char *name) {
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->t[i].name, name)) return &c->t[i];
    return NULL;
}
