#!/usr/bin/env python3
"""Generate the reference fixtures of the frozen encoders (ViT, ViViT, MERT) in
tests/fixtures/encoders/, read by tests/test_encoders.c.

Python is only used to *make* reference files; the C toolkit never runs Python.

Pinned versions (the script refuses to run with others, since outputs must be
bit-identical across regenerations):
    torch 2.5.1, transformers 4.46.3, safetensors 0.8.0, numpy 1.26.4

Usage:  python3 tests/make_encoder_fixtures.py      (from the repository root or anywhere)

Each model is a tiny random configuration of the real architecture, built with
transformers' own classes (ViTModel, VivitModel, HubertModel) and processors
(ViTImageProcessor, VivitImageProcessor, Wav2Vec2FeatureExtractor).  MERT's
MERTModel (hub remote code, m-a-p/MERT-v1-*) subclasses HubertModel and, with
feature_extractor_cqt=false and deepnorm=false as in both v1 checkpoints, runs
exactly HubertModel's forward; so the MERT references are HubertModel outputs,
with config.json written the way MERT's is (model_type "mert_model" + its keys)
for one of them.  See tests/fixtures/encoders/README.md for the file list.
"""
import glob
import hashlib
import json
import os
import shutil
import sys
import warnings

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy
import safetensors
import torch
import transformers
from safetensors.torch import load_file, save_file

PINNED = {
    "torch": (torch.__version__.split("+")[0], "2.5.1"),
    "transformers": (transformers.__version__, "4.46.3"),
    "safetensors": (safetensors.__version__, "0.8.0"),
    "numpy": (numpy.__version__, "1.26.4"),
}
for _name, (_have, _want) in PINNED.items():
    if _have != _want:
        sys.exit(f"make_encoder_fixtures: need {_name}=={_want}, found {_have}")

from transformers import (HubertConfig, HubertModel, ViTConfig, ViTImageProcessor, ViTModel, VivitConfig,
                          VivitImageProcessor, VivitModel, Wav2Vec2FeatureExtractor)

warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
torch.backends.mkldnn.enabled = False  # plain ATen CPU kernels only

ROOT = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ROOT, "fixtures", "encoders")
sys.dont_write_bytecode = True  # no __pycache__ in tests/ from this import
sys.path.insert(0, ROOT)
from make_m2u_fixtures import save_file_sorted_meta  # noqa: E402  (sorted __metadata__, shared)
VERSIONS = "torch=2.5.1,transformers=4.46.3,safetensors=0.8.0,numpy=1.26.4"

# ---- configurations ------------------------------------------------------------------------------

VITS = [
    # square, defaults of ViTImageProcessor (no preprocessor_config.json), weights under "vit."
    dict(name="vit_a", seed=6101, prefix="vit.", preprocessor=None,
         config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                     image_size=32, patch_size=8, hidden_act="gelu", layer_norm_eps=1e-12)),
    # non-square image and patches (3 x 10 patches), tanh GELU, ImageNet mean/std from the file
    dict(name="vit_b", seed=6202, prefix="",
         preprocessor=dict(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]),
         config=dict(hidden_size=24, num_hidden_layers=3, num_attention_heads=3, intermediate_size=40,
                     image_size=[24, 40], patch_size=[8, 4], hidden_act="gelu_new", layer_norm_eps=1e-6)),
]

VIVITS = [
    # kinetics400-style: gelu_fast, weights under "vivit.", preprocessor as the hub's current file
    # (rescale 1/127.5 with offset -> [-1, 1], then normalize mean/std 0.5 -> [-3, 1])
    dict(name="vivit_a", seed=6303, prefix="vivit.",
         preprocessor=dict(rescale_factor=1 / 127.5, offset=True, do_normalize=True,
                           image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5]),
         config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                     image_size=16, num_frames=4, tubelet_size=[2, 8, 8])),
    # 3-frame, non-square tubelets, exact GELU, processor defaults (no preprocessor_config.json)
    dict(name="vivit_b", seed=6404, prefix="", preprocessor=None,
         config=dict(hidden_size=24, num_hidden_layers=2, num_attention_heads=2, intermediate_size=40,
                     image_size=16, num_frames=6, tubelet_size=[3, 4, 8], hidden_act="gelu",
                     layer_norm_eps=1e-6)),
]

# sampling_rate 100 Hz so that the 60 s windows of the feature API are 6000 samples.
MERTS = [
    # MERT-v1-95M style: post-norm, GroupNorm feature encoder, no conv bias, even positional kernel,
    # weight-norm stored as weight_g / weight_v (the hub files' naming), config.json as MERT writes it
    dict(name="mert_a", seed=6505, mert_config=True, file="model.safetensors", wn_legacy=True,
         preprocessor=dict(sampling_rate=100, do_normalize=True),
         config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                     conv_dim=[16, 16, 16], conv_kernel=[10, 3, 3], conv_stride=[5, 2, 2], conv_bias=False,
                     feat_extract_norm="group", num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                     do_stable_layer_norm=False, feat_proj_layer_norm=True, layer_norm_eps=1e-5)),
    # MERT-v1-330M style pre-norm (do_stable_layer_norm), plus the other variants: LayerNorm feature
    # encoder with conv bias, odd positional kernel, no feature-projection LayerNorm, tanh GELU,
    # do_normalize false; a torch.save pytorch_model.bin with parametrizations.weight.original0/1
    dict(name="mert_b", seed=6606, mert_config=False, file="pytorch_model.bin", wn_legacy=False,
         preprocessor=dict(sampling_rate=100, do_normalize=False),
         config=dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=40,
                     conv_dim=[12, 16, 16, 16], conv_kernel=[10, 3, 3, 2], conv_stride=[5, 2, 2, 2], conv_bias=True,
                     feat_extract_norm="layer", num_conv_pos_embeddings=15, num_conv_pos_embedding_groups=2,
                     do_stable_layer_norm=True, feat_proj_layer_norm=False, layer_norm_eps=1e-5,
                     hidden_act="gelu_new")),
]
MERT_SR = 100
MERT_CLIPS = [  # (name, samples): hidden states on the first; layer means on the others
    ("clip", 1000),        # 10 s -> one window; all hidden states are stored
    ("clip_long", 14000),  # 140 s -> windows of 6000, 6000, 2000
    ("clip_tail", 6020),   # 60.2 s -> a 20-sample tail too short for a frame: left out
]


# ---- helpers -----------------------------------------------------------------------------------------

@torch.no_grad()
def randomize(module, gen):
    """Every path visible: matrices / convs N(0, 1/fan_in), biases 0.1 N(0,1), norm weights
    1 + 0.2 N(0,1), CLS / position embeddings 0.5 N(0,1), weight-norm magnitudes so that each tap's
    weights are ~1/sqrt(fan_in). Deterministic (sorted names)."""
    for name, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
        leaf = name.rsplit(".", 1)[-1]
        if name.endswith("original0") or name.endswith("weight_g"):  # g [1, 1, K]
            v_fan = p.shape[-1]
            p.copy_((1.0 + 0.2 * torch.randn(p.shape, generator=gen)) * (module.config.hidden_size / v_fan) ** 0.5)
        elif name.endswith("original1") or name.endswith("weight_v"):
            p.copy_(torch.randn(p.shape, generator=gen))
        elif leaf in ("cls_token", "position_embeddings"):
            p.copy_(0.5 * torch.randn(p.shape, generator=gen))
        elif leaf == "masked_spec_embed":  # training only; kept so the file has what MERT's has
            p.copy_(torch.rand(p.shape, generator=gen))
        elif leaf == "weight" and "norm" in name:
            p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
        elif leaf == "bias":
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        elif p.dim() >= 2:
            fan_in = 1
            for s in p.shape[1:]:
                fan_in *= s
            p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)
        else:
            raise RuntimeError(f"unexpected parameter {name}")


def write_json(path, obj):
    with open(path, "w") as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def state_dict(model, prefix=""):
    return {prefix + k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def stacked(hidden_states):
    return torch.stack([h[0] for h in hidden_states], 0).contiguous()


def rel(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


# ---- ViT / ViViT ---------------------------------------------------------------------------------------

def make_vision(spec, video):
    torch.manual_seed(spec["seed"])
    gen = torch.Generator().manual_seed(spec["seed"])
    cfg = (VivitConfig if video else ViTConfig)(**spec["config"])
    cfg._attn_implementation = "eager"
    model = (VivitModel if video else ViTModel)(cfg, add_pooling_layer=False).float().eval()
    randomize(model, gen)
    d = os.path.join(OUT, spec["name"])
    os.makedirs(d)
    cfg.save_pretrained(d)
    save_file(state_dict(model, spec["prefix"]), os.path.join(d, "model.safetensors"), metadata={"format": "pt"})

    if video:
        H = W = cfg.image_size
        F = cfg.num_frames
    else:
        H, W = (cfg.image_size, cfg.image_size) if isinstance(cfg.image_size, int) else cfg.image_size
        F = 1
    pp_kw = dict(spec["preprocessor"] or {})
    # the sizes are what the model takes, so the (skipped) resize / crop would be identities
    if video:
        proc = VivitImageProcessor(size={"shortest_edge": H}, crop_size={"height": H, "width": W}, **pp_kw)
    else:
        proc = ViTImageProcessor(size={"height": H, "width": W}, **pp_kw)
    if spec["preprocessor"] is not None:
        proc.save_pretrained(d)
    else:
        proc = (VivitImageProcessor if video else ViTImageProcessor)()  # the class defaults

    pixels = torch.randint(0, 256, (F, H, W, 3), generator=gen, dtype=torch.uint8)
    frames = [pixels[f].numpy() for f in range(F)]
    if video:
        pv = proc([frames], do_resize=False, do_center_crop=False, return_tensors="pt").pixel_values
        assert pv.shape == (1, F, 3, H, W)
    else:
        pv = proc(images=frames[0], do_resize=False, return_tensors="pt").pixel_values
        assert pv.shape == (1, 3, H, W)
    with torch.no_grad():
        out = model(pixel_values=pv, output_hidden_states=True)
    hs = stacked(out.hidden_states)
    n_tokens = hs.shape[1]
    tensors = {
        "image": pixels.contiguous() if video else pixels[0].contiguous(),
        "pixel_values": pv[0].contiguous(),
        "hidden_states": hs,
        "last_hidden_state": out.last_hidden_state[0].contiguous(),
    }
    meta = {"kind": "vivit" if video else "vit", "n_tokens": str(n_tokens), "hidden": str(cfg.hidden_size),
            "layers": str(cfg.num_hidden_layers), "frames": str(F), "height": str(H), "width": str(W),
            "versions": VERSIONS}
    path = os.path.join(OUT, "ref_" + spec["name"] + ".safetensors")
    save_file_sorted_meta(tensors, path, meta)

    # reload the directory through transformers and recompute from the stored pixels
    m2 = (VivitModel if video else ViTModel).from_pretrained(d, attn_implementation="eager",
                                                             add_pooling_layer=False).eval()
    if spec["prefix"]:
        m2.load_state_dict({k[len(spec["prefix"]):]: v for k, v in load_file(os.path.join(d, "model.safetensors"))
                            .items()}, strict=True)
    ref = load_file(path)
    with torch.no_grad():
        assert torch.equal(m2(pixel_values=ref["pixel_values"][None]).last_hidden_state[0], ref["last_hidden_state"])
    print(f"  {spec['name']}: {n_tokens} tokens x {cfg.hidden_size}, {cfg.num_hidden_layers} layers, "
          f"last std {ref['last_hidden_state'].std().item():.3f}")


# ---- MERT (HubertModel) --------------------------------------------------------------------------------

def mert_config_json(cfg, spec):
    """config.json as m-a-p/MERT-v1-* writes it: MERTConfig's keys (a superset of HubertConfig's),
    model_type "mert_model", architectures MERTModel, auto_map to the remote code."""
    d = cfg.to_dict()
    for k in ("_attn_implementation_autoset", "transformers_version"):
        d.pop(k, None)
    d.update(model_type="mert_model", architectures=["MERTModel"],
             auto_map={"AutoConfig": "configuration_MERT.MERTConfig", "AutoModel": "modeling_MERT.MERTModel"},
             feature_extractor_cqt=False, feature_extractor_cqt_bins=336, deepnorm=False, attention_relax=-1.0,
             sample_rate=MERT_SR, transformers_version="4.46.3")
    return d


def mert_window_means(model, fe, wav, window):
    """Feature API reference: 60 s windows (here `window` samples), each through the processor on
    its own, hidden states averaged over time, windows averaged; a window too short to give one
    frame is left out (HubertModel would fail on it)."""
    total, count = None, 0
    for start in range(0, len(wav), window):
        seg = wav[start:start + window]
        if start > 0 and model._get_feat_extract_output_lengths(torch.tensor(len(seg))).item() <= 0:
            break
        iv = fe(seg, sampling_rate=MERT_SR, return_tensors="pt").input_values
        with torch.no_grad():
            hs = torch.stack(model(iv, output_hidden_states=True).hidden_states).squeeze(1)  # [L+1, T, H]
        m = hs.mean(-2)
        total = m if total is None else total + m
        count += 1
    return (total / count).contiguous(), count


def make_mert(spec):
    torch.manual_seed(spec["seed"])
    gen = torch.Generator().manual_seed(spec["seed"])
    cfg = HubertConfig(**spec["config"])
    cfg._attn_implementation = "eager"
    model = HubertModel(cfg).float().eval()
    randomize(model, gen)
    d = os.path.join(OUT, spec["name"])
    os.makedirs(d)
    if spec["mert_config"]:
        write_json(os.path.join(d, "config.json"), mert_config_json(cfg, spec))
    else:
        cfg.save_pretrained(d)
    sd = state_dict(model)
    if spec["wn_legacy"]:  # torch.nn.utils.weight_norm naming, as in the hub's MERT files
        base = "encoder.pos_conv_embed.conv."
        sd[base + "weight_g"] = sd.pop(base + "parametrizations.weight.original0")
        sd[base + "weight_v"] = sd.pop(base + "parametrizations.weight.original1")
    if spec["file"].endswith(".bin"):
        torch.save(sd, os.path.join(d, spec["file"]))
    else:
        save_file(sd, os.path.join(d, spec["file"]), metadata={"format": "pt"})
    fe = Wav2Vec2FeatureExtractor(feature_size=1, padding_value=0.0, return_attention_mask=True,
                                  **spec["preprocessor"])
    fe.save_pretrained(d)

    tensors = {}
    window = 60 * MERT_SR
    counts = []
    for clip, n in MERT_CLIPS:
        t = torch.arange(n, dtype=torch.float64) / MERT_SR
        # a tone, noise and a DC offset (so the normalisation has a mean to remove)
        wav = (0.3 * torch.sin(2 * torch.pi * 7.0 * t) + 0.2 * torch.randn(n, generator=gen, dtype=torch.float64)
               + 0.05).float().numpy()
        tensors[clip] = torch.from_numpy(wav.copy())
        if clip == "clip":
            iv = fe(wav, sampling_rate=MERT_SR, return_tensors="pt").input_values
            with torch.no_grad():
                out = model(iv, output_hidden_states=True)
            tensors["input_values"] = iv[0].contiguous()
            tensors["hidden_states"] = stacked(out.hidden_states)
            assert torch.equal(tensors["hidden_states"][-1], out.last_hidden_state[0])
        means, cnt = mert_window_means(model, fe, wav, window)
        tensors[clip + "_means"] = means
        counts.append(f"{clip}:{cnt}")
    L1, T, H = tensors["hidden_states"].shape
    meta = {"kind": "mert", "layers": str(cfg.num_hidden_layers), "hidden": str(H), "frames": str(T),
            "sampling_rate": str(MERT_SR), "windows": ",".join(counts), "versions": VERSIONS}
    path = os.path.join(OUT, "ref_" + spec["name"] + ".safetensors")
    save_file_sorted_meta(tensors, path, meta)

    # reload the directory through transformers (old weight-norm names are renamed on load)
    m2 = HubertModel.from_pretrained(d, attn_implementation="eager").eval() if not spec["mert_config"] else None
    if m2 is None:
        m2 = HubertModel(cfg).eval()
        sd2 = load_file(os.path.join(d, spec["file"]))
        base = "encoder.pos_conv_embed.conv."
        sd2[base + "parametrizations.weight.original0"] = sd2.pop(base + "weight_g")
        sd2[base + "parametrizations.weight.original1"] = sd2.pop(base + "weight_v")
        m2.load_state_dict(sd2, strict=True)
    ref = load_file(path)
    with torch.no_grad():
        hs2 = stacked(m2(ref["input_values"][None], output_hidden_states=True).hidden_states)
    assert torch.equal(hs2, ref["hidden_states"])
    print(f"  {spec['name']}: {L1} hidden states x {T} frames x {H}, windows {meta['windows']}, "
          f"last std {ref['hidden_states'][-1].std().item():.3f}")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in glob.glob(os.path.join(OUT, "ref_*.safetensors")):
        os.remove(old)
    for spec in VITS + VIVITS + MERTS:
        shutil.rmtree(os.path.join(OUT, spec["name"]), ignore_errors=True)
    for spec in VITS:
        make_vision(spec, video=False)
    for spec in VIVITS:
        make_vision(spec, video=True)
    for spec in MERTS:
        make_mert(spec)
    total = 0
    for path in sorted(glob.glob(os.path.join(OUT, "**", "*"), recursive=True)):
        if os.path.isdir(path) or path.endswith("README.md"):
            continue
        sz = os.path.getsize(path)
        total += sz
        print(f"{sz:9d}  {sha256(path)[:16]}  {os.path.relpath(path, OUT)}")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
