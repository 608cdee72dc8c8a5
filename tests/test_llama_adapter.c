/* M2UGen's adapter injection (per-head tanh gates adding W_v a to the attention
 * output of the last layers) and an outside gradient on the last hidden states,
 * against a transformers reference with hooks (tests/make_llama_adapter_fixture.py):
 * logits and loss to 1e-5, gate and adapter-input gradients to 1e-4. */
#include "llama.h"
#include "m2u_error.h"
#include "test_fixture.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>



int main(void) {
    char dir[1024], path[1200], name[128];
    snprintf(dir, sizeof dir, "%s/llama/adapter_inject", M2U_FIXTURES);
    snprintf(path, sizeof path, "%s/reference.safetensors", dir);
    m2u_safetensors *ref;
    if (m2u_st_open(path, &ref)) {
        CHECK(0, "%s", m2u_last_error());
        return t_finish("test_llama_adapter");
    }
    int A = atoi(m2u_st_metadata(ref, "adapter_layers"));
    m2u_train_spec spec = {.adapter_layers = A};
    m2u_llama *m;
    if (m2u_llama_load(dir, &spec, &m)) {
        CHECK(0, "%s", m2u_last_error());
        m2u_st_close(ref);
        return t_finish("test_llama_adapter");
    }
    const m2u_st_tensor *it = m2u_st_find(ref, "input_ids");
    int B = (int)it->shape[0], T = (int)it->shape[1], V = m->cfg.vocab_size, L = m->cfg.n_layers;
    int32_t *ids = t_st_ids(ref, "input_ids", NULL), *labels = t_st_ids(ref, "labels", NULL);
    size_t n;
    for (int l = L - A; l < L; l++) {
        snprintf(name, sizeof name, "model.layers.%d.self_attn.gate", l);
        m2u_param *g = m2u_llama_param(m, name);
        CHECK(g && g->n == (size_t)m->cfg.n_heads, "no gate parameter %s", name);
        snprintf(name, sizeof name, "gate.%d", l);
        float *v = t_st_f32(ref, name, &n);
        if (g && v) memcpy(g->data, v, n * sizeof(float));
        free(v);
    }
    float *adapter_in = t_st_f32(ref, "adapter_in", &n), loss = 0;
    /* without adapter_in the forward is refused, not run with garbage */
    CHECK(m2u_llama_forward(m, ids, labels, B, T, -100, &loss) != 0, "forward without adapter_in accepted");
    m->adapter_in = adapter_in;
    CHECK(m2u_llama_forward(m, ids, labels, B, T, -100, &loss) == 0, "%s", m2u_last_error());
    float *want = t_st_f32(ref, "logits", &n);
    double e = t_max_rel_err(m->logits, want, (size_t)B * T * V);
    CHECK(e < 1e-5, "logits rel err %.3g", e);
    free(want);
    want = t_st_f32(ref, "loss", &n);
    CHECK(fabs(loss - want[0]) < 1e-5 * fabs(want[0]), "loss %.7f vs %.7f", loss, want[0]);
    free(want);
    float *dh = t_st_f32(ref, "dhidden", &n);
    m2u_llama_zero_grad(m);
    CHECK(m2u_llama_backward_hidden(m, 1.0f / (float)m->n_valid, dh) == 0, "%s", m2u_last_error());
    double worst = 0;
    for (int l = L - A; l < L; l++) {
        snprintf(name, sizeof name, "grad.gate.%d", l);
        want = t_st_f32(ref, name, &n);
        snprintf(name, sizeof name, "model.layers.%d.self_attn.gate", l);
        m2u_param *g = m2u_llama_param(m, name);
        double ge = g ? t_max_rel_err(g->grad, want, n) : 1.0;
        worst = t_worse(worst, ge);
        CHECK(ge < 1e-4, "layer %d gate gradient rel err %.3g", l, ge);
        free(want);
    }
    want = t_st_f32(ref, "grad.adapter_in", &n);
    double ae = t_max_rel_err(m->dadapter_in, want, n);
    CHECK(ae < 1e-4, "adapter_in gradient rel err %.3g", ae);
    printf("adapter injection: logits %.2e, gate grads %.2e, adapter_in grad %.2e\n", e, worst, ae);
    free(want);

    /* the KV-cached path injects the same way: last position's logits of sequence 0 */
    float *batched = malloc((size_t)T * V * sizeof(float));
    memcpy(batched, m->logits, (size_t)T * V * sizeof(float));
    m2u_kv_cache kc;
    float *last = malloc((size_t)V * sizeof(float));
    /* sequence 0's adapter rows: adapter_in is [A][B][C]; the cached path takes B = 1 */
    int C = m->cfg.hidden_size;
    float *a0 = malloc((size_t)A * C * sizeof(float));
    for (int k = 0; k < A; k++) memcpy(a0 + (size_t)k * C, adapter_in + (size_t)k * B * C, (size_t)C * sizeof(float));
    m->adapter_in = a0;
    CHECK(m2u_kv_cache_init(&kc, m, T) == 0, "%s", m2u_last_error());
    CHECK(m2u_llama_forward_cached(m, &kc, ids, T, last) == 0, "%s", m2u_last_error());
    double ce = t_max_rel_err(last, batched + (size_t)(T - 1) * V, (size_t)V);
    CHECK(ce < 1e-5, "cached path with adapters: %.3g", ce);
    m2u_kv_cache_free(&kc);
    free(a0);
    free(last);
    free(batched);
    free(dh);
    free(adapter_in);
    free(ids);
    free(labels);
    m2u_llama_free(m);
    m2u_st_close(ref);
    return t_finish("test_llama_adapter");
}
