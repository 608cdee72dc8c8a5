/* The HDF5 zstd filter (registered id 32015), shared by the in-process
 * registration (data/dataset/zstd_filter.c, linked into m2u_data) and the loadable
 * plugin (data/dataset/h5zstd/h5zstd_plugin.c, for h5py / h5dump).  It is a header of
 * static functions so both binaries compile the very same code without the
 * plugin having to link m2u's libraries.
 *
 * Wire format (compatible with aparamon/HDF5Plugin-Zstandard and the HDF Group's
 * hdf5_plugins zstd filter): each chunk is one complete zstd frame;
 * cd_values[0] = compression level (0 or absent = 3; clamped to zstd's range).
 * We write the content size and a frame checksum, so corruption of a chunk is
 * detected on read instead of yielding silently wrong samples.  Decoding does
 * not rely on the content size: frames written by other encoders without it
 * (ZSTD_CONTENTSIZE_UNKNOWN) are decoded by streaming into a growing buffer.
 *
 * The filter callback cannot report a message: per HDF5's contract it returns
 * 0 on failure and HDF5 pushes "filter returned failure" onto its error stack,
 * which the shard reader turns into a message naming the file. */
#ifndef M2U_ZSTD_FILTER_IMPL_H
#define M2U_ZSTD_FILTER_IMPL_H

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#define M2U_H5Z_ZSTD_ID 32015
#define M2U_H5Z_ZSTD_DEFAULT_LEVEL 3

/* Largest chunk HDF5 can hold (4 GiB); bounds what a corrupt header can make us allocate. */
#define M2U_H5Z_ZSTD_MAX_OUT ((unsigned long long)0xFFFFFFFFu)

static size_t m2u_h5z_zstd_decode(size_t nbytes, size_t *buf_size, void **buf) {
    unsigned long long size = ZSTD_getFrameContentSize(*buf, nbytes);
    if (size == ZSTD_CONTENTSIZE_ERROR) return 0;
    if (size != ZSTD_CONTENTSIZE_UNKNOWN && ZSTD_findFrameCompressedSize(*buf, nbytes) == nbytes) {
        /* Single frame with a declared size: decode in one call into an exact buffer. */
        if (size > M2U_H5Z_ZSTD_MAX_OUT) return 0;
        void *out = malloc(size ? (size_t)size : 1);
        if (!out) return 0;
        size_t got = ZSTD_decompress(out, (size_t)size, *buf, nbytes);
        if (ZSTD_isError(got) || got != size) {
            free(out);
            return 0;
        }
        free(*buf);
        *buf = out;
        *buf_size = size ? (size_t)size : 1;
        return (size_t)size;
    }
    /* Unknown content size (or several frames): stream into a buffer that doubles. */
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!dctx) return 0;
    size_t cap = nbytes * 4 < ZSTD_DStreamOutSize() ? ZSTD_DStreamOutSize() : nbytes * 4;
    unsigned char *out = malloc(cap);
    size_t used = 0, ret = 1;
    ZSTD_inBuffer in = {*buf, nbytes, 0};
    while (out) {
        if (used == cap) {
            if (cap >= M2U_H5Z_ZSTD_MAX_OUT) break;
            size_t ncap = cap * 2;
            unsigned char *grown = realloc(out, ncap);
            if (!grown) break;
            out = grown;
            cap = ncap;
        }
        ZSTD_outBuffer ob = {out, cap, used};
        ret = ZSTD_decompressStream(dctx, &ob, &in);
        used = ob.pos;
        if (ZSTD_isError(ret)) break;
        /* ret == 0: a frame ended; stop once all input is consumed and flushed. */
        if (in.pos == in.size && ret == 0) break;
        if (in.pos == in.size && ob.pos < ob.size) {
            ret = 1; /* input ended inside a frame: truncated chunk */
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    if (!out || ZSTD_isError(ret) || ret != 0 || in.pos != in.size) {
        free(out);
        return 0;
    }
    free(*buf);
    *buf = out;
    *buf_size = cap;
    return used;
}

static size_t m2u_h5z_zstd_encode(int level, size_t nbytes, size_t *buf_size, void **buf) {
    size_t cap = ZSTD_compressBound(nbytes);
    void *out = malloc(cap);
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    size_t got = 0;
    if (out && cctx && !ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) &&
        !ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)) &&
        !ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1)))
        got = ZSTD_compress2(cctx, out, cap, *buf, nbytes);
    ZSTD_freeCCtx(cctx);
    if (!out || !cctx || ZSTD_isError(got) || got == 0) {
        free(out);
        return 0;
    }
    free(*buf);
    *buf = out;
    *buf_size = cap;
    return got;
}

static size_t m2u_h5z_zstd_filter(unsigned int flags, size_t cd_nelmts, const unsigned int cd_values[],
                                  size_t nbytes, size_t *buf_size, void **buf) {
    if (flags & H5Z_FLAG_REVERSE) return m2u_h5z_zstd_decode(nbytes, buf_size, buf);
    /* cd_values are unsigned in HDF5; zstd's fast modes are negative levels, so reinterpret. */
    int level = cd_nelmts > 0 ? (int)cd_values[0] : 0;
    if (level == 0) level = M2U_H5Z_ZSTD_DEFAULT_LEVEL;
    if (level < ZSTD_minCLevel()) level = ZSTD_minCLevel();
    if (level > ZSTD_maxCLevel()) level = ZSTD_maxCLevel();
    return m2u_h5z_zstd_encode(level, nbytes, buf_size, buf);
}

/* The filter class; identical in the plugin and the in-process registration. */
static const H5Z_class2_t m2u_h5z_zstd_class = {
    H5Z_CLASS_T_VERS,                 /* version of this struct */
    (H5Z_filter_t)M2U_H5Z_ZSTD_ID,    /* registered filter id */
    1,                                /* encoder present */
    1,                                /* decoder present */
    "zstd",                           /* name, as h5py reports it */
    NULL,                             /* can_apply: any type, any chunk */
    NULL,                             /* set_local: cd_values are used as given */
    (H5Z_func_t)m2u_h5z_zstd_filter,  /* the filter */
};

#endif
