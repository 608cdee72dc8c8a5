/* LoRA actually learns: a few hundred AdamW steps on a tiny random LLaMA drive
 * the loss on a learnable synthetic language far below its start; and LoRA
 * dropout's backward uses the same mask as its forward (finite differences). */
#include "adamw.h"
#include "llama.h"
#include "m2u_error.h"
#include "rng.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sequences of a first-order "language": token t+1 = perm[token t], started at
 * random tokens.  The random base cannot predict it; LoRA can learn perm. */
static void make_batch(int32_t *ids, int B, int T, int V, const int *perm, m2u_rng *rng) {
    for (int b = 0; b < B; b++) {
        int tok = 3 + (int)(m2u_rng_next(rng) % (uint64_t)(V - 3));
        for (int t = 0; t < T; t++) {
            ids[b * T + t] = tok;
            tok = perm[tok];
        }
    }
}

static void test_learns(const char *dir) {
    m2u_train_spec spec = {.lora_r = 8, .lora_alpha = 16, .lora_targets = M2U_ALL_LINEARS, .train_norms = 1, .seed = 7};
    m2u_llama *m;
    if (m2u_llama_load(dir, &spec, &m)) {
        CHECK(0, "%s", m2u_last_error());
        return;
    }
    int V = m->cfg.vocab_size, B = 4, T = 24, steps = 300;
    int *perm = malloc((size_t)V * sizeof(int));
    m2u_rng rng;
    m2u_rng_seed(&rng, 1234);
    for (int i = 0; i < V; i++) perm[i] = i < 3 ? 3 + i : i;
    for (int i = V - 1; i > 3; i--) { /* shuffle ids 3..V-1 */
        int j = 3 + (int)(m2u_rng_next(&rng) % (uint64_t)(i - 2));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int32_t *ids = malloc((size_t)B * T * sizeof(int32_t));
    m2u_adamw opt;
    CHECK(m2u_adamw_init(&opt, m->n_param_floats) == 0, "%s", m2u_last_error());
    m2u_adamw_config ac = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.01f};
    float first = 0, last_avg = 0;
    m->training = 1;
    for (int s = 0; s < steps; s++) {
        make_batch(ids, B, T, V, perm, &rng);
        float loss;
        if (m2u_llama_forward(m, ids, ids, B, T, -100, &loss)) {
            CHECK(0, "%s", m2u_last_error());
            break;
        }
        m2u_llama_zero_grad(m);
        m2u_llama_backward(m, 1.0f / (float)m->n_valid);
        double norm = m2u_grad_norm(m->grad_buf, m->n_param_floats);
        m2u_clip_grad(m->grad_buf, m->n_param_floats, norm, 1.0f);
        m2u_adamw_step(&opt, &ac, 3e-3f, m->params, m->n_params);
        if (s == 0) first = loss;
        if (s >= steps - 20) last_avg += loss / 20.0f;
    }
    printf("LoRA training: loss %.4f -> %.4f (mean of the last 20 of %d steps)\n", first, last_avg, steps);
    CHECK(last_avg < 0.25f * first, "loss did not fall enough: %.4f -> %.4f", first, last_avg);
    m2u_adamw_free(&opt);
    free(ids);
    free(perm);
    m2u_llama_free(m);
}

static void test_dropout_gradient(const char *dir) {
    m2u_train_spec spec = {.lora_r = 4, .lora_alpha = 4, .lora_dropout = 0.3f, .lora_targets = M2U_ALL_LINEARS, .seed = 3};
    m2u_llama *m;
    if (m2u_llama_load(dir, &spec, &m)) {
        CHECK(0, "%s", m2u_last_error());
        return;
    }
    m2u_rng rng;
    m2u_rng_seed(&rng, 99);
    for (size_t i = 0; i < m->n_param_floats; i++) m->param_buf[i] = 0.2f * m2u_rng_normal(&rng);
    int B = 2, T = 8, V = m->cfg.vocab_size;
    int32_t ids[16];
    for (int i = 0; i < B * T; i++) ids[i] = 3 + (int)(m2u_rng_next(&rng) % (uint64_t)(V - 3));
    m->training = 1;
    uint64_t seed = 42;
    float base_loss, l2;
    m->step_seed = seed;
    m2u_llama_forward(m, ids, ids, B, T, -100, &base_loss);
    m->step_seed = seed;
    m2u_llama_forward(m, ids, ids, B, T, -100, &l2);
    CHECK(base_loss == l2, "same dropout seed gave different losses %.8f %.8f", base_loss, l2);
    m2u_llama_zero_grad(m);
    m2u_llama_backward(m, 1.0f / (float)m->n_valid);
    /* directional derivative along the gradient vs a central difference */
    size_t n = m->n_param_floats;
    float *g = malloc(n * sizeof(float)), *p0 = malloc(n * sizeof(float));
    memcpy(g, m->grad_buf, n * sizeof(float));
    memcpy(p0, m->param_buf, n * sizeof(float));
    double gnorm = m2u_grad_norm(g, n), h = 1e-2 / gnorm;
    float lp, lm;
    for (size_t i = 0; i < n; i++) m->param_buf[i] = p0[i] + (float)(h * g[i]);
    m->step_seed = seed;
    m2u_llama_forward(m, ids, ids, B, T, -100, &lp);
    for (size_t i = 0; i < n; i++) m->param_buf[i] = p0[i] - (float)(h * g[i]);
    m->step_seed = seed;
    m2u_llama_forward(m, ids, ids, B, T, -100, &lm);
    double fd = ((double)lp - lm) / (2 * h), an = gnorm * gnorm;
    printf("dropout gradient check: finite difference %.6f, analytic %.6f\n", fd, an);
    CHECK(fabs(fd - an) / an < 2e-2, "dropout backward inconsistent: fd %.6f vs analytic %.6f", fd, an);
    free(g);
    free(p0);
    m2u_llama_free(m);
}

/* Added tokens ([AUD0..7]) extend the vocabulary: rows initialised as M2UGen does,
 * usable as inputs and targets, and they learn. */
static void test_added_tokens(const char *dir) {
    m2u_train_spec spec = {.lora_r = 4, .lora_alpha = 8, .lora_targets = M2U_ALL_LINEARS, .extra_vocab = 8, .seed = 5};
    m2u_llama *m;
    if (m2u_llama_load(dir, &spec, &m)) {
        CHECK(0, "%s", m2u_last_error());
        return;
    }
    int V0 = 96, V = m->cfg.vocab_size, C = m->cfg.hidden_size;
    CHECK(V == V0 + 8, "vocab %d, want %d", V, V0 + 8);
    m2u_param *rows = m2u_llama_param(m, "model.embed_tokens.weight.rows");
    CHECK(rows && rows->shape[0] == 8 && rows->shape[1] == C, "added rows parameter");
    int ones = 1;
    for (size_t i = 0; rows && i < rows->n; i++) ones &= rows->data[i] == 1.0f;
    CHECK(ones, "added embedding rows are not initialised to 1.0");
    /* a caption followed by the 8 added tokens; learn to emit them */
    int32_t ids[2 * 16];
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 16; t++) ids[b * 16 + t] = t < 8 ? 3 + 7 * b + t : V0 + (t - 8);
    m2u_adamw opt;
    m2u_adamw_init(&opt, m->n_param_floats);
    m2u_adamw_config ac = {.beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.0f};
    float first = 0, loss = 0;
    for (int s = 0; s < 60; s++) {
        CHECK(m2u_llama_forward(m, ids, ids, 2, 16, -100, &loss) == 0, "%s", m2u_last_error());
        if (s == 0) first = loss;
        m2u_llama_zero_grad(m);
        m2u_llama_backward(m, 1.0f / (float)m->n_valid);
        m2u_adamw_step(&opt, &ac, 1e-2f, m->params, m->n_params);
    }
    printf("added tokens: loss %.4f -> %.4f\n", first, loss);
    CHECK(loss < 0.3f * first, "added tokens not learned: %.4f -> %.4f", first, loss);
    m2u_adamw_free(&opt);
    m2u_llama_free(m);
}

/* Activation checkpointing gives the very same gradients (bit for bit), with LoRA dropout,
 * trainable norms, added token rows and adapter injection all on, over two steps (the second
 * reuses the allocation), and the plan says it keeps less. */
static void test_checkpointing(const char *dir) {
    m2u_train_spec spec = {.lora_r = 4, .lora_alpha = 8, .lora_dropout = 0.2f, .lora_targets = M2U_ALL_LINEARS,
                           .train_norms = 1, .extra_vocab = 3, .adapter_layers = 2, .seed = 5};
    m2u_llama *m;
    if (m2u_llama_load(dir, &spec, &m)) {
        CHECK(0, "%s", m2u_last_error());
        return;
    }
    int B = 2, T = 11, V = m->cfg.vocab_size, C = m->cfg.hidden_size;
    size_t np = m->n_param_floats;
    int32_t ids[2 * 11];
    for (int i = 0; i < B * T; i++) ids[i] = (i * 37 + 5) % V;
    float *ad = malloc((size_t)spec.adapter_layers * B * C * sizeof(float));
    for (int i = 0; i < spec.adapter_layers * B * C; i++) ad[i] = 0.01f * (float)((i * 13) % 17 - 8);
    m->adapter_in = ad;
    /* nonzero gates and LoRA B, so every path carries gradient */
    for (size_t i = 0; i < np; i++) m->param_buf[i] += 0.01f * (float)((int)((i * 7) % 11) - 5);
    m->training = 1;
    float *g_ref = malloc(np * sizeof(float)), *dh = malloc((size_t)B * T * C * sizeof(float));
    for (int i = 0; i < B * T * C; i++) dh[i] = 1e-3f * (float)((i * 5) % 9 - 4);
    float loss_ref[2], loss_ck[2];
    uint64_t seed0 = m->step_seed;
    size_t bytes_full = m2u_llama_activation_bytes(m, B, T);
    for (int pass = 0; pass < 2; pass++) {
        m2u_llama_set_checkpointing(m, pass);
        m->step_seed = seed0; /* the same dropout masks in both passes */
        m2u_llama_zero_grad(m);
        for (int step = 0; step < 2; step++) {
            float loss;
            CHECK(m2u_llama_forward(m, ids, ids, B, T, -100, &loss) == 0, "%s", m2u_last_error());
            CHECK(m2u_llama_backward_hidden(m, 1.0f / (float)m->n_valid, dh) == 0, "%s", m2u_last_error());
            (pass ? loss_ck : loss_ref)[step] = loss;
        }
        if (pass == 0) memcpy(g_ref, m->grad_buf, np * sizeof(float));
    }
    size_t bytes_ck = m2u_llama_activation_bytes(m, B, T);
    size_t diff = 0;
    for (size_t i = 0; i < np; i++) diff += memcmp(&g_ref[i], &m->grad_buf[i], sizeof(float)) != 0;
    CHECK(diff == 0, "checkpointing changed %zu of %zu gradient values", diff, np);
    CHECK(isfinite(loss_ref[0]) && isfinite(loss_ref[1]), "loss not finite");
    CHECK(loss_ref[0] == loss_ck[0] && loss_ref[1] == loss_ck[1], "losses differ: %g %g vs %g %g", loss_ref[0],
          loss_ref[1], loss_ck[0], loss_ck[1]);
    double nz = 0;
    for (size_t i = 0; i < np; i++) nz += g_ref[i] != 0.0f;
    CHECK(nz > 0.5 * (double)np, "only %.0f of %zu gradients are nonzero: the check would be weak", nz, np);
    CHECK(bytes_ck < bytes_full, "the plan: %zu bytes with checkpointing, %zu without", bytes_ck, bytes_full);
    printf("checkpointing: %zu gradients bit-identical; activations %zu -> %zu bytes (B=%d T=%d, %d layers)\n", np,
           bytes_full, bytes_ck, B, T, m->cfg.n_layers);
    free(g_ref);
    free(dh);
    free(ad);
    m2u_llama_free(m);
}

int main(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/llama/mha_tied", M2U_FIXTURES);
    test_learns(dir);
    test_dropout_gradient(dir);
    test_added_tokens(dir);
    test_checkpointing(dir);
    return t_finish("test_lora_train");
}
