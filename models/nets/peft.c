#include "peft.h"

#include "fileio.h"
#include "llama_config.h"
#include "m2u_error.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

static int is_null_or_empty(const cJSON *j) {
    return !j || cJSON_IsNull(j) || (cJSON_IsArray(j) && cJSON_GetArraySize(j) == 0) ||
           (cJSON_IsObject(j) && !j->child);
}

static int parse(const cJSON *root, const char *path, m2u_train_spec *spec) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "peft_type");
    if (!cJSON_IsString(t) || strcmp(t->valuestring, "LORA") != 0)
        return m2u_fail("%s: peft_type must be \"LORA\"", path);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "r");
    /* range first: converting a double beyond int's range to int is undefined */
    if (!cJSON_IsNumber(r) || !(r->valuedouble >= 1 && r->valuedouble <= INT_MAX) ||
        r->valuedouble != (int)r->valuedouble)
        return m2u_fail("%s: r must be a positive integer", path);
    spec->lora_r = r->valueint;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "lora_alpha");
    spec->lora_alpha = cJSON_IsNumber(a) ? (float)a->valuedouble : 8.0f;
    if (a && !cJSON_IsNumber(a)) return m2u_fail("%s: lora_alpha must be a number", path);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "lora_dropout");
    if (d && !cJSON_IsNumber(d)) return m2u_fail("%s: lora_dropout must be a number", path);
    spec->lora_dropout = d ? (float)d->valuedouble : 0.0f;
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "use_rslora");
    spec->use_rslora = cJSON_IsTrue(rs);
    static const char *const refuse_true[] = {"use_dora", "fan_in_fan_out"};
    for (size_t i = 0; i < sizeof refuse_true / sizeof *refuse_true; i++)
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, refuse_true[i])))
            return m2u_fail("%s: %s = true is not supported by m2u", path, refuse_true[i]);
    static const char *const refuse_set[] = {"rank_pattern", "alpha_pattern", "layers_to_transform",
                                             "modules_to_save", "layer_replication", "trainable_token_indices"};
    for (size_t i = 0; i < sizeof refuse_set / sizeof *refuse_set; i++)
        if (!is_null_or_empty(cJSON_GetObjectItemCaseSensitive(root, refuse_set[i])))
            return m2u_fail("%s: %s is set, which m2u does not support", path, refuse_set[i]);
    const cJSON *bias = cJSON_GetObjectItemCaseSensitive(root, "bias");
    if (bias && !(cJSON_IsString(bias) && strcmp(bias->valuestring, "none") == 0))
        return m2u_fail("%s: bias must be \"none\"", path);
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(root, "target_modules");
    spec->lora_targets = 0;
    if (cJSON_IsString(tm)) {
        if (m2u_parse_linear_targets(tm->valuestring, &spec->lora_targets))
            return m2u_fail_prefix("%s: target_modules", path);
    } else if (cJSON_IsArray(tm)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, tm) {
            unsigned bit;
            if (!cJSON_IsString(e)) return m2u_fail("%s: target_modules entries must be strings", path);
            if (m2u_parse_linear_targets(e->valuestring, &bit)) return m2u_fail_prefix("%s: target_modules", path);
            spec->lora_targets |= bit;
        }
    } else {
        return m2u_fail("%s: target_modules must be a list or a string", path);
    }
    if (!spec->lora_targets) return m2u_fail("%s: target_modules is empty", path);
    return 0;
}

int m2u_peft_read_config(const char *adapter_dir, m2u_train_spec *spec) {
    char *path = m2u_path_join(adapter_dir, "adapter_config.json"), *text = NULL;
    if (!path) return m2u_fail("out of memory");
    int rc = m2u_read_file(path, &text, NULL);
    if (!rc) {
        cJSON *root = cJSON_Parse(text);
        if (!root || !cJSON_IsObject(root)) rc = m2u_fail("%s: not a JSON object", path);
        else rc = parse(root, path, spec);
        cJSON_Delete(root);
    }
    free(text);
    free(path);
    return rc;
}

/* peft's names for the whole matrices it saves with a resized vocabulary */
static const char *const K_EMBED = "base_model.model.model.embed_tokens.weight";
static const char *const K_HEAD = "base_model.model.lm_head.weight";

/* Rows [r, r + n) of a [rows, C] tensor as f32 (a view: a 7B vocabulary matrix is 0.5 GB in f32). */
static int read_rows(const m2u_st_tensor *t, int64_t r, int64_t n, float *dst) {
    size_t es = m2u_dtype_size(t->dtype), C = (size_t)t->shape[1];
    m2u_st_tensor v = *t;
    v.ndim = 2;
    v.shape[0] = n;
    v.numel = n * (int64_t)C;
    v.nbytes = (size_t)v.numel * es;
    v.data = (const char *)t->data + (size_t)r * C * es;
    return m2u_st_read_f32(&v, dst, (size_t)v.numel);
}

/* First row in [0, n) where a and b differ as f32; n if none, -1 on error. */
static int first_diff_row(const m2u_st_tensor *a, const m2u_st_tensor *b, int n, float *ra, float *rb) {
    size_t C = (size_t)a->shape[1];
    for (int r = 0; r < n; r++) {
        if (read_rows(a, r, 1, ra) || read_rows(b, r, 1, rb)) return -1;
        if (memcmp(ra, rb, C * sizeof(float))) return r;
    }
    return n;
}

int m2u_peft_prepare_vocab(const char *adapter_dir, const char *model_dir, m2u_train_spec *spec) {
    char *path = m2u_path_join(adapter_dir, "adapter_model.safetensors");
    char *cfg_path = m2u_path_join(model_dir, "config.json");
    m2u_safetensors *ad = NULL, *base = NULL;
    float *ra = NULL, *rb = NULL;
    int rc = path && cfg_path ? 0 : m2u_fail("out of memory");
    m2u_llama_config c;
    if (!rc) rc = m2u_st_open(path, &ad);
    const m2u_st_tensor *t[2] = {ad ? m2u_st_find(ad, K_EMBED) : NULL, ad ? m2u_st_find(ad, K_HEAD) : NULL};
    if (rc || (!t[0] && !t[1])) goto done; /* a LoRA-only adapter */
    if ((rc = m2u_llama_config_load(cfg_path, &c))) goto done;
    int V = c.vocab_size, C = c.hidden_size, Vn = -1;
    for (int k = 0; k < 2 && !rc; k++) {
        if (!t[k]) continue;
        if (t[k]->ndim != 2 || t[k]->shape[1] != C || t[k]->shape[0] < V || t[k]->shape[0] > (int64_t)1 << 24 ||
            (Vn >= 0 && t[k]->shape[0] != Vn))
            rc = m2u_fail("%s: %s is [%lld, %lld] but the base model %s has %d tokens of %d (a vocabulary can only "
                          "grow, and embed_tokens and lm_head must agree)",
                          path, k ? K_HEAD : K_EMBED, (long long)t[k]->shape[0],
                          (long long)(t[k]->ndim > 1 ? t[k]->shape[1] : 0), model_dir, V, C);
        else
            Vn = (int)t[k]->shape[0];
    }
    if (!rc && Vn > V && !c.tie_word_embeddings && !(t[0] && t[1]))
        rc = m2u_fail("%s: the vocabulary grows from %d to %d but only %s is saved; an untied model needs both %s and %s",
                      path, V, Vn, t[0] ? K_EMBED : K_HEAD, K_EMBED, K_HEAD);
    if (rc || (rc = m2u_st_open(model_dir, &base))) goto done;
    ra = malloc((size_t)C * sizeof(float));
    rb = malloc((size_t)C * sizeof(float));
    if (!ra || !rb) {
        rc = m2u_fail("out of memory");
        goto done;
    }
    /* the rows of the base's own range that the adapter changed: m2u keeps [first, Vn) trainable */
    int first = V;
    for (int k = 0; k < 2 && !rc; k++) {
        if (!t[k]) continue;
        const char *bn = k && !c.tie_word_embeddings ? "lm_head.weight" : "model.embed_tokens.weight";
        const m2u_st_tensor *b = m2u_st_find(base, bn);
        if (!b) {
            rc = m2u_fail("%s: no %s", model_dir, bn);
            break;
        }
        int r = first_diff_row(t[k], b, V, ra, rb);
        if (r < 0) rc = -1;
        else if (r < first) first = r;
    }
    if (!rc && c.tie_word_embeddings && t[0] && t[1]) {
        int r = first_diff_row(t[0], t[1], Vn, ra, rb);
        if (r < 0) rc = -1;
        else if (r < Vn)
            rc = m2u_fail("%s: %s differs from %s (row %d), but %s ties the two (tie_word_embeddings)", path, K_HEAD,
                          K_EMBED, r, model_dir);
    }
    if (!rc && first == 0)
        rc = m2u_fail("%s: the saved embed_tokens / lm_head change row 0 of the vocabulary; m2u keeps trained rows "
                      "from index 1 on (a fully trained vocabulary is not supported)", path);
    if (!rc) {
        spec->extra_vocab = Vn - V;
        spec->token_rows_start = first < V ? first : 0;
    }
done:
    free(ra);
    free(rb);
    if (base) m2u_st_close(base);
    if (ad) m2u_st_close(ad);
    free(cfg_path);
    free(path);
    return rc;
}

/* A saved whole matrix into the model's token rows [rows_start, vocab). */
static int load_rows(m2u_llama *m, const m2u_st_tensor *t, int head, const char *path) {
    int V = m->cfg.vocab_size, C = m->cfg.hidden_size;
    if (t->ndim != 2 || t->shape[0] != V || t->shape[1] != C)
        return m2u_fail("%s: %s is [%lld, %lld], the model [%d, %d] (set up with m2u_peft_prepare_vocab)", path,
                        t->name, (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0), V, C);
    if (!m->n_rows) return 0; /* equal to the base: prepare_vocab found nothing to keep */
    return read_rows(t, m->rows_start, m->n_rows, head ? m->head_rows : m->embed_rows);
}

int m2u_peft_load_weights(m2u_llama *m, const char *adapter_dir) {
    char *path = m2u_path_join(adapter_dir, "adapter_model.safetensors");
    if (!path) return m2u_fail("out of memory");
    m2u_safetensors *st;
    if (m2u_st_open(path, &st)) {
        free(path);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < m2u_st_count(st) && !rc; i++) {
        const m2u_st_tensor *t = m2u_st_at(st, i);
        if (!strcmp(t->name, K_EMBED) || !strcmp(t->name, K_HEAD)) {
            rc = load_rows(m, t, !strcmp(t->name, K_HEAD), path);
            continue;
        }
        m2u_param *p = m2u_llama_param(m, t->name);
        if (!p)
            rc = m2u_fail("%s: tensor '%s' is not a trainable parameter of this model (check r, targets and layers)",
                          path, t->name);
        else if (!m2u_st_expect(st, t->name, p->ndim, p->shape) || m2u_st_read_f32(t, p->data, p->n))
            rc = -1;
    }
    for (int i = 0; !rc && i < m->n_params; i++)
        if (strstr(m->params[i].name, ".lora_") && !m2u_st_find(st, m->params[i].name))
            rc = m2u_fail("%s: missing LoRA tensor '%s'", path, m->params[i].name);
    m2u_st_close(st);
    free(path);
    return rc;
}

cJSON *m2u_peft_config_new(const char *base_model_name_or_path, int r, double alpha, double dropout, unsigned targets,
                           int use_rslora) {
    /* the keys and defaults peft 0.13.2's LoraConfig writes, in its (sorted) order */
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddItemToObject(root, "alpha_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(root, "auto_mapping");
    cJSON_AddStringToObject(root, "base_model_name_or_path", base_model_name_or_path ? base_model_name_or_path : "");
    cJSON_AddStringToObject(root, "bias", "none");
    cJSON_AddBoolToObject(root, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(root, "inference_mode", 1);
    cJSON_AddBoolToObject(root, "init_lora_weights", 1);
    cJSON_AddNullToObject(root, "layer_replication");
    cJSON_AddNullToObject(root, "layers_pattern");
    cJSON_AddNullToObject(root, "layers_to_transform");
    cJSON_AddItemToObject(root, "loftq_config", cJSON_CreateObject());
    cJSON_AddNumberToObject(root, "lora_alpha", alpha);
    cJSON_AddNumberToObject(root, "lora_dropout", dropout);
    cJSON_AddNullToObject(root, "megatron_config");
    cJSON_AddStringToObject(root, "megatron_core", "megatron.core");
    cJSON_AddNullToObject(root, "modules_to_save");
    cJSON_AddStringToObject(root, "peft_type", "LORA");
    cJSON_AddNumberToObject(root, "r", r);
    cJSON_AddItemToObject(root, "rank_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(root, "revision");
    cJSON *tm = cJSON_AddArrayToObject(root, "target_modules");
    for (int i = 0; i < M2U_N_LINEAR; i++)
        if (targets & (1u << i)) cJSON_AddItemToArray(tm, cJSON_CreateString(m2u_linear_names[i]));
    cJSON_AddStringToObject(root, "task_type", "CAUSAL_LM");
    cJSON_AddBoolToObject(root, "use_dora", 0);
    cJSON_AddBoolToObject(root, "use_rslora", use_rslora != 0);
    return root;
}

static char *config_json(const m2u_llama *m, const char *base) {
    const m2u_train_spec *s = &m->spec;
    cJSON *root = m2u_peft_config_new(base, s->lora_r, s->lora_alpha, s->lora_dropout, s->lora_targets, s->use_rslora);
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return text;
}

int m2u_peft_save(const m2u_llama *m, const char *adapter_dir, const char *base_model_name_or_path) {
    if (m->spec.lora_r <= 0) return m2u_fail("%s: the model has no LoRA to save", adapter_dir);
    if (mkdir(adapter_dir, 0755) != 0 && errno != EEXIST)
        return m2u_fail("%s: cannot create directory: %s", adapter_dir, strerror(errno));
    m2u_st_entry *e = calloc((size_t)m->n_params + 1, sizeof *e);
    if (!e) return m2u_fail("out of memory");
    int n = 0;
    for (int i = 0; i < m->n_params; i++) {
        const m2u_param *p = &m->params[i];
        if (!strstr(p->name, ".lora_")) continue;
        e[n].name = p->name;
        e[n].dtype = M2U_F32;
        e[n].ndim = 2;
        e[n].shape[0] = p->shape[0];
        e[n].shape[1] = p->shape[1];
        e[n].data = p->data;
        n++;
    }
    char *path = m2u_path_join(adapter_dir, "adapter_model.safetensors");
    int rc = path ? m2u_st_write(path, e, n, NULL, NULL, 0) : m2u_fail("out of memory");
    free(path);
    free(e);
    if (rc) return -1;
    char *text = config_json(m, base_model_name_or_path);
    path = m2u_path_join(adapter_dir, "adapter_config.json");
    rc = (text && path) ? m2u_write_file_atomic(path, text, strlen(text)) : m2u_fail("out of memory");
    free(path);
    free(text);
    return rc;
}
