/* Fréchet distance, KL divergence, cosine score (see distribution_metrics.h). */
#include "distribution_metrics.h"

#include "fileio.h"
#include "linalg.h"
#include "m2u_error.h"
#include "tensor.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int m2u_mean_cov(const double *x, size_t n, size_t d, double *mean, double *cov) {
    if (n < 2 || d == 0) return m2u_fail("covariance needs at least 2 rows (got %zu) and 1 column", n);
    for (size_t j = 0; j < d; j++) mean[j] = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) mean[j] += x[i * d + j];
    for (size_t j = 0; j < d; j++) mean[j] /= (double)n;
    double *xc = calloc(n * d, sizeof *xc);
    if (!xc) return m2u_fail("out of memory (%zu x %zu)", n, d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) xc[i * d + j] = x[i * d + j] - mean[j];
    /* cov = xc^T xc / (n - 1) */
    m2u_dsyrk_upper((int)d, (int)n, 1.0 / (double)(n - 1), xc, cov);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < i; j++) cov[i * d + j] = cov[j * d + i];
    free(xc);
    return 0;
}

/* V diag V^T is all we build from the eigenvectors, and it is the same whether V is read
 * row- or column-major (the matrix is symmetric). */
static int sym_eig(double *a, size_t d, double *w, int vectors) { return m2u_sym_eig(a, d, w, vectors); }

int m2u_frechet_distance_stats(const double *mu1, const double *s1, const double *mu2, const double *s2, size_t d,
                               double *fd) {
    if (d == 0) return m2u_fail("frechet distance: empty dimension");
    int rc = -1;
    double *v = malloc(d * d * sizeof *v), *lam = malloc(d * sizeof *lam), *a = malloc(d * d * sizeof *a),
           *t = malloc(d * d * sizeof *t), *m = malloc(d * d * sizeof *m);
    if (!v || !lam || !a || !t || !m) { m2u_fail("out of memory (frechet distance, d = %zu)", d); goto done; }
    for (size_t i = 0; i < d * d; i++)
        if (!isfinite(s1[i]) || !isfinite(s2[i])) { m2u_fail("frechet distance: non-finite covariance"); goto done; }
    /* A = s1^{1/2} = V diag(sqrt(max(lam, 0))) V^T.  The matrix is symmetric, so the
     * row/column-major distinction only transposes V, and V D V^T is the same. */
    memcpy(v, s1, d * d * sizeof *v);
    if (sym_eig(v, d, lam, 1)) goto done;
    /* column k of V (column-major) = row k of v as stored: v[k*d + i] = V_ik */
    for (size_t k = 0; k < d; k++) {
        double s = sqrt(lam[k] > 0 ? lam[k] : 0);
        for (size_t i = 0; i < d; i++) t[k * d + i] = v[k * d + i] * s; /* rows of (V sqrt(L))^T */
    }
    /* a = (V S)(V S)^T ... with rows stored as above: a = t^T t in row-major terms */
    m2u_dgemm(1, 0, (int)d, (int)d, (int)d, 1.0, t, (int)d, v, (int)d, 0.0, a, (int)d);
    /* that gave (V S)^... : a_ij = sum_k t_ki v_kj = sum_k sqrt(l_k) V_ik V_jk: A.  Now m = A s2 A. */
    m2u_dgemm(0, 0, (int)d, (int)d, (int)d, 1.0, a, (int)d, s2, (int)d, 0.0, t, (int)d);
    m2u_dgemm(0, 0, (int)d, (int)d, (int)d, 1.0, t, (int)d, a, (int)d, 0.0, m, (int)d);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < i; j++) {
            double s = 0.5 * (m[i * d + j] + m[j * d + i]);
            m[i * d + j] = m[j * d + i] = s;
        }
    if (sym_eig(m, d, lam, 0)) goto done;
    double tr_sqrt = 0, tr1 = 0, tr2 = 0, dmu = 0;
    for (size_t k = 0; k < d; k++) tr_sqrt += sqrt(lam[k] > 0 ? lam[k] : 0);
    for (size_t i = 0; i < d; i++) {
        tr1 += s1[i * d + i];
        tr2 += s2[i * d + i];
        double e = mu1[i] - mu2[i];
        dmu += e * e;
    }
    *fd = dmu + tr1 + tr2 - 2 * tr_sqrt;
    rc = 0;
done:
    free(v);
    free(lam);
    free(a);
    free(t);
    free(m);
    return rc;
}

int m2u_frechet_distance(const double *a, size_t na, const double *b, size_t nb, size_t d, double *fd) {
    int rc = -1;
    double *mu1 = malloc(d * sizeof *mu1), *mu2 = malloc(d * sizeof *mu2), *s1 = malloc(d * d * sizeof *s1),
           *s2 = malloc(d * d * sizeof *s2);
    if (!mu1 || !mu2 || !s1 || !s2) { m2u_fail("out of memory (frechet distance, d = %zu)", d); goto done; }
    if (m2u_mean_cov(a, na, d, mu1, s1)) { m2u_fail_prefix("first set: "); goto done; }
    if (m2u_mean_cov(b, nb, d, mu2, s2)) { m2u_fail_prefix("second set: "); goto done; }
    rc = m2u_frechet_distance_stats(mu1, s1, mu2, s2, d, fd);
done:
    free(mu1);
    free(mu2);
    free(s1);
    free(s2);
    return rc;
}

/* torch.mean(x, 0) and torch.cov(x.T) in float32: mean[d], cov[d*d] (sums of the mean in
 * double, rounded once; the products by one sgemm). */
static int mean_cov_f32(const float *x, size_t n, size_t d, float *mean, float *cov) {
    if (n < 2 || d == 0) return m2u_fail("covariance needs at least 2 rows (got %zu) and 1 column", n);
    float *xc = calloc(n * d, sizeof *xc);
    if (!xc) return m2u_fail("out of memory (%zu x %zu)", n, d);
    for (size_t j = 0; j < d; j++) {
        double s = 0;
        for (size_t i = 0; i < n; i++) s += x[i * d + j];
        mean[j] = (float)(s / (double)n);
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) xc[i * d + j] = x[i * d + j] - mean[j];
    m2u_gemm(1, 0, (int)d, (int)d, (int)n, 1.0f, xc, (int)d, xc, (int)d, 0.0f, cov, (int)d);
    for (size_t i = 0; i < d * d; i++) cov[i] /= (float)(n - 1);
    free(xc);
    return 0;
}

int m2u_frechet_distance_ns(const float *a, size_t na, const float *b, size_t nb, size_t d, int iters, double *fd) {
    if (d == 0 || d > 65536 || iters < 0) return m2u_fail("frechet distance: bad dimension %zu / iterations %d", d, iters);
    size_t dd = d * d;
    float *buf = malloc((2 * d + 7 * dd) * sizeof *buf);
    if (!buf) return m2u_fail("out of memory (frechet distance, d = %zu)", d);
    float *mu1 = buf, *mu2 = mu1 + d, *s1 = mu2 + d, *s2 = s1 + dd, *y = s2 + dd, *z = y + dd, *t = z + dd,
          *u = t + dd, *v = u + dd;
    int rc = -1;
    if (mean_cov_f32(a, na, d, mu1, s1)) { m2u_fail_prefix("first set: "); goto done; }
    if (mean_cov_f32(b, nb, d, mu2, s2)) { m2u_fail_prefix("second set: "); goto done; }
    for (size_t i = 0; i < dd; i++)
        if (!isfinite(s1[i]) || !isfinite(s2[i])) { m2u_fail("frechet distance: non-finite covariance"); goto done; }
    m2u_gemm(0, 0, (int)d, (int)d, (int)d, 1.0f, s1, (int)d, s2, (int)d, 0.0f, y, (int)d); /* A */
    float norm = 0;
    for (size_t i = 0; i < d; i++) { /* A.mul(A).sum(dim=1).sum(dim=1): column sums, then their sum */
        float col = 0;
        for (size_t r = 0; r < d; r++) col += y[r * d + i] * y[r * d + i];
        norm += col;
    }
    norm = sqrtf(norm);
    if (!(norm > 0)) { m2u_fail("frechet distance: the covariance product is zero (constant embeddings?)"); goto done; }
    for (size_t i = 0; i < dd; i++) y[i] /= norm, z[i] = 0;
    for (size_t i = 0; i < d; i++) z[i * d + i] = 1;
    for (int it = 0; it < iters; it++) {
        m2u_gemm(0, 0, (int)d, (int)d, (int)d, 1.0f, z, (int)d, y, (int)d, 0.0f, u, (int)d); /* Z Y */
        for (size_t r = 0; r < d; r++)
            for (size_t c = 0; c < d; c++) t[r * d + c] = 0.5f * ((r == c ? 3.0f : 0.0f) - u[r * d + c]);
        m2u_gemm(0, 0, (int)d, (int)d, (int)d, 1.0f, y, (int)d, t, (int)d, 0.0f, u, (int)d); /* Y T */
        m2u_gemm(0, 0, (int)d, (int)d, (int)d, 1.0f, t, (int)d, z, (int)d, 0.0f, v, (int)d); /* T Z */
        memcpy(y, u, dd * sizeof *y);
        memcpy(z, v, dd * sizeof *z);
    }
    float sq = sqrtf(norm), dmu = 0, tr1 = 0, tr2 = 0, trs = 0;
    for (size_t i = 0; i < d; i++) {
        float e = mu1[i] - mu2[i];
        dmu += e * e;
        tr1 += s1[i * d + i];
        tr2 += s2[i * d + i];
        trs += y[i * d + i] * sq;
    }
    *fd = (double)(dmu + tr1 + tr2 - 2.0f * trs);
    rc = 0;
done:
    free(buf);
    return rc;
}

static void softmax_row(const double *x, size_t n, double *p) {
    double mx = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        p[i] = exp(x[i] - mx);
        s += p[i];
    }
    for (size_t i = 0; i < n; i++) p[i] /= s;
}

int m2u_kl_divergence(const double *ref, const double *gen, size_t n_pairs, size_t n_classes, int logits, double eps,
                      double *per_pair, double *mean) {
    if (n_pairs == 0 || n_classes == 0) return m2u_fail("kl divergence: empty input");
    double *pr = malloc(n_classes * sizeof *pr), *pg = malloc(n_classes * sizeof *pg);
    if (!pr || !pg) {
        free(pr);
        free(pg);
        return m2u_fail("out of memory");
    }
    double total = 0;
    for (size_t i = 0; i < n_pairs; i++) {
        const double *r = ref + i * n_classes, *g = gen + i * n_classes;
        if (logits) {
            softmax_row(r, n_classes, pr);
            softmax_row(g, n_classes, pg);
        } else {
            memcpy(pr, r, n_classes * sizeof *pr);
            memcpy(pg, g, n_classes * sizeof *pg);
        }
        double kl = 0;
        for (size_t c = 0; c < n_classes; c++) {
            if (pr[c] < 0 || pg[c] < 0 || !isfinite(pr[c]) || !isfinite(pg[c])) {
                free(pr);
                free(pg);
                return m2u_fail("kl divergence: pair %zu class %zu is not a probability", i, c);
            }
            if (pr[c] > 0) kl += pr[c] * (log(pr[c]) - log(pg[c] + eps));
        }
        if (per_pair) per_pair[i] = kl;
        total += kl;
    }
    free(pr);
    free(pg);
    *mean = total / (double)n_pairs;
    return 0;
}

int m2u_cosine_score(const double *a, const double *b, size_t n, size_t d, double *per_pair, double *mean) {
    if (n == 0 || d == 0) return m2u_fail("cosine score: empty input");
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double dot = 0, na = 0, nb = 0;
        for (size_t j = 0; j < d; j++) {
            dot += a[i * d + j] * b[i * d + j];
            na += a[i * d + j] * a[i * d + j];
            nb += b[i * d + j] * b[i * d + j];
        }
        if (na == 0 || nb == 0) return m2u_fail("cosine score: row %zu is zero", i);
        double c = dot / (sqrt(na) * sqrt(nb));
        if (per_pair) per_pair[i] = c;
        total += c;
    }
    *mean = total / (double)n;
    return 0;
}

/* ---- .npy reading ---- */

static const char *find_key(const char *h, size_t n, const char *key) {
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl <= n; i++)
        if (memcmp(h + i, key, kl) == 0) return h + i + kl;
    return NULL;
}

int m2u_npy_read_matrix(const char *path, double **data, size_t *rows, size_t *cols) {
    *data = NULL;
    m2u_mapping mp;
    if (m2u_map_file(path, &mp)) return m2u_fail_prefix("%s: ", path);
    int rc = -1;
    char *hdr = NULL;
    const unsigned char *p = mp.data;
    if (mp.size < 10 || memcmp(p, "\x93NUMPY", 6) != 0) { m2u_fail("%s: not a .npy file", path); goto done; }
    size_t hlen, off;
    if (p[6] == 1) {
        hlen = (size_t)p[8] | ((size_t)p[9] << 8);
        off = 10;
    } else if (p[6] == 2 || p[6] == 3) {
        if (mp.size < 12) { m2u_fail("%s: truncated header", path); goto done; }
        hlen = (size_t)p[8] | ((size_t)p[9] << 8) | ((size_t)p[10] << 16) | ((size_t)p[11] << 24);
        off = 12;
    } else {
        m2u_fail("%s: unsupported .npy version %d", path, p[6]);
        goto done;
    }
    if (off + hlen > mp.size) { m2u_fail("%s: truncated header", path); goto done; }
    /* the header is parsed from a NUL-terminated copy: the scans below (spaces,
     * strtoull) stop at the NUL instead of running past the header or the file */
    hdr = malloc(hlen + 1);
    if (!hdr) { m2u_fail("%s: out of memory", path); goto done; }
    memcpy(hdr, p + off, hlen);
    hdr[hlen] = '\0';
    const char *h = hdr;
    const char *descr = find_key(h, hlen, "'descr':");
    const char *fo = find_key(h, hlen, "'fortran_order':");
    const char *sh = find_key(h, hlen, "'shape':");
    if (!descr || !fo || !sh) { m2u_fail("%s: malformed header", path); goto done; }
    while (*descr == ' ') descr++;
    int f8;
    if (strncmp(descr, "'<f4'", 5) == 0) f8 = 0;
    else if (strncmp(descr, "'<f8'", 5) == 0) f8 = 1;
    else { m2u_fail("%s: dtype %.6s not supported (need little-endian float32 or float64)", path, descr); goto done; }
    while (*fo == ' ') fo++;
    if (strncmp(fo, "False", 5) != 0) { m2u_fail("%s: Fortran-order arrays are not supported", path); goto done; }
    while (*sh == ' ') sh++;
    if (*sh != '(') { m2u_fail("%s: malformed shape", path); goto done; }
    sh++;
    size_t dims[3];
    int nd = 0;
    for (;;) {
        while (*sh == ' ' || *sh == ',') sh++;
        if (*sh == ')') break;
        if (*sh < '0' || *sh > '9' || nd == 3) { m2u_fail("%s: malformed or >2-D shape", path); goto done; }
        dims[nd++] = (size_t)strtoull(sh, (char **)&sh, 10);
    }
    if (nd == 0 || nd > 2) { m2u_fail("%s: need a 1-D or 2-D array (got %d-D)", path, nd); goto done; }
    size_t r = dims[0], c = nd == 2 ? dims[1] : 1;
    size_t es = f8 ? 8 : 4;
    size_t doff = off + hlen;
    if (r != 0 && c > (SIZE_MAX / es) / r) { m2u_fail("%s: shape too large", path); goto done; }
    if (mp.size - doff < r * c * es) { m2u_fail("%s: data truncated (%zu x %zu)", path, r, c); goto done; }
    double *out = malloc((r * c != 0 ? r * c : 1) * sizeof *out);
    if (!out) { m2u_fail("%s: out of memory", path); goto done; }
    for (size_t i = 0; i < r * c; i++) {
        if (f8) {
            double v;
            memcpy(&v, p + doff + i * 8, 8);
            out[i] = v;
        } else {
            float v;
            memcpy(&v, p + doff + i * 4, 4);
            out[i] = v;
        }
    }
    *data = out;
    *rows = r;
    *cols = c;
    rc = 0;
done:
    free(hdr);
    m2u_unmap_file(&mp);
    return rc;
}
