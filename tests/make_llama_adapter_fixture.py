#!/usr/bin/env python3
"""Reference for M2UGen's adapter injection into LLaMA and for an outside gradient
on the last hidden states (where the output projector reads the [AUD] states).

Writes tests/fixtures/llama/adapter_inject/: a tiny GQA LlamaForCausalLM checkpoint and
reference.safetensors with
  input_ids, labels           I64 [B, T]
  adapter_in                  F32 [A, B, hidden]   one vector per adapter layer and sequence
  gate.<l>                    F32 [heads]          per-head gate of adapter layer l (non-zero here)
  dhidden                     F32 [B, T, hidden]   R: the objective is CE + sum(h_last * R)
  logits                      F32 [B, T, V]
  loss                        F32 []               CE only (HF's mean over non-ignored targets)
  grad.gate.<l>               F32 [heads]
  grad.adapter_in             F32 [A, B, hidden]
Injection (LLaMA-Adapter / M2UGen, adapter length 1): in each of the last A layers the
attention output before o_proj gets tanh(gate_h) * (v_proj.weight @ a_b) for head h
(kv head h // (heads / kv_heads)), added at every position.  h_last is the output of
the last decoder layer before the final RMSNorm.

Pinned: torch 2.5.1, transformers 4.46.3, safetensors 0.8.0.  Python makes references
only.  Usage: python3 tests/make_llama_adapter_fixture.py
"""
import os
import sys

import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

for have, want, name in ((torch.__version__.split("+")[0], "2.5.1", "torch"),
                         (transformers.__version__, "4.46.3", "transformers"),
                         (safetensors.__version__, "0.8.0", "safetensors")):
    if have != want:
        sys.exit(f"make_llama_adapter_fixture: need {name}=={want}, found {have}")

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
torch.backends.mkldnn.enabled = False

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "llama", "adapter_inject")
B, T, A = 2, 9, 2


def main():
    gen = torch.Generator().manual_seed(2024)
    torch.manual_seed(2024)
    cfg = LlamaConfig(hidden_size=32, num_attention_heads=4, num_key_value_heads=2, intermediate_size=80,
                      num_hidden_layers=3, vocab_size=50, tie_word_embeddings=False, rope_theta=10000.0,
                      rms_norm_eps=1e-6, max_position_embeddings=64, attn_implementation="eager")
    model = LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if p.dim() == 1:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name == "model.embed_tokens.weight":
                p.copy_(torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
    for p in model.parameters():
        p.requires_grad_(False)
    os.makedirs(OUT, exist_ok=True)
    model.save_pretrained(OUT, safe_serialization=True)
    if os.path.exists(os.path.join(OUT, "generation_config.json")):
        os.remove(os.path.join(OUT, "generation_config.json"))

    L, H, KV, hd, C = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads, \
        cfg.hidden_size // cfg.num_attention_heads, cfg.hidden_size
    adapter_in = torch.randn(A, B, C, generator=gen).requires_grad_(True)
    gates = [(0.5 * torch.randn(H, generator=gen)).requires_grad_(True) for _ in range(A)]
    R = torch.randn(B, T, C, generator=gen) * 0.1

    def make_hook(k, layer):
        def hook(module, args):
            x = args[0]  # [B, T, H*hd], the attention output before o_proj
            av = adapter_in[k] @ layer.self_attn.v_proj.weight.T  # [B, KV*hd]
            av = av.view(B, KV, 1, hd).repeat_interleave(H // KV, dim=1)  # [B, H, 1, hd]
            add = torch.tanh(gates[k]).view(1, H, 1, 1) * av  # [B, H, 1, hd]
            add = add.expand(B, H, x.shape[1], hd).transpose(1, 2).reshape(B, x.shape[1], H * hd)
            return (x + add,)
        return hook

    for k in range(A):
        layer = model.model.layers[L - A + k]
        layer.self_attn.o_proj.register_forward_pre_hook(make_hook(k, layer))
    captured = {}
    model.model.layers[L - 1].register_forward_hook(lambda m, a, out: captured.__setitem__("h", out[0]))

    input_ids = torch.randint(3, cfg.vocab_size, (B, T), generator=gen)
    labels = input_ids.clone()
    labels[0, :3] = -100
    labels[1, :2] = -100
    out = model(input_ids=input_ids, labels=labels, use_cache=False)
    objective = out.loss + (captured["h"] * R).sum()
    objective.backward()

    tensors = {
        "input_ids": input_ids.contiguous(),
        "labels": labels.contiguous(),
        "adapter_in": adapter_in.detach().contiguous(),
        "dhidden": R.contiguous(),
        "logits": out.logits.detach().float().contiguous(),
        "loss": out.loss.detach().float().reshape(()).contiguous(),
        "grad.adapter_in": adapter_in.grad.contiguous(),
    }
    for k in range(A):
        tensors[f"gate.{L - A + k}"] = gates[k].detach().contiguous()
        tensors[f"grad.gate.{L - A + k}"] = gates[k].grad.contiguous()
    path = os.path.join(OUT, "reference.safetensors")
    # one metadata key: safetensors keeps __metadata__ in a hash map, so more keys would
    # make the header order (and the file bytes) vary between runs
    save_file(tensors, path, metadata={"adapter_layers": str(A)})
    print("wrote", OUT)


if __name__ == "__main__":
    main()
