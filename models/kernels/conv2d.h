/* 2-D convolution and max pooling on channels-last (NHWC) images, for the VGG-style
 * audio embedders (VGGish) whose input is a log-mel patch [time][mel][1].
 *
 * Channels-last makes the convolution one row-major GEMM over im2col rows (each row is
 * k*k contiguous channel vectors) and leaves the activations in the order torchvggish
 * flattens them (it transposes NCHW to NHWC before its fully connected layers). */
#ifndef M2U_CONV2D_H
#define M2U_CONV2D_H

/* torch Conv2d weight [C_out][C_in][k][k] -> [C_out][k][k][C_in] (new malloc'ed array; NULL
 * when out of memory). */
float *m2u_conv2d_pack(const float *w, int C_out, int C_in, int k);

/* y[H_out][W_out][C_out] = conv(x[H][W][C_in]) + b with stride 1 and `pad` zeros on every
 * side (torch Conv2d(kernel_size=k, padding=pad)), H_out = H + 2 pad - k + 1 (likewise W).
 * w from m2u_conv2d_pack, b may be NULL; y must not alias x.  relu != 0: then y = max(y, 0)
 * (m2u_relu_fwd's x > 0 ? x : 0), applied to each block while it is in cache.  im2col and one
 * sgemm per block of output rows (bounded scratch).  -1 after m2u_fail() when memory runs out. */
int m2u_conv2d_nhwc(float *y, const float *x, int H, int W, int C_in, int C_out, int k, int pad, const float *w,
                    const float *b, int relu);

/* torch MaxPool2d(kernel_size=k, stride=k) on x[H][W][C]: y[H/k][W/k][C] (trailing rows and
 * columns that do not fill a window are dropped, as torch's floor mode does). */
void m2u_maxpool2d_nhwc(float *y, const float *x, int H, int W, int C, int k);

#endif
