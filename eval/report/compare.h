/* m2u-eval compare: several evaluations side by side.
 *
 * A source is either
 *   - anything m2u-eval wrote as JSON: a run's report.json (or the directory
 *     holding it), a music report, the JSON of `fad`, `kl`, `clap`,
 *     `captions`...; or
 *   - a published table typed in by hand (the paper's numbers), as
 *       {"format": "m2u-published-table", "name": "M2UGen, Table 3",
 *        "source": "arXiv:2311.11255",
 *        "metrics": {"music.fad.value": 1.41, "captions.all.meteor": 0.31},
 *        "notes": {"music.fad.value": "VGGish, fad_pytorch"}}
 *     (metrics: numbers or null; notes optional).
 *
 * m2u's JSON is flattened to dotted paths of its numeric leaves, so a row is
 * the same quantity in every source that has it and a published table names
 * its numbers the way m2u's JSON does (the HTML lists the paths).  Left out:
 * per-item lists (items, per_item), confusion matrices, arrays and booleans.
 * Every string that says how a number was made (an object's conventions,
 * embedding, embedder, checkpoint hash, settings, reason) is kept as the
 * provenance of the paths under that object, and the report prints it beside
 * the table: numbers made with different embedders or conventions are not
 * comparable, and the reader must see that.
 *
 * Functions return 0, or -1 after m2u_fail() naming the file and what is
 * wrong; nothing prints. */
#ifndef M2U_COMPARE_H
#define M2U_COMPARE_H

#include <stddef.h>

typedef struct {
    char *path;  /* dotted metric path */
    double value; /* NaN: null (not measured) */
} m2u_cmp_value;

typedef struct {
    char *path; /* the object the note is about ("" = the whole source) */
    char *key;  /* conventions, embedding, ... */
    char *text;
} m2u_cmp_note;

typedef struct {
    char *name;   /* column title */
    char *origin; /* the file read */
    int published;
    m2u_cmp_value *v;
    size_t n_v;
    m2u_cmp_note *notes;
    size_t n_notes;
} m2u_cmp_source;

typedef struct {
    m2u_cmp_source *src;
    size_t n_src;
} m2u_compare;

/* Read one source (a file, or a directory holding report.json) and append it.
 * name: the column title; NULL takes the table's "name", else the path. */
int m2u_compare_add(m2u_compare *c, const char *path, const char *name);
/* The same from JSON text already in memory (origin names it in errors). */
int m2u_compare_add_json(m2u_compare *c, const char *json, size_t len, const char *origin, const char *name);
void m2u_compare_free(m2u_compare *c);

/* Rows: the union of the paths, in first-seen order (malloc'ed array of
 * borrowed strings in *paths, count in *n). */
int m2u_compare_rows(const m2u_compare *c, const char ***paths, size_t *n);
/* The value of path in source s: 1 and *v when present (NaN for null), 0 when absent. */
int m2u_compare_get(const m2u_compare *c, size_t s, const char *path, double *v);

/* compare.json, compare.md and a self-contained compare.html in out_dir (created),
 * each written atomically. */
int m2u_compare_write(const m2u_compare *c, const char *out_dir);

#endif
