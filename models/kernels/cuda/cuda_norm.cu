/* The CUDA backend's reductions (issue 14): the norms (RMSNorm, LayerNorm, L2 and their
 * backwards, T5's double-sum RMSNorm, the post-norm residual backward, MERT's zero-mean /
 * unit-variance input and per-channel statistics), the row softmax, the losses (cross-entropy,
 * MSE) and the optimizer (AdamW, the gradient norm and clipping).
 *
 * Each op follows its CPU counterpart in models/kernels/cpu (ops.c, ops_extra.c, tensor.c,
 * adamw.c): the same outputs written or accumulated, the same NULL-able gradients, the same
 * float-or-double accumulator for every sum, the same formulas in the same order.  Only the
 * order inside a sum differs (a tree over a block instead of a serial loop).
 *
 * Products that the CPU rounds before an add are written __fmul_rn (fmul below): nvcc would
 * otherwise fuse them into an FMA, which the CPU build (ISO C11, no -march) never does, so the
 * element-wise parts round as the CPU's do (the MSE's fp32 scaled target, AdamW's moments).
 *
 * Row reductions run one block per row (warp shuffles, then one value per warp in shared
 * memory).  Sums over a whole buffer run in two fixed passes (per-block partials into scratch,
 * then one block over the partials), so results do not depend on scheduling.  Column sums over
 * N rows (dw, db, channel statistics) split the rows into chunks summed in order, then add the
 * chunks in order: the CPU's order exactly when there is one chunk (N <= 64). */
#include "cuda_internal.h"

#include <math.h>

namespace {

constexpr int ROW_MAX = 512;      /* threads of a row block: C = 4096 gives 8 elements each */
constexpr int RED_BLOCKS = 1024;  /* partial sums of a whole-buffer reduction */
constexpr int COL_ROWS = 64;      /* rows per chunk of a column sum */
constexpr int COL_CHUNKS = 256;   /* at most this many chunks (more rows per chunk beyond) */

__device__ __forceinline__ float fmul(float a, float b) { return __fmul_rn(a, b); }

template <class T> __device__ __forceinline__ T warp_sum(T v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* The CPU's running max `x > mx ? x : mx`: NaNs never win. */
__device__ __forceinline__ float max_keep(float mx, float x) { return x > mx ? x : mx; }

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = max_keep(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over the block, returned to every thread.  blockDim.x is a multiple of 32.  The first
 * barrier keeps a previous call's readers of part[] ahead of this call's writers. */
template <class T> __device__ T block_sum(T v) {
    __shared__ T part[32];
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) part[wid] = v;
    __syncthreads();
    return warp_sum(lane < nw ? part[lane] : T(0));
}

__device__ float block_max(float v) {
    __shared__ float part[32];
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) part[wid] = v;
    __syncthreads();
    return warp_max(lane < nw ? part[lane] : -INFINITY);
}

unsigned row_threads(int C) {
    int t = (C + 31) / 32 * 32;
    return (unsigned)(t < 32 ? 32 : t > ROW_MAX ? ROW_MAX : t);
}

/* Blocks of an element-wise grid-stride kernel. */
unsigned ew_blocks(size_t n) {
    unsigned b = M2U_CUDA_GRID(n);
    return b > (1u << 20) ? (1u << 20) : b;
}

/* ---- whole-buffer sums: per-block partials, then one block over them ---- */

template <class F> __global__ void k_partial_sum(F f, size_t n, double *part) {
    double s = 0.0;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        s += f(i);
    s = block_sum(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}

__global__ void k_finish_sum(const double *part, int nb, double *out) {
    double s = 0.0;
    for (int i = threadIdx.x; i < nb; i += blockDim.x) s += part[i];
    s = block_sum(s);
    if (threadIdx.x == 0) *out = s;
}

unsigned red_blocks(size_t n) {
    unsigned b = M2U_CUDA_GRID(n);
    return b < 1 ? 1 : b > (unsigned)RED_BLOCKS ? (unsigned)RED_BLOCKS : b;
}

/* sum of f(i), i < n, into part[nb] (part holds nb + 1 doubles, nb = red_blocks(n)) */
template <class F> void device_sum(F f, size_t n, double *part, const char *what) {
    unsigned nb = red_blocks(n);
    k_partial_sum<<<nb, M2U_CUDA_THREADS>>>(f, n, part);
    m2u_cuda_note_launch(what);
    k_finish_sum<<<1, M2U_CUDA_THREADS>>>(part, (int)nb, part + nb);
    m2u_cuda_note_launch(what);
}

/* The device double at src, on the host (synchronous); NaN when this or an earlier op failed. */
double to_host(const double *src, const char *what) {
    double h = NAN;
    m2u_cuda_note(cudaMemcpy(&h, src, sizeof h, cudaMemcpyDeviceToHost), what);
    return m2u_cuda_failed() ? NAN : h;
}

struct SquareSum { /* m2u_grad_norm's (double)g * g */
    const float *g;
    __device__ double operator()(size_t i) const {
        double v = g[i];
        return v * v;
    }
};

struct MseSum { /* the difference in fp32 with the target scaled first, squared in double */
    const float *p, *t;
    float s;
    __device__ double operator()(size_t i) const {
        float d = p[i] - fmul(s, t[i]);
        return (double)d * d;
    }
};

struct PlainSum {
    const float *x;
    __device__ double operator()(size_t i) const { return x[i]; }
};

struct DevSum { /* squared deviation from the float mean at *mean, in double */
    const float *x, *mean;
    __device__ double operator()(size_t i) const {
        double d = (double)x[i] - (double)*mean;
        return d * d;
    }
};

/* ---- column sums over rows: chunk partials, then the chunks in order ---- */

struct Chunks {
    int n, rows; /* chunk count, rows per chunk */
};

Chunks col_chunks(int N) {
    int n = (N + COL_ROWS - 1) / COL_ROWS;
    if (n < 1) n = 1;
    if (n > COL_CHUNKS) n = COL_CHUNKS;
    int rows = (N + n - 1) / n;
    return {n, rows < 1 ? 1 : rows};
}

/* ---- RMSNorm ---- */

__global__ void __launch_bounds__(ROW_MAX)
    k_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int C, float eps) {
    size_t row = blockIdx.x;
    const float *xr = x + row * C;
    float *o = out + row * C;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < C; i += blockDim.x) ss += fmul(xr[i], xr[i]);
    ss = block_sum(ss);
    float r = 1.0f / sqrtf(ss / (float)C + eps);
    for (int i = threadIdx.x; i < C; i += blockDim.x) o[i] = w[i] * (xr[i] * r);
    if (threadIdx.x == 0) rstd[row] = r;
}

__global__ void __launch_bounds__(ROW_MAX)
    k_rmsnorm_bwd_dx(float *dx, const float *dout, const float *x, const float *w, const float *rstd, int C) {
    size_t row = blockIdx.x;
    const float *xr = x + row * C, *dy = dout + row * C;
    float *d = dx + row * C;
    float r = rstd[row], dot = 0.0f;
    for (int i = threadIdx.x; i < C; i += blockDim.x) dot += fmul(fmul(w[i], dy[i]), xr[i]);
    dot = block_sum(dot);
    float c = dot * r * r * r / (float)C;
    for (int i = threadIdx.x; i < C; i += blockDim.x) d[i] += fmul(fmul(w[i], dy[i]), r) - fmul(c, xr[i]);
}

/* part[chunk][C] = sum over the chunk's rows of dout * x * rstd (float, rows in order) */
__global__ void k_rmsnorm_bwd_dw_part(float *part, const float *dout, const float *x, const float *rstd, int N, int C,
                                      int rows) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= C) return;
    int n0 = blockIdx.y * rows, n1 = n0 + rows < N ? n0 + rows : N;
    float acc = 0.0f;
    for (int n = n0; n < n1; n++) acc += fmul(fmul(dout[(size_t)n * C + i], x[(size_t)n * C + i]), rstd[n]);
    part[(size_t)blockIdx.y * C + i] = acc;
}

/* dst[i] += the chunks' partials of column i, in chunk order */
__global__ void k_add_chunks(float *dst, const float *part, int nch, int C) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= C) return;
    float acc = 0.0f;
    for (int k = 0; k < nch; k++) acc += part[(size_t)k * C + i];
    dst[i] += acc;
}

__global__ void __launch_bounds__(ROW_MAX)
    k_rmsnorm_dsum_fwd(float *out, const float *x, const float *w, int C, float eps) {
    size_t row = blockIdx.x;
    const float *xr = x + row * C;
    double ss = 0.0;
    for (int i = threadIdx.x; i < C; i += blockDim.x) ss += (double)xr[i] * xr[i];
    ss = block_sum(ss);
    float rs = 1.0f / sqrtf((float)(ss / C) + eps);
    for (int i = threadIdx.x; i < C; i += blockDim.x) out[row * C + i] = w[i] * (xr[i] * rs);
}

/* ---- LayerNorm ---- */

__global__ void __launch_bounds__(ROW_MAX) k_layernorm_fwd(float *out, float *mean, float *rstd, const float *x,
                                                           const float *w, const float *b, int C, float eps) {
    size_t row = blockIdx.x;
    const float *xr = x + row * C;
    float *o = out + row * C;
    double s = 0.0;
    for (int i = threadIdx.x; i < C; i += blockDim.x) s += xr[i];
    s = block_sum(s);
    double mu = s / C, v = 0.0;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
        double d = xr[i] - mu;
        v += d * d;
    }
    v = block_sum(v);
    float m = (float)mu, r = (float)(1.0 / sqrt(v / C + (double)eps));
    for (int i = threadIdx.x; i < C; i += blockDim.x) o[i] = fmul(fmul(xr[i] - m, r), w[i]) + b[i];
    if (threadIdx.x == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

/* dx of the LayerNorm backward.  RESID: the post-norm residual's form, A = G = the gradient
 * (0 + value as the CPU's memset-then-accumulate gives), dout being G itself: each element of
 * G is read by its own thread before that thread overwrites it, the sums being complete by then. */
template <bool RESID>
__global__ void __launch_bounds__(ROW_MAX) k_layernorm_bwd_dx(float *dx, float *G, const float *dout, const float *x,
                                                              const float *w, const float *mean, const float *rstd,
                                                              int C) {
    size_t row = blockIdx.x;
    const float *xr = x + row * C, *dy = dout + row * C;
    float *d = dx + row * C;
    float m = mean[row], r = rstd[row];
    double s1 = 0.0, s2 = 0.0;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
        double dxh = (double)dy[i] * w[i];
        s1 += dxh;
        s2 += dxh * fmul(xr[i] - m, r);
    }
    s1 = block_sum(s1);
    s2 = block_sum(s2);
    float a = (float)(s1 / C), c = (float)(s2 / C);
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
        float xh = fmul(xr[i] - m, r);
        float val = fmul(r, fmul(dy[i], w[i]) - a - fmul(xh, c));
        if (RESID) {
            float v0 = 0.0f + val;
            d[i] = v0;
            G[row * C + i] = v0;
        } else {
            d[i] += val;
        }
    }
}

/* partials of dw (dout * (x - mean) * rstd) and db (dout), [chunk][C] each, float in row order */
__global__ void k_layernorm_bwd_wb_part(float *pw, float *pb, const float *dout, const float *x, const float *mean,
                                        const float *rstd, int N, int C, int rows) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= C) return;
    int n0 = blockIdx.y * rows, n1 = n0 + rows < N ? n0 + rows : N;
    float aw = 0.0f, ab = 0.0f;
    for (int n = n0; n < n1; n++) {
        float dy = dout[(size_t)n * C + i];
        aw += fmul(fmul(dy, x[(size_t)n * C + i] - mean[n]), rstd[n]);
        ab += dy;
    }
    pw[(size_t)blockIdx.y * C + i] = aw;
    pb[(size_t)blockIdx.y * C + i] = ab;
}

/* dw / db (either NULL) += the column sums of the LayerNorm's parameter gradients */
void layernorm_wb(float *dw, float *db, const float *dout, const float *x, const float *mean, const float *rstd, int N,
                  int C) {
    if ((!dw && !db) || C <= 0 || N < 0) return;
    Chunks ch = col_chunks(N);
    size_t np = (size_t)ch.n * C;
    float *pw = (float *)m2u_cuda_scratch(2 * np * sizeof(float));
    if (!pw) return;
    float *pb = pw + np;
    dim3 grid(M2U_CUDA_GRID(C), (unsigned)ch.n);
    k_layernorm_bwd_wb_part<<<grid, M2U_CUDA_THREADS>>>(pw, pb, dout, x, mean, rstd, N, C, ch.rows);
    m2u_cuda_note_launch("layernorm_bwd dw/db");
    if (dw) {
        k_add_chunks<<<M2U_CUDA_GRID(C), M2U_CUDA_THREADS>>>(dw, pw, ch.n, C);
        m2u_cuda_note_launch("layernorm_bwd dw");
    }
    if (db) {
        k_add_chunks<<<M2U_CUDA_GRID(C), M2U_CUDA_THREADS>>>(db, pb, ch.n, C);
        m2u_cuda_note_launch("layernorm_bwd db");
    }
}

/* ---- L2 normalisation ---- */

__global__ void __launch_bounds__(ROW_MAX) k_l2norm_fwd(float *out, float *norm, const float *x, int C, float eps) {
    size_t row = blockIdx.x;
    const float *xr = x + row * C;
    float *o = out + row * C;
    double ss = 0.0;
    for (int i = threadIdx.x; i < C; i += blockDim.x) ss += (double)xr[i] * xr[i];
    ss = block_sum(ss);
    float nr = (float)sqrt(ss);
    float den = nr > eps ? nr : eps;
    for (int i = threadIdx.x; i < C; i += blockDim.x) o[i] = xr[i] / den;
    if (threadIdx.x == 0) norm[row] = nr;
}

__global__ void __launch_bounds__(ROW_MAX)
    k_l2norm_bwd(float *dx, const float *dout, const float *out, const float *norm, int C, float eps) {
    size_t row = blockIdx.x;
    const float *dy = dout + row * C, *y = out + row * C;
    float *d = dx + row * C;
    float nr = norm[row];
    if (!(nr > eps)) { /* clamped: the denominator is the constant eps (uniform over the block) */
        for (int i = threadIdx.x; i < C; i += blockDim.x) d[i] += dy[i] / eps;
        return;
    }
    double dot = 0.0;
    for (int i = threadIdx.x; i < C; i += blockDim.x) dot += (double)y[i] * dy[i];
    dot = block_sum(dot);
    float fd = (float)dot;
    for (int i = threadIdx.x; i < C; i += blockDim.x) d[i] += (dy[i] - fmul(y[i], fd)) / nr;
}

/* ---- MERT's input normalisation and per-channel statistics ---- */

/* stat[0] = float mean of the sum at *sum */
__global__ void k_zmuv_mean(float *stat, const double *sum, long n) { stat[0] = (float)(*sum / (double)n); }

/* stat[1] = float sqrt(float variance + eps) */
__global__ void k_zmuv_den(float *stat, const double *sum, long n, double eps) {
    float var = (float)(*sum / (double)n);
    stat[1] = (float)sqrt((double)var + eps);
}

__global__ void k_zmuv_apply(float *out, const float *x, size_t n, const float *stat) {
    float mean = stat[0], den = stat[1];
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = (x[i] - mean) / den;
}

/* part[chunk][C]: double sums over the chunk's rows (time order) of x, or with mean set, of
 * (x - mean[c])^2 */
__global__ void k_cs_part(double *part, const float *x, const double *mean, int T, int C, int rows) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    int t0 = blockIdx.y * rows, t1 = t0 + rows < T ? t0 + rows : T;
    double s = 0.0;
    if (!mean) {
        for (int t = t0; t < t1; t++) s += x[(size_t)t * C + c];
    } else {
        double m = mean[c];
        for (int t = t0; t < t1; t++) {
            double d = x[(size_t)t * C + c] - m;
            s += d * d;
        }
    }
    part[(size_t)blockIdx.y * C + c] = s;
}

/* work[c] = mean (the CPU's s[] after s /= T) */
__global__ void k_cs_mean(double *work, const double *part, int nch, int T, int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double s = 0.0;
    for (int k = 0; k < nch; k++) s += part[(size_t)k * C + c];
    work[c] = s / T;
}

/* work[C + c] = the squared deviations' sum; mean and rstd out */
__global__ void k_cs_var(float *mean, float *rstd, double *work, const double *part, int nch, int T, int C,
                         double eps) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    double v = 0.0;
    for (int k = 0; k < nch; k++) v += part[(size_t)k * C + c];
    work[C + c] = v;
    mean[c] = (float)work[c];
    rstd[c] = (float)(1.0 / sqrt(v / T + eps));
}

/* ---- softmax ---- */

__global__ void __launch_bounds__(ROW_MAX) k_softmax_fwd(float *x, int V) {
    float *r = x + (size_t)blockIdx.x * V;
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = max_keep(mx, r[i]);
    mx = block_max(mx);
    float sum = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float e = expf(r[i] - mx);
        r[i] = e;
        sum += e;
    }
    sum = block_sum(sum);
    for (int i = threadIdx.x; i < V; i += blockDim.x) r[i] /= sum;
}

__global__ void __launch_bounds__(ROW_MAX) k_softmax_bwd(float *dx, const float *dy, const float *y, int V) {
    size_t row = blockIdx.x;
    const float *yr = y + row * V, *dr = dy + row * V;
    float *o = dx + row * V;
    double dot = 0.0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) dot += (double)yr[i] * dr[i];
    dot = block_sum(dot);
    float fd = (float)dot;
    for (int i = threadIdx.x; i < V; i += blockDim.x) o[i] += fmul(yr[i], dr[i] - fd);
}

/* ---- losses ---- */

/* Row n's log-sum-exp into lse[n] (0 for an ignored row), its loss lse - logit[target] into
 * loss[n] and whether it counts into valid[n]. */
__global__ void __launch_bounds__(ROW_MAX) k_ce_fwd_rows(float *lse, double *loss, int *valid, const float *logits,
                                                         const int32_t *targets, int V) {
    size_t n = blockIdx.x;
    const float *l = logits + n * V;
    int t = targets[n];
    if (t < 0 || t >= V) { /* the whole block leaves together */
        if (threadIdx.x == 0) {
            lse[n] = 0.0f;
            loss[n] = 0.0;
            valid[n] = 0;
        }
        return;
    }
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < V; i += blockDim.x) mx = max_keep(mx, l[i]);
    mx = block_max(mx);
    /* float exponentials summed in double, as the CPU */
    double sum = 0.0;
    for (int i = threadIdx.x; i < V; i += blockDim.x) sum += (double)expf(l[i] - mx);
    sum = block_sum(sum);
    if (threadIdx.x == 0) {
        double row_lse = (double)mx + log(sum);
        lse[n] = (float)row_lse;
        loss[n] = row_lse - (double)l[t];
        valid[n] = 1;
    }
}

/* res[0] = total loss, res[1] = counted rows */
__global__ void __launch_bounds__(1024) k_ce_total(double *res, const double *loss, const int *valid, int N) {
    double s = 0.0;
    int c = 0;
    for (int n = threadIdx.x; n < N; n += blockDim.x) {
        s += loss[n];
        c += valid[n];
    }
    s = block_sum(s);
    c = block_sum(c);
    if (threadIdx.x == 0) {
        res[0] = s;
        res[1] = (double)c;
    }
}

__global__ void k_ce_bwd(float *dlogits, const float *logits, const float *lse, const int32_t *targets, int V,
                         size_t total, float grad_scale) {
    for (size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x; k < total; k += (size_t)gridDim.x * blockDim.x) {
        size_t n = k / (size_t)V;
        int i = (int)(k - n * (size_t)V), t = targets[n];
        if (t < 0 || t >= V) {
            dlogits[k] = 0.0f;
            continue;
        }
        /* softmax x scale, then the scale off at the target: two roundings, as the CPU's */
        float v = fmul(expf(logits[k] - lse[n]), grad_scale);
        if (i == t) v -= grad_scale;
        dlogits[k] = v;
    }
}

__global__ void k_mse_bwd(float *dpred, const float *pred, const float *target, float s, size_t n, float c) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dpred[i] += fmul(c, pred[i] - fmul(s, target[i]));
}

/* ---- optimizer ---- */

__global__ void k_adamw(float *w, float *m, float *v, const float *g, size_t n, float b1, float c1, float b2, float c2,
                        float eps, float decay, float step_size, float bc2_sqrt) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float gi = g[i];
        float wi = fmul(w[i], decay);
        float mi = fmul(b1, m[i]) + fmul(c1, gi);
        float vi = fmul(b2, v[i]) + fmul(fmul(c2, gi), gi);
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        wi -= fmul(step_size, mi) / denom;
        m[i] = mi;
        v[i] = vi;
        w[i] = wi;
    }
}

__global__ void k_clip(float *grad, size_t n, double coef) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        grad[i] = (float)(grad[i] * coef);
}

} // namespace

extern "C" {

/* ---- norms ---- */

void m2u_cuda_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps) {
    if (N <= 0) return;
    k_rmsnorm_fwd<<<(unsigned)N, row_threads(C)>>>(out, rstd, x, w, C, eps);
    m2u_cuda_note_launch("rmsnorm_fwd");
}

void m2u_cuda_rmsnorm_bwd(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                          int N, int C) {
    if (N > 0) {
        k_rmsnorm_bwd_dx<<<(unsigned)N, row_threads(C)>>>(dx, dout, x, w, rstd, C);
        m2u_cuda_note_launch("rmsnorm_bwd dx");
    }
    if (dw && C > 0 && N >= 0) {
        Chunks ch = col_chunks(N);
        float *part = (float *)m2u_cuda_scratch((size_t)ch.n * C * sizeof(float));
        if (!part) return;
        k_rmsnorm_bwd_dw_part<<<dim3(M2U_CUDA_GRID(C), (unsigned)ch.n), M2U_CUDA_THREADS>>>(part, dout, x, rstd, N,
                                                                                               C, ch.rows);
        m2u_cuda_note_launch("rmsnorm_bwd dw");
        k_add_chunks<<<M2U_CUDA_GRID(C), M2U_CUDA_THREADS>>>(dw, part, ch.n, C);
        m2u_cuda_note_launch("rmsnorm_bwd dw");
    }
}

void m2u_cuda_layernorm_fwd(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int N,
                            int C, float eps) {
    if (N <= 0) return;
    k_layernorm_fwd<<<(unsigned)N, row_threads(C)>>>(out, mean, rstd, x, w, b, C, eps);
    m2u_cuda_note_launch("layernorm_fwd");
}

void m2u_cuda_layernorm_bwd(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                            const float *mean, const float *rstd, int N, int C) {
    /* dx first, then dw/db, as the CPU (they would differ if dx aliased dout) */
    if (dx && N > 0) {
        k_layernorm_bwd_dx<false><<<(unsigned)N, row_threads(C)>>>(dx, NULL, dout, x, w, mean, rstd, C);
        m2u_cuda_note_launch("layernorm_bwd dx");
    }
    layernorm_wb(dw, db, dout, x, mean, rstd, N, C);
}

void m2u_cuda_l2norm_fwd(float *out, float *norm, const float *x, int N, int C, float eps) {
    if (N <= 0) return;
    k_l2norm_fwd<<<(unsigned)N, row_threads(C)>>>(out, norm, x, C, eps);
    m2u_cuda_note_launch("l2norm_fwd");
}

void m2u_cuda_l2norm_bwd(float *dx, const float *dout, const float *out, const float *norm, int N, int C, float eps) {
    if (N <= 0) return;
    k_l2norm_bwd<<<(unsigned)N, row_threads(C)>>>(dx, dout, out, norm, C, eps);
    m2u_cuda_note_launch("l2norm_bwd");
}

/* ---- network-specific pieces ---- */

void m2u_cuda_rmsnorm_dsum_fwd(float *out, const float *x, const float *w, int N, int C, float eps) {
    if (N <= 0) return;
    k_rmsnorm_dsum_fwd<<<(unsigned)N, row_threads(C)>>>(out, x, w, C, eps);
    m2u_cuda_note_launch("rmsnorm_dsum_fwd");
}

void m2u_cuda_layernorm_residual_bwd(float *G, float *A, float *dw, float *db, const float *r, const float *w,
                                     const float *mean, const float *rstd, int N, int C) {
    /* The CPU clears A, accumulates the LayerNorm backward of G into it (dx, then dw/db from G),
     * then copies A into G.  Here dw/db read G first and one row pass then writes A and G. */
    layernorm_wb(dw, db, G, r, mean, rstd, N, C);
    if (N > 0 && C > 0) {
        k_layernorm_bwd_dx<true><<<(unsigned)N, row_threads(C)>>>(A, G, G, r, w, mean, rstd, C);
        m2u_cuda_note_launch("layernorm_residual_bwd");
    }
}

void m2u_cuda_zero_mean_unit_var(float *out, const float *x, long n, double eps) {
    if (n <= 0) return;
    size_t nn = (size_t)n;
    unsigned nb = red_blocks(nn);
    /* partials [nb], the sum, then the float mean and denominator */
    double *part = (double *)m2u_cuda_scratch(((size_t)nb + 2) * sizeof(double));
    if (!part) return;
    float *stat = (float *)(part + nb + 1);
    device_sum(PlainSum{x}, nn, part, "zero_mean_unit_var mean");
    k_zmuv_mean<<<1, 1>>>(stat, part + nb, n);
    m2u_cuda_note_launch("zero_mean_unit_var mean");
    device_sum(DevSum{x, stat}, nn, part, "zero_mean_unit_var variance");
    k_zmuv_den<<<1, 1>>>(stat, part + nb, n, eps);
    m2u_cuda_note_launch("zero_mean_unit_var variance");
    k_zmuv_apply<<<ew_blocks(nn), M2U_CUDA_THREADS>>>(out, x, nn, stat);
    m2u_cuda_note_launch("zero_mean_unit_var");
}

void m2u_cuda_channel_stats(float *mean, float *rstd, double *work, const float *x, int T, int C, double eps) {
    /* work [2 C] doubles ends as the CPU leaves it: the means, then the squared deviations' sums */
    if (C <= 0) return;
    Chunks ch = col_chunks(T);
    double *part = (double *)m2u_cuda_scratch((size_t)ch.n * C * sizeof(double));
    if (!part) return;
    dim3 grid(M2U_CUDA_GRID(C), (unsigned)ch.n);
    k_cs_part<<<grid, M2U_CUDA_THREADS>>>(part, x, NULL, T, C, ch.rows);
    m2u_cuda_note_launch("channel_stats sums");
    k_cs_mean<<<M2U_CUDA_GRID(C), M2U_CUDA_THREADS>>>(work, part, ch.n, T, C);
    m2u_cuda_note_launch("channel_stats mean");
    k_cs_part<<<grid, M2U_CUDA_THREADS>>>(part, x, work, T, C, ch.rows);
    m2u_cuda_note_launch("channel_stats deviations");
    k_cs_var<<<M2U_CUDA_GRID(C), M2U_CUDA_THREADS>>>(mean, rstd, work, part, ch.n, T, C, eps);
    m2u_cuda_note_launch("channel_stats rstd");
}

/* ---- softmax ---- */

void m2u_cuda_softmax_fwd(float *x, int N, int V) {
    if (N <= 0 || V <= 0) return;
    k_softmax_fwd<<<(unsigned)N, row_threads(V)>>>(x, V);
    m2u_cuda_note_launch("softmax_fwd");
}

void m2u_cuda_softmax_bwd(float *dx, const float *dy, const float *y, int N, int V) {
    if (N <= 0 || V <= 0) return;
    k_softmax_bwd<<<(unsigned)N, row_threads(V)>>>(dx, dy, y, V);
    m2u_cuda_note_launch("softmax_bwd");
}

/* ---- losses ---- */

/* The rows' maxima and sums, then (dlogits) a second kernel for softmax - onehot from the
 * log-sum-exp: on a GPU the logits' second read is cheap next to the head's product, and the
 * two kernels are the ones the fixtures checked before the op was fused on the CPU. */
double m2u_cuda_cross_entropy(const float *logits, const int32_t *targets, int N, int V, float *lse, int *n_valid,
                              float *dlogits) {
    if (n_valid) *n_valid = 0;
    if (N <= 0) return 0.0;
    /* res[2] (total, count), loss[N], valid[N] */
    double *res = (double *)m2u_cuda_scratch((2 + (size_t)N) * sizeof(double) + (size_t)N * sizeof(int));
    if (!res) return NAN;
    double *loss = res + 2;
    int *valid = (int *)(loss + N);
    k_ce_fwd_rows<<<(unsigned)N, row_threads(V)>>>(lse, loss, valid, logits, targets, V);
    m2u_cuda_note_launch("cross_entropy_fwd");
    k_ce_total<<<1, 1024>>>(res, loss, valid, N);
    m2u_cuda_note_launch("cross_entropy_fwd total");
    double h[2] = {NAN, 0.0};
    m2u_cuda_note(cudaMemcpy(h, res, sizeof h, cudaMemcpyDeviceToHost), "cross_entropy_fwd result");
    if (m2u_cuda_failed()) return NAN;
    int count = (int)h[1];
    if (n_valid) *n_valid = count;
    if (dlogits && V > 0) {
        size_t total = (size_t)N * V;
        k_ce_bwd<<<ew_blocks(total), M2U_CUDA_THREADS>>>(dlogits, logits, lse, targets, V, total, 1.0f);
        m2u_cuda_note_launch("cross_entropy gradient");
        if (m2u_cuda_failed()) return NAN;
    }
    return count ? h[0] / count : 0.0;
}

double m2u_cuda_mse_fwd(const float *pred, const float *target, float target_scale, size_t n) {
    if (!n) return 0.0;
    unsigned nb = red_blocks(n);
    double *part = (double *)m2u_cuda_scratch(((size_t)nb + 1) * sizeof(double));
    if (!part) return NAN;
    device_sum(MseSum{pred, target, target_scale}, n, part, "mse_fwd");
    return to_host(part + nb, "mse_fwd result") / (double)n;
}

void m2u_cuda_mse_bwd(float *dpred, const float *pred, const float *target, float target_scale, size_t n,
                      float grad_scale) {
    if (!n) return;
    float c = 2.0f * grad_scale / (float)n; /* on the host, as the CPU forms it */
    k_mse_bwd<<<ew_blocks(n), M2U_CUDA_THREADS>>>(dpred, pred, target, target_scale, n, c);
    m2u_cuda_note_launch("mse_bwd");
}

/* ---- optimizer ---- */

void m2u_cuda_adamw_step(m2u_adamw *opt, const m2u_adamw_config *cfg, float lr, const m2u_param *params,
                         int n_params) {
    /* the step's scalars in float on the host, exactly as the CPU forms them */
    opt->step++;
    float bc1 = 1.0f - powf(cfg->beta1, (float)opt->step);
    float bc2 = 1.0f - powf(cfg->beta2, (float)opt->step);
    float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2);
    float c1 = 1.0f - cfg->beta1, c2 = 1.0f - cfg->beta2;
    size_t off = 0;
    for (int k = 0; k < n_params; k++) {
        const m2u_param *p = &params[k];
        float decay = p->decay ? 1.0f - lr * cfg->weight_decay : 1.0f;
        if (p->n) {
            k_adamw<<<ew_blocks(p->n), M2U_CUDA_THREADS>>>(p->data, opt->m + off, opt->v + off, p->grad, p->n,
                                                           cfg->beta1, c1, cfg->beta2, c2, cfg->eps, decay, step_size,
                                                           bc2_sqrt);
            m2u_cuda_note_launch("adamw_step");
        }
        off += p->n;
    }
}

double m2u_cuda_grad_norm(const float *grad, size_t n) {
    if (!n) return 0.0;
    unsigned nb = red_blocks(n);
    double *part = (double *)m2u_cuda_scratch(((size_t)nb + 1) * sizeof(double));
    if (!part) return NAN;
    device_sum(SquareSum{grad}, n, part, "grad_norm");
    return sqrt(to_host(part + nb, "grad_norm result"));
}

void m2u_cuda_clip_grad(float *grad, size_t n, double norm, float max_norm) {
    double coef = (double)max_norm / (norm + 1e-6);
    if (coef >= 1.0 || !n) return;
    k_clip<<<ew_blocks(n), M2U_CUDA_THREADS>>>(grad, n, coef);
    m2u_cuda_note_launch("clip_grad");
}

} /* extern "C" */
