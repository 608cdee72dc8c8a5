"""Shared by tests/make_export_fixtures.py and tests/make_gguf_vocab_fixtures.py (not a test itself).

merge_rank_scores: the tokenizer.ggml.scores that m2u-export writes (eval/export.c, gguf_scores),
    derived here independently from tokenizer.json.
SpmVocab.tokenize: llama.cpp's "llama" (SPM) tokenizer over a GGUF vocabulary (tokens, scores,
    token types), re-implemented from llama.cpp's src/llama-vocab.cpp (llm_tokenizer_spm_session and
    llama_vocab::impl::tokenize / tokenizer_st_partition for LLAMA_VOCAB_TYPE_SPM): split the special
    tokens out of the text (longest token text first), prefix a space to each text fragment that
    follows a special token or starts the text (add_space_prefix), escape " " as U+2581, split into
    UTF-8 characters, repeatedly merge the adjacent pair whose concatenation is a vocabulary piece
    with the highest score (ties: the leftmost), then emit each symbol's id, re-splitting a symbol
    that is not a piece through the recorded merges, or as <0xXX> byte tokens.
"""
import heapq

TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = 1, 2, 3, 4, 5, 6


def merge_rank_scores(tokenizer_json, n):
    """Score of id i < n: -(rank of the first merge in model.merges that makes piece i); pieces no
    merge makes get -(largest such rank + 1), below every merged piece."""
    model = tokenizer_json["model"]
    vocab = model["vocab"]
    pair_rank = {}
    for r, m in enumerate(model["merges"]):
        a, b = m.split(" ") if isinstance(m, str) else m
        pair_rank[(a, b)] = r  # a repeated pair: the last one wins, as in HF's merge map
    first = {}
    for (a, b), r in pair_rank.items():
        i = vocab[a + b]
        if i not in first or r < first[i]:
            first[i] = r
    ranks = [first.get(i, -1) for i in range(n)]
    lowest = max(ranks) + 1
    return [-float(r if r >= 0 else lowest) for r in ranks]


class SpmVocab:
    def __init__(self, tokens, scores, types, add_space_prefix=True):
        self.tokens, self.scores, self.types = list(tokens), list(scores), list(types)
        self.add_space_prefix = add_space_prefix
        self.tok2id = {}
        for i, t in enumerate(self.tokens):  # a repeated text: the last id wins (llama.cpp's map)
            self.tok2id[t] = i
        special = [i for i, t in enumerate(self.types) if t in (TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNKNOWN)]
        self.special = sorted(special, key=lambda i: -len(self.tokens[i].encode("utf-8")))

    def byte_to_token(self, b):
        t = self.tok2id.get("<0x%02X>" % b)
        return t if t is not None else self.tok2id[bytes([b]).decode("latin-1")]

    def partition(self, text, parse_special):
        frags = [text] if text else []  # str: raw text, int: a token
        for i in self.special:
            if not parse_special and self.types[i] in (TOKEN_CONTROL, TOKEN_UNKNOWN):
                continue
            t = self.tokens[i]
            if not t:
                continue
            out = []
            for f in frags:
                if isinstance(f, int):
                    out.append(f)
                    continue
                pos = 0
                while True:
                    k = f.find(t, pos)
                    if k < 0:
                        break
                    if k > pos:
                        out.append(f[pos:k])
                    out.append(i)
                    pos = k + len(t)
                if pos < len(f):
                    out.append(f[pos:])
            frags = out
        return frags

    def tokenize(self, text, parse_special=True):
        out = []
        prev_special = True
        for f in self.partition(text, parse_special):
            if isinstance(f, int):
                out.append(f)
                prev_special = True
                continue
            s = (" " if self.add_space_prefix and prev_special else "") + f
            self._session(s.replace(" ", "\u2581").encode("utf-8"), out)
            prev_special = False
        return out

    def _session(self, b, out):
        n_tok = len(self.tokens)
        start, size, prev, nxt = [], [], [], []
        off = 0
        while off < len(b):
            c = b[off]
            ln = 1 if c < 0x80 else 2 if c >> 5 == 0x6 else 3 if c >> 4 == 0xE else 4 if c >> 3 == 0x1E else 1
            ln = min(ln, len(b) - off)
            start.append(off)
            size.append(ln)
            prev.append(len(start) - 2)
            off += ln
            nxt.append(len(start) if off < len(b) else -1)
        heap, rev = [], {}

        def try_add(left, right):
            if left < 0 or right < 0:
                return
            text = b[start[left]:start[left] + size[left] + size[right]]
            i = self.tok2id.get(text.decode("utf-8", "surrogateescape"))
            if i is None or i >= n_tok:
                return
            heapq.heappush(heap, (-self.scores[i], left, right, len(text)))
            rev[text] = (left, right)

        for i in range(1, len(start)):
            try_add(i - 1, i)
        while heap:
            _, left, right, sz = heapq.heappop(heap)
            if size[left] == 0 or size[right] == 0 or size[left] + size[right] != sz:
                continue
            size[left] += size[right]
            size[right] = 0
            nxt[left] = nxt[right]
            if nxt[right] >= 0:
                prev[nxt[right]] = left
            try_add(prev[left], left)
            try_add(left, nxt[left])

        def reseg(k):
            text = b[start[k]:start[k] + size[k]]
            i = self.tok2id.get(text.decode("utf-8", "surrogateescape"))
            if i is not None:
                out.append(i)
                return
            p = rev.get(text)
            if p is None:
                out.extend(self.byte_to_token(x) for x in text)
                return
            reseg(p[0])
            reseg(p[1])

        k = 0 if start else -1
        while k != -1:
            reseg(k)
            k = nxt[k]
