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

/* AVX-512 (F and DQ), for the few loops that gain from 16 lanes; the same operations per lane,
 * so the same bits. */
#define M2U_AVX512_TARGET __attribute__((target("avx512f,avx512dq,avx2,fma")))

/* 1 when this CPU has AVX-512 F and DQ (cpuid, decided once) and they are not switched off. */
int m2u_avx512(void);
/* want = 0: the 8-lane paths even on an AVX-512 CPU (tests run both); 1: the default.  Returns
 * m2u_avx512() afterwards.  Call it before the kernels run. */
int m2u_avx512_enable(int want);

/* The functions below are written once for a width W of 256 or 512 bits, the intrinsics'
 * names pasted from it; only the steps that select by a comparison differ between the widths,
 * and those are written out in each function.  VMINPS / VMAXPS return their second operand on
 * NaN at both widths. */
#define M2U_VPS(W, op) _mm##W##_##op##_ps
#define M2U_VSET(W, c) _mm##W##_set1_ps(c)

/* vmath.h's m2u_vexpf_neg before the clamp of its result: declares lo (-87) and y */
#define M2U_VEXPF_NEG_CORE(W, v, lo, y)                                                                              \
    const __m##W lo = M2U_VSET(W, -87.0f), y##_sh = M2U_VSET(W, 12582912.0f);                                        \
    /* v > -87 or NaN ? v : -87, then x < 0 or NaN ? x : 0; -0 for +0 changes nothing below */                       \
    __m##W y##_x = M2U_VPS(W, min)(M2U_VPS(W, setzero)(), M2U_VPS(W, max)(lo, v));                                   \
    __m##W y##_u = M2U_VPS(W, add)(M2U_VPS(W, mul)(y##_x, M2U_VSET(W, 1.44269504f)), y##_sh);                        \
    __m##W y##_nf = M2U_VPS(W, sub)(y##_u, y##_sh);                                                                  \
    __m##W y##_p2 = _mm##W##_castsi##W##_ps(                                                                         \
        _mm##W##_slli_epi32(_mm##W##_add_epi32(_mm##W##_castps_si##W(y##_u), _mm##W##_set1_epi32(127)), 23));        \
    __m##W y##_r = M2U_VPS(W, sub)(y##_x, M2U_VPS(W, mul)(y##_nf, M2U_VSET(W, 0.693359375f)));                       \
    y##_r = M2U_VPS(W, sub)(y##_r, M2U_VPS(W, mul)(y##_nf, M2U_VSET(W, -2.12194440e-4f)));                           \
    __m##W y##_p = M2U_VSET(W, 1.9875691500e-4f);                                                                    \
    y##_p = M2U_VPS(W, add)(M2U_VPS(W, mul)(y##_p, y##_r), M2U_VSET(W, 1.3981999507e-3f));                           \
    y##_p = M2U_VPS(W, add)(M2U_VPS(W, mul)(y##_p, y##_r), M2U_VSET(W, 8.3334519073e-3f));                           \
    y##_p = M2U_VPS(W, add)(M2U_VPS(W, mul)(y##_p, y##_r), M2U_VSET(W, 4.1665795894e-2f));                           \
    y##_p = M2U_VPS(W, add)(M2U_VPS(W, mul)(y##_p, y##_r), M2U_VSET(W, 1.6666665459e-1f));                           \
    y##_p = M2U_VPS(W, add)(M2U_VPS(W, mul)(y##_p, y##_r), M2U_VSET(W, 5.0000001201e-1f));                           \
    __m##W y = M2U_VPS(W, mul)(                                                                                      \
        M2U_VPS(W, add)(M2U_VPS(W, add)(M2U_VPS(W, mul)(y##_p, M2U_VPS(W, mul)(y##_r, y##_r)), y##_r),               \
                        M2U_VSET(W, 1.0f)),                                                                          \
        y##_p2)

/* vmath.h's m2u_vexpf_neg on 8 lanes, operation for operation (products and sums rounded
 * separately, as the C build, which does not contract them): the same bits. */
M2U_AVX2_TARGET static inline __m256 m2u_vexpf_neg8(__m256 v) {
    M2U_VEXPF_NEG_CORE(256, v, lo, y);
    return _mm256_andnot_ps(_mm256_cmp_ps(v, lo, _CMP_LT_OQ), y); /* 0 where v < -87 */
}

/* and on 16 */
M2U_AVX512_TARGET static inline __m512 m2u_vexpf_neg16(__m512 v) {
    M2U_VEXPF_NEG_CORE(512, v, lo, y);
    return _mm512_maskz_mov_ps(~_mm512_cmp_ps_mask(v, lo, _CMP_LT_OQ), y);
}

/* m2u_vgelu's erf before its sign (declares z = x / sqrt 2 and e = erf(|z|)); EXPF: the
 * width's m2u_vexpf_neg */
#define M2U_VGELU_CORE(W, x, EXPF, z, e)                                                                             \
    const __m##W e##_one = M2U_VSET(W, 1.0f), e##_sign = M2U_VSET(W, -0.0f);                                         \
    __m##W z = M2U_VPS(W, mul)(x, M2U_VSET(W, 0.70710678f));                                                         \
    __m##W e##_a = M2U_VPS(W, andnot)(e##_sign, z);                                                                  \
    __m##W e##_t = M2U_VPS(W, div)(e##_one, M2U_VPS(W, add)(M2U_VPS(W, mul)(M2U_VSET(W, 0.3275911f), e##_a), e##_one)); \
    __m##W e##_r = M2U_VPS(W, sub)(M2U_VPS(W, mul)(M2U_VSET(W, 1.061405429f), e##_t), M2U_VSET(W, 1.453152027f));    \
    e##_r = M2U_VPS(W, add)(M2U_VPS(W, mul)(e##_r, e##_t), M2U_VSET(W, 1.421413741f));                               \
    e##_r = M2U_VPS(W, sub)(M2U_VPS(W, mul)(e##_r, e##_t), M2U_VSET(W, 0.284496736f));                               \
    e##_r = M2U_VPS(W, add)(M2U_VPS(W, mul)(e##_r, e##_t), M2U_VSET(W, 0.254829592f));                               \
    __m##W e##_ex = EXPF(M2U_VPS(W, xor)(M2U_VPS(W, mul)(e##_a, e##_a), e##_sign));                                  \
    __m##W e = M2U_VPS(W, sub)(e##_one, M2U_VPS(W, mul)(M2U_VPS(W, mul)(e##_r, e##_t), e##_ex))

/* m2u_vgelu (PyTorch's float GELU with the A&S erf) on 8 lanes. */
M2U_AVX2_TARGET static inline __m256 m2u_vgelu8(__m256 x) {
    M2U_VGELU_CORE(256, x, m2u_vexpf_neg8, z, e);
    __m256 erf = _mm256_blendv_ps(e, _mm256_xor_ps(e, e_sign), _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ));
    return _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)), _mm256_add_ps(e_one, erf));
}

/* and on 16 */
M2U_AVX512_TARGET static inline __m512 m2u_vgelu16(__m512 x) {
    M2U_VGELU_CORE(512, x, m2u_vexpf_neg16, z, e);
    __m512 erf = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ), e, _mm512_xor_ps(e, e_sign));
    return _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)), _mm512_add_ps(e_one, erf));
}

#endif
#endif
