/* A checkpoint in the released M2UGen layout (Meta RoPE, lora_<w>_l1/_l2, biases
 * of wq/wo/w1/w2/w3, attention_norm/ffn_norm, added [AUD] rows; torch.save
 * {"model": ...}) loads into m2u's HF layout and gives the logits M2UGen's own
 * LLaMA computes (tests/make_m2ugen_import_fixture.py), to 1e-5. */
#include "m2u_error.h"
#include "m2ugen.h"
#include "test_fixture.h"
#include "test_util.h"

#include <stdlib.h>
#include <string.h>

int main(void) {
    char dir[1024], ckpt[1200], refp[1200];
    snprintf(dir, sizeof dir, "%s/llama/mha_tied", M2U_FIXTURES);
    snprintf(ckpt, sizeof ckpt, "%s/m2ugen_import/checkpoint.pth", M2U_FIXTURES);
    snprintf(refp, sizeof refp, "%s/m2ugen_import/reference.safetensors", M2U_FIXTURES);
    m2u_safetensors *ref;
    if (m2u_st_open(refp, &ref)) {
        CHECK(0, "%s", m2u_last_error());
        return t_finish("test_m2ugen_import");
    }
    int r = atoi(m2u_st_metadata(ref, "lora_r"));
    m2u_m2ugen_config cfg = {.llm = {.lora_r = r,
                                     .lora_alpha = (float)r,
                                     .lora_targets = M2U_ALL_LINEARS,
                                     .bias_targets = (1u << M2U_Q) | (1u << M2U_O) | (1u << M2U_GATE) |
                                                     (1u << M2U_UP) | (1u << M2U_DOWN),
                                     .train_norms = 1,
                                     .extra_vocab = 8}};
    m2u_m2ugen *m;
    if (m2u_m2ugen_load(dir, &cfg, &m)) {
        CHECK(0, "%s", m2u_last_error());
        m2u_st_close(ref);
        return t_finish("test_m2ugen_import");
    }
    int n_loaded = 0;
    CHECK(m2u_m2ugen_load_released(m, ckpt, &n_loaded) == 0, "%s", m2u_last_error());
    CHECK(n_loaded == m->n_params, "loaded %d of %d", n_loaded, m->n_params);
    const m2u_st_tensor *it = m2u_st_find(ref, "input_ids"), *lt = m2u_st_find(ref, "logits");
    int B = (int)it->shape[0], T = (int)it->shape[1];
    int32_t *ids = t_st_ids(ref, "input_ids", NULL);
    float *want = t_st_f32(ref, "logits", NULL);
    CHECK(m2u_llama_forward(m->llm, ids, NULL, B, T, -100, NULL) == 0, "%s", m2u_last_error());
    double e = t_max_rel_err(m->llm->logits, want, (size_t)lt->numel);
    printf("released M2UGen checkpoint: %d tensors imported, logits rel err %.2e\n", n_loaded, e);
    CHECK(e < 1e-5, "logits differ from M2UGen's forward: %.3g", e);
    /* LoRA scale other than 1 cannot be M2UGen's */
    m->llm->spec.lora_alpha = 2.0f * r;
    CHECK(m2u_m2ugen_load_released(m, ckpt, &n_loaded) != 0 && strstr(m2u_last_error(), "scale 1"),
          "alpha != r accepted");
    free(ids);
    free(want);
    m2u_m2ugen_free(m);
    m2u_st_close(ref);
    return t_finish("test_m2ugen_import");
}
