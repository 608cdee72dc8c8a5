#!/usr/bin/env python3
"""Generate tests/fixtures/t5/: reference data for models/tokenizers/unigram_tokenizer.c and models/nets/t5_encoder.c
(read by tests/test_unigram_tokenizer.c and tests/test_t5.c).

Python is only used to *make* reference files; the C toolkit never runs Python.

Pinned versions (the script refuses to run with others, since outputs must be byte-identical
across regenerations):
    python 3.11, torch 2.5.1, transformers 4.46.3, tokenizers 0.20.3, safetensors 0.8.0,
    numpy 1.26.4, sentencepiece 0.2.0, protobuf 4.25.5 (the last two only to train and convert
    the tokenizer: `pip install sentencepiece==0.2.0 protobuf==4.25.5`)

Usage:  python3 tests/make_t5_fixtures.py      (from the repository root or anywhere; ~20 s)

The Hub is not reachable where this was written, so the real t5-base tokenizer is not used.
Instead a small SentencePiece Unigram model is trained here exactly the way T5's spiece.model
was made (normalization nmt_nfkc, pad 0 / eos 1 / unk 2, no BOS) on a generated corpus, and
converted with transformers' T5Converter (T5TokenizerFast(vocab_file=...), which is how the
t5-base tokenizer.json was produced): the resulting tokenizer.json has the same structure as
t5-base's (Precompiled nmt_nfkc charsmap, Metaspace, TemplateProcessing with </s>, 100
<extra_id_*> tokens).  See tests/fixtures/t5/README.md for every file.
"""
import base64
import io
import json
import os
import random
import sys
import warnings

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy
import safetensors
import sentencepiece
import tokenizers
import torch
import transformers
from google import protobuf
from safetensors.torch import save_file
from tokenizers import Tokenizer

PINNED = {
    "torch": (torch.__version__.split("+")[0], "2.5.1"),
    "transformers": (transformers.__version__, "4.46.3"),
    "tokenizers": (tokenizers.__version__, "0.20.3"),
    "safetensors": (safetensors.__version__, "0.8.0"),
    "numpy": (numpy.__version__, "1.26.4"),
    "sentencepiece": (sentencepiece.__version__, "0.2.0"),
    "protobuf": (protobuf.__version__, "4.25.5"),
}
for _name, (_have, _want) in PINNED.items():
    if _have != _want:
        sys.exit(f"make_t5_fixtures: need {_name}=={_want}, found {_have}")

warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()
torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)
torch.backends.mkldnn.enabled = False

from transformers import T5Config, T5EncoderModel, T5ForConditionalGeneration, T5TokenizerFast  # noqa: E402
from transformers.models.t5.modeling_t5 import T5Attention  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "t5")
SEED = 20250301
VOCAB_PIECES = 700  # SentencePiece pieces; +100 <extra_id_*> in the converted tokenizer
# One key only: safetensors keeps __metadata__ in a hash map whose order changes per process.
META = {"generator": "tests/make_t5_fixtures.py (torch=2.5.1, transformers=4.46.3, tokenizers=0.20.3, "
                     "safetensors=0.8.0, sentencepiece=0.2.0)"}

rng = random.Random(SEED)

# ---------------------------------------------------------------- corpus (generated, deterministic)
WORDS = ("a the an and with of in on for to from by as at into over under slow fast calm upbeat "
         "soft loud warm bright dark gentle heavy light dreamy energetic relaxing melancholic happy sad "
         "piano guitar drums bass violin cello flute trumpet saxophone synth organ harp choir vocals "
         "female male voice singing song track music melody harmony rhythm beat groove tempo chords "
         "strings orchestra band jazz rock pop blues classical electronic ambient folk hip hop techno "
         "house reggae metal country funk soul disco lo-fi cinematic epic minimal acoustic electric "
         "distorted reverb echo delay loop sample record vinyl live studio quality recording plays "
         "playing played features featuring accompanied backed layered building builds fades ends "
         "starts intro outro verse chorus bridge solo riff phrase motif key major minor bpm 4/4 time "
         "this is it there are has have been being very quite rather somewhat perfect for studying "
         "dancing sleeping driving background film game trailer advertisement meditation party").split()
FOREIGN = [
    "Le cœur a ses raisons que la raison ne connaît point.",
    "Où est la bibliothèque ? Elle est à côté de l'église.",
    "Der schnelle braune Fuchs springt über den faulen Hund. Größe, Straße, Müller.",
    "El niño comió piñata en la mañana; ¿qué pasó? ¡Olé!",
    "Ça va très bien, merci. Déjà vu, naïve, façade, résumé, coöperate.",
    "日本語のテキストです。音楽が好きです。東京は大きい都市です。",
    "中文文本，音乐很好听。我喜欢钢琴和小提琴。",
    "한국어 문장입니다. 음악을 좋아해요.",
    "Русский текст: музыка, гитара, скрипка и барабаны.",
    "Ελληνικά: μουσική και ρυθμός.",
    "עברית: מוזיקה יפה",
    "العربية: موسيقى هادئة",
    "हिन्दी संगीत बहुत सुंदर है",
    "ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ １２３ ｶﾀｶﾅ",
    "Ligatures ﬁ ﬂ ﬀ and ½ ¼ ² ³ ™ № ℃ ㎏ ①②③",
    "Emoji 🎵🎶🎸🥁🎹 ❤️ 👍🏽 👨‍👩‍👧",
]


def corpus_lines():
    r = random.Random(SEED + 1)
    lines = []
    for _ in range(6000):
        n = r.randint(4, 18)
        s = " ".join(r.choice(WORDS) for _ in range(n))
        if r.random() < 0.3:
            s = s[0].upper() + s[1:]
        s += r.choice([".", ".", ",", "!", "?", "", " 120 BPM.", " (live)", " - remix", ";"])
        lines.append(s)
    for _ in range(40):
        lines.extend(FOREIGN)
    return lines


# ---------------------------------------------------------------- tokenizer
def train_tokenizer():
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus_lines()), model_writer=model, vocab_size=VOCAB_PIECES,
        model_type="unigram", normalization_rule_name="nmt_nfkc", character_coverage=0.9995,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, num_threads=1, shuffle_input_sentence=False,
        input_sentence_size=0, seed_sentencepiece_size=100000, minloglevel=2)
    path = os.path.join(OUT, ".spiece.model.tmp")
    with open(path, "wb") as f:
        f.write(model.getvalue())
    try:
        fast = T5TokenizerFast(vocab_file=path, extra_ids=100, legacy=True)
        tok_json = json.loads(fast._tokenizer.to_str())
    finally:
        os.remove(path)
    return tok_json


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False) + "\n"


BASE_STRINGS = [
    "", " ", "  ", "\t", "\n", "a", "A", "Hello", "Hello world", "Hello, world!", "hello   world",
    "  leading spaces", "trailing spaces   ", "  both  ", "multiple    internal     spaces here",
    "tab\tseparated\tvalues", "line\nbreaks\r\nand\rreturns", "\r\n", "a\r\nb", "x\u00a0y", "x\u3000y",
    "A calm piano melody with soft strings in the background.",
    "Generate an upbeat electronic track with heavy bass and a fast tempo of 128 BPM.",
    "This music is a lo-fi hip hop beat, relaxing and mellow, perfect for studying.",
    "I can't believe it's already 2024 -- time flies.",
    "She said: \"Don't touch that!\" and walked away.",
    "Numbers: 0 1 2 3 12 123 1234 3.14159 -42 1e10 100%",
    "UPPERCASE LETTERS AND lowercase letters",
    "café", "cafe\u0301", "e\u0301", "\uff45\u0301", "A\u030a", "\u212b", "n\u0303o", "ﬁsh ﬂow", "½ cup", "x² + y³",
    "™ ℃ № ㎏ ㍱ ①", "Ⅻ ⅻ", "ｆｕｌｌ－ｗｉｄｔｈ", "ＡＢＣ１２３", "ｶﾀｶﾅ ﾊﾟﾋﾟ", "ｶﾞ", "Ｈｅｌｌｏ　Ｗｏｒｌｄ",
    "日本語のテキスト", "中文文本", "한국어", "\u1100\u1161\u11a8", "Русский", "Ελληνικά", "עברית", "العربية", "हिन्दी",
    "क्षत्रिय", "ไทย", "🎵", "🎵🎶", "❤️", "❤", "👍🏽", "👨‍👩‍👧", "🇫🇷🇩🇪", "1️⃣", "#️⃣", "a\u200db", "a\u200bb", "\u200bstart",
    "\u00adsoft\u00adhyphen", "zero\ufeffwidth", "\u2028sep\u2029", "control\x01chars\x7f", "\x0b\x0c",
    "<pad>", "</s>", "<unk>", "<extra_id_0>", "a</s>b", "x <extra_id_5> y", "<extra_id_99><extra_id_0>",
    "</s></s>", "< /s>", "<extra_id_100>", "<s>", "text with </s> inside", " </s> ", "▁", "▁▁a", "a▁b",
    "unknownglyphs ☃ ⚡ ∑ ∫", "☃☃☃", "x☃y☃☃z", "Ω≈ç√∫˜µ≤≥÷", "åß∂ƒ©˙∆˚¬…æ", "¡™£¢∞§¶•ªº–≠",
    "\u0301", "\u0301\u0301abc", "a\u0308\u0301", "Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇", "ǅ ǆ Ǆ", "ŉ", "ß", "ẞ",
    "İstanbul", "ı", "\U0001d400\U0001d401", "𝓗𝓮𝓵𝓵𝓸", "\U00020000", "\U0010fffd",
    "...", "!!!", "???", "---", "***", "a-b-c", "C++ and C#", "e-mail@example.com", "http://example.com/path?x=1",
    "(parentheses) [brackets] {braces}", "quotes “curly” ‘single’ «guillemets»", "dash — en – em", "ellipsis…",
    "music, music, music", "piano piano piano piano", "the the the", "aaaaaaaaaaaaaaaaaaaa",
    "Soft  \t  mixed \n whitespace", " \u3000 \u00a0 ", "end with space ", " start with space",
]


def random_strings(n):
    pools = [
        "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " ", "  ", " .,;:!?'\"-()",
        "éèêëàâäôöûüçñßøåæœ", "ｆｕｌｌＡＢＣ１２３ｶﾀｶﾅ", "日本語中文한국어", "🎵🎶❤️👍🏽", "\t\n\r\u00a0\u3000",
        "ﬁﬂ½²™①", "\u0301\u0308\u200d\ufe0f", "☃∑∫⚡",
    ]
    out = []
    for _ in range(n):
        k = rng.randint(1, 40)
        s = ""
        for _ in range(k):
            pool = rng.choice(pools)
            s += rng.choice(pool) if len(pool) > 2 or pool.strip() else pool
        if rng.random() < 0.3:
            s = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8))) + " " + s
        out.append(s)
    for _ in range(40):  # corpus-like sentences
        out.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25))))
    return out


def token_strings(tok_json):
    """Pieces of the vocabulary, alone and glued together (exercises every Viterbi path)."""
    pieces = [p for p, _ in tok_json["model"]["vocab"][3:VOCAB_PIECES]]
    out = []
    for _ in range(40):
        out.append("".join(rng.choice(pieces) for _ in range(rng.randint(1, 6))).replace("\u2581", " "))
    return out


def variants(base):
    """Tokenizer variants as replacements of top-level fields of tokenizer.json.  A Precompiled
    normalizer whose precompiled_charsmap is "@base" takes the charsmap of the base file (so the
    fixture carries the 240 kB charsmap once)."""
    prec = {"type": "Precompiled", "precompiled_charsmap": "@base"}
    ms = lambda **kw: dict({"type": "Metaspace", "replacement": "\u2581"}, **kw)  # noqa: E731
    v = {}
    # what the t5-base / flan-t5 tokenizer.json on the Hub (converted in 2020-2021) look like
    v["hub2020"] = {
        "normalizer": {"type": "Sequence", "normalizers": [prec, {"type": "Replace", "pattern": {"Regex": " {2,}"},
                                                                  "content": " "}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"},
                                                                ms(add_prefix_space=True)]},
        "decoder": ms(add_prefix_space=True),
    }
    v["precompiled_only"] = {"normalizer": prec, "pre_tokenizer": ms(prepend_scheme="always", split=True)}
    # transformers' legacy=False conversion
    v["first"] = {"pre_tokenizer": ms(prepend_scheme="first", split=True),
                  "decoder": ms(prepend_scheme="first", split=True)}
    v["first_wsplit"] = {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "WhitespaceSplit"}, ms(prepend_scheme="first", split=True)]}}
    v["never_nosplit"] = {"pre_tokenizer": ms(prepend_scheme="never", split=False)}
    v["strip_both"] = {"normalizer": {"type": "Sequence", "normalizers": [
        prec, {"type": "Strip", "strip_left": True, "strip_right": True},
        {"type": "Replace", "pattern": {"String": "  "}, "content": "\u2581"}]}}
    v["no_post"] = {"post_processor": None}
    # byte fallback: <0xXX> pieces appended to the vocabulary
    model = json.loads(json.dumps(base["model"]))
    model["vocab"] = model["vocab"] + [["<0x%02X>" % b, -30.0] for b in range(256)]
    model["byte_fallback"] = True
    v["byte_fallback"] = {"model": model}
    # no unk_id: an unknown character is an error
    model2 = json.loads(json.dumps(base["model"]))
    model2["unk_id"] = None
    v["no_unk"] = {"model": model2}
    # duplicated piece: the later id wins, as in the reference's HashMap
    model3 = json.loads(json.dumps(base["model"]))
    model3["vocab"] = model3["vocab"] + [[model3["vocab"][10][0], -1.0], ["\u2581the music", 5.0]]
    v["dup_piece"] = {"model": model3}
    return v


def apply_variant(base, var):
    j = json.loads(json.dumps(base))
    for k, val in var.items():
        j[k] = val

    def fix(node):
        if isinstance(node, dict):
            if node.get("precompiled_charsmap") == "@base":
                node["precompiled_charsmap"] = base["normalizer"]["normalizers"][0]["precompiled_charsmap"]
            for x in node.values():
                fix(x)
        elif isinstance(node, list):
            for x in node:
                fix(x)

    fix(j)
    return j


def jstr(s):
    return {"hex": s.encode("utf-8").hex()} if "\x00" in s else s


def make_tokenizer_fixtures():
    base = train_tokenizer()
    with open(os.path.join(OUT, "tokenizer.json"), "w", encoding="utf-8") as f:
        f.write(dumps(base))
    strings = BASE_STRINGS + random_strings(160) + token_strings(base)
    vs = variants(base)
    lines = [json.dumps({"format": "m2u-unigram-cases-1", "tokenizers": "0.20.3",
                         "sets": {"base": {}, **vs}}, ensure_ascii=False)]
    fast_ref = T5TokenizerFast(tokenizer_file=os.path.join(OUT, "tokenizer.json"))
    n_cases = 0
    base_recs = []
    for name in ["base"] + list(vs):
        j = base if name == "base" else apply_variant(base, vs[name])
        tk = Tokenizer.from_str(json.dumps(j))
        for i, s in enumerate(strings):
            rec = {"set": name, "case": i} if name != "base" else {"set": name, "text": jstr(s)}
            try:
                rec["ids"] = tk.encode(s).ids
                plain = tk.encode(s, add_special_tokens=False).ids
                if plain != rec["ids"][:-1] or (rec["ids"] and rec["ids"][-1] != 1):
                    rec["ids_plain"] = plain
            except Exception:
                rec["error"] = True
            n_cases += 1
            if name == "base":  # transformers' T5TokenizerFast must agree (it is what MusicGen uses)
                assert fast_ref(s).input_ids == rec["ids"], s
                base_recs.append(rec)
            else:
                b = base_recs[i]
                if all(rec.get(k) == b.get(k) for k in ("ids", "ids_plain", "error")):
                    continue  # same result as the base set: not written
            lines.append(json.dumps(rec, ensure_ascii=False))
    # long texts (truncation to 128 in the caption target relies on them)
    with open(os.path.join(OUT, "unigram_cases.jsonl"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return base, fast_ref, n_cases


# ---------------------------------------------------------------- encoder
ENCODERS = [
    # name, seed, config, storage
    dict(name="enc_relu_bin", seed=501, storage="bin", prefix="", kind="encoder",
         cfg=dict(d_model=32, d_kv=8, num_heads=4, d_ff=48, num_layers=2, relative_attention_num_buckets=32,
                  relative_attention_max_distance=128, feed_forward_proj="relu", layer_norm_epsilon=1e-6)),
    dict(name="enc_gated_musicgen", seed=502, storage="safetensors", prefix="text_encoder.", kind="musicgen",
         cfg=dict(d_model=24, d_kv=6, num_heads=3, d_ff=40, num_layers=3, relative_attention_num_buckets=8,
                  relative_attention_max_distance=20, feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-5)),
    dict(name="enc_t5cg", seed=503, storage="safetensors", prefix="", kind="t5cg",
         cfg=dict(d_model=20, d_kv=10, num_heads=2, d_ff=36, num_layers=2, relative_attention_num_buckets=64,
                  relative_attention_max_distance=256, feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6,
                  num_decoder_layers=1)),
]
CAPTIONS = [
    "A calm piano melody with soft strings in the background.",
    "An energetic rock track with distorted electric guitar, heavy drums and male vocals singing a catchy "
    "chorus; the tempo is fast, around 140 BPM, and the recording sounds live. " * 4,
]
MAX_LEN = 128


def init_weights(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if "layer_norm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif "relative_attention_bias" in name:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=g) / fan_in ** 0.5)


def make_encoder_fixtures(vocab_size, fast_ref):
    for e in ENCODERS:
        d = os.path.join(OUT, e["name"])
        os.makedirs(d, exist_ok=True)
        cfg = T5Config(vocab_size=vocab_size, dropout_rate=0.0, pad_token_id=0, eos_token_id=1,
                       decoder_start_token_id=0, **e["cfg"])
        torch.manual_seed(e["seed"])
        full = T5ForConditionalGeneration(cfg) if e["kind"] == "t5cg" else T5EncoderModel(cfg)
        init_weights(full, e["seed"])
        full.eval()
        enc = full.get_encoder() if e["kind"] == "t5cg" else full
        cfg_dict = json.loads(cfg.to_json_string(use_diff=True))
        cfg_dict["architectures"] = ["T5ForConditionalGeneration" if e["kind"] == "t5cg" else "T5EncoderModel"]
        cfg_dict.pop("transformers_version", None)
        if e["kind"] == "musicgen":  # composite config, T5 part under "text_encoder"
            cfg_dict = {"architectures": ["MusicgenForConditionalGeneration"], "model_type": "musicgen",
                        "text_encoder": cfg_dict, "audio_encoder": {"model_type": "encodec"},
                        "decoder": {"model_type": "musicgen_decoder"}}
        with open(os.path.join(d, "config.json"), "w") as f:
            f.write(json.dumps(cfg_dict, indent=2, sort_keys=True) + "\n")
        sd = {e["prefix"] + k: v.detach().clone().contiguous() for k, v in full.state_dict().items()}
        if e["storage"] == "bin":
            torch.save(sd, os.path.join(d, "pytorch_model.bin"))
        else:
            sd.pop(e["prefix"] + "encoder.embed_tokens.weight", None)  # tied to shared.weight
            if e["kind"] == "t5cg":
                sd.pop("decoder.embed_tokens.weight", None)
                sd.pop("lm_head.weight", None)
            if e["kind"] == "musicgen":
                sd["enc_to_dec_proj.weight"] = torch.zeros(4, e["cfg"]["d_model"])  # unrelated MusicGen tensor
            save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})

        # a padded batch: lengths differ; the last row of enc_gated_musicgen is all padding
        g = torch.Generator().manual_seed(e["seed"] + 7)
        lens = {"enc_relu_bin": [9, 5, 1], "enc_gated_musicgen": [30, 17, 3, 0], "enc_t5cg": [150, 64]}[e["name"]]
        T = max(lens)
        ids = torch.zeros(len(lens), T, dtype=torch.long)
        mask = torch.zeros(len(lens), T, dtype=torch.long)
        for b, L in enumerate(lens):
            ids[b, :L] = torch.randint(3, vocab_size, (L,), generator=g)
            if L:
                ids[b, L - 1] = 1
            mask[b, :L] = 1
        with torch.no_grad():
            out = enc(input_ids=ids, attention_mask=mask).last_hidden_state
        tensors = {"input_ids": ids, "attention_mask": mask, "last_hidden_state": out.contiguous()}
        if e["name"] == "enc_relu_bin":  # the projector target of M2UGen-MusicGen (unscaled)
            batch = fast_ref(CAPTIONS, padding="max_length", max_length=MAX_LEN, truncation=True,
                             return_tensors="pt")
            with torch.no_grad():
                tgt = enc(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
            tensors["caption_ids"] = batch.input_ids.contiguous()
            tensors["caption_mask"] = batch.attention_mask.contiguous()
            tensors["caption_target"] = tgt.contiguous()
            with open(os.path.join(d, "captions.json"), "w", encoding="utf-8") as f:
                f.write(json.dumps({"max_length": MAX_LEN, "captions": CAPTIONS}, ensure_ascii=False, indent=1) + "\n")
        save_file(tensors, os.path.join(d, "expected.safetensors"), metadata=META)
        # reload check: the stored weights reproduce the output
        if e["storage"] == "safetensors":
            from safetensors.torch import load_file
            sd2 = load_file(os.path.join(d, "model.safetensors"))
            sd2 = {k[len(e["prefix"]):]: v for k, v in sd2.items() if k.startswith(e["prefix"])}
            m2 = T5ForConditionalGeneration(cfg) if e["kind"] == "t5cg" else T5EncoderModel(cfg)
            m2.load_state_dict(sd2, strict=False)
            m2.tie_weights()
            m2.eval()
            enc2 = m2.get_encoder() if e["kind"] == "t5cg" else m2
            with torch.no_grad():
                assert torch.equal(enc2(input_ids=ids, attention_mask=mask).last_hidden_state, out)


def make_bucket_fixture():
    """T5Attention._relative_position_bucket (bidirectional) for rel in [-600, 600]."""
    rel = torch.arange(-600, 601, dtype=torch.long)
    tensors = {"relative_position": rel}
    for nb, md in [(32, 128), (8, 20), (64, 256), (16, 32), (32, 64), (6, 50), (4, 9), (128, 1000)]:
        b = T5Attention._relative_position_bucket(rel, bidirectional=True, num_buckets=nb, max_distance=md)
        tensors["bucket_%d_%d" % (nb, md)] = b.to(torch.long).contiguous()
    save_file(tensors, os.path.join(OUT, "buckets.safetensors"), metadata=dict(META))


def main():
    os.makedirs(OUT, exist_ok=True)
    base, fast_ref, n_cases = make_tokenizer_fixtures()
    vocab_size = len(base["model"]["vocab"])
    assert len(fast_ref) == vocab_size, (len(fast_ref), vocab_size)
    make_encoder_fixtures(vocab_size, fast_ref)
    make_bucket_fixture()
    print("make_t5_fixtures: %d tokenizer cases, vocab %d, wrote %s" % (n_cases, vocab_size, OUT))


if __name__ == "__main__":
    main()
