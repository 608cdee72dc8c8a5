/* Write a state dict as the zip file torch.save produces (PyTorch 2.x, the
 * default zipfile serialization), byte for byte:
 *
 *   <archive>/data.pkl                 pickle protocol 2: collections.OrderedDict of
 *                                      torch._utils._rebuild_tensor_v2(persistent storage, ...)
 *   <archive>/byteorder                "little"
 *   <archive>/data/<key>               one storage per tensor, keys "0", "1", ... in
 *                                      dict order, records in sorted-string key order
 *   <archive>/version                  "3\n"
 *   <archive>/.data/serialization_id   torch's hash of the record names and CRCs
 *
 * <archive> is the file's base name without its extension (torch's rule), every
 * entry is stored (uncompressed) with its data 64-byte aligned by an "FB"
 * extra field, and the central directory ends with zip64 records, as torch's
 * miniz writer does.  The result loads with torch.load(weights_only=True) and
 * with models/formats/torch_ckpt.h.  Tested byte-identical with torch 2.5.1's
 * torch.save of the same OrderedDict (tests/fixtures/export).
 *
 * Tensors are written contiguous, row-major, requires_grad False, offset 0. */
#ifndef M2U_TORCH_PTH_WRITER_H
#define M2U_TORCH_PTH_WRITER_H

#include "safetensors.h"

/* Write entries[0..n) in that order.  wrap_key NULL: the file holds the
 * OrderedDict itself (torch.save(state_dict, path)); otherwise a plain dict
 * {wrap_key: OrderedDict} (torch.save({"model": state_dict}, path), the layout
 * of M2UGen's checkpoint.pth).  Atomic (temp file, fsync, rename); duplicate
 * names are refused. */
int m2u_pth_write(const char *path, const m2u_st_entry *entries, int n, const char *wrap_key);

/* The bytes of such a file in memory (malloc'ed), for tests and for writing
 * elsewhere; `archive` is the archive name torch would derive from the path. */
int m2u_pth_serialize(const char *archive, const m2u_st_entry *entries, int n, const char *wrap_key,
                      unsigned char **out, size_t *out_len);

#endif
