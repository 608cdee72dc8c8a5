#include "conv1d.h"

#include "m2u_error.h"
#include "ops_extra.h" /* m2u_linear_fwd_packed_ld */
#include "tensor.h"
#include "vmath.h" /* M2U_VCLONES */

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ---- convolution ------------------------------------------------------------------------------ */

float *m2u_conv1d_weight_to_tap_major(const float *w, int C_out, int cin_g, int k) {
    float *r = malloc((size_t)C_out * cin_g * k * sizeof(float));
    if (!r) return NULL;
    for (int o = 0; o < C_out; o++)
        for (int c = 0; c < cin_g; c++)
            for (int j = 0; j < k; j++) r[((size_t)o * k + j) * cin_g + c] = w[((size_t)o * cin_g + c) * k + j];
    return r;
}

/* One output row of a conv with one input channel: y[o] = b[o] + sum_j wt[j][o] * win[j]. */
M2U_VCLONES static void conv_row_c1(float *y, const float *win, int k, const float *wt, const float *b, int C_out) {
    if (b) memcpy(y, b, (size_t)C_out * sizeof(float));
    else memset(y, 0, (size_t)C_out * sizeof(float));
    for (int j = 0; j < k; j++) {
        float v = win[j];
        const float *wj = wt + (size_t)j * C_out;
        for (int o = 0; o < C_out; o++) y[o] += v * wj[o];
    }
}

/* One input channel (the first layer of wav2vec2 / HuBERT / MERT on raw audio: 48000 x 512
 * outputs of only k = 10 products each per 10 s): im2col + sgemm with K = k wrote the
 * output three times (bias rows, then sgemm reading and writing them back); here each row is
 * made once in L1 from the k samples of its window (MERT-95M on 10 s, 2 threads: 59-67 ms ->
 * 40-47 ms, most of the rest the first touch of the 98 MB output).  -1 when the transposed weight
 * [k][C_out] and the threads' windows cannot be allocated (the caller then takes the im2col path). */
static int conv_c1(float *y, int T_out, const float *x, int T_in, int C_out, int k, int stride, int pad,
                   const float *w, const float *b) {
    int nt = omp_get_max_threads();
    /* the transposed weight, then one k-sample window per thread */
    float *wt = malloc(((size_t)k * C_out + (size_t)nt * k) * sizeof(float));
    if (!wt) return -1;
    for (int o = 0; o < C_out; o++)
        for (int j = 0; j < k; j++) wt[(size_t)j * C_out + o] = w[(size_t)o * k + j];
#pragma omp parallel num_threads(nt)
    {
        float *win = wt + (size_t)k * C_out + (size_t)omp_get_thread_num() * k;
#pragma omp for schedule(static)
        for (int t = 0; t < T_out; t++) {
            long s0 = (long)t * stride - pad;
            for (int j = 0; j < k; j++) win[j] = s0 + j >= 0 && s0 + j < T_in ? x[s0 + j] : 0.0f;
            conv_row_c1(y + (size_t)t * C_out, win, k, wt, b, C_out);
        }
    }
    free(wt);
    return 0;
}

int m2u_conv1d_tm(float *y, int T_out, const float *x, int T_in, int C_in, int C_out, int k, int stride, int pad,
                  int groups, const float *w, const float *b) {
    return m2u_conv1d_tm_packed(y, T_out, x, T_in, C_in, C_out, k, stride, pad, groups, w, b, NULL);
}

int m2u_conv1d_tm_packed(float *y, int T_out, const float *x, int T_in, int C_in, int C_out, int k, int stride,
                         int pad, int groups, const float *w, const float *b, m2u_linear_pack *const *packs) {
    if (T_out <= 0) return 0;
    if (C_in == 1 && groups == 1 && conv_c1(y, T_out, x, T_in, C_out, k, stride, pad, w, b) == 0) return 0;
    int cig = C_in / groups, cog = C_out / groups, K = k * cig;
    /* Rows per im2col block: enough for an efficient GEMM, small enough (a few MB) for long audio. */
    int block = 1024;
    if (block > T_out) block = T_out;
    float *col = malloc((size_t)block * K * sizeof(float));
    if (!col) return m2u_fail("conv1d: out of memory for a %d x %d im2col block", block, K);
    if (b && !packs) { /* with packs each group's product adds its bias */
#pragma omp parallel for schedule(static)
        for (int t = 0; t < T_out; t++) memcpy(y + (size_t)t * C_out, b, (size_t)C_out * sizeof(float));
    }
    for (int t0 = 0; t0 < T_out; t0 += block) {
        int nb = T_out - t0 < block ? T_out - t0 : block;
        for (int g = 0; g < groups; g++) {
#pragma omp parallel for schedule(static)
            for (int r = 0; r < nb; r++) {
                long src0 = (long)(t0 + r) * stride - pad;
                float *dst = col + (size_t)r * K;
                for (int j = 0; j < k; j++) {
                    long s = src0 + j;
                    if (s < 0 || s >= T_in) memset(dst + (size_t)j * cig, 0, (size_t)cig * sizeof(float));
                    else memcpy(dst + (size_t)j * cig, x + (size_t)s * C_in + (size_t)g * cig, (size_t)cig * sizeof(float));
                }
            }
            float *yg = y + (size_t)t0 * C_out + (size_t)g * cog;
            if (packs)
                m2u_linear_fwd_packed_ld(packs[g], yg, C_out, col, b ? b + (size_t)g * cog : NULL, nb);
            else
                m2u_gemm(0, 1, nb, cog, K, 1.0f, col, K, w + (size_t)g * cog * K, K, b ? 1.0f : 0.0f, yg, C_out);
        }
    }
    free(col);
    return 0;
}

int m2u_conv1d_tm_bwd(float *dx, float *dw, float *db, const float *dy, int T_out, const float *x, int T_in, int C_in,
                      int C_out, int k, int stride, int pad, int groups, const float *w) {
    if (T_out <= 0) return 0;
    if (groups <= 0 || C_in % groups || C_out % groups)
        return m2u_fail("conv1d backward: %d groups do not divide %d -> %d channels", groups, C_in, C_out);
    int cig = C_in / groups, cog = C_out / groups, K = k * cig;
    if (db) {
#pragma omp parallel for schedule(static)
        for (int o = 0; o < C_out; o++) {
            float acc = 0.0f;
            for (int t = 0; t < T_out; t++) acc += dy[(size_t)t * C_out + o];
            db[o] += acc;
        }
    }
    /* dw: each output channel owns its row of taps */
    if (dw) {
#pragma omp parallel for schedule(static)
        for (int o = 0; o < C_out; o++) {
            int g = o / cog;
            float *wr = dw + (size_t)o * K;
            for (int t = 0; t < T_out; t++) {
                float d = dy[(size_t)t * C_out + o];
                for (int j = 0; j < k; j++) {
                    long s = (long)t * stride - pad + j;
                    if (s < 0 || s >= T_in) continue;
                    const float *xr = x + (size_t)s * C_in + (size_t)g * cig;
                    for (int c = 0; c < cig; c++) wr[(size_t)j * cig + c] += d * xr[c];
                }
            }
        }
    }
    /* dx: each input channel gathers from the outputs of its group */
    if (dx) {
#pragma omp parallel for schedule(static)
        for (int ci = 0; ci < C_in; ci++) {
            int g = ci / cig, c = ci % cig;
            for (int t = 0; t < T_out; t++)
                for (int j = 0; j < k; j++) {
                    long s = (long)t * stride - pad + j;
                    if (s < 0 || s >= T_in) continue;
                    float acc = 0.0f;
                    for (int o = g * cog; o < (g + 1) * cog; o++)
                        acc += dy[(size_t)t * C_out + o] * w[((size_t)o * k + j) * cig + c];
                    dx[(size_t)s * C_in + ci] += acc;
                }
        }
    }
    return 0;
}
