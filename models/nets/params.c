#include "params.h"

#include "m2u_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- named parameter tables ------------------------------------------------------------------- */

int m2u_ptable_add(m2u_ptable *t, const char *prefix, const char *name, int ndim, int64_t d0, int64_t d1, int decay,
                   float **data_slot, float **grad_slot) {
    if (ndim < 1 || ndim > 2 || d0 <= 0 || (ndim == 2 && d1 <= 0))
        return m2u_fail("parameter %s%s: bad shape", prefix ? prefix : "", name);
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 32;
        m2u_param *nv = realloc(t->v, (size_t)cap * sizeof *nv);
        if (!nv) return m2u_fail("out of memory");
        t->v = nv;
        float ***nd = realloc(t->data_slot, (size_t)cap * sizeof *nd);
        if (!nd) return m2u_fail("out of memory");
        t->data_slot = nd;
        float ***ng = realloc(t->grad_slot, (size_t)cap * sizeof *ng);
        if (!ng) return m2u_fail("out of memory");
        t->grad_slot = ng;
        t->cap = cap;
    }
    m2u_param *p = &t->v[t->n];
    memset(p, 0, sizeof *p);
    size_t len = strlen(prefix ? prefix : "") + strlen(name) + 1;
    p->name = malloc(len);
    if (!p->name) return m2u_fail("out of memory");
    snprintf(p->name, len, "%s%s", prefix ? prefix : "", name);
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = ndim > 1 ? d1 : 1;
    p->n = (size_t)d0 * (size_t)p->shape[1];
    p->decay = decay;
    t->data_slot[t->n] = data_slot;
    t->grad_slot[t->n] = grad_slot;
    t->n_floats += p->n;
    t->n++;
    return 0;
}

void m2u_params_free(m2u_param *params, int n) {
    if (!params) return;
    for (int i = 0; i < n; i++) free(params[i].name);
    free(params);
}

void m2u_ptable_discard(m2u_ptable *t) {
    m2u_params_free(t->v, t->n);
    free(t->data_slot);
    free(t->grad_slot);
    memset(t, 0, sizeof *t);
}

int m2u_ptable_finish(m2u_ptable *t, float *params, float *grads, m2u_param **out, int *n_out) {
    if (!params) {
        m2u_ptable_discard(t);
        return m2u_fail("no parameter buffer given");
    }
    size_t off = 0;
    for (int i = 0; i < t->n; i++) {
        m2u_param *p = &t->v[i];
        p->data = params + off;
        p->grad = grads ? grads + off : NULL;
        *t->data_slot[i] = p->data;
        if (t->grad_slot[i]) *t->grad_slot[i] = p->grad;
        off += p->n;
    }
    *out = t->v;
    *n_out = t->n;
    free(t->data_slot);
    free(t->grad_slot);
    memset(t, 0, sizeof *t);
    return 0;
}

m2u_param *m2u_params_find(m2u_param *params, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(params[i].name, name) == 0) return &params[i];
    return NULL;
}

/* Shapes equal after dropping unit dimensions. */
static int same_squeezed(const int64_t *a, int na, const int64_t *b, int nb) {
    int i = 0, j = 0;
    for (;;) {
        while (i < na && a[i] == 1) i++;
        while (j < nb && b[j] == 1) j++;
        if (i == na || j == nb) return i == na && j == nb;
        if (a[i++] != b[j++]) return 0;
    }
}

static void shape_str(char *buf, size_t cap, const int64_t *s, int nd) {
    size_t len = 0;
    len += (size_t)snprintf(buf + len, cap - len, "[");
    for (int i = 0; i < nd && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%lld", i ? ", " : "", (long long)s[i]);
    if (len < cap) snprintf(buf + len, cap - len, "]");
}

int m2u_params_load(m2u_param *params, int n, const m2u_safetensors *st, int require_all, int *n_loaded) {
    int loaded = 0;
    for (int i = 0; i < n; i++) {
        m2u_param *p = &params[i];
        const m2u_st_tensor *t = m2u_st_find(st, p->name);
        if (!t) {
            if (require_all) return m2u_fail("%s: parameter %s is missing", m2u_st_path(st), p->name);
            continue;
        }
        if ((size_t)t->numel != p->n || !same_squeezed(t->shape, t->ndim, p->shape, p->ndim)) {
            char a[128], b[128];
            shape_str(a, sizeof a, t->shape, t->ndim);
            shape_str(b, sizeof b, p->shape, p->ndim);
            return m2u_fail("%s: tensor %s has shape %s, the module expects %s", m2u_st_path(st), p->name, a, b);
        }
        if (t->dtype != M2U_F32 && t->dtype != M2U_F16 && t->dtype != M2U_BF16 && t->dtype != M2U_F64)
            return m2u_fail("%s: tensor %s is not a float tensor", m2u_st_path(st), p->name);
        if (m2u_st_read_f32(t, p->data, p->n)) return m2u_fail_prefix("%s: tensor %s", m2u_st_path(st), p->name);
        loaded++;
    }
    if (n_loaded) *n_loaded = loaded;
    return 0;
}
