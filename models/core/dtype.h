/* Element types of stored tensors and conversions to the fp32 we compute in.
 *
 * m2u computes in fp32 only.  Frozen weights may stay in their stored bf16/fp16
 * (a 7B model is 13 GiB as bf16, 26 GiB as fp32) and are widened row-block by
 * row-block just before each matmul. */
#ifndef M2U_DTYPE_H
#define M2U_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    M2U_F32 = 0,
    M2U_F16,
    M2U_BF16,
    M2U_F64,
    M2U_I64,
    M2U_I32,
    M2U_I16,
    M2U_I8,
    M2U_U8,
    M2U_BOOL,
    M2U_DTYPE_COUNT
} m2u_dtype;

/* Bytes per element. */
size_t m2u_dtype_size(m2u_dtype t);
/* safetensors dtype string ("F32", "BF16", ...). */
const char *m2u_dtype_name(m2u_dtype t);
/* Parse a safetensors dtype string; returns -1 if unknown. */
int m2u_dtype_from_name(const char *s, m2u_dtype *t);

static inline float m2u_bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}
/* Round-to-nearest-even, NaN kept quiet (as torch does). */
uint16_t m2u_f32_to_bf16(float f);
float m2u_f16_to_f32(uint16_t h);
uint16_t m2u_f32_to_f16(float f);

/* Convert n elements of a floating type (F32/F16/BF16/F64) to fp32.  Source may be unaligned. */
int m2u_convert_to_f32(m2u_dtype src_type, const void *src, float *dst, size_t n);
/* Convert n fp32 values to F32/F16/BF16 storage. */
int m2u_convert_from_f32(m2u_dtype dst_type, const float *src, void *dst, size_t n);

#endif
