#include "gemm_w16.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef M2U_HAVE_AVX2_PATHS
#include <cpuid.h>
#include <omp.h>

/* C[M, Nc] = beta*C + A[M, Kd] B[Kd, Nc], with A the fp32 activations and B the 16-bit weight
 * seen either transposed (forward: B(k, j) = W(j, k)) or as stored (backward: B(k, j) = W(k, j)).
 * M is a few hundred tokens at most, B is the big operand and is read exactly once per MC rows
 * of A (MC = 516: a whole 4 x 128 or 1 x 512 batch, 516 KiB per slice, L2 and L3; smaller
 * blocks measured slower at M = 512, because each weight panel was then read again per block).
 * Per thread and KC-deep slice: MC x KC of A packed into 6-high panels, then for
 * each 16-wide column panel of the thread's columns, KC x 16 of the weight converted to fp32
 * into a panel that stays in L1 while a 6 x 16 register kernel runs every A panel against it.
 * (BLIS would also pack a large KC x NC block of B for L3; with so few rows of A, each weight
 * panel is used right after it is converted, so that block would only add 2 MiB of stores.)
 * The threads split the columns of C, so they never write the same value. */
enum { MR = 6, NR = 16, KC = 256, MC = 516 };

#define W16_TARGET __attribute__((target("avx2,fma,f16c")))

int m2u_gemm_w16_ok(const m2u_mat *w) {
    static _Atomic int have = -1;
    int h = have;
    if (h < 0) {
        /* F16C from cpuid leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports has no "f16c" */
        unsigned a, b, c, d;
        h = m2u_avx2_fma() && __get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1u);
        have = h;
    }
    return h && (w->dtype == M2U_BF16 || w->dtype == M2U_F16) && ((uintptr_t)w->data % 2) == 0;
}

typedef struct {
    const uint16_t *w; /* first row of the used rows */
    int ldw;           /* the weight's columns */
    int bf;            /* bf16 (1) or f16 (0) */
    int trans;         /* 1: B(k, j) = w[j*ldw + k]; 0: B(k, j) = w[k*ldw + j] */
} bsrc;

W16_TARGET static inline __m256 cvt8(const uint16_t *p, int bf) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    if (bf) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

static inline float cvt1(uint16_t v, int bf) { return bf ? m2u_bf16_to_f32(v) : m2u_f16_to_f32(v); }

W16_TARGET static inline void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* One panel: B[k0:k0+kc, j0:j0+cols] as fp32 [k][NR] (cols <= NR; columns past cols are 0).
 * The weight comes from memory once per call and the hardware prefetcher does not keep up with
 * these reads on its own, so the lines the next panel will read are prefetched (into L2) while
 * this one is converted: as stored, a panel is 32 bytes from each of kc rows far apart (a line
 * also holds the next panel's half), prefetched for the panel at column pf_j (-1: none);
 * transposed, it is 16 runs of 2*kc bytes, prefetched for the 16 rows from pf_j at pf_k (the
 * next slice of the same rows, or the next panel's first). */
W16_TARGET static void pack_b(float *dst, const bsrc *s, int k0, int kc, int j0, int cols, int pf_j, int pf_k) {
    if (!s->trans) {
        const uint16_t *base = s->w + (size_t)k0 * s->ldw + j0;
        for (int k = 0; k < kc; k++) {
            const uint16_t *row = base + (size_t)k * s->ldw;
            float *d = dst + (size_t)k * NR;
            if (pf_j >= 0) _mm_prefetch((const char *)(s->w + (size_t)(k0 + k) * s->ldw + pf_j), _MM_HINT_T1);
            if (cols == NR) {
                _mm256_store_ps(d, cvt8(row, s->bf));
                _mm256_store_ps(d + 8, cvt8(row + 8, s->bf));
            } else {
                for (int j = 0; j < NR; j++) d[j] = j < cols ? cvt1(row[j], s->bf) : 0.0f;
            }
        }
        return;
    }
    int lines = (kc * 2 + 63) / 64, pf = 0, npf = pf_j >= 0 ? NR * lines : 0;
    const int bf = s->bf;
    for (int h = 0; h < NR; h += 8) {
        int hc = cols - h; /* weight rows present in this half */
        if (hc <= 0) {
            for (int k = 0; k < kc; k++) memset(dst + (size_t)k * NR + h, 0, 8 * sizeof(float));
            continue;
        }
        const uint16_t *rows[8];
        for (int i = 0; i < 8; i++) rows[i] = s->w + (size_t)(j0 + h + (i < hc ? i : 0)) * s->ldw + k0;
        int k8 = hc >= 8 ? kc - kc % 8 : 0;
        for (int k = 0; k < k8; k += 8) {
            for (int q = 0; q < 4 && pf < npf; q++, pf++)
                _mm_prefetch((const char *)(s->w + (size_t)(pf_j + pf / lines) * s->ldw + pf_k) + 64 * (pf % lines),
                             _MM_HINT_T1);
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = cvt8(rows[i] + k, bf);
            transpose8(r);
            for (int i = 0; i < 8; i++) _mm256_store_ps(dst + (size_t)(k + i) * NR + h, r[i]);
        }
        for (int k = k8; k < kc; k++)
            for (int i = 0; i < 8; i++) dst[(size_t)k * NR + h + i] = i < hc ? cvt1(rows[i][k], s->bf) : 0.0f;
    }
}

/* A[i0:i0+mc, k0:k0+kc] as panels of MR rows, [panel][k][MR]; rows past mc are 0. */
static void pack_a(float *dst, const float *a, int lda, int i0, int mc, int k0, int kc) {
    for (int p = 0; p < mc; p += MR) {
        float *panel = dst + (size_t)p * kc;
        for (int i = 0; i < MR; i++) {
            if (p + i < mc) {
                const float *row = a + (size_t)(i0 + p + i) * lda + k0;
                for (int k = 0; k < kc; k++) panel[(size_t)k * MR + i] = row[k];
            } else {
                for (int k = 0; k < kc; k++) panel[(size_t)k * MR + i] = 0.0f;
            }
        }
    }
}

/* c[mr, nr] = beta*c + a-panel . b-panel over kc (beta 0: c is not read) */
W16_TARGET static void kernel_6x16(int kc, const float *a, const float *b, float *c, int ldc, float beta, int mr,
                                   int nr) {
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8), av;
        /* row i of the tile: a[i] times the 16 values of b */
#define W16_ROW(i)                                                                                                   \
    av = _mm256_broadcast_ss(a + i);                                                                                 \
    c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0);                                                                      \
    c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1);
        W16_ROW(0) W16_ROW(1) W16_ROW(2) W16_ROW(3) W16_ROW(4) W16_ROW(5)
#undef W16_ROW
        a += MR;
        b += NR;
    }
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    if (mr == MR && nr == NR) {
        __m256 bv = _mm256_set1_ps(beta);
        for (int i = 0; i < MR; i++) {
            float *ci = c + (size_t)i * ldc;
            if (beta != 0.0f) {
                acc[i][0] = _mm256_fmadd_ps(bv, _mm256_loadu_ps(ci), acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(bv, _mm256_loadu_ps(ci + 8), acc[i][1]);
            }
            _mm256_storeu_ps(ci, acc[i][0]);
            _mm256_storeu_ps(ci + 8, acc[i][1]);
        }
        return;
    }
    float t[MR * NR];
    for (int i = 0; i < MR; i++) {
        _mm256_storeu_ps(t + i * NR, acc[i][0]);
        _mm256_storeu_ps(t + i * NR + 8, acc[i][1]);
    }
    for (int i = 0; i < mr; i++) {
        float *ci = c + (size_t)i * ldc;
        for (int j = 0; j < nr; j++) ci[j] = (beta != 0.0f ? beta * ci[j] : 0.0f) + t[i * NR + j];
    }
}

/* One thread's columns [j_begin, j_end) of C, weight as stored (backward): KC-deep slices
 * outermost, so each slice reads whole rows of the weight. */
static void gemm_cols_nn(int M, int j_begin, int j_end, int Kd, const float *A, int lda, const bsrc *bs, float *C,
                         int ldc, float beta, float *bp, float *ap) {
    for (int pc = 0; pc < Kd; pc += KC) {
        int kc = Kd - pc < KC ? Kd - pc : KC;
        float be = pc == 0 ? beta : 1.0f;
        for (int ic = 0; ic < M; ic += MC) {
            int mc = M - ic < MC ? M - ic : MC;
            pack_a(ap, A, lda, ic, mc, pc, kc);
            for (int jr = j_begin; jr < j_end; jr += NR) {
                int nr = j_end - jr < NR ? j_end - jr : NR;
                /* a line holds two panels: prefetch for the panel after next */
                int pfj = jr + 2 * NR;
                pack_b(bp, bs, pc, kc, jr, nr, pfj + NR <= j_end ? pfj : -1, 0);
                for (int ir = 0; ir < mc; ir += MR)
                    kernel_6x16(kc, ap + (size_t)ir * kc, bp, C + (size_t)(ic + ir) * ldc + jr, ldc, be,
                                mc - ir < MR ? mc - ir : MR, nr);
            }
        }
    }
}

/* Transposed weight (forward): column panels outermost, so 16 rows of the weight are read
 * from start to end in turn (long runs the hardware prefetcher follows, few pages at a time)
 * against A packed whole for mc rows (ap: mc rounded up to MR, times Kd). */
static void gemm_cols_nt(int M, int mcb, int j_begin, int j_end, int Kd, const float *A, int lda, const bsrc *bs,
                         float *C, int ldc, float beta, float *bp, float *ap) {
    for (int ic = 0; ic < M; ic += mcb) {
        int mc = M - ic < mcb ? M - ic : mcb, mcp = (mc + MR - 1) / MR * MR;
        for (int pc = 0; pc < Kd; pc += KC) pack_a(ap + (size_t)pc * mcp, A, lda, ic, mc, pc, Kd - pc < KC ? Kd - pc : KC);
        for (int jr = j_begin; jr < j_end; jr += NR) {
            int nr = j_end - jr < NR ? j_end - jr : NR;
            for (int pc = 0; pc < Kd; pc += KC) {
                int kc = Kd - pc < KC ? Kd - pc : KC;
                float be = pc == 0 ? beta : 1.0f;
                /* prefetch the rows' next slice, or after the last the next panel's first */
                int pfj = jr, pfk = pc + KC;
                if (pfk >= Kd) pfj = jr + NR, pfk = 0;
                pack_b(bp, bs, pc, kc, jr, nr, pfj + NR <= j_end ? pfj : -1, pfk);
                const float *apc = ap + (size_t)pc * mcp;
                for (int ir = 0; ir < mc; ir += MR)
                    kernel_6x16(kc, apc + (size_t)ir * kc, bp, C + (size_t)(ic + ir) * ldc + jr, ldc, be,
                                mc - ir < MR ? mc - ir : MR, nr);
            }
        }
    }
}

static void gemm(int M, int Nc, int Kd, const float *A, int lda, const bsrc *bs, float *C, int ldc, float beta) {
    if (M <= 0 || Nc <= 0) return;
    if (Kd <= 0) { /* nothing to add: C = beta*C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < Nc; j++) C[(size_t)i * ldc + j] = beta != 0.0f ? beta * C[(size_t)i * ldc + j] : 0.0f;
        return;
    }
    int panels = (Nc + NR - 1) / NR;
    int nt = omp_get_max_threads();
    if (nt > panels) nt = panels;
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int j0 = (int)((long)panels * t / n) * NR, j1 = (int)((long)panels * (t + 1) / n) * NR;
        if (j1 > Nc) j1 = Nc;
        if (j0 < j1) {
            /* forward: as many rows of A as fit 8 MiB packed whole (L3; at 7B's 11008-wide down
             * projection that is 186 rows, so T = 512 converts each weight row 3 times) */
            int mcb = (int)((8u << 20) / sizeof(float) / (size_t)Kd) / MR * MR;
            if (mcb < MR) mcb = MR;
            if (mcb > M) mcb = M;
            size_t bsz = (size_t)KC * NR,
                   asz = bs->trans ? (size_t)Kd * ((mcb + MR - 1) / MR * MR)
                                   : (size_t)KC * (((M < MC ? M : MC) + MR - 1) / MR * MR);
            /* aligned_alloc wants a multiple of the alignment: 16 floats */
            float *bp = aligned_alloc(64, (bsz + asz + 15) / 16 * 16 * sizeof(float));
            if (bp) {
                if (bs->trans)
                    gemm_cols_nt(M, mcb, j0, j1, Kd, A, lda, bs, C, ldc, beta, bp, bp + bsz);
                else
                    gemm_cols_nn(M, j0, j1, Kd, A, lda, bs, C, ldc, beta, bp, bp + bsz);
                free(bp);
            } else {
                /* no memory for the packs: the same sums one column at a time, unpacked */
                for (int i = 0; i < M; i++)
                    for (int j = j0; j < j1; j++) {
                        float acc = 0.0f;
                        for (int k = 0; k < Kd; k++) {
                            uint16_t v = bs->trans ? bs->w[(size_t)j * bs->ldw + k] : bs->w[(size_t)k * bs->ldw + j];
                            acc += A[(size_t)i * lda + k] * cvt1(v, bs->bf);
                        }
                        float *c = C + (size_t)i * ldc + j;
                        *c = (beta != 0.0f ? beta * *c : 0.0f) + acc;
                    }
            }
        }
    }
}

void m2u_gemm_w16_wt(float *y, int ldy, const float *x, int N, const m2u_mat *w, int row0, int nrows, float beta) {
    int K = w->cols;
    bsrc bs = {(const uint16_t *)w->data + (size_t)row0 * K, K, w->dtype == M2U_BF16, 1};
    gemm(N, nrows, K, x, K, &bs, y, ldy, beta);
}

void m2u_gemm_w16_acc(float *dx, const float *dy, int ldy, int N, const m2u_mat *w, int row0, int nrows) {
    int K = w->cols;
    bsrc bs = {(const uint16_t *)w->data + (size_t)row0 * K, K, w->dtype == M2U_BF16, 0};
    gemm(N, K, nrows, dy, ldy, &bs, dx, K, 1.0f);
}

#endif
