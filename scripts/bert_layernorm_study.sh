#!/usr/bin/env bash
# scripts/bert_layernorm_study.sh — the Megatron paper's BERT experiment (§3, Figure 7) at our
# scale: both LayerNorm arrangements — Megatron's pre-LN (layernorm_arrangement pre_ln, a final
# LayerNorm) and the original post-LN (post_ln) — trained at increasing depth on the same data with
# the same learning rate, warm-up and steps; then a table of the final training and validation
# losses and a PNG of the loss curves (scripts/lib/plot_layernorm_study.py, matplotlib).
#   scripts/bert_layernorm_study.sh [OUT_DIR]   (default bert-layernorm-study/)
#   DEPTHS="6 12 24 48" HIDDEN=64 HEADS=4 SEQ=128 STEPS=300 LR=0.001 WARMUP=30 THREADS=$(nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
out=${1:-bert-layernorm-study}
DEPTHS=${DEPTHS:-6 12 24 48}; HIDDEN=${HIDDEN:-64}; HEADS=${HEADS:-4}; SEQ=${SEQ:-128}; STEPS=${STEPS:-300}
LR=${LR:-0.001}; WARMUP=${WARMUP:-30}; THREADS=${THREADS:-$(nproc)}
swift build -c release --product megatron >/dev/null
mkdir -p "$out"
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "== bert-tiny's data and optimizer; hidden $HIDDEN, $HEADS heads, seq $SEQ, $STEPS steps, lr $LR (warm-up $WARMUP, cosine)"
for depth in $DEPTHS; do
    for arrangement in pre_ln post_ln; do
        name="${arrangement}_L${depth}"
        start=$(date +%s.%N)
        .build/release/megatron train --config configs/bert-tiny.json --num-layers "$depth" \
            --hidden-size "$HIDDEN" --num-attention-heads "$HEADS" --seq-length "$SEQ" --max-position-embeddings "$SEQ" \
            --train-iters "$STEPS" --lr "$LR" --lr-warmup-iters "$WARMUP" --eval-interval "$STEPS" --eval-iters 16 \
            --layernorm-arrangement "$arrangement" --num-threads "$THREADS" --log-interval "$STEPS" \
            --metrics-file "$out/$name.jsonl" >"$out/$name.log" 2>&1 || echo "   ($name stopped: see $out/$name.log)"
        printf '   %-12s %6.1f s\n' "$name" "$(echo "$(date +%s.%N) - $start" | bc)"
    done
done
python3 scripts/lib/plot_layernorm_study.py "$out" $DEPTHS
