#!/usr/bin/env python3
"""Tests/Scripts/bert_cased_fixture.py — writes Tests/MegatronCoreTests/Fixtures/bert_cased_tokenizer_cases.json,
the reference for BertWordPieceCase (WordPiece that keeps case and accents), made by Hugging Face
`tokenizers`' BertWordPieceTokenizer(lowercase=False) — the cased basic tokenisation (clean text,
space CJK ideographs, split on whitespace and punctuation; no lower-casing, no accent stripping) and
greedy longest-match WordPiece.

No cased vocabulary is in ../shared, so the vocabulary is BERT's uncased vocab.txt with cased
entries appended (listed in the fixture as `added_tokens`, in id order): the Capitalised and UPPER
forms of its first 3,000 all-letter ASCII words, and the upper-case form of every lower-case Latin
letter with an accent it holds as a single character. The texts: hand-written cases (case, accents,
CJK, control characters, long words, punctuation) and lines 1–80 of WikiText-103's
wiki.test.raw (read by the test from ../shared; only their ids are stored).

  pip install tokenizers && python3 Tests/Scripts/bert_cased_fixture.py
"""
import json
import os
import tempfile

from tokenizers import BertWordPieceTokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(ROOT), "shared", "data")
OUT = os.path.join(ROOT, "Tests", "MegatronCoreTests", "Fixtures", "bert_cased_tokenizer_cases.json")

vocab = open(os.path.join(SHARED, "tokenizers", "bert-base-uncased", "vocab.txt"), encoding="utf-8").read().split("\n")
if vocab[-1] == "":
    vocab.pop()
present = set(vocab)
added = []


def add(token):
    if token not in present:
        present.add(token)
        added.append(token)


words = [t for t in vocab if len(t) >= 2 and t.isascii() and t.isalpha() and t.islower()][:3000]
for w in words:
    add(w[0].upper() + w[1:])
for w in words:
    add(w.upper())
for t in vocab:
    if len(t) == 1 and not t.isascii() and t.islower() and len(t.upper()) == 1 and "\u00c0" <= t.upper() <= "\u024f":
        add(t.upper())

cases = [
    "Hello, World!", "HELLO world", "The Quick Brown Fox jumps over the Lazy Dog.", "McDonald's iPhone eBay",
    "Café Müller, Zürich; Ærøskøbing and École Normale.", "naïve résumé façade", "ÉCOLE ÜBER ÖL",
    "Ünïcödé ÀÉÎÕÜ àéîõü", "東京 Tokyo 大阪", "tab\there\nnew line\r\nreturn", "zero\u200bwidth and\u00a0nbsp",
    "control\u0007bell\u0000nul", "Supercalifragilisticexpialidocious " + "A" * 120, "Mr. Smith's U.S.A. trip (1999-2001)",
    "“Quoted” — dashes – and … ellipsis", "E=mc² and H₂O", "The The THE the",
]
tmp = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8")
tmp.write("\n".join(vocab + added) + "\n")
tmp.close()
tok = BertWordPieceTokenizer(tmp.name, lowercase=False)
wiki = open(os.path.join(SHARED, "wikitext", "wikitext-raw", "wiki.test.raw"), encoding="utf-8").read().split("\n")
first, count = 1, 80
result = {
    "tokenizer": "BertWordPieceCase: Hugging Face tokenizers BertWordPieceTokenizer(lowercase=False) (strip_accents "
                 "follows lowercase: off)",
    "vocabulary": "tokenizers/bert-base-uncased/vocab.txt (30,522 entries) followed by added_tokens",
    "added_tokens": added,
    "cases": [{"text": t, "ids": tok.encode(t).ids} for t in cases],
    "wikitext": {"file": "wikitext/wikitext-raw/wiki.test.raw", "first_line": first, "lines": count,
                 "ids": [tok.encode(line).ids for line in wiki[first:first + count]]},
}
os.unlink(tmp.name)
with open(OUT, "w", encoding="utf-8") as f:
    json.dump(result, f, ensure_ascii=False, separators=(",", ":"))
print(f"{OUT}: {len(added)} added tokens, {len(cases)} cases, {count} WikiText lines")
