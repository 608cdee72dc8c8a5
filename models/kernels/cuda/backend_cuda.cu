/* The CUDA backend (issue 14): device selection, buffers, the cuBLAS handle, scratch, sticky
 * error reporting, and the op table over the m2u_cuda_* ops of cuda_gemm.cu, cuda_norm.cu,
 * cuda_attn.cu and cuda_elementwise.cu (cuda_internal.h).
 *
 * One process per GPU: the device is the local rank's (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID,
 * LOCAL_RANK) modulo the visible devices, or M2U_CUDA_DEVICE when set.  Everything runs on the
 * default stream, so ops are ordered and an op's scratch is free again when the next one starts.
 *
 * Nothing here has run on a GPU yet: this machine has none (README, "CUDA"). */
#include "cuda_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- errors ---------------------------------------------------------------------------- */

static char g_err[512]; /* the first failure since the last report */

void m2u_cuda_note(cudaError_t e, const char *what) {
    if (e == cudaSuccess || g_err[0]) return;
    snprintf(g_err, sizeof g_err, "cuda: %s: %s", what, cudaGetErrorString(e));
}

void m2u_cuda_note_blas(cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS || g_err[0]) return;
    snprintf(g_err, sizeof g_err, "cuBLAS: %s: status %d", what, (int)s);
}

void m2u_cuda_note_launch(const char *what) { m2u_cuda_note(cudaGetLastError(), what); }

int m2u_cuda_failed(void) {
    if (!g_err[0]) return 0;
    int rc = m2u_fail("%s", g_err);
    g_err[0] = '\0';
    return rc;
}

/* ---- the handle and scratch ---------------------------------------------------------------- */

static cublasHandle_t g_blas;
static void *g_scratch[2];
static size_t g_scratch_cap[2];

cublasHandle_t m2u_cuda_blas(void) { return g_blas; }

static void *scratch(int i, size_t bytes) {
    if (bytes <= g_scratch_cap[i]) return g_scratch[i];
    size_t cap = g_scratch_cap[i] ? g_scratch_cap[i] : 1u << 20;
    while (cap < bytes) cap *= 2;
    /* the default stream orders the free after every op that used the old area */
    if (g_scratch[i]) m2u_cuda_note(cudaFree(g_scratch[i]), "scratch free");
    g_scratch[i] = NULL;
    g_scratch_cap[i] = 0;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, cap);
    if (e != cudaSuccess) {
        m2u_cuda_note(e, "scratch");
        return NULL;
    }
    g_scratch[i] = p;
    g_scratch_cap[i] = cap;
    return p;
}

void *m2u_cuda_scratch(size_t bytes) { return scratch(0, bytes); }
void *m2u_cuda_scratch2(size_t bytes) { return scratch(1, bytes); }

/* ---- buffers ------------------------------------------------------------------------------- */

static int buf_alloc(m2u_buffer *b, size_t bytes) {
    b->data = NULL, b->bytes = 0, b->dev = M2U_DEV_CUDA;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) return m2u_fail("cuda: cannot allocate %zu bytes: %s", bytes, cudaGetErrorString(e));
    e = cudaMemset(p, 0, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        cudaFree(p);
        return m2u_fail("cuda: cannot clear %zu bytes: %s", bytes, cudaGetErrorString(e));
    }
    b->data = p, b->bytes = bytes;
    return 0;
}

static void buf_free(m2u_buffer *b) {
    if (b->data) m2u_cuda_note(cudaFree(b->data), "free");
    b->data = NULL, b->bytes = 0;
}

static int in_range(const m2u_buffer *b, size_t off, size_t n, const char *what) {
    if (!b->data || off > b->bytes || n > b->bytes - off)
        return m2u_fail("cuda %s: bytes [%zu, %zu) outside a buffer of %zu", what, off, off + n, b->bytes);
    return 0;
}

static int upload(m2u_buffer *dst, size_t off, const void *src, size_t n) {
    if (in_range(dst, off, n, "upload")) return -1;
    m2u_cuda_note(cudaMemcpy((char *)dst->data + off, src, n, cudaMemcpyHostToDevice), "upload");
    return m2u_cuda_failed();
}

static int download(void *dst, const m2u_buffer *src, size_t off, size_t n) {
    if (in_range(src, off, n, "download")) return -1;
    m2u_cuda_note(cudaMemcpy(dst, (const char *)src->data + off, n, cudaMemcpyDeviceToHost), "download");
    return m2u_cuda_failed();
}

static int copy(m2u_buffer *dst, size_t doff, const m2u_buffer *src, size_t soff, size_t n) {
    if (in_range(dst, doff, n, "copy") || in_range(src, soff, n, "copy")) return -1;
    m2u_cuda_note(cudaMemcpy((char *)dst->data + doff, (const char *)src->data + soff, n, cudaMemcpyDeviceToDevice),
                  "copy");
    return m2u_cuda_failed();
}

static int synchronize(void) {
    m2u_cuda_note(cudaDeviceSynchronize(), "synchronize");
    return m2u_cuda_failed();
}

/* ---- the table ------------------------------------------------------------------------------ */

static const m2u_backend g_cuda = {
    "cuda",
    M2U_DEV_CUDA,
    buf_alloc,
    buf_free,
    upload,
    download,
    copy,
    synchronize,
    m2u_cuda_gemm,
    m2u_cuda_gemm, /* gemm_thin: cuBLAS handles the thin shapes itself */
    m2u_cuda_gemv,
    m2u_cuda_matmul_wt,
    m2u_cuda_matmul_w_acc,
    m2u_cuda_linear_fwd,
    m2u_cuda_linear_bwd,
    m2u_cuda_rmsnorm_fwd,
    m2u_cuda_rmsnorm_bwd,
    m2u_cuda_layernorm_fwd,
    m2u_cuda_layernorm_bwd,
    m2u_cuda_l2norm_fwd,
    m2u_cuda_l2norm_bwd,
    m2u_cuda_rope_table,
    m2u_cuda_rope_fwd,
    m2u_cuda_rope_bwd,
    m2u_cuda_attn_fwd,
    m2u_cuda_attn_bwd,
    m2u_cuda_softmax_fwd,
    m2u_cuda_softmax_bwd,
    m2u_cuda_swiglu_fwd,
    m2u_cuda_swiglu_bwd,
    m2u_cuda_gelu_fwd,
    m2u_cuda_gelu_bwd,
    m2u_cuda_gelu_tanh_fwd,
    m2u_cuda_gelu_tanh_bwd,
    m2u_cuda_relu_fwd,
    m2u_cuda_relu_bwd,
    m2u_cuda_add,
    m2u_cuda_add_inplace,
    m2u_cuda_axpy,
    m2u_cuda_bias_add_rows,
    m2u_cuda_bias_grad,
    m2u_cuda_dropout,
    m2u_cuda_scale,
    m2u_cuda_zero,
    m2u_cuda_relu_mask,
    m2u_cuda_act_gated_fwd,
    m2u_cuda_add_scalar,
    m2u_cuda_sum,
    m2u_cuda_rmsnorm_dsum_fwd,
    m2u_cuda_layernorm_residual_bwd,
    m2u_cuda_zero_mean_unit_var,
    m2u_cuda_channel_stats,
    m2u_cuda_head_gate_add,
    m2u_cuda_head_gate_bwd,
    m2u_cuda_pixels_normalize,
    m2u_cuda_patch_im2col,
    m2u_cuda_conv1d_fwd,
    m2u_cuda_conv1d_bwd,
    m2u_cuda_embedding_fwd,
    m2u_cuda_embedding_bwd,
    m2u_cuda_cross_entropy,
    m2u_cuda_mse_fwd,
    m2u_cuda_mse_bwd,
    m2u_cuda_adamw_step,
    m2u_cuda_grad_norm,
    m2u_cuda_clip_grad,
};

/* The first of these that is set: which of the node's GPUs this process drives. */
static int local_rank(void) {
    static const char *const vars[] = {"M2U_CUDA_DEVICE", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK",
                                       "MPI_LOCALRANKID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return 0;
}

static int g_state; /* 0 not tried, 1 ready, -1 unavailable */
static char g_why[256];

extern "C" const m2u_backend *m2u_backend_cuda(const char **why) {
    if (g_state == 0) {
        int n = 0;
        cudaError_t e = cudaGetDeviceCount(&n);
        if (e != cudaSuccess || n == 0) {
            snprintf(g_why, sizeof g_why, "no CUDA device visible (%s)",
                     e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
            g_state = -1;
        } else {
            int dev = local_rank() % n;
            cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
            if ((e = cudaSetDevice(dev)) != cudaSuccess) {
                snprintf(g_why, sizeof g_why, "cudaSetDevice(%d): %s", dev, cudaGetErrorString(e));
                g_state = -1;
            } else if ((s = cublasCreate(&g_blas)) != CUBLAS_STATUS_SUCCESS ||
                       (s = cublasSetMathMode(g_blas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS) {
                snprintf(g_why, sizeof g_why, "cuBLAS could not start on device %d (status %d)", dev, (int)s);
                g_state = -1;
            } else {
                g_state = 1;
            }
        }
    }
    if (g_state < 0) {
        if (why) *why = g_why;
        return NULL;
    }
    return &g_cuda;
}
