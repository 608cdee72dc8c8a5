/* LLaMA-2 + LoRA against transformers/peft (fixtures from tests/make_llama_fixtures.py).
 *
 * For each tiny checkpoint: logits and loss to 1e-5 relative (to the largest
 * reference magnitude), gradients of every trainable tensor (LoRA A/B, biases,
 * norms, added-token rows) to 1e-4, greedy KV-cached generation token for
 * token, and the cached path's logits against the batched forward. */
#include "backend.h"
#include "llama.h"
#include "m2u_error.h"
#include "ops_extra.h" /* m2u_linear_pack_available */
#include "peft.h"
#include "test_fixture.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>



/* packed: spec.packed (the forward's products on packed copies of the fp32 frozen weights, where
 * the CPU has oneDNN's brgemm kernels): every check below holds with the same tolerances. */
static void check_fixture(const char *name, int packed) {
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/llama/%s", M2U_FIXTURES, name);
    snprintf(path, sizeof path, "%s/reference.safetensors", dir);
    m2u_safetensors *ref;
    if (m2u_st_open(path, &ref)) {
        CHECK(0, "%s", m2u_last_error());
        return;
    }
    m2u_train_spec spec = {0};
    snprintf(path, sizeof path, "%s/adapter", dir);
    CHECK(m2u_peft_read_config(path, &spec) == 0, "%s", m2u_last_error());
    const char *trainable = m2u_st_metadata(ref, "trainable");
    if (trainable && strstr(trainable, "bias")) spec.bias_targets = spec.lora_targets;
    if (trainable && strstr(trainable, "norm")) spec.train_norms = 1;
    if (trainable && strstr(trainable, "token_rows")) spec.token_rows_start = atoi(m2u_st_metadata(ref, "token_rows_start"));
    spec.packed = packed;
    m2u_llama *m;
    if (m2u_llama_load(dir, &spec, &m)) {
        CHECK(0, "%s: %s", name, m2u_last_error());
        m2u_st_close(ref);
        return;
    }
    if (packed) {
        printf("%s, packed: %d frozen matrices packed (%zu bytes)\n", name, m->n_packs, m2u_llama_packed_bytes(m));
        CHECK(m->spec.packed == (m->n_packs > 0), "%s: spec.packed %d with %d packs", name, m->spec.packed, m->n_packs);
        CHECK(!m2u_linear_pack_available() || m->n_packs > 0 || m->lm_head.dtype != M2U_F32,
              "%s: fp32 weights, brgemm kernels, and nothing packed", name);
    }
    CHECK(m2u_peft_load_weights(m, path) == 0, "%s", m2u_last_error());

    int n_ids = 0, n_lab = 0;
    int32_t *ids = t_st_ids(ref, "input_ids", &n_ids), *labels = t_st_ids(ref, "labels", &n_lab);
    const m2u_st_tensor *it = m2u_st_find(ref, "input_ids");
    int B = (int)it->shape[0], T = (int)it->shape[1], V = m->cfg.vocab_size;
    float loss = 0;
    CHECK(m2u_llama_forward(m, ids, labels, B, T, -100, &loss) == 0, "%s", m2u_last_error());
    size_t n = 0;
    float *ref_logits = t_st_f32(ref, "logits", &n);
    CHECK(n == (size_t)B * T * V, "%s: logits size", name);
    double e = t_max_rel_err(m->logits, ref_logits, n);
    CHECK(e < 1e-5, "%s: logits rel err %.3g", name, e);
    float *ref_loss = t_st_f32(ref, "loss", NULL);
    CHECK(fabs(loss - ref_loss[0]) / fabs(ref_loss[0]) < 1e-5, "%s: loss %.8f vs %.8f", name, loss, ref_loss[0]);
    printf("%s: logits rel err %.2e, loss %.6f (ref %.6f)\n", name, e, loss, ref_loss[0]);

    /* gradients: every trainable tensor has a reference, and matches it */
    m2u_llama_zero_grad(m);
    CHECK(m2u_llama_backward(m, 1.0f / (float)m->n_valid) == 0, "%s", m2u_last_error());
    double worst = t_check_grads(ref, m->params, m->n_params, 1e-4, name);
    int n_grad_ref = 0; /* and no reference gradient lacks its trainable tensor */
    for (int i = 0; i < m2u_st_count(ref); i++)
        if (strncmp(m2u_st_at(ref, i)->name, "grad.", 5) == 0) n_grad_ref++;
    CHECK(n_grad_ref == m->n_params, "%s: %d reference gradients, %d trainable tensors", name, n_grad_ref, m->n_params);
    printf("%s: %d trainable tensors, worst gradient rel err %.2e\n", name, m->n_params, worst);

    /* batched forward == one sequence at a time */
    float *batched = malloc((size_t)B * T * V * sizeof(float));
    memcpy(batched, m->logits, (size_t)B * T * V * sizeof(float));
    for (int b = 0; b < B; b++) {
        CHECK(m2u_llama_forward(m, ids + b * T, NULL, 1, T, -100, NULL) == 0, "%s", m2u_last_error());
        double be = t_max_rel_err(m->logits, batched + (size_t)b * T * V, (size_t)T * V);
        /* the linears' GEMMs block M = T and M = B T rows differently, so their float sums round
         * differently: 0.96e-6 measured with OpenBLAS's attention, 1.04e-6 with the register tiles */
        CHECK(be < 3e-6, "%s: sequence %d alone vs in batch: %.3g", name, b, be);
        printf("%s: sequence %d alone vs in batch: max rel err %.2e\n", name, b, be);
    }

    /* KV cache, fed token by token, gives the batched forward's logits */
    m2u_kv_cache kc;
    CHECK(m2u_kv_cache_init(&kc, m, T) == 0, "%s", m2u_last_error());
    float *step = malloc((size_t)V * sizeof(float));
    double ce = 0;
    for (int t = 0; t < T; t++) {
        CHECK(m2u_llama_forward_cached(m, &kc, ids + T + t, 1, step) == 0, "%s", m2u_last_error());
        double x = t_max_rel_err(step, batched + (size_t)(T + t) * V, (size_t)V);
        ce = t_worse(ce, x);
    }
    CHECK(ce < 1e-5, "%s: cached vs batched logits %.3g", name, ce);
    m2u_kv_cache_free(&kc);

    /* batched decoding: sequence b first takes b tokens through its own cache,
     * then all unfinished sequences step together (so they sit at different
     * positions); every step's logits equal the reference forward's */
    {
        m2u_kv_cache *caches = calloc((size_t)B, sizeof *caches);
        m2u_kv_cache **act = calloc((size_t)B, sizeof *act);
        int32_t *step_ids = calloc((size_t)B, sizeof *step_ids);
        int *who = calloc((size_t)B, sizeof *who);
        float *lg = malloc((size_t)B * V * sizeof(float));
        double worst = 0;
        int ok = 1;
        for (int b = 0; b < B && ok; b++) {
            ok = m2u_kv_cache_init(&caches[b], m, T) == 0;
            int pre = b < T - 1 ? b : T - 1;
            if (ok && pre > 0) {
                ok = m2u_llama_forward_cached(m, &caches[b], ids + (size_t)b * T, pre, step) == 0;
                double x = t_max_rel_err(step, batched + ((size_t)b * T + pre - 1) * V, (size_t)V);
                worst = t_worse(worst, x);
            }
        }
        for (int s = 0; ok && s < T; s++) {
            int n = 0;
            for (int b = 0; b < B; b++)
                if (caches[b].len < T) {
                    act[n] = &caches[b], who[n] = b, step_ids[n] = ids[(size_t)b * T + caches[b].len];
                    n++;
                }
            if (!n) break;
            int posn[64];
            for (int j = 0; j < n && j < 64; j++) posn[j] = act[j]->len;
            ok = m2u_llama_decode_step(m, act, n, step_ids, lg) == 0;
            for (int j = 0; ok && j < n; j++) {
                double x = t_max_rel_err(lg + (size_t)j * V, batched + ((size_t)who[j] * T + posn[j]) * V, (size_t)V);
                worst = t_worse(worst, x);
            }
        }
        CHECK(ok, "%s: decode_step: %s", name, m2u_last_error());
        CHECK(worst < 1e-5, "%s: batched decoding vs the reference forward %.3g", name, worst);
        for (int b = 0; b < B; b++) m2u_kv_cache_free(&caches[b]);
        free(caches), free(act), free(step_ids), free(who), free(lg);
    }

    /* greedy generation equals transformers' generate() */
    int np = 0, ng = 0;
    int32_t *prompt = t_st_ids(ref, "gen_prompt", &np), *greedy = t_st_ids(ref, "gen_greedy", &ng);
    float *gen_logits = t_st_f32(ref, "gen_logits", NULL);
    int32_t *out = malloc((size_t)ng * sizeof(int32_t));
    float *out_logits = malloc((size_t)ng * V * sizeof(float));
    m2u_sample_config sc = {.max_new_tokens = ng, .temperature = 0.0f, .top_p = 1.0f};
    int n_out = 0;
    CHECK(m2u_llama_generate(m, prompt, np, &sc, out, &n_out, out_logits) == 0, "%s", m2u_last_error());
    CHECK(n_out == ng, "%s: generated %d of %d", name, n_out, ng);
    int same = n_out == ng;
    for (int i = 0; same && i < ng; i++) same = out[i] == greedy[i];
    CHECK(same, "%s: greedy tokens differ from transformers", name);
    double le = t_max_rel_err(out_logits, gen_logits, (size_t)ng * V);
    CHECK(le < 1e-5, "%s: generation logits rel err %.3g", name, le);

    free(prompt);
    free(greedy);
    free(gen_logits);
    free(out);
    free(out_logits);
    free(step);
    free(batched);
    free(ref_loss);
    free(ref_logits);
    free(ids);
    free(labels);
    m2u_llama_free(m);
    m2u_st_close(ref);
}

/* A malformed checkpoint is refused before any work, naming the file. */
static void check_refusals(void) {
    m2u_llama *m = NULL;
    CHECK(m2u_llama_load("/nonexistent/model", NULL, &m) != 0 && m == NULL, "missing dir accepted");
    CHECK(strstr(m2u_last_error(), "/nonexistent/model") != NULL, "message lacks the path: %s", m2u_last_error());
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/llama/mha_tied", M2U_FIXTURES);
    m2u_train_spec bad = {.lora_r = 4, .lora_alpha = 8, .lora_targets = 0};
    CHECK(m2u_llama_load(dir, &bad, &m) != 0, "LoRA without targets accepted");
    m2u_train_spec rows = {.token_rows_start = 100000};
    CHECK(m2u_llama_load(dir, &rows, &m) != 0, "token rows beyond vocab accepted");
    /* wrong adapter for this model: gqa_odd's adapter on mha_tied */
    m2u_train_spec spec = {0};
    char adapter[1200];
    snprintf(adapter, sizeof adapter, "%s/llama/gqa_odd/adapter", M2U_FIXTURES);
    CHECK(m2u_peft_read_config(adapter, &spec) == 0, "%s", m2u_last_error());
    if (m2u_llama_load(dir, &spec, &m) == 0) {
        CHECK(m2u_peft_load_weights(m, adapter) != 0, "mismatched adapter accepted");
        CHECK(strstr(m2u_last_error(), "adapter_model.safetensors") != NULL, "message: %s", m2u_last_error());
        /* the op table: the CPU one from the load; a table whose buffers live on a device is
         * refused while the model's arrays are host memory */
        CHECK(m->be == m2u_backend_cpu(), "the model does not start on the CPU backend");
        m2u_backend dev_table = *m2u_backend_cpu();
        dev_table.name = "device";
        dev_table.dev = M2U_DEV_CUDA;
        CHECK(m2u_llama_set_backend(m, &dev_table) != 0 && strstr(m2u_last_error(), "device") != NULL,
              "a device backend accepted: %s", m2u_last_error());
        CHECK(m2u_llama_set_backend(m, NULL) != 0, "a NULL backend accepted");
        CHECK(m2u_llama_set_backend(m, m2u_backend_cpu()) == 0 && m->be == m2u_backend_cpu(), "%s", m2u_last_error());
        m2u_llama_free(m);
    }
}

int main(void) {
    const char *names[] = {"mha_tied", "gqa_odd", "mqa_bf16_sharded"};
    for (int packed = 0; packed < 2; packed++)
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) check_fixture(names[i], packed);
    check_refusals();
    return t_finish("test_llama");
}
