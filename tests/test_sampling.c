/* Sampling: temperature / top-k / top-p draw from the distribution transformers
 * would (checked by frequency over many draws), greedy = argmax, and a seed
 * reproduces the same tokens. */
#include "llama.h"
#include "test_util.h"

#include <string.h>

#define V 6
static const float k_logits[V] = {2.0f, 1.0f, 0.5f, 0.0f, -1.0f, -3.0f};

/* Frequencies of n draws with the given config. */
static void draw(const m2u_sample_config *sc, int n, double *freq) {
    uint64_t rng = sc->seed;
    memset(freq, 0, V * sizeof(double));
    for (int i = 0; i < n; i++) {
        float l[V];
        memcpy(l, k_logits, sizeof l);
        int t = m2u_sample_token(l, V, sc, &rng);
        freq[t] += 1.0 / n;
    }
}

/* Expected probabilities: softmax(logits / T), keep the top k, then the smallest
 * prefix whose mass reaches top_p, renormalised. */
static void expected(float temp, int top_k, float top_p, double *p) {
    double z = 0;
    for (int i = 0; i < V; i++) z += exp(k_logits[i] / temp);
    for (int i = 0; i < V; i++) p[i] = exp(k_logits[i] / temp) / z; /* logits are already sorted */
    int keep = top_k > 0 && top_k < V ? top_k : V;
    double mass = 0;
    for (int i = 0; i < keep; i++) mass += p[i];
    if (top_p < 1.0f) {
        double cum = 0;
        int k = 0;
        while (k < keep) {
            cum += p[k] / mass;
            k++;
            if (cum >= top_p) break;
        }
        keep = k;
    }
    double s = 0;
    for (int i = 0; i < keep; i++) s += p[i];
    for (int i = 0; i < V; i++) p[i] = i < keep ? p[i] / s : 0.0;
}

int main(void) {
    const int n = 200000;
    struct {
        float temp;
        int top_k;
        float top_p;
    } cases[] = {{1.0f, 0, 1.0f}, {0.7f, 0, 1.0f}, {1.5f, 3, 1.0f}, {1.0f, 0, 0.8f}, {1.2f, 4, 0.9f}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        m2u_sample_config sc = {.temperature = cases[c].temp, .top_k = cases[c].top_k, .top_p = cases[c].top_p,
                                .seed = 1000 + c};
        double got[V], want[V], worst = 0;
        draw(&sc, n, got);
        expected(cases[c].temp, cases[c].top_k, cases[c].top_p, want);
        for (int i = 0; i < V; i++) {
            double d = fabs(got[i] - want[i]);
            worst = t_worse(worst, d);
            /* tokens outside the kept set must never appear */
            if (want[i] == 0.0) CHECK(got[i] == 0.0, "case %zu: token %d drawn though filtered out", c, i);
        }
        /* 200k draws: the standard error of a frequency is <= 0.0012 */
        CHECK(worst < 0.006, "case %zu (T=%.1f k=%d p=%.1f): frequencies off by %.4f", c, cases[c].temp,
              cases[c].top_k, cases[c].top_p, worst);
    }
    /* greedy and top-k = 1 pick the argmax */
    m2u_sample_config greedy = {.temperature = 0.0f, .top_p = 1.0f};
    m2u_sample_config k1 = {.temperature = 1.0f, .top_k = 1, .top_p = 1.0f, .seed = 5};
    uint64_t r1 = 0, r2 = 5;
    float l[V];
    memcpy(l, k_logits, sizeof l);
    CHECK(m2u_sample_token(l, V, &greedy, &r1) == 0, "greedy is not argmax");
    memcpy(l, k_logits, sizeof l);
    CHECK(m2u_sample_token(l, V, &k1, &r2) == 0, "top-k 1 is not argmax");
    /* the same seed gives the same sequence; another seed another one */
    m2u_sample_config sc = {.temperature = 1.0f, .top_p = 1.0f, .seed = 42};
    int a[64], b[64], same_other = 1;
    uint64_t ra = 42, rb = 42, rc = 43;
    for (int i = 0; i < 64; i++) {
        memcpy(l, k_logits, sizeof l);
        a[i] = m2u_sample_token(l, V, &sc, &ra);
        memcpy(l, k_logits, sizeof l);
        b[i] = m2u_sample_token(l, V, &sc, &rb);
        memcpy(l, k_logits, sizeof l);
        if (m2u_sample_token(l, V, &sc, &rc) != a[i]) same_other = 0;
    }
    CHECK(memcmp(a, b, sizeof a) == 0, "same seed, different tokens");
    CHECK(!same_other, "different seeds gave identical sequences");
    return t_finish("test_sampling");
}
