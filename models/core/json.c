#include "json.h"

#include "fileio.h"
#include "m2u_error.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON ------------------------------------------------------------------------------------------ */

/* Duplicated keys at any depth: each object's members are compared pairwise (configs are small). */
static int json_check_dups(const cJSON *o, const char *origin) {
    for (const cJSON *a = o->child; a; a = a->next) {
        if (cJSON_IsObject(o))
            for (const cJSON *b2 = a->next; b2; b2 = b2->next)
                if (a->string && b2->string && strcmp(a->string, b2->string) == 0)
                    return m2u_fail("%s: key '%s' appears twice", origin, a->string);
        if ((cJSON_IsObject(a) || cJSON_IsArray(a)) && json_check_dups(a, origin) != 0) return -1;
    }
    return 0;
}

int m2u_json_load(const char *path, int optional, cJSON **root) {
    *root = NULL;
    if (optional && !m2u_file_exists(path)) return 0;
    char *text = NULL;
    size_t len = 0;
    if (m2u_read_file(path, &text, &len) != 0) return -1;
    cJSON *r = cJSON_ParseWithLength(text, len);
    free(text);
    if (!r) return m2u_fail("%s: not valid JSON", path);
    if (!cJSON_IsObject(r)) {
        cJSON_Delete(r);
        return m2u_fail("%s: not a JSON object", path);
    }
    if (json_check_dups(r, path) != 0) {
        cJSON_Delete(r);
        return -1;
    }
    *root = r;
    return 0;
}

static const cJSON *json_item(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

int m2u_json_whole(const cJSON *v, double lo, double hi) {
    return cJSON_IsNumber(v) && v->valuedouble >= lo && v->valuedouble <= hi && v->valuedouble == floor(v->valuedouble);
}

static int json_is_int(const cJSON *v) { return m2u_json_whole(v, -INT_MAX, INT_MAX); }

int m2u_json_int(const cJSON *o, const char *origin, const char *key, int required, int def, int min, int *out) {
    const cJSON *v = json_item(o, key);
    if (!v) {
        if (required) return m2u_fail("%s: missing key '%s'", origin, key);
        *out = def;
        return 0;
    }
    if (!json_is_int(v)) return m2u_fail("%s: key '%s' must be an integer", origin, key);
    if (v->valuedouble < min) return m2u_fail("%s: key '%s' must be >= %d, got %.0f", origin, key, min, v->valuedouble);
    *out = (int)v->valuedouble;
    return 0;
}

int m2u_json_num(const cJSON *o, const char *origin, const char *key, int required, double def, double *out) {
    const cJSON *v = json_item(o, key);
    if (!v) {
        if (required) return m2u_fail("%s: missing key '%s'", origin, key);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return m2u_fail("%s: key '%s' must be a number", origin, key);
    *out = v->valuedouble;
    return 0;
}

int m2u_json_bool(const cJSON *o, const char *origin, const char *key, int def, int *out) {
    const cJSON *v = json_item(o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v)) return m2u_fail("%s: key '%s' must be true or false", origin, key);
    *out = cJSON_IsTrue(v);
    return 0;
}

int m2u_json_str(const cJSON *o, const char *origin, const char *key, const char *def, const char **out) {
    const cJSON *v = json_item(o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsString(v)) return m2u_fail("%s: key '%s' must be a string", origin, key);
    *out = v->valuestring;
    return 0;
}

int m2u_json_ints(const cJSON *o, const char *origin, const char *key, int max, int min, int broadcast, int *vals,
                  int *n) {
    const cJSON *v = json_item(o, key);
    if (!v) return m2u_fail("%s: missing key '%s'", origin, key);
    if (json_is_int(v)) {
        if (v->valuedouble < min) return m2u_fail("%s: key '%s' must be >= %d", origin, key, min);
        *n = broadcast ? max : 1;
        for (int i = 0; i < *n; i++) vals[i] = (int)v->valuedouble;
        return 0;
    }
    int cnt = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    if (cnt < 1 || cnt > max)
        return m2u_fail("%s: key '%s' must be an integer or a list of 1 to %d integers", origin, key, max);
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        if (!json_is_int(c) || c->valuedouble < min)
            return m2u_fail("%s: key '%s': entry %d must be an integer >= %d", origin, key, i, min);
        vals[i] = (int)c->valuedouble;
    }
    *n = cnt;
    return 0;
}

int m2u_json_nums(const cJSON *o, const char *origin, const char *key, int n, const double *def, double *vals) {
    const cJSON *v = json_item(o, key);
    if (!v) {
        for (int i = 0; i < n; i++) vals[i] = def[i];
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        for (int i = 0; i < n; i++) vals[i] = v->valuedouble;
        return 0;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n)
        return m2u_fail("%s: key '%s' must be a number or a list of %d numbers", origin, key, n);
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble))
            return m2u_fail("%s: key '%s': entry %d must be a number", origin, key, i);
        vals[i] = c->valuedouble;
    }
    return 0;
}
