#!/usr/bin/env python3
"""Generate the LLaMA + LoRA reference fixtures in tests/fixtures/llama/.

Python is only used to *make* reference files; the C toolkit never runs Python.

Pinned versions (the script refuses to run with others, since outputs must be
bit-identical across regenerations):
    torch 2.5.1, transformers 4.46.3, peft 0.13.2, safetensors 0.8.0, numpy 1.26.4

Usage:  python3 tests/make_llama_fixtures.py      (from the repository root or anywhere)

See tests/fixtures/llama/README.md for what each fixture contains.
"""
import glob
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile

# peft stores target_modules as a set; its order in adapter_config.json depends on string
# hashing, so pin the hash seed (re-exec once) to keep regenerated files byte-identical.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy
import safetensors
import torch
import transformers
import peft
from safetensors import safe_open
from safetensors.torch import save_file, load_file
from transformers import LlamaConfig, LlamaForCausalLM, AutoModelForCausalLM
from peft import LoraConfig, get_peft_model, PeftModel

PINNED = {
    "torch": (torch.__version__.split("+")[0], "2.5.1"),
    "transformers": (transformers.__version__, "4.46.3"),
    "peft": (peft.__version__, "0.13.2"),
    "safetensors": (safetensors.__version__, "0.8.0"),
    "numpy": (numpy.__version__, "1.26.4"),
}
for _name, (_have, _want) in PINNED.items():
    if _have != _want:
        sys.exit(f"make_llama_fixtures: need {_name}=={_want}, found {_have}")

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
torch.backends.mkldnn.enabled = False  # plain ATen CPU kernels only

ROOT = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(ROOT, "fixtures", "llama")
REL = "tests/fixtures/llama"

B, T = 2, 11
IGNORE = -100
N_GEN = 12
PROMPT_LEN = 5

ALL_LINEARS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

FIXTURES = [
    dict(
        name="mha_tied",
        seed=1001,
        config=dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=4,
                    intermediate_size=176, num_hidden_layers=2, vocab_size=96,
                    tie_word_embeddings=True, rope_theta=10000.0, rms_norm_eps=1e-6,
                    max_position_embeddings=64),
        lora=dict(r=4, alpha=8, targets=["q_proj", "v_proj"]),
        trainable=["lora"],
        token_rows=None,
        v5_rope=False,
        bf16_shards=False,
        drop_head_dim=True,
    ),
    dict(
        name="gqa_odd",
        seed=2002,
        config=dict(hidden_size=48, num_attention_heads=6, num_key_value_heads=2,
                    intermediate_size=100, num_hidden_layers=3, vocab_size=83,
                    tie_word_embeddings=False, rope_theta=500000.0, rms_norm_eps=1e-5,
                    max_position_embeddings=64, attention_bias=True, mlp_bias=True),
        lora=dict(r=3, alpha=7, targets=list(ALL_LINEARS)),
        trainable=["lora", "bias", "norm", "token_rows"],
        token_rows=(75, 83),
        v5_rope=True,
        bf16_shards=False,
    ),
    dict(
        name="mqa_bf16_sharded",
        seed=3003,
        config=dict(hidden_size=32, num_attention_heads=4, num_key_value_heads=1,
                    head_dim=16, intermediate_size=72, num_hidden_layers=2, vocab_size=64,
                    tie_word_embeddings=False, rope_theta=10000.0, rms_norm_eps=1e-6,
                    max_position_embeddings=64),
        lora=dict(r=2, alpha=2, targets=["k_proj", "o_proj", "gate_proj", "down_proj"]),
        trainable=["lora"],
        token_rows=None,
        v5_rope=False,
        bf16_shards=True,
    ),
]


def make_config(spec):
    c = dict(spec["config"])
    return LlamaConfig(
        bos_token_id=1, eos_token_id=2, pad_token_id=None,
        hidden_act="silu", initializer_range=0.02, use_cache=True,
        attn_implementation="eager", torch_dtype="float32", **c)


@torch.no_grad()
def init_base(model, gen):
    """Random init with O(1) activations: Linear std 1/sqrt(fan_in), embeddings std 1,
    norm weights 1 + 0.2*N(0,1), biases 0.1*N(0,1). Deterministic (named order)."""
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if name.endswith("layernorm.weight") or name == "model.norm.weight":
            p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
        elif name.endswith(".bias"):
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        elif name == "model.embed_tokens.weight":
            # tied: the same matrix is lm_head, so use 1/sqrt(hidden) to keep logits O(1)
            std = p.shape[1] ** -0.5 if model.config.tie_word_embeddings else 1.0
            p.copy_(std * torch.randn(p.shape, generator=gen))
        elif p.dim() == 2:  # Linear weights incl. lm_head: [out, in]
            p.copy_(torch.randn(p.shape, generator=gen) / (p.shape[1] ** 0.5))
        else:
            raise RuntimeError(f"unexpected parameter {name}")


@torch.no_grad()
def init_lora(pmodel, gen):
    for name, p in sorted(pmodel.named_parameters(), key=lambda kv: kv[0]):
        if ".lora_A." in name:  # [r, in]
            p.copy_(torch.randn(p.shape, generator=gen) / (p.shape[1] ** 0.5))
        elif ".lora_B." in name:  # [out, r], deliberately non-zero
            p.copy_(0.5 * torch.randn(p.shape, generator=gen) / (p.shape[1] ** 0.5))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def save_bf16_two_shards(model, out_dir):
    """save_pretrained in bf16 with max_shard_size chosen so there are exactly 2 shards."""
    bf = LlamaForCausalLM(model.config)
    bf.load_state_dict(model.state_dict())
    bf = bf.to(torch.bfloat16)
    total = sum(p.numel() * 2 for p in bf.state_dict().values())
    for size in range(total // 2, total, 256):
        tmp = tempfile.mkdtemp()
        try:
            bf.save_pretrained(tmp, safe_serialization=True, max_shard_size=size)
            shards = sorted(glob.glob(os.path.join(tmp, "model-*.safetensors")))
            if len(shards) == 2:
                bf.save_pretrained(out_dir, safe_serialization=True, max_shard_size=size)
                return size
        finally:
            shutil.rmtree(tmp)
    raise RuntimeError("could not find a 2-shard max_shard_size")


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


def rewrite_config_v5_rope(cfg_path):
    with open(cfg_path) as f:
        cfg = json.load(f)
    theta = float(cfg.pop("rope_theta"))
    if cfg.get("rope_scaling") is None:
        cfg.pop("rope_scaling", None)
    cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": theta}
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def drop_config_key(cfg_path, key):
    """transformers 4.46 always writes head_dim; Llama-2 files have none (default hidden/heads)."""
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg.pop(key)
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def load_config_any(model_dir):
    """transformers 4.46 does not know the v5 `rope_parameters` form; translate it."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    rp = cfg.pop("rope_parameters", None)
    if rp is not None:
        assert rp["rope_type"] == "default"
        cfg["rope_theta"] = rp["rope_theta"]
    cfg.pop("transformers_version", None)
    cfg.pop("architectures", None)
    cfg.pop("model_type", None)
    cfg.pop("torch_dtype", None)
    return LlamaConfig(attn_implementation="eager", **cfg)


def base_name(peft_name):
    """peft parameter name -> HF base name (strip wrapper prefix and .base_layer)."""
    assert peft_name.startswith("base_model.model.")
    return peft_name[len("base_model.model."):].replace(".base_layer.", ".")


def adapter_name(peft_name):
    """in-memory peft LoRA name -> name in adapter_model.safetensors ('.default' removed)."""
    return peft_name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")


def make_one(spec):
    name = spec["name"]
    d = os.path.join(OUT, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)

    torch.manual_seed(spec["seed"])
    gen = torch.Generator().manual_seed(spec["seed"])
    cfg = make_config(spec)
    V, H, L = cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers

    model = LlamaForCausalLM(cfg).float().eval()
    init_base(model, gen)

    # --- base checkpoint -------------------------------------------------------------------
    if spec["bf16_shards"]:
        shard_size = save_bf16_two_shards(model, d)
        # reference computes in fp32 with the bf16-rounded weights
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.bfloat16().float())
    else:
        shard_size = None
        model.save_pretrained(d, safe_serialization=True)
    if spec["v5_rope"]:
        rewrite_config_v5_rope(os.path.join(d, "config.json"))
    if spec.get("drop_head_dim"):
        drop_config_key(os.path.join(d, "config.json"), "head_dim")

    # --- LoRA ------------------------------------------------------------------------------
    lo = spec["lora"]
    lcfg = LoraConfig(r=lo["r"], lora_alpha=lo["alpha"], lora_dropout=0.0,
                      target_modules=list(lo["targets"]), bias="none",
                      task_type="CAUSAL_LM", init_lora_weights=True)
    model.name_or_path = f"{REL}/{name}"  # -> adapter_config.json base_model_name_or_path
    pmodel = get_peft_model(model, lcfg).eval()
    init_lora(pmodel, gen)

    # extra trainables (not LoRA): biases, norms, token rows (via full-matrix grad + slicing)
    rows = spec["token_rows"]
    for n, p in pmodel.named_parameters():
        bn = base_name(n)
        if "bias" in spec["trainable"] and bn.endswith(".bias"):
            p.requires_grad_(True)
        if "norm" in spec["trainable"] and (bn.endswith("layernorm.weight") or bn == "model.norm.weight"):
            p.requires_grad_(True)
        if "token_rows" in spec["trainable"] and bn in ("model.embed_tokens.weight", "lm_head.weight"):
            p.requires_grad_(True)

    pmodel.save_pretrained(os.path.join(d, "adapter"), safe_serialization=True,
                           save_embedding_layers=False)
    readme = os.path.join(d, "adapter", "README.md")  # peft's model-card boilerplate; not needed
    if os.path.exists(readme):
        os.remove(readme)

    # --- inputs ----------------------------------------------------------------------------
    input_ids = torch.randint(3, V, (B, T), generator=gen, dtype=torch.int64)
    if rows is not None:  # make sure the added rows are used, in loss-relevant positions too
        input_ids[0, 5] = rows[0]
        input_ids[0, 8] = rows[1] - 1
        input_ids[1, 4] = rows[0] + 3
        input_ids[1, 6] = rows[0] + 5
    labels = input_ids.clone()
    labels[0, :4] = IGNORE
    labels[1, :2] = IGNORE
    labels[1, -3:] = IGNORE

    # --- forward/backward ------------------------------------------------------------------
    pmodel.zero_grad(set_to_none=True)
    out = pmodel(input_ids=input_ids, labels=labels, output_hidden_states=True, use_cache=False)
    logits = out.logits.detach().float().contiguous()
    loss = out.loss
    # independent recomputation of the loss convention
    sl = logits[:, :-1].reshape(-1, V)
    tl = labels[:, 1:].reshape(-1)
    ref = torch.nn.functional.cross_entropy(sl, tl, ignore_index=IGNORE, reduction="sum") / (tl != IGNORE).sum()
    assert torch.allclose(ref, loss.detach(), rtol=1e-6, atol=1e-6), (ref, loss)
    loss.backward()

    tensors = {
        "input_ids": input_ids.contiguous(),
        "labels": labels.contiguous(),
        "logits": logits,
        "loss": loss.detach().float().reshape(()).contiguous(),
    }
    for i, hs in enumerate(out.hidden_states):
        tensors[f"hidden.{i}"] = hs.detach().float().contiguous()
    assert len(out.hidden_states) == L + 1

    with safe_open(os.path.join(d, "adapter", "adapter_model.safetensors"), "pt") as f:
        adapter_keys = set(f.keys())
    n_lora = 0
    for n, p in pmodel.named_parameters():
        if not p.requires_grad:
            continue
        assert p.grad is not None, n
        g = p.grad.detach().float()
        if ".lora_A." in n or ".lora_B." in n:
            an = adapter_name(n)
            assert an in adapter_keys, an
            tensors[f"grad.{an}"] = g.contiguous()
            n_lora += 1
        else:
            bn = base_name(n)
            if bn in ("model.embed_tokens.weight", "lm_head.weight"):
                tensors[f"grad.{bn}.rows"] = g[rows[0]:rows[1]].contiguous()
            else:
                tensors[f"grad.{bn}"] = g.contiguous()
    assert n_lora == len(adapter_keys), (n_lora, len(adapter_keys))

    # --- greedy generation with LoRA active --------------------------------------------------
    prompt = torch.randint(3, V, (PROMPT_LEN,), generator=gen, dtype=torch.int64)
    if rows is not None:
        prompt[2] = rows[0] + 1
    with torch.no_grad():
        g = pmodel.generate(input_ids=prompt[None], attention_mask=torch.ones(1, PROMPT_LEN, dtype=torch.int64),
                            do_sample=False, max_new_tokens=N_GEN, min_new_tokens=N_GEN,
                            pad_token_id=0, output_logits=True, output_scores=True,
                            return_dict_in_generate=True, num_beams=1)
    new = g.sequences[0, PROMPT_LEN:].contiguous()
    assert new.numel() == N_GEN
    gen_logits = torch.stack([x[0] for x in g.logits]).float().contiguous()
    # raw logits; min_new_tokens only masks EOS in `scores`; greedy pick is argmax of scores
    scores = torch.stack([x[0] for x in g.scores]).float()
    assert torch.equal(scores.argmax(-1), new)
    # teacher-forced check: full forward on prompt+generated reproduces the step logits
    with torch.no_grad():
        full = pmodel(input_ids=g.sequences, use_cache=False).logits[0, PROMPT_LEN - 1:-1].float()
    assert torch.allclose(full, gen_logits, rtol=1e-4, atol=1e-4), (full - gen_logits).abs().max()
    eos_masked = bool((gen_logits.argmax(-1) != new).any())
    tensors["gen_prompt"] = prompt.contiguous()
    tensors["gen_greedy"] = new
    tensors["gen_logits"] = gen_logits

    meta = {
        "fixture": name,
        "lora_r": str(lo["r"]),
        "lora_alpha": str(lo["alpha"]),
        "lora_scaling": repr(lo["alpha"] / lo["r"]),
        "target_modules": ",".join(lo["targets"]),
        "trainable": ",".join(spec["trainable"]),
        "ignore_index": str(IGNORE),
        "batch": str(B),
        "seq": str(T),
        "n_loss_tokens": str(int((labels[:, 1:] != IGNORE).sum())),
        "gen_new_tokens": str(N_GEN),
        "gen_eos_id_masked_by_min_new_tokens": "2",
        "gen_argmax_logits_differs_from_greedy": "1" if eos_masked else "0",
        "base_dtype": "bfloat16" if spec["bf16_shards"] else "float32",
        "versions": "torch=2.5.1,transformers=4.46.3,peft=0.13.2,safetensors=0.8.0",
    }
    if rows is not None:
        meta["token_rows_start"] = str(rows[0])
        meta["token_rows_end"] = str(rows[1])
    if shard_size is not None:
        meta["max_shard_size"] = str(shard_size)
    ref_path = os.path.join(d, "reference.safetensors")
    save_file_sorted_meta(tensors, ref_path, meta)
    return ref_path


def sanity_check(spec):
    """Reload checkpoint + adapter from disk and reproduce the stored logits / loss."""
    name = spec["name"]
    d = os.path.join(OUT, name)
    ref = load_file(os.path.join(d, "reference.safetensors"))
    cfg = load_config_any(d)
    if spec["v5_rope"]:
        with open(os.path.join(d, "config.json")) as f:
            raw = json.load(f)
        assert "rope_theta" not in raw and raw["rope_parameters"]["rope_theta"] == spec["config"]["rope_theta"]
        assert cfg.rope_theta == spec["config"]["rope_theta"]
    if spec["bf16_shards"]:
        idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
        shards = sorted(set(idx["weight_map"].values()))
        assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], shards
        for s in shards:
            with safe_open(os.path.join(d, s), "pt") as f:
                for k in f.keys():
                    assert f.get_slice(k).get_dtype() == "BF16", k
    base = AutoModelForCausalLM.from_pretrained(d, config=cfg, torch_dtype=torch.float32,
                                                attn_implementation="eager").eval()
    pm = PeftModel.from_pretrained(base, os.path.join(d, "adapter")).eval()
    with torch.no_grad():
        out = pm(input_ids=ref["input_ids"], labels=ref["labels"], use_cache=False)
    assert torch.equal(out.logits.float(), ref["logits"]), (out.logits - ref["logits"]).abs().max()
    assert torch.equal(out.loss.float(), ref["loss"])
    # LoRA is really active: logits differ from the plain base model
    with torch.no_grad(), pm.disable_adapter():
        plain = pm(input_ids=ref["input_ids"], use_cache=False).logits
    diff = (plain - ref["logits"]).abs().max().item()
    assert diff > 1e-2, diff
    lstd = ref["logits"].std().item()
    print(f"  {name}: reload OK (logits bit-identical), loss={ref['loss'].item():.6f}, "
          f"logits std={lstd:.3f}, |LoRA effect|max={diff:.3f}")


def main():
    os.makedirs(OUT, exist_ok=True)
    for spec in FIXTURES:
        make_one(spec)
    for spec in FIXTURES:
        sanity_check(spec)
    total = 0
    lines = []
    for path in sorted(glob.glob(os.path.join(OUT, "**", "*"), recursive=True)):
        if os.path.isfile(path):
            sz = os.path.getsize(path)
            total += sz
            lines.append(f"{sz:9d}  {sha256(path)[:16]}  {os.path.relpath(path, OUT)}")
    print("\n".join(lines))
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
