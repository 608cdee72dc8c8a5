/* Sampling and the generation loop on top of m2u_llama_forward_cached. */
#include "llama.h"
#include "m2u_error.h"
#include "rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float p;
    int id;
} prob_id;

static int by_prob_desc(const void *a, const void *b) {
    const prob_id *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id - y->id; /* deterministic order for ties */
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* transformers' order: temperature, then top-k, then top-p, then sample. */
int m2u_sample_token(float *logits, int V, const m2u_sample_config *sc, uint64_t *rng_state) {
    if (sc->temperature <= 0.0f) return argmax(logits, V);
    prob_id *pi = malloc((size_t)V * sizeof *pi);
    if (!pi) return argmax(logits, V);
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < V; i++) {
        pi[i].p = expf((logits[i] - mx) / sc->temperature);
        pi[i].id = i;
    }
    qsort(pi, (size_t)V, sizeof *pi, by_prob_desc);
    int keep = V;
    if (sc->top_k > 0 && sc->top_k < keep) keep = sc->top_k;
    double total = 0.0;
    for (int i = 0; i < keep; i++) total += pi[i].p;
    if (sc->top_p > 0.0f && sc->top_p < 1.0f) {
        /* smallest prefix whose mass reaches top_p (at least one token) */
        double cum = 0.0;
        int k = 0;
        while (k < keep) {
            cum += pi[k].p / total;
            k++;
            if (cum >= sc->top_p) break;
        }
        keep = k;
        total = 0.0;
        for (int i = 0; i < keep; i++) total += pi[i].p;
    }
    m2u_rng r;
    m2u_rng_seed(&r, *rng_state);
    *rng_state = m2u_rng_next(&r);
    double u = (double)m2u_rng_uniform(&r) * total, cum = 0.0;
    int chosen = pi[keep - 1].id;
    for (int i = 0; i < keep; i++) {
        cum += pi[i].p;
        if (u < cum) {
            chosen = pi[i].id;
            break;
        }
    }
    free(pi);
    return chosen;
}

int m2u_llama_generate(m2u_llama *m, const int32_t *prompt, int n_prompt, const m2u_sample_config *sc, int32_t *out,
                       int *n_out, float *step_logits) {
    *n_out = 0;
    if (n_prompt <= 0) return m2u_fail("generate: empty prompt");
    int V = m->cfg.vocab_size;
    m2u_kv_cache kc;
    if (m2u_kv_cache_init(&kc, m, n_prompt + sc->max_new_tokens)) return -1;
    float *logits = malloc((size_t)V * sizeof(float));
    if (!logits) {
        m2u_kv_cache_free(&kc);
        return m2u_fail("out of memory");
    }
    uint64_t rng = sc->seed;
    int rc = m2u_llama_forward_cached(m, &kc, prompt, n_prompt, logits);
    for (int i = 0; !rc && i < sc->max_new_tokens; i++) {
        if (step_logits) memcpy(step_logits + (size_t)i * V, logits, (size_t)V * sizeof(float));
        int32_t tok = m2u_sample_token(logits, V, sc, &rng);
        out[(*n_out)++] = tok;
        if (sc->stop_at_eos && tok == m->cfg.eos_token_id) break;
        if (i + 1 < sc->max_new_tokens) rc = m2u_llama_forward_cached(m, &kc, &tok, 1, logits);
    }
    free(logits);
    m2u_kv_cache_free(&kc);
    return rc;
}
