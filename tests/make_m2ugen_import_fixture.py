#!/usr/bin/env python3
"""A checkpoint in the released M2UGen layout, and the logits M2UGen's own LLaMA
computes with it, for tests/test_m2ugen_import.c.

M2UGen keeps LLaMA in Meta's layout (interleaved RoPE pairs, wq/wk/wv/wo,
w1/w2/w3, attention_norm/ffn_norm) with its own LoRA (lora_<w>_l1 = A, _l2 = B,
scale 1) and bias tuning (wq, wo, w1, w2, w3).  This script takes the tiny
mha_tied base (HF layout), converts its q/k rows to Meta's layout, draws random
M2UGen trainables (LoRA on all seven linears, biases, norms, 8 added [AUD]
embedding rows), writes them as {"model": state_dict} with torch.save under the
released names, and runs the forward of M2UGen/llama/llama.py (re-implemented
here in plain torch: Meta complex RoPE, LoRA and biases added as that file does).

Pinned: torch 2.5.1, safetensors 0.8.0.  Python makes references only.
Usage: python3 tests/make_m2ugen_import_fixture.py
"""
import collections
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

if torch.__version__.split("+")[0] != "2.5.1":
    sys.exit("make_m2ugen_import_fixture: need torch 2.5.1")
torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.abspath(__file__))
BASE = os.path.join(ROOT, "fixtures", "llama", "mha_tied")
OUT = os.path.join(ROOT, "fixtures", "m2ugen_import")
R, N_AUD = 4, 8


def to_meta(w, n_heads):
    """HF rotate_half rows -> Meta interleaved rows (inverse of convert_llama_weights_to_hf's permute)."""
    d1, d2 = w.shape
    return w.view(n_heads, 2, d1 // n_heads // 2, d2).transpose(1, 2).reshape(d1, d2)


def rmsnorm(x, w, eps):
    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)) * w


def rope_meta(x, pos, theta):
    hd = x.shape[-1]
    freqs = 1.0 / (theta ** (torch.arange(0, hd, 2)[: hd // 2].float() / hd))
    ang = torch.outer(pos.float(), freqs)
    cis = torch.polar(torch.ones_like(ang), ang)  # [T, hd/2]
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))  # [B, T, H, hd/2]
    return torch.view_as_real(xc * cis[None, :, None, :]).flatten(3)


def main():
    g = torch.Generator().manual_seed(31337)
    cfg = json.load(open(os.path.join(BASE, "config.json")))
    base = load_file(os.path.join(BASE, "model.safetensors"))
    C, H, L, V = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"], cfg["vocab_size"]
    F, eps, theta = cfg["intermediate_size"], cfg["rms_norm_eps"], cfg["rope_theta"]
    hd = C // H
    sd = collections.OrderedDict()
    rnd = lambda *s, scale=0.1: (scale * torch.randn(*s, generator=g)).float()
    emb = torch.cat([base["model.embed_tokens.weight"], rnd(N_AUD, C, scale=0.5)])  # 96 + 8 rows
    sd["llama.tok_embeddings.weight"] = emb
    meta = {}
    for l in range(L):
        p = f"model.layers.{l}."
        W = {"wq": to_meta(base[p + "self_attn.q_proj.weight"], H), "wk": to_meta(base[p + "self_attn.k_proj.weight"], H),
             "wv": base[p + "self_attn.v_proj.weight"], "wo": base[p + "self_attn.o_proj.weight"],
             "w1": base[p + "mlp.gate_proj.weight"], "w2": base[p + "mlp.down_proj.weight"],
             "w3": base[p + "mlp.up_proj.weight"]}
        q = f"llama.layers.{l}."
        for k, w in W.items():
            part = "attention" if k in ("wq", "wk", "wv", "wo") else "feed_forward"
            out_dim, in_dim = w.shape
            sd[f"{q}{part}.lora_{k}_l1.weight"] = rnd(R, in_dim, scale=in_dim ** -0.5)
            sd[f"{q}{part}.lora_{k}_l2.weight"] = rnd(out_dim, R, scale=0.3 * R ** -0.5)
            if k in ("wq", "wo", "w1", "w2", "w3"):
                sd[f"{q}{part}.{k}.bias"] = rnd(out_dim)
        sd[f"{q}attention_norm.weight"] = 1 + rnd(C)
        sd[f"{q}ffn_norm.weight"] = 1 + rnd(C)
        sd[f"{q}attention.gate"] = torch.zeros(1, H, 1, 1)  # present in every layer of the released model
        meta[l] = W
    sd["llama.norm.weight"] = 1 + rnd(C)

    def lin(x, l, k, part):
        q = f"llama.layers.{l}.{part}."
        y = x @ meta[l][k].T + x @ sd[q + f"lora_{k}_l1.weight"].T @ sd[q + f"lora_{k}_l2.weight"].T
        b = sd.get(q + f"{k}.bias")
        return y + b if b is not None else y

    ids = torch.randint(3, V, (2, 12), generator=g)
    ids[0, 4:12] = torch.arange(V, V + N_AUD)  # the added rows are read
    ids[1, 2] = V + 3
    B, T = ids.shape
    x = emb[ids]
    pos = torch.arange(T)
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(L):
        q = f"llama.layers.{l}."
        xn = rmsnorm(x, sd[q + "attention_norm.weight"], eps)
        xq = rope_meta(lin(xn, l, "wq", "attention").view(B, T, H, hd), pos, theta)
        xk = rope_meta(lin(xn, l, "wk", "attention").view(B, T, H, hd), pos, theta)
        xv = lin(xn, l, "wv", "attention").view(B, T, H, hd)
        s = (xq.transpose(1, 2) @ xk.transpose(1, 2).transpose(2, 3)) / hd ** 0.5 + mask
        o = (torch.softmax(s, -1) @ xv.transpose(1, 2)).transpose(1, 2).reshape(B, T, C)
        h = x + lin(o, l, "wo", "attention")
        hn = rmsnorm(h, sd[q + "ffn_norm.weight"], eps)
        a = torch.nn.functional.silu(lin(hn, l, "w1", "feed_forward")) * lin(hn, l, "w3", "feed_forward")
        x = h + lin(a, l, "w2", "feed_forward")
    logits = rmsnorm(x, sd["llama.norm.weight"], eps) @ emb.T  # mha_tied: the head is the embedding
    os.makedirs(OUT, exist_ok=True)
    torch.save({"model": sd, "epoch": 1}, os.path.join(OUT, "checkpoint.pth"))
    save_file({"input_ids": ids.contiguous(), "logits": logits.contiguous()},
              os.path.join(OUT, "reference.safetensors"), metadata={"lora_r": str(R)})
    print("wrote", OUT)


if __name__ == "__main__":
    main()
