#include "peft.h"

#include "fileio.h"
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

int m2u_peft_load_weights(m2u_llama *m, const char *adapter_dir) {
    char *path = m2u_path_join(adapter_dir, "adapter_model.safetensors");
    if (!path) return m2u_fail("out of memory");
    int rc = m2u_llama_load_params(m, path, 1);
    free(path);
    return rc;
}

static char *config_json(const m2u_llama *m, const char *base) {
    const m2u_train_spec *s = &m->spec;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "alpha_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(root, "auto_mapping");
    cJSON_AddStringToObject(root, "base_model_name_or_path", base ? base : "");
    cJSON_AddStringToObject(root, "bias", "none");
    cJSON_AddBoolToObject(root, "fan_in_fan_out", 0);
    cJSON_AddBoolToObject(root, "inference_mode", 1);
    cJSON_AddBoolToObject(root, "init_lora_weights", 1);
    cJSON_AddNullToObject(root, "layer_replication");
    cJSON_AddNullToObject(root, "layers_pattern");
    cJSON_AddNullToObject(root, "layers_to_transform");
    cJSON_AddItemToObject(root, "loftq_config", cJSON_CreateObject());
    cJSON_AddNumberToObject(root, "lora_alpha", s->lora_alpha);
    cJSON_AddNumberToObject(root, "lora_dropout", s->lora_dropout);
    cJSON_AddNullToObject(root, "modules_to_save");
    cJSON_AddStringToObject(root, "peft_type", "LORA");
    cJSON_AddNumberToObject(root, "r", s->lora_r);
    cJSON_AddItemToObject(root, "rank_pattern", cJSON_CreateObject());
    cJSON_AddNullToObject(root, "revision");
    cJSON *tm = cJSON_AddArrayToObject(root, "target_modules");
    for (int i = 0; i < M2U_N_LINEAR; i++)
        if (s->lora_targets & (1u << i)) cJSON_AddItemToArray(tm, cJSON_CreateString(m2u_linear_names[i]));
    cJSON_AddStringToObject(root, "task_type", "CAUSAL_LM");
    cJSON_AddBoolToObject(root, "use_dora", 0);
    cJSON_AddBoolToObject(root, "use_rslora", s->use_rslora != 0);
    char *text = cJSON_Print(root);
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
