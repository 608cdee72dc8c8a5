/* Whole-file reads, atomic writes and read-only mappings.
 *
 * Every file m2u produces is written through m2u_atomic_* : the bytes go to
 * "<path>.tmp.<pid>", are fsync'ed, renamed over <path>, and the directory is
 * fsync'ed, so a job killed at any moment leaves either the old file or the new
 * one, never a torn one. */
#ifndef M2U_FILEIO_H
#define M2U_FILEIO_H

#include <stddef.h>
#include <stdio.h>

/* Read a whole file into a NUL-terminated malloc'ed buffer (*len excludes the NUL). */
int m2u_read_file(const char *path, char **data, size_t *len);

/* Read a file from start to end in blocks of up to 1 MiB, calling fn(ctx, block, n) on each
 * (for hashes and checksums: one pass, no whole-file buffer).  An error names the file. */
int m2u_read_blocks(const char *path, void (*fn)(void *ctx, const unsigned char *block, size_t n), void *ctx);

/* A read-only mapping of a whole file. */
typedef struct {
    const unsigned char *data;
    size_t size;
} m2u_mapping;
int m2u_map_file(const char *path, m2u_mapping *m);
void m2u_unmap_file(m2u_mapping *m);
/* Give back the resident pages of the mapping that lie wholly inside [p, p + n) (madvise
 * MADV_DONTNEED; nothing outside the mapping is touched).  The mapping is private and read
 * only, so a later read of those bytes faults them in from the file again: this frees memory
 * and never changes what the mapping reads.  A no-op in fuzz builds (a heap copy there). */
void m2u_mapping_drop(const m2u_mapping *m, const void *p, size_t n);

/* Atomic writer: open a temp file beside `path`, write through `fp`, then commit or abort. */
typedef struct {
    FILE *fp;
    char *path;
    char *tmp_path;
} m2u_atomic_file;
int m2u_atomic_open(m2u_atomic_file *af, const char *path);
int m2u_atomic_commit(m2u_atomic_file *af); /* flush, fsync, rename, fsync dir; closes */
void m2u_atomic_abort(m2u_atomic_file *af); /* close and remove the temp file */

/* Convenience: write a whole buffer atomically. */
int m2u_write_file_atomic(const char *path, const void *data, size_t len);

/* fsync a file or a directory by path (a directory: best effort, some filesystems refuse). */
int m2u_fsync_path(const char *path, int is_dir);
/* The directory part of a path, malloc'ed ("." when there is none). */
char *m2u_path_dirname(const char *path);
/* mkdir -p */
int m2u_mkdir_p(const char *path);

/* Join a directory and a file name into a malloc'ed path. */
char *m2u_path_join(const char *dir, const char *name);
int m2u_is_dir(const char *path);
/* Remove a file or a whole directory tree (rm -rf).  A symlink is removed, never
 * followed.  A path that does not exist is fine.  On failure the message names the
 * first path that could not be removed. */
int m2u_rm_tree(const char *path);
int m2u_file_exists(const char *path);

#endif
