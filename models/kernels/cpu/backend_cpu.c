/* The CPU instance of the op table: host memory, the kernels of this folder. */
#include "backend.h"

#include "m2u_error.h"
#include "vmath_avx2.h" /* m2u_avx512 */

#include <stdio.h>

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static int cpu_alloc(m2u_buffer *b, size_t bytes) {
    b->data = calloc(bytes ? bytes : 1, 1);
    b->bytes = bytes;
    b->dev = M2U_DEV_CPU;
    if (!b->data) return m2u_fail("cpu backend: out of memory for %zu bytes", bytes);
    return 0;
}

static void cpu_free(m2u_buffer *b) {
    free(b->data);
    b->data = NULL;
    b->bytes = 0;
}

static int range_ok(const m2u_buffer *b, size_t off, size_t n, const char *what) {
    if (b->dev != M2U_DEV_CPU) return m2u_fail("cpu backend: %s: buffer is on another device", what);
    if (off > b->bytes || n > b->bytes - off)
        return m2u_fail("cpu backend: %s of %zu bytes at %zu overruns a %zu-byte buffer", what, n, off, b->bytes);
    return 0;
}

static int cpu_upload(m2u_buffer *dst, size_t off, const void *src, size_t n) {
    if (range_ok(dst, off, n, "upload")) return -1;
    if (n) memcpy((char *)dst->data + off, src, n);
    return 0;
}

static int cpu_download(void *dst, const m2u_buffer *src, size_t off, size_t n) {
    if (range_ok(src, off, n, "download")) return -1;
    if (n) memcpy(dst, (const char *)src->data + off, n);
    return 0;
}

static int cpu_copy(m2u_buffer *dst, size_t doff, const m2u_buffer *src, size_t soff, size_t n) {
    if (range_ok(dst, doff, n, "copy") || range_ok(src, soff, n, "copy")) return -1;
    if (n) memmove((char *)dst->data + doff, (const char *)src->data + soff, n);
    return 0;
}

static int cpu_sync(void) { return 0; }

/* LoRA's products (a rank as M, N or K).  gemm_thin.c's unpacked AVX2 kernel beat sgemm on them
 * on AVX2 CPUs (Zen 3: 130-190 GFLOP/s against 90-120).  Where the CPU has AVX-512, oneDNN's
 * sgemm runs its 512-bit kernels and wins instead: 1.25x to 1.6x over the six products of one
 * adapted linear on the 15M and 110M shapes (Zen 5, 2 threads, best of 200 each), equal or
 * faster on every one of the six. */
static void cpu_gemm_thin(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                          const float *B, int ldb, float beta, float *C, int ldc) {
#if defined(M2U_HAVE_DNNL) && defined(M2U_HAVE_AVX2_PATHS)
    if (m2u_avx512())
        m2u_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
#endif
        m2u_gemm_thin(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static const m2u_backend cpu = {
    .name = "cpu",
    .dev = M2U_DEV_CPU,
    .buf_alloc = cpu_alloc,
    .buf_free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .copy = cpu_copy,
    .synchronize = cpu_sync,
    .gemm = m2u_gemm,
    .gemm_thin = cpu_gemm_thin,
    .gemv = m2u_gemv,
    .matmul_wt = m2u_matmul_wt,
    .matmul_w_acc = m2u_matmul_w_acc,
    .linear_fwd = m2u_linear_fwd,
    .linear_bwd = m2u_linear_bwd,
    .rmsnorm_fwd = m2u_rmsnorm_fwd,
    .rmsnorm_bwd = m2u_rmsnorm_bwd,
    .layernorm_fwd = m2u_layernorm_fwd,
    .layernorm_bwd = m2u_layernorm_bwd,
    .l2norm_fwd = m2u_l2norm_fwd,
    .l2norm_bwd = m2u_l2norm_bwd,
    .rope_table = m2u_rope_table,
    .rope_fwd = m2u_rope_fwd,
    .rope_bwd = m2u_rope_bwd,
    .attn_fwd = m2u_attn_fwd,
    .attn_bwd = m2u_attn_bwd,
    .softmax_fwd = m2u_softmax_rows,
    .softmax_bwd = m2u_softmax_bwd,
    .swiglu_fwd = m2u_swiglu_fwd,
    .swiglu_bwd = m2u_swiglu_bwd,
    .gelu_fwd = m2u_gelu_fwd,
    .gelu_bwd = m2u_gelu_bwd,
    .gelu_tanh_fwd = m2u_gelu_tanh_fwd,
    .gelu_tanh_bwd = m2u_gelu_tanh_bwd,
    .relu_fwd = m2u_relu_fwd,
    .relu_bwd = m2u_relu_bwd,
    .add = m2u_add,
    .add_inplace = m2u_add_inplace,
    .axpy = m2u_axpy,
    .bias_add_rows = m2u_bias_add_rows,
    .bias_grad = m2u_bias_grad,
    .dropout = m2u_dropout,
    .scale = m2u_scale,
    .zero = m2u_zero,
    .relu_mask = m2u_relu_mask,
    .act_gated_fwd = m2u_act_gated_fwd,
    .add_scalar = m2u_add_scalar,
    .sum = m2u_sum,
    .zero_mean_unit_var = m2u_zero_mean_unit_var,
    .channel_stats = m2u_channel_stats,
    .rmsnorm_dsum_fwd = m2u_rmsnorm_dsum_fwd,
    .layernorm_residual_bwd = m2u_layernorm_residual_bwd,
    .head_gate_add = m2u_head_gate_add,
    .head_gate_bwd = m2u_head_gate_bwd,
    .pixels_normalize = m2u_pixels_normalize,
    .patch_im2col = m2u_patch_im2col,
    .conv1d_fwd = m2u_conv1d_tm,
    .conv1d_bwd = m2u_conv1d_tm_bwd,
    .embedding_fwd = m2u_embedding_fwd,
    .embedding_bwd = m2u_embedding_bwd,
    .cross_entropy = m2u_cross_entropy,
    .mse_fwd = m2u_mse_fwd,
    .mse_bwd = m2u_mse_bwd,
    .adamw_step = m2u_adamw_step,
    .grad_norm = m2u_grad_norm,
    .clip_grad = m2u_clip_grad,
};

const m2u_backend *m2u_backend_cpu(void) { return &cpu; }

#ifndef M2U_HAVE_CUDA
const m2u_backend *m2u_backend_cuda(const char **why) {
    if (why) *why = "no CUDA backend built";
    return NULL;
}
#endif

void m2u_set_threads(int n) {
    if (n > 0) omp_set_num_threads(n);
}

int m2u_max_threads(void) { return omp_get_max_threads(); }

/* m2u_parallel_items and m2u_parallel_tasks: fn over [0, n) on the caller (serial) or on up to
 * n threads */
static int run_items(int n, int (*fn)(void *ctx, int i), void *ctx, int serial) {
    if (n <= 0) return 0;
    if (serial) {
        for (int i = 0; i < n; i++)
            if (fn(ctx, i) != 0) return -1;
        return 0;
    }
    int nt = omp_get_max_threads();
    if (nt > n) nt = n;
    /* first: the lowest failing item so far.  Items above it are skipped; items below it still
     * run, so the reported failure is the lowest one whatever order the threads finish in. */
    int first = n;
    char msg[1024] = "";
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int i = 0; i < n; i++) {
        int low;
#pragma omp atomic read
        low = first;
        if (i > low || fn(ctx, i) == 0) continue;
#pragma omp critical(m2u_parallel_items)
        if (i < first) { /* the message lives in the failing thread's error buffer */
            snprintf(msg, sizeof msg, "%s", m2u_last_error());
#pragma omp atomic write
            first = i;
        }
    }
    return first < n ? m2u_fail("%s", msg) : 0;
}

int m2u_parallel_items(int n, int (*fn)(void *ctx, int i), void *ctx) {
    return run_items(n, fn, ctx, n < omp_get_max_threads() || omp_in_parallel());
}

/* m2u_parallel_tasks runs on threads of its own rather than an OpenMP team.  Its tasks are
 * tens of milliseconds long and usually followed by serial work: an OpenMP team's workers
 * would spin-wait after each call (libgomp's default policy), which cost the dataset build
 * 5-15 % more CPU time for the same work.  Threads that are joined cost nothing after. */
typedef struct {
    int (*fn)(void *ctx, int i);
    void *ctx;
    int n, next, first; /* next task to hand out; the lowest failing task so far (n: none) */
    pthread_mutex_t mu;
    char msg[1024];
} task_pool;

static _Thread_local int g_in_task; /* a task's thread: nested calls run serially */

static void task_loop(task_pool *tp) {
    for (;;) {
        pthread_mutex_lock(&tp->mu);
        /* tasks above the lowest failure are skipped, those below still run */
        int i = tp->next < tp->n && tp->next < tp->first ? tp->next++ : -1;
        pthread_mutex_unlock(&tp->mu);
        if (i < 0) return;
        if (tp->fn(tp->ctx, i) == 0) continue;
        pthread_mutex_lock(&tp->mu);
        if (i < tp->first) { /* the message lives in this thread's error buffer */
            tp->first = i;
            snprintf(tp->msg, sizeof tp->msg, "%s", m2u_last_error());
        }
        pthread_mutex_unlock(&tp->mu);
    }
}

static void *task_worker(void *arg) {
    g_in_task = 1;
    omp_set_num_threads(1); /* a kernel's parallel loop inside a task stays on its thread */
    task_loop(arg);
    return NULL;
}

int m2u_parallel_tasks(int n, int (*fn)(void *ctx, int i), void *ctx) {
    int nt = omp_get_max_threads();
    if (nt > n) nt = n;
    if (n < 2 || nt < 2 || omp_in_parallel() || g_in_task) return run_items(n, fn, ctx, 1);
    task_pool tp = {.fn = fn, .ctx = ctx, .n = n, .next = 0, .first = n};
    if (pthread_mutex_init(&tp.mu, NULL) != 0) return run_items(n, fn, ctx, 1);
    pthread_t th[64];
    int started = 0;
    if (nt > 65) nt = 65;
    for (int t = 1; t < nt; t++) /* a thread that cannot start leaves its share to the others */
        if (pthread_create(&th[started], NULL, task_worker, &tp) == 0) started++;
    /* the caller takes tasks too, as a task's thread while it does */
    int saved = omp_get_max_threads();
    g_in_task = 1;
    omp_set_num_threads(1);
    task_loop(&tp);
    omp_set_num_threads(saved);
    g_in_task = 0;
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    pthread_mutex_destroy(&tp.mu);
    return tp.first < n ? m2u_fail("%s", tp.msg) : 0;
}
