/* The model of a training config (model_setup.h). */
#include "model_setup.h"

#include "llama_config.h"
#include "m2u_error.h"
#include "fileio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int open_model(const m2u_train_config *c, m2u_train_model *m, int convert) {
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
    spec.frozen_bf16 = convert && c->train.precision == M2U_PRECISION_BF16;
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
    /* here, not in each caller: the memory plan and the trainer must see the same layout */
    m2u_llama_set_checkpointing(m->mg->llm, c->train.checkpoint_activations);
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

static int open_checked(const m2u_train_config *c, m2u_train_model *m, int convert) {
    memset(m, 0, sizeof *m);
    if (c->model.aud_tokens > 64) return m2u_fail("model.aud_tokens %d: at most 64", c->model.aud_tokens);
    if (open_model(c, m, convert) == 0) return 0;
    m2u_train_model_close(m);
    return -1;
}

int m2u_train_model_open(const m2u_train_config *c, m2u_train_model *m) { return open_checked(c, m, 1); }
int m2u_train_model_open_mapped(const m2u_train_config *c, m2u_train_model *m) { return open_checked(c, m, 0); }

int m2u_train_model_apply_precision(const m2u_train_config *c, m2u_train_model *m) {
    if (c->train.precision != M2U_PRECISION_BF16) return 0;
    return m2u_llama_convert_frozen_bf16(m->mg->llm) ? m2u_fail_prefix("train.precision: bf16") : 0;
}

void m2u_train_model_close(m2u_train_model *m) {
    m2u_m2ugen_free(m->mg);
    m2u_tokenizer_free(m->tok);
    memset(m, 0, sizeof *m);
}

static const char *const k_feature_columns[M2U_N_MODALITIES] = {"mert", "vit", "vivit"};
static const char *const k_modality_key[M2U_N_MODALITIES] = {"music", "image", "video"};

const char *m2u_train_feature_column(int g) { return g >= 0 && g < M2U_N_MODALITIES ? k_feature_columns[g] : NULL; }

const char *m2u_train_target_column(const m2u_train_config *c) {
    return c->model.decoder == M2U_DECODER_AUDIOLDM2 ? "audioldm2" : "t5";
}

static void fmt_dims(char *buf, size_t cap, int rank, const int64_t *dims) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < rank && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* One column of one shard: per-sample dims must be exactly `want` (rank 2). */
static int check_column(m2u_shard_reader *r, const char *col, const int64_t want[2],
                        const char *what) {
    int t = m2u_shard_tensor_index(r, col);
    if (t < 0) return 0;
    const m2u_shard_tensor_info *x = m2u_shard_tensor(r, t);
    if (x->rank == 2 && x->dims[0] == want[0] && x->dims[1] == want[1]) return 0;
    char have[160], expect[64];
    fmt_dims(have, sizeof have, x->rank, x->dims);
    fmt_dims(expect, sizeof expect, 2, want);
    return m2u_fail("%s: column '%s' holds %s per sample, but the model expects %s (%s); "
                    "rebuild the features or set the model's sizes to match",
                    m2u_shard_path(r), col, have, expect, what);
}

int m2u_train_model_check_dataset(const m2u_train_config *c, const m2u_m2ugen *mg, m2u_dataset *ds,
                                  int with_targets) {
    const m2u_manifest *man = m2u_dataset_manifest(ds);
    for (int s = 0; s < man->n_shards; s++) {
        m2u_shard_reader *r;
        if (m2u_dataset_shard(ds, s, &r)) return -1;
        for (int g = 0; g < M2U_N_MODALITIES; g++) {
            if (!mg->cfg.use_adapter[g]) continue;
            const int64_t want[2] = {mg->cfg.adapter[g].n_tokens, mg->cfg.adapter[g].feat_dim};
            char what[96];
            snprintf(what, sizeof what, "model.%s_tokens x model.%s_dim", k_modality_key[g], k_modality_key[g]);
            if (check_column(r, k_feature_columns[g], want, what)) return -1;
        }
        if (with_targets && mg->cfg.use_projector) {
            const int64_t want[2] = {mg->cfg.projector.n_out, mg->cfg.projector.out_dim};
            if (check_column(r, m2u_train_target_column(c), want,
                             "model.projector.n_out x model.projector.out_dim"))
                return -1;
        }
    }
    return 0;
}
