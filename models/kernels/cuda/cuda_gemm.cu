/* The CUDA backend's matrix products (issue 14): gemm / gemv (tensor.h), the products against
 * stored-dtype weights m2u_matmul_wt / m2u_matmul_w_acc (ops.h), nn.Linear forward and backward
 * (ops_extra.h), the time-major grouped Conv1d forward and backward (conv1d.h) and the
 * embedding gather / scatter-add (tensor.h), each with the semantics of its CPU op in
 * models/kernels/cpu.
 *
 * Every product runs on cuBLAS in fp32 (the backend's handle, default math: no TF32).  cuBLAS
 * is column-major and our arrays are row-major: a row-major X [r, c] with leading dimension ld
 * is the column-major X^T with the same ld, so C = op(A) op(B) is computed as
 * C^T = op(B)^T op(A)^T, i.e. cuBLAS gets B first, A second, m = N and n = M, and each
 * operand keeps its own transpose flag and leading dimension (rm_gemm below).
 *
 * Kernels and cuBLAS both run on the default stream, so the scratch a kernel fills is ready
 * for the cuBLAS call that follows it. */
#include "cuda_internal.h"

#include <cuda_fp16.h>

/* ---- shared helpers ------------------------------------------------------------------------- */

/* How a kernel reads a stored weight element.  The CPU converts from unaligned memory too
 * (m2u_convert_to_f32 uses memcpy), so a misaligned view is read byte by byte here rather
 * than faulting. */
enum { W_F32, W_F16, W_BF16, W_F64, W_F32_U, W_F16_U, W_BF16_U, W_F64_U };

static int mat_kind(const m2u_mat *w) {
    uintptr_t a = (uintptr_t)w->data;
    switch (w->dtype) {
    case M2U_F32: return a % 4 ? W_F32_U : W_F32;
    case M2U_F16: return a % 2 ? W_F16_U : W_F16;
    case M2U_BF16: return a % 2 ? W_BF16_U : W_BF16;
    case M2U_F64: return a % 8 ? W_F64_U : W_F64;
    default: return -1;
    }
}

static size_t kind_size(int kind) {
    switch (kind) {
    case W_F16: case W_BF16: case W_F16_U: case W_BF16_U: return 2;
    case W_F64: case W_F64_U: return 8;
    default: return 4;
    }
}

__device__ __forceinline__ float bf16_to_f32(uint16_t h) { return __uint_as_float((unsigned)h << 16); }
__device__ __forceinline__ float f16_to_f32(uint16_t h) { return __half2float(__ushort_as_half(h)); }

/* little-endian assembly of an unaligned element, as the CPU's memcpy reads it */
__device__ __forceinline__ unsigned long long load_bytes(const unsigned char *p, int n) {
    unsigned long long v = 0;
    for (int i = 0; i < n; i++) v |= (unsigned long long)p[i] << (8 * i);
    return v;
}

/* element i of a stored matrix, widened to fp32 (F64 rounds to nearest, as the CPU's cast) */
__device__ __forceinline__ float load_elem(const unsigned char *base, size_t i, int kind) {
    switch (kind) {
    case W_F32: return ((const float *)base)[i];
    case W_F16: return f16_to_f32(((const uint16_t *)base)[i]);
    case W_BF16: return bf16_to_f32(((const uint16_t *)base)[i]);
    case W_F64: return (float)((const double *)base)[i];
    case W_F32_U: return __uint_as_float((unsigned)load_bytes(base + 4 * i, 4));
    case W_F16_U: return f16_to_f32((uint16_t)load_bytes(base + 2 * i, 2));
    case W_BF16_U: return bf16_to_f32((uint16_t)load_bytes(base + 2 * i, 2));
    default: return (float)__longlong_as_double((long long)load_bytes(base + 8 * i, 8));
    }
}

__global__ void widen_k(float *dst, const unsigned char *src, size_t n, int kind) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = load_elem(src, i, kind);
}

/* C[r][c] = beta * C[r][c] for an [rows, cols] block, 0 when beta == 0 (OpenBLAS's beta
 * operation, which never reads C then): what a product with K = 0 or alpha = 0 leaves. */
__global__ void scale2d_k(float *C, int rows, int cols, int ldc, float beta) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)rows * cols) return;
    float *p = C + (i / cols) * (size_t)ldc + i % cols;
    *p = beta == 0.0f ? 0.0f : beta * *p;
}

static void scale2d(float *C, int rows, int cols, int ldc, float beta, const char *what) {
    if (rows <= 0 || cols <= 0 || beta == 1.0f) return;
    scale2d_k<<<M2U_CUDA_GRID((size_t)rows * cols), M2U_CUDA_THREADS>>>(C, rows, cols, ldc, beta);
    m2u_cuda_note_launch(what);
}

/* y[n][:] = b for N rows of C */
__global__ void fill_rows_k(float *y, const float *b, int N, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (size_t)N * C) y[i] = b[i % C];
}

/* db[j] += sum_n dy[n][j], one thread per column summing in fp32 in row order as the CPU does */
__global__ void colsum_acc_k(float *db, const float *dy, int N, int C) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= C) return;
    float acc = 0.0f;
    for (int n = 0; n < N; n++) acc += dy[(size_t)n * C + j];
    db[j] += acc;
}

static void colsum_acc(float *db, const float *dy, int N, int C, const char *what) {
    if (C <= 0) return;
    colsum_acc_k<<<M2U_CUDA_GRID(C), M2U_CUDA_THREADS>>>(db, dy, N, C);
    m2u_cuda_note_launch(what);
}

/* Row-major C[M, N] = alpha op(A) op(B) + beta C over `batch` matrices spaced sA, sB, sC floats
 * apart: cuBLAS computes the column-major C^T = op(B)^T op(A)^T.  A row-major B without
 * transpose is the column-major B^T, which is exactly op(B)^T, hence CUBLAS_OP_N for it; a
 * transposed one needs CUBLAS_OP_T.  Same for A.  K = 0 and alpha = 0 only scale C (as
 * OpenBLAS, and without asking cuBLAS about an empty product). */
static void rm_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, long long sA,
                    const float *B, int ldb, long long sB, float beta, float *C, int ldc, long long sC, int batch,
                    const char *what) {
    if (M <= 0 || N <= 0 || K < 0 || batch <= 0) return;
    if (K == 0 || alpha == 0.0f) {
        for (int i = 0; i < batch; i++) scale2d(C + i * sC, M, N, ldc, beta, what);
        return;
    }
    cublasOperation_t opA = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opB = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (batch == 1)
        m2u_cuda_note_blas(cublasSgemm(m2u_cuda_blas(), opB, opA, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc),
                           what);
    else
        m2u_cuda_note_blas(cublasSgemmStridedBatched(m2u_cuda_blas(), opB, opA, N, M, K, &alpha, B, ldb, sB, A, lda,
                                                     sA, &beta, C, ldc, sC, batch),
                           what);
}

/* ---- gemm, gemv ------------------------------------------------------------------------------- */

extern "C" void m2u_cuda_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                              const float *B, int ldb, float beta, float *C, int ldc) {
    rm_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1, "gemm");
}

extern "C" void m2u_cuda_gemv(int trans_a, int M, int N, float alpha, const float *A, int lda, const float *x,
                              float beta, float *y) {
    if (M <= 0 || N <= 0) return;
    int ny = trans_a ? N : M;
    if (alpha == 0.0f) { /* OpenBLAS scales y and stops */
        scale2d(y, 1, ny, ny, beta, "gemv");
        return;
    }
    /* row-major A [M, N] is the column-major [N, M] matrix A^T: A x is a transposed gemv of it */
    m2u_cuda_note_blas(cublasSgemv(m2u_cuda_blas(), trans_a ? CUBLAS_OP_N : CUBLAS_OP_T, N, M, &alpha, A, lda, x, 1,
                                   &beta, y, 1),
                       "gemv");
}

/* ---- products against stored-dtype weights ------------------------------------------------------ */

/* Rows widened per block: up to 64 MiB of fp32 scratch, so a 32000 x 4096 bf16 head needs
 * neither a 512 MiB fp32 copy nor many small GEMMs. */
static int block_rows(int cols) {
    int r = (1 << 24) / (cols > 0 ? cols : 1);
    return r < 1 ? 1 : r;
}

static void widen_rows(float *dst, const m2u_mat *w, int kind, int row0, int n, const char *what) {
    size_t cnt = (size_t)n * w->cols;
    if (cnt == 0) return;
    const unsigned char *src = (const unsigned char *)w->data + (size_t)row0 * w->cols * kind_size(kind);
    widen_k<<<M2U_CUDA_GRID(cnt), M2U_CUDA_THREADS>>>(dst, src, cnt, kind);
    m2u_cuda_note_launch(what);
}

/* Token-by-token generation (N <= 4) against a 16-bit weight: one warp per weight row reads
 * the bf16/f16 values once, as the CPU's matvec_16, instead of widening the whole block to
 * fp32 and reading it again.  Same beta rule: y = (beta == 0 ? 0 : beta y) + x . w_r. */
#define MV_MAX_N 4
__global__ void matvec16_k(float *y, int ldy, const float *x, int N, const uint16_t *W, int K, int nrows,
                           float beta, int bf) {
    int r = (int)(((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32), lane = threadIdx.x % 32;
    if (r >= nrows) return;
    const uint16_t *wr = W + (size_t)r * K;
    float acc[MV_MAX_N] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int k = lane; k < K; k += 32) {
        float wv = bf ? bf16_to_f32(wr[k]) : f16_to_f32(wr[k]);
        for (int n = 0; n < N; n++) acc[n] += x[(size_t)n * K + k] * wv;
    }
    for (int n = 0; n < N; n++) {
        float a = acc[n];
        for (int off = 16; off > 0; off /= 2) a += __shfl_down_sync(0xffffffffu, a, off);
        if (lane == 0) {
            float *dst = y + (size_t)n * ldy + r;
            *dst = (beta == 0.0f ? 0.0f : beta * *dst) + a;
        }
    }
}

extern "C" void m2u_cuda_matmul_wt(float *y, int ldy, const float *x, int N, const m2u_mat *w, int row0, int nrows,
                                   float beta) {
    int K = w->cols;
    if (N <= 0 || nrows <= 0) return;
    int kind = mat_kind(w);
    if (kind < 0) {
        m2u_cuda_note(cudaErrorInvalidValue, "matmul_wt: weight dtype is not F32, F16, BF16 or F64");
        return;
    }
    if (K <= 0) {
        scale2d(y, N, nrows, ldy, beta, "matmul_wt");
        return;
    }
    if (N <= MV_MAX_N && (kind == W_F16 || kind == W_BF16)) {
        const uint16_t *W = (const uint16_t *)w->data + (size_t)row0 * K;
        size_t threads = (size_t)nrows * 32;
        matvec16_k<<<M2U_CUDA_GRID(threads), M2U_CUDA_THREADS>>>(y, ldy, x, N, W, K, nrows, beta, kind == W_BF16);
        m2u_cuda_note_launch("matmul_wt (16-bit matvec)");
        return;
    }
    if (kind == W_F32) {
        const float *W = (const float *)w->data + (size_t)row0 * K;
        rm_gemm(0, 1, N, nrows, K, 1.0f, x, K, 0, W, K, 0, beta, y, ldy, 0, 1, "matmul_wt");
        return;
    }
    int br = block_rows(K);
    if (br > nrows) br = nrows;
    float *buf = (float *)m2u_cuda_scratch((size_t)br * K * sizeof(float));
    if (!buf) return;
    for (int r = 0; r < nrows; r += br) {
        int n = nrows - r < br ? nrows - r : br;
        widen_rows(buf, w, kind, row0 + r, n, "matmul_wt (widen)");
        rm_gemm(0, 1, N, n, K, 1.0f, x, K, 0, buf, K, 0, beta, y + r, ldy, 0, 1, "matmul_wt");
    }
}

extern "C" void m2u_cuda_matmul_w_acc(float *dx, const float *dy, int ldy, int N, const m2u_mat *w, int row0,
                                      int nrows) {
    int K = w->cols;
    if (N <= 0 || nrows <= 0 || K <= 0) return;
    int kind = mat_kind(w);
    if (kind < 0) {
        m2u_cuda_note(cudaErrorInvalidValue, "matmul_w_acc: weight dtype is not F32, F16, BF16 or F64");
        return;
    }
    if (kind == W_F32) {
        const float *W = (const float *)w->data + (size_t)row0 * K;
        rm_gemm(0, 0, N, K, nrows, 1.0f, dy, ldy, 0, W, K, 0, 1.0f, dx, K, 0, 1, "matmul_w_acc");
        return;
    }
    int br = block_rows(K);
    if (br > nrows) br = nrows;
    float *buf = (float *)m2u_cuda_scratch((size_t)br * K * sizeof(float));
    if (!buf) return;
    for (int r = 0; r < nrows; r += br) {
        int n = nrows - r < br ? nrows - r : br;
        widen_rows(buf, w, kind, row0 + r, n, "matmul_w_acc (widen)");
        rm_gemm(0, 0, N, K, n, 1.0f, dy + r, ldy, 0, buf, K, 0, 1.0f, dx, K, 0, 1, "matmul_w_acc");
    }
}

/* ---- nn.Linear ----------------------------------------------------------------------------------- */

extern "C" void m2u_cuda_linear_fwd(float *y, const float *x, const float *w, const float *b, int N, int in,
                                    int out) {
    if (N <= 0 || out <= 0) return;
    float beta = 0.0f;
    if (b) {
        /* the bias enters as C with beta = 1, so it is added to the product in one rounding as on the CPU */
        fill_rows_k<<<M2U_CUDA_GRID((size_t)N * out), M2U_CUDA_THREADS>>>(y, b, N, out);
        m2u_cuda_note_launch("linear_fwd (bias)");
        beta = 1.0f;
    }
    if (in <= 0) {
        if (!b) scale2d(y, N, out, out, 0.0f, "linear_fwd");
        return;
    }
    rm_gemm(0, 1, N, out, in, 1.0f, x, in, 0, w, in, 0, beta, y, out, 0, 1, "linear_fwd");
}

extern "C" void m2u_cuda_linear_bwd(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                                    int N, int in, int out) {
    if (N <= 0 || out <= 0) return;
    if (dx && in > 0) rm_gemm(0, 0, N, in, out, 1.0f, dy, out, 0, w, in, 0, 1.0f, dx, in, 0, 1, "linear_bwd dx");
    if (dw && in > 0) rm_gemm(1, 0, out, in, N, 1.0f, dy, out, 0, x, in, 0, 1.0f, dw, in, 0, 1, "linear_bwd dw");
    if (db) colsum_acc(db, dy, N, out, "linear_bwd db");
}

/* ---- Conv1d, time-major ------------------------------------------------------------------------------ */

/* Output rows per im2col block: the columns of all groups of a block take at most 64 MiB. */
static int conv_block(int T_out, int groups, int K) {
    size_t per_row = (size_t)groups * K;
    size_t b = ((size_t)1 << 24) / (per_row ? per_row : 1);
    if (b < 1) b = 1;
    return b > (size_t)T_out ? T_out : (int)b;
}

/* col[r][g][j][c] = x[(t0 + r) stride + j - pad][g cig + c], 0 outside [0, T_in): the rows of a
 * block with every group's taps side by side, so one strided-batched GEMM covers the groups. */
__global__ void conv_im2col_k(float *col, const float *x, int t0, int nb, int T_in, int C_in, int groups, int cig,
                              int k, int stride, int pad) {
    size_t K = (size_t)k * cig, GK = (size_t)groups * K;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)nb * GK) return;
    size_t r = i / GK, rem = i % GK, g = rem / K, q = rem % K, j = q / cig, c = q % cig;
    long long s = (long long)(t0 + (long long)r) * stride - pad + (long long)j;
    col[i] = s < 0 || s >= T_in ? 0.0f : x[(size_t)s * C_in + g * cig + c];
}

/* dx[s][g cig + c] += dcol[t - t0][g][j][c] over the (t, j) of the block with t stride + j - pad = s.
 * The CPU adds one term per (t, j) in increasing t, so the terms are added in that order here. */
__global__ void conv_col2im_k(float *dx, const float *dcol, int t0, int nb, long long s_lo, int ns, int C_in,
                              int groups, int cig, int k, int stride, int pad) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)ns * C_in) return;
    long long s = s_lo + (long long)(i / C_in);
    int ci = (int)(i % C_in), g = ci / cig, c = ci % cig;
    if (g >= groups) return;
    size_t K = (size_t)k * cig, GK = (size_t)groups * K;
    const float *base = dcol + (size_t)g * K + c;
    float *d = dx + (size_t)s * C_in + ci;
    float acc = *d;
    long long t1 = (long long)t0 + nb;
    if (stride > 0) { /* t increases as j decreases */
        for (int j = k - 1; j >= 0; j--) {
            long long u = s + pad - j;
            if (u < 0 || u % stride) continue;
            long long t = u / stride;
            if (t >= t1) break;
            if (t >= t0) acc += base[(size_t)(t - t0) * GK + (size_t)j * cig];
        }
    } else if (stride < 0) { /* t increases with j */
        for (int j = 0; j < k; j++) {
            long long u = s + pad - j;
            if (u % stride) continue;
            long long t = u / stride;
            if (t >= t0 && t < t1) acc += base[(size_t)(t - t0) * GK + (size_t)j * cig];
        }
    } else { /* every t reads tap s + pad */
        long long j = s + pad;
        if (j >= 0 && j < k)
            for (long long t = t0; t < t1; t++) acc += base[(size_t)(t - t0) * GK + (size_t)j * cig];
    }
    *d = acc;
}

extern "C" int m2u_cuda_conv1d_fwd(float *y, int T_out, const float *x, int T_in, int C_in, int C_out, int k,
                                   int stride, int pad, int groups, const float *w, const float *b) {
    if (T_out <= 0) return 0;
    /* the CPU divides by groups and sizes its im2col block with k: it cannot run these either */
    if (groups <= 0) return m2u_fail("conv1d: %d groups", groups);
    if (k < 0) return m2u_fail("conv1d: kernel size %d", k);
    int cig = C_in / groups, cog = C_out / groups, K = k * cig;
    if (b && C_out > 0) {
        fill_rows_k<<<M2U_CUDA_GRID((size_t)T_out * C_out), M2U_CUDA_THREADS>>>(y, b, T_out, C_out);
        m2u_cuda_note_launch("conv1d (bias)");
    }
    if (cog <= 0) return m2u_cuda_failed();
    if (K == 0) { /* an empty sum: the bias, or 0 */
        if (!b) scale2d(y, T_out, groups * cog, C_out, 0.0f, "conv1d");
        return m2u_cuda_failed();
    }
    int block = conv_block(T_out, groups, K);
    float *col = (float *)m2u_cuda_scratch((size_t)block * groups * K * sizeof(float));
    if (!col) return m2u_cuda_failed();
    for (int t0 = 0; t0 < T_out; t0 += block) {
        int nb = T_out - t0 < block ? T_out - t0 : block;
        conv_im2col_k<<<M2U_CUDA_GRID((size_t)nb * groups * K), M2U_CUDA_THREADS>>>(col, x, t0, nb, T_in, C_in,
                                                                                    groups, cig, k, stride, pad);
        m2u_cuda_note_launch("conv1d (im2col)");
        /* per group g: y[t0.., g cog ..] = col_g [nb, K] @ w_g [cog, K]^T (+ the bias already there) */
        rm_gemm(0, 1, nb, cog, K, 1.0f, col, groups * K, K, w, K, (long long)cog * K, b ? 1.0f : 0.0f,
                y + (size_t)t0 * C_out, C_out, cog, groups, "conv1d");
    }
    return m2u_cuda_failed();
}

extern "C" int m2u_cuda_conv1d_bwd(float *dx, float *dw, float *db, const float *dy, int T_out, const float *x,
                                   int T_in, int C_in, int C_out, int k, int stride, int pad, int groups,
                                   const float *w) {
    if (T_out <= 0) return 0;
    if (groups <= 0 || C_in % groups || C_out % groups)
        return m2u_fail("conv1d backward: %d groups do not divide %d -> %d channels", groups, C_in, C_out);
    int cig = C_in / groups, cog = C_out / groups, K = k * cig;
    if (db) colsum_acc(db, dy, T_out, C_out, "conv1d_bwd db");
    /* no taps or no outputs per group: dx and dw get nothing, as the CPU's empty loops */
    if ((!dx && !dw) || K <= 0 || cog <= 0) return m2u_cuda_failed();
    int block = conv_block(T_out, groups, K);
    size_t blk = (size_t)block * groups * K * sizeof(float);
    float *col = dw ? (float *)m2u_cuda_scratch(blk) : NULL;
    float *dcol = dx ? (float *)m2u_cuda_scratch2(blk) : NULL;
    if ((dw && !col) || (dx && !dcol)) return m2u_cuda_failed();
    for (int t0 = 0; t0 < T_out; t0 += block) {
        int nb = T_out - t0 < block ? T_out - t0 : block;
        const float *dyb = dy + (size_t)t0 * C_out;
        if (dw) {
            conv_im2col_k<<<M2U_CUDA_GRID((size_t)nb * groups * K), M2U_CUDA_THREADS>>>(col, x, t0, nb, T_in, C_in,
                                                                                        groups, cig, k, stride, pad);
            m2u_cuda_note_launch("conv1d_bwd (im2col)");
            /* dw_g [cog, K] += dy_g^T [cog, nb] @ col_g [nb, K] */
            rm_gemm(1, 0, cog, K, nb, 1.0f, dyb, C_out, cog, col, groups * K, K, 1.0f, dw, K, (long long)cog * K,
                    groups, "conv1d_bwd dw");
        }
        if (dx) {
            /* dcol_g [nb, K] = dy_g [nb, cog] @ w_g [cog, K], then folded back onto the input rows */
            rm_gemm(0, 0, nb, K, cog, 1.0f, dyb, C_out, cog, w, K, (long long)cog * K, 0.0f, dcol, groups * K, K,
                    groups, "conv1d_bwd dx");
            long long a = (long long)t0 * stride - pad, e = (long long)(t0 + nb - 1) * stride - pad;
            long long s_lo = (a < e ? a : e), s_hi = (a < e ? e : a) + k - 1;
            if (s_lo < 0) s_lo = 0;
            if (s_hi > (long long)T_in - 1) s_hi = (long long)T_in - 1;
            if (s_hi < s_lo) continue;
            int ns = (int)(s_hi - s_lo + 1);
            conv_col2im_k<<<M2U_CUDA_GRID((size_t)ns * C_in), M2U_CUDA_THREADS>>>(dx, dcol, t0, nb, s_lo, ns, C_in,
                                                                                 groups, cig, k, stride, pad);
            m2u_cuda_note_launch("conv1d_bwd (col2im)");
        }
    }
    return m2u_cuda_failed();
}

/* ---- embeddings ---------------------------------------------------------------------------------------- */

__global__ void embedding_fwd_k(float *x, const int32_t *ids, int N, int C, const unsigned char *table, int kind,
                                const float *extra, int rows_start) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * C) return;
    size_t n = i / C, c = i % C;
    int id = ids[n];
    x[i] = id >= rows_start ? extra[(size_t)(id - rows_start) * C + c] : load_elem(table, (size_t)id * C + c, kind);
}

/* two positions may hold the same token: their rows meet in one dextra row */
__global__ void embedding_bwd_k(float *dextra, const float *dx, const int32_t *ids, int N, int C, int rows_start) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)N * C) return;
    size_t n = i / C, c = i % C;
    int id = ids[n];
    if (id >= rows_start) atomicAdd(dextra + (size_t)(id - rows_start) * C + c, dx[i]);
}

extern "C" void m2u_cuda_embedding_fwd(float *x, const int32_t *ids, int N, const m2u_mat *table, const float *extra,
                                       int rows_start) {
    int C = table->cols;
    if (N <= 0 || C <= 0) return;
    int kind = mat_kind(table);
    if (kind < 0) {
        m2u_cuda_note(cudaErrorInvalidValue, "embedding_fwd: table dtype is not F32, F16, BF16 or F64");
        return;
    }
    embedding_fwd_k<<<M2U_CUDA_GRID((size_t)N * C), M2U_CUDA_THREADS>>>(
        x, ids, N, C, (const unsigned char *)table->data, kind, extra, rows_start);
    m2u_cuda_note_launch("embedding_fwd");
}

extern "C" void m2u_cuda_embedding_bwd(float *dextra, const float *dx, const int32_t *ids, int N, int C,
                                       int rows_start) {
    if (N <= 0 || C <= 0) return;
    embedding_bwd_k<<<M2U_CUDA_GRID((size_t)N * C), M2U_CUDA_THREADS>>>(dextra, dx, ids, N, C, rows_start);
    m2u_cuda_note_launch("embedding_bwd");
}
