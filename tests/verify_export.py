#!/usr/bin/env python3
"""Check m2u-export's outputs with the Python tools that consume them (run by developers, not CI).

    python3 tests/verify_export.py [--m2u-export BUILD/m2u-export] [--base DIR --run RUN] [--keep DIR]

Defaults: the fixture base and run of tests/fixtures/export and the m2u-export binary of the build
directory given (default build/m2u-export).  It runs every export kind into a temporary directory,
then:

  merged    transformers loads it; its logits equal those of an independent plain-torch forward of
            the m2u model (base + LoRA alpha/r + biases + norms + [AUD] rows + the adapter injection
            tanh(gate) * W_v prefix_query with no modality input) from --base and the trainables
  peft      peft 0.13.2 PeftModel.from_pretrained on the base resized to the exported tokenizer; its
            logits equal the plain forward with LoRA + rows only (what a LoRA adapter can carry); the
            tokenizer maps [AUD0..7] to the new ids
  gguf      gguf-py reads it: tokens/types equal gguf-py's LlamaHfVocab on the merged directory;
            every tensor equals transformers' merged weights with llama.cpp's q/k permutation (the
            --merge-lora export)
  gguf-lora lora_a = A, lora_b = B (q/k rows permuted back), adapter.lora.alpha = lora.alpha
  m2ugen    torch.load(weights_only=True) reads checkpoint.pth; a Meta-layout forward written like
            M2UGen/llama/llama.py (complex RoPE, lora_*_l1/_l2 with scale 1, biases, gates) on the
            base converted to Meta layout + the checkpoint gives the same logits as the merged model

Pinned: torch 2.5.1, transformers 4.46.3, peft 0.13.2, safetensors 0.8.0, numpy 1.26.4, gguf 0.17.1.
Exit status 0 when every check passes; prints one line per check.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import transformers
import peft
import gguf
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAILS = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        FAILS.append(what)


def rms(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_hf(x, pos, theta, hd):
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    ang = torch.outer(pos.float(), inv)
    cos, sin = torch.cat([ang, ang], -1).cos(), torch.cat([ang, ang], -1).sin()
    rot = torch.cat([-x[..., hd // 2:], x[..., : hd // 2]], -1)
    return x * cos[:, None, :] + rot * sin[:, None, :]


def rope_meta(x, pos, theta, hd):
    freqs = 1.0 / (theta ** (torch.arange(0, hd, 2)[: hd // 2].float() / hd))
    ang = torch.outer(pos.float(), freqs)
    cis = torch.polar(torch.ones_like(ang), ang)
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * cis[:, None, :]).flatten(-2)


def forward(cfg, P, ids, meta=False):
    """P: callables/weights. lin(name, l, x) gives the linear output; adapter(l) the per-head term or None."""
    C, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = C // H if not cfg.get("head_dim") else cfg["head_dim"]
    eps, theta = cfg["rms_norm_eps"], cfg.get("rope_theta", 10000.0)
    T = len(ids)
    pos = torch.arange(T)
    x = P["embed"][ids]
    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(cfg["num_hidden_layers"]):
        h = rms(x, P["n1"][l], eps)
        q = P["lin"]("q", l, h).view(T, H, hd)
        k = P["lin"]("k", l, h).view(T, KV, hd)
        v = P["lin"]("v", l, h).view(T, KV, hd)
        rope = rope_meta if meta else rope_hf
        q, k = rope(q, pos, theta, hd), rope(k, pos, theta, hd)
        g = H // KV
        k, v = k.repeat_interleave(g, 1), v.repeat_interleave(g, 1)
        s = torch.einsum("thd,shd->hts", q, k) / hd ** 0.5 + mask
        att = torch.einsum("hts,shd->thd", s.softmax(-1), v)
        a = P["adapter"](l)
        if a is not None:
            att = att + a[None]
        x = x + P["lin"]("o", l, att.reshape(T, H * hd))
        h2 = rms(x, P["n2"][l], eps)
        x = x + P["lin"]("down", l, torch.nn.functional.silu(P["lin"]("gate", l, h2)) * P["lin"]("up", l, h2))
    return rms(x, P["nf"], eps) @ P["head"].T


LIN = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj", "gate": "gate_proj", "up": "up_proj",
       "down": "down_proj"}
PARENT = {"q": "self_attn", "k": "self_attn", "v": "self_attn", "o": "self_attn", "gate": "mlp", "up": "mlp",
          "down": "mlp"}


def m2u_model(cfg, base, tr, scale, V, full=True):
    """The m2u model from base + trainables (HF layout).  full=False: LoRA and rows only."""
    C, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = C // H
    V0 = base["model.embed_tokens.weight"].shape[0]

    def grow(m, rows):
        out = torch.zeros(V, C)
        out[:V0] = m
        if rows is not None:
            out[V - rows.shape[0]:] = rows
        return out

    def lin(kind, l, x):
        name = f"model.layers.{l}.{PARENT[kind]}.{LIN[kind]}"
        y = x @ base[f"{name}.weight"].T
        if full and f"{name}.bias" in tr:
            y = y + tr[f"{name}.bias"]
        a = tr.get(f"base_model.model.{name}.lora_A.weight")
        if a is not None:
            y = y + scale * (x @ a.T) @ tr[f"base_model.model.{name}.lora_B.weight"].T
        return y

    gates = [tr.get(f"model.layers.{l}.self_attn.gate") for l in range(cfg["num_hidden_layers"])]
    first = min([l for l, g in enumerate(gates) if g is not None], default=None)

    def adapter(l):
        if not full or gates[l] is None:
            return None
        v = base[f"model.layers.{l}.self_attn.v_proj.weight"] @ tr["prefix_query.weight"][l - first]
        g = H // KV
        return torch.stack([torch.tanh(gates[l][h]) * v[(h // g) * hd:(h // g + 1) * hd] for h in range(H)])

    L = cfg["num_hidden_layers"]
    pick = lambda n: tr[n] if full and n in tr else base[n]
    return {"embed": grow(base["model.embed_tokens.weight"], tr.get("model.embed_tokens.weight.rows")),
            "head": grow(base["lm_head.weight"], tr.get("lm_head.weight.rows")), "lin": lin, "adapter": adapter,
            "n1": [pick(f"model.layers.{l}.input_layernorm.weight") for l in range(L)],
            "n2": [pick(f"model.layers.{l}.post_attention_layernorm.weight") for l in range(L)],
            "nf": pick("model.norm.weight")}


def to_meta_rows(w, hd):
    rows = w.shape[0]
    return w.reshape(rows // hd, 2, hd // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def from_meta_rows(w, hd):
    rows = w.shape[0]
    return w.reshape(rows // hd, hd // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def llama_permute(w, n_head, n_head_kv=None):
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def m2ugen_model(cfg, base, sd, V):
    """Meta-layout forward as M2UGen/llama/llama.py computes it, from checkpoint.pth's 'model' dict."""
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = C // H
    meta = {"q": ("attention", "wq"), "k": ("attention", "wk"), "v": ("attention", "wv"), "o": ("attention", "wo"),
            "gate": ("feed_forward", "w1"), "up": ("feed_forward", "w3"), "down": ("feed_forward", "w2")}

    def lin(kind, l, x):
        w = base[f"model.layers.{l}.{PARENT[kind]}.{LIN[kind]}.weight"]
        if kind in ("q", "k"):
            w = to_meta_rows(w, hd)  # the Meta checkpoint M2UGen loads
        part, wn = meta[kind]
        y = x @ w.T
        b = sd.get(f"llama.layers.{l}.{part}.{wn}.bias")
        if b is not None:
            y = y + b
        a = sd.get(f"llama.layers.{l}.{part}.lora_{wn}_l1.weight")
        if a is not None:
            y = y + (x @ a.T) @ sd[f"llama.layers.{l}.{part}.lora_{wn}_l2.weight"].T
        return y

    L = cfg["num_hidden_layers"]
    first = min([l for l in range(L) if f"llama.layers.{l}.attention.gate" in sd], default=None)

    def adapter(l):
        gk = f"llama.layers.{l}.attention.gate"
        if gk not in sd:
            return None
        v = base[f"model.layers.{l}.self_attn.v_proj.weight"] @ sd["prefix_query.weight"][l - first]
        KV = cfg["num_key_value_heads"]
        g = H // KV
        gate = sd[gk].reshape(H)
        return torch.stack([torch.tanh(gate[h]) * v[(h // g) * hd:(h // g + 1) * hd] for h in range(H)])

    return {"embed": sd["llama.tok_embeddings.weight"], "head": sd["llama.output.weight"], "lin": lin,
            "adapter": adapter, "n1": [sd[f"llama.layers.{l}.attention_norm.weight"] for l in range(L)],
            "n2": [sd[f"llama.layers.{l}.ffn_norm.weight"] for l in range(L)], "nf": sd["llama.norm.weight"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--m2u-export", default=os.path.join(ROOT, "build", "m2u-export"))
    ap.add_argument("--base", default=os.path.join(ROOT, "tests/fixtures/export/base"))
    ap.add_argument("--run", default=os.path.join(ROOT, "tests/fixtures/export/run"))
    ap.add_argument("--keep", help="write the exports here instead of a temporary directory")
    a = ap.parse_args()
    torch.manual_seed(0)
    out = a.keep or tempfile.mkdtemp(prefix="m2u_verify_export_")
    os.makedirs(out, exist_ok=True)
    jobs = [("peft", "peft", []), ("merged", "merged", ["--max-shard-size", "60KB"]),
            ("gguf", "model.gguf", ["--dtype", "f32", "--merge-lora"]), ("gguf", "model_nolora.gguf", ["--dtype", "f32"]),
            ("gguf-lora", "lora.gguf", []), ("m2ugen", "m2ugen", [])]
    for kind, name, extra in jobs:
        cmd = [a.m2u_export, kind, "--base", a.base, "--run", a.run, "--out", os.path.join(out, name), "--force"] + extra
        r = subprocess.run(cmd, capture_output=True, text=True)
        check(r.returncode == 0, f"m2u-export {kind} -> {name}" + ("" if r.returncode == 0 else ": " + r.stderr.strip()))
        if r.returncode:
            return 1

    cfg = json.load(open(os.path.join(a.base, "config.json")))
    base = load_file(os.path.join(a.base, "model.safetensors")) if os.path.exists(os.path.join(a.base, "model.safetensors")) else None
    if base is None:
        base = dict(transformers.AutoModelForCausalLM.from_pretrained(a.base, torch_dtype=torch.float32).state_dict())
    base = {k: v.float() for k, v in base.items()}
    if "lm_head.weight" not in base:
        base["lm_head.weight"] = base["model.embed_tokens.weight"]
    trp = None
    ckdir = os.path.join(a.run, "checkpoints")
    if os.path.isdir(ckdir):
        steps = sorted(d for d in os.listdir(ckdir) if d.startswith("step-") and os.path.exists(os.path.join(ckdir, d, "COMPLETE")))
        trp = os.path.join(ckdir, steps[-1], "trainable.safetensors")
    elif os.path.isdir(a.run):
        trp = os.path.join(a.run, "trainable.safetensors")
    else:
        trp = a.run
    tr = {k: v.float() for k, v in load_file(trp).items()}
    pc = json.load(open(os.path.join(out, "peft", "adapter_config.json")))
    scale = pc["lora_alpha"] / pc["r"]
    mcfg = json.load(open(os.path.join(out, "merged", "config.json")))
    V = mcfg["vocab_size"]
    ids = torch.tensor([1] + list(np.random.RandomState(0).randint(3, V, size=14)))

    # merged
    with torch.no_grad():
        m = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(out, "merged"), torch_dtype=torch.float32)
        got = m(ids[None]).logits[0]
        ref = forward(cfg, m2u_model(cfg, base, tr, scale, V), ids)
    err = (got - ref).abs().max().item()
    check(err < 1e-4, f"merged: transformers logits vs plain m2u forward, max abs diff {err:.2e} (logit std {ref.std():.2f})")
    tok = transformers.AutoTokenizer.from_pretrained(os.path.join(out, "merged"))
    check(len(tok) == V and tok.convert_tokens_to_ids("[AUD7]") == V - 1, f"merged: tokenizer has {len(tok)} tokens, [AUD7] = {tok.convert_tokens_to_ids('[AUD7]')}")

    # peft
    with torch.no_grad():
        bm = transformers.AutoModelForCausalLM.from_pretrained(a.base, torch_dtype=torch.float32)
        ptok = transformers.AutoTokenizer.from_pretrained(os.path.join(out, "peft"))
        bm.resize_token_embeddings(len(ptok))
        pm = peft.PeftModel.from_pretrained(bm, os.path.join(out, "peft"))
        got = pm(ids[None]).logits[0]
        ref = forward(cfg, m2u_model(cfg, base, tr, scale, V, full=False), ids)
    err = (got - ref).abs().max().item()
    check(err < 1e-4, f"peft: PeftModel logits vs plain forward (LoRA + rows), max abs diff {err:.2e}")
    htok = transformers.AutoTokenizer.from_pretrained(a.base)
    htok.add_tokens([f"[AUD{i}]" for i in range(V - len(htok))])
    text = "A calm piano piece. [AUD0][AUD1] [AUD7]"
    same = ptok(text).input_ids == htok(text).input_ids and len(ptok) == len(htok)
    ids_ok = [ptok.convert_tokens_to_ids(f"[AUD{i}]") for i in range(8)] == list(range(V - 8, V))
    check(same and ids_ok, "peft: tokenizer = transformers' add_tokens([AUD0..7]) on the base (ids, encoding)")

    # gguf (LoRA merged) against transformers' merged weights with llama.cpp's permutation
    H, KV = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    msd = {k: v.numpy() for k, v in m.state_dict().items()}
    rd = gguf.GGUFReader(os.path.join(out, "model.gguf"))
    tensors = {t.name: t for t in rd.tensors}
    names = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
             "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
    worst, missing = 0.0, []
    for k, v in msd.items():
        p = k.split(".")
        if k == "model.embed_tokens.weight":
            n = "token_embd.weight"
        elif k == "lm_head.weight":
            n = "output.weight"
        elif k == "model.norm.weight":
            n = "output_norm.weight"
        elif p[3] == "input_layernorm":
            n = f"blk.{p[2]}.attn_norm.weight"
        elif p[3] == "post_attention_layernorm":
            n = f"blk.{p[2]}.ffn_norm.weight"
        else:
            n = f"blk.{p[2]}.{names[p[4]]}.{p[5]}"
            if p[4] == "q_proj":
                v = llama_permute(v, H, H)
            elif p[4] == "k_proj":
                v = llama_permute(v, H, KV)
        if n not in tensors:
            missing.append(n)
            continue
        g = np.asarray(tensors[n].data).reshape(v.shape)
        worst = max(worst, float(np.abs(g - v).max() / max(np.abs(v).max(), 1e-30)))
    check(not missing and len(tensors) == len(msd), f"gguf: {len(tensors)} tensors, names as convert_hf_to_gguf (missing {missing[:3]})")
    check(worst < 1e-6, f"gguf: tensors vs transformers' merged weights permuted like LlamaModel.permute, worst rel err {worst:.2e}")
    vocab = gguf.LlamaHfVocab(__import__("pathlib").Path(os.path.join(out, "merged")))
    toks = [t for t, _, _ in vocab.all_tokens()]
    types = [int(t) for _, _, t in vocab.all_tokens()]
    f = rd.fields["tokenizer.ggml.tokens"]
    gt = [bytes(f.parts[i]) for i in f.data]
    gty = [int(rd.fields["tokenizer.ggml.token_type"].parts[i][0]) for i in rd.fields["tokenizer.ggml.token_type"].data]
    check(gt == toks and gty == types, f"gguf: {len(gt)} tokens and types equal gguf-py LlamaHfVocab's")
    arch = bytes(rd.fields["general.architecture"].parts[-1]).decode()
    check(arch == "llama" and int(rd.fields["llama.block_count"].parts[-1][0]) == cfg["num_hidden_layers"], "gguf: llama hyper-parameters")

    # gguf-lora
    rl = gguf.GGUFReader(os.path.join(out, "lora.gguf"))
    lt = {t.name: np.asarray(t.data) for t in rl.tensors}
    alpha = float(rl.fields["adapter.lora.alpha"].parts[-1][0])
    worst = 0.0
    n_ok = 0
    for k, v in tr.items():
        if ".lora_" not in k:
            continue
        p = k.split(".")
        n = f"blk.{p[4]}.{names[p[6]]}.weight.{'lora_a' if p[7] == 'lora_A' else 'lora_b'}"
        g = lt[n].reshape(v.shape)
        v = v.numpy()
        if p[7] == "lora_B" and p[6] in ("q_proj", "k_proj"):
            v = llama_permute(v, H, H if p[6] == "q_proj" else KV)
        worst = max(worst, float(np.abs(g - v).max()))
        n_ok += 1
    check(n_ok == len(lt) and worst == 0.0, f"gguf-lora: {n_ok} tensors equal PEFT A/B (lora_b q/k permuted), max diff {worst}")
    check(alpha == pc["lora_alpha"] and bytes(rl.fields["general.type"].parts[-1]).decode() == "adapter",
          f"gguf-lora: general.type adapter, adapter.lora.alpha {alpha}")

    # m2ugen
    ck = torch.load(os.path.join(out, "m2ugen", "checkpoint.pth"), weights_only=True)
    sd = {k: v.float() for k, v in ck["model"].items()}
    with torch.no_grad():
        got = forward(cfg, m2ugen_model(cfg, base, sd, V), ids, meta=True)
        ref = forward(cfg, m2u_model(cfg, base, tr, scale, V), ids)
    err = (got - ref).abs().max().item()
    check(err < 1e-4, f"m2ugen: torch.load(weights_only=True) + Meta-layout M2UGen forward vs m2u model, max abs diff {err:.2e}")
    shapes = {k: tuple(v.shape) for k, v in sd.items() if k.endswith(("agg.weight", "query_embs", "attention.gate"))}
    check(all(len(s) in (3, 4) for s in shapes.values()), f"m2ugen: M2UGen shapes {sorted(set(shapes.values()))}")
    print(f"verify_export: {'all checks passed' if not FAILS else str(len(FAILS)) + ' FAILED'} (exports in {out})")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
