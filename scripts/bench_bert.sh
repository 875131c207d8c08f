#!/usr/bin/env bash
# scripts/bench_bert.sh — BERT training speed in one run: bert-base (12 layers, hidden 768, seq 512,
# micro-batch 4, dropout 0) in fp32 and bf16 through `megatron benchmark` (which also measures the
# SGEMM and bf16 GEMM rates on the model's shapes), and, when torch is installed, a PyTorch eager
# BERT of the same shape, vocabulary, batch and thread count (scripts/bench_torch_bert.py) in fp32
# and under CPU bf16 autocast; prints our tokens/s against PyTorch's. Run by scripts/bench.sh.
#   scripts/bench_bert.sh     (STEPS=3 THREADS=$(nproc) BERT_VOCAB=path/to/bert vocab.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
swift build -c release --product megatron 2>&1 | grep -E "error|Build complete" || true
BIN=.build/release/megatron
OUT=runs/bench
STEPS=${STEPS:-3}
# PyTorch's BERT ran fastest under tcmalloc in this machine's runs (see README, "PyTorch's allocator").
export TORCH_ALLOCATOR=${TORCH_ALLOCATOR:-tcmalloc}
THREADS=${THREADS:-$(nproc)}
mkdir -p "$OUT"
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "== bert-base (12 layers, hidden 768, seq 512), micro-batch 4, fp32 then bf16"
BERT_VOCAB=${BERT_VOCAB:-../shared/data/tokenizers/bert-base-uncased/vocab.txt}
if [ -f "$BERT_VOCAB" ]; then
    BERT_TOKENIZER=(--tokenizer-type BertWordPieceLowerCase --vocab-file "$BERT_VOCAB")
else
    BERT_TOKENIZER=(--tokenizer-type ByteLevelTokenizer)
    echo "(no BERT vocab.txt at $BERT_VOCAB (set BERT_VOCAB): the byte-level vocabulary, on both sides)"
fi
BERT="--config configs/bert-base.json --global-batch-size 4 --hidden-dropout 0 --attention-dropout 0 --steps $STEPS"
"$BIN" benchmark $BERT "${BERT_TOKENIZER[@]}" --num-threads "$THREADS" --json "$OUT/bert-base.json" \
    | grep -E "^benchmark|SGEMM rate|bf16 GEMM rate|single-thread peaks|peak on [0-9]* threads at once|^step"
"$BIN" benchmark $BERT "${BERT_TOKENIZER[@]}" --num-threads "$THREADS" --bf16 --json "$OUT/bert-base-bf16.json" | grep -E "^step"
if python3 -c "import torch" 2>/dev/null; then
    echo "== PyTorch eager BERT fp32 and bf16 autocast on the same shape (scripts/bench_torch_bert.py), $THREADS threads"
    torch_allocator_note
    V=$(python3 -c "import json; print(json.load(open('$OUT/bert-base.json'))['padded_vocab_size'])")
    torch_python scripts/bench_torch_bert.py --threads "$THREADS" --steps "$STEPS" --vocab "$V" --json "$OUT/torch-bert.json"
    torch_python scripts/bench_torch_bert.py --threads "$THREADS" --steps "$STEPS" --vocab "$V" --bf16 --json "$OUT/torch-bert-bf16.json"
    python3 - "$OUT" <<'PY'
import json, sys
d = sys.argv[1]
ours, bf16, t32, t16 = (json.load(open(f"{d}/{n}.json")) for n in ("bert-base", "bert-base-bf16", "torch-bert", "torch-bert-bf16"))
print(f"\nsummary (bert-base, mb 4, seq 512, vocab {ours['padded_vocab_size']}): megatron fp32 {ours['tokens_per_s']:.1f} tokens/s = "
      f"{ours['tokens_per_s'] / t32['tokens_per_s']:.2f}x PyTorch eager fp32 ({t32['tokens_per_s']:.1f}); bf16 {bf16['tokens_per_s']:.1f} "
      f"tokens/s = {bf16['tokens_per_s'] / t16['tokens_per_s']:.2f}x PyTorch bf16 autocast ({t16['tokens_per_s']:.1f})")
PY
fi
