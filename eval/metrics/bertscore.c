/* BERTScore: see bertscore.h.  Checked against bert_score 0.3.13 by
 * tests/eval/test_bertscore.c on tests/fixtures/bertscore. */
#include "bertscore.h"

#include "bert_encoder.h"
#include "bytelevel_bpe.h"
#include "fileio.h"
#include "m2u_error.h"
#include "sha256.h"
#include "utf8_util.h"
#include "wordpiece_tokenizer.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct m2u_bertscorer {
    m2u_bert *model;
    m2u_wordpiece *tok;   /* BERT: tokenizer.json (WordPiece) */
    m2u_bytebpe *bbpe;    /* RoBERTa: vocab.json + merges.txt, the slow RobertaTokenizer */
    char *dir;
    size_t max_length;
    int cls_id, sep_id;
};

/* A RoBERTa directory holds the slow tokenizer's files, which bert_score (use_fast_tokenizer=False) reads. */
static int is_roberta_dir(const char *dir) {
    char *v = m2u_path_join(dir, "vocab.json"), *m = m2u_path_join(dir, "merges.txt");
    int yes = v && m && m2u_file_exists(v) && m2u_file_exists(m);
    free(v);
    free(m);
    return yes;
}

/* The RoBERTa side of m2u_bertscore_load: the slow tokenizer and its model_max_length (bert_score passes
 * it as max_length; without one transformers has 1e30, i.e. no truncation, and the model would fail on
 * a text longer than its positions: here that is the cap). */
static int load_roberta_tokenizer(m2u_bertscorer *s, const char *dir) {
    if (m2u_bytebpe_load(dir, &s->bbpe)) return -1;
    const m2u_bert_config *c = m2u_bert_config_of(s->model);
    if (!c->position_offset)
        return m2u_fail("%s: vocab.json + merges.txt (RoBERTa's tokenizer) with a model_type \"bert\" config.json", dir);
    size_t positions = (size_t)(c->max_positions - c->position_offset), mml = m2u_bytebpe_model_max_length(s->bbpe);
    s->max_length = mml && mml < positions ? mml : positions;
    s->cls_id = m2u_bytebpe_cls_id(s->bbpe);
    s->sep_id = m2u_bytebpe_sep_id(s->bbpe);
    if (s->cls_id < 0 || s->sep_id < 0) return m2u_fail("%s: the tokenizer has no <s> / </s> ids", dir);
    if (m2u_bytebpe_vocab_size(s->bbpe) > c->vocab)
        return m2u_fail("%s: %d token ids but the model's vocab_size is %d", dir, m2u_bytebpe_vocab_size(s->bbpe),
                        c->vocab);
    return 0;
}

int m2u_bertscore_load(const char *dir, m2u_bertscorer **out) {
    *out = NULL;
    m2u_bertscorer *s = calloc(1, sizeof *s);
    char *tok_path = m2u_path_join(dir, "tokenizer.json"), *tc_path = m2u_path_join(dir, "tokenizer_config.json");
    cJSON *tc = NULL;
    int rc = -1;
    if (!s || !tok_path || !tc_path) {
        m2u_fail("%s: out of memory", dir);
        goto done;
    }
    s->dir = strdup(dir);
    if (!s->dir || m2u_bert_load(dir, &s->model)) goto done;
    if (is_roberta_dir(dir)) {
        rc = load_roberta_tokenizer(s, dir);
        goto done;
    }
    if (m2u_wordpiece_load(tok_path, &s->tok) || m2u_json_load(tc_path, 1, &tc)) goto done;
    const m2u_bert_config *c = m2u_bert_config_of(s->model);
    double mml = 1e30;
    if (tc && m2u_json_num(tc, tc_path, "model_max_length", 0, 1e30, &mml)) goto done;
    size_t positions = (size_t)(c->max_positions - c->position_offset);
    s->max_length = mml >= 1 && mml < (double)positions ? (size_t)mml : positions;
    s->cls_id = m2u_wordpiece_cls_id(s->tok);
    s->sep_id = m2u_wordpiece_sep_id(s->tok);
    if (s->cls_id < 0 || s->sep_id < 0) {
        m2u_fail("%s: the post_processor adds no [CLS] ... [SEP] around a sequence", tok_path);
        goto done;
    }
    if (m2u_wordpiece_vocab_size(s->tok) > c->vocab) {
        m2u_fail("%s: %d token ids but the model's vocab_size is %d", tok_path, m2u_wordpiece_vocab_size(s->tok),
                 c->vocab);
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(tc);
    free(tok_path);
    free(tc_path);
    if (rc) {
        m2u_bertscore_free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void m2u_bertscore_free(m2u_bertscorer *s) {
    if (!s) return;
    m2u_bert_free(s->model);
    m2u_wordpiece_free(s->tok);
    m2u_bytebpe_free(s->bbpe);
    free(s->dir);
    free(s);
}

int m2u_bertscore_layers(const m2u_bertscorer *s) { return m2u_bert_config_of(s->model)->layers; }

int m2u_bertscore_describe(const m2u_bertscorer *s, m2u_bertscore_info *info) {
    memset(info, 0, sizeof *info);
    const m2u_bert_config *c = m2u_bert_config_of(s->model);
    int L = c->layers;
    info->roberta = s->bbpe != NULL;
    info->layers = L;
    info->hidden = c->dims.hidden;
    info->max_length = s->max_length;
    /* bert_score's model2layers for the architectures these sizes are */
    if (info->roberta) info->default_layer = L == 24 && c->dims.hidden == 1024 ? 17 : L == 12 && c->dims.hidden == 768 ? 10 : L;
    else info->default_layer = L == 12 && c->dims.hidden == 768 ? 9 : L;
    static const char *const weights[] = {"model.safetensors", "pytorch_model.bin", "model.safetensors.index.json"};
    for (int k = 0; k < 3; k++) {
        char *p = m2u_path_join(s->dir, weights[k]);
        if (!p) return m2u_fail("out of memory");
        int found = m2u_file_exists(p);
        int rc = found ? m2u_sha256_file(p, info->sha256) : 0;
        free(p);
        if (rc) return -1;
        if (found) {
            info->weights = weights[k];
            return 0;
        }
    }
    return m2u_fail("%s: no model.safetensors, pytorch_model.bin or model.safetensors.index.json", s->dir);
}

/* str.strip() on valid UTF-8: *a, *b become the kept byte range. */
static void py_strip(const char *s, size_t n, size_t *a, size_t *b) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, j = n;
    uint32_t c;
    while (i < j) {
        int k = m2u_utf8_decode(u + i, &c);
        if (!m2u_py_space(c)) break;
        i += (size_t)k;
    }
    while (j > i) {
        size_t p = j - 1;
        while (p > i && (u[p] & 0xC0) == 0x80) p--;
        m2u_utf8_decode(u + p, &c);
        if (!m2u_py_space(c)) break;
        j = p;
    }
    *a = i, *b = j;
}

typedef struct {
    const char *text;
    int32_t *ids;
    size_t n;
    float *emb; /* [n][H], rows divided by their norm */
} bs_sent;

static int cmp_str(const void *x, const void *y) { return strcmp(*(const char *const *)x, *(const char *const *)y); }

static int tokenize(const m2u_bertscorer *s, bs_sent *st) {
    size_t len = strlen(st->text), a, b;
    size_t bad = m2u_utf8_valid_prefix((const unsigned char *)st->text, len);
    if (bad != len) return m2u_fail("bertscore: invalid UTF-8 at byte %zu of \"%.40s\"", bad, st->text);
    py_strip(st->text, len, &a, &b);
    /* bert_score's sent_encode: a RoBERTa tokenizer gets add_prefix_space=True; "" -> <s> </s> either way */
    return s->bbpe ? m2u_bytebpe_encode(s->bbpe, st->text + a, b - a, 1, 1, s->max_length, &st->ids, &st->n)
                   : m2u_wordpiece_encode(s->tok, st->text + a, b - a, 1, s->max_length, &st->ids, &st->n);
}

/* The sentences' layer-num_layers states, `group` sentences packed into one pass
 * (m2u_bert_forward_packed: the weights read once per group, not once per sentence; each
 * sentence's values as alone but for the GEMMs' rounding), each row divided by its norm. */
static int embed_all(const m2u_bertscorer *s, int num_layers, bs_sent *u, size_t U, size_t group) {
    int H = m2u_bert_config_of(s->model)->dims.hidden;
    for (size_t k0 = 0; k0 < U; k0 += group) {
        size_t k1 = U - k0 < group ? U : k0 + group, total = 0;
        for (size_t k = k0; k < k1; k++) {
            if (u[k].n > (size_t)INT_MAX - total) return m2u_fail("bertscore: a group of sentences is too long");
            total += u[k].n;
        }
        int32_t *ids = malloc(total * sizeof *ids);
        int *lens = malloc((k1 - k0) * sizeof *lens);
        float *emb = malloc(total * (size_t)H * sizeof *emb);
        int rc = ids && lens && emb ? 0 : m2u_fail("bertscore: out of memory for %zu tokens", total);
        for (size_t k = k0, t0 = 0; !rc && k < k1; t0 += u[k++].n) {
            memcpy(ids + t0, u[k].ids, u[k].n * sizeof *ids);
            lens[k - k0] = (int)u[k].n;
        }
        if (!rc) rc = m2u_bert_forward_packed(s->model, ids, (int)(k1 - k0), lens, num_layers, NULL, emb);
        for (size_t k = k0, t0 = 0; !rc && k < k1; t0 += u[k++].n) {
            if (!(u[k].emb = malloc(u[k].n * (size_t)H * sizeof(float)))) {
                rc = m2u_fail("bertscore: out of memory");
                break;
            }
            memcpy(u[k].emb, emb + t0 * H, u[k].n * (size_t)H * sizeof(float));
            for (size_t t = 0; t < u[k].n; t++) {
                float *e = u[k].emb + t * H;
                double ss = 0;
                for (int h = 0; h < H; h++) ss += (double)e[h] * e[h];
                float norm = (float)sqrt(ss);
                for (int h = 0; h < H; h++) e[h] /= norm;
            }
        }
        free(ids), free(lens), free(emb);
        if (rc) return -1;
    }
    return 0;
}

/* bert_score's row of the baseline file: pandas' iloc[num_layers] of "LAYER,P,R,F". */
static int read_baseline(const char *path, int num_layers, double base[3]) {
    char *text;
    size_t len;
    if (m2u_read_file(path, &text, &len)) return -1;
    int rc = m2u_fail("%s: no row %d (data rows after the header \"LAYER,P,R,F\")", path, num_layers);
    char *line = text, *next;
    for (int row = -1; line && *line; row++, line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        if (row == -1) {
            if (strncmp(line, "LAYER,P,R,F", 11) != 0) {
                rc = m2u_fail("%s: the header must be \"LAYER,P,R,F\"", path);
                break;
            }
            continue;
        }
        if (row != num_layers) continue;
        double layer;
        if (sscanf(line, "%lf,%lf,%lf,%lf", &layer, &base[0], &base[1], &base[2]) != 4)
            rc = m2u_fail("%s: row %d is not 4 numbers", path, num_layers);
        else rc = 0;
        break;
    }
    free(text);
    return rc;
}

static double max_nan(double a, double b) { return (isnan(a) || isnan(b)) ? NAN : (b > a ? b : a); }

int m2u_bertscore(const m2u_bertscorer *s, const m2u_bertscore_opts *o, const char *const *cands,
                  const char *const *const *refs, const size_t *n_refs, size_t n, double *P, double *R, double *F) {
    const m2u_bert_config *c = m2u_bert_config_of(s->model);
    int H = c->dims.hidden, L = o->num_layers;
    size_t bs = o->batch_size > 0 ? (size_t)o->batch_size : 64;
    if (L < 0 || L > c->layers) return m2u_fail("bertscore: num_layers %d is outside 0..%d", L, c->layers);
    double base[3] = {0, 0, 0};
    if (o->baseline_path && read_baseline(o->baseline_path, L, base)) return -1;
    size_t N = 0;
    for (size_t i = 0; i < n; i++) {
        if (n_refs[i] < 1) return m2u_fail("bertscore: candidate %zu has no reference", i);
        N += n_refs[i];
    }
    if (n == 0) return 0;
    /* the flattened pairs, as bert_score.score builds them */
    const char **pc = malloc(N * sizeof *pc), **pr = malloc(N * sizeof *pr), **all = malloc(2 * N * sizeof *all);
    size_t *hi = malloc(N * sizeof *hi), *ri = malloc(N * sizeof *ri);
    double *res = malloc(3 * N * sizeof *res);
    float *idf = calloc((size_t)c->vocab, sizeof *idf);
    float *wp = malloc((size_t)(c->max_positions + 1) * 2 * sizeof *wp);
    bs_sent *u = NULL;
    size_t U = 0;
    int rc = -1;
    if (!pc || !pr || !all || !hi || !ri || !res || !idf || !wp) {
        m2u_fail("bertscore: out of memory for %zu pairs", N);
        goto done;
    }
    for (size_t i = 0, k = 0; i < n; i++)
        for (size_t j = 0; j < n_refs[i]; j++, k++) pc[k] = cands[i], pr[k] = refs[i][j];
    memcpy(all, pc, N * sizeof *all);
    memcpy(all + N, pr, N * sizeof *all);
    qsort(all, 2 * N, sizeof *all, cmp_str);
    for (size_t k = 0; k < 2 * N; k++)
        if (U == 0 || strcmp(all[U - 1], all[k]) != 0) all[U++] = all[k];
    u = calloc(U, sizeof *u);
    if (!u) {
        m2u_fail("bertscore: out of memory");
        goto done;
    }
    for (size_t k = 0; k < U; k++) {
        u[k].text = all[k];
        if (tokenize(s, &u[k])) goto done;
    }
    if (embed_all(s, L, u, U, bs)) goto done;
    for (size_t k = 0; k < N; k++) {
        hi[k] = (size_t)((const char **)bsearch(&pc[k], all, U, sizeof *all, cmp_str) - all);
        ri[k] = (size_t)((const char **)bsearch(&pr[k], all, U, sizeof *all, cmp_str) - all);
    }
    /* token weights */
    if (o->idf) {
        int *df = calloc((size_t)c->vocab, sizeof *df);
        unsigned char *seen = calloc((size_t)c->vocab, 1);
        if (!df || !seen) {
            free(df);
            free(seen);
            m2u_fail("bertscore: out of memory");
            goto done;
        }
        for (size_t k = 0; k < N; k++) {
            const bs_sent *r = &u[ri[k]];
            for (size_t t = 0; t < r->n; t++)
                if (!seen[r->ids[t]]) seen[r->ids[t]] = 1, df[r->ids[t]]++;
            for (size_t t = 0; t < r->n; t++) seen[r->ids[t]] = 0;
        }
        for (int v = 0; v < c->vocab; v++) idf[v] = (float)log((double)(N + 1) / (double)(df[v] + 1));
        free(df);
        free(seen);
    } else {
        for (int v = 0; v < c->vocab; v++) idf[v] = 1.0f;
        idf[s->cls_id] = idf[s->sep_id] = 0.0f;
    }
    /* greedy matching, batch by batch of pairs */
    for (size_t b0 = 0; b0 < N; b0 += bs) {
        size_t b1 = b0 + bs < N ? b0 + bs : N, hmax = 0, rmax = 0;
        for (size_t k = b0; k < b1; k++) {
            if (u[hi[k]].n > hmax) hmax = u[hi[k]].n;
            if (u[ri[k]].n > rmax) rmax = u[ri[k]].n;
        }
        for (size_t k = b0; k < b1; k++) {
            const bs_sent *h = &u[hi[k]], *r = &u[ri[k]];
            float *best_h = wp, *best_r = wp + h->n;
            for (size_t i = 0; i < h->n; i++) best_h[i] = r->n < rmax ? 0.0f : -INFINITY;
            for (size_t j = 0; j < r->n; j++) best_r[j] = h->n < hmax ? 0.0f : -INFINITY;
            for (size_t i = 0; i < h->n; i++)
                for (size_t j = 0; j < r->n; j++) {
                    const float *x = h->emb + i * H, *y = r->emb + j * H;
                    float d = 0;
                    for (int q = 0; q < H; q++) d += x[q] * y[q];
                    if (d > best_h[i]) best_h[i] = d;
                    if (d > best_r[j]) best_r[j] = d;
                }
            float wh = 0, wr = 0;
            for (size_t i = 0; i < h->n; i++) wh += idf[h->ids[i]];
            for (size_t j = 0; j < r->n; j++) wr += idf[r->ids[j]];
            /* float32 throughout, as torch: P = -R gives F = -inf, which bert_score keeps */
            float p = 0, rr = 0;
            for (size_t i = 0; i < h->n; i++) p += best_h[i] * (idf[h->ids[i]] / wh);
            for (size_t j = 0; j < r->n; j++) rr += best_r[j] * (idf[r->ids[j]] / wr);
            float f = 2 * p * rr / (p + rr);
            if (h->n == 2 || r->n == 2) p = rr = 0; /* empty candidate or reference */
            if (isnan(f)) f = 0;
            res[3 * k] = p, res[3 * k + 1] = rr, res[3 * k + 2] = f;
        }
    }
    for (size_t i = 0, k = 0; i < n; i++) {
        double v[3] = {res[3 * k], res[3 * k + 1], res[3 * k + 2]};
        for (size_t j = 1; j < n_refs[i]; j++)
            for (int m = 0; m < 3; m++) v[m] = max_nan(v[m], res[3 * (k + j) + m]);
        k += n_refs[i];
        if (o->baseline_path)
            for (int m = 0; m < 3; m++) v[m] = (v[m] - base[m]) / (1 - base[m]);
        if (P) P[i] = v[0];
        if (R) R[i] = v[1];
        if (F) F[i] = v[2];
    }
    rc = 0;
done:
    for (size_t k = 0; u && k < U; k++) {
        free(u[k].ids);
        free(u[k].emb);
    }
    free(u);
    free(pc);
    free(pr);
    free(all);
    free(hi);
    free(ri);
    free(res);
    free(idf);
    free(wp);
    return rc;
}
