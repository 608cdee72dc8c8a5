/* BERT encoder: see bert_encoder.h.  Checked against transformers 4.46.3
 * BertModel by tests/test_bert.c on tests/fixtures/bertscore. */
#include "bert_encoder.h"

#include "fileio.h"
#include "m2u_error.h"
#include "ops_extra.h"
#include "tensor.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct m2u_bert {
    m2u_bert_config cfg;
    float *word, *pos, *type; /* [V, H], [P, H], [types, H] */
    float *ln_w, *ln_b;       /* embeddings.LayerNorm */
    float *pool_w, *pool_b;   /* pooler.dense [H, H], [H]; NULL when the checkpoint has none */
    m2u_enc_layer *layer;     /* [layers] */
};

static const m2u_enc_names BERT_NAMES = {
    .q = "encoder.layer.%d.attention.self.query",
    .k = "encoder.layer.%d.attention.self.key",
    .v = "encoder.layer.%d.attention.self.value",
    .o = "encoder.layer.%d.attention.output.dense",
    .ln1 = "encoder.layer.%d.attention.output.LayerNorm",
    .ln2 = "encoder.layer.%d.output.LayerNorm",
    .fc1 = "encoder.layer.%d.intermediate.dense",
    .fc2 = "encoder.layer.%d.output.dense",
};

static int parse_config(const cJSON *root, const char *origin, m2u_bert_config *c) {
    const char *mt, *act, *pet;
    if (m2u_json_str(root, origin, "model_type", NULL, &mt) != 0) return -1;
    if (!mt) return m2u_fail("%s: missing key 'model_type' (need \"bert\" or \"roberta\")", origin);
    int roberta = !strcmp(mt, "roberta") || !strcmp(mt, "xlm-roberta") || !strcmp(mt, "camembert");
    if (strcmp(mt, "bert") != 0 && !roberta)
        return m2u_fail("%s: key 'model_type': '%s' is not a BERT/RoBERTa model", origin, mt);
    m2u_enc_dims *d = &c->dims;
    d->prenorm = 0;
    double eps;
    /* defaults: BertConfig */
    if (m2u_json_int(root, origin, "hidden_size", 0, 768, 1, &d->hidden) ||
        m2u_json_int(root, origin, "num_hidden_layers", 0, 12, 1, &c->layers) ||
        m2u_json_int(root, origin, "num_attention_heads", 0, 12, 1, &d->heads) ||
        m2u_json_int(root, origin, "intermediate_size", 0, 3072, 1, &d->inter) ||
        m2u_json_int(root, origin, "vocab_size", 0, 30522, 1, &c->vocab) ||
        m2u_json_int(root, origin, "max_position_embeddings", 0, 512, 1, &c->max_positions) ||
        m2u_json_int(root, origin, "type_vocab_size", 0, 2, 1, &c->type_vocab) ||
        m2u_json_int(root, origin, "pad_token_id", 0, roberta ? 1 : 0, 0, &c->pad_token_id) ||
        m2u_json_num(root, origin, "layer_norm_eps", 0, 1e-12, &eps) ||
        m2u_json_str(root, origin, "hidden_act", "gelu", &act) || m2u_act_parse(act, origin, "hidden_act", &d->act) ||
        m2u_json_str(root, origin, "position_embedding_type", "absolute", &pet))
        return -1;
    if (strcmp(pet, "absolute") != 0)
        return m2u_fail("%s: key 'position_embedding_type': '%s' is not supported (only \"absolute\")", origin, pet);
    if (!(eps > 0)) return m2u_fail("%s: key 'layer_norm_eps' must be positive", origin);
    d->eps = (float)eps;
    if (d->hidden % d->heads != 0)
        return m2u_fail("%s: key 'num_attention_heads': hidden_size %d is not divisible by %d", origin, d->hidden,
                        d->heads);
    c->position_offset = roberta ? c->pad_token_id + 1 : 0;
    if (c->position_offset >= c->max_positions)
        return m2u_fail("%s: key 'pad_token_id' %d leaves no positions", origin, c->pad_token_id);
    return 0;
}

void m2u_bert_free(m2u_bert *m) {
    if (!m) return;
    if (m->layer)
        for (int l = 0; l < m->cfg.layers; l++) m2u_enc_layer_free(&m->layer[l]);
    free(m->layer);
    free(m->word);
    free(m->pos);
    free(m->type);
    free(m->ln_w);
    free(m->ln_b);
    free(m->pool_w);
    free(m->pool_b);
    free(m);
}

/* prefix NULL: "", or the "bert." / "roberta." of a checkpoint with a head, whichever the file has */
static int load_weights(m2u_bert *m, const m2u_safetensors *st, const char *prefix) {
    const m2u_bert_config *c = &m->cfg;
    int H = c->dims.hidden;
    static const char *const wrapped[] = {"bert.", "roberta."};
    for (int k = 0; !prefix && k < 2; k++) {
        char probe[96];
        snprintf(probe, sizeof probe, "%sembeddings.word_embeddings.weight", wrapped[k]);
        if (!m2u_st_find(st, "embeddings.word_embeddings.weight") && m2u_st_find(st, probe)) prefix = wrapped[k];
    }
    if (!prefix) prefix = "";
    int64_t s_w[2] = {c->vocab, H}, s_p[2] = {c->max_positions, H}, s_t[2] = {c->type_vocab, H}, s_ln[1] = {H};
    if (m2u_enc_tensor(st, prefix, "embeddings.word_embeddings.weight", 2, s_w, &m->word) ||
        m2u_enc_tensor(st, prefix, "embeddings.position_embeddings.weight", 2, s_p, &m->pos) ||
        m2u_enc_tensor(st, prefix, "embeddings.token_type_embeddings.weight", 2, s_t, &m->type) ||
        m2u_enc_tensor(st, prefix, "embeddings.LayerNorm.weight", 1, s_ln, &m->ln_w) ||
        m2u_enc_tensor(st, prefix, "embeddings.LayerNorm.bias", 1, s_ln, &m->ln_b))
        return -1;
    char pname[96];
    snprintf(pname, sizeof pname, "%spooler.dense.weight", prefix);
    if (m2u_st_find(st, pname)) { /* the pooler is optional: bert_score's models do not need it */
        int64_t s_pw[2] = {H, H};
        if (m2u_enc_tensor(st, prefix, "pooler.dense.weight", 2, s_pw, &m->pool_w) ||
            m2u_enc_tensor(st, prefix, "pooler.dense.bias", 1, s_ln, &m->pool_b))
            return -1;
    }
    m->layer = calloc((size_t)c->layers, sizeof *m->layer);
    if (!m->layer) return m2u_fail("%s: out of memory", m2u_st_path(st));
    for (int l = 0; l < c->layers; l++)
        if (m2u_enc_layer_load(st, prefix, &BERT_NAMES, l, &c->dims, &m->layer[l]) != 0) return -1;
    return 0;
}

int m2u_bert_load(const char *dir, m2u_bert **out) {
    *out = NULL;
    m2u_bert *m = calloc(1, sizeof *m);
    char *cfg_path = m2u_path_join(dir, "config.json");
    cJSON *cfg = NULL;
    m2u_safetensors *st = NULL;
    int rc = -1;
    if (!m || !cfg_path) {
        m2u_fail("%s: out of memory", dir);
        goto done;
    }
    if (m2u_json_load(cfg_path, 0, &cfg) != 0 || parse_config(cfg, cfg_path, &m->cfg) != 0) goto done;
    if (m2u_st_open(dir, &st) != 0 || load_weights(m, st, NULL) != 0) goto done;
    rc = 0;
done:
    cJSON_Delete(cfg);
    m2u_st_close(st);
    free(cfg_path);
    if (rc != 0) {
        m2u_bert_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

int m2u_bert_load_sub(const cJSON *cfg, const char *origin, const m2u_safetensors *st, const char *prefix,
                      m2u_bert **out) {
    *out = NULL;
    m2u_bert *m = calloc(1, sizeof *m);
    if (!m) return m2u_fail("%s: out of memory", origin);
    if (parse_config(cfg, origin, &m->cfg) != 0 || load_weights(m, st, prefix) != 0) {
        m2u_bert_free(m);
        return -1;
    }
    *out = m;
    return 0;
}

const m2u_bert_config *m2u_bert_config_of(const m2u_bert *m) { return &m->cfg; }

int m2u_bert_forward(const m2u_bert *m, const int32_t *ids, int T, int num_layers, float *hidden_states,
                     float *last) {
    if (T < 1) return m2u_fail("bert: no tokens");
    return m2u_bert_forward_packed(m, ids, 1, &T, num_layers, hidden_states, last);
}

int m2u_bert_forward_packed(const m2u_bert *m, const int32_t *ids, int nseq, const int *lens, int num_layers,
                            float *hidden_states, float *last) {
    const m2u_bert_config *c = &m->cfg;
    int H = c->dims.hidden, T = 0;
    if (num_layers < 0 || num_layers > c->layers)
        return m2u_fail("bert: num_layers %d is outside 0..%d", num_layers, c->layers);
    for (int i = 0; i < nseq; i++) {
        if (lens[i] < 1) return m2u_fail("bert: sequence %d has no tokens", i);
        if (lens[i] > INT_MAX - T) return m2u_fail("bert: %d sequences are too long together", nseq);
        T += lens[i];
    }
    if (T < 1) return m2u_fail("bert: no tokens");
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= c->vocab)
            return m2u_fail("bert: token id %d at %d is outside the vocabulary (%d)", ids[t], t, c->vocab);
    size_t TH = (size_t)T * H;
    float *x = malloc(TH * sizeof(float));
    float *scratch = malloc(m2u_enc_layer_scratch(&c->dims, T) * sizeof(float));
    int *pos = malloc((size_t)T * sizeof *pos);
    int rc = -1;
    if (!x || !scratch || !pos) {
        m2u_fail("bert: out of memory for %d tokens", T);
        goto done;
    }
    /* transformers' create_position_ids_from_input_ids for the RoBERTa family: a <pad> (even one inside
     * the text) sits at padding_idx and does not advance the count; BERT counts 0, 1, ...  Each
     * sequence of a pack counts from its own start. */
    for (int i = 0, t0 = 0; i < nseq; t0 += lens[i++])
        for (int t = 0, k = 0; t < lens[i]; t++) {
            int *p = &pos[t0 + t];
            if (!c->position_offset) *p = t;
            else *p = ids[t0 + t] == c->pad_token_id ? c->pad_token_id : c->position_offset + k++;
            if (*p >= c->max_positions) {
                m2u_fail("bert: %d tokens do not fit %d positions", lens[i], c->max_positions - c->position_offset);
                goto done;
            }
        }
    for (int t = 0; t < T; t++) {
        const float *w = m->word + (size_t)ids[t] * H, *p = m->pos + (size_t)pos[t] * H;
        m2u_add(x + (size_t)t * H, w, m->type, (size_t)H); /* (word + type) + position, as torch */
        m2u_add_inplace(x + (size_t)t * H, p, (size_t)H);
    }
    if (m2u_enc_layernorm(x, x, m->ln_w, m->ln_b, T, H, c->dims.eps) != 0) goto done;
    for (int l = 0; l < num_layers; l++) {
        if (hidden_states) memcpy(hidden_states + (size_t)l * TH, x, TH * sizeof(float));
        if (m2u_enc_layer_fwd_seqs(&c->dims, &m->layer[l], x, nseq, lens, scratch) != 0) goto done;
    }
    if (hidden_states) memcpy(hidden_states + (size_t)num_layers * TH, x, TH * sizeof(float));
    if (last) memcpy(last, x, TH * sizeof(float));
    rc = 0;
done:
    free(x);
    free(scratch);
    free(pos);
    return rc;
}

int m2u_bert_has_pooler(const m2u_bert *m) { return m->pool_w != NULL; }

int m2u_bert_pooler(const m2u_bert *m, const float *h0, float *out) {
    if (!m->pool_w) return m2u_fail("bert: the checkpoint has no pooler (pooler.dense)");
    int H = m->cfg.dims.hidden;
    m2u_linear_fwd(out, h0, m->pool_w, m->pool_b, 1, H, H);
    for (int h = 0; h < H; h++) out[h] = tanhf(out[h]);
    return 0;
}

int m2u_bert_forward_batch(const m2u_bert *m, const int32_t *ids, const int32_t *mask, int B, int T,
                           float *hidden_states) {
    const m2u_bert_config *c = &m->cfg;
    int H = c->dims.hidden, L = c->layers;
    size_t TH = (size_t)T * H;
    memset(hidden_states, 0, (size_t)(L + 1) * B * TH * sizeof(float));
    /* the rows' real lengths (right padding only), then every sequence in one pack */
    int *lens = malloc((size_t)(B > 0 ? B : 1) * sizeof *lens), *from = malloc((size_t)(B > 0 ? B : 1) * sizeof *from);
    int32_t *packed = malloc(((size_t)B * T + 1) * sizeof *packed);
    float *hs = NULL;
    int rc = -1, nseq = 0, total = 0;
    if (!lens || !from || !packed) {
        m2u_fail("bert: out of memory for a batch of %d x %d", B, T);
        goto done;
    }
    for (int b = 0; b < B; b++) {
        const int32_t *mb = mask + (size_t)b * T;
        int n = 0;
        while (n < T && mb[n]) n++;
        for (int t = n; t < T; t++)
            if (mb[t]) {
                m2u_fail("bert: attention_mask row %d is not right-padded (1s then 0s)", b);
                goto done;
            }
        if (n == 0) continue;
        memcpy(packed + total, ids + (size_t)b * T, (size_t)n * sizeof *packed);
        lens[nseq] = n, from[nseq++] = b, total += n;
    }
    if (nseq == 0) { /* every row padding: the zeros above */
        rc = 0;
        goto done;
    }
    if (!(hs = malloc((size_t)(L + 1) * total * H * sizeof(float)))) {
        m2u_fail("bert: out of memory for a batch of %d x %d", B, T);
        goto done;
    }
    if (m2u_bert_forward_packed(m, packed, nseq, lens, L, hs, NULL)) goto done;
    for (int l = 0; l <= L; l++)
        for (int i = 0, t0 = 0; i < nseq; t0 += lens[i++])
            memcpy(hidden_states + ((size_t)l * B + from[i]) * TH, hs + ((size_t)l * total + t0) * H,
                   (size_t)lens[i] * H * sizeof(float));
    rc = 0;
done:
    free(lens), free(from), free(packed), free(hs);
    return rc;
}
