#!/usr/bin/env python3
"""Generate tests/fixtures/tokenizer_decode/decode_cases.json: what tokenizers' Tokenizer.decode gives
for the Unigram (T5) and WordPiece (BERT) tokenizer.json fixtures already in tests/fixtures, read by
tests/test_tokenizer_decode.c against m2u_unigram_decode / m2u_wordpiece_decode (the decoders of the
shared pipeline, models/tokenizers/tokenizer_pipeline.c).  The BPE decoder is checked by
tests/test_tokenizer.c on its own fixtures.

Python only makes the reference file; the C toolkit never runs Python.
Pinned: tokenizers 0.20.3 (refuses to run with another version: the output must be reproducible).
Usage:  python3 tests/make_tokenizer_decode_fixtures.py
"""
import json
import os
import sys

import tokenizers

if tokenizers.__version__ != "0.20.3":
    sys.exit(f"need tokenizers 0.20.3, have {tokenizers.__version__}")

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures")

TEXTS = [
    "Hello world",
    "  leading and   inner   spaces ",
    "Don't stop: it's 5.30, isn't it? Yes! I 'm sure , we 've done it .",
    "I do not know ' what ' they 're doing",
    "naïve café — Ünïcödé ÀÉÎ 日本語 한국어",
    "tabs\tand\nnewlines\r\nhere",
    "unaffable tokenization of ##hashes ## and ..., ?!",
    "",
    "x",
]
FILES = ["t5/tokenizer.json", "bertscore/model/tokenizer.json"]


def main():
    cases = []
    for rel in FILES:
        tok = tokenizers.Tokenizer.from_file(os.path.join(FIX, rel))
        specials = [t.content for t in tok.get_added_tokens_decoder().values() if t.special]
        texts = TEXTS + [f"{specials[0]} between {specials[-1]} specials"] if specials else TEXTS
        id_lists = [tok.encode(t, add_special_tokens=True).ids for t in texts]
        n = tok.get_vocab_size(with_added_tokens=True)
        # ids the reference skips (beyond the vocabulary), and a run of arbitrary ids
        id_lists.append([5, n + 7, 6, 10 ** 6, 7])
        id_lists.append(list(range(min(n, 40))))
        id_lists.append([])
        for ids in id_lists:
            for skip in (True, False):
                cases.append({"file": rel, "ids": ids, "skip": skip,
                              "text": tok.decode(ids, skip_special_tokens=skip)})
    out = os.path.join(FIX, "tokenizer_decode")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "decode_cases.json"), "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False, indent=0)
        f.write("\n")
    print(f"{len(cases)} cases")


if __name__ == "__main__":
    main()
