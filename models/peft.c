#include "peft.h"

#include "fileio.h"
#include "m2u_error.h"

#include <cjson/cJSON.h>
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
    if (!cJSON_IsNumber(r) || r->valuedouble < 1 || r->valuedouble != (int)r->valuedouble)
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
