#!/usr/bin/env python3
"""PyTorch side of the m2u EnCodec benchmark (driven by eval/bench_encodec.sh).

  make --out DIR                          write a random EncodecModel with facebook/encodec_32khz's exact
                                          config (config.json + model.safetensors, weight_g/weight_v)
  run  --model DIR [...] --json P --audio P
                                          time EncodecModel.decode as m2u-bench-encodec does
  report --m2u J --torch J --m2u-audio P --torch-audio P
                                          print the comparison (and the audio agreement)

One run = EncodecModel.decode(codes[None, None], [None]) of K x N codes (N = seconds * 50), no grad,
fp32, PyTorch's default CPU kernels.  The codes are the same LCG stream as the C program's.

Python is only the reference side of the benchmark; the C toolkit never runs it.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# facebook/encodec_32khz config.json (shared/research/formats.md section 8.6)
CONFIG = dict(audio_channels=1, sampling_rate=32000, codebook_size=2048, codebook_dim=128, hidden_size=128,
              num_filters=64, upsampling_ratios=[8, 5, 4, 4], target_bandwidths=[2.2], kernel_size=7,
              last_kernel_size=7, residual_kernel_size=3, dilation_growth_rate=2, compress=2, num_lstm_layers=2,
              num_residual_layers=1, norm_type="weight_norm", normalize=False, use_causal_conv=False,
              use_conv_shortcut=False, pad_mode="reflect", trim_right_ratio=1.0, chunk_length_s=None, overlap=None)


def lcg_codes(n, size, seed):
    """Same stream as make_codes() in eval/bench_encodec.c."""
    s, mask, out = seed, (1 << 64) - 1, []
    for _ in range(n):
        s = (s * 6364136223846793005 + 1442695040888963407) & mask
        out.append((s >> 33) % size)
    return out


def cmd_make(a):
    import torch
    from safetensors.torch import save_file
    from transformers import EncodecConfig, EncodecModel

    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    cfg = EncodecConfig(**CONFIG)
    model = EncodecModel(cfg).eval()
    # weight-norm magnitudes so activations stay O(1) through the stack, and codebooks (zeros at init)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if name.endswith("original0"):
                conv = model.get_submodule(name.rsplit(".parametrizations", 1)[0])
                scale = (math.sqrt(conv.out_channels * conv.stride[0] / conv.in_channels)
                         if isinstance(conv, torch.nn.ConvTranspose1d) else 1.0)
                p.copy_(scale * (1 + 0.2 * torch.randn(p.shape, generator=gen)))
        for name, b in model.named_buffers():
            if name.endswith("codebook.embed"):
                b.copy_(torch.randn(b.shape, generator=gen))
    os.makedirs(a.out, exist_ok=True)
    cfg.save_pretrained(a.out)
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    for k in sorted(sd):  # the hub's naming
        if k.endswith("parametrizations.weight.original0"):
            base = k[: -len("parametrizations.weight.original0")]
            sd[base + "weight_g"] = sd.pop(k)
            sd[base + "weight_v"] = sd.pop(base + "parametrizations.weight.original1")
    save_file(sd, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    print(f"wrote {a.out}: {sum(v.numel() for v in sd.values()) / 1e6:.1f} M values")


def cmd_run(a):
    import numpy as np
    import torch
    from transformers import EncodecModel

    torch.set_num_threads(a.threads)
    model = EncodecModel.from_pretrained(a.model).eval()
    cfg = model.config
    K, N = cfg.num_quantizers, max(1, int(a.seconds * cfg.frame_rate + 0.5))
    codes = torch.tensor(lcg_codes(K * N, cfg.codebook_size, a.seed), dtype=torch.int64).view(1, 1, K, N)
    times, cpu = [], 0.0
    with torch.inference_mode():
        for r in range(a.warmup + a.runs):
            t0, c0 = time.perf_counter(), time.process_time()
            audio = model.decode(codes, [None]).audio_values
            dt = time.perf_counter() - t0
            if r >= a.warmup:
                times.append(dt)
                cpu += time.process_time() - c0
    cpu /= a.runs
    audio = audio[0, 0].numpy()
    audio_s = audio.shape[0] / cfg.sampling_rate
    med = statistics.median(times)
    print(f"torch decode {K} x {N} codes -> {audio_s:.2f} s of audio, {torch.get_num_threads()} threads: "
          f"median {med:.3f} s (best {min(times):.3f}) -> {audio_s / med:.1f}x real time; "
          f"{cpu:.3f} CPU-s per run (torch {torch.__version__}, mkldnn {torch.backends.mkldnn.is_available()})")
    if a.audio:
        np.save(a.audio, audio.astype(np.float32))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(side="torch", audio_seconds=audio_s, threads=torch.get_num_threads(), median_s=med,
                           best_s=min(times), x_real_time=audio_s / med, cpu_s=cpu), f, indent=1)


def cmd_report(a):
    import numpy as np
    m, t = json.load(open(a.m2u)), json.load(open(a.torch))
    print(f"EnCodec-32k decode, {m['audio_seconds']:.2f} s of audio, {m['threads']} threads: "
          f"m2u {m['x_real_time']:.1f}x real time, PyTorch {t['x_real_time']:.1f}x real time, "
          f"m2u / PyTorch = {m['x_real_time'] / t['x_real_time']:.2f}")
    print(f"CPU time per decode (robust to other load on the machine): m2u {m['cpu_s']:.3f} s, "
          f"PyTorch {t['cpu_s']:.3f} s, PyTorch / m2u = {t['cpu_s'] / m['cpu_s']:.2f}")
    if a.m2u_audio and a.torch_audio:
        x, y = np.load(a.m2u_audio), np.load(a.torch_audio)
        if x.shape != y.shape:
            sys.exit(f"audio shapes differ: m2u {x.shape}, torch {y.shape}")
        print(f"audio agreement: max |m2u - torch| = {np.abs(x - y).max():.3g} (max |torch| = {np.abs(y).max():.3g})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("--out", required=True)
    mk.add_argument("--seed", type=int, default=1234)
    rn = sub.add_parser("run")
    rn.add_argument("--model", required=True)
    rn.add_argument("--seconds", type=float, default=5)
    rn.add_argument("--runs", type=int, default=3)
    rn.add_argument("--warmup", type=int, default=1)
    rn.add_argument("--threads", type=int, default=os.cpu_count())
    rn.add_argument("--seed", type=int, default=1)
    rn.add_argument("--audio")
    rn.add_argument("--json")
    rp = sub.add_parser("report")
    rp.add_argument("--m2u", required=True)
    rp.add_argument("--torch", required=True)
    rp.add_argument("--m2u-audio")
    rp.add_argument("--torch-audio")
    a = p.parse_args()
    {"make": cmd_make, "run": cmd_run, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
