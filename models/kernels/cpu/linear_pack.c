/* Frozen nn.Linear weights in oneDNN's packed layout (see m2u_linear_pack_new in ops_extra.h):
 * the encoders' layers and MERT's convolutions, and LLaMA's forward under train.packed_weights.
 *
 * Why: dnnl_sgemm (m2u_gemm) repacks the weight on every call and runs its older sgemm kernels;
 * oneDNN's matmul primitive (brgemm kernels) on a weight reordered once into the layout it asks
 * for ran the encoders' products 1.08-1.48x faster (MERT-95M's four linears on 749 rows, Zen 5, 2
 * threads: 526-541 GFLOP/s against 365-486, the K = 3072 one gaining most), with the bias added
 * in its epilogue instead of a copy of it into y before the product.  The same primitive on the
 * weight as stored (no reorder) was no faster than dnnl_sgemm, so the packed copy is the point;
 * it costs one more copy of the weight, made on the first product.
 *
 * Only brgemm kernels are used ("brg:..." implementations: oneDNN 2.6 has them for fp32 on
 * AVX-512 CPUs); anything else, a build without oneDNN, and any failure fall back to
 * m2u_linear_fwd, which gives the same values but for the products' rounding.
 *
 * Threads: a primitive is made for a row count AND a thread count (oneDNN sizes its parallel
 * loop when the primitive is made, then runs that many threads whatever the caller's setting),
 * so a product inside a one-thread task gets a one-thread primitive.  Several threads may run
 * products of the same pack at once: the lookups hold the pack's mutex, the products do not;
 * each product takes a stream and a scratchpad of its own from a shared pool, because oneDNN's
 * default (library-managed) scratchpad is shared by all primitives of a thread and a primitive
 * must not move between threads with it. */
#include "ops_extra.h"
#include "tensor.h" /* m2u_gemm */

#include <stdlib.h>
#include <string.h>

#ifdef M2U_HAVE_DNNL
#include <dnnl.h>
#include <omp.h>
#include <pthread.h>

/* Primitives kept per pack.  An encoder sees one or two row counts per input length, and each
 * of the first MAX_EXACT distinct ones gets a primitive of its own.  Past them (BERTScore's
 * batches of every length) a product runs in blocks of CHUNK rows and a last block padded to a
 * multiple of PAD rows, so a pack needs at most CHUNK / PAD more shapes per thread count and
 * bias, and nothing is ever replaced while another thread may be running it.  A product that
 * still finds no room (MAX_SHAPES) falls back to m2u_linear_fwd. */
enum { MAX_EXACT = 8, CHUNK = 128, PAD = 16, MAX_SHAPES = 40, MAX_LAYOUTS = 2 };

/* The threads a product here would run on: one inside a parallel region (nested regions run
 * on one thread), else OpenMP's setting. */
static int product_threads(void) { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

typedef struct {
    int m, bias, nthr;     /* rows, bias or not, threads it was made for */
    long ldy;              /* the destination's row stride */
    int layout;            /* index into the pack's layouts; -1: no brgemm kernel for it */
    dnnl_primitive_t prim; /* NULL when layout < 0 */
    dnnl_memory_desc_t src, dst, bia;
    size_t scratch;        /* bytes of scratchpad it asks for */
} shape;

struct m2u_linear_pack {
    const float *w; /* [out, in], the caller's */
    int in, out;
    pthread_mutex_t mu;
    shape shapes[MAX_SHAPES];
    int n_shapes, n_exact; /* all, and those made for a caller's own row count */
    struct {
        dnnl_memory_desc_t md;
        dnnl_memory_t mem; /* the reordered weight, oneDNN-allocated */
    } layouts[MAX_LAYOUTS];
    int n_layouts;
};

/* the engine, and a pool of (stream, scratchpad, padding buffer) triples handed to one product
 * at a time */
typedef struct exec_ctx {
    dnnl_stream_t strm;
    void *scratch;
    size_t scratch_n;
    float *pad; /* a padded last block's rows in and out */
    size_t pad_n; /* bytes */
    struct exec_ctx *next;
} exec_ctx;

static struct {
    pthread_mutex_t mu;
    int off;  /* m2u_linear_pack_enable(0) */
    int init; /* 1: engine made; -1: oneDNN could not */
    dnnl_engine_t eng;
    exec_ctx *free_ctx;
} g = {PTHREAD_MUTEX_INITIALIZER, 0, 0, NULL, NULL};

static dnnl_engine_t engine(void) {
    pthread_mutex_lock(&g.mu);
    if (g.init == 0) g.init = dnnl_engine_create(&g.eng, dnnl_cpu, 0) == dnnl_success ? 1 : -1;
    dnnl_engine_t e = g.init == 1 && !g.off ? g.eng : NULL;
    pthread_mutex_unlock(&g.mu);
    return e;
}

static void ctx_give(exec_ctx *c) {
    pthread_mutex_lock(&g.mu);
    c->next = g.free_ctx, g.free_ctx = c;
    pthread_mutex_unlock(&g.mu);
}

/* *buf holds at least `bytes` (64-byte aligned, contents not kept); 0, or -1 with *buf as it was */
static int grow(void **buf, size_t *cap, size_t bytes) {
    if (bytes <= *cap) return 0;
    void *b = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!b) return -1;
    free(*buf);
    *buf = b;
    *cap = bytes;
    return 0;
}

/* A context with at least `scratch` bytes of scratchpad and `pad` floats of padding buffer; NULL
 * on failure.  The pool keeps every context ever made (as many as products ran at once), for the
 * life of the process. */
static exec_ctx *ctx_take(size_t scratch, size_t pad) {
    pthread_mutex_lock(&g.mu);
    exec_ctx *c = g.free_ctx;
    if (c) g.free_ctx = c->next;
    pthread_mutex_unlock(&g.mu);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c) return NULL;
        if (dnnl_stream_create(&c->strm, g.eng, dnnl_stream_default_flags) != dnnl_success) {
            free(c);
            return NULL;
        }
    }
    if (grow(&c->scratch, &c->scratch_n, scratch) || grow((void **)&c->pad, &c->pad_n, pad * sizeof(float))) {
        ctx_give(c);
        return NULL;
    }
    return c;
}


m2u_linear_pack *m2u_linear_pack_new(const float *w, int in, int out) {
    if (!w || in <= 0 || out <= 0) return NULL;
    m2u_linear_pack *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    p->w = w, p->in = in, p->out = out;
    return p;
}

void m2u_linear_pack_free(m2u_linear_pack *p) {
    if (!p) return;
    for (int i = 0; i < p->n_shapes; i++)
        if (p->shapes[i].prim) dnnl_primitive_destroy(p->shapes[i].prim);
    for (int i = 0; i < p->n_layouts; i++) dnnl_memory_destroy(p->layouts[i].mem);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* The weight reordered into layout md (made once per distinct layout); its index, or -1. */
static int layout_for(m2u_linear_pack *p, dnnl_engine_t eng, const dnnl_memory_desc_t *md) {
    for (int i = 0; i < p->n_layouts; i++)
        if (dnnl_memory_desc_equal(&p->layouts[i].md, md)) return i;
    if (p->n_layouts == MAX_LAYOUTS) return -1;
    /* the stored W [out, in] seen as the product's [in, out] weights: element (i, j) at W[j * in + i] */
    dnnl_dims_t dims = {p->in, p->out}, strides = {1, p->in};
    dnnl_memory_desc_t plain;
    dnnl_memory_t from = NULL, to = NULL;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    exec_ctx *c = NULL;
    int ok = dnnl_memory_desc_init_by_strides(&plain, 2, dims, dnnl_f32, strides) == dnnl_success &&
             dnnl_memory_create(&from, &plain, eng, (void *)p->w) == dnnl_success &&
             dnnl_memory_create(&to, md, eng, DNNL_MEMORY_ALLOCATE) == dnnl_success &&
             dnnl_reorder_primitive_desc_create(&rpd, &plain, eng, md, eng, NULL) == dnnl_success &&
             dnnl_primitive_create(&reorder, rpd) == dnnl_success && (c = ctx_take(0, 0)) != NULL;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        ok = dnnl_primitive_execute(reorder, c->strm, 2, args) == dnnl_success &&
             dnnl_stream_wait(c->strm) == dnnl_success;
    }
    if (c) ctx_give(c);
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (from) dnnl_memory_destroy(from);
    if (!ok) {
        if (to) dnnl_memory_destroy(to);
        return -1;
    }
    p->layouts[p->n_layouts].md = *md;
    p->layouts[p->n_layouts].mem = to;
    return p->n_layouts++;
}

/* The primitive for m rows, with or without bias, on nthr threads (made on first use); NULL
 * when there is none (no brgemm kernel, no room left, oneDNN failed).  exact: a caller's own
 * row count, which gets a new entry only among the first MAX_EXACT. */
static const shape *shape_for(m2u_linear_pack *p, int m, int bias, int nthr, long ldy, int exact) {
    dnnl_engine_t eng = engine();
    if (!eng) return NULL;
    for (int i = 0; i < p->n_shapes; i++) {
        const shape *s = &p->shapes[i];
        if (s->m == m && s->bias == bias && s->nthr == nthr && s->ldy == ldy) return s->layout >= 0 ? s : NULL;
    }
    if (p->n_shapes == MAX_SHAPES || (exact && p->n_exact == MAX_EXACT)) return NULL;
    p->n_exact += exact != 0;
    shape *s = &p->shapes[p->n_shapes++];
    *s = (shape){.m = m, .bias = bias, .nthr = nthr, .ldy = ldy, .layout = -1};
    dnnl_dims_t sd = {m, p->in}, wd = {p->in, p->out}, dd = {m, p->out}, ds = {ldy, 1}, bd = {1, p->out};
    dnnl_memory_desc_t any;
    dnnl_matmul_desc_t md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int ok = dnnl_memory_desc_init_by_tag(&s->src, 2, sd, dnnl_f32, dnnl_ab) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&any, 2, wd, dnnl_f32, dnnl_format_tag_any) == dnnl_success &&
             dnnl_memory_desc_init_by_strides(&s->dst, 2, dd, dnnl_f32, ds) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&s->bia, 2, bd, dnnl_f32, dnnl_ab) == dnnl_success &&
             dnnl_matmul_desc_init(&md, &s->src, &any, bias ? &s->bia : NULL, &s->dst) == dnnl_success &&
             dnnl_primitive_attr_create(&attr) == dnnl_success &&
             dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &md, attr, eng, NULL) == dnnl_success;
    if (attr) dnnl_primitive_attr_destroy(attr);
    const char *impl = NULL;
    ok = ok && dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
         !strncmp(impl, "brg", 3);
    const dnnl_memory_desc_t *wq = ok ? dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0) : NULL;
    const dnnl_memory_desc_t *sq = ok ? dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) : NULL;
    int layout = wq ? layout_for(p, eng, wq) : -1;
    if (layout >= 0 && dnnl_primitive_create(&s->prim, pd) == dnnl_success) {
        s->layout = layout;
        s->scratch = sq ? dnnl_memory_desc_get_size(sq) : 0;
    } else {
        s->prim = NULL;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    return s->layout >= 0 ? s : NULL;
}

/* One product with primitive s (its rows, ldy) through context c; 0 or -1. */
static int run(const shape *s, dnnl_memory_t wmem, exec_ctx *c, float *y, const float *x, const float *b) {
    dnnl_memory_desc_t smd;
    dnnl_memory_t ms = NULL, md = NULL, mb = NULL, msp = NULL;
    dnnl_dims_t sdims = {(dnnl_dim_t)s->scratch};
    int ok = dnnl_memory_create(&ms, &s->src, g.eng, (void *)x) == dnnl_success &&
             dnnl_memory_create(&md, &s->dst, g.eng, y) == dnnl_success &&
             (!b || dnnl_memory_create(&mb, &s->bia, g.eng, (void *)b) == dnnl_success) &&
             (!s->scratch || (dnnl_memory_desc_init_by_tag(&smd, 1, sdims, dnnl_u8, dnnl_a) == dnnl_success &&
                              dnnl_memory_create(&msp, &smd, g.eng, c->scratch) == dnnl_success));
    if (ok) {
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, wmem}, {DNNL_ARG_DST, md}};
        int n = 3;
        if (b) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mb};
        if (msp) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, msp};
        ok = dnnl_primitive_execute(s->prim, c->strm, n, args) == dnnl_success &&
             dnnl_stream_wait(c->strm) == dnnl_success;
    }
    if (ms) dnnl_memory_destroy(ms);
    if (md) dnnl_memory_destroy(md);
    if (mb) dnnl_memory_destroy(mb);
    if (msp) dnnl_memory_destroy(msp);
    return ok ? 0 : -1;
}

/* packed_fwd's blocks past a pack's exact shapes: rows r0.. of N make a block of n rows, run as np
 * (CHUNK, or n padded to a multiple of PAD); returns n */
static int block_at(int N, int r0, int *np) {
    int n = N - r0 < CHUNK ? N - r0 : CHUNK;
    *np = n == CHUNK ? CHUNK : (n + PAD - 1) / PAD * PAD;
    return n;
}

static const shape *lookup(m2u_linear_pack *p, int m, int bias, long ldy, int exact, dnnl_memory_t *wmem) {
    pthread_mutex_lock(&p->mu);
    const shape *s = shape_for(p, m, bias, product_threads(), ldy, exact);
    *wmem = s ? p->layouts[s->layout].mem : NULL;
    pthread_mutex_unlock(&p->mu);
    return s;
}

/* 0: y written; -1: not done (y's rows may be partly written), the caller computes all of y */
static int packed_fwd(m2u_linear_pack *p, float *y, long ldy, const float *x, const float *b, int N) {
    dnnl_memory_t wmem;
    const shape *s = lookup(p, N, b != NULL, ldy, 1, &wmem);
    if (s) { /* the caller's own row count */
        exec_ctx *c = ctx_take(s->scratch, 0);
        if (!c) return -1;
        int rc = run(s, wmem, c, y, x, b);
        ctx_give(c);
        return rc;
    }
    /* blocks of CHUNK rows, the last one padded to a multiple of PAD rows */
    for (int r0 = 0; r0 < N; r0 += CHUNK) {
        int np, n = block_at(N, r0, &np);
        s = lookup(p, np, b != NULL, n == CHUNK ? ldy : p->out, 0, &wmem);
        if (!s) return -1;
        size_t in = (size_t)p->in, out = (size_t)p->out;
        exec_ctx *c = ctx_take(s->scratch, n == CHUNK ? 0 : (size_t)np * (in + out));
        if (!c) return -1;
        int rc;
        if (n == CHUNK) {
            rc = run(s, wmem, c, y + (size_t)r0 * ldy, x + (size_t)r0 * in, b);
        } else {
            float *px = c->pad, *py = c->pad + (size_t)np * in;
            memcpy(px, x + (size_t)r0 * in, (size_t)n * in * sizeof(float));
            memset(px + (size_t)n * in, 0, (size_t)(np - n) * in * sizeof(float));
            rc = run(s, wmem, c, py, px, b);
            for (int r = 0; rc == 0 && r < n; r++)
                memcpy(y + (size_t)(r0 + r) * ldy, py + (size_t)r * out, out * sizeof(float));
        }
        ctx_give(c);
        if (rc) return -1;
    }
    return 0;
}

#else /* no oneDNN: a pack only remembers its weight */

struct m2u_linear_pack {
    const float *w;
    int in, out;
};

m2u_linear_pack *m2u_linear_pack_new(const float *w, int in, int out) {
    if (!w || in <= 0 || out <= 0) return NULL;
    m2u_linear_pack *p = calloc(1, sizeof *p);
    if (p) p->w = w, p->in = in, p->out = out;
    return p;
}

void m2u_linear_pack_free(m2u_linear_pack *p) { free(p); }

static int packed_fwd(m2u_linear_pack *p, float *y, long ldy, const float *x, const float *b, int N) {
    (void)p, (void)y, (void)ldy, (void)x, (void)b, (void)N;
    return -1;
}

#endif

int m2u_linear_pack_available(void) {
#ifdef M2U_HAVE_DNNL
    static int known = -1; /* asked once, of a 64 x 64 x 64 product */
    pthread_mutex_lock(&g.mu);
    int k = known, off = g.off;
    pthread_mutex_unlock(&g.mu);
    if (off) return 0;
    if (k < 0) {
        float *w = calloc(64 * 64, sizeof *w);
        m2u_linear_pack *p = w ? m2u_linear_pack_new(w, 64, 64) : NULL;
        k = p ? m2u_linear_pack_used(p, 64, 0) : 0;
        m2u_linear_pack_free(p);
        free(w);
        pthread_mutex_lock(&g.mu);
        known = k;
        pthread_mutex_unlock(&g.mu);
    }
    return k;
#else
    return 0;
#endif
}

int m2u_linear_pack_enable(int want) {
#ifdef M2U_HAVE_DNNL
    pthread_mutex_lock(&g.mu);
    int was = !g.off;
    g.off = !want;
    pthread_mutex_unlock(&g.mu);
    return was;
#else
    (void)want;
    return 0;
#endif
}

int m2u_linear_pack_used(m2u_linear_pack *p, int N, int bias) {
#ifdef M2U_HAVE_DNNL
    if (!p || N <= 0) return 0;
    dnnl_memory_t wmem;
    if (lookup(p, N, bias != 0, p->out, 1, &wmem)) return 1;
    /* packed_fwd's blocks: the first one, and the last (the only one that may be padded) */
    int np0, np1;
    block_at(N, 0, &np0);
    block_at(N, (N - 1) / CHUNK * CHUNK, &np1);
    return lookup(p, np0, bias != 0, p->out, 0, &wmem) && lookup(p, np1, bias != 0, p->out, 0, &wmem);
#else
    (void)p, (void)N, (void)bias;
    return 0;
#endif
}

void m2u_linear_fwd_packed(m2u_linear_pack *p, float *y, const float *x, const float *b, int N) {
    if (N <= 0 || !p) return;
    if (packed_fwd(p, y, p->out, x, b, N) == 0) return;
    m2u_linear_fwd(y, x, p->w, b, N, p->in, p->out);
}

void m2u_linear_fwd_packed_ld(m2u_linear_pack *p, float *y, int ldy, const float *x, const float *b, int N) {
    if (N <= 0 || !p) return;
    if (ldy == p->out) {
        m2u_linear_fwd_packed(p, y, x, b, N);
        return;
    }
    if (packed_fwd(p, y, ldy, x, b, N) == 0) return;
    if (b)
        for (int n = 0; n < N; n++) memcpy(y + (size_t)n * ldy, b, (size_t)p->out * sizeof(float));
    m2u_gemm(0, 1, N, p->out, p->in, 1.0f, x, p->in, p->w, p->in, b ? 1.0f : 0.0f, y, ldy);
}
