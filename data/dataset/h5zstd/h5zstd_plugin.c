/* Loadable HDF5 plugin for the zstd filter (id 32015), so tools that do not
 * link m2u (h5py, h5dump, h5ls -d) read m2u shards:
 *
 *   HDF5_PLUGIN_PATH=<build>/hdf5-plugins h5dump -d /clip_start shard-00000.h5
 *
 * Debian 12 ships no zstd HDF5 filter (hdf5-filter-plugin has only bz2/lz4),
 * hence this module.  The filter itself lives in zstd_filter_impl.h, shared
 * with m2u's in-process registration so both always agree on the format. */
#include "zstd_filter_impl.h"

#include <H5PLextern.h>

H5PL_type_t H5PLget_plugin_type(void) { return H5PL_TYPE_FILTER; }

const void *H5PLget_plugin_info(void) { return &m2u_h5z_zstd_class; }
