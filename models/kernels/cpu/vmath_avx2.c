#include "vmath_avx2.h"

#include <stddef.h>

#ifdef M2U_HAVE_AVX2_PATHS

int m2u_avx2_fma(void) {
    /* -1 until decided; threads that race here decide the same way */
    static _Atomic int have = -1;
    int h = have;
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        have = h;
    }
    return h;
}

/* -1 until decided (m2u_avx512_enable(1) on first use) */
static _Atomic int g_avx512 = -1;

int m2u_avx512_enable(int want) {
    __builtin_cpu_init();
    int h = want && m2u_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    g_avx512 = h;
    return h;
}

int m2u_avx512(void) {
    int h = g_avx512;
    return h >= 0 ? h : m2u_avx512_enable(1);
}

#endif
