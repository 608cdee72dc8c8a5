/* Branch-free scalar maths that the compiler vectorises inside a loop (kernels/cpu only).
 *
 * GELU's erf: PyTorch's fp32 GELU on CPU does not call erff.  Its vectorised kernel
 * (ATen Vectorized<float>::erf, used whenever the CPU has AVX2) evaluates Abramowitz &
 * Stegun 7.1.26, erf(z) = 1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-z^2) with
 * t = 1 / (1 + p |z|), whose own error is at most 1.5e-7; torch's GELU is within 3.7e-7
 * (absolute) of the exact one on [-6, 6].  glibc's erff is scalar only: a loop over it
 * cannot vectorise, and MERT's conv front end applies GELU to 24.5 M values per 10 s of
 * audio.  So m2u uses the same formula and, for the forward, the same float evaluation
 * (m2u_vgelu); the backward's Phi keeps a double evaluation rounded once (m2u_vgelu_cdf).
 * tests/test_kernels.c checks both bounds against erf.  */
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

/* expf(v) for v <= 0 in float, vectorisable: v = n ln2 + r (ln2 in two parts, Cody & Waite),
 * exp(r) by Cephes' degree-7 polynomial for expf (within 2 ulp of expf, tests/test_kernels.c
 * checks it), times 2^n built in the exponent bits.  Below -87 (exp < 1.7e-38, under float's
 * normal range) the result is 0; a NaN stays NaN.  For the attention softmax, where half the
 * time of a long-sequence encoder went to the double exponential above. */
M2U_VINLINE float m2u_vexpf_neg(float v) {
    const float log2e = 1.44269504f, c1 = 0.693359375f, c2 = -2.12194440e-4f, shifter = 12582912.0f; /* 1.5*2^23 */
    float x = v > -87.0f || v != v ? v : -87.0f;
    x = x < 0.0f || x != x ? x : 0.0f;
    float u = x * log2e + shifter;
    float nf = u - shifter; /* round to nearest integer, in [-126, 0] */
    uint32_t ub;
    memcpy(&ub, &u, sizeof ub);
    uint32_t pb = (ub + 127u) << 23; /* 2^n: the low bits of u hold n (unsigned: wraps by design) */
    float p2;
    memcpy(&p2, &pb, sizeof p2);
    float r = x - nf * c1;
    r = r - nf * c2;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = (p * (r * r) + r + 1.0f) * p2;
    return v < -87.0f ? 0.0f : y;
}

/* The two logarithms below share musl's (fdlibm's) reduction: a double's high word moved by
 * 1 - sqrt(2)/2 so that the exponent field steps at sqrt(2), giving x = 2^k m with m in
 * [sqrt(2)/2, sqrt(2)) (m2u_vlog_split), and log(1 + f) = f - f^2/2 + s (f^2/2 + R), s = f / (2 + f),
 * R = m2u_vlog_r(s^2), a degree-14 polynomial (Lg1..Lg7).  Integer steps are on the bits, and k
 * becomes a double through the exponent bits (no int64 conversion), so a loop vectorises. */
M2U_VINLINE double m2u_vlog_split(double x, int64_t *k) {
    uint64_t ix;
    memcpy(&ix, &x, sizeof ix);
    uint64_t hx = (ix >> 32) + (0x3ff00000u - 0x3fe6a09eu);
    *k = (int64_t)(hx >> 20) - 0x3ff;
    uint64_t mb = (((hx & 0x000fffffu) + 0x3fe6a09eu) << 32) | (ix & 0xffffffffu);
    double m;
    memcpy(&m, &mb, sizeof m);
    return m;
}

/* k (|k| < 1100) as a double */
M2U_VINLINE double m2u_vlog_k(int64_t k) {
    uint64_t kb = 0x4330000000000000ull + (uint64_t)(k + 1100);
    double dk;
    memcpy(&dk, &kb, sizeof dk);
    return dk - (4503599627370496.0 + 1100.0); /* 2^52 + 1100 */
}

M2U_VINLINE double m2u_vlog_r(double z) {
    const double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01, Lg3 = 2.857142874366239149e-01,
                 Lg4 = 2.222219843214978396e-01, Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01,
                 Lg7 = 1.479819860511658591e-01;
    double w = z * z;
    double t1 = w * (Lg2 + w * (Lg4 + w * Lg6)), t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
    return t2 + t1;
}

/* log1p(x) for x >= 0 in double (musl's log1p): below sqrt(2) - 1, f = x; above, 1 + x = u =
 * 2^k m, f = m - 1 and u's rounding put back through c = (x - (u - 1)) / u.  Within 1 ulp of the
 * exact value, so a last bit may differ from glibc's log1p.  +inf gives +inf and NaN NaN; a
 * negative x is outside its domain. */
M2U_VINLINE double m2u_vlog1p(double x) {
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    double u = 1.0 + x;
    int64_t k;
    double m = m2u_vlog_split(u, &k);
    int small = x < 0.41421353816986084; /* high word below 0x3fda827a: k = 0, f = x, no correction */
    double c = k >= 2 ? 1.0 - (u - x) : x - (u - 1.0);
    c = k < 54 ? c / u : 0.0;
    double f = small ? x : m - 1.0;
    c = small ? 0.0 : c;
    double dk = m2u_vlog_k(small ? 0 : k);
    double hfsq = 0.5 * f * f, s = f / (2.0 + f);
    double r = s * (hfsq + m2u_vlog_r(s * s)) + (dk * ln2_lo + c) - hfsq + f + dk * ln2_hi;
    return x != x || x > 0x1.fffffffffffffp+1023 ? x : r; /* NaN, +inf: themselves */
}

/* log10(x) for a normal x > 0 in double (musl's log10: log(1 + f) split in high and low parts,
 * times log10(e) and log10(2) each in two parts).  Within 1 ulp.  0, negative, subnormal, inf and
 * NaN inputs are outside its domain (callers add a floor first). */
M2U_VINLINE double m2u_vlog10(double x) {
    const double ivln10hi = 4.34294481878168880939e-01, ivln10lo = 2.50829467116452752298e-11,
                 log10_2hi = 3.01029995663611771306e-01, log10_2lo = 3.69423907715893078616e-13;
    int64_t k;
    double f = m2u_vlog_split(x, &k) - 1.0, dk = m2u_vlog_k(k);
    double hfsq = 0.5 * f * f, s = f / (2.0 + f), R = m2u_vlog_r(s * s);
    double hi = f - hfsq;
    uint64_t hb;
    memcpy(&hb, &hi, sizeof hb);
    hb &= 0xffffffff00000000ull;
    memcpy(&hi, &hb, sizeof hi);
    double lo = f - hi - hfsq + s * (hfsq + R);
    double val_hi = hi * ivln10hi, y = dk * log10_2hi;
    double val_lo = dk * log10_2lo + (lo + hi) * ivln10lo + lo * ivln10hi;
    double wv = y + val_hi;
    val_lo += (y - wv) + val_hi;
    return val_lo + wv;
}

/* erf(z) by Abramowitz & Stegun 7.1.26 (see above), in double. */
M2U_VINLINE double m2u_verf_as(double z) {
    double a = z < 0.0 ? -z : z;
    double t = 1.0 / (1.0 + 0.3275911 * a);
    double p = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
    double e = 1.0 - p * m2u_vexp_neg(-a * a);
    return z < 0.0 ? -e : e;
}

/* GELU(x) = x Phi(x) as PyTorch's vectorised CPU kernel computes it, in float:
 * (x * 0.5) * (1 + erf(x * sqrt(1/2))) with Vectorized<float>::erf's A&S 7.1.26 evaluation
 * (t = 1 / (p |z| + 1), the polynomial in t, 1 - r t exp(-z^2)) and the float exponential
 * above.  Twice the values per instruction of the double version.  Within 0.75e-7 |x| (the
 * formula's bound) + 5.6 ulp of x/2 of the exact GELU on [-6, 6] (tests/test_kernels.c): for
 * negative x, 1 + erf cancels in float, in PyTorch's kernel as here. */
M2U_VINLINE float m2u_vgelu(float x) {
    float z = x * 0.70710678f;
    float a = z < 0.0f ? -z : z;
    float t = 1.0f / (0.3275911f * a + 1.0f);
    float r = (((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f;
    float e = 1.0f - r * t * m2u_vexpf_neg(-(a * a));
    float erf = z < 0.0f ? -e : e;
    return (x * 0.5f) * (1.0f + erf);
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
