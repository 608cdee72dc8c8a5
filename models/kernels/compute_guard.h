/* Force-included (gcc -include, see CMakeLists.txt) into every library above the kernels:
 * BLAS and the OpenMP runtime belong to models/kernels/cpu alone, so that a second backend
 * (CUDA) sees every computation through the op table.  Naming a BLAS or OpenMP function there
 * (or including cblas.h / omp.h, which declare them) is a compile error; an `omp` pragma is one
 * already (no -fopenmp above the kernels, and -Wall -Werror rejects unknown pragmas).  Kernel
 * code does not get this header.  Thread counts: m2u_set_threads (backend.h). */
#ifndef M2U_COMPUTE_GUARD_H
#define M2U_COMPUTE_GUARD_H
#pragma GCC poison cblas_sgemm cblas_sgemv cblas_saxpy cblas_sdot cblas_sscal cblas_scopy cblas_snrm2
#pragma GCC poison cblas_dgemm cblas_dgemv cblas_daxpy cblas_ddot cblas_dscal cblas_dsyrk cblas_dnrm2
#pragma GCC poison omp_set_num_threads omp_get_max_threads omp_get_num_threads omp_get_thread_num
#endif
