#!/usr/bin/env python3
"""Writes Tests/MegatronCoreTests/Fixtures/hf_tokenizer/: byte-level BPE tokenizers in Hugging Face's
tokenizer.json format, trained by the `tokenizers` library on Tiny Shakespeare, and the ids and text
transformers gives for them, so the Swift tests check our HuggingFaceTokenizer without Python.

    pip install tokenizers transformers && python3 scripts/make_hf_tokenizer_fixture.py

Tokenizers (each a directory with tokenizer.json and tokenizer_config.json):
  llama3/  Llama 3's layout: no normalizer; pre-tokenizer Sequence[Split(Llama 3's pattern,
           Isolated), ByteLevel(no prefix space, no regex)]; BPE of 1,000 ids with ignore_merges;
           ByteLevel decoder; added special tokens <|begin_of_text|>, <|end_of_text|> and eight
           <|reserved_special_token_k|>, plus a non-special added token "<sep>"; a TemplateProcessing
           post-processor putting <|begin_of_text|> first; eos_token <|end_of_text|>.
  qwen2/   Qwen 2's layout: NFC normalizer, Qwen 2's pattern (one digit per piece), 900 ids, no
           ignore_merges, ByteLevel post-processor (no BOS); <|endoftext|> as eos.
  gpt2/    GPT-2's layout: ByteLevel pre-tokenizer with its own regex and add_prefix_space, 700
           ids; <|endoftext|>.
cases.json: for each tokenizer and each written string, transformers' AutoTokenizer ids (special
tokens added as the tokenizer adds them) and its decode of those ids.
wikitext.json: for each tokenizer, the ids of the first 150 non-empty lines of WikiText's
wiki.test.raw (the text itself stays in ../shared).
"""
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SHARED = os.path.join(ROOT, "..", "shared", "data")
OUT = os.path.join(ROOT, "Tests/MegatronCoreTests/Fixtures/hf_tokenizer")

LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
          r"\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
         r"\s+(?!\S)|\s+")

CASES = [
    "Hello world", "First Citizen:\nBefore we proceed any further, hear me speak.", "  two  spaces  ", "   ", "",
    "naïve café — 日本語 😀", "a\tb\nc\r\nd", "ｆｕｌｌ width ﬁ ① Ⅻ ㎏", "x<sep>y<sep><sep>",
    "<|begin_of_text|>hi<|end_of_text|> <|reserved_special_token_3|>", "<|endoftext|>text<|endoftext|>",
    "1234567 3.14159 1e-9 ٣٤٥ ½", "Ünïcödé ÅÇÉ ñ ß İ ǅ", "\u00a0non\u2009breaking\u3000space", "tab\t\tend\t",
    "emoji 👩‍👩‍👧 flag 🇫🇷 skin 👍🏽", "zero\u200bwidth\u200djoin", "\x00\x01 control \x7f",
    "KING RICHARD III:\nNow is the winter of our discontent", "What's up? I'M fine, isn'T it. we'Ll 'ſ 'S",
    "a" * 300, "line one\n\nline three\n", "  \n  \n\n x \r\n\r\n", "((hello)) [world] {x}!!", "e\u0301 vs é",
    "Ελληνικά Русский العربية עברית हिन्दी", "don't  'twas ''s '", "word\n", " leading", "trailing ",
    "spaces before . , ! ? n't 's 'm 've 're and after", "<sep> <sep>x", "<|end_of_text|><|end_of_text|>",
]


def corpus():
    return open(os.path.join(SHARED, "corpora/tinyshakespeare/input.txt"), encoding="utf-8").read().split("\n\n")


def train(pattern, vocab, specials, normalizer=None, ignore_merges=False):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    if pattern is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer=trainer)
    return tok


def save(tok, name, config):
    out = os.path.join(OUT, name)
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"))
    json.dump({"tokenizer_class": "PreTrainedTokenizerFast", **config},
              open(os.path.join(out, "tokenizer_config.json"), "w"), indent=1)
    return out


def main():
    reserved = [f"<|reserved_special_token_{k}|>" for k in range(8)]
    llama3 = train(LLAMA3, 1000, [], ignore_merges=True)
    llama3.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>"] + reserved)
    llama3.add_tokens(["<sep>"])
    bos = llama3.token_to_id("<|begin_of_text|>")
    llama3.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", bos)])
    qwen2 = train(QWEN2, 900, ["<|endoftext|>"], normalizer=normalizers.NFC())
    qwen2.post_processor = processors.ByteLevel(trim_offsets=False)
    gpt2 = train(None, 700, ["<|endoftext|>"])
    dirs = {
        "llama3": save(llama3, "llama3", {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}),
        "qwen2": save(qwen2, "qwen2", {"eos_token": "<|endoftext|>", "bos_token": None}),
        "gpt2": save(gpt2, "gpt2", {"eos_token": "<|endoftext|>"}),
    }
    lines = [l for l in open(os.path.join(SHARED, "wikitext", "wikitext-raw", "wiki.test.raw"), encoding="utf-8")
             .read().split("\n") if l.strip()][:150]
    cases, wiki = {}, {}
    for name, d in dirs.items():
        tok = AutoTokenizer.from_pretrained(d)
        assert isinstance(tok, PreTrainedTokenizerFast)
        cases[name] = [{"text": t, "ids": tok(t)["input_ids"], "decoded": tok.decode(tok(t)["input_ids"])}
                       for t in CASES]
        wiki[name] = [tok(l)["input_ids"] for l in lines]
    json.dump(cases, open(os.path.join(OUT, "cases.json"), "w"), indent=0, ensure_ascii=False)
    json.dump(wiki, open(os.path.join(OUT, "wikitext.json"), "w"))
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
