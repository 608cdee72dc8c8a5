#!/usr/bin/env python3
"""PyTorch side of the m2u MERT benchmark (driven by eval/bench/bench_mert.sh).

  make --config NAME --out DIR               write a random MERT-sized HubertModel checkpoint
                                             (fp32 safetensors + preprocessor_config.json)
  run  --model DIR [...] --json P --means P  time feature extraction as m2u-bench-mert does
  report --m2u J --torch J --m2u-means P --torch-means P
                                             print the comparison (and the layer-means agreement)

One run = Wav2Vec2FeatureExtractor (do_normalize) + HubertModel(output_hidden_states=True) +
per-layer mean over time, no grad, fp32, eager attention.  MERT-v1 is HubertModel with these
configs (its remote-code extras are off in v1), so the random checkpoint has MERT-v1's exact
shapes; the audio is the same LCG noise as the C program's.

Python is only the reference side of the benchmark; the C toolkit never runs it.
"""
import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# config.json values of m-a-p/MERT-v1-95M and -330M (shared/research/formats.md section 5)
COMMON = dict(conv_dim=[512] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2],
              conv_bias=False, feat_extract_norm="group", num_conv_pos_embeddings=128,
              num_conv_pos_embedding_groups=16, feat_proj_layer_norm=True, layer_norm_eps=1e-5)
CONFIGS = {
    "95m": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                do_stable_layer_norm=False, **COMMON),
    "330m": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                 do_stable_layer_norm=True, **COMMON),
}
SAMPLE_RATE = 24000


def lcg_audio(n, seed):
    """Same stream as make_audio() in eval/bench/bench_mert.c."""
    import numpy as np
    s = seed
    top = np.empty(n, dtype=np.float32)
    mask = (1 << 64) - 1
    for i in range(n):
        s = (s * 6364136223846793005 + 1442695040888963407) & mask
        top[i] = s >> 40
    return ((top / np.float32(16777216.0) - np.float32(0.5)) * np.float32(0.5)).astype(np.float32)


def cmd_make(a):
    import torch
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor
    from safetensors.torch import save_file

    torch.manual_seed(a.seed)
    cfg = HubertConfig(**CONFIGS[a.config])
    model = HubertModel(cfg).eval()  # transformers' random init, like an untrained MERT
    os.makedirs(a.out, exist_ok=True)
    cfg.save_pretrained(a.out)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(a.out, "model.safetensors"),
              metadata={"format": "pt"})
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=True,
                             return_attention_mask=True).save_pretrained(a.out)
    print(f"bench_mert_torch: wrote {a.config} to {a.out}")


def cmd_run(a):
    import numpy as np
    import torch
    from transformers import HubertModel, Wav2Vec2FeatureExtractor

    torch.set_num_threads(a.threads)
    model = HubertModel.from_pretrained(a.model, attn_implementation="eager").eval()
    fe = Wav2Vec2FeatureExtractor.from_pretrained(a.model)
    n = int(a.seconds * fe.sampling_rate)
    wav = lcg_audio(n, a.seed)
    times, means = [], None
    for r in range(a.warmup + a.runs):
        t0 = time.perf_counter()
        iv = fe(wav, sampling_rate=fe.sampling_rate, return_tensors="pt").input_values
        with torch.no_grad():
            hs = model(iv, output_hidden_states=True).hidden_states
            means = torch.stack(hs).squeeze(1).mean(-2)
        if r >= a.warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"torch {a.model}: {a.seconds:.1f} s of audio, {a.threads} threads: median {med:.3f} s -> "
          f"{a.seconds / med:.2f} audio-s/s")
    np.save(a.means, means.numpy())
    with open(a.json, "w") as f:
        json.dump(dict(side="torch", seconds=a.seconds, threads=a.threads, median_s=med,
                       audio_s_per_s=a.seconds / med), f, indent=2)


def cmd_report(a):
    import numpy as np
    m, t = json.load(open(a.m2u)), json.load(open(a.torch))
    mm, tm = np.load(a.m2u_means), np.load(a.torch_means)
    err = float(np.abs(mm - tm).max() / np.abs(tm).max())
    print(f"{'side':6} {'audio-s/s':>10} {'median s':>9}")
    for r in (m, t):
        print(f"{r['side']:6} {r['audio_s_per_s']:10.2f} {r['median_s']:9.3f}")
    print(f"m2u / torch: {m['audio_s_per_s'] / t['audio_s_per_s']:.2f}x; layer means max rel err {err:.2e}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make")
    mk.add_argument("--config", choices=sorted(CONFIGS), default="95m")
    mk.add_argument("--out", required=True)
    mk.add_argument("--seed", type=int, default=0)
    rn = sub.add_parser("run")
    rn.add_argument("--model", required=True)
    rn.add_argument("--seconds", type=float, default=10.0)
    rn.add_argument("--runs", type=int, default=3)
    rn.add_argument("--warmup", type=int, default=1)
    rn.add_argument("--threads", type=int, default=os.cpu_count())
    rn.add_argument("--seed", type=int, default=1)
    rn.add_argument("--json", required=True)
    rn.add_argument("--means", required=True)
    rp = sub.add_parser("report")
    for k in ("--m2u", "--torch", "--m2u-means", "--torch-means"):
        rp.add_argument(k, required=True)
    a = p.parse_args()
    {"make": cmd_make, "run": cmd_run, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
