#!/usr/bin/env python3
"""Write the safetensors reference fixture read by tests/test_safetensors.c.

Pinned: torch 2.5.1, safetensors 0.8.0 (the Rust writer behind save_file), numpy 1.26.4.
Run from the repository root:  python3 tests/make_safetensors_fixture.py
Outputs (committed; the C test needs no Python at test time):
  tests/fixtures/safetensors/reference.safetensors   written by safetensors.torch.save_file
  tests/fixtures/safetensors/reference_values.json   every tensor's dtype, shape and values as plain numbers

Metadata is exactly {"format": "pt"}: the Rust writer keeps __metadata__ in a HashMap, so with two or
more keys their order in the header (and so the file bytes) changes from run to run.  With one key the
file is deterministic and the C test checks that m2u_st_write reproduces it byte for byte.

The names are chosen so that name order and the writer's dtype order disagree (I64 before F64, BF16
before F16 despite equal sizes), which is what makes the byte comparison meaningful.
"""
import json
import os

import safetensors
import torch
from safetensors.torch import save_file

assert torch.__version__.startswith("2.5.1"), torch.__version__
assert safetensors.__version__ == "0.8.0", safetensors.__version__

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "safetensors")

tensors = {
    # F32: ordinary values, -0.0 and a float32 subnormal
    "a.f32": torch.tensor([[1.0, -2.5, 0.1], [-0.0, 3.0e38, 1.0e-40]], dtype=torch.float32),
    # F16: max normal, smallest subnormal, a value that rounds (0.1)
    "b.f16": torch.tensor([1.0, -2.5, 65504.0, 5.960464477539063e-08, 0.1], dtype=torch.float16),
    # BF16: pi and 1e-3 both round in bf16; 3.3895e38 is the largest finite bf16
    "c.bf16": torch.tensor([[3.14159265, -0.5], [1.0e-3, 3.3895313892515355e38]], dtype=torch.bfloat16),
    "d.f64": torch.tensor([0.1, -1.0e300], dtype=torch.float64),
    "e.i64": torch.tensor([0, -1, 1234567890123], dtype=torch.int64),
    "f.scalar": torch.tensor(0.25, dtype=torch.float32),  # rank 0
    "g.empty": torch.zeros((0, 4), dtype=torch.float32),  # zero elements
    "h.i32": torch.tensor([-7, 2147483647], dtype=torch.int32),
    "i.u8": torch.tensor([0, 255, 7], dtype=torch.uint8),
}

os.makedirs(OUT, exist_ok=True)
save_file(tensors, os.path.join(OUT, "reference.safetensors"), metadata={"format": "pt"})

values = {}
for name, t in tensors.items():
    vals = t.double().flatten().tolist() if t.is_floating_point() else t.flatten().tolist()
    values[name] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "values": vals}
with open(os.path.join(OUT, "reference_values.json"), "w") as f:
    json.dump({"metadata": {"format": "pt"}, "tensors": values}, f, indent=1, sort_keys=True)
    f.write("\n")
