#!/usr/bin/env python3
"""torch.save files for tests/test_torch_ckpt.c (the restricted checkpoint reader).

Pinned: torch 2.5.1.  Python makes references only.
Usage: python3 tests/make_torch_fixtures.py   (writes tests/fixtures/torch/)

  state.pth      OrderedDict: a.weight f32 arange(6) [2,3]; b bf16 [1.5, 2.5]; c f16 arange(4);
                 d int64 [7, -8, 9]; view = a.weight[1] (shares a's storage at offset 3)
  nested.pth     {"model": <state.pth's dict>, "epoch": 5}   (M2UGen's checkpoint.pth shape)
  strided.pth    {"t": arange(6).reshape(2,3).t()}             (not contiguous: refused)
  malicious.pth  an object whose __reduce__ is os.system       (refused, never executed)
"""
import collections
import os
import sys

import torch

if torch.__version__.split("+")[0] != "2.5.1":
    sys.exit(f"make_torch_fixtures: need torch 2.5.1, found {torch.__version__}")

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "torch")


class Malicious:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = collections.OrderedDict()
    sd["a.weight"] = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    sd["b"] = torch.tensor([1.5, 2.5], dtype=torch.bfloat16)
    sd["c"] = torch.arange(4, dtype=torch.float16)
    sd["d"] = torch.tensor([7, -8, 9], dtype=torch.int64)
    sd["view"] = sd["a.weight"][1]
    torch.save(sd, os.path.join(OUT, "state.pth"))
    torch.save({"model": sd, "epoch": 5}, os.path.join(OUT, "nested.pth"))
    torch.save({"t": torch.arange(6, dtype=torch.float32).reshape(2, 3).t()}, os.path.join(OUT, "strided.pth"))
    torch.save(Malicious(), os.path.join(OUT, "malicious.pth"))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
