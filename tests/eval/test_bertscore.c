/* eval/metrics/bertscore.c against bert_score 0.3.13 (bert_score.score on the local
 * random BERT of tests/fixtures/bertscore, see tests/make_bertscore_fixtures.py):
 * P, R and F per candidate within 1e-5, with and without idf, with single and
 * multiple references, and on a model with negative best matches at batch
 * sizes 64 and 1 (bert_score's zero padding); then the baseline rescaling
 * formula and refusals. */
#include "bertscore.h"
#include "fileio.h"
#include "m2u_error.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef M2U_FIXTURES
#error "M2U_FIXTURES must name the tests/fixtures directory"
#endif
#define BS_DIR M2U_FIXTURES "/bertscore"
#define TOL 1e-5

static double worst = 0;

/* A reference value: a number, or a string such as "-inf" (JSON has no infinities). */
static double jnum(const cJSON *j) { return cJSON_IsString(j) ? strtod(j->valuestring, NULL) : j->valuedouble; }

static void compare(const char *name, int idf, const cJSON *want, const double *P, const double *R, const double *F,
                    size_t n) {
    const char *keys[3] = {"P", "R", "F"};
    const double *got[3] = {P, R, F};
    double err = 0;
    for (int k = 0; k < 3; k++) {
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(want, keys[k]);
        CHECK((size_t)cJSON_GetArraySize(w) == n, "%s count", keys[k]);
        for (size_t i = 0; i < n && i < (size_t)cJSON_GetArraySize(w); i++) {
            double ref = jnum(cJSON_GetArrayItem(w, (int)i));
            double e = isinf(ref) ? (got[k][i] == ref ? 0 : INFINITY) : fabs(got[k][i] - ref);
            err = t_worse(err, e);
            CHECK(e <= TOL, "%s idf=%d %s[%zu]: got %.8f want %.8f", name, idf, keys[k], i, got[k][i], ref);
        }
    }
    printf("%s idf=%d: %zu candidates, max |diff| over P/R/F %.3g\n", name, idf, n, err);
    worst = t_worse(worst, err);
}

/* The model whose best matches can be negative: bert_score's batches of padded
 * pairs clip a best match at 0 when the counterpart is shorter than the
 * batch's longest; batch_size 1 has no padding. */
static void check_signed(const cJSON *set) {
    m2u_bertscorer *s;
    int rc = m2u_bertscore_load(M2U_FIXTURES "/bertscore/model_signed", &s);
    CHECK(rc == 0, "load signed: %s", m2u_last_error());
    if (rc) return;
    const cJSON *jc = cJSON_GetObjectItemCaseSensitive(set, "cands"), *jr = cJSON_GetObjectItemCaseSensitive(set, "refs");
    size_t n = (size_t)cJSON_GetArraySize(jc);
    const char **cands = calloc(n, sizeof *cands), **refs = calloc(n, sizeof *refs);
    const char *const **rp = calloc(n, sizeof *rp);
    size_t *n_refs = calloc(n, sizeof *n_refs);
    double *P = calloc(n, sizeof *P), *R = calloc(n, sizeof *R), *F = calloc(n, sizeof *F);
    for (size_t i = 0; i < n; i++) {
        cands[i] = cJSON_GetArrayItem(jc, (int)i)->valuestring;
        refs[i] = cJSON_GetArrayItem(jr, (int)i)->valuestring;
        rp[i] = &refs[i];
        n_refs[i] = 1;
    }
    int L = cJSON_GetObjectItemCaseSensitive(set, "num_layers")->valueint;
    for (int b = 0; b < 2; b++)
        for (int idf = 0; idf < 2; idf++) {
            m2u_bertscore_opts o = {.num_layers = L, .idf = idf, .batch_size = b ? 1 : 64};
            rc = m2u_bertscore(s, &o, cands, rp, n_refs, n, P, R, F);
            CHECK(rc == 0, "signed: %s", m2u_last_error());
            if (rc == 0)
                compare(b ? "signed batch_size 1" : "signed batch_size 64", idf,
                        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(set, b ? "batch_1" : "batch_64"),
                                                         idf ? "idf" : "plain"),
                        P, R, F, n);
        }
    free(cands);
    free(refs);
    free(rp);
    free(n_refs);
    free(P);
    free(R);
    free(F);
    m2u_bertscore_free(s);
}

static void check_set(const m2u_bertscorer *s, const cJSON *set, int num_layers, int batch, const char *name) {
    const cJSON *jc = cJSON_GetObjectItemCaseSensitive(set, "cands");
    const cJSON *jr = cJSON_GetObjectItemCaseSensitive(set, "refs");
    size_t n = (size_t)cJSON_GetArraySize(jc);
    const char **cands = calloc(n, sizeof *cands);
    const char ***refs = calloc(n, sizeof *refs);
    size_t *n_refs = calloc(n, sizeof *n_refs);
    double *P = calloc(n, sizeof *P), *R = calloc(n, sizeof *R), *F = calloc(n, sizeof *F);
    for (size_t i = 0; i < n; i++) {
        cands[i] = cJSON_GetArrayItem(jc, (int)i)->valuestring;
        const cJSON *r = cJSON_GetArrayItem(jr, (int)i);
        if (cJSON_IsString(r)) {
            n_refs[i] = 1;
            refs[i] = calloc(1, sizeof **refs);
            refs[i][0] = r->valuestring;
        } else {
            n_refs[i] = (size_t)cJSON_GetArraySize(r);
            refs[i] = calloc(n_refs[i], sizeof **refs);
            for (size_t j = 0; j < n_refs[i]; j++) refs[i][j] = cJSON_GetArrayItem(r, (int)j)->valuestring;
        }
    }
    for (int idf = 0; idf < 2; idf++) {
        m2u_bertscore_opts o = {.num_layers = num_layers, .idf = idf, .batch_size = batch};
        int rc = m2u_bertscore(s, &o, cands, (const char *const *const *)refs, n_refs, n, P, R, F);
        CHECK(rc == 0, "%s idf=%d: %s", name, idf, m2u_last_error());
        if (rc) continue;
        compare(name, idf, cJSON_GetObjectItemCaseSensitive(set, idf ? "idf" : "plain"), P, R, F, n);
    }
    /* baseline rescaling: (x - b) / (1 - b) from row num_layers */
    char path[] = "/tmp/m2u_test_bertscore_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd >= 0) {
        close(fd);
        char text[256];
        int len = snprintf(text, sizeof text, "LAYER,P,R,F\n");
        for (int l = 0; l <= num_layers; l++)
            len += snprintf(text + len, sizeof text - (size_t)len, "%d,%.2f,%.2f,%.2f\n", l, l == num_layers ? 0.5 : 0.9,
                            l == num_layers ? 0.25 : 0.9, l == num_layers ? 0.75 : 0.9);
        CHECK(m2u_write_file_atomic(path, text, (size_t)len) == 0, "write baseline");
        double *P2 = calloc(n, sizeof *P2), *R2 = calloc(n, sizeof *R2), *F2 = calloc(n, sizeof *F2);
        m2u_bertscore_opts o = {.num_layers = num_layers, .idf = 1, .batch_size = batch, .baseline_path = path};
        CHECK(m2u_bertscore(s, &o, cands, (const char *const *const *)refs, n_refs, n, P2, R2, F2) == 0,
              "rescaled: %s", m2u_last_error());
        for (size_t i = 0; i < n; i++)
            CHECK(fabs(P2[i] - (P[i] - 0.5) / 0.5) < 1e-12 && fabs(R2[i] - (R[i] - 0.25) / 0.75) < 1e-12 &&
                      fabs(F2[i] - (F[i] - 0.75) / 0.25) < 1e-12,
                  "rescaled %zu", i);
        o.num_layers = num_layers - 1;
        o.baseline_path = "/nonexistent/baseline.tsv";
        CHECK(m2u_bertscore(s, &o, cands, (const char *const *const *)refs, n_refs, n, P2, R2, F2) != 0 &&
                  strstr(m2u_last_error(), "baseline.tsv"),
              "missing baseline file named: %s", m2u_last_error());
        free(P2);
        free(R2);
        free(F2);
        unlink(path);
    }
    for (size_t i = 0; i < n; i++) free(refs[i]);
    free(refs);
    free(cands);
    free(n_refs);
    free(P);
    free(R);
    free(F);
}

int main(void) {
    m2u_bertscorer *s;
    int rc = m2u_bertscore_load(BS_DIR "/model", &s);
    CHECK(rc == 0, "load: %s", m2u_last_error());
    if (rc) return t_finish("test_bertscore");
    char *data;
    size_t len;
    CHECK(m2u_read_file(BS_DIR "/scores.json", &data, &len) == 0, "read scores");
    cJSON *root = cJSON_ParseWithLength(data, len);
    free(data);
    int L = cJSON_GetObjectItemCaseSensitive(root, "num_layers")->valueint;
    int batch = cJSON_GetObjectItemCaseSensitive(root, "batch_size")->valueint;
    CHECK(L >= 1 && L <= m2u_bertscore_layers(s), "num_layers %d", L);
    check_set(s, cJSON_GetObjectItemCaseSensitive(root, "single"), L, batch, "single");
    check_set(s, cJSON_GetObjectItemCaseSensitive(root, "multi"), L, batch, "multi");
    check_signed(cJSON_GetObjectItemCaseSensitive(root, "signed"));
    printf("worst |diff| %.3g (tolerance %g)\n", worst, TOL);

    /* refusals */
    const char *c1[1] = {"a piano"}, *r1[1] = {"a piano"};
    const char *const *refs1[1] = {r1};
    size_t zero = 0, one = 1;
    double P, R, F;
    m2u_bertscore_opts o = {.num_layers = m2u_bertscore_layers(s) + 1};
    CHECK(m2u_bertscore(s, &o, c1, refs1, &one, 1, &P, &R, &F) != 0 && strstr(m2u_last_error(), "num_layers"),
          "num_layers out of range");
    o.num_layers = 1;
    CHECK(m2u_bertscore(s, &o, c1, refs1, &zero, 1, &P, &R, &F) != 0, "no reference refused");
    CHECK(m2u_bertscore(s, &o, c1, refs1, &one, 1, &P, &R, &F) == 0 && fabs(F - 1) < 1e-6 && fabs(P - 1) < 1e-6,
          "identical sentences score 1: %g", F);
    cJSON_Delete(root);
    m2u_bertscore_free(s);
    m2u_bertscorer *bad = NULL;
    CHECK(m2u_bertscore_load(M2U_FIXTURES "/encoders/vit_a", &bad) != 0 && strstr(m2u_last_error(), "config.json"),
          "a ViT directory refused naming config.json: %s", m2u_last_error());
    m2u_bertscore_free(bad);
    return t_finish("test_bertscore");
}
