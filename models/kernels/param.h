/* A named view of one trainable tensor inside the flat parameter buffer (and its
 * gradient inside the flat gradient buffer, same offsets).  The optimizer, the
 * all-reduce and the checkpoint writer walk an array of these. */
#ifndef M2U_PARAM_H
#define M2U_PARAM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *name; /* PEFT/HF name: base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight */
    float *data, *grad;
    size_t n;
    int ndim;
    int64_t shape[2];
    int decay; /* matrices get weight decay; biases, norms do not */
} m2u_param;

#endif
