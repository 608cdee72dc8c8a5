#include "adamw.h"

#include "m2u_error.h"

#include <math.h>
#include <stdlib.h>

int m2u_adamw_init(m2u_adamw *opt, size_t n) {
    opt->n = n;
    opt->step = 0;
    opt->m = calloc(n ? n : 1, sizeof(float));
    opt->v = calloc(n ? n : 1, sizeof(float));
    if (!opt->m || !opt->v) {
        m2u_adamw_free(opt);
        return m2u_fail("out of memory for AdamW state (%zu floats)", n);
    }
    return 0;
}

void m2u_adamw_free(m2u_adamw *opt) {
    free(opt->m);
    free(opt->v);
    opt->m = opt->v = NULL;
}

void m2u_adamw_step(m2u_adamw *opt, const m2u_adamw_config *cfg, float lr, const m2u_param *params, int n_params) {
    opt->step++;
    float bc1 = 1.0f - powf(cfg->beta1, (float)opt->step);
    float bc2 = 1.0f - powf(cfg->beta2, (float)opt->step);
    float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2);
    size_t off = 0;
    for (int k = 0; k < n_params; k++) {
        const m2u_param *p = &params[k];
        float *w = p->data, *m = opt->m + off, *v = opt->v + off;
        const float *g = p->grad;
        float decay = p->decay ? 1.0f - lr * cfg->weight_decay : 1.0f;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < p->n; i++) {
            w[i] *= decay;
            m[i] = cfg->beta1 * m[i] + (1.0f - cfg->beta1) * g[i];
            v[i] = cfg->beta2 * v[i] + (1.0f - cfg->beta2) * g[i] * g[i];
            float denom = sqrtf(v[i]) / bc2_sqrt + cfg->eps;
            w[i] -= step_size * m[i] / denom;
        }
        off += p->n;
    }
}

double m2u_grad_norm(const float *grad, size_t n) {
    double s = 0.0;
#pragma omp parallel for schedule(static) reduction(+ : s)
    for (size_t i = 0; i < n; i++) s += (double)grad[i] * grad[i];
    return sqrt(s);
}

void m2u_clip_grad(float *grad, size_t n, double norm, float max_norm) {
    double coef = (double)max_norm / (norm + 1e-6);
    if (coef >= 1.0) return;
    for (size_t i = 0; i < n; i++) grad[i] = (float)(grad[i] * coef);
}
