/* Conv1d on time-major data (MERT's feature extractor and positional convolution). */
#ifndef M2U_CONV1D_H
#define M2U_CONV1D_H

/* Grouped, strided, zero-padded Conv1d on time-major data:
 *   x [T_in, C_in] -> y[t, :] for t < T_out (row stride C_out), with
 *   y[t, g*Cog + o] = b[g*Cog + o] + sum_{j<k, c<Cig} w[g][o][j][c] * x[t*stride + j - pad, g*Cig + c]
 * (x is 0 outside [0, T_in)).  w is in the "tap-major" layout [C_out, k, C_in/groups], see
 * m2u_conv1d_weight_to_tap_major.  b may be NULL.  Im2col is done in blocks of rows so memory
 * stays bounded for long inputs.  Fails only on allocation failure. */
int m2u_conv1d_tm(float *y, int T_out, const float *x, int T_in, int C_in, int C_out, int k, int stride, int pad,
                  int groups, const float *w, const float *b);
/* The same with each group's weight [C_out/groups, k * C_in/groups] packed: packs[g] made by
 * m2u_linear_pack_new(w + g * (C_out/groups) * k * (C_in/groups), k * C_in/groups, C_out/groups)
 * (ops_extra.h).  Equal to m2u_conv1d_tm but for the products' rounding; packs NULL: that. */
struct m2u_linear_pack;
int m2u_conv1d_tm_packed(float *y, int T_out, const float *x, int T_in, int C_in, int C_out, int k, int stride,
                         int pad, int groups, const float *w, const float *b, struct m2u_linear_pack *const *packs);
/* torch Conv1d weight [C_out, C_in/groups, k] -> [C_out, k, C_in/groups] (a new malloc'ed array). */
float *m2u_conv1d_weight_to_tap_major(const float *w, int C_out, int cin_g, int k);

/* Backward of m2u_conv1d_tm for the same arguments: dx [T_in, C_in], dw (tap-major) and
 * db [C_out] ACCUMULATE; each may be NULL.  dy is [T_out, C_out]. */
int m2u_conv1d_tm_bwd(float *dx, float *dw, float *db, const float *dy, int T_out, const float *x, int T_in, int C_in,
                      int C_out, int k, int stride, int pad, int groups, const float *w);

#endif
