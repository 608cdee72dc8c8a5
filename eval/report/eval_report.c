#include "eval_report.h"

#include "fileio.h"
#include "json.h" /* m2u_json_whole */
#include "m2u_error.h"
#include "music_report.h"
#include "strbuf.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a growing string (core/strbuf.h; HTML and Markdown escaping there too) ------------------- */

static int sb_finish(m2u_strbuf *b, char **out) {
    if (b->oom) {
        free(b->s);
        return m2u_fail("out of memory");
    }
    if (!b->s) m2u_sb_puts(b, "");
    if (b->oom) return m2u_fail("out of memory");
    *out = b->s;
    return 0;
}

static int write_sbuf(const char *dir, const char *name, m2u_strbuf *b) {
    char *txt;
    if (sb_finish(b, &txt)) return -1;
    char *p = m2u_path_join(dir, name);
    int rc = p ? m2u_write_file_atomic(p, txt, strlen(txt)) : m2u_fail("out of memory");
    free(p);
    free(txt);
    return rc;
}

/* ---- metrics.jsonl ----------------------------------------------------------------------------- */

typedef struct {
    long step, order;
    double v[5];
} step_rec;

static int by_step_then_order(const void *a, const void *b) {
    const step_rec *x = a, *y = b;
    if (x->step != y->step) return x->step < y->step ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static double num_or_nan(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* sort and keep the last record of each step */
static long dedupe(step_rec *r, long n) {
    qsort(r, (size_t)n, sizeof *r, by_step_then_order);
    long k = 0;
    for (long i = 0; i < n; i++) {
        if (k > 0 && r[k - 1].step == r[i].step) r[k - 1] = r[i];
        else r[k++] = r[i];
    }
    return k;
}

void m2u_run_curves_free(m2u_run_curves *c) {
    free(c->step);
    free(c->loss);
    free(c->lr);
    free(c->grad_norm);
    free(c->tokens_per_s);
    free(c->step_s);
    free(c->eval_step);
    free(c->eval_loss);
    memset(c, 0, sizeof *c);
}

int m2u_run_curves_read(const char *path, m2u_run_curves *c) {
    memset(c, 0, sizeof *c);
    c->done_train_loss = c->done_eval_loss = c->done_seconds = NAN;
    for (int k = 0; k < 5; k++) c->done_step_s[k] = NAN;
    char *data;
    size_t len;
    if (m2u_read_file(path, &data, &len)) return -1; /* the message names the file */
    long cap = 1;
    for (size_t i = 0; i < len; i++) cap += data[i] == '\n';
    step_rec *st = malloc((size_t)cap * sizeof *st), *ev = malloc((size_t)cap * sizeof *ev);
    if (!st || !ev) {
        free(st);
        free(ev);
        free(data);
        return m2u_fail("out of memory");
    }
    long ns = 0, ne = 0, order = 0, line = 0;
    char *p = data;
    while (p < data + len) {
        char *e = memchr(p, '\n', (size_t)(data + len - p));
        if (!e) e = data + len;
        *e = 0;
        char *s = p;
        p = e + 1;
        line++;
        while (*s == ' ' || *s == '\t' || *s == '\r') s++;
        if (!*s) continue;
        cJSON *o = cJSON_Parse(s);
        if (!cJSON_IsObject(o)) {
            cJSON_Delete(o);
            if (c->n_skipped < M2U_CURVES_MAX_SKIPPED) c->skipped_line[c->n_skipped] = line;
            c->n_skipped++;
            continue;
        }
        c->n_lines++;
        order++;
        const cJSON *event = cJSON_GetObjectItemCaseSensitive(o, "event");
        const char *evn = cJSON_IsString(event) ? event->valuestring : NULL;
        /* a step the trainer could have written: whole, >= 0, exact in a double (a torn or
         * edited line's 1e300 must not reach the cast to long) */
        const cJSON *sj = cJSON_GetObjectItemCaseSensitive(o, "step");
        double step = m2u_json_whole(sj, 0, M2U_JSON_EXACT_MAX) ? sj->valuedouble : NAN;
        if (!evn && isfinite(step) && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "loss"))) {
            st[ns].step = (long)step;
            st[ns].order = order;
            st[ns].v[0] = num_or_nan(o, "loss");
            st[ns].v[1] = num_or_nan(o, "lr");
            st[ns].v[2] = num_or_nan(o, "grad_norm");
            st[ns].v[3] = num_or_nan(o, "tokens_per_s");
            st[ns].v[4] = num_or_nan(o, "step_s");
            ns++;
        } else if (evn && (!strcmp(evn, "start") || !strcmp(evn, "eval") || !strcmp(evn, "done"))) {
            double el = num_or_nan(o, "eval_loss");
            long at = !strcmp(evn, "start") ? 0 : (isfinite(step) ? (long)step : -1);
            /* the trainer writes -1 for a held-out loss it could not compute */
            if (at >= 0 && isfinite(el) && el >= 0) {
                ev[ne].step = at;
                ev[ne].order = order;
                ev[ne].v[0] = el;
                ne++;
            }
            if (!strcmp(evn, "done")) {
                c->has_done = 1;
                c->done_train_loss = num_or_nan(o, "train_loss");
                c->done_eval_loss = el;
                c->done_seconds = num_or_nan(o, "seconds");
                const cJSON *ss = cJSON_GetObjectItemCaseSensitive(o, "step_s");
                static const char *const parts[5] = {"data", "forward", "backward", "allreduce", "optimizer"};
                for (int k = 0; k < 5; k++) c->done_step_s[k] = cJSON_IsObject(ss) ? num_or_nan(ss, parts[k]) : NAN;
            }
        } else if (evn && !strcmp(evn, "sample")) {
            c->n_samples++;
        }
        cJSON_Delete(o);
    }
    free(data);
    ns = dedupe(st, ns);
    ne = dedupe(ev, ne);
    c->n = ns;
    c->n_eval = ne;
    size_t a = (size_t)(ns ? ns : 1), b = (size_t)(ne ? ne : 1);
    c->step = malloc(a * sizeof(long));
    c->loss = malloc(a * sizeof(double));
    c->lr = malloc(a * sizeof(double));
    c->grad_norm = malloc(a * sizeof(double));
    c->tokens_per_s = malloc(a * sizeof(double));
    c->step_s = malloc(a * sizeof(double));
    c->eval_step = malloc(b * sizeof(long));
    c->eval_loss = malloc(b * sizeof(double));
    if (!c->step || !c->loss || !c->lr || !c->grad_norm || !c->tokens_per_s || !c->step_s || !c->eval_step ||
        !c->eval_loss) {
        free(st);
        free(ev);
        m2u_run_curves_free(c);
        return m2u_fail("out of memory");
    }
    for (long i = 0; i < ns; i++) {
        c->step[i] = st[i].step;
        c->loss[i] = st[i].v[0];
        c->lr[i] = st[i].v[1];
        c->grad_norm[i] = st[i].v[2];
        c->tokens_per_s[i] = st[i].v[3];
        c->step_s[i] = st[i].v[4];
    }
    for (long i = 0; i < ne; i++) {
        c->eval_step[i] = ev[i].step;
        c->eval_loss[i] = ev[i].v[0];
    }
    free(st);
    free(ev);
    return 0;
}

/* ---- SVG line chart ---------------------------------------------------------------------------- */

#define CH_W 640
#define CH_H 300
#define CH_L 72
#define CH_R 150
#define CH_T 34
#define CH_B 46

/* ~5 round ticks covering [lo, hi] */
static void nice_ticks(double lo, double hi, double *t0, double *dt, int *n) {
    double span = hi - lo;
    if (!(span > 0)) span = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1.0;
    double raw = span / 5, mag = pow(10, floor(log10(raw))), f = raw / mag;
    double step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
    *t0 = ceil(lo / step - 1e-9) * step;
    *dt = step;
    /* clamped as a double: values near +-DBL_MAX make the span infinite and the count NaN,
     * which must not reach the cast */
    double nd = floor((hi - *t0) / step + 1e-9) + 1;
    *n = nd >= 1 ? (nd <= 12 ? (int)nd : 12) : 1;
}

static void fmt_num(char *buf, size_t n, double v) {
    if (fabs(v) < 1e-12) v = 0;
    snprintf(buf, n, "%.4g", v);
}

/* indices to draw: all finite points, or min/max of 1000 buckets beyond 2000 */
static long pick_points(const m2u_svg_series *s, long *idx) {
    long k = 0;
    if (s->n <= 2000) {
        for (long i = 0; i < s->n; i++)
            if (isfinite(s->x[i]) && isfinite(s->y[i])) idx[k++] = i;
        return k;
    }
    for (int bkt = 0; bkt < 1000; bkt++) {
        long a = s->n * bkt / 1000, e = s->n * (bkt + 1) / 1000, lo = -1, hi = -1;
        for (long i = a; i < e; i++) {
            if (!isfinite(s->x[i]) || !isfinite(s->y[i])) continue;
            if (lo < 0 || s->y[i] < s->y[lo]) lo = i;
            if (hi < 0 || s->y[i] > s->y[hi]) hi = i;
        }
        if (lo < 0) continue;
        if (lo == hi) idx[k++] = lo;
        else if (lo < hi) idx[k++] = lo, idx[k++] = hi;
        else idx[k++] = hi, idx[k++] = lo;
    }
    return k;
}

int m2u_svg_line_chart(char **svg, const char *id, const char *title, const char *xlabel, const char *ylabel,
                       const m2u_svg_series *series, int n_series) {
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    long total = 0;
    for (int s = 0; s < n_series; s++)
        for (long i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
            total++;
        }
    if (!total) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (x1 == x0) x0 -= 0.5, x1 += 0.5;
    if (y1 == y0) {
        double d = fabs(y0) > 0 ? fabs(y0) * 0.05 : 0.5;
        y0 -= d, y1 += d;
    } else {
        double pad = (y1 - y0) * 0.05;
        y0 -= pad, y1 += pad;
    }
    const double pw = CH_W - CH_L - CH_R, ph = CH_H - CH_T - CH_B;
#define PX(x) (CH_L + ((x) - x0) / (x1 - x0) * pw)
#define PY(y) (CH_T + (1.0 - ((y) - y0) / (y1 - y0)) * ph)
    m2u_strbuf b = {0};
    char buf[64];
    m2u_sb_printf(&b, "<svg class=\"chart\" id=\"");
    m2u_sb_html(&b, id);
    m2u_sb_printf(&b, "\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
              CH_W, CH_H, CH_W, CH_H);
    m2u_sb_printf(&b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", CH_W, CH_H);
    m2u_sb_puts(&b, "<text class=\"title\" x=\"");
    m2u_sb_printf(&b, "%d\" y=\"20\" font-size=\"15\" font-weight=\"bold\">", CH_L);
    m2u_sb_html(&b, title);
    m2u_sb_puts(&b, "</text>\n<g class=\"axes\" font-size=\"11\" fill=\"#444444\">\n");
    double t0, dt;
    int nt;
    nice_ticks(y0, y1, &t0, &dt, &nt);
    for (int k = 0; k < nt; k++) {
        double v = t0 + k * dt;
        if (v < y0 || v > y1) continue;
        fmt_num(buf, sizeof buf, v);
        m2u_sb_printf(&b, "<line x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>", CH_L, CH_L + pw,
                  PY(v), PY(v));
        m2u_sb_printf(&b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", CH_L - 6, PY(v) + 4, buf);
    }
    nice_ticks(x0, x1, &t0, &dt, &nt);
    for (int k = 0; k < nt; k++) {
        double v = t0 + k * dt;
        if (v < x0 || v > x1) continue;
        fmt_num(buf, sizeof buf, v);
        m2u_sb_printf(&b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#888888\"/>", PX(v), PX(v),
                  CH_T + ph, CH_T + ph + 4);
        m2u_sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", PX(v), CH_T + ph + 16, buf);
    }
    m2u_sb_printf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#888888\"/>\n", CH_L,
              CH_T, pw, ph);
    m2u_sb_printf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", CH_L + pw / 2, CH_H - 8);
    m2u_sb_html(&b, xlabel);
    m2u_sb_printf(&b, "</text>\n<text x=\"14\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">",
              CH_T + ph / 2, CH_T + ph / 2);
    m2u_sb_html(&b, ylabel);
    m2u_sb_puts(&b, "</text>\n</g>\n");
    long *idx = NULL;
    for (int s = 0; s < n_series; s++) {
        const m2u_svg_series *se = &series[s];
        free(idx);
        idx = malloc((size_t)(se->n > 0 ? se->n : 1) * sizeof *idx);
        if (!idx) {
            free(b.s);
            return m2u_fail("out of memory");
        }
        long k = pick_points(se, idx);
        m2u_sb_puts(&b, "<polyline class=\"series\" data-series=\"");
        m2u_sb_html(&b, se->name);
        m2u_sb_printf(&b, "\" data-points=\"%ld\" data-source-points=\"%ld\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                      "points=\"",
                  k, se->n, se->color);
        for (long i = 0; i < k; i++)
            m2u_sb_printf(&b, "%s%.2f,%.2f", i ? " " : "", PX(se->x[idx[i]]), PY(se->y[idx[i]]));
        m2u_sb_puts(&b, "\"/>\n");
        if (se->markers)
            for (long i = 0; i < k; i++) {
                m2u_sb_puts(&b, "<circle class=\"marker\" data-series=\"");
                m2u_sb_html(&b, se->name);
                m2u_sb_printf(&b, "\" cx=\"%.2f\" cy=\"%.2f\" r=\"3.5\" fill=\"%s\"/>\n", PX(se->x[idx[i]]),
                          PY(se->y[idx[i]]), se->color);
            }
        /* legend */
        double ly = CH_T + 10 + 18 * s;
        m2u_sb_printf(&b, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>",
                  CH_L + pw + 12, CH_L + pw + 32, ly, ly, se->color);
        m2u_sb_printf(&b, "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11\">", CH_L + pw + 38, ly + 4);
        m2u_sb_html(&b, se->name);
        m2u_sb_puts(&b, "</text>\n");
    }
    free(idx);
    if (!total) m2u_sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#888888\">no data</text>\n",
                          CH_L + pw / 2, CH_T + ph / 2);
    m2u_sb_puts(&b, "</svg>\n");
#undef PX
#undef PY
    return sb_finish(&b, svg);
}

/* ---- SVG heatmap ---------------------------------------------------------------------------------- */

int m2u_svg_heatmap(char **svg, const char *id, const char *title, const char *const *rl, int rows,
                    const char *const *cl, int cols, const long *counts) {
    return m2u_svg_heatmap_axes(svg, id, title, "measured", "stated by the model", rl, rows, cl, cols, counts);
}

int m2u_svg_heatmap_axes(char **svg, const char *id, const char *title, const char *row_axis, const char *col_axis,
                         const char *const *rl, int rows, const char *const *cl, int cols, const long *counts) {
    int cell = rows > 8 || cols > 9 ? 22 : 40, left = 110, top = 110;
    int w = left + cols * cell + 20, h = top + rows * cell + 40;
    m2u_strbuf b = {0};
    m2u_sb_puts(&b, "<svg class=\"heatmap\" id=\"");
    m2u_sb_html(&b, id);
    m2u_sb_printf(&b, "\" data-rows=\"%d\" data-cols=\"%d\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
                  "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n",
              rows, cols, w, h, w, h);
    m2u_sb_printf(&b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", w, h);
    m2u_sb_puts(&b, "<text x=\"8\" y=\"18\" font-size=\"14\" font-weight=\"bold\">");
    m2u_sb_html(&b, title);
    m2u_sb_printf(&b, "</text>\n<text x=\"%d\" y=\"34\" font-size=\"11\" fill=\"#444444\">", left);
    m2u_sb_html(&b, col_axis);
    m2u_sb_printf(&b, "</text>\n<text x=\"8\" y=\"%d\" font-size=\"11\" fill=\"#444444\">", top - 6);
    m2u_sb_html(&b, row_axis);
    m2u_sb_puts(&b, "</text>\n");
    int fs = cell < 30 ? 9 : 11;
    for (int c = 0; c < cols; c++) {
        double x = left + c * cell + cell / 2.0;
        m2u_sb_printf(&b, "<text x=\"%.1f\" y=\"%d\" font-size=\"%d\" transform=\"rotate(-60 %.1f %d)\">", x, top - 4, fs, x,
                  top - 4);
        m2u_sb_html(&b, cl[c]);
        m2u_sb_puts(&b, "</text>\n");
    }
    for (int r = 0; r < rows; r++) {
        long row_total = 0;
        for (int c = 0; c < cols; c++) row_total += counts[(size_t)r * cols + c];
        m2u_sb_printf(&b, "<text x=\"%d\" y=\"%.1f\" font-size=\"%d\" text-anchor=\"end\">", left - 6,
                  top + r * cell + cell / 2.0 + 4, fs);
        m2u_sb_html(&b, rl[r]);
        m2u_sb_puts(&b, "</text>\n");
        for (int c = 0; c < cols; c++) {
            long v = counts[(size_t)r * cols + c];
            double f = row_total ? (double)v / (double)row_total : 0;
            /* white -> #1f5fa8 */
            int R = (int)lround(255 + f * (0x1f - 255)), G = (int)lround(255 + f * (0x5f - 255)),
                B = (int)lround(255 + f * (0xa8 - 255));
            m2u_sb_printf(&b, "<rect class=\"cell\" data-row=\"%d\" data-col=\"%d\" data-count=\"%ld\" x=\"%d\" y=\"%d\" "
                          "width=\"%d\" height=\"%d\" fill=\"#%02x%02x%02x\" stroke=\"#cccccc\"/>",
                      r, c, v, left + c * cell, top + r * cell, cell, cell, R, G, B);
            if (v)
                m2u_sb_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" text-anchor=\"middle\" fill=\"%s\">%ld</text>",
                          left + c * cell + cell / 2.0, top + r * cell + cell / 2.0 + 4, fs,
                          f > 0.5 ? "#ffffff" : "#000000", v);
            m2u_sb_puts(&b, "\n");
        }
    }
    m2u_sb_puts(&b, "</svg>\n");
    return sb_finish(&b, svg);
}

/* ---- scoring ------------------------------------------------------------------------------------ */

void m2u_eval_scores_free(m2u_eval_scores *s) {
    free(s->per_item);
    free(s->stated);
    free(s->measured);
    m2u_attr_agreement_free(&s->pred);
    m2u_attr_agreement_free(&s->ref);
    memset(s, 0, sizeof *s);
}

static int score_group(const m2u_eval_run_result *r, const char *kind, m2u_caption_scores *corpus,
                       m2u_caption_scores *per_item, int *n_out, m2u_eval_scores *s) {
    int n = 0;
    for (int i = 0; i < r->n_items; i++) n += !kind || !strcmp(r->items[i].kind, kind);
    *n_out = n;
    const char **c = malloc((size_t)(n ? n : 1) * sizeof *c);
    const char ***refs = malloc((size_t)(n ? n : 1) * sizeof *refs);
    const char **ref1 = malloc((size_t)(n ? n : 1) * sizeof *ref1);
    int *nr = malloc((size_t)(n ? n : 1) * sizeof *nr);
    int rc = -1;
    if (!c || !refs || !ref1 || !nr) {
        m2u_fail("out of memory");
        goto done;
    }
    int k = 0;
    for (int i = 0; i < r->n_items; i++) {
        if (kind && strcmp(r->items[i].kind, kind)) continue;
        c[k] = r->items[i].prediction;
        ref1[k] = r->items[i].reference;
        refs[k] = &ref1[k];
        nr[k] = 1;
        k++;
    }
    /* full METEOR (as pycocoevalcap) with the installed WordNet and paraphrase table; a missing one
     * switches its module off and the report says so */
    const char *wn = NULL, *para = NULL, *mods = NULL;
    s->meteor_why[0] = 0;
    m2u_meteor_data_paths(NULL, NULL, &wn, &para, s->meteor_why, sizeof s->meteor_why);
    rc = m2u_caption_evaluate_meteor((size_t)n, c, (const char *const *const *)refs, nr, wn, para, corpus, per_item,
                                     &mods);
    snprintf(s->meteor_modules, sizeof s->meteor_modules, "%s", mods ? mods : "exact,stem");
done:
    free(c);
    free(refs);
    free(ref1);
    free(nr);
    return rc;
}

int m2u_eval_score(const m2u_eval_run_result *r, m2u_eval_scores *s) {
    memset(s, 0, sizeof *s);
    if (r->n_items <= 0) return m2u_fail("no predictions to score");
    size_t n = (size_t)r->n_items;
    s->per_item = calloc(n, sizeof *s->per_item);
    s->stated = calloc(n, sizeof *s->stated);
    s->measured = calloc(n, sizeof *s->measured);
    if (!s->per_item || !s->stated || !s->measured || m2u_attr_agreement_init(&s->pred) ||
        m2u_attr_agreement_init(&s->ref)) {
        m2u_eval_scores_free(s);
        return m2u_fail("out of memory");
    }
    snprintf(s->group[0], sizeof s->group[0], "all");
    s->n_groups = 1;
    for (int i = 0; i < r->n_items; i++) {
        int seen = 0;
        for (int g = 1; g < s->n_groups && !seen; g++) seen = !strcmp(s->group[g], r->items[i].kind);
        if (!seen && s->n_groups < M2U_EVAL_MAX_GROUPS) {
            snprintf(s->group[s->n_groups], sizeof s->group[0], "%s", r->items[i].kind);
            s->n_groups++;
        }
    }
    if (s->n_groups == 2) s->n_groups = 1; /* one kind: "all" is that kind */
    for (int g = 0; g < s->n_groups; g++)
        if (score_group(r, g ? s->group[g] : NULL, &s->corpus[g], g ? NULL : s->per_item, &s->group_n[g], s)) {
            m2u_eval_scores_free(s);
            return -1;
        }
    for (int i = 0; i < r->n_items; i++) {
        const m2u_eval_item *it = &r->items[i];
        m2u_attr_parse(it->prediction, &s->stated[i]);
        m2u_attr_measured_classes(&it->measured, &s->measured[i]);
        if (!it->has_measured) continue;
        s->n_with_attrs++;
        m2u_attr_set ref;
        m2u_attr_parse(it->reference, &ref);
        m2u_attr_agreement_add(&s->pred, &s->measured[i], &s->stated[i]);
        m2u_attr_agreement_add(&s->ref, &s->measured[i], &ref);
    }
    return 0;
}

/* ---- predictions.jsonl --------------------------------------------------------------------------- */

static void add_scores(cJSON *o, const m2u_caption_scores *sc) {
    char key[16];
    for (int b = 0; b < 4; b++) {
        snprintf(key, sizeof key, "bleu_%d", b + 1);
        cJSON_AddNumberToObject(o, key, sc->bleu[b]);
    }
    cJSON_AddNumberToObject(o, "meteor", sc->meteor);
    cJSON_AddNumberToObject(o, "rouge_l", sc->rouge_l);
    cJSON_AddNumberToObject(o, "cider_d", sc->cider_d);
}

static void add_num_or_null(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static cJSON *attr_words(const m2u_attr_set *a) {
    cJSON *o = cJSON_CreateObject();
    for (int k = 0; k < M2U_ATTR_COUNT; k++) {
        const char *w = m2u_attr_class_name((m2u_attr)k, a->cls[k]);
        if (w) cJSON_AddStringToObject(o, m2u_attr_name((m2u_attr)k), w);
        else cJSON_AddNullToObject(o, m2u_attr_name((m2u_attr)k));
    }
    add_num_or_null(o, "bpm", a->bpm);
    add_num_or_null(o, "lufs", a->lufs);
    return o;
}

int m2u_eval_write_predictions(const char *path, const m2u_eval_run_result *r, const m2u_eval_scores *s) {
    m2u_atomic_file af;
    if (m2u_atomic_open(&af, path)) return -1;
    for (int i = 0; i < r->n_items; i++) {
        const m2u_eval_item *it = &r->items[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", it->id);
        cJSON_AddStringToObject(o, "kind", it->kind);
        cJSON_AddStringToObject(o, "prompt", it->prompt);
        cJSON_AddStringToObject(o, "instruction", it->instruction);
        cJSON_AddStringToObject(o, "prediction", it->prediction);
        cJSON_AddStringToObject(o, "reference", it->reference);
        cJSON_AddNumberToObject(o, "prompt_tokens", it->n_prompt_tokens);
        cJSON_AddNumberToObject(o, "new_tokens", it->n_new_tokens);
        cJSON_AddNumberToObject(o, "aud_tokens", it->n_aud_tokens);
        cJSON *f = cJSON_AddArrayToObject(o, "features");
        static const char *const mods[3] = {"mert", "vit", "vivit"};
        for (int g = 0; g < 3; g++)
            if (it->has_feature[g]) cJSON_AddItemToArray(f, cJSON_CreateString(mods[g]));
        if (s) {
            add_scores(cJSON_AddObjectToObject(o, "scores"), &s->per_item[i]);
            cJSON_AddItemToObject(o, "stated", attr_words(&s->stated[i]));
            if (it->has_measured) cJSON_AddItemToObject(o, "measured", attr_words(&s->measured[i]));
        }
        char *line = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!line) {
            m2u_atomic_abort(&af);
            return m2u_fail("out of memory");
        }
        fputs(line, af.fp);
        fputc('\n', af.fp);
        free(line);
    }
    return m2u_atomic_commit(&af);
}

/* ---- the reports ---------------------------------------------------------------------------------- */

static const char *const k_metric_names[7] = {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D"};
static double metric_of(const m2u_caption_scores *s, int k) {
    return k < 4 ? s->bleu[k] : k == 4 ? s->meteor : k == 5 ? s->rouge_l : s->cider_d;
}

static void fmt_rate(char *buf, size_t n, double v) {
    if (isfinite(v)) snprintf(buf, n, "%.3f", v);
    else snprintf(buf, n, "n/a");
}

static cJSON *confusion_json(const m2u_attr_agreement *ag, int a) {
    int n = m2u_attr_n_classes((m2u_attr)a);
    cJSON *o = cJSON_CreateObject();
    cJSON *rows = cJSON_AddArrayToObject(o, "rows");
    cJSON *cols = cJSON_AddArrayToObject(o, "cols");
    for (int c = 0; c < n; c++) {
        cJSON_AddItemToArray(rows, cJSON_CreateString(m2u_attr_class_name((m2u_attr)a, c)));
        cJSON_AddItemToArray(cols, cJSON_CreateString(m2u_attr_class_name((m2u_attr)a, c)));
    }
    cJSON_AddItemToArray(cols, cJSON_CreateString("not stated"));
    cJSON *m = cJSON_AddArrayToObject(o, "counts");
    for (int r = 0; r < n; r++) {
        cJSON *row = cJSON_CreateArray();
        for (int c = 0; c <= n; c++)
            cJSON_AddItemToArray(row, cJSON_CreateNumber((double)ag->confusion[a][(size_t)r * (n + 1) + c]));
        cJSON_AddItemToArray(m, row);
    }
    return o;
}

static cJSON *report_json(const m2u_eval_report *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "format", "m2u-eval-report");
    cJSON_AddNumberToObject(o, "version", 1);
    cJSON_AddStringToObject(o, "run", r->run_dir ? r->run_dir : "");
    const m2u_run_curves *c = r->curves;
    cJSON *tr = cJSON_AddObjectToObject(o, "training");
    if (c) {
        cJSON_AddNumberToObject(tr, "steps_logged", (double)c->n);
        if (c->n) {
            cJSON_AddNumberToObject(tr, "first_step", (double)c->step[0]);
            cJSON_AddNumberToObject(tr, "last_step", (double)c->step[c->n - 1]);
            add_num_or_null(tr, "first_loss", c->loss[0]);
            add_num_or_null(tr, "last_loss", c->loss[c->n - 1]);
            add_num_or_null(tr, "last_lr", c->lr[c->n - 1]);
        }
        cJSON *ev = cJSON_AddArrayToObject(tr, "held_out");
        for (long i = 0; i < c->n_eval; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, "step", (double)c->eval_step[i]);
            cJSON_AddNumberToObject(e, "eval_loss", c->eval_loss[i]);
            cJSON_AddItemToArray(ev, e);
        }
        if (c->has_done) {
            cJSON *d = cJSON_AddObjectToObject(tr, "done");
            add_num_or_null(d, "train_loss", c->done_train_loss);
            add_num_or_null(d, "eval_loss", c->done_eval_loss);
            add_num_or_null(d, "seconds", c->done_seconds);
            static const char *const parts[5] = {"data", "forward", "backward", "allreduce", "optimizer"};
            cJSON *ss = cJSON_AddObjectToObject(d, "step_s");
            for (int k = 0; k < 5; k++) add_num_or_null(ss, parts[k], c->done_step_s[k]);
        }
        cJSON_AddNumberToObject(tr, "lines_skipped", (double)c->n_skipped);
        cJSON *sk = cJSON_AddArrayToObject(tr, "skipped_lines"); /* the first M2U_CURVES_MAX_SKIPPED */
        for (long i = 0; i < c->n_skipped && i < M2U_CURVES_MAX_SKIPPED; i++)
            cJSON_AddItemToArray(sk, cJSON_CreateNumber((double)c->skipped_line[i]));
    }
    const m2u_eval_run_result *e = r->eval;
    const m2u_eval_scores *s = r->scores;
    if (e) {
        cJSON *ev = cJSON_AddObjectToObject(o, "evaluation");
        cJSON_AddStringToObject(ev, "config", e->config_path);
        cJSON_AddStringToObject(ev, "checkpoint", e->checkpoint ? e->checkpoint : "");
        cJSON_AddNumberToObject(ev, "checkpoint_step", (double)e->checkpoint_step);
        cJSON_AddNumberToObject(ev, "trainable_tensors", e->n_trainables);
        cJSON_AddStringToObject(ev, "llm", e->llm);
        cJSON_AddStringToObject(ev, "data", e->data);
        cJSON_AddStringToObject(ev, "split", e->split);
        cJSON_AddStringToObject(ev, "kinds", e->kinds);
        cJSON_AddNumberToObject(ev, "stage", e->stage);
        cJSON_AddStringToObject(ev, "decoding", "greedy, KV cache, stop at EOS");
        cJSON_AddNumberToObject(ev, "max_new_tokens", e->max_new_tokens);
        cJSON_AddNumberToObject(ev, "n", e->n_items);
        cJSON_AddNumberToObject(ev, "seconds", e->seconds);
        cJSON_AddNumberToObject(ev, "new_tokens", e->new_tokens);
        cJSON_AddNumberToObject(ev, "new_tokens_per_s", e->seconds > 0 ? e->new_tokens / e->seconds : 0);
        cJSON_AddStringToObject(ev, "predictions", "predictions.jsonl");
    }
    if (s) {
        cJSON *cap = cJSON_AddObjectToObject(o, "captions");
        char conv[1600];
        snprintf(conv, sizeof conv,
                 "pycocoevalcap 1.2: PTB tokenisation, corpus BLEU, ROUGE-L and CIDEr-D means; METEOR 1.5 -l en -norm "
                 "with modules %s%s%s; one reference per item (mucaps: caption, musicqa: answer)",
                 s->meteor_modules, s->meteor_why[0] ? " (" : "", s->meteor_why[0] ? s->meteor_why : "");
        if (s->meteor_why[0]) strcat(conv, ")");
        cJSON_AddStringToObject(cap, "conventions", conv);
        cJSON_AddStringToObject(cap, "meteor_modules", s->meteor_modules);
        for (int g = 0; g < s->n_groups; g++) {
            cJSON *gg = cJSON_AddObjectToObject(cap, s->group[g]);
            cJSON_AddNumberToObject(gg, "n", s->group_n[g]);
            add_scores(gg, &s->corpus[g]);
        }
        cJSON *at = cJSON_AddObjectToObject(o, "attributes");
        cJSON_AddNumberToObject(at, "items_with_attrs", (double)s->n_with_attrs);
        for (int a = 0; a < M2U_ATTR_COUNT; a++) {
            cJSON *x = cJSON_AddObjectToObject(at, m2u_attr_name((m2u_attr)a));
            cJSON_AddNumberToObject(x, "n_measured", (double)s->pred.n_measured[a]);
            cJSON_AddNumberToObject(x, "n_stated", (double)s->pred.n_stated[a]);
            cJSON_AddNumberToObject(x, "n_correct", (double)s->pred.n_correct[a]);
            add_num_or_null(x, "accuracy", m2u_attr_accuracy(&s->pred, (m2u_attr)a));
            add_num_or_null(x, "agreement", m2u_attr_agreement_rate(&s->pred, (m2u_attr)a));
            add_num_or_null(x, "reference_accuracy", m2u_attr_accuracy(&s->ref, (m2u_attr)a));
            add_num_or_null(x, "reference_agreement", m2u_attr_agreement_rate(&s->ref, (m2u_attr)a));
            cJSON_AddItemToObject(x, "confusion", confusion_json(&s->pred, a));
        }
        cJSON *bpm = cJSON_AddObjectToObject(at, "tempo_bpm");
        cJSON_AddNumberToObject(bpm, "n", (double)s->pred.bpm_n);
        cJSON_AddNumberToObject(bpm, "within_4pct", (double)s->pred.bpm_within_4pct);
        add_num_or_null(bpm, "rate", s->pred.bpm_n ? (double)s->pred.bpm_within_4pct / (double)s->pred.bpm_n : NAN);
    }
    if (r->music) cJSON_AddItemToObject(o, "music", m2u_music_eval_json(r->music));
    return o;
}

static void md_report_text(m2u_strbuf *b, const m2u_eval_report *r) {
    char v[32];
    m2u_sb_puts(b, "# m2u-eval report\n\n");
    m2u_sb_puts(b, "Run: `");
    m2u_sb_md_cell(b, r->run_dir);
    m2u_sb_puts(b, "`\n\n## Training\n\n");
    const m2u_run_curves *c = r->curves;
    if (!c) m2u_sb_puts(b, "No metrics.jsonl.\n\n");
    else {
        m2u_sb_printf(b, "%ld steps logged", c->n);
        if (c->n) {
            fmt_rate(v, sizeof v, c->loss[0]);
            m2u_sb_printf(b, "; loss %s at step %ld", v, c->step[0]);
            fmt_rate(v, sizeof v, c->loss[c->n - 1]);
            m2u_sb_printf(b, ", %s at step %ld", v, c->step[c->n - 1]);
        }
        m2u_sb_puts(b, ".\n\n");
        if (c->n_eval) {
            m2u_sb_puts(b, "| step | held-out loss |\n|---:|---:|\n");
            for (long i = 0; i < c->n_eval; i++) m2u_sb_printf(b, "| %ld | %.4f |\n", c->eval_step[i], c->eval_loss[i]);
            m2u_sb_puts(b, "\n");
        }
    }
    const m2u_eval_run_result *e = r->eval;
    const m2u_eval_scores *s = r->scores;
    if (!e || !s) return;
    m2u_sb_puts(b, "## Evaluation\n\nCheckpoint `");
    m2u_sb_md_cell(b, e->checkpoint);
    m2u_sb_printf(b, "` (step %ld), split `%s`, kinds `%s`, stage %d, %d items, greedy decoding up to %d new tokens, "
                 "%.1f s (%.1f new tokens/s).\n\n",
              e->checkpoint_step, e->split, e->kinds, e->stage, e->n_items, e->max_new_tokens, e->seconds,
              e->seconds > 0 ? e->new_tokens / e->seconds : 0.0);
    m2u_sb_puts(b, "### Caption metrics\n\n| group | n |");
    for (int k = 0; k < 7; k++) m2u_sb_printf(b, " %s |", k_metric_names[k]);
    m2u_sb_puts(b, "\n|---|---:|");
    for (int k = 0; k < 7; k++) m2u_sb_puts(b, "---:|");
    m2u_sb_puts(b, "\n");
    for (int g = 0; g < s->n_groups; g++) {
        m2u_sb_printf(b, "| %s | %d |", s->group[g], s->group_n[g]);
        for (int k = 0; k < 7; k++) m2u_sb_printf(b, " %.4f |", metric_of(&s->corpus[g], k));
        m2u_sb_puts(b, "\n");
    }
    m2u_sb_printf(b, "\nMETEOR modules: %s%s%s%s.\n\n", s->meteor_modules, s->meteor_why[0] ? " (" : "",
                  s->meteor_why, s->meteor_why[0] ? ")" : "");
    m2u_sb_printf(b, "### Attribute agreement\n\n%ld of %d items have measured attributes. accuracy = correct / stated, "
                 "agreement = correct / measured; the reference columns parse the references the same way.\n\n",
              s->n_with_attrs, e->n_items);
    m2u_sb_puts(b, "| attribute | measured | stated | correct | accuracy | agreement | reference accuracy | reference "
               "agreement |\n|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int a = 0; a < M2U_ATTR_COUNT; a++) {
        char x1[16], x2[16], x3[16], x4[16];
        fmt_rate(x1, sizeof x1, m2u_attr_accuracy(&s->pred, (m2u_attr)a));
        fmt_rate(x2, sizeof x2, m2u_attr_agreement_rate(&s->pred, (m2u_attr)a));
        fmt_rate(x3, sizeof x3, m2u_attr_accuracy(&s->ref, (m2u_attr)a));
        fmt_rate(x4, sizeof x4, m2u_attr_agreement_rate(&s->ref, (m2u_attr)a));
        m2u_sb_printf(b, "| %s | %ld | %ld | %ld | %s | %s | %s | %s |\n", m2u_attr_name((m2u_attr)a),
                  s->pred.n_measured[a], s->pred.n_stated[a], s->pred.n_correct[a], x1, x2, x3, x4);
    }
    m2u_sb_printf(b, "\nStated BPM within 4 %% of the measured tempo: %ld of %ld.\n\n", s->pred.bpm_within_4pct,
              s->pred.bpm_n);
    for (int a = 0; a < M2U_ATTR_COUNT; a++) {
        int n = m2u_attr_n_classes((m2u_attr)a);
        if (!s->pred.n_measured[a]) continue;
        m2u_sb_printf(b, "#### %s: measured (rows) vs stated (columns)\n\n| |", m2u_attr_name((m2u_attr)a));
        for (int col = 0; col < n; col++) m2u_sb_printf(b, " %s |", m2u_attr_class_name((m2u_attr)a, col));
        m2u_sb_puts(b, " not stated |\n|---|");
        for (int col = 0; col <= n; col++) m2u_sb_puts(b, "---:|");
        m2u_sb_puts(b, "\n");
        for (int row = 0; row < n; row++) {
            long tot = 0;
            for (int col = 0; col <= n; col++) tot += s->pred.confusion[a][(size_t)row * (n + 1) + col];
            if (!tot) continue;
            m2u_sb_printf(b, "| %s |", m2u_attr_class_name((m2u_attr)a, row));
            for (int col = 0; col <= n; col++) m2u_sb_printf(b, " %ld |", s->pred.confusion[a][(size_t)row * (n + 1) + col]);
            m2u_sb_puts(b, "\n");
        }
        m2u_sb_puts(b, "\n");
    }
    m2u_sb_puts(b, "### Predictions (first 20)\n\n| id | kind | prompt | prediction | reference |\n|---|---|---|---|---|\n");
    for (int i = 0; i < e->n_items && i < 20; i++) {
        const m2u_eval_item *it = &e->items[i];
        m2u_sb_puts(b, "| ");
        m2u_sb_md_cell(b, it->id);
        m2u_sb_puts(b, " | ");
        m2u_sb_md_cell(b, it->kind);
        m2u_sb_puts(b, " | ");
        m2u_sb_md_cell(b, it->instruction);
        m2u_sb_puts(b, " | ");
        m2u_sb_md_cell(b, it->prediction);
        m2u_sb_puts(b, " | ");
        m2u_sb_md_cell(b, it->reference);
        m2u_sb_puts(b, " |\n");
    }
}

static void md_report(m2u_strbuf *b, const m2u_eval_report *r) {
    md_report_text(b, r);
    if (r->music) {
        m2u_sb_puts(b, "\n## Generated music\n\n");
        m2u_music_md_section(b, r->music);
    }
}

static int html_chart(m2u_strbuf *b, const char *id, const char *title, const char *ylabel, const m2u_svg_series *se,
                      int n) {
    char *svg;
    if (m2u_svg_line_chart(&svg, id, title, "step", ylabel, se, n)) return -1;
    m2u_sb_puts(b, "<figure>");
    m2u_sb_puts(b, svg);
    m2u_sb_puts(b, "</figure>\n");
    free(svg);
    return 0;
}

static int html_curves(m2u_strbuf *b, const m2u_run_curves *c) {
    if (!c) {
        m2u_sb_puts(b, "<p>No metrics.jsonl in the run directory.</p>\n");
        return 0;
    }
    long n = c->n, ne = c->n_eval;
    double *xs = malloc((size_t)(n ? n : 1) * sizeof *xs), *xe = malloc((size_t)(ne ? ne : 1) * sizeof *xe);
    if (!xs || !xe) {
        free(xs);
        free(xe);
        return m2u_fail("out of memory");
    }
    for (long i = 0; i < n; i++) xs[i] = (double)c->step[i];
    for (long i = 0; i < ne; i++) xe[i] = (double)c->eval_step[i];
    m2u_svg_series loss[2] = {{.name = "train loss", .color = "#1f77b4", .x = xs, .y = c->loss, .n = n, .markers = n == 1},
                              {.name = "held-out loss", .color = "#d62728", .x = xe, .y = c->eval_loss, .n = ne, .markers = 1}};
    m2u_svg_series lr = {.name = "lr", .color = "#2ca02c", .x = xs, .y = c->lr, .n = n, .markers = n == 1};
    m2u_svg_series tps = {.name = "tokens/s", .color = "#9467bd", .x = xs, .y = c->tokens_per_s, .n = n, .markers = n == 1};
    int rc = html_chart(b, "chart-loss", "Loss", "loss (token cross-entropy + weighted MSE)", loss, 2);
    if (!rc) rc = html_chart(b, "chart-lr", "Learning rate", "lr", &lr, 1);
    if (!rc) rc = html_chart(b, "chart-throughput", "Throughput", "tokens / s", &tps, 1);
    free(xs);
    free(xe);
    return rc;
}

static int html_report(m2u_strbuf *b, const m2u_eval_report *r) {
    m2u_sb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>m2u-eval report</title>\n"
               "<style>\nbody{font-family:sans-serif;margin:24px;color:#222;background:#fff}\n"
               "table{border-collapse:collapse;margin:8px 0 16px}\n"
               "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;vertical-align:top}\n"
               "th{background:#f2f2f2}\ntd.num{text-align:right;font-variant-numeric:tabular-nums}\n"
               "figure{display:inline-block;margin:6px;vertical-align:top}\n.small{color:#666;font-size:12px}\n");
    m2u_sb_puts(b, m2u_music_html_css());
    m2u_sb_puts(b, "</style>\n</head>\n<body>\n");
    m2u_sb_puts(b, "<h1>m2u-eval report</h1>\n<p>Run <code>");
    m2u_sb_html(b, r->run_dir);
    m2u_sb_puts(b, "</code></p>\n<h2>Training curves</h2>\n<div id=\"curves\">\n");
    if (html_curves(b, r->curves)) return -1;
    m2u_sb_puts(b, "</div>\n");
    const m2u_eval_run_result *e = r->eval;
    const m2u_eval_scores *s = r->scores;
    if (e && s) {
        char v[64];
        m2u_sb_puts(b, "<h2>Evaluation</h2>\n<p>Checkpoint <code>");
        m2u_sb_html(b, e->checkpoint);
        m2u_sb_printf(b, "</code> (step %ld), split <code>", e->checkpoint_step);
        m2u_sb_html(b, e->split);
        m2u_sb_puts(b, "</code>, kinds <code>");
        m2u_sb_html(b, e->kinds);
        m2u_sb_printf(b, "</code>, stage %d, %d items, greedy decoding up to %d new tokens, %.1f s (%.1f new tokens/s).</p>\n",
                  e->stage, e->n_items, e->max_new_tokens, e->seconds, e->seconds > 0 ? e->new_tokens / e->seconds : 0.0);
        m2u_sb_puts(b, "<h3>Caption metrics</h3>\n<table id=\"metrics\">\n<tr><th>group</th><th>n</th>");
        for (int k = 0; k < 7; k++) m2u_sb_printf(b, "<th>%s</th>", k_metric_names[k]);
        m2u_sb_puts(b, "</tr>\n");
        for (int g = 0; g < s->n_groups; g++) {
            m2u_sb_puts(b, "<tr><td>");
            m2u_sb_html(b, s->group[g]);
            m2u_sb_printf(b, "</td><td class=\"num\">%d</td>", s->group_n[g]);
            for (int k = 0; k < 7; k++) m2u_sb_printf(b, "<td class=\"num\">%.4f</td>", metric_of(&s->corpus[g], k));
            m2u_sb_puts(b, "</tr>\n");
        }
        m2u_sb_puts(b, "</table>\n<p class=\"small\">pycocoevalcap conventions; METEOR modules ");
        m2u_sb_html(b, s->meteor_modules);
        if (s->meteor_why[0]) {
            m2u_sb_puts(b, " (");
            m2u_sb_html(b, s->meteor_why);
            m2u_sb_puts(b, ")");
        }
        m2u_sb_puts(b, ". One reference per item: the caption (mucaps) or the answer (musicqa).</p>\n");
        m2u_sb_printf(b, "<h3>Attribute agreement</h3>\n<p>%ld of %d items have measured attributes. accuracy = correct / "
                     "stated; agreement = correct / measured. The reference columns parse the reference texts the "
                     "same way (a check of the parser and of the data).</p>\n",
                  s->n_with_attrs, e->n_items);
        m2u_sb_puts(b, "<table id=\"attributes\">\n<tr><th>attribute</th><th>measured</th><th>stated</th><th>correct</th>"
                   "<th>accuracy</th><th>agreement</th><th>reference accuracy</th><th>reference agreement</th></tr>\n");
        for (int a = 0; a < M2U_ATTR_COUNT; a++) {
            m2u_sb_printf(b, "<tr><td>%s</td><td class=\"num\">%ld</td><td class=\"num\">%ld</td><td class=\"num\">%ld</td>",
                      m2u_attr_name((m2u_attr)a), s->pred.n_measured[a], s->pred.n_stated[a], s->pred.n_correct[a]);
            fmt_rate(v, sizeof v, m2u_attr_accuracy(&s->pred, (m2u_attr)a));
            m2u_sb_printf(b, "<td class=\"num\">%s</td>", v);
            fmt_rate(v, sizeof v, m2u_attr_agreement_rate(&s->pred, (m2u_attr)a));
            m2u_sb_printf(b, "<td class=\"num\">%s</td>", v);
            fmt_rate(v, sizeof v, m2u_attr_accuracy(&s->ref, (m2u_attr)a));
            m2u_sb_printf(b, "<td class=\"num\">%s</td>", v);
            fmt_rate(v, sizeof v, m2u_attr_agreement_rate(&s->ref, (m2u_attr)a));
            m2u_sb_printf(b, "<td class=\"num\">%s</td></tr>\n", v);
        }
        m2u_sb_printf(b, "</table>\n<p>Stated BPM within 4 %% of the measured tempo: %ld of %ld.</p>\n<div id=\"confusion\">\n",
                  s->pred.bpm_within_4pct, s->pred.bpm_n);
        for (int a = 0; a < M2U_ATTR_COUNT; a++) {
            int n = m2u_attr_n_classes((m2u_attr)a);
            const char **rl = malloc((size_t)n * sizeof *rl), **cl = malloc((size_t)(n + 1) * sizeof *cl);
            if (!rl || !cl) {
                free(rl);
                free(cl);
                return m2u_fail("out of memory");
            }
            for (int k = 0; k < n; k++) rl[k] = cl[k] = m2u_attr_class_name((m2u_attr)a, k);
            cl[n] = "not stated";
            char id[48], title[96], *svg = NULL;
            snprintf(id, sizeof id, "confusion-%s", m2u_attr_name((m2u_attr)a));
            snprintf(title, sizeof title, "%s (%ld measured)", m2u_attr_name((m2u_attr)a), s->pred.n_measured[a]);
            int rc = m2u_svg_heatmap(&svg, id, title, rl, n, cl, n + 1, s->pred.confusion[a]);
            free(rl);
            free(cl);
            if (rc) return -1;
            m2u_sb_puts(b, "<figure>");
            m2u_sb_puts(b, svg);
            m2u_sb_puts(b, "</figure>\n");
            free(svg);
        }
        m2u_sb_puts(b, "</div>\n<h3>Predictions (first 50; all in predictions.jsonl)</h3>\n<table id=\"predictions\">\n"
                   "<tr><th>id</th><th>kind</th><th>prompt</th><th>prediction</th><th>reference</th></tr>\n");
        for (int i = 0; i < e->n_items && i < 50; i++) {
            const m2u_eval_item *it = &e->items[i];
            const char *cells[5] = {it->id, it->kind, it->instruction, it->prediction, it->reference};
            m2u_sb_puts(b, "<tr>");
            for (int k = 0; k < 5; k++) {
                m2u_sb_puts(b, "<td>");
                m2u_sb_html(b, cells[k]);
                m2u_sb_puts(b, "</td>");
            }
            m2u_sb_puts(b, "</tr>\n");
        }
        m2u_sb_puts(b, "</table>\n");
    }
    if (r->music) {
        m2u_sb_puts(b, "<h2>Generated music</h2>\n");
        if (m2u_music_html_section(b, r->music, NULL)) return -1;
    }
    m2u_sb_puts(b, "</body>\n</html>\n");
    return 0;
}

int m2u_eval_report_write(const char *out_dir, const m2u_eval_report *r) {
    if (m2u_mkdir_p(out_dir)) return -1;
    cJSON *j = report_json(r);
    char *txt = j ? cJSON_Print(j) : NULL;
    cJSON_Delete(j);
    if (!txt) return m2u_fail("out of memory");
    m2u_strbuf b = {0};
    m2u_sb_puts(&b, txt);
    m2u_sb_puts(&b, "\n");
    free(txt);
    if (write_sbuf(out_dir, "report.json", &b)) return -1;
    m2u_strbuf m = {0};
    md_report(&m, r);
    if (write_sbuf(out_dir, "report.md", &m)) return -1;
    m2u_strbuf h = {0};
    if (html_report(&h, r)) {
        free(h.s);
        return -1;
    }
    return write_sbuf(out_dir, "report.html", &h);
}
