/* The M2UGen composition (prefix queries + adapters -> gated injection into
 * LLaMA; [AUD] hidden states + embeddings -> projector -> MSE): every piece is
 * checked against PyTorch on its own (test_llama_adapter, test_adapter,
 * test_projector); this checks the wiring between them: the gradient of
 * CE + MSE over ALL trainables agrees with finite differences, absent
 * modalities contribute nothing, and every module receives a gradient. */
#include "m2u_error.h"
#include "m2ugen.h"
#include "rng.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h> /* mallinfo2: the heap in use, for the memory plan's check */
#endif

enum { B = 3, T = 14 };

static double objective(m2u_m2ugen *m, const int32_t *ids, const float *const *feats, const int *const *present,
                        const int *aud_pos, const float *target, const int *has_target, int *nv, int *nm) {
    double ce, mse;
    if (m2u_m2ugen_forward(m, ids, ids, B, T, -100, feats, present, aud_pos, target, has_target, &ce, &mse, nm))
        return NAN;
    *nv = m->llm->n_valid;
    return ce / *nv + mse / *nm;
}

int main(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/llama/gqa_odd", M2U_FIXTURES);
    m2u_m2ugen_config cfg = {
        .llm = {.lora_r = 2, .lora_alpha = 4, .lora_targets = M2U_ALL_LINEARS, .train_norms = 1, .extra_vocab = 8,
                .seed = 1},
        .query_layer = 1,
        .use_adapter = {1, 1, 1},
        .adapter = {{.n_tokens = 5, .feat_dim = 12, .n_blocks = 3, .norm_eps = 1e-6f, .l2_eps = 1e-12f},
                    {.n_tokens = 4, .feat_dim = 6, .n_blocks = 3, .norm_eps = 1e-6f, .l2_eps = 1e-12f},
                    {.n_tokens = 3, .feat_dim = 6, .n_blocks = 3, .norm_eps = 1e-6f, .l2_eps = 1e-12f}},
        .use_projector = 1,
        .projector = {.d_model = 8, .n_heads = 2, .n_enc = 1, .n_dec = 1, .ffn = 12, .n_out = 3, .out_dim = 5,
                      .ln_eps = 1e-5f, .target_scale = 10.0f},
        .aud_id0 = 83,
        .n_aud = 8,
        .seed = 9};
    m2u_m2ugen *m;
    if (m2u_m2ugen_load(dir, &cfg, &m)) {
        CHECK(0, "%s", m2u_last_error());
        return t_finish("test_m2ugen");
    }
    m2u_rng r;
    m2u_rng_seed(&r, 77);
    /* gates and B matrices start at zero; give every trainable a value so every path carries gradient */
    for (size_t i = 0; i < m->n_floats; i++) m->llm->param_buf[i] += 0.05f * m2u_rng_normal(&r);
    int32_t ids[B * T];
    int aud_pos[B] = {4, -1, 5}, has_target[B] = {1, 0, 1};
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) ids[b * T + t] = 3 + (int)(m2u_rng_next(&r) % 80);
    for (int b = 0; b < B; b++)
        if (aud_pos[b] >= 0)
            for (int k = 0; k < 8; k++) ids[b * T + aud_pos[b] + 1 + k] = 83 + k;
    float *feats[3];
    int pres[3][B] = {{1, 0, 1}, {0, 1, 0}, {0, 0, 0}};
    const int *present[3] = {pres[0], pres[1], pres[2]};
    for (int g = 0; g < 3; g++) {
        size_t n = (size_t)B * cfg.adapter[g].n_tokens * cfg.adapter[g].feat_dim;
        feats[g] = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) feats[g][i] = m2u_rng_normal(&r);
    }
    float target[B * 15];
    for (int i = 0; i < B * 15; i++) target[i] = 0.1f * m2u_rng_normal(&r);
    int nv, nm;
    const float *const *fp = (const float *const *)feats;
    /* The memory plan's share of a step (the LLaMA's activations and m2u_m2ugen_act_bytes) against
       the heap the first forward and backward leave in use: at least what the modules keep
       (adapters, projector, the LLaMA), at most the plan, which also counts the buffers freed
       within the step.  glibc's allocator only (the sanitizers replace it). */
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
    /* a step of a second copy first: the libraries' one-time state (oneDNN's generated kernels,
       the thread pool) is then in place before the count starts */
    {
        m2u_m2ugen *w;
        int nvw, nmw;
        CHECK(m2u_m2ugen_load(dir, &cfg, &w) == 0, "%s", m2u_last_error());
        CHECK(isfinite(objective(w, ids, (const float *const *)feats, present, aud_pos, target, has_target, &nvw, &nmw)) &&
                  m2u_m2ugen_backward(w, 1.0f / nvw, 1.0f / nmw) == 0,
              "warm-up step: %s", m2u_last_error());
        m2u_m2ugen_free(w);
    }
    struct mallinfo2 mi0 = mallinfo2();
#endif
    double L = objective(m, ids, fp, present, aud_pos, target, has_target, &nv, &nm);
    CHECK(isfinite(L) && nm == 2, "forward: %s (n_mse %d)", m2u_last_error(), nm);
    {
        size_t plan = m2u_llama_activation_bytes(m->llm, B, T) + m2u_m2ugen_act_bytes(m, B, T), kept = 0;
        for (int g = 0; g < 3; g++) kept += m2u_adapter_act_bytes(&m->adapter[g].cfg, B);
        kept += m2u_projector_act_bytes(&m->proj, 2); /* two samples with targets */
        CHECK(kept < plan, "modules' kept bytes %zu not below the plan %zu", kept, plan);
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
        memset(m->llm->grad_buf, 0, m->n_floats * sizeof(float));
        CHECK(m2u_m2ugen_backward(m, 1.0f / nv, 1.0f / nm) == 0, "%s", m2u_last_error());
        struct mallinfo2 mi1 = mallinfo2();
        size_t used = (mi1.uordblks + mi1.hblkhd) - (mi0.uordblks + mi0.hblkhd);
        CHECK(used >= kept && used <= plan, "heap in use after a step %zu, the modules keep %zu, the plan %zu", used,
              kept, plan);
        printf("memory: a step keeps %zu bytes, the plan counts %zu (LLaMA %zu)\n", used, plan,
               m2u_llama_activation_bytes(m->llm, B, T));
#endif
    }
    /* a batch with targets but no [AUD] block (the trainer's held-out generation)
     * has no MSE term, and the next forward still works (this once freed the
     * projector buffers twice; the sanitizer build catches a repeat) */
    {
        int none[B] = {-1, -1, -1};
        double ce0, mse0;
        int nm0 = -1;
        CHECK(m2u_m2ugen_forward(m, ids, ids, B, T, -100, fp, present, none, target, has_target, &ce0, &mse0, &nm0) ==
                      0 &&
                  nm0 == 0 && mse0 == 0,
              "forward without [AUD] rows: %s (n_mse %d)", m2u_last_error(), nm0);
        double L2 = objective(m, ids, fp, present, aud_pos, target, has_target, &nv, &nm);
        CHECK(L2 == L, "forward after one without targets: %.17g vs %.17g", L2, L);
    }
    memset(m->llm->grad_buf, 0, m->n_floats * sizeof(float));
    CHECK(m2u_m2ugen_backward(m, 1.0f / nv, 1.0f / nm) == 0, "%s", m2u_last_error());
    /* every module got a gradient: prefix, each present modality, gates, projector, [AUD] rows */
    const char *must[] = {"prefix_query.weight", "mu_mert_proj.weight", "iu_vit_proj.weight",
                          "model.layers.2.self_attn.gate", "output_projector.fc.weight", "model.embed_tokens.weight.rows",
                          "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"};
    for (size_t k = 0; k < sizeof must / sizeof *must; k++) {
        m2u_param *p = m2u_params_find(m->params, m->n_params, must[k]);
        double s = 0;
        for (size_t i = 0; p && i < p->n; i++) s += fabs(p->grad[i]);
        CHECK(p && s > 0, "%s: %s", must[k], p ? "no gradient" : "missing");
    }
    /* video is absent in every sample: its adapter gets nothing */
    m2u_param *vid = m2u_params_find(m->params, m->n_params, "iu_vivit_proj.weight");
    double vs = 0;
    for (size_t i = 0; vid && i < vid->n; i++) vs += fabs(vid->grad[i]);
    CHECK(vid && vs == 0, "absent modality received gradient %g", vs);
    /* directional finite difference along the gradient, over every trainable at once */
    size_t n = m->n_floats;
    float *g = malloc(n * sizeof(float)), *p0 = malloc(n * sizeof(float));
    memcpy(g, m->llm->grad_buf, n * sizeof(float));
    memcpy(p0, m->llm->param_buf, n * sizeof(float));
    double gn = 0;
    for (size_t i = 0; i < n; i++) gn += (double)g[i] * g[i];
    double h = 1e-2 / sqrt(gn);
    for (size_t i = 0; i < n; i++) m->llm->param_buf[i] = p0[i] + (float)(h * g[i]);
    double lp = objective(m, ids, fp, present, aud_pos, target, has_target, &nv, &nm);
    for (size_t i = 0; i < n; i++) m->llm->param_buf[i] = p0[i] - (float)(h * g[i]);
    double lm = objective(m, ids, fp, present, aud_pos, target, has_target, &nv, &nm);
    double fd = (lp - lm) / (2 * h);
    printf("M2UGen wiring: directional derivative %.6f (finite difference) vs %.6f (backward), %d tensors\n", fd, gn,
           m->n_params);
    CHECK(fabs(fd - gn) / gn < 2e-2, "gradient inconsistent with finite differences: %.6f vs %.6f", fd, gn);
    free(g);
    free(p0);
    for (int k = 0; k < 3; k++) free(feats[k]);
    m2u_m2ugen_free(m);
    return t_finish("test_m2ugen");
}
