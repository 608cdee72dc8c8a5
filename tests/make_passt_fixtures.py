#!/usr/bin/env python3
"""Generate the PaSST / librosa-loader / KL fixtures in tests/fixtures/passt/, read by
tests/test_passt.c (loader, front end, logits) and tests/eval/test_passt_kl.c (m2u-eval kl).

Python is only used to *make* reference files; the C toolkit never runs Python.

Pinned versions (refused otherwise):
    torch 2.15.0, timm 0.4.12, hear21passt 0.0.26, librosa 0.10.1, soxr (python-soxr) 0.3.7
    (bundled libsoxr 0.1.3-7-gacc0dac), soundfile 0.14.0, numpy 1.26.4, safetensors 0.8.0;
    torchaudio 2.5.1 source (see below).
This machine's torchaudio (2.5.1) has a C extension that does not load against its torch
(2.15.0), and hear21passt imports torchaudio for two things only: the mel banks
(torchaudio.compliance.kaldi.get_mel_banks, pure Python) and the training-time masking
transforms.  So a stand-in `torchaudio` module is installed before hear21passt is imported:
its compliance.kaldi is torchaudio 2.5.1's own kaldi.py executed from the installed file,
and transforms.FrequencyMasking / TimeMasking are never called in eval mode (they raise if
they are).  Everything else is hear21passt's own code.

Usage:  python3 tests/make_passt_fixtures.py     (needs ffmpeg for the .mp3 / .flac files)

What it makes:
  passt_tiny.pt   a tiny random PaSST (hear21passt.models.passt.PaSST:
                  embed 36, 12 heads, 2 blocks, MLP ratio 4, patch 16 stride 10, input
                  128 x 300 frames -> position tables 12 x 30, 40 classes, distilled) saved as
                  the hub checkpoint is (a state dict written by torch.save)
  audio/*.wav     short clips at 48 kHz (stereo), 44.1, 32, 22.05 and 16 kHz
  expected.safetensors
                  for each clip NAME: load_NAME = librosa.load(sr=32000)[:320000] (float32),
                  mel_NAME = AugmentMelSTFT (get_basic_model's settings, eval) [128, T],
                  logits_NAME = the wrapper's mode="logits" output [40];
                  logits_max: load_s32k tiled to 315 * 320 samples, the longest input the
                  time position table takes
  kl/ref/*, kl/gen/*   two folders paired by file stem (one unpaired file on each side)
  kl.json         {"kl": M2UGen's KL over the pairs, "pairs": [...], "unmatched": [...]}
"""
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import types

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "passt")


def install_torchaudio_standin():
    spec = importlib.util.find_spec("torchaudio")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("torchaudio (2.5.1) source not found")
    root = list(spec.submodule_search_locations)[0]
    with open(os.path.join(root, "version.py")) as f:
        if "__version__ = '2.5.1" not in f.read():
            sys.exit("torchaudio source is not 2.5.1")
    ta = types.ModuleType("torchaudio")
    ta.__path__ = []
    comp = types.ModuleType("torchaudio.compliance")
    kaldi = types.ModuleType("torchaudio.compliance.kaldi")
    ta.compliance = comp
    comp.kaldi = kaldi

    class NoTrainingMask(torch.nn.Module):
        def __init__(self, *a, **k):
            super().__init__()

        def forward(self, x):
            raise RuntimeError("masking is training-only")

    ta.transforms = types.SimpleNamespace(FrequencyMasking=NoTrainingMask, TimeMasking=NoTrainingMask)
    sys.modules["torchaudio"] = ta
    sys.modules["torchaudio.compliance"] = comp
    sys.modules["torchaudio.compliance.kaldi"] = kaldi
    with open(os.path.join(root, "compliance", "kaldi.py")) as f:
        exec(compile(f.read(), os.path.join(root, "compliance", "kaldi.py"), "exec"), kaldi.__dict__)


install_torchaudio_standin()

import librosa  # noqa: E402
import safetensors  # noqa: E402
import soundfile  # noqa: E402
import soxr  # noqa: E402
import timm  # noqa: E402
from importlib.metadata import version as dist_version  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from hear21passt.models.passt import PaSST  # noqa: E402
from hear21passt.models.preprocess import AugmentMelSTFT  # noqa: E402
from hear21passt.wrapper import PasstBasicWrapper  # noqa: E402

PINNED = {
    "torch": (torch.__version__.split("+")[0], "2.15.0"),
    "timm": (timm.__version__, "0.4.12"),
    "hear21passt": (dist_version("hear21passt"), "0.0.26"),
    "librosa": (librosa.__version__, "0.10.1"),
    "soxr": (soxr.__version__, "0.3.7"),
    "libsoxr (python-soxr)": (soxr.__libsoxr_version__, "0.1.3-7-gacc0dac"),
    "soundfile": (soundfile.__version__, "0.14.0"),
    "numpy": (np.__version__, "1.26.4"),
    "safetensors": (safetensors.__version__, "0.8.0"),
}
for name, (have, want) in PINNED.items():
    if have != want:
        sys.exit(f"{name} {have} != pinned {want}")

torch.manual_seed(0)
torch.set_num_threads(1)
rng = np.random.default_rng(15)

N_CLASSES, EMBED, HEADS, DEPTH, TDIM = 40, 36, 12, 2, 300


def make_model():
    net = PaSST(img_size=(128, TDIM), patch_size=16, stride=10, in_chans=1, num_classes=N_CLASSES, embed_dim=EMBED,
                depth=DEPTH, num_heads=HEADS, mlp_ratio=4.0, distilled=True)
    randomize_(net, head_std=0.8)
    net.eval()
    return net


def randomize_(net, head_std, seed=1):
    """PaSST's own init (std 0.02) gives near-uniform class probabilities and KLs of 1e-4;
    larger random weights make every term of the score matter.  (Also used at full size by
    eval/bench/bench_scorers_ref.py, with a head_std scaled to the width.)"""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name in (
                    "norm.weight", "head.0.weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.startswith("head.1.weight"):
                p.copy_(torch.randn(p.shape, generator=g) * head_std)
            else:
                std = 0.3 if p.dim() < 2 else 1.0 / math.sqrt(p[0].numel())
                p.copy_(torch.randn(p.shape, generator=g) * std)


def wrapper(net):
    # get_basic_model's front end (base.py), with our net
    mel = AugmentMelSTFT(n_mels=128, sr=32000, win_length=800, hopsize=320, n_fft=1024, freqm=48, timem=192,
                         htk=False, fmin=0.0, fmax=None, norm=1, fmin_aug_range=10, fmax_aug_range=2000)
    m = PasstBasicWrapper(mel=mel, net=net, mode="logits")
    m.eval()
    return m


def signal(rate, seconds, channels, seed):
    r = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    out = []
    for c in range(channels):
        f0 = r.uniform(80, 2000)
        x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.2 * np.sin(2 * np.pi * r.uniform(3000, 9000) * t + c)
        x += r.uniform(0.01, 0.2) * r.standard_normal(n)
        x *= np.minimum(1, 4 * t / seconds) if seed % 2 else 1
        out.append(x)
    return np.clip(np.stack(out, 1), -0.99, 0.99)


def write(path, rate, x, fmt="wav"):
    if fmt == "wav":
        soundfile.write(path, x, rate, subtype="PCM_16")
        return
    tmp = path + ".tmp.wav"
    soundfile.write(tmp, x, rate, subtype="PCM_16")
    args = ["-c:a", "libmp3lame", "-b:a", "128k"] if fmt == "mp3" else []
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", tmp, *args, path], check=True)
    os.remove(tmp)


def load(path):
    # M2UGen Evaluation/*/evaluate.py: librosa.load(sr=32000), first 10 s
    y, _ = librosa.load(path, sr=32000)
    return y[:320000].astype(np.float32)


def m2ugen_kl(model, a, b):
    """M2UGen evaluate.py: softmax both, kl_div(log(p_gen + 1e-6), p_ref).sum(-1)."""
    p_ref = torch.softmax(model(a), dim=-1)
    p_gen = torch.softmax(model(b), dim=-1)
    return float(torch.nn.functional.kl_div(torch.log(p_gen + 1e-6), p_ref, reduction="none").sum(-1).mean())


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "audio"))
    net = make_model()
    torch.save(net.state_dict(), os.path.join(OUT, "passt_tiny.pt"))
    model = wrapper(net)

    clips = [("s48k", 48000, 2, 0.3), ("s44k", 44100, 1, 0.3), ("s32k", 32000, 1, 0.3),
             ("s22k", 22050, 1, 0.3), ("s16k", 16000, 1, 0.3)]
    exp = {}
    with torch.no_grad():
        for i, (name, rate, ch, sec) in enumerate(clips):
            path = os.path.join(OUT, "audio", name + ".wav")
            write(path, rate, signal(rate, sec, ch, 100 + i))
            y = load(path)
            x = torch.from_numpy(y)[None]
            exp["load_" + name] = torch.from_numpy(y)
            exp["mel_" + name] = model.mel(x)[0].contiguous()
            exp["logits_" + name] = model(x)[0].contiguous()
        # the longest input the time table takes: 30 patches <-> (30-1)*10+16+9 = 315 frames
        # input: load_s32k tiled to 315 * 320 samples (the C test tiles it the same way)
        n_max = 315 * 320
        x = torch.from_numpy(np.resize(exp["load_s32k"].numpy(), n_max))[None]
        exp["logits_max"] = model(x)[0].contiguous()
    save_file(exp, os.path.join(OUT, "expected.safetensors"))

    # KL folders: stems pair the files; generated .flac; one unpaired file on each side
    ref_dir, gen_dir = os.path.join(OUT, "kl", "ref"), os.path.join(OUT, "kl", "gen")
    os.makedirs(ref_dir)
    os.makedirs(gen_dir)
    pairs = [("a", 32000, 48000), ("b", 44100, 32000), ("c", 16000, 22050)]
    for j, (stem, rr, gr) in enumerate(pairs):
        write(os.path.join(ref_dir, stem + ".wav"), rr, signal(rr, 0.3, 1, 200 + j))
        write(os.path.join(gen_dir, stem + ".flac"), gr, signal(gr, 0.3, 1 + (j == 0), 300 + j), fmt="flac")
    write(os.path.join(ref_dir, "only_ref.wav"), 32000, signal(32000, 0.2, 1, 400))
    write(os.path.join(gen_dir, "only_gen.wav"), 32000, signal(32000, 0.2, 1, 401))
    kls = []
    with torch.no_grad():
        for stem, _, _ in pairs:
            a = torch.from_numpy(load(os.path.join(ref_dir, stem + ".wav")))[None]
            b = torch.from_numpy(load(os.path.join(gen_dir, stem + ".flac")))[None]
            kls.append(m2ugen_kl(model, a, b))
    with open(os.path.join(OUT, "kl.json"), "w") as f:
        json.dump({"kl": float(np.mean(kls)), "per_pair": kls, "pairs": [p[0] for p in pairs],
                   "unmatched": ["ref/only_ref.wav", "gen/only_gen.wav"], "heads": HEADS}, f, indent=1)
    print("kl", np.mean(kls), kls)


if __name__ == "__main__":
    main()
