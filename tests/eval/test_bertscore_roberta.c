/* eval/metrics/bertscore.c on a RoBERTa checkpoint against bert_score 0.3.13: bert_score.score(cands,
 * refs, model_type=tests/fixtures/roberta/model, num_layers=3, lang="en", ...) with its default slow
 * RobertaTokenizer (add_prefix_space=True), see tests/make_roberta_fixtures.py.  P, R and F per
 * candidate within 1e-6 on 100 single-reference pairs (empty and whitespace-only texts, <mask> and
 * <pad> in the text, emoji, accents, texts truncated at model_max_length 40) and 12 multi-reference
 * candidates, each without and with idf, and without and with rescale_with_baseline (baseline.tsv in
 * bert_score's LAYER,P,R,F format).  Rescaling x -> (x - b) / (1 - b) magnifies the float32 noise of
 * the raw scores by 1 / (1 - b), so a rescaled score is held to 1e-6 / (1 - b) (b of its row and metric).
 * Then what m2u_bertscore_describe reports, and m2u-eval captions --bert on the same directory: its
 * report names the model, layer, idf, baseline and sha256 and its corpus means are the library's. */
#include "bertscore.h"
#include "m2u_error.h"
#include "sha256.h"
#include "test_fixture.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M2U_FIXTURES
#error "M2U_FIXTURES must name the tests/fixtures directory"
#endif
#define DIR M2U_FIXTURES "/roberta"
#define TOL 1e-6

static double base[3]; /* baseline.tsv's row num_layers: P, R, F */

static void read_base(int num_layers) {
    FILE *f = fopen(DIR "/baseline.tsv", "r");
    char line[256];
    for (int row = -1; f && fgets(line, sizeof line, f); row++)
        if (row == num_layers) CHECK(sscanf(line, "%*d,%lf,%lf,%lf", &base[0], &base[1], &base[2]) == 3, "baseline row");
    if (f) fclose(f);
    CHECK(base[0] > 0 && base[1] > 0 && base[2] > 0, "baseline read");
}

static void check_set(const m2u_bertscorer *s, const cJSON *set, int num_layers, const char *name) {
    const cJSON *jc = cJSON_GetObjectItemCaseSensitive(set, "cands"), *jr = cJSON_GetObjectItemCaseSensitive(set, "refs");
    size_t n = (size_t)cJSON_GetArraySize(jc);
    const char **cands = calloc(n, sizeof *cands);
    const char ***refs = calloc(n, sizeof *refs);
    size_t *n_refs = calloc(n, sizeof *n_refs);
    double *res = calloc(3 * n, sizeof *res);
    for (size_t i = 0; i < n; i++) {
        cands[i] = cJSON_GetArrayItem(jc, (int)i)->valuestring;
        const cJSON *r = cJSON_GetArrayItem(jr, (int)i);
        n_refs[i] = cJSON_IsString(r) ? 1 : (size_t)cJSON_GetArraySize(r);
        refs[i] = calloc(n_refs[i], sizeof **refs);
        for (size_t j = 0; j < n_refs[i]; j++)
            refs[i][j] = cJSON_IsString(r) ? r->valuestring : cJSON_GetArrayItem(r, (int)j)->valuestring;
    }
    static const char *const variants[4] = {"plain", "idf", "plain_rescaled", "idf_rescaled"};
    for (int v = 0; v < 4; v++) {
        m2u_bertscore_opts o = {.num_layers = num_layers, .idf = v & 1, .baseline_path = v >= 2 ? DIR "/baseline.tsv" : NULL};
        int rc = m2u_bertscore(s, &o, cands, (const char *const *const *)refs, n_refs, n, res, res + n, res + 2 * n);
        CHECK(rc == 0, "%s %s: %s", name, variants[v], m2u_last_error());
        if (rc) continue;
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(set, variants[v]);
        static const char *const keys[3] = {"P", "R", "F"};
        double err = 0;
        for (int k = 0; k < 3; k++) {
            const cJSON *w = cJSON_GetObjectItemCaseSensitive(want, keys[k]);
            CHECK((size_t)cJSON_GetArraySize(w) == n, "%s count", keys[k]);
            for (size_t i = 0; i < n && i < (size_t)cJSON_GetArraySize(w); i++) {
                double ref = cJSON_GetArrayItem(w, (int)i)->valuedouble, e = fabs(res[k * n + i] - ref);
                if (v >= 2) e *= 1 - base[k]; /* reported on the raw scale */
                err = t_worse(err, e);
                CHECK(e <= TOL, "%s %s %s[%zu]: got %.9f want %.9f (\"%.30s\")", name, variants[v], keys[k], i,
                      res[k * n + i], ref, cands[i]);
            }
        }
        printf("%s %s: %zu candidates, max |diff| over P/R/F %.3g%s\n", name, variants[v], n, err,
               v >= 2 ? " (times 1 - b: on the raw scale)" : "");
    }
    for (size_t i = 0; i < n; i++) free(refs[i]);
    free(refs);
    free(cands);
    free(n_refs);
    free(res);
}

/* m2u-eval captions --bert DIR --bert-idf --bert-baseline on three items. */
static void check_cli(const char *sha) {
    const char *cands[3] = {"a calm piano piece", "fast drums and bass", "an orchestra with strings"};
    const char *refs[3][2] = {{"soft piano", "a quiet piano melody"}, {"drum and bass", "loud drums"},
                              {"a string orchestra", "violins and cellos"}};
    FILE *c = fopen("/tmp/m2u_bsr_c.jsonl", "w"), *r = fopen("/tmp/m2u_bsr_r.jsonl", "w");
    for (int i = 0; c && r && i < 3; i++) {
        fprintf(c, "{\"id\": %d, \"caption\": \"%s\"}\n", i, cands[i]);
        fprintf(r, "{\"id\": %d, \"references\": [\"%s\", \"%s\"]}\n", i, refs[i][0], refs[i][1]);
    }
    if (c) fclose(c);
    if (r) fclose(r);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s/m2u-eval captions --candidates /tmp/m2u_bsr_c.jsonl --references /tmp/m2u_bsr_r.jsonl --quiet "
             "--bert %s/model --bert-idf --bert-baseline %s/baseline.tsv --out /tmp/m2u_bsr_report.json",
             M2U_BUILD_DIR, DIR, DIR);
    CHECK(system(cmd) == 0, "%s", cmd);
    cJSON *rep = t_json_load("/tmp/m2u_bsr_report.json");
    const cJSON *bm = cJSON_GetObjectItemCaseSensitive(rep, "bertscore_model");
    const cJSON *corpus = cJSON_GetObjectItemCaseSensitive(rep, "corpus");
    CHECK(bm && !strcmp(cJSON_GetObjectItem(bm, "model_type")->valuestring, "roberta") &&
              cJSON_GetObjectItem(bm, "layer")->valueint == 4 && cJSON_IsTrue(cJSON_GetObjectItem(bm, "idf")) &&
              strstr(cJSON_GetObjectItem(bm, "baseline")->valuestring, "baseline.tsv") &&
              !strcmp(cJSON_GetObjectItem(bm, "sha256")->valuestring, sha),
          "report's bertscore_model");
    m2u_bertscorer *s;
    if (bm && corpus && m2u_bertscore_load(DIR "/model", &s) == 0) {
        const char *const r0[2] = {refs[0][0], refs[0][1]}, *const r1[2] = {refs[1][0], refs[1][1]},
                          *const r2[2] = {refs[2][0], refs[2][1]};
        const char *const *rp[3] = {r0, r1, r2};
        size_t nr[3] = {2, 2, 2};
        double P[3], R[3], F[3];
        m2u_bertscore_opts o = {.num_layers = 4, .idf = 1, .baseline_path = DIR "/baseline.tsv"};
        CHECK(m2u_bertscore(s, &o, cands, rp, nr, 3, P, R, F) == 0, "%s", m2u_last_error());
        double mr = (R[0] + R[1] + R[2]) / 3;
        CHECK(fabs(cJSON_GetObjectItem(corpus, "bertscore_r")->valuedouble - mr) < 1e-12, "corpus R %.9f vs %.9f",
              cJSON_GetObjectItem(corpus, "bertscore_r")->valuedouble, mr);
        m2u_bertscore_free(s);
    }
    cJSON_Delete(rep);
    remove("/tmp/m2u_bsr_c.jsonl");
    remove("/tmp/m2u_bsr_r.jsonl");
    remove("/tmp/m2u_bsr_report.json");
}

int main(void) {
    cJSON *scores = t_json_load(DIR "/scores.json");
    m2u_bertscorer *s = NULL;
    CHECK(m2u_bertscore_load(DIR "/model", &s) == 0, "load: %s", m2u_last_error());
    if (!s || !scores) return t_finish("test_bertscore_roberta");
    int L = cJSON_GetObjectItemCaseSensitive(scores, "num_layers")->valueint;
    read_base(L);
    check_set(s, cJSON_GetObjectItemCaseSensitive(scores, "single"), L, "single");
    check_set(s, cJSON_GetObjectItemCaseSensitive(scores, "multi"), L, "multi");
    m2u_bertscore_info info;
    char want_sha[65];
    CHECK(m2u_bertscore_describe(s, &info) == 0, "describe: %s", m2u_last_error());
    CHECK(m2u_sha256_file(DIR "/model/model.safetensors", want_sha) == 0, "sha256");
    CHECK(info.roberta == 1 && info.layers == 4 && info.default_layer == 4 && info.max_length == 40 &&
              !strcmp(info.weights, "model.safetensors") && !strcmp(info.sha256, want_sha),
          "describe: roberta %d layers %d default %d max_length %zu %s %s", info.roberta, info.layers,
          info.default_layer, info.max_length, info.weights, info.sha256);
    m2u_bertscore_free(s);
    cJSON_Delete(scores);
    check_cli(want_sha);
    return t_finish("test_bertscore_roberta");
}
