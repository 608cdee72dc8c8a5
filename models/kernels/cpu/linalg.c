#include "linalg.h"

#include "m2u_error.h"

#include <cblas.h>
#include <stdlib.h>

/* LAPACK (OpenBLAS ships it); gfortran ABI with hidden string lengths. */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
             const int *lwork, int *iwork, const int *liwork, int *info, size_t ljobz, size_t luplo);

void m2u_dgemm(int trans_a, int trans_b, int M, int N, int K, double alpha, const double *A, int lda, const double *B,
               int ldb, double beta, double *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha,
                A, lda, B, ldb, beta, C, ldc);
}

void m2u_dsyrk_upper(int d, int n, double alpha, const double *X, double *C) {
    if (d <= 0) return;
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, n, alpha, X, d, 0.0, C, d);
}

int m2u_sym_eig(double *a, size_t d, double *w, int vectors) {
    int n = (int)d, lda = (int)d, info = 0, lwork = -1, liwork = -1, iwq = 0;
    double wq = 0;
    const char *jobz = vectors ? "V" : "N";
    dsyevd_(jobz, "U", &n, a, &lda, w, &wq, &lwork, &iwq, &liwork, &info, 1, 1);
    if (info != 0) return m2u_fail("dsyevd workspace query failed (info %d)", info);
    lwork = (int)wq;
    liwork = iwq;
    double *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) {
        free(work);
        free(iwork);
        return m2u_fail("out of memory (eigendecomposition of %zu x %zu)", d, d);
    }
    dsyevd_(jobz, "U", &n, a, &lda, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    if (info != 0) return m2u_fail("dsyevd failed (info %d)", info);
    return 0;
}
