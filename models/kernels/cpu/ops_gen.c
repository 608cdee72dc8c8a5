/* Generation primitives: see ops_gen.h. */
#include "ops_gen.h"

#include "dtype.h"
#include "m2u_error.h"
#include "vmath.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* The dot products below are the whole cost of a decoding step (every weight of the
 * model is read once per step), so they get an AVX2/FMA clone where the compiler and
 * CPU allow it; the default build targets plain x86-64 (SSE2).  Sanitizer builds keep
 * the one portable version (an ifunc resolver runs before the sanitizer runtime is up). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define M2U_GEN_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define M2U_GEN_CLONES
#endif

/* Rows [0, nr) of W (fp32, row length K) against N <= 4 input rows x [N][K]:
 * y[n*ldy + r] = x_n . W_r + bias[r].  Each weight row is loaded once for all inputs. */
M2U_GEN_CLONES
static void rows_f32(float *y, int ldy, const float *x, int N, const float *W, int K, int nr, const float *bias) {
    /* inputs past N alias x0; their sums are computed and dropped (cheaper than 4 loop variants) */
    const float *x0 = x, *x1 = x + (N > 1 ? K : 0), *x2 = x + (N > 2 ? 2 * K : 0), *x3 = x + (N > 3 ? 3 * K : 0);
    if (N == 2) {
        /* the CFG step: two inputs, no dropped sums */
        for (int r = 0; r < nr; r++) {
            const float *w = W + (size_t)r * K;
            float s0 = 0, s1 = 0;
#pragma omp simd reduction(+ : s0, s1)
            for (int i = 0; i < K; i++) {
                s0 += w[i] * x0[i];
                s1 += w[i] * x1[i];
            }
            float b = bias ? bias[r] : 0.0f;
            y[r] = s0 + b, y[(size_t)ldy + r] = s1 + b;
        }
        return;
    }
    for (int r = 0; r < nr; r++) {
        const float *w = W + (size_t)r * K;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
        for (int i = 0; i < K; i++) {
            float wi = w[i];
            s0 += wi * x0[i];
            s1 += wi * x1[i];
            s2 += wi * x2[i];
            s3 += wi * x3[i];
        }
        float b = bias ? bias[r] : 0.0f, s[4] = {s0, s1, s2, s3};
        for (int n = 0; n < N; n++) y[(size_t)n * ldy + r] = s[n] + b;
    }
}

#define GEN_BLOCK_ROWS 16 /* 16-bit weights are widened this many rows at a time */

static void act_rows(float *y, int ldy, int N, int c0, int c1, m2u_gen_act act) {
    if (act == M2U_GEN_ACT_NONE) return;
    for (int n = 0; n < N; n++) {
        float *r = y + (size_t)n * ldy;
        for (int i = c0; i < c1; i++) {
            float v = r[i];
            /* the GELU of m2u_gelu_fwd (kernels/cpu/vmath.h), tanhf as m2u_gelu_tanh_fwd */
            if (act == M2U_GEN_ACT_GELU) r[i] = m2u_vgelu(v);
            else if (act == M2U_GEN_ACT_GELU_TANH)
                r[i] = 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
            else r[i] = v > 0.0f ? v : 0.0f;
        }
    }
}

void m2u_gen_linear_many(const m2u_gen_out *outs, int n_outs, const float *x, int N, m2u_gen_act act) {
    if (N <= 0 || n_outs <= 0) return;
    int K = outs[0].w->cols, direct = N <= 4, any16 = 0;
    long long R = 0;
    for (int i = 0; i < n_outs; i++) {
        const m2u_mat *w = outs[i].w;
        R += w->rows;
        if (w->dtype == M2U_BF16 || w->dtype == M2U_F16) any16 = 1;
        else if (!(w->dtype == M2U_F32 && ((uintptr_t)w->data % sizeof(float)) == 0)) direct = 0;
    }
    int nt = omp_get_max_threads();
    float *bufs = NULL;
    if (direct && any16 && !(bufs = malloc((size_t)nt * GEN_BLOCK_ROWS * K * sizeof(float)))) direct = 0;
    if (!direct) {
        /* BLAS: batches of more than 4 rows (the cross-attention K/V of the conditioning),
         * unaligned fp32, or no memory for the widening buffers */
        for (int i = 0; i < n_outs; i++) {
            const m2u_gen_out *o = &outs[i];
            int Ri = o->w->rows;
            m2u_matmul_wt(o->y, o->ldy, x, N, o->w, 0, Ri, 0.0f);
            if (o->bias)
                for (int n = 0; n < N; n++)
                    for (int r = 0; r < Ri; r++) o->y[(size_t)n * o->ldy + r] += o->bias[r];
            act_rows(o->y, o->ldy, N, 0, Ri, act);
        }
        return;
    }
    /* One parallel region for all matrices: the rows of [W_0; W_1; ...] are split evenly over
     * the threads, so q/k/v (or the K heads) cost one fork/join instead of several. */
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n_t = omp_get_num_threads();
        long long g0 = R * t / n_t, g1 = R * (t + 1) / n_t, off = 0;
        float *buf = bufs ? bufs + (size_t)t * GEN_BLOCK_ROWS * K : NULL;
        for (int i = 0; i < n_outs; i++) {
            const m2u_gen_out *o = &outs[i];
            const m2u_mat *w = o->w;
            long long lo = g0 > off ? g0 : off, hi = g1 < off + w->rows ? g1 : off + w->rows;
            if (lo < hi) {
                int r0 = (int)(lo - off), r1 = (int)(hi - off);
                if (w->dtype == M2U_F32) {
                    rows_f32(o->y + r0, o->ldy, x, N, (const float *)w->data + (size_t)r0 * K, K, r1 - r0,
                             o->bias ? o->bias + r0 : NULL);
                } else {
                    size_t es = m2u_dtype_size(w->dtype);
                    for (int rb = r0; rb < r1; rb += GEN_BLOCK_ROWS) {
                        int nb = r1 - rb < GEN_BLOCK_ROWS ? r1 - rb : GEN_BLOCK_ROWS;
                        m2u_convert_to_f32(w->dtype, (const char *)w->data + (size_t)rb * K * es, buf, (size_t)nb * K);
                        rows_f32(o->y + rb, o->ldy, x, N, buf, K, nb, o->bias ? o->bias + rb : NULL);
                    }
                }
                /* the activation on this thread's own columns: no extra pass, no barrier */
                act_rows(o->y, o->ldy, N, r0, r1, act);
            }
            off += w->rows;
        }
    }
    free(bufs);
}

void m2u_gen_linear(float *y, const float *x, int N, const m2u_mat *w, const float *bias) {
    m2u_gen_out o = {y, w->rows, w, bias};
    m2u_gen_linear_many(&o, 1, x, N, M2U_GEN_ACT_NONE);
}

void m2u_gen_layernorm(float *out, const float *x, const float *w, const float *b, int N, int C, float eps) {
    /* the arithmetic of ops_extra.c's m2u_layernorm_fwd (double sums, fp32 output), serial */
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float *o = out + (size_t)n * C;
        double s = 0.0;
        for (int i = 0; i < C; i++) s += xr[i];
        double mu = s / C, v = 0.0;
        for (int i = 0; i < C; i++) {
            double d = xr[i] - mu;
            v += d * d;
        }
        float m = (float)mu, r = (float)(1.0 / sqrt(v / C + (double)eps));
        for (int i = 0; i < C; i++) o[i] = (xr[i] - m) * r * w[i] + b[i];
    }
}

void m2u_gen_key_bias(float *key_bias, const int32_t *mask, size_t n) {
    for (size_t i = 0; i < n; i++) key_bias[i] = mask[i] ? 0.0f : -FLT_MAX;
}

void m2u_gen_sinusoid(float *out, int pos0, int n, int dim) {
    int half = dim / 2;
    /* get_embedding: emb = log(10000) / (half - 1) in double; exp(arange(half).float() * -emb)
     * in fp32 (the Python float is rounded to fp32 by the tensor op); positions times the
     * frequencies in fp32; then cos | sin.  half == 1 divides by zero in torch too (inf). */
    float c = (float)(log(10000.0) / (double)(half - 1));
    for (int p = 0; p < n; p++) {
        float *o = out + (size_t)p * dim;
        float pos = (float)(pos0 + p);
        for (int i = 0; i < half; i++) {
            float f = expf((float)i * -c);
            float a = pos * f;
            o[i] = cosf(a);
            o[half + i] = sinf(a);
        }
        if (dim % 2) o[dim - 1] = 0.0f;
    }
}

void m2u_gen_cfg(float *out, const float *cond, const float *uncond, size_t n, float g) {
    for (size_t i = 0; i < n; i++) out[i] = uncond[i] + g * (cond[i] - uncond[i]);
}

int m2u_gen_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x < y) - (x > y);
}

/* ascending by value, index order on ties (deterministic) */
static _Thread_local const float *g_sort_vals;
static int cmp_idx_asc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    float x = g_sort_vals[i], y = g_sort_vals[j];
    if (x < y) return -1;
    if (x > y) return 1;
    return (i > j) - (i < j);
}

size_t m2u_gen_sample_scratch(int n) { return (size_t)n * (2 * sizeof(float) + sizeof(int)); }

int m2u_gen_sample(const float *logits, int n, const m2u_gen_sampling *s, m2u_rng *r, void *scratch) {
    float *sc = scratch, *tmp = sc + n;
    int *idx = (int *)(tmp + n);
    float t = s->temperature > 0 ? s->temperature : 1.0f;
    for (int i = 0; i < n; i++) sc[i] = logits[i] / t;
    if (s->top_k > 0 && s->top_k < n) {
        memcpy(tmp, sc, (size_t)n * sizeof(float));
        qsort(tmp, (size_t)n, sizeof(float), cmp_desc);
        float thr = tmp[s->top_k - 1];
        for (int i = 0; i < n; i++)
            if (sc[i] < thr) sc[i] = -INFINITY;
    }
    if (s->top_p < 1.0f) {
        for (int i = 0; i < n; i++) idx[i] = i;
        /* qsort has no context argument; the sampler runs on one thread per call */
        g_sort_vals = sc;
        qsort(idx, (size_t)n, sizeof(int), cmp_idx_asc);
        float mx = sc[idx[n - 1]], sum = 0;
        for (int i = 0; i < n; i++) sum += (tmp[i] = expf(sc[idx[i]] - mx));
        float cum = 0;
        /* remove while the cumulative probability (ascending) is <= 1 - top_p; keep the last */
        for (int i = 0; i < n - 1; i++) {
            cum += tmp[i] / sum;
            if (cum <= 1.0f - s->top_p) sc[idx[i]] = -INFINITY;
        }
    }
    float mx = sc[m2u_gen_argmax(sc, n)], sum = 0;
    for (int i = 0; i < n; i++) sum += (tmp[i] = (sc[i] == -INFINITY) ? 0.0f : expf(sc[i] - mx));
    float u = m2u_rng_uniform(r) * sum, acc = 0;
    int last = 0;
    for (int i = 0; i < n; i++) {
        if (tmp[i] <= 0) continue;
        acc += tmp[i];
        last = i;
        if (u < acc) return i;
    }
    return last; /* rounding left u at the very top: the last kept token */
}
