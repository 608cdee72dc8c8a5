#include "tokenizer_json.h"

#include "fileio.h"
#include "m2u_error.h"

#include <stdlib.h>
#include <string.h>

int m2u_tj_read(const char *path, cJSON **root) {
    *root = NULL;
    char *data;
    size_t len;
    if (m2u_read_file(path, &data, &len)) return -1;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(data, len, &end, 0);
    long at = j ? 0 : end ? (long)(end - data) : -1;
    free(data);
    if (!j) return m2u_fail("%s: malformed JSON near byte %ld", path, at);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return m2u_fail("%s: not a JSON object", path);
    }
    *root = j;
    return 0;
}

bool m2u_tj_null(const cJSON *j) { return !j || cJSON_IsNull(j); }

const char *m2u_tj_type(const cJSON *obj) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(t) ? t->valuestring : NULL;
}

int m2u_tj_bool(const cJSON *obj, const char *key, const char *where, bool *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (m2u_tj_null(j)) return 0;
    if (!cJSON_IsBool(j)) return m2u_fail("%s.%s must be true or false", where, key);
    *out = cJSON_IsTrue(j);
    return 0;
}

int m2u_tj_str(const cJSON *obj, const char *key, const char *where, const char **out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (m2u_tj_null(j)) return 0;
    if (!cJSON_IsString(j)) return m2u_fail("%s.%s must be a string", where, key);
    *out = j->valuestring;
    return 0;
}

int m2u_tj_int(const cJSON *obj, const char *key, const char *where, int min, int *out) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (m2u_tj_null(j)) return 0;
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= min && j->valuedouble <= 2147483647.0) ||
        j->valuedouble != (double)(int)j->valuedouble)
        return m2u_fail("%s.%s must be an integer >= %d", where, key, min);
    *out = (int)j->valuedouble;
    return 0;
}

int m2u_tj_parse_added(const cJSON *list, m2u_tj_model_id model_id, const void *ctx, int32_t n_model,
                       bool normalized_default, m2u_tj_added **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    if (m2u_tj_null(list)) return 0;
    if (!cJSON_IsArray(list)) return m2u_fail("added_tokens must be an array");
    int n = cJSON_GetArraySize(list), k = 0;
    m2u_tj_added *v = calloc((size_t)(n ? n : 1), sizeof *v);
    if (!v) return m2u_fail("out of memory (added tokens)");
    int64_t max_added = -1;
    const cJSON *e;
    cJSON_ArrayForEach(e, list) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "content");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        m2u_tj_added *t = &v[k];
        if (!cJSON_IsString(c)) {
            free(v);
            return m2u_fail("added_tokens[%d].content must be a string", k);
        }
        *t = (m2u_tj_added){.content = c->valuestring, .len = strlen(c->valuestring),
                               .normalized = normalized_default};
        if (m2u_tj_bool(e, "special", "added_tokens[]", &t->special) ||
            m2u_tj_bool(e, "single_word", "added_tokens[]", &t->single_word) ||
            m2u_tj_bool(e, "lstrip", "added_tokens[]", &t->lstrip) ||
            m2u_tj_bool(e, "rstrip", "added_tokens[]", &t->rstrip) ||
            m2u_tj_bool(e, "normalized", "added_tokens[]", &t->normalized)) {
            free(v);
            return -1;
        }
        if (!cJSON_IsNumber(id) || !(id->valuedouble >= 0 && id->valuedouble < (double)(1 << 26)) ||
            id->valuedouble != (double)(int32_t)id->valuedouble) {
            int rc = m2u_fail("added_tokens[%d] \"%s\": id must be a non-negative integer below %d", k, c->valuestring,
                              1 << 26);
            free(v);
            return rc;
        }
        t->id = (int32_t)id->valuedouble;
        if (t->len) {
            int32_t want = -1;
            const char *why = "the id of its earlier entry";
            for (int j = 0; j < k && want < 0; j++)
                if (v[j].len == t->len && !memcmp(v[j].content, t->content, t->len)) want = v[j].id;
            if (want < 0) {
                want = model_id(ctx, t->content, t->len);
                why = "its id in model.vocab";
            }
            if (want < 0) {
                want = max_added >= n_model ? (int32_t)max_added + 1 : n_model;
                why = "the next free id after model.vocab and the added tokens before it";
            }
            if (t->id != want) {
                int rc = m2u_fail("added_tokens[%d] \"%s\": declared id %d, but the token gets id %d (%s); "
                                  "refusing to renumber it",
                                  k, t->content, (int)t->id, (int)want, why);
                free(v);
                return rc;
            }
            if (want > max_added) max_added = want;
        }
        k++;
    }
    *out = v;
    *n_out = k;
    return 0;
}
