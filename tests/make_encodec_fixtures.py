#!/usr/bin/env python3
"""Generate the EnCodec reference fixtures in tests/fixtures/encodec/, read by tests/test_encodec.c.

Python is only used to *make* reference files; the C toolkit never runs Python.

Pinned versions (the script refuses to run with others, since outputs must be
bit-identical across regenerations):
    torch 2.5.1, transformers 4.46.3, safetensors 0.8.0, numpy 1.26.4

Usage:  python3 tests/make_encodec_fixtures.py      (from the repository root or anywhere)

Two tiny random EncodecModel configurations in the style of facebook/encodec_32khz (weight norm,
non-causal convs, reflect padding, 2-layer LSTM, no normalisation, no chunking), differing in
num_filters, ratios, kernel sizes, residual layers, codebook count and size, hidden size and shortcut:
  encodec_a/  an EnCodec directory as the hub ships encodec_32khz: config.json + model.safetensors with
              the weight-norm tensors named weight_g / weight_v (torch.nn.utils.weight_norm naming).
  musicgen_b/ a tiny MusicgenForConditionalGeneration saved by save_pretrained as pytorch_model.bin
              (T5 text encoder + EnCodec under "audio_encoder." + decoder); its config.json holds the
              codec config as "audio_encoder"; weight norm named parametrizations.weight.original0/1.
ref_<name>.safetensors: fixed codes -> EncodecModel.decode audio (all codebooks, fewer codebooks, one
frame), and fixed waveforms -> EncodecModel.encode codes at each target bandwidth (a long one whose
length is not a multiple of the hop, and a 3-sample one that takes transformers' short-input reflect
padding path).  For every encode the script checks that the nearest codebook entry wins by a clear
margin over the second (distance gap printed), so identical codes are a fair test of fp32 C code.
"""
import json
import math
import os
import shutil
import struct
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
        sys.exit(f"make_encodec_fixtures: need {_name}=={_want}, found {_have}")

from transformers import (EncodecConfig, EncodecModel, MusicgenConfig, MusicgenDecoderConfig,
                          MusicgenForConditionalGeneration, T5Config)

warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
torch.backends.mkldnn.enabled = False  # plain ATen CPU kernels only

ROOT = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ROOT, "fixtures", "encodec")
VERSIONS = "torch=2.5.1,transformers=4.46.3,safetensors=0.8.0,numpy=1.26.4"

# 32 kHz style: the keys encodec_32khz's config.json sets, with tiny sizes
COMMON = dict(audio_channels=1, normalize=False, chunk_length_s=None, overlap=None, norm_type="weight_norm",
              use_causal_conv=False, pad_mode="reflect", num_lstm_layers=2, trim_right_ratio=1.0,
              dilation_growth_rate=2)
SPECS = [
    # hop 16 at 1600 Hz -> frame_rate 100; 3 quantizers; bandwidth 1.2 -> 2 codebooks, 3.0 -> 3
    dict(name="encodec_a", seed=7101, musicgen=False,
         config=dict(COMMON, sampling_rate=1600, num_filters=4, upsampling_ratios=[4, 2, 2], hidden_size=16,
                     codebook_size=64, target_bandwidths=[1.2, 3.0], num_residual_layers=1, kernel_size=7,
                     last_kernel_size=7, residual_kernel_size=3, compress=2, use_conv_shortcut=False)),
    # hop 18 at 1800 Hz -> frame_rate 100; 4 quantizers; bandwidth 1.0 -> 2 codebooks, 4.0 -> 4; two residual
    # layers per stage (dilations 1 and 3), odd ratio 3 (asymmetric trims), 1x1 conv shortcuts, compress 3
    dict(name="musicgen_b", seed=7202, musicgen=True,
         config=dict(COMMON, sampling_rate=1800, num_filters=6, upsampling_ratios=[3, 3, 2], hidden_size=12,
                     codebook_size=32, target_bandwidths=[1.0, 4.0], num_residual_layers=2, kernel_size=5,
                     last_kernel_size=3, residual_kernel_size=3, compress=3, use_conv_shortcut=True,
                     dilation_growth_rate=3)),
]
DECODE_FRAMES = 23
ENCODE_EXTRA = 5  # samples past a whole number of hops


def save_file_sorted_meta(tensors, path, metadata):
    """safetensors stores __metadata__ in a Rust HashMap (random order per process); rewrite the header
    with the metadata keys sorted. Same byte length, so offsets are unchanged."""
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


def randomize(model, gen):
    """Every path visible, activations O(1) through the stack: conv directions v ~ N(0,1) with magnitudes g
    giving entries ~ 1/sqrt(fan in), biases 0.1 N(0,1), LSTM weights U(+-1/sqrt(H)) (torch's default range),
    codebooks N(0,1) (transformers initialises them to zeros).  Deterministic (sorted names)."""
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        with torch.no_grad():
            if name.endswith("original0"):  # g [d0, 1, 1]
                conv = model.get_submodule(name.rsplit(".parametrizations", 1)[0])
                if isinstance(conv, torch.nn.ConvTranspose1d):
                    scale = math.sqrt(conv.out_channels * conv.stride[0] / conv.in_channels)
                else:
                    scale = 1.0
                p.copy_(scale * (1 + 0.2 * torch.randn(p.shape, generator=gen)))
            elif name.endswith("original1"):
                p.copy_(torch.randn(p.shape, generator=gen))
            elif "lstm" in name:
                h = p.shape[-1] if p.dim() == 2 else p.shape[0] // 4
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) / math.sqrt(h))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                raise SystemExit(f"make_encodec_fixtures: no rule for parameter {name}")
    for name, b in sorted(model.named_buffers(), key=lambda kv: kv[0]):
        if name.endswith("codebook.embed"):
            with torch.no_grad():
                b.copy_(torch.randn(b.shape, generator=gen))


def rvq_margin(codec, wav, n_q):
    """Smallest gap between the best and second-best distance over every frame and codebook of an encode,
    relative to the best distance's scale: how far fp32 rounding is from flipping a code."""
    with torch.no_grad():
        residual = codec.encoder(wav)[0].t()  # [N, D]
        worst = float("inf")
        for layer in codec.quantizer.layers[:n_q]:
            e = layer.codebook.embed
            d = (residual.double()[:, None, :] - e.double()[None]).pow(2).sum(-1)
            top2 = d.topk(2, dim=1, largest=False).values
            gap = ((top2[:, 1] - top2[:, 0]) / (1 + top2[:, 0])).min().item()
            worst = min(worst, gap)
            residual = residual - e[d.argmin(1)]
    return worst


def make(spec):
    gen = torch.Generator().manual_seed(spec["seed"])
    torch.manual_seed(spec["seed"])
    ecfg = EncodecConfig(**spec["config"])
    d = os.path.join(OUT, spec["name"])
    os.makedirs(d)
    if spec["musicgen"]:
        t5 = T5Config(vocab_size=40, d_model=8, d_kv=4, d_ff=16, num_layers=1, num_heads=2,
                      relative_attention_num_buckets=8, decoder_start_token_id=0)
        dec = MusicgenDecoderConfig(vocab_size=ecfg.codebook_size, hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=2, ffn_dim=32, num_codebooks=ecfg.num_quantizers,
                                    max_position_embeddings=64, pad_token_id=ecfg.codebook_size,
                                    bos_token_id=ecfg.codebook_size)
        full = MusicgenForConditionalGeneration(MusicgenConfig.from_sub_models_config(t5, ecfg, dec)).eval()
        codec = full.audio_encoder
        randomize(codec, gen)
        full.save_pretrained(d, safe_serialization=False)
        # generation_config.json is not what the codec needs; keep the directory to what a loader reads
        gc = os.path.join(d, "generation_config.json")
        if os.path.exists(gc):
            os.remove(gc)
        sd = torch.load(os.path.join(d, "pytorch_model.bin"), weights_only=True)
        assert any(k.startswith("audio_encoder.decoder.layers.0.conv.parametrizations") for k in sd)
    else:
        codec = EncodecModel(ecfg).eval()
        randomize(codec, gen)
        ecfg.save_pretrained(d)
        sd = {k: v.detach().clone().contiguous() for k, v in codec.state_dict().items()}
        # the hub's files (converted with torch.nn.utils.weight_norm) name the parts weight_g / weight_v
        for k in sorted(sd):
            if k.endswith("parametrizations.weight.original0"):
                base = k[: -len("parametrizations.weight.original0")]
                sd[base + "weight_g"] = sd.pop(k)
                sd[base + "weight_v"] = sd.pop(base + "parametrizations.weight.original1")
        save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        # reload through transformers: the renamed file must give the same model
        re = EncodecModel.from_pretrained(d).eval()
        for (n1, t1), (n2, t2) in zip(sorted(codec.state_dict().items()), sorted(re.state_dict().items())):
            assert n1 == n2 and torch.equal(t1, t2), n1

    K, hop = ecfg.num_quantizers, int(numpy.prod(ecfg.upsampling_ratios))
    tensors, meta = {}, {"versions": VERSIONS, "hop": str(hop), "num_quantizers": str(K),
                         "bandwidths": ",".join(repr(b) for b in ecfg.target_bandwidths)}
    with torch.no_grad():
        for tag, k, n in (("dec", K, DECODE_FRAMES), ("dec2", 2, DECODE_FRAMES), ("dec1", K, 1)):
            codes = torch.randint(0, ecfg.codebook_size, (k, n), generator=gen, dtype=torch.int64)
            audio = codec.decode(codes[None, None], [None]).audio_values[0, 0]
            assert audio.shape == (n * hop,)
            tensors[tag + ".codes"], tensors[tag + ".audio"] = codes, audio.contiguous()
        n = DECODE_FRAMES * hop + ENCODE_EXTRA
        t = torch.arange(n, dtype=torch.float64) / ecfg.sampling_rate
        wav = (0.4 * torch.sin(2 * math.pi * 97.0 * t) + 0.2 * torch.sin(2 * math.pi * 301.0 * t)).float()
        wav = wav + 0.1 * torch.randn(n, generator=gen)
        short = 0.5 * torch.randn(3, generator=gen)
        tensors["enc.wav"], tensors["enc_short.wav"] = wav.contiguous(), short.contiguous()
        margins = []
        for i, bw in enumerate(ecfg.target_bandwidths):
            nq = codec.quantizer.get_num_quantizers_for_bandwidth(bw)
            for tag, w in (("enc", wav), ("enc_short", short)):
                out = codec.encode(w[None, None], bandwidth=bw)
                codes = out.audio_codes[0, 0]
                assert codes.shape == (min(nq, K), math.ceil(len(w) / hop)), codes.shape
                tensors[f"{tag}.codes.{i}"] = codes.contiguous()
                m = rvq_margin(codec, w[None, None], nq)
                margins.append(m)
                assert m > 1e-5, f"{spec['name']} {tag} bw {bw}: nearest-code margin {m:.2e} too small"
    path = os.path.join(OUT, "ref_" + spec["name"] + ".safetensors")
    save_file_sorted_meta(tensors, path, meta)
    print(f"  {spec['name']}: hop {hop}, {K} codebooks of {ecfg.codebook_size}, decode |audio| max "
          f"{tensors['dec.audio'].abs().max().item():.3f}, smallest code margin {min(margins):.2e}")


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for spec in SPECS:
        make(spec)
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write("Generated by tests/make_encodec_fixtures.py (do not edit); read by tests/test_encodec.c.\n"
                "encodec_a/: EnCodec directory (config.json + model.safetensors, weight_g/weight_v).\n"
                "musicgen_b/: tiny MusicGen directory (config.json + pytorch_model.bin), codec under audio_encoder.\n"
                "ref_*.safetensors: dec*.codes/.audio (decode), enc*.wav and enc*.codes.<bandwidth index> (encode).\n")


if __name__ == "__main__":
    main()
