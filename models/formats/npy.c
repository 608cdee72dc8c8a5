#include "npy.h"

#include "fileio.h"
#include "m2u_error.h"

#include <stdio.h>
#include <string.h>

int m2u_npy_write(const char *path, m2u_dtype dtype, const void *data, int ndim, const int64_t *shape) {
    const char *descr = dtype == M2U_F32 ? "<f4" : dtype == M2U_I32 ? "<i4" : dtype == M2U_I64 ? "<i8" : NULL;
    if (!descr) return m2u_fail("%s: npy writer supports F32, I32 and I64, not %s", path, m2u_dtype_name(dtype));
    char header[512], dims[256] = "";
    size_t numel = 1, k = 0;
    for (int i = 0; i < ndim; i++) {
        k += (size_t)snprintf(dims + k, sizeof dims - k, "%lld,%s", (long long)shape[i], i + 1 < ndim ? " " : "");
        numel *= (size_t)shape[i];
    }
    if (ndim > 1) dims[k - 1] = '\0'; /* "(2, 3)" but "(5,)" for one dimension */
    int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
    /* magic(6) + version(2) + len(2) + header, padded with spaces and ended by \n to a multiple of 64 */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    memset(header + n, ' ', pad);
    header[n + pad] = '\n';
    size_t hlen = (size_t)n + pad + 1;
    m2u_atomic_file af;
    if (m2u_atomic_open(&af, path)) return -1;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    size_t bytes = numel * m2u_dtype_size(dtype);
    if (fwrite(pre, 1, 10, af.fp) != 10 || fwrite(header, 1, hlen, af.fp) != hlen ||
        (bytes && fwrite(data, 1, bytes, af.fp) != bytes)) {
        m2u_atomic_abort(&af);
        return m2u_fail("%s: write failed", path);
    }
    return m2u_atomic_commit(&af);
}
