#!/usr/bin/env python3
"""Generate tests/fixtures/tokenizer/cases.jsonl: reference encodings/decodings for test_tokenizer.c.

Purpose: models/tokenizers/tokenizer.c must give exactly the ids and strings of the Hugging Face `tokenizers`
library for the LLaMA-2-style tokenizer.json carried in tests/fixtures/tokenizer/.  This script
builds a deterministic (seeded) set of a few thousand varied strings, runs them through the
reference library and writes what it returns, so the C test can compare without Python.

How to run (from the repository root; only needed when the cases change):
    python3 tests/make_tokenizer_fixtures.py
Pinned versions: python 3.11, tokenizers==0.20.3 (the script refuses other tokenizers versions).

Output format (UTF-8 JSON lines, no compression):
  line 1: {"format": "m2u-tokenizer-cases-1", "tokenizers": "0.20.3", "sets": {NAME: SPEC, ...}}
     SPEC: {"patch": [[[key, ...], value], ...],   # replace these fields of tokenizer.json
            "merges_as_strings": bool,             # rewrite model.merges ([a, b] pairs) as "a b" strings
            "add_tokens": [str, ...], "add_special": bool,  # then call add_tokens / add_special_tokens
            "vocab_size": int}                     # get_vocab_size(with_added_tokens=True)
  other lines, one case each, "set" naming the SPEC it uses:
     {"set", "text", "ids", "ids_plain", "dec", "dec_skip"}
        ids = encode(text).ids, ids_plain = encode(text, add_special_tokens=False).ids,
        dec / dec_skip = decode(ids, skip_special_tokens=False / True).
        To keep the file small, a field equal to what it would usually be is left out:
        no "ids_plain" means it equals ids[1:], no "dec_skip" means it equals text, no "dec"
        means it equals dec_skip.  (Lossless: the C test compares against the restored values.)
     {"set", "text", "n", "n_plain", "fnv_ids", "fnv_ids_plain", "fnv_dec", "fnv_dec_skip"}
        the same for texts over LONG_TEXT (300) characters, stored as lengths and FNV-1a 32-bit hashes (of the ids as
        little-endian int32 bytes, of the strings' UTF-8 bytes) to keep the file small
     {"set", "decode_ids", "dec", "dec_skip"}   decode-only cases (arbitrary id sequences)
  A string containing U+0000 is written as {"hex": "<utf-8 bytes in hex>"} (cJSON strings end at NUL).
"""
import copy
import json
import os
import random
import struct
import sys

import tokenizers
from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
FIXDIR = os.path.join(HERE, "fixtures", "tokenizer")
SEED = 20240611
LONG_TEXT = 300  # texts longer than this (in characters) are stored with hashed results

if tokenizers.__version__ != "0.20.3":
    sys.exit("make_tokenizer_fixtures.py: needs tokenizers==0.20.3, found %s" % tokenizers.__version__)

rng = random.Random(SEED)


def fnv1a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def fnv_ids(ids):
    return fnv1a(b"".join(struct.pack("<i", i) for i in ids))


def jstr(s):
    return {"hex": s.encode("utf-8").hex()} if "\x00" in s else s


# ---------------------------------------------------------------- text material
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world! How are you doing today?",
    "A calm piano melody with soft strings in the background.",
    "Generate an upbeat electronic track with heavy bass and a fast tempo of 128 BPM.",
    "This music is a lo-fi hip hop beat, relaxing and mellow, perfect for studying.",
    "I can't believe it's already 2024 -- time flies when you're having fun.",
    "She said: \"Don't touch that!\" and walked away.",
    "Mr. O'Neil's dog (a 3-year-old terrier) won first prize; wasn't that great?",
    "Le cœur a ses raisons que la raison ne connaît point.",
    "Où est la bibliothèque ? Elle est à côté de l'église.",
    "Größenwahn ist keine Lösung, sagte der Bürgermeister von Düsseldorf.",
    "Straße, Maß und Fuß schreibt man mit ß.",
    "¿Dónde está el baño? ¡Necesito ayuda, por favor!",
    "A música brasileira é conhecida pela sua diversidade rítmica.",
    "La vita è bella quando si ascolta buona musica.",
    "Zażółć gęślą jaźń — pchnąć w tę łódź jeża lub ośm skrzyń fig.",
    "Pijamalı hasta yağız şoföre çabucak güvendi.",
    "Tiếng Việt có nhiều dấu thanh: à, á, ả, ã, ạ.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Жовтий сокіл пролетів над широким полем.",
    "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία.",
    "نص حكيم له سر قاطع وذو شأن عظيم مكتوب على ثوب أخضر ومغلف بجلد أزرق.",
    "עטלף אבק נס דרך מזגן שהתפוצץ כי חם.",
    "این یک جمله آزمایشی به زبان فارسی است.",
    "ऋषियों को सताने वाले दुष्ट राक्षसों के राजा रावण का सर्वनाश करने वाले विष्णुवतार भगवान श्रीराम।",
    "আমি বাংলায় গান গাই।",
    "தமிழ் ஒரு பழமையான மொழி.",
    "เป็นมนุษย์สุดประเสริฐเลิศคุณค่า กว่าบรรดาฝูงสัตว์เดรัจฉาน",
    "我能吞下玻璃而不伤身体。",
    "音乐是人类共同的语言，它能跨越国界。",
    "這是一段繁體中文的句子，用來測試。",
    "いろはにほへと ちりぬるを わかよたれそ つねならむ",
    "私はガラスを食べられます。それは私を傷つけません。",
    "カタカナとひらがなと漢字が混ざった文章です。",
    "다람쥐 헌 쳇바퀴에 타고파.",
    "키스의 고유조건은 입술끼리 만나야 하고 특별한 기술은 필요치 않다.",
    "ქართული ენა ძალიან ლამაზია.",
    "Բարեւ, ինչպե՞ս ես։",
    "ሰላም ለዓለም።",
    "Habari ya asubuhi, rafiki yangu!",
    "Þetta er íslensk setning með ð og þ.",
    "Příliš žluťoučký kůň úpěl ďábelské ódy.",
    "Árvíztűrő tükörfúrógép.",
    "Čeština, slovenčina a slovenščina jsou si podobné.",
    "ᚠᛇᚻ᛫ᛒᛦᚦ᛫ᚠᚱᚩᚠᚢᚱ᛫ᚠᛁᚱᚪ᛫ᚷᛖᚻᚹᛦᛚᚳᚢᛗ",
    "𝔗𝔥𝔢 𝔮𝔲𝔦𝔠𝔨 𝔟𝔯𝔬𝔴𝔫 𝔣𝔬𝔵 — mathematical letters 𝐀𝐁𝐂 𝟏𝟐𝟑.",
    "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ　ａｎｄ　ﾊﾝｶｸｶﾀｶﾅ",
    "ﬁﬂ ligatures and Ⅻ roman numerals, ½ ¾ fractions, ² ³ superscripts.",
]

EMOJI = [
    "😀", "🎵", "🎶", "🎸", "🥁", "🎹", "❤️", "👍🏽", "🙏🏿", "🔥",
    "👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "🏴‍☠️", "🧑🏻‍🤝‍🧑🏿", "👁️‍🗨️",
    "🇺🇸", "🇯🇵", "🇫🇷", "🇧🇷", "🇰🇷", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "1️⃣", "#️⃣", "©️", "™", "☺", "✌️",
]

COMBINING = [
    "e\u0301", "a\u0308\u0304", "n\u0303", "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319",
    "\u0301", "\u0300\u0300\u0300", "q\u0307\u0323", "\u093f", "\u0915\u094d\u0937", "\u0e01\u0e34\u0e4a",
]

CODE = [
    "int main(void) {\n    printf(\"hello\\n\");\n    return 0;\n}\n",
    "def f(x):\n\treturn [i ** 2 for i in range(x) if i % 2 == 0]\n",
    "for (size_t i = 0; i < n; i++) a[i] += b[i] * 0.5f;",
    '{"key": [1, 2.5, -3e10, true, null], "nested": {"a": "b"}}',
    "<html><body><p class=\"x\">Hi &amp; bye</p></body></html>",
    "SELECT id, name FROM users WHERE age >= 21 ORDER BY name DESC;",
    "git commit -m 'fix: handle \\r\\n line endings' && make -j8",
    "^(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]+)@\\w+\\.com$",
    "x = lambda *args, **kw: (args, kw)  # comment",
    "#include <stdio.h>\n#define MAX(a,b) ((a)>(b)?(a):(b))",
    "    indented four\n        indented eight\n\ttab\n",
    "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }",
    "$ echo $HOME | tr '/' '\\n' | wc -l",
]

SPECIAL_LIT = ["<s>", "</s>", "<unk>", "<s", "s>", "</", "<<s>>", "<s><s>", "</s></s>", "<unk><unk>",
               "< s>", "<S>", "<pad>", "[INST]", "[/INST]", "<<SYS>>", "<0x41>", "<0xZZ>"]

WS = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", " \n ", "\t\t", "\u00a0", "\u3000", "\u2003",
      "\u200b", "\u2028", "\x0b", "\x0c", "\u0085", "\ufeff"]

WORDS = ("the music song piano guitar drum beat rhythm melody harmony tempo bass synth vocal "
         "lyrics chorus verse bridge intro outro calm happy sad energetic dark bright jazz rock "
         "pop classical electronic ambient folk metal blues reggae funk soul house techno "
         "is a an of and to in with for on at by from this that it was are be have has").split()


def rand_number():
    k = rng.randrange(8)
    if k == 0:
        return str(rng.randrange(10))
    if k == 1:
        return str(rng.randrange(10 ** rng.randrange(1, 20)))
    if k == 2:
        return "%.*f" % (rng.randrange(1, 6), rng.uniform(-1e4, 1e4))
    if k == 3:
        return "{:,}".format(rng.randrange(10 ** 9))
    if k == 4:
        return "%04d-%02d-%02d" % (rng.randrange(1900, 2100), rng.randrange(1, 13), rng.randrange(1, 29))
    if k == 5:
        return hex(rng.randrange(1 << 32))
    if k == 6:
        return "%d%%" % rng.randrange(101)
    return "+1 (%03d) %03d-%04d" % (rng.randrange(1000), rng.randrange(1000), rng.randrange(10000))


def rand_codepoint():
    # Valid scalar values from many planes (no surrogates): ASCII, Latin, BMP, SMP, SIP, TIP, SSP, PUA.
    ranges = [(0x20, 0x7E), (0x0, 0x1F), (0xA0, 0x24F), (0x370, 0x3FF), (0x400, 0x52F), (0x590, 0x6FF),
              (0x900, 0xDFF), (0xE00, 0xEFF), (0x1100, 0x11FF), (0x2000, 0x2BFF), (0x3000, 0x30FF),
              (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xE000, 0xF8FF), (0xF900, 0xFFFF), (0x10000, 0x1FFFF),
              (0x1F300, 0x1FAFF), (0x20000, 0x2FFFF), (0x30000, 0x3134F), (0xE0000, 0xE01EF),
              (0xF0000, 0xFFFFF), (0x100000, 0x10FFFF)]
    lo, hi = rng.choice(ranges)
    return chr(rng.randint(lo, hi))


def rand_word(n):
    letters = "abcdefghijklmnopqrstuvwxyz"
    return "".join(rng.choice(letters) for _ in range(n))


def fragment():
    k = rng.randrange(12)
    if k == 0:
        return rng.choice(SENTENCES)
    if k == 1:
        return rng.choice(EMOJI)
    if k == 2:
        return rng.choice(COMBINING)
    if k == 3:
        return rng.choice(CODE)
    if k == 4:
        return rng.choice(SPECIAL_LIT)
    if k == 5:
        return rng.choice(WS)
    if k == 6:
        return rand_number()
    if k == 7:
        return "".join(rand_codepoint() for _ in range(rng.randrange(1, 6)))
    if k == 8:
        return "".join(rng.choice("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") for _ in range(rng.randrange(1, 6)))
    if k == 9:
        return rand_word(rng.randrange(1, 15))
    if k == 10:
        w = rng.choice(WORDS)
        return w.upper() if rng.random() < 0.2 else (w.capitalize() if rng.random() < 0.3 else w)
    return "\u2581" * rng.randrange(1, 3) + rng.choice(WORDS)  # literal metaspace characters


def mixed_text():
    parts = []
    for _ in range(rng.randrange(1, 8)):
        parts.append(fragment())
        if rng.random() < 0.6:
            parts.append(rng.choice([" ", " ", " ", "", "\n", "  ", "\t"]))
    return "".join(parts)


def base_texts():
    t = ["", " ", "  ", "   ", "\n", "\t", "\r\n", "a", "A", " a", "a ", " a ", "  hello  ", "hello\n\nworld",
         "\x00", "a\x00b", "\x7f", "\u2581", "\u2581\u2581", " \u2581 ", "Hello", "hello", "HELLO",
         "Hello world", "Hello  world", "Hello world ", " Hello world", "<s>", "</s>", "<unk>",
         "<s>Hello</s>", "<s> Hello </s>", " <s>", "<s> ", "a<s>b", "a <s> b", "<s><s></s></s>",
         "<unk>x<unk>", "text with </s> inside", "<s>\n</s>", "\U0010FFFF", "\uFFFF", "\uFFFD",
         "\U0001F600", "12345", "3.14159", "1,000,000", "0x1F", "x" * 300, "ab" * 200,
         " " * 50, "\n" * 20, "\u00e9" * 100, "\u4e2d" * 100, "\U0001F600" * 50]
    t += SENTENCES + EMOJI + COMBINING + CODE + SPECIAL_LIT + WS
    t += [s.lower() for s in SENTENCES[:20]] + [s.upper() for s in SENTENCES[:20]]
    for _ in range(150):  # whitespace runs around words
        t.append("".join(rng.choice(WS + [rng.choice(WORDS)]) for _ in range(rng.randrange(1, 8))))
    for _ in range(150):
        t.append(rand_number() + rng.choice(["", " ", "\n"]) + rand_number())
    for _ in range(200):
        t.append("".join(rand_codepoint() for _ in range(rng.randrange(1, 30))))
    for _ in range(100):
        t.append("".join(rng.choice(EMOJI) for _ in range(rng.randrange(1, 6))))
    for _ in range(100):  # literal special-token strings inside text
        a, b = rng.choice(SPECIAL_LIT), rng.choice(SPECIAL_LIT)
        t.append(rng.choice(WORDS) + rng.choice(["", " "]) + a + rng.choice(["", " ", "  "]) + rng.choice(WORDS)
                 + rng.choice(["", " "]) + b)
    for _ in range(40):  # long words (over LONG_TEXT characters they are stored hashed)
        t.append(rand_word(rng.randrange(50, 3000)))
    for _ in range(10):
        t.append("".join(rand_codepoint() for _ in range(rng.randrange(200, 1500))))
    while len(t) < 2700:
        t.append(mixed_text())
    return t


def big_texts():
    # Long single "words" stress the heap-based merge (the legacy tokenizer has no pre-tokenizer, so a
    # whole text between added tokens is one word).
    word = "".join(rng.choice(WORDS) for _ in range(8000))[:30000]
    prose = " ".join(rng.choice(WORDS) for _ in range(3000))
    uni = "".join(rand_codepoint() for _ in range(2000))
    return [word, prose, uni, "a" * 20000]


def decode_id_lists(vocab_size):
    lists = [[], [1], [2], [0], [1, 2], [3], [3, 3], [200], [0xE4 + 3, 0xB8 + 3, 0xAD + 3],  # 中 as bytes
             [0xE4 + 3, 0xB8 + 3], [0xE4 + 3, 0xB8 + 3, 0xAD + 3, 0xE4 + 3], [0xF0 + 3, 0x9F + 3, 0x98 + 3, 0x80 + 3],
             [0xC0 + 3, 0x80 + 3], [0xED + 3, 0xA0 + 3, 0x80 + 3], [0x41 + 3, 0x80 + 3, 0x42 + 3],
             [vocab_size + 5], [1, vocab_size + 100, 2], [29871], [29871, 29871], [1, 29871, 15043]]  # "▁", "▁Hello"
    for _ in range(150):
        ids = []
        for _ in range(rng.randrange(1, 20)):
            r = rng.random()
            if r < 0.4:
                ids.append(rng.randrange(3, 259))  # byte tokens: often invalid UTF-8 runs
            elif r < 0.5:
                ids.append(rng.randrange(3))
            else:
                ids.append(rng.randrange(vocab_size))
        lists.append(ids)
    return lists


def aud_texts():
    aud = "".join("[AUD%d]" % i for i in range(8))
    t = ["[AUD0]", " [AUD0]", "[AUD0] ", "x[AUD0]", "x [AUD0]", "[AUD0]x", aud, " " + aud, "a caption" + aud,
         "a response " + aud, "[AUD0] [AUD1] [AUD2]", "[AUD7][AUD0]", "[AUD8]", "[AUD", "AUD0]", "[aud0]",
         "<s>[AUD0]</s>", "\u2581[AUD0]", "[AUD0]\u2581", "  [AUD3]  ", "\n[AUD1]\n", "[[AUD0]]", "[AUD0][AUD0]"]
    for _ in range(200):
        parts = []
        for _ in range(rng.randrange(1, 6)):
            r = rng.random()
            if r < 0.35:
                parts.append("[AUD%d]" % rng.randrange(9))
            elif r < 0.45:
                parts.append(aud)
            else:
                parts.append(fragment())
            parts.append(rng.choice(["", " ", " ", "  ", "\n"]))
        t.append("".join(parts))
    return t


FLAG_TOKENS = [  # extra added tokens with the per-token flags tokenizer.json can carry
    {"content": "<mask>", "single_word": False, "lstrip": True, "rstrip": False, "normalized": False, "special": True},
    {"content": "<sep>", "single_word": False, "lstrip": False, "rstrip": True, "normalized": False, "special": False},
    {"content": "foo", "single_word": True, "lstrip": False, "rstrip": False, "normalized": False, "special": False},
    {"content": "bar", "single_word": True, "lstrip": False, "rstrip": False, "normalized": True, "special": False},
    {"content": "<|im_end|>", "single_word": False, "lstrip": True, "rstrip": True, "normalized": True,
     "special": True},
    {"content": "ing", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": False},
    {"content": "<sep>x", "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
     "special": False},
]


def flag_texts():
    toks = [f["content"] for f in FLAG_TOKENS]
    t = ["a <mask> b", "a<mask>b", "  <mask>", "<mask>  ", "x <sep>  y", "<sep>x", "<sep> x", "foo", " foo ",
         "food", "afoo", "foo_", "_foo", "éfoo", "fooé", "中foo", "foo中", "foo.", "(foo)", "foo1", "1foo",
         "bar", "a bar b", "abar", "bar\u0301", "\u0301bar", "foo\u00a0bar", "singing", "ing", " ing ",
         "<|im_end|>", "a <|im_end|> b", "a\t<|im_end|>\u3000b", "x<|im_end|>", "<mask><mask>", "<s><mask></s>",
         "foo foo foo", "barbar bar", "\u2581bar", "<sep><sep>x", "٣foo", "foo٣", "ـfoo", "foo‿", "fooⅫ"]
    seps = ["", " ", "  ", "\t", "\n", "\u3000", "\u00a0", "_", "x", "é", "中", ".", "1"]
    for _ in range(250):
        parts = []
        for _ in range(rng.randrange(1, 7)):
            parts.append(rng.choice(toks) if rng.random() < 0.5 else rng.choice(WORDS + SPECIAL_LIT))
            parts.append(rng.choice(seps))
        t.append("".join(parts))
    return t


def general_texts(n):
    t = ["", " ", "  ", "a", " a", "a ", "Hello world", "Hello  world", " <s> x", "<s>x", "x<s>", "x <s> y",
         "\u2581x", "x\u2581\u2581y", "  lead", "trail  ", "\n\nx", "<unk>"]
    while len(t) < n:
        t.append(mixed_text())
    return t


# ---------------------------------------------------------------- reference runs
def load_set(base_json, spec):
    d = copy.deepcopy(base_json)
    for path, value in spec.get("patch", []):
        obj = d
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value
    if spec.get("merges_as_strings"):  # tokenizer.json's older merge form; "a b" is unambiguous here
        assert all(" " not in a and " " not in b for a, b in d["model"]["merges"])
        d["model"]["merges"] = [a + " " + b for a, b in d["model"]["merges"]]
    tok = Tokenizer.from_str(json.dumps(d))
    if spec.get("add_tokens"):
        if spec.get("add_special"):
            tok.add_special_tokens(spec["add_tokens"])
        else:
            tok.add_tokens(spec["add_tokens"])
    return tok


def main():
    with open(os.path.join(FIXDIR, "tokenizer.json"), encoding="utf-8") as f:
        base_json = json.load(f)
    aud = ["[AUD%d]" % i for i in range(8)]
    next_id = len(base_json["model"]["vocab"])
    flag_added = list(base_json["added_tokens"])
    for f in FLAG_TOKENS:
        ft = dict(f)
        if f["content"] in base_json["model"]["vocab"]:
            ft["id"] = base_json["model"]["vocab"][f["content"]]
        else:
            ft["id"] = next_id
            next_id += 1
        flag_added.append({k: ft[k] for k in ["id", "content", "single_word", "lstrip", "rstrip", "normalized",
                                               "special"]})
    strip_dec = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
        {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    sets = {
        "base": {},
        # M2UGen: LlamaTokenizer.add_tokens([AUD0]..[AUD7]); transformers/tokenizers make these
        # normal added tokens (special=False, normalized=True).
        "aud": {"add_tokens": aud, "add_special": False},
        "aud_special": {"add_tokens": aud, "add_special": True},
        "flags": {"patch": [[["added_tokens"], flag_added]]},
        # transformers' non-legacy LLaMA conversion: no normalizer, Metaspace(prepend_scheme=first, split=False)
        "metaspace_first": {"patch": [[["normalizer"], None],
                                      [["pre_tokenizer"], {"type": "Metaspace", "replacement": "\u2581",
                                                           "prepend_scheme": "first", "split": False}],
                                      [["decoder"], strip_dec]]},
        "metaspace_split": {"patch": [[["normalizer"], None],
                                      [["pre_tokenizer"], {"type": "Metaspace", "replacement": "\u2581",
                                                           "prepend_scheme": "always", "split": True}],
                                      [["decoder"], {"type": "Metaspace", "replacement": "\u2581",
                                                     "prepend_scheme": "always", "split": True}]]},
        "ignore_merges": {"patch": [[["model", "ignore_merges"], True]]},
        "merges_strings": {"merges_as_strings": True},
        # Without byte fallback, unknown characters become <unk> (fused or not) or, with no unk
        # token at all, are dropped.
        "unk_fuse": {"patch": [[["model", "byte_fallback"], False]]},
        "unk_nofuse": {"patch": [[["model", "byte_fallback"], False], [["model", "fuse_unk"], False]]},
        "no_unk": {"patch": [[["model", "byte_fallback"], False], [["model", "unk_token"], None]]},
    }
    toks = {}
    for name, spec in sets.items():
        toks[name] = load_set(base_json, spec)
        spec["vocab_size"] = toks[name].get_vocab_size(with_added_tokens=True)

    cases = []

    def add(set_name, text):
        tok = toks[set_name]
        ids = tok.encode(text).ids
        plain = tok.encode(text, add_special_tokens=False).ids
        if len(text) > LONG_TEXT:
            cases.append({"set": set_name, "text": jstr(text), "n": len(ids), "n_plain": len(plain),
                          "fnv_ids": fnv_ids(ids), "fnv_ids_plain": fnv_ids(plain),
                          "fnv_dec": fnv1a(tok.decode(ids, skip_special_tokens=False).encode("utf-8")),
                          "fnv_dec_skip": fnv1a(tok.decode(ids, skip_special_tokens=True).encode("utf-8"))})
            return
        dec = tok.decode(ids, skip_special_tokens=False)
        dec_skip = tok.decode(ids, skip_special_tokens=True)
        c = {"set": set_name, "text": jstr(text), "ids": ids}
        if plain != ids[1:]:  # elided fields are exact, not approximations (see the format above)
            c["ids_plain"] = plain
        if dec_skip != text:
            c["dec_skip"] = jstr(dec_skip)
        if dec != dec_skip:
            c["dec"] = jstr(dec)
        cases.append(c)

    for s in base_texts():
        add("base", s)
    for s in big_texts():
        assert len(s) > LONG_TEXT
        add("base", s)
    for ids in decode_id_lists(sets["base"]["vocab_size"]):
        tok = toks["base"]
        cases.append({"set": "base", "decode_ids": ids,
                      "dec": jstr(tok.decode(ids, skip_special_tokens=False)),
                      "dec_skip": jstr(tok.decode(ids, skip_special_tokens=True))})
    for s in aud_texts():
        add("aud", s)
        add("aud_special", s)
    for s in flag_texts():
        add("flags", s)
    for name in ["metaspace_first", "metaspace_split"]:
        for s in general_texts(200) + aud_texts()[:20]:
            add(name, s)
    for s in general_texts(100):
        add("ignore_merges", s)
        add("merges_strings", s)

    unk_texts = general_texts(60) + ["".join(rand_codepoint() for _ in range(rng.randrange(1, 12))) for _ in range(40)]
    for name in ["unk_fuse", "unk_nofuse", "no_unk"]:
        for s in unk_texts:
            add(name, s)

    # The string-form merges must not change anything (sanity check of the reference itself).
    for a, b in zip([c for c in cases if c["set"] == "ignore_merges"], [c for c in cases if c["set"] == "merges_strings"]):
        assert a["text"] == b["text"]
    out = os.path.join(FIXDIR, "cases.jsonl")
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps({"format": "m2u-tokenizer-cases-1", "tokenizers": tokenizers.__version__, "seed": SEED,
                            "sets": sets}, ensure_ascii=False, separators=(",", ":")) + "\n")
        for c in cases:
            f.write(json.dumps(c, ensure_ascii=False, separators=(",", ":")) + "\n")
    print("%s: %d cases, %d bytes" % (out, len(cases), os.path.getsize(out)))


if __name__ == "__main__":
    main()
