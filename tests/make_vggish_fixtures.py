#!/usr/bin/env python3
"""Generate the VGGish / FAD fixtures in tests/fixtures/vggish/, read by
tests/eval/test_fad_vggish.c.

Python only *makes* reference files; the C toolkit never runs Python.

Pinned versions (refused otherwise):
    torch 2.15.0 (CPU fp32 here), numpy 1.26.4, safetensors 0.8.0,
    fad_pytorch 0.0.6 (installed --no-deps), torchvggish 0.2 (pip install --no-deps
    torchvggish==0.2: its mel_features.py, vggish_input.py and vggish_params.py are
    byte-identical to harritaylor/torchvggish f3f9096, the torch.hub code fad_pytorch loads),
    torchaudio 2.5.1 (its Python source only: on this machine libtorchaudio.so does not load
    against the installed torch, so the two functions of torchaudio.transforms.Resample,
    _get_sinc_resample_kernel and _apply_sinc_resample_kernel, are taken from the installed
    torchaudio/functional/functional.py with `ast` and run unchanged).

What is reproduced, and from where:
  - the network: harritaylor/torchvggish f3f9096 torchvggish/vggish.py (VGG, make_layers:
    the same module tree, key names and forward, with the widths as parameters so a tiny
    variant has the same structure), checked at full size against torchvggish 0.2's VGG with
    the same weights; fad_pytorch 0.0.6 fad_embed.py setup_embedder('vggish'): postprocess off
    and `embeddings = Sequential(*children[:-1])` (final ReLU removed);
  - the front end: vggish_input.waveform_to_examples(x, 16000) of torchvggish 0.2 itself;
  - audio loading: aeiou cd580bb core.load_audio (torchaudio.load, Resample(in_sr, 16000))
    and datasets.AudioDataset with PadCrop(2**18, randomize=False): the deterministic crop m2u
    documents (start 0; the files here are shorter than 2**18 samples at 16 kHz except two,
    which are therefore cropped at 0), Stereo(), clamp(-1, 1); PhaseFlipper is left out (a
    sign flip does not change |rfft|); torchaudio.load of 16-bit PCM WAV = int16 / 32768
    (read here with the `wave` module);
  - fad_embed.py embed(): hop_samples = int(0.1 * 2**18) = 26214, hop_starts[:-1] (10 chunks),
    torch.mean over channels, embedder.forward(chunk.numpy(), 16000);
  - fad_score.py calc_score(method='maji') itself (aeiou.core.fast_scandir stubbed by a
    sorted listing) on .pt files written as fad_embed writes them.

Files (about 700 KB):
  vggish_tiny.pth / .safetensors   tiny VGGish (conv 4,8,8,8,16,16; fc 384 -> 32 -> 32 -> 8)
  ref/, gen/        16-bit WAVs at 48k/44.1k/32k/24k/22.05k/16k/8k/4k, 1-3 channels,
                    one upper-case .WAV, one in a sub-folder, a .txt that must be ignored
  resample_<rate>.npy, resample_<rate>_out.npy  torchaudio Resample(rate, 16000) of noise
  logmel_examples.npy   [3, 96 * 64] examples (ref files in sorted order: 0 chunk 0, 2 chunk 9, 3 chunk 0)
  ref_emb.npy, gen_emb.npy   [40, 8] rows in sorted file order, chunk-major per file
  expected.json     FAD from calc_score, the file order, and the example indices
"""
import ast
import importlib.util
import json
import math
import os
import shutil
import sys
import types
import wave

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
import numpy as np
import torch
import safetensors
from safetensors.torch import save_file

PINNED = {"torch": ("2.15.0", torch.__version__.split("+")[0]), "numpy": ("1.26.4", np.__version__),
          "safetensors": ("0.8.0", safetensors.__version__)}
from importlib.metadata import version as dist_version
for pkg, want in (("fad_pytorch", "0.0.6"), ("torchvggish", "0.2"), ("torchaudio", "2.5.1")):
    PINNED[pkg] = (want, dist_version(pkg))
bad = {k: v for k, v in PINNED.items() if v[0] != v[1]}
if bad:
    sys.exit(f"make_vggish_fixtures.py: pinned versions differ (wanted, found): {bad}")

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "vggish")
SITE = os.path.dirname(os.path.dirname(torch.__file__))

# ---- torchvggish 0.2 (f3f9096's front end); resampy / soundfile are never reached at 16 kHz
for stub in ("resampy", "soundfile"):
    sys.modules[stub] = types.ModuleType(stub)
import torchvggish  # noqa: E402
from torchvggish import vggish_input  # noqa: E402

# ---- torchaudio 2.5.1's resampler functions, unchanged, without its C extension
def torchaudio_resample_functions():
    path = os.path.join(SITE, "torchaudio", "functional", "functional.py")
    src = open(path).read()
    tree = ast.parse(src)
    wanted = {"_get_sinc_resample_kernel", "_apply_sinc_resample_kernel"}
    body = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in wanted]
    assert len(body) == 2, "torchaudio functional.py changed"
    ns = {"torch": torch, "math": math, "warnings": __import__("warnings"), "Optional": __import__("typing").Optional,
          "Tensor": torch.Tensor, "_CPU": torch.device("cpu")}
    exec(compile(ast.Module(body=body, type_ignores=[]), path, "exec"), ns)
    return ns["_get_sinc_resample_kernel"], ns["_apply_sinc_resample_kernel"]

_get_kernel, _apply_kernel = torchaudio_resample_functions()

def resample(x, orig, new=16000):
    """torchaudio.transforms.Resample(orig, new)(x) with its defaults (x: float32 [C, L])."""
    if orig == new:
        return x
    g = math.gcd(orig, new)
    kernel, width = _get_kernel(orig, new, g, 6, 0.99, "sinc_interp_hann", None, dtype=None)
    return _apply_kernel(x, orig, new, g, kernel, width)

# ---- the network: torchvggish f3f9096 vggish.py, widths as parameters
class VGG(torch.nn.Module):
    def __init__(self, features, fc_in, fc1, fc2, dim):
        super().__init__()
        self.features = features
        self.embeddings = torch.nn.Sequential(torch.nn.Linear(fc_in, fc1), torch.nn.ReLU(True),
                                              torch.nn.Linear(fc1, fc2), torch.nn.ReLU(True),
                                              torch.nn.Linear(fc2, dim), torch.nn.ReLU(True))

    def forward(self, x):
        x = self.features(x)
        x = torch.transpose(x, 1, 3)
        x = torch.transpose(x, 1, 2)
        x = x.contiguous()
        x = x.view(x.size(0), -1)
        return self.embeddings(x)

def make_layers(widths):
    layers, in_channels = [], 1
    pattern = [widths[0], "M", widths[1], "M", widths[2], widths[3], "M", widths[4], widths[5], "M"]
    for v in pattern:
        if v == "M":
            layers += [torch.nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            layers += [torch.nn.Conv2d(in_channels, v, kernel_size=3, padding=1), torch.nn.ReLU(inplace=True)]
            in_channels = v
    return torch.nn.Sequential(*layers)

def check_full_size_structure():
    """The parametrised class at VGGish's widths = torchvggish 0.2's VGG (keys, shapes, output)."""
    torch.manual_seed(1)
    ours = VGG(make_layers([64, 128, 256, 256, 512, 512]), 512 * 4 * 6, 4096, 4096, 128).eval()
    theirs = torchvggish.torchvggish.VGG(torchvggish.torchvggish.make_layers(), False).eval()
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a), "state dict layout differs"
    theirs.load_state_dict(a)
    x = torch.randn(2, 1, 96, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x)), "outputs differ at full size"
    n = sum(p.numel() for p in ours.parameters())
    assert n == 72141184, n
    print(f"full-size structure matches torchvggish 0.2 ({n} parameters)")

def he_init_(m):
    """He-scaled weights and non-zero biases keep every layer alive (also used by
    eval/bench/bench_scorers_ref.py at full size)."""
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = mod.weight[0].numel()
                mod.weight.normal_(0, math.sqrt(2.0 / fan_in))
                mod.bias.uniform_(-0.1, 0.1)
    return m

def tiny_model():
    torch.manual_seed(0)
    m = he_init_(VGG(make_layers([4, 8, 8, 8, 16, 16]), 16 * 4 * 6, 32, 32, 8))
    m.eval()
    sd = {k: v.clone().contiguous() for k, v in m.state_dict().items()}
    # fad_pytorch setup_embedder('vggish'): no PCA, final ReLU dropped
    m.embeddings = torch.nn.Sequential(*list(m.embeddings.children())[:-1])
    return m, sd

# ---- audio
def tone(rate, seconds, channels, seed):
    rng = np.random.default_rng(seed)
    n = int(round(rate * seconds))
    t = np.arange(n) / rate
    out = []
    for c in range(channels):
        f0 = rng.uniform(110, min(1500, rate / 6))
        am = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.3, 2.0) * t + rng.uniform(0, 6))
        x = am * (0.5 * np.sin(2 * np.pi * f0 * t) + 0.2 * np.sin(2 * np.pi * 2.01 * f0 * t))
        x += 0.05 * rng.standard_normal(n)
        out.append(x)
    x = np.stack(out, 1) * rng.uniform(0.4, 1.1)
    return np.clip(np.round(x * 32767), -32768, 32767).astype("<i2")

def write_wav(path, data, rate):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with wave.open(path, "wb") as w:
        w.setnchannels(data.shape[1]); w.setsampwidth(2); w.setframerate(rate)
        w.writeframes(data.tobytes())

def load_wav(path):
    """torchaudio.load on 16-bit PCM: float32 [C, L] = int16 / 32768."""
    with wave.open(path, "rb") as w:
        rate, ch = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, ch)
    return torch.from_numpy(data.T.astype(np.float32) / np.float32(32768)), rate

FILES = {  # name: (rate, seconds, channels)
    "ref/a_48k_stereo.wav": (48000, 0.3, 2),
    "ref/b_44k_mono.wav": (44100, 0.5, 1),
    "ref/sub/c_32k_3ch.wav": (32000, 0.3, 3),
    "ref/d_4k_long.WAV": (4000, 16.6, 1),
    "gen/e_22k_mono.wav": (22050, 1.2, 1),
    "gen/f_16k_stereo.wav": (16000, 1.0, 2),
    "gen/g_4k_long.wav": (4000, 16.5, 1),
    "gen/h_24k_mono.wav": (24000, 1.0, 1),
}
SAMPLE_SIZE = 2 ** 18

def audio_dataset_item(path):
    """aeiou AudioDataset.get_next_chunk with PadCrop(randomize=False), Stereo, clamp."""
    audio, in_sr = load_wav(path)
    audio = resample(audio, in_sr, 16000)
    n, s = audio.shape
    chunk = audio.new_zeros([n, SAMPLE_SIZE])            # PadCrop.draw_chunk, start 0
    chunk[:, :min(s, SAMPLE_SIZE)] = audio[:, 0:SAMPLE_SIZE]
    if chunk.shape[0] == 1:                               # Stereo
        chunk = chunk.repeat(2, 1)
    elif chunk.shape[0] > 2:
        chunk = chunk[:2, :]
    return chunk.clamp(-1, 1), s > SAMPLE_SIZE

def embed_set(model, files, emb_dir):
    """fad_embed.embed()'s vggish branch, one file per batch, rows saved as it saves them."""
    hop_samples = int(0.1 * SAMPLE_SIZE)
    hop_starts = np.arange(0, SAMPLE_SIZE, hop_samples)
    hop_starts = hop_starts[:min(len(hop_starts), -1)]    # max_hops = -1
    assert len(hop_starts) == 10
    rows, examples, cropped = [], {}, []
    os.makedirs(emb_dir, exist_ok=True)
    for i, f in enumerate(files):
        batch, was_cropped = audio_dataset_item(os.path.join(OUT, f))
        cropped.append(was_cropped)
        batch = batch[None]
        for h, loc in enumerate(hop_starts):
            audio = torch.mean(batch[:, :, loc:loc + hop_samples], dim=1)
            wav = audio[0].cpu().numpy()
            ex = vggish_input.waveform_to_examples(wav, 16000)
            assert ex.shape == (1, 1, 96, 64)
            with torch.no_grad():
                e = model(ex)
            examples[(i, h)] = ex.detach()[0, 0].numpy()
            rows.append(e.numpy()[0])
            torch.save(e, os.path.join(emb_dir, f"emb_p0_b{i}_h{h}.pt"))
    return np.array(rows, np.float32), examples, cropped

def fad_score(real_dir, fake_dir):
    def fast_scandir(d, ext):
        return [], sorted(os.path.join(d, x) for x in os.listdir(d) if x.endswith(".pt"))
    aeiou = types.ModuleType("aeiou"); core = types.ModuleType("aeiou.core")
    core.fast_scandir = fast_scandir
    sys.modules["aeiou"], sys.modules["aeiou.core"] = aeiou, core
    from fad_pytorch.fad_score import calc_score
    return float(calc_score(real_dir, fake_dir).cpu().numpy())

def main():
    torch.set_num_threads(1)
    check_full_size_structure()
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    model, sd = tiny_model()
    torch.save(sd, os.path.join(OUT, "vggish_tiny.pth"))
    save_file(sd, os.path.join(OUT, "vggish_tiny.safetensors"))

    for k, (name, (rate, sec, ch)) in enumerate(FILES.items()):
        write_wav(os.path.join(OUT, name), tone(rate, sec, ch, 100 + k), rate)
    with open(os.path.join(OUT, "ref", "notes.txt"), "w") as fh:
        fh.write("not audio: the extension filter must skip this\n")

    # the resampler alone, on noise, at the rates the brief names and two more
    rng = np.random.default_rng(7)
    for rate in (48000, 44100, 32000, 24000, 22050, 16000, 8000, 4000):
        x = (rng.standard_normal(1001) * 0.3).astype(np.float32)
        y = resample(torch.from_numpy(x)[None], rate)[0].numpy()
        np.save(os.path.join(OUT, f"resample_{rate}.npy"), x)
        np.save(os.path.join(OUT, f"resample_{rate}_out.npy"), y.astype(np.float32))

    sets = {}
    tmp = os.path.join(OUT, "_emb")
    for side in ("ref", "gen"):
        files = sorted(f for f in FILES if f.startswith(side + "/"))
        files = sorted(files, key=lambda f: os.path.join(OUT, f))   # m2u's order: sorted full paths
        rows, ex, cropped = embed_set(model, files, os.path.join(tmp, side))
        np.save(os.path.join(OUT, f"{side}_emb.npy"), rows)
        sets[side] = (files, ex, cropped)
    fad = fad_score(os.path.join(tmp, "ref"), os.path.join(tmp, "gen"))
    shutil.rmtree(tmp)
    picks = [(0, 0), (2, 9), (3, 0)]
    np.save(os.path.join(OUT, "logmel_examples.npy"), np.stack([sets["ref"][1][p] for p in picks]).reshape(len(picks), -1).astype(np.float32))
    expected = {
        "fad": fad,
        "ref_files": sets["ref"][0], "gen_files": sets["gen"][0],
        "ref_cropped": sum(sets["ref"][2]), "gen_cropped": sum(sets["gen"][2]),
        "logmel_examples": [{"set": "ref", "file": f, "chunk": h} for f, h in picks],
        "versions": {k: v[1] for k, v in PINNED.items()},
    }
    with open(os.path.join(OUT, "expected.json"), "w") as fh:
        json.dump(expected, fh, indent=1)
    print(f"FAD (fad_pytorch calc_score, maji NS-20) = {fad!r}")

if __name__ == "__main__":
    main()
