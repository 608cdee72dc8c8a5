/* safetensors: read (mmap, single file or sharded index) and write (atomic).
 *
 * The reader enforces every rule of the format (see formats.md section 1.4):
 * header size cap (100,000,000 bytes), header is a UTF-8 JSON object starting
 * with '{' (trailing spaces allowed), no duplicate names, tensor entries have
 * exactly dtype/shape/data_offsets, known dtypes, __metadata__ is string->string,
 * data_offsets contiguous from 0 with no holes or overlap, END-BEGIN equals
 * nelements*size exactly (checked multiplication), and no trailing bytes.  A
 * malformed file is refused with a message naming the file and the rule broken.
 *
 * Tensor data pointers point into the read-only mapping and may be unaligned
 * (other writers do not pad): read them with memcpy or m2u_st_read_f32. */
#ifndef M2U_SAFETENSORS_H
#define M2U_SAFETENSORS_H

#include "dtype.h"

#include <stddef.h>
#include <stdint.h>

#define M2U_ST_MAX_DIMS 8

typedef struct {
    const char *name;
    m2u_dtype dtype;
    int ndim;
    int64_t shape[M2U_ST_MAX_DIMS];
    int64_t numel;
    const void *data; /* into the mapping; NULL when numel == 0 */
    size_t nbytes;
    int shard; /* index of the file it came from */
} m2u_st_tensor;

typedef struct m2u_safetensors m2u_safetensors;

/* Open `path`: a .safetensors file, a model.safetensors.index.json, a torch.save
 * archive (pytorch_model.bin, *.pth: read without executing anything, see
 * torch_ckpt.h), or a directory holding model.safetensors.index.json,
 * model.safetensors or pytorch_model.bin (in that order of preference).
 * For an index, every weight_map entry must exist in the named shard, and no
 * tensor may appear in two shards. */
int m2u_st_open(const char *path, m2u_safetensors **out);
void m2u_st_close(m2u_safetensors *st);

int m2u_st_count(const m2u_safetensors *st);
const m2u_st_tensor *m2u_st_at(const m2u_safetensors *st, int i);
/* NULL if absent (no error recorded). */
const m2u_st_tensor *m2u_st_find(const m2u_safetensors *st, const char *name);
/* Value of a __metadata__ key of the first file, or NULL. */
const char *m2u_st_metadata(const m2u_safetensors *st, const char *key);
/* Path of the (first) file, for messages. */
const char *m2u_st_path(const m2u_safetensors *st);

/* Look up `name`, check its shape equals shape[0..ndim) and that it is a float
 * type; fails with "<file>: tensor <name>: ..." otherwise.  */
const m2u_st_tensor *m2u_st_expect(const m2u_safetensors *st, const char *name, int ndim, const int64_t *shape);
/* Give back the resident pages of [p, p + n) when that lies in one of st's mapped files
 * (m2u_mapping_drop: later reads fault them in from the file again); otherwise nothing.  For a
 * caller that has copied tensors it will not read in place again. */
void m2u_st_drop_pages(const m2u_safetensors *st, const void *p, size_t n);
/* Copy a float tensor (F32/F16/BF16/F64) to fp32; n must equal numel. */
int m2u_st_read_f32(const m2u_st_tensor *t, float *dst, size_t n);

/* ---- writer ---- */
typedef struct {
    const char *name;
    m2u_dtype dtype;
    int ndim;
    int64_t shape[M2U_ST_MAX_DIMS];
    const void *data; /* numel * dtype size bytes, row-major, little-endian */
} m2u_st_entry;

/* Write entries (any order; the file is laid out like the reference writer:
 * sorted by dtype alignment then name, header padded with spaces to a multiple
 * of 8) with __metadata__ {"format":"pt"} plus meta_keys/meta_values (n_meta
 * pairs, may be 0).  Atomic: temp file, fsync, rename.  Duplicate names are refused. */
int m2u_st_write(const char *path, const m2u_st_entry *entries, int n, const char *const *meta_keys,
                 const char *const *meta_values, int n_meta);

#endif
