/* Distribution metrics for generated audio, on embeddings / class
 * probabilities computed elsewhere (an encoder run by m2u or an external
 * tool):
 *   - Fréchet distance (FAD when the embeddings are VGGish/PANN/CLAP/MERT
 *     frames) between two embedding sets;
 *   - KL divergence between class-probability distributions (PaSST / PANN
 *     style), per pair and mean;
 *   - cosine text-audio score (CLAP score).
 * All computations are in double precision.  Functions return 0, or -1
 * after m2u_fail(). */
#ifndef M2U_DISTRIBUTION_METRICS_H
#define M2U_DISTRIBUTION_METRICS_H

#include <stddef.h>

/* Mean [d] and unbiased covariance [d*d] (np.cov(rowvar=False): divides by
 * n-1) of the n rows of x [n*d], row-major.  Needs n >= 2. */
int m2u_mean_cov(const double *x, size_t n, size_t d, double *mean, double *cov);

/* Fréchet distance between N(mu1, s1) and N(mu2, s2):
 *   |mu1 - mu2|^2 + tr(s1) + tr(s2) - 2 tr((s1 s2)^{1/2}).
 * tr((s1 s2)^{1/2}) is computed as tr((A s2 A)^{1/2}) with A = s1^{1/2}, both
 * square roots through symmetric eigendecompositions (LAPACK dsyevd),
 * negative eigenvalues (rounding) clipped to 0.  For PSD s1, s2 this equals
 * the trace of scipy.linalg.sqrtm(s1 @ s2) that frechet_audio_distance uses,
 * without its complex-valued residue. */
int m2u_frechet_distance_stats(const double *mu1, const double *s1, const double *mu2, const double *s2, size_t d,
                               double *fd);

/* Fréchet distance of two embedding sets a [na*d] and b [nb*d]. */
int m2u_frechet_distance(const double *a, size_t na, const double *b, size_t nb, size_t d, double *fd);

/* Fréchet distance as fad_pytorch 0.0.6's fad_score computes it (calc_score with its default
 * method 'maji'), everything in float32 as torch does on CPU:
 *   mu = mean of the rows; S = torch.cov (unbiased, (X - mu)^T (X - mu) / (n - 1));
 *   A = S_a S_b; Y0 = A / ||A||_F, Z0 = I; `iters` (fad_pytorch: 20) coupled Newton-Schulz
 *   steps T = (3 I - Z Y) / 2, Y = Y T, Z = T Z; sqrt(A) ~ Y sqrt(||A||_F);
 *   FD = |mu_a - mu_b|^2 + tr S_a + tr S_b - 2 tr sqrt(A).
 * 20 steps leave eigenvalues of A / ||A||_F below ~1e-7 unresolved, so this is NOT the exact
 * distance (m2u_frechet_distance is): it is the number fad_pytorch prints, to compare with
 * published scores.  Inputs are float32 rows a [na*d], b [nb*d]; na, nb >= 2. */
int m2u_frechet_distance_ns(const float *a, size_t na, const float *b, size_t nb, size_t d, int iters, double *fd);

/* KL(p_ref || p_gen) per pair, as audiocraft's PasstKLDivergenceMetric and
 * M2UGen compute it: sum_c p_ref * (log p_ref - log(p_gen + eps)), a class
 * with p_ref == 0 contributes 0 (torch.kl_div's xlogy).  ref and gen are
 * [n_pairs * n_classes]; if `logits` is non-zero each row is first turned
 * into probabilities with a softmax (max-subtracted, double precision), else
 * rows are used as given (they should sum to 1).  eps is 1e-6 in those
 * papers.  per_pair may be NULL; *mean = mean over pairs. */
int m2u_kl_divergence(const double *ref, const double *gen, size_t n_pairs, size_t n_classes, int logits, double eps,
                      double *per_pair, double *mean);

/* Cosine similarity of row i of a and row i of b ([n*d] each): the CLAP
 * text-audio score; per_pair may be NULL, *mean = mean over rows.  A zero
 * row is an error. */
int m2u_cosine_score(const double *a, const double *b, size_t n, size_t d, double *per_pair, double *mean);

/* Read a 2-D (or 1-D, as [n, 1]) little-endian float32/float64 .npy file
 * (format 1.0-3.0, C order) into a malloc'ed double array. */
int m2u_npy_read_matrix(const char *path, double **data, size_t *rows, size_t *cols);

#endif
