#!/usr/bin/env python3
"""Generate the reference fixtures of M2UGen's understanding adapters and output projector
(tests/fixtures/m2u/), read by tests/test_adapter.c and tests/test_projector.c.

Python is only used to *make* reference files; the C toolkit never runs Python.

Pinned versions (the script refuses to run with others, since outputs must be
bit-identical across regenerations):
    torch 2.5.1, safetensors 0.8.0, numpy 1.26.4

Usage:  python3 tests/make_m2u_fixtures.py      (from the repository root or anywhere)

The modules are rebuilt here from their definitions in shansongliu/M2UGen
(M2UGen/llama/m2ugen.py: mu_mert_* / iu_vit_* / iu_vivit_* and forward_audio/_image/_video
with knn=False, legacy_bridge=False; M2UGen/llama/projector.py: ProjectionLayer; the RMSNorm of
M2UGen/llama/llama.py), with the same attribute names, so the parameter names below are the
names in M2UGen's state_dict.  See tests/fixtures/m2u/README.md for what each file holds.
"""
import glob
import hashlib
import json
import os
import struct
import sys
import warnings

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy
import safetensors
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file, load_file

PINNED = {
    "torch": (torch.__version__.split("+")[0], "2.5.1"),
    "safetensors": (safetensors.__version__, "0.8.0"),
    "numpy": (numpy.__version__, "1.26.4"),
}
for _name, (_have, _want) in PINNED.items():
    if _have != _want:
        sys.exit(f"make_m2u_fixtures: need {_name}=={_want}, found {_have}")

warnings.filterwarnings("ignore")  # nn.Transformer's nested-tensor notice
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
torch.backends.mkldnn.enabled = False  # plain ATen CPU kernels only

ROOT = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ROOT, "fixtures", "m2u")
VERSIONS = "torch=2.5.1,safetensors=0.8.0,numpy=1.26.4"

ADAPTERS = [
    dict(name="adapter_music", seed=4101, prefix="mu_mert_", n_tokens=5, feat_dim=12, dim=16, batch=2),
    dict(name="adapter_image", seed=4202, prefix="iu_vit_", n_tokens=7, feat_dim=10, dim=16, batch=2),
    dict(name="adapter_video", seed=4303, prefix="iu_vivit_", n_tokens=9, feat_dim=6, dim=20, batch=3),
]
N_BLOCKS = 3
RMS_EPS = 1e-6  # M2UGen's RMSNorm default (the adapters pass none)

PROJECTORS = [
    dict(name="projector_a", seed=5101, dim=16, n_in=8, d_model=8, n_heads=2, n_enc=2, n_dec=2, ffn=12,
         n_out=6, out_dim=10, target_scale=10.0, batch=2),
    dict(name="projector_b", seed=5202, dim=12, n_in=8, d_model=12, n_heads=3, n_enc=1, n_dec=3, ffn=20,
         n_out=5, out_dim=7, target_scale=2.5, batch=3),
]


class RMSNorm(nn.Module):
    """M2UGen/llama/llama.py RMSNorm: x * rsqrt(mean(x^2) + eps) in fp32, times weight."""

    def __init__(self, dim, eps=RMS_EPS):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class Adapters(nn.Module):
    """One modality's adapter, registered under M2UGen's attribute names (<prefix>agg, ...)."""

    def __init__(self, prefix, n_tokens, feat_dim, dim):
        super().__init__()
        self.prefix = prefix
        setattr(self, prefix + "agg", nn.Conv1d(in_channels=n_tokens, out_channels=1, kernel_size=1))
        setattr(self, prefix + "proj", nn.Linear(feat_dim, dim))
        for k in range(1, N_BLOCKS + 1):
            setattr(self, f"{prefix}norm_{k}", RMSNorm(dim))
            setattr(self, f"{prefix}f1_{k}", nn.Linear(dim, dim, bias=False))
            setattr(self, f"{prefix}f2_{k}", nn.Linear(dim, dim, bias=False))
            setattr(self, f"{prefix}f3_{k}", nn.Linear(dim, dim, bias=False))

    def m(self, name):
        return getattr(self, self.prefix + name)

    def forward(self, feats):
        # encode_*: the aggregation Conv1d per sample on [1, n_tokens, feat], squeezed, stacked
        x = torch.stack([self.m("agg")(f[None]).squeeze() for f in feats], dim=0)
        x = F.normalize(x, dim=-1)
        x = x.unsqueeze(1)  # B, 1, D
        x = self.m("proj")(x)
        for k in range(1, N_BLOCKS + 1):
            n = self.m(f"norm_{k}")(x)
            x = x + self.m(f"f2_{k}")(F.silu(self.m(f"f1_{k}")(n)) * self.m(f"f3_{k}")(n))
        return x


class ProjectionLayer(nn.Module):
    """M2UGen/llama/projector.py ProjectionLayer, with the sizes as arguments."""

    def __init__(self, in_dim, out_dim, num_output_tokens, d_model, nhead, n_enc, n_dec, ffn):
        super().__init__()
        self.fc = nn.Linear(in_dim, d_model)
        self.tfm = nn.Transformer(batch_first=True, norm_first=False, d_model=d_model, num_encoder_layers=n_enc,
                                  num_decoder_layers=n_dec, dim_feedforward=ffn, dropout=0.0, nhead=nhead)
        self.model = nn.Linear(d_model, out_dim)
        self.query_embs = nn.Parameter(torch.randn(1, num_output_tokens, d_model))

    def forward(self, x, input_embs):
        x = x + input_embs
        x = self.fc(x)
        x = self.tfm(x, self.query_embs.repeat(x.shape[0], 1, 1))
        return self.model(x)


class Holder(nn.Module):
    def __init__(self, **kw):
        super().__init__()
        for k, v in kw.items():
            setattr(self, k, v)


@torch.no_grad()
def randomize(module, gen):
    """Every path visible: matrices N(0, 1/fan_in), biases 0.1 N(0,1), norm weights 1 + 0.2 N(0,1),
    LayerNorm biases 0.1 N(0,1), query embeddings N(0,1). Deterministic (sorted names)."""
    for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
        leaf = name.rsplit(".", 1)[-1]
        mod = name.rsplit(".", 1)[0].rsplit(".", 1)[-1]
        if name.endswith("query_embs"):
            p.copy_(torch.randn(p.shape, generator=gen))
        elif leaf == "weight" and ("norm" in mod):
            p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
        elif leaf.endswith("bias"):
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        elif p.dim() >= 2:  # Linear [out, in], in_proj [3E, E], Conv1d [1, C, 1]
            fan_in = p.shape[1] * (p.shape[2] if p.dim() == 3 else 1)
            p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)
        else:
            raise RuntimeError(f"unexpected parameter {name}")


def save_file_sorted_meta(tensors, path, metadata):
    """safetensors stores __metadata__ in a Rust HashMap (random order per process); rewrite
    the header with the metadata keys sorted. Same byte length, so offsets are unchanged."""
    save_file(tensors, path, metadata=metadata)
    with open(path, "rb") as f:
        blob = bytearray(f.read())
    n = struct.unpack("<Q", blob[:8])[0]
    hdr = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = hdr.pop("__metadata__")
    new = {"__metadata__": {k: meta[k] for k in sorted(meta)}}
    new.update(hdr)
    enc = json.dumps(new, separators=(",", ":")).encode("utf-8")
    assert len(enc) <= n
    blob[8:8 + n] = enc + b" " * (n - len(enc))
    with open(path, "wb") as f:
        f.write(blob)


def make_adapter(spec):
    torch.manual_seed(spec["seed"])
    gen = torch.Generator().manual_seed(spec["seed"])
    mod = Adapters(spec["prefix"], spec["n_tokens"], spec["feat_dim"], spec["dim"]).float().eval()
    randomize(mod, gen)
    B = spec["batch"]
    feats = torch.randn(B, spec["n_tokens"], spec["feat_dim"], generator=gen)
    dout = torch.randn(B, spec["dim"], generator=gen)
    mod.zero_grad(set_to_none=True)
    out = mod(feats)
    assert out.shape == (B, 1, spec["dim"])
    (out[:, 0] * dout).sum().backward()
    tensors = {"feats": feats.contiguous(), "dout": dout.contiguous(), "out": out.detach()[:, 0].contiguous()}
    for name, p in mod.named_parameters():
        tensors[name] = p.detach().contiguous()
        tensors["grad." + name] = p.grad.detach().contiguous()
    meta = {
        "kind": "adapter",
        "prefix": spec["prefix"],
        "n_tokens": str(spec["n_tokens"]),
        "feat_dim": str(spec["feat_dim"]),
        "dim": str(spec["dim"]),
        "n_blocks": str(N_BLOCKS),
        "norm_eps": repr(RMS_EPS),
        "l2_eps": "1e-12",
        "batch": str(B),
        "n_params": str(len(list(mod.parameters()))),
        "versions": VERSIONS,
    }
    path = os.path.join(OUT, spec["name"] + ".safetensors")
    save_file_sorted_meta(tensors, path, meta)
    # reload and recompute: the stored output is reproduced bit-exactly
    ref = load_file(path)
    mod2 = Adapters(spec["prefix"], spec["n_tokens"], spec["feat_dim"], spec["dim"]).float().eval()
    mod2.load_state_dict({k: v for k, v in ref.items() if k.startswith(spec["prefix"])}, strict=True)
    with torch.no_grad():
        assert torch.equal(mod2(ref["feats"])[:, 0], ref["out"])
    print(f"  {spec['name']}: out std {ref['out'].std().item():.3f}, {len(meta)} meta keys")


def make_projector(spec):
    torch.manual_seed(spec["seed"])
    gen = torch.Generator().manual_seed(spec["seed"])
    pl = ProjectionLayer(spec["dim"], spec["out_dim"], spec["n_out"], spec["d_model"], spec["n_heads"],
                         spec["n_enc"], spec["n_dec"], spec["ffn"])
    mod = Holder(output_projector=pl).float().eval()
    randomize(mod, gen)
    B, n_in = spec["batch"], spec["n_in"]
    hidden = torch.randn(B, n_in, spec["dim"], generator=gen).requires_grad_(True)
    embeds = torch.randn(B, n_in, spec["dim"], generator=gen).requires_grad_(True)
    target = 0.1 * torch.randn(B, spec["n_out"], spec["out_dim"], generator=gen)
    mod.zero_grad(set_to_none=True)
    out = mod.output_projector(hidden, embeds)
    assert out.shape == (B, spec["n_out"], spec["out_dim"])
    # M2UGen.forward: out_embed = 10 * <decoder conditioning>; l2_loss = nn.MSELoss()
    loss = nn.MSELoss()(out, spec["target_scale"] * target)
    loss.backward()
    assert torch.equal(hidden.grad, embeds.grad)
    tensors = {
        "hidden": hidden.detach().contiguous(),
        "embeds": embeds.detach().contiguous(),
        "x": (hidden + embeds).detach().contiguous(),
        "target": target.contiguous(),
        "out": out.detach().contiguous(),
        "loss": loss.detach().reshape(()).contiguous(),
        "grad.x": hidden.grad.detach().contiguous(),
    }
    n_params = 0
    for name, p in mod.named_parameters():
        tensors[name] = p.detach().contiguous()
        tensors["grad." + name] = p.grad.detach().contiguous()
        n_params += 1
    meta = {"kind": "projector", "prefix": "output_projector.", "n_params": str(n_params), "ln_eps": "1e-05",
            "versions": VERSIONS}
    for k in ("dim", "n_in", "d_model", "n_heads", "n_enc", "n_dec", "ffn", "n_out", "out_dim", "batch"):
        meta[k] = str(spec[k])
    meta["target_scale"] = repr(spec["target_scale"])
    path = os.path.join(OUT, spec["name"] + ".safetensors")
    save_file_sorted_meta(tensors, path, meta)
    ref = load_file(path)
    pl2 = ProjectionLayer(spec["dim"], spec["out_dim"], spec["n_out"], spec["d_model"], spec["n_heads"],
                          spec["n_enc"], spec["n_dec"], spec["ffn"])
    mod2 = Holder(output_projector=pl2).float().eval()
    mod2.load_state_dict({k: v for k, v in ref.items() if k.startswith("output_projector.")}, strict=True)
    with torch.no_grad():
        o2 = mod2.output_projector(ref["hidden"], ref["embeds"])
    assert torch.allclose(o2, ref["out"], rtol=1e-6, atol=1e-6), (o2 - ref["out"]).abs().max()
    print(f"  {spec['name']}: loss {ref['loss'].item():.6f}, out std {ref['out'].std().item():.3f}, "
          f"{n_params} parameters")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in glob.glob(os.path.join(OUT, "*.safetensors")):
        os.remove(old)
    for spec in ADAPTERS:
        make_adapter(spec)
    for spec in PROJECTORS:
        make_projector(spec)
    total = 0
    for path in sorted(glob.glob(os.path.join(OUT, "*"))):
        sz = os.path.getsize(path)
        total += sz
        print(f"{sz:9d}  {sha256(path)[:16]}  {os.path.basename(path)}")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
