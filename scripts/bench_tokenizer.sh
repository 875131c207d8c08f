#!/usr/bin/env bash
# scripts/bench_tokenizer.sh — tokenisation throughput on WikiText's wiki.test.raw, one thread, for
# GPT-2 BPE and BERT WordPiece (uncased), each against Hugging Face `tokenizers` (pip) on the same
# paragraphs in the same run, and Llama2Tokenizer against the `sentencepiece` library (pip) over a
# Llama-2-style BPE model (byte fallback, identity normalization) of 16,000 pieces that the library
# trains first on WikiText-103's validation tokens (so the test text is unseen), and
# HuggingFaceTokenizer against `tokenizers` over a Llama-3-layout tokenizer.json of 32,000 BPE ids
# (Llama 3's Split pattern, ignore_merges, a BOS template) trained the same way, and TikTokenizer
# against the `tiktoken` library (pip) over a rank file of 32,000 ranks in Megatron's JSON format,
# learned the same way with Megatron's v2 (Tekken) pattern (1,000 special ids first, as Megatron's
# default). Ours: `megatron preprocess-data --workers 1` on the file as plain
# text (one document per blank-line-separated paragraph), timed from the first document to the
# files written — so it includes reading, UTF-8 checking and writing the .bin/.idx. Theirs:
# Tokenizer.encode on each paragraph (RAYON_NUM_THREADS=1), tokenisation only. Needs
# ../shared/data (or DATA=dir).
#   scripts/bench_tokenizer.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
swift build -c release 2>&1 | grep -E "error|Build complete" || true
DATA=${DATA:-../shared/data}
RAW="$DATA/wikitext/wikitext-raw/wiki.test.raw"
[ -f "$RAW" ] || { echo "error: $RAW not found (set DATA to a directory holding wikitext/ and tokenizers/)" >&2; exit 1; }
OUT=runs/bench-tokenizer
mkdir -p "$OUT"
python3 -c "import tokenizers" 2>/dev/null || pip install -q tokenizers 2>/dev/null || true
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), one thread"
python3 -c "import sentencepiece" 2>/dev/null || pip install -q sentencepiece 2>/dev/null || true
python3 -c "import tiktoken" 2>/dev/null || pip install -q tiktoken 2>/dev/null || true
SP_MODEL="$OUT/llama16k.model"
if python3 -c "import sentencepiece" 2>/dev/null && [ ! -f "$SP_MODEL" ]; then
    python3 -c "
import sentencepiece as spm, sys
spm.SentencePieceTrainer.train(input=sys.argv[1], model_prefix=sys.argv[2], model_type='bpe', vocab_size=16000,
    byte_fallback=True, normalization_rule_name='identity', add_dummy_prefix=True, remove_extra_whitespaces=False,
    split_digits=True, minloglevel=2)" "$DATA/wikitext/wikitext-103/wiki.valid.tokens" "${SP_MODEL%.model}"
fi
HF_DIR="$OUT/llama3-32k"
if python3 -c "import tokenizers" 2>/dev/null && [ ! -f "$HF_DIR/tokenizer.json" ]; then
    mkdir -p "$HF_DIR"
    python3 - "$DATA/wikitext/wikitext-103/wiki.valid.tokens" "$HF_DIR" <<'PY'
import json, sys
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
pattern = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
           r"\s*[\r\n]+|\s+(?!\S)|\s+")
tok = Tokenizer(models.BPE(ignore_merges=True))
tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
                                             pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
tok.decoder = decoders.ByteLevel()
tok.train([sys.argv[1]], trainers.BpeTrainer(vocab_size=32000, show_progress=False,
                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
tok.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>"])
bos = tok.token_to_id("<|begin_of_text|>")
tok.post_processor = processors.TemplateProcessing(single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", bos)])
tok.save(f"{sys.argv[2]}/tokenizer.json")
json.dump({"eos_token": "<|end_of_text|>"}, open(f"{sys.argv[2]}/tokenizer_config.json", "w"))
PY
fi
TEKKEN="$OUT/tekken32k.json"
if python3 -c "import tokenizers, tiktoken" 2>/dev/null && [ ! -f "$TEKKEN" ]; then
    python3 - "$DATA/wikitext/wikitext-103/wiki.valid.tokens" "$TEKKEN" <<'PY'
import base64, json, sys
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
v2 = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
      r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
      r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
tok = Tokenizer(models.BPE())
tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(v2), behavior="isolated"),
                                             pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
tok.train([sys.argv[1]], trainers.BpeTrainer(vocab_size=32000, show_progress=False,
                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
chars, extra = {}, 256
for b in range(256):
    chars[b], extra = (chr(b), extra) if b in printable else (chr(extra), extra + 1)
byte_of = {c: b for b, c in chars.items()}
ranks = [bytes([b]) for b in range(256)]
for left, right in json.loads(tok.to_str())["model"]["merges"]:
    ranks.append(bytes(byte_of[c] for c in left + right))
json.dump([{"rank": i, "token_bytes": base64.b64encode(t).decode(), "token_str": t.decode("utf-8", "replace")}
           for i, t in enumerate(ranks)], open(sys.argv[2], "w"))
PY
fi
for kind in gpt2 bert sentencepiece llama3 tekken; do
    if [ $kind = gpt2 ]; then
        files=(--tokenizer-type GPT2BPETokenizer --vocab-file "$DATA/tokenizers/gpt2/vocab.json"
            --merge-file "$DATA/tokenizers/gpt2/merges.txt")
    elif [ $kind = llama3 ]; then
        [ -f "$HF_DIR/tokenizer.json" ] || { echo "(tokenizers is not installed: pip install tokenizers to compare)"; continue; }
        files=(--tokenizer-type HuggingFaceTokenizer --tokenizer-model "$HF_DIR")
    elif [ $kind = tekken ]; then
        [ -f "$TEKKEN" ] || { echo "(tokenizers or tiktoken is not installed: pip install both to compare)"; continue; }
        files=(--tokenizer-type TikTokenizer --tokenizer-model "$TEKKEN" --tiktoken-pattern v2
            --vocab-size "$(python3 -c "import json, sys; print(1000 + len(json.load(open(sys.argv[1]))))" "$TEKKEN")")
    elif [ $kind = sentencepiece ]; then
        [ -f "$SP_MODEL" ] || { echo "(sentencepiece is not installed: pip install sentencepiece to compare)"; continue; }
        files=(--tokenizer-type Llama2Tokenizer --tokenizer-model "$SP_MODEL")
    else
        files=(--tokenizer-type BertWordPieceLowerCase --vocab-file "$DATA/tokenizers/bert-base-uncased/vocab.txt")
    fi
    echo "== $kind"
    ours=$(.build/release/megatron preprocess-data --input "$RAW" "${files[@]}" --output-prefix "$OUT/$kind" \
        --workers 1 2>/dev/null)
    echo "$ours"
    mbs=$(echo "$ours" | sed -E 's/.*, ([0-9.]+) MB\/s\).*/\1/')
    if [ $kind != sentencepiece ] && ! python3 -c "import tokenizers" 2>/dev/null; then
        echo "(Hugging Face tokenizers is not installed and could not be installed: pip install tokenizers to compare)"
        continue
    fi
    RAYON_NUM_THREADS=1 python3 - "$RAW" "$DATA" "$mbs" "$kind" "$SP_MODEL" "$OUT/${kind}_text_document.bin" "$HF_DIR" \
        "$TEKKEN" <<'PY'
import re, sys, time
raw, data, ours, kind = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
if kind == "sentencepiece":
    import sentencepiece as spm
    tok = spm.SentencePieceProcessor(model_file=sys.argv[5], num_threads=1)
    encode, name = tok.encode, f"sentencepiece {spm.__version__}"
else:
    from tokenizers import BertWordPieceTokenizer, ByteLevelBPETokenizer
    name = f"Hugging Face tokenizers {__import__('tokenizers').__version__}"
if kind == "tekken":
    import base64, json, tiktoken
    v2 = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"
          r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"
          r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
    ranks = {base64.b64decode(e["token_bytes"]): 1000 + e["rank"] for e in json.load(open(sys.argv[8]))}
    tok = tiktoken.Encoding(name="tekken", pat_str=v2, mergeable_ranks=ranks, special_tokens={})
    encode, name = tok.encode_ordinary, f"tiktoken {tiktoken.__version__}"
elif kind == "llama3":
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(f"{sys.argv[7]}/tokenizer.json")
    encode = lambda p: tok.encode(p).ids
elif kind == "gpt2":
    tok = ByteLevelBPETokenizer(f"{data}/tokenizers/gpt2/vocab.json", f"{data}/tokenizers/gpt2/merges.txt")
    encode = tok.encode
elif kind == "bert":
    tok = BertWordPieceTokenizer(f"{data}/tokenizers/bert-base-uncased/vocab.txt", lowercase=True)
    encode = lambda p: tok.encode(p, add_special_tokens=False)
text = open(raw, encoding="utf-8").read()
# The same paragraphs as preprocess-data: runs of non-blank lines.
paragraphs = [p for p in re.split(r"\n[ \t\r]*\n", text) if p.strip()]
best = 0.0
for _ in range(3):
    t = time.perf_counter()
    for p in paragraphs:
        encode(p)
    best = max(best, len(text.encode()) / (time.perf_counter() - t) / 1e6)
print(f"{name}, 1 thread, best of 3: {best:.2f} MB/s on {len(paragraphs)} paragraphs")
if kind in ("sentencepiece", "llama3", "tekken"):  # our ids against the library's, documents cut as preprocess-data cuts them
    import numpy as np
    docs, cur = [], ""
    for line in text.splitlines(keepends=True):
        if line.strip(" \t\r\n") == "":
            docs, cur = (docs + [cur], "") if cur else (docs, "")
        else:
            cur += line
    docs += [cur] if cur else []
    want = [i for d in docs for i in ([tok.bos_id()] + tok.encode(d) if kind == "sentencepiece" else encode(d))]
    got = np.fromfile(sys.argv[6], dtype=np.uint16).tolist()
    print(f"ids: ours {len(got):,}, the library's {len(want):,}, {'equal' if got == want else 'DIFFERENT'}")
print(f"ours / theirs: {ours / best:.2f}x")
PY
done
