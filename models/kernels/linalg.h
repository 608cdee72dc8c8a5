/* Double-precision dense linear algebra for the statistics side (Fréchet distances of
 * embedding sets: covariances, a symmetric eigendecomposition for matrix square roots).
 * CPU only (BLAS/LAPACK); row-major unless said otherwise. */
#ifndef M2U_LINALG_H
#define M2U_LINALG_H

#include <stddef.h>

/* C[M, N] = alpha op(A) op(B) + beta C (double), as m2u_gemm. */
void m2u_dgemm(int trans_a, int trans_b, int M, int N, int K, double alpha, const double *A, int lda, const double *B,
               int ldb, double beta, double *C, int ldc);
/* The upper triangle (row-major) of C[d, d] = alpha X^T X for X [n, d]; the lower triangle is
 * left untouched. */
void m2u_dsyrk_upper(int d, int n, double alpha, const double *X, double *C);
/* Eigen-decomposition of the symmetric d x d matrix a (LAPACK dsyevd on its upper triangle):
 * w[d] receives the eigenvalues in ascending order; with vectors, a is replaced by the
 * eigenvectors, eigenvector k being row k of the row-major array (column k of the
 * column-major one).  Returns -1 (m2u_fail) when LAPACK fails or memory runs out. */
int m2u_sym_eig(double *a, size_t d, double *w, int vectors);

#endif
