#!/usr/bin/env python3
"""Generate tests/fixtures/gguf_vocab/cases.jsonl for tests/eval/test_gguf_vocab.c, and check the GGUF
vocabulary scores m2u-export writes against llama.cpp's tokenizer algorithm.

Why: llama.cpp tokenizes a "llama" GGUF with its SPM tokenizer, which merges by vocabulary score and
never reads the BPE merges.  m2u-export used to write every score as -1000 (as gguf-py's LlamaHfVocab
does without tokenizer.model), and llama.cpp's ids then differed from HF's.  It now writes -(rank of
the first merge making the piece) (eval/export/export.c, gguf_scores).

What it does (LLaMA-2 tokenizer of tests/fixtures/tokenizer, a few hundred strings: sentences in many
scripts, code, emoji, combining marks, digits and numbers, whitespace runs, characters outside the
vocabulary (byte fallback), literal special tokens):
  1. writes each string with HF `tokenizers`' ids (encode(text, add_special_tokens=False)) to
     tests/fixtures/gguf_vocab/cases.jsonl (C test: same strings through llama.cpp's algorithm over
     the GGUF m2u-export writes, ids must be equal);
  2. runs llama.cpp's SPM algorithm (tests/gguf_spm.py, re-implemented from llama.cpp's
     src/llama-vocab.cpp) over the LLaMA-2 vocabulary with three score sets and counts the strings
     whose ids differ from HF's:
       merge-rank scores (what m2u-export writes)         must be 0 (the script fails otherwise)
       tokenizer.model scores (what convert_hf_to_gguf.py  must be 0: checks the re-implementation,
         writes when it has tokenizer.model)                since llama.cpp matches HF with these
       -1000 everywhere (the old export)                   reported (many differ)
  3. with --m2u-export BUILD/m2u-export: writes a tiny LLaMA (vocab 32000, zero weights) with these
     tokenizer files, exports it to GGUF, reads the GGUF with gguf-py and checks its scores equal the
     merge-rank scores and that llama.cpp's algorithm over its tokens/scores/types gives HF's ids.

Run from the repository root: python3 tests/make_gguf_vocab_fixtures.py [--m2u-export build/m2u-export]
Pinned: tokenizers 0.20.3, sentencepiece 0.2.0, gguf 0.17.1, numpy 1.26.4, safetensors 0.8.0.
Output: {"text": str or {"hex": utf-8 hex} (text with U+0000), "ids": [int, ...]} per line.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

import tokenizers
import sentencepiece
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gguf_spm import (TOKEN_BYTE, TOKEN_CONTROL, TOKEN_NORMAL, SpmVocab,  # noqa: E402
                      merge_rank_scores)
import make_tokenizer_fixtures as mtf  # noqa: E402  (its text material; its main() is not run)

TOKDIR = os.path.join(HERE, "fixtures", "tokenizer")
OUTDIR = os.path.join(HERE, "fixtures", "gguf_vocab")
SEED = 20261206

for mod, want in ((tokenizers, "0.20.3"), (sentencepiece, "0.2.0")):
    if mod.__version__ != want:
        sys.exit("make_gguf_vocab_fixtures.py: needs %s==%s, found %s" % (mod.__name__, want, mod.__version__))


def texts():
    mtf.rng = random.Random(SEED)  # the material's generators draw from this
    rng = mtf.rng
    t = ["", " ", "  ", "   ", "\n", "\t", "a", " a", "a ", "  hello  ", "Hello world", "Hello  world",
         "\u2581", "\u2581\u2581x", "<s>", "</s>", "<unk>", "<s>Hello</s>", "a<s>b", "a <s> b", " <s> x",
         "<s><s></s>", "<0x41>", "\x00", "a\x00b", "\U0010FFFF", "\U0001F600", "12345", "3.14159",
         "1,000,000", "0x1F", "x" * 300, " " * 40, "\n" * 12, "\t \t \t", "\u00e9" * 50, "\u4e2d" * 50]
    t += mtf.SENTENCES + mtf.CODE + mtf.EMOJI + mtf.COMBINING + mtf.WS + mtf.SPECIAL_LIT
    for _ in range(80):  # whitespace runs around words
        t.append("".join(rng.choice(mtf.WS + [rng.choice(mtf.WORDS)]) for _ in range(rng.randrange(1, 8))))
    for _ in range(80):  # digits and numbers
        t.append(mtf.rand_number() + rng.choice(["", " ", "\n", "  "]) + mtf.rand_number())
    for _ in range(100):  # characters from many planes: most are outside the vocabulary (byte fallback)
        t.append("".join(mtf.rand_codepoint() for _ in range(rng.randrange(1, 25))))
    for _ in range(60):
        t.append("".join(rng.choice(mtf.EMOJI) for _ in range(rng.randrange(1, 5))))
    while len(t) < 700:
        s = mtf.mixed_text()
        if len(s) <= 300:
            t.append(s)
    return t


def jstr(s):
    return {"hex": s.encode("utf-8").hex()} if "\x00" in s else s


def llama_types(n, sp):
    """token types as the export writes them for this tokenizer (<unk>, <s>, </s> are special)"""
    return [TOKEN_CONTROL if i < 3 else TOKEN_BYTE if sp.is_byte(i) else TOKEN_NORMAL for i in range(n)]


def count_diff(vocab, hf, strings, label, show=3):
    bad = 0
    for s in strings:
        want = hf.encode(s, add_special_tokens=False).ids
        got = vocab.tokenize(s)
        if got != want:
            bad += 1
            if bad <= show:
                print("  %s: %r\n    HF  %s\n    SPM %s" % (label, s[:80], want[:16], got[:16]))
    print("%-34s %4d of %d strings give other ids than HF" % (label, bad, len(strings)))
    return bad


def check_m2u_export(exe, strings, hf, tj):
    import numpy as np
    from safetensors.numpy import save_file
    import gguf
    d = tempfile.mkdtemp(prefix="m2u_gguf_vocab_")
    try:
        base = os.path.join(d, "base")
        os.mkdir(base)
        cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
               "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
               "num_key_value_heads": 2, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
               "rope_theta": 10000.0, "vocab_size": 32000, "tie_word_embeddings": False,
               "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"}
        json.dump(cfg, open(os.path.join(base, "config.json"), "w"))
        z = lambda *s: np.zeros(s, dtype=np.float32)  # noqa: E731
        sd = {"model.embed_tokens.weight": z(32000, 8), "lm_head.weight": z(32000, 8), "model.norm.weight": z(8)}
        for k, s in {"self_attn.q_proj": (8, 8), "self_attn.k_proj": (8, 8), "self_attn.v_proj": (8, 8),
                     "self_attn.o_proj": (8, 8), "mlp.gate_proj": (16, 8), "mlp.up_proj": (16, 8),
                     "mlp.down_proj": (8, 16)}.items():
            sd["model.layers.0.%s.weight" % k] = z(*s)
        sd["model.layers.0.input_layernorm.weight"] = z(8)
        sd["model.layers.0.post_attention_layernorm.weight"] = z(8)
        save_file(sd, os.path.join(base, "model.safetensors"), metadata={"format": "pt"})
        for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(os.path.join(TOKDIR, f), base)
        out = os.path.join(d, "v.gguf")
        subprocess.run([exe, "gguf", "--base", base, "--out", out, "--dtype", "f32"], check=True)
        r = gguf.GGUFReader(out)
        f = r.fields
        toks = [bytes(f["tokenizer.ggml.tokens"].parts[i]).decode("utf-8") for i in f["tokenizer.ggml.tokens"].data]
        scores = [float(f["tokenizer.ggml.scores"].parts[i][0]) for i in f["tokenizer.ggml.scores"].data]
        types = [int(f["tokenizer.ggml.token_type"].parts[i][0]) for i in f["tokenizer.ggml.token_type"].data]
        want_scores = merge_rank_scores(tj, len(toks))
        if scores != want_scores:
            sys.exit("m2u-export's GGUF scores differ from the merge-rank scores derived here")
        print("m2u-export GGUF: %d tokens, scores equal the merge-rank scores derived here" % len(toks))
        return count_diff(SpmVocab(toks, scores, types), hf, strings, "m2u-export GGUF (read by gguf-py)")
    finally:
        shutil.rmtree(d)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--m2u-export", help="also check the GGUF this m2u-export writes")
    a = ap.parse_args()
    tj = json.load(open(os.path.join(TOKDIR, "tokenizer.json"), encoding="utf-8"))
    hf = Tokenizer.from_file(os.path.join(TOKDIR, "tokenizer.json"))
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(TOKDIR, "tokenizer.model"))
    n = len(tj["model"]["vocab"])
    toks = [None] * n
    for t, i in tj["model"]["vocab"].items():
        toks[i] = t
    types = llama_types(n, sp)
    strings = texts()
    bad = count_diff(SpmVocab(toks, merge_rank_scores(tj, n), types), hf, strings, "merge-rank scores (m2u-export)")
    bad_sp = count_diff(SpmVocab(toks, [sp.get_score(i) for i in range(n)], types), hf, strings,
                        "tokenizer.model scores")
    count_diff(SpmVocab(toks, [-1000.0] * n, types), hf, strings, "-1000 everywhere (old export)", show=0)
    if bad or bad_sp:
        sys.exit("make_gguf_vocab_fixtures.py: llama.cpp's algorithm does not reproduce HF's ids (see above)")
    if a.m2u_export and check_m2u_export(a.m2u_export, strings, hf, tj):
        sys.exit("make_gguf_vocab_fixtures.py: the GGUF m2u-export wrote does not give HF's ids")
    os.makedirs(OUTDIR, exist_ok=True)
    out = os.path.join(OUTDIR, "cases.jsonl")
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        for s in strings:
            f.write(json.dumps({"text": jstr(s), "ids": hf.encode(s, add_special_tokens=False).ids},
                               ensure_ascii=False, separators=(",", ":")) + "\n")
    print("%s: %d strings, %d bytes" % (out, len(strings), os.path.getsize(out)))


if __name__ == "__main__":
    main()
