#include "conv2d.h"

#include "m2u_error.h"
#include "tensor.h"

#include <stdlib.h>
#include <string.h>

float *m2u_conv2d_pack(const float *w, int C_out, int C_in, int k) {
    float *p = malloc((size_t)C_out * C_in * k * k * sizeof *p);
    if (!p) return NULL;
    for (int o = 0; o < C_out; o++)
        for (int c = 0; c < C_in; c++)
            for (int i = 0; i < k * k; i++) p[((size_t)o * k * k + i) * C_in + c] = w[((size_t)o * C_in + c) * k * k + i];
    return p;
}

int m2u_conv2d_nhwc(float *y, const float *x, int H, int W, int C_in, int C_out, int k, int pad, const float *w,
                    const float *b, int relu) {
    int Ho = H + 2 * pad - k + 1, Wo = W + 2 * pad - k + 1;
    if (Ho <= 0 || Wo <= 0) return m2u_fail("conv2d: %dx%d input too small for kernel %d, pad %d", H, W, k, pad);
    size_t K = (size_t)k * k * C_in, rows = (size_t)Ho * Wo;
    /* ~4 MiB of im2col per block: the GEMM's B operand (the weights) stays hot across blocks */
    size_t blk = (1u << 20) / K;
    if (blk < 16) blk = 16;
    if (blk > rows) blk = rows;
    float *col = malloc(blk * K * sizeof *col);
    if (!col) return m2u_fail("conv2d: out of memory (%zu x %zu im2col)", blk, K);
    for (size_t r0 = 0; r0 < rows; r0 += blk) {
        size_t nr = rows - r0 < blk ? rows - r0 : blk;
#pragma omp parallel for schedule(static) if (nr * K > 65536)
        for (size_t r = 0; r < nr; r++) {
            int oy = (int)((r0 + r) / (size_t)Wo), ox = (int)((r0 + r) % (size_t)Wo);
            float *dst = col + r * K;
            for (int dy = 0; dy < k; dy++) {
                int iy = oy + dy - pad;
                for (int dx = 0; dx < k; dx++, dst += C_in) {
                    int ix = ox + dx - pad;
                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) memset(dst, 0, (size_t)C_in * sizeof *dst);
                    else memcpy(dst, x + ((size_t)iy * W + ix) * C_in, (size_t)C_in * sizeof *dst);
                }
            }
        }
        float *yb = y + r0 * C_out;
        m2u_gemm(0, 1, (int)nr, C_out, (int)K, 1.0f, col, (int)K, w, (int)K, 0.0f, yb, C_out);
        if (relu) {
            /* the bias (one float add, as m2u_bias_add_rows) and the ReLU in one pass */
#pragma omp parallel for schedule(static) if (nr * (size_t)C_out > 65536)
            for (size_t r = 0; r < nr; r++) {
                float *row = yb + r * C_out;
                for (int c = 0; c < C_out; c++) {
                    float v = b ? row[c] + b[c] : row[c];
                    row[c] = v > 0.0f ? v : 0.0f;
                }
            }
        } else if (b)
            m2u_bias_add_rows(yb, b, (int)nr, C_out);
    }
    free(col);
    return 0;
}

void m2u_maxpool2d_nhwc(float *y, const float *x, int H, int W, int C, int k) {
    int Ho = H / k, Wo = W / k;
#pragma omp parallel for schedule(static) if ((size_t)Ho * Wo * C > 65536)
    for (int oy = 0; oy < Ho; oy++)
        for (int ox = 0; ox < Wo; ox++) {
            float *dst = y + ((size_t)oy * Wo + ox) * C;
            memcpy(dst, x + ((size_t)oy * k * W + (size_t)ox * k) * C, (size_t)C * sizeof *dst);
            for (int dy = 0; dy < k; dy++)
                for (int dx = 0; dx < k; dx++) {
                    const float *src = x + ((size_t)(oy * k + dy) * W + (size_t)(ox * k + dx)) * C;
                    /* torch's max pooling propagates NaN: keep a NaN once seen */
                    for (int c = 0; c < C; c++)
                        if (src[c] > dst[c] || src[c] != src[c]) dst[c] = src[c];
                }
        }
}
