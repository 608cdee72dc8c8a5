/* Branch-free scalar maths that the compiler vectorises inside a loop (kernels/cpu only).
 *
 * GELU's erf: PyTorch's fp32 GELU on CPU does not call erff.  Its vectorised kernel
 * (ATen Vectorized<float>::erf, used whenever the CPU has AVX2) evaluates Abramowitz &
 * Stegun 7.1.26, erf(z) = 1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-z^2) with
 * t = 1 / (1 + p |z|), whose own error is at most 1.5e-7; torch's GELU is within 3.7e-7
 * (absolute) of the exact one on [-6, 6].  glibc's erff is scalar only: a loop over it
 * cannot vectorise, and MERT's conv front end applies GELU to 24.5 M values per 10 s of
 * audio.  So m2u uses the same formula, evaluated in double and rounded once: within
 * 3.1e-7 of torch's GELU and 2.1e-7 of the exact one on [-6, 6]
 * (tests/test_kernels.c checks the bound against erf).  */
#ifndef M2U_VMATH_H
#define M2U_VMATH_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define M2U_VINLINE static inline __attribute__((always_inline))
#else
#define M2U_VINLINE static inline
#endif

/* exp(v) for v <= 0 in double: v = n ln2 + r, |r| <= ln2/2, exp(r) by its Taylor series to r^11
 * (truncation < 2e-13 relative), times 2^n built in the exponent bits.  v below -700 gives
 * exp(-700) (a value that no float result can tell from 0); a NaN stays NaN, so a broken input
 * upstream still shows in the loss. */
M2U_VINLINE double m2u_vexp_neg(double v) {
    const double log2e = 1.4426950408889634, ln2 = 0.6931471805599453, shifter = 6755399441055744.0; /* 1.5*2^52 */
    v = v > -700.0 || v != v ? v : -700.0;
    v = v < 0.0 || v != v ? v : 0.0;
    double u = v * log2e + shifter;
    double nd = u - shifter; /* round to nearest integer */
    uint64_t ub;
    memcpy(&ub, &u, sizeof ub);
    uint64_t pb = (ub + 1023) << 52; /* 2^n (low bits of u hold n; unsigned: wraps by design) */
    double p2;
    memcpy(&p2, &pb, sizeof p2);
    double r = v - nd * ln2;
    double p = 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    return p * p2;
}

/* erf(z) by Abramowitz & Stegun 7.1.26 (see above), in double. */
M2U_VINLINE double m2u_verf_as(double z) {
    double a = z < 0.0 ? -z : z;
    double t = 1.0 / (1.0 + 0.3275911 * a);
    double p = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
    double e = 1.0 - p * m2u_vexp_neg(-a * a);
    return z < 0.0 ? -e : e;
}

/* GELU(x) = x Phi(x) with the erf above. */
M2U_VINLINE float m2u_vgelu(float x) {
    double v = (double)x;
    return (float)(0.5 * v * (1.0 + m2u_verf_as(v * 0.70710678118654752)));
}

/* Phi(x), GELU's cdf, for the backward pass. */
M2U_VINLINE double m2u_vgelu_cdf(double v) { return 0.5 * (1.0 + m2u_verf_as(v * 0.70710678118654752)); }

/* Loops over these get AVX-512 / AVX2 clones on GCC while the build targets the baseline ISA
 * (clang's fuzzing build and sanitizer builds keep the portable version: an ifunc resolver runs
 * before the sanitizer runtime is up). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define M2U_VCLONES \
    __attribute__((target_clones("avx512f", "avx2", "default"), \
                   optimize("tree-vectorize", "vect-cost-model=dynamic", "no-trapping-math")))
#else
#define M2U_VCLONES
#endif

#endif
