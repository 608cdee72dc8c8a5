/* Reports of a run: training curves from its metrics.jsonl and, after
 * m2u_eval_run_generate, caption metrics and attribute agreement of the
 * predictions.  Written as report.json (for machines), report.md and one
 * self-contained report.html (inline CSS and SVG drawn here; no JavaScript,
 * no external resources), plus predictions.jsonl.  Every file is written
 * atomically.  Functions return 0, or -1 after m2u_fail(); nothing prints.
 *
 * SVG conventions (the tests and any scraper can rely on them):
 *   <svg class="chart" id="..."> per line chart; each series is one
 *     <polyline class="series" data-series="NAME" data-points="N" ...> with N
 *     points, and series drawn with markers add N <circle class="marker"
 *     data-series="NAME">.  A series of more than 2000 points is reduced to
 *     the min and max of 1000 equal step ranges (spikes stay visible);
 *     data-source-points keeps the original count.  Non-finite values are
 *     left out.
 *   <svg class="heatmap" id="confusion-ATTR" data-rows="R" data-cols="C">
 *     holds R*C <rect class="cell" data-row data-col data-count>, rows =
 *     measured class, columns = stated class then "not stated"; the colour is
 *     the count's share of its row. */
#ifndef M2U_EVAL_REPORT_H
#define M2U_EVAL_REPORT_H

#include "attr_agreement.h"
#include "caption_metrics.h"
#include "eval_run.h"
#include "music_gen.h"

/* ---- metrics.jsonl ---- */
typedef struct {
    /* per optimizer step, sorted by step; a step logged twice (a resumed run) keeps its last record */
    long n;
    long *step;
    double *loss, *lr, *grad_norm, *tokens_per_s, *step_s; /* NaN where a record lacks the field */
    /* held-out loss: the "start" record (step 0), "eval" records and the "done" record, by step */
    long n_eval;
    long *eval_step;
    double *eval_loss;
    int has_done;
    double done_train_loss, done_eval_loss, done_seconds;
    double done_step_s[5]; /* data, forward, backward, allreduce, optimizer (NaN when absent) */
    long n_samples;        /* "sample" records (held-out generations) */
    long n_lines, n_skipped; /* JSON lines read / lines that were not JSON objects */
#define M2U_CURVES_MAX_SKIPPED 16
    long skipped_line[M2U_CURVES_MAX_SKIPPED]; /* 1-based line numbers of the first skipped lines */
} m2u_run_curves;

/* Read a run's metrics.jsonl.  A missing file is an error.  A line that is not a
 * JSON object (a killed run's torn line) is skipped, counted in n_skipped and its
 * number kept in skipped_line, for the caller to report: never dropped unseen. */
int m2u_run_curves_read(const char *metrics_path, m2u_run_curves *c);
void m2u_run_curves_free(m2u_run_curves *c);

/* ---- SVG ---- */
typedef struct {
    const char *name, *color;
    const double *x, *y;
    long n;
    int markers; /* also a circle per point */
} m2u_svg_series;

/* A line chart (malloc'ed SVG text in *svg). */
int m2u_svg_line_chart(char **svg, const char *id, const char *title, const char *xlabel, const char *ylabel,
                       const m2u_svg_series *series, int n_series);
/* A heatmap of counts [rows][cols]. */
int m2u_svg_heatmap(char **svg, const char *id, const char *title, const char *const *row_labels, int rows,
                    const char *const *col_labels, int cols, const long *counts);
/* The same with the axis captions given (m2u_svg_heatmap: "measured", "stated by the model"). */
int m2u_svg_heatmap_axes(char **svg, const char *id, const char *title, const char *row_axis, const char *col_axis,
                         const char *const *row_labels, int rows, const char *const *col_labels, int cols,
                         const long *counts);

/* ---- scores of an evaluation ---- */
#define M2U_EVAL_MAX_GROUPS 8
typedef struct {
    int n_groups;                              /* "all", then one per kind present, in first-seen order */
    char group[M2U_EVAL_MAX_GROUPS][16];
    int group_n[M2U_EVAL_MAX_GROUPS];
    m2u_caption_scores corpus[M2U_EVAL_MAX_GROUPS];
    m2u_caption_scores *per_item;              /* [n_items], from the "all" group */
    m2u_attr_set *stated, *measured;           /* [n_items] parsed prediction / measured classes */
    m2u_attr_agreement pred;                   /* predictions vs measured */
    m2u_attr_agreement ref;                    /* the references parsed the same way vs measured (a
                                                  check of the parser and the data: ~1 when references
                                                  are m2u-dataset captions) */
    long n_with_attrs;                         /* items with attribute columns */
    char meteor_modules[64];                   /* the METEOR modules that ran, e.g. "exact,stem,synonym,paraphrase" */
    char meteor_why[1024];                     /* why a module did not run ("" when all did) */
} m2u_eval_scores;

int m2u_eval_score(const m2u_eval_run_result *r, m2u_eval_scores *s);
void m2u_eval_scores_free(m2u_eval_scores *s);

/* predictions.jsonl: one object per item: id, kind, prompt, instruction, prediction, reference, token counts,
 * per-item caption scores, stated and measured attribute words. */
int m2u_eval_write_predictions(const char *path, const m2u_eval_run_result *r, const m2u_eval_scores *s);

/* report.json, report.md and report.html in out_dir (created if needed).  eval and scores are NULL for a
 * curves-only report; curves may be NULL when the run has no metrics.jsonl. */
typedef struct {
    const char *run_dir;
    const m2u_run_curves *curves;
    const m2u_eval_run_result *eval;
    const m2u_eval_scores *scores;
    const m2u_music_eval *music; /* generated music scored (music_gen.h), or NULL: report.json gets "music"
                                    (m2u_music_eval_json), report.md and report.html a "Generated music"
                                    section (music_report.h's, clips playable, spectrograms) */
} m2u_eval_report;
int m2u_eval_report_write(const char *out_dir, const m2u_eval_report *r);

#endif
