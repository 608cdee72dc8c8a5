/* MusicGen decoder LM: see musicgen.h. */
#include "musicgen.h"

#include "attention.h"
#include "encoder_layer.h" /* m2u_act, m2u_json_* */
#include "m2u_error.h"
#include "ops_extra.h"
#include "safetensors.h"
#include "t5_encoder.h"
#include "tensor.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MG_EPS 1e-5f /* nn.LayerNorm's default, which every MusicGen LayerNorm uses */

/* ---- config ------------------------------------------------------------------------------ */

static int parse_decoder(const cJSON *d, const char *origin, m2u_musicgen_config *c) {
    const char *act = NULL;
    int ch = 1;
    const cJSON *cahs = cJSON_GetObjectItemCaseSensitive(d, "cross_attention_hidden_size");
    if (cahs && !cJSON_IsNull(cahs))
        return m2u_fail("%s: decoder key 'cross_attention_hidden_size' is set: cross-attention straight to "
                        "another width is not supported (enc_to_dec_proj checkpoints only)",
                        origin);
    if (m2u_json_int(d, origin, "hidden_size", 0, 1024, 2, &c->hidden) ||
        m2u_json_int(d, origin, "num_hidden_layers", 0, 24, 1, &c->layers) ||
        m2u_json_int(d, origin, "num_attention_heads", 0, 16, 1, &c->heads) ||
        m2u_json_int(d, origin, "ffn_dim", 0, 4096, 1, &c->ffn) ||
        m2u_json_int(d, origin, "num_codebooks", 0, 4, 1, &c->codebooks) ||
        m2u_json_int(d, origin, "vocab_size", 0, 2048, 2, &c->vocab) ||
        m2u_json_int(d, origin, "max_position_embeddings", 0, 2048, 1, &c->max_positions) ||
        m2u_json_int(d, origin, "audio_channels", 0, 1, 1, &ch) ||
        m2u_json_int(d, origin, "pad_token_id", 0, 2048, 0, &c->pad_id) ||
        m2u_json_int(d, origin, "bos_token_id", 0, 2048, 0, &c->start_id) ||
        m2u_json_bool(d, origin, "scale_embedding", 0, &c->scale_embedding) ||
        m2u_json_str(d, origin, "activation_function", "gelu", &act))
        return -1;
    m2u_act a;
    if (m2u_act_parse(act, origin, "activation_function", &a)) return -1;
    c->act = (int)a;
    if (ch != 1)
        return m2u_fail("%s: audio_channels %d: stereo MusicGen (interleaved codebooks) is not supported", origin, ch);
    if (c->hidden % c->heads)
        return m2u_fail("%s: hidden_size %d is not a multiple of num_attention_heads %d", origin, c->hidden, c->heads);
    return 0;
}

int m2u_musicgen_config_load(const char *dir, m2u_musicgen_config *c) {
    memset(c, 0, sizeof *c);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *root = NULL;
    if (m2u_json_load(path, 0, &root)) return -1;
    int rc = -1;
    const char *mt = NULL;
    if (m2u_json_str(root, path, "model_type", "", &mt)) goto done;
    if (strcmp(mt, "musicgen_melody") == 0) {
        m2u_fail("%s: model_type 'musicgen_melody' is not supported: melody conditions by prepending "
                 "chroma and text states (no cross-attention); only musicgen small/medium/large layouts are",
                 path);
        goto done;
    }
    if (strcmp(mt, "musicgen") == 0) {
        const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
        const cJSON *te = cJSON_GetObjectItemCaseSensitive(root, "text_encoder");
        if (!cJSON_IsObject(dec) || !cJSON_IsObject(te)) {
            m2u_fail("%s: a 'musicgen' config needs 'decoder' and 'text_encoder' objects", path);
            goto done;
        }
        const char *dmt = NULL;
        if (m2u_json_str(dec, path, "model_type", "musicgen_decoder", &dmt)) goto done;
        if (strcmp(dmt, "musicgen_decoder") != 0) {
            m2u_fail("%s: decoder model_type '%s' is not supported (musicgen_decoder)", path, dmt);
            goto done;
        }
        if (parse_decoder(dec, path, c)) goto done;
        /* T5Config maps hidden_size to d_model; t5-base's is 768 */
        if (m2u_json_int(te, path, "d_model", 0, 512, 1, &c->text_hidden)) goto done;
        c->has_text_encoder = 1;
    } else if (strcmp(mt, "musicgen_decoder") == 0) {
        if (parse_decoder(root, path, c)) goto done;
        c->text_hidden = c->hidden;
    } else {
        m2u_fail("%s: model_type '%s' is not MusicGen ('musicgen' or 'musicgen_decoder')", path, mt);
        goto done;
    }
    c->has_proj = c->text_hidden != c->hidden;
    c->guidance_scale = 1.0f;
    /* generation_config.json: the ids generate really uses, and the default guidance */
    cJSON *gen = NULL;
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    if (m2u_json_load(path, 1, &gen)) goto done;
    if (gen) {
        double g = 1.0;
        int e = m2u_json_int(gen, path, "decoder_start_token_id", 0, c->start_id, 0, &c->start_id) ||
                m2u_json_int(gen, path, "pad_token_id", 0, c->pad_id, 0, &c->pad_id) ||
                m2u_json_num(gen, path, "guidance_scale", 0, 1.0, &g);
        c->guidance_scale = (float)g;
        cJSON_Delete(gen);
        if (e) goto done;
    }
    if (c->start_id > c->vocab || c->pad_id > c->vocab) {
        m2u_fail("%s: decoder start id %d / pad id %d outside the embedding rows (0..%d)", dir, c->start_id,
                 c->pad_id, c->vocab);
        goto done;
    }
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

/* ---- weights ---------------------------------------------------------------------------- */

typedef struct {
    float *ln_sa_w, *ln_sa_b, *ln_ca_w, *ln_ca_b, *ln_ff_w, *ln_ff_b;
    m2u_mat sq, sk, sv, so, cq, ck, cv, co, fc1, fc2;
} mg_layer;

struct m2u_musicgen {
    m2u_musicgen_config cfg;
    m2u_safetensors *st;
    m2u_mat *embed, *heads; /* [K] each */
    float *pos;             /* stored sinusoid table [max_positions][hidden] (fp32 copy), or NULL */
    int n_pos;
    float *ln_w, *ln_b;
    m2u_mat proj;
    float *proj_b;
    mg_layer *L;
    m2u_t5_encoder *t5;
    m2u_gen_act act;
};

const m2u_musicgen_config *m2u_musicgen_get_config(const m2u_musicgen *m) { return m ? &m->cfg : NULL; }

void m2u_musicgen_free(m2u_musicgen *m) {
    if (!m) return;
    if (m->L)
        for (int l = 0; l < m->cfg.layers; l++) {
            mg_layer *y = &m->L[l];
            free(y->ln_sa_w), free(y->ln_sa_b), free(y->ln_ca_w), free(y->ln_ca_b), free(y->ln_ff_w), free(y->ln_ff_b);
        }
    free(m->L);
    free(m->embed);
    free(m->heads);
    free(m->pos);
    free(m->ln_w);
    free(m->ln_b);
    free(m->proj_b);
    m2u_t5_encoder_free(m->t5);
    m2u_st_close(m->st);
    free(m);
}

static int get_mat(const m2u_safetensors *st, const char *pre, const char *name, int rows, int cols, m2u_mat *m) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", pre, name);
    int64_t shape[2] = {rows, cols};
    const m2u_st_tensor *t = m2u_st_expect(st, full, 2, shape);
    if (!t) return -1;
    if (t->dtype != M2U_F32 && t->dtype != M2U_F16 && t->dtype != M2U_BF16)
        return m2u_fail("%s: tensor %s: dtype %s, expected F32, F16 or BF16", m2u_st_path(st), full,
                        m2u_dtype_name(t->dtype));
    *m = (m2u_mat){.dtype = t->dtype, .data = t->data, .rows = rows, .cols = cols};
    return 0;
}

static float *get_vec(const m2u_safetensors *st, const char *pre, const char *name, int n) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", pre, name);
    int64_t shape[1] = {n};
    const m2u_st_tensor *t = m2u_st_expect(st, full, 1, shape);
    if (!t) return NULL;
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) {
        m2u_fail("out of memory");
        return NULL;
    }
    if (m2u_st_read_f32(t, v, (size_t)n)) {
        free(v);
        return NULL;
    }
    return v;
}

int m2u_musicgen_load(const char *dir, int with_text_encoder, m2u_musicgen **out) {
    *out = NULL;
    m2u_musicgen *m = calloc(1, sizeof *m);
    if (!m) return m2u_fail("out of memory");
    if (m2u_musicgen_config_load(dir, &m->cfg) || m2u_st_open(dir, &m->st)) goto fail;
    const m2u_musicgen_config *c = &m->cfg;
    int H = c->hidden, K = c->codebooks, F = c->ffn;
    m->act = c->act == M2U_ACT_GELU ? M2U_GEN_ACT_GELU : c->act == M2U_ACT_GELU_TANH ? M2U_GEN_ACT_GELU_TANH : M2U_GEN_ACT_RELU;
    /* composite checkpoints nest the decoder; a bare MusicgenForCausalLM does not */
    const char *dp = "decoder.model.decoder.", *hp = "decoder.";
    if (!m2u_st_find(m->st, "decoder.model.decoder.layer_norm.weight") &&
        m2u_st_find(m->st, "model.decoder.layer_norm.weight"))
        dp = "model.decoder.", hp = "";
    char nm[256], full[512];
    m->embed = calloc((size_t)K, sizeof *m->embed);
    m->heads = calloc((size_t)K, sizeof *m->heads);
    m->L = calloc((size_t)c->layers, sizeof *m->L);
    if (!m->embed || !m->heads || !m->L) {
        m2u_fail("out of memory");
        goto fail;
    }
    for (int k = 0; k < K; k++) {
        snprintf(nm, sizeof nm, "embed_tokens.%d.weight", k);
        if (get_mat(m->st, dp, nm, c->vocab + 1, H, &m->embed[k])) goto fail;
        snprintf(nm, sizeof nm, "%slm_heads.%d.weight", hp, k);
        if (get_mat(m->st, "", nm, c->vocab, H, &m->heads[k])) goto fail;
    }
    /* A (num_codebooks + 1)-th table or head means the config does not describe this checkpoint. */
    snprintf(nm, sizeof nm, "%sembed_tokens.%d.weight", dp, K);
    if (m2u_st_find(m->st, nm)) {
        m2u_fail("%s: tensor %s exists but config.json says num_codebooks = %d", dir, nm, K);
        goto fail;
    }
    if (!(m->ln_w = get_vec(m->st, dp, "layer_norm.weight", H)) || !(m->ln_b = get_vec(m->st, dp, "layer_norm.bias", H)))
        goto fail;
    /* The sinusoid table is a (frozen) parameter in the checkpoint; transformers uses the stored
     * rows, so they are read when present (and recomputed past its end, as make_weights does). */
    snprintf(full, sizeof full, "%sembed_positions.weights", dp);
    const m2u_st_tensor *pt = m2u_st_find(m->st, full);
    if (pt) {
        if (pt->ndim != 2 || pt->shape[1] != H || pt->shape[0] < 1 || pt->shape[0] > INT_MAX / H) {
            m2u_fail("%s: tensor %s: shape must be [positions, %d]", m2u_st_path(m->st), full, H);
            goto fail;
        }
        m->n_pos = (int)pt->shape[0];
        m->pos = malloc((size_t)pt->numel * sizeof(float));
        if (!m->pos) {
            m2u_fail("out of memory");
            goto fail;
        }
        if (m2u_st_read_f32(pt, m->pos, (size_t)pt->numel)) goto fail;
    }
    for (int l = 0; l < c->layers; l++) {
        mg_layer *y = &m->L[l];
        char p[128];
        snprintf(p, sizeof p, "%slayers.%d.", dp, l);
        if (!(y->ln_sa_w = get_vec(m->st, p, "self_attn_layer_norm.weight", H)) ||
            !(y->ln_sa_b = get_vec(m->st, p, "self_attn_layer_norm.bias", H)) ||
            !(y->ln_ca_w = get_vec(m->st, p, "encoder_attn_layer_norm.weight", H)) ||
            !(y->ln_ca_b = get_vec(m->st, p, "encoder_attn_layer_norm.bias", H)) ||
            !(y->ln_ff_w = get_vec(m->st, p, "final_layer_norm.weight", H)) ||
            !(y->ln_ff_b = get_vec(m->st, p, "final_layer_norm.bias", H)) ||
            get_mat(m->st, p, "self_attn.q_proj.weight", H, H, &y->sq) ||
            get_mat(m->st, p, "self_attn.k_proj.weight", H, H, &y->sk) ||
            get_mat(m->st, p, "self_attn.v_proj.weight", H, H, &y->sv) ||
            get_mat(m->st, p, "self_attn.out_proj.weight", H, H, &y->so) ||
            get_mat(m->st, p, "encoder_attn.q_proj.weight", H, H, &y->cq) ||
            get_mat(m->st, p, "encoder_attn.k_proj.weight", H, H, &y->ck) ||
            get_mat(m->st, p, "encoder_attn.v_proj.weight", H, H, &y->cv) ||
            get_mat(m->st, p, "encoder_attn.out_proj.weight", H, H, &y->co) ||
            get_mat(m->st, p, "fc1.weight", F, H, &y->fc1) || get_mat(m->st, p, "fc2.weight", H, F, &y->fc2))
            goto fail;
    }
    snprintf(nm, sizeof nm, "%slayers.%d.fc1.weight", dp, c->layers);
    if (m2u_st_find(m->st, nm)) {
        m2u_fail("%s: tensor %s exists but config.json says num_hidden_layers = %d", dir, nm, c->layers);
        goto fail;
    }
    if (c->has_proj) {
        if (get_mat(m->st, "", "enc_to_dec_proj.weight", H, c->text_hidden, &m->proj) ||
            !(m->proj_b = get_vec(m->st, "", "enc_to_dec_proj.bias", H)))
            goto fail;
    }
    if (with_text_encoder) {
        if (!c->has_text_encoder) {
            m2u_fail("%s: config.json has no text_encoder part", dir);
            goto fail;
        }
        if (m2u_t5_encoder_load(dir, "text_encoder.", &m->t5)) goto fail;
        if (m2u_t5_encoder_config(m->t5)->d_model != c->text_hidden) {
            m2u_fail("%s: text encoder d_model %d differs from the conditioning width %d", dir,
                     m2u_t5_encoder_config(m->t5)->d_model, c->text_hidden);
            goto fail;
        }
    }
    *out = m;
    return 0;
fail:
    m2u_fail_prefix("loading MusicGen from %s", dir);
    m2u_musicgen_free(m);
    return -1;
}

int m2u_musicgen_encode_text(const m2u_musicgen *m, const int32_t *ids, const int32_t *mask, int S, float *out) {
    if (!m->t5) return m2u_fail("MusicGen: the text encoder was not loaded (m2u_musicgen_load with_text_encoder)");
    if (S <= 0) return m2u_fail("MusicGen: empty text prompt");
    return m2u_t5_encode(m->t5, ids, mask, 1, S, out);
}

int m2u_musicgen_encode_prompt(const m2u_musicgen *m, const m2u_unigram *tok, const char *text, size_t len,
                               float **states, int32_t **mask, int *S) {
    *states = NULL, *mask = NULL, *S = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    if (m2u_unigram_encode(tok, text, len, 1, &ids, &n)) return -1;
    if (n == 0 || n > (size_t)(INT_MAX / m->cfg.text_hidden)) {
        free(ids);
        return m2u_fail("MusicGen: the prompt gives %zu tokens", n);
    }
    float *st = malloc(n * (size_t)m->cfg.text_hidden * sizeof(float));
    int32_t *mk = malloc(n * sizeof(int32_t));
    if (!st || !mk) {
        free(ids), free(st), free(mk);
        return m2u_fail("out of memory");
    }
    for (size_t i = 0; i < n; i++) mk[i] = 1;
    if (m2u_musicgen_encode_text(m, ids, mk, (int)n, st)) {
        free(ids), free(st), free(mk);
        return -1;
    }
    free(ids);
    *states = st, *mask = mk, *S = (int)n;
    return 0;
}

/* ---- delay pattern ---------------------------------------------------------------------- */

int m2u_musicgen_delay_mask(int K, int max_length, int filler, int32_t *mask) {
    if (K < 1 || max_length < 2 * K - 1)
        return m2u_fail("MusicGen: max_length %d is shorter than 2 * num_codebooks - 1 = %d: generate applies no "
                        "delay pattern then and the codes cannot be un-delayed",
                        max_length, 2 * K - 1);
    /* build_delay_pattern_mask with the start column only: codebook k is filler at t <= k (BOS
     * and its delay, tril) and at t >= max_length - K + 1 + k (the tail, triu), -1 elsewhere. */
    for (int k = 0; k < K; k++)
        for (int t = 0; t < max_length; t++)
            mask[(size_t)k * max_length + t] = (t <= k || t >= max_length - K + 1 + k) ? filler : -1;
    return 0;
}

/* ---- session ---------------------------------------------------------------------------- */

struct m2u_musicgen_session {
    const m2u_musicgen *m;
    int B, S, max_steps, pos;
    float *kc, *vc;         /* [layers][B][max_steps][H] */
    float *xk, *xv;         /* cross K/V [layers][B][S][H] */
    float *key_bias;        /* [B][S] */
    float *x, *h, *q, *a, *f, *kt, *vt, *logits;
    float *pos_row;
    m2u_gen_out *heads_out; /* [K] */
};

void m2u_musicgen_session_free(m2u_musicgen_session *s) {
    if (!s) return;
    free(s->kc), free(s->vc), free(s->xk), free(s->xv), free(s->key_bias);
    free(s->x), free(s->h), free(s->q), free(s->a), free(s->f);
    free(s->kt), free(s->vt), free(s->logits), free(s->pos_row), free(s->heads_out);
    free(s);
}

int m2u_musicgen_begin(const m2u_musicgen *m, const float *enc, const int32_t *mask, int S, int cfg, int max_steps,
                       m2u_musicgen_session **out) {
    *out = NULL;
    const m2u_musicgen_config *c = &m->cfg;
    if (S <= 0) return m2u_fail("MusicGen: the conditioning has no positions (S = %d)", S);
    if (max_steps <= 0) return m2u_fail("MusicGen: max_steps must be positive");
    int H = c->hidden, D = c->text_hidden, B = cfg ? 2 : 1, L = c->layers;
    m2u_musicgen_session *s = calloc(1, sizeof *s);
    if (!s) return m2u_fail("out of memory");
    s->m = m, s->B = B, s->S = S, s->max_steps = max_steps;
    size_t cache = (size_t)L * B * max_steps * H, cross = (size_t)L * B * S * H;
    int rows = B * S;
    int wide = c->ffn > H ? c->ffn : H;
    s->kc = malloc(cache * sizeof(float));
    s->vc = malloc(cache * sizeof(float));
    s->xk = malloc(cross * sizeof(float));
    s->xv = malloc(cross * sizeof(float));
    s->key_bias = malloc((size_t)rows * sizeof(float));
    s->x = malloc((size_t)B * H * sizeof(float));
    s->h = malloc((size_t)B * H * sizeof(float));
    s->q = malloc((size_t)B * H * sizeof(float));
    s->a = malloc((size_t)B * H * sizeof(float));
    s->f = malloc((size_t)B * wide * sizeof(float));
    s->kt = malloc((size_t)B * H * sizeof(float));
    s->vt = malloc((size_t)B * H * sizeof(float));
    s->logits = malloc((size_t)B * c->codebooks * c->vocab * sizeof(float));
    s->pos_row = malloc((size_t)H * sizeof(float));
    s->heads_out = malloc((size_t)c->codebooks * sizeof *s->heads_out);
    /* conditioning for both halves: [B][S][H] projected and masked states */
    float *e = calloc((size_t)rows * (D > H ? D : H), sizeof(float));
    float *ep = malloc((size_t)rows * H * sizeof(float));
    int32_t *mk = malloc((size_t)rows * sizeof(int32_t));
    if (!s->kc || !s->vc || !s->xk || !s->xv || !s->key_bias || !s->x || !s->h || !s->q || !s->a || !s->f ||
        !s->kt || !s->vt || !s->logits || !s->pos_row || !s->heads_out || !e || !ep || !mk) {
        free(e), free(ep), free(mk);
        m2u_musicgen_session_free(s);
        return m2u_fail("MusicGen: out of memory for a session of %d steps (%zu MB of caches)", max_steps,
                        (2 * cache + 2 * cross) * sizeof(float) >> 20);
    }
    memcpy(e, enc, (size_t)S * D * sizeof(float)); /* the null half stays zero */
    for (int i = 0; i < S; i++) mk[i] = mask ? (mask[i] != 0) : 1;
    for (int i = S; i < rows; i++) mk[i] = 0;
    /* Masking is applied when generate passes an attention_mask: always under CFG (the null
     * half needs it); without CFG only when the caller gave one. */
    int masked = mask != NULL || cfg;
    if (c->has_proj) m2u_gen_linear(ep, e, rows, &m->proj, m->proj_b);
    else memcpy(ep, e, (size_t)rows * H * sizeof(float));
    if (masked)
        for (int i = 0; i < rows; i++)
            if (!mk[i]) memset(ep + (size_t)i * H, 0, (size_t)H * sizeof(float));
    if (masked) m2u_gen_key_bias(s->key_bias, mk, (size_t)rows);
    else memset(s->key_bias, 0, (size_t)rows * sizeof(float));
    for (int l = 0; l < L; l++) {
        m2u_gen_linear(s->xk + (size_t)l * rows * H, ep, rows, &m->L[l].ck, NULL);
        m2u_gen_linear(s->xv + (size_t)l * rows * H, ep, rows, &m->L[l].cv, NULL);
    }
    free(e), free(ep), free(mk);
    *out = s;
    return 0;
}

static void add_rows(float *x, const float *y, size_t n) { m2u_add_inplace(x, y, n); }

int m2u_musicgen_step(m2u_musicgen_session *s, const int32_t *ids, float g, float *raw, float *guided) {
    const m2u_musicgen *m = s->m;
    const m2u_musicgen_config *c = &m->cfg;
    int H = c->hidden, B = s->B, K = c->codebooks, V = c->vocab, nh = c->heads, hd = H / nh, t = s->pos;
    if (t >= s->max_steps) return m2u_fail("MusicGen: session is full (%d steps)", s->max_steps);
    for (int k = 0; k < K; k++)
        if (ids[k] < 0 || ids[k] > V) return m2u_fail("MusicGen: codebook %d id %d outside 0..%d", k, ids[k], V);
    /* embeddings (the same frame for both halves) + position */
    float *x = s->x;
    memset(x, 0, (size_t)H * sizeof(float));
    for (int k = 0; k < K; k++) {
        m2u_mat_row(&m->embed[k], ids[k], s->h);
        add_rows(x, s->h, (size_t)H);
    }
    if (c->scale_embedding)
        m2u_scale(x, x, sqrtf((float)H), (size_t)H);
    if (m->pos && t < m->n_pos) memcpy(s->pos_row, m->pos + (size_t)t * H, (size_t)H * sizeof(float));
    else m2u_gen_sinusoid(s->pos_row, t, 1, H);
    add_rows(x, s->pos_row, (size_t)H);
    for (int b = 1; b < B; b++) memcpy(x + (size_t)b * H, x, (size_t)H * sizeof(float));

    size_t bstride = (size_t)s->max_steps * H;
    /* BartAttention scales q by head_dim**-0.5, a Python double rounded to fp32 by the tensor op */
    float qscale = (float)(1.0 / sqrt((double)hd));
    for (int l = 0; l < c->layers; l++) {
        const mg_layer *y = &m->L[l];
        float *kc = s->kc + (size_t)l * B * bstride, *vc = s->vc + (size_t)l * B * bstride;
        /* causal self-attention: this position's k/v join the cache, the query sees 0..t */
        m2u_gen_layernorm(s->h, x, y->ln_sa_w, y->ln_sa_b, B, H, MG_EPS);
        m2u_gen_out qkv[3] = {{s->q, H, &y->sq, NULL}, {s->kt, H, &y->sk, NULL}, {s->vt, H, &y->sv, NULL}};
        m2u_gen_linear_many(qkv, 3, s->h, B, M2U_GEN_ACT_NONE);
        for (int b = 0; b < B; b++) {
            memcpy(kc + b * bstride + (size_t)t * H, s->kt + (size_t)b * H, (size_t)H * sizeof(float));
            memcpy(vc + b * bstride + (size_t)t * H, s->vt + (size_t)b * H, (size_t)H * sizeof(float));
        }
        m2u_attn sa = m2u_attn_make(B, 1, t + 1, nh, nh, hd, H, H, H, 1, t);
        sa.kv_bstride = bstride, sa.prescale_q = 1, sa.scale = qscale;
        if (m2u_attn_fwd(&sa, s->a, NULL, s->q, kc, vc)) return -1;
        m2u_gen_linear(s->h, s->a, B, &y->so, NULL);
        add_rows(x, s->h, (size_t)B * H);
        /* cross-attention to the conditioning (K/V from m2u_musicgen_begin) */
        m2u_gen_layernorm(s->h, x, y->ln_ca_w, y->ln_ca_b, B, H, MG_EPS);
        m2u_gen_linear(s->q, s->h, B, &y->cq, NULL);
        size_t xo = (size_t)l * B * s->S * H;
        /* key_bias, not key_mask: the null half's all-padded row must attend uniformly, as in torch */
        m2u_attn ca = m2u_attn_make(B, 1, s->S, nh, nh, hd, H, H, H, 0, 0);
        ca.key_bias = s->key_bias, ca.prescale_q = 1, ca.scale = qscale;
        if (m2u_attn_fwd(&ca, s->a, NULL, s->q, s->xk + xo, s->xv + xo)) return -1;
        m2u_gen_linear(s->h, s->a, B, &y->co, NULL);
        add_rows(x, s->h, (size_t)B * H);
        /* feed-forward */
        m2u_gen_layernorm(s->h, x, y->ln_ff_w, y->ln_ff_b, B, H, MG_EPS);
        m2u_gen_out fc1 = {s->f, c->ffn, &y->fc1, NULL};
        m2u_gen_linear_many(&fc1, 1, s->h, B, m->act);
        m2u_gen_linear(s->h, s->f, B, &y->fc2, NULL);
        add_rows(x, s->h, (size_t)B * H);
    }
    m2u_gen_layernorm(s->h, x, m->ln_w, m->ln_b, B, H, MG_EPS);
    /* heads: logits [B][K][V], all K heads in one pass, both halves per weight row */
    float *lg = s->logits;
    for (int k = 0; k < K; k++) s->heads_out[k] = (m2u_gen_out){lg + (size_t)k * V, K * V, &m->heads[k], NULL};
    m2u_gen_linear_many(s->heads_out, K, s->h, B, M2U_GEN_ACT_NONE);
    s->pos++;
    if (raw) memcpy(raw, lg, (size_t)B * K * V * sizeof(float));
    if (guided) {
        if (B == 2) m2u_gen_cfg(guided, lg, lg + (size_t)K * V, (size_t)K * V, g);
        else memcpy(guided, lg, (size_t)K * V * sizeof(float));
    }
    return 0;
}

/* ---- generation ------------------------------------------------------------------------ */

m2u_musicgen_gen_opts m2u_musicgen_default_opts(int max_length) {
    m2u_musicgen_gen_opts o = {0};
    o.max_length = max_length;
    o.guidance_scale = 3.0f;
    o.do_sample = 1;
    o.sampling.temperature = 1.0f;
    o.sampling.top_k = 250;
    o.sampling.top_p = 1.0f;
    o.seed = 0;
    return o;
}

int m2u_musicgen_generate(const m2u_musicgen *m, const float *enc, const int32_t *mask, int S,
                          const m2u_musicgen_gen_opts *o, int32_t *codes, int32_t *seq_out) {
    const m2u_musicgen_config *c = &m->cfg;
    int K = c->codebooks, V = c->vocab, T = o->max_length;
    if (c->pad_id != c->start_id)
        return m2u_fail("MusicGen: pad id %d differs from the decoder start id %d: the delay filler would not be "
                        "removed when un-delaying",
                        c->pad_id, c->start_id);
    if (o->do_sample && !(o->sampling.temperature > 0))
        return m2u_fail("MusicGen: temperature must be positive (got %g)", (double)o->sampling.temperature);
    if (o->do_sample && !(o->sampling.top_p > 0 && o->sampling.top_p <= 1))
        return m2u_fail("MusicGen: top_p must be in (0, 1] (got %g)", (double)o->sampling.top_p);
    int P = o->prompt_codes ? o->prompt_frames : 0;
    if (o->prompt_codes && (P < 1 || P >= T - K))
        return m2u_fail("MusicGen: an audio prompt of %d frames needs max_length > %d (got %d)", o->prompt_frames,
                        o->prompt_frames + K, T);
    for (size_t i = 0; i < (size_t)K * P; i++)
        if (o->prompt_codes[i] < 0 || o->prompt_codes[i] >= V)
            return m2u_fail("MusicGen: prompt code %d (codebook %zu, frame %zu) is outside [0, %d)", o->prompt_codes[i],
                            i / P, i % P, V);
    int cfg = o->guidance_scale > 1.0f;
    int32_t *dmask = malloc((size_t)K * T * sizeof(int32_t)), *seq = malloc((size_t)K * T * sizeof(int32_t));
    int32_t *col = calloc((size_t)K, sizeof(int32_t));
    float *lg = malloc((size_t)K * V * sizeof(float));
    void *scr = malloc(m2u_gen_sample_scratch(V));
    m2u_musicgen_session *s = NULL;
    int rc = -1;
    if (!dmask || !seq || !col || !lg || !scr) {
        m2u_fail("out of memory");
        goto done;
    }
    if (m2u_musicgen_delay_mask(K, T, c->start_id, dmask) || m2u_musicgen_begin(m, enc, mask, S, cfg, T - 1, &s))
        goto done;
    /* build_delay_pattern_mask with the prompt [start, p_0 .. p_P-1] per codebook: codebook k's prompt
     * sits at columns k .. k + P (shifted by k); outside the tril/triu filler those columns are forced.
     * generate feeds columns 0 .. P as its input ids (first_start_id = P + 1) and samples after them. */
    for (int k = 0; k < K; k++)
        for (int j = 0; j < P; j++) {
            int32_t *mv = &dmask[(size_t)k * T + k + 1 + j];
            if (*mv == -1) *mv = o->prompt_codes[(size_t)k * P + j];
        }
    m2u_rng rng;
    m2u_rng_seed(&rng, o->seed);
    for (int k = 0; k < K; k++) seq[(size_t)k * T] = c->start_id;
    for (int t = 0; t + 1 < T; t++) {
        /* prepare_inputs_for_generation: the delay mask overrides the sequence, then the last column */
        for (int k = 0; k < K; k++) {
            int32_t mv = dmask[(size_t)k * T + t];
            col[k] = mv == -1 ? seq[(size_t)k * T + t] : mv;
        }
        if (t + 1 <= P) {
            /* the prompt's own columns (generate's input ids, one forward there): no logits, no draw */
            if (m2u_musicgen_step(s, col, o->guidance_scale, NULL, NULL)) goto done;
            for (int k = 0; k < K; k++) seq[(size_t)k * T + t + 1] = dmask[(size_t)k * T + t + 1];
            if (o->progress) o->progress(o->progress_ctx, t + 1, T - 1);
            continue;
        }
        if (m2u_musicgen_step(s, col, o->guidance_scale, NULL, lg)) goto done;
        if (o->progress) o->progress(o->progress_ctx, t + 1, T - 1);
        for (int k = 0; k < K; k++) {
            const float *row = lg + (size_t)k * V;
            seq[(size_t)k * T + t + 1] = o->do_sample ? m2u_gen_sample(row, V, &o->sampling, &rng, scr)
                                                      : m2u_gen_argmax(row, V);
        }
    }
    for (size_t i = 0; i < (size_t)K * T; i++)
        if (dmask[i] != -1) seq[i] = dmask[i];
    if (seq_out) memcpy(seq_out, seq, (size_t)K * T * sizeof(int32_t));
    /* un-delay as generate does: drop every pad id; each row keeps T - K codes */
    for (int k = 0; k < K; k++) {
        int n = 0;
        for (int t = 0; t < T; t++) {
            int32_t v = seq[(size_t)k * T + t];
            if (v == c->pad_id) continue;
            if (n < T - K) codes[(size_t)k * (T - K) + n] = v;
            n++;
        }
        if (n != T - K) {
            m2u_fail("MusicGen: codebook %d has %d codes after removing the delay, expected %d", k, n, T - K);
            goto done;
        }
    }
    rc = 0;
done:
    m2u_musicgen_session_free(s);
    free(dmask), free(seq), free(col), free(lg), free(scr);
    return rc;
}
