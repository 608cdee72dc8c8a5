/* The CUDA backend's element-wise ops (issue 14): activations and their backwards (SwiGLU,
 * the erf and tanh GELUs, ReLU, T5's activations by name), adds and scales, bias rows and
 * their gradient, dropout, the double sum, and the ViT / ViViT pixel normalisation and patch
 * im2col.  Each op reproduces its CPU counterpart (kernels/cpu/tensor.c, ops.c, ops_extra.c,
 * image.c) operation by operation, so that most outputs are bit-identical to the CPU's:
 *
 *  - nvcc contracts a * b + c into an FMA by default while the CPU build (ISO C11, so GCC's
 *    -ffp-contract=off) rounds every product; the arithmetic below therefore goes through the
 *    _rn intrinsics (M2U_F* / M2U_D*), which are never fused, and FMA only where the CPU's
 *    own code fuses (OpenBLAS's saxpy kernel, m2u_cuda_axpy).
 *  - vmath.h's GELU (float A&S erf with the float exponential) and the backward's double
 *    Phi are ported as functions usable on the host too, so a host build of this file can be
 *    checked against vmath.h itself.
 *  - expf and tanhf (glibc on the CPU) are evaluated in double and rounded once: glibc's expf
 *    is within 0.502 ulp, so this agrees with it far more often than CUDA's 2-ulp expf (SiLU,
 *    SwiGLU: ~2e-4 of values differ, by an ulp of the exponential); glibc 2.36's tanhf is not
 *    correctly rounded, so the tanh GELUs differ in ~3 % of values, by < 4e-7 of max(1, |y|)
 *    (a correctly rounded tanhf, glibc >= 2.41, would agree).  Double costs little on the
 *    H100 / H200 these ops are memory-bound on; a consumer GPU's slow fp64 would feel it.
 *  - dropout's hash is counter-based (splitmix64 of base + i), so every element's mask bit is
 *    the CPU's exactly, computed independently per thread.
 * Subnormal results assume the default -ftz=false (the CPU keeps subnormals). */
#include "cuda_internal.h"

#include <math.h>
#include <string.h>

/* ---- exactly rounded arithmetic, the same on the host (for checks) and the device ---- */

#ifdef __CUDA_ARCH__
#define M2U_FADD(a, b) __fadd_rn((a), (b))
#define M2U_FSUB(a, b) __fsub_rn((a), (b))
#define M2U_FMUL(a, b) __fmul_rn((a), (b))
#define M2U_FDIV(a, b) __fdiv_rn((a), (b))
#define M2U_DADD(a, b) __dadd_rn((a), (b))
#define M2U_DSUB(a, b) __dsub_rn((a), (b))
#define M2U_DMUL(a, b) __dmul_rn((a), (b))
#define M2U_DDIV(a, b) __ddiv_rn((a), (b))
#else /* a host build must be compiled with -ffp-contract=off to mean the same */
#define M2U_FADD(a, b) ((float)(a) + (float)(b))
#define M2U_FSUB(a, b) ((float)(a) - (float)(b))
#define M2U_FMUL(a, b) ((float)(a) * (float)(b))
#define M2U_FDIV(a, b) ((float)(a) / (float)(b))
#define M2U_DADD(a, b) ((double)(a) + (double)(b))
#define M2U_DSUB(a, b) ((double)(a) - (double)(b))
#define M2U_DMUL(a, b) ((double)(a) * (double)(b))
#define M2U_DDIV(a, b) ((double)(a) / (double)(b))
#endif

#define M2U_HD static __host__ __device__ __forceinline__

/* glibc's expf / tanhf: the double function rounded once to float */
M2U_HD float ew_expf(float v) { return (float)exp((double)v); }
M2U_HD float ew_tanhf(float v) { return (float)tanh((double)v); }

/* vmath.h's m2u_vexp_neg, step for step */
M2U_HD double ew_vexp_neg(double v) {
    const double log2e = 1.4426950408889634, ln2 = 0.6931471805599453, shifter = 6755399441055744.0;
    v = v > -700.0 || v != v ? v : -700.0;
    v = v < 0.0 || v != v ? v : 0.0;
    double u = M2U_DADD(M2U_DMUL(v, log2e), shifter);
    double nd = M2U_DSUB(u, shifter);
    uint64_t ub;
    memcpy(&ub, &u, sizeof ub);
    uint64_t pb = (ub + 1023) << 52;
    double p2;
    memcpy(&p2, &pb, sizeof p2);
    double r = M2U_DSUB(v, M2U_DMUL(nd, ln2));
    double p = 1.0 / 39916800.0;
    p = M2U_DADD(M2U_DMUL(p, r), 1.0 / 3628800.0);
    p = M2U_DADD(M2U_DMUL(p, r), 1.0 / 362880.0);
    p = M2U_DADD(M2U_DMUL(p, r), 1.0 / 40320.0);
    p = M2U_DADD(M2U_DMUL(p, r), 1.0 / 5040.0);
    p = M2U_DADD(M2U_DMUL(p, r), 1.0 / 720.0);
    p = M2U_DADD(M2U_DMUL(p, r), 1.0 / 120.0);
    p = M2U_DADD(M2U_DMUL(p, r), 1.0 / 24.0);
    p = M2U_DADD(M2U_DMUL(p, r), 1.0 / 6.0);
    p = M2U_DADD(M2U_DMUL(p, r), 0.5);
    p = M2U_DADD(M2U_DMUL(p, r), 1.0);
    p = M2U_DADD(M2U_DMUL(p, r), 1.0);
    return M2U_DMUL(p, p2);
}

/* vmath.h's m2u_vexpf_neg, step for step */
M2U_HD float ew_vexpf_neg(float v) {
    const float log2e = 1.44269504f, c1 = 0.693359375f, c2 = -2.12194440e-4f, shifter = 12582912.0f;
    float x = v > -87.0f || v != v ? v : -87.0f;
    x = x < 0.0f || x != x ? x : 0.0f;
    float u = M2U_FADD(M2U_FMUL(x, log2e), shifter);
    float nf = M2U_FSUB(u, shifter);
    uint32_t ub;
    memcpy(&ub, &u, sizeof ub);
    uint32_t pb = (ub + 127u) << 23;
    float p2;
    memcpy(&p2, &pb, sizeof p2);
    float r = M2U_FSUB(x, M2U_FMUL(nf, c1));
    r = M2U_FSUB(r, M2U_FMUL(nf, c2));
    float p = 1.9875691500e-4f;
    p = M2U_FADD(M2U_FMUL(p, r), 1.3981999507e-3f);
    p = M2U_FADD(M2U_FMUL(p, r), 8.3334519073e-3f);
    p = M2U_FADD(M2U_FMUL(p, r), 4.1665795894e-2f);
    p = M2U_FADD(M2U_FMUL(p, r), 1.6666665459e-1f);
    p = M2U_FADD(M2U_FMUL(p, r), 5.0000001201e-1f);
    float y = M2U_FMUL(M2U_FADD(M2U_FADD(M2U_FMUL(p, M2U_FMUL(r, r)), r), 1.0f), p2);
    return v < -87.0f ? 0.0f : y;
}

/* vmath.h's m2u_verf_as (double) */
M2U_HD double ew_verf_as(double z) {
    double a = z < 0.0 ? -z : z;
    double t = M2U_DDIV(1.0, M2U_DADD(1.0, M2U_DMUL(0.3275911, a)));
    double p = M2U_DSUB(M2U_DMUL(1.061405429, t), 1.453152027);
    p = M2U_DADD(M2U_DMUL(p, t), 1.421413741);
    p = M2U_DSUB(M2U_DMUL(p, t), 0.284496736);
    p = M2U_DADD(M2U_DMUL(p, t), 0.254829592);
    p = M2U_DMUL(p, t);
    double e = M2U_DSUB(1.0, M2U_DMUL(p, ew_vexp_neg(M2U_DMUL(-a, a))));
    return z < 0.0 ? -e : e;
}

/* vmath.h's m2u_vgelu: the forward GELU in float */
M2U_HD float ew_vgelu(float x) {
    float z = M2U_FMUL(x, 0.70710678f);
    float a = z < 0.0f ? -z : z;
    float t = M2U_FDIV(1.0f, M2U_FADD(M2U_FMUL(0.3275911f, a), 1.0f));
    float r = M2U_FSUB(M2U_FMUL(1.061405429f, t), 1.453152027f);
    r = M2U_FADD(M2U_FMUL(r, t), 1.421413741f);
    r = M2U_FSUB(M2U_FMUL(r, t), 0.284496736f);
    r = M2U_FADD(M2U_FMUL(r, t), 0.254829592f);
    float e = M2U_FSUB(1.0f, M2U_FMUL(M2U_FMUL(r, t), ew_vexpf_neg(-M2U_FMUL(a, a))));
    float erf = z < 0.0f ? -e : e;
    return M2U_FMUL(M2U_FMUL(x, 0.5f), M2U_FADD(1.0f, erf));
}

/* vmath.h's m2u_vgelu_cdf */
M2U_HD double ew_vgelu_cdf(double v) {
    return M2U_DMUL(0.5, M2U_DADD(1.0, ew_verf_as(M2U_DMUL(v, 0.70710678118654752))));
}

/* ---- per-element bodies (tensor.c, ops.c, ops_extra.c), shared by kernels and host checks ---- */

M2U_HD float ew_sigmoid(float g) { return M2U_FDIV(1.0f, M2U_FADD(1.0f, ew_expf(-g))); }

M2U_HD float ew_swiglu_fwd(float g, float u) { return M2U_FMUL(M2U_FMUL(g, ew_sigmoid(g)), u); }

/* tensor.c's gelu_bwd_span: the increment dout * gelu'(x), Phi and pdf in double */
M2U_HD float ew_gelu_bwd(float dout, float x) {
    double v = (double)x;
    double pdf = M2U_DMUL(0.3989422804014327, ew_vexp_neg(M2U_DMUL(M2U_DMUL(-0.5, v), v)));
    return M2U_FMUL(dout, (float)M2U_DADD(ew_vgelu_cdf(v), M2U_DMUL(v, pdf)));
}

/* tensor.c's tanh argument 0.7978845608f * (v + 0.044715f * v * v * v); c is the constant as
 * each caller spells it (act1 uses a longer literal) */
M2U_HD float ew_tanh_arg(float v, float c) {
    return M2U_FMUL(c, M2U_FADD(v, M2U_FMUL(M2U_FMUL(M2U_FMUL(0.044715f, v), v), v)));
}

M2U_HD float ew_gelu_tanh_fwd(float v, float c) {
    return M2U_FMUL(M2U_FMUL(0.5f, v), M2U_FADD(1.0f, ew_tanhf(ew_tanh_arg(v, c))));
}

M2U_HD float ew_gelu_tanh_bwd(float dout, float v) {
    float th = ew_tanhf(ew_tanh_arg(v, 0.7978845608f));
    float dth = M2U_FMUL(M2U_FMUL(M2U_FSUB(1.0f, M2U_FMUL(th, th)), 0.7978845608f),
                         M2U_FADD(1.0f, M2U_FMUL(M2U_FMUL(M2U_FMUL(3.0f, 0.044715f), v), v)));
    return M2U_FMUL(dout, M2U_FADD(M2U_FMUL(0.5f, M2U_FADD(1.0f, th)), M2U_FMUL(M2U_FMUL(0.5f, v), dth)));
}

/* tensor.c's act1 */
M2U_HD float ew_act1(int a, float x) {
    switch (a) {
    case M2U_KACT_RELU: return x > 0 ? x : 0.0f;
    case M2U_KACT_GELU: return ew_vgelu(x);
    case M2U_KACT_GELU_TANH: return ew_gelu_tanh_fwd(x, 0.7978845608028654f);
    default: return M2U_FDIV(x, M2U_FADD(1.0f, ew_expf(-x)));
    }
}

/* ops.c's splitmix64 */
M2U_HD uint64_t ew_splitmix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

M2U_HD float ew_dropout(float x, size_t i, uint64_t base, uint32_t thresh, float keep_scale) {
    uint32_t r = (uint32_t)(ew_splitmix64(base + i) >> 32);
    return r >= thresh ? M2U_FMUL(x, keep_scale) : 0.0f;
}

/* OpenBLAS 0.3.21's saxpy (Haswell / Zen kernel) fuses y + alpha x over the first n & -32
 * elements (its FMA microkernel) and rounds the product first on the tail (measured on the
 * CPU build's OpenBLAS).  With several OpenBLAS threads (n > 10000) each thread's chunk has
 * its own tail, so the CPU's result then depends on its thread count; this follows the
 * single-threaded rule. */
#define M2U_AXPY_FUSED_BLOCK 32

/* ---- launches ---- */

#define EW_LOOP(i, n) \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

/* grid-stride loops: a bounded grid covers any n */
static unsigned ew_grid(size_t n) {
    size_t g = ((size_t)n + M2U_CUDA_THREADS - 1) / M2U_CUDA_THREADS;
    return g > 65536 ? 65536u : (unsigned)g;
}

__global__ void k_swiglu_fwd(float *out, const float *g, const float *u, size_t n) {
    EW_LOOP(i, n) out[i] = ew_swiglu_fwd(g[i], u[i]);
}

__global__ void k_swiglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
    EW_LOOP(i, n) {
        float gi = g[i], d = dout[i];
        float sg = ew_sigmoid(gi);
        float silu = M2U_FMUL(gi, sg);
        du[i] = M2U_FADD(du[i], M2U_FMUL(d, silu));
        float f = M2U_FADD(1.0f, M2U_FMUL(gi, M2U_FSUB(1.0f, sg)));
        dg[i] = M2U_FADD(dg[i], M2U_FMUL(M2U_FMUL(M2U_FMUL(d, u[i]), sg), f));
    }
}

__global__ void k_gelu_fwd(float *out, const float *x, size_t n) { EW_LOOP(i, n) out[i] = ew_vgelu(x[i]); }

__global__ void k_gelu_bwd(float *dx, const float *dout, const float *x, size_t n) {
    EW_LOOP(i, n) dx[i] = M2U_FADD(dx[i], ew_gelu_bwd(dout[i], x[i]));
}

__global__ void k_gelu_tanh_fwd(float *out, const float *x, size_t n) {
    EW_LOOP(i, n) out[i] = ew_gelu_tanh_fwd(x[i], 0.7978845608f);
}

__global__ void k_gelu_tanh_bwd(float *dx, const float *dout, const float *x, size_t n) {
    EW_LOOP(i, n) dx[i] = M2U_FADD(dx[i], ew_gelu_tanh_bwd(dout[i], x[i]));
}

__global__ void k_relu_fwd(float *out, const float *x, size_t n) {
    EW_LOOP(i, n) {
        float v = x[i];
        out[i] = v > 0.0f ? v : 0.0f;
    }
}

__global__ void k_relu_bwd(float *dx, const float *dout, const float *out, size_t n) {
    EW_LOOP(i, n) if (out[i] > 0.0f) dx[i] = M2U_FADD(dx[i], dout[i]);
}

__global__ void k_relu_mask(float *dx, const float *y, size_t n) {
    EW_LOOP(i, n) if (!(y[i] > 0.0f)) dx[i] = 0.0f;
}

__global__ void k_add(float *out, const float *a, const float *b, size_t n) {
    EW_LOOP(i, n) out[i] = M2U_FADD(a[i], b[i]);
}

__global__ void k_add_inplace(float *y, const float *x, size_t n) { EW_LOOP(i, n) y[i] = M2U_FADD(y[i], x[i]); }

__global__ void k_axpy(size_t n, size_t n_fused, float alpha, const float *x, float *y) {
    EW_LOOP(i, n) y[i] = i < n_fused ? __fmaf_rn(alpha, x[i], y[i]) : M2U_FADD(y[i], M2U_FMUL(alpha, x[i]));
}

__global__ void k_scale(float *out, const float *x, float alpha, size_t n) {
    EW_LOOP(i, n) out[i] = M2U_FMUL(alpha, x[i]);
}

__global__ void k_add_scalar(float *x, float c, size_t n) { EW_LOOP(i, n) x[i] = M2U_FADD(x[i], c); }

__global__ void k_bias_add_rows(float *y, const float *b, size_t n, size_t C) {
    EW_LOOP(i, n) y[i] = M2U_FADD(y[i], b[i % C]);
}

/* one thread per column: the CPU sums each column in fp32 in row order, so the order is kept
 * (adjacent threads read adjacent columns, coalesced) */
__global__ void k_bias_grad(float *db, const float *dy, int N, int C) {
    EW_LOOP(j, (size_t)C) {
        float acc = 0.0f;
        for (int r = 0; r < N; r++) acc = M2U_FADD(acc, dy[(size_t)r * C + j]);
        db[j] = M2U_FADD(db[j], acc);
    }
}

__global__ void k_dropout(float *out, const float *x, size_t n, uint64_t base, uint32_t thresh, float keep_scale) {
    EW_LOOP(i, n) out[i] = ew_dropout(x[i], i, base, thresh, keep_scale);
}

__global__ void k_act_gated(float *x, const float *gate, size_t n, int act) {
    EW_LOOP(i, n) {
        float v = ew_act1(act, x[i]);
        x[i] = gate ? M2U_FMUL(v, gate[i]) : v;
    }
}

/* per-block double partial sums in a fixed order (the result does not vary run to run) */
template <typename T> __global__ void k_sum(double *out, const T *x, size_t n) {
    __shared__ double sh[M2U_CUDA_THREADS];
    double s = 0.0;
    EW_LOOP(i, n) s += (double)x[i];
    sh[threadIdx.x] = s;
    __syncthreads();
    for (unsigned w = blockDim.x / 2; w > 0; w >>= 1) {
        if (threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[blockIdx.x] = sh[0];
}

/* the host's mean / std, by value */
struct ew_px_norm {
    float mean[3], std[3];
};

/* px [frames][3][HW] element i (so writes coalesce) from rgb [frames][HW][3], as image.c */
M2U_HD float ew_pixel(const uint8_t *rgb, size_t i, size_t HW, int do_rescale, double rescale_factor, int offset,
                      int do_normalize, const ew_px_norm &mn) {
    size_t p = i % HW, fc = i / HW;
    int ch = (int)(fc % 3);
    size_t f = fc / 3;
    uint8_t u = rgb[(f * HW + p) * 3 + ch];
    float x = do_rescale ? (float)M2U_DMUL((double)u, rescale_factor) : (float)u;
    if (offset) x = M2U_FSUB(x, 1.0f);
    if (do_normalize) x = M2U_FDIV(M2U_FSUB(x, mn.mean[ch]), mn.std[ch]);
    return x;
}

__global__ void k_pixels_normalize(float *px, const uint8_t *rgb, size_t n, size_t HW, int do_rescale,
                                   double rescale_factor, int offset, int do_normalize, ew_px_norm mn) {
    EW_LOOP(i, n) px[i] = ew_pixel(rgb, i, HW, do_rescale, rescale_factor, offset, do_normalize, mn);
}

/* where col [P][C][pt][ph][pw] element i comes from in px [frames][C][img_h][img_w] */
M2U_HD size_t ew_im2col_src(size_t i, int C, int img_h, int img_w, int pt, int ph, int pw, int grid_h, int grid_w) {
    size_t HW = (size_t)img_h * img_w, K = (size_t)C * pt * ph * pw;
    size_t p = i / K, k = i % K;
    int dx = (int)(k % pw);
    size_t k1 = k / pw;
    int dy = (int)(k1 % ph);
    size_t k2 = k1 / ph;
    int dt = (int)(k2 % pt), ch = (int)(k2 / pt);
    int gt = (int)(p / ((size_t)grid_h * grid_w)), gy = (int)((p / grid_w) % grid_h), gx = (int)(p % grid_w);
    return ((size_t)(gt * pt + dt) * C + ch) * HW + (size_t)(gy * ph + dy) * img_w + (size_t)gx * pw + dx;
}

__global__ void k_patch_im2col(float *col, const float *px, size_t n, int C, int img_h, int img_w, int pt, int ph,
                               int pw, int grid_h, int grid_w) {
    EW_LOOP(i, n) col[i] = px[ew_im2col_src(i, C, img_h, img_w, pt, ph, pw, grid_h, grid_w)];
}

/* ---- the ops ---- */

extern "C" {

void m2u_cuda_swiglu_fwd(float *out, const float *g, const float *u, size_t n) {
    if (!n) return;
    k_swiglu_fwd<<<ew_grid(n), M2U_CUDA_THREADS>>>(out, g, u, n);
    m2u_cuda_note_launch("swiglu_fwd");
}

void m2u_cuda_swiglu_bwd(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n) {
    if (!n) return;
    k_swiglu_bwd<<<ew_grid(n), M2U_CUDA_THREADS>>>(dg, du, dout, g, u, n);
    m2u_cuda_note_launch("swiglu_bwd");
}

void m2u_cuda_gelu_fwd(float *out, const float *x, size_t n) {
    if (!n) return;
    k_gelu_fwd<<<ew_grid(n), M2U_CUDA_THREADS>>>(out, x, n);
    m2u_cuda_note_launch("gelu_fwd");
}

void m2u_cuda_gelu_bwd(float *dx, const float *dout, const float *x, size_t n) {
    if (!n) return;
    k_gelu_bwd<<<ew_grid(n), M2U_CUDA_THREADS>>>(dx, dout, x, n);
    m2u_cuda_note_launch("gelu_bwd");
}

void m2u_cuda_gelu_tanh_fwd(float *out, const float *x, size_t n) {
    if (!n) return;
    k_gelu_tanh_fwd<<<ew_grid(n), M2U_CUDA_THREADS>>>(out, x, n);
    m2u_cuda_note_launch("gelu_tanh_fwd");
}

void m2u_cuda_gelu_tanh_bwd(float *dx, const float *dout, const float *x, size_t n) {
    if (!n) return;
    k_gelu_tanh_bwd<<<ew_grid(n), M2U_CUDA_THREADS>>>(dx, dout, x, n);
    m2u_cuda_note_launch("gelu_tanh_bwd");
}

void m2u_cuda_relu_fwd(float *out, const float *x, size_t n) {
    if (!n) return;
    k_relu_fwd<<<ew_grid(n), M2U_CUDA_THREADS>>>(out, x, n);
    m2u_cuda_note_launch("relu_fwd");
}

void m2u_cuda_relu_bwd(float *dx, const float *dout, const float *out, size_t n) {
    if (!n) return;
    k_relu_bwd<<<ew_grid(n), M2U_CUDA_THREADS>>>(dx, dout, out, n);
    m2u_cuda_note_launch("relu_bwd");
}

void m2u_cuda_relu_mask(float *dx, const float *y, size_t n) {
    if (!n) return;
    k_relu_mask<<<ew_grid(n), M2U_CUDA_THREADS>>>(dx, y, n);
    m2u_cuda_note_launch("relu_mask");
}

void m2u_cuda_add(float *out, const float *a, const float *b, size_t n) {
    if (!n) return;
    k_add<<<ew_grid(n), M2U_CUDA_THREADS>>>(out, a, b, n);
    m2u_cuda_note_launch("add");
}

void m2u_cuda_add_inplace(float *y, const float *x, size_t n) {
    if (!n) return;
    k_add_inplace<<<ew_grid(n), M2U_CUDA_THREADS>>>(y, x, n);
    m2u_cuda_note_launch("add_inplace");
}

void m2u_cuda_axpy(int n, float alpha, const float *x, float *y) {
    /* BLAS returns early for alpha == 0 (a NaN or inf in x is not propagated) */
    if (n <= 0 || alpha == 0.0f) return;
    size_t nn = (size_t)n, n_fused = nn & ~(size_t)(M2U_AXPY_FUSED_BLOCK - 1);
    k_axpy<<<ew_grid(nn), M2U_CUDA_THREADS>>>(nn, n_fused, alpha, x, y);
    m2u_cuda_note_launch("axpy");
}

void m2u_cuda_scale(float *out, const float *x, float alpha, size_t n) {
    if (!n) return;
    k_scale<<<ew_grid(n), M2U_CUDA_THREADS>>>(out, x, alpha, n);
    m2u_cuda_note_launch("scale");
}

void m2u_cuda_zero(float *x, size_t n) {
    if (!n) return;
    m2u_cuda_note(cudaMemsetAsync(x, 0, n * sizeof *x, 0), "zero");
}

void m2u_cuda_add_scalar(float *x, float c, size_t n) {
    if (!n) return;
    k_add_scalar<<<ew_grid(n), M2U_CUDA_THREADS>>>(x, c, n);
    m2u_cuda_note_launch("add_scalar");
}

void m2u_cuda_bias_add_rows(float *y, const float *b, int N, int C) {
    if (N <= 0 || C <= 0) return;
    size_t n = (size_t)N * C;
    k_bias_add_rows<<<ew_grid(n), M2U_CUDA_THREADS>>>(y, b, n, (size_t)C);
    m2u_cuda_note_launch("bias_add_rows");
}

void m2u_cuda_bias_grad(float *db, const float *dy, int N, int C) {
    /* N <= 0 still runs: the CPU adds 0.0f to every db[j] (a -0 becomes +0) */
    if (C <= 0) return;
    k_bias_grad<<<ew_grid((size_t)C), M2U_CUDA_THREADS>>>(db, dy, N < 0 ? 0 : N, C);
    m2u_cuda_note_launch("bias_grad");
}

void m2u_cuda_dropout(float *out, const float *x, size_t n, float p, uint64_t seed, uint64_t tag) {
    if (p <= 0.0f) {
        if (out != x && n) m2u_cuda_note(cudaMemcpyAsync(out, x, n * sizeof(float), cudaMemcpyDeviceToDevice, 0),
                                         "dropout (p = 0): copy");
        return;
    }
    if (!n) return;
    /* the stream's base, threshold and scale exactly as the CPU computes them */
    uint64_t base = ew_splitmix64(seed ^ ew_splitmix64(tag));
    uint32_t thresh = (uint32_t)fmin((double)p * 4294967296.0, 4294967295.0);
    float keep_scale = 1.0f / (1.0f - p);
    k_dropout<<<ew_grid(n), M2U_CUDA_THREADS>>>(out, x, n, base, thresh, keep_scale);
    m2u_cuda_note_launch("dropout");
}

void m2u_cuda_act_gated_fwd(float *x, const float *gate, size_t n, m2u_kact act) {
    if (!n) return;
    k_act_gated<<<ew_grid(n), M2U_CUDA_THREADS>>>(x, gate, n, (int)act);
    m2u_cuda_note_launch("act_gated_fwd");
}

double m2u_cuda_sum(const float *x, size_t n) {
    if (!n) return 0.0;
    /* a second pass adds the block sums in one block; a grid of at most 1024 keeps it short */
    unsigned nb = ew_grid(n);
    if (nb > 1024) nb = 1024;
    double *part = (double *)m2u_cuda_scratch(((size_t)nb + 1) * sizeof(double));
    if (!part) return NAN; /* noted by the scratch allocator */
    k_sum<float><<<nb, M2U_CUDA_THREADS>>>(part + 1, x, n);
    m2u_cuda_note_launch("sum");
    k_sum<double><<<1, M2U_CUDA_THREADS>>>(part, part + 1, (size_t)nb);
    m2u_cuda_note_launch("sum (blocks)");
    double s = NAN;
    cudaError_t e = cudaMemcpy(&s, part, sizeof s, cudaMemcpyDeviceToHost);
    m2u_cuda_note(e, "sum: copy the result");
    return e == cudaSuccess ? s : NAN;
}

void m2u_cuda_pixels_normalize(float *px, const uint8_t *rgb, int frames, size_t HW, int do_rescale,
                               double rescale_factor, int offset, int do_normalize, const float mean[3],
                               const float std[3]) {
    if (frames <= 0 || !HW) return;
    ew_px_norm mn;
    memset(&mn, 0, sizeof mn);
    if (do_normalize) { /* host arrays, read only when used (they may be NULL otherwise) */
        memcpy(mn.mean, mean, sizeof mn.mean);
        memcpy(mn.std, std, sizeof mn.std);
    }
    size_t n = (size_t)frames * 3 * HW;
    k_pixels_normalize<<<ew_grid(n), M2U_CUDA_THREADS>>>(px, rgb, n, HW, do_rescale, rescale_factor, offset,
                                                         do_normalize, mn);
    m2u_cuda_note_launch("pixels_normalize");
}

void m2u_cuda_patch_im2col(float *col, const float *px, int C, int img_h, int img_w, int pt, int ph, int pw,
                           int grid_t, int grid_h, int grid_w) {
    if (grid_t <= 0 || grid_h <= 0 || grid_w <= 0 || C <= 0 || pt <= 0 || ph <= 0 || pw <= 0) return;
    size_t P = (size_t)grid_t * grid_h * grid_w, K = (size_t)C * pt * ph * pw, n = P * K;
    k_patch_im2col<<<ew_grid(n), M2U_CUDA_THREADS>>>(col, px, n, C, img_h, img_w, pt, ph, pw, grid_h, grid_w);
    m2u_cuda_note_launch("patch_im2col");
}

} /* extern "C" */
