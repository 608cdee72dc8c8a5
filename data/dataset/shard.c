/* HDF5 shard writer and reader; the schema is documented in shard.h. */
#include "shard.h"

#include "fileio.h"

#include "m2u_error.h"
#include "zstd_filter.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zstd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#ifndef M2U_VERSION
#define M2U_VERSION "unknown"
#endif

/* Chunk sizes, in elements.  Text chunks are small because a trainer reads
 * samples in random order and every access decompresses whole chunks of each
 * of the 12 text columns; audio chunks hold a few seconds so that one clip
 * touches two or three chunks (research §2.4). */
#define TEXT_CHUNK ((hsize_t)1 << 16)  /* 64 KiB of UTF-8 */
#define AUDIO_CHUNK ((hsize_t)1 << 17) /* 256 KiB of int16 */
#define ROW_CHUNK ((hsize_t)8192)      /* offsets, clip times, presence flags */
#define ATTR_CHUNK_BYTES ((hsize_t)1 << 16)
/* Reader chunk caches (bytes per open dataset): a few chunks each, so a
 * sequential scan decompresses every chunk once.  They serve the columns read
 * through HDF5; the direct chunk reads keep DCHUNK_SLOTS chunks of their own. */
#define TEXT_CACHE ((size_t)4 * TEXT_CHUNK)
#define AUDIO_CACHE ((size_t)16 * AUDIO_CHUNK * 2)
#define CACHE_SLOTS 521 /* prime, well above the chunks that fit */

static const char *const TEXT_NAMES[M2U_TEXT_COUNT] = {
    "id",      "source",      "licence", "attribution", "split",       "kind",
    "caption", "instruction", "answer",  "input_text",  "output_text", "analysis",
};
static const char *const SPLITS[] = {"", "train", "valid", "test"};
static const char *const KINDS[] = {"", "mucaps", "musicqa", "muedit", "muimage", "muvideo"};

const char *m2u_text_col_name(m2u_text_col c) {
    return (int)c >= 0 && c < M2U_TEXT_COUNT ? TEXT_NAMES[c] : NULL;
}

/* ---------------------------------------------------------------- HDF5 glue */

/* HDF5 prints its error stack to stderr by default; library code must not
 * print, so every public entry point that calls HDF5 turns that off for its
 * duration (the setting is per thread in the thread-safe build Debian ships). */
typedef struct {
    H5E_auto2_t func;
    void *data;
} quiet_t;
static void quiet_on(quiet_t *q) {
    q->func = NULL;
    q->data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}
static void quiet_off(const quiet_t *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

/* The most specific description on HDF5's error stack (e.g. "truncated file:
 * eof = ..." or "required filter 'zstd' is not registered"). */
static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *client) {
    char *buf = client;
    if (n == 0 && e->desc) snprintf(buf, 256, "%s", e->desc);
    return 0;
}

/* m2u_fail with the HDF5 detail appended; call it before any cleanup call. */
M2U_PRINTF(1, 2) static int h5fail(const char *fmt, ...) {
    char msg[768], detail[256] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, detail);
    if (detail[0]) return m2u_fail("%s (HDF5: %s)", msg, detail);
    return m2u_fail("%s", msg);
}

static void close_dset(hid_t *h) {
    if (*h >= 0) H5Dclose(*h);
    *h = H5I_INVALID_HID;
}

/* IEEE half precision as h5py defines it ('<f2'); HDF5 1.10 has no predefined one. */
static hid_t make_f16_type(hid_t base) {
    hid_t t = H5Tcopy(base);
    if (t < 0) return t;
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0) {
        H5Tclose(t);
        return H5I_INVALID_HID;
    }
    return t;
}



static int in_list(const char *s, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, list[i])) return 1;
    return 0;
}

static int valid_name(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= 56) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    }
    return !(n >= 8 && !strcmp(s + n - 8, "_present"));
}

/* ------------------------------------------------------------------ writer */

/* A variable-length column: concatenated data staged one chunk at a time so
 * every HDF5 write covers exactly one whole chunk (no read-modify-write of a
 * compressed chunk), plus its offsets kept in memory until close. */
typedef struct {
    hid_t dset, off_dset;
    hid_t mem_type;
    size_t elem;
    hsize_t chunk;
    unsigned char *stage;
    hsize_t staged;
    hsize_t written;
    int64_t *off; /* n+1 entries */
} flat_col;

typedef struct {
    char *name, *encoder, *config_hash;
    m2u_dtype dtype;
    int rank;
    hsize_t dims[M2U_SHARD_MAX_RANK];
    size_t numel;
    hid_t dset, present_dset;
    uint8_t *present;
} wtensor;

struct m2u_shard_writer {
    char *path, *tmp_path;
    hid_t file;
    hid_t f16_file, f16_mem;
    int audio_rate, has_target, level, shuffle;
    int n_attrs;
    char **attr_names;
    int n_tensors;
    wtensor tens[M2U_SHARD_MAX_TENSORS];
    flat_col text[M2U_TEXT_COUNT];
    flat_col audio, target;
    hid_t clip_start_d, clip_end_d, attrs_d;
    double *clip_start, *clip_end;
    float *attrs;
    uint16_t *f16_scratch;
    size_t f16_scratch_n;
    int64_t n, cap;
    int failed; /* an HDF5 write failed mid-sample: the file is inconsistent */
};

static void flat_init(flat_col *c) {
    memset(c, 0, sizeof *c);
    c->dset = c->off_dset = H5I_INVALID_HID;
}

static void flat_free(flat_col *c) {
    close_dset(&c->dset);
    close_dset(&c->off_dset);
    free(c->stage);
    free(c->off);
    c->stage = NULL;
    c->off = NULL;
}

/* Close the file of a shard that is given up (its temp file is removed next).
 * Its bytes are released first (truncated to 0), so that the flush H5Fclose
 * does finds space on a full disk.  This matters because libhdf5 1.10 cannot
 * recover from a failed flush: the metadata cache stays half switched
 * ("slist already enabled?"), every later flush or close of that file fails,
 * and its atexit handler then crashes closing the half-closed file id
 * (SIGSEGV in H5F__close_cb) -- a full disk used to end the process that way.
 * A failed raw-data write (H5Dwrite) does not poison the file, so a shard
 * whose append failed is closed cleanly here; the final flush of a finished
 * shard is protected by check_space_to_finish(). */
static void discard_file(m2u_shard_writer *w) {
    if (w->tmp_path && truncate(w->tmp_path, 0) != 0) {
        /* nothing to release (already gone): the close below still runs */
    }
    H5Fclose(w->file);
    w->file = H5I_INVALID_HID;
}

/* Free space the final flush of a shard may need: its metadata (object
 * headers, chunk indexes; raw data goes straight to disk, the writer keeps no
 * chunk cache) is a small fraction of the file.  Generous on purpose: a flush
 * that fails cannot be recovered (see discard_file), so a disk this close to
 * full is refused before it. */
static int check_space_to_finish(m2u_shard_writer *w) {
    struct stat st;
    struct statvfs vs;
    char *dir = m2u_path_dirname(w->tmp_path);
    int rc = 0;
    if (dir && stat(w->tmp_path, &st) == 0 && statvfs(dir, &vs) == 0) {
        unsigned long long avail = (unsigned long long)vs.f_bavail * vs.f_frsize;
        unsigned long long need = (4ull << 20) + (unsigned long long)st.st_size / 64;
        if (avail < need)
            rc = m2u_fail("%s: the disk is full: %llu bytes free in %s, finishing the shard needs about %llu; "
                          "shard not written",
                          w->path, avail, dir, need);
    }
    free(dir);
    return rc;
}

static void writer_free(m2u_shard_writer *w, int remove_tmp) {
    for (int t = 0; t < M2U_TEXT_COUNT; t++) flat_free(&w->text[t]);
    flat_free(&w->audio);
    flat_free(&w->target);
    close_dset(&w->clip_start_d);
    close_dset(&w->clip_end_d);
    close_dset(&w->attrs_d);
    for (int t = 0; t < w->n_tensors; t++) {
        close_dset(&w->tens[t].dset);
        close_dset(&w->tens[t].present_dset);
        free(w->tens[t].name);
        free(w->tens[t].encoder);
        free(w->tens[t].config_hash);
        free(w->tens[t].present);
    }
    if (w->f16_file >= 0) H5Tclose(w->f16_file);
    if (w->f16_mem >= 0) H5Tclose(w->f16_mem);
    if (w->file >= 0) discard_file(w);
    if (remove_tmp && w->tmp_path) unlink(w->tmp_path);
    for (int k = 0; k < w->n_attrs; k++) free(w->attr_names ? w->attr_names[k] : NULL);
    free(w->attr_names);
    free(w->clip_start);
    free(w->clip_end);
    free(w->attrs);
    free(w->f16_scratch);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

/* A chunked, zstd-compressed dataset whose first axis starts at 0 and grows. */
static hid_t create_dset(m2u_shard_writer *w, hid_t loc, const char *name, hid_t ftype, int rank,
                         const hsize_t *inner_dims, const hsize_t *chunk, int numeric) {
    hsize_t dims[M2U_SHARD_MAX_RANK + 1], maxdims[M2U_SHARD_MAX_RANK + 1];
    dims[0] = 0;
    maxdims[0] = H5S_UNLIMITED;
    for (int d = 1; d < rank; d++) dims[d] = maxdims[d] = inner_dims[d - 1];
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    unsigned level = (unsigned)w->level;
    hid_t d = H5I_INVALID_HID;
    /* Writes always cover whole chunks, so no write cache (chunks go straight to disk). */
    if (space >= 0 && dcpl >= 0 && dapl >= 0 && H5Pset_chunk(dcpl, rank, chunk) >= 0 &&
        H5Pset_obj_track_times(dcpl, 0) >= 0 && (!(numeric && w->shuffle) || H5Pset_shuffle(dcpl) >= 0) &&
        H5Pset_filter(dcpl, M2U_ZSTD_FILTER_ID, H5Z_FLAG_MANDATORY, 1, &level) >= 0 &&
        H5Pset_chunk_cache(dapl, CACHE_SLOTS, 0, 1.0) >= 0)
        d = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, dcpl, dapl);
    if (d < 0) h5fail("%s: cannot create dataset %s", w->path, name);
    if (space >= 0) H5Sclose(space);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (dapl >= 0) H5Pclose(dapl);
    return d;
}

static int write_attr(hid_t loc, const char *name, hid_t type, const void *v) {
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a = space >= 0 ? H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int rc = (a >= 0 && H5Awrite(a, type, v) >= 0) ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    if (space >= 0) H5Sclose(space);
    return rc;
}

static hid_t vlen_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)) {
        H5Tclose(t);
        t = H5I_INVALID_HID;
    }
    return t;
}

/* Strings as variable-length UTF-8 attributes: h5py returns them as str. */
static int write_str_attr(hid_t loc, const char *name, const char *s) {
    hid_t t = vlen_str_type();
    if (t < 0) return -1;
    const char *v = s ? s : "";
    int rc = write_attr(loc, name, t, &v);
    H5Tclose(t);
    return rc;
}

static int write_str_array_attr(hid_t loc, const char *name, char **v, int n) {
    hid_t t = vlen_str_type();
    hsize_t dims = (hsize_t)n;
    hid_t space = H5Screate_simple(1, &dims, NULL);
    hid_t a = t >= 0 && space >= 0 ? H5Acreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int rc = (a >= 0 && H5Awrite(a, t, v) >= 0) ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    if (space >= 0) H5Sclose(space);
    if (t >= 0) H5Tclose(t);
    return rc;
}

static int flat_create(m2u_shard_writer *w, flat_col *c, hid_t loc, const char *name, hid_t ftype, hid_t mtype,
                       size_t elem, hsize_t chunk, int numeric) {
    c->mem_type = mtype;
    c->elem = elem;
    c->chunk = chunk;
    c->stage = malloc((size_t)chunk * elem);
    c->off = malloc(sizeof(int64_t) * 64);
    if (!c->stage || !c->off) return m2u_fail("%s: out of memory", w->path);
    c->off[0] = 0;
    c->dset = create_dset(w, loc, name, ftype, 1, NULL, &chunk, numeric);
    if (c->dset < 0) return -1;
    char oname[96];
    snprintf(oname, sizeof oname, "%s_offsets", name);
    hsize_t ochunk = ROW_CHUNK;
    c->off_dset = create_dset(w, loc, oname, H5T_STD_I64LE, 1, NULL, &ochunk, 1);
    return c->off_dset < 0 ? -1 : 0;
}

/* Write rows [start, start+count) of a 1-D (or [N, ...]) dataset after growing it to `extent` rows. */
static int write_rows(hid_t d, hid_t mtype, int rank, const hsize_t *inner, hsize_t extent, hsize_t start,
                      hsize_t count, const void *buf) {
    hsize_t ext[M2U_SHARD_MAX_RANK + 1], off[M2U_SHARD_MAX_RANK + 1], cnt[M2U_SHARD_MAX_RANK + 1];
    ext[0] = extent;
    off[0] = start;
    cnt[0] = count;
    for (int k = 1; k < rank; k++) {
        ext[k] = cnt[k] = inner[k - 1];
        off[k] = 0;
    }
    if (H5Dset_extent(d, ext) < 0) return -1;
    if (count == 0) return 0;
    hid_t fs = H5Dget_space(d);
    hid_t ms = H5Screate_simple(rank, cnt, NULL);
    int rc = -1;
    if (fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL) >= 0 &&
        H5Dwrite(d, mtype, ms, fs, H5P_DEFAULT, buf) >= 0)
        rc = 0;
    if (fs >= 0) H5Sclose(fs);
    if (ms >= 0) H5Sclose(ms);
    return rc;
}

static int flat_flush(m2u_shard_writer *w, flat_col *c, const char *label) {
    if (c->staged == 0) return 0;
    if (write_rows(c->dset, c->mem_type, 1, NULL, c->written + c->staged, c->written, c->staged, c->stage) < 0)
        return h5fail("%s: writing column %s", w->tmp_path, label);
    c->written += c->staged;
    c->staged = 0;
    return 0;
}

static int flat_append(m2u_shard_writer *w, flat_col *c, const void *data, size_t count, const char *label) {
    const unsigned char *p = data;
    while (count > 0) {
        size_t take = (size_t)(c->chunk - c->staged);
        if (take > count) take = count;
        memcpy(c->stage + (size_t)c->staged * c->elem, p, take * c->elem);
        c->staged += take;
        p += take * c->elem;
        count -= take;
        if (c->staged == c->chunk && flat_flush(w, c, label) < 0) return -1;
    }
    return 0;
}

static int copy_spec(m2u_shard_writer *w, const m2u_shard_spec *spec) {
    const char *p = w->path;
    if (spec->audio_rate < 0) return m2u_fail("%s: negative audio_rate %d", p, spec->audio_rate);
    if (spec->target_audio && spec->audio_rate <= 0)
        return m2u_fail("%s: target_audio needs audio_rate > 0", p);
    if (spec->n_attrs < 0 || spec->n_attrs > M2U_SHARD_MAX_ATTRS)
        return m2u_fail("%s: n_attrs %d out of range 0..%d", p, spec->n_attrs, M2U_SHARD_MAX_ATTRS);
    if (spec->n_attrs > 0 && !spec->attr_names) return m2u_fail("%s: n_attrs > 0 but no attr_names", p);
    if (spec->n_tensors < 0 || spec->n_tensors > M2U_SHARD_MAX_TENSORS)
        return m2u_fail("%s: n_tensors %d out of range 0..%d", p, spec->n_tensors, M2U_SHARD_MAX_TENSORS);
    if (spec->n_tensors > 0 && !spec->tensors) return m2u_fail("%s: n_tensors > 0 but no tensors", p);
    if (spec->zstd_level < -131072 || spec->zstd_level > 22)
        return m2u_fail("%s: zstd level %d out of range", p, spec->zstd_level);
    w->audio_rate = spec->audio_rate;
    w->has_target = spec->target_audio != 0;
    w->level = spec->zstd_level ? spec->zstd_level : M2U_ZSTD_DEFAULT_LEVEL;
    w->shuffle = spec->shuffle != 0;
    if (spec->n_attrs > 0) {
        w->attr_names = calloc((size_t)spec->n_attrs, sizeof(char *));
        if (!w->attr_names) return m2u_fail("%s: out of memory", p);
        w->n_attrs = spec->n_attrs;
        for (int k = 0; k < spec->n_attrs; k++) {
            const char *a = spec->attr_names[k];
            if (!a || !a[0]) return m2u_fail("%s: attribute %d has no name", p, k);
            for (int j = 0; j < k; j++)
                if (!strcmp(a, spec->attr_names[j])) return m2u_fail("%s: attribute name '%s' repeated", p, a);
            if (!(w->attr_names[k] = strdup(a))) return m2u_fail("%s: out of memory", p);
        }
    }
    for (int t = 0; t < spec->n_tensors; t++) {
        const m2u_shard_tensor_spec *s = &spec->tensors[t];
        wtensor *x = &w->tens[t];
        x->dset = x->present_dset = H5I_INVALID_HID;
        w->n_tensors = t + 1;
        if (!valid_name(s->name))
            return m2u_fail("%s: tensor column name '%s' is not [A-Za-z0-9_]{1,55} (nor may it end in _present)", p,
                            s->name ? s->name : "(null)");
        for (int j = 0; j < t; j++)
            if (!strcmp(s->name, spec->tensors[j].name))
                return m2u_fail("%s: tensor column '%s' repeated", p, s->name);
        if (s->dtype != M2U_F16 && s->dtype != M2U_U8)
            return m2u_fail("%s: tensor column '%s': dtype must be F16 or U8", p, s->name);
        if (s->rank < 1 || s->rank > M2U_SHARD_MAX_RANK)
            return m2u_fail("%s: tensor column '%s': rank %d out of range 1..%d", p, s->name, s->rank,
                            M2U_SHARD_MAX_RANK);
        size_t numel = 1;
        for (int d = 0; d < s->rank; d++) {
            if (s->dims[d] <= 0) return m2u_fail("%s: tensor column '%s': dim %d is %lld", p, s->name, d,
                                                 (long long)s->dims[d]);
            x->dims[d] = (hsize_t)s->dims[d];
            numel *= (size_t)s->dims[d];
            /* One sample is one chunk, and HDF5 chunks are limited to 4 GiB. */
            if (numel > ((size_t)1 << 31)) return m2u_fail("%s: tensor column '%s': a sample exceeds 2 GiB", p, s->name);
        }
        x->numel = numel;
        x->dtype = s->dtype;
        x->rank = s->rank;
        x->name = strdup(s->name);
        x->encoder = strdup(s->encoder ? s->encoder : "");
        x->config_hash = strdup(s->config_hash ? s->config_hash : "");
        if (!x->name || !x->encoder || !x->config_hash) return m2u_fail("%s: out of memory", p);
        if (s->dtype == M2U_F16 && numel > w->f16_scratch_n) w->f16_scratch_n = numel;
    }
    if (w->f16_scratch_n && !(w->f16_scratch = malloc(w->f16_scratch_n * sizeof(uint16_t))))
        return m2u_fail("%s: out of memory", p);
    return 0;
}

static int create_layout(m2u_shard_writer *w) {
    hid_t root = w->file;
    int32_t schema = M2U_SHARD_SCHEMA_VERSION, rate = w->audio_rate, level = w->level;
    int64_t zero = 0;
    if (write_attr(root, "schema_version", H5T_STD_I32LE, &schema) < 0 ||
        write_str_attr(root, "m2u_version", M2U_VERSION) < 0 ||
        write_attr(root, "n_samples", H5T_STD_I64LE, &zero) < 0 ||
        write_attr(root, "audio_rate", H5T_STD_I32LE, &rate) < 0 ||
        write_attr(root, "zstd_level", H5T_STD_I32LE, &level) < 0)
        return h5fail("%s: cannot write root attributes", w->tmp_path);

    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    if (gcpl < 0 || H5Pset_obj_track_times(gcpl, 0) < 0) {
        if (gcpl >= 0) H5Pclose(gcpl);
        return h5fail("%s: cannot make group properties", w->tmp_path);
    }
    int rc = 0;
    hid_t g = H5Gcreate2(root, "text", H5P_DEFAULT, gcpl, H5P_DEFAULT);
    if (g < 0) rc = h5fail("%s: cannot create group text", w->tmp_path);
    for (int t = 0; rc == 0 && t < M2U_TEXT_COUNT; t++)
        rc = flat_create(w, &w->text[t], g, TEXT_NAMES[t], H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, TEXT_CHUNK, 0);
    if (g >= 0) H5Gclose(g);
    if (rc == 0 && w->audio_rate > 0) {
        rc = flat_create(w, &w->audio, root, "audio", H5T_STD_I16LE, H5T_NATIVE_INT16, 2, AUDIO_CHUNK, 1);
        if (rc == 0 && write_attr(w->audio.dset, "rate", H5T_STD_I32LE, &rate) < 0)
            rc = h5fail("%s: cannot write audio rate", w->tmp_path);
        if (rc == 0 && w->has_target) {
            rc = flat_create(w, &w->target, root, "target_audio", H5T_STD_I16LE, H5T_NATIVE_INT16, 2, AUDIO_CHUNK, 1);
            if (rc == 0 && write_attr(w->target.dset, "rate", H5T_STD_I32LE, &rate) < 0)
                rc = h5fail("%s: cannot write target audio rate", w->tmp_path);
        }
    }
    hsize_t rows = ROW_CHUNK;
    if (rc == 0) {
        w->clip_start_d = create_dset(w, root, "clip_start", H5T_IEEE_F64LE, 1, NULL, &rows, 1);
        w->clip_end_d = create_dset(w, root, "clip_end", H5T_IEEE_F64LE, 1, NULL, &rows, 1);
        if (w->clip_start_d < 0 || w->clip_end_d < 0) rc = -1;
    }
    if (rc == 0 && w->n_attrs > 0) {
        hsize_t k = (hsize_t)w->n_attrs;
        hsize_t ch[2] = {ATTR_CHUNK_BYTES / (4 * k) ? ATTR_CHUNK_BYTES / (4 * k) : 1, k};
        w->attrs_d = create_dset(w, root, "attrs", H5T_IEEE_F32LE, 2, &k, ch, 1);
        if (w->attrs_d < 0) rc = -1;
        else if (write_str_array_attr(w->attrs_d, "attr_names", w->attr_names, w->n_attrs) < 0)
            rc = h5fail("%s: cannot write attr_names", w->tmp_path);
    }
    hid_t gf = H5I_INVALID_HID, gm = H5I_INVALID_HID;
    for (int t = 0; rc == 0 && t < w->n_tensors; t++) {
        wtensor *x = &w->tens[t];
        hid_t *gp = x->dtype == M2U_F16 ? &gf : &gm;
        if (*gp < 0) {
            *gp = H5Gcreate2(root, x->dtype == M2U_F16 ? "features" : "media", H5P_DEFAULT, gcpl, H5P_DEFAULT);
            if (*gp < 0) {
                rc = h5fail("%s: cannot create tensor group", w->tmp_path);
                break;
            }
        }
        hsize_t chunk[M2U_SHARD_MAX_RANK + 1];
        chunk[0] = 1;
        for (int d = 0; d < x->rank; d++) chunk[d + 1] = x->dims[d];
        x->dset = create_dset(w, *gp, x->name, x->dtype == M2U_F16 ? w->f16_file : H5T_STD_U8LE, x->rank + 1,
                              x->dims, chunk, x->dtype == M2U_F16);
        if (x->dset < 0) {
            rc = -1;
            break;
        }
        char pname[96];
        snprintf(pname, sizeof pname, "%s_present", x->name);
        x->present_dset = create_dset(w, *gp, pname, H5T_STD_U8LE, 1, NULL, &rows, 0);
        if (x->present_dset < 0) rc = -1;
        else if (write_str_attr(x->dset, "encoder", x->encoder) < 0 ||
                 write_str_attr(x->dset, "config_hash", x->config_hash) < 0)
            rc = h5fail("%s: cannot write attributes of tensor %s", w->tmp_path, x->name);
    }
    if (gf >= 0) H5Gclose(gf);
    if (gm >= 0) H5Gclose(gm);
    H5Pclose(gcpl);
    return rc;
}

static int shard_create(const char *path, const m2u_shard_spec *spec, m2u_shard_writer **out) {
    *out = NULL;
    if (!path || !spec) return m2u_fail("m2u_shard_create: NULL path or spec");
    m2u_shard_writer *w = calloc(1, sizeof *w);
    if (!w) return m2u_fail("%s: out of memory", path);
    w->file = w->f16_file = w->f16_mem = H5I_INVALID_HID;
    w->clip_start_d = w->clip_end_d = w->attrs_d = H5I_INVALID_HID;
    for (int t = 0; t < M2U_TEXT_COUNT; t++) flat_init(&w->text[t]);
    flat_init(&w->audio);
    flat_init(&w->target);
    size_t n = strlen(path) + 32;
    w->path = strdup(path);
    w->tmp_path = malloc(n);
    if (!w->path || !w->tmp_path) {
        writer_free(w, 0);
        return m2u_fail("%s: out of memory", path);
    }
    snprintf(w->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    if (copy_spec(w, spec) < 0 || m2u_zstd_filter_register() < 0) {
        writer_free(w, 0);
        return -1;
    }
    w->f16_file = make_f16_type(H5T_IEEE_F32LE);
    w->f16_mem = make_f16_type(H5T_NATIVE_FLOAT);
    if (w->f16_file < 0 || w->f16_mem < 0) {
        h5fail("%s: cannot make the float16 type", path);
        writer_free(w, 0);
        return -1;
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    /* v1.8 object headers and attribute storage at least (readers from 1.8 on);
     * file locking that degrades gracefully on filesystems without it. */
    if (fapl >= 0 && fcpl >= 0 && H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V110) >= 0 &&
        H5Pset_file_locking(fapl, 1, 1) >= 0 && H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0 &&
        H5Pset_obj_track_times(fcpl, 0) >= 0)
        w->file = H5Fcreate(w->tmp_path, H5F_ACC_TRUNC, fcpl, fapl);
    if (w->file < 0) h5fail("%s: cannot create %s", path, w->tmp_path);
    if (fapl >= 0) H5Pclose(fapl);
    if (fcpl >= 0) H5Pclose(fcpl);
    if (w->file < 0 || create_layout(w) < 0) {
        writer_free(w, 1);
        return -1;
    }
    *out = w;
    return 0;
}

int m2u_shard_create(const char *path, const m2u_shard_spec *spec, m2u_shard_writer **out) {
    quiet_t q;
    quiet_on(&q);
    int rc = shard_create(path, spec, out);
    quiet_off(&q);
    return rc;
}

static int grow(m2u_shard_writer *w) {
    if (w->n + 2 <= w->cap) return 0;
    int64_t cap = w->cap ? w->cap * 2 : 64;
    size_t c = (size_t)cap;
    double *cs = realloc(w->clip_start, c * sizeof(double));
    if (cs) w->clip_start = cs;
    double *ce = realloc(w->clip_end, c * sizeof(double));
    if (ce) w->clip_end = ce;
    if (!cs || !ce) return m2u_fail("%s: out of memory", w->path);
    if (w->n_attrs) {
        float *a = realloc(w->attrs, c * (size_t)w->n_attrs * sizeof(float));
        if (!a) return m2u_fail("%s: out of memory", w->path);
        w->attrs = a;
    }
    flat_col *cols[M2U_TEXT_COUNT + 2];
    int nc = 0;
    for (int t = 0; t < M2U_TEXT_COUNT; t++) cols[nc++] = &w->text[t];
    if (w->audio.off) cols[nc++] = &w->audio;
    if (w->target.off) cols[nc++] = &w->target;
    for (int k = 0; k < nc; k++) {
        /* flat_create allocated 64 offsets; keep cap+1 entries from then on. */
        int64_t *o = realloc(cols[k]->off, (c + 1) * sizeof(int64_t));
        if (!o) return m2u_fail("%s: out of memory", w->path);
        cols[k]->off = o;
    }
    for (int t = 0; t < w->n_tensors; t++) {
        uint8_t *p = realloc(w->tens[t].present, c);
        if (!p) return m2u_fail("%s: out of memory", w->path);
        w->tens[t].present = p;
    }
    w->cap = cap;
    return 0;
}

static int shard_append(m2u_shard_writer *w, const m2u_shard_sample *s) {
    if (w->failed) return m2u_fail("%s: an earlier write failed; the shard must be aborted", w->path);
    int64_t i = w->n;
    /* Validate everything before touching any column, so a refused sample
     * leaves the writer usable. */
    const char *split = s->text[M2U_TEXT_SPLIT] ? s->text[M2U_TEXT_SPLIT] : "";
    const char *kind = s->text[M2U_TEXT_KIND] ? s->text[M2U_TEXT_KIND] : "";
    if (!in_list(split, SPLITS, sizeof SPLITS / sizeof *SPLITS))
        return m2u_fail("%s: sample %lld: split '%s' is not one of train, valid, test", w->path, (long long)i, split);
    if (!in_list(kind, KINDS, sizeof KINDS / sizeof *KINDS))
        return m2u_fail("%s: sample %lld: kind '%s' is not one of mucaps, musicqa, muedit, muimage, muvideo",
                        w->path, (long long)i, kind);
    if (s->audio_len && !s->audio) return m2u_fail("%s: sample %lld: audio_len without audio", w->path, (long long)i);
    if (s->target_audio_len && !s->target_audio)
        return m2u_fail("%s: sample %lld: target_audio_len without target_audio", w->path, (long long)i);
    if (s->audio_len && w->audio_rate <= 0)
        return m2u_fail("%s: sample %lld has audio but the shard was created without audio", w->path, (long long)i);
    if (s->target_audio_len && !w->has_target)
        return m2u_fail("%s: sample %lld has target audio but the shard was created without it", w->path,
                        (long long)i);
    if (grow(w) < 0) return -1;

    int rc = 0;
    for (int t = 0; rc == 0 && t < M2U_TEXT_COUNT; t++) {
        const char *v = s->text[t] ? s->text[t] : "";
        size_t len = strlen(v);
        rc = flat_append(w, &w->text[t], v, len, TEXT_NAMES[t]);
        w->text[t].off[i + 1] = w->text[t].off[i] + (int64_t)len;
    }
    if (rc == 0 && w->audio_rate > 0) {
        rc = flat_append(w, &w->audio, s->audio, s->audio_len, "audio");
        w->audio.off[i + 1] = w->audio.off[i] + (int64_t)s->audio_len;
    }
    if (rc == 0 && w->has_target) {
        rc = flat_append(w, &w->target, s->target_audio, s->target_audio_len, "target_audio");
        w->target.off[i + 1] = w->target.off[i] + (int64_t)s->target_audio_len;
    }
    w->clip_start[i] = s->clip_start;
    w->clip_end[i] = s->clip_end;
    for (int k = 0; k < w->n_attrs; k++) w->attrs[(size_t)i * (size_t)w->n_attrs + (size_t)k] = s->attrs ? s->attrs[k] : NAN;
    for (int t = 0; rc == 0 && t < w->n_tensors; t++) {
        wtensor *x = &w->tens[t];
        x->present[i] = s->tensor[t] != NULL;
        if (!s->tensor[t]) continue; /* the chunk stays unallocated and reads as zeros */
        const void *buf = s->tensor[t];
        hid_t mt = H5T_NATIVE_UINT8;
        if (x->dtype == M2U_F16) {
            const float *f = s->tensor[t];
            for (size_t e = 0; e < x->numel; e++) w->f16_scratch[e] = m2u_f32_to_f16(f[e]);
            buf = w->f16_scratch;
            mt = w->f16_mem;
        }
        if (write_rows(x->dset, mt, x->rank + 1, x->dims, (hsize_t)i + 1, (hsize_t)i, 1, buf) < 0)
            rc = h5fail("%s: writing tensor %s of sample %lld", w->tmp_path, x->name, (long long)i);
    }
    if (rc < 0) {
        w->failed = 1;
        return -1;
    }
    w->n = i + 1;
    return 0;
}

int m2u_shard_append(m2u_shard_writer *w, const m2u_shard_sample *s) {
    if (!w || !s) return m2u_fail("m2u_shard_append: NULL argument");
    quiet_t q;
    quiet_on(&q);
    int rc = shard_append(w, s);
    quiet_off(&q);
    return rc;
}

int64_t m2u_shard_writer_count(const m2u_shard_writer *w) { return w ? w->n : 0; }

static int flat_finish(m2u_shard_writer *w, flat_col *c, const char *label) {
    if (flat_flush(w, c, label) < 0) return -1;
    /* The data extent must match the offsets even when the last samples were empty. */
    hsize_t total = (hsize_t)c->off[w->n];
    if (total != c->written) return m2u_fail("%s: column %s: internal size mismatch", w->path, label);
    if (H5Dset_extent(c->dset, &total) < 0 ||
        write_rows(c->off_dset, H5T_NATIVE_INT64, 1, NULL, (hsize_t)w->n + 1, 0, (hsize_t)w->n + 1, c->off) < 0)
        return h5fail("%s: writing offsets of %s", w->tmp_path, label);
    return 0;
}

static int shard_finish(m2u_shard_writer *w) {
    if (w->failed) return m2u_fail("%s: an earlier write failed; shard not written", w->path);
    if (grow(w) < 0) return -1; /* offsets arrays exist even for an empty shard */
    hsize_t n = (hsize_t)w->n;
    for (int t = 0; t < M2U_TEXT_COUNT; t++)
        if (flat_finish(w, &w->text[t], TEXT_NAMES[t]) < 0) return -1;
    if (w->audio_rate > 0 && flat_finish(w, &w->audio, "audio") < 0) return -1;
    if (w->has_target && flat_finish(w, &w->target, "target_audio") < 0) return -1;
    if (write_rows(w->clip_start_d, H5T_NATIVE_DOUBLE, 1, NULL, n, 0, n, w->clip_start) < 0 ||
        write_rows(w->clip_end_d, H5T_NATIVE_DOUBLE, 1, NULL, n, 0, n, w->clip_end) < 0)
        return h5fail("%s: writing clip times", w->tmp_path);
    if (w->n_attrs > 0) {
        hsize_t k = (hsize_t)w->n_attrs;
        if (write_rows(w->attrs_d, H5T_NATIVE_FLOAT, 2, &k, n, 0, n, w->attrs) < 0)
            return h5fail("%s: writing attrs", w->tmp_path);
    }
    for (int t = 0; t < w->n_tensors; t++) {
        wtensor *x = &w->tens[t];
        hsize_t ext[M2U_SHARD_MAX_RANK + 1];
        ext[0] = n;
        for (int d = 0; d < x->rank; d++) ext[d + 1] = x->dims[d];
        if (H5Dset_extent(x->dset, ext) < 0 ||
            write_rows(x->present_dset, H5T_NATIVE_UINT8, 1, NULL, n, 0, n, x->present) < 0)
            return h5fail("%s: finishing tensor %s", w->tmp_path, x->name);
    }
    int64_t count = w->n;
    hid_t a = H5Aopen(w->file, "n_samples", H5P_DEFAULT);
    herr_t e = a >= 0 ? H5Awrite(a, H5T_NATIVE_INT64, &count) : -1;
    if (a >= 0) H5Aclose(a);
    if (e < 0) return h5fail("%s: writing n_samples", w->tmp_path);
    return 0;
}

static int shard_close(m2u_shard_writer *w) {
    if (shard_finish(w) < 0 || check_space_to_finish(w) < 0) {
        writer_free(w, 1);
        return -1;
    }
    /* Close every object first so H5Fclose really writes and releases the file. */
    for (int t = 0; t < M2U_TEXT_COUNT; t++) flat_free(&w->text[t]);
    flat_free(&w->audio);
    flat_free(&w->target);
    close_dset(&w->clip_start_d);
    close_dset(&w->clip_end_d);
    close_dset(&w->attrs_d);
    for (int t = 0; t < w->n_tensors; t++) {
        close_dset(&w->tens[t].dset);
        close_dset(&w->tens[t].present_dset);
    }
    /* Flush first: a flush that fails (disk full) leaves the file closable,
     * a close that fails does not (see discard_file), so the close below has
     * nothing left that could fail for want of space. */
    int rc = 0;
    if (H5Fflush(w->file, H5F_SCOPE_LOCAL) < 0) {
        rc = h5fail("%s: writing %s failed", w->path, w->tmp_path);
        discard_file(w);
    } else if (H5Fclose(w->file) < 0) {
        rc = h5fail("%s: closing %s failed", w->path, w->tmp_path);
    }
    w->file = H5I_INVALID_HID;
    if (rc == 0 && m2u_fsync_path(w->tmp_path, 0) != 0)
        rc = m2u_fail("%s: fsync of %s failed: %s", w->path, w->tmp_path, strerror(errno));
    if (rc == 0 && rename(w->tmp_path, w->path) != 0)
        rc = m2u_fail("%s: rename from %s failed: %s", w->path, w->tmp_path, strerror(errno));
    if (rc == 0) {
        char *dir = m2u_path_dirname(w->path);
        if (dir) m2u_fsync_path(dir, 1); /* best effort: some filesystems refuse fsync on directories */
        free(dir);
    }
    writer_free(w, rc != 0);
    return rc;
}

int m2u_shard_close(m2u_shard_writer *w) {
    if (!w) return m2u_fail("m2u_shard_close: NULL writer");
    quiet_t q;
    quiet_on(&q);
    int rc = shard_close(w);
    quiet_off(&q);
    return rc;
}

void m2u_shard_abort(m2u_shard_writer *w) {
    if (!w) return;
    quiet_t q;
    quiet_on(&q);
    writer_free(w, 1);
    quiet_off(&q);
}

/* ------------------------------------------------------------------ reader */

/* Direct chunk reads.  HDF5's own read of a compressed chunk costs, beyond
 * the zstd decoding itself: a B-tree walk and a hyperslab-to-chunk mapping
 * per call, a fresh zstd context and output buffer per chunk (malloc, page
 * faults), its byte-by-byte unshuffle (about 40 % of the zstd time on int16
 * audio) and a copy of the decoded chunk into the caller's buffer: reading
 * the 137 samples (52 MB) of eval/bench/bench_dataset.sh cost about 0.093
 * CPU-s through H5Dread and 0.063 s so, zstd itself about 0.040 s.  So the
 * reader decodes the chunks of the large columns itself: it looks each chunk
 * up once (address, size, filter mask; kept for the reader's lifetime, shards
 * are immutable), preads the zstd frame, decodes it with one kept context and
 * unshuffles straight into the caller's buffer, keeping the last few decoded
 * chunks of each column (as HDF5's chunk cache did: a sequential scan decodes
 * every chunk once, a random order reuses a small column's chunks).  The stored
 * bytes are the same: a column whose filters, types or fill value are not
 * exactly what m2u writes, or a chunk that is not one zstd frame of the
 * chunk's size (another encoder), is read through HDF5 as before. */
#define DCHUNK_SLOTS 4
typedef struct {
    haddr_t addr; /* HADDR_UNDEF: never written (reads as zeros) */
    hsize_t size;
    unsigned mask; /* filters skipped for this chunk */
    int known;
} chunk_loc;

typedef struct {
    int ok;                /* direct reads allowed for this column */
    int shuffle;           /* the shuffle filter precedes zstd */
    int rank;              /* of the dataset */
    size_t elem;           /* bytes per element */
    size_t chunk_elems;    /* elements per chunk */
    int64_t n_chunks;
    chunk_loc *loc;        /* n_chunks entries, filled on first use */
    /* decoded chunks (still shuffled), least recently used replaced */
    int n_slots;                        /* 1..DCHUNK_SLOTS */
    int64_t slot_chunk[DCHUNK_SLOTS];   /* -1: empty */
    uint64_t slot_used[DCHUNK_SLOTS];
    unsigned char *slot_buf[DCHUNK_SLOTS]; /* chunk_elems * elem each, on first use */
    uint64_t tick;
} dchunk;

/* Shards are immutable once written, so every handle a read needs is made
 * once at open and kept: the dataset, its file dataspace (each read selects a
 * hyperslab on it) and, per reader, one 1-D memory dataspace resized per read.
 * Opening and closing them per call cost about half of a small read's
 * instructions (callgrind: a cached 12-column text read went from 15.6 k
 * instructions a column to the figure in the commit message). */
typedef struct {
    hid_t dset;
    hid_t space; /* file dataspace of dset */
    int64_t *off; /* n+1 entries */
    dchunk dc;
} rflat;

struct m2u_shard_reader {
    char *path;
    hid_t file;
    hid_t f16_mem;
    int64_t n;
    int audio_rate, has_audio, has_target;
    rflat text[M2U_TEXT_COUNT];
    rflat audio, target;
    double *clip_start, *clip_end;
    int n_attrs;
    char **attr_names;
    float *attrs;
    int n_tensors;
    m2u_shard_tensor_info info[M2U_SHARD_MAX_TENSORS];
    hid_t tdset[M2U_SHARD_MAX_TENSORS];
    hid_t tspace[M2U_SHARD_MAX_TENSORS]; /* file dataspace of tdset */
    hid_t tmem[M2U_SHARD_MAX_TENSORS];   /* memory dataspace of one sample of tensor t */
    uint8_t *present[M2U_SHARD_MAX_TENSORS];
    dchunk tdc[M2U_SHARD_MAX_TENSORS];   /* direct reads of tensor t (chunk = one row) */
    int fd;                              /* the file, for direct chunk reads; -1 none */
    uint64_t fd_size;                    /* its size in bytes */
    ZSTD_DCtx *zctx;
    unsigned char *zin;                  /* one compressed chunk */
    size_t zin_cap;
    hid_t mem1;                          /* 1-D memory dataspace, extent set per read */
    uint16_t *scratch;
    size_t scratch_n;
    void *batch;                         /* m2u_shard_get_samples / _get_tensors_f32 staging */
    size_t batch_cap;                    /* bytes */
    int heaps_checked; /* 1 once the global heaps passed check_global_heaps() */
};

static void close_space(hid_t *h) {
    if (*h >= 0) H5Sclose(*h);
    *h = H5I_INVALID_HID;
}

static void dchunk_free(dchunk *d) {
    free(d->loc);
    for (int k = 0; k < DCHUNK_SLOTS; k++) free(d->slot_buf[k]);
    memset(d, 0, sizeof *d);
    for (int k = 0; k < DCHUNK_SLOTS; k++) d->slot_chunk[k] = -1;
}

static void rflat_free(rflat *c) {
    dchunk_free(&c->dc);
    close_space(&c->space);
    close_dset(&c->dset);
    free(c->off);
    c->off = NULL;
}

static void reader_free(m2u_shard_reader *r) {
    for (int t = 0; t < M2U_TEXT_COUNT; t++) rflat_free(&r->text[t]);
    rflat_free(&r->audio);
    rflat_free(&r->target);
    for (int t = 0; t < M2U_SHARD_MAX_TENSORS; t++) {
        close_space(&r->tspace[t]);
        close_space(&r->tmem[t]);
        close_dset(&r->tdset[t]);
        free(r->present[t]);
        dchunk_free(&r->tdc[t]);
    }
    if (r->fd >= 0) close(r->fd);
    ZSTD_freeDCtx(r->zctx);
    free(r->zin);
    close_space(&r->mem1);
    free(r->batch);
    if (r->f16_mem >= 0) H5Tclose(r->f16_mem);
    if (r->file >= 0) H5Fclose(r->file);
    for (int k = 0; k < r->n_attrs; k++) free(r->attr_names ? r->attr_names[k] : NULL);
    free(r->attr_names);
    free(r->attrs);
    free(r->clip_start);
    free(r->clip_end);
    free(r->scratch);
    free(r->path);
    free(r);
}

static int read_int_attr(m2u_shard_reader *r, const char *name, int64_t *v) {
    if (H5Aexists(r->file, name) <= 0) return m2u_fail("%s: not an m2u shard: root attribute %s missing", r->path, name);
    hid_t a = H5Aopen(r->file, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    hid_t s = a >= 0 ? H5Aget_space(a) : -1;
    int rc = 0;
    if (a < 0 || t < 0 || s < 0) rc = h5fail("%s: cannot open attribute %s", r->path, name);
    else if (H5Tget_class(t) != H5T_INTEGER || H5Sget_simple_extent_npoints(s) != 1)
        rc = m2u_fail("%s: attribute %s has the wrong type (expected an integer scalar)", r->path, name);
    else if (H5Aread(a, H5T_NATIVE_INT64, v) < 0)
        rc = h5fail("%s: cannot read attribute %s", r->path, name);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return rc;
}

/* ---- global heap check ----
 * Variable-length strings live in HDF5 "global heap collections" (GCOL).
 * libhdf5 1.10 parses a collection without bounds checks: an object whose
 * size field is damaged (file size unchanged) makes it loop forever or read
 * past its buffer and crash inside H5Aread.  So before the first
 * variable-length attribute of a file is read, every collection in the
 * file's leading metadata is walked here with explicit bounds, and a bad one
 * is an error naming the file.  m2u writes all its string attributes when a
 * shard is created, before any sample data, so its collections sit in the
 * first few KiB; GCOL_SCAN bounds the scan of any other file.  (A shard read
 * through a manifest is also hashed first, manifest.h.)
 * Layout (HDF5 format spec III.E, 8-byte lengths as m2u's superblock uses):
 * "GCOL", version 1, 3 reserved zero bytes, collection size (8, including
 * this 16-byte header); then objects: index (2), refcount (2), reserved (4),
 * size (8), data padded to 8 bytes; index 0 is the free space, whose size
 * counts its own header. */
#define GCOL_SCAN ((size_t)1 << 20)
#define GCOL_MIN 4096

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static int check_collection(const char *path, int fd, uint64_t at, uint64_t size) {
    unsigned char *c = malloc((size_t)size);
    if (!c) return m2u_fail("%s: out of memory checking the HDF5 global heap", path);
    int rc = 0;
    if (pread(fd, c, (size_t)size, (off_t)at) != (ssize_t)size) {
        rc = m2u_fail("%s: cannot read the HDF5 global heap at byte %llu", path, (unsigned long long)at);
    } else {
        uint64_t p = 16;
        while (p < size && rc == 0) {
            if (size - p < 16) break; /* too small for an object header: free space */
            unsigned idx = (unsigned)c[p] | (unsigned)c[p + 1] << 8;
            uint64_t osz = le64(c + p + 8);
            uint64_t need = idx ? 16 + ((osz + 7) & ~(uint64_t)7) : osz;
            if (osz > size || need == 0 || need > size - p)
                rc = m2u_fail("%s: corrupt HDF5 metadata: global heap object %u at byte %llu claims %llu bytes, "
                              "past its collection (%llu bytes at byte %llu); the file is damaged",
                              path, idx, (unsigned long long)(at + p), (unsigned long long)osz,
                              (unsigned long long)size, (unsigned long long)at);
            if (idx == 0) break; /* the free space ends the objects */
            p += need;
        }
    }
    free(c);
    return rc;
}

static int check_global_heaps(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return m2u_fail("%s: cannot open: %s", path, strerror(errno));
    off_t end = lseek(fd, 0, SEEK_END);
    size_t n = end > 0 ? ((uint64_t)end < GCOL_SCAN ? (size_t)end : GCOL_SCAN) : 0;
    unsigned char *b = n ? malloc(n) : NULL;
    int rc = 0;
    if (n && !b) rc = m2u_fail("%s: out of memory", path);
    else if (n && pread(fd, b, n, 0) != (ssize_t)n) rc = m2u_fail("%s: cannot read: %s", path, strerror(errno));
    /* candidates found with memchr (vectorized): a byte-by-byte memcmp over
     * the 1 MiB was about 0.5 ms, an eighth of opening a shard */
    for (size_t p = 0; rc == 0 && n >= 16 && p <= n - 16; p++) {
        const unsigned char *g = memchr(b + p, 'G', n - 16 - p + 1);
        if (!g) break;
        p = (size_t)(g - b);
        if (memcmp(b + p, "GCOL", 4) || b[p + 4] != 1 || b[p + 5] || b[p + 6] || b[p + 7]) continue;
        uint64_t size = le64(b + p + 8);
        /* the header itself damaged: HDF5 refuses that cleanly, and a size
         * past the end of the file is caught by HDF5's own EOF check */
        if (size < GCOL_MIN || size > (uint64_t)end - p) continue;
        rc = check_collection(path, fd, p, size);
        p += 15;
    }
    free(b);
    close(fd);
    return rc;
}

/* The file's global heaps are checked once, before its first variable-length read. */
static int vlen_guard(const char *path, int *checked) {
    if (*checked) return 0;
    if (check_global_heaps(path) < 0) return -1;
    *checked = 1;
    return 0;
}

/* Longest string attribute accepted (bytes): names and hashes are short; a
 * size field beyond this is damage, not data. */
#define MAX_STR_ATTR ((size_t)1 << 16)

/* A scalar string attribute (variable- or fixed-length) into buf; missing -> "".
 * Class, shape and size are checked before anything is read. */
static int read_str_attr(const char *path, hid_t loc, const char *name, char *buf, size_t cap, int *heaps_checked) {
    buf[0] = '\0';
    if (H5Aexists(loc, name) <= 0) return 0;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t t = a >= 0 ? H5Aget_type(a) : -1;
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    int rc = 0;
    if (a < 0 || t < 0 || sp < 0) rc = h5fail("%s: cannot open attribute %s", path, name);
    else if (H5Tget_class(t) != H5T_STRING) rc = m2u_fail("%s: attribute %s is not a string", path, name);
    else if (H5Sget_simple_extent_type(sp) != H5S_SCALAR && H5Sget_simple_extent_npoints(sp) != 1)
        rc = m2u_fail("%s: attribute %s is not a single string", path, name);
    else if (H5Tis_variable_str(t) <= 0 && (H5Tget_size(t) == 0 || H5Tget_size(t) > MAX_STR_ATTR))
        rc = m2u_fail("%s: attribute %s claims %zu bytes (damaged?)", path, name, H5Tget_size(t));
    else if (H5Tis_variable_str(t) > 0) {
        if (vlen_guard(path, heaps_checked) < 0) {
            rc = -1;
        } else {
        char *s = NULL;
        hid_t mt = H5Tcopy(t); /* same character set as stored: HDF5 does not convert between them */
        if (mt < 0 || H5Aread(a, mt, &s) < 0) rc = h5fail("%s: cannot read attribute %s", path, name);
        else snprintf(buf, cap, "%s", s ? s : "");
        if (s) H5free_memory(s);
        if (mt >= 0) H5Tclose(mt);
        }
    } else {
        size_t n = H5Tget_size(t);
        char *s = calloc(n + 1, 1);
        hid_t mt = H5Tcopy(t);
        if (!s || mt < 0 || H5Tset_size(mt, n + 1) < 0 || H5Tset_strpad(mt, H5T_STR_NULLTERM) < 0 ||
            H5Aread(a, mt, s) < 0)
            rc = h5fail("%s: cannot read attribute %s", path, name);
        else snprintf(buf, cap, "%s", s);
        free(s);
        if (mt >= 0) H5Tclose(mt);
    }
    if (sp >= 0) H5Sclose(sp);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return rc;
}

enum { K_U8, K_I16, K_I64, K_F16, K_F32, K_F64 };
static const char *const KIND_DESC[] = {"uint8", "int16", "int64", "float16", "float32", "float64"};

/* ---- direct chunk reads (see dchunk) ---- */

/* Whether dataset d (file dataspace space, elements of elem bytes whose
 * in-memory type is mtype) can be read chunk by chunk here; sets up *dc if so.
 * one_row: 0 for a 1-D column (any chunk length), 1 for a tensor column
 * (one row per chunk, whole rows).  Anything unexpected leaves dc->ok = 0, so
 * the column is read through HDF5 as before; never an error. */
static void dchunk_setup(m2u_shard_reader *r, hid_t d, hid_t space, hid_t mtype, size_t elem, int one_row,
                         int slots, dchunk *dc) {
    dchunk_free(dc);
    if (r->fd < 0) return;
    hid_t dcpl = H5Dget_create_plist(d), ftype = H5Dget_type(d);
    hsize_t cdims[M2U_SHARD_MAX_RANK + 1], dims[M2U_SHARD_MAX_RANK + 1];
    int ok = dcpl >= 0 && ftype >= 0 && H5Tequal(ftype, mtype) > 0 && H5Tget_size(ftype) == elem &&
             H5Pget_layout(dcpl) == H5D_CHUNKED;
    int rank = ok ? H5Pget_chunk(dcpl, M2U_SHARD_MAX_RANK + 1, cdims) : -1;
    ok = ok && rank >= 1 && rank <= M2U_SHARD_MAX_RANK + 1 && H5Sget_simple_extent_ndims(space) == rank &&
         H5Sget_simple_extent_dims(space, dims, NULL) == rank;
    /* Absent chunks must read as zeros: the default fill value only. */
    H5D_fill_value_t fill;
    ok = ok && H5Pfill_value_defined(dcpl, &fill) >= 0 && fill == H5D_FILL_VALUE_DEFAULT;
    /* The pipeline m2u writes: [shuffle (element size),] zstd. */
    int nf = ok ? H5Pget_nfilters(dcpl) : -1, shuffle = 0;
    ok = ok && (nf == 1 || nf == 2);
    for (int k = 0; ok && k < nf; k++) {
        unsigned flags, cd[4], config;
        size_t ncd = 4;
        char fname[32];
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)k, &flags, &ncd, cd, sizeof fname, fname, &config);
        if (k == 0 && nf == 2) {
            /* HDF5 leaves one-byte elements as they are under shuffle */
            ok = id == H5Z_FILTER_SHUFFLE && (elem == 1 || (ncd >= 1 && cd[0] == elem));
            shuffle = elem > 1;
        } else {
            ok = id == M2U_ZSTD_FILTER_ID;
        }
    }
    size_t chunk_elems = 1;
    for (int k = 0; ok && k < rank; k++) {
        if (one_row) ok = k == 0 ? cdims[0] == 1 : cdims[k] == dims[k];
        chunk_elems *= (size_t)cdims[k];
    }
    ok = ok && (one_row ? rank >= 2 : rank == 1) && chunk_elems > 0;
    if (ftype >= 0) H5Tclose(ftype);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (!ok) return;
    dc->rank = rank;
    dc->n_slots = slots < 1 ? 1 : slots > DCHUNK_SLOTS ? DCHUNK_SLOTS : slots;
    dc->elem = elem;
    dc->shuffle = shuffle;
    dc->chunk_elems = chunk_elems;
    dc->n_chunks = (int64_t)((dims[0] + cdims[0] - 1) / cdims[0]);
    /* The chunk table is sized by the extent the file claims: a damaged one
     * must not make it huge.  Every stored chunk takes well over 16 bytes of
     * the file (its index entry alone); a column of mostly absent tensor rows
     * past that bound is simply read through HDF5. */
    if ((uint64_t)dc->n_chunks > r->fd_size / 16 + 4096) return;
    dc->loc = calloc(dc->n_chunks ? (size_t)dc->n_chunks : 1, sizeof *dc->loc);
    dc->ok = dc->loc != NULL;
}

/* Decode chunk k of dataset d into out (chunk_elems * elem bytes, still
 * shuffled as stored).  0: done; 1: not one plain zstd frame of the chunk's
 * size, or any failure -- the caller reads through HDF5 instead, which gives
 * the usual error for a damaged chunk. */
static int dchunk_decode(m2u_shard_reader *r, hid_t d, dchunk *dc, int64_t k, void *out) {
    if (k < 0 || k >= dc->n_chunks) return 1;
    chunk_loc *L = &dc->loc[k];
    if (!L->known) {
        hsize_t off[M2U_SHARD_MAX_RANK + 1] = {0};
        off[0] = (hsize_t)k * (dc->rank == 1 ? (hsize_t)dc->chunk_elems : 1);
        haddr_t addr = HADDR_UNDEF;
        hsize_t size = 0;
        unsigned mask = 0;
        if (H5Dget_chunk_info_by_coord(d, off, &mask, &addr, &size) < 0) return 1;
        L->addr = addr, L->size = size, L->mask = mask, L->known = 1;
    }
    size_t bytes = dc->chunk_elems * dc->elem;
    if (L->addr == HADDR_UNDEF) { /* never written: the fill value, zeros */
        memset(out, 0, bytes);
        return 0;
    }
    if (L->mask != 0 || L->size == 0 || L->size > ZSTD_compressBound(bytes) + 64) return 1;
    size_t size = (size_t)L->size;
    if (size > r->zin_cap) {
        unsigned char *b = realloc(r->zin, size);
        if (!b) return 1;
        r->zin = b;
        r->zin_cap = size;
    }
    if (!r->zctx && !(r->zctx = ZSTD_createDCtx())) return 1;
    if (pread(r->fd, r->zin, size, (off_t)L->addr) != (ssize_t)size) return 1;
    if (ZSTD_getFrameContentSize(r->zin, size) != (unsigned long long)bytes ||
        ZSTD_findFrameCompressedSize(r->zin, size) != size)
        return 1;
    size_t got = ZSTD_decompressDCtx(r->zctx, out, bytes, r->zin, size);
    return ZSTD_isError(got) || got != bytes;
}

/* Elements a .. a+m-1 of a decoded chunk src (shuffled when dc->shuffle) into dst. */
static void dchunk_copy(const dchunk *dc, const unsigned char *src, size_t a, size_t m, void *dst) {
    if (!dc->shuffle) {
        memcpy(dst, src + a * dc->elem, m * dc->elem);
        return;
    }
    size_t E = dc->chunk_elems;
    unsigned char *o = dst;
    if (dc->elem == 2) {
        /* byte planes lo[E], hi[E] -> little-endian pairs, 16 at a time (GCC's
         * -O2 leaves the scalar loop byte by byte, 5x slower: 10 % of the read
         * benchmark's CPU, sha256 included) */
        const unsigned char *lo = src + a, *hi = src + E + a;
        size_t j = 0;
#ifdef __SSE2__
        for (; j + 16 <= m; j += 16) {
            __m128i l = _mm_loadu_si128((const __m128i *)(const void *)(lo + j));
            __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(hi + j));
            _mm_storeu_si128((__m128i *)(void *)(o + 2 * j), _mm_unpacklo_epi8(l, h));
            _mm_storeu_si128((__m128i *)(void *)(o + 2 * j + 16), _mm_unpackhi_epi8(l, h));
        }
#endif
        for (; j < m; j++) {
            o[2 * j] = lo[j];
            o[2 * j + 1] = hi[j];
        }
        return;
    }
    for (size_t b = 0; b < dc->elem; b++) {
        const unsigned char *p = src + b * E + a;
        for (size_t j = 0; j < m; j++) o[j * dc->elem + b] = p[j];
    }
}

static int dchunk_find(const dchunk *dc, int64_t k) {
    for (int j = 0; j < dc->n_slots; j++)
        if (dc->slot_chunk[j] == k) return j;
    return -1;
}

/* The decoded chunk k, from the kept ones or decoded into the least recently used slot. */
static const unsigned char *dchunk_get(m2u_shard_reader *r, hid_t d, dchunk *dc, int64_t k) {
    int j = dchunk_find(dc, k);
    if (j < 0) {
        j = 0;
        for (int v = 1; v < dc->n_slots; v++)
            if (dc->slot_used[v] < dc->slot_used[j]) j = v; /* an empty slot was never used: 0 */
        if (!dc->slot_buf[j] && !(dc->slot_buf[j] = malloc(dc->chunk_elems * dc->elem))) return NULL;
        dc->slot_chunk[j] = -1;
        if (dchunk_decode(r, d, dc, k, dc->slot_buf[j])) return NULL;
        dc->slot_chunk[j] = k;
    }
    dc->slot_used[j] = ++dc->tick;
    return dc->slot_buf[j];
}

/* Elements start .. start+count-1 of a 1-D column into dst.  0: done; 1: read it through HDF5. */
static int dchunk_read_range(m2u_shard_reader *r, hid_t d, dchunk *dc, int64_t start, size_t count, void *dst) {
    size_t E = dc->chunk_elems, end = (size_t)start + count;
    unsigned char *o = dst;
    for (size_t k = (size_t)start / E; k * E < end; k++) {
        size_t lo = k * E > (size_t)start ? k * E : (size_t)start, hi = (k + 1) * E < end ? (k + 1) * E : end;
        unsigned char *to = o + (lo - (size_t)start) * dc->elem;
        if (!dc->shuffle && hi - lo == E && dchunk_find(dc, (int64_t)k) < 0) {
            /* a whole unshuffled chunk: decoded straight into the caller's buffer */
            if (dchunk_decode(r, d, dc, (int64_t)k, to)) return 1;
            continue;
        }
        const unsigned char *src = dchunk_get(r, d, dc, (int64_t)k);
        if (!src) return 1;
        dchunk_copy(dc, src, lo - k * E, hi - lo, to);
    }
    return 0;
}

/* Rows i .. i+n-1 of a one-row-per-chunk tensor column into dst.  0: done; 1: read it through HDF5. */
static int dchunk_read_rows(m2u_shard_reader *r, hid_t d, dchunk *dc, int64_t i, int64_t n, void *dst) {
    size_t row = dc->chunk_elems * dc->elem;
    for (int64_t k = 0; k < n; k++) {
        unsigned char *to = (unsigned char *)dst + (size_t)k * row;
        if (!dc->shuffle) {
            if (dchunk_decode(r, d, dc, i + k, to)) return 1;
            continue;
        }
        const unsigned char *src = dchunk_get(r, d, dc, i + k);
        if (!src) return 1;
        dchunk_copy(dc, src, 0, dc->chunk_elems, to);
    }
    return 0;
}

/* Open a dataset and check its element type, rank and leading dimension;
 * *space (when not NULL) keeps its file dataspace for the reads. */
static hid_t open_col(m2u_shard_reader *r, const char *name, int kind, int rank, int64_t rows, hsize_t *dims,
                      size_t cache_bytes, hid_t *space) {
    if (H5Lexists(r->file, name, H5P_DEFAULT) <= 0) {
        m2u_fail("%s: column %s is missing", r->path, name);
        return H5I_INVALID_HID;
    }
    hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
    if (dapl >= 0) H5Pset_chunk_cache(dapl, CACHE_SLOTS, cache_bytes, 0.75);
    hid_t d = H5Dopen2(r->file, name, dapl >= 0 ? dapl : H5P_DEFAULT);
    if (dapl >= 0) H5Pclose(dapl);
    if (d < 0) {
        h5fail("%s: cannot open column %s", r->path, name);
        return H5I_INVALID_HID;
    }
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    int ok = t >= 0 && s >= 0;
    if (ok) {
        H5T_class_t cls = H5Tget_class(t);
        size_t size = H5Tget_size(t);
        switch (kind) {
        case K_U8: ok = cls == H5T_INTEGER && size == 1 && H5Tget_sign(t) == H5T_SGN_NONE; break;
        case K_I16: ok = cls == H5T_INTEGER && size == 2 && H5Tget_sign(t) == H5T_SGN_2; break;
        case K_I64: ok = cls == H5T_INTEGER && size == 8; break;
        case K_F16: ok = cls == H5T_FLOAT && size == 2; break;
        case K_F32: ok = cls == H5T_FLOAT && size == 4; break;
        default: ok = cls == H5T_FLOAT && size == 8; break;
        }
        if (!ok) m2u_fail("%s: column %s has the wrong type (expected %s)", r->path, name, KIND_DESC[kind]);
    } else {
        h5fail("%s: cannot inspect column %s", r->path, name);
    }
    if (ok) {
        int nd = H5Sget_simple_extent_ndims(s);
        if (nd != rank) {
            m2u_fail("%s: column %s has rank %d, expected %d", r->path, name, nd, rank);
            ok = 0;
        } else {
            H5Sget_simple_extent_dims(s, dims, NULL);
            if (rows >= 0 && dims[0] != (hsize_t)rows) {
                m2u_fail("%s: column %s has %llu rows, expected %lld", r->path, name, (unsigned long long)dims[0],
                         (long long)rows);
                ok = 0;
            }
        }
    }
    if (t >= 0) H5Tclose(t);
    if (ok && space) *space = s;
    else if (s >= 0) H5Sclose(s);
    if (!ok) {
        H5Dclose(d);
        return H5I_INVALID_HID;
    }
    return d;
}

static int read_all(m2u_shard_reader *r, hid_t d, hid_t mtype, void *buf, const char *name) {
    if (H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        return h5fail("%s: cannot read column %s (corrupt or truncated?)", r->path, name);
    return 0;
}

/* A whole 1-D column of count elements (its checked extent) read at open:
 * directly when it can be (see dchunk; HDF5 would unshuffle all 8192 rows of
 * a ROW_CHUNK offsets chunk, 0.1 ms a column, when a shard holds fewer), else
 * through HDF5. */
static int read_all_1d(m2u_shard_reader *r, hid_t d, hid_t mtype, size_t elem, size_t count, void *buf,
                       const char *name) {
    hid_t space = H5Dget_space(d);
    dchunk dc;
    memset(&dc, 0, sizeof dc);
    int done = 0;
    if (space >= 0) {
        dchunk_setup(r, d, space, mtype, elem, 0, 1, &dc);
        done = dc.ok && dchunk_read_range(r, d, &dc, 0, count, buf) == 0;
        dchunk_free(&dc);
        H5Sclose(space);
    }
    return done ? 0 : read_all(r, d, mtype, buf, name);
}

static int open_flat(m2u_shard_reader *r, rflat *c, const char *name, int kind, size_t cache) {
    hsize_t dims[1];
    c->dset = open_col(r, name, kind, 1, -1, dims, cache, &c->space);
    if (c->dset < 0) return -1;
    hsize_t total = dims[0];
    char oname[96];
    snprintf(oname, sizeof oname, "%s_offsets", name);
    hid_t od = open_col(r, oname, K_I64, 1, r->n + 1, dims, 0, NULL);
    if (od < 0) return -1;
    c->off = malloc(((size_t)r->n + 1) * sizeof(int64_t));
    int rc = c->off ? read_all_1d(r, od, H5T_NATIVE_INT64, 8, (size_t)r->n + 1, c->off, oname)
                    : m2u_fail("%s: out of memory", r->path);
    H5Dclose(od);
    if (rc < 0) return -1;
    if (c->off[0] != 0) return m2u_fail("%s: column %s does not start at 0", r->path, oname);
    for (int64_t i = 0; i < r->n; i++)
        if (c->off[i + 1] < c->off[i])
            return m2u_fail("%s: column %s decreases at sample %lld", r->path, oname, (long long)i);
    if ((hsize_t)c->off[r->n] != total)
        return m2u_fail("%s: column %s ends at %lld but %s holds %llu elements", r->path, oname,
                        (long long)c->off[r->n], name, (unsigned long long)total);
    /* four chunks kept per column, as the HDF5 chunk caches held (TEXT_CACHE; AUDIO_CACHE held 16) */
    if (kind == K_U8) dchunk_setup(r, c->dset, c->space, H5T_NATIVE_UINT8, 1, 0, DCHUNK_SLOTS, &c->dc);
    else if (kind == K_I16) dchunk_setup(r, c->dset, c->space, H5T_NATIVE_INT16, 2, 0, DCHUNK_SLOTS, &c->dc);
    return 0;
}

static int open_attrs(m2u_shard_reader *r) {
    if (H5Lexists(r->file, "attrs", H5P_DEFAULT) <= 0) return 0;
    hsize_t dims[2];
    hid_t d = open_col(r, "attrs", K_F32, 2, r->n, dims, 0, NULL);
    if (d < 0) return -1;
    int rc = 0;
    if (dims[1] < 1 || dims[1] > M2U_SHARD_MAX_ATTRS) {
        H5Dclose(d);
        return m2u_fail("%s: column attrs has %llu columns", r->path, (unsigned long long)dims[1]);
    }
    r->n_attrs = (int)dims[1];
    r->attr_names = calloc((size_t)r->n_attrs, sizeof(char *));
    r->attrs = malloc(((size_t)r->n * (size_t)r->n_attrs + 1) * sizeof(float));
    if (!r->attr_names || !r->attrs) rc = m2u_fail("%s: out of memory", r->path);
    if (rc == 0) rc = read_all(r, d, H5T_NATIVE_FLOAT, r->attrs, "attrs");
    if (rc == 0) {
        hid_t a = H5Aexists(d, "attr_names") > 0 ? H5Aopen(d, "attr_names", H5P_DEFAULT) : -1;
        hid_t t = a >= 0 ? H5Aget_type(a) : -1, s = a >= 0 ? H5Aget_space(a) : -1;
        if (a < 0) rc = m2u_fail("%s: column attrs has no attr_names attribute", r->path);
        else if (t < 0 || s < 0 || H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) <= 0 ||
                 H5Sget_simple_extent_npoints(s) != r->n_attrs)
            rc = m2u_fail("%s: attrs/attr_names is not %d variable-length strings", r->path, r->n_attrs);
        else if (vlen_guard(r->path, &r->heaps_checked) < 0)
            rc = -1;
        else {
            char **v = calloc((size_t)r->n_attrs, sizeof(char *));
            hid_t mt = H5Tcopy(t);
            if (!v || mt < 0 || H5Aread(a, mt, v) < 0) rc = h5fail("%s: cannot read attrs/attr_names", r->path);
            for (int k = 0; rc == 0 && k < r->n_attrs; k++)
                if (v[k] && strnlen(v[k], MAX_STR_ATTR + 1) > MAX_STR_ATTR)
                    rc = m2u_fail("%s: attrs/attr_names[%d] is longer than %zu bytes (damaged?)", r->path, k,
                                  MAX_STR_ATTR);
                else if (!(r->attr_names[k] = strdup(v[k] ? v[k] : "")))
                    rc = m2u_fail("%s: out of memory", r->path);
            for (int k = 0; v && k < r->n_attrs; k++)
                if (v[k]) H5free_memory(v[k]);
            free(v);
            if (mt >= 0) H5Tclose(mt);
        }
        if (t >= 0) H5Tclose(t);
        if (s >= 0) H5Sclose(s);
        if (a >= 0) H5Aclose(a);
    }
    H5Dclose(d);
    return rc;
}

static int open_tensor_group(m2u_shard_reader *r, const char *group, m2u_dtype dtype) {
    if (H5Lexists(r->file, group, H5P_DEFAULT) <= 0) return 0;
    hid_t g = H5Gopen2(r->file, group, H5P_DEFAULT);
    H5G_info_t gi;
    if (g < 0 || H5Gget_info(g, &gi) < 0) {
        if (g >= 0) H5Gclose(g);
        return h5fail("%s: cannot open group %s", r->path, group);
    }
    int rc = 0;
    for (hsize_t k = 0; rc == 0 && k < gi.nlinks; k++) {
        char name[64];
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, k, name, sizeof name, H5P_DEFAULT);
        if (len < 0) {
            rc = h5fail("%s: cannot list group %s", r->path, group);
            break;
        }
        if ((size_t)len >= sizeof name) {
            rc = m2u_fail("%s: group %s holds a name longer than %zu bytes", r->path, group, sizeof name - 1);
            break;
        }
        if (!valid_name(name)) continue; /* the *_present companions */
        if (r->n_tensors == M2U_SHARD_MAX_TENSORS) {
            rc = m2u_fail("%s: more than %d tensor columns", r->path, M2U_SHARD_MAX_TENSORS);
            break;
        }
        int t = r->n_tensors;
        m2u_shard_tensor_info *x = &r->info[t];
        char full[160];
        snprintf(full, sizeof full, "%s/%s", group, name);
        /* rank unknown until opened: probe it, then check with open_col */
        hid_t probe = H5Dopen2(g, name, H5P_DEFAULT);
        hid_t ps = probe >= 0 ? H5Dget_space(probe) : -1;
        int nd = ps >= 0 ? H5Sget_simple_extent_ndims(ps) : -1;
        if (ps >= 0) H5Sclose(ps);
        if (probe >= 0) H5Dclose(probe);
        if (nd < 0) {
            rc = h5fail("%s: cannot open column %s", r->path, full);
            break;
        }
        if (nd < 2 || nd > M2U_SHARD_MAX_RANK + 1) {
            rc = m2u_fail("%s: column %s has rank %d, expected 2..%d", r->path, full, nd, M2U_SHARD_MAX_RANK + 1);
            break;
        }
        hsize_t dims[M2U_SHARD_MAX_RANK + 1];
        /* Tensor chunks are one sample each and read whole: no cache, no extra copy. */
        r->tdset[t] = open_col(r, full, dtype == M2U_F16 ? K_F16 : K_U8, nd, r->n, dims, 0, &r->tspace[t]);
        if (r->tdset[t] < 0) {
            rc = -1;
            break;
        }
        r->n_tensors++;
        dchunk_setup(r, r->tdset[t], r->tspace[t], dtype == M2U_F16 ? r->f16_mem : H5T_NATIVE_UINT8,
                     dtype == M2U_F16 ? 2 : 1, 1, 1, &r->tdc[t]);
        snprintf(x->name, sizeof x->name, "%s", name);
        x->dtype = dtype;
        x->rank = nd - 1;
        x->numel = 1;
        for (int d = 0; d < x->rank; d++) {
            x->dims[d] = (int64_t)dims[d + 1];
            x->numel *= (size_t)dims[d + 1];
        }
        dims[0] = 1;
        if ((r->tmem[t] = H5Screate_simple(nd, dims, NULL)) < 0) {
            rc = h5fail("%s: cannot make the memory dataspace of %s", r->path, full);
            break;
        }
        if (read_str_attr(r->path, r->tdset[t], "encoder", x->encoder, sizeof x->encoder, &r->heaps_checked) < 0 ||
            read_str_attr(r->path, r->tdset[t], "config_hash", x->config_hash, sizeof x->config_hash,
                          &r->heaps_checked) < 0) {
            rc = -1;
            break;
        }
        char pname[200];
        snprintf(pname, sizeof pname, "%s_present", full);
        hid_t pd = open_col(r, pname, K_U8, 1, r->n, dims, 0, NULL);
        if (pd < 0) {
            rc = -1;
            break;
        }
        r->present[t] = malloc((size_t)r->n + 1);
        rc = r->present[t] ? read_all_1d(r, pd, H5T_NATIVE_UINT8, 1, (size_t)r->n, r->present[t], pname)
                           : m2u_fail("%s: out of memory", r->path);
        H5Dclose(pd);
        if (dtype == M2U_F16 && x->numel > r->scratch_n) r->scratch_n = x->numel;
    }
    H5Gclose(g);
    return rc;
}

static int shard_open(const char *path, m2u_shard_reader **out) {
    *out = NULL;
    if (!path) return m2u_fail("m2u_shard_open: NULL path");
    if (m2u_zstd_filter_register() < 0) return -1;
    m2u_shard_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return m2u_fail("%s: out of memory", path);
    }
    r->file = r->f16_mem = r->mem1 = H5I_INVALID_HID;
    r->fd = -1;
    for (int t = 0; t < M2U_TEXT_COUNT; t++) r->text[t].dset = r->text[t].space = H5I_INVALID_HID;
    r->audio.dset = r->target.dset = r->audio.space = r->target.space = H5I_INVALID_HID;
    for (int t = 0; t < M2U_SHARD_MAX_TENSORS; t++) r->tdset[t] = r->tspace[t] = r->tmem[t] = H5I_INVALID_HID;

    if (access(path, R_OK) != 0) {
        m2u_fail("%s: cannot open shard: %s", path, strerror(errno));
        reader_free(r);
        return -1;
    }
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
        if (is == 0) m2u_fail("%s: not an HDF5 file", path);
        else h5fail("%s: cannot read the file", path);
        reader_free(r);
        return -1;
    }
    /* Shards are immutable once renamed into place, so readers need no locks
     * (and locks fail on some network filesystems, research §2.7). */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_file_locking(fapl, 0, 1) >= 0 && H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0)
        r->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (r->file < 0) h5fail("%s: cannot open shard (truncated or corrupt?)", path);
    if (fapl >= 0) H5Pclose(fapl);
    /* Direct chunk reads take chunk addresses as file offsets: only without a user block. */
    hid_t fcpl = r->file >= 0 ? H5Fget_create_plist(r->file) : H5I_INVALID_HID;
    hsize_t ublock = 1;
    if (fcpl >= 0 && H5Pget_userblock(fcpl, &ublock) >= 0 && ublock == 0) r->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat fst;
    if (r->fd >= 0 && fstat(r->fd, &fst) == 0) r->fd_size = (uint64_t)fst.st_size;
    if (fcpl >= 0) H5Pclose(fcpl);
    int64_t schema = 0, n = 0, rate = 0;
    int rc = r->file < 0 ? -1 : 0;
    if (rc == 0) rc = read_int_attr(r, "schema_version", &schema);
    if (rc == 0 && schema != M2U_SHARD_SCHEMA_VERSION)
        rc = m2u_fail("%s: shard schema_version %lld, this reader knows %d", path, (long long)schema,
                      M2U_SHARD_SCHEMA_VERSION);
    if (rc == 0) rc = read_int_attr(r, "n_samples", &n);
    if (rc == 0) rc = read_int_attr(r, "audio_rate", &rate);
    if (rc == 0 && (n < 0 || rate < 0 || rate > 10000000))
        rc = m2u_fail("%s: bad n_samples %lld or audio_rate %lld", path, (long long)n, (long long)rate);
    r->n = n;
    r->audio_rate = (int)rate;
    if (rc == 0 && (r->f16_mem = make_f16_type(H5T_NATIVE_FLOAT)) < 0)
        rc = h5fail("%s: cannot make the float16 type", path);
    for (int t = 0; rc == 0 && t < M2U_TEXT_COUNT; t++) {
        char name[64];
        snprintf(name, sizeof name, "text/%s", TEXT_NAMES[t]);
        rc = open_flat(r, &r->text[t], name, K_U8, TEXT_CACHE);
    }
    if (rc == 0 && r->audio_rate > 0) {
        rc = open_flat(r, &r->audio, "audio", K_I16, AUDIO_CACHE);
        r->has_audio = rc == 0;
        if (rc == 0 && H5Lexists(r->file, "target_audio", H5P_DEFAULT) > 0) {
            rc = open_flat(r, &r->target, "target_audio", K_I16, AUDIO_CACHE);
            r->has_target = rc == 0;
        }
    }
    hsize_t dims[2];
    const char *clip_names[2] = {"clip_start", "clip_end"};
    double **clip[2] = {&r->clip_start, &r->clip_end};
    for (int k = 0; rc == 0 && k < 2; k++) {
        hid_t d = open_col(r, clip_names[k], K_F64, 1, r->n, dims, 0, NULL);
        if (d < 0) {
            rc = -1;
            break;
        }
        *clip[k] = malloc(((size_t)r->n + 1) * sizeof(double));
        rc = *clip[k] ? read_all_1d(r, d, H5T_NATIVE_DOUBLE, 8, (size_t)r->n, *clip[k], clip_names[k])
                      : m2u_fail("%s: out of memory", path);
        H5Dclose(d);
    }
    if (rc == 0) rc = open_attrs(r);
    if (rc == 0) rc = open_tensor_group(r, "features", M2U_F16);
    if (rc == 0) rc = open_tensor_group(r, "media", M2U_U8);
    if (rc == 0 && r->scratch_n && !(r->scratch = malloc(r->scratch_n * sizeof(uint16_t))))
        rc = m2u_fail("%s: out of memory", path);
    hsize_t one = 1;
    if (rc == 0 && (r->mem1 = H5Screate_simple(1, &one, NULL)) < 0)
        rc = h5fail("%s: cannot make a memory dataspace", path);
    if (rc < 0) {
        reader_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

int m2u_shard_open(const char *path, m2u_shard_reader **out) {
    if (!out) return m2u_fail("m2u_shard_open: NULL out");
    quiet_t q;
    quiet_on(&q);
    int rc = shard_open(path, out);
    quiet_off(&q);
    return rc;
}

void m2u_shard_reader_close(m2u_shard_reader *r) {
    if (!r) return;
    quiet_t q;
    quiet_on(&q);
    reader_free(r);
    quiet_off(&q);
}

const char *m2u_shard_path(const m2u_shard_reader *r) { return r->path; }
int64_t m2u_shard_count(const m2u_shard_reader *r) { return r->n; }
int m2u_shard_audio_rate(const m2u_shard_reader *r) { return r->audio_rate; }
int m2u_shard_has_target_audio(const m2u_shard_reader *r) { return r->has_target; }

static int check_index(const m2u_shard_reader *r, int64_t i) {
    if (i < 0 || i >= r->n)
        return m2u_fail("%s: sample %lld out of range (shard has %lld)", r->path, (long long)i, (long long)r->n);
    return 0;
}

/* Samples i0 .. i0+n-1 of the shard, n >= 1 (n = 1: the single-sample message). */
static int check_rows(const m2u_shard_reader *r, int64_t i0, int64_t n) {
    if (n == 1) return check_index(r, i0);
    if (n < 1) return m2u_fail("%s: a batch of %lld samples (at least 1)", r->path, (long long)n);
    if (i0 < 0 || i0 >= r->n || n > r->n - i0) {
        /* the last index, saturated: i0 + n - 1 may not fit */
        int64_t last = i0 >= 0 && n - 1 > INT64_MAX - i0 ? INT64_MAX : i0 + (n - 1);
        return m2u_fail("%s: samples %lld..%lld (%lld from %lld) out of range (shard has %lld)", r->path,
                        (long long)i0, (long long)last, (long long)n, (long long)i0, (long long)r->n);
    }
    return 0;
}

/* Read count elements starting at start of a 1-D column, with HDF5's error
 * printing already off (quiet_on).  i >= 0: the sample read (for the message);
 * i < 0 and n > 1: samples -i-1 .. -i-1+n-1; i < 0, n == 0: the whole column. */
static int read_range_q(m2u_shard_reader *r, rflat *c, hid_t mtype, int64_t start, size_t count, void *dst,
                        const char *name, int64_t i, int64_t n) {
    if (count == 0) return 0;
    /* callers pass the column's own type (uint8 text, int16 audio), which dchunk_setup checked */
    if (c->dc.ok && dchunk_read_range(r, c->dset, &c->dc, start, count, dst) == 0) return 0;
    hsize_t off = (hsize_t)start, cnt = count;
    if (H5Sselect_hyperslab(c->space, H5S_SELECT_SET, &off, NULL, &cnt, NULL) < 0 ||
        H5Sset_extent_simple(r->mem1, 1, &cnt, NULL) < 0 || H5Dread(c->dset, mtype, r->mem1, c->space, H5P_DEFAULT, dst) < 0) {
        if (i >= 0) return h5fail("%s: cannot read %s of sample %lld (corrupt or truncated?)", r->path, name, (long long)i);
        if (n > 1)
            return h5fail("%s: cannot read %s of samples %lld..%lld (corrupt or truncated?)", r->path, name,
                          (long long)(-i - 1), (long long)(-i - 1 + n - 1));
        return h5fail("%s: cannot read column %s (corrupt or truncated?)", r->path, name);
    }
    return 0;
}

static int read_range(m2u_shard_reader *r, rflat *c, hid_t mtype, int64_t start, size_t count, void *dst,
                      const char *name, int64_t i) {
    if (count == 0) return 0;
    quiet_t q;
    quiet_on(&q);
    int rc = read_range_q(r, c, mtype, start, count, dst, name, i, 0);
    quiet_off(&q);
    return rc;
}

int m2u_shard_text_len(const m2u_shard_reader *r, m2u_text_col c, int64_t i, size_t *len) {
    if ((int)c < 0 || c >= M2U_TEXT_COUNT) return m2u_fail("%s: text column %d out of range", r->path, (int)c);
    if (check_index(r, i) < 0) return -1;
    *len = (size_t)(r->text[c].off[i + 1] - r->text[c].off[i]);
    return 0;
}

int m2u_shard_get_text(m2u_shard_reader *r, m2u_text_col c, int64_t i, char **s, size_t *len) {
    *s = NULL;
    size_t n;
    if (m2u_shard_text_len(r, c, i, &n) < 0) return -1;
    char *buf = malloc(n + 1);
    if (!buf) return m2u_fail("%s: out of memory reading %s", r->path, TEXT_NAMES[c]);
    if (read_range(r, &r->text[c], H5T_NATIVE_UINT8, r->text[c].off[i], n, buf, TEXT_NAMES[c], i) < 0) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *s = buf;
    if (len) *len = n;
    return 0;
}

int m2u_shard_text_column(m2u_shard_reader *r, m2u_text_col c, char **data, size_t *nbytes,
                          const int64_t **offsets) {
    *data = NULL;
    if ((int)c < 0 || c >= M2U_TEXT_COUNT) return m2u_fail("%s: text column %d out of range", r->path, (int)c);
    size_t n = (size_t)r->text[c].off[r->n];
    char *buf = malloc(n + 1);
    if (!buf) return m2u_fail("%s: out of memory reading column %s", r->path, TEXT_NAMES[c]);
    if (read_range(r, &r->text[c], H5T_NATIVE_UINT8, 0, n, buf, TEXT_NAMES[c], -1) < 0) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *data = buf;
    if (nbytes) *nbytes = n;
    if (offsets) *offsets = r->text[c].off;
    return 0;
}

static const rflat *audio_col(const m2u_shard_reader *r, int target) {
    if (target ? !r->has_target : !r->has_audio) {
        m2u_fail("%s: shard has no %s column", r->path, target ? "target_audio" : "audio");
        return NULL;
    }
    return target ? &r->target : &r->audio;
}

int m2u_shard_audio_len(const m2u_shard_reader *r, int target, int64_t i, size_t *len) {
    const rflat *c = audio_col(r, target);
    if (!c || check_index(r, i) < 0) return -1;
    *len = (size_t)(c->off[i + 1] - c->off[i]);
    return 0;
}

int m2u_shard_get_audio_i16(m2u_shard_reader *r, int target, int64_t i, int16_t *dst, size_t cap) {
    size_t n;
    if (m2u_shard_audio_len(r, target, i, &n) < 0) return -1;
    if (cap < n) return m2u_fail("%s: sample %lld: audio has %zu samples, buffer %zu", r->path, (long long)i, n, cap);
    rflat *c = target ? &r->target : &r->audio;
    return read_range(r, c, H5T_NATIVE_INT16, c->off[i], n, dst, target ? "target_audio" : "audio", i);
}

int m2u_shard_get_audio_f32(m2u_shard_reader *r, int target, int64_t i, float *dst, size_t cap) {
    size_t n;
    if (m2u_shard_audio_len(r, target, i, &n) < 0) return -1;
    if (cap < n) return m2u_fail("%s: sample %lld: audio has %zu samples, buffer %zu", r->path, (long long)i, n, cap);
    /* Read int16 into the front half of the caller's float buffer and widen
     * from the back (memcpy loads: the bytes are reused as another type). */
    rflat *c = target ? &r->target : &r->audio;
    if (read_range(r, c, H5T_NATIVE_INT16, c->off[i], n, dst, target ? "target_audio" : "audio", i) < 0)
        return -1;
    const unsigned char *bytes = (const unsigned char *)dst;
    for (size_t k = n; k-- > 0;) {
        int16_t v;
        memcpy(&v, bytes + 2 * k, sizeof v);
        dst[k] = (float)v * (1.0f / 32768.0f);
    }
    return 0;
}

int m2u_shard_get_clip(const m2u_shard_reader *r, int64_t i, double *start, double *end) {
    if (check_index(r, i) < 0) return -1;
    if (start) *start = r->clip_start[i];
    if (end) *end = r->clip_end[i];
    return 0;
}

int m2u_shard_n_attrs(const m2u_shard_reader *r) { return r->n_attrs; }
const char *m2u_shard_attr_name(const m2u_shard_reader *r, int k) {
    return k >= 0 && k < r->n_attrs ? r->attr_names[k] : NULL;
}
int m2u_shard_attr_index(const m2u_shard_reader *r, const char *name) {
    for (int k = 0; k < r->n_attrs; k++)
        if (!strcmp(r->attr_names[k], name)) return k;
    return -1;
}
int m2u_shard_get_attrs(const m2u_shard_reader *r, int64_t i, float *dst) {
    if (check_index(r, i) < 0) return -1;
    if (r->n_attrs)
        memcpy(dst, r->attrs + (size_t)i * (size_t)r->n_attrs, (size_t)r->n_attrs * sizeof(float));
    return 0;
}

int m2u_shard_n_tensors(const m2u_shard_reader *r) { return r->n_tensors; }
const m2u_shard_tensor_info *m2u_shard_tensor(const m2u_shard_reader *r, int t) {
    return t >= 0 && t < r->n_tensors ? &r->info[t] : NULL;
}
int m2u_shard_tensor_index(const m2u_shard_reader *r, const char *name) {
    for (int t = 0; t < r->n_tensors; t++)
        if (!strcmp(r->info[t].name, name)) return t;
    return -1;
}
int m2u_shard_tensor_present(const m2u_shard_reader *r, int t, int64_t i) {
    if (t < 0 || t >= r->n_tensors) return m2u_fail("%s: tensor column %d out of range", r->path, t);
    if (check_index(r, i) < 0) return -1;
    return r->present[t][i] != 0;
}

/* Rows i .. i+n-1 of tensor t in one hyperslab (n = 1: the kept one-sample memory space). */
static int read_tensor(m2u_shard_reader *r, int t, int64_t i, int64_t n, hid_t mtype, void *dst) {
    const m2u_shard_tensor_info *x = &r->info[t];
    int rank = x->rank + 1;
    hsize_t off[M2U_SHARD_MAX_RANK + 1] = {0}, cnt[M2U_SHARD_MAX_RANK + 1];
    off[0] = (hsize_t)i;
    cnt[0] = (hsize_t)n;
    for (int d = 0; d < x->rank; d++) cnt[d + 1] = (hsize_t)x->dims[d];
    quiet_t q;
    quiet_on(&q);
    /* callers pass the column's stored type (float16 bits or uint8), which dchunk_setup checked */
    if (r->tdc[t].ok && dchunk_read_rows(r, r->tdset[t], &r->tdc[t], i, n, dst) == 0) {
        quiet_off(&q);
        return 0;
    }
    hid_t ms = n == 1 ? r->tmem[t] : H5Screate_simple(rank, cnt, NULL);
    int rc = 0;
    if (ms < 0 || H5Sselect_hyperslab(r->tspace[t], H5S_SELECT_SET, off, NULL, cnt, NULL) < 0 ||
        H5Dread(r->tdset[t], mtype, ms, r->tspace[t], H5P_DEFAULT, dst) < 0)
        rc = n == 1 ? h5fail("%s: cannot read tensor %s of sample %lld (corrupt or truncated?)", r->path, x->name,
                             (long long)i)
                    : h5fail("%s: cannot read tensor %s of samples %lld..%lld (corrupt or truncated?)", r->path,
                             x->name, (long long)i, (long long)(i + n - 1));
    if (n != 1 && ms >= 0) H5Sclose(ms);
    quiet_off(&q);
    return rc;
}

int m2u_shard_get_tensor_raw(m2u_shard_reader *r, int t, int64_t i, void *dst, size_t cap_bytes) {
    if (t < 0 || t >= r->n_tensors) return m2u_fail("%s: tensor column %d out of range", r->path, t);
    if (check_index(r, i) < 0) return -1;
    const m2u_shard_tensor_info *x = &r->info[t];
    size_t bytes = x->numel * (x->dtype == M2U_F16 ? 2 : 1);
    if (cap_bytes < bytes)
        return m2u_fail("%s: tensor %s needs %zu bytes, buffer %zu", r->path, x->name, bytes, cap_bytes);
    return read_tensor(r, t, i, 1, x->dtype == M2U_F16 ? r->f16_mem : H5T_NATIVE_UINT8, dst);
}

/* Grow the reader's batch staging buffer to at least bytes. */
static void *batch_buf(m2u_shard_reader *r, size_t bytes) {
    if (bytes > r->batch_cap) {
        void *b = realloc(r->batch, bytes);
        if (!b) {
            m2u_fail("%s: out of memory (%zu bytes for a batch)", r->path, bytes);
            return NULL;
        }
        r->batch = b;
        r->batch_cap = bytes;
    }
    return r->batch;
}

/* Rows i .. i+n-1 of tensor t widened to float32 into dst[n * numel]. */
static int tensor_rows_f32(m2u_shard_reader *r, int t, int64_t i, int64_t n, float *dst) {
    const m2u_shard_tensor_info *x = &r->info[t];
    size_t total = (size_t)n * x->numel;
    if (x->dtype == M2U_F16 && r->tdc[t].ok && n > 1) {
        /* Decoded chunk by chunk anyway: widen each row while it is in cache
         * (staging the batch's float16 rows first cost 12 % more on 16 rows
         * of MERT features, 1.6 MB of staging). */
        for (int64_t k = 0; k < n; k++)
            if (tensor_rows_f32(r, t, i + k, 1, dst + (size_t)k * x->numel) < 0) return -1;
        return 0;
    }
    if (x->dtype == M2U_F16) {
        uint16_t *h = n == 1 ? r->scratch : batch_buf(r, total * sizeof(uint16_t));
        if (!h || read_tensor(r, t, i, n, r->f16_mem, h) < 0) return -1;
        m2u_convert_to_f32(M2U_F16, h, dst, total); /* the vectorized loop */
        return 0;
    }
    /* uint8 pixels: read into the tail quarter of dst, widen front to back. */
    uint8_t *tmp = (uint8_t *)dst + 3 * total;
    if (read_tensor(r, t, i, n, H5T_NATIVE_UINT8, tmp) < 0) return -1;
    for (size_t e = 0; e < total; e++) dst[e] = (float)tmp[e];
    return 0;
}

int m2u_shard_get_tensor_f32(m2u_shard_reader *r, int t, int64_t i, float *dst, size_t cap) {
    if (t < 0 || t >= r->n_tensors) return m2u_fail("%s: tensor column %d out of range", r->path, t);
    if (check_index(r, i) < 0) return -1;
    const m2u_shard_tensor_info *x = &r->info[t];
    if (cap < x->numel) return m2u_fail("%s: tensor %s has %zu elements, buffer %zu", r->path, x->name, x->numel, cap);
    return tensor_rows_f32(r, t, i, 1, dst);
}

int m2u_shard_get_tensors_f32(m2u_shard_reader *r, int t, int64_t i0, int64_t n, float *dst, size_t cap) {
    if (!r || !dst) return m2u_fail("m2u_shard_get_tensors_f32: NULL argument");
    if (t < 0 || t >= r->n_tensors) return m2u_fail("%s: tensor column %d out of range", r->path, t);
    if (check_rows(r, i0, n) < 0) return -1;
    const m2u_shard_tensor_info *x = &r->info[t];
    if (x->numel && cap / x->numel < (size_t)n) /* n * numel > cap, without overflowing */
        return m2u_fail("%s: tensor %s: %lld samples of %zu elements, buffer %zu", r->path, x->name, (long long)n,
                        x->numel, cap);
    return tensor_rows_f32(r, t, i0, n, dst);
}

static int get_samples_quiet(m2u_shard_reader *r, int64_t i0, int64_t n, m2u_sample *out);

int m2u_shard_get_sample(m2u_shard_reader *r, int64_t i, m2u_sample *out) {
    memset(out, 0, sizeof *out);
    if (check_index(r, i) < 0) return -1;
    return get_samples_quiet(r, i, 1, out);
}

/* Copy of n bytes + NUL (at least one byte allocated). */
static char *dup_bytes(const char *p, size_t n) {
    char *s = malloc(n + 1);
    if (s) {
        if (n) memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* Samples i0 .. i0+n-1 into out[0..n-1] (zeroed), HDF5 quiet.  Each text
 * column is one hyperslab for the batch (staged, then split into the
 * samples' own allocations; n = 1 reads straight into the sample's buffer);
 * audio is read sample by sample into the samples' buffers. */
static int get_samples(m2u_shard_reader *r, int64_t i0, int64_t n, m2u_sample *out) {
    int64_t tag = n == 1 ? i0 : -i0 - 1; /* read_range_q's message */
    for (int c = 0; c < M2U_TEXT_COUNT; c++) {
        const int64_t *off = r->text[c].off;
        size_t bytes = (size_t)(off[i0 + n] - off[i0]);
        char *buf = n == 1 ? malloc(bytes + 1) : batch_buf(r, bytes + 1);
        if (!buf) return n == 1 ? m2u_fail("%s: out of memory reading %s", r->path, TEXT_NAMES[c]) : -1;
        if (n == 1) out[0].text[c] = buf;
        if (read_range_q(r, &r->text[c], H5T_NATIVE_UINT8, off[i0], bytes, buf, TEXT_NAMES[c], tag, n) < 0) return -1;
        if (n == 1) {
            buf[bytes] = '\0';
            out[0].text_len[c] = bytes;
            continue;
        }
        for (int64_t k = 0; k < n; k++) {
            size_t len = (size_t)(off[i0 + k + 1] - off[i0 + k]);
            if (!(out[k].text[c] = dup_bytes(buf + (off[i0 + k] - off[i0]), len)))
                return m2u_fail("%s: out of memory reading %s", r->path, TEXT_NAMES[c]);
            out[k].text_len[c] = len;
        }
    }
    for (int target = 0; target < 2; target++) {
        if (target ? !r->has_target : !r->has_audio) continue;
        rflat *c = target ? &r->target : &r->audio;
        const char *name = target ? "target_audio" : "audio";
        /* Straight into each sample's own buffer, one read per sample: audio is
         * large, and staging a batch's audio to split it costs more (a copy of
         * every byte) than the per-read overhead it saves. */
        for (int64_t k = 0; k < n; k++) {
            size_t len = (size_t)(c->off[i0 + k + 1] - c->off[i0 + k]);
            int16_t *a = malloc(len ? len * sizeof(int16_t) : 1);
            if (!a) return m2u_fail("%s: out of memory reading audio", r->path);
            if (target) out[k].target_audio = a, out[k].target_audio_len = len;
            else out[k].audio = a, out[k].audio_len = len;
            if (read_range_q(r, c, H5T_NATIVE_INT16, c->off[i0 + k], len, a, name, i0 + k, 1) < 0) return -1;
        }
    }
    for (int64_t k = 0; k < n; k++) {
        out[k].clip_start = r->clip_start[i0 + k];
        out[k].clip_end = r->clip_end[i0 + k];
        out[k].audio_rate = r->audio_rate;
        if (!r->n_attrs) continue;
        if (!(out[k].attrs = malloc((size_t)r->n_attrs * sizeof(float)))) return m2u_fail("%s: out of memory", r->path);
        out[k].n_attrs = r->n_attrs;
        memcpy(out[k].attrs, r->attrs + (size_t)(i0 + k) * (size_t)r->n_attrs, (size_t)r->n_attrs * sizeof(float));
    }
    return 0;
}

static int get_samples_quiet(m2u_shard_reader *r, int64_t i0, int64_t n, m2u_sample *out) {
    memset(out, 0, (size_t)n * sizeof *out);
    quiet_t q;
    quiet_on(&q);
    int rc = get_samples(r, i0, n, out);
    quiet_off(&q);
    if (rc < 0)
        for (int64_t k = 0; k < n; k++) m2u_sample_free(&out[k]);
    return rc;
}

int m2u_shard_get_samples(m2u_shard_reader *r, int64_t i0, int64_t n, m2u_sample *out) {
    if (!r || !out) return m2u_fail("m2u_shard_get_samples: NULL argument");
    if (check_rows(r, i0, n) < 0) return -1;
    return get_samples_quiet(r, i0, n, out);
}

void m2u_sample_free(m2u_sample *s) {
    if (!s) return;
    for (int c = 0; c < M2U_TEXT_COUNT; c++) free(s->text[c]);
    free(s->audio);
    free(s->target_audio);
    free(s->attrs);
    memset(s, 0, sizeof *s);
}
