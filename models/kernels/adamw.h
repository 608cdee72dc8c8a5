/* AdamW over the flat trainable buffer, with torch.optim.AdamW's arithmetic
 * (decoupled decay p -= lr*wd*p, bias-corrected moments, eps outside the sqrt),
 * and global-norm gradient clipping. Moments are fp32, one array each. */
#ifndef M2U_ADAMW_H
#define M2U_ADAMW_H

#include "param.h"

#include <stddef.h>

typedef struct {
    float beta1, beta2, eps, weight_decay;
} m2u_adamw_config;

typedef struct {
    float *m, *v;
    size_t n;
    long step;
} m2u_adamw;

int m2u_adamw_init(m2u_adamw *opt, size_t n);
void m2u_adamw_free(m2u_adamw *opt);
/* One step at learning rate lr.  Decay applies only to params with decay set. */
void m2u_adamw_step(m2u_adamw *opt, const m2u_adamw_config *cfg, float lr, const m2u_param *params, int n_params);
/* L2 norm of a gradient buffer (double accumulation). */
double m2u_grad_norm(const float *grad, size_t n);
/* Scale grad so its norm is at most max_norm (torch's clip_grad_norm_: coef = max/(norm+1e-6), clamped to 1). */
void m2u_clip_grad(float *grad, size_t n, double norm, float max_norm);

#endif
