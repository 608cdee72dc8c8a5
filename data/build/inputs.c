/* Input listing: folders, globs, JSON-lines manifests (see inputs.h). */
/* realpath() is XSI, not in the build-wide _POSIX_C_SOURCE=200809L set. */
#define _XOPEN_SOURCE 700
#include "inputs.h"

#include "fileio.h"
#include "m2u_error.h"
#include "sha256.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- kinds ----------------------------------------------------------------------- */

static const char *const k_audio[] = {"wav", "flac", "mp3", "ogg", "oga", "opus", "m4a", "aac", "wma", "aif",
                                      "aiff", "aifc", "mka", "wv", "ape", "mpc", "ac3", "tta", "caf", "au",
                                      "w64", "spx", "it", "s3m", "xm", "mod", "mid", "midi", "kar", NULL};
static const char *const k_image[] = {"png", "jpg", "jpeg", "webp", "bmp", "gif",
                                      "tif", "tiff", "ppm", "pgm", "tga", NULL};
static const char *const k_video[] = {"mp4", "m4v", "mkv", "webm", "mov", "avi", "mpg",
                                      "mpeg", "ogv", "flv", "wmv", "ts", "3gp", NULL};

static int in_list(const char *ext, const char *const *list) {
    for (; *list; list++)
        if (!strcasecmp(ext, *list)) return 1;
    return 0;
}

int m2u_media_kind_of(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base) return M2U_KIND_UNKNOWN;
    const char *ext = dot + 1;
    if (in_list(ext, k_audio)) return M2U_KIND_AUDIO;
    if (in_list(ext, k_image)) return M2U_KIND_IMAGE;
    if (in_list(ext, k_video)) return M2U_KIND_VIDEO;
    return M2U_KIND_UNKNOWN;
}

const char *m2u_media_kind_name(int kind) {
    switch (kind) {
    case M2U_KIND_AUDIO: return "audio";
    case M2U_KIND_IMAGE: return "image";
    case M2U_KIND_VIDEO: return "video";
    default: return "unknown";
    }
}

/* ---- helpers ------------------------------------------------------------------------- */

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* "./a//b/./c" -> "a/b/c" in place; ".." is kept (it is part of the name the user gave). */
static void normalize_rel(char *s) {
    char *w = s;
    const char *r = s;
    while (*r) {
        if (r[0] == '/' && ((w > s && w[-1] == '/') || (w == s && r != s))) { /* "//", or '/' left by "./" */
            r++;
            continue;
        }
        if (r[0] == '.' && (r[1] == '/' || r[1] == '\0') && (r == s || r[-1] == '/')) { /* "./" segment */
            r += r[1] ? 2 : 1;
            continue;
        }
        *w++ = *r++;
    }
    while (w > s && w[-1] == '/') w--;
    *w = '\0';
}

static char *join_rel(const char *prefix, const char *name) {
    size_t a = strlen(prefix), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, prefix, a);
    size_t k = a;
    if (a && b) p[k++] = '/';
    memcpy(p + k, name, b + 1);
    normalize_rel(p);
    return p;
}

static void make_id(const char *rel, int64_t size, char id[17]) {
    m2u_sha256 s;
    unsigned char d[32];
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)size);
    m2u_sha256_init(&s);
    m2u_sha256_update(&s, "m2u-input-v1\n", 13);
    m2u_sha256_update(&s, rel, strlen(rel));
    m2u_sha256_update(&s, "\n", 1);
    m2u_sha256_update(&s, num, strlen(num));
    m2u_sha256_final(&s, d);
    for (int i = 0; i < 8; i++) snprintf(id + 2 * i, 3, "%02x", d[i]);
}

static void input_free(m2u_input *in) {
    free(in->path);
    free(in->rel);
    free(in->licence);
    free(in->attribution);
    free(in->source);
    free(in->origin);
    memset(in, 0, sizeof *in);
}

/* Append an entry (all strings copied).  id_override may be NULL. */
static int push(m2u_input_list *l, const char *path, const char *rel, int kind, int64_t size, const char *licence,
                const char *attribution, const char *source, const char *origin, const char *id_override) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        m2u_input *p = realloc(l->items, nc * sizeof *p);
        if (!p) return m2u_fail("%s: out of memory listing inputs", origin);
        l->items = p;
        l->cap = nc;
    }
    m2u_input *in = &l->items[l->n];
    memset(in, 0, sizeof *in);
    in->path = dupstr(path);
    in->rel = dupstr(rel);
    in->licence = dupstr(licence);
    in->attribution = dupstr(attribution ? attribution : "");
    in->source = dupstr(source ? source : "");
    in->origin = dupstr(origin);
    if (!in->path || !in->rel || !in->licence || !in->attribution || !in->source || !in->origin) {
        input_free(in);
        return m2u_fail("%s: out of memory listing inputs", origin);
    }
    if (id_override)
        snprintf(in->id, sizeof in->id, "%s", id_override);
    else
        make_id(rel, size, in->id);
    in->kind = kind;
    in->size = size;
    in->order = l->n;
    l->n++;
    return 0;
}

static int wanted(const m2u_input_opts *o, int kind) {
    int mask = o && o->kinds ? o->kinds : M2U_KIND_ALL;
    return kind != M2U_KIND_UNKNOWN && (mask & kind);
}

/* Last path component of the real path of dir ("" for "/"), malloc'ed. */
static char *root_name(const char *dir) {
    char *real = realpath(dir, NULL);
    if (!real) {
        int e = errno;
        m2u_fail("%s: cannot resolve: %s", dir, strerror(e));
        return NULL;
    }
    char *slash = strrchr(real, '/');
    char *name = dupstr(slash ? slash + 1 : real);
    free(real);
    if (!name) m2u_fail("%s: out of memory", dir);
    return name;
}

static const char *need_licence(const char *what, const m2u_input_opts *o) {
    const char *lic = o ? o->default_licence : NULL;
    if (!lic || !lic[0]) {
        m2u_fail("%s: files listed from a folder or pattern carry no licence: use a manifest with a \"licence\" "
                 "per file, or give a default licence",
                 what);
        return NULL;
    }
    return lic;
}

/* ---- folders ----------------------------------------------------------------------------- */

static int walk(m2u_input_list *l, const char *dir, const char *rel, const m2u_input_opts *o, const char *licence,
                const char *origin, int depth) {
    if (depth > 64) return m2u_fail("%s: folders nested more than 64 deep", dir);
    DIR *dp = opendir(dir);
    if (!dp) {
        int e = errno;
        return m2u_fail("%s: cannot list folder: %s", dir, strerror(e));
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (errno = 0, de = readdir(dp)) != NULL) {
        const char *name = de->d_name;
        if (!strcmp(name, ".") || !strcmp(name, "..")) continue;
        if (name[0] == '.' && !(o && o->include_hidden)) continue;
        char *child = m2u_path_join(dir, name);
        char *crel = join_rel(rel, name);
        struct stat sb;
        if (!child || !crel) {
            rc = m2u_fail("%s: out of memory", dir);
        } else if (lstat(child, &sb) != 0) {
            int e = errno;
            rc = m2u_fail("%s: cannot stat: %s", child, strerror(e));
        } else if (S_ISDIR(sb.st_mode)) {
            rc = walk(l, child, crel, o, licence, origin, depth + 1);
        } else {
            int is_file = S_ISREG(sb.st_mode), dangling = 0;
            /* Follow links to files only: a link to a folder could loop. */
            if (S_ISLNK(sb.st_mode)) {
                if (stat(child, &sb) == 0) is_file = S_ISREG(sb.st_mode);
                else dangling = 1;
            }
            int kind = m2u_media_kind_of(name);
            /* A dangling link is listed as missing (size -1): the build records it
             * as unusable, like any file it cannot open, instead of losing it. */
            if ((is_file || dangling) && wanted(o, kind))
                rc = push(l, child, crel, kind, dangling ? -1 : (int64_t)sb.st_size, licence,
                          o ? o->default_attribution : NULL, o ? o->default_source : NULL, origin, NULL);
        }
        free(child);
        free(crel);
    }
    if (rc == 0 && errno != 0) {
        int e = errno;
        rc = m2u_fail("%s: error reading folder: %s", dir, strerror(e));
    }
    closedir(dp);
    return rc;
}

int m2u_inputs_add_dir(m2u_input_list *l, const char *dir, const m2u_input_opts *o) {
    if (!m2u_is_dir(dir)) return m2u_fail("%s: not a folder", dir);
    const char *lic = need_licence(dir, o);
    if (!lic) return -1;
    char *name = root_name(dir);
    if (!name) return -1;
    size_t olen = strlen(dir) + 8;
    char *origin = malloc(olen);
    int rc;
    if (!origin) {
        rc = m2u_fail("%s: out of memory", dir);
    } else {
        snprintf(origin, olen, "dir:%s", dir);
        rc = walk(l, dir, name, o, lic, origin, 0);
    }
    free(origin);
    free(name);
    return rc;
}

/* ---- globs --------------------------------------------------------------------------------- */

int m2u_inputs_add_glob(m2u_input_list *l, const char *pattern, const m2u_input_opts *o) {
    const char *lic = need_licence(pattern, o);
    if (!lic) return -1;
    /* Root = the wildcard-free folder prefix; matches start with it verbatim. */
    size_t wild = strcspn(pattern, "*?[");
    size_t cut = 0; /* bytes of the pattern (with the '/') that make up the root */
    for (size_t i = 0; i < wild; i++)
        if (pattern[i] == '/') cut = i + 1;
    char *root = malloc(cut + 2);
    if (!root) return m2u_fail("%s: out of memory", pattern);
    if (cut) {
        memcpy(root, pattern, cut);
        root[cut] = '\0';
    } else {
        strcpy(root, ".");
    }
    char *name = root_name(root);
    free(root);
    if (!name) return m2u_fail_prefix("glob %s", pattern);

    glob_t g;
    memset(&g, 0, sizeof g);
    int gr = glob(pattern, GLOB_ERR, NULL, &g);
    size_t olen = strlen(pattern) + 8;
    char *origin = malloc(olen);
    int rc = 0;
    if (!origin) {
        rc = m2u_fail("%s: out of memory", pattern);
    } else if (gr == GLOB_NOMATCH) {
        if (o && o->strict) {
            rc = m2u_fail("%s: the pattern matches no file", pattern);
        } else { /* listed as missing: the build records it and goes on */
            snprintf(origin, olen, "glob:%s", pattern);
            rc = push(l, pattern, pattern, m2u_media_kind_of(pattern), -1, lic, o ? o->default_attribution : NULL,
                      o ? o->default_source : NULL, origin, NULL);
        }
    } else if (gr != 0) {
        rc = m2u_fail("%s: glob failed (%s)", pattern, gr == GLOB_NOSPACE ? "out of memory" : "read error");
    } else {
        snprintf(origin, olen, "glob:%s", pattern);
        for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++) {
            const char *m = g.gl_pathv[i];
            char *rel = join_rel(name, strlen(m) >= cut ? m + cut : m);
            struct stat sb;
            if (!rel) {
                rc = m2u_fail("%s: out of memory", pattern);
            } else if (stat(m, &sb) != 0) {
                int e = errno;
                if (lstat(m, &sb) == 0 && S_ISLNK(sb.st_mode)) { /* dangling link: recorded, as by walk() */
                    if (wanted(o, m2u_media_kind_of(m)))
                        rc = push(l, m, rel, m2u_media_kind_of(m), -1, lic, o ? o->default_attribution : NULL,
                                  o ? o->default_source : NULL, origin, NULL);
                } else {
                    rc = m2u_fail("%s: cannot stat: %s", m, strerror(e));
                }
            } else if (S_ISDIR(sb.st_mode)) {
                rc = walk(l, m, rel, o, lic, origin, 0);
            } else if (S_ISREG(sb.st_mode) && wanted(o, m2u_media_kind_of(m))) {
                rc = push(l, m, rel, m2u_media_kind_of(m), (int64_t)sb.st_size, lic,
                          o ? o->default_attribution : NULL, o ? o->default_source : NULL, origin, NULL);
            }
            free(rel);
        }
    }
    globfree(&g);
    free(origin);
    free(name);
    return rc;
}

/* ---- manifests -------------------------------------------------------------------------------- */

static int is_unknown_licence(const char *s) {
    return !s[0] || !strcasecmp(s, "unknown") || !strcmp(s, "?");
}

static int valid_id(const char *s) {
    size_t n = strlen(s);
    if (n < 1 || n > 16) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') return 0;
    return 1;
}

/* Optional string field: 0 ok (*out NULL when absent or null), -1 wrong type. */
static int opt_string(const cJSON *obj, const char *key, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsString(v) || !v->valuestring) return -1;
    *out = v->valuestring;
    return 0;
}

static int manifest_line(m2u_input_list *l, const char *mpath, const char *mdir, const char *mdir_real, int lineno,
                         const char *line, size_t len, const m2u_input_opts *o) {
    cJSON *obj = cJSON_ParseWithLength(line, len);
    if (!obj) {
        const char *ep = cJSON_GetErrorPtr();
        long col = ep && ep >= line && ep <= line + len ? (long)(ep - line) + 1 : 1;
        return m2u_fail("%s:%d: invalid JSON near column %ld", mpath, lineno, col);
    }
    int rc = 0;
    const char *path, *lic, *lic2, *attr, *src, *kind_s, *id;
    char *open_path = NULL, *rel = NULL, origin[64 + PATH_MAX];
    snprintf(origin, sizeof origin, "%s:%d", mpath, lineno);
    if (!cJSON_IsObject(obj)) {
        rc = m2u_fail("%s:%d: expected a JSON object", mpath, lineno);
        goto out;
    }
    if (opt_string(obj, "path", &path) < 0 || !path || !path[0]) {
        rc = m2u_fail("%s:%d: \"path\" is missing or not a non-empty string", mpath, lineno);
        goto out;
    }
    if (opt_string(obj, "licence", &lic) < 0 || opt_string(obj, "license", &lic2) < 0) {
        rc = m2u_fail("%s:%d: \"licence\" must be a string", mpath, lineno);
        goto out;
    }
    if (!lic || is_unknown_licence(lic)) lic = lic2;
    if (!lic || is_unknown_licence(lic)) {
        lic = o ? o->default_licence : NULL;
        if (!lic || !lic[0]) {
            rc = m2u_fail("%s:%d: no licence for %s (add \"licence\", or give a default licence)", mpath, lineno,
                          path);
            goto out;
        }
    }
    if (opt_string(obj, "attribution", &attr) < 0 || opt_string(obj, "source", &src) < 0 ||
        opt_string(obj, "kind", &kind_s) < 0 || opt_string(obj, "id", &id) < 0) {
        rc = m2u_fail("%s:%d: \"attribution\", \"source\", \"kind\" and \"id\" must be strings", mpath, lineno);
        goto out;
    }
    int kind;
    if (kind_s) {
        kind = !strcmp(kind_s, "audio") ? M2U_KIND_AUDIO
               : !strcmp(kind_s, "image") ? M2U_KIND_IMAGE
               : !strcmp(kind_s, "video") ? M2U_KIND_VIDEO
                                          : -1;
        if (kind < 0) {
            rc = m2u_fail("%s:%d: \"kind\" must be audio, image or video, not \"%s\"", mpath, lineno, kind_s);
            goto out;
        }
    } else {
        kind = m2u_media_kind_of(path);
    }
    if (id && !valid_id(id)) {
        rc = m2u_fail("%s:%d: \"id\" must be 1-16 of [A-Za-z0-9._-], not \"%s\"", mpath, lineno, id);
        goto out;
    }
    int mask = o && o->kinds ? o->kinds : M2U_KIND_ALL;
    if (kind != M2U_KIND_UNKNOWN && !(mask & kind)) goto out; /* not wanted by this build */

    /* rel starts with the manifest folder's name, as a folder listing of that
     * folder would: the same file gets the same id either way. */
    const char *mname = "";
    if (mdir_real) {
        const char *sl = strrchr(mdir_real, '/');
        mname = sl ? sl + 1 : mdir_real;
    }
    if (path[0] == '/') {
        open_path = dupstr(path);
        size_t dl = mdir_real ? strlen(mdir_real) : 0;
        rel = dl && !strncmp(path, mdir_real, dl) && path[dl] == '/' ? join_rel(mname, path + dl + 1) : dupstr(path);
    } else {
        open_path = m2u_path_join(mdir, path);
        rel = join_rel(mname, path);
    }
    if (!open_path || !rel) {
        rc = m2u_fail("%s:%d: out of memory", mpath, lineno);
        goto out;
    }
    normalize_rel(rel);
    struct stat sb;
    int64_t size = stat(open_path, &sb) == 0 ? (int64_t)sb.st_size : -1;
    rc = push(l, open_path, rel, kind, size, lic, attr ? attr : o ? o->default_attribution : NULL,
              src ? src : o ? o->default_source : NULL, origin, id);
out:
    free(open_path);
    free(rel);
    cJSON_Delete(obj);
    return rc;
}

int m2u_inputs_add_manifest(m2u_input_list *l, const char *mpath, const m2u_input_opts *o) {
    char *text = NULL;
    size_t len = 0;
    if (m2u_read_file(mpath, &text, &len) < 0) return m2u_fail_prefix("reading manifest %s", mpath);
    /* Paths in the manifest are relative to its own folder. */
    const char *slash = strrchr(mpath, '/');
    char *mdir = slash ? malloc((size_t)(slash - mpath) + 2) : dupstr(".");
    if (!mdir) {
        free(text);
        return m2u_fail("%s: out of memory", mpath);
    }
    if (slash) {
        size_t n = slash == mpath ? 1 : (size_t)(slash - mpath);
        memcpy(mdir, mpath, n);
        mdir[n] = '\0';
    }
    char *mdir_real = realpath(mdir, NULL);
    if (!mdir_real) {
        int e = errno;
        free(mdir);
        free(text);
        return m2u_fail("%s: cannot resolve its folder: %s", mpath, strerror(e));
    }
    int rc = 0, lineno = 0;
    size_t before = l->n;
    for (char *p = text; rc == 0 && p < text + len;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(text + len - p);
        lineno++;
        size_t m = n;
        while (m > 0 && (p[m - 1] == '\r' || p[m - 1] == ' ' || p[m - 1] == '\t')) m--;
        size_t s = 0;
        while (s < m && (p[s] == ' ' || p[s] == '\t')) s++;
        if (memchr(p, '\0', n)) {
            rc = m2u_fail("%s:%d: NUL byte in the line (not a text file?)", mpath, lineno);
        } else if (s < m) {
            rc = manifest_line(l, mpath, mdir, mdir_real, lineno, p + s, m - s, o);
        }
        p += n + 1;
    }
    if (rc < 0) { /* all or nothing: a half-read manifest would silently drop files */
        while (l->n > before) input_free(&l->items[--l->n]);
    }
    free(mdir_real);
    free(mdir);
    free(text);
    return rc;
}

/* ---- dispatch, order, duplicates ------------------------------------------------------------ */

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

/* A named input that does not exist: listed with size -1 under its own name
 * (the build records it as cannot-open and goes on), or an error when strict. */
static int add_missing(m2u_input_list *l, const char *spec, const m2u_input_opts *o, int err) {
    if (o && o->strict) return m2u_fail("%s: cannot open: %s", spec, strerror(err));
    char *rel = dupstr(spec);
    if (!rel) return m2u_fail("%s: out of memory", spec);
    normalize_rel(rel);
    const char *lic = o && o->default_licence && o->default_licence[0] ? o->default_licence : "unknown";
    size_t olen = strlen(spec) + 16;
    char *origin = malloc(olen);
    int rc = origin ? 0 : m2u_fail("%s: out of memory", spec);
    if (!rc) {
        snprintf(origin, olen, "input:%s", spec);
        rc = push(l, spec, rel, m2u_media_kind_of(spec), -1, lic, o ? o->default_attribution : NULL,
                  o ? o->default_source : NULL, origin, NULL);
    }
    free(origin);
    free(rel);
    return rc;
}

int m2u_inputs_add(m2u_input_list *l, const char *spec, const m2u_input_opts *o) {
    if (!strpbrk(spec, "*?[")) {
        struct stat sb;
        if (stat(spec, &sb) != 0) return add_missing(l, spec, o, errno);
    }
    if (m2u_is_dir(spec)) return m2u_inputs_add_dir(l, spec, o);
    if (ends_with(spec, ".jsonl") || ends_with(spec, ".ndjson")) return m2u_inputs_add_manifest(l, spec, o);
    if (strpbrk(spec, "*?[")) return m2u_inputs_add_glob(l, spec, o);
    /* A single file: a glob without wildcards has the same root rule. */
    return m2u_inputs_add_glob(l, spec, o);
}

static int cmp_canonical(const void *a, const void *b) {
    const m2u_input *x = a, *y = b;
    int c = strcmp(x->rel, y->rel);
    if (c) return c;
    c = strcmp(x->id, y->id);
    if (c) return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_id(const void *a, const void *b) {
    const m2u_input *x = *(m2u_input *const *)a, *y = *(m2u_input *const *)b;
    int c = strcmp(x->id, y->id);
    if (c) return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

typedef struct {
    dev_t dev;
    ino_t ino;
    size_t order, idx;
} file_key;

static int cmp_file_key(const void *a, const void *b) {
    const file_key *x = a, *y = b;
    if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino) return x->ino < y->ino ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

int m2u_inputs_finish(m2u_input_list *l) {
    if (l->n == 0) return 0;
    m2u_input **by_id = malloc(l->n * sizeof *by_id);
    file_key *keys = malloc(l->n * sizeof *keys);
    char *drop = calloc(l->n, 1);
    int rc = 0;
    if (!by_id || !keys || !drop) {
        rc = m2u_fail("inputs: out of memory");
        goto out;
    }
    /* 1. The same file reached twice (a folder and a manifest, overlapping
     *    globs, a manifest "id" beside a folder listing): the first listing,
     *    in the order the inputs were added, is kept. */
    size_t nk = 0;
    for (size_t i = 0; i < l->n; i++) {
        struct stat sb;
        if (stat(l->items[i].path, &sb) == 0) {
            keys[nk].dev = sb.st_dev;
            keys[nk].ino = sb.st_ino;
            keys[nk].order = l->items[i].order;
            keys[nk].idx = i;
            nk++;
        }
    }
    qsort(keys, nk, sizeof *keys, cmp_file_key);
    for (size_t i = 1; i < nk; i++)
        if (keys[i].dev == keys[i - 1].dev && keys[i].ino == keys[i - 1].ino) drop[keys[i].idx] = 1;
    /* 2. Any id left twice belongs to two different files (or two missing
     *    paths): ambiguous, so refuse rather than guess. */
    size_t m = 0;
    for (size_t i = 0; i < l->n; i++)
        if (!drop[i]) by_id[m++] = &l->items[i];
    qsort(by_id, m, sizeof *by_id, cmp_id);
    for (size_t i = 1; rc == 0 && i < m; i++) {
        if (strcmp(by_id[i]->id, by_id[i - 1]->id)) continue;
        if (!strcmp(by_id[i]->path, by_id[i - 1]->path)) { /* a missing file listed twice */
            drop[by_id[i] - l->items] = 1;
            continue;
        }
        rc = m2u_fail("duplicate input id %s: %s (%s) and %s (%s); give distinct \"id\"s in a manifest",
                      by_id[i - 1]->id, by_id[i - 1]->path, by_id[i - 1]->origin, by_id[i]->path, by_id[i]->origin);
    }
    if (rc == 0) {
        size_t w = 0;
        for (size_t i = 0; i < l->n; i++) {
            if (drop[i])
                input_free(&l->items[i]);
            else
                l->items[w++] = l->items[i];
        }
        l->n = w;
        qsort(l->items, l->n, sizeof *l->items, cmp_canonical);
    }
out:
    free(by_id);
    free(keys);
    free(drop);
    return rc;
}

void m2u_inputs_free(m2u_input_list *l) {
    for (size_t i = 0; i < l->n; i++) input_free(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}
