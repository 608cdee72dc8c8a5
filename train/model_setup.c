/* The model of a training config (model_setup.h). */
#include "model_setup.h"

#include "llama_config.h"
#include "m2u_error.h"
#include "fileio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int open_model(const m2u_train_config *c, m2u_train_model *m) {
    if (m2u_tokenizer_load(c->model.tokenizer, &m->tok)) return -1;
    char names[64][16];
    const char *ptrs[64];
    int n_aud = c->model.aud_tokens;
    for (int i = 0; i < n_aud; i++) {
        snprintf(names[i], sizeof names[i], "[AUD%d]", i);
        ptrs[i] = names[i];
    }
    /* normal added tokens, as M2UGen's LlamaTokenizer.add_tokens */
    if (n_aud && m2u_tokenizer_add_tokens(m->tok, ptrs, n_aud, 0)) return -1;
    int aud0 = n_aud ? m2u_tokenizer_token_to_id(m->tok, "[AUD0]") : 0;

    char *cfg_path = m2u_path_join(c->model.llm, "config.json");
    m2u_llama_config lc;
    int rc = m2u_llama_config_load(cfg_path, &lc);
    free(cfg_path);
    if (rc) return -1;
    int tok_vocab = m2u_tokenizer_vocab_size(m->tok);
    m2u_train_spec spec = {0};
    unsigned tr = c->train.trainable;
    if (tr & M2U_TRAIN_LORA) {
        spec.lora_r = c->lora.r;
        spec.lora_alpha = (float)c->lora.alpha;
        spec.lora_dropout = (float)c->lora.dropout;
        spec.lora_targets = c->lora.targets; /* same bit order as M2U_Q..M2U_DOWN */
    }
    /* M2UGen's bias tuning: wq, wo, w1 (gate), w2 (down), w3 (up); wk and wv have none */
    if (tr & M2U_TRAIN_BIAS)
        spec.bias_targets = (1u << M2U_Q) | (1u << M2U_O) | (1u << M2U_GATE) | (1u << M2U_UP) | (1u << M2U_DOWN);
    spec.train_norms = (tr & M2U_TRAIN_NORM) != 0;
    /* rows for the [AUD] tokens beyond the checkpoint's vocabulary live in the
       trainable buffer (they must be carried from stage to stage); without
       aud_embeddings in the trainable set their gradient is dropped each step */
    spec.extra_vocab = tok_vocab > lc.vocab_size ? tok_vocab - lc.vocab_size : 0;
    m->freeze_rows = !(tr & M2U_TRAIN_AUD_EMBEDDINGS);
    if ((tr & M2U_TRAIN_AUD_EMBEDDINGS) && !spec.extra_vocab && n_aud) spec.token_rows_start = aud0;
    spec.seed = (uint64_t)c->run.seed;
    m2u_m2ugen_config mc = {.llm = spec, .aud_id0 = aud0, .n_aud = n_aud, .seed = (uint64_t)c->run.seed};
    if (tr & (M2U_TRAIN_ADAPTERS | M2U_TRAIN_GATES | M2U_TRAIN_PREFIX_QUERY)) mc.query_layer = c->model.query_layer;
    const int tokens[3] = {c->model.music_tokens, c->model.image_tokens, c->model.video_tokens};
    const int dims[3] = {c->model.music_dim, c->model.image_dim, c->model.video_dim};
    for (int g = 0; g < M2U_N_MODALITIES; g++) {
        mc.use_adapter[g] = (tr & M2U_TRAIN_ADAPTERS) && (c->model.modalities >> g & 1u);
        mc.adapter[g] = m2u_adapter_preset((m2u_modality)g, lc.hidden_size);
        mc.adapter[g].n_tokens = tokens[g];
        mc.adapter[g].feat_dim = dims[g];
    }
    if (tr & M2U_TRAIN_PROJECTOR) {
        mc.use_projector = 1;
        mc.projector = c->model.decoder == M2U_DECODER_AUDIOLDM2 ? m2u_projector_preset_audioldm2(lc.hidden_size)
                                                                 : m2u_projector_preset_musicgen(lc.hidden_size);
        mc.projector.d_model = c->model.projector.d_model;
        mc.projector.n_heads = c->model.projector.heads;
        mc.projector.n_enc = c->model.projector.enc_layers;
        mc.projector.n_dec = c->model.projector.dec_layers;
        mc.projector.ffn = c->model.projector.ffn;
        mc.projector.n_out = c->model.projector.n_out;
        mc.projector.out_dim = c->model.projector.out_dim;
        mc.projector.target_scale = (float)c->model.projector.target_scale;
        if (!n_aud) return m2u_train_config_fail(c, "model.aud_tokens", "the projector needs [AUD] tokens");
    }
    if (m2u_m2ugen_load(c->model.llm, &mc, &m->mg)) return -1;
    m->bo = (m2u_batch_options){.stage = c->train.stage,
                                .prompt_template = c->train.prompt_template,
                                .max_len = c->train.max_len,
                                .n_aud = n_aud,
                                .aud_id0 = aud0,
                                /* answers end with EOS so generation stops; the released M2UGen
                                   code adds none (compat: released keeps that) */
                                .append_eos = c->model.compat != M2U_COMPAT_RELEASED,
                                .ignore_index = c->train.ignore_index,
                                .pad_id = 0};
    m->aud0 = aud0, m->n_aud = n_aud;
    return 0;
}

int m2u_train_model_open(const m2u_train_config *c, m2u_train_model *m) {
    memset(m, 0, sizeof *m);
    if (c->model.aud_tokens > 64) return m2u_fail("model.aud_tokens %d: at most 64", c->model.aud_tokens);
    if (open_model(c, m) == 0) return 0;
    m2u_train_model_close(m);
    return -1;
}

void m2u_train_model_close(m2u_train_model *m) {
    m2u_m2ugen_free(m->mg);
    m2u_tokenizer_free(m->tok);
    memset(m, 0, sizeof *m);
}
