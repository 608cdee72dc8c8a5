/* Reading reference tensors and JSON from the fixtures the Python scripts write. */
#ifndef M2U_TEST_FIXTURE_H
#define M2U_TEST_FIXTURE_H

#include "fileio.h"
#include "llama.h"
#include "safetensors.h"
#include "test_util.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* A JSON fixture file parsed; NULL when it cannot be read or parsed. */
static inline cJSON *t_json_load(const char *path) {
    char *buf = NULL;
    size_t n = 0;
    if (m2u_read_file(path, &buf, &n)) return NULL;
    cJSON *j = cJSON_ParseWithLength(buf, n);
    free(buf);
    return j;
}

/* Tensor `name` as a malloc'ed fp32 array (n may be NULL); NULL if absent. */
static inline float *t_st_f32(const m2u_safetensors *st, const char *name, size_t *n) {
    const m2u_st_tensor *t = m2u_st_find(st, name);
    if (!t) return NULL;
    float *out = malloc(((size_t)t->numel ? (size_t)t->numel : 1) * sizeof(float));
    m2u_st_read_f32(t, out, (size_t)t->numel);
    if (n) *n = (size_t)t->numel;
    return out;
}

/* An I64 tensor of token ids as a malloc'ed int32 array (n may be NULL); NULL if absent. */
static inline int32_t *t_st_ids(const m2u_safetensors *st, const char *name, int *n) {
    const m2u_st_tensor *t = m2u_st_find(st, name);
    if (!t || t->dtype != M2U_I64) return NULL;
    int32_t *out = malloc(((size_t)t->numel ? (size_t)t->numel : 1) * sizeof(int32_t));
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t v;
        memcpy(&v, (const char *)t->data + 8 * i, 8);
        out[i] = (int32_t)v;
    }
    if (n) *n = (int)t->numel;
    return out;
}

/* Integer __metadata__ value, or -1. */
static inline int t_st_meta_int(const m2u_safetensors *st, const char *key) {
    const char *v = m2u_st_metadata(st, key);
    return v ? atoi(v) : -1;
}

/* Every parameter's gradient against the reference tensor "grad.<name>", to tol
 * relative (t_max_rel_err); a missing or mis-sized reference fails.  Returns the
 * worst error seen. */
static inline double t_check_grads(const m2u_safetensors *ref, const m2u_param *params, int n_params, double tol,
                                   const char *label) {
    double worst = 0;
    for (int i = 0; i < n_params; i++) {
        char gname[512];
        size_t n = 0;
        snprintf(gname, sizeof gname, "grad.%s", params[i].name);
        float *g = t_st_f32(ref, gname, &n);
        CHECK(g && n == params[i].n, "%s: reference %s missing or of another size", label, gname);
        if (g && n == params[i].n) {
            double e = t_max_rel_err(params[i].grad, g, n);
            worst = t_worse(worst, e);
            CHECK(e < tol, "%s: %s rel err %.3g", label, gname, e);
        }
        free(g);
    }
    return worst;
}

#endif
