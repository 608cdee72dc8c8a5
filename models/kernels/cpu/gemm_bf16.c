#include "gemm_bf16.h"

#include <stdint.h>
#include <string.h>

#ifdef M2U_HAVE_DNNL
#include <dnnl.h>
#include <pthread.h>
#include <stdlib.h>

/* One product shape: a oneDNN matmul primitive is made for it once (its kernels are generated
 * for the shape, 0.1 to 1 ms) and kept.  A training step has a few dozen shapes (seven linears
 * and the head, forward and backward, per distinct row count), so the cache holds every one;
 * past CACHE_N shapes the oldest entry is replaced. */
typedef struct {
    int used;
    int bwd;               /* 0: y = beta*y + x W^T; 1: dx += dy W */
    int m, k, n;           /* src [m, k], weights as [k, n], dst [m, n] */
    long ldw, ldc;         /* the weight's row length (its cols), the destination's leading dim */
    float beta;
    int bad;               /* oneDNN has no native kernel for it: the caller computes it instead */
    dnnl_primitive_t prim; /* NULL when bad */
    dnnl_memory_desc_t src, wei, dst;
} shape_entry;

enum { CACHE_N = 128 };

static struct {
    pthread_mutex_t mu; /* one product at a time: the cache, the bf16 buffer and the stream */
    int init;           /* 1: engine and stream made; -1: oneDNN could not */
    int want;           /* m2u_gemm_bf16_enable */
    int isa_ok;         /* -1: not asked yet */
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    shape_entry cache[CACHE_N];
    int next; /* the slot to replace when the cache is full */
    uint16_t *buf; /* the activations in bf16; grows, kept */
    size_t buf_n;
} g = {PTHREAD_MUTEX_INITIALIZER, 0, 1, -1, NULL, NULL, {{0}}, 0, NULL, 0};

static int isa_ok(void) {
    if (g.isa_ok < 0) {
        /* the ISA values are nested bit sets: avx512_core_bf16 holds every bit of avx512_core */
        unsigned isa = (unsigned)dnnl_get_effective_cpu_isa(), need = (unsigned)dnnl_cpu_isa_avx512_core_bf16;
        g.isa_ok = (isa & need) == need;
    }
    return g.isa_ok;
}

int m2u_gemm_bf16_ok(void) {
    pthread_mutex_lock(&g.mu);
    int ok = g.want && isa_ok();
    pthread_mutex_unlock(&g.mu);
    return ok;
}

int m2u_gemm_bf16_enable(int want) {
    pthread_mutex_lock(&g.mu);
    g.want = want != 0;
    pthread_mutex_unlock(&g.mu);
    return m2u_gemm_bf16_ok();
}

static int engine(void) {
    if (g.init == 0) {
        g.init = -1;
        if (dnnl_engine_create(&g.eng, dnnl_cpu, 0) == dnnl_success) {
            if (dnnl_stream_create(&g.strm, g.eng, dnnl_stream_default_flags) == dnnl_success)
                g.init = 1;
            else
                dnnl_engine_destroy(g.eng);
        }
    }
    return g.init == 1;
}

static void drop_entry(shape_entry *e) {
    if (e->prim) dnnl_primitive_destroy(e->prim);
    memset(e, 0, sizeof *e);
}

/* The matmul for a shape, made on first use.  NULL: oneDNN has nothing native for it (a
 * reference implementation would be orders of magnitude slower than the fp32 path). */
static shape_entry *entry_for(int bwd, int m, int k, int n, long ldw, long ldc, float beta) {
    for (int i = 0; i < CACHE_N; i++) {
        shape_entry *e = &g.cache[i];
        if (e->used && e->bwd == bwd && e->m == m && e->k == k && e->n == n && e->ldw == ldw && e->ldc == ldc &&
            e->beta == beta)
            return e->bad ? NULL : e;
    }
    shape_entry *e = NULL;
    for (int i = 0; i < CACHE_N && !e; i++)
        if (!g.cache[i].used) e = &g.cache[i];
    if (!e) {
        e = &g.cache[g.next];
        g.next = (g.next + 1) % CACHE_N;
        drop_entry(e);
    }
    *e = (shape_entry){.used = 1, .bwd = bwd, .m = m, .k = k, .n = n, .ldw = ldw, .ldc = ldc, .beta = beta, .bad = 1};
    /* forward: weights [k, n] = W^T, element (i, j) at W[j * ldw + i]; backward: W as stored */
    dnnl_dims_t sd = {m, k}, ss = {k, 1}, wd = {k, n}, dd = {m, n}, ds = {ldc, 1};
    dnnl_dims_t ws_f = {1, ldw}, ws_b = {ldw, 1};
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_memory_desc_init_by_strides(&e->src, 2, sd, dnnl_bf16, ss) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&e->wei, 2, wd, dnnl_bf16, bwd ? ws_b : ws_f) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&e->dst, 2, dd, dnnl_f32, ds) != dnnl_success ||
        dnnl_matmul_desc_init(&md, &e->src, &e->wei, NULL, &e->dst) != dnnl_success ||
        dnnl_primitive_attr_create(&attr) != dnnl_success)
        return NULL;
    int ok = 1;
    if (beta != 0.0f) /* the sum post-op: dst = beta * dst + product */
        ok = dnnl_post_ops_create(&po) == dnnl_success && dnnl_post_ops_append_sum(po, beta) == dnnl_success &&
             dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    if (ok) ok = dnnl_primitive_desc_create(&pd, &md, attr, g.eng, NULL) == dnnl_success;
    if (po) dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    if (!ok) return NULL;
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl ||
        !strncmp(impl, "ref", 3)) {
        dnnl_primitive_desc_destroy(pd);
        return NULL;
    }
    ok = dnnl_primitive_create(&e->prim, pd) == dnnl_success;
    dnnl_primitive_desc_destroy(pd);
    if (!ok) {
        e->prim = NULL;
        return NULL;
    }
    e->bad = 0;
    return e;
}

/* rows [N, cols] with leading dim ld, rounded to bf16 (nearest even, NaN kept quiet: the bits of
 * m2u_f32_to_bf16) into g.buf as a contiguous [N, cols] */
static int round_rows(const float *x, int N, int cols, long ld) {
    size_t need = (size_t)N * (size_t)cols;
    if (need > g.buf_n) {
        uint16_t *b = aligned_alloc(64, (need * 2 + 63) & ~(size_t)63);
        if (!b) return -1;
        free(g.buf);
        g.buf = b;
        g.buf_n = need;
    }
    uint16_t *buf = g.buf;
#pragma omp parallel for schedule(static) if (need > 65536)
    for (int r = 0; r < N; r++) {
        const uint32_t *s = (const uint32_t *)(x + (size_t)r * (size_t)ld);
        uint16_t *d = buf + (size_t)r * (size_t)cols;
#pragma omp simd
        for (int i = 0; i < cols; i++) {
            uint32_t u = s[i];
            uint32_t rn = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, qn = (u >> 16) | 0x40u;
            d[i] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? qn : rn);
        }
    }
    return 0;
}

static int run(int bwd, float *c, long ldc, const float *a, long lda, int m, int k, int n, const m2u_mat *w, int row0,
               float beta) {
    if (m <= 0 || k <= 0 || n <= 0) return -1;
    if (w->dtype != M2U_BF16 || ((uintptr_t)w->data % 2) != 0) return -1;
    int rc = -1;
    pthread_mutex_lock(&g.mu);
    if (g.want && isa_ok() && engine()) {
        shape_entry *e = entry_for(bwd, m, k, n, w->cols, ldc, beta);
        if (e && round_rows(a, m, k, lda) == 0) {
            const uint16_t *W = (const uint16_t *)w->data + (size_t)row0 * (size_t)w->cols;
            dnnl_memory_t ms = NULL, mw = NULL, mdst = NULL;
            if (dnnl_memory_create(&ms, &e->src, g.eng, g.buf) == dnnl_success &&
                dnnl_memory_create(&mw, &e->wei, g.eng, (void *)W) == dnnl_success &&
                dnnl_memory_create(&mdst, &e->dst, g.eng, c) == dnnl_success) {
                dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, mdst}};
                if (dnnl_primitive_execute(e->prim, g.strm, 3, args) == dnnl_success &&
                    dnnl_stream_wait(g.strm) == dnnl_success)
                    rc = 0;
            }
            if (ms) dnnl_memory_destroy(ms);
            if (mw) dnnl_memory_destroy(mw);
            if (mdst) dnnl_memory_destroy(mdst);
        }
    }
    pthread_mutex_unlock(&g.mu);
    return rc;
}

int m2u_gemm_bf16_wt(float *y, int ldy, const float *x, int N, const m2u_mat *w, int row0, int nrows, float beta) {
    return run(0, y, ldy, x, w->cols, N, w->cols, nrows, w, row0, beta);
}

int m2u_gemm_bf16_acc(float *dx, const float *dy, int ldy, int N, const m2u_mat *w, int row0, int nrows) {
    return run(1, dx, w->cols, dy, ldy, N, nrows, w->cols, w, row0, 1.0f);
}

#else /* no oneDNN: no bf16 products */

int m2u_gemm_bf16_ok(void) { return 0; }
int m2u_gemm_bf16_enable(int want) {
    (void)want;
    return 0;
}
int m2u_gemm_bf16_wt(float *y, int ldy, const float *x, int N, const m2u_mat *w, int row0, int nrows, float beta) {
    (void)y, (void)ldy, (void)x, (void)N, (void)w, (void)row0, (void)nrows, (void)beta;
    return -1;
}
int m2u_gemm_bf16_acc(float *dx, const float *dy, int ldy, int N, const m2u_mat *w, int row0, int nrows) {
    (void)dx, (void)dy, (void)ldy, (void)N, (void)w, (void)row0, (void)nrows;
    return -1;
}

#endif
