/* Named parameter tables: the one builder of m2u_param views (kernels/param.h) for modules
 * whose trainable tensors live in one caller-provided flat buffer, and loading them from a
 * tensor store. */
#ifndef M2U_PARAMS_H
#define M2U_PARAMS_H

#include "param.h"
#include "safetensors.h"

#include <stddef.h>
#include <stdint.h>

/* ---- named parameter tables ---------------------------------------------------------------------- */

/* A module registers its trainable tensors in order, then lays them out at consecutive offsets
 * of one caller-provided parameter buffer (and gradient buffer, which may be NULL for inference).
 * m2u_param has at most two dimensions: a checkpoint tensor with unit dimensions (Conv1d weight
 * [1, C, 1], query embeddings [1, N, D]) is registered squeezed to 2-D, and m2u_params_load
 * accepts either form. */
typedef struct {
    m2u_param *v;
    float ***data_slot, ***grad_slot; /* where each view's pointers go */
    int n, cap;
    size_t n_floats;
} m2u_ptable;

/* Register `prefix``name` with shape [d0] (ndim 1) or [d0, d1] (ndim 2). */
int m2u_ptable_add(m2u_ptable *t, const char *prefix, const char *name, int ndim, int64_t d0, int64_t d1, int decay,
                   float **data_slot, float **grad_slot);
/* Point every view into params (and grads, may be NULL) at consecutive offsets, and hand the
 * table over: *out gets the m2u_param array (names owned by it; free with m2u_params_free), the
 * scratch of t is released.  On failure everything is released. */
int m2u_ptable_finish(m2u_ptable *t, float *params, float *grads, m2u_param **out, int *n_out);
void m2u_ptable_discard(m2u_ptable *t);
void m2u_params_free(m2u_param *params, int n);

/* The parameter called name, or NULL. */
m2u_param *m2u_params_find(m2u_param *params, int n, const char *name);
/* Copy parameters from a safetensors file whose tensor names are the parameter names (other
 * tensors are ignored, so a whole M2UGen checkpoint may be given).  Shapes must agree up to unit
 * dimensions.  With require_all, every parameter must be present; otherwise absent ones keep
 * their values.  *n_loaded (may be NULL) counts the tensors copied. */
int m2u_params_load(m2u_param *params, int n, const m2u_safetensors *st, int require_all, int *n_loaded);

#endif
