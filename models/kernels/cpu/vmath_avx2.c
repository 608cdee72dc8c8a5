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

int m2u_avx512(void) {
    static _Atomic int have = -1;
    int h = have;
    if (h < 0) {
        __builtin_cpu_init();
        h = m2u_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
        have = h;
    }
    return h;
}

#endif
