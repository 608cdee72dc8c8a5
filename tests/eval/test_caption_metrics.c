/* Caption metrics against pycocoevalcap 1.2 (tests/fixtures/eval/, made by
 * tests/make_eval_fixtures.py): PTB tokenisation identical to CoreNLP 3.4.1,
 * BLEU-1..4 / ROUGE-L / CIDEr-D within 1e-9 (corpus and per item), METEOR's
 * normaliser and Snowball stemmer identical to meteor-1.5.jar, METEOR with
 * the exact+stem modules equal to the jar run with the same modules, and the
 * full METEOR (synonym + paraphrase, fixture data subset) equal to
 * pycocoevalcap's within 1e-6. */
#include "caption_metrics.h"
#include "m2u_error.h"
#include "test_fixture.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static cJSON *load_json(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/eval/%s", M2U_FIXTURES, name);
    return t_json_load(path);
}

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void test_tokenizer(void) {
    cJSON *j = load_json("tokenize.json");
    CHECK(j != NULL, "tokenize.json missing");
    if (!j) return;
    const cJSON *cases = cJSON_GetObjectItem(j, "cases");
    int n = cJSON_GetArraySize(cases);
    const char **texts = malloc((size_t)n * sizeof *texts);
    for (int i = 0; i < n; i++) texts[i] = jstr(cJSON_GetArrayItem(cases, i), "text");
    char **tok = NULL, **raw = NULL;
    int rc = m2u_ptb_tokenize(texts, (size_t)n, &tok, &raw);
    CHECK(rc == 0, "tokenize: %s", m2u_last_error());
    int bad = 0, badraw = 0;
    for (int i = 0; rc == 0 && i < n; i++) {
        const cJSON *c = cJSON_GetArrayItem(cases, i);
        if (strcmp(raw[i], jstr(c, "ptb")) != 0) {
            badraw++;
            fprintf(stderr, "  ptb  [%s]\n   want [%s]\n   got  [%s]\n", texts[i], jstr(c, "ptb"), raw[i]);
        }
        if (strcmp(tok[i], jstr(c, "tokenized")) != 0) bad++;
    }
    CHECK(badraw == 0, "%d of %d PTB token lines differ from CoreNLP", badraw, n);
    CHECK(bad == 0, "%d of %d tokenised lines differ from pycocoevalcap", bad, n);
    printf("tokenizer: %d/%d lines identical to CoreNLP 3.4.1 + pycocoevalcap\n", n - bad, n);
    m2u_strv_free(tok, (size_t)n);
    m2u_strv_free(raw, (size_t)n);
    free(texts);
    /* one text at a time gives the same as in a batch here, and an empty list works */
    CHECK(m2u_ptb_tokenize(NULL, 0, &tok, NULL) == 0, "empty batch");
    m2u_strv_free(tok, 0);
    const char *one[] = {"", "Don't stop (now)!", ""};
    CHECK(m2u_ptb_tokenize(one, 3, &tok, &raw) == 0, "three lines");
    CHECK(strcmp(tok[0], "") == 0 && strcmp(tok[2], "") == 0, "empty lines stay empty");
    CHECK(strcmp(tok[1], "do n't stop -lrb- now -rrb-") == 0, "got [%s]", tok[1]);
    m2u_strv_free(tok, 3);
    m2u_strv_free(raw, 3);
    cJSON_Delete(j);
}

typedef struct {
    int n;
    const char **cand_raw, **cand_tok;
    const char ***refs_raw, ***refs_tok;
    int *n_refs;
    const cJSON *groups;
} corpus;

static void corpus_free(corpus *c) {
    for (int i = 0; i < c->n; i++) {
        free(c->refs_raw[i]);
        free(c->refs_tok[i]);
    }
    free(c->cand_raw);
    free(c->cand_tok);
    free(c->refs_raw);
    free(c->refs_tok);
    free(c->n_refs);
}

static void corpus_load(const cJSON *j, corpus *c) {
    c->groups = cJSON_GetObjectItem(j, "groups");
    c->n = cJSON_GetArraySize(c->groups);
    c->cand_raw = malloc((size_t)c->n * sizeof(char *));
    c->cand_tok = malloc((size_t)c->n * sizeof(char *));
    c->refs_raw = malloc((size_t)c->n * sizeof(char **));
    c->refs_tok = malloc((size_t)c->n * sizeof(char **));
    c->n_refs = malloc((size_t)c->n * sizeof(int));
    for (int i = 0; i < c->n; i++) {
        const cJSON *g = cJSON_GetArrayItem(c->groups, i);
        c->cand_raw[i] = jstr(g, "candidate");
        c->cand_tok[i] = jstr(g, "candidate_tok");
        const cJSON *rr = cJSON_GetObjectItem(g, "references"), *rt = cJSON_GetObjectItem(g, "references_tok");
        int k = cJSON_GetArraySize(rr);
        c->n_refs[i] = k;
        c->refs_raw[i] = malloc((size_t)k * sizeof(char *));
        c->refs_tok[i] = malloc((size_t)k * sizeof(char *));
        for (int r = 0; r < k; r++) {
            c->refs_raw[i][r] = cJSON_GetArrayItem(rr, r)->valuestring;
            c->refs_tok[i][r] = cJSON_GetArrayItem(rt, r)->valuestring;
        }
    }
}

static double per_item_fixture(const corpus *c, int i, const char *key) {
    return jnum(cJSON_GetObjectItem(cJSON_GetArrayItem(c->groups, i), "scores"), key);
}

static double rel(double a, double b) { return fabs(a - b) / (fabs(b) > 1e-12 ? fabs(b) : 1e-12); }

static void test_scores(void) {
    cJSON *j = load_json("captions.json");
    CHECK(j != NULL, "captions.json missing");
    if (!j) return;
    corpus c;
    corpus_load(j, &c);
    const cJSON *metrics = cJSON_GetObjectItem(j, "metrics");

    /* tokenisation of the corpus, as pycocoevalcap does it (two calls) */
    char **ct = NULL, **rt = NULL;
    int total = 0;
    for (int i = 0; i < c.n; i++) total += c.n_refs[i];
    const char **flat = malloc((size_t)total * sizeof *flat);
    for (int i = 0, k = 0; i < c.n; i++)
        for (int r = 0; r < c.n_refs[i]; r++) flat[k++] = c.refs_raw[i][r];
    CHECK(m2u_ptb_tokenize(c.cand_raw, (size_t)c.n, &ct, NULL) == 0, "%s", m2u_last_error());
    CHECK(m2u_ptb_tokenize(flat, (size_t)total, &rt, NULL) == 0, "%s", m2u_last_error());
    int tbad = 0;
    for (int i = 0, k = 0; ct && rt && i < c.n; i++) {
        if (strcmp(ct[i], c.cand_tok[i])) tbad++;
        for (int r = 0; r < c.n_refs[i]; r++, k++)
            if (strcmp(rt[k], c.refs_tok[i][r])) tbad++;
    }
    CHECK(tbad == 0, "%d corpus lines tokenised differently", tbad);
    m2u_strv_free(ct, (size_t)c.n);
    m2u_strv_free(rt, (size_t)total);
    free(flat);

    m2u_caption_set set = {(size_t)c.n, c.cand_tok, (const char *const *const *)c.refs_tok, c.n_refs};
    double bleu[4], *bleu_i = malloc((size_t)c.n * 4 * sizeof *bleu_i);
    CHECK(m2u_bleu(&set, bleu, bleu_i) == 0, "%s", m2u_last_error());
    double worst = 0;
    for (int k = 0; k < 4; k++) {
        char key[32];
        snprintf(key, sizeof key, "bleu_%d", k + 1);
        double e = rel(bleu[k], jnum(metrics, key));
        CHECK(e < 1e-9, "corpus %s %.17g vs %.17g", key, bleu[k], jnum(metrics, key));
        worst = t_worse(worst, e);
        for (int i = 0; i < c.n; i++) {
            double want = per_item_fixture(&c, i, key), got = bleu_i[i * 4 + k];
            double d = fabs(got - want);
            CHECK(d < 1e-9, "item %d %s %.17g vs %.17g", i, key, got, want);
            worst = t_worse(worst, d);
        }
    }
    printf("BLEU-1..4: corpus %.6f %.6f %.6f %.6f, worst difference to pycocoevalcap %.3g\n", bleu[0], bleu[1],
           bleu[2], bleu[3], worst);

    double rouge, *rouge_i = malloc((size_t)c.n * sizeof *rouge_i);
    CHECK(m2u_rouge_l(&set, &rouge, rouge_i) == 0, "%s", m2u_last_error());
    worst = rel(rouge, jnum(metrics, "rouge_l"));
    CHECK(worst < 1e-9, "corpus ROUGE-L %.17g vs %.17g", rouge, jnum(metrics, "rouge_l"));
    for (int i = 0; i < c.n; i++) {
        double d = fabs(rouge_i[i] - per_item_fixture(&c, i, "rouge_l"));
        CHECK(d < 1e-9, "item %d ROUGE-L %.17g vs %.17g", i, rouge_i[i], per_item_fixture(&c, i, "rouge_l"));
        worst = t_worse(worst, d);
    }
    printf("ROUGE-L: corpus %.6f, worst difference %.3g\n", rouge, worst);

    double cider, *cider_i = malloc((size_t)c.n * sizeof *cider_i);
    CHECK(m2u_cider_d(&set, &cider, cider_i) == 0, "%s", m2u_last_error());
    worst = rel(cider, jnum(metrics, "cider_d"));
    CHECK(worst < 1e-9, "corpus CIDEr-D %.17g vs %.17g", cider, jnum(metrics, "cider_d"));
    for (int i = 0; i < c.n; i++) {
        double d = fabs(cider_i[i] - per_item_fixture(&c, i, "cider_d"));
        CHECK(d < 1e-9, "item %d CIDEr-D %.17g vs %.17g", i, cider_i[i], per_item_fixture(&c, i, "cider_d"));
        worst = t_worse(worst, d);
    }
    printf("CIDEr-D: corpus %.6f, worst difference %.3g\n", cider, worst);

    /* METEOR internals: normaliser and stemmer against meteor-1.5.jar */
    const cJSON *norm = cJSON_GetObjectItem(j, "meteor_normalize");
    const cJSON *stems = cJSON_GetObjectItem(j, "snowball_english");
    int sbad = 0, ns = cJSON_GetArraySize(stems);
    for (int i = 0; i < ns; i++) {
        const cJSON *e = cJSON_GetArrayItem(stems, i);
        char *s = m2u_snowball_english(jstr(e, "word"));
        if (!s || strcmp(s, jstr(e, "stem"))) {
            sbad++;
            fprintf(stderr, "  stem(%s) = %s, want %s\n", jstr(e, "word"), s ? s : "(null)", jstr(e, "stem"));
        }
        free(s);
    }
    CHECK(sbad == 0, "%d of %d Snowball stems differ", sbad, ns);
    int nbad = 0, nn = cJSON_GetArraySize(norm);
    for (int i = 0; i < nn; i++) {
        const cJSON *e = cJSON_GetArrayItem(norm, i);
        char *s = m2u_meteor_normalize(jstr(e, "text"));
        if (!s || strcmp(s, jstr(e, "normalized"))) {
            nbad++;
            fprintf(stderr, "  norm(%s) = [%s], want [%s]\n", jstr(e, "text"), s ? s : "(null)", jstr(e, "normalized"));
        }
        free(s);
    }
    CHECK(nbad == 0, "%d of %d Meteor normalisations differ", nbad, nn);
    printf("METEOR normaliser: %d/%d lines, Snowball stemmer: %d/%d words identical to meteor-1.5.jar\n", nn - nbad,
           nn, ns - sbad, ns);

    /* METEOR with exact + stem: the same modules run in the jar */
    m2u_meteor_params mp;
    m2u_meteor_default_params(&mp);
    double met, *met_i = malloc((size_t)c.n * sizeof *met_i);
    CHECK(m2u_meteor(&set, &mp, &met, met_i) == 0, "%s", m2u_last_error());
    double want_es = jnum(metrics, "meteor_exact_stem");
    worst = fabs(met - want_es);
    CHECK(worst < 1e-9, "corpus METEOR(exact,stem) %.17g vs jar %.17g", met, want_es);
    int same = 0;
    for (int i = 0; i < c.n; i++) {
        double d = fabs(met_i[i] - per_item_fixture(&c, i, "meteor_exact_stem"));
        CHECK(d < 1e-9, "item %d METEOR(exact,stem) %.17g vs jar %.17g", i, met_i[i],
              per_item_fixture(&c, i, "meteor_exact_stem"));
        if (d < 1e-9) same++;
        worst = t_worse(worst, d);
    }
    printf("METEOR exact+stem: corpus %.6f vs jar %.6f, %d/%d items equal, worst difference %.3g\n", met, want_es,
           same, c.n, worst);
    /* pycocoevalcap's METEOR (all four modules) with the fixture's WordNet / paraphrase subset
     * (tests/fixtures/eval/meteor_data covers these sentences; test_meteor_full.c checks more) */
    double want_full = jnum(metrics, "meteor");
    char wn[1024], para[1024];
    snprintf(wn, sizeof wn, "%s/eval/meteor_data", M2U_FIXTURES);
    snprintf(para, sizeof para, "%s/eval/meteor_data/paraphrase-en.gz", M2U_FIXTURES);
    m2u_meteor_data *md = m2u_meteor_data_new();
    CHECK(md && m2u_meteor_load_wordnet(md, wn) == 0 && m2u_meteor_load_paraphrase(md, para, &set) == 0, "%s",
          m2u_last_error());
    m2u_meteor_params fp;
    m2u_meteor_default_params_data(&fp, md);
    double metf, wfull = 0;
    double *metf_i = malloc((size_t)c.n * sizeof *metf_i);
    CHECK(m2u_meteor(&set, &fp, &metf, metf_i) == 0, "%s", m2u_last_error());
    for (int i = 0; i < c.n; i++) {
        double d = fabs(metf_i[i] - per_item_fixture(&c, i, "meteor"));
        wfull = t_worse(wfull, d);
    }
    CHECK(wfull < 1e-6 && fabs(metf - want_full) < 1e-6, "full METEOR: corpus %.17g vs %.17g, worst item %.3g", metf,
          want_full, wfull);
    printf("METEOR (%s) vs pycocoevalcap: corpus %.6f vs %.6f, worst item difference %.3g\n",
           m2u_meteor_modules(&fp), metf, want_full, wfull);
    free(metf_i);
    m2u_meteor_data_free(md);

    /* everything at once from raw text */
    m2u_caption_scores all, *per = malloc((size_t)c.n * sizeof *per);
    CHECK(m2u_caption_evaluate((size_t)c.n, c.cand_raw, (const char *const *const *)c.refs_raw, c.n_refs, &all, per) ==
              0,
          "%s", m2u_last_error());
    CHECK(fabs(all.bleu[3] - bleu[3]) < 1e-15 && fabs(all.cider_d - cider) < 1e-15 && fabs(all.rouge_l - rouge) < 1e-15 &&
              fabs(all.meteor - met) < 1e-15,
          "evaluate() differs from the scorers");
    CHECK(fabs(per[5].cider_d - cider_i[5]) < 1e-15, "per item");

    /* errors */
    int zero = 0;
    m2u_caption_set bad = {1, c.cand_tok, (const char *const *const *)c.refs_tok, &zero};
    CHECK(m2u_bleu(&bad, bleu, NULL) == -1 && strstr(m2u_last_error(), "no reference"), "no reference refused");
    CHECK(m2u_cider_d(&bad, &cider, NULL) == -1, "no reference refused (cider)");

    free(per);
    free(bleu_i);
    free(rouge_i);
    free(cider_i);
    free(met_i);
    corpus_free(&c);
    cJSON_Delete(j);
}

/* An identical segment: P = R = 1, one chunk, no penalty. */
static void test_identical(void) {
    const char *cand[] = {"a slow sad piano piece"};
    const char *r0[] = {"a slow sad piano piece"};
    const char *const *refs[] = {r0};
    int nr[] = {1};
    m2u_caption_set set = {1, cand, refs, nr};
    double met, per;
    CHECK(m2u_meteor(&set, NULL, &met, &per) == 0, "%s", m2u_last_error());
    double fmean = 1.0; /* P = R = 1 and one chunk covering everything: no penalty */
    CHECK(fabs(met - fmean) < 1e-15 && fabs(per - fmean) < 1e-15, "identical segment scores %.17g", met);
}

int main(void) {
    test_tokenizer();
    test_scores();
    test_identical();
    return t_finish("test_caption_metrics");
}
