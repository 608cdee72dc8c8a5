/* m2u-eval compare (see compare.h). */
#include "compare.h"

#include "fileio.h"
#include "m2u_error.h"
#include "strbuf.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PUBLISHED_FORMAT "m2u-published-table"
#define MAX_DEPTH 32      /* m2u's reports nest 5 deep; deeper JSON is not one of them */
#define MAX_VALUES 100000 /* a report has a few hundred numbers; more means a wrong file */

/* Subtrees that are per-item or matrix data, not scores. */
static int skipped_key(const char *k) {
    static const char *const skip[] = {"items", "per_item", "confusion", "skipped_lines", "held_out", NULL};
    for (int i = 0; skip[i]; i++)
        if (!strcmp(k, skip[i])) return 1;
    return 0;
}

/* Strings that say how a number was made. */
static int provenance_key(const char *k) {
    static const char *const keys[] = {"conventions", "embedding", "embedder", "checkpoint", "settings", "reason",
                                       "tokenizer",   "model",     "baseline", "layer",      "resampler", NULL};
    for (int i = 0; keys[i]; i++)
        if (!strcmp(k, keys[i])) return 1;
    size_t n = strlen(k);
    return (n > 7 && !strcmp(k + n - 7, "_sha256")) || !strcmp(k, "sha256") || !strncmp(k, "checkpoint_", 11);
}

/* Objects whose every leaf is provenance (numbers included: a layer index is a setting, not a score). */
static int provenance_object(const char *k) {
    return !strcmp(k, "settings") || !strcmp(k, "conventions") || !strcmp(k, "provenance");
}

typedef struct {
    m2u_cmp_source *s;
    const char *origin;
    size_t cap_v, cap_n;
} builder;

static int add_value(builder *b, const char *path, double v) {
    m2u_cmp_source *s = b->s;
    if (isinf(v)) return m2u_fail("%s: metric '%s' is not finite", b->origin, path);
    for (size_t i = 0; i < s->n_v; i++)
        if (!strcmp(s->v[i].path, path)) return m2u_fail("%s: metric '%s' appears twice", b->origin, path);
    if (s->n_v >= MAX_VALUES) return m2u_fail("%s: more than %d numbers: not an evaluation report", b->origin, MAX_VALUES);
    if (s->n_v == b->cap_v) {
        size_t c = b->cap_v ? 2 * b->cap_v : 32;
        m2u_cmp_value *nv = realloc(s->v, c * sizeof *nv);
        if (!nv) return m2u_fail("out of memory");
        s->v = nv, b->cap_v = c;
    }
    char *p = strdup(path);
    if (!p) return m2u_fail("out of memory");
    s->v[s->n_v++] = (m2u_cmp_value){p, v};
    return 0;
}

static int add_note(builder *b, const char *path, const char *key, const char *text) {
    m2u_cmp_source *s = b->s;
    if (s->n_notes >= MAX_VALUES) return m2u_fail("%s: too many notes", b->origin);
    if (s->n_notes == b->cap_n) {
        size_t c = b->cap_n ? 2 * b->cap_n : 16;
        m2u_cmp_note *nn = realloc(s->notes, c * sizeof *nn);
        if (!nn) return m2u_fail("out of memory");
        s->notes = nn, b->cap_n = c;
    }
    m2u_cmp_note n = {strdup(path), strdup(key), strdup(text)};
    if (!n.path || !n.key || !n.text) {
        free(n.path), free(n.key), free(n.text);
        return m2u_fail("out of memory");
    }
    s->notes[s->n_notes++] = n;
    return 0;
}

static char *join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    char *p = malloc(na + nb + 2);
    if (!p) return NULL;
    memcpy(p, a, na);
    size_t o = na;
    if (na) p[o++] = '.';
    memcpy(p + o, b, nb + 1);
    return p;
}

/* A leaf of a provenance object, as text. */
static int note_leaf(builder *b, const char *path, const char *key, const cJSON *x) {
    char buf[64];
    if (cJSON_IsString(x)) return add_note(b, path, key, x->valuestring);
    if (cJSON_IsNumber(x)) {
        snprintf(buf, sizeof buf, "%.10g", x->valuedouble);
        return add_note(b, path, key, buf);
    }
    if (cJSON_IsBool(x)) return add_note(b, path, key, cJSON_IsTrue(x) ? "true" : "false");
    return 0;
}

static int walk(builder *b, const cJSON *o, const char *path, int depth);

static int walk_provenance(builder *b, const cJSON *o, const char *path, const char *key, int depth) {
    if (depth > MAX_DEPTH) return m2u_fail("%s: nested deeper than %d levels at '%s'", b->origin, MAX_DEPTH, path);
    if (!cJSON_IsObject(o)) return note_leaf(b, path, key, o);
    for (const cJSON *x = o->child; x; x = x->next) {
        char *k = join(key, x->string);
        if (!k) return m2u_fail("out of memory");
        int rc = walk_provenance(b, x, path, k, depth + 1);
        free(k);
        if (rc) return rc;
    }
    return 0;
}

static int walk(builder *b, const cJSON *o, const char *path, int depth) {
    if (depth > MAX_DEPTH) return m2u_fail("%s: nested deeper than %d levels at '%s'", b->origin, MAX_DEPTH, path);
    /* {"value": x, ...}: the object is the metric, its strings the provenance */
    const cJSON *val = cJSON_GetObjectItemCaseSensitive(o, "value");
    if (val && (cJSON_IsNumber(val) || cJSON_IsNull(val)) && *path) {
        if (add_value(b, path, cJSON_IsNumber(val) ? val->valuedouble : NAN)) return -1;
    }
    for (const cJSON *x = o->child; x; x = x->next) {
        const char *k = x->string;
        if (!k || !*k || skipped_key(k) || x == val) continue;
        if (strchr(k, '.')) continue; /* a dotted key would make an ambiguous path */
        char *p = join(path, k);
        if (!p) return m2u_fail("out of memory");
        int rc = 0;
        if (provenance_object(k)) rc = walk_provenance(b, x, path, k, depth + 1);
        else if (cJSON_IsObject(x)) rc = walk(b, x, p, depth + 1);
        else if (cJSON_IsString(x) && provenance_key(k)) rc = add_note(b, path, k, x->valuestring);
        else if (cJSON_IsNumber(x) && !val) rc = add_value(b, p, x->valuedouble);
        else if (cJSON_IsNumber(x) && val) rc = note_leaf(b, path, k, x); /* counts beside a value */
        free(p);
        if (rc) return rc;
    }
    return 0;
}

static int read_published(builder *b, const cJSON *root) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "metrics");
    if (!cJSON_IsObject(m)) return m2u_fail("%s: a published table needs an object \"metrics\"", b->origin);
    for (const cJSON *x = m->child; x; x = x->next) {
        if (!x->string || !*x->string) return m2u_fail("%s: a metric with an empty name", b->origin);
        if (!cJSON_IsNumber(x) && !cJSON_IsNull(x))
            return m2u_fail("%s: metric '%s' must be a number or null", b->origin, x->string);
        if (cJSON_IsNumber(x) && !isfinite(x->valuedouble))
            return m2u_fail("%s: metric '%s' is not finite", b->origin, x->string);
        if (add_value(b, x->string, cJSON_IsNumber(x) ? x->valuedouble : NAN)) return -1;
    }
    const cJSON *notes = cJSON_GetObjectItemCaseSensitive(root, "notes");
    if (notes && !cJSON_IsObject(notes)) return m2u_fail("%s: \"notes\" must be an object of strings", b->origin);
    for (const cJSON *x = notes ? notes->child : NULL; x; x = x->next) {
        if (!cJSON_IsString(x) || !x->string)
            return m2u_fail("%s: note '%s' must be a string", b->origin, x->string ? x->string : "");
        if (add_note(b, x->string, "note", x->valuestring)) return -1;
    }
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(root, "source");
    if (src && !cJSON_IsString(src)) return m2u_fail("%s: \"source\" must be a string", b->origin);
    if (src && add_note(b, "", "source", src->valuestring)) return -1;
    return 0;
}

static void source_free(m2u_cmp_source *s) {
    free(s->name);
    free(s->origin);
    for (size_t i = 0; i < s->n_v; i++) free(s->v[i].path);
    free(s->v);
    for (size_t i = 0; i < s->n_notes; i++) free(s->notes[i].path), free(s->notes[i].key), free(s->notes[i].text);
    free(s->notes);
}

int m2u_compare_add_json(m2u_compare *c, const char *json, size_t len, const char *origin, const char *name) {
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) return m2u_fail("%s: not JSON (near byte %ld)", origin, (long)(cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() - json : 0));
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return m2u_fail("%s: not a JSON object", origin);
    }
    m2u_cmp_source s = {0};
    builder b = {&s, origin, 0, 0};
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(root, "name");
    int rc;
    if (cJSON_IsString(fmt) && !strcmp(fmt->valuestring, PUBLISHED_FORMAT)) {
        s.published = 1;
        if (!name && !cJSON_IsString(nm)) rc = m2u_fail("%s: a published table needs a string \"name\"", origin);
        else rc = read_published(&b, root);
    } else {
        rc = walk(&b, root, "", 0);
        if (!rc && s.n_v == 0) rc = m2u_fail("%s: no numbers in it: not an m2u-eval report", origin);
    }
    if (!rc) {
        s.name = strdup(name ? name : s.published ? nm->valuestring : origin);
        s.origin = strdup(origin);
        if (!s.name || !s.origin) rc = m2u_fail("out of memory");
    }
    if (!rc) {
        m2u_cmp_source *ns = realloc(c->src, (c->n_src + 1) * sizeof *ns);
        if (!ns) rc = m2u_fail("out of memory");
        else c->src = ns, c->src[c->n_src++] = s;
    }
    if (rc) source_free(&s);
    cJSON_Delete(root);
    return rc;
}

int m2u_compare_add(m2u_compare *c, const char *path, const char *name) {
    char *file = m2u_is_dir(path) ? m2u_path_join(path, "report.json") : strdup(path);
    if (!file) return m2u_fail("out of memory");
    char *data = NULL;
    size_t len = 0;
    int rc = m2u_read_file(file, &data, &len);
    if (!rc) rc = m2u_compare_add_json(c, data, len, file, name);
    free(data);
    free(file);
    return rc;
}

void m2u_compare_free(m2u_compare *c) {
    for (size_t i = 0; i < c->n_src; i++) source_free(&c->src[i]);
    free(c->src);
    c->src = NULL;
    c->n_src = 0;
}

int m2u_compare_rows(const m2u_compare *c, const char ***paths, size_t *n) {
    size_t total = 0, k = 0;
    for (size_t s = 0; s < c->n_src; s++) total += c->src[s].n_v;
    const char **p = malloc((total ? total : 1) * sizeof *p);
    if (!p) return m2u_fail("out of memory");
    /* quadratic, but a comparison has a few sources of a few hundred numbers */
    for (size_t s = 0; s < c->n_src; s++)
        for (size_t i = 0; i < c->src[s].n_v; i++) {
            const char *q = c->src[s].v[i].path;
            size_t j = 0;
            while (j < k && strcmp(p[j], q)) j++;
            if (j == k) p[k++] = q;
        }
    *paths = p;
    *n = k;
    return 0;
}

int m2u_compare_get(const m2u_compare *c, size_t s, const char *path, double *v) {
    for (size_t i = 0; i < c->src[s].n_v; i++)
        if (!strcmp(c->src[s].v[i].path, path)) {
            *v = c->src[s].v[i].value;
            return 1;
        }
    return 0;
}

/* The notes of source s that apply to path (about it or an object above it). */
static int note_applies(const m2u_cmp_note *n, const char *path) {
    size_t l = strlen(n->path);
    return l == 0 || (!strncmp(path, n->path, l) && (path[l] == 0 || path[l] == '.'));
}

static void fmt_value(char *buf, size_t n, int have, double v) {
    if (!have) snprintf(buf, n, "—");
    else if (isnan(v)) snprintf(buf, n, "not measured");
    else snprintf(buf, n, "%.6g", v);
}

static int write_text(const char *dir, const char *name, m2u_strbuf *b) {
    char *txt = m2u_sb_take(b);
    if (!txt) return m2u_fail("out of memory");
    char *p = m2u_path_join(dir, name);
    int rc = p ? m2u_write_file_atomic(p, txt, strlen(txt)) : m2u_fail("out of memory");
    free(p);
    free(txt);
    return rc;
}

static int write_json(const m2u_compare *c, const char *dir, const char **rows, size_t nr) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", "m2u-compare");
    cJSON_AddNumberToObject(o, "version", 1);
    cJSON *srcs = cJSON_AddArrayToObject(o, "sources");
    for (size_t s = 0; s < c->n_src; s++) {
        const m2u_cmp_source *x = &c->src[s];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", x->name);
        cJSON_AddStringToObject(j, "file", x->origin);
        cJSON_AddBoolToObject(j, "published", x->published);
        cJSON *notes = cJSON_AddArrayToObject(j, "provenance");
        for (size_t i = 0; i < x->n_notes; i++) {
            cJSON *n = cJSON_CreateObject();
            cJSON_AddStringToObject(n, "path", x->notes[i].path);
            cJSON_AddStringToObject(n, "key", x->notes[i].key);
            cJSON_AddStringToObject(n, "text", x->notes[i].text);
            cJSON_AddItemToArray(notes, n);
        }
        cJSON_AddItemToArray(srcs, j);
    }
    cJSON *m = cJSON_AddArrayToObject(o, "metrics");
    for (size_t r = 0; r < nr; r++) {
        cJSON *row = cJSON_CreateObject();
        cJSON_AddStringToObject(row, "path", rows[r]);
        cJSON *vals = cJSON_AddArrayToObject(row, "values"); /* one per source; null: absent or not measured */
        for (size_t s = 0; s < c->n_src; s++) {
            double v;
            int have = m2u_compare_get(c, s, rows[r], &v);
            cJSON_AddItemToArray(vals, have && isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
        }
        cJSON_AddItemToArray(m, row);
    }
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    if (!txt) return m2u_fail("out of memory");
    char *p = m2u_path_join(dir, "compare.json");
    int rc = p ? m2u_write_file_atomic(p, txt, strlen(txt)) : m2u_fail("out of memory");
    free(p);
    free(txt);
    return rc;
}

static int write_md(const m2u_compare *c, const char *dir, const char **rows, size_t nr) {
    m2u_strbuf b = {0};
    char v[48];
    m2u_sb_puts(&b, "# m2u-eval compare\n\n| metric |");
    for (size_t s = 0; s < c->n_src; s++) {
        m2u_sb_puts(&b, " ");
        m2u_sb_md_cell(&b, c->src[s].name);
        m2u_sb_puts(&b, c->src[s].published ? " (published) |" : " |");
    }
    m2u_sb_puts(&b, "\n|---|");
    for (size_t s = 0; s < c->n_src; s++) m2u_sb_puts(&b, "---:|");
    m2u_sb_puts(&b, "\n");
    for (size_t r = 0; r < nr; r++) {
        m2u_sb_puts(&b, "| `");
        m2u_sb_md_cell(&b, rows[r]);
        m2u_sb_puts(&b, "` |");
        for (size_t s = 0; s < c->n_src; s++) {
            double x;
            int have = m2u_compare_get(c, s, rows[r], &x);
            fmt_value(v, sizeof v, have, x);
            m2u_sb_printf(&b, " %s |", v);
        }
        m2u_sb_puts(&b, "\n");
    }
    m2u_sb_puts(&b, "\n## How each number was made\n\n");
    for (size_t s = 0; s < c->n_src; s++) {
        m2u_sb_puts(&b, "### ");
        m2u_sb_md_cell(&b, c->src[s].name);
        m2u_sb_puts(&b, "\n\nFile: `");
        m2u_sb_md_cell(&b, c->src[s].origin);
        m2u_sb_puts(&b, "`\n\n");
        for (size_t i = 0; i < c->src[s].n_notes; i++) {
            const m2u_cmp_note *n = &c->src[s].notes[i];
            m2u_sb_puts(&b, "- `");
            m2u_sb_md_cell(&b, *n->path ? n->path : "(all)");
            m2u_sb_puts(&b, "` ");
            m2u_sb_md_cell(&b, n->key);
            m2u_sb_puts(&b, ": ");
            m2u_sb_md_cell(&b, n->text);
            m2u_sb_puts(&b, "\n");
        }
        m2u_sb_puts(&b, "\n");
    }
    return write_text(dir, "compare.md", &b);
}

static int write_html(const m2u_compare *c, const char *dir, const char **rows, size_t nr) {
    m2u_strbuf b = {0};
    char v[48];
    m2u_sb_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>m2u-eval compare</title>\n"
                    "<style>body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse}"
                    "td,th{border:1px solid #bbb;padding:.3em .6em}td.num{text-align:right;font-variant-numeric:"
                    "tabular-nums}th.pub{background:#f3efe0}td.absent{color:#999}code{font-size:90%}"
                    "sup{color:#a33}</style></head><body>\n<h1>m2u-eval compare</h1>\n"
                    "<p>Rows are the dotted paths of the numbers in each source's JSON. A superscript marks a number "
                    "whose provenance (embedder, conventions, checkpoint) differs from the first source that has it: "
                    "such numbers are not directly comparable.</p>\n<table id=\"compare\">\n<tr><th>metric</th>");
    for (size_t s = 0; s < c->n_src; s++) {
        m2u_sb_printf(&b, "<th class=\"%s\">", c->src[s].published ? "pub" : "run");
        m2u_sb_html(&b, c->src[s].name);
        if (c->src[s].published) m2u_sb_puts(&b, " <small>(published)</small>");
        m2u_sb_puts(&b, "</th>");
    }
    m2u_sb_puts(&b, "</tr>\n");
    for (size_t r = 0; r < nr; r++) {
        m2u_sb_puts(&b, "<tr><td><code>");
        m2u_sb_html(&b, rows[r]);
        m2u_sb_puts(&b, "</code></td>");
        /* provenance of the first source that has this row, to flag the others that differ */
        long first = -1;
        for (size_t s = 0; s < c->n_src; s++) {
            double x;
            int have = m2u_compare_get(c, s, rows[r], &x);
            fmt_value(v, sizeof v, have, x);
            int differs = 0;
            if (have && first < 0) first = (long)s;
            else if (have) {
                const m2u_cmp_source *a = &c->src[first], *bb = &c->src[s];
                for (size_t i = 0; i < bb->n_notes && !differs; i++) {
                    const m2u_cmp_note *n = &bb->notes[i];
                    if (!note_applies(n, rows[r]) || !strcmp(n->key, "source")) continue;
                    int same = 0;
                    for (size_t j = 0; j < a->n_notes && !same; j++)
                        same = note_applies(&a->notes[j], rows[r]) && !strcmp(a->notes[j].key, n->key) &&
                               !strcmp(a->notes[j].text, n->text);
                    /* a key the first source does not state is not a difference */
                    int stated = 0;
                    for (size_t j = 0; j < a->n_notes && !stated; j++)
                        stated = note_applies(&a->notes[j], rows[r]) && !strcmp(a->notes[j].key, n->key);
                    differs = stated && !same;
                }
            }
            m2u_sb_printf(&b, "<td class=\"%s\" data-source=\"%zu\">", have && !isnan(x) ? "num" : "absent", s);
            m2u_sb_html(&b, v);
            if (differs) m2u_sb_puts(&b, "<sup title=\"made differently from the first source\">≠</sup>");
            m2u_sb_puts(&b, "</td>");
        }
        m2u_sb_puts(&b, "</tr>\n");
    }
    m2u_sb_puts(&b, "</table>\n<h2>How each number was made</h2>\n");
    for (size_t s = 0; s < c->n_src; s++) {
        m2u_sb_puts(&b, "<h3>");
        m2u_sb_html(&b, c->src[s].name);
        m2u_sb_puts(&b, "</h3>\n<p>File: <code>");
        m2u_sb_html(&b, c->src[s].origin);
        m2u_sb_puts(&b, "</code></p>\n<ul>\n");
        for (size_t i = 0; i < c->src[s].n_notes; i++) {
            const m2u_cmp_note *n = &c->src[s].notes[i];
            m2u_sb_puts(&b, "<li><code>");
            m2u_sb_html(&b, *n->path ? n->path : "(all)");
            m2u_sb_puts(&b, "</code> ");
            m2u_sb_html(&b, n->key);
            m2u_sb_puts(&b, ": ");
            m2u_sb_html(&b, n->text);
            m2u_sb_puts(&b, "</li>\n");
        }
        m2u_sb_puts(&b, "</ul>\n");
    }
    m2u_sb_puts(&b, "</body></html>\n");
    return write_text(dir, "compare.html", &b);
}

int m2u_compare_write(const m2u_compare *c, const char *out_dir) {
    if (c->n_src == 0) return m2u_fail("compare: no sources");
    if (m2u_mkdir_p(out_dir)) return -1;
    const char **rows = NULL;
    size_t nr = 0;
    if (m2u_compare_rows(c, &rows, &nr)) return -1;
    int rc = write_json(c, out_dir, rows, nr);
    if (!rc) rc = write_md(c, out_dir, rows, nr);
    if (!rc) rc = write_html(c, out_dir, rows, nr);
    free(rows);
    return rc;
}
