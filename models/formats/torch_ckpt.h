/* PyTorch checkpoints (`torch.save` zip format: pytorch_model.bin, *.pth) read
 * WITHOUT executing anything.
 *
 * The zip must be stored (uncompressed, as torch writes it; zip64 accepted) and
 * data.pkl is interpreted by a tiny pickle machine that knows only the opcodes
 * a saved state dict uses and only these globals: collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2 / _rebuild_parameter and the torch.*Storage
 * types.  Any other global or opcode is refused with the file and the byte
 * offset, so a malicious pickle can do nothing but fail.  Tensors point into the
 * mapped file (row-major and contiguous; others are refused); nested dicts
 * ({"model": {...}}) give dotted names ("model.layers.0...."); non-tensor leaves
 * (ints, strings) are counted in n_other and otherwise skipped. */
#ifndef M2U_TORCH_CKPT_H
#define M2U_TORCH_CKPT_H

#include "safetensors.h"

typedef struct m2u_torch_ckpt m2u_torch_ckpt;

int m2u_torch_open(const char *path, m2u_torch_ckpt **out);
void m2u_torch_close(m2u_torch_ckpt *c);
int m2u_torch_count(const m2u_torch_ckpt *c);
const m2u_st_tensor *m2u_torch_at(const m2u_torch_ckpt *c, int i);
/* NULL if absent. */
const m2u_st_tensor *m2u_torch_find(const m2u_torch_ckpt *c, const char *name);
/* Non-tensor values the state held (ints, strings, ...), skipped. */
int m2u_torch_n_other(const m2u_torch_ckpt *c);

#endif
