#!/usr/bin/env python3
"""Reference logits for loading a PEFT adapter that grew the vocabulary (tests/test_m2u_llm.c).

tests/fixtures/export/reference/peft/ is peft's save_pretrained of a LoRA over the export base
resized from 300 to 308 tokens (the 8 [AUD] tokens): it holds the LoRA tensors and the whole
embed_tokens / lm_head [308, 32].  This loads it the way peft users do (resize the base to the
adapter's vocabulary, PeftModel.from_pretrained) and writes the logits of a sequence with [AUD]
ids in it, so m2u-llm's loading of the same directory is checked against peft.

Writes tests/fixtures/export/reference/peft_aud_logits.safetensors:
  input_ids int64 [1, T], logits float32 [1, T, 308]

Pinned: torch 2.5.1, transformers 4.46.3, peft 0.13.2, safetensors 0.8.0.
Run from anywhere: python3 tests/make_peft_aud_fixture.py  (~3 s, CPU)
"""
import os
import sys

import torch
import transformers
import peft
import safetensors
from safetensors.torch import load_file, save_file

PINS = {"torch": (torch.__version__.split("+")[0], "2.5.1"), "transformers": (transformers.__version__, "4.46.3"),
        "peft": (peft.__version__, "0.13.2"), "safetensors": (safetensors.__version__, "0.8.0")}
for k, (have, want) in PINS.items():
    if have != want:
        sys.exit(f"make_peft_aud_fixture: need {k} {want}, have {have}")

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXP = os.path.join(ROOT, "tests", "fixtures", "export")
ADAPTER = os.path.join(EXP, "reference", "peft")
IDS = [1, 17, 300, 301, 302, 303, 304, 305, 306, 307, 42, 299]


def main():
    emb = load_file(os.path.join(ADAPTER, "adapter_model.safetensors"))["base_model.model.model.embed_tokens.weight"]
    model = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(EXP, "base"), torch_dtype=torch.float32)
    model.resize_token_embeddings(emb.shape[0])
    pm = peft.PeftModel.from_pretrained(model, ADAPTER)
    pm.eval()
    # the adapter's whole matrices replaced the resized ones (peft loads them by name)
    assert torch.equal(pm.base_model.model.model.embed_tokens.weight, emb)
    head = load_file(os.path.join(ADAPTER, "adapter_model.safetensors"))["base_model.model.lm_head.weight"]
    assert torch.equal(pm.base_model.model.lm_head.weight, head)
    ids = torch.tensor([IDS], dtype=torch.int64)
    with torch.no_grad():
        logits = pm(input_ids=ids).logits.float()
    out = os.path.join(EXP, "reference", "peft_aud_logits.safetensors")
    save_file({"input_ids": ids, "logits": logits.contiguous()}, out)
    print("wrote", out, tuple(logits.shape))


if __name__ == "__main__":
    main()
