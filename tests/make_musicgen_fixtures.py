#!/usr/bin/env python3
"""Generate tests/fixtures/musicgen/: reference data for models/nets/musicgen.c (read by
tests/test_musicgen.c).  Python only makes reference files; the C toolkit never runs Python.

Pinned versions (the script refuses others): python 3.11, torch 2.5.1, transformers 4.46.3,
safetensors 0.8.0, numpy 1.26.4.

Usage:  python3 tests/make_musicgen_fixtures.py      (~30 s)

Two tiny random MusicgenForConditionalGeneration models (T5 text encoder, a tiny EnCodec that
is not saved, the decoder LM):
  proj:   T5 d_model 32 -> decoder hidden 48 (enc_to_dec_proj present), 2 layers, 4 heads,
          4 codebooks of 64 codes, fp32, two safetensors shards + model.safetensors.index.json;
  noproj: T5 d_model 40 = decoder hidden 40 (no enc_to_dec_proj), 3 layers, 5 heads,
          2 codebooks of 32 codes, weights rounded to bf16 and stored as BF16 (the reference
          runs the fp32 model holding the same rounded values) in pytorch_model.bin (torch.save);
          no stored sinusoid table.
Only text_encoder.*, decoder.* and enc_to_dec_proj.* are saved (the C side has its own EnCodec).

ref.safetensors per model (ids as I64):
  max_length [1], has_mask [1]             generate's max_length (N_FRAMES + K); whether enc_mask is passed
  enc [S, D_enc], enc_mask [S]            fixed encoder states (entry b) and their mask
  raw_logits [3, K, V]                     decoder logits of the first 3 passes, no CFG
  greedy_codes [K, N]                      HF generate(encoder_outputs=..., attention_mask=...,
                                           guidance_scale=1, do_sample=False): the un-delayed
                                           codes that generate hands to audio_encoder.decode
  cfg_raw [3, 2, K, V], cfg_guided [3, K, V], cfg_codes [K, N], cfg_seq [K, max_length]
                                           CFG at guidance 3 from the same states (see below)
  text_ids [St], text_mask [St], text_states [St, D_enc]   T5 output of a prompt
  text_cfg_codes [K, N], text_cfg_scores [3, K, V]          HF generate(input_ids=...,
                                           attention_mask=..., guidance_scale=3, do_sample=False):
                                           codes and the guided scores of the first 3 steps
  delay.<K>x<L> [K, L]                     build_delay_pattern_mask for a start column
  prompt_ids, prompt_cfg_codes (proj)      PROMPT (__metadata__ "prompt") tokenised and generated

CFG from encoder states: transformers 4.46.3 adds the null half (zeros, mask 0) only inside
_prepare_text_encoder_kwargs_for_generation, which generate skips when encoder_outputs is
given; the decoder batch is doubled anyway, so generate(encoder_outputs=..., guidance_scale>1)
mis-shapes the batch.  The reference is therefore built by `manual_generate` below: generate's
own steps written out (build_delay_pattern_mask, apply_delay_pattern_mask, the model forward
with the KV cache, ClassifierFreeGuidanceLogitsProcessor, argmax, the final un-delay) with the
null half appended the way the text path appends it.  The script checks that manual_generate
reproduces HF generate exactly on the text path (with and without CFG) before using it.
"""
import json
import os
import shutil
import sys
import tempfile
import types
import warnings

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy
import safetensors
import torch
import transformers
from safetensors.torch import save_file
from transformers import (EncodecConfig, MusicgenConfig, MusicgenDecoderConfig, MusicgenForConditionalGeneration,
                          T5Config)
from transformers.generation.logits_process import ClassifierFreeGuidanceLogitsProcessor

PINNED = {
    "torch": (torch.__version__.split("+")[0], "2.5.1"),
    "transformers": (transformers.__version__, "4.46.3"),
    "safetensors": (safetensors.__version__, "0.8.0"),
    "numpy": (numpy.__version__, "1.26.4"),
}
for _name, (_have, _want) in PINNED.items():
    if _have != _want:
        sys.exit(f"make_musicgen_fixtures: need {_name}=={_want}, found {_have}")

warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "musicgen")

MODELS = [
    dict(name="proj", seed=11, t5=dict(d_model=32, d_kv=8, num_heads=4, d_ff=64, num_layers=2, vocab_size=800),
         dec=dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=4, ffn_dim=96, num_codebooks=4,
                  vocab_size=64, max_position_embeddings=64),
         bf16=False, S=7, n_masked=2, St=6, st_masked=1),
    dict(name="noproj", seed=12, t5=dict(d_model=40, d_kv=8, num_heads=5, d_ff=64, num_layers=1, vocab_size=100),
         dec=dict(hidden_size=40, num_hidden_layers=3, num_attention_heads=5, ffn_dim=80, num_codebooks=2,
                  vocab_size=32, max_position_embeddings=64),
         bf16=True, S=5, n_masked=0, St=4, st_masked=0),
]
N_FRAMES = 21  # frames of generated codes checked (>= 20)
# The prompt test (proj model) tokenises with tests/fixtures/t5/tokenizer.json (a t5-base-like
# Unigram tokenizer made by make_t5_fixtures.py, 800 pieces), as MusicGen's T5 processor does
# for one prompt: pieces + </s>, mask all ones.
T5_TOKENIZER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "t5", "tokenizer.json")
PROMPT = "calm lo-fi piano with soft rain, 80 bpm"
G = 3.0


def build(m):
    torch.manual_seed(m["seed"])
    V = m["dec"]["vocab_size"]
    t5 = T5Config(**m["t5"], feed_forward_proj="relu", dropout_rate=0.0)
    enc = EncodecConfig(num_filters=4, hidden_size=16, codebook_size=V, num_lstm_layers=1, upsampling_ratios=[2, 2],
                        target_bandwidths=[1.5], sampling_rate=800)
    dec = MusicgenDecoderConfig(**m["dec"], pad_token_id=V, bos_token_id=V, dropout=0.0, attention_dropout=0.0,
                                activation_dropout=0.0)
    cfg = MusicgenConfig.from_sub_models_config(t5, enc, dec)
    model = MusicgenForConditionalGeneration(cfg).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "embed_positions" in n:
                continue
            # larger than the default init so the logits spread and argmax ties cannot happen
            if p.dim() >= 2:
                p.normal_(0, 0.5 / p.shape[-1] ** 0.5)
            elif n.endswith("bias"):
                p.normal_(0, 0.1)
            else:
                p.normal_(1, 0.1)
            if m["bf16"]:
                p.copy_(p.to(torch.bfloat16).float())
    model.generation_config.decoder_start_token_id = V
    model.generation_config.pad_token_id = V
    model.generation_config.bos_token_id = V
    model.generation_config.guidance_scale = 1.0
    return model


def manual_generate(model, h, mask, g, max_length):
    """generate's loop written out (see the module docstring)."""
    dec = model.decoder
    K = dec.num_codebooks
    V = model.config.decoder.vocab_size
    start = model.generation_config.decoder_start_token_id
    ids = torch.full((K, 1), start, dtype=torch.long)
    ids, dmask = dec.build_delay_pattern_mask(ids, pad_token_id=start, max_length=max_length)
    cfg = g > 1
    if cfg:
        enc = torch.cat([h, torch.zeros_like(h)], 0)
        am = torch.cat([mask if mask is not None else torch.ones(h.shape[:2], dtype=torch.long),
                        torch.zeros(h.shape[:2], dtype=torch.long)], 0)
        proc = ClassifierFreeGuidanceLogitsProcessor(g)
    else:
        enc, am = h, mask
    past, raws, guided, seq = None, [], [], ids
    with torch.no_grad():
        while seq.shape[-1] < max_length:
            cur = dec.apply_delay_pattern_mask(seq, dmask)
            inp = cur[:, -1:]
            if cfg:
                inp = inp.repeat(2, 1)
            out = model(encoder_outputs=(enc,), attention_mask=am, decoder_input_ids=inp, past_key_values=past,
                        use_cache=True)
            past = out.past_key_values
            raw = out.logits[:, -1, :].float()
            sc = proc(seq, raw) if cfg else raw
            raws.append(raw.reshape(-1, K, V).clone())
            guided.append(sc.clone())
            seq = torch.cat([seq, sc.argmax(-1)[:, None]], -1)
    seq = dec.apply_delay_pattern_mask(seq, dmask)
    codes = seq[seq != model.generation_config.pad_token_id].reshape(K, -1)
    return codes, seq, torch.stack(raws), torch.stack(guided)


def hf_generate_codes(model, **kw):
    """HF generate; the codes are caught where generate hands them to audio_encoder.decode."""
    caught = {}
    orig = model.audio_encoder.decode

    def catch(codes, *a, **k):
        # the tiny random codec is not part of the reference: hand back silence
        caught["codes"] = codes.clone()
        return types.SimpleNamespace(audio_values=torch.zeros(1, 1, 1))

    model.audio_encoder.decode = catch
    try:
        with torch.no_grad():
            out = model.generate(do_sample=False, return_dict_in_generate=True, output_scores=True, **kw)
    finally:
        model.audio_encoder.decode = orig
    return caught["codes"][0, 0], out.scores


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for m in MODELS:
        model = build(m)
        K, V = m["dec"]["num_codebooks"], m["dec"]["vocab_size"]
        D = m["t5"]["d_model"]
        L = N_FRAMES + K
        g = torch.Generator().manual_seed(m["seed"] + 100)
        h = torch.randn(1, m["S"], D, generator=g)
        mask = None
        if m["n_masked"]:
            mask = torch.ones(1, m["S"], dtype=torch.long)
            mask[0, m["S"] - m["n_masked"]:] = 0
        ref = {"enc": h[0].contiguous()}
        ref["enc_mask"] = (mask[0] if mask is not None else torch.ones(m["S"], dtype=torch.long)).contiguous()
        # at most one __metadata__ key: safetensors writes several in hash order (bytes would
        # change from run to run); the numbers are tensors instead
        meta = {}
        ref["has_mask"] = torch.tensor([int(mask is not None)], dtype=torch.long)
        ref["max_length"] = torch.tensor([L], dtype=torch.long)

        # no CFG: logits from the states, HF generate's greedy codes, and the manual loop agrees
        codes, seq, raws, _ = manual_generate(model, h, mask, 1.0, L)
        kw = dict(encoder_outputs=(h,), max_length=L, guidance_scale=1.0)
        if mask is not None:
            kw["attention_mask"] = mask
        hf_codes, _ = hf_generate_codes(model, **kw)
        assert torch.equal(hf_codes, codes), "manual loop differs from generate (encoder_outputs, no CFG)"
        ref["raw_logits"] = raws[:3, 0].contiguous()
        ref["greedy_codes"] = hf_codes.contiguous()

        # CFG from the states (the manual loop: generate mis-shapes this case)
        codes, seq, raws, guided = manual_generate(model, h, mask, G, L)
        ref["cfg_raw"] = raws[:3].reshape(3, 2, K, V).contiguous()
        ref["cfg_guided"] = guided[:3].contiguous()
        ref["cfg_codes"] = codes.contiguous()
        ref["cfg_seq"] = seq.contiguous()

        # text path: HF generate end to end, and the manual loop on the T5 states agrees
        St = m["St"]
        text_ids = torch.randint(2, m["t5"]["vocab_size"], (1, St), generator=g)
        text_mask = torch.ones(1, St, dtype=torch.long)
        if m["st_masked"]:
            text_mask[0, St - m["st_masked"]:] = 0
            text_ids[0, St - m["st_masked"]:] = 0
        with torch.no_grad():
            ts = model.text_encoder(input_ids=text_ids, attention_mask=text_mask).last_hidden_state
        hf_codes, scores = hf_generate_codes(model, input_ids=text_ids, attention_mask=text_mask, max_length=L,
                                             guidance_scale=G)
        mcodes, _, _, mguided = manual_generate(model, ts, text_mask, G, L)
        assert torch.equal(hf_codes, mcodes), "manual loop differs from generate (text, CFG)"
        assert torch.equal(torch.stack(scores)[:3], mguided[:3]), "manual CFG scores differ from generate's"
        hf1, _ = hf_generate_codes(model, input_ids=text_ids, attention_mask=text_mask, max_length=L,
                                   guidance_scale=1.0)
        m1, _, _, _ = manual_generate(model, ts, text_mask, 1.0, L)
        assert torch.equal(hf1, m1), "manual loop differs from generate (text, no CFG)"
        ref["text_ids"] = text_ids[0].contiguous()
        ref["text_mask"] = text_mask[0].contiguous()
        ref["text_states"] = ts[0].contiguous()
        ref["text_cfg_codes"] = hf_codes.contiguous()
        ref["text_cfg_scores"] = torch.stack(scores)[:3].contiguous()

        if m["name"] == "proj":  # prompt text -> tokenizer -> T5 -> generate, all HF
            from tokenizers import Tokenizer
            pids = torch.tensor([Tokenizer.from_file(T5_TOKENIZER).encode(PROMPT).ids])
            pc, _ = hf_generate_codes(model, input_ids=pids, attention_mask=torch.ones_like(pids), max_length=L,
                                      guidance_scale=G)
            ref["prompt_ids"] = pids[0].contiguous()
            ref["prompt_cfg_codes"] = pc.contiguous()
            meta["prompt"] = PROMPT

        for (kk, ll) in [(K, 8), (K, 2 * K - 1), (K, L)]:
            ids = torch.full((kk, 1), V, dtype=torch.long)
            _, dm = model.decoder.build_delay_pattern_mask(ids, pad_token_id=V, max_length=ll)
            ref[f"delay.{kk}x{ll}"] = dm.contiguous()

        d = os.path.join(OUT, m["name"])
        os.makedirs(d)
        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            shutil.copy(os.path.join(tmp, "config.json"), d)
            shutil.copy(os.path.join(tmp, "generation_config.json"), d)
        # as save_pretrained: the T5 embedding is stored once (shared.weight), the codec not at all
        sd = {k: v.clone().contiguous() for k, v in model.state_dict().items()
              if not k.startswith("audio_encoder.") and k != "text_encoder.encoder.embed_tokens.weight"}
        if m["bf16"]:
            # the stored sinusoid table is optional (the C side recomputes it): this model omits it
            sd = {k: v.to(torch.bfloat16) for k, v in sd.items() if "embed_positions" not in k}
        if m["name"] == "proj":
            # two safetensors shards + index, as save_pretrained writes big checkpoints
            names = sorted(sd)
            half = len(names) // 2
            shards = {"model-00001-of-00002.safetensors": names[:half],
                      "model-00002-of-00002.safetensors": names[half:]}
            wmap = {}
            for fn, keys in shards.items():
                save_file({k: sd[k] for k in keys}, os.path.join(d, fn), metadata={"format": "pt"})
                wmap.update({k: fn for k in keys})
            with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
                json.dump({"metadata": {"total_size": sum(v.numel() * v.element_size() for v in sd.values())},
                           "weight_map": wmap}, f, indent=2, sort_keys=True)
        else:
            torch.save(sd, os.path.join(d, "pytorch_model.bin"))  # the torch.save zip archive
        save_file(ref, os.path.join(d, "ref.safetensors"), metadata=meta or None)
        print(m["name"], "greedy", ref["greedy_codes"].shape, "cfg", ref["cfg_codes"].shape)


if __name__ == "__main__":
    main()
