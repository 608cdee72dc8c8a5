/* 1-D audio kernels (convolution, transposed convolution, LSTM, ELU, padding,
 * vector quantisation) on time-major fp32 arrays: a signal of T steps and C
 * channels is x[T][C] (row t holds all channels of step t).
 *
 * Time-major is chosen over PyTorch's [C][T] because every heavy op becomes a
 * plain row-major GEMM on it: a convolution's im2col row is k contiguous
 * channel vectors, a transposed convolution's polyphase output rows are the
 * output signal's rows in order (no col2im scatter), and the LSTM input
 * projection is X @ W_ih^T.
 *
 * These are the only functions of the EnCodec code that use BLAS or OpenMP.
 * Big loops split the time axis into blocks that fit in L2 and run the blocks
 * on OpenMP threads, each block's GEMM single-threaded (OpenBLAS runs
 * single-threaded inside a parallel region); short inputs leave the threading
 * to BLAS.  Functions that allocate scratch return -1 after m2u_fail() when
 * memory runs out, 0 otherwise. */
#ifndef M2U_OPS_AUDIO_H
#define M2U_OPS_AUDIO_H

#include "tensor.h" /* m2u_add_inplace for the residual sums */

#include <stddef.h>
#include <stdint.h>

/* ---- memory ---- */

/* n floats for a big buffer that is streamed (LSTM weights, activations): from 1 MiB up, 2 MiB aligned
 * and marked for transparent huge pages where the OS offers them (madvise), which cuts the TLB misses of
 * a 16 MB GEMV per step and the page faults of fresh activations; smaller ones are plain malloc.
 * Release with free().  NULL when out of memory. */
float *m2u_audio_alloc(size_t n);

/* ---- element-wise ---- */

/* y = ELU(x) with alpha 1: x > 0 ? x : expm1(x), expm1 computed in double
 * (|error| < 1 ulp of the float result).  y may alias x. */
void m2u_elu(float *y, const float *x, size_t n);

/* ---- padding ---- */

enum { M2U_PAD_CONSTANT = 0, M2U_PAD_REFLECT = 1 };

/* y[(left + T + right)][C] = x[T][C] padded along time, as transformers'
 * EncodecConv1d._pad1d: constant pads zeros; reflect mirrors around the end
 * rows (torch "reflect", edge not repeated), and when T <= max(left, right)
 * the input is first extended with zero rows to max(left, right) + 1 rows
 * and the extension cut off again after padding (so short inputs work).
 * With elu != 0 every row is ELU'd on the way (ELU(0) = 0 and padding only
 * copies rows, so this is ELU then pad in one pass).
 * Requires T >= 1, left, right >= 0; y must not alias x. */
void m2u_pad1d_tm(float *y, const float *x, int T, int C, int left, int right, int mode, int elu);

/* ---- convolution ---- */

/* torch Conv1d weight [C_out][C_in][k] -> tap-major [C_out][k][C_in] (new malloc'ed array; NULL when out of memory). */
float *m2u_conv1d_pack(const float *w, int C_out, int C_in, int k);

/* Output length of a convolution over T_in (already padded) steps: (T_in - (k-1)*dilation - 1) / stride + 1,
 * or 0 when T_in is shorter than the dilated kernel. */
int m2u_conv1d_out_len(int T_in, int k, int stride, int dilation);

/* Padding (and ELU) applied to a convolution's input on the fly, block by block, as m2u_pad1d_tm would:
 * left / right rows, M2U_PAD_CONSTANT or M2U_PAD_REFLECT, elu != 0 for ELU first. */
typedef struct {
    int left, right, mode, elu;
} m2u_pad_spec;

/* y[T_out][C_out] = conv(pad(x[T_in][C_in])) + b, groups 1; with accumulate != 0, y += ... instead (a
 * residual sum without another pass).  pad may be NULL (none); T_out = m2u_conv1d_out_len(left + T_in +
 * right, ...) must be >= 1.  w is tap-major (m2u_conv1d_pack), b may be NULL; y must not alias x.
 * In L2-sized row blocks: the padded (ELU'd) input rows a block reads are built in scratch (never the whole
 * padded signal), im2col from them, one cblas_sgemm; a 1x1 conv with stride 1 multiplies the rows as they
 * are. */
int m2u_conv1d_fwd(float *y, const float *x, int T_in, int C_in, int C_out, int k, int stride, int dilation,
                   const m2u_pad_spec *pad, const float *w, const float *b, int accumulate);

/* torch ConvTranspose1d weight [C_in][C_out][k] -> polyphase layout: m = ceil(k / stride) matrices
 * P_i [C_in][stride * C_out] with P_i[ci][r * C_out + co] = w[ci][co][r + i * stride] (0 past k),
 * stored one after the other (new malloc'ed array; NULL when out of memory). */
float *m2u_conv_transpose1d_pack(const float *w, int C_in, int C_out, int k, int stride);

/* Transposed convolution (torch ConvTranspose1d, padding 0, output_padding 0, groups 1) of
 * x[T][C_in], whose full output has (T-1)*stride + k steps, with trim_left steps dropped at the start and
 * trim_right at the end: y[(T-1)*stride + k - trim_left - trim_right][C_out].  w_pp from
 * m2u_conv_transpose1d_pack, b may be NULL.
 * Computed by phases: output step q*stride + r = sum_i x[q - i] @ P_i[:, r*C_out : (r+1)*C_out], so each
 * block of q is one GEMM per tap whose result rows are already the output rows in order. */
int m2u_conv_transpose1d_fwd(float *y, const float *x, int T, int C_in, int C_out, int k, int stride, int trim_left,
                             int trim_right, const float *w_pp, const float *b);

/* ---- recurrent ---- */

/* One layer of torch nn.LSTM (gates i, f, g, o) repacked for m2u_lstm_layer_fwd: the four gate rows of
 * each hidden unit side by side (row 4u + q is gate q of unit u) so a thread's slice of units is one
 * contiguous block of W_hh, and b = b_ih + b_hh. */
typedef struct {
    int In, H;
    float *w_ih; /* [4H][In] */
    float *w_hh; /* [4H][H] */
    float *b;    /* [4H] */
} m2u_lstm_packed;

/* Pack torch's weight_ih [4H][In], weight_hh [4H][H], bias_ih / bias_hh [4H] (either bias may be NULL). */
int m2u_lstm_pack(m2u_lstm_packed *p, const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh,
                  int In, int H);
void m2u_lstm_packed_free(m2u_lstm_packed *p);

/* One layer over x[T][In] from zero h and c (batch 1): h[T][H].  The input part of all gates is one GEMM
 * over the whole sequence; the recurrent part runs step by step inside one parallel region, each thread
 * owning a slice of hidden units (one GEMV over its rows of W_hh, then its cells), one barrier a step.
 * Sigmoid and tanh are computed in double.  h must not alias x. */
int m2u_lstm_layer_fwd(float *h, const float *x, int T, const m2u_lstm_packed *p);

/* A stack of L layers (nn.LSTM(num_layers=L): layer l+1 reads layer l's outputs; layers 1.. need In == H),
 * all from zero state: h[T][H] gets the last layer's outputs; scratch holds the (L-1) intermediate outputs,
 * (L-1)*T*H floats (may be NULL when L == 1).  h must not alias x or scratch.
 * With 2 or 3 threads and 2 <= L <= threads the layers run as a pipeline, one thread per layer: layer 0's
 * input part is one GEMM up front; layer l takes layer l-1's outputs in chunks of what has been published
 * (8 to 64 steps, one GEMM for their input part), and only ever waits for the layer below.  Each step then needs no barrier, which keeps the
 * recurrence fast when the cores are shared with other work (a per-step barrier stalls whenever the
 * partner thread is descheduled); the weight traffic per core is the same as splitting each step.  With
 * more threads each layer in turn is split across all of them (m2u_lstm_layer_fwd), so a thread's slice
 * of W_hh fits in its cache. */
int m2u_lstm_fwd(float *h, float *scratch, const float *x, int T, const m2u_lstm_packed *layers, int L);

/* ---- vector quantisation ---- */

/* out[N][D] += sign * embed[codes[n]] for each n (rows of a codebook embed [size][D]); sign is +1 (sum of
 * codebooks) or -1 (residual update; a + (-b) is exactly a - b).  Codes must be in range. */
void m2u_vq_dequant_add(float *out, const int32_t *codes, int N, const float *embed, int D, float sign);

/* For each row x[n] of x[N][D]: codes[n] = argmax_j -(|x_n|^2 - 2 x_n.e_j + |e_j|^2) over the codebook
 * embed [size][D] (transformers' EncodecEuclideanCodebook.quantize, same operation order; ties to the lowest
 * j), with e_sq[j] = |e_j|^2 precomputed by m2u_vq_sqnorms. */
int m2u_vq_nearest(int32_t *codes, const float *x, int N, int D, const float *embed, const float *e_sq, int size);
void m2u_vq_sqnorms(float *e_sq, const float *embed, int size, int D);

#endif
