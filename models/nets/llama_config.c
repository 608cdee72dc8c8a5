/* config.json of a LlamaForCausalLM checkpoint: parse, validate, write back.
 *
 * Accepts both the transformers v4 layout (rope_theta at top level, rope_scaling)
 * and the v5 one (rope_parameters {rope_type, rope_theta}).  Anything that would
 * change the math and that we do not implement (RoPE scaling, non-SiLU MLP) is
 * refused rather than ignored, so a run never silently computes a different model. */
#include "llama_config.h"

#include "fileio.h"
#include "m2u_error.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Python's json keeps the last of duplicated keys, cJSON the first: refuse them so
 * we never read a different config from the one transformers reads. */
static int check_no_duplicates(const cJSON *obj, const char *origin) {
    int n = cJSON_GetArraySize(obj);
    if (n < 2) return 0;
    const char **names = malloc((size_t)n * sizeof *names);
    if (!names) return m2u_fail("%s: out of memory", origin);
    int k = 0;
    for (const cJSON *c = obj->child; c; c = c->next) names[k++] = c->string;
    qsort(names, (size_t)k, sizeof *names, cmp_str_ptr);
    for (int i = 1; i < k; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            int rc = m2u_fail("%s: key '%s' appears twice", origin, names[i]);
            free(names);
            return rc;
        }
    free(names);
    return 0;
}

static int is_int_value(const cJSON *v) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    return d == floor(d) && d >= INT_MIN && d <= INT_MAX;
}

/* Integer key.  Absent (or null when null_ok) -> *out = def, or an error when required. */
static int get_int(const cJSON *root, const char *origin, const char *key, int required, int null_ok, int def,
                   int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || (null_ok && cJSON_IsNull(v))) {
        if (required) return m2u_fail("%s: missing key '%s'", origin, key);
        *out = def;
        return 0;
    }
    if (!is_int_value(v)) return m2u_fail("%s: key '%s' must be an integer", origin, key);
    *out = (int)v->valuedouble;
    return 0;
}

static int get_positive(const cJSON *root, const char *origin, const char *key, int required, int null_ok, int def,
                        int *out) {
    if (get_int(root, origin, key, required, null_ok, def, out) != 0) return -1;
    if (*out <= 0) return m2u_fail("%s: key '%s' must be positive, got %d", origin, key, *out);
    return 0;
}

static int get_bool(const cJSON *root, const char *origin, const char *key, int def, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v)) return m2u_fail("%s: key '%s' must be true or false", origin, key);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return 0;
}

static int get_float(const cJSON *v, const char *origin, const char *key, float *out) {
    if (!cJSON_IsNumber(v)) return m2u_fail("%s: key '%s' must be a number", origin, key);
    if (!isfinite(v->valuedouble) || !(v->valuedouble > 0))
        return m2u_fail("%s: key '%s' must be positive", origin, key);
    /* stored as float32: a value that becomes 0 or inf there (1e-205, 1e300) would be
     * accepted here and then refused by m2u_llama_config_save (found by tests/fuzz) */
    if (v->valuedouble > FLT_MAX || (float)v->valuedouble == 0.0f)
        return m2u_fail("%s: key '%s' (%g) is outside float32's range", origin, key, v->valuedouble);
    *out = (float)v->valuedouble;
    return 0;
}

/* rope_scaling / rope_parameters: only the plain ("default") RoPE is implemented. */
static int check_rope_type(const cJSON *obj, const char *origin, const char *key) {
    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(obj, "rope_type");
    if (!rt) rt = cJSON_GetObjectItemCaseSensitive(obj, "type"); /* pre-4.36 spelling */
    if (!rt) return 0;
    if (!cJSON_IsString(rt)) return m2u_fail("%s: key '%s.rope_type' must be a string", origin, key);
    if (strcmp(rt->valuestring, "default") != 0)
        return m2u_fail("%s: key '%s': rope_type '%s' is not supported (only \"default\" RoPE is implemented)",
                        origin, key, rt->valuestring);
    return 0;
}

/* bos/eos/pad: an int, null (no such token -> -1), or for eos a list (first entry). */
static int get_token(const cJSON *root, const char *origin, const char *key, int allow_list, int def, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (cJSON_IsNull(v)) {
        *out = -1;
        return 0;
    }
    if (allow_list && cJSON_IsArray(v)) {
        if (cJSON_GetArraySize(v) == 0) return m2u_fail("%s: key '%s' is an empty list", origin, key);
        for (const cJSON *c = v->child; c; c = c->next)
            if (!is_int_value(c) || c->valuedouble < 0)
                return m2u_fail("%s: key '%s' must be a list of token ids", origin, key);
        *out = (int)v->child->valuedouble;
        return 0;
    }
    if (!is_int_value(v) || v->valuedouble < -1)
        return m2u_fail("%s: key '%s' must be a token id%s", origin, key, allow_list ? " or a list of them" : "");
    *out = (int)v->valuedouble;
    return 0;
}

static int parse_root(const cJSON *root, const char *origin, m2u_llama_config *c) {
    if (check_no_duplicates(root, origin) != 0) return -1;

    /* Model family: LlamaForCausalLM in architectures, or model_type "llama". */
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    int arch_llama = 0, mt_llama = 0;
    if (arch && !cJSON_IsNull(arch)) {
        if (!cJSON_IsArray(arch)) return m2u_fail("%s: key 'architectures' must be a list of strings", origin);
        for (const cJSON *a = arch->child; a; a = a->next) {
            if (!cJSON_IsString(a)) return m2u_fail("%s: key 'architectures' must be a list of strings", origin);
            if (strcmp(a->valuestring, "LlamaForCausalLM") == 0) arch_llama = 1;
        }
    }
    if (mt) {
        if (!cJSON_IsString(mt)) return m2u_fail("%s: key 'model_type' must be a string", origin);
        mt_llama = strcmp(mt->valuestring, "llama") == 0;
    }
    if (!arch_llama && !mt_llama && ((arch && !cJSON_IsNull(arch)) || mt))
        return m2u_fail("%s: key 'architectures'/'model_type': not a LLaMA config (need LlamaForCausalLM or "
                        "model_type \"llama\")",
                        origin);

    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act) {
        if (!cJSON_IsString(act)) return m2u_fail("%s: key 'hidden_act' must be a string", origin);
        if (strcmp(act->valuestring, "silu") != 0)
            return m2u_fail("%s: key 'hidden_act': '%s' is not supported (only \"silu\")", origin, act->valuestring);
    }

    memset(c, 0, sizeof *c);
    if (get_positive(root, origin, "hidden_size", 1, 0, 0, &c->hidden_size) ||
        get_positive(root, origin, "intermediate_size", 1, 0, 0, &c->intermediate_size) ||
        get_positive(root, origin, "num_hidden_layers", 1, 0, 0, &c->n_layers) ||
        get_positive(root, origin, "num_attention_heads", 1, 0, 0, &c->n_heads) ||
        get_positive(root, origin, "num_key_value_heads", 0, 1, c->n_heads, &c->n_kv_heads) ||
        get_positive(root, origin, "vocab_size", 1, 0, 0, &c->vocab_size) ||
        get_positive(root, origin, "max_position_embeddings", 0, 0, 2048, &c->max_position_embeddings))
        return -1;
    if (c->n_heads % c->n_kv_heads != 0)
        return m2u_fail("%s: key 'num_key_value_heads': num_attention_heads %d is not divisible by %d", origin,
                        c->n_heads, c->n_kv_heads);
    const cJSON *hd = cJSON_GetObjectItemCaseSensitive(root, "head_dim");
    if (!hd || cJSON_IsNull(hd)) {
        if (c->hidden_size % c->n_heads != 0)
            return m2u_fail("%s: key 'head_dim' is absent and hidden_size %d is not divisible by "
                            "num_attention_heads %d",
                            origin, c->hidden_size, c->n_heads);
        c->head_dim = c->hidden_size / c->n_heads;
    } else if (get_positive(root, origin, "head_dim", 1, 0, 0, &c->head_dim) != 0) {
        return -1;
    }
    /* RoPE rotates pairs (i, i + head_dim/2). */
    if (c->head_dim % 2 != 0) return m2u_fail("%s: key 'head_dim': %d is odd", origin, c->head_dim);

    c->rms_norm_eps = 1e-6f;
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "rms_norm_eps");
    if (eps && get_float(eps, origin, "rms_norm_eps", &c->rms_norm_eps) != 0) return -1;

    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
    if (rs && !cJSON_IsNull(rs)) {
        if (!cJSON_IsObject(rs)) return m2u_fail("%s: key 'rope_scaling' must be null or an object", origin);
        if (!cJSON_GetObjectItemCaseSensitive(rs, "rope_type") && !cJSON_GetObjectItemCaseSensitive(rs, "type"))
            return m2u_fail("%s: key 'rope_scaling' has no rope_type (only null or rope_type \"default\" is "
                            "supported)",
                            origin);
        if (check_rope_type(rs, origin, "rope_scaling") != 0) return -1;
    }
    c->rope_theta = 10000.0f;
    const cJSON *theta = cJSON_GetObjectItemCaseSensitive(root, "rope_theta");
    if (theta && get_float(theta, origin, "rope_theta", &c->rope_theta) != 0) return -1;
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    if (rp && !cJSON_IsNull(rp)) {
        if (!cJSON_IsObject(rp)) return m2u_fail("%s: key 'rope_parameters' must be an object", origin);
        if (check_rope_type(rp, origin, "rope_parameters") != 0) return -1;
        const cJSON *t2 = cJSON_GetObjectItemCaseSensitive(rp, "rope_theta");
        if (t2) {
            float v;
            if (get_float(t2, origin, "rope_parameters.rope_theta", &v) != 0) return -1;
            if (theta && v != c->rope_theta)
                return m2u_fail("%s: key 'rope_parameters.rope_theta' (%g) disagrees with 'rope_theta' (%g)", origin,
                                (double)v, (double)c->rope_theta);
            c->rope_theta = v;
        }
    }

    if (get_bool(root, origin, "tie_word_embeddings", 0, &c->tie_word_embeddings) ||
        get_bool(root, origin, "attention_bias", 0, &c->attention_bias) ||
        get_bool(root, origin, "mlp_bias", 0, &c->mlp_bias) ||
        get_token(root, origin, "bos_token_id", 0, 1, &c->bos_token_id) ||
        get_token(root, origin, "eos_token_id", 1, 2, &c->eos_token_id) ||
        get_token(root, origin, "pad_token_id", 0, -1, &c->pad_token_id))
        return -1;
    return 0;
}

int m2u_llama_config_parse(const char *json, const char *origin, m2u_llama_config *cfg) {
    cJSON *root = cJSON_Parse(json);
    if (!root) return m2u_fail("%s: not valid JSON", origin);
    int rc = cJSON_IsObject(root) ? parse_root(root, origin, cfg) : m2u_fail("%s: not a JSON object", origin);
    cJSON_Delete(root);
    return rc;
}

int m2u_llama_config_load(const char *path, m2u_llama_config *cfg) {
    char *text;
    if (m2u_read_file(path, &text, NULL) != 0) return -1;
    int rc = m2u_llama_config_parse(text, path, cfg);
    free(text);
    return rc;
}

/* Shortest decimal that reads back as the same float, laid out as Python's float repr
 * (what json.dump writes): fixed notation for exponents -4..15 with at least one decimal
 * ("10000.0", "0.02"), else "1e-05".  So 1e-5f is written 1e-05, not 9.99999974737875e-06. */
static void fmt_float(char *buf, size_t cap, float f) {
    int p = 1;
    for (; p < 9; p++) {
        snprintf(buf, cap, "%.*e", p - 1, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    snprintf(buf, cap, "%.*e", p - 1, (double)f);
    int exp = atoi(strchr(buf, 'e') + 1);
    if (exp < -4 || exp >= 16) return;
    int decimals = p - 1 - exp;
    snprintf(buf, cap, "%.*f", decimals > 0 ? decimals : 0, (double)f);
    if (!strchr(buf, '.')) strncat(buf, ".0", cap - strlen(buf) - 1);
}

static const char *json_bool(int b) { return b ? "true" : "false"; }

static void fmt_token(char *buf, size_t cap, int id) {
    if (id < 0) snprintf(buf, cap, "null");
    else snprintf(buf, cap, "%d", id);
}

int m2u_llama_config_save(const char *path, const m2u_llama_config *c) {
    /* Refuse what load would refuse, so a saved config always loads back. */
    if (c->hidden_size <= 0 || c->intermediate_size <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->head_dim <= 0 || c->vocab_size <= 0 || c->max_position_embeddings <= 0 ||
        c->n_heads % c->n_kv_heads != 0 || c->head_dim % 2 != 0)
        return m2u_fail("%s: refusing to save an invalid config (sizes/heads)", path);
    if (!isfinite(c->rms_norm_eps) || !(c->rms_norm_eps > 0) || !isfinite(c->rope_theta) || !(c->rope_theta > 0))
        return m2u_fail("%s: refusing to save an invalid config (rms_norm_eps/rope_theta)", path);
    char eps[32], theta[32], bos[16], eos[16];
    fmt_float(eps, sizeof eps, c->rms_norm_eps);
    fmt_float(theta, sizeof theta, c->rope_theta);
    fmt_token(bos, sizeof bos, c->bos_token_id);
    fmt_token(eos, sizeof eos, c->eos_token_id);
    char pad[48] = "";
    if (c->pad_token_id >= 0) snprintf(pad, sizeof pad, "  \"pad_token_id\": %d,\n", c->pad_token_id);
    /* Keys sorted and indented like PretrainedConfig.to_json_string. */
    char buf[2048];
    int n = snprintf(buf, sizeof buf,
                     "{\n"
                     "  \"architectures\": [\n"
                     "    \"LlamaForCausalLM\"\n"
                     "  ],\n"
                     "  \"attention_bias\": %s,\n"
                     "  \"attention_dropout\": 0.0,\n"
                     "  \"bos_token_id\": %s,\n"
                     "  \"eos_token_id\": %s,\n"
                     "  \"head_dim\": %d,\n"
                     "  \"hidden_act\": \"silu\",\n"
                     "  \"hidden_size\": %d,\n"
                     "  \"initializer_range\": 0.02,\n"
                     "  \"intermediate_size\": %d,\n"
                     "  \"max_position_embeddings\": %d,\n"
                     "  \"mlp_bias\": %s,\n"
                     "  \"model_type\": \"llama\",\n"
                     "  \"num_attention_heads\": %d,\n"
                     "  \"num_hidden_layers\": %d,\n"
                     "  \"num_key_value_heads\": %d,\n"
                     "%s"
                     "  \"pretraining_tp\": 1,\n"
                     "  \"rms_norm_eps\": %s,\n"
                     "  \"rope_scaling\": null,\n"
                     "  \"rope_theta\": %s,\n"
                     "  \"tie_word_embeddings\": %s,\n"
                     "  \"torch_dtype\": \"float32\",\n"
                     "  \"use_cache\": true,\n"
                     "  \"vocab_size\": %d\n"
                     "}\n",
                     json_bool(c->attention_bias), bos, eos, c->head_dim, c->hidden_size, c->intermediate_size,
                     c->max_position_embeddings, json_bool(c->mlp_bias), c->n_heads, c->n_layers, c->n_kv_heads, pad,
                     eps, theta, json_bool(c->tie_word_embeddings), c->vocab_size);
    if (n < 0 || (size_t)n >= sizeof buf) return m2u_fail("%s: config text too long", path);
    return m2u_write_file_atomic(path, buf, (size_t)n);
}
