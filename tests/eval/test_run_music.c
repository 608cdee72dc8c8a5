/* The conditioning m2u-generate and m2u-eval make from an answer (run_music.h's
 * m2u_run_aud_states) against the projector input the trainer builds (m2ugen.c): the hidden
 * states that predict [AUD0..7] plus the [AUD] tokens' input embeddings.  The [AUD] tokens
 * here are added beyond the checkpoint's vocabulary (extra_vocab), as in M2UGen, so their
 * embeddings are trainable rows outside the frozen table; an earlier version read them from
 * the frozen table (past its end). */
#include "m2u_error.h"
#include "m2ugen.h"
#include "music.h"
#include "rng.h"
#include "run_music.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N_AUD = 8, AUD0 = 83, N_PROMPT = 9 };

int main(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/llama/gqa_odd", M2U_FIXTURES);
    m2u_m2ugen_config cfg = {
        .llm = {.lora_r = 2, .lora_alpha = 4, .lora_targets = M2U_ALL_LINEARS, .extra_vocab = N_AUD, .seed = 1},
        .query_layer = 1,
        .use_adapter = {0, 0, 0},
        .use_projector = 1,
        .projector = {.d_model = 8, .n_heads = 2, .n_enc = 1, .n_dec = 1, .ffn = 12, .n_out = 3, .out_dim = 5,
                      .ln_eps = 1e-5f, .target_scale = 10.0f},
        .aud_id0 = AUD0,
        .n_aud = N_AUD,
        .seed = 9};
    m2u_m2ugen *mg;
    if (m2u_m2ugen_load(dir, &cfg, &mg)) {
        CHECK(0, "%s", m2u_last_error());
        return t_finish("test_run_music");
    }
    m2u_llama *l = mg->llm;
    int C = l->cfg.hidden_size;
    CHECK(l->rows_start == AUD0 && l->cfg.vocab_size == AUD0 + N_AUD, "the [AUD] rows are added tokens (rows from %d)",
          l->rows_start);
    /* trained-looking [AUD] rows and LoRA: nothing at its initial value */
    m2u_rng r;
    m2u_rng_seed(&r, 5);
    for (size_t i = 0; i < mg->n_floats; i++) l->param_buf[i] += 0.1f * m2u_rng_normal(&r);

    /* prompt + [AUD0], as an answer ends; the trainer's layout appends [AUD1..7] */
    int32_t seq[N_PROMPT + N_AUD];
    for (int t = 0; t < N_PROMPT - 1; t++) seq[t] = 3 + (int)(m2u_rng_next(&r) % 70);
    seq[N_PROMPT - 1] = AUD0;
    for (int k = 1; k < N_AUD; k++) seq[N_PROMPT - 1 + k] = AUD0 + k;
    float zero[1] = {0};
    float *const feat[3] = {zero, zero, zero};
    const int present[3] = {0, 0, 0};

    m2u_train_model em = {.mg = mg, .aud0 = AUD0, .n_aud = N_AUD};
    float *states = NULL;
    int rc = m2u_run_aud_states(&em, -100, seq, N_PROMPT, feat, present, &states);
    CHECK(rc == 0 && states, "m2u_run_aud_states: %s", rc ? m2u_last_error() : "no states");

    /* the trainer's projector input for the same sequence: aud_pos = the position whose hidden
     * state predicts [AUD0] */
    int aud_pos = N_PROMPT - 2, has_target = 1, nm = 0;
    float *target = calloc((size_t)cfg.projector.n_out * cfg.projector.out_dim, sizeof(float));
    const float *fp[3] = {zero, zero, zero};
    const int p0 = 0, *pp[3] = {&p0, &p0, &p0};
    double ce, mse;
    float *want = NULL;
    rc = m2u_m2ugen_forward(mg, seq, NULL, 1, N_PROMPT - 1 + N_AUD, -100, fp, pp, &aud_pos, target, &has_target, &ce,
                            &mse, &nm);
    CHECK(rc == 0 && nm == 1, "trainer forward: %s", rc ? m2u_last_error() : "no projector row");
    if (rc == 0) rc = m2u_music_states_from_aud(&mg->proj, mg->proj_in, &want);
    CHECK(rc == 0 && want, "states from the trainer's projector input: %s", m2u_last_error());
    if (states && want) {
        size_t n = (size_t)cfg.projector.n_out * cfg.projector.out_dim;
        double e = t_max_rel_err(states, want, n);
        printf("  answer's [AUD] conditioning vs the trainer's: max relative error %.2e over %zu values\n", e, n);
        CHECK(e < 1e-6, "answer's [AUD] conditioning differs from the trainer's: %.3g", e);
    }
    /* and the embeddings it adds are the trainable rows */
    float tmp[64];
    CHECK(C <= 64 && m2u_llama_embed_row(l, AUD0 + 3, tmp) == l->embed_rows + (size_t)3 * C,
          "embed_row of an added token is its trainable row");
    free(states), free(want), free(target);
    m2u_m2ugen_free(mg);
    return t_finish("test_run_music");
}
