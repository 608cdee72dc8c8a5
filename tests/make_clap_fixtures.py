#!/usr/bin/env python3
"""Generate the CLAP fixtures in tests/fixtures/clap/, read by tests/test_clap.c and
tests/eval/test_clap_score.c.

Python is only used to *make* reference files; the C toolkit never runs Python.

Pinned versions (refused otherwise):
    torch 2.15.0 (CPU use only), transformers 4.46.3, tokenizers 0.20.3, safetensors 0.8.0,
    numpy 1.26.4 (WAVs are written and read with the standard library's wave module)

Usage:  python3 tests/make_clap_fixtures.py

What it makes (huggingface.co is not reachable, so everything is local and random):
  model/        a tiny random transformers ClapModel saved with save_pretrained
                (config.json, model.safetensors), the ClapFeatureExtractor's
                preprocessor_config.json and a byte-level BPE RobertaTokenizerFast
                trained here on a few sentences (tokenizer.json, vocab.json,
                merges.txt).  The audio tower is HTSAT with laion/clap-htsat-unfused's
                front end (48 kHz, window 1024, hop 480, 64 Slaney mels 50..14000 Hz,
                truncation rand_trunc, padding repeatpad) but max_length_s 1 instead
                of 10 (101 frames instead of 1001) and a small Swin: spec_size 128
                (freq_ratio 2: 101 frames are interpolated bicubically to 256),
                patch 4, window 8, depths [2, 2, 2], dims 8/16/32, heads 2/2/4, so
                stage 1 (32x32) and 2 (16x16) have shifted windows with the -100 mask
                and stage 3 (8x8 = one window) has none, as HTSAT-tiny's last stage.
  audio/*.wav   16-bit mono 48 kHz clips: 0.3 s (repeatpad: 3 copies + zeros),
                1.0 s (exactly max length), 1.25 s (longer: cropped).
  pairs.jsonl   {"audio": "<file>", "caption": "..."} per clip (the m2u-eval clap input).
  expected.safetensors
                input_features_repeat_short, input_features_pad_short [101, 64] (the short
                clip with padding "repeat" / "pad"),
                input_features [3, 101, 64] (ClapFeatureExtractor on the float32 samples
                int16 / 32768, which is what librosa.load(path, sr=48000) returns for a
                16-bit 48 kHz WAV: soundfile's conversion, no resampling),
                audio_pooled [3, 32] (ClapAudioModel pooler_output), audio_embeds [3, 16]
                (get_audio_features), text_ids_<i> (I64), text_pooled [3, 32],
                text_embeds [3, 16] (get_text_features), cosine [3] (paired dot products).
  expected.json the same cosines and their mean as numbers, and the tokenizer's ids.

rand_trunc draws the crop offset with an unseeded np.random.randint; m2u takes the first
max_length samples (offset 0), so this script makes the reference draw 0 (np.random.randint
is replaced while the features are extracted).
"""
import json
import os
import shutil
import sys

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import numpy as np
import safetensors
import wave
import tokenizers
import torch
import transformers
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

PINNED = {
    "torch": (torch.__version__.split("+")[0], "2.15.0"),
    "transformers": (transformers.__version__, "4.46.3"),
    "tokenizers": (tokenizers.__version__, "0.20.3"),
    "safetensors": (safetensors.__version__, "0.8.0"),
    "numpy": (np.__version__, "1.26.4"),
}
for name, (have, want) in PINNED.items():
    if have != want:
        sys.exit(f"{name} {have} != pinned {want}")

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "clap")
MODEL = os.path.join(OUT, "model")
AUDIO = os.path.join(OUT, "audio")
SR = 48000

# ---- tokenizer: byte-level BPE as RoBERTa's (no prefix space, <s> ... </s>) ----
CORPUS = [
    "a calm piano melody with soft strings",
    "an energetic rock song with loud drums and electric guitar",
    "a slow jazz tune played on a saxophone",
    "upbeat electronic dance music with a heavy bass line",
    "the sound of rain and distant thunder",
    "a sad violin solo in a minor key",
    "children singing a happy song",
    "Ambient pads, reverb, 70 BPM; no drums!",
]
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def train_tokenizer(corpus, vocab_size, model_max_length):
    """A RobertaTokenizerFast (byte-level BPE, RoBERTa's special ids) trained on corpus
    (also used by eval/bench/bench_scorers_ref.py)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.post_processor = processors.RobertaProcessing(("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")),
                                                      add_prefix_space=False, trim_offsets=True)
    fast = transformers.RobertaTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
                                             cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                             add_prefix_space=False, model_max_length=model_max_length)
    assert fast.pad_token_id == 1 and fast.bos_token_id == 0 and fast.eos_token_id == 2
    return fast


def randomize_(model, rng):
    """Random, non-trivial values for what initialisation leaves at 0 / 1 (biases, norms,
    BatchNorm statistics, the relative-position tables), so that every parameter matters."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "relative_position_bias_table" in name:
                p.normal_(0.0, 0.5)
            elif name.endswith(".bias") or "LayerNorm" in name or "norm" in name:
                if name.endswith(".weight"):
                    p.uniform_(0.7, 1.3)
                else:
                    p.normal_(0.0, 0.1)
        bn = model.audio_model.audio_encoder.batch_norm
        n = bn.running_mean.numel()
        bn.running_mean.copy_(torch.from_numpy(rng.normal(-40.0, 10.0, n).astype(np.float32)))
        bn.running_var.copy_(torch.from_numpy(rng.uniform(50.0, 400.0, n).astype(np.float32)))
    return model


def feature_extractor(max_length_s):
    """laion/clap-htsat-unfused's preprocessor_config.json, max_length_s aside."""
    return transformers.ClapFeatureExtractor(feature_size=64, sampling_rate=SR, hop_length=480,
                                             max_length_s=max_length_s, fft_window_size=1024, frequency_min=50,
                                             frequency_max=14000, truncation="rand_trunc", padding="repeatpad")


def read_wav(path):  # = librosa.load(path, sr=48000) for 16-bit mono 48 kHz files
    with wave.open(path, "rb") as w:
        assert w.getframerate() == SR and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return (pcm.astype(np.float32) / np.float32(32768.0)).astype(np.float32)


def main():
    for d in (MODEL, AUDIO):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    fast = train_tokenizer(CORPUS, 360, 64)
    fast.save_pretrained(MODEL)
    make(fast, rng)


def make(fast, rng):
    # ---- the model ----
    text_cfg = dict(vocab_size=len(fast), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, max_position_embeddings=64 + 2, type_vocab_size=1, layer_norm_eps=1e-5,
                    pad_token_id=1, bos_token_id=0, eos_token_id=2)
    audio_cfg = dict(window_size=8, num_mel_bins=64, spec_size=128, patch_size=4, patch_stride=[4, 4], hidden_size=32,
                     depths=[2, 2, 2], num_attention_heads=[2, 2, 4], patch_embeds_hidden_size=8, enable_fusion=False,
                     layer_norm_eps=1e-5, mlp_ratio=4.0, hidden_act="gelu")
    cfg = transformers.ClapConfig(text_config=text_cfg, audio_config=audio_cfg, projection_dim=16)
    model = randomize_(transformers.ClapModel(cfg).eval(), rng)
    model.save_pretrained(MODEL, safe_serialization=True)

    fe = feature_extractor(1)
    fe.save_pretrained(MODEL)

    # ---- audio clips ----
    def clip(seconds, f0):
        t = np.arange(int(round(seconds * SR))) / SR
        x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.2 * np.sin(2 * np.pi * 3.1 * f0 * t + 0.5)
        x *= 0.5 + 0.5 * np.sin(2 * np.pi * 2.0 * t)  # a slow tremolo, so frames differ
        x += 0.05 * rng.standard_normal(t.size)
        return x

    CLIPS = [("short.wav", clip(0.3, 440.0), "a calm piano melody with soft strings"),
             ("exact.wav", clip(1.0, 220.0), "an energetic rock song with loud drums"),
             ("long.wav", clip(1.25, 330.0), "Ambient pads, reverb; no drums!")]

    def write_wav(path, x):
        pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
        with wave.open(path, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SR)
            w.writeframes(pcm.tobytes())

    for fname, x, _ in CLIPS:
        write_wav(os.path.join(AUDIO, fname), x)

    with open(os.path.join(OUT, "pairs.jsonl"), "w") as f:
        for fname, _, cap in CLIPS:
            f.write(json.dumps({"audio": fname, "caption": cap}) + "\n")

    # ---- expected outputs ----
    real_randint = np.random.randint
    np.random.randint = lambda lo, hi=None, *a, **k: 0  # the crop m2u takes: offset 0
    try:
        feats = []
        for fname, _, _ in CLIPS:
            wav = read_wav(os.path.join(AUDIO, fname))
            feats.append(fe(wav, sampling_rate=SR, return_tensors="pt")["input_features"])
        # the other two padding modes of ClapFeatureExtractor, on the short clip
        short = read_wav(os.path.join(AUDIO, CLIPS[0][0]))
        other_pads = {p: fe(short, sampling_rate=SR, padding=p, return_tensors="pt")["input_features"][0, 0]
                      for p in ("repeat", "pad")}
    finally:
        np.random.randint = real_randint
    input_features = torch.cat(feats, 0)  # [3, 1, 101, 64]
    assert input_features.shape == (3, 1, 101, 64), input_features.shape

    out = {"input_features": input_features[:, 0].contiguous()}
    for p, f in other_pads.items():
        out[f"input_features_{p}_short"] = f.contiguous()
    ids_json = []
    with torch.no_grad():
        a = model.audio_model(input_features=input_features)
        out["audio_pooled"] = a.pooler_output.contiguous()
        out["audio_embeds"] = model.get_audio_features(input_features=input_features).contiguous()
        pooled, embeds = [], []
        for i, (_, _, cap) in enumerate(CLIPS):
            enc = fast(cap, return_tensors="pt")
            ids_json.append(enc["input_ids"][0].tolist())
            out[f"text_ids_{i}"] = enc["input_ids"][0].to(torch.int64).contiguous()
            pooled.append(model.text_model(**enc).pooler_output)
            embeds.append(model.get_text_features(**enc))
        out["text_pooled"] = torch.cat(pooled, 0).contiguous()
        out["text_embeds"] = torch.cat(embeds, 0).contiguous()
        # the padded batch a processor call gives: each row must equal its unpadded run
        batch = fast([c for _, _, c in CLIPS], padding=True, return_tensors="pt")
        tb = model.get_text_features(**batch)
        assert torch.allclose(tb, out["text_embeds"], atol=1e-6), (tb - out["text_embeds"]).abs().max()
        cos = (out["audio_embeds"] * out["text_embeds"]).sum(-1)
    out["cosine"] = cos.contiguous()
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(OUT, "expected.safetensors"))
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({"cosine": [float(c) for c in cos], "mean_cosine": float(cos.double().mean()),
                   "text_ids": ids_json, "captions": [c for _, _, c in CLIPS]}, f, indent=1)
    print("cosines", cos.tolist(), "mean", float(cos.double().mean()))


if __name__ == "__main__":
    main()
