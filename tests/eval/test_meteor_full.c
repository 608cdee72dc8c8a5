/* Full METEOR 1.5 (exact, stem, synonym, paraphrase) against meteor-1.5.jar
 * as pycocoevalcap 1.2 runs it, on tests/fixtures/eval/meteor.json (made by
 * tests/make_eval_fixtures.py: >= 300 caption groups, per-item and corpus
 * scores from the jar):
 *   - every fixture word's synsets (SynonymDictionary getSynSets +
 *     getStemSynSets, from the jar) equal m2u's, built from the WordNet
 *     subset in tests/fixtures/eval/meteor_data/;
 *   - per-item and corpus scores within 1e-6 of the jar, with the subset data
 *     (the paraphrase table loaded whole and filtered by the sentences: the
 *     same scores), and with -m "exact stem";
 *   - the same with the full installed data (/usr/share/wordnet and the
 *     installed paraphrase-en.gz; M2U_METEOR_WORDNET / M2U_METEOR_PARAPHRASE
 *     point elsewhere), skipped with a message when they are absent;
 *   - m2u-eval captions with --meteor-wordnet / --meteor-paraphrase equals
 *     pycocoevalcap's METEOR on tests/fixtures/eval/captions.json;
 *   - load errors name the file. */
#include "caption_metrics.h"
#include "m2u_error.h"
#include "meteor_data.h"
#include "test_fixture.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOL 1e-6

typedef struct {
    int n;
    const char **cand;
    const char ***refs;
    int *n_refs;
    double *want, *want_es;
    double corpus, corpus_es;
    m2u_caption_set set;
} fixture;

static int load_fixture(cJSON *j, fixture *f) {
    const cJSON *g = cJSON_GetObjectItem(j, "groups");
    f->n = cJSON_GetArraySize(g);
    f->cand = malloc((size_t)f->n * sizeof *f->cand);
    f->refs = malloc((size_t)f->n * sizeof *f->refs);
    f->n_refs = malloc((size_t)f->n * sizeof *f->n_refs);
    f->want = malloc((size_t)f->n * sizeof *f->want);
    f->want_es = malloc((size_t)f->n * sizeof *f->want_es);
    for (int i = 0; i < f->n; i++) {
        const cJSON *e = cJSON_GetArrayItem(g, i), *rt = cJSON_GetObjectItem(e, "references_tok");
        f->cand[i] = cJSON_GetObjectItem(e, "candidate_tok")->valuestring;
        f->n_refs[i] = cJSON_GetArraySize(rt);
        f->refs[i] = malloc((size_t)f->n_refs[i] * sizeof(char *));
        for (int r = 0; r < f->n_refs[i]; r++) f->refs[i][r] = cJSON_GetArrayItem(rt, r)->valuestring;
        f->want[i] = cJSON_GetObjectItem(e, "meteor")->valuedouble;
        f->want_es[i] = cJSON_GetObjectItem(e, "meteor_exact_stem")->valuedouble;
    }
    const cJSON *m = cJSON_GetObjectItem(j, "metrics");
    f->corpus = cJSON_GetObjectItem(m, "meteor")->valuedouble;
    f->corpus_es = cJSON_GetObjectItem(m, "meteor_exact_stem")->valuedouble;
    f->set = (m2u_caption_set){(size_t)f->n, f->cand, (const char *const *const *)f->refs, f->n_refs};
    return f->n;
}

static void free_fixture(fixture *f) {
    for (int i = 0; i < f->n; i++) free(f->refs[i]);
    free(f->cand);
    free(f->refs);
    free(f->n_refs);
    free(f->want);
    free(f->want_es);
}

/* score the fixture with p; compare to want (per item and corpus); returns the worst difference */
static double compare(const fixture *f, const m2u_meteor_params *p, const double *want, double want_corpus,
                      const char *what, double *per) {
    double corpus = -1;
    int rc = m2u_meteor(&f->set, p, &corpus, per);
    CHECK(rc == 0, "%s: %s", what, m2u_last_error());
    if (rc) return 1;
    double worst = fabs(corpus - want_corpus);
    int bad = 0;
    for (int i = 0; i < f->n; i++) {
        double d = fabs(per[i] - want[i]);
        worst = t_worse(worst, d);
        if (d > TOL && bad++ < 5)
            fprintf(stderr, "  %s item %d: %.17g vs jar %.17g\n    cand [%s]\n", what, i, per[i], want[i], f->cand[i]);
    }
    CHECK(bad == 0, "%s: %d of %d items differ from the jar by more than %g", what, bad, f->n, TOL);
    CHECK(fabs(corpus - want_corpus) <= TOL, "%s: corpus %.17g vs jar %.17g", what, corpus, want_corpus);
    printf("%s: corpus %.9f vs jar %.9f, %d items, worst difference %.3g\n", what, corpus, want_corpus, f->n, worst);
    return worst;
}

static m2u_meteor_data *load_data(const char *wn, const char *para, const m2u_caption_set *only_for) {
    m2u_meteor_data *d = m2u_meteor_data_new();
    if (!d) return NULL;
    if (m2u_meteor_load_wordnet(d, wn) || m2u_meteor_load_paraphrase(d, para, only_for)) {
        m2u_meteor_data_free(d);
        return NULL;
    }
    return d;
}

static void test_synsets(const cJSON *j, const m2u_meteor_data *d) {
    const cJSON *ws = cJSON_GetObjectItem(j, "synsets");
    int n = cJSON_GetArraySize(ws), bad = 0, with = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(ws, i), *want = cJSON_GetObjectItem(e, "synsets");
        const char *w = cJSON_GetObjectItem(e, "word")->valuestring;
        int *got = NULL, ng = 0;
        CHECK(m2u_meteor_word_synsets(d, w, &got, &ng) == 0, "%s", m2u_last_error());
        int ok = ng == cJSON_GetArraySize(want);
        for (int k = 0; ok && k < ng; k++) ok = got[k] == cJSON_GetArrayItem(want, k)->valueint;
        if (!ok && bad++ < 5) fprintf(stderr, "  synsets of [%s]: %d offsets, jar %d\n", w, ng, cJSON_GetArraySize(want));
        with += ng > 0;
        free(got);
    }
    CHECK(bad == 0, "%d of %d words have other synsets than the jar's", bad, n);
    CHECK(with > n / 2, "only %d of %d words have synsets: the subset is not exercised", with, n);
    printf("synsets: %d/%d words identical to meteor-1.5.jar's SynonymDictionary (%d with synsets)\n", n - bad, n,
           with);
}

static void test_errors(const fixture *f) {
    m2u_meteor_data *d = m2u_meteor_data_new();
    CHECK(m2u_meteor_load_wordnet(d, "/nonexistent/wordnet") == -1 && strstr(m2u_last_error(), "index.sense"),
          "missing WordNet: %s", m2u_last_error());
    CHECK(m2u_meteor_load_paraphrase(d, "/nonexistent/p.gz", NULL) == -1 && strstr(m2u_last_error(), "p.gz"),
          "missing table: %s", m2u_last_error());
    const char bad_sense[] = "piano%1:06:00:: 0x3 1 0\n";
    CHECK(m2u_meteor_parse_index_sense(d, bad_sense, sizeof bad_sense - 1, "x/index.sense") == -1 &&
              strstr(m2u_last_error(), "x/index.sense:1"),
          "bad offset: %s", m2u_last_error());
    char tmpl[] = "/tmp/m2u_meteor_XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd >= 0) {
        const char cut[] = "0.5\npiano\n"; /* an entry without its paraphrase line */
        CHECK(write(fd, cut, sizeof cut - 1) == (ssize_t)(sizeof cut - 1), "write");
        close(fd);
        CHECK(m2u_meteor_load_paraphrase(d, tmpl, NULL) == -1 && strstr(m2u_last_error(), "cut short"),
              "cut entry: %s", m2u_last_error());
        unlink(tmpl);
    }
    m2u_meteor_data_free(d);
    m2u_meteor_params p;
    m2u_meteor_default_params(&p);
    p.use_synonym = 1;
    double c;
    CHECK(m2u_meteor(&f->set, &p, &c, NULL) == -1 && strstr(m2u_last_error(), "WordNet"), "synonyms without data");
}

/* m2u-eval captions on the 62 groups of captions.json (a subset of meteor.json's sentences) */
static void test_cli(void) {
    char cmd[4096], rep[256];
    snprintf(rep, sizeof rep, "/tmp/m2u_meteor_cli_%d.json", (int)getpid());
    snprintf(cmd, sizeof cmd,
             "%s/m2u-eval captions --candidates %s/eval/candidates.jsonl --references %s/eval/references.jsonl "
             "--meteor-wordnet %s/eval/meteor_data --meteor-paraphrase %s/eval/meteor_data/paraphrase-en.gz "
             "--out %s --quiet",
             M2U_BUILD_DIR, M2U_FIXTURES, M2U_FIXTURES, M2U_FIXTURES, M2U_FIXTURES, rep);
    CHECK(system(cmd) == 0, "%s failed", cmd);
    cJSON *r = t_json_load(rep), *want = NULL;
    snprintf(cmd, sizeof cmd, "%s/eval/captions.json", M2U_FIXTURES);
    want = t_json_load(cmd);
    CHECK(r && want, "report or captions.json missing");
    if (r && want) {
        const cJSON *mods = cJSON_GetObjectItem(r, "meteor_modules");
        CHECK(cJSON_IsString(mods) && strcmp(mods->valuestring, "exact,stem,synonym,paraphrase") == 0, "modules");
        double got = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "corpus"), "meteor")->valuedouble;
        double w = cJSON_GetObjectItem(cJSON_GetObjectItem(want, "metrics"), "meteor")->valuedouble;
        CHECK(fabs(got - w) <= TOL, "m2u-eval captions METEOR %.17g vs pycocoevalcap %.17g", got, w);
        const cJSON *items = cJSON_GetObjectItem(r, "items"), *groups = cJSON_GetObjectItem(want, "groups");
        int bad = 0, n = cJSON_GetArraySize(items);
        CHECK(n == cJSON_GetArraySize(groups), "%d items", n);
        for (int i = 0; i < n && i < cJSON_GetArraySize(groups); i++) {
            double a = cJSON_GetObjectItem(cJSON_GetArrayItem(items, i), "meteor")->valuedouble;
            double b = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(groups, i), "scores"), "meteor")->valuedouble;
            bad += fabs(a - b) > TOL;
        }
        CHECK(bad == 0, "%d items of m2u-eval captions differ from pycocoevalcap's METEOR", bad);
        printf("m2u-eval captions: METEOR %.9f vs pycocoevalcap %.9f, %d items\n", got, w, n);
    }
    cJSON_Delete(r);
    cJSON_Delete(want);
    unlink(rep);
    /* without data: exact and stem, and the modules say so */
    const char *cand[] = {"a quick tune"}, *r0[] = {"a fast song"};
    const char *const *refs[] = {r0};
    int nr[] = {1};
    m2u_caption_scores c;
    const char *mods = NULL;
    CHECK(m2u_caption_evaluate_meteor(1, cand, refs, nr, NULL, NULL, &c, NULL, &mods) == 0 && mods &&
              strcmp(mods, "exact,stem") == 0,
          "modules without data: %s", mods ? mods : "(none)");
}

int main(void) {
    char path[1024], wn[1024], para[1024];
    snprintf(path, sizeof path, "%s/eval/meteor.json", M2U_FIXTURES);
    cJSON *j = t_json_load(path);
    CHECK(j != NULL, "%s missing", path);
    if (!j) return t_finish("test_meteor_full");
    fixture f;
    CHECK(load_fixture(j, &f) >= 300, "only %d groups", f.n);
    double *per = malloc((size_t)f.n * sizeof *per), *per2 = malloc((size_t)f.n * sizeof *per2);
    snprintf(wn, sizeof wn, "%s/eval/meteor_data", M2U_FIXTURES);
    snprintf(para, sizeof para, "%s/eval/meteor_data/paraphrase-en.gz", M2U_FIXTURES);

    /* the fixture subset, whole */
    m2u_meteor_data *d = load_data(wn, para, NULL);
    CHECK(d != NULL, "subset data: %s", m2u_last_error());
    if (d) {
        test_synsets(j, d);
        m2u_meteor_params p;
        m2u_meteor_default_params_data(&p, d);
        CHECK(strcmp(m2u_meteor_modules(&p), "exact,stem,synonym,paraphrase") == 0, "modules %s",
              m2u_meteor_modules(&p));
        compare(&f, &p, f.want, f.corpus, "METEOR exact,stem,synonym,paraphrase (fixture subset)", per);
        /* the synonym and paraphrase modules change many items: the check is not vacuous */
        int changed = 0;
        for (int i = 0; i < f.n; i++) changed += fabs(f.want[i] - f.want_es[i]) > 1e-9;
        CHECK(changed >= f.n / 3, "only %d/%d items use synonyms or paraphrases", changed, f.n);
        printf("synonym/paraphrase modules change %d of %d items\n", changed, f.n);
        m2u_meteor_default_params(&p);
        compare(&f, &p, f.want_es, f.corpus_es, "METEOR exact,stem (-m \"exact stem\")", per2);
        m2u_meteor_data_free(d);
    }
    /* the subset again, the paraphrase table filtered by the sentences at load time */
    d = load_data(wn, para, &f.set);
    CHECK(d != NULL, "subset data, filtered: %s", m2u_last_error());
    if (d) {
        m2u_meteor_params p;
        m2u_meteor_default_params_data(&p, d);
        double c;
        CHECK(m2u_meteor(&f.set, &p, &c, per2) == 0, "%s", m2u_last_error());
        int same = 1;
        for (int i = 0; i < f.n; i++) same &= per2[i] == per[i];
        CHECK(same, "a filtered paraphrase table changes scores");
        m2u_meteor_data_free(d);
    }

    /* the full installed data */
    const char *fwn = getenv("M2U_METEOR_WORDNET"), *fpara = getenv("M2U_METEOR_PARAPHRASE");
    if (!fwn) fwn = M2U_METEOR_WORDNET_DIR;
    if (!fpara) fpara = M2U_METEOR_PARAPHRASE_PATH;
    snprintf(path, sizeof path, "%s/index.sense", fwn);
    if (access(path, R_OK) != 0 || access(fpara, R_OK) != 0) {
        printf("SKIP full-data check: %s or %s not found (launch/install-deps.sh installs them; "
               "M2U_METEOR_WORDNET / M2U_METEOR_PARAPHRASE point elsewhere)\n", path, fpara);
    } else {
        d = load_data(fwn, fpara, &f.set);
        CHECK(d != NULL, "full data: %s", m2u_last_error());
        if (d) {
            test_synsets(j, d);
            m2u_meteor_params p;
            m2u_meteor_default_params_data(&p, d);
            compare(&f, &p, f.want, f.corpus, "METEOR exact,stem,synonym,paraphrase (full installed data)", per2);
            m2u_meteor_data_free(d);
        }
    }
    test_cli();
    test_errors(&f);
    free(per);
    free(per2);
    free_fixture(&f);
    cJSON_Delete(j);
    return t_finish("test_meteor_full");
}
