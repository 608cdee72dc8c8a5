/* In-process registration of filter 32015; the filter body is shared with the
 * plugin through h5zstd/zstd_filter_impl.h. */
#include "zstd_filter.h"

#include "h5zstd/zstd_filter_impl.h"
#include "m2u_error.h"

_Static_assert(M2U_ZSTD_FILTER_ID == M2U_H5Z_ZSTD_ID, "filter id mismatch");
_Static_assert(M2U_ZSTD_DEFAULT_LEVEL == M2U_H5Z_ZSTD_DEFAULT_LEVEL, "default level mismatch");

int m2u_zstd_filter_register(void) {
    /* No static "done" flag: after H5close() the library forgets registered
     * filters, and H5Zregister on an already registered id just replaces it. */
    /* Keep HDF5 from printing its error stack: library code never prints. */
    H5E_auto2_t func = NULL;
    void *data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &func, &data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    herr_t rc = H5Zregister(&m2u_h5z_zstd_class);
    H5Eset_auto2(H5E_DEFAULT, func, data);
    if (rc < 0) return m2u_fail("HDF5: cannot register the zstd filter (id %d)", M2U_ZSTD_FILTER_ID);
    return 0;
}
