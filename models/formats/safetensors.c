/* safetensors reader and writer.  See safetensors.h and formats.md section 1.
 *
 * Reader: the file is mmap'ed; the JSON header is copied into a NUL-terminated
 * buffer (cJSON must never read past the mapping) and checked rule by rule in
 * the order of the reference loader (read_metadata + Metadata::validate).  A
 * sharded checkpoint is the union of its shards, cross-checked against the
 * index's weight_map.  Names are looked up through an array of tensor pointers
 * sorted by name (bsearch, O(log n)).
 *
 * Writer: reproduces the reference writer's layout (prepare() in tensor.rs) so
 * that our files are byte-identical to safetensors.torch.save_file's for the
 * same tensors and metadata {"format":"pt"}. */
#include "safetensors.h"

#include "fileio.h"
#include "m2u_error.h"
#include "strbuf.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torch_ckpt.h"

#define ST_MAX_HEADER 100000000ull
/* Integers in the header reach us as cJSON doubles; above 2^53 they are no longer exact.
 * The schema's own limit is 2^48-1, so this refuses nothing a real file holds. */
#define ST_MAX_INT 9007199254740992.0

typedef struct {
    char *path;
    m2u_mapping map;
} st_file;

struct m2u_safetensors {
    m2u_torch_ckpt *torch; /* set when the file is a torch.save archive instead */
    int n_files;
    st_file *files;
    int n, cap;
    m2u_st_tensor *tensors;        /* names are malloc'ed and owned here */
    const m2u_st_tensor **by_name; /* sorted by name, for bsearch */
    int n_meta;
    char **meta_keys, **meta_values; /* __metadata__ of files[0] */
};

void m2u_st_drop_pages(const m2u_safetensors *st, const void *p, size_t n) {
    if (st->torch) return; /* a torch archive's tensors: not ours to advise on */
    for (int i = 0; i < st->n_files; i++) {
        const m2u_mapping *m = &st->files[i].map;
        if (m->data && (const unsigned char *)p >= m->data && (const unsigned char *)p < m->data + m->size) {
            m2u_mapping_drop(m, p, n);
            return;
        }
    }
}

/* ---------------------------------------------------------------- helpers */

/* Offset of the first byte that breaks UTF-8 (overlongs, surrogates and code
 * points above U+10FFFF included, as Rust's str::from_utf8), or n if valid. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) len = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) len = 4, cp = c & 0x07, min = 0x10000;
        else return i;
        if (n - i < len) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += len;
    }
    return n;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Reject duplicate keys in a JSON object.  cJSON keeps every member in its child
 * list, and GetObjectItem returns the first while Python's json keeps the last,
 * so a duplicate would let two readers see different files.  Returns the
 * duplicated key or NULL; *oom set when allocation failed. */
static const char *find_duplicate_key(const cJSON *obj, int *oom) {
    *oom = 0;
    int n = cJSON_GetArraySize(obj);
    if (n < 2) return NULL;
    const char **names = malloc((size_t)n * sizeof *names);
    if (!names) {
        *oom = 1;
        return NULL;
    }
    int k = 0;
    for (const cJSON *c = obj->child; c; c = c->next) names[k++] = c->string;
    qsort(names, (size_t)k, sizeof *names, cmp_str_ptr);
    const char *dup = NULL;
    for (int i = 1; i < k && !dup; i++)
        if (strcmp(names[i - 1], names[i]) == 0) dup = names[i];
    free(names);
    return dup;
}

/* A non-negative integer stored exactly in a double (see ST_MAX_INT). */
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0) || d > ST_MAX_INT || d != floor(d)) return -1;
    *out = (uint64_t)d;
    return 0;
}

static void fmt_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

static int is_float_dtype(m2u_dtype t) { return t == M2U_F32 || t == M2U_F16 || t == M2U_BF16 || t == M2U_F64; }

/* numel and byte size with overflow checks; both stay <= 2^62 so later sums cannot overflow. */
static int checked_size(int ndim, const int64_t *shape, m2u_dtype t, int64_t *numel, uint64_t *nbytes) {
    const int64_t lim = (int64_t)1 << 62;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && n > lim / shape[i]) return -1;
        n *= shape[i];
    }
    int64_t sz = (int64_t)m2u_dtype_size(t);
    if (n > lim / sz) return -1;
    *numel = n;
    *nbytes = (uint64_t)(n * sz);
    return 0;
}

static int push_tensor(m2u_safetensors *st, const m2u_st_tensor *t) {
    if (st->n == st->cap) {
        int cap = st->cap ? 2 * st->cap : 64;
        m2u_st_tensor *p = realloc(st->tensors, (size_t)cap * sizeof *p);
        if (!p) return -1;
        st->tensors = p;
        st->cap = cap;
    }
    st->tensors[st->n++] = *t;
    return 0;
}

/* ---------------------------------------------------------------- one file */

typedef struct {
    uint64_t begin, end;
    const cJSON *entry;
    m2u_dtype dtype;
    int ndim;
    int64_t shape[M2U_ST_MAX_DIMS];
    int64_t numel;
} st_span;

static int cmp_span(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Check one tensor entry (rules 3 and 5) and fill `sp`. */
static int parse_entry(const char *path, const cJSON *e, st_span *sp) {
    const char *name = e->string;
    if (!cJSON_IsObject(e)) return m2u_fail("%s: tensor '%s': entry is not a JSON object", path, name);
    const cJSON *dt = NULL, *sh = NULL, *off = NULL;
    for (const cJSON *c = e->child; c; c = c->next) {
        const cJSON **slot = strcmp(c->string, "dtype") == 0          ? &dt
                             : strcmp(c->string, "shape") == 0        ? &sh
                             : strcmp(c->string, "data_offsets") == 0 ? &off
                                                                      : NULL;
        if (!slot)
            return m2u_fail("%s: tensor '%s': unknown field '%s' (an entry holds exactly dtype, shape, data_offsets)",
                            path, name, c->string);
        if (*slot) return m2u_fail("%s: tensor '%s': duplicate key '%s'", path, name, c->string);
        *slot = c;
    }
    if (!dt || !sh || !off)
        return m2u_fail("%s: tensor '%s': missing field '%s'", path, name,
                        !dt ? "dtype" : !sh ? "shape" : "data_offsets");
    if (!cJSON_IsString(dt)) return m2u_fail("%s: tensor '%s': dtype is not a string", path, name);
    if (m2u_dtype_from_name(dt->valuestring, &sp->dtype) != 0)
        return m2u_fail("%s: tensor '%s': unknown or unsupported dtype '%s'", path, name, dt->valuestring);
    if (!cJSON_IsArray(sh)) return m2u_fail("%s: tensor '%s': shape is not an array", path, name);
    int nd = cJSON_GetArraySize(sh);
    if (nd > M2U_ST_MAX_DIMS)
        return m2u_fail("%s: tensor '%s': shape has rank %d, more than %d", path, name, nd, M2U_ST_MAX_DIMS);
    sp->ndim = nd;
    int k = 0;
    for (const cJSON *c = sh->child; c; c = c->next, k++) {
        uint64_t v;
        if (json_uint(c, &v) != 0)
            return m2u_fail("%s: tensor '%s': shape entry %d is not a non-negative integer", path, name, k);
        sp->shape[k] = (int64_t)v;
    }
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || json_uint(off->child, &sp->begin) != 0 ||
        json_uint(off->child->next, &sp->end) != 0)
        return m2u_fail("%s: tensor '%s': data_offsets is not a pair of non-negative integers", path, name);
    if (sp->end < sp->begin)
        return m2u_fail("%s: tensor '%s': invalid data_offsets [%llu, %llu]: end before begin", path, name,
                        (unsigned long long)sp->begin, (unsigned long long)sp->end);
    uint64_t nbytes;
    if (checked_size(sp->ndim, sp->shape, sp->dtype, &sp->numel, &nbytes) != 0)
        return m2u_fail("%s: tensor '%s': shape overflows the element count", path, name);
    if (sp->end - sp->begin != nbytes) {
        char s[256];
        fmt_shape(s, sizeof s, sp->ndim, sp->shape);
        return m2u_fail("%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but %s %s needs %llu (size "
                        "mismatch)",
                        path, name, (unsigned long long)sp->begin, (unsigned long long)sp->end,
                        (unsigned long long)(sp->end - sp->begin), m2u_dtype_name(sp->dtype), s,
                        (unsigned long long)nbytes);
    }
    sp->entry = e;
    return 0;
}

static int parse_metadata(const char *path, const cJSON *meta, m2u_safetensors *st, int keep) {
    if (!cJSON_IsObject(meta)) return m2u_fail("%s: __metadata__ is not an object of strings", path);
    int oom;
    const char *dup = find_duplicate_key(meta, &oom);
    if (oom) return m2u_fail("%s: out of memory", path);
    if (dup) return m2u_fail("%s: __metadata__: duplicate key '%s'", path, dup);
    for (const cJSON *c = meta->child; c; c = c->next)
        if (!cJSON_IsString(c))
            return m2u_fail("%s: __metadata__ value of '%s' is not a string (metadata is string->string)", path,
                            c->string);
    if (!keep) return 0;
    int n = cJSON_GetArraySize(meta);
    st->meta_keys = calloc((size_t)n + 1, sizeof(char *));
    st->meta_values = calloc((size_t)n + 1, sizeof(char *));
    if (!st->meta_keys || !st->meta_values) return m2u_fail("%s: out of memory", path);
    for (const cJSON *c = meta->child; c; c = c->next) {
        st->meta_keys[st->n_meta] = strdup(c->string);
        st->meta_values[st->n_meta] = strdup(c->valuestring);
        st->n_meta++; /* counted first so close() frees a half-made pair */
        if (!st->meta_keys[st->n_meta - 1] || !st->meta_values[st->n_meta - 1])
            return m2u_fail("%s: out of memory", path);
    }
    return 0;
}

/* Map files[shard], validate its header and append its tensors (in data order). */
static int load_file(m2u_safetensors *st, int shard) {
    const char *path = st->files[shard].path;
    m2u_mapping *m = &st->files[shard].map;
    if (m2u_map_file(path, m) != 0) return -1;
    size_t fsize = m->size;
    if (fsize < 8) return m2u_fail("%s: file is %zu bytes, too small for the 8-byte header length", path, fsize);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = (hn << 8) | m->data[i];
    if (hn > ST_MAX_HEADER)
        return m2u_fail("%s: header too large: %llu bytes, the limit is %llu", path, (unsigned long long)hn,
                        ST_MAX_HEADER);
    /* hn <= 1e8, so 8 + hn cannot overflow; compare without forming it anyway. */
    if (hn > fsize - 8)
        return m2u_fail("%s: invalid header length %llu: runs past the end of the %zu-byte file", path,
                        (unsigned long long)hn, fsize);
    const unsigned char *h = m->data + 8;
    if (hn == 0 || h[0] != '{') return m2u_fail("%s: header does not start with '{'", path);
    size_t bad = utf8_invalid_at(h, hn);
    if (bad != hn) return m2u_fail("%s: header is not valid UTF-8 (byte %zu)", path, bad);
    /* JSON allows raw control bytes nowhere but as whitespace; cJSON skips any byte <= 0x20 as
     * whitespace and takes them inside strings, so refuse them here as serde_json would. */
    for (size_t i = 0; i < hn; i++)
        if (h[i] < 0x20 && h[i] != '\t' && h[i] != '\n' && h[i] != '\r')
            return m2u_fail("%s: header is not valid JSON: raw control byte 0x%02x at offset %zu", path, h[i], i);

    char *text = malloc(hn + 1);
    if (!text) return m2u_fail("%s: out of memory for a %llu-byte header", path, (unsigned long long)hn);
    memcpy(text, h, hn);
    text[hn] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, hn, &end, 0);
    st_span *spans = NULL;
    int rc = -1;
    if (!root || !cJSON_IsObject(root)) {
        m2u_fail("%s: header is not valid JSON", path);
        goto done;
    }
    for (const char *p = end; p < text + hn; p++)
        if (*p != ' ') {
            m2u_fail("%s: header has trailing byte 0x%02x after the JSON object at offset %td (only spaces may "
                     "follow)",
                     path, (unsigned char)*p, p - text);
            goto done;
        }
    int oom;
    const char *dup = find_duplicate_key(root, &oom);
    if (oom || dup) {
        if (oom) m2u_fail("%s: out of memory", path);
        else m2u_fail("%s: duplicate key '%s' in header", path, dup);
        goto done;
    }
    int nt = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            if (parse_metadata(path, c, st, shard == 0) != 0) goto done;
        } else {
            nt++;
        }
    }
    spans = malloc((size_t)(nt ? nt : 1) * sizeof *spans);
    if (!spans) {
        m2u_fail("%s: out of memory", path);
        goto done;
    }
    int k = 0;
    for (const cJSON *c = root->child; c; c = c->next)
        if (strcmp(c->string, "__metadata__") != 0 && parse_entry(path, c, &spans[k++]) != 0) goto done;

    /* Rule 4: sorted by offsets the tensors tile the buffer exactly. */
    qsort(spans, (size_t)nt, sizeof *spans, cmp_span);
    uint64_t prev = 0;
    for (int i = 0; i < nt; i++) {
        const st_span *sp = &spans[i];
        if (sp->begin > prev) {
            m2u_fail("%s: tensor '%s': invalid offset: hole in the data buffer, bytes [%llu, %llu) belong to no "
                     "tensor",
                     path, sp->entry->string, (unsigned long long)prev, (unsigned long long)sp->begin);
            goto done;
        }
        if (sp->begin < prev) {
            m2u_fail("%s: tensor '%s': invalid offset: data_offsets [%llu, %llu] overlap the previous tensor, which "
                     "ends at %llu",
                     path, sp->entry->string, (unsigned long long)sp->begin, (unsigned long long)sp->end,
                     (unsigned long long)prev);
            goto done;
        }
        prev = sp->end;
    }
    /* Rule 6: nothing after the last tensor; prev <= 2^53 so the sum cannot overflow. */
    uint64_t buf_len = fsize - 8 - hn;
    if (prev > buf_len) {
        m2u_fail("%s: incomplete buffer: data_offsets end at %llu but the data buffer holds only %llu bytes "
                 "(file truncated?)",
                 path, (unsigned long long)prev, (unsigned long long)buf_len);
        goto done;
    }
    if (prev < buf_len) {
        m2u_fail("%s: %llu trailing bytes after the last tensor (data ends at %llu, buffer holds %llu)", path,
                 (unsigned long long)(buf_len - prev), (unsigned long long)prev, (unsigned long long)buf_len);
        goto done;
    }

    const unsigned char *buf = m->data + 8 + hn;
    for (int i = 0; i < nt; i++) {
        const st_span *sp = &spans[i];
        m2u_st_tensor t = {0};
        t.dtype = sp->dtype;
        t.ndim = sp->ndim;
        memcpy(t.shape, sp->shape, sizeof t.shape);
        t.numel = sp->numel;
        t.nbytes = (size_t)(sp->end - sp->begin);
        t.data = t.numel ? buf + sp->begin : NULL;
        t.shard = shard;
        t.name = strdup(sp->entry->string);
        if (!t.name || push_tensor(st, &t) != 0) {
            free((char *)t.name);
            m2u_fail("%s: out of memory", path);
            goto done;
        }
    }
    rc = 0;
done:
    free(spans);
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* ---------------------------------------------------------------- open / close */

static int cmp_tensor_ptr_name(const void *a, const void *b) {
    const m2u_st_tensor *x = *(const m2u_st_tensor *const *)a, *y = *(const m2u_st_tensor *const *)b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return (x->shard > y->shard) - (x->shard < y->shard);
}

static int build_index(m2u_safetensors *st) {
    st->by_name = malloc((size_t)(st->n ? st->n : 1) * sizeof *st->by_name);
    if (!st->by_name) return m2u_fail("%s: out of memory", st->files[0].path);
    for (int i = 0; i < st->n; i++) st->by_name[i] = &st->tensors[i];
    qsort(st->by_name, (size_t)st->n, sizeof *st->by_name, cmp_tensor_ptr_name);
    return 0;
}

static int add_file(m2u_safetensors *st, const char *path) {
    st_file *f = realloc(st->files, (size_t)(st->n_files + 1) * sizeof *f);
    if (!f) return m2u_fail("%s: out of memory", path);
    st->files = f;
    memset(&f[st->n_files], 0, sizeof *f);
    f[st->n_files].path = strdup(path);
    if (!f[st->n_files].path) return m2u_fail("%s: out of memory", path);
    st->n_files++;
    return 0;
}

typedef struct {
    const char *tensor;
    const char *file;
    int shard;
} wm_entry;

static int cmp_wm_tensor(const void *a, const void *b) {
    return strcmp(((const wm_entry *)a)->tensor, ((const wm_entry *)b)->tensor);
}
static int cmp_wm_file(const void *a, const void *b) {
    return strcmp(((const wm_entry *)a)->file, ((const wm_entry *)b)->file);
}
static int cmp_key_wm(const void *key, const void *elem) {
    return strcmp((const char *)key, ((const wm_entry *)elem)->tensor);
}

static int open_index(m2u_safetensors *st, const char *ipath) {
    char *text = NULL;
    size_t len;
    if (m2u_read_file(ipath, &text, &len) != 0) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    wm_entry *wm = NULL, *byfile = NULL;
    char *dir = NULL;
    int rc = -1, n = 0;
    if (!root || !cJSON_IsObject(root)) {
        m2u_fail("%s: not a JSON object", ipath);
        goto done;
    }
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) {
        m2u_fail("%s: weight_map is missing or not an object", ipath);
        goto done;
    }
    int oom;
    const char *dup = find_duplicate_key(map, &oom);
    if (oom || dup) {
        if (oom) m2u_fail("%s: out of memory", ipath);
        else m2u_fail("%s: weight_map lists tensor '%s' twice (a tensor in two shards)", ipath, dup);
        goto done;
    }
    n = cJSON_GetArraySize(map);
    if (n == 0) {
        m2u_fail("%s: weight_map is empty", ipath);
        goto done;
    }
    wm = malloc((size_t)n * sizeof *wm);
    byfile = malloc((size_t)n * sizeof *byfile);
    if (!wm || !byfile) {
        m2u_fail("%s: out of memory", ipath);
        goto done;
    }
    int k = 0;
    for (const cJSON *c = map->child; c; c = c->next, k++) {
        /* Shards are plain names beside the index: refusing '/' keeps a hostile index from
         * pointing the loader at arbitrary files. */
        if (!cJSON_IsString(c) || !c->valuestring[0] || strchr(c->valuestring, '/') ||
            strcmp(c->valuestring, "..") == 0 || strcmp(c->valuestring, ".") == 0) {
            m2u_fail("%s: weight_map['%s'] is not a shard file name", ipath, c->string);
            goto done;
        }
        wm[k] = (wm_entry){c->string, c->valuestring, -1};
    }
    memcpy(byfile, wm, (size_t)n * sizeof *wm);
    qsort(byfile, (size_t)n, sizeof *byfile, cmp_wm_file);
    const char *slash = strrchr(ipath, '/');
    dir = slash ? strndup(ipath, (size_t)(slash - ipath) + 1) : strdup(".");
    if (!dir) {
        m2u_fail("%s: out of memory", ipath);
        goto done;
    }
    /* Shards in name order (model-00001-of-..., model-00002-of-...). */
    for (int i = 0; i < n; i++) {
        if (i > 0 && strcmp(byfile[i].file, byfile[i - 1].file) == 0) continue;
        char *p = m2u_path_join(dir, byfile[i].file);
        if (!p) {
            m2u_fail("%s: out of memory", ipath);
            goto done;
        }
        int r = add_file(st, p);
        free(p);
        if (r != 0 || load_file(st, st->n_files - 1) != 0) goto done;
    }
    qsort(wm, (size_t)n, sizeof *wm, cmp_wm_tensor);
    for (int i = 0; i < n; i++) {
        const char *file = wm[i].file;
        for (int s = 0; s < st->n_files; s++) {
            const char *base = strrchr(st->files[s].path, '/');
            if (strcmp(base ? base + 1 : st->files[s].path, file) == 0) wm[i].shard = s;
        }
    }
    if (build_index(st) != 0) goto done;
    for (int i = 0; i < st->n; i++) {
        const m2u_st_tensor *t = st->by_name[i];
        if (i > 0 && strcmp(t->name, st->by_name[i - 1]->name) == 0) {
            m2u_fail("%s: tensor '%s' appears in two shards: %s and %s", ipath, t->name,
                     st->files[st->by_name[i - 1]->shard].path, st->files[t->shard].path);
            goto done;
        }
        const wm_entry *e = bsearch(t->name, wm, (size_t)n, sizeof *wm, cmp_key_wm);
        if (!e) {
            m2u_fail("%s: tensor '%s' is in shard %s but not in the index weight_map", ipath, t->name,
                     st->files[t->shard].path);
            goto done;
        }
        if (e->shard != t->shard) {
            m2u_fail("%s: tensor '%s' is in shard %s but weight_map names %s", ipath, t->name,
                     st->files[t->shard].path, e->file);
            goto done;
        }
    }
    for (int i = 0; i < n; i++)
        if (!m2u_st_find(st, wm[i].tensor)) {
            m2u_fail("%s: weight_map tensor '%s' is missing from shard %s", ipath, wm[i].tensor, wm[i].file);
            goto done;
        }
    rc = 0;
done:
    free(dir);
    free(wm);
    free(byfile);
    cJSON_Delete(root);
    free(text);
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* A torch.save archive (pytorch_model.bin, *.pth), read by the restricted reader
 * in torch_ckpt.c, behind the same interface. */
static int is_zip(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char m[4] = {0, 0, 0, 0};
    if (!f) return 0;
    size_t n = fread(m, 1, 4, f);
    fclose(f);
    return n == 4 && m[0] == 'P' && m[1] == 'K' && m[2] == 3 && m[3] == 4;
}

static int open_torch(m2u_safetensors *st, const char *path) {
    if (add_file(st, path) || m2u_torch_open(path, &st->torch)) return -1;
    for (int i = 0; i < m2u_torch_count(st->torch); i++) {
        m2u_st_tensor t = *m2u_torch_at(st->torch, i);
        t.name = strdup(t.name);
        if (!t.name || push_tensor(st, &t)) {
            free((char *)t.name);
            return m2u_fail("%s: out of memory", path);
        }
    }
    return build_index(st);
}

int m2u_st_open(const char *path, m2u_safetensors **out) {
    *out = NULL;
    m2u_safetensors *st = calloc(1, sizeof *st);
    if (!st) return m2u_fail("%s: out of memory", path);
    int rc;
    if (m2u_is_dir(path)) {
        char *ip = m2u_path_join(path, "model.safetensors.index.json");
        char *sp = m2u_path_join(path, "model.safetensors");
        char *bp = m2u_path_join(path, "pytorch_model.bin");
        if (!ip || !sp || !bp) rc = m2u_fail("%s: out of memory", path);
        else if (m2u_file_exists(ip)) rc = open_index(st, ip);
        else if (m2u_file_exists(sp)) rc = add_file(st, sp) || load_file(st, 0) || build_index(st) ? -1 : 0;
        else if (m2u_file_exists(bp)) rc = open_torch(st, bp);
        else
            rc = m2u_fail("%s: directory has none of model.safetensors.index.json, model.safetensors, "
                          "pytorch_model.bin",
                          path);
        free(ip);
        free(sp);
        free(bp);
    } else if (ends_with(path, ".json")) {
        rc = open_index(st, path);
    } else if (is_zip(path)) {
        rc = open_torch(st, path);
    } else {
        rc = add_file(st, path) || load_file(st, 0) || build_index(st) ? -1 : 0;
    }
    if (rc != 0) {
        m2u_st_close(st);
        return -1;
    }
    *out = st;
    return 0;
}

void m2u_st_close(m2u_safetensors *st) {
    if (!st) return;
    m2u_torch_close(st->torch);
    for (int i = 0; i < st->n; i++) free((char *)st->tensors[i].name);
    free(st->tensors);
    free(st->by_name);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_values[i]);
    }
    free(st->meta_keys);
    free(st->meta_values);
    for (int i = 0; i < st->n_files; i++) {
        m2u_unmap_file(&st->files[i].map);
        free(st->files[i].path);
    }
    free(st->files);
    free(st);
}

/* ---------------------------------------------------------------- queries */

int m2u_st_count(const m2u_safetensors *st) { return st->n; }

const m2u_st_tensor *m2u_st_at(const m2u_safetensors *st, int i) {
    return i >= 0 && i < st->n ? &st->tensors[i] : NULL;
}

static int cmp_key_tensor(const void *key, const void *elem) {
    return strcmp((const char *)key, (*(const m2u_st_tensor *const *)elem)->name);
}

const m2u_st_tensor *m2u_st_find(const m2u_safetensors *st, const char *name) {
    if (!st->by_name || st->n == 0) return NULL;
    const m2u_st_tensor *const *p = bsearch(name, st->by_name, (size_t)st->n, sizeof *st->by_name, cmp_key_tensor);
    return p ? *p : NULL;
}

const char *m2u_st_metadata(const m2u_safetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
    return NULL;
}

const char *m2u_st_path(const m2u_safetensors *st) { return st->n_files ? st->files[0].path : ""; }

const m2u_st_tensor *m2u_st_expect(const m2u_safetensors *st, const char *name, int ndim, const int64_t *shape) {
    const m2u_st_tensor *t = m2u_st_find(st, name);
    if (!t) {
        m2u_fail("%s: tensor '%s' not found", m2u_st_path(st), name);
        return NULL;
    }
    const char *file = st->files[t->shard].path;
    if (!is_float_dtype(t->dtype)) {
        m2u_fail("%s: tensor '%s': dtype %s is not a float type (F32/F16/BF16/F64)", file, name,
                 m2u_dtype_name(t->dtype));
        return NULL;
    }
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[256], want[256];
        fmt_shape(got, sizeof got, t->ndim, t->shape);
        fmt_shape(want, sizeof want, ndim < 0 ? 0 : ndim > M2U_ST_MAX_DIMS ? M2U_ST_MAX_DIMS : ndim, shape);
        m2u_fail("%s: tensor '%s': shape %s but expected %s", file, name, got, want);
        return NULL;
    }
    return t;
}

int m2u_st_read_f32(const m2u_st_tensor *t, float *dst, size_t n) {
    if ((int64_t)n != t->numel)
        return m2u_fail("tensor '%s': asked for %zu values but it holds %lld", t->name, n, (long long)t->numel);
    if (!is_float_dtype(t->dtype))
        return m2u_fail("tensor '%s': dtype %s is not a float type", t->name, m2u_dtype_name(t->dtype));
    if (n == 0) return 0; /* data is NULL for empty tensors */
    if (m2u_convert_to_f32(t->dtype, t->data, dst, n) != 0) return m2u_fail_prefix("tensor '%s'", t->name);
    return 0;
}

/* ---------------------------------------------------------------- writer */

static void sb_u64(m2u_strbuf *b, uint64_t v) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    m2u_sb_puts(b, tmp);
}
/* Position of each dtype in the reference's `enum Dtype` (declared in increasing
 * alignment).  The reference sorts by this enum, not by byte size, so among
 * equal-size types I64 precedes F64 and BF16 precedes F16; byte identity needs it. */
static int rust_dtype_rank(m2u_dtype t) {
    switch (t) {
    case M2U_BOOL: return 0;
    case M2U_U8: return 4;
    case M2U_I8: return 5;
    case M2U_I16: return 9;
    case M2U_F16: return 11;
    case M2U_BF16: return 12;
    case M2U_I32: return 13;
    case M2U_F32: return 15;
    case M2U_F64: return 17;
    case M2U_I64: return 18;
    default: return -1;
    }
}

typedef struct {
    const m2u_st_entry *e;
    uint64_t nbytes;
    int rank;
} wr_item;

static int cmp_wr_name(const void *a, const void *b) {
    return strcmp(((const wr_item *)a)->e->name, ((const wr_item *)b)->e->name);
}
static int cmp_wr_layout(const void *a, const void *b) {
    const wr_item *x = a, *y = b;
    if (x->rank != y->rank) return y->rank - x->rank; /* dtype descending */
    return strcmp(x->e->name, y->e->name);
}

static int valid_utf8_str(const char *s) {
    size_t n = strlen(s);
    return utf8_invalid_at((const unsigned char *)s, n) == n;
}

int m2u_st_write(const char *path, const m2u_st_entry *entries, int n, const char *const *meta_keys,
                 const char *const *meta_values, int n_meta) {
    if (n < 0 || n_meta < 0 || (n > 0 && !entries) || (n_meta > 0 && (!meta_keys || !meta_values)))
        return m2u_fail("%s: m2u_st_write: bad arguments", path);
    wr_item *items = malloc((size_t)(n ? n : 1) * sizeof *items);
    const char **mk = malloc((size_t)(n_meta + 1) * sizeof *mk);
    m2u_strbuf hb = {0};
    m2u_atomic_file af = {0};
    int rc = -1, opened = 0;
    if (!items || !mk) {
        m2u_fail("%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const m2u_st_entry *e = &entries[i];
        if (!e->name || !valid_utf8_str(e->name) || strcmp(e->name, "__metadata__") == 0) {
            m2u_fail("%s: entry %d: tensor name is missing, not UTF-8, or reserved", path, i);
            goto done;
        }
        if ((unsigned)e->dtype >= M2U_DTYPE_COUNT || rust_dtype_rank(e->dtype) < 0) {
            m2u_fail("%s: tensor '%s': invalid dtype %d", path, e->name, (int)e->dtype);
            goto done;
        }
        if (e->ndim < 0 || e->ndim > M2U_ST_MAX_DIMS) {
            m2u_fail("%s: tensor '%s': rank %d is outside 0..%d", path, e->name, e->ndim, M2U_ST_MAX_DIMS);
            goto done;
        }
        int64_t numel;
        if (checked_size(e->ndim, e->shape, e->dtype, &numel, &items[i].nbytes) != 0) {
            m2u_fail("%s: tensor '%s': negative dimension or element count overflow", path, e->name);
            goto done;
        }
        if (items[i].nbytes && !e->data) {
            m2u_fail("%s: tensor '%s': data is NULL", path, e->name);
            goto done;
        }
        items[i].e = e;
        items[i].rank = rust_dtype_rank(e->dtype);
    }
    qsort(items, (size_t)n, sizeof *items, cmp_wr_name);
    for (int i = 1; i < n; i++)
        if (strcmp(items[i - 1].e->name, items[i].e->name) == 0) {
            m2u_fail("%s: duplicate tensor name '%s'", path, items[i].e->name);
            goto done;
        }
    mk[0] = "format";
    for (int i = 0; i < n_meta; i++) {
        if (!meta_keys[i] || !meta_values[i] || !valid_utf8_str(meta_keys[i]) || !valid_utf8_str(meta_values[i])) {
            m2u_fail("%s: metadata pair %d is missing or not UTF-8", path, i);
            goto done;
        }
        mk[i + 1] = meta_keys[i];
    }
    qsort(mk, (size_t)n_meta + 1, sizeof *mk, cmp_str_ptr);
    for (int i = 1; i <= n_meta; i++)
        if (strcmp(mk[i - 1], mk[i]) == 0) {
            m2u_fail("%s: duplicate metadata key '%s'%s", path, mk[i],
                     strcmp(mk[i], "format") == 0 ? " (\"format\" is always written as \"pt\")" : "");
            goto done;
        }
    qsort(items, (size_t)n, sizeof *items, cmp_wr_layout);

    /* Header, serialised as serde_json does it for the reference: compact, __metadata__ first. */
    m2u_sb_puts(&hb, "{\"__metadata__\":{\"format\":\"pt\"");
    for (int i = 0; i < n_meta; i++) {
        m2u_sb_puts(&hb, ",");
        m2u_sb_json_str(&hb, meta_keys[i]);
        m2u_sb_puts(&hb, ":");
        m2u_sb_json_str(&hb, meta_values[i]);
    }
    m2u_sb_puts(&hb, "}");
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const m2u_st_entry *e = items[i].e;
        m2u_sb_puts(&hb, ",");
        m2u_sb_json_str(&hb, e->name);
        m2u_sb_puts(&hb, ":{\"dtype\":\"");
        m2u_sb_puts(&hb, m2u_dtype_name(e->dtype));
        m2u_sb_puts(&hb, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            if (d) m2u_sb_puts(&hb, ",");
            sb_u64(&hb, (uint64_t)e->shape[d]);
        }
        m2u_sb_puts(&hb, "],\"data_offsets\":[");
        sb_u64(&hb, off);
        m2u_sb_puts(&hb, ",");
        if (items[i].nbytes > ((uint64_t)1 << 62) - off) {
            m2u_fail("%s: total tensor size overflows", path);
            goto done;
        }
        off += items[i].nbytes;
        sb_u64(&hb, off);
        m2u_sb_puts(&hb, "]}");
    }
    m2u_sb_puts(&hb, "}");
    /* Pad with spaces so the data buffer starts 8-aligned ("Force alignment to 8 bytes"). */
    while (!hb.oom && hb.n % 8) m2u_sb_puts(&hb, " ");
    if (hb.oom) {
        m2u_fail("%s: out of memory building the header", path);
        goto done;
    }
    if (hb.n > ST_MAX_HEADER) {
        m2u_fail("%s: header of %zu bytes exceeds the %llu-byte limit", path, hb.n, ST_MAX_HEADER);
        goto done;
    }

    if (m2u_atomic_open(&af, path) != 0) goto done;
    opened = 1;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hb.n >> (8 * i));
    if (fwrite(len8, 1, 8, af.fp) != 8 || fwrite(hb.s, 1, hb.n, af.fp) != hb.n) {
        m2u_fail("%s: write failed", path);
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (items[i].nbytes && fwrite(items[i].e->data, 1, items[i].nbytes, af.fp) != items[i].nbytes) {
            m2u_fail("%s: write failed for tensor '%s'", path, items[i].e->name);
            goto done;
        }
    opened = 0;
    rc = m2u_atomic_commit(&af);
done:
    if (opened) m2u_atomic_abort(&af);
    free(hb.s);
    free(mk);
    free(items);
    return rc;
}
