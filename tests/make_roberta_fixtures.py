#!/usr/bin/env python3
"""Generate the byte-level BPE / RoBERTa / BERTScore-on-RoBERTa fixtures in tests/fixtures/roberta/,
read by tests/test_bytelevel_bpe.c, tests/test_roberta.c and tests/eval/test_bertscore_roberta.c.

Python only makes reference files; the C toolkit never runs Python.

Pinned versions (refused otherwise, so the outputs regenerate byte-identically):
    torch 2.15.0 (what this machine has; HELPERS.md says 2.5.1), transformers 4.46.3, tokenizers 0.20.3, safetensors 0.8.0, numpy 1.26.4,
    regex 2026.5.9 (the slow tokenizer's regex engine), bert-score 0.3.13

Usage:  python3 tests/make_roberta_fixtures.py [--retrain]

What it makes (huggingface.co is not reachable, so everything is local):
  model/        a byte-level BPE vocabulary trained with `tokenizers` (BpeTrainer, ByteLevel alphabet,
                specials <s> <pad> </s> <unk> <mask>) on corpus lines in many scripts, saved as the slow
                RobertaTokenizer saves it (vocab.json, merges.txt, tokenizer_config.json with
                model_max_length 40), and a tiny random RobertaModel (4 layers, hidden 32, 42 positions,
                LN eps 1e-5, exact GELU, pooler) as model.safetensors.  Training is not reproducible run
                to run, so the trained vocab.json / merges.txt are kept in trained/ and rebuilt from.
  tokenizer_cases.json  ~2000 strings (many scripts, emoji, whitespace runs and kinds, contractions, digits,
                accents, control characters, the special tokens) with the slow tokenizer's ids:
                add_prefix_space True and False (with <s> </s>), a truncated encode (max_length 8), and
                decode(ids, skip_special_tokens=False/True) of the first ones; where the fast tokenizer
                (tokenizer.json) gives other ids, those too, and its decodes.
  hidden.safetensors    RobertaModel on a right-padded batch (one text holds "<pad>" in the middle, so its
                position ids skip it, as create_position_ids_from_input_ids does): every hidden state,
                the pooler output, input_ids, attention_mask.
  baseline.tsv  a rescale baseline in bert_score's format (LAYER,P,R,F; rows 0..4)
  scores.json   bert_score.score(cands, refs, model_type=model/, num_layers=3, lang="en", ...) P/R/F
                (default slow tokenizer): ~100 pairs with and without idf, with and without
                rescale_with_baseline=True (baseline_path=baseline.tsv), and multi-reference candidates.
"""
import json
import os
import random
import shutil
import sys
import warnings

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import numpy
import regex
import safetensors
import tokenizers
import torch
import transformers
from importlib.metadata import version as dist_version
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

PINNED = {
    "torch": (torch.__version__.split("+")[0], "2.15.0"),
    "transformers": (transformers.__version__, "4.46.3"),
    "tokenizers": (tokenizers.__version__, "0.20.3"),
    "safetensors": (safetensors.__version__, "0.8.0"),
    "numpy": (numpy.__version__, "1.26.4"),
    "regex": (regex.__version__, "2026.5.9"),
    "bert-score": (dist_version("bert-score"), "0.3.13"),
}
for name, (have, want) in PINNED.items():
    if have != want:
        sys.exit(f"{name} {have} != pinned {want}")

import bert_score  # noqa: E402  (after the version check)

warnings.filterwarnings("ignore")
transformers.logging.set_verbosity_error()
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "roberta")
MODEL = os.path.join(OUT, "model")
TRAINED = os.path.join(OUT, "trained")
NUM_LAYERS = 3
MAX_LEN = 40

with open(os.path.join(HERE, "fixtures", "bertscore", "corpus.txt"), encoding="utf-8") as f:
    CORPUS = [line.rstrip("\n") for line in f if line.strip()]
WORLD = [
    "Ein ruhiges Klavierstück mit weichen Streichern, ähnlich wie Satie.",
    "Une mélodie douce à la guitare acoustique, café et pluie d'été.",
    "Una canción alegre con trompetas y percusión latina, ¡qué ritmo!",
    "Спокойная фортепианная музыка с мягкими струнными.",
    "Μια ήρεμη μελωδία πιάνου με απαλά έγχορδα.",
    "钢琴和小提琴的安静音乐，适合学习。", "日本の音楽です。ピアノとギター。", "한국 음악 피아노 기타 드럼",
    "مرحبا موسيقى هادئة مع البيانو", "שלום מוזיקה שקטה עם פסנתר", "संगीत पियानो और गिटार के साथ",
    "ดนตรีเปียโนเบาๆ", "emoji 🎹🥁🎸🎺 drums 👩‍🎤 👍🏽 🇯🇵", "It's a song they're playing; we've heard I'm sure you'll like it'd",
    "1234567890 3.14 1,000,000 ١٢٣ ४५६ Ⅻ ½ ²", "naïve résumé Ñandú Ångström İstanbul ß ǅ ﬁ",
]
TRAIN = CORPUS + WORLD

SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
VOCAB_JSON, MERGES_TXT = os.path.join(TRAINED, "vocab.json"), os.path.join(TRAINED, "merges.txt")
if "--retrain" in sys.argv or not os.path.exists(VOCAB_JSON):
    os.makedirs(TRAINED, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=700, min_frequency=1, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TRAIN, trainer=trainer)
    tok.model.save(TRAINED)

if os.path.isdir(MODEL):
    shutil.rmtree(MODEL)
os.makedirs(MODEL)
slow0 = transformers.RobertaTokenizer(VOCAB_JSON, MERGES_TXT, model_max_length=MAX_LEN)
slow0.save_pretrained(MODEL)
for extra in ("special_tokens_map.json",):  # not read by m2u; keep the directory as transformers writes it
    pass
slow = transformers.AutoTokenizer.from_pretrained(MODEL, use_fast=False)
assert type(slow).__name__ == "RobertaTokenizer", type(slow)
# the same vocabulary as RobertaTokenizerFast's tokenizer.json (ByteLevel pre-tokenizer and decoder,
# RobertaProcessing), as it is and with the ByteLevel pre-tokenizer's add_prefix_space
fast = transformers.RobertaTokenizerFast(VOCAB_JSON, MERGES_TXT, model_max_length=MAX_LEN).backend_tokenizer
fast.save(os.path.join(MODEL, "tokenizer.json"))
fast_aps = transformers.RobertaTokenizerFast(VOCAB_JSON, MERGES_TXT, model_max_length=MAX_LEN,
                                             add_prefix_space=True).backend_tokenizer
fast_aps.save(os.path.join(OUT, "tokenizer_aps.json"))

# ---- tokenizer cases ----
rng = random.Random(1234)
FRAGS = (
    [w for line in TRAIN for w in line.split()]
    + ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'x", "'", "''", "don't", "I'm", "y'all"]
    + ["<s>", "</s>", "<pad>", "<unk>", "<mask>", " <mask>", "<mask> ", "<s", "</s", "<mas", "<<s>>", "<mask><mask>"]
    + [" ", "  ", "   ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2028", "\u0085", "\x1c", "\x1f", "\u200b", "\ufeff"]
    + ["\x00", "\x07", "\x7f", "\x9f", "e\u0301", "a\u0308", "\u0915\u094d\u0937", "🎵", "🏳️‍🌈", "👨‍👩‍👧", "𝐀𝐁", "\U0010fffd"]
    + ["123", "3.14", "42nd", "1,000", "٣", "⅞", "x²", "$5", "100%", "#1", "@home", "~^`", "...", "!!!", "?!"]
    + ["\u088f", "\ua7cb", "\U000105c0", "\U00010d40"]  # letters / digits of recent Unicode versions
)
texts = list(TRAIN) + [line.upper() for line in CORPUS[:10]] + ["", " ", "  leading", "trailing  ", "a  b   c"]
while len(texts) < 2000:
    k = rng.randint(1, 5)
    parts = [rng.choice(FRAGS) for _ in range(k)]
    seps = [rng.choice(["", " ", " ", " ", "  ", "\t", "\n"]) for _ in range(k)]
    texts.append("".join(p + s for p, s in zip(parts, seps)))
texts.append("x" * 300)
texts.append("supercalifragilisticexpialidocious" * 5)


def enc(t, prefix, max_length=None):
    if max_length is None:
        return slow.encode(t, add_special_tokens=True, add_prefix_space=prefix)
    return slow.encode(t, add_special_tokens=True, add_prefix_space=prefix, max_length=max_length, truncation=True)


cases = []
for i, t in enumerate(texts):
    c = {"hex": t.encode("utf-8").hex(), "p": enc(t, True), "n": enc(t, False)}
    f, fp = fast.encode(t).ids, fast_aps.encode(t).ids  # kept only where the fast tokenizer differs
    if f != c["n"]:
        c["f"] = f
    if fp != c["p"]:
        c["fp"] = fp
    if i % 8 == 0:
        c["fd"] = fast.decode(f, skip_special_tokens=False)
    if i % 4 == 0:
        c["t8"] = enc(t, True, 8)
    if i % 8 == 0:
        c["d"] = slow.decode(c["p"], skip_special_tokens=False)
        c["ds"] = slow.decode(c["p"], skip_special_tokens=True)
    cases.append(c)
with open(os.path.join(OUT, "tokenizer_cases.json"), "w", encoding="utf-8", newline="\n") as f:
    f.write("[\n" + ",\n".join(json.dumps(c, ensure_ascii=True, separators=(",", ":")) for c in cases) + "\n]\n")

# ---- tiny random RobertaModel ----
torch.manual_seed(0)
cfg = transformers.RobertaConfig(vocab_size=len(slow), hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                                 intermediate_size=64, max_position_embeddings=MAX_LEN + 2, type_vocab_size=1,
                                 hidden_act="gelu", initializer_range=0.3, layer_norm_eps=1e-5, pad_token_id=1,
                                 bos_token_id=0, eos_token_id=2)
model = transformers.RobertaModel(cfg).eval()
with torch.no_grad():  # non-trivial LayerNorm affine parameters and biases
    for name, p in model.named_parameters():
        if "LayerNorm.weight" in name:
            p.copy_(1.0 + 0.2 * torch.randn_like(p))
        elif name.endswith(".bias"):
            p.copy_(0.1 * torch.randn_like(p))
model.save_pretrained(MODEL, safe_serialization=True)

batch_texts = [CORPUS[0], "Drums!", "piano <pad> and <pad> strings", CORPUS[13] + " " + CORPUS[9]]
b = slow(batch_texts, padding=True, truncation=True, max_length=MAX_LEN, return_tensors="pt")
with torch.no_grad():
    out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], output_hidden_states=True)
save_file({"hidden_states": torch.stack(out.hidden_states, dim=0).contiguous(),
           "pooler_output": out.pooler_output.contiguous(),
           "input_ids": b["input_ids"].to(torch.int32).contiguous(),
           "attention_mask": b["attention_mask"].to(torch.int32).contiguous()},
          os.path.join(OUT, "hidden.safetensors"), metadata={"texts": json.dumps(batch_texts)})

# ---- BERTScore ----
BASELINE = os.path.join(OUT, "baseline.tsv")
with open(BASELINE, "w", encoding="utf-8", newline="\n") as f:
    f.write("LAYER,P,R,F\n")
    for layer in range(cfg.num_hidden_layers + 1):
        f.write(f"{layer},{0.61 + 0.031 * layer:.8f},{0.6 + 0.029 * layer:.8f},{0.605 + 0.03 * layer:.8f}\n")

odd = ["", "   ", "<mask> piano", "drums <pad> bass", "🎹🎹 emoji 👍🏽", "Ünïcödé naïve café", "it's I'm we'll",
       "   spaced   out   ", "x" * 200, " ".join(CORPUS[:5])]
cands = [CORPUS[i] for i in range(0, 40)] + WORLD[:10] + odd
refs = [CORPUS[(i * 7 + 3) % len(CORPUS)] for i in range(0, 40)] + WORLD[6:16] + \
       ["a piano", "piano", "<mask> drums", "drums and bass", "emoji 🎹", "unicode naive cafe", "it is", "", "y" * 150,
        " ".join(CORPUS[5:9])]
cands += cands[:40]
refs += [CORPUS[(i * 11 + 5) % len(CORPUS)] for i in range(40)]
multi_c = [CORPUS[i] for i in range(20, 32)]
multi_r = [[CORPUS[(i * 3 + k) % len(CORPUS)] for k in range(1 + i % 3)] for i in range(20, 32)]
multi_r[0].append(multi_c[0])  # an exact match among the references


def run(c, r, idf, rescale):
    P, R, F = bert_score.score(c, r, model_type=MODEL, num_layers=NUM_LAYERS, idf=idf, device="cpu", nthreads=0,
                               batch_size=64, lang="en", rescale_with_baseline=rescale,
                               baseline_path=BASELINE if rescale else None)
    return {"P": [float(x) for x in P], "R": [float(x) for x in R], "F": [float(x) for x in F]}


scores = {"num_layers": NUM_LAYERS, "batch_size": 64, "baseline": "baseline.tsv",
          "single": {"cands": cands, "refs": refs}, "multi": {"cands": multi_c, "refs": multi_r}}
for key, (c, r) in (("single", (cands, refs)), ("multi", (multi_c, multi_r))):
    for idf in (False, True):
        for rescale in (False, True):
            scores[key][("idf" if idf else "plain") + ("_rescaled" if rescale else "")] = run(c, r, idf, rescale)
with open(os.path.join(OUT, "scores.json"), "w", encoding="utf-8", newline="\n") as f:
    json.dump(scores, f, ensure_ascii=True, indent=1)
    f.write("\n")
print("wrote", OUT, len(cases), "tokenizer cases,", len(cands), "pairs")
