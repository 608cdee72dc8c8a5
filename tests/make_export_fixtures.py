#!/usr/bin/env python3
"""Reference files for tests/eval/test_export.c (m2u-export), made by the tools people deploy with.

It builds a tiny LLaMA base (GQA, untied, 3 layers, a 300-token LLaMA tokenizer cut from
tests/fixtures/tokenizer) and a fake trainer run (config.yaml + checkpoints/step-00000003/
trainable.safetensors under m2u's parameter names: LoRA r=4 alpha=8 on all 7 linears, biases on
q/o/gate/up/down, every norm, 8 [AUD] rows of embed_tokens and lm_head, gates + prefix queries on all
3 layers, a small music adapter and projector), then writes what each format's reference writer makes
of that state:

  reference/peft/            peft 0.13.2 save_pretrained of a PeftModel over the resized base
                             (vocab 300 -> 308) with the same LoRA and rows: adapter_config.json,
                             adapter_model.safetensors (LoRA + whole embed_tokens / lm_head)
  reference/merged.safetensors  the merged LlamaForCausalLM state dict: peft's merge_and_unload of
                             the LoRA, trained norms/biases/rows, k/v biases zero, the text-only
                             adapter term tanh(gate) * W_v prefix folded through o_proj (with LoRA)
                             into o_proj.bias
  reference/model_f32.gguf   gguf-py's GGUFWriter with the keys convert_hf_to_gguf.py writes for a
                             llama (vocabulary by gguf-py's LlamaHfVocab + SpecialVocab on the
                             tokenizer with [AUD0..7] added, but merge-rank scores instead of -1000,
                             see tests/gguf_spm.py), tensors of the above WITHOUT the LoRA,
                             q/k rows (and the q bias) permuted like LlamaModel.permute, all F32
  reference/lora_f32.gguf    what convert_lora_to_gguf.py writes for the PEFT adapter (outtype f32):
                             lora_a = A, lora_b = B with q/k rows permuted, adapter.lora.alpha
  reference/m2ugen/checkpoint.pth  torch.save({"model": OrderedDict}) of the trainables in M2UGen's
                             names/shapes (Meta layout, LoRA scale folded into lora_*_l2), names sorted
  torch_state.pth / torch_state.safetensors  torch.save of a 41-tensor OrderedDict of every storage
                             dtype and rank 0..5 (with an empty tensor), and the same tensors with their
                             dict order in __metadata__["order"]: m2u's .pth writer must match it byte for byte

Pinned: torch 2.5.1, transformers 4.46.3, peft 0.13.2, safetensors 0.8.0, numpy 1.26.4, gguf 0.17.1
(pip install gguf==0.17.1).  Run from anywhere: python3 tests/make_export_fixtures.py (~5 s, CPU).
"""
import collections
import json
import os
import shutil
import sys

if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import numpy as np
import torch
import transformers
import peft
import safetensors
import gguf
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gguf_spm import merge_rank_scores  # noqa: E402

PINS = {"torch": (torch.__version__.split("+")[0], "2.5.1"), "transformers": (transformers.__version__, "4.46.3"),
        "peft": (peft.__version__, "0.13.2"), "safetensors": (safetensors.__version__, "0.8.0"),
        "numpy": (np.__version__, "1.26.4")}
for k, (have, want) in PINS.items():
    if have != want:
        sys.exit(f"make_export_fixtures: need {k} {want}, have {have}")
try:
    from importlib.metadata import version as _v
    if _v("gguf") != "0.17.1":
        sys.exit(f"make_export_fixtures: need gguf 0.17.1, have {_v('gguf')}")
except Exception as e:  # pragma: no cover
    sys.exit(f"make_export_fixtures: {e}")

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.chdir(ROOT)
OUT = "tests/fixtures/export"
BASE = f"{OUT}/base"
RUN = f"{OUT}/run"
REF = f"{OUT}/reference"
V0, C, F, L, H, KV, HD = 300, 32, 64, 3, 4, 2, 8
R, ALPHA, N_AUD, Q = 4, 8.0, 8, 1
SCALE = ALPHA / R
LIN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PARENT = {"q_proj": "self_attn", "k_proj": "self_attn", "v_proj": "self_attn", "o_proj": "self_attn",
          "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}
META = {"q_proj": ("attention", "wq"), "k_proj": ("attention", "wk"), "v_proj": ("attention", "wv"),
        "o_proj": ("attention", "wo"), "gate_proj": ("feed_forward", "w1"), "up_proj": ("feed_forward", "w3"),
        "down_proj": ("feed_forward", "w2")}
BIASED = ["q_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def dims(lin):
    return {"q_proj": (H * HD, C), "k_proj": (KV * HD, C), "v_proj": (KV * HD, C), "o_proj": (C, H * HD),
            "gate_proj": (F, C), "up_proj": (F, C), "down_proj": (C, F)}[lin]


def llama_permute(w, n_head, n_head_kv=None):
    """convert_hf_to_gguf.py LlamaModel.permute: HF rotate_half rows -> Meta interleaved rows."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def make_tokenizer():
    src = json.load(open("tests/fixtures/tokenizer/tokenizer.json", encoding="utf-8"))
    vocab = {t: i for t, i in src["model"]["vocab"].items() if i < V0}
    merges = []
    for m in src["model"]["merges"]:  # ["a", "b"] pairs, or "a b" strings in older files
        a, b = m.split(" ") if isinstance(m, str) else m
        if a in vocab and b in vocab and (a + b) in vocab:
            merges.append(m)
    src["model"]["vocab"] = vocab
    src["model"]["merges"] = merges
    src["added_tokens"] = [t for t in src["added_tokens"] if t["id"] < V0]
    json.dump(src, open(f"{BASE}/tokenizer.json", "w", encoding="utf-8"), ensure_ascii=False, indent=2)
    tc = json.load(open("tests/fixtures/tokenizer/tokenizer_config.json"))
    tc["model_max_length"] = 64
    json.dump(tc, open(f"{BASE}/tokenizer_config.json", "w"), indent=2, sort_keys=True)


def make_base(g):
    cfg = transformers.LlamaConfig(vocab_size=V0, hidden_size=C, intermediate_size=F, num_hidden_layers=L,
                                   num_attention_heads=H, num_key_value_heads=KV, max_position_embeddings=64,
                                   rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
                                   bos_token_id=1, eos_token_id=2, torch_dtype="float32")
    model = transformers.LlamaForCausalLM(cfg)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif "embed" in n:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
    model.save_pretrained(BASE, safe_serialization=True)
    return model


def make_trainables(g):
    t = collections.OrderedDict()
    for l in range(L):
        for lin in LIN:
            out, inp = dims(lin)
            pre = f"base_model.model.model.layers.{l}.{PARENT[lin]}.{lin}"
            t[f"{pre}.lora_A.weight"] = torch.randn(R, inp, generator=g) / inp ** 0.5
            t[f"{pre}.lora_B.weight"] = 0.5 * torch.randn(out, R, generator=g) / R ** 0.5
            if lin in BIASED:
                t[f"model.layers.{l}.{PARENT[lin]}.{lin}.bias"] = 0.1 * torch.randn(out, generator=g)
        t[f"model.layers.{l}.input_layernorm.weight"] = 1 + 0.2 * torch.randn(C, generator=g)
        t[f"model.layers.{l}.post_attention_layernorm.weight"] = 1 + 0.2 * torch.randn(C, generator=g)
        t[f"model.layers.{l}.self_attn.gate"] = 0.7 * torch.randn(H, generator=g)
    t["model.norm.weight"] = 1 + 0.2 * torch.randn(C, generator=g)
    t["model.embed_tokens.weight.rows"] = 1 + 0.1 * torch.randn(N_AUD, C, generator=g)
    t["lm_head.weight.rows"] = (torch.rand(N_AUD, C, generator=g) * 2 - 1) / C ** 0.5
    t["prefix_query.weight"] = torch.randn(3 * Q, C, generator=g)
    t["mu_mert_agg.weight"] = torch.randn(1, 5, generator=g) / 5 ** 0.5
    t["mu_mert_agg.bias"] = 0.1 * torch.randn(1, generator=g)
    t["mu_mert_proj.weight"] = torch.randn(C, 16, generator=g) / 4
    t["mu_mert_proj.bias"] = 0.1 * torch.randn(C, generator=g)
    t["mu_mert_norm_1.weight"] = 1 + 0.1 * torch.randn(C, generator=g)
    for f in ("f1_1", "f2_1", "f3_1"):
        t[f"mu_mert_{f}.weight"] = torch.randn(C, C, generator=g) / C ** 0.5
    t["output_projector.fc.weight"] = torch.randn(8, C, generator=g) / C ** 0.5
    t["output_projector.fc.bias"] = 0.1 * torch.randn(8, generator=g)
    t["output_projector.query_embs"] = torch.randn(4, 8, generator=g)
    t["output_projector.model.weight"] = torch.randn(6, 8, generator=g) / 8 ** 0.5
    t["output_projector.model.bias"] = 0.1 * torch.randn(6, generator=g)
    ck = f"{RUN}/checkpoints/step-00000003"
    os.makedirs(ck, exist_ok=True)
    save_file({k: v.contiguous() for k, v in t.items()}, f"{ck}/trainable.safetensors", metadata={"format": "pt"})
    json.dump({"step": 3}, open(f"{ck}/state.json", "w"))
    open(f"{ck}/COMPLETE", "w").write("")
    open(f"{RUN}/config.yaml", "w").write(
        "# minimal trainer config of the fixture run (m2u-export reads lora.* and model.aud_tokens)\n"
        "run:\n  name: export_fixture\n"
        "model:\n  llm: tests/fixtures/export/base\n  aud_tokens: 8\n  query_layer: 1\n  modalities: [music]\n"
        "  music_tokens: 5\n  music_dim: 16\n"
        "lora:\n  r: 4\n  alpha: 8\n  dropout: 0.0\n"
        "  targets: [q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj]\n"
        "train:\n  stage: 3\n  data: tests/fixtures/export/run/manifest.json\n")
    return t


def peft_reference(t):
    """PeftModel over the resized base with the run's LoRA and rows, saved by peft."""
    model = transformers.AutoModelForCausalLM.from_pretrained(BASE, torch_dtype=torch.float32)
    model.resize_token_embeddings(V0 + N_AUD)
    with torch.no_grad():
        model.model.embed_tokens.weight[V0:] = t["model.embed_tokens.weight.rows"]
        model.lm_head.weight[V0:] = t["lm_head.weight.rows"]
    cfg = peft.LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=LIN, task_type="CAUSAL_LM")
    pm = peft.get_peft_model(model, cfg)
    sd = {k: v for k, v in t.items() if ".lora_" in k}
    res = peft.set_peft_model_state_dict(pm, sd)
    assert not [k for k in res.unexpected_keys], res.unexpected_keys
    d = f"{REF}/peft"
    pm.save_pretrained(d)
    if os.path.exists(f"{d}/README.md"):
        os.remove(f"{d}/README.md")
    return pm


def adapter_term(W_v, W_o, gate, p):
    """o_proj(W) of the text-only adapter contribution: tanh(gate_h) * (W_v p)[kv(h)]."""
    v = W_v @ p
    group = H // KV
    c = torch.cat([torch.tanh(gate[h]) * v[(h // group) * HD:(h // group + 1) * HD] for h in range(H)])
    return W_o @ c


def effective(t, merged_lora_state):
    """HF state dict of the exported model: LoRA merged iff merged_lora_state is given (peft's merge)."""
    base = load_file(f"{BASE}/model.safetensors")
    sd = collections.OrderedDict()
    sd["model.embed_tokens.weight"] = torch.cat([base["model.embed_tokens.weight"], t["model.embed_tokens.weight.rows"]])
    for l in range(L):
        for lin in LIN:
            name = f"model.layers.{l}.{PARENT[lin]}.{lin}"
            w = merged_lora_state[f"{name}.weight"] if merged_lora_state is not None else base[f"{name}.weight"]
            sd[f"{name}.weight"] = w.clone()
            b = t.get(f"{name}.bias", torch.zeros(dims(lin)[0]))
            if lin == "o_proj":
                pre = f"base_model.model.{name}"
                w_o = base[f"{name}.weight"] + SCALE * (t[f"{pre}.lora_B.weight"] @ t[f"{pre}.lora_A.weight"])
                b = b + adapter_term(base[f"model.layers.{l}.self_attn.v_proj.weight"], w_o,
                                     t[f"model.layers.{l}.self_attn.gate"], t["prefix_query.weight"][l])
            sd[f"{name}.bias"] = b.clone()
        sd[f"model.layers.{l}.input_layernorm.weight"] = t[f"model.layers.{l}.input_layernorm.weight"]
        sd[f"model.layers.{l}.post_attention_layernorm.weight"] = t[f"model.layers.{l}.post_attention_layernorm.weight"]
    sd["model.norm.weight"] = t["model.norm.weight"]
    sd["lm_head.weight"] = torch.cat([base["lm_head.weight"], t["lm_head.weight.rows"]])
    return sd


def tokenizer_with_aud(d):
    tok = transformers.AutoTokenizer.from_pretrained(BASE)
    tok.add_tokens([f"[AUD{i}]" for i in range(N_AUD)])
    tok.save_pretrained(d)
    cfg = json.load(open(f"{BASE}/config.json"))
    cfg["vocab_size"] = V0 + N_AUD
    json.dump(cfg, open(f"{d}/config.json", "w"))


def gguf_model_reference(sd, tokdir):
    w = gguf.GGUFWriter(f"{REF}/model_f32.gguf", "llama")
    w.add_type("model")
    w.add_name("base")
    w.add_block_count(L)
    w.add_context_length(64)
    w.add_embedding_length(C)
    w.add_feed_forward_length(F)
    w.add_head_count(H)
    w.add_head_count_kv(KV)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_vocab_size(V0 + N_AUD)
    w.add_rope_dimension_count(HD)
    vocab = gguf.LlamaHfVocab(__import__("pathlib").Path(tokdir))
    toks, scores, types = [], [], []
    for text, score, typ in vocab.all_tokens():
        toks.append(text)
        scores.append(score)
        types.append(typ)
    # The one deliberate difference from gguf-py's LlamaHfVocab: not -1000 for every piece, but the
    # merge-rank scores that make llama.cpp's SPM tokenizer give HF's ids (tests/gguf_spm.py, checked
    # by tests/make_gguf_vocab_fixtures.py and tests/eval/test_gguf_vocab.c).
    assert set(scores) == {-1000.0}, "gguf-py's LlamaHfVocab changed its scores"
    scores = merge_rank_scores(json.load(open(f"{tokdir}/tokenizer.json", encoding="utf-8")), len(toks))
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    gguf.SpecialVocab(__import__("pathlib").Path(tokdir), n_vocab=len(toks)).add_to_gguf(w)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    names = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
             "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
    for k, v in sd.items():
        a = v.numpy().astype(np.float32)
        if k == "model.embed_tokens.weight":
            n = "token_embd.weight"
        elif k == "lm_head.weight":
            n = "output.weight"
        elif k == "model.norm.weight":
            n = "output_norm.weight"
        else:
            parts = k.split(".")
            l = parts[2]
            if parts[3] == "input_layernorm":
                n = f"blk.{l}.attn_norm.weight"
            elif parts[3] == "post_attention_layernorm":
                n = f"blk.{l}.ffn_norm.weight"
            else:
                n = f"blk.{l}.{names[parts[4]]}.{parts[5]}"
                if parts[4] == "q_proj":
                    a = llama_permute(a, H, H)
                elif parts[4] == "k_proj":
                    a = llama_permute(a, H, KV)
        w.add_tensor(n, np.ascontiguousarray(a))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def gguf_lora_reference():
    ad = load_file(f"{REF}/peft/adapter_model.safetensors")
    w = gguf.GGUFWriter(f"{REF}/lora_f32.gguf", "llama")
    w.add_type("adapter")
    w.add_name("base")
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", ALPHA)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    names = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
             "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
    for k in sorted(ad):
        if ".lora_" not in k:
            continue  # the converter refuses embeddings; m2u's gguf-lora carries LoRA only
        parts = k.split(".")
        l, lin, ab = parts[4], parts[6], parts[7]
        a = ad[k].numpy()
        if ab == "lora_B" and lin in ("q_proj", "k_proj"):
            a = llama_permute(a, H, H if lin == "q_proj" else KV)
        w.add_tensor(f"blk.{l}.{names[lin]}.weight.{'lora_a' if ab == 'lora_A' else 'lora_b'}", np.ascontiguousarray(a))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def to_meta_rows(w):
    """HF rotate_half rows -> Meta interleaved rows, per head of HD rows."""
    rows = w.shape[0]
    return w.reshape(rows // HD, 2, HD // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def m2ugen_reference(t):
    base = load_file(f"{BASE}/model.safetensors")
    sd = {}
    for k, v in t.items():
        p = k.split(".")
        if ".lora_" in k:
            l, lin, ab = p[4], p[6], p[7]
            part, wname = META[lin]
            v = v * SCALE if ab == "lora_B" else v
            if ab == "lora_B" and lin in ("q_proj", "k_proj"):
                v = to_meta_rows(v)
            sd[f"llama.layers.{l}.{part}.lora_{wname}_{'l1' if ab == 'lora_A' else 'l2'}.weight"] = v
        elif k.endswith("_proj.bias") and k.startswith("model.layers."):
            part, wname = META[p[4]]
            sd[f"llama.layers.{p[2]}.{part}.{wname}.bias"] = to_meta_rows(v) if p[4] in ("q_proj", "k_proj") else v
        elif k.endswith("input_layernorm.weight"):
            sd[f"llama.layers.{p[2]}.attention_norm.weight"] = v
        elif k.endswith("post_attention_layernorm.weight"):
            sd[f"llama.layers.{p[2]}.ffn_norm.weight"] = v
        elif k.endswith("self_attn.gate"):
            sd[f"llama.layers.{p[2]}.attention.gate"] = v.reshape(1, H, 1, 1)
        elif k == "model.norm.weight":
            sd["llama.norm.weight"] = v
        elif k == "model.embed_tokens.weight.rows":
            sd["llama.tok_embeddings.weight"] = torch.cat([base["model.embed_tokens.weight"], v])
        elif k == "lm_head.weight.rows":
            sd["llama.output.weight"] = torch.cat([base["lm_head.weight"], v])
        elif k.endswith("agg.weight"):
            sd[k] = v.reshape(1, -1, 1)
        elif k.endswith("query_embs"):
            sd[k] = v.reshape(1, *v.shape)
        else:
            sd[k] = v
    od = collections.OrderedDict((k, sd[k].contiguous().clone()) for k in sorted(sd))
    os.makedirs(f"{REF}/m2ugen", exist_ok=True)
    torch.save({"model": od}, f"{REF}/m2ugen/checkpoint.pth")


def torch_state():
    g = torch.Generator().manual_seed(7)
    sd = collections.OrderedDict()
    dts = [torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int32, torch.int16,
           torch.int8, torch.uint8, torch.bool]
    shapes = [(), (3,), (2, 5), (1, 4, 1), (2, 1, 3, 2), (1, 2, 1, 2, 3), (0, 4), (300,)]
    i = 0
    for s in shapes:
        for dt in dts[: 5 if len(s) else 10]:
            x = torch.randn(s, generator=g) * 100
            x = x.to(dt) if dt != torch.bool else (x > 0)
            sd[f"t{i}.{'w' * (i % 7)}{dt}".replace("torch.", "")] = x
            i += 1
    sd = collections.OrderedDict(list(sd.items())[:41])
    torch.save(sd, f"{OUT}/torch_state.pth")
    save_file(dict(sd), f"{OUT}/torch_state.safetensors", metadata={"order": ",".join(sd)})  # one key: deterministic bytes
    back = torch.load(f"{OUT}/torch_state.pth", weights_only=True)
    assert list(back) == list(sd)


def main():
    if os.path.exists(OUT):
        keep = f"{OUT}/README.md"
        readme = open(keep).read() if os.path.exists(keep) else None
        shutil.rmtree(OUT)
        os.makedirs(OUT)
        if readme:
            open(keep, "w").write(readme)
    os.makedirs(BASE, exist_ok=True)
    os.makedirs(REF, exist_ok=True)
    g = torch.Generator().manual_seed(20240607)
    make_tokenizer()
    make_base(g)
    t = make_trainables(g)
    pm = peft_reference(t)
    merged = pm.merge_and_unload().state_dict()
    sd_merged = effective(t, merged)
    save_file({k: v.contiguous() for k, v in sd_merged.items()}, f"{REF}/merged.safetensors", metadata={"format": "pt"})
    sd_nolora = effective(t, None)
    tokdir = f"{OUT}/_tok"
    tokenizer_with_aud(tokdir)
    gguf_model_reference(sd_nolora, tokdir)
    shutil.rmtree(tokdir)
    gguf_lora_reference()
    m2ugen_reference(t)
    torch_state()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(OUT) for f in fs)
    print(f"make_export_fixtures: wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
