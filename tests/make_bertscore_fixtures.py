#!/usr/bin/env python3
"""Generate the BERT / WordPiece / BERTScore fixtures in tests/fixtures/bertscore/,
read by tests/test_bert.c and tests/eval/test_bertscore.c.

Python is only used to *make* reference files; the C toolkit never runs Python.

Pinned versions (refused otherwise, so the outputs regenerate byte-identically):
    torch 2.5.1, transformers 4.46.3, tokenizers 0.20.3, safetensors 0.8.0,
    numpy 1.26.4, bert-score 0.3.13 (its module reports __version__ "0.3.12")

Usage:  python3 tests/make_bertscore_fixtures.py

What it makes (huggingface.co is not reachable, so everything is local):
  model/          a tiny random BertModel (4 layers, hidden 32) saved with
                  save_pretrained (config.json, model.safetensors) and a
                  WordPiece tokenizer trained with `tokenizers` on corpus.txt
                  (BertNormalizer lowercase, BertPreTokenizer, [CLS] .. [SEP]),
                  saved as BertTokenizerFast (tokenizer.json, vocab.txt, ...)
  tokenizer_cases.json   ~100 strings and their ids (encode, add_special_tokens)
  hidden.safetensors     all hidden states of a padded batch + its mask and ids
  roberta_bin/, hidden_roberta.safetensors   the same for a tiny RobertaModel
                  saved as pytorch_model.bin (position ids from padding_idx + 1)
  model_signed/   a BERT whose embeddings give negative best matches (see below)
  scores.json     BERTScore P/R/F computed by bert_score.score itself on the
                  local model directory (model_type=<dir>, num_layers=3,
                  use_fast_tokenizer=True so the tokenizer is tokenizer.json,
                  device cpu, nthreads 0): single references with and without
                  idf, multiple references with and without idf.
"""
import json
import math
import os
import shutil
import sys
import warnings

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import numpy
import safetensors
import tokenizers
import torch
import transformers
from importlib.metadata import version as dist_version
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

PINNED = {
    "torch": (torch.__version__.split("+")[0], "2.5.1"),
    "transformers": (transformers.__version__, "4.46.3"),
    "tokenizers": (tokenizers.__version__, "0.20.3"),
    "safetensors": (safetensors.__version__, "0.8.0"),
    "numpy": (numpy.__version__, "1.26.4"),
    "bert-score": (dist_version("bert-score"), "0.3.13"),
}
for name, (have, want) in PINNED.items():
    if have != want:
        sys.exit(f"{name} {have} != pinned {want}")

import bert_score  # noqa: E402  (after the version check)

warnings.filterwarnings("ignore")
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "bertscore")
MODEL = os.path.join(OUT, "model")
NUM_LAYERS = 3

with open(os.path.join(OUT, "corpus.txt"), encoding="utf-8") as f:
    CORPUS = [line.rstrip("\n") for line in f if line.strip()]

# ---- WordPiece tokenizer trained on the corpus ----
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Training is not reproducible run to run (the Rust trainer breaks ties by ids
# drawn from a randomly seeded HashMap), so the vocabulary trained once is
# committed as trained_vocab.txt and rebuilt from; pass --retrain to train anew.
VOCAB_FILE = os.path.join(OUT, "trained_vocab.txt")


def configure(t):
    t.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                              lowercase=True)
    t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()


if "--retrain" in sys.argv or not os.path.exists(VOCAB_FILE):
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=24))
    configure(tok)
    trainer = trainers.WordPieceTrainer(vocab_size=400, min_frequency=1, special_tokens=SPECIALS,
                                        show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    vocab = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
    with open(VOCAB_FILE, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(w + "\n" for w, _ in vocab))
with open(VOCAB_FILE, encoding="utf-8") as f:
    VOCAB = {w: i for i, w in enumerate(line.rstrip("\n") for line in f)}
tok = Tokenizer(models.WordPiece(vocab=VOCAB, unk_token="[UNK]", max_input_chars_per_word=24))
configure(tok)
tok.add_special_tokens(SPECIALS)
cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                   special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
tok.decoder = tokenizers.decoders.WordPiece(prefix="##")

if os.path.isdir(MODEL):
    shutil.rmtree(MODEL)
os.makedirs(MODEL)
fast = transformers.BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]",
                                      pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]",
                                      do_lower_case=True, model_max_length=64)
fast.save_pretrained(MODEL)

# ---- tiny random BertModel ----
torch.manual_seed(0)
cfg = transformers.BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=4,
                              num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                              type_vocab_size=2, hidden_act="gelu", initializer_range=0.3,
                              layer_norm_eps=1e-12, pad_token_id=0)
model = transformers.BertModel(cfg).eval()
with torch.no_grad():  # non-trivial LayerNorm affine parameters and biases
    for name, p in model.named_parameters():
        if "LayerNorm.weight" in name:
            p.copy_(1.0 + 0.2 * torch.randn_like(p))
        elif name.endswith(".bias"):
            p.copy_(0.1 * torch.randn_like(p))
model.save_pretrained(MODEL, safe_serialization=True)

# ---- tokenizer cases ----
extra = [
    "", "   ", "Hello, World!", "CAFÉ Ñandú naïve résumé", "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ", "钢琴和小提琴 piano 音乐",
    "tabs\tand\nnewlines\r\nhere", "zero\u200bwidth\u00adsoft hyphen", "control\x00\x07chars\x7f",
    "emoji 🎹🥁🎸 drums", "İstanbul ΣΟΦΊΑ Ωμέγα", "e\u0301 combining a\u0308 marks", "x" * 30 + " long",
    "supercalifragilisticexpialidocious", "don't stop-believing... (live) [remix] {edit}",
    "naïve\u00a0space\u3000ideographic", "Привет мир музыка", "مرحبا موسيقى", "한국 음악 피아노",
    "日本の音楽です", "$100 & 50% off #1 @home ~tilde^ `quote`", "ﬁ ligature ﬂute", "Ǆ dž ǅ titlecase",
    "ß straße", "ΑΒΓΔ αβγδ", "\ufeffbom start", "a\u2028b\u2029c", "piano" * 6,
    "1234567890 3.14 1,000", "tempo=120bpm; key=C#m", "\u0130\u0049\u0131", "Ⅻ roman ⅻ", "ǅungla",
    "mIxEd CaSe GuItAr", "über-cool Øresund Ångström", "\U0001D400\U0001D401 math bold",
    "trailing spaces   ", "   leading spaces", "multiple     inner     spaces",
    "a [MASK] piano [SEP]x", "[cls] lower [UNK]unk [PAD][PAD]", "[CLS][CLS]",
]
texts = CORPUS + [c.upper() for c in CORPUS[:10]] + extra
cases = [{"text": t, "hex": t.encode("utf-8").hex(), "ids": tok.encode(t).ids} for t in texts]
with open(os.path.join(OUT, "tokenizer_cases.json"), "w", encoding="utf-8", newline="\n") as f:
    json.dump(cases, f, ensure_ascii=True, indent=0)
    f.write("\n")

# ---- hidden states of a padded batch ----
batch_texts = [CORPUS[0], "Drums!", CORPUS[13] + " " + CORPUS[9]]
enc = fast(batch_texts, padding=True, return_tensors="pt")
with torch.no_grad():
    out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                token_type_ids=enc["token_type_ids"], output_hidden_states=True)
hs = torch.stack(out.hidden_states, dim=0).contiguous()  # [L+1, B, T, H]
save_file({"hidden_states": hs, "input_ids": enc["input_ids"].to(torch.int32).contiguous(),
           "attention_mask": enc["attention_mask"].to(torch.int32).contiguous()},
          os.path.join(OUT, "hidden.safetensors"), metadata={"texts": json.dumps(batch_texts)})

# ---- a tiny RobertaModel saved as pytorch_model.bin (positions from padding_idx + 1) ----
ROBERTA = os.path.join(OUT, "roberta_bin")
if os.path.isdir(ROBERTA):
    shutil.rmtree(ROBERTA)
torch.manual_seed(2)
rcfg = transformers.RobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=32, max_position_embeddings=24, type_vocab_size=1,
                                  hidden_act="gelu", initializer_range=0.3, pad_token_id=1)
rmodel = transformers.RobertaModel(rcfg).eval()
rmodel.save_pretrained(ROBERTA, safe_serialization=False)
r_ids = torch.tensor([[0, 5, 9, 33, 12, 2], [0, 44, 2, 1, 1, 1]])
r_mask = (r_ids != 1).to(torch.int64)
with torch.no_grad():
    rout = rmodel(input_ids=r_ids, attention_mask=r_mask, output_hidden_states=True)
save_file({"hidden_states": torch.stack(rout.hidden_states, dim=0).contiguous(),
           "input_ids": r_ids.to(torch.int32).contiguous(), "attention_mask": r_mask.to(torch.int32).contiguous()},
          os.path.join(OUT, "hidden_roberta.safetensors"))

# ---- BERTScore with bert_score.score on the local directory ----
cands = [CORPUS[i] for i in range(0, 20)] + ["", "piano", "DRUMS and bass, loud!", " ".join(CORPUS[:6])]
refs = [CORPUS[(i * 7 + 3) % len(CORPUS)] for i in range(0, 20)] + ["a quiet piano", "", "drums and bass",
                                                                   " ".join(CORPUS[6:12])]  # both > 64 tokens
multi_c = [CORPUS[i] for i in range(20, 30)]
multi_r = [[CORPUS[(i * 3 + k) % len(CORPUS)] for k in range(1 + i % 3)] for i in range(20, 30)]
multi_r[0].append(multi_c[0])  # an exact match among the references


def run(c, r, idf):
    P, R, F = bert_score.score(c, r, model_type=MODEL, num_layers=NUM_LAYERS, idf=idf, device="cpu",
                               nthreads=0, batch_size=64, use_fast_tokenizer=True)
    return {"P": [float(x) for x in P], "R": [float(x) for x in R], "F": [float(x) for x in F]}


# A second model whose embeddings make some best matches negative, so that
# bert_score's zero-padded similarity matrix (a token's best match becomes
# max(best, 0) when its counterpart is shorter than the longest one in the
# batch) shows: embeddings only (num_layers=0), no position / type terms, unit
# LayerNorm; "piano" = v, "drums" = -v, [CLS] = [SEP] = c with v.c < 0.
SIGNED = os.path.join(OUT, "model_signed")
if os.path.isdir(SIGNED):
    shutil.rmtree(SIGNED)
os.makedirs(SIGNED)
for name in ("special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
    shutil.copy(os.path.join(MODEL, name), os.path.join(SIGNED, name))
torch.manual_seed(1)
scfg = transformers.BertConfig(**{**cfg.to_dict(), "num_hidden_layers": 1})
smodel = transformers.BertModel(scfg).eval()
with torch.no_grad():
    H = scfg.hidden_size
    emb = smodel.embeddings
    emb.position_embeddings.weight.zero_()
    emb.token_type_embeddings.weight.zero_()
    emb.LayerNorm.weight.fill_(1.0)
    emb.LayerNorm.bias.zero_()
    w = torch.randn(scfg.vocab_size, H)
    v, c = torch.randn(H), torch.randn(H)
    v, c = v - v.mean(), c - c.mean()
    c = c - 2 * (c @ v) / (v @ v) * v if c @ v > 0 else c  # reflect so that v.c < 0
    w[tok.token_to_id("piano")], w[tok.token_to_id("drums")] = v, -v
    w[cls_id], w[sep_id] = c, c
    emb.word_embeddings.weight.copy_(w)
smodel.save_pretrained(SIGNED, safe_serialization=True)
signed_c = ["piano", "piano", "piano drums", "drums", "piano piano"]
signed_r = ["drums", "drums and bass , loud", "piano", "piano", "drums"]


def run_signed(bs, idf):
    P, R, F = bert_score.score(signed_c, signed_r, model_type=SIGNED, num_layers=0, idf=idf, device="cpu",
                               nthreads=0, batch_size=bs, use_fast_tokenizer=True)
    return {k: [float(x) if math.isfinite(float(x)) else repr(float(x)) for x in t]  # "-inf": JSON has no infinity
            for k, t in (("P", P), ("R", R), ("F", F))}


scores = {"num_layers": NUM_LAYERS, "batch_size": 64,
          "signed": {"num_layers": 0, "cands": signed_c, "refs": signed_r,
                     "batch_64": {"plain": run_signed(64, False), "idf": run_signed(64, True)},
                     "batch_1": {"plain": run_signed(1, False), "idf": run_signed(1, True)}},
          "single": {"cands": cands, "refs": refs, "plain": run(cands, refs, False), "idf": run(cands, refs, True)},
          "multi": {"cands": multi_c, "refs": multi_r, "plain": run(multi_c, multi_r, False),
                    "idf": run(multi_c, multi_r, True)}}
with open(os.path.join(OUT, "scores.json"), "w", encoding="utf-8", newline="\n") as f:
    json.dump(scores, f, ensure_ascii=True, indent=1)
    f.write("\n")
print("wrote", OUT)
