#include "dtype.h"

#include "m2u_error.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} k_types[M2U_DTYPE_COUNT] = {
    [M2U_F32] = {"F32", 4}, [M2U_F16] = {"F16", 2}, [M2U_BF16] = {"BF16", 2}, [M2U_F64] = {"F64", 8},
    [M2U_I64] = {"I64", 8}, [M2U_I32] = {"I32", 4}, [M2U_I16] = {"I16", 2},   [M2U_I8] = {"I8", 1},
    [M2U_U8] = {"U8", 1},   [M2U_BOOL] = {"BOOL", 1},
};

size_t m2u_dtype_size(m2u_dtype t) { return (unsigned)t < M2U_DTYPE_COUNT ? k_types[t].size : 0; }

const char *m2u_dtype_name(m2u_dtype t) { return (unsigned)t < M2U_DTYPE_COUNT ? k_types[t].name : "?"; }

int m2u_dtype_from_name(const char *s, m2u_dtype *t) {
    for (int i = 0; i < M2U_DTYPE_COUNT; i++)
        if (strcmp(s, k_types[i].name) == 0) {
            *t = (m2u_dtype)i;
            return 0;
        }
    return -1;
}

uint16_t m2u_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Branch-free, so the bulk loop (m2u_convert_to_f32) vectorizes: the
 * exponent is rebiased by adding (127 - 15) << 23; Inf/NaN (exponent 31) get
 * the rest of the way to 255 (payload kept, as stored); zero and subnormals
 * (exponent 0) are made 2^-14 * (1 + man/1024) and 2^-14 is subtracted,
 * which is exact and leaves man * 2^-24 (and +0 for 0, the sign ORed after).
 * Equal bit for bit to the branchy definition on all 65536 inputs
 * (test_dtype checks every one against the value formula). */
static inline float f16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)(h & 0x7fffu) << 13;
    uint32_t exp = u & 0x0f800000u;
    uint32_t is_special = 0u - (uint32_t)(exp == 0x0f800000u), is_small = 0u - (uint32_t)(exp == 0); /* masks */
    u += (uint32_t)(127 - 15) << 23;
    u += is_special & ((uint32_t)(128 - 16) << 23);
    uint32_t sub = u + (1u << 23);
    float fs, tiny = 6.103515625e-05f; /* 2^-14 */
    memcpy(&fs, &sub, 4);
    fs -= tiny;
    uint32_t us;
    memcpy(&us, &fs, 4);
    u = (us & is_small) | (u & ~is_small);
    u |= (uint32_t)(h & 0x8000u) << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float m2u_f16_to_f32(uint16_t h) { return f16_to_f32(h); }

uint16_t m2u_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t absu = u & 0x7fffffffu;
    if (absu > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
    if (absu >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* overflow (rounds to inf) */
    if (absu < 0x38800000u) { /* f16 subnormal or zero: count units of 2^-24, round half to even */
        float a;
        memcpy(&a, &absu, 4);
        uint32_t r = (uint32_t)lrintf(a * 16777216.0f); /* exact scaling by 2^24; 0x400 = smallest normal */
        return (uint16_t)(sign | r);
    }
    uint32_t r = absu - 0x38000000u; /* rebias 127 -> 15 */
    uint32_t out = r >> 13;
    uint32_t rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (out & 1))) out++;
    return (uint16_t)(sign | out);
}

/* GCC's -O2 does not vectorize loops by itself; this one is most of the
 * per-element cost of reading float16 features (shard reader, checkpoints). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("tree-vectorize")))
#endif
static void f16_to_f32_n(const unsigned char *restrict s, float *restrict dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, s + 2 * i, 2);
        dst[i] = f16_to_f32(h);
    }
}

int m2u_convert_to_f32(m2u_dtype src_type, const void *src, float *dst, size_t n) {
    const unsigned char *s = src;
    switch (src_type) {
    case M2U_F32:
        if (n) memcpy(dst, src, n * 4); /* empty tensors have data == NULL; memcpy(NULL) is UB */
        return 0;
    case M2U_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = m2u_bf16_to_f32(h);
        }
        return 0;
    case M2U_F16:
        f16_to_f32_n(s, dst, n);
        return 0;
    case M2U_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, s + 8 * i, 8);
            dst[i] = (float)d;
        }
        return 0;
    default: return m2u_fail("cannot convert %s to F32", m2u_dtype_name(src_type));
    }
}

int m2u_convert_from_f32(m2u_dtype dst_type, const float *src, void *dst, size_t n) {
    unsigned char *d = dst;
    switch (dst_type) {
    case M2U_F32:
        if (n) memcpy(dst, src, n * 4); /* empty tensors have data == NULL; memcpy(NULL) is UB */
        return 0;
    case M2U_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = m2u_f32_to_bf16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        return 0;
    case M2U_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = m2u_f32_to_f16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        return 0;
    default: return m2u_fail("cannot convert F32 to %s", m2u_dtype_name(dst_type));
    }
}
