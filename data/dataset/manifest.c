/* Dataset manifest and dataset reader; formats in manifest.h. */
#include "manifest.h"

#include "fileio.h"
#include "m2u_error.h"
#include "rng.h"
#include "sha256.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <xxhash.h>

#ifndef M2U_VERSION
#define M2U_VERSION "unknown"
#endif

#define DEFAULT_MAX_OPEN 16

/* ---------------------------------------------------------------- manifest */

void m2u_manifest_init(m2u_manifest *m) { memset(m, 0, sizeof *m); }

void m2u_manifest_shard_free(m2u_manifest_shard *s) {
    if (!s) return;
    free(s->path);
    s->path = NULL;
}

void m2u_manifest_free(m2u_manifest *m) {
    if (!m) return;
    for (int i = 0; i < m->n_shards; i++) m2u_manifest_shard_free(&m->shards[i]);
    free(m->shards);
    free(m->tool_version);
    free(m->created);
    cJSON_Delete(m->config);
    memset(m, 0, sizeof *m);
}

int m2u_manifest_set_config(m2u_manifest *m, const cJSON *config) {
    cJSON *copy = config ? cJSON_Duplicate(config, 1) : NULL;
    if (config && !copy) return m2u_fail("manifest: out of memory copying the config");
    cJSON_Delete(m->config);
    m->config = copy;
    return 0;
}

/* Shard paths stay inside the dataset folder so a manifest can be moved with it. */
static int check_rel_path(const char *where, const char *p) {
    if (!p || !p[0]) return m2u_fail("%s: empty shard path", where);
    if (p[0] == '/') return m2u_fail("%s: shard path '%s' is absolute (must be relative to the manifest)", where, p);
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') return m2u_fail("%s: shard path '%s' leaves the dataset folder", where, p);
        s += n;
        if (*s == '/') s++;
    }
    return 0;
}

static int is_hex(const char *s, size_t n) {
    if (strlen(s) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
    return 1;
}
static int is_hex64(const char *s) { return is_hex(s, 64); }

typedef struct {
    m2u_sha256 *sha;
    XXH3_state_t *xxh;
} hashes;

static void hash_block(void *ctx, const unsigned char *p, size_t n) {
    hashes *h = ctx;
    if (h->sha) m2u_sha256_update(h->sha, p, n);
    if (h->xxh) XXH3_128bits_update(h->xxh, p, n); /* fails only on a NULL state */
}

int m2u_hash_file(const char *path, char sha256[65], char xxh128[33]) {
    m2u_sha256 s;
    hashes h = {sha256 ? &s : NULL, xxh128 ? XXH3_createState() : NULL};
    if (xxh128 && (!h.xxh || XXH3_128bits_reset(h.xxh) != XXH_OK)) {
        XXH3_freeState(h.xxh);
        return m2u_fail("%s: out of memory hashing", path);
    }
    if (sha256) m2u_sha256_init(&s);
    int rc = m2u_read_blocks(path, hash_block, &h);
    if (rc == 0 && sha256) {
        unsigned char d[32];
        m2u_sha256_final(&s, d);
        m2u_hex(d, 32, sha256);
    }
    if (rc == 0 && xxh128) { /* the canonical (big-endian) form, as xxh128sum prints it */
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h.xxh));
        m2u_hex(c.digest, 16, xxh128);
    }
    XXH3_freeState(h.xxh);
    return rc;
}

int m2u_manifest_scan_shard(const char *dir, const char *rel_path, m2u_manifest_shard *out) {
    memset(out, 0, sizeof *out);
    if (check_rel_path(dir, rel_path) < 0) return -1;
    char *full = m2u_path_join(dir, rel_path);
    if (!full) return m2u_fail("%s: out of memory", rel_path);
    int rc = 0;
    struct stat st;
    m2u_shard_reader *r = NULL;
    if (stat(full, &st) != 0) rc = m2u_fail("%s: cannot stat: %s", full, strerror(errno));
    if (rc == 0) rc = m2u_shard_open(full, &r);
    if (rc == 0) {
        out->count = m2u_shard_count(r);
        out->bytes = (int64_t)st.st_size;
        m2u_shard_reader_close(r);
        rc = m2u_hash_file(full, out->sha256, out->xxh128);
    }
    if (rc == 0 && !(out->path = strdup(rel_path))) rc = m2u_fail("%s: out of memory", full);
    free(full);
    return rc;
}

int m2u_manifest_add(m2u_manifest *m, const m2u_manifest_shard *s) {
    if (check_rel_path("manifest", s->path) < 0) return -1;
    if (s->count < 0 || s->bytes < 0) return m2u_fail("manifest: shard %s has a negative count or size", s->path);
    if (!is_hex64(s->sha256)) return m2u_fail("manifest: shard %s has no valid sha256", s->path);
    if (s->xxh128[0] && !is_hex(s->xxh128, 32)) return m2u_fail("manifest: shard %s has an invalid xxh128", s->path);
    for (int i = 0; i < m->n_shards; i++)
        if (!strcmp(m->shards[i].path, s->path)) return m2u_fail("manifest: shard %s added twice", s->path);
    if (m->n_shards == m->cap) {
        int cap = m->cap ? m->cap * 2 : 16;
        m2u_manifest_shard *g = realloc(m->shards, (size_t)cap * sizeof *g);
        if (!g) return m2u_fail("manifest: out of memory");
        m->shards = g;
        m->cap = cap;
    }
    m2u_manifest_shard *d = &m->shards[m->n_shards];
    *d = *s;
    if (!(d->path = strdup(s->path))) return m2u_fail("manifest: out of memory");
    m->n_shards++;
    m->total += s->count;
    return 0;
}

static char *now_iso8601(void) {
    time_t t = time(NULL);
    struct tm tm;
    char buf[32];
    if (!gmtime_r(&t, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm)) return strdup("unknown");
    return strdup(buf);
}

int m2u_manifest_write(const char *path, m2u_manifest *m) {
    if (!m->tool_version && !(m->tool_version = strdup(M2U_VERSION))) return m2u_fail("%s: out of memory", path);
    if (!m->created && !(m->created = now_iso8601())) return m2u_fail("%s: out of memory", path);
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    cJSON *cfg = m->config ? cJSON_Duplicate(m->config, 1) : cJSON_CreateObject();
    int ok = root && arr && cfg;
    if (ok) {
        cJSON_AddStringToObject(root, "format", "m2u-dataset-manifest");
        cJSON_AddNumberToObject(root, "manifest_version", M2U_MANIFEST_VERSION);
        cJSON_AddStringToObject(root, "tool", "m2u");
        cJSON_AddStringToObject(root, "tool_version", m->tool_version);
        cJSON_AddStringToObject(root, "created", m->created);
        cJSON_AddNumberToObject(root, "shard_schema_version", M2U_SHARD_SCHEMA_VERSION);
        cJSON_AddNumberToObject(root, "total", (double)m->total);
        for (int i = 0; ok && i < m->n_shards; i++) {
            const m2u_manifest_shard *s = &m->shards[i];
            cJSON *o = cJSON_CreateObject();
            ok = o && cJSON_AddStringToObject(o, "path", s->path) && cJSON_AddNumberToObject(o, "count", (double)s->count) &&
                 cJSON_AddNumberToObject(o, "bytes", (double)s->bytes) && cJSON_AddStringToObject(o, "sha256", s->sha256) &&
                 (!s->xxh128[0] || cJSON_AddStringToObject(o, "xxh128", s->xxh128));
            if (o) cJSON_AddItemToArray(arr, o);
        }
    }
    char *text = NULL;
    if (ok) {
        cJSON_AddItemToObject(root, "shards", arr);
        arr = NULL;
        cJSON_AddItemToObject(root, "config", cfg);
        cfg = NULL;
        text = cJSON_Print(root);
    }
    cJSON_Delete(root);
    cJSON_Delete(arr);
    cJSON_Delete(cfg);
    if (!text) return m2u_fail("%s: out of memory building the manifest", path);
    size_t len = strlen(text);
    /* a trailing newline keeps `cat` and diff tools happy */
    char *withnl = malloc(len + 2);
    int rc;
    if (!withnl) {
        rc = m2u_fail("%s: out of memory", path);
    } else {
        memcpy(withnl, text, len);
        withnl[len] = '\n';
        rc = m2u_write_file_atomic(path, withnl, len + 1);
    }
    free(withnl);
    cJSON_free(text);
    return rc;
}

/* An integer-valued JSON number in [0, 2^53]. */
static int get_count(const char *path, const cJSON *o, const char *key, const char *where, int64_t *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(x)) return m2u_fail("%s: %s%s is missing or not a number", path, where, key);
    double d = x->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d))
        return m2u_fail("%s: %s%s = %g is not a count", path, where, key, d);
    *v = (int64_t)d;
    return 0;
}

static int get_string(const char *path, const cJSON *o, const char *key, const char *where, const char **v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(x) || !x->valuestring) return m2u_fail("%s: %s%s is missing or not a string", path, where, key);
    *v = x->valuestring;
    return 0;
}

static int parse_manifest(const char *path, const cJSON *root, m2u_manifest *m) {
    if (!cJSON_IsObject(root)) return m2u_fail("%s: not a JSON object", path);
    const char *fmt = NULL, *s = NULL;
    int64_t version, total;
    if (get_string(path, root, "format", "", &fmt) < 0) return -1;
    if (strcmp(fmt, "m2u-dataset-manifest") != 0) return m2u_fail("%s: format is '%s', not m2u-dataset-manifest", path, fmt);
    if (get_count(path, root, "manifest_version", "", &version) < 0) return -1;
    if (version != M2U_MANIFEST_VERSION)
        return m2u_fail("%s: manifest_version %lld, this reader knows %d", path, (long long)version, M2U_MANIFEST_VERSION);
    if (get_string(path, root, "tool_version", "", &s) < 0) return -1;
    if (!(m->tool_version = strdup(s))) return m2u_fail("%s: out of memory", path);
    if (get_string(path, root, "created", "", &s) < 0) return -1;
    if (!(m->created = strdup(s))) return m2u_fail("%s: out of memory", path);
    if (get_count(path, root, "total", "", &total) < 0) return -1;
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    if (cfg && !cJSON_IsObject(cfg)) return m2u_fail("%s: config is not an object", path);
    if (cfg && m2u_manifest_set_config(m, cfg) < 0) return -1;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "shards");
    if (!cJSON_IsArray(arr)) return m2u_fail("%s: shards is missing or not an array", path);
    int k = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        char where[48];
        snprintf(where, sizeof where, "shards[%d].", k);
        if (!cJSON_IsObject(it)) return m2u_fail("%s: shards[%d] is not an object", path, k);
        m2u_manifest_shard sh;
        memset(&sh, 0, sizeof sh);
        const char *p = NULL, *hex = NULL;
        if (get_string(path, it, "path", where, &p) < 0 || get_count(path, it, "count", where, &sh.count) < 0 ||
            get_count(path, it, "bytes", where, &sh.bytes) < 0 || get_string(path, it, "sha256", where, &hex) < 0)
            return -1;
        if (!is_hex64(hex)) return m2u_fail("%s: %ssha256 is not 64 lowercase hex digits", path, where);
        memcpy(sh.sha256, hex, 65);
        /* optional: manifests written before m2u recorded it have none (the sha256 is checked instead) */
        const cJSON *xx = cJSON_GetObjectItemCaseSensitive(it, "xxh128");
        if (xx && (!cJSON_IsString(xx) || !xx->valuestring || !is_hex(xx->valuestring, 32)))
            return m2u_fail("%s: %sxxh128 is not 32 lowercase hex digits", path, where);
        if (xx) memcpy(sh.xxh128, xx->valuestring, 33);
        sh.path = (char *)p; /* copied by m2u_manifest_add */
        if (m2u_manifest_add(m, &sh) < 0) return m2u_fail_prefix("%s: shards[%d]", path, k);
        k++;
    }
    if (m->total != total)
        return m2u_fail("%s: total is %lld but the shards hold %lld samples", path, (long long)total, (long long)m->total);
    return 0;
}

int m2u_manifest_read(const char *path, m2u_manifest *m) {
    m2u_manifest_init(m);
    char *text = NULL;
    size_t len = 0;
    if (m2u_read_file(path, &text, &len) < 0) return -1;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return m2u_fail("%s: not valid JSON", path);
    int rc = parse_manifest(path, root, m);
    cJSON_Delete(root);
    return rc;
}

/* ----------------------------------------------------------------- dataset */

struct m2u_dataset {
    char *manifest_path;
    char *dir;
    m2u_manifest man;
    int64_t *start;       /* n_shards+1 prefix sums of the shard counts */
    int64_t *sel;         /* view -> unfiltered global index; NULL = identity */
    int64_t n;            /* samples in the view */
    m2u_shard_reader **rd;/* per shard; NULL when closed */
    uint64_t *last_use;
    uint64_t tick;
    int n_open, max_open;
    int verify;           /* hash each shard on its first open */
    int verify_sha256;    /* check the sha256 even where the manifest has an xxh128 */
    unsigned char *verified; /* per shard: 1 once its hash matched */
};


void m2u_dataset_close(m2u_dataset *ds) {
    if (!ds) return;
    for (int s = 0; ds->rd && s < ds->man.n_shards; s++) m2u_shard_reader_close(ds->rd[s]);
    free(ds->rd);
    free(ds->last_use);
    free(ds->verified);
    free(ds->start);
    free(ds->sel);
    m2u_manifest_free(&ds->man);
    free(ds->dir);
    free(ds->manifest_path);
    free(ds);
}

int m2u_dataset_shard(m2u_dataset *ds, int s, m2u_shard_reader **out) {
    *out = NULL;
    if (s < 0 || s >= ds->man.n_shards) return m2u_fail("%s: shard %d out of range", ds->manifest_path, s);
    ds->last_use[s] = ++ds->tick;
    if (ds->rd[s]) {
        *out = ds->rd[s];
        return 0;
    }
    if (ds->n_open >= ds->max_open) { /* close the least recently used */
        int victim = -1;
        for (int k = 0; k < ds->man.n_shards; k++)
            if (ds->rd[k] && (victim < 0 || ds->last_use[k] < ds->last_use[victim])) victim = k;
        if (victim >= 0) {
            m2u_shard_reader_close(ds->rd[victim]);
            ds->rd[victim] = NULL;
            ds->n_open--;
        }
    }
    const m2u_manifest_shard *sh = &ds->man.shards[s];
    char *full = m2u_path_join(ds->dir, sh->path);
    if (!full) return m2u_fail("%s: out of memory", ds->manifest_path);
    m2u_shard_reader *r = NULL;
    int rc = 0;
    if (ds->verify && !ds->verified[s]) { /* before HDF5 parses a byte of it */
        rc = m2u_manifest_verify_shard(full, sh, ds->verify_sha256, ds->manifest_path, NULL);
        if (rc == 0) ds->verified[s] = 1;
    }
    if (rc == 0) rc = m2u_shard_open(full, &r);
    if (rc == 0 && m2u_shard_count(r) != sh->count) {
        rc = m2u_fail("%s: holds %lld samples but %s says %lld", full, (long long)m2u_shard_count(r), ds->manifest_path,
                      (long long)sh->count);
        m2u_shard_reader_close(r);
    }
    free(full);
    if (rc < 0) return -1;
    ds->rd[s] = r;
    ds->n_open++;
    *out = r;
    return 0;
}

int m2u_manifest_verify_shard(const char *full, const m2u_manifest_shard *sh, int sha256, const char *manifest_path,
                              char xxh128_out[33]) {
    int xxh = sh->xxh128[0] != 0 || xxh128_out, sha = sha256 || !sh->xxh128[0];
    char hs[65], hx[33];
    if (m2u_hash_file(full, sha ? hs : NULL, xxh ? hx : NULL) < 0) return -1;
    if (xxh128_out) memcpy(xxh128_out, hx, sizeof hx);
    const char *kind = NULL, *got = NULL, *want = NULL;
    if (sh->xxh128[0] && strcmp(hx, sh->xxh128)) kind = "xxh128", got = hx, want = sh->xxh128;
    else if (sha && strcmp(hs, sh->sha256)) kind = "sha256", got = hs, want = sh->sha256;
    if (!kind) return 0;
    return m2u_fail("%s: %s %s but %s records %s: the shard was damaged or replaced after it was written "
                    "(rebuild it; --no-verify, or train.verify: false for m2u-train, skips this check)",
                    full, kind, got, manifest_path, want);
}

/* Every shard exists with its recorded size: cheap, so done for all at open
 * (the hash is checked on each shard's first use, m2u_dataset_shard). */
static int check_shards(m2u_dataset *ds) {
    for (int s = 0; s < ds->man.n_shards; s++) {
        const m2u_manifest_shard *sh = &ds->man.shards[s];
        char *full = m2u_path_join(ds->dir, sh->path);
        if (!full) return m2u_fail("%s: out of memory", ds->manifest_path);
        struct stat st;
        int rc = 0;
        if (stat(full, &st) != 0)
            rc = m2u_fail("%s: shard %s listed in %s: %s", full, sh->path, ds->manifest_path, strerror(errno));
        else if ((int64_t)st.st_size != sh->bytes)
            rc = m2u_fail("%s: %lld bytes but %s records %lld (truncated or replaced?)", full, (long long)st.st_size,
                          ds->manifest_path, (long long)sh->bytes);
        free(full);
        if (rc < 0) return -1;
    }
    return 0;
}

/* Keep only the samples whose split column equals `split`. */
static int filter_split(m2u_dataset *ds, const char *split) {
    int64_t total = ds->start[ds->man.n_shards];
    ds->sel = malloc(((size_t)total + 1) * sizeof(int64_t));
    if (!ds->sel) return m2u_fail("%s: out of memory", ds->manifest_path);
    size_t want = strlen(split);
    int64_t k = 0;
    for (int s = 0; s < ds->man.n_shards; s++) {
        m2u_shard_reader *r;
        if (m2u_dataset_shard(ds, s, &r) < 0) return -1;
        char *bytes;
        const int64_t *off;
        if (m2u_shard_text_column(r, M2U_TEXT_SPLIT, &bytes, NULL, &off) < 0) return -1;
        for (int64_t i = 0; i < ds->man.shards[s].count; i++)
            if ((size_t)(off[i + 1] - off[i]) == want && !memcmp(bytes + off[i], split, want))
                ds->sel[k++] = ds->start[s] + i;
        free(bytes);
    }
    ds->n = k;
    return 0;
}

int m2u_dataset_open(const char *manifest_path, const m2u_dataset_options *opt, m2u_dataset **out) {
    *out = NULL;
    m2u_dataset_options none = {0};
    if (!opt) opt = &none;
    m2u_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return m2u_fail("%s: out of memory", manifest_path);
    if (!(ds->manifest_path = strdup(manifest_path)) || !(ds->dir = m2u_path_dirname(manifest_path))) {
        m2u_dataset_close(ds);
        return m2u_fail("%s: out of memory", manifest_path);
    }
    if (m2u_manifest_read(manifest_path, &ds->man) < 0 || check_shards(ds) < 0) {
        m2u_dataset_close(ds);
        return -1;
    }
    int ns = ds->man.n_shards;
    ds->max_open = opt->max_open_shards > 0 ? opt->max_open_shards : DEFAULT_MAX_OPEN;
    ds->start = malloc(((size_t)ns + 1) * sizeof(int64_t));
    ds->rd = calloc((size_t)ns + 1, sizeof *ds->rd);
    ds->last_use = calloc((size_t)ns + 1, sizeof *ds->last_use);
    ds->verified = calloc((size_t)ns + 1, 1);
    ds->verify = !opt->no_verify;
    ds->verify_sha256 = opt->verify_sha256;
    if (!ds->start || !ds->rd || !ds->last_use || !ds->verified) {
        m2u_dataset_close(ds);
        return m2u_fail("%s: out of memory", manifest_path);
    }
    ds->start[0] = 0;
    for (int s = 0; s < ns; s++) ds->start[s + 1] = ds->start[s] + ds->man.shards[s].count;
    ds->n = ds->start[ns];
    if (opt->split && opt->split[0] && filter_split(ds, opt->split) < 0) {
        m2u_dataset_close(ds);
        return -1;
    }
    *out = ds;
    return 0;
}

int64_t m2u_dataset_count(const m2u_dataset *ds) { return ds->n; }
const m2u_manifest *m2u_dataset_manifest(const m2u_dataset *ds) { return &ds->man; }

int m2u_dataset_locate(const m2u_dataset *ds, int64_t i, int *shard, int64_t *local) {
    if (i < 0 || i >= ds->n)
        return m2u_fail("%s: sample %lld out of range (%lld samples)", ds->manifest_path, (long long)i, (long long)ds->n);
    int64_t g = ds->sel ? ds->sel[i] : i;
    /* the last shard whose start <= g; empty shards share a start and are skipped */
    int lo = 0, hi = ds->man.n_shards - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (ds->start[mid] <= g) lo = mid;
        else hi = mid - 1;
    }
    *shard = lo;
    *local = g - ds->start[lo];
    return 0;
}

int m2u_dataset_get(m2u_dataset *ds, int64_t i, m2u_sample *out) {
    memset(out, 0, sizeof *out);
    int s;
    int64_t local;
    m2u_shard_reader *r;
    if (m2u_dataset_locate(ds, i, &s, &local) < 0 || m2u_dataset_shard(ds, s, &r) < 0) return -1;
    return m2u_shard_get_sample(r, local, out);
}

int m2u_dataset_get_tensor_f32(m2u_dataset *ds, int64_t i, const char *name, float *dst, size_t cap, int *present) {
    int s;
    int64_t local;
    m2u_shard_reader *r;
    if (m2u_dataset_locate(ds, i, &s, &local) < 0 || m2u_dataset_shard(ds, s, &r) < 0) return -1;
    int t = m2u_shard_tensor_index(r, name);
    if (t < 0) return m2u_fail("%s: no tensor column '%s'", m2u_shard_path(r), name);
    int p = m2u_shard_tensor_present(r, t, local);
    if (p < 0) return -1;
    if (present) *present = p;
    return m2u_shard_get_tensor_f32(r, t, local, dst, cap);
}

/* Uniform in [0, bound) without modulo bias (rejects the short top range). */
static uint64_t bounded(m2u_rng *g, uint64_t bound) {
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t x = m2u_rng_next(g);
        if (x >= threshold) return x % bound;
    }
}

int m2u_dataset_epoch_order(const m2u_dataset *ds, uint64_t seed, uint64_t epoch, int rank, int world,
                            int64_t **idx, int64_t *n) {
    *idx = NULL;
    *n = 0;
    if (world < 1 || rank < 0 || rank >= world)
        return m2u_fail("%s: rank %d / world %d is not a valid partition", ds->manifest_path, rank, world);
    if (ds->n < world)
        return m2u_fail("%s: %lld samples cannot be split over %d ranks", ds->manifest_path, (long long)ds->n, world);
    int64_t *perm = malloc((size_t)ds->n * sizeof(int64_t));
    if (!perm) return m2u_fail("%s: out of memory for the epoch order", ds->manifest_path);
    for (int64_t k = 0; k < ds->n; k++) perm[k] = k;
    /* One stream per (seed, epoch): the odd multiplier spreads consecutive
     * epochs apart before m2u_rng_seed's splitmix64 whitening. */
    m2u_rng g;
    m2u_rng_seed(&g, seed ^ ((epoch + 1) * UINT64_C(0x9E3779B97F4A7C15)));
    for (int64_t k = ds->n - 1; k > 0; k--) {
        int64_t j = (int64_t)bounded(&g, (uint64_t)k + 1);
        int64_t t = perm[k];
        perm[k] = perm[j];
        perm[j] = t;
    }
    int64_t per = ds->n / world;
    if (rank > 0 || per != ds->n) memmove(perm, perm + (int64_t)rank * per, (size_t)per * sizeof(int64_t));
    int64_t *shrunk = realloc(perm, (size_t)per * sizeof(int64_t));
    *idx = shrunk ? shrunk : perm;
    *n = per;
    return 0;
}
