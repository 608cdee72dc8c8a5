/* In-process registration of the HDF5 zstd filter (registered id 32015).
 *
 * m2u writes and reads its shards with the filter compiled in, so it never
 * depends on HDF5_PLUGIN_PATH; other readers use the plugin built from
 * data/dataset/h5zstd/ (same code, see data/dataset/h5zstd/zstd_filter_impl.h). */
#ifndef M2U_ZSTD_FILTER_H
#define M2U_ZSTD_FILTER_H

#define M2U_ZSTD_FILTER_ID 32015
#define M2U_ZSTD_DEFAULT_LEVEL 3

/* Register the filter with the HDF5 library of this process.  Idempotent and
 * cheap: registering again replaces the class with the identical one, which
 * also restores it after an H5close() re-initialised the library. */
int m2u_zstd_filter_register(void);

#endif
