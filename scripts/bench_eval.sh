#!/usr/bin/env bash
# scripts/bench_eval.sh — evaluation throughput of GPT-2 124M on WikiText-103 test windows
# (seq 1024, overlapping_eval 32, the first N windows; random weights, seed 0), ours against
# PyTorch CPU (transformers, fp32, no grad) on the same windows in the same run. Needs torch and
# transformers (pip) for the model and the reference, and ../shared/data (or DATA=dir).
#   N=16 scripts/bench_eval.sh
# Ours runs the LM head only on the positions it scores (the last 32 of every window after the
# first); PyTorch computes logits for all 1024 — that difference is part of what is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
swift build -c release 2>&1 | grep -E "error|Build complete" || true
DATA=${DATA:-../shared/data}
N=${N:-16}
THREADS=${THREADS:-$(nproc)}
OUT=runs/bench-eval
python3 -c "import torch, transformers, tokenizers, h5py" 2>/dev/null || { echo "error: pip install torch transformers tokenizers h5py" >&2; exit 1; }
torch_allocator_note
mkdir -p "$OUT"
[ -f "$OUT/hf/model.safetensors" ] || python3 scripts/bench_eval.py make "$OUT/hf"
rm -rf "$OUT/ckpt"
.build/release/megatron convert-checkpoint --from hf "$OUT/hf" --save "$OUT/ckpt"
WIKI="$DATA/wikitext/wikitext-103/wiki.test.tokens"
VOCAB="$DATA/tokenizers/gpt2/vocab.json"; MERGES="$DATA/tokenizers/gpt2/merges.txt"
.build/release/megatron evaluate --task wikitext103 --valid-data "$WIKI" --load "$OUT/ckpt" --vocab-file "$VOCAB" \
    --merge-file "$MERGES" --seq-length 1024 --micro-batch-size 4 --num-threads "$THREADS" --limit-windows "$N" \
    --results-file "$OUT/ours.json" | tail -1
torch_python scripts/bench_eval.py time "$OUT/hf" "$WIKI" "$VOCAB" "$MERGES" "$N" "$THREADS" > "$OUT/torch.json"
python3 - "$OUT" <<'PY'
import json, sys
d = sys.argv[1]
ours, torch_ = json.load(open(f"{d}/ours.json")), json.load(open(f"{d}/torch.json"))
print(f"GPT-2 124M evaluation, {ours['windows']} WikiText-103 windows of 1024 tokens: megatron {ours['tokens_per_s']:.0f} tokens/s, "
      f"PyTorch {torch_['torch']} eager fp32 {torch_['tokens_per_s']:.0f} tokens/s; ratio {ours['tokens_per_s'] / torch_['tokens_per_s']:.2f}x")
PY
