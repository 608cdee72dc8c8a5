/* NumPy .npy (format 1.0) writer for float32 / int32 arrays, so any tensor m2u
 * computes can be diffed against Python with np.load. Atomic write. */
#ifndef M2U_NPY_H
#define M2U_NPY_H

#include "dtype.h"

#include <stdint.h>

int m2u_npy_write(const char *path, m2u_dtype dtype, const void *data, int ndim, const int64_t *shape);

#endif
