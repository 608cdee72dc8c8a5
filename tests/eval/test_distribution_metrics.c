/* Fréchet distance against scipy.linalg.sqrtm (frechet_audio_distance's
 * formula), KL divergence and cosine score against numpy
 * (tests/fixtures/eval/distribution.json, made by tests/make_eval_fixtures.py). */
#include "distribution_metrics.h"
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

static double *load_npy(const char *name, size_t *r, size_t *c) {
    char path[1024];
    snprintf(path, sizeof path, "%s/eval/%s", M2U_FIXTURES, name);
    double *d = NULL;
    if (m2u_npy_read_matrix(path, &d, r, c)) {
        fprintf(stderr, "%s\n", m2u_last_error());
        return NULL;
    }
    return d;
}

static void test_fd(const cJSON *j) {
    const cJSON *fd = cJSON_GetObjectItem(j, "fd");
    for (int k = 0; k < cJSON_GetArraySize(fd); k++) {
        const cJSON *e = cJSON_GetArrayItem(fd, k);
        const char *name = cJSON_GetObjectItem(e, "name")->valuestring;
        double want = cJSON_GetObjectItem(e, "fd")->valuedouble;
        size_t ra, ca, rb, cb;
        double *a = load_npy(cJSON_GetObjectItem(e, "a")->valuestring, &ra, &ca);
        double *b = load_npy(cJSON_GetObjectItem(e, "b")->valuestring, &rb, &cb);
        CHECK(a && b && ca == cb, "%s: inputs", name);
        if (!a || !b || ca != cb) { free(a); free(b); continue; }
        double got;
        CHECK(m2u_frechet_distance(a, ra, b, rb, ca, &got) == 0, "%s: %s", name, m2u_last_error());
        /* scale for the identical-set case, where the distance itself is ~0 */
        double tr = 0;
        double *mu = malloc(ca * sizeof *mu), *cov = malloc(ca * ca * sizeof *cov);
        m2u_mean_cov(a, ra, ca, mu, cov);
        for (size_t i = 0; i < ca; i++) tr += cov[i * ca + i];
        free(mu);
        free(cov);
        double err = fabs(got - want) / (fabs(want) > 1e-3 * tr ? fabs(want) : tr);
        CHECK(err < 1e-6, "%s: FD %.17g vs scipy %.17g (rel %.3g)", name, got, want, err);
        printf("FD %-7s n=%zu/%zu d=%zu: %.10f vs scipy %.10f (relative difference %.2g)\n", name, ra, rb, ca, got, want,
               err);
        free(a);
        free(b);
    }
    /* closed form for diagonal covariances: sum (sqrt(a_i) - sqrt(b_i))^2 */
    double mu1[3] = {0, 1, 2}, mu2[3] = {1, 1, 0};
    double s1[9] = {4, 0, 0, 0, 9, 0, 0, 0, 1}, s2[9] = {1, 0, 0, 0, 4, 0, 0, 0, 16};
    double got, want = 1 + 0 + 4 + (2 - 1) * (2 - 1) + (3 - 2) * (3 - 2) + (1 - 4) * (1 - 4);
    CHECK(m2u_frechet_distance_stats(mu1, s1, mu2, s2, 3, &got) == 0, "%s", m2u_last_error());
    CHECK(fabs(got - want) < 1e-12, "diagonal: %.17g vs %.17g", got, want);
    /* errors */
    double one[2] = {1, 2};
    CHECK(m2u_frechet_distance(one, 1, one, 1, 2, &got) == -1 && strstr(m2u_last_error(), "at least 2 rows"),
          "a single row is refused: %s", m2u_last_error());
    size_t r, c;
    double *d;
    CHECK(m2u_npy_read_matrix("/nonexistent.npy", &d, &r, &c) == -1, "missing file refused");
}

static void test_kl_cos(const cJSON *j) {
    const cJSON *kl = cJSON_GetObjectItem(j, "kl");
    size_t r1, c1, r2, c2;
    double *ref = load_npy(cJSON_GetObjectItem(kl, "ref")->valuestring, &r1, &c1);
    double *gen = load_npy(cJSON_GetObjectItem(kl, "gen")->valuestring, &r2, &c2);
    CHECK(ref && gen && r1 == r2 && c1 == c2, "kl inputs");
    if (ref && gen) {
        double eps = cJSON_GetObjectItem(kl, "eps")->valuedouble;
        double *pp = malloc(r1 * sizeof *pp), mean, worst = 0;
        CHECK(m2u_kl_divergence(ref, gen, r1, c1, 1, eps, pp, &mean) == 0, "%s", m2u_last_error());
        const cJSON *want = cJSON_GetObjectItem(kl, "per_pair");
        for (size_t i = 0; i < r1; i++) {
            double w = cJSON_GetArrayItem(want, (int)i)->valuedouble;
            double e = fabs(pp[i] - w);
            worst = t_worse(worst, e);
        }
        double wm = cJSON_GetObjectItem(kl, "mean")->valuedouble;
        CHECK(worst < 1e-12, "KL per pair: worst difference %.3g", worst);
        CHECK(fabs(mean - wm) < 1e-12, "KL mean %.17g vs %.17g", mean, wm);
        /* reverse direction */
        CHECK(m2u_kl_divergence(gen, ref, r1, c1, 1, eps, NULL, &mean) == 0, "%s", m2u_last_error());
        wm = cJSON_GetObjectItem(kl, "mean_reverse")->valuedouble;
        CHECK(fabs(mean - wm) < 1e-12, "KL reverse mean %.17g vs %.17g", mean, wm);
        printf("KL: mean %.12f vs numpy %.12f, worst per-pair difference %.2g\n", mean, wm, worst);
        /* probabilities given directly: a distribution against itself gives -sum p log(1 + eps/p) ~ 0 */
        double p[3] = {0.2, 0.3, 0.5}, v;
        CHECK(m2u_kl_divergence(p, p, 1, 3, 0, 0.0, NULL, &v) == 0 && fabs(v) < 1e-15, "KL(p||p) = %g", v);
        double neg[3] = {-0.1, 0.6, 0.5};
        CHECK(m2u_kl_divergence(neg, p, 1, 3, 0, 1e-6, NULL, &v) == -1, "negative probability refused");
        free(pp);
    }
    free(ref);
    free(gen);
    const cJSON *co = cJSON_GetObjectItem(j, "cosine");
    size_t rt, ct, ra, ca;
    double *t = load_npy(cJSON_GetObjectItem(co, "text")->valuestring, &rt, &ct);
    double *a = load_npy(cJSON_GetObjectItem(co, "audio")->valuestring, &ra, &ca);
    CHECK(t && a && rt == ra && ct == ca, "cosine inputs");
    if (t && a) {
        double *pp = malloc(rt * sizeof *pp), mean;
        CHECK(m2u_cosine_score(t, a, rt, ct, pp, &mean) == 0, "%s", m2u_last_error());
        double wm = cJSON_GetObjectItem(co, "mean")->valuedouble;
        CHECK(fabs(mean - wm) < 1e-12, "cosine mean %.17g vs %.17g", mean, wm);
        for (size_t i = 0; i < rt; i++)
            CHECK(fabs(pp[i] - cJSON_GetArrayItem(cJSON_GetObjectItem(co, "per_pair"), (int)i)->valuedouble) < 1e-12,
                  "cosine pair %zu", i);
        free(pp);
    }
    free(t);
    free(a);
}

int main(void) {
    cJSON *j = load_json("distribution.json");
    CHECK(j != NULL, "distribution.json missing");
    if (j) {
        test_fd(j);
        test_kl_cos(j);
        cJSON_Delete(j);
    }
    return t_finish("test_distribution_metrics");
}
