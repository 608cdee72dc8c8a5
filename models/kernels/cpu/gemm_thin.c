/* Products with a small M or N (a LoRA rank) without packing the big operand.
 *
 * A LoRA step runs six products per adapted linear with the rank r (16) as one of M, N, K:
 * u = x A^T, y += s u B^T, dB += s dy^T u, du = s dy B, dA += du^T x, dx += du A.  sgemm packs
 * both operands whatever their shape, so for the four with r as M or N it copies a whole
 * N x in (or N x out) activation to multiply it by 16 columns: 90 to 120 GFLOP/s on the 15M
 * and 110M shapes on a quiet machine, and half that when another process shares the cores
 * (its threads wait for each other between packing and kernel).  Here those four run at 130 to
 * 190 GFLOP/s (eval/bench: m2u-bench-llama's LoRA step).
 *
 * op(B) is read in place when its rows are contiguous (no transpose; the forward's x A^T has
 * a small transposed B, in x r, copied into a buffer), and op(A) is never packed: a 6 x 16
 * register tile broadcasts its six A values straight from A, with any strides.  Each tile of C
 * is computed by one thread, its K terms added in order, so the result does not depend on the
 * thread count.  The C build falls back to BLAS. */
#include "tensor.h"
#include "vmath_avx2.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef M2U_HAVE_AVX2_PATHS

enum { MR = 6, NR = 16 };

/* c[mr, nr] = beta*c + alpha * sum_k a(i, k) b[k, 0:nr], a(i, k) = a[i*ais + k*aks], b rows
 * ldb apart.  Rows i >= mr read row mr - 1 (valid memory, result dropped); columns >= nr are
 * masked out of the loads. */
M2U_AVX2_TARGET static void tile(int K, const float *a, long ais, long aks, const float *b, long ldb, float *c,
                                 long ldc, float alpha, float beta, int mr, int nr) {
    const float *ar[MR];
    for (int i = 0; i < MR; i++) ar[i] = a + (i < mr ? i : mr - 1) * ais;
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    __m256i m0 = _mm256_set1_epi32(-1), m1 = m0;
    if (nr < NR) {
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), lane);
        m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), lane);
    }
    for (int k = 0; k < K; k++) {
        const float *bk = b + k * ldb;
        __m256 b0, b1, av;
        if (nr == NR) {
            b0 = _mm256_loadu_ps(bk);
            b1 = _mm256_loadu_ps(bk + 8);
        } else {
            b0 = _mm256_maskload_ps(bk, m0);
            b1 = _mm256_maskload_ps(bk + 8, m1);
        }
        long ko = k * aks;
#define THIN_ROW(i)                                                                                                  \
    av = _mm256_broadcast_ss(ar[i] + ko);                                                                            \
    c##i##0 = _mm256_fmadd_ps(av, b0, c##i##0);                                                                      \
    c##i##1 = _mm256_fmadd_ps(av, b1, c##i##1);
        THIN_ROW(0) THIN_ROW(1) THIN_ROW(2) THIN_ROW(3) THIN_ROW(4) THIN_ROW(5)
#undef THIN_ROW
    }
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    const __m256 al = _mm256_set1_ps(alpha), be = _mm256_set1_ps(beta);
    for (int i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        __m256 r0 = _mm256_mul_ps(al, acc[i][0]), r1 = _mm256_mul_ps(al, acc[i][1]);
        if (nr == NR) {
            if (beta != 0.0f) {
                r0 = _mm256_fmadd_ps(be, _mm256_loadu_ps(ci), r0);
                r1 = _mm256_fmadd_ps(be, _mm256_loadu_ps(ci + 8), r1);
            }
            _mm256_storeu_ps(ci, r0);
            _mm256_storeu_ps(ci + 8, r1);
        } else {
            if (beta != 0.0f) {
                r0 = _mm256_fmadd_ps(be, _mm256_maskload_ps(ci, m0), r0);
                r1 = _mm256_fmadd_ps(be, _mm256_maskload_ps(ci + 8, m1), r1);
            }
            _mm256_maskstore_ps(ci, m0, r0);
            _mm256_maskstore_ps(ci + 8, m1, r1);
        }
    }
}

/* M or N small, measured against sgemm on 512 tokens x 768 features (r 8 to 64).  A small K
 * (y += s u B^T, dx += du A) stays with sgemm: there the work is reading and writing all of C,
 * and sgemm's packed tiles do that 5 to 15 % faster.  With A transposed (dB, dA: K is the
 * tokens), each step of K reads A from another row; up to r = 16 that is still 1.3 to 2 times
 * sgemm's speed, at r = 32 and 64 it is 0.7 to 0.95 times, so those go to sgemm too. */
static int thin_ok(int trans_a, int M, int N, int K) {
    if (!m2u_avx2_fma() || M <= 0 || N <= 0 || K <= 0) return 0;
    int small = M < N ? M : N;
    return small <= (trans_a ? 16 : M2U_GEMM_THIN_MAX) && small <= K && (long)M * N >= 2 * MR * NR;
}

void m2u_gemm_thin(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    int thin = thin_ok(trans_a, M, N, K);
    /* a transposed B goes through a K x N buffer (at most 16 MiB) */
    float *bt = thin && trans_b && (size_t)K * (size_t)N <= ((size_t)4 << 20)
                    ? malloc((size_t)K * (size_t)N * sizeof(float))
                    : NULL;
    if (!thin || (trans_b && !bt)) {
        free(bt);
        m2u_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    const float *b = B;
    long ldbk = ldb;
    if (trans_b) { /* op(B)[k, j] = B[j, k]: K x N rows, small (r x out or in x r) */
        for (int j = 0; j < N; j++)
            for (int k = 0; k < K; k++) bt[(size_t)k * N + j] = B[(size_t)j * ldb + k];
        b = bt;
        ldbk = N;
    }
    /* a(i, k) = op(A)[i, k] */
    long ais = trans_a ? 1 : lda, aks = trans_a ? lda : 1;
    int tm = (M + MR - 1) / MR, tn = (N + NR - 1) / NR;
    long tiles = (long)tm * tn;
#pragma omp parallel for schedule(static) if (tiles > 1 && (double)M * N * K > 65536.0)
    for (long t = 0; t < tiles; t++) {
        int i0 = (int)(t / tn) * MR, j0 = (int)(t % tn) * NR;
        tile(K, A + i0 * ais, ais, aks, b + j0, ldbk, C + (size_t)i0 * ldc + j0, ldc, alpha, beta,
             M - i0 < MR ? M - i0 : MR, N - j0 < NR ? N - j0 : NR);
    }
    free(bt);
}

#else

void m2u_gemm_thin(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                   const float *B, int ldb, float beta, float *C, int ldc) {
    m2u_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#endif
