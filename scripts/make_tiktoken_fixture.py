#!/usr/bin/env python3
"""Writes Tests/MegatronCoreTests/Fixtures/tiktoken/: a byte-level BPE vocabulary in the JSON format
Megatron's TikTokenizer reads (a list of {"rank", "token_bytes" (base64), "token_str"}, the 256 single
bytes first in byte order), and the ids the `tiktoken` library gives for it, so the Swift tests check
our TikTokenizer without Python.

    pip install tiktoken tokenizers && python3 scripts/make_tiktoken_fixture.py

vocab.json: the 256 bytes, then the merges the `tokenizers` library learns on Tiny Shakespeare with
            Megatron's v2 (Tekken) pattern as its pre-tokenizer, each merged token in merge order (so
            tiktoken's rank-ordered merging is that BPE), with tokens that only one of the two patterns
            can form (EXTRA: across v2's case and slash boundaries for v1, a letter with its combining
            mark for v2) placed at rank 1,100, so the two patterns give different ids; 1,212 ranks.
cases.json: for patterns v1 and v2, with Megatron's defaults (1,000 special tokens first) and
            vocab_size 2,160 (the file cut to its first 1,160 ranks, as Megatron cuts it), the ids of
            tiktoken's encode_ordinary for each written string (Megatron's tokenize) and those of the
            first 150 non-empty lines of WikiText's wiki.test.raw (the text stays in ../shared).
"""
import base64
import json
import os

import tiktoken
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SHARED = os.path.join(ROOT, "..", "shared", "data")
OUT = os.path.join(ROOT, "Tests/MegatronCoreTests/Fixtures/tiktoken")

# Megatron-LM's PATTERN_TIKTOKEN (v1) and PATTERN_TIKTOKEN_V2 (Mistral's Tekken).
V1 = r"[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"
V2 = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
      r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
      r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
RANKS, SPECIALS, VOCAB_SIZE = 1200, 1000, 2160
EXTRA = ["lC", "amelC", "oW", "LH", "pR", "/\n", "\n/", "\u0301", "e\u0301", "t\u0301", "/\n/", "tR"]

CASES = [
    "Hello world", "First Citizen:\nBefore we proceed any further, hear me speak.", "  two  spaces  ", "   ", "",
    "naïve café — 日本語 😀", "a\tb\nc\r\nd", "ｆｕｌｌ width ﬁ ① Ⅻ ⅻ ㎏", "HelloWorld CamelCase XMLHttpRequest iPhone",
    "ǅungla ǈamo ᾈ Lt-titlecase", "e\u0301 vs é, n\u0303, \u0301alone, x\u0308\u0308y", "हिन्दी देवनागरी मात्रा",
    "path/to/file/\n/next//\r\n// end/", "1234567 3.14159 1e-9 ٣٤٥ ½ ²", "Ünïcödé ÅÇÉ ñ ß İ ǅ", "<s></s><unk> <SPECIAL_7>",
    "\u00a0non\u2009breaking\u3000space", "tab\t\tend\t", "emoji 👩‍👩‍👧 flag 🇫🇷 skin 👍🏽",
    "zero\u200bwidth\u200djoin", "\x00\x01 control \x7f", "KING RICHARD III:\nNow is the winter of our discontent",
    "What's up? I'M fine, isn'T it.", "a" * 300, "line one\n\nline three\n", "  \n  \n\n x \r\n\r\n",
    "((hello)) [world] {x}!!", "Ελληνικά Русский العربية עברית 한국어", " leading", "trailing ", "word\n",
    "MiXeD cAsE wOrDs ABCdef abcDEF", "\n\n\n", " \n", "x \n y", "!!!\n\n", " !!! /// \r\r\n",
]


def corpus():
    return open(os.path.join(SHARED, "corpora/tinyshakespeare/input.txt"), encoding="utf-8").read().split("\n\n")


def byte_ranks():
    """The trained BPE as tiktoken ranks: bytes 0..255, then each merge's token in merge order."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(V2), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=RANKS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer=trainer)
    merges = json.loads(tok.to_str())["model"]["merges"]
    to_byte = {ch: b for b, ch in enumerate(gpt2_bytes_to_unicode())}
    ranks = [bytes([b]) for b in range(256)]
    for left, right in merges:
        ranks.append(bytes(to_byte[c] for c in left + right))
    extra = [t.encode() for t in EXTRA if t.encode() not in ranks]
    ranks = ranks[:1100] + extra + ranks[1100:]
    assert len(set(ranks)) == len(ranks)
    return ranks


def gpt2_bytes_to_unicode():
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars, extra = {}, 256
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(extra)
            extra += 1
    return [chars[b] for b in range(256)]


def main():
    os.makedirs(OUT, exist_ok=True)
    ranks = byte_ranks()
    vocab = [{"rank": i, "token_bytes": base64.b64encode(t).decode("ascii"),
              "token_str": t.decode("utf-8", errors="replace")} for i, t in enumerate(ranks)]
    json.dump(vocab, open(os.path.join(OUT, "vocab.json"), "w"), indent=0, ensure_ascii=False)
    inner = VOCAB_SIZE - SPECIALS
    mergeable = {t: i + SPECIALS for i, t in enumerate(ranks[:inner])}
    specials = ["<unk>", "<s>", "</s>"] + [f"<SPECIAL_{i}>" for i in range(3, SPECIALS)]
    lines = [l for l in open(os.path.join(SHARED, "wikitext", "wikitext-raw", "wiki.test.raw"), encoding="utf-8")
             .read().split("\n") if l.strip()][:150]
    out = {}
    for name, pattern in (("v1", V1), ("v2", V2)):
        enc = tiktoken.Encoding(name=name, pat_str=pattern, mergeable_ranks=mergeable,
                                special_tokens={s: i for i, s in enumerate(specials)})
        out[name] = {
            "num_special_tokens": SPECIALS, "vocab_size": VOCAB_SIZE,
            "cases": [{"text": t, "ids": enc.encode_ordinary(t)} for t in CASES],
            "wikitext": [enc.encode_ordinary(l) for l in lines],
        }
        assert all(enc.decode_bytes(c["ids"]) == c["text"].encode() for c in out[name]["cases"])
    json.dump(out, open(os.path.join(OUT, "cases.json"), "w"), ensure_ascii=False)
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
