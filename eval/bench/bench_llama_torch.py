#!/usr/bin/env python3
"""PyTorch side of the m2u LLaMA benchmark (driven by eval/bench/bench_llama.sh).

  make   --config NAME --out DIR      write a random LlamaForCausalLM checkpoint (fp32 safetensors, HF layout)
  run    --model DIR [...] --json P   time LoRA steps in PyTorch eager, exactly as m2u-bench-llama does
  report --json OUT [--best-dir D] RESULTS...  merge m2u + torch result files into a table and one JSON
                                      file; with several rounds of a side, its fastest is kept

One step = forward with labels (mean next-token cross-entropy) + zero_grad + backward;
no optimizer step.  transformers LlamaForCausalLM, attn_implementation="eager", fp32
(or, with --autocast bf16, the forward under torch.autocast("cpu", dtype=torch.bfloat16):
PyTorch's own mixed-precision recipe on a CPU, against m2u's train.precision bf16),
peft LoRA (r=16, alpha=32, dropout 0) on all seven linears, frozen base.  The token ids
come from the same 64-bit LCG as the C program, so both sides see the same batch and
their first losses must agree.

Python is only the reference side of the benchmark; the C toolkit never runs it.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import time

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

LINEARS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# Sizes follow llama2.c's TinyStories models (tied embeddings, Llama-2 vocabulary).
CONFIGS = {
    "tiny": dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=4, vocab_size=96),
    "15m": dict(hidden_size=288, intermediate_size=768, num_hidden_layers=6, num_attention_heads=6,
                num_key_value_heads=6, vocab_size=32000),
    "110m": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                 num_key_value_heads=12, vocab_size=32000),
}


def cmd_make(a):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if a.config not in CONFIGS:
        sys.exit(f"bench_llama_torch: unknown config '{a.config}' (have {', '.join(CONFIGS)})")
    torch.manual_seed(a.seed)
    cfg = LlamaConfig(**CONFIGS[a.config], tie_word_embeddings=True, max_position_embeddings=4096,
                      rms_norm_eps=1e-5, rope_theta=10000.0, torch_dtype="float32")
    model = LlamaForCausalLM(cfg).float()
    if os.path.exists(a.out):
        sys.exit(f"bench_llama_torch: {a.out} already exists")
    tmp = a.out + ".tmp"  # written aside, then renamed: an interrupted run leaves no half checkpoint
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    os.replace(tmp, a.out)
    n = sum(p.numel() for p in model.parameters())
    print(f"bench_llama_torch: wrote {a.config} ({n / 1e6:.2f}M params) to {a.out}")


def make_ids(n, vocab, seed):
    """The C program's token stream: 64-bit LCG, id = (x >> 33) % V."""
    x, out, mask = seed, [], (1 << 64) - 1
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & mask
        out.append((x >> 33) % vocab)
    return out


def cmd_run(a):
    import torch
    import transformers
    import peft
    from transformers import LlamaForCausalLM
    from peft import LoraConfig, get_peft_model

    torch.set_num_threads(a.threads)
    model = LlamaForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32, attn_implementation="eager")
    model = get_peft_model(model, LoraConfig(r=a.lora_r, lora_alpha=a.lora_alpha, lora_dropout=0.0,
                                             target_modules=LINEARS, bias="none"))
    model.train()
    cfg = model.config
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    base = sum(p.numel() for n, p in model.named_parameters() if not p.requires_grad)
    ids = torch.tensor(make_ids(a.batch * a.seq, cfg.vocab_size, a.seed), dtype=torch.long).view(a.batch, a.seq)

    t_fwd, t_bwd, first_loss = [], [], None
    for s in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        if a.autocast == "bf16":  # the backward runs outside the context, as PyTorch's AMP recipe says
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(input_ids=ids, labels=ids).loss
        else:
            loss = model(input_ids=ids, labels=ids).loss
        t1 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        if s == 0:
            first_loss = loss.item()
        if s >= a.warmup:
            t_fwd.append(t1 - t0)
            t_bwd.append(t2 - t1)
    steps = [f + b for f, b in zip(t_fwd, t_bwd)]
    med = statistics.median(steps)
    res = dict(impl="torch", name=a.name or os.path.basename(os.path.normpath(a.model)), model=a.model,
               precision="bf16 autocast" if a.autocast == "bf16" else "fp32", threads=a.threads,
               torch=torch.__version__, transformers=transformers.__version__, peft=peft.__version__,
               params=base, trainable_params=trainable, lora_r=a.lora_r, lora_alpha=a.lora_alpha,
               batch=a.batch, seq=a.seq, warmup=a.warmup, steps=a.steps, first_loss=first_loss,
               step_s_median=med, fwd_s_median=statistics.median(t_fwd), bwd_s_median=statistics.median(t_bwd),
               step_s=steps, tokens_per_s=a.batch * a.seq / med,
               max_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(f"torch {res['name']} ({res['precision']}): {base / 1e6:.2f}M params ({trainable / 1e6:.3f}M trainable), B={a.batch} "
          f"T={a.seq}, {a.threads} threads: step median {med:.4f} s (forward {res['fwd_s_median']:.4f} s, "
          f"backward {res['bwd_s_median']:.4f} s), {res['tokens_per_s']:.1f} tokens/s, first loss {first_loss:.6f}")
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)


def cmd_report(a):
    runs = []
    for p in a.results:
        with open(p) as f:
            runs.append(json.load(f))
    # several rounds of a side: keep its fastest (the least disturbed); list them all
    pairs, rounds = {}, {}
    for r in runs:
        rounds.setdefault((r["name"], r["impl"]), []).append(r["tokens_per_s"])
        best = pairs.setdefault(r["name"], {}).get(r["impl"])
        if best is None or r["tokens_per_s"] > best["tokens_per_s"]:
            pairs[r["name"]][r["impl"]] = r
    if a.best_dir:
        for name, p in pairs.items():
            for impl, r in p.items():
                with open(os.path.join(a.best_dir, f"{impl}_{name}.json"), "w") as f:
                    json.dump(r, f, indent=1)
    rows, formula, ok = [], None, True
    hdr = ["config", "params", "B x T", "m2u tok/s", "torch tok/s", "m2u/torch", "m2u GFLOP/s", "sgemm peak",
           "% peak", "loss m2u / torch"]
    for name, p in pairs.items():
        m, t = p.get("m2u"), p.get("torch")
        if not m or not t:
            sys.exit(f"bench_llama_torch report: config {name} lacks an m2u or a torch result")
        formula = m["flops_formula"]
        dl = abs(m["first_loss"] - t["first_loss"])
        agree = dl <= 1e-3 * max(1.0, abs(t["first_loss"]))
        ok = ok and agree
        rows.append(dict(config=name, params=m["params"], trainable_params=m["trainable_params"],
                         batch=m["batch"], seq=m["seq"], threads=m["threads"], steps=m["steps"],
                         m2u_tokens_per_s=m["tokens_per_s"], torch_tokens_per_s=t["tokens_per_s"],
                         ratio=m["tokens_per_s"] / t["tokens_per_s"], m2u_gflops=m["gflops"],
                         torch_gflops=m["flops_per_step"] / t["step_s_median"] * 1e-9,
                         flops_per_step=m["flops_per_step"], sgemm_peak_gflops=m.get("sgemm_peak_gflops"),
                         pct_of_peak=m.get("pct_of_peak"), m2u_first_loss=m["first_loss"],
                         torch_first_loss=t["first_loss"], losses_agree=agree,
                         m2u_fwd_s=m["fwd_s_median"], m2u_bwd_s=m["bwd_s_median"],
                         torch_fwd_s=t["fwd_s_median"], torch_bwd_s=t["bwd_s_median"],
                         m2u_max_rss_mib=m.get("max_rss_mib"), torch_max_rss_mib=t.get("max_rss_mib")))
    cells = [hdr]
    for r in rows:
        peak = r["sgemm_peak_gflops"]
        cells.append([r["config"], f"{r['params'] / 1e6:.2f}M", f"{r['batch']}x{r['seq']}",
                      f"{r['m2u_tokens_per_s']:.0f}", f"{r['torch_tokens_per_s']:.0f}", f"{r['ratio']:.2f}",
                      f"{r['m2u_gflops']:.1f}", f"{peak:.1f}" if peak else "-",
                      f"{r['pct_of_peak']:.1f}%" if peak else "-",
                      f"{r['m2u_first_loss']:.4f} / {r['torch_first_loss']:.4f}" + ("" if r["losses_agree"] else " !")])
    widths = [max(len(c[i]) for c in cells) for i in range(len(hdr))]
    print()
    for i, c in enumerate(cells):
        print("| " + " | ".join(x.rjust(w) if j else x.ljust(w) for j, (x, w) in enumerate(zip(c, widths))) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    # a bf16 row also against PyTorch's fastest way on this CPU, its fp32 eager step, when the run has it
    for r in rows:
        base = r["config"][:-len("-bf16")] if r["config"].endswith("-bf16") else None
        t32 = pairs.get(base, {}).get("torch") if base else None
        if t32:
            r["torch_fp32_tokens_per_s"] = t32["tokens_per_s"]
            r["ratio_vs_torch_fp32"] = r["m2u_tokens_per_s"] / t32["tokens_per_s"]
            print(f"{r['config']}: m2u bf16 {r['m2u_tokens_per_s']:.0f} tokens/s against PyTorch fp32 eager "
                  f"{t32['tokens_per_s']:.0f}: {r['ratio_vs_torch_fp32']:.2f}x")
    if any(len(v) > 1 for v in rounds.values()):
        print("\nrounds (tokens/s, in run order; the table keeps each side's fastest):")
        for (name, impl), v in rounds.items():
            print(f"  {name} {impl}: " + ", ".join(f"{x:.1f}" for x in v))
    print(f"\nthreads {rows[0]['threads'] if rows else '-'}; tokens/s = B*T / median step time; step = forward + "
          "cross-entropy + backward (LoRA r=16 on all 7 linears, frozen base, no optimizer step); a -bf16 config is "
          "m2u's train.precision bf16 against PyTorch's forward under CPU bf16 autocast")
    print(formula)
    if not ok:
        print("WARNING: first losses differ: the two sides did not compute the same model", file=sys.stderr)
    with open(a.json, "w") as f:
        json.dump(dict(flops_formula=formula, rows=rows, runs=runs,
                       rounds={f"{n} {i}": v for (n, i), v in rounds.items()}), f, indent=1)
    print(f"results: {a.json}")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="write a random checkpoint")
    mk.add_argument("--config", required=True, choices=sorted(CONFIGS))
    mk.add_argument("--out", required=True)
    mk.add_argument("--seed", type=int, default=0)
    rn = sub.add_parser("run", help="time PyTorch eager + peft LoRA steps")
    rn.add_argument("--model", required=True)
    rn.add_argument("--batch", type=int, default=4)
    rn.add_argument("--seq", type=int, default=128)
    rn.add_argument("--steps", type=int, default=10)
    rn.add_argument("--warmup", type=int, default=2)
    rn.add_argument("--threads", type=int, required=True)
    rn.add_argument("--lora-r", type=int, default=16)
    rn.add_argument("--lora-alpha", type=float, default=32.0)
    rn.add_argument("--seed", type=int, default=1)
    rn.add_argument("--autocast", choices=["none", "bf16"], default="none",
                    help="bf16: forward under torch.autocast('cpu', dtype=torch.bfloat16)")
    rn.add_argument("--name", default=None, help="the config's name in the results (default: the model folder's)")
    rn.add_argument("--json", required=True)
    rp = sub.add_parser("report", help="merge results into a table")
    rp.add_argument("--json", required=True)
    rp.add_argument("--best-dir", default=None, help="also write each side's fastest round as <impl>_<name>.json here")
    rp.add_argument("results", nargs="+")
    a = ap.parse_args()
    if a.cmd == "run":
        for k in ("batch", "seq", "steps", "threads", "lora_r"):
            if getattr(a, k) < 1:
                ap.error(f"--{k.replace('_', '-')} must be >= 1")
        if a.warmup < 0:
            ap.error("--warmup must be >= 0")
    return {"make": cmd_make, "run": cmd_run, "report": cmd_report}[a.cmd](a) or 0


if __name__ == "__main__":
    sys.exit(main())
