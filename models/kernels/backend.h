/* The op table: every compute primitive the networks use, as function pointers, plus
 * device-tagged buffers.  One instance per backend: m2u_backend_cpu() (models/kernels/cpu,
 * BLAS + OpenMP) now, a CUDA one (issue 14) next.  Every pointer an op receives lives on the
 * backend's device (buffer data from its buf_alloc); host arrays move in and out with
 * upload / download.  Semantics, shapes and accumulation rules are those of the CPU
 * headers named beside each entry (ops.h, ops_extra.h, attention.h, tensor.h, conv1d.h,
 * adamw.h); a second backend must match them within the tolerances tests/test_kernels.c
 * states.  The networks still call the CPU functions directly; tests/test_kernels.c goes
 * through this table. */
#ifndef M2U_BACKEND_H
#define M2U_BACKEND_H

#include "adamw.h"
#include "attention.h"
#include "conv1d.h"
#include "image.h"
#include "ops_extra.h"
#include "tensor.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { M2U_DEV_CPU = 0, M2U_DEV_CUDA = 1 } m2u_device;

typedef struct {
    void *data;
    size_t bytes;
    m2u_device dev;
} m2u_buffer;

typedef struct m2u_backend {
    const char *name; /* "cpu", "cuda" */
    m2u_device dev;

    /* ---- buffers ---- */
    int (*buf_alloc)(m2u_buffer *b, size_t bytes); /* zero-filled; -1 (m2u_fail) when out of memory */
    void (*buf_free)(m2u_buffer *b);               /* NULL data is fine; resets *b */
    int (*upload)(m2u_buffer *dst, size_t off, const void *src, size_t n);      /* host -> buffer bytes */
    int (*download)(void *dst, const m2u_buffer *src, size_t off, size_t n);    /* buffer -> host bytes */
    int (*copy)(m2u_buffer *dst, size_t doff, const m2u_buffer *src, size_t soff, size_t n); /* same device */
    int (*synchronize)(void);

    /* ---- matrix products (ops.h, tensor.h, ops_extra.h) ---- */
    void (*gemm)(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc);
    /* gemm's contract, for products with one small dimension (LoRA's rank): the CPU runs
     * them without packing (tensor.h: m2u_gemm_thin); a backend may give its gemm here */
    void (*gemm_thin)(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc);
    void (*gemv)(int trans_a, int M, int N, float alpha, const float *A, int lda, const float *x, float beta, float *y);
    void (*matmul_wt)(float *y, int ldy, const float *x, int N, const m2u_mat *w, int row0, int nrows, float beta);
    void (*matmul_w_acc)(float *dx, const float *dy, int ldy, int N, const m2u_mat *w, int row0, int nrows);
    void (*linear_fwd)(float *y, const float *x, const float *w, const float *b, int N, int in, int out);
    void (*linear_bwd)(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int N, int in,
                       int out);

    /* ---- norms ---- */
    void (*rmsnorm_fwd)(float *out, float *rstd, const float *x, const float *w, int N, int C, float eps);
    void (*rmsnorm_bwd)(float *dx, float *dw, const float *dout, const float *x, const float *w, const float *rstd,
                        int N, int C);
    void (*layernorm_fwd)(float *out, float *mean, float *rstd, const float *x, const float *w, const float *b, int N,
                          int C, float eps);
    void (*layernorm_bwd)(float *dx, float *dw, float *db, const float *dout, const float *x, const float *w,
                          const float *mean, const float *rstd, int N, int C);
    void (*l2norm_fwd)(float *out, float *norm, const float *x, int N, int C, float eps);
    void (*l2norm_bwd)(float *dx, const float *dout, const float *out, const float *norm, int N, int C, float eps);

    /* ---- positions and attention ---- */
    void (*rope_table)(float *cos_t, float *sin_t, const int *pos, int N, int head_dim, const float *inv_freq);
    void (*rope_fwd)(float *x, int N, int stride, int n_heads, int head_dim, const float *cos_t, const float *sin_t);
    void (*rope_bwd)(float *dx, int N, int stride, int n_heads, int head_dim, const float *cos_t, const float *sin_t);
    int (*attn_fwd)(const m2u_attn *a, float *out, float *probs, const float *q, const float *k, const float *v);
    int (*attn_bwd)(const m2u_attn *a, float *dq, float *dk, float *dv, const float *dout, const float *probs,
                    const float *q, const float *k, const float *v);
    void (*softmax_fwd)(float *x, int N, int V);
    void (*softmax_bwd)(float *dx, const float *dy, const float *y, int N, int V);

    /* ---- element-wise ---- */
    void (*swiglu_fwd)(float *out, const float *g, const float *u, size_t n);
    void (*swiglu_bwd)(float *dg, float *du, const float *dout, const float *g, const float *u, size_t n);
    void (*gelu_fwd)(float *out, const float *x, size_t n);
    void (*gelu_bwd)(float *dx, const float *dout, const float *x, size_t n);
    void (*gelu_tanh_fwd)(float *out, const float *x, size_t n);
    void (*gelu_tanh_bwd)(float *dx, const float *dout, const float *x, size_t n);
    void (*relu_fwd)(float *out, const float *x, size_t n);
    void (*relu_bwd)(float *dx, const float *dout, const float *out, size_t n);
    void (*add)(float *out, const float *a, const float *b, size_t n);
    void (*add_inplace)(float *y, const float *x, size_t n);
    void (*axpy)(int n, float alpha, const float *x, float *y);
    void (*bias_add_rows)(float *y, const float *b, int N, int C);
    void (*bias_grad)(float *db, const float *dy, int N, int C);
    void (*dropout)(float *out, const float *x, size_t n, float p, uint64_t seed, uint64_t tag);
    void (*scale)(float *out, const float *x, float alpha, size_t n);
    void (*zero)(float *x, size_t n);
    void (*relu_mask)(float *dx, const float *y, size_t n);
    void (*act_gated_fwd)(float *x, const float *gate, size_t n, m2u_kact act);
    void (*add_scalar)(float *x, float c, size_t n);
    double (*sum)(const float *x, size_t n);

    /* ---- network-specific pieces (tensor.h, image.h) ---- */
    void (*rmsnorm_dsum_fwd)(float *out, const float *x, const float *w, int N, int C, float eps);
    void (*layernorm_residual_bwd)(float *G, float *A, float *dw, float *db, const float *r, const float *w,
                                   const float *mean, const float *rstd, int N, int C);
    void (*zero_mean_unit_var)(float *out, const float *x, long n, double eps);
    void (*channel_stats)(float *mean, float *rstd, double *work, const float *x, int T, int C, double eps);
    void (*head_gate_add)(float *att, const float *av, const float *gate, int B, int T, int H, int KV, int hd);
    void (*head_gate_bwd)(float *dgate, float *dav, const float *datt, const float *av, const float *gate, int B,
                          int T, int H, int KV, int hd);
    void (*pixels_normalize)(float *px, const uint8_t *rgb, int frames, size_t HW, int do_rescale,
                             double rescale_factor, int offset, int do_normalize, const float mean[3],
                             const float std[3]);
    void (*patch_im2col)(float *col, const float *px, int C, int img_h, int img_w, int pt, int ph, int pw,
                         int grid_t, int grid_h, int grid_w);

    /* ---- convolution, embeddings ---- */
    int (*conv1d_fwd)(float *y, int T_out, const float *x, int T_in, int C_in, int C_out, int k, int stride, int pad,
                      int groups, const float *w, const float *b);
    int (*conv1d_bwd)(float *dx, float *dw, float *db, const float *dy, int T_out, const float *x, int T_in, int C_in,
                      int C_out, int k, int stride, int pad, int groups, const float *w);
    void (*embedding_fwd)(float *x, const int32_t *ids, int N, const m2u_mat *table, const float *extra,
                          int rows_start);
    void (*embedding_bwd)(float *dextra, const float *dx, const int32_t *ids, int N, int C, int rows_start);

    /* ---- losses and the optimizer ---- */
    /* the loss, and with dlogits each row's softmax - onehot (ops.h) */
    double (*cross_entropy)(const float *logits, const int32_t *targets, int N, int V, float *lse, int *n_valid,
                            float *dlogits);
    double (*mse_fwd)(const float *pred, const float *target, float target_scale, size_t n);
    void (*mse_bwd)(float *dpred, const float *pred, const float *target, float target_scale, size_t n,
                    float grad_scale);
    /* m2u_adamw's moments and the params' data/grad live on the device */
    void (*adamw_step)(m2u_adamw *opt, const m2u_adamw_config *cfg, float lr, const m2u_param *params, int n_params);
    double (*grad_norm)(const float *grad, size_t n);
    void (*clip_grad)(float *grad, size_t n, double norm, float max_norm);
} m2u_backend;

/* The CPU backend (always there). */
const m2u_backend *m2u_backend_cpu(void);
/* The CUDA backend when this build has one and a device is visible, else NULL with the
 * reason in *why (a static string). */
const m2u_backend *m2u_backend_cuda(const char **why);

/* Worker threads of the CPU kernels (OpenMP and the OpenMP build of OpenBLAS share one
 * pool); n <= 0 leaves the default (OMP_NUM_THREADS or all cores). */
void m2u_set_threads(int n);
int m2u_max_threads(void);

/* fn(ctx, i) for every i in [0, n), items spread over the worker threads (one at a time per
 * thread, dynamically), each item single-threaded inside: the kernels' parallel loops and
 * BLAS run on the item's own thread while nested.  For many independent items of similar
 * size, such as the clips a scorer embeds one by one, where a single item's every GEMM would
 * otherwise fork and join across the cores (8 % of PaSST's time on 2 cores), and an item's
 * result no longer depends on the thread count.  With fewer items than threads it runs them
 * in order on the calling thread, each with all the threads.  fn reports failure with
 * m2u_fail and a nonzero return; after one, the items above it not yet started are skipped
 * (those below still run), and the call returns -1 with the error of the lowest-numbered
 * failing item, raised again on the calling thread. */
int m2u_parallel_items(int n, int (*fn)(void *ctx, int i), void *ctx);

/* The same for a few tasks of unequal size without parallel loops of their own (the parts of
 * one music analysis, a file's clips): they are spread over up to min(n, m2u_max_threads())
 * threads, the caller's among them, whenever that is two or more and the caller is not inside
 * a parallel region or another task; otherwise they run in order on the caller.  The threads
 * are started for the call and joined (no thread spins after it); inside a task the kernels
 * run on one thread.  Same error contract as m2u_parallel_items. */
int m2u_parallel_tasks(int n, int (*fn)(void *ctx, int i), void *ctx);

#endif
