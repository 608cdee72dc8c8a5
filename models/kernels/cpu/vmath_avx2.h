/* vmath.h's float functions on 8 AVX2 lanes, operation for operation (products and sums
 * rounded separately: the C build does not contract them under -std=c11), so a value comes out
 * with the same bits as the scalar function's.  Only for x86-64 with GCC or clang; callers
 * check m2u_avx2_fma() at run time. */
#ifndef M2U_VMATH_AVX2_H
#define M2U_VMATH_AVX2_H

#if defined(__x86_64__) && defined(__GNUC__)
#define M2U_HAVE_AVX2_PATHS 1
#include <immintrin.h>

#define M2U_AVX2_TARGET __attribute__((target("avx2,fma")))

/* 1 when this CPU has AVX2 and FMA (cpuid, decided once). */
int m2u_avx2_fma(void);

/* vmath.h's m2u_vexpf_neg on 8 lanes, operation for operation (products and sums rounded
 * separately, as the C build, which does not contract them): the same bits. */
M2U_AVX2_TARGET static inline __m256 m2u_vexpf_neg8(__m256 v) {
    const __m256 lo = _mm256_set1_ps(-87.0f), zero = _mm256_setzero_ps(), sh = _mm256_set1_ps(12582912.0f);
    /* v > -87 or NaN ? v : -87, then x < 0 or NaN ? x : 0 (max and min return their second
     * operand on NaN); -0 for +0 changes nothing below */
    __m256 x = _mm256_min_ps(zero, _mm256_max_ps(lo, v));
    __m256 u = _mm256_add_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)), sh);
    __m256 nf = _mm256_sub_ps(u, sh);
    __m256 p2 = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_castps_si256(u), _mm256_set1_epi32(127)), 23));
    __m256 r = _mm256_sub_ps(x, _mm256_mul_ps(nf, _mm256_set1_ps(0.693359375f)));
    r = _mm256_sub_ps(r, _mm256_mul_ps(nf, _mm256_set1_ps(-2.12194440e-4f)));
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_add_ps(_mm256_mul_ps(p, r), _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(p, _mm256_mul_ps(r, r)), r), _mm256_set1_ps(1.0f)), p2);
    return _mm256_andnot_ps(_mm256_cmp_ps(v, lo, _CMP_LT_OQ), y);
}

/* AVX-512 (F and DQ), for the few loops that gain from 16 lanes; the same operations per lane,
 * so the same bits. */
#define M2U_AVX512_TARGET __attribute__((target("avx512f,avx512dq,avx2,fma")))

/* 1 when this CPU has AVX-512 F and DQ (cpuid, decided once). */
int m2u_avx512(void);

/* m2u_vexpf_neg8 on 16 lanes, operation for operation: the same bits.  (VMINPS / VMAXPS
 * return the second operand on NaN in their 512-bit forms too.) */
M2U_AVX512_TARGET static inline __m512 m2u_vexpf_neg16(__m512 v) {
    const __m512 lo = _mm512_set1_ps(-87.0f), zero = _mm512_setzero_ps(), sh = _mm512_set1_ps(12582912.0f);
    __m512 x = _mm512_min_ps(zero, _mm512_max_ps(lo, v));
    __m512 u = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)), sh);
    __m512 nf = _mm512_sub_ps(u, sh);
    __m512 p2 = _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_castps_si512(u), _mm512_set1_epi32(127)), 23));
    __m512 r = _mm512_sub_ps(x, _mm512_mul_ps(nf, _mm512_set1_ps(0.693359375f)));
    r = _mm512_sub_ps(r, _mm512_mul_ps(nf, _mm512_set1_ps(-2.12194440e-4f)));
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_add_ps(_mm512_mul_ps(p, r), _mm512_set1_ps(5.0000001201e-1f));
    __m512 y = _mm512_mul_ps(_mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(p, _mm512_mul_ps(r, r)), r), _mm512_set1_ps(1.0f)), p2);
    /* lanes where v < -87 (ordered) are 0, as the 8-lane version's andnot */
    return _mm512_maskz_mov_ps(~_mm512_cmp_ps_mask(v, lo, _CMP_LT_OQ), y);
}

/* m2u_vgelu (PyTorch's float GELU with the A&S erf) on 8 lanes. */
M2U_AVX2_TARGET static inline __m256 m2u_vgelu8(__m256 x) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678f));
    __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
    __m256 t = _mm256_div_ps(one, _mm256_add_ps(_mm256_mul_ps(_mm256_set1_ps(0.3275911f), a), one));
    __m256 r = _mm256_sub_ps(_mm256_mul_ps(_mm256_set1_ps(1.061405429f), t), _mm256_set1_ps(1.453152027f));
    r = _mm256_add_ps(_mm256_mul_ps(r, t), _mm256_set1_ps(1.421413741f));
    r = _mm256_sub_ps(_mm256_mul_ps(r, t), _mm256_set1_ps(0.284496736f));
    r = _mm256_add_ps(_mm256_mul_ps(r, t), _mm256_set1_ps(0.254829592f));
    __m256 ex = m2u_vexpf_neg8(_mm256_xor_ps(_mm256_mul_ps(a, a), _mm256_set1_ps(-0.0f)));
    __m256 e = _mm256_sub_ps(one, _mm256_mul_ps(_mm256_mul_ps(r, t), ex));
    __m256 erf = _mm256_blendv_ps(e, _mm256_xor_ps(e, _mm256_set1_ps(-0.0f)), _mm256_cmp_ps(z, zero, _CMP_LT_OQ));
    return _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)), _mm256_add_ps(one, erf));
}

/* m2u_vgelu8 on 16 lanes, operation for operation: the same bits. */
M2U_AVX512_TARGET static inline __m512 m2u_vgelu16(__m512 x) {
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f), sign = _mm512_set1_ps(-0.0f);
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678f));
    __m512 a = _mm512_andnot_ps(sign, z);
    __m512 t = _mm512_div_ps(one, _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(0.3275911f), a), one));
    __m512 r = _mm512_sub_ps(_mm512_mul_ps(_mm512_set1_ps(1.061405429f), t), _mm512_set1_ps(1.453152027f));
    r = _mm512_add_ps(_mm512_mul_ps(r, t), _mm512_set1_ps(1.421413741f));
    r = _mm512_sub_ps(_mm512_mul_ps(r, t), _mm512_set1_ps(0.284496736f));
    r = _mm512_add_ps(_mm512_mul_ps(r, t), _mm512_set1_ps(0.254829592f));
    __m512 ex = m2u_vexpf_neg16(_mm512_xor_ps(_mm512_mul_ps(a, a), sign));
    __m512 e = _mm512_sub_ps(one, _mm512_mul_ps(_mm512_mul_ps(r, t), ex));
    __m512 erf = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(z, zero, _CMP_LT_OQ), e, _mm512_xor_ps(e, sign));
    return _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)), _mm512_add_ps(one, erf));
}

#endif
#endif
