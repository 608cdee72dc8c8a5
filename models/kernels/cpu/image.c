#include "image.h"

#include <string.h>

void m2u_pixels_normalize(float *px, const uint8_t *rgb, int frames, size_t HW, int do_rescale, double rescale_factor,
                          int offset, int do_normalize, const float mean[3], const float std[3]) {
    /* one frame per iteration: a cast and a few flops per pixel, memory-bound */
#pragma omp parallel for schedule(static) if (frames > 1)
    for (int f = 0; f < frames; f++)
        for (size_t p = 0; p < HW; p++)
            for (int ch = 0; ch < 3; ch++) {
                uint8_t u = rgb[((size_t)f * HW + p) * 3 + ch];
                /* transformers: rescale in float64 then cast to float32; offset and
                 * normalize in float32 (numpy arrays of float32). */
                float x = do_rescale ? (float)((double)u * rescale_factor) : (float)u;
                if (offset) x = x - 1.0f;
                if (do_normalize) x = (x - mean[ch]) / std[ch];
                px[((size_t)f * 3 + ch) * HW + p] = x;
            }
}

void m2u_patch_im2col(float *col, const float *px, int C, int img_h, int img_w, int pt, int ph, int pw, int grid_t,
                      int grid_h, int grid_w) {
    int P = grid_t * grid_h * grid_w;
    size_t HW = (size_t)img_h * img_w, K = (size_t)C * pt * ph * pw;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < P; p++) {
        int gt = p / (grid_h * grid_w), gy = (p / grid_w) % grid_h, gx = p % grid_w;
        float *dst = col + (size_t)p * K;
        for (int ch = 0; ch < C; ch++)
            for (int dt = 0; dt < pt; dt++)
                for (int dy = 0; dy < ph; dy++) {
                    const float *src =
                        px + ((size_t)(gt * pt + dt) * C + ch) * HW + (size_t)(gy * ph + dy) * img_w + (size_t)gx * pw;
                    memcpy(dst, src, (size_t)pw * sizeof(float));
                    dst += pw;
                }
    }
}
