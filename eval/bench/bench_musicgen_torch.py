#!/usr/bin/env python3
"""PyTorch side of eval/bench_musicgen.sh: MusicGen decoder LM generation throughput.

  bench_musicgen_torch.py make DIR --size small|medium
      write a random MusicgenForConditionalGeneration checkpoint of musicgen-<size>'s decoder
      shape (T5 part: one 768-wide layer, since only its output width matters for the LM
      loop; no EnCodec tensors) as DIR/config.json + generation_config.json + model.safetensors
  bench_musicgen_torch.py run DIR --frames N --threads T [--guidance 3] [--runs R]
      time generate(input_ids, guidance_scale, do_sample=True, top_k=250, max_length=N+K) on CPU,
      the EnCodec decode at the end replaced by a no-op (only the LM loop is timed); prints one
      JSON line per run.
  bench_musicgen_torch.py check DIR ENC.f32 REF.npy
      random encoder states [12, 768] -> ENC.f32, and transformers' raw logits of the first three
      CFG-3 passes [3, 2, K, 2048] -> REF.npy (tests/make_musicgen_fixtures.py's manual_generate:
      generate's own steps, since generate mis-shapes CFG given encoder_outputs)
  bench_musicgen_torch.py compare REF.npy OUT.f32
      max relative error of m2u's logits (m2u-bench-musicgen DIR --logits) against REF.npy

Pinned: torch 2.5.1, transformers 4.46.3 (CPU, fp32, default SDPA attention, KV cache).
"""
import argparse
import json
import os
import sys
import time
import types
import warnings

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
warnings.filterwarnings("ignore")

import torch
import transformers
from safetensors.torch import save_file
from transformers import (EncodecConfig, MusicgenConfig, MusicgenDecoderConfig, MusicgenForConditionalGeneration,
                          T5Config)

transformers.logging.set_verbosity_error()

SIZES = {  # musicgen-{small,medium,large} decoder shapes (research/musicgen.md 2.1)
    "small": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, ffn_dim=4096),
    "medium": dict(hidden_size=1536, num_hidden_layers=48, num_attention_heads=24, ffn_dim=6144),
    "large": dict(hidden_size=2048, num_hidden_layers=48, num_attention_heads=32, ffn_dim=8192),
}


def build(size):
    t5 = T5Config(d_model=768, d_kv=64, num_heads=12, d_ff=3072, num_layers=1, vocab_size=128)
    enc = EncodecConfig(num_filters=4, hidden_size=16, codebook_size=2048, num_lstm_layers=1,
                        upsampling_ratios=[2, 2], target_bandwidths=[1.5])
    dec = MusicgenDecoderConfig(**SIZES[size], num_codebooks=4, vocab_size=2048, max_position_embeddings=2048,
                                pad_token_id=2048, bos_token_id=2048)
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration(MusicgenConfig.from_sub_models_config(t5, enc, dec)).eval()
    g = model.generation_config
    g.decoder_start_token_id = g.pad_token_id = g.bos_token_id = 2048
    return model


def cmd_make(a):
    model = build(a.size)
    os.makedirs(a.dir, exist_ok=True)
    model.config.save_pretrained(a.dir)
    model.generation_config.save_pretrained(a.dir)
    sd = {k: v.clone().contiguous() for k, v in model.state_dict().items()
          if not k.startswith("audio_encoder.") and k != "text_encoder.encoder.embed_tokens.weight"}
    save_file(sd, os.path.join(a.dir, "model.safetensors"), metadata={"format": "pt"})


def cmd_run(a):
    torch.set_num_threads(a.threads)
    model = MusicgenForConditionalGeneration.from_pretrained(a.dir, torch_dtype=torch.float32).eval()
    model.audio_encoder.decode = lambda codes, *x, **k: types.SimpleNamespace(audio_values=torch.zeros(1, 1, 1))
    K = model.decoder.num_codebooks
    ids = torch.randint(2, 128, (1, 12), generator=torch.Generator().manual_seed(1))
    for r in range(a.warmup + a.runs):
        torch.manual_seed(r)
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.no_grad():
            model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, top_k=250,
                           guidance_scale=a.guidance, max_length=a.frames + K)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        if r >= a.warmup:
            print(json.dumps({"impl": "torch", "frames": a.frames, "passes": a.frames + K - 1, "seconds": dt, "frames_per_s": a.frames / dt,
                              "rtf": dt / (a.frames / 50.0), "cpu_seconds": cpu,
                              "threads": a.threads, "torch": torch.__version__,
                              "transformers": transformers.__version__}), flush=True)


def cmd_check(a):
    import numpy
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    from make_musicgen_fixtures import manual_generate
    model = MusicgenForConditionalGeneration.from_pretrained(a.dir, torch_dtype=torch.float32).eval()
    h = torch.randn(1, 12, model.config.text_encoder.hidden_size, generator=torch.Generator().manual_seed(5)) * 0.5
    h[0].numpy().astype(numpy.float32).tofile(a.enc)
    K = model.decoder.num_codebooks
    _, _, raws, _ = manual_generate(model, h, None, 3.0, 2 * K)
    numpy.save(a.ref, raws[:3].reshape(3, 2, K, -1).numpy())


def cmd_compare(a):
    import numpy
    ref = numpy.load(a.ref)
    got = numpy.fromfile(a.out, dtype=numpy.float32).reshape(ref.shape)
    err = float(numpy.abs(got - ref).max() / numpy.abs(ref).max())
    same = bool((got.reshape(-1, ref.shape[-1]).argmax(-1) == ref.reshape(-1, ref.shape[-1]).argmax(-1)).all())
    print(json.dumps({"check": "logits of 3 CFG passes vs transformers", "max_rel_err": err, "argmax_equal": same}))
    return 0 if err <= 1e-5 and same else 1


def main():
    p = argparse.ArgumentParser()
    sp = p.add_subparsers(dest="cmd", required=True)
    m = sp.add_parser("make")
    m.add_argument("dir")
    m.add_argument("--size", default="small", choices=sorted(SIZES))
    r = sp.add_parser("run")
    r.add_argument("dir")
    r.add_argument("--frames", type=int, default=250)
    r.add_argument("--threads", type=int, default=os.cpu_count())
    r.add_argument("--guidance", type=float, default=3.0)
    r.add_argument("--runs", type=int, default=1)
    r.add_argument("--warmup", type=int, default=0)
    c = sp.add_parser("check")
    c.add_argument("dir")
    c.add_argument("enc")
    c.add_argument("ref")
    c2 = sp.add_parser("compare")
    c2.add_argument("ref")
    c2.add_argument("out")
    a = p.parse_args()
    if a.cmd == "make":
        cmd_make(a)
    elif a.cmd == "check":
        cmd_check(a)
    elif a.cmd == "compare":
        return cmd_compare(a)
    else:
        cmd_run(a)


if __name__ == "__main__":
    sys.exit(main())
