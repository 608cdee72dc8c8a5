#include "export.h"

#include "checkpoint.h"
#include "config.h"
#include "dtype.h"
#include "fileio.h"
#include "gguf_writer.h"
#include "llama.h"
#include "llama_config.h"
#include "m2u_error.h"
#include "strbuf.h"
#include "peft.h"
#include "safetensors.h"
#include "tokenizer.h"
#include "torch_pth_writer.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- report ------------------------------------------------------------------------------------ */

/* ---- the source: base model, trainables, run config, tokenizer ----------------------------------- */

static const char *const k_parent[M2U_N_LINEAR] = {"self_attn", "self_attn", "self_attn", "self_attn",
                                                   "mlp",       "mlp",       "mlp"};
static const char *const k_gguf_lin[M2U_N_LINEAR] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                                     "ffn_gate", "ffn_up", "ffn_down"};
static const char *const k_meta_part[M2U_N_LINEAR] = {"attention", "attention", "attention", "attention",
                                                      "feed_forward", "feed_forward", "feed_forward"};
static const char *const k_meta_name[M2U_N_LINEAR] = {"wq", "wk", "wv", "wo", "w1", "w3", "w2"};

typedef struct {
    const m2u_export_options *o;
    m2u_llama_config cfg; /* the base's */
    cJSON *cfg_json;
    char *cfg_path;
    m2u_safetensors *base;
    m2u_safetensors *tr;  /* trainables, NULL without a run */
    char *tr_path;
    int has_tc;
    m2u_train_config tc;
    /* LoRA */
    int r;
    float alpha, scale;
    unsigned lora_targets;
    /* tokenizer */
    cJSON *tok_json;
    char *tok_path;
    int n_tok;            /* tokens after adding [AUD] */
    char **tok_str;       /* [n_tok] (NULL where a hole) */
    int n_added_aud;      /* [AUD] tokens appended to the tokenizer */
    int first_added_id;
    /* vocabulary of the exported model */
    int V;                /* new vocab size */
    int rows_start, n_rows;
    int n_layers_adapter, first_adapter_layer;
    int *used;            /* [count of trainables]: consumed by this export */
} src_t;

static int tr_index(const src_t *s, const char *name) {
    if (!s->tr) return -1;
    for (int i = 0; i < m2u_st_count(s->tr); i++)
        if (!strcmp(m2u_st_at(s->tr, i)->name, name)) return i;
    return -1;
}

/* A trainable tensor as fp32 (malloc'ed) or NULL if absent; marks it used. */
static float *tr_get(src_t *s, const char *name, int64_t expect_numel, int *err) {
    int i = tr_index(s, name);
    if (i < 0) return NULL;
    const m2u_st_tensor *t = m2u_st_at(s->tr, i);
    if (expect_numel >= 0 && t->numel != expect_numel) {
        *err = m2u_fail("%s: tensor %s has %lld values, the base model needs %lld", s->tr_path, name,
                        (long long)t->numel, (long long)expect_numel);
        return NULL;
    }
    float *d = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    if (!d || m2u_st_read_f32(t, d, (size_t)t->numel)) {
        free(d);
        *err = d ? -1 : m2u_fail("out of memory");
        return NULL;
    }
    if (s->used) s->used[i] = 1;
    return d;
}

static int resolve_run(const char *run, char **tr_file, char **cfg_file) {
    *tr_file = *cfg_file = NULL;
    struct stat sb;
    if (stat(run, &sb) != 0) return m2u_fail("%s: %s", run, strerror(errno));
    char *ckdir = NULL;
    if (S_ISDIR(sb.st_mode)) {
        char *p = m2u_path_join(run, "trainable.safetensors");
        if (p && m2u_file_exists(p)) {
            *tr_file = p;
            ckdir = strdup(run);
        } else {
            free(p);
            char *latest = NULL;
            if (m2u_ckpt_latest(run, &latest)) return -1;
            if (!latest)
                return m2u_fail("%s: neither a checkpoint (no trainable.safetensors) nor a run directory with a "
                                "complete checkpoint under checkpoints/",
                                run);
            *tr_file = m2u_path_join(latest, "trainable.safetensors");
            *cfg_file = m2u_path_join(run, "config.yaml");
            free(latest);
            if (!*tr_file || !*cfg_file) return m2u_fail("out of memory");
            return 0;
        }
    } else {
        *tr_file = strdup(run);
        ckdir = m2u_path_dirname(run);
    }
    if (!*tr_file || !ckdir) {
        free(ckdir);
        return m2u_fail("out of memory");
    }
    /* <run>/checkpoints/step-N/ -> <run>/config.yaml */
    char buf[4200];
    snprintf(buf, sizeof buf, "%s/../../config.yaml", ckdir);
    free(ckdir);
    if (m2u_file_exists(buf)) *cfg_file = strdup(buf);
    return 0;
}

static int json_load(const char *path, cJSON **out) {
    char *text = NULL;
    *out = NULL;
    if (m2u_read_file(path, &text, NULL)) return -1;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) return m2u_fail("%s: not valid JSON", path);
    *out = j;
    return 0;
}

/* tokenizer.json: ids of model.vocab and added_tokens; [AUD0..n) appended like
 * tokenizers' add_tokens (normal tokens, new ids after the largest). */
static int load_tokenizer(src_t *s, int n_aud) {
    s->tok_path = m2u_path_join(s->o->base, "tokenizer.json");
    if (!s->tok_path) return m2u_fail("out of memory");
    if (!m2u_file_exists(s->tok_path)) {
        if (n_aud) return m2u_fail("%s: missing (needed to add the [AUD] tokens)", s->tok_path);
        return 0;
    }
    if (json_load(s->tok_path, &s->tok_json)) return -1;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(s->tok_json, "model");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(s->tok_json, "added_tokens");
    if (!cJSON_IsObject(vocab)) return m2u_fail("%s: model.vocab is not an object", s->tok_path);
    int max_id = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, vocab) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 1e8)
            return m2u_fail("%s: model.vocab[\"%s\"] is not a valid id", s->tok_path, e->string);
        if (e->valueint > max_id) max_id = e->valueint;
    }
    cJSON_ArrayForEach(e, added) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 1e8 || !cJSON_IsString(c))
            return m2u_fail("%s: an added_tokens entry lacks a valid id/content", s->tok_path);
        if (id->valueint > max_id) max_id = id->valueint;
    }
    int n = max_id + 1;
    s->tok_str = calloc((size_t)n + (size_t)n_aud + 1, sizeof(char *));
    if (!s->tok_str) return m2u_fail("out of memory");
    cJSON_ArrayForEach(e, vocab) s->tok_str[e->valueint] = e->string;
    cJSON_ArrayForEach(e, added) {
        s->tok_str[cJSON_GetObjectItemCaseSensitive(e, "id")->valueint] =
            cJSON_GetObjectItemCaseSensitive(e, "content")->valuestring;
    }
    s->first_added_id = n;
    for (int k = 0; k < n_aud; k++) {
        char name[32];
        snprintf(name, sizeof name, "[AUD%d]", k);
        int found = 0;
        for (int i = 0; i < n && !found; i++) found = s->tok_str[i] && !strcmp(s->tok_str[i], name);
        if (found) continue;
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", n);
        cJSON_AddStringToObject(t, "content", name);
        cJSON_AddBoolToObject(t, "single_word", 0);
        cJSON_AddBoolToObject(t, "lstrip", 0);
        cJSON_AddBoolToObject(t, "rstrip", 0);
        cJSON_AddBoolToObject(t, "normalized", 1);
        cJSON_AddBoolToObject(t, "special", 0);
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(s->tok_json, "added_tokens");
        if (!arr) arr = cJSON_AddArrayToObject(s->tok_json, "added_tokens");
        cJSON_AddItemToArray(arr, t);
        s->tok_str[n] = cJSON_GetObjectItemCaseSensitive(t, "content")->valuestring;
        n++;
        s->n_added_aud++;
    }
    s->n_tok = n;
    return 0;
}

static void src_free(src_t *s) {
    m2u_st_close(s->base);
    m2u_st_close(s->tr);
    cJSON_Delete(s->cfg_json);
    cJSON_Delete(s->tok_json);
    free(s->tok_str);
    free(s->tok_path);
    free(s->cfg_path);
    free(s->tr_path);
    free(s->used);
    if (s->has_tc) m2u_train_config_free(&s->tc);
}

static int src_open(src_t *s, const m2u_export_options *o, int need_run) {
    memset(s, 0, sizeof *s);
    s->o = o;
    if (!o->base) return m2u_fail("--base is required");
    if (!m2u_is_dir(o->base)) return m2u_fail("%s: not a directory (--base: the Hugging Face LLaMA the run trained on)", o->base);
    s->cfg_path = m2u_path_join(o->base, "config.json");
    if (!s->cfg_path) return m2u_fail("out of memory");
    if (m2u_llama_config_load(s->cfg_path, &s->cfg)) return -1;
    if (json_load(s->cfg_path, &s->cfg_json)) return -1;
    if (m2u_st_open(o->base, &s->base)) return -1;
    if (!o->run && need_run) return m2u_fail("--run is required for this export");
    char *cfg_file = NULL;
    if (o->run) {
        if (resolve_run(o->run, &s->tr_path, &cfg_file)) return -1;
        if (m2u_st_open(s->tr_path, &s->tr)) {
            free(cfg_file);
            return -1;
        }
        s->used = calloc((size_t)m2u_st_count(s->tr) + 1, sizeof(int));
        if (!s->used) {
            free(cfg_file);
            return m2u_fail("out of memory");
        }
    }
    if (cfg_file) {
        int rc = m2u_train_config_load(cfg_file, NULL, 0, M2U_CFG_NO_FILE_CHECKS, &s->tc);
        free(cfg_file);
        if (rc) return -1;
        s->has_tc = 1;
    }
    /* LoRA rank and targets from the tensors, alpha from the config */
    for (int l = 0; s->tr && l < s->cfg.n_layers; l++)
        for (int k = 0; k < M2U_N_LINEAR; k++) {
            char name[256];
            snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_A.weight", l, k_parent[k],
                     m2u_linear_names[k]);
            const m2u_st_tensor *t = m2u_st_find(s->tr, name);
            if (!t) continue;
            if (t->ndim != 2) return m2u_fail("%s: %s is not 2-D", s->tr_path, name);
            if (s->r && t->shape[0] != s->r)
                return m2u_fail("%s: %s has rank %lld, other LoRA tensors %d", s->tr_path, name, (long long)t->shape[0],
                                s->r);
            s->r = (int)t->shape[0];
            s->lora_targets |= 1u << k;
        }
    if (s->r) {
        if (o->lora_alpha > 0) s->alpha = (float)o->lora_alpha;
        else if (s->has_tc) s->alpha = (float)s->tc.lora.alpha;
        else
            return m2u_fail("%s: LoRA alpha unknown: no config.yaml beside the run (give --lora-alpha)", s->tr_path);
        s->scale = s->alpha / (float)s->r; /* m2u trains plain alpha/r (no rslora) */
        if (s->has_tc && s->tc.lora.r != s->r)
            return m2u_fail("%s: LoRA tensors have rank %d but the run's config.yaml says lora.r = %d", s->tr_path,
                            s->r, s->tc.lora.r);
    }
    int n_aud = s->has_tc ? s->tc.model.aud_tokens : 0;
    if (load_tokenizer(s, n_aud)) return -1;
    /* vocabulary: the checkpoint's, grown by the [AUD] tokens the tokenizer did not have */
    s->V = s->cfg.vocab_size;
    if (s->tok_json && s->n_tok > s->cfg.vocab_size) s->V = s->n_tok;
    const m2u_st_tensor *rows = s->tr ? m2u_st_find(s->tr, "model.embed_tokens.weight.rows") : NULL;
    if (!rows && s->V > s->cfg.vocab_size)
        return m2u_fail("%s: the tokenizer has %d tokens with the [AUD] ones, the base %d, but the run holds no "
                        "model.embed_tokens.weight.rows",
                        s->tr_path ? s->tr_path : o->base, s->V, s->cfg.vocab_size);
    if (rows) {
        if (rows->ndim != 2 || rows->shape[1] != s->cfg.hidden_size || rows->shape[0] > s->V)
            return m2u_fail("%s: model.embed_tokens.weight.rows has a bad shape", s->tr_path);
        s->n_rows = (int)rows->shape[0];
        s->rows_start = s->V - s->n_rows;
        if (s->rows_start > s->cfg.vocab_size)
            return m2u_fail("%s: %d token rows do not reach the end of the vocabulary (%d)", s->tr_path, s->n_rows, s->V);
    } else {
        s->rows_start = s->V;
    }
    /* adapter layers: the last layers carrying a gate */
    s->first_adapter_layer = s->cfg.n_layers;
    for (int l = s->cfg.n_layers - 1; s->tr && l >= 0; l--) {
        char name[128];
        snprintf(name, sizeof name, "model.layers.%d.self_attn.gate", l);
        if (!m2u_st_find(s->tr, name)) break;
        s->first_adapter_layer = l;
    }
    s->n_layers_adapter = s->cfg.n_layers - s->first_adapter_layer;
    return 0;
}

/* ---- effective weights of the exported LlamaForCausalLM (fp32, HF layout) ---------------------------- */

static int base_f32(const src_t *s, const char *name, float *dst, int64_t numel) {
    const m2u_st_tensor *t = m2u_st_find(s->base, name);
    if (!t) return m2u_fail("%s: missing tensor %s", s->o->base, name);
    if (t->numel != numel)
        return m2u_fail("%s: tensor %s has %lld values, config.json implies %lld", m2u_st_path(s->base), name,
                        (long long)t->numel, (long long)numel);
    return m2u_st_read_f32(t, dst, (size_t)numel);
}

static void lin_dims(const m2u_llama_config *c, int k, int *out, int *in) {
    int C = c->hidden_size, qd = c->n_heads * c->head_dim, kvd = c->n_kv_heads * c->head_dim, F = c->intermediate_size;
    const int d[M2U_N_LINEAR][2] = {{qd, C}, {kvd, C}, {kvd, C}, {C, qd}, {F, C}, {F, C}, {C, F}};
    *out = d[k][0];
    *in = d[k][1];
}

/* W (+ scale B A when merge) of linear k of layer l, [out, in] */
static int eff_linear(src_t *s, int l, int k, int merge, float *w) {
    int out, in;
    lin_dims(&s->cfg, k, &out, &in);
    char name[256];
    snprintf(name, sizeof name, "model.layers.%d.%s.%s.weight", l, k_parent[k], m2u_linear_names[k]);
    if (base_f32(s, name, w, (int64_t)out * in)) return -1;
    if (!merge || !s->r || !(s->lora_targets & (1u << k))) return 0;
    int err = 0, r = s->r;
    snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_A.weight", l, k_parent[k],
             m2u_linear_names[k]);
    float *A = tr_get(s, name, (int64_t)r * in, &err);
    snprintf(name, sizeof name, "base_model.model.model.layers.%d.%s.%s.lora_B.weight", l, k_parent[k],
             m2u_linear_names[k]);
    float *B = A ? tr_get(s, name, (int64_t)out * r, &err) : NULL;
    if (!A || !B) {
        free(A);
        free(B);
        return err ? -1 : m2u_fail("%s: layer %d %s: lora_A without lora_B", s->tr_path, l, m2u_linear_names[k]);
    }
    { /* W += scale * (B @ A), accumulated in double per element */
        for (int i = 0; i < out; i++) {
            const float *b = B + (size_t)i * r;
            float *wr = w + (size_t)i * in;
            for (int j = 0; j < in; j++) {
                double acc = 0;
                for (int q = 0; q < r; q++) acc += (double)b[q] * A[(size_t)q * in + j];
                wr[j] = (float)((double)wr[j] + (double)s->scale * acc);
            }
        }
    }
    free(A);
    free(B);
    return 0;
}

/* bias of linear k (out values) into b; *present says whether the exported model needs one */
static int eff_bias(src_t *s, int l, int k, float *b, int *present) {
    int out, in;
    lin_dims(&s->cfg, k, &out, &in);
    char name[256];
    snprintf(name, sizeof name, "model.layers.%d.%s.%s.bias", l, k_parent[k], m2u_linear_names[k]);
    int err = 0;
    float *t = tr_get(s, name, out, &err);
    if (err) return -1;
    *present = 0;
    if (t) {
        memcpy(b, t, (size_t)out * sizeof(float));
        free(t);
        *present = 1;
    } else if (m2u_st_find(s->base, name)) {
        if (base_f32(s, name, b, out)) return -1;
        *present = 1;
    } else {
        memset(b, 0, (size_t)out * sizeof(float));
    }
    return 0;
}

/* The text-only adapter term of an adapter layer: o_eff @ c with
 * c[h*hd + d] = tanh(gate_h) * (W_v prefix_j)[kv(h)*hd + d], added to o_proj's bias. */
static int adapter_const(src_t *s, int l, const float *w_o_eff, float *bias_o, int *touched) {
    *touched = 0;
    if (l < s->first_adapter_layer) return 0;
    const m2u_llama_config *c = &s->cfg;
    int C = c->hidden_size, hd = c->head_dim, H = c->n_heads, group = H / c->n_kv_heads, kvd = c->n_kv_heads * hd,
        qd = H * hd;
    int j = l - s->first_adapter_layer, err = 0;
    char name[128];
    snprintf(name, sizeof name, "model.layers.%d.self_attn.gate", l);
    float *gate = tr_get(s, name, H, &err);
    if (!gate) return err ? -1 : 0;
    const m2u_st_tensor *pq = m2u_st_find(s->tr, "prefix_query.weight");
    if (!pq || pq->ndim != 2 || pq->shape[1] != C || pq->shape[0] < s->n_layers_adapter) {
        free(gate);
        return m2u_fail("%s: gates on the last %d layers but no matching prefix_query.weight [%d, %d]", s->tr_path,
                        s->n_layers_adapter, s->n_layers_adapter, C);
    }
    float *pqv = tr_get(s, "prefix_query.weight", -1, &err);
    float *wv = malloc((size_t)kvd * C * sizeof(float)), *v = malloc((size_t)kvd * sizeof(float)),
          *cc = malloc((size_t)qd * sizeof(float));
    int rc = (!pqv || !wv || !v || !cc) ? (err ? -1 : m2u_fail("out of memory")) : 0;
    snprintf(name, sizeof name, "model.layers.%d.self_attn.v_proj.weight", l);
    if (!rc) rc = base_f32(s, name, wv, (int64_t)kvd * C);
    if (!rc) {
        const float *a = pqv + (size_t)j * C;
        for (int i = 0; i < kvd; i++) {
            double acc = 0;
            for (int k = 0; k < C; k++) acc += (double)wv[(size_t)i * C + k] * a[k];
            v[i] = (float)acc;
        }
        for (int h = 0; h < H; h++) {
            float tg = tanhf(gate[h]);
            for (int d = 0; d < hd; d++) cc[h * hd + d] = tg * v[(h / group) * hd + d];
        }
        for (int i = 0; i < C; i++) {
            double acc = 0;
            for (int k = 0; k < qd; k++) acc += (double)w_o_eff[(size_t)i * qd + k] * cc[k];
            bias_o[i] = (float)((double)bias_o[i] + acc);
        }
        *touched = 1;
    }
    free(gate);
    free(pqv);
    free(wv);
    free(v);
    free(cc);
    return rc;
}

/* embed_tokens or lm_head [V, C] with the trained rows */
static int eff_vocab_matrix(src_t *s, int head, float *dst) {
    int C = s->cfg.hidden_size, V0 = s->cfg.vocab_size;
    const char *name = head ? "lm_head.weight" : "model.embed_tokens.weight";
    if (head && s->cfg.tie_word_embeddings) name = "model.embed_tokens.weight";
    if (!m2u_st_find(s->base, name) && head) name = "model.embed_tokens.weight";
    if (base_f32(s, name, dst, (int64_t)V0 * C)) return -1;
    for (size_t i = (size_t)V0 * C; i < (size_t)s->V * C; i++) dst[i] = 0;
    if (!s->n_rows) return 0;
    int err = 0;
    const char *rname = head && !s->cfg.tie_word_embeddings ? "lm_head.weight.rows" : "model.embed_tokens.weight.rows";
    float *rows = tr_get(s, rname, (int64_t)s->n_rows * C, &err);
    if (!rows) return err ? -1 : m2u_fail("%s: missing %s", s->tr_path, rname);
    memcpy(dst + (size_t)s->rows_start * C, rows, (size_t)s->n_rows * C * sizeof(float));
    free(rows);
    return 0;
}

static int eff_norm(src_t *s, const char *name, float *dst) {
    int err = 0, C = s->cfg.hidden_size;
    float *t = tr_get(s, name, C, &err);
    if (err) return -1;
    if (t) {
        memcpy(dst, t, (size_t)C * sizeof(float));
        free(t);
        return 0;
    }
    return base_f32(s, name, dst, C);
}

/* ---- the tensor list of the exported LlamaForCausalLM, in transformers' state_dict order ---------- */

typedef struct {
    char name[128];
    int ndim;
    int64_t shape[2];
    int kind; /* 0 embed, 1 head, 2 linear weight, 3 linear bias, 4 norm, 5 final norm */
    int layer, lin;
    const char *norm_name;
} hf_tensor;

typedef struct {
    hf_tensor *t;
    int n;
    int attn_bias, mlp_bias; /* the exported config's flags */
} hf_plan;

/* Which biases the exported model has: the base's, trained ones, and o_proj for the adapter term. */
static int plan_hf(src_t *s, hf_plan *p) {
    const m2u_llama_config *c = &s->cfg;
    int L = c->n_layers, C = c->hidden_size;
    p->attn_bias = c->attention_bias;
    p->mlp_bias = c->mlp_bias;
    for (int l = 0; s->tr && l < L; l++)
        for (int k = 0; k < M2U_N_LINEAR; k++) {
            char name[256];
            snprintf(name, sizeof name, "model.layers.%d.%s.%s.bias", l, k_parent[k], m2u_linear_names[k]);
            if (m2u_st_find(s->tr, name)) *(k <= M2U_O ? &p->attn_bias : &p->mlp_bias) = 1;
        }
    if (s->n_layers_adapter) p->attn_bias = 1;
    p->t = calloc((size_t)L * 16 + 8, sizeof(hf_tensor));
    if (!p->t) return m2u_fail("out of memory");
    int n = 0;
    hf_tensor *t = &p->t[n++];
    snprintf(t->name, sizeof t->name, "model.embed_tokens.weight");
    t->ndim = 2, t->shape[0] = s->V, t->shape[1] = C, t->kind = 0;
    for (int l = 0; l < L; l++) {
        static const int order[M2U_N_LINEAR] = {M2U_Q, M2U_K, M2U_V, M2U_O, M2U_GATE, M2U_UP, M2U_DOWN};
        for (int oi = 0; oi < M2U_N_LINEAR; oi++) {
            int k = order[oi], out, in;
            lin_dims(c, k, &out, &in);
            t = &p->t[n++];
            snprintf(t->name, sizeof t->name, "model.layers.%d.%s.%s.weight", l, k_parent[k], m2u_linear_names[k]);
            t->ndim = 2, t->shape[0] = out, t->shape[1] = in, t->kind = 2, t->layer = l, t->lin = k;
            if (k <= M2U_O ? p->attn_bias : p->mlp_bias) {
                t = &p->t[n++];
                snprintf(t->name, sizeof t->name, "model.layers.%d.%s.%s.bias", l, k_parent[k], m2u_linear_names[k]);
                t->ndim = 1, t->shape[0] = out, t->kind = 3, t->layer = l, t->lin = k;
            }
        }
        t = &p->t[n++];
        snprintf(t->name, sizeof t->name, "model.layers.%d.input_layernorm.weight", l);
        t->ndim = 1, t->shape[0] = C, t->kind = 4, t->layer = l;
        t = &p->t[n++];
        snprintf(t->name, sizeof t->name, "model.layers.%d.post_attention_layernorm.weight", l);
        t->ndim = 1, t->shape[0] = C, t->kind = 4, t->layer = l;
    }
    t = &p->t[n++];
    snprintf(t->name, sizeof t->name, "model.norm.weight");
    t->ndim = 1, t->shape[0] = C, t->kind = 5;
    if (!c->tie_word_embeddings) {
        t = &p->t[n++];
        snprintf(t->name, sizeof t->name, "lm_head.weight");
        t->ndim = 2, t->shape[0] = s->V, t->shape[1] = C, t->kind = 1;
    }
    p->n = n;
    return 0;
}

static int64_t numel2(const hf_tensor *t) { return t->ndim == 2 ? t->shape[0] * t->shape[1] : t->shape[0]; }

/* Compute tensor t of the plan into dst (fp32). */
static int compute_hf(src_t *s, const hf_plan *p, const hf_tensor *t, int merge_lora, float *dst) {
    (void)p;
    switch (t->kind) {
    case 0: return eff_vocab_matrix(s, 0, dst);
    case 1: return eff_vocab_matrix(s, 1, dst);
    case 2: return eff_linear(s, t->layer, t->lin, merge_lora, dst);
    case 3: {
        int present;
        if (eff_bias(s, t->layer, t->lin, dst, &present)) return -1;
        if (t->lin == M2U_O && t->layer >= s->first_adapter_layer) {
            int out, in, touched;
            lin_dims(&s->cfg, M2U_O, &out, &in);
            float *wo = malloc((size_t)out * in * sizeof(float));
            if (!wo) return m2u_fail("out of memory");
            /* always with the LoRA: at run time it acts on the constant too */
            int rc = eff_linear(s, t->layer, M2U_O, 1, wo);
            if (!rc) rc = adapter_const(s, t->layer, wo, dst, &touched);
            free(wo);
            return rc;
        }
        return 0;
    }
    case 4:
    case 5: return eff_norm(s, t->name, dst);
    }
    return m2u_fail("internal: tensor kind");
}

/* ---- output directories: built under a temp name, renamed into place -------------------------------- */

static int check_out(const m2u_export_options *o) {
    if (!o->out || !o->out[0]) return m2u_fail("--out is required");
    struct stat sb;
    if (stat(o->out, &sb) == 0 && !o->force)
        return m2u_fail("%s already exists; pass --force to replace it", o->out);
    return 0;
}

static char *tmp_dir_for(const char *out) {
    char buf[4200];
    snprintf(buf, sizeof buf, "%s.tmp.%ld", out, (long)getpid());
    return strdup(buf);
}

static int commit_dir(const char *tmp, const char *out) {
    char old[4200];
    snprintf(old, sizeof old, "%s.old.%ld", out, (long)getpid());
    struct stat sb;
    int had = stat(out, &sb) == 0;
    if (had && rename(out, old) != 0) return m2u_fail("%s: cannot move the old export aside: %s", out, strerror(errno));
    if (rename(tmp, out) != 0) {
        int e = errno;
        if (had) rename(old, out);
        return m2u_fail("%s: cannot rename %s into place: %s", out, tmp, strerror(e));
    }
    char *parent = m2u_path_dirname(out);
    if (parent) m2u_fsync_path(parent, 1);
    free(parent);
    if (had && m2u_rm_tree(old)) return m2u_fail("%s: the new export is in place but %s could not be removed", out, old);
    return 0;
}

static int make_tmp_dir(const char *out, char **tmp) {
    *tmp = tmp_dir_for(out);
    if (!*tmp) return m2u_fail("out of memory");
    m2u_rm_tree(*tmp);
    char *parent = m2u_path_dirname(out);
    if (parent && !m2u_is_dir(parent) && m2u_mkdir_p(parent)) {
        free(parent);
        return -1;
    }
    free(parent);
    if (mkdir(*tmp, 0755) != 0) return m2u_fail("%s: cannot create: %s", *tmp, strerror(errno));
    return 0;
}

static int write_text(const char *dir, const char *name, const char *text) {
    char *p = m2u_path_join(dir, name);
    if (!p) return m2u_fail("out of memory");
    int rc = m2u_write_file_atomic(p, text, strlen(text));
    free(p);
    return rc;
}

static int copy_file(const char *src_dir, const char *dst_dir, const char *name, int required) {
    char *src = m2u_path_join(src_dir, name), *dst = m2u_path_join(dst_dir, name), *data = NULL;
    size_t len = 0;
    int rc = 0;
    if (!src || !dst) rc = m2u_fail("out of memory");
    else if (!m2u_file_exists(src)) rc = required ? m2u_fail("%s: missing", src) : 0;
    else if (!(rc = m2u_read_file(src, &data, &len))) rc = m2u_write_file_atomic(dst, data, len);
    free(src);
    free(dst);
    free(data);
    return rc;
}

static char *json_print(const cJSON *j) {
    char *t = cJSON_Print(j);
    if (!t) return NULL;
    size_t n = strlen(t);
    char *u = realloc(t, n + 2);
    if (!u) {
        free(t);
        return NULL;
    }
    u[n] = '\n';
    u[n + 1] = '\0';
    return u;
}

/* tokenizer.json with the added tokens, tokenizer_config.json's added_tokens_decoder to
 * match, and the other tokenizer files as they are. */
static int write_tokenizer_files(src_t *s, const char *dir) {
    int rc = 0;
    if (s->tok_json) {
        char *t = json_print(s->tok_json);
        rc = t ? write_text(dir, "tokenizer.json", t) : m2u_fail("out of memory");
        free(t);
    }
    char *tcp = m2u_path_join(s->o->base, "tokenizer_config.json");
    if (!rc && tcp && m2u_file_exists(tcp)) {
        cJSON *tc = NULL;
        rc = json_load(tcp, &tc);
        cJSON *dec = rc ? NULL : cJSON_GetObjectItemCaseSensitive(tc, "added_tokens_decoder");
        for (int i = 0; !rc && cJSON_IsObject(dec) && i < s->n_added_aud; i++) {
            int id = s->first_added_id + i;
            char key[32];
            snprintf(key, sizeof key, "%d", id);
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "content", s->tok_str[id]);
            cJSON_AddBoolToObject(e, "lstrip", 0);
            cJSON_AddBoolToObject(e, "normalized", 1);
            cJSON_AddBoolToObject(e, "rstrip", 0);
            cJSON_AddBoolToObject(e, "single_word", 0);
            cJSON_AddBoolToObject(e, "special", 0);
            cJSON_AddItemToObject(dec, key, e);
        }
        char *t = rc ? NULL : json_print(tc);
        if (!rc) rc = t ? write_text(dir, "tokenizer_config.json", t) : m2u_fail("out of memory");
        free(t);
        cJSON_Delete(tc);
    }
    free(tcp);
    if (!rc) rc = copy_file(s->o->base, dir, "special_tokens_map.json", 0);
    if (!rc) rc = copy_file(s->o->base, dir, "tokenizer.model", 0);
    return rc;
}

static const char *dtype_json_name(m2u_dtype t) {
    return t == M2U_F16 ? "float16" : t == M2U_BF16 ? "bfloat16" : "float32";
}

/* ---- MERGED ------------------------------------------------------------------------------------------ */

static int pick_dtype(const src_t *s, const char *want, m2u_dtype *out) {
    if (!want || !strcmp(want, "auto")) {
        const m2u_st_tensor *e = m2u_st_find(s->base, "model.embed_tokens.weight");
        *out = e ? e->dtype : M2U_F32;
        if (*out != M2U_F16 && *out != M2U_BF16) *out = M2U_F32;
        return 0;
    }
    if (!strcmp(want, "f32")) *out = M2U_F32;
    else if (!strcmp(want, "f16")) *out = M2U_F16;
    else if (!strcmp(want, "bf16")) *out = M2U_BF16;
    else return m2u_fail("--dtype %s: expected auto, f32, f16 or bf16", want);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int export_merged(src_t *s, const char *dir, m2u_strbuf *rep) {
    const m2u_export_options *o = s->o;
    m2u_dtype dt = M2U_F32;
    if (pick_dtype(s, o->dtype, &dt)) return -1;
    hf_plan p = {0};
    if (plan_hf(s, &p)) return -1;
    uint64_t max_shard = o->max_shard_bytes ? o->max_shard_bytes : 5000000000ull;
    size_t es = m2u_dtype_size(dt);
    /* shards as huggingface_hub's split_state_dict_into_shards_factory groups them */
    int *shard_of = calloc((size_t)p.n, sizeof(int));
    int n_shards = 0, cur = -1;
    uint64_t cur_size = 0, total = 0;
    if (!shard_of) {
        free(p.t);
        return m2u_fail("out of memory");
    }
    for (int i = 0; i < p.n; i++) {
        uint64_t sz = (uint64_t)numel2(&p.t[i]) * es;
        total += sz;
        if (sz > max_shard) {
            shard_of[i] = -2 - i; /* its own shard, numbered below */
            continue;
        }
        if (cur < 0 || cur_size + sz > max_shard) {
            cur = i;
            cur_size = 0;
        }
        shard_of[i] = cur;
        cur_size += sz;
    }
    /* number shards in the order they are closed: an oversized tensor's own shard is closed at
       once, a regular shard when the next regular one opens or at the end */
    int *ids = malloc((size_t)p.n * sizeof(int)), *closed = malloc((size_t)p.n * sizeof(int));
    int n_closed = 0;
    if (!ids || !closed) {
        free(ids);
        free(closed);
        free(shard_of);
        free(p.t);
        return m2u_fail("out of memory");
    }
    /* simple, exact ordering: walk again, emitting a regular shard when it closes */
    n_closed = 0;
    int open_key = -1;
    for (int i = 0; i < p.n; i++) {
        int key = shard_of[i];
        if (key <= -2) {
            closed[n_closed++] = key;
            continue;
        }
        if (key != open_key) {
            if (open_key >= 0) closed[n_closed++] = open_key;
            open_key = key;
        }
    }
    if (open_key >= 0) closed[n_closed++] = open_key;
    n_shards = n_closed;
    for (int i = 0; i < p.n; i++)
        for (int q = 0; q < n_closed; q++)
            if (closed[q] == shard_of[i]) ids[i] = q;
    free(closed);
    free(shard_of);
    char **fname = calloc((size_t)n_shards, sizeof(char *));
    int rc = fname ? 0 : m2u_fail("out of memory");
    for (int q = 0; !rc && q < n_shards; q++) {
        char b[64];
        if (n_shards == 1) snprintf(b, sizeof b, "model.safetensors");
        else snprintf(b, sizeof b, "model-%05d-of-%05d.safetensors", q + 1, n_shards);
        if (!(fname[q] = strdup(b))) rc = m2u_fail("out of memory");
    }
    for (int q = 0; !rc && q < n_shards; q++) {
        int cnt = 0;
        for (int i = 0; i < p.n; i++) cnt += ids[i] == q;
        m2u_st_entry *e = calloc((size_t)cnt, sizeof *e);
        void **bufs = calloc((size_t)cnt, sizeof(void *));
        if (!e || !bufs) rc = m2u_fail("out of memory");
        int k = 0;
        for (int i = 0; !rc && i < p.n; i++) {
            if (ids[i] != q) continue;
            const hf_tensor *t = &p.t[i];
            int64_t n = numel2(t);
            float *f = malloc((size_t)n * sizeof(float));
            if (!f) {
                rc = m2u_fail("out of memory");
                break;
            }
            rc = compute_hf(s, &p, t, 1, f);
            if (!rc && dt != M2U_F32) {
                void *h = malloc((size_t)n * es);
                if (!h) rc = m2u_fail("out of memory");
                else rc = m2u_convert_from_f32(dt, f, h, (size_t)n);
                free(f);
                bufs[k] = h;
            } else {
                bufs[k] = f;
            }
            e[k].name = t->name;
            e[k].dtype = dt;
            e[k].ndim = t->ndim;
            e[k].shape[0] = t->shape[0];
            e[k].shape[1] = t->shape[1];
            e[k].data = bufs[k];
            k++;
        }
        if (!rc) {
            char *path = m2u_path_join(dir, fname[q]);
            rc = path ? m2u_st_write(path, e, k, NULL, NULL, 0) : m2u_fail("out of memory");
            free(path);
        }
        for (int i = 0; bufs && i < k; i++) free(bufs[i]);
        free(bufs);
        free(e);
    }
    if (!rc && n_shards > 1) { /* model.safetensors.index.json, as json.dumps(indent=2, sort_keys=True) */
        char **names = malloc((size_t)p.n * sizeof(char *));
        int *perm = malloc((size_t)p.n * sizeof(int));
        m2u_strbuf b = {0};
        if (!names || !perm) rc = m2u_fail("out of memory");
        for (int i = 0; !rc && i < p.n; i++) names[i] = p.t[i].name;
        if (!rc) qsort(names, (size_t)p.n, sizeof *names, cmp_str);
        if (!rc) {
            m2u_sb_printf(&b, "{\n  \"metadata\": {\n    \"total_size\": %llu\n  },\n  \"weight_map\": {\n",
                      (unsigned long long)total);
            for (int i = 0; i < p.n; i++) {
                int idx = (int)(((hf_tensor *)((char *)names[i] - offsetof(hf_tensor, name))) - p.t);
                m2u_sb_printf(&b, "    ");
                m2u_sb_json_str(&b, names[i]);
                m2u_sb_printf(&b, ": ");
                m2u_sb_json_str(&b, fname[ids[idx]]);
                m2u_sb_printf(&b, "%s\n", i + 1 < p.n ? "," : "");
            }
            m2u_sb_printf(&b, "  }\n}\n");
            rc = b.s && !b.oom ? write_text(dir, "model.safetensors.index.json", b.s) : m2u_fail("out of memory");
        }
        free(b.s);
        free(names);
        free(perm);
    }
    /* config.json: the base's, with the grown vocabulary, the bias flags and the dtype */
    if (!rc) {
        cJSON *cj = cJSON_Duplicate(s->cfg_json, 1);
        cJSON_ReplaceItemInObjectCaseSensitive(cj, "vocab_size", cJSON_CreateNumber(s->V));
        if (p.attn_bias != s->cfg.attention_bias) {
            cJSON_DeleteItemFromObjectCaseSensitive(cj, "attention_bias");
            cJSON_AddBoolToObject(cj, "attention_bias", 1);
        }
        if (p.mlp_bias != s->cfg.mlp_bias) {
            cJSON_DeleteItemFromObjectCaseSensitive(cj, "mlp_bias");
            cJSON_AddBoolToObject(cj, "mlp_bias", 1);
        }
        cJSON_DeleteItemFromObjectCaseSensitive(cj, "torch_dtype");
        cJSON_AddStringToObject(cj, "torch_dtype", dtype_json_name(dt));
        char *t = json_print(cj);
        rc = t ? write_text(dir, "config.json", t) : m2u_fail("out of memory");
        free(t);
        cJSON_Delete(cj);
    }
    if (!rc) rc = write_tokenizer_files(s, dir);
    if (!rc) rc = copy_file(o->base, dir, "generation_config.json", 0);
    if (!rc)
        m2u_sb_printf(rep, "merged: %d tensors (%s) in %d shard(s), vocab %d%s%s\n", p.n, dtype_json_name(dt), n_shards,
                  s->V, p.attn_bias && !s->cfg.attention_bias ? ", attention_bias on" : "",
                  p.mlp_bias && !s->cfg.mlp_bias ? ", mlp_bias on" : "");
    if (!rc && s->n_layers_adapter)
        m2u_sb_printf(rep, "merged: the text-only adapter term of the last %d layers (tanh(gate) * W_v prefix_query) is "
                       "folded into o_proj.bias; music/image/video inputs need the m2ugen export\n",
                  s->n_layers_adapter);
    for (int q = 0; fname && q < n_shards; q++) free(fname[q]);
    free(fname);
    free(ids);
    free(p.t);
    return rc;
}

/* ---- PEFT ---------------------------------------------------------------------------------------------- */

static int export_peft(src_t *s, const char *dir, m2u_strbuf *rep) {
    if (!s->r) return m2u_fail("%s: the run has no LoRA tensors: nothing for a PEFT adapter", s->tr_path);
    int n_tr = m2u_st_count(s->tr), C = s->cfg.hidden_size;
    m2u_st_entry *e = calloc((size_t)n_tr + 2, sizeof *e);
    float **bufs = calloc((size_t)n_tr + 2, sizeof(float *));
    int n = 0, rc = (e && bufs) ? 0 : m2u_fail("out of memory");
    for (int i = 0; !rc && i < n_tr; i++) {
        const m2u_st_tensor *t = m2u_st_at(s->tr, i);
        if (!strstr(t->name, ".lora_A.weight") && !strstr(t->name, ".lora_B.weight")) continue;
        int err = 0;
        bufs[n] = tr_get(s, t->name, -1, &err);
        if (!bufs[n]) {
            rc = err ? -1 : m2u_fail("internal");
            break;
        }
        e[n].name = t->name;
        e[n].dtype = M2U_F32;
        e[n].ndim = t->ndim;
        memcpy(e[n].shape, t->shape, sizeof e[n].shape);
        e[n].data = bufs[n];
        n++;
    }
    /* resized / trained embeddings: peft saves the whole matrices under their original names */
    int save_emb = s->n_rows > 0 || s->V != s->cfg.vocab_size;
    for (int head = 0; !rc && save_emb && head < 2; head++) {
        float *m = malloc((size_t)s->V * C * sizeof(float));
        if (!m) {
            rc = m2u_fail("out of memory");
            break;
        }
        rc = eff_vocab_matrix(s, head, m);
        bufs[n] = m;
        e[n].name = head ? "base_model.model.lm_head.weight" : "base_model.model.model.embed_tokens.weight";
        e[n].dtype = M2U_F32;
        e[n].ndim = 2;
        e[n].shape[0] = s->V;
        e[n].shape[1] = C;
        e[n].data = m;
        n++;
    }
    if (!rc) {
        char *path = m2u_path_join(dir, "adapter_model.safetensors");
        rc = path ? m2u_st_write(path, e, n, NULL, NULL, 0) : m2u_fail("out of memory");
        free(path);
    }
    for (int i = 0; bufs && i < n; i++) free(bufs[i]);
    free(bufs);
    free(e);
    if (rc) return -1;
    /* m2u trains plain alpha/r (no rslora) */
    cJSON *root = m2u_peft_config_new(s->o->base_name ? s->o->base_name : s->o->base, s->r, s->alpha,
                                      s->has_tc ? s->tc.lora.dropout : 0.0, s->lora_targets, 0);
    if (!root) return m2u_fail("out of memory");
    char *text = json_print(root);
    cJSON_Delete(root);
    rc = text ? write_text(dir, "adapter_config.json", text) : m2u_fail("out of memory");
    free(text);
    if (!rc && save_emb) rc = write_tokenizer_files(s, dir);
    if (!rc)
        m2u_sb_printf(rep, "peft: %d LoRA tensors (r %d, alpha %g)%s\n", n - (save_emb ? 2 : 0), s->r, (double)s->alpha,
                  save_emb ? "; embed_tokens and lm_head saved whole (resized/trained vocabulary): resize the base "
                             "model's embeddings to the tokenizer's length before PeftModel.from_pretrained"
                           : "");
    return rc;
}

/* ---- GGUF ------------------------------------------------------------------------------------------------ */

/* HF rotate_half rows -> Meta interleaved rows, per head of hd rows (llama.cpp LlamaModel.permute):
 * Meta row h*hd + 2i = HF row h*hd + i, Meta row h*hd + 2i + 1 = HF row h*hd + hd/2 + i. */
static void hf_to_meta_rows(const float *src, float *dst, int rows, int cols, int hd) {
    int half = hd / 2;
    for (int r = 0; r < rows; r++) {
        int h = r / hd, i = r % hd, mr = h * hd + (i < half ? 2 * i : 2 * (i - half) + 1);
        memcpy(dst + (size_t)mr * cols, src + (size_t)r * cols, (size_t)cols * sizeof(float));
    }
}

static int ggml_from_name(const char *want, int def, int *out) {
    if (!want || !strcmp(want, "auto")) *out = def;
    else if (!strcmp(want, "f32")) *out = M2U_GGML_F32;
    else if (!strcmp(want, "f16")) *out = M2U_GGML_F16;
    else if (!strcmp(want, "bf16")) *out = M2U_GGML_BF16;
    else return m2u_fail("--dtype %s: expected f32, f16, bf16 or auto", want);
    return 0;
}

static int write_gguf_tensor(m2u_gguf_writer *w, int i, int type, const float *f, size_t n) {
    if (type == M2U_GGML_F32) return m2u_gguf_write_data(w, i, f, n * 4);
    void *h = malloc(n * 2 + 1);
    if (!h) return m2u_fail("out of memory");
    int rc = m2u_convert_from_f32(type == M2U_GGML_F16 ? M2U_F16 : M2U_BF16, f, h, n);
    if (!rc) rc = m2u_gguf_write_data(w, i, h, n * 2);
    free(h);
    return rc;
}

static const char *json_str(const cJSON *o, const char *key) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(j)) return j->valuestring;
    if (cJSON_IsObject(j)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "content");
        if (cJSON_IsString(c)) return c->valuestring;
    }
    return NULL;
}

static int is_byte_token(const char *t) {
    if (strlen(t) != 6 || strncmp(t, "<0x", 3) || t[5] != '>') return 0;
    for (int i = 3; i < 5; i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f') || (t[i] >= 'A' && t[i] <= 'F'))) return 0;
    return 1;
}

/* tokenizer.ggml.scores.  llama.cpp's "llama" (SPM) tokenizer does not read merges: it repeatedly
 * merges the adjacent pair whose concatenation is a vocabulary piece of the highest score (ties:
 * leftmost).  gguf-py's LlamaHfVocab, used when there is no tokenizer.model, writes -1000 for every
 * piece, so llama.cpp then merges the leftmost pair it finds and its ids differ from HF's.  Scoring
 * each piece by the rank of the first merge that makes it, -rank, gives the SPM loop HF's BPE merge
 * order.  This needs only tokenizer.json (m2u checkpoints carry no tokenizer.model), and follows the
 * merges HF itself uses even where a tokenizer.model beside them disagrees.  It is exact when every
 * split of a piece into two pieces is a listed merge (*n_unlisted counts the pieces where not; 0 for
 * SentencePiece-converted tokenizers like LLaMA's) and a piece's merges are consecutive in rank
 * (LLaMA-2's are, except for 14 runs of U+2581, whose interleaved merges still give HF's ids on every
 * whitespace run tried: tests/make_gguf_vocab_fixtures.py, tests/eval/test_gguf_vocab.c).  Pieces
 * no merge makes (characters, bytes, special and added tokens) score below every merged piece, so a
 * pair concatenating to one of them merges last. */
static int gguf_scores(const src_t *s, float *scores, int n, int64_t *n_unlisted) {
    m2u_tokenizer *tok;
    if (m2u_tokenizer_load(s->tok_path, &tok)) return -1;
    int32_t *rank = malloc((size_t)(n ? n : 1) * sizeof *rank);
    int rc = rank ? m2u_tokenizer_merge_ranks(tok, rank, n, n_unlisted) : m2u_fail("out of memory");
    m2u_tokenizer_free(tok);
    int32_t max_rank = -1;
    for (int i = 0; !rc && i < n; i++)
        if (rank[i] > max_rank) max_rank = rank[i];
    if (!rc && max_rank >= (1 << 24))
        rc = m2u_fail("%s: %d merges do not fit float32 scores exactly", s->tok_path, (int)max_rank + 1);
    for (int i = 0; !rc && i < n; i++) scores[i] = -(float)(rank[i] >= 0 ? rank[i] : max_rank + 1);
    free(rank);
    return rc;
}

/* tokenizer.ggml.* as convert_hf_to_gguf's _set_vocab_llama_hf (gguf-py LlamaHfVocab + SpecialVocab),
 * except the scores (gguf_scores) */
static int gguf_vocab(src_t *s, m2u_gguf_writer *w, int64_t *n_unlisted) {
    if (!s->tok_json) return m2u_fail("%s/tokenizer.json: missing (a GGUF model carries its vocabulary)", s->o->base);
    char *tcp = m2u_path_join(s->o->base, "tokenizer_config.json");
    cJSON *tc = NULL;
    int rc = 0;
    if (tcp && m2u_file_exists(tcp)) rc = json_load(tcp, &tc);
    free(tcp);
    if (rc) return -1;
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(s->tok_json, "added_tokens");
    /* the base vocabulary size as transformers counts it (model vocab without added tokens) */
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s->tok_json, "model"), "vocab");
    int base_size = cJSON_GetArraySize(vocab);
    int n = s->V > s->n_tok ? s->V : s->n_tok;
    const char **tok = calloc((size_t)n, sizeof(char *));
    float *scores = malloc((size_t)n * sizeof(float));
    int32_t *types = malloc((size_t)n * sizeof(int32_t));
    char (*pads)[24] = calloc((size_t)n, 24);
    int *special = calloc((size_t)n, sizeof(int));
    if (!tok || !scores || !types || !pads || !special) rc = m2u_fail("out of memory");
    static const char *const typs[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
    int special_id[7];
    for (int k = 0; k < 7; k++) special_id[k] = -1;
    /* all_special_ids: the special tokens the tokenizer config names */
    for (int k = 0; !rc && tc && k < 7; k++) {
        char key[32];
        snprintf(key, sizeof key, "%s_token", typs[k]);
        const char *c = json_str(tc, key);
        if (!c) continue;
        for (int i = 0; i < s->n_tok; i++)
            if (s->tok_str[i] && !strcmp(s->tok_str[i], c)) {
                special[i] = 1;
                break;
            }
        const cJSON *e;
        cJSON_ArrayForEach(e, added) { /* SpecialVocab: the id of the added token with that content */
            const char *ac = json_str(e, "content");
            if (ac && !strcmp(ac, c)) {
                special_id[k] = cJSON_GetObjectItemCaseSensitive(e, "id")->valueint;
                break;
            }
        }
    }
    const cJSON *ast = tc ? cJSON_GetObjectItemCaseSensitive(tc, "additional_special_tokens") : NULL;
    const cJSON *e;
    cJSON_ArrayForEach(e, ast) {
        const char *c = cJSON_IsString(e) ? e->valuestring : json_str(e, "content");
        for (int i = 0; c && i < s->n_tok; i++)
            if (s->tok_str[i] && !strcmp(s->tok_str[i], c)) special[i] = 1;
    }
    if (!tc) { /* no tokenizer config: the added tokens marked special */
        cJSON_ArrayForEach(e, added) if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "special")))
            special[cJSON_GetObjectItemCaseSensitive(e, "id")->valueint] = 1;
    }
    if (!rc) rc = gguf_scores(s, scores, n, n_unlisted);
    for (int i = 0; !rc && i < n; i++) {
        if (i >= s->n_tok || !s->tok_str[i]) {
            snprintf(pads[i], sizeof pads[i], "[PAD%d]", i);
            tok[i] = pads[i];
            types[i] = M2U_GGUF_TOKEN_UNUSED;
            continue;
        }
        tok[i] = s->tok_str[i];
        if (i >= base_size) types[i] = special[i] ? M2U_GGUF_TOKEN_CONTROL : M2U_GGUF_TOKEN_USER_DEFINED;
        else if (is_byte_token(tok[i])) types[i] = M2U_GGUF_TOKEN_BYTE;
        else types[i] = special[i] ? M2U_GGUF_TOKEN_CONTROL : M2U_GGUF_TOKEN_NORMAL;
    }
    if (!rc) rc = m2u_gguf_add_str(w, "tokenizer.ggml.model", "llama");
    if (!rc) rc = m2u_gguf_add_str(w, "tokenizer.ggml.pre", "default");
    if (!rc) rc = m2u_gguf_add_str_array(w, "tokenizer.ggml.tokens", tok, (uint64_t)n);
    if (!rc) rc = m2u_gguf_add_array(w, "tokenizer.ggml.scores", M2U_GGUF_FLOAT32, scores, (uint64_t)n);
    if (!rc) rc = m2u_gguf_add_array(w, "tokenizer.ggml.token_type", M2U_GGUF_INT32, types, (uint64_t)n);
    /* special token ids: tokenizer_config's first, then config.json's <typ>_token_id */
    int order[7], n_order = 0;
    for (int k = 0; k < 7; k++)
        if (special_id[k] >= 0 && special_id[k] < n) order[n_order++] = k;
    for (int k = 0; k < 7; k++) {
        if (special_id[k] >= 0) continue;
        char key[32];
        snprintf(key, sizeof key, "%s_token_id", typs[k]);
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(s->cfg_json, key);
        if (cJSON_IsArray(j)) j = cJSON_GetArrayItem(j, 0);
        if (cJSON_IsNumber(j) && j->valueint >= 0 && j->valueint < n) {
            special_id[k] = j->valueint;
            order[n_order++] = k;
        }
    }
    for (int q = 0; !rc && q < n_order; q++) {
        char key[64];
        static const char *const gguf_typ[] = {"bos", "eos", "unknown", "seperator", "padding", "cls", "mask"};
        snprintf(key, sizeof key, "tokenizer.ggml.%s_token_id", gguf_typ[order[q]]);
        rc = m2u_gguf_add_u32(w, key, (uint32_t)special_id[order[q]]);
    }
    for (int k = 0; !rc && tc && k < 7; k++) {
        char key[64];
        snprintf(key, sizeof key, "add_%s_token", typs[k]);
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(tc, key);
        if (!cJSON_IsBool(j)) continue;
        snprintf(key, sizeof key, "tokenizer.ggml.add_%s_token", typs[k]);
        rc = m2u_gguf_add_bool(w, key, cJSON_IsTrue(j));
    }
    const char *tmpl = tc ? json_str(tc, "chat_template") : NULL;
    if (!rc && tmpl) rc = m2u_gguf_add_str(w, "tokenizer.chat_template", tmpl);
    free(tok);
    free(scores);
    free(types);
    free(pads);
    free(special);
    cJSON_Delete(tc);
    return rc;
}

static void gguf_name_of(const hf_tensor *t, char *out, size_t n) {
    switch (t->kind) {
    case 0: snprintf(out, n, "token_embd.weight"); break;
    case 1: snprintf(out, n, "output.weight"); break;
    case 2: snprintf(out, n, "blk.%d.%s.weight", t->layer, k_gguf_lin[t->lin]); break;
    case 3: snprintf(out, n, "blk.%d.%s.bias", t->layer, k_gguf_lin[t->lin]); break;
    case 4:
        snprintf(out, n, "blk.%d.%s.weight", t->layer, strstr(t->name, "input_layernorm") ? "attn_norm" : "ffn_norm");
        break;
    default: snprintf(out, n, "output_norm.weight"); break;
    }
}

static const char *base_label(const src_t *s) {
    const char *b = s->o->base_name ? s->o->base_name : s->o->base;
    const char *slash = strrchr(b, '/');
    return slash && slash[1] ? slash + 1 : b;
}

static int export_gguf(src_t *s, m2u_strbuf *rep) {
    const m2u_export_options *o = s->o;
    const m2u_llama_config *c = &s->cfg;
    int wtype;
    if (ggml_from_name(o->dtype, M2U_GGML_F16, &wtype)) return -1;
    if (o->dtype && !strcmp(o->dtype, "auto")) { /* the base's storage type */
        const m2u_st_tensor *e = m2u_st_find(s->base, "model.embed_tokens.weight");
        wtype = e && e->dtype == M2U_F16 ? M2U_GGML_F16 : e && e->dtype == M2U_BF16 ? M2U_GGML_BF16 : M2U_GGML_F32;
    }
    hf_plan p = {0};
    if (plan_hf(s, &p)) return -1;
    m2u_gguf_writer *w;
    if (m2u_gguf_new(&w)) {
        free(p.t);
        return -1;
    }
    int rc = 0;
    rc = m2u_gguf_add_str(w, "general.architecture", "llama");
    if (!rc) rc = m2u_gguf_add_str(w, "general.type", "model");
    if (!rc) rc = m2u_gguf_add_str(w, "general.name", base_label(s));
    if (!rc) rc = m2u_gguf_add_u32(w, "llama.block_count", (uint32_t)c->n_layers);
    if (!rc) rc = m2u_gguf_add_u32(w, "llama.context_length", (uint32_t)c->max_position_embeddings);
    if (!rc) rc = m2u_gguf_add_u32(w, "llama.embedding_length", (uint32_t)c->hidden_size);
    if (!rc) rc = m2u_gguf_add_u32(w, "llama.feed_forward_length", (uint32_t)c->intermediate_size);
    if (!rc) rc = m2u_gguf_add_u32(w, "llama.attention.head_count", (uint32_t)c->n_heads);
    if (!rc) rc = m2u_gguf_add_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads);
    if (!rc) rc = m2u_gguf_add_f32(w, "llama.rope.freq_base", c->rope_theta);
    if (!rc) rc = m2u_gguf_add_f32(w, "llama.attention.layer_norm_rms_epsilon", c->rms_norm_eps);
    if (!rc) rc = m2u_gguf_add_u32(w, "general.file_type", wtype == M2U_GGML_F32 ? 0 : wtype == M2U_GGML_F16 ? 1 : 32);
    if (!rc) rc = m2u_gguf_add_u32(w, "llama.vocab_size", (uint32_t)s->V);
    if (!rc) rc = m2u_gguf_add_u32(w, "llama.rope.dimension_count", (uint32_t)c->head_dim);
    if (!rc && c->head_dim * c->n_heads != c->hidden_size) {
        rc = m2u_gguf_add_u32(w, "llama.attention.key_length", (uint32_t)c->head_dim);
        if (!rc) rc = m2u_gguf_add_u32(w, "llama.attention.value_length", (uint32_t)c->head_dim);
    }
    int64_t n_unlisted = 0;
    if (!rc) rc = gguf_vocab(s, w, &n_unlisted);
    if (!rc) rc = m2u_gguf_add_u32(w, "general.quantization_version", 2);
    int *types = calloc((size_t)p.n, sizeof(int));
    if (!types && !rc) rc = m2u_fail("out of memory");
    for (int i = 0; !rc && i < p.n; i++) {
        const hf_tensor *t = &p.t[i];
        char gname[96];
        gguf_name_of(t, gname, sizeof gname);
        int64_t ne[2] = {t->ndim == 2 ? t->shape[1] : t->shape[0], t->shape[0]};
        types[i] = t->ndim == 2 ? wtype : M2U_GGML_F32; /* 1-D tensors stay F32, as the converter keeps them */
        rc = m2u_gguf_add_tensor_info(w, gname, types[i], t->ndim, ne);
    }
    if (!rc) rc = m2u_gguf_begin(w, o->out);
    for (int i = 0; !rc && i < p.n; i++) {
        const hf_tensor *t = &p.t[i];
        int64_t n = numel2(t);
        float *f = malloc((size_t)n * sizeof(float)), *g = NULL;
        if (!f) {
            rc = m2u_fail("out of memory");
            break;
        }
        rc = compute_hf(s, &p, t, o->merge_lora, f);
        int permute = !rc && (t->kind == 2 || t->kind == 3) && (t->lin == M2U_Q || t->lin == M2U_K);
        if (permute) {
            g = malloc((size_t)n * sizeof(float));
            if (!g) rc = m2u_fail("out of memory");
            else hf_to_meta_rows(f, g, (int)t->shape[0], t->ndim == 2 ? (int)t->shape[1] : 1, c->head_dim);
        }
        if (!rc) rc = write_gguf_tensor(w, i, types[i], g ? g : f, (size_t)n);
        free(f);
        free(g);
    }
    if (!rc) rc = m2u_gguf_finish(w);
    if (!rc)
        m2u_sb_printf(rep, "gguf: %d tensors, vocab %d, %s%s\n", p.n, s->V, wtype == M2U_GGML_F32 ? "f32" : wtype == M2U_GGML_F16 ? "f16" : "bf16",
                  s->r ? (o->merge_lora ? ", LoRA merged" : ", LoRA left out (apply the gguf-lora export)") : "");
    if (!rc && n_unlisted)
        m2u_sb_printf(rep,
                  "gguf: warning: %lld vocabulary pieces are two pieces joined by a pair that model.merges does "
                  "not list; llama.cpp's tokenizer merges such pairs, so text containing them can get other ids "
                  "than HF gives\n",
                  (long long)n_unlisted);
    free(types);
    free(p.t);
    m2u_gguf_free(w);
    return rc;
}

static int export_gguf_lora(src_t *s, m2u_strbuf *rep) {
    const m2u_export_options *o = s->o;
    const m2u_llama_config *c = &s->cfg;
    if (!s->r) return m2u_fail("%s: the run has no LoRA tensors", s->tr_path);
    int wtype;
    if (ggml_from_name(o->dtype, M2U_GGML_F32, &wtype)) return -1;
    m2u_gguf_writer *w;
    if (m2u_gguf_new(&w)) return -1;
    int rc = m2u_gguf_add_str(w, "general.architecture", "llama");
    if (!rc) rc = m2u_gguf_add_str(w, "general.type", "adapter");
    if (!rc) rc = m2u_gguf_add_str(w, "general.name", base_label(s));
    if (!rc) rc = m2u_gguf_add_u32(w, "general.file_type", wtype == M2U_GGML_F32 ? 0 : wtype == M2U_GGML_F16 ? 1 : 32);
    if (!rc) rc = m2u_gguf_add_str(w, "adapter.type", "lora");
    if (!rc) rc = m2u_gguf_add_f32(w, "adapter.lora.alpha", s->alpha);
    if (!rc) rc = m2u_gguf_add_u32(w, "general.quantization_version", 2);
    /* tensors in the order of the PEFT file (sorted names), as the converter iterates it */
    int n_tr = m2u_st_count(s->tr), n = 0;
    int *idx = malloc((size_t)(n_tr ? n_tr : 1) * sizeof(int));
    if (!idx && !rc) rc = m2u_fail("out of memory");
    for (int i = 0; !rc && i < n_tr; i++) {
        const m2u_st_tensor *t = m2u_st_at(s->tr, i);
        int l, k;
        char parent[32], proj[32], ab;
        if (sscanf(t->name, "base_model.model.model.layers.%d.%31[^.].%31[^.].lora_%c.weight", &l, parent, proj,
                   &ab) != 4)
            continue;
        for (k = 0; k < M2U_N_LINEAR && strcmp(proj, m2u_linear_names[k]); k++) {}
        if (k == M2U_N_LINEAR) {
            rc = m2u_fail("%s: unexpected LoRA tensor %s", s->tr_path, t->name);
            break;
        }
        char gname[96];
        snprintf(gname, sizeof gname, "blk.%d.%s.weight.lora_%c", l, k_gguf_lin[k], ab == 'A' ? 'a' : 'b');
        int64_t ne[2] = {t->shape[1], t->shape[0]};
        rc = m2u_gguf_add_tensor_info(w, gname, wtype, 2, ne);
        idx[n++] = i;
    }
    if (!rc) rc = m2u_gguf_begin(w, o->out);
    for (int q = 0; !rc && q < n; q++) {
        const m2u_st_tensor *t = m2u_st_at(s->tr, idx[q]);
        int err = 0;
        float *f = tr_get(s, t->name, -1, &err), *g = NULL;
        if (!f) {
            rc = err ? -1 : m2u_fail("internal");
            break;
        }
        int is_b = strstr(t->name, ".lora_B.") != NULL;
        int qk = strstr(t->name, ".q_proj.") || strstr(t->name, ".k_proj.");
        if (is_b && qk) {
            g = malloc((size_t)t->numel * sizeof(float));
            if (!g) rc = m2u_fail("out of memory");
            else hf_to_meta_rows(f, g, (int)t->shape[0], (int)t->shape[1], c->head_dim);
        }
        if (!rc) rc = write_gguf_tensor(w, q, wtype, g ? g : f, (size_t)t->numel);
        free(f);
        free(g);
    }
    if (!rc) rc = m2u_gguf_finish(w);
    if (!rc)
        m2u_sb_printf(rep, "gguf-lora: %d tensors (r %d, alpha %g)\n", n, s->r, (double)s->alpha);
    free(idx);
    m2u_gguf_free(w);
    return rc;
}

/* ---- M2UGEN ------------------------------------------------------------------------------------------------ */

typedef struct {
    char *name;
    m2u_st_entry e;
    float *data;
} m_entry;

static int cmp_mentry(const void *a, const void *b) { return strcmp(((const m_entry *)a)->name, ((const m_entry *)b)->name); }

static int export_m2ugen(src_t *s, const char *dir, m2u_strbuf *rep) {
    const m2u_llama_config *c = &s->cfg;
    int n_tr = m2u_st_count(s->tr), C = c->hidden_size, hd = c->head_dim;
    m_entry *me = calloc((size_t)n_tr + 4, sizeof *me);
    if (!me) return m2u_fail("out of memory");
    int n = 0, rc = 0;
    int have_rows = 0;
    for (int i = 0; !rc && i < n_tr; i++) {
        const m2u_st_tensor *t = m2u_st_at(s->tr, i);
        char name[512], parent[32], proj[32], ab;
        int l, k = -1, permute = 0;
        float mul = 1.0f;
        int64_t shape[4] = {0};
        int ndim = t->ndim;
        memcpy(shape, t->shape, (size_t)(ndim < 4 ? ndim : 4) * sizeof(int64_t));
        if (sscanf(t->name, "base_model.model.model.layers.%d.%31[^.].%31[^.].lora_%c.weight", &l, parent, proj, &ab) ==
            4) {
            for (k = 0; k < M2U_N_LINEAR && strcmp(proj, m2u_linear_names[k]); k++) {}
            if (k == M2U_N_LINEAR) {
                rc = m2u_fail("%s: unexpected tensor %s", s->tr_path, t->name);
                break;
            }
            snprintf(name, sizeof name, "llama.layers.%d.%s.lora_%s_%s.weight", l, k_meta_part[k], k_meta_name[k],
                     ab == 'A' ? "l1" : "l2");
            if (ab == 'B') mul = s->scale; /* M2UGen's LoRA has scale 1 */
            permute = ab == 'B' && (k == M2U_Q || k == M2U_K);
        } else if (sscanf(t->name, "model.layers.%d.%31[^.].%31[^.].bia%c", &l, parent, proj, &ab) == 4 &&
                   !strcmp(t->name + strlen(t->name) - 5, ".bias")) {
            for (k = 0; k < M2U_N_LINEAR && strcmp(proj, m2u_linear_names[k]); k++) {}
            if (k == M2U_N_LINEAR) {
                rc = m2u_fail("%s: unexpected tensor %s", s->tr_path, t->name);
                break;
            }
            snprintf(name, sizeof name, "llama.layers.%d.%s.%s.bias", l, k_meta_part[k], k_meta_name[k]);
            permute = k == M2U_Q || k == M2U_K;
        } else if (sscanf(t->name, "model.layers.%d.input_layernorm.weigh%c", &l, &ab) == 2) {
            snprintf(name, sizeof name, "llama.layers.%d.attention_norm.weight", l);
        } else if (sscanf(t->name, "model.layers.%d.post_attention_layernorm.weigh%c", &l, &ab) == 2) {
            snprintf(name, sizeof name, "llama.layers.%d.ffn_norm.weight", l);
        } else if (sscanf(t->name, "model.layers.%d.self_attn.gat%c", &l, &ab) == 2) {
            snprintf(name, sizeof name, "llama.layers.%d.attention.gate", l);
            ndim = 4; /* [1, n_heads, 1, 1] */
            shape[0] = 1, shape[1] = t->numel, shape[2] = 1, shape[3] = 1;
        } else if (!strcmp(t->name, "model.norm.weight")) {
            snprintf(name, sizeof name, "llama.norm.weight");
        } else if (!strcmp(t->name, "model.embed_tokens.weight.rows") || !strcmp(t->name, "lm_head.weight.rows")) {
            have_rows = 1;
            continue; /* written whole below */
        } else {
            snprintf(name, sizeof name, "%s", t->name); /* prefix_query, adapters, projector: M2UGen's own names */
            size_t ln = strlen(name);
            if (ln >= 10 && !strcmp(name + ln - 10, "agg.weight") && ndim == 2 && shape[0] == 1) {
                ndim = 3; /* Conv1d(n, 1, 1): [1, n, 1] */
                shape[2] = 1;
            } else if (ln >= 10 && !strcmp(name + ln - 10, "query_embs") && ndim == 2) {
                ndim = 3; /* [1, n_out, d_model] */
                shape[2] = shape[1];
                shape[1] = shape[0];
                shape[0] = 1;
            }
        }
        int err = 0;
        float *f = tr_get(s, t->name, -1, &err);
        if (!f) {
            rc = err ? -1 : m2u_fail("internal");
            break;
        }
        if (mul != 1.0f)
            for (int64_t q = 0; q < t->numel; q++) f[q] *= mul;
        if (permute) {
            float *g = malloc((size_t)t->numel * sizeof(float));
            if (!g) {
                free(f);
                rc = m2u_fail("out of memory");
                break;
            }
            hf_to_meta_rows(f, g, (int)t->shape[0], t->ndim == 2 ? (int)t->shape[1] : 1, hd);
            free(f);
            f = g;
        }
        me[n].name = strdup(name);
        me[n].data = f;
        me[n].e.dtype = M2U_F32;
        me[n].e.ndim = ndim;
        memcpy(me[n].e.shape, shape, sizeof shape);
        if (!me[n].name) rc = m2u_fail("out of memory");
        n++;
    }
    /* tok_embeddings (and an untied output) whole, [V, C], as M2UGen keeps them */
    for (int head = 0; !rc && have_rows && head < 2; head++) {
        if (head && c->tie_word_embeddings) break;
        float *m = malloc((size_t)s->V * C * sizeof(float));
        if (!m) {
            rc = m2u_fail("out of memory");
            break;
        }
        rc = eff_vocab_matrix(s, head, m);
        me[n].name = strdup(head ? "llama.output.weight" : "llama.tok_embeddings.weight");
        me[n].data = m;
        me[n].e.dtype = M2U_F32;
        me[n].e.ndim = 2;
        me[n].e.shape[0] = s->V;
        me[n].e.shape[1] = C;
        n++;
    }
    if (!rc) {
        qsort(me, (size_t)n, sizeof *me, cmp_mentry);
        m2u_st_entry *e = calloc((size_t)n + 1, sizeof *e);
        if (!e) rc = m2u_fail("out of memory");
        for (int i = 0; !rc && i < n; i++) {
            e[i] = me[i].e;
            e[i].name = me[i].name;
            e[i].data = me[i].data;
        }
        char *pth = rc ? NULL : m2u_path_join(dir, "checkpoint.pth");
        char *sft = rc ? NULL : m2u_path_join(dir, "checkpoint.safetensors");
        if (!rc && (!pth || !sft)) rc = m2u_fail("out of memory");
        if (!rc) rc = m2u_pth_write(pth, e, n, "model");
        if (!rc) rc = m2u_st_write(sft, e, n, NULL, NULL, 0);
        free(pth);
        free(sft);
        free(e);
    }
    if (!rc)
        m2u_sb_printf(rep, "m2ugen: %d tensors in M2UGen's names (Meta RoPE layout%s) -> checkpoint.pth, "
                       "checkpoint.safetensors\n",
                  n, s->r ? ", LoRA scale folded into lora_*_l2" : "");
    for (int i = 0; i < n; i++) {
        free(me[i].name);
        free(me[i].data);
    }
    free(me);
    return rc;
}

/* ---- entry point -------------------------------------------------------------------------------------------- */

int m2u_export_kind_from_name(const char *name) {
    static const char *const names[] = {"peft", "merged", "gguf", "gguf-lora", "m2ugen"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

int m2u_export(m2u_export_kind kind, const m2u_export_options *o, char **report) {
    if (report) *report = NULL;
    if (check_out(o)) return -1;
    src_t s;
    int rc = src_open(&s, o, kind != M2U_EXPORT_GGUF);
    m2u_strbuf rep = {0};
    int is_dir = kind == M2U_EXPORT_PEFT || kind == M2U_EXPORT_MERGED || kind == M2U_EXPORT_M2UGEN;
    char *tmp = NULL;
    if (!rc && is_dir) rc = make_tmp_dir(o->out, &tmp);
    if (!rc && !is_dir) {
        char *parent = m2u_path_dirname(o->out);
        if (parent && !m2u_is_dir(parent)) rc = m2u_mkdir_p(parent);
        free(parent);
    }
    if (!rc) {
        switch (kind) {
        case M2U_EXPORT_PEFT: rc = export_peft(&s, tmp, &rep); break;
        case M2U_EXPORT_MERGED: rc = export_merged(&s, tmp, &rep); break;
        case M2U_EXPORT_GGUF: rc = export_gguf(&s, &rep); break;
        case M2U_EXPORT_GGUF_LORA: rc = export_gguf_lora(&s, &rep); break;
        case M2U_EXPORT_M2UGEN:
            rc = s.tr ? export_m2ugen(&s, tmp, &rep) : m2u_fail("--run is required");
            break;
        default: rc = m2u_fail("unknown export kind");
        }
    }
    if (!rc && is_dir) rc = commit_dir(tmp, o->out);
    if (rc && tmp) m2u_rm_tree(tmp);
    if (!rc && s.tr) { /* what the format had no place for */
        int n_left = 0;
        for (int i = 0; i < m2u_st_count(s.tr); i++)
            if (!s.used[i]) {
                if (n_left < 12) m2u_sb_printf(&rep, "  not exported: %s\n", m2u_st_at(s.tr, i)->name);
                n_left++;
            }
        if (n_left > 12) m2u_sb_printf(&rep, "  ... and %d more\n", n_left - 12);
        if (n_left)
            m2u_sb_printf(&rep, "%d of %d trainable tensors have no place in this format (see --help)\n", n_left,
                      m2u_st_count(s.tr));
        m2u_sb_printf(&rep, "source: %s\n", s.tr_path);
    }
    free(tmp);
    src_free(&s);
    if (rc) {
        free(rep.s);
        return -1;
    }
    if (report) *report = rep.s;
    else free(rep.s);
    return 0;
}
