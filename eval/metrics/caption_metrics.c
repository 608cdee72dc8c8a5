/* BLEU, ROUGE-L and CIDEr-D as pycocoevalcap 1.2 computes them
 * (bleu/bleu_scorer.py, rouge/rouge.py, cider/cider_scorer.py).  Sums run in
 * the order Python runs them (n-gram dictionaries keep insertion order) so the
 * results agree with pycocoevalcap to the last bits, not only to 1e-6. */
#include "caption_metrics.h"

#include "m2u_error.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Tokens                                                              */

typedef struct {
    char *buf;    /* copy of the sentence, tokens NUL-terminated inside */
    char **tok;
    int n;
} toks;

static void toks_free(toks *t) {
    free(t->buf);
    free(t->tok);
    t->buf = NULL;
    t->tok = NULL;
    t->n = 0;
}

/* Python str.isspace for the code point starting at s; returns its byte length or 0 */
static int py_space_len(const unsigned char *s) {
    unsigned c = s[0];
    if (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return 1;
    if (c == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0)) return 2;
    if (c == 0xE1 && s[1] == 0x9A && s[2] == 0x80) return 3; /* U+1680 */
    if (c == 0xE2 && s[1] == 0x80 && ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
        return 3;                                              /* U+2000-200A, 2028, 2029, 202F */
    if (c == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) return 3; /* U+205F */
    if (c == 0xE3 && s[1] == 0x80 && s[2] == 0x80) return 3; /* U+3000 */
    return 0;
}

/* Python s.split() (any Unicode whitespace, no empty tokens) */
static int split_ws(const char *s, toks *t) {
    size_t len = strlen(s);
    t->buf = malloc(len + 1);
    t->tok = malloc((len / 2 + 2) * sizeof *t->tok);
    t->n = 0;
    if (!t->buf || !t->tok) { toks_free(t); return m2u_fail("out of memory"); }
    memcpy(t->buf, s, len + 1);
    unsigned char *p = (unsigned char *)t->buf, *end = p + len;
    while (p < end) {
        int k;
        while (p < end && (k = py_space_len(p)) > 0) p += k;
        if (p >= end) break;
        t->tok[t->n++] = (char *)p;
        while (p < end && (k = py_space_len(p)) == 0) p++;
        if (p < end) {
            *p = 0;
            p += k;
        }
    }
    return 0;
}

/* Python s.split(" ") (exactly one space separates; empty tokens kept) */
static int split_space(const char *s, toks *t) {
    size_t len = strlen(s);
    t->buf = malloc(len + 1);
    t->tok = malloc((len + 2) * sizeof *t->tok);
    t->n = 0;
    if (!t->buf || !t->tok) { toks_free(t); return m2u_fail("out of memory"); }
    memcpy(t->buf, s, len + 1);
    char *p = t->buf;
    t->tok[t->n++] = p;
    for (; *p; p++)
        if (*p == ' ') {
            *p = 0;
            t->tok[t->n++] = p + 1;
        }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Insertion-ordered n-gram map (key: tokens joined by '\x1f', which Python's
 * split() never leaves inside a token)                                 */

typedef struct {
    char *key;
    uint64_t h;
    int order; /* n-gram length 1..4 */
    double v;
} ng_entry;

typedef struct {
    ng_entry *e;
    int n, cap;
    int *slot; /* open addressing, -1 empty */
    int nslot;
} ng_map;

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static void ng_free(ng_map *m) {
    for (int i = 0; i < m->n; i++) free(m->e[i].key);
    free(m->e);
    free(m->slot);
    memset(m, 0, sizeof *m);
}

static int ng_rehash(ng_map *m, int nslot) {
    int *slot = malloc((size_t)nslot * sizeof *slot);
    if (!slot) return -1;
    for (int i = 0; i < nslot; i++) slot[i] = -1;
    for (int i = 0; i < m->n; i++) {
        int j = (int)(m->e[i].h & (uint64_t)(nslot - 1));
        while (slot[j] >= 0) j = (j + 1) & (nslot - 1);
        slot[j] = i;
    }
    free(m->slot);
    m->slot = slot;
    m->nslot = nslot;
    return 0;
}

/* find or insert; returns the entry index or -1 (out of memory); *found tells which */
static int ng_get(ng_map *m, const char *key, size_t klen, int order, int insert, int *found) {
    uint64_t h = fnv(key, klen);
    if (found) *found = 0;
    if (m->nslot) {
        int j = (int)(h & (uint64_t)(m->nslot - 1));
        while (m->slot[j] >= 0) {
            ng_entry *e = &m->e[m->slot[j]];
            if (e->h == h && strlen(e->key) == klen && memcmp(e->key, key, klen) == 0) {
                if (found) *found = 1;
                return m->slot[j];
            }
            j = (j + 1) & (m->nslot - 1);
        }
    }
    if (!insert) return -2;
    if ((m->n + 1) * 2 > m->nslot && ng_rehash(m, m->nslot ? m->nslot * 2 : 64)) return -1;
    if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 32;
        ng_entry *e = realloc(m->e, (size_t)cap * sizeof *e);
        if (!e) return -1;
        m->e = e;
        m->cap = cap;
    }
    char *k = malloc(klen + 1);
    if (!k) return -1;
    memcpy(k, key, klen);
    k[klen] = 0;
    m->e[m->n] = (ng_entry){k, h, order, 0.0};
    int j = (int)(h & (uint64_t)(m->nslot - 1));
    while (m->slot[j] >= 0) j = (j + 1) & (m->nslot - 1);
    m->slot[j] = m->n;
    return m->n++;
}

/* precook(): counts of all 1..4-grams, in Python's insertion order (k, then i) */
static int precook(const toks *t, ng_map *m) {
    size_t cap = 256;
    char *key = malloc(cap);
    if (!key) return m2u_fail("out of memory");
    for (int k = 1; k <= 4; k++) {
        for (int i = 0; i + k <= t->n; i++) {
            size_t len = 0;
            for (int j = 0; j < k; j++) {
                size_t l = strlen(t->tok[i + j]);
                if (len + l + 2 > cap) {
                    while (len + l + 2 > cap) cap *= 2;
                    char *nk = realloc(key, cap);
                    if (!nk) { free(key); return m2u_fail("out of memory"); }
                    key = nk;
                }
                if (j) key[len++] = '\x1f';
                memcpy(key + len, t->tok[i + j], l);
                len += l;
            }
            int idx = ng_get(m, key, len, k, 1, NULL);
            if (idx < 0) { free(key); return m2u_fail("out of memory"); }
            m->e[idx].v += 1.0;
        }
    }
    free(key);
    return 0;
}

static double ng_lookup(const ng_map *m, const char *key, int *found) {
    int idx = ng_get((ng_map *)m, key, strlen(key), 0, 0, found);
    return idx >= 0 ? m->e[idx].v : 0.0;
}

/* numpy's pairwise summation (np.add.reduce / np.mean on float64) */
static double np_pairwise_sum(const double *a, size_t n) {
    if (n < 8) {
        double res = 0.;
        for (size_t i = 0; i < n; i++) res += a[i];
        return res;
    } else if (n <= 128) {
        double r[8], res;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        size_t i;
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    } else {
        size_t n2 = n / 2;
        n2 -= n2 % 8;
        return np_pairwise_sum(a, n2) + np_pairwise_sum(a + n2, n - n2);
    }
}

static int check_set(const m2u_caption_set *s) {
    if (!s || (s->n && (!s->cand || !s->refs || !s->n_refs))) return m2u_fail("caption metrics: empty set");
    for (size_t i = 0; i < s->n; i++)
        if (s->n_refs[i] < 1) return m2u_fail("caption metrics: item %zu has no reference", i);
    return 0;
}

/* ------------------------------------------------------------------ */
/* BLEU                                                                */

int m2u_bleu(const m2u_caption_set *s, double corpus[4], double *per_item) {
    if (check_set(s)) return -1;
    const double small = 1e-9, tiny = 1e-15;
    double tot_correct[4] = {0}, tot_guess[4] = {0};
    long testlen_sum = 0, reflen_sum = 0;
    for (size_t i = 0; i < s->n; i++) {
        /* cook_refs: max count of each n-gram over the references, and their lengths */
        ng_map maxc = {0};
        int *reflens = malloc((size_t)s->n_refs[i] * sizeof *reflens);
        if (!reflens) return m2u_fail("out of memory");
        for (int r = 0; r < s->n_refs[i]; r++) {
            toks t;
            ng_map c = {0};
            if (split_ws(s->refs[i][r], &t) || precook(&t, &c)) {
                toks_free(&t); ng_free(&c); ng_free(&maxc); free(reflens);
                return -1;
            }
            reflens[r] = t.n;
            for (int e = 0; e < c.n; e++) {
                int idx = ng_get(&maxc, c.e[e].key, strlen(c.e[e].key), c.e[e].order, 1, NULL);
                if (idx < 0) { toks_free(&t); ng_free(&c); ng_free(&maxc); free(reflens); return m2u_fail("out of memory"); }
                if (c.e[e].v > maxc.e[idx].v) maxc.e[idx].v = c.e[e].v;
            }
            toks_free(&t);
            ng_free(&c);
        }
        toks t;
        ng_map c = {0};
        if (split_ws(s->cand[i], &t) || precook(&t, &c)) {
            toks_free(&t); ng_free(&c); ng_free(&maxc); free(reflens);
            return -1;
        }
        int testlen = t.n;
        /* "closest": min((abs(l - testlen), l)) */
        int reflen = reflens[0];
        for (int r = 1; r < s->n_refs[i]; r++) {
            int d = abs(reflens[r] - testlen), db = abs(reflen - testlen);
            if (d < db || (d == db && reflens[r] < reflen)) reflen = reflens[r];
        }
        double guess[4], correct[4] = {0};
        for (int k = 0; k < 4; k++) guess[k] = testlen - k > 0 ? testlen - k : 0;
        for (int e = 0; e < c.n; e++) {
            double m = ng_lookup(&maxc, c.e[e].key, NULL);
            correct[c.e[e].order - 1] += c.e[e].v < m ? c.e[e].v : m;
        }
        testlen_sum += testlen;
        reflen_sum += reflen;
        for (int k = 0; k < 4; k++) {
            tot_guess[k] += guess[k];
            tot_correct[k] += correct[k];
        }
        if (per_item) {
            double bleu = 1.;
            for (int k = 0; k < 4; k++) {
                bleu *= (correct[k] + tiny) / (guess[k] + small);
                per_item[i * 4 + k] = pow(bleu, 1. / (k + 1));
            }
            double ratio = (testlen + tiny) / (reflen + small);
            if (ratio < 1)
                for (int k = 0; k < 4; k++) per_item[i * 4 + k] *= exp(1 - 1 / ratio);
        }
        toks_free(&t);
        ng_free(&c);
        ng_free(&maxc);
        free(reflens);
    }
    double bleu = 1.;
    for (int k = 0; k < 4; k++) {
        bleu *= (tot_correct[k] + tiny) / (tot_guess[k] + small);
        corpus[k] = pow(bleu, 1. / (k + 1));
    }
    double ratio = ((double)testlen_sum + tiny) / ((double)reflen_sum + small);
    if (ratio < 1)
        for (int k = 0; k < 4; k++) corpus[k] *= exp(1 - 1 / ratio);
    return 0;
}

/* ------------------------------------------------------------------ */
/* ROUGE-L                                                             */

static int lcs_len(const toks *a, const toks *b, int *row) {
    /* my_lcs: dynamic programming; the result does not depend on which is "sub" */
    const toks *x = a->n >= b->n ? a : b, *y = a->n >= b->n ? b : a;
    for (int j = 0; j <= y->n; j++) row[j] = 0;
    for (int i = 1; i <= x->n; i++) {
        int diag = 0;
        for (int j = 1; j <= y->n; j++) {
            int up = row[j];
            if (strcmp(x->tok[i - 1], y->tok[j - 1]) == 0) row[j] = diag + 1;
            else if (row[j - 1] > row[j]) row[j] = row[j - 1];
            diag = up;
        }
    }
    return row[y->n];
}

int m2u_rouge_l(const m2u_caption_set *s, double *corpus, double *per_item) {
    if (check_set(s)) return -1;
    const double beta = 1.2;
    double *scores = malloc((s->n ? s->n : 1) * sizeof *scores);
    if (!scores) return m2u_fail("out of memory");
    for (size_t i = 0; i < s->n; i++) {
        toks c;
        if (split_space(s->cand[i], &c)) { free(scores); return -1; }
        double prec_max = 0, rec_max = 0;
        for (int r = 0; r < s->n_refs[i]; r++) {
            toks t;
            if (split_space(s->refs[i][r], &t)) { toks_free(&c); free(scores); return -1; }
            int *row = malloc((size_t)(t.n + c.n + 1) * sizeof *row);
            if (!row) { toks_free(&t); toks_free(&c); free(scores); return m2u_fail("out of memory"); }
            int lcs = lcs_len(&t, &c, row);
            free(row);
            double prec = lcs / (double)c.n, rec = lcs / (double)t.n;
            if (r == 0 || prec > prec_max) prec_max = prec;
            if (r == 0 || rec > rec_max) rec_max = rec;
            toks_free(&t);
        }
        toks_free(&c);
        double score = 0.0;
        if (prec_max != 0 && rec_max != 0)
            score = ((1 + beta * beta) * prec_max * rec_max) / (rec_max + beta * beta * prec_max);
        scores[i] = score;
        if (per_item) per_item[i] = score;
    }
    *corpus = s->n ? np_pairwise_sum(scores, s->n) / (double)s->n : 0.0;
    free(scores);
    return 0;
}

/* ------------------------------------------------------------------ */
/* CIDEr-D                                                             */

static const double PY_E = 2.718281828459045; /* Python's math.e / numpy's np.e */

typedef struct {
    ng_map vec; /* n-gram -> tf-idf weight */
    double norm[4];
    double length;
} cider_vec;

static int counts2vec(const ng_map *cnts, const ng_map *df, double ref_len, cider_vec *out) {
    memset(out, 0, sizeof *out);
    for (int e = 0; e < cnts->n; e++) {
        const ng_entry *g = &cnts->e[e];
        double d = log(fmax(1.0, ng_lookup(df, g->key, NULL)));
        int n = g->order - 1;
        int idx = ng_get(&out->vec, g->key, strlen(g->key), g->order, 1, NULL);
        if (idx < 0) return m2u_fail("out of memory");
        double v = g->v * (ref_len - d);
        out->vec.e[idx].v = v;
        out->norm[n] += pow(v, 2);
        if (n == 1) out->length += g->v;
    }
    for (int n = 0; n < 4; n++) out->norm[n] = sqrt(out->norm[n]);
    return 0;
}

int m2u_cider_d(const m2u_caption_set *s, double *corpus, double *per_item) {
    if (check_set(s)) return -1;
    const double sigma = 6.0;
    int rc = -1;
    size_t n_items = s->n;
    ng_map df = {0};
    ng_map *test = calloc(n_items ? n_items : 1, sizeof *test);
    ng_map **refs = calloc(n_items ? n_items : 1, sizeof *refs);
    double *scores = malloc((n_items ? n_items : 1) * sizeof *scores);
    if (!test || !refs || !scores) { m2u_fail("out of memory"); goto done; }
    for (size_t i = 0; i < n_items; i++) {
        toks t;
        if (split_ws(s->cand[i], &t)) goto done;
        int r0 = precook(&t, &test[i]);
        toks_free(&t);
        if (r0) goto done;
        refs[i] = calloc((size_t)s->n_refs[i], sizeof *refs[i]);
        if (!refs[i]) { m2u_fail("out of memory"); goto done; }
        for (int r = 0; r < s->n_refs[i]; r++) {
            if (split_ws(s->refs[i][r], &t)) goto done;
            r0 = precook(&t, &refs[i][r]);
            toks_free(&t);
            if (r0) goto done;
        }
    }
    /* compute_doc_freq: number of items whose references contain the n-gram */
    double max_df = 0;
    for (size_t i = 0; i < n_items; i++) {
        ng_map seen = {0};
        for (int r = 0; r < s->n_refs[i]; r++)
            for (int e = 0; e < refs[i][r].n; e++) {
                const ng_entry *g = &refs[i][r].e[e];
                int found;
                int idx = ng_get(&seen, g->key, strlen(g->key), g->order, 1, &found);
                if (idx < 0) { ng_free(&seen); m2u_fail("out of memory"); goto done; }
                if (!found) {
                    int di = ng_get(&df, g->key, strlen(g->key), g->order, 1, NULL);
                    if (di < 0) { ng_free(&seen); m2u_fail("out of memory"); goto done; }
                    df.e[di].v += 1;
                    if (df.e[di].v > max_df) max_df = df.e[di].v;
                }
            }
        ng_free(&seen);
    }
    if ((double)n_items < max_df) { m2u_fail("cider: document frequency exceeds the number of items"); goto done; }
    double ref_len = log((double)n_items);
    for (size_t i = 0; i < n_items; i++) {
        cider_vec vh, vr;
        if (counts2vec(&test[i], &df, ref_len, &vh)) goto done;
        double score[4] = {0, 0, 0, 0};
        for (int r = 0; r < s->n_refs[i]; r++) {
            if (counts2vec(&refs[i][r], &df, ref_len, &vr)) { ng_free(&vh.vec); goto done; }
            double delta = vh.length - vr.length;
            double val[4] = {0, 0, 0, 0};
            for (int e = 0; e < vh.vec.n; e++) {
                const ng_entry *g = &vh.vec.e[e];
                double wr = ng_lookup(&vr.vec, g->key, NULL);
                int n = g->order - 1;
                val[n] += fmin(g->v, wr) * wr;
            }
            for (int n = 0; n < 4; n++) {
                if (vh.norm[n] != 0 && vr.norm[n] != 0) val[n] /= (vh.norm[n] * vr.norm[n]);
                val[n] *= pow(PY_E, -(delta * delta) / (2 * sigma * sigma));
                score[n] += val[n];
            }
            ng_free(&vr.vec);
        }
        ng_free(&vh.vec);
        double avg = np_pairwise_sum(score, 4) / 4.0;
        avg /= s->n_refs[i];
        avg *= 10.0;
        scores[i] = avg;
        if (per_item) per_item[i] = avg;
    }
    *corpus = n_items ? np_pairwise_sum(scores, n_items) / (double)n_items : 0.0;
    rc = 0;
done:
    if (test)
        for (size_t i = 0; i < n_items; i++) ng_free(&test[i]);
    if (refs)
        for (size_t i = 0; i < n_items; i++) {
            if (refs[i])
                for (int r = 0; r < s->n_refs[i]; r++) ng_free(&refs[i][r]);
            free(refs[i]);
        }
    free(test);
    free(refs);
    free(scores);
    ng_free(&df);
    return rc;
}

/* ------------------------------------------------------------------ */
/* All metrics from raw text                                           */

int m2u_caption_evaluate(size_t n, const char *const *cands, const char *const *const *refs, const int *n_refs,
                         m2u_caption_scores *corpus, m2u_caption_scores *per_item) {
    return m2u_caption_evaluate_meteor(n, cands, refs, n_refs, NULL, NULL, corpus, per_item, NULL);
}

int m2u_caption_evaluate_meteor(size_t n, const char *const *cands, const char *const *const *refs,
                                const int *n_refs, const char *wordnet_dir, const char *paraphrase_path,
                                m2u_caption_scores *corpus, m2u_caption_scores *per_item,
                                const char **meteor_modules) {
    if (n == 0) return m2u_fail("caption metrics: no items");
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (n_refs[i] < 1) return m2u_fail("caption metrics: item %zu has no reference", i);
        total += (size_t)n_refs[i];
    }
    int rc = -1;
    char **ctok = NULL, **rtok = NULL;
    m2u_meteor_data *mdata = NULL;
    const char **flat = malloc(total * sizeof *flat);
    const char **rptr_flat = NULL;
    const char *const **rptr = malloc(n * sizeof *rptr);
    double *bleu = malloc(n * 4 * sizeof *bleu), *met = malloc(n * sizeof *met), *rou = malloc(n * sizeof *rou),
           *cid = malloc(n * sizeof *cid);
    if (!flat || !rptr || !bleu || !met || !rou || !cid) { m2u_fail("out of memory"); goto done; }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (int r = 0; r < n_refs[i]; r++) flat[k++] = refs[i][r];
    if (m2u_ptb_tokenize(cands, n, &ctok, NULL)) goto done;
    if (m2u_ptb_tokenize(flat, total, &rtok, NULL)) goto done;
    rptr_flat = (const char **)rtok;
    k = 0;
    for (size_t i = 0; i < n; i++) {
        rptr[i] = rptr_flat + k;
        k += (size_t)n_refs[i];
    }
    m2u_caption_set set = {n, (const char *const *)ctok, rptr, n_refs};
    /* METEOR's data: the paraphrase table filtered by this set's sentences */
    mdata = m2u_meteor_data_new();
    if (!mdata) goto done;
    if (wordnet_dir && m2u_meteor_load_wordnet(mdata, wordnet_dir)) goto done;
    if (paraphrase_path && m2u_meteor_load_paraphrase(mdata, paraphrase_path, &set)) goto done;
    m2u_meteor_params mp;
    m2u_meteor_default_params_data(&mp, mdata);
    if (meteor_modules) *meteor_modules = m2u_meteor_modules(&mp);
    if (m2u_bleu(&set, corpus->bleu, bleu)) goto done;
    if (m2u_meteor(&set, &mp, &corpus->meteor, met)) goto done;
    if (m2u_rouge_l(&set, &corpus->rouge_l, rou)) goto done;
    if (m2u_cider_d(&set, &corpus->cider_d, cid)) goto done;
    if (per_item)
        for (size_t i = 0; i < n; i++) {
            for (int b = 0; b < 4; b++) per_item[i].bleu[b] = bleu[i * 4 + b];
            per_item[i].meteor = met[i];
            per_item[i].rouge_l = rou[i];
            per_item[i].cider_d = cid[i];
        }
    rc = 0;
done:
    m2u_meteor_data_free(mdata);
    m2u_strv_free(ctok, n);
    m2u_strv_free(rtok, total);
    free(flat);
    free(rptr);
    free(bleu);
    free(met);
    free(rou);
    free(cid);
    return rc;
}

static const char *meteor_path(const char *given, const char *def, const char *probe, const char *what, char *why,
                               size_t cap) {
    if (given) return given;
    char p[4096];
    snprintf(p, sizeof p, "%s%s", def, probe);
    if (access(p, R_OK) == 0) return def;
    size_t l = strlen(why);
    if (l < cap) snprintf(why + l, cap - l, "%s%s not found at %s", l ? "; " : "", what, p);
    return NULL;
}

void m2u_meteor_data_paths(const char *given_wordnet, const char *given_paraphrase, const char **wordnet,
                           const char **paraphrase, char *why, size_t cap) {
    *wordnet = meteor_path(given_wordnet, M2U_METEOR_WORDNET_DIR, "/index.sense", "WordNet (synonym module)", why, cap);
    *paraphrase = meteor_path(given_paraphrase, M2U_METEOR_PARAPHRASE_PATH, "", "paraphrase table (paraphrase module)",
                              why, cap);
}
