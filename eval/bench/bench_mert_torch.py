#!/usr/bin/env python3
"""PyTorch side of the m2u MERT benchmark (driven by eval/bench/bench_mert.sh).

  make --config NAME --out DIR               write a random MERT-sized HubertModel checkpoint
                                             (fp32 safetensors + preprocessor_config.json)
  run  --model DIR [...] --json P --means P  time feature extraction as m2u-bench-mert does
  report --out-dir D --rounds R --model DIR keep each side's fastest round of D/{m2u,torch}.rR.json (and
                                             its means) as D/{m2u,torch}.json, print the comparison, the
                                             layer-means agreement, and the GFLOP/s against the peak

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
# The two sides' per-layer means must agree this closely (max |diff| / max |torch|; measured
# 2.4e-7 on 95m over 10 s), or the report fails: the timings would not be of the same model.
MEANS_RTOL = 1e-5


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
    # the products one forward computes, counted by PyTorch (2 FLOPs per multiply-add, like
    # m2u_mert_flops); counted once, outside the timed runs
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(iv, output_hidden_states=True)
    gflop = fc.get_total_flops() * 1e-9
    med = statistics.median(times)
    print(f"torch {a.model}: {a.seconds:.1f} s of audio, {a.threads} threads: median {med:.3f} s -> "
          f"{a.seconds / med:.2f} audio-s/s")
    np.save(a.means, means.numpy())
    with open(a.json, "w") as f:
        json.dump(dict(side="torch", seconds=a.seconds, threads=a.threads, median_s=med,
                       audio_s_per_s=a.seconds / med, gflop=gflop, gflops=gflop / med), f, indent=2)


def cmd_report(a):
    import shutil
    import numpy as np
    best, rounds = {}, {}
    for side in ("m2u", "torch"):
        for r in range(1, a.rounds + 1):
            path = os.path.join(a.out_dir, f"{side}.r{r}.json")
            with open(path) as f:
                res = json.load(f)
            rounds.setdefault(side, []).append(res["audio_s_per_s"])
            if side not in best or res["audio_s_per_s"] > best[side][1]["audio_s_per_s"]:
                best[side] = (r, res)
        r, res = best[side]
        shutil.copyfile(os.path.join(a.out_dir, f"{side}.r{r}.json"), os.path.join(a.out_dir, f"{side}.json"))
        shutil.copyfile(os.path.join(a.out_dir, f"{side}_means.r{r}.npy"), os.path.join(a.out_dir, f"{side}_means.npy"))
    m, t = best["m2u"][1], best["torch"][1]
    mm, tm = np.load(os.path.join(a.out_dir, "m2u_means.npy")), np.load(os.path.join(a.out_dir, "torch_means.npy"))
    err = float(np.abs(mm - tm).max() / np.abs(tm).max())
    print(f"{'side':6} {'audio-s/s':>10} {'median s':>9}   (fastest of {a.rounds} rounds)")
    for r in (m, t):
        print(f"{r['side']:6} {r['audio_s_per_s']:10.2f} {r['median_s']:9.3f}")
    for side, v in rounds.items():
        print(f"  rounds {side}: " + ", ".join(f"{x:.2f}" for x in v))
    print(f"m2u / torch: {m['audio_s_per_s'] / t['audio_s_per_s']:.2f}x; layer means max rel err {err:.2e}")
    ok = err <= MEANS_RTOL
    if not ok:
        print(f"bench_mert: the layer means differ by {err:.2e} (> {MEANS_RTOL:g}): the two sides did not compute "
              "the same model", file=sys.stderr)
    if "front_gflop" in m and "gflop" in t:
        mg = m["front_gflop"] + m["layers_gflop"]
        # PyTorch also computes the positional conv's last frame, which HubertSamePadLayer drops
        # for an even kernel and m2u does not compute: 2 H (H / groups) K more
        with open(os.path.join(a.model, "config.json")) as f:
            cfg = json.load(f)
        H, K, G = cfg["hidden_size"], cfg["num_conv_pos_embeddings"], cfg["num_conv_pos_embedding_groups"]
        extra = 2 * H * (H // G) * K * 1e-9 if K % 2 == 0 else 0.0
        d = abs(mg + extra - t["gflop"]) / t["gflop"]
        print(f"GFLOP per run: m2u counts {mg:.2f} (+{extra * 1e3:.1f} MFLOP of the dropped frame), PyTorch's "
              f"FlopCounterMode {t['gflop']:.2f} (rel diff {d:.1e}); GFLOP/s m2u {m['gflops']:.1f} "
              f"(front end {m['front_gflops']:.1f}, layers {m['layers_gflops']:.1f}), PyTorch {t['gflops']:.1f}")
        if "sgemm_peak_gflops" in m:
            pk = m["sgemm_peak_gflops"]
            print(f"share of the sgemm peak {pk:.1f} GFLOP/s (m2u's fastest round): m2u {100 * m['gflops'] / pk:.0f}% "
                  f"(front end {100 * m['front_gflops'] / pk:.0f}%, layers {100 * m['layers_gflops'] / pk:.0f}%), "
                  f"PyTorch {100 * t['gflops'] / pk:.0f}%; 1.5x PyTorch would need {150 * t['gflops'] / pk:.0f}%")
        if d > 1e-6:
            print("bench_mert: m2u_mert_flops does not count what PyTorch computes", file=sys.stderr)
            ok = False
    return 0 if ok else 1


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
    rp = sub.add_parser("report", help="pick each side's fastest round in --out-dir and compare")
    rp.add_argument("--out-dir", required=True, help="holds {m2u,torch}.rR.json and {m2u,torch}_means.rR.npy")
    rp.add_argument("--rounds", type=int, required=True)
    rp.add_argument("--model", required=True, help="the checkpoint both sides ran (its config.json)")
    a = p.parse_args()
    return {"make": cmd_make, "run": cmd_run, "report": cmd_report}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
