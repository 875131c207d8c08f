#!/usr/bin/env python3
"""Writes Tests/MegatronCoreTests/Fixtures/sentencepiece/: SentencePiece models trained by the
sentencepiece library on Tiny Shakespeare, and the ids and text the library gives for them, so
the Swift tests check our SentencePiece tokenizers without Python.

    pip install sentencepiece protobuf && python3 scripts/make_sentencepiece_fixture.py

Models (all from ../shared/data/corpora/tinyshakespeare/input.txt):
  llama_bpe.model    BPE, 1,000 pieces, Llama 2's settings: identity normalization, byte fallback,
                     a dummy prefix, whitespace kept as written, digits split; plus the user-defined
                     symbol "<sep>" (never split, never merged).
  nfkc_unigram.model unigram, 800 pieces, the library's default nmt_nfkc normalization (its
                     precompiled character map) with extra whitespace removed; no byte fallback
                     (unknown characters are <unk>); pad id 3 and the control symbol "<ctrl>".
  unused_bpe.model   llama_bpe.model with three merged pieces marked UNUSED (edited through the
                     model's protocol buffer), so encoding must split them back.
cases.json: for each model and each written string, sp.encode(text) and sp.decode(ids); and for
id sequences mixing control, byte, unknown and normal pieces, sp.decode(ids).
wikitext.json: for each model, the ids of the first 150 non-empty lines of WikiText's
wiki.test.raw (the text itself stays in ../shared).
"""
import json
import os

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as pb

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SHARED = os.path.join(ROOT, "..", "shared", "data")
OUT = os.path.join(ROOT, "Tests/MegatronCoreTests/Fixtures/sentencepiece")

CASES = [
    "Hello world", "First Citizen:\nBefore we proceed any further, hear me speak.", "  two  spaces  ", "   ", "",
    "naïve café — 日本語 😀", "a\tb\nc\r\nd", "ｆｕｌｌ width ﬁ ① Ⅻ ㎏", "x<sep>y<sep><sep>", "<s>hi</s> <unk>",
    "1234567 3.14159 1e-9", "Ünïcödé ÅÇÉ ñ ß İ ǅ", "\u00a0non\u2009breaking\u3000space", "tab\t\tend\t",
    "ÀÁÂÃÄÅ àáâãäå", "emoji 👩‍👩‍👧 flag 🇫🇷 skin 👍🏽", "zero\u200bwidth\u200djoin", "\x00\x01 control \x7f",
    "KING RICHARD III:\nNow is the winter of our discontent", "What's up? I'm fine, isn't it.", "a" * 300,
    "▁already▁escaped ▁", "line one\n\nline three\n", "Ελληνικά Русский العربية עברית हिन्दी",
]


def train(src):
    common = dict(input=src, minloglevel=2)
    spm.SentencePieceTrainer.train(
        model_prefix=os.path.join(OUT, "llama_bpe"), model_type="bpe", vocab_size=1000, byte_fallback=True,
        normalization_rule_name="identity", add_dummy_prefix=True, remove_extra_whitespaces=False,
        split_digits=True, character_coverage=0.9999, user_defined_symbols=["<sep>"], **common)
    spm.SentencePieceTrainer.train(
        model_prefix=os.path.join(OUT, "nfkc_unigram"), model_type="unigram", vocab_size=800, pad_id=3,
        control_symbols=["<ctrl>"], **common)
    proto = pb.ModelProto()
    proto.ParseFromString(open(os.path.join(OUT, "llama_bpe.model"), "rb").read())
    marked = []
    for p in proto.pieces:
        text = p.piece
        if p.type == pb.ModelProto.SentencePiece.NORMAL and len(text) >= 3 and len(marked) < 3 and text in (
                "▁the", "▁and", "ing"):
            p.type = pb.ModelProto.SentencePiece.UNUSED
            marked.append(text)
    assert len(marked) == 3, marked
    open(os.path.join(OUT, "unused_bpe.model"), "wb").write(proto.SerializeToString())
    for name in ["llama_bpe", "nfkc_unigram"]:
        os.remove(os.path.join(OUT, name + ".vocab"))


def main():
    os.makedirs(OUT, exist_ok=True)
    train(os.path.join(SHARED, "corpora", "tinyshakespeare", "input.txt"))
    cases, wiki = {}, {}
    lines = [l for l in open(os.path.join(SHARED, "wikitext", "wikitext-raw", "wiki.test.raw"), encoding="utf-8")
             if l.strip()][:150]
    for name in ["llama_bpe", "nfkc_unigram", "unused_bpe"]:
        sp = spm.SentencePieceProcessor(model_file=os.path.join(OUT, name + ".model"))
        encoded = [{"text": t, "ids": sp.encode(t), "decoded": sp.decode(sp.encode(t))} for t in CASES]
        pid = sp.piece_to_id
        byte = (lambda b: pid("<0x%02X>" % b)) if name != "nfkc_unigram" else (lambda b: sp.unk_id())
        word = sp.encode("hello")
        sequences = [
            [sp.bos_id()] + word, [sp.eos_id()] + word + [sp.bos_id()] + word, [byte(0x41)] + word,
            [byte(0xC3), byte(0xA9), byte(0xA9)] + word, [sp.unk_id()] + word, [pid("▁")] + word,
            word + [byte(0xE6), byte(0x97)], [byte(0xF0), byte(0x9F), byte(0x98), byte(0x80)], word * 3,
        ]
        decoded = [{"ids": s, "decoded": sp.decode(s)} for s in sequences]
        cases[name] = {"pieces": sp.get_piece_size(), "bos": sp.bos_id(), "eos": sp.eos_id(), "pad": sp.pad_id(),
                       "unk": sp.unk_id(), "encode": encoded, "decode": decoded}
        wiki[name] = [sp.encode(l) for l in lines]
        print(name, sp.get_piece_size(), "pieces")
    json.dump(cases, open(os.path.join(OUT, "cases.json"), "w"), ensure_ascii=False, indent=0)
    json.dump({"lines": len(lines), "ids": wiki}, open(os.path.join(OUT, "wikitext.json"), "w"), separators=(",", ":"))
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
