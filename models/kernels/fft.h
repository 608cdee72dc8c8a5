/* Discrete Fourier transform of real frames in double precision, for the
 * audio front ends that must match a reference's spectrogram (numpy's rfft,
 * torch.stft, a conv1d DFT): computing in double and rounding once lands within
 * a float32 ulp or two of any of them, where a float32 FFT would not.
 *
 * One plan per size, read-only after creation, so threads share it; the caller
 * owns the scratch. */
#ifndef M2U_FFT_H
#define M2U_FFT_H

typedef struct m2u_fft m2u_fft;

/* A plan for frames of n samples, n a power of two in 2..2^20.  NULL after m2u_fail(). */
m2u_fft *m2u_fft_new(int n);
void m2u_fft_free(m2u_fft *p);
int m2u_fft_size(const m2u_fft *p);

/* X[k] = sum_j x[j] exp(-2 pi i j k / n) for k = 0..n/2 (re, im: n/2+1 entries each).
 * work: 2n doubles of scratch. */
void m2u_fft_real(const m2u_fft *p, const double *x, double *re, double *im, double *work);

#endif
