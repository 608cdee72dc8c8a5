/* 1-D audio kernels: see ops_audio.h.  Checked through the EnCodec decode and
 * encode fixtures (tests/test_encodec.c) against transformers 4.46.3. */
#define _DEFAULT_SOURCE /* madvise(MADV_HUGEPAGE) */
#include "ops_audio.h"

#include "m2u_error.h"
#include "tensor.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>

/* Scratch per thread for one im2col / phase block: 256 Ki floats = 1 MiB, the L2 of one core here, so a
 * block is written and read back by the GEMM without leaving the core's cache. */
#define BLOCK_FLOATS ((size_t)256 * 1024)
/* Fewer rows than this per block make the GEMM repack its weights too often for the work done. */
#define MIN_BLOCK_ROWS 16

/* ---- memory ------------------------------------------------------------------------------------------ */

float *m2u_audio_alloc(size_t n) {
    const size_t huge = (size_t)2 << 20;
    size_t bytes = (n ? n : 1) * sizeof(float);
    if (bytes < huge / 2) return malloc(bytes);
    size_t rounded = (bytes + huge - 1) / huge * huge; /* aligned_alloc wants a multiple of the alignment */
    float *p = aligned_alloc(huge, rounded);
#ifdef MADV_HUGEPAGE
    if (p) (void)madvise(p, rounded, MADV_HUGEPAGE); /* a hint: without THP it fails and nothing changes */
#endif
    return p;
}

/* ---- element-wise -------------------------------------------------------------------------------- */

/* ELU on a span.  Branch-free so the compiler vectorises it; the clones give AVX-512 / AVX2 code on CPUs
 * that have them while the build itself targets the baseline ISA.  expm1 in double: x = n ln2 + r with
 * |r| <= ln2/2, expm1(x) = 2^n expm1(r) + (2^n - 1), expm1(r) by its Taylor series to r^10 (truncation
 * < 1e-11 relative), so the float result is correctly rounded but for double rounding. */
/* GCC only: clang has no optimize attribute, and its fuzzing build wants the plain version */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define M2U_ELU_CLONES \
    __attribute__((target_clones("avx512f", "avx2", "default"), \
                   optimize("tree-vectorize", "vect-cost-model=dynamic", "no-trapping-math")))
#else
#define M2U_ELU_CLONES
#endif
M2U_ELU_CLONES
static void elu_span(float *restrict y, const float *restrict x, size_t n) {
    const double log2e = 1.4426950408889634, ln2 = 0.6931471805599453, shifter = 6755399441055744.0; /* 1.5*2^52 */
    for (size_t i = 0; i < n; i++) {
        float xf = x[i];
        double v = xf < 0.0f ? (double)xf : 0.0;
        v = v > -110.0 ? v : -110.0; /* exp(-110) is far below float resolution of 1 */
        double u = v * log2e + shifter;
        double nd = u - shifter; /* round to nearest integer */
        uint64_t ub;
        memcpy(&ub, &u, sizeof ub);
        uint64_t pb = (ub + 1023) << 52; /* low bits of u hold n: 2^n as a double (unsigned: wraps by design) */
        double p2;
        memcpy(&p2, &pb, sizeof p2);
        double r = v - nd * ln2;
        double p = 1.0 / 3628800.0;
        p = p * r + 1.0 / 362880.0;
        p = p * r + 1.0 / 40320.0;
        p = p * r + 1.0 / 5040.0;
        p = p * r + 1.0 / 720.0;
        p = p * r + 1.0 / 120.0;
        p = p * r + 1.0 / 24.0;
        p = p * r + 1.0 / 6.0;
        p = p * r + 0.5;
        p = p * r * r + r;
        float e = (float)(p2 * p + (p2 - 1.0));
        y[i] = xf > 0.0f ? xf : e;
    }
}

void m2u_elu(float *y, const float *x, size_t n) {
    const size_t chunk = 16384;
    long nchunk = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for schedule(dynamic, 4) if (nchunk > 1)
    for (long c = 0; c < nchunk; c++) {
        size_t a = (size_t)c * chunk, len = n - a < chunk ? n - a : chunk;
        elu_span(y + a, x + a, len);
    }
}


/* ---- padding --------------------------------------------------------------------------------------- */

/* Row of x that row i of the padded signal copies, or -1 for a zero row (see m2u_pad1d_tm). */
static inline long pad_src(long i, long T, int left, int right, int mode) {
    long j = i - left;
    if (mode == M2U_PAD_REFLECT) {
        int max_pad = left > right ? left : right;
        /* transformers' _pad1d: reflect needs more input than padding, so short input gets zero rows first */
        long Lx = T <= max_pad ? max_pad + 1 : T;
        if (j < 0) j = -j;
        else if (j >= Lx) j = 2 * (Lx - 1) - j;
    }
    return j < 0 || j >= T ? -1 : j;
}

/* Padded rows [i0, i0 + n) of x[T][C] (ELU'd when elu) into dst[n][C]. */
static void pad_rows(float *dst, const float *x, long T, int C, int left, int right, int mode, int elu, long i0,
                     long n) {
    for (long r = 0; r < n; r++) {
        long j = pad_src(i0 + r, T, left, right, mode);
        float *d = dst + (size_t)r * C;
        if (j < 0) memset(d, 0, (size_t)C * sizeof(float));
        else if (elu) elu_span(d, x + (size_t)j * C, (size_t)C);
        else memcpy(d, x + (size_t)j * C, (size_t)C * sizeof(float));
    }
}

void m2u_pad1d_tm(float *y, const float *x, int T, int C, int left, int right, int mode, int elu) {
    long total = (long)left + T + right, chunk = 64, nchunk = (total + chunk - 1) / chunk;
#pragma omp parallel for schedule(dynamic, 1) if (total * C > 65536)
    for (long c = 0; c < nchunk; c++) {
        long i0 = c * chunk, n = total - i0 < chunk ? total - i0 : chunk;
        pad_rows(y + (size_t)i0 * C, x, T, C, left, right, mode, elu, i0, n);
    }
}

/* ---- convolution ------------------------------------------------------------------------------------ */

float *m2u_conv1d_pack(const float *w, int C_out, int C_in, int k) {
    float *r = malloc((size_t)C_out * C_in * k * sizeof(float));
    if (!r) return NULL;
    for (int o = 0; o < C_out; o++)
        for (int c = 0; c < C_in; c++)
            for (int j = 0; j < k; j++) r[((size_t)o * k + j) * C_in + c] = w[((size_t)o * C_in + c) * k + j];
    return r;
}

int m2u_conv1d_out_len(int T_in, int k, int stride, int dilation) {
    long span = (long)(k - 1) * dilation + 1;
    if (T_in < span) return 0;
    return (int)((T_in - span) / stride + 1);
}

/* Split `rows` of a GEMM with reduction length `red` into blocks.  A block has at least 128 rows so the
 * GEMM's packing of the weights (red x N per call) stays small next to its products, and otherwise about
 * cap_floats / row_floats rows, so its scratch stays near the size of L2.  When the weights are larger
 * than the whole output (rows <= red, e.g. the first transposed conv on 250 frames) one GEMM with BLAS
 * threading packs them once.  Otherwise there are up to 32 blocks (at least 64 rows each); with several
 * threads they are handed out dynamically so a thread descheduled for a while (a shared machine) does not
 * leave the others waiting at the end; *parallel says so.  The blocks never depend on the thread count:
 * OpenBLAS's result for a row can depend on the GEMM's shape (small-matrix and edge kernels), and blocks
 * sized per thread made decode with 1 thread differ from 2 in the last bits.  Which thread runs a block
 * does not matter: each block is computed the same way wherever it runs. */
static void plan_blocks(long rows, size_t row_floats, long red, int nth, long *blk_rows, long *nblk, int *parallel) {
    long r = (long)(BLOCK_FLOATS / (row_floats ? row_floats : 1));
    if (r < 128) r = 128;
    *parallel = 0;
    if (rows <= red) {
        r = rows;
    } else if (rows >= 128) {
        *parallel = nth > 1;
        long want = (rows + 31) / 32;
        if (want < 64) want = 64;
        if (want < r) r = want;
    }
    if (r > rows) r = rows;
    *blk_rows = r;
    *nblk = (rows + r - 1) / r;
}

typedef struct {
    const float *x;
    long T;     /* unpadded input steps */
    int C_in, C_out, k, stride, dilation;
    m2u_pad_spec pad;
    int copy;   /* 1: padded / ELU'd rows are built per block; 0: x is used as it is */
    int direct; /* 1x1 conv, stride 1: the (built) rows are the GEMM's A */
    const float *w, *b;
    int accumulate;
} conv_job;

/* Output rows [t0, t0+nb): the padded input rows they read ([t0*stride, (t0+nb-1)*stride + span), built in
 * P when padding or ELU is asked, else read from x), im2col from them into col (not for a 1x1 conv with
 * stride 1), bias (or y + bias) in y, one GEMM adding the products. */
static void conv1d_block(float *y, const conv_job *j, long t0, long nb, float *P, float *col) {
    int C = j->C_in, s = j->stride;
    size_t K = (size_t)j->k * C;
    long span = (long)(j->k - 1) * j->dilation + 1, i0 = t0 * s, np = (nb - 1) * s + span;
    const float *src = j->x + (size_t)i0 * C;
    if (j->copy) {
        pad_rows(P, j->x, j->T, C, j->pad.left, j->pad.right, j->pad.mode, j->pad.elu, i0, np);
        src = P;
    }
    const float *A = src;
    if (!j->direct) {
        for (long r = 0; r < nb; r++) {
            const float *sr = src + (size_t)r * s * C;
            float *dst = col + (size_t)r * K;
            for (int q = 0; q < j->k; q++)
                memcpy(dst + (size_t)q * C, sr + (size_t)q * j->dilation * C, (size_t)C * sizeof(float));
        }
        A = col;
    }
    int Co = j->C_out;
    float *yb = y + (size_t)t0 * Co;
    if (j->b && j->accumulate)
        for (long r = 0; r < nb; r++)
            for (int o = 0; o < Co; o++) yb[(size_t)r * Co + o] += j->b[o];
    else if (j->b)
        for (long r = 0; r < nb; r++) memcpy(yb + (size_t)r * Co, j->b, (size_t)Co * sizeof(float));
    m2u_gemm(0, 1, (int)nb, Co, (int)K, 1.0f, A, (int)K, j->w, (int)K,
                j->b || j->accumulate ? 1.0f : 0.0f, yb, Co);
}

int m2u_conv1d_fwd(float *y, const float *x, int T_in, int C_in, int C_out, int k, int stride, int dilation,
                   const m2u_pad_spec *pad, const float *w, const float *b, int accumulate) {
    conv_job j = {x, T_in, C_in, C_out, k, stride, dilation, {0, 0, M2U_PAD_CONSTANT, 0}, 0, 0, w, b, accumulate};
    if (pad) j.pad = *pad;
    if (T_in < 1 || j.pad.left < 0 || j.pad.right < 0)
        return m2u_fail("conv1d: %d input steps with padding %d/%d", T_in, j.pad.left, j.pad.right);
    long Tp = (long)T_in + j.pad.left + j.pad.right;
    long T_out = Tp > 1L << 30 ? 0 : m2u_conv1d_out_len((int)Tp, k, stride, dilation);
    if (T_out < 1)
        return m2u_fail("conv1d: %ld padded input steps are too few for kernel %d dilation %d", Tp, k, dilation);
    j.copy = j.pad.left || j.pad.right || j.pad.elu;
    j.direct = k == 1 && stride == 1;
    size_t K = (size_t)k * C_in;
    long span = (long)(k - 1) * dilation + 1;
    int nth = omp_get_max_threads(), parallel;
    long blk, nblk;
    plan_blocks(T_out, (j.direct ? 0 : K) + (j.copy ? (size_t)stride * C_in : 0), (long)K, nth, &blk, &nblk,
                &parallel);
    int nbuf = parallel ? nth : 1;
    size_t per_P = j.copy ? (size_t)((blk - 1) * stride + span) * C_in : 0, per_col = j.direct ? 0 : (size_t)blk * K;
    size_t per = per_P + per_col;
    float *scratch = per ? malloc((size_t)nbuf * per * sizeof(float)) : NULL;
    if (per && !scratch) return m2u_fail("conv1d: out of memory for %d blocks of %zu floats", nbuf, per);
    if (parallel) {
#pragma omp parallel for schedule(dynamic, 1)
        for (long i = 0; i < nblk; i++) {
            long t0 = i * blk, nb = T_out - t0 < blk ? T_out - t0 : blk;
            float *sc = scratch ? scratch + (size_t)omp_get_thread_num() * per : NULL;
            conv1d_block(y, &j, t0, nb, sc, sc ? sc + per_P : NULL);
        }
    } else {
        for (long i = 0; i < nblk; i++) {
            long t0 = i * blk, nb = T_out - t0 < blk ? T_out - t0 : blk;
            conv1d_block(y, &j, t0, nb, scratch, scratch ? scratch + per_P : NULL);
        }
    }
    free(scratch);
    return 0;
}

float *m2u_conv_transpose1d_pack(const float *w, int C_in, int C_out, int k, int stride) {
    int m = (k + stride - 1) / stride;
    size_t n = (size_t)m * C_in * stride * C_out;
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) return NULL;
    for (int i = 0; i < m; i++)
        for (int ci = 0; ci < C_in; ci++)
            for (int r = 0; r < stride; r++) {
                int j = r + i * stride;
                if (j >= k) continue;
                float *dst = p + ((size_t)i * C_in + ci) * stride * C_out + (size_t)r * C_out;
                for (int co = 0; co < C_out; co++) dst[co] = w[((size_t)ci * C_out + co) * k + j];
            }
    return p;
}

/* Phase rows [q0, q0+nb) of the full output into Y [nb][s*C_out] (bias first, then one GEMM per tap over the
 * rows where x[q - i] exists), then the rows that survive trimming copied to y. */
static void convtr_block(float *y, long T_out, const float *x, long T, int C_in, int C_out, int m, int s, int trim_left,
                         const float *w_pp, const float *b, long q0, long nb, float *Y) {
    size_t N = (size_t)s * C_out;
    for (long r = 0; r < nb; r++)
        for (int ph = 0; ph < s; ph++) {
            float *dst = Y + (size_t)r * N + (size_t)ph * C_out;
            if (b) memcpy(dst, b, (size_t)C_out * sizeof(float));
            else memset(dst, 0, (size_t)C_out * sizeof(float));
        }
    for (int i = 0; i < m; i++) {
        long a = q0 > i ? q0 : i, e = q0 + nb < T + i ? q0 + nb : T + i; /* q - i in [0, T) */
        if (a >= e) continue;
        m2u_gemm(0, 0, (int)(e - a), (int)N, C_in, 1.0f,
                    x + (size_t)(a - i) * C_in, C_in, w_pp + (size_t)i * C_in * N, (int)N, 1.0f,
                    Y + (size_t)(a - q0) * N, (int)N);
    }
    long o0 = q0 * s - trim_left, o1 = (q0 + nb) * s - trim_left; /* output rows of this block */
    long c0 = o0 > 0 ? o0 : 0, c1 = o1 < T_out ? o1 : T_out;
    if (c0 < c1)
        memcpy(y + (size_t)c0 * C_out, Y + (size_t)(c0 - o0) * C_out, (size_t)(c1 - c0) * C_out * sizeof(float));
}

int m2u_conv_transpose1d_fwd(float *y, const float *x, int T, int C_in, int C_out, int k, int stride, int trim_left,
                             int trim_right, const float *w_pp, const float *b) {
    long full = (long)(T - 1) * stride + k, T_out = full - trim_left - trim_right;
    if (T < 1 || trim_left < 0 || trim_right < 0 || T_out < 1)
        return m2u_fail("conv_transpose1d: %d input steps with kernel %d stride %d and trims %d/%d give no output", T,
                        k, stride, trim_left, trim_right);
    int m = (k + stride - 1) / stride;
    long Q = (T_out + trim_left + stride - 1) / stride; /* phase rows that reach a kept output row */
    size_t N = (size_t)stride * C_out;
    int nth = omp_get_max_threads(), parallel;
    long blk, nblk;
    plan_blocks(Q, N, C_in, nth, &blk, &nblk, &parallel);
    int nbuf = parallel ? nth : 1;
    float *Y = malloc((size_t)nbuf * blk * N * sizeof(float));
    if (!Y) return m2u_fail("conv_transpose1d: out of memory for %d blocks of %ld x %zu", nbuf, blk, N);
    if (parallel) {
#pragma omp parallel for schedule(dynamic, 1)
        for (long i = 0; i < nblk; i++) {
            long q0 = i * blk, nb = Q - q0 < blk ? Q - q0 : blk;
            convtr_block(y, T_out, x, T, C_in, C_out, m, stride, trim_left, w_pp, b, q0, nb,
                         Y + (size_t)omp_get_thread_num() * blk * N);
        }
    } else {
        for (long i = 0; i < nblk; i++) {
            long q0 = i * blk, nb = Q - q0 < blk ? Q - q0 : blk;
            convtr_block(y, T_out, x, T, C_in, C_out, m, stride, trim_left, w_pp, b, q0, nb, Y);
        }
    }
    free(Y);
    return 0;
}

/* ---- LSTM ----------------------------------------------------------------------------------------------- */

int m2u_lstm_pack(m2u_lstm_packed *p, const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                  int In, int H) {
    size_t G4 = (size_t)4 * H;
    p->In = In, p->H = H;
    p->w_ih = m2u_audio_alloc(G4 * In);
    p->w_hh = m2u_audio_alloc(G4 * H);
    p->b = malloc(G4 * sizeof(float));
    if (!p->w_ih || !p->w_hh || !p->b) {
        m2u_lstm_packed_free(p);
        return m2u_fail("lstm: out of memory packing %d units", H);
    }
    for (int q = 0; q < 4; q++)
        for (int u = 0; u < H; u++) {
            size_t src = (size_t)q * H + u, dst = (size_t)u * 4 + q;
            memcpy(p->w_ih + dst * In, w_ih + src * In, (size_t)In * sizeof(float));
            memcpy(p->w_hh + dst * H, w_hh + src * H, (size_t)H * sizeof(float));
            p->b[dst] = (b_ih ? b_ih[src] : 0.0f) + (b_hh ? b_hh[src] : 0.0f);
        }
    return 0;
}

void m2u_lstm_packed_free(m2u_lstm_packed *p) {
    free(p->w_ih);
    free(p->w_hh);
    free(p->b);
    p->w_ih = p->w_hh = p->b = NULL;
}

/* exp(v) in double for |v| <= 700 by the same reduction as elu_span: 2^n * (1 + expm1(r)).
 * Written out twice on purpose: a shared inline helper is not inlined into elu_span's
 * target_clones, which then loses its vectorisation (measured: decode 0.39 s -> 0.58 s). */
static inline double exp_d(double v) {
    const double log2e = 1.4426950408889634, ln2 = 0.6931471805599453, shifter = 6755399441055744.0;
    double u = v * log2e + shifter, nd = u - shifter;
    uint64_t ub;
    memcpy(&ub, &u, sizeof ub);
    uint64_t pb = (ub + 1023) << 52;
    double p2;
    memcpy(&p2, &pb, sizeof p2);
    double r = v - nd * ln2;
    double p = 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r * r + r;
    return p2 * p + p2;
}

/* Cells of units [0, n) given their interleaved gate pre-activations g[4n]: c = f c + i tanh(g~),
 * h = o tanh(c); sigmoid(v) = 1 / (1 + e^-v), tanh(v) = 2 sigmoid(2v) - 1, in double (inputs clamped to
 * +-300 / +-150, where both are saturated to float precision).  Scalar: 5 exponentials per unit and step
 * are a few ms per layer next to the GEMV that streams W_hh. */
static void lstm_cells(float *restrict h, float *restrict c, const float *restrict g, int n) {
    for (int u = 0; u < n; u++) {
        double gi = g[4 * u], gf = g[4 * u + 1], gg = g[4 * u + 2], go = g[4 * u + 3];
        gi = gi < -300 ? -300 : gi > 300 ? 300 : gi;
        gf = gf < -300 ? -300 : gf > 300 ? 300 : gf;
        gg = gg < -150 ? -150 : gg > 150 ? 150 : gg;
        go = go < -300 ? -300 : go > 300 ? 300 : go;
        double i = 1.0 / (1.0 + exp_d(-gi)), f = 1.0 / (1.0 + exp_d(-gf)), o = 1.0 / (1.0 + exp_d(-go));
        double t = 2.0 / (1.0 + exp_d(-2.0 * gg)) - 1.0;
        float cf = (float)i * (float)t;
        cf = (float)f * c[u] + cf; /* float cell state as torch keeps it */
        c[u] = cf;
        double cc = cf < -150.0f ? -150.0 : cf > 150.0f ? 150.0 : (double)cf;
        double tc = 2.0 / (1.0 + exp_d(-2.0 * cc)) - 1.0;
        h[u] = (float)o * (float)tc;
    }
}

/* The input part of the gates (x W_ih^T + both biases) is computed in GEMMs over fixed row chunks
 * [t0, t0 + LSTM_CHUNK) on every path (one layer at a time or pipelined, any thread count, any timing):
 * OpenBLAS's result for a row depends on the GEMM's shape (a small-matrix kernel for small products, edge
 * kernels), so chunks that followed the pipeline's timing made decode differ from run to run in the last
 * frames (seen: 6e-8 on a 10-frame clip), and one GEMM over all steps made 1 thread differ from 2.
 * 64 steps: W_ih is packed once per 64 rows (32 cost ~5% more CPU on a 5 s EnCodec-32k decode); a pipelined
 * upper layer starts 64 steps behind the one below. */
#define LSTM_CHUNK 64

/* Gate rows [t0, min(t0 + LSTM_CHUNK, T)) into g [rows][4H] (g points at row t0's gates). */
static void lstm_input_part(float *g, const float *x, int T, int t0, const m2u_lstm_packed *p) {
    int n = T - t0 < LSTM_CHUNK ? T - t0 : LSTM_CHUNK, In = p->In;
    size_t G4 = (size_t)4 * p->H;
    for (int r = 0; r < n; r++) memcpy(g + (size_t)r * G4, p->b, G4 * sizeof(float));
    m2u_gemm(0, 1, n, (int)G4, In, 1.0f, x + (size_t)t0 * In, In, p->w_ih, In,
                1.0f, g, (int)G4);
}

int m2u_lstm_layer_fwd(float *h, const float *x, int T, const m2u_lstm_packed *p) {
    if (T < 1) return 0;
    int H = p->H;
    size_t G4 = (size_t)4 * H;
    float *gates = m2u_audio_alloc((size_t)T * G4), *c = calloc((size_t)H, sizeof(float));
    if (!gates || !c) {
        free(gates);
        free(c);
        return m2u_fail("lstm: out of memory for %d steps of %d units", T, H);
    }
    for (int t0 = 0; t0 < T; t0 += LSTM_CHUNK) lstm_input_part(gates + (size_t)t0 * G4, x, T, t0, p);

#pragma omp parallel
    {
        int nth = omp_get_num_threads(), tid = omp_get_thread_num();
        /* units [u0, u1) of this thread, in multiples of 16 */
        int per = ((H + nth - 1) / nth + 15) / 16 * 16;
        int u0 = tid * per < H ? tid * per : H, u1 = u0 + per < H ? u0 + per : H, nu = u1 - u0;
        for (int t = 0; t < T; t++) {
            float *g = gates + (size_t)t * G4 + (size_t)4 * u0;
            if (t > 0 && nu > 0)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, 4 * nu, H, 1.0f, p->w_hh + (size_t)4 * u0 * H, H,
                            h + (size_t)(t - 1) * H, 1, 1.0f, g, 1);
            if (nu > 0) lstm_cells(h + (size_t)t * H + u0, c + u0, g, nu);
#pragma omp barrier /* every thread, with or without units: step t + 1 reads all of h[t] */
        }
    }
    free(gates);
    free(c);
    return 0;
}

/* Layer `l` of a pipelined stack, run by one thread.  Layer 0 (below == NULL) gets its input part of the
 * gates precomputed for all steps in g0 [T][4H]; a higher layer reads its input xin[T][In] as the layer
 * below publishes it through *below (steps complete) and computes the input part chunk by chunk into g
 * [LSTM_CHUNK][4H].  Outputs are published through *done.  c: [H]. */
static void lstm_stage(float *h, const float *xin, int T, const m2u_lstm_packed *p, const int *below, int *done,
                       const float *g0, float *g, float *c) {
    int H = p->H;
    size_t G4 = (size_t)4 * H;
    memset(c, 0, (size_t)H * sizeof(float));
    for (int t0 = 0; t0 < T;) {
        int n = T - t0;
        float *gc = g;
        if (n > LSTM_CHUNK) n = LSTM_CHUNK;
        if (below) {
            /* wait for the layer below to complete this chunk: spin briefly, then give the core away */
            for (int spins = 0; __atomic_load_n(below, __ATOMIC_ACQUIRE) < t0 + n; spins++)
                if (spins > 64) sched_yield();
            lstm_input_part(g, xin, T, t0, p);
        } else {
            gc = (float *)g0 + (size_t)t0 * G4;
        }
        for (int r = 0; r < n; r++) {
            int t = t0 + r;
            float *gt = gc + (size_t)r * G4;
            if (t > 0)
                cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)G4, H, 1.0f, p->w_hh, H, h + (size_t)(t - 1) * H, 1,
                            1.0f, gt, 1);
            lstm_cells(h + (size_t)t * H, c, gt, H);
            __atomic_store_n(done, t + 1, __ATOMIC_RELEASE);
        }
        t0 += n;
    }
}

int m2u_lstm_fwd(float *h, float *scratch, const float *x, int T, const m2u_lstm_packed *layers, int L) {
    if (T < 1 || L < 1) return 0;
    int nth = omp_get_max_threads(), H = layers[0].H;
    if (L < 2 || nth < L || nth >= 4) { /* layer after layer, each step split across the threads */
        const float *in = x;
        for (int l = 0; l < L; l++) {
            float *out = l == L - 1 ? h : scratch + (size_t)l * T * H;
            if (m2u_lstm_layer_fwd(out, in, T, &layers[l]) != 0) return -1;
            in = out;
        }
        return 0;
    }
    size_t G4 = (size_t)4 * H, per = LSTM_CHUNK * G4 + (size_t)H;
    float *work = malloc((size_t)L * per * sizeof(float)), *g0 = m2u_audio_alloc((size_t)T * G4);
    int *done = calloc((size_t)L, sizeof(int));
    if (!work || !g0 || !done) {
        free(work);
        free(g0);
        free(done);
        return m2u_fail("lstm: out of memory for %d pipelined layers of %d units", L, H);
    }
    /* layer 0's input is all there: its input part up front (same chunks as every path), BLAS-threaded */
    const m2u_lstm_packed *p0 = &layers[0];
    for (int t0 = 0; t0 < T; t0 += LSTM_CHUNK) lstm_input_part(g0 + (size_t)t0 * G4, x, T, t0, p0);
#pragma omp parallel num_threads(L)
    {
        /* Normally one layer per thread.  A smaller team (called inside another parallel region, a thread
         * limit) deals the layers out round-robin; each thread runs its layers in increasing order and a
         * layer only waits for lower ones, so every layer still completes. */
        int P = omp_get_num_threads();
        for (int l = omp_get_thread_num(); l < L; l += P) {
            const float *in = l == 0 ? x : scratch + (size_t)(l - 1) * T * H;
            float *out = l == L - 1 ? h : scratch + (size_t)l * T * H;
            float *g = work + (size_t)l * per;
            lstm_stage(out, in, T, &layers[l], l == 0 ? NULL : &done[l - 1], &done[l], g0, g,
                       g + LSTM_CHUNK * G4);
        }
    }
    free(work);
    free(g0);
    free(done);
    return 0;
}

/* ---- vector quantisation ---------------------------------------------------------------------------------- */

void m2u_vq_dequant_add(float *out, const int32_t *codes, int N, const float *embed, int D, float sign) {
#pragma omp parallel for schedule(static) if ((long)N * D > 65536)
    for (int n = 0; n < N; n++) {
        const float *e = embed + (size_t)codes[n] * D;
        float *o = out + (size_t)n * D;
        for (int d = 0; d < D; d++) o[d] += sign * e[d];
    }
}

void m2u_vq_sqnorms(float *e_sq, const float *embed, int size, int D) {
    for (int j = 0; j < size; j++) {
        float s = 0.0f;
        for (int d = 0; d < D; d++) s += embed[(size_t)j * D + d] * embed[(size_t)j * D + d];
        e_sq[j] = s;
    }
}

int m2u_vq_nearest(int32_t *codes, const float *x, int N, int D, const float *embed, const float *e_sq, int size) {
    int blk = (int)(BLOCK_FLOATS / (size_t)size);
    if (blk < 1) blk = 1;
    if (blk > N) blk = N;
    float *dot = malloc((size_t)blk * size * sizeof(float));
    if (!dot) return m2u_fail("vq: out of memory for %d x %d distances", blk, size);
    for (int n0 = 0; n0 < N; n0 += blk) {
        int nb = N - n0 < blk ? N - n0 : blk;
        m2u_gemm(0, 1, nb, size, D, 1.0f, x + (size_t)n0 * D, D, embed, D, 0.0f,
                    dot, size);
#pragma omp parallel for schedule(static) if ((long)nb * size > 65536)
        for (int r = 0; r < nb; r++) {
            const float *xr = x + (size_t)(n0 + r) * D, *dr = dot + (size_t)r * size;
            float xs = 0.0f;
            for (int d = 0; d < D; d++) xs += xr[d] * xr[d];
            int best = 0;
            float best_v = -INFINITY;
            for (int j = 0; j < size; j++) {
                float v = -((xs - 2.0f * dr[j]) + e_sq[j]);
                if (v > best_v) {
                    best_v = v;
                    best = j;
                }
            }
            codes[n0 + r] = best;
        }
    }
    free(dot);
    return 0;
}
