/* dtype names/sizes and the bf16/f16 <-> f32 conversions.
 *
 * Expected bit patterns were computed once with torch 2.5.1 (bf16) and numpy 1.26.4
 * (f16, astype(np.float16)), both round-to-nearest-even, and are hard-coded here. */
#include "dtype.h"
#include "m2u_error.h"
#include "test_util.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static float f_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static uint32_t u_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static void test_names(void) {
    static const size_t sizes[M2U_DTYPE_COUNT] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};
    for (int i = 0; i < M2U_DTYPE_COUNT; i++) {
        m2u_dtype t;
        CHECK(m2u_dtype_size((m2u_dtype)i) == sizes[i], "size of %d", i);
        CHECK(m2u_dtype_from_name(m2u_dtype_name((m2u_dtype)i), &t) == 0 && t == (m2u_dtype)i, "name round trip %d",
              i);
    }
    m2u_dtype t;
    CHECK(strcmp(m2u_dtype_name(M2U_BF16), "BF16") == 0 && strcmp(m2u_dtype_name(M2U_BOOL), "BOOL") == 0, "names");
    CHECK(m2u_dtype_from_name("F8_E4M3", &t) == -1, "F8_E4M3 is not supported");
    CHECK(m2u_dtype_from_name("f32", &t) == -1, "names are case-sensitive");
    CHECK(m2u_dtype_from_name("", &t) == -1, "empty name");
    CHECK(m2u_dtype_size(M2U_DTYPE_COUNT) == 0 && strcmp(m2u_dtype_name(M2U_DTYPE_COUNT), "?") == 0, "out of range");
}

static void test_bf16(void) {
    static const struct {
        uint32_t in;
        uint16_t out;
        const char *why;
    } cases[] = {
        {0x3f800000u, 0x3f80, "1.0"},
        {0x80000000u, 0x8000, "-0.0 keeps its sign"},
        {0x3f808000u, 0x3f80, "1 + 2^-8: tie, lsb even -> down"},
        {0x3f818000u, 0x3f82, "tie, lsb odd -> up"},
        {0x3f808001u, 0x3f81, "just above the tie -> up"},
        {0x7f7f7fffu, 0x7f7f, "just below the overflow tie"},
        {0x7f7f8000u, 0x7f80, "tie above the largest bf16 -> inf"},
        {0x7f7fffffu, 0x7f80, "FLT_MAX rounds to inf"},
        {0x7f800000u, 0x7f80, "+inf"},
        {0xff800000u, 0xff80, "-inf"},
        {0x00000001u, 0x0000, "smallest f32 subnormal -> +0"},
        {0x00008000u, 0x0000, "subnormal tie, lsb even -> down"},
        {0x00018000u, 0x0002, "subnormal tie, lsb odd -> up"},
        {0x00010000u, 0x0001, "bf16 subnormal kept exactly"},
        {0x7fc00000u, 0x7fc0, "quiet NaN"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = m2u_f32_to_bf16(f_of(cases[i].in));
        CHECK(got == cases[i].out, "bf16(0x%08x) = 0x%04x, want 0x%04x (%s)", cases[i].in, got, cases[i].out,
              cases[i].why);
    }
    /* NaNs stay NaN and quiet (naive rounding turns 0x7f800001 into inf, 0x7fffffff into -0),
     * sign kept. */
    const uint32_t nans[] = {0x7f800001u, 0x7fffffffu, 0xffa00000u, 0xff800001u};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        uint16_t h = m2u_f32_to_bf16(f_of(nans[i]));
        CHECK((h & 0x7f80) == 0x7f80 && (h & 0x0040) && (h >> 15) == (nans[i] >> 31), "bf16 NaN 0x%08x -> 0x%04x",
              nans[i], h);
        CHECK(isnan(m2u_bf16_to_f32(h)), "NaN lost");
    }
    /* widening is exact: bits move up by 16 */
    CHECK(u_of(m2u_bf16_to_f32(0x0001)) == 0x00010000u, "bf16 subnormal widening");
    CHECK(u_of(m2u_bf16_to_f32(0xff80)) == 0xff800000u, "bf16 -inf widening");
    CHECK(isnan(m2u_bf16_to_f32(0xffc1)), "bf16 NaN widening");
    /* every non-NaN bf16 survives f32 and back */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7f80) == 0x7f80 && (h & 0x7f)) continue;
        if (m2u_f32_to_bf16(m2u_bf16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK(bad == 0, "%d bf16 values do not round-trip", bad);
}

static void test_f16(void) {
    static const struct {
        uint16_t h;
        uint32_t f;
        const char *why;
    } widen[] = {
        {0x3c00, 0x3f800000u, "1.0"},
        {0xc000, 0xc0000000u, "-2.0"},
        {0x8000, 0x80000000u, "-0.0"},
        {0x0001, 0x33800000u, "smallest subnormal 2^-24"},
        {0x8001, 0xb3800000u, "-2^-24"},
        {0x03ff, 0x387fc000u, "largest subnormal"},
        {0x0400, 0x38800000u, "smallest normal 2^-14"},
        {0x7bff, 0x477fe000u, "65504"},
        {0x7c00, 0x7f800000u, "+inf"},
        {0xfc00, 0xff800000u, "-inf"},
        {0x7e00, 0x7fc00000u, "quiet NaN"},
        {0x7c01, 0x7f802000u, "signalling NaN payload kept"},
    };
    /* every float16 against the value formula: (-1)^s 2^(e-15) (1 + m/1024), subnormals
     * 2^-14 m/1024, Inf and NaN with the payload moved up, through the scalar and the
     * bulk conversion */
    static uint16_t all_h[65536];
    static float all_f[65536];
    for (uint32_t h = 0; h < 65536; h++) all_h[h] = (uint16_t)h;
    CHECK(m2u_convert_to_f32(M2U_F16, all_h, all_f, 65536) == 0, "bulk f16 conversion");
    int bad_f16 = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t sign = (h & 0x8000u) << 16, e = (h >> 10) & 31u, m = h & 0x3ffu, want;
        if (e == 31) want = sign | 0x7f800000u | m << 13;
        else want = sign | u_of(ldexpf(e ? (float)(1024 + m) : (float)m, (e ? (int)e : 1) - 25));
        if (u_of(m2u_f16_to_f32((uint16_t)h)) != want || u_of(all_f[h]) != want) {
            if (bad_f16++ < 5)
                CHECK(0, "f16 0x%04x -> 0x%08x / bulk 0x%08x, want 0x%08x", h, u_of(m2u_f16_to_f32((uint16_t)h)),
                      u_of(all_f[h]), want);
        }
    }
    CHECK(bad_f16 == 0, "%d float16 values widened wrongly", bad_f16);
    for (size_t i = 0; i < sizeof widen / sizeof widen[0]; i++) {
        uint32_t got = u_of(m2u_f16_to_f32(widen[i].h));
        CHECK(got == widen[i].f, "f32(f16 0x%04x) = 0x%08x, want 0x%08x (%s)", widen[i].h, got, widen[i].f,
              widen[i].why);
    }
    static const struct {
        uint32_t f;
        uint16_t h;
        const char *why;
    } narrow[] = {
        {0x3f800000u, 0x3c00, "1.0"},
        {0x3dcccccdu, 0x2e66, "0.1f"},
        {0x80000000u, 0x8000, "-0.0"},
        {0x477fe000u, 0x7bff, "65504"},
        {0x477fefffu, 0x7bff, "just below the overflow tie"},
        {0x477ff000u, 0x7c00, "65520: tie -> even -> inf"},
        {0xc77ff000u, 0xfc00, "-65520 -> -inf"},
        {0x7f800000u, 0x7c00, "+inf"},
        {0x3f801000u, 0x3c00, "1 + 2^-11: tie, lsb even -> down"},
        {0x3f803000u, 0x3c02, "1 + 3*2^-11: tie, lsb odd -> up"},
        {0x33800000u, 0x0001, "2^-24 -> smallest subnormal"},
        {0x33000000u, 0x0000, "2^-25: tie -> even -> 0"},
        {0x33000001u, 0x0001, "just above 2^-25 -> 1 unit"},
        {0x33c00000u, 0x0002, "3*2^-25: tie -> even -> 2 units"},
        {0x387fc000u, 0x03ff, "largest subnormal"},
        {0x387fe000u, 0x0400, "1023.5 units: tie -> even -> smallest normal"},
        {0x387fffffu, 0x0400, "just below 2^-14 rounds up to it"},
        {0x38800000u, 0x0400, "2^-14"},
        {0x322bcc77u, 0x0000, "1e-8 underflows to +0"},
        {0x00000001u, 0x0000, "f32 subnormal -> +0"},
        {0x80000001u, 0x8000, "-f32 subnormal -> -0"},
        {0x7fc00000u, 0x7e00, "NaN"},
        {0xffc00000u, 0xfe00, "-NaN"},
        {0x7f800001u, 0x7e00, "signalling NaN -> quiet"},
    };
    for (size_t i = 0; i < sizeof narrow / sizeof narrow[0]; i++) {
        uint16_t got = m2u_f32_to_f16(f_of(narrow[i].f));
        CHECK(got == narrow[i].h, "f16(0x%08x) = 0x%04x, want 0x%04x (%s)", narrow[i].f, got, narrow[i].h,
              narrow[i].why);
    }
    /* Exhaustive over finite f16: every value round-trips, and the exact midpoint between two
     * neighbours (representable in f32: 12 significant bits) rounds to the even one, while the
     * f32 values just either side of it round to the nearer neighbour. */
    int bad_rt = 0, bad_tie = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        for (uint32_t s = 0; s <= 0x8000; s += 0x8000) {
            uint16_t a = (uint16_t)(h | s), b = (uint16_t)((h + 1) | s);
            if (m2u_f32_to_f16(m2u_f16_to_f32(a)) != a) bad_rt++;
            if (h + 1 == 0x7c00) continue; /* the inf boundary is covered above */
            float fa = m2u_f16_to_f32(a), fb = m2u_f16_to_f32(b);
            float mid = (float)(((double)fa + (double)fb) / 2);
            if ((double)mid * 2 != (double)fa + (double)fb) {
                bad_tie++;
                continue;
            }
            uint16_t even = (a & 1) ? b : a;
            if (m2u_f32_to_f16(mid) != even) bad_tie++;
            if (m2u_f32_to_f16(nextafterf(mid, fa)) != a) bad_tie++;
            if (m2u_f32_to_f16(nextafterf(mid, fb)) != b) bad_tie++;
        }
    }
    CHECK(bad_rt == 0, "%d f16 values do not round-trip", bad_rt);
    CHECK(bad_tie == 0, "%d f16 rounding-boundary errors", bad_tie);
}

static void test_convert(void) {
    /* unaligned sources: start one byte into the buffer */
    unsigned char buf[1 + 8 * 3];
    double d[3] = {0.1, -1e300, 65504.0};
    memcpy(buf + 1, d, sizeof d);
    float out[3];
    CHECK(m2u_convert_to_f32(M2U_F64, buf + 1, out, 3) == 0, "F64 convert");
    CHECK(out[0] == 0.1f && isinf(out[1]) && out[1] < 0 && out[2] == 65504.0f, "F64 values");
    uint16_t h[3] = {0x3c00, 0x0001, 0xfc00};
    memcpy(buf + 1, h, sizeof h);
    CHECK(m2u_convert_to_f32(M2U_F16, buf + 1, out, 3) == 0, "F16 convert");
    CHECK(out[0] == 1.0f && u_of(out[1]) == 0x33800000u && isinf(out[2]) && out[2] < 0, "F16 values");
    uint16_t b[2] = {0x4049, 0xbf80};
    memcpy(buf + 1, b, sizeof b);
    CHECK(m2u_convert_to_f32(M2U_BF16, buf + 1, out, 2) == 0 && out[0] == 3.140625f && out[1] == -1.0f, "BF16");
    float src[3] = {1.0f, 0.1f, -65520.0f};
    CHECK(m2u_convert_from_f32(M2U_F16, src, buf + 1, 3) == 0, "to F16");
    memcpy(h, buf + 1, 6);
    CHECK(h[0] == 0x3c00 && h[1] == 0x2e66 && h[2] == 0xfc00, "to F16 bits %04x %04x %04x", h[0], h[1], h[2]);
    CHECK(m2u_convert_from_f32(M2U_BF16, src, buf + 1, 2) == 0, "to BF16");
    memcpy(b, buf + 1, 4);
    CHECK(b[0] == 0x3f80 && b[1] == 0x3dcd, "to BF16 bits %04x %04x", b[0], b[1]);
    CHECK(m2u_convert_from_f32(M2U_F32, src, out, 3) == 0 && memcmp(out, src, sizeof src) == 0, "F32 copy");
    CHECK(m2u_convert_to_f32(M2U_F32, NULL, out, 0) == 0, "empty F32 convert");
    CHECK(m2u_convert_to_f32(M2U_I64, buf, out, 1) == -1 && strstr(m2u_last_error(), "I64"), "I64 refused");
    CHECK(m2u_convert_from_f32(M2U_I8, src, buf, 1) == -1 && strstr(m2u_last_error(), "I8"), "I8 refused");
}

int main(void) {
    test_names();
    test_bf16();
    test_f16();
    test_convert();
    return t_finish("test_dtype");
}
