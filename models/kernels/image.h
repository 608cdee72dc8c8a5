/* Image / video input kernels of the ViT and ViViT encoders: pixel normalisation and the
 * patch im2col that turns the patch-embedding Conv2d/Conv3d (stride = kernel) into one matmul. */
#ifndef M2U_IMAGE_H
#define M2U_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* rgb [frames][HW][3] uint8 -> px [frames][3][HW] float, as transformers' image processors:
 * x = do_rescale ? float(u * rescale_factor) (double product, rounded once) : u; then in
 * float32 x -= 1 when offset (ViViT's [-1, 1] range), x = (x - mean[c]) / std[c] when
 * do_normalize. */
void m2u_pixels_normalize(float *px, const uint8_t *rgb, int frames, size_t HW, int do_rescale, double rescale_factor,
                          int offset, int do_normalize, const float mean[3], const float std[3]);

/* Patch im2col for non-overlapping (stride = kernel) patches of px [frames][C][img_h][img_w]:
 * col [P][C * pt * ph * pw], one row per patch in (t, y, x) grid order, columns in the
 * (c, dt, dy, dx) order of a Conv3d (ViT: frames = pt = 1, a Conv2d) weight.  grid_t * pt
 * <= frames, grid_h * ph <= img_h, grid_w * pw <= img_w (trailing pixels are dropped, as the
 * convolution does). */
void m2u_patch_im2col(float *col, const float *px, int C, int img_h, int img_w, int pt, int ph, int pw, int grid_t,
                      int grid_h, int grid_w);

#endif
