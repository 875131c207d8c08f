#!/usr/bin/env bash
# scripts/bench_llama.sh — what Megatron's Llama-style options cost: alternates `megatron benchmark` on
# gpt2-124m's shape (LAYERS layers, seq 1024, micro-batch 4, PRECISION) as GPT-2 and with rope,
# RMSNorm, SwiGLU (ffn 2048: the same MLP parameters as GELU's 3072), no linear biases, an untied
# head and 4 key/value groups for the 12 heads, and prints each run's step, tokens/s, model TFLOP/s
# (Megatron's formula with its SwiGLU and grouped-query terms) and the layer phases that change.
#   scripts/bench_llama.sh      (LAYERS=12 ROUNDS=2 PRECISION=bf16 STEPS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
LAYERS=${LAYERS:-12}; ROUNDS=${ROUNDS:-2}; PRECISION=${PRECISION:-bf16}; STEPS=${STEPS:-2}
swift build -c release --product megatron >/dev/null
flag=(); [ "$PRECISION" != fp32 ] && flag=(--"$PRECISION")
llama=(--position-embedding-type rope --normalization RMSNorm --swiglu --disable-bias-linear
    --untie-embeddings-and-output-weights --group-query-attention --num-query-groups 4)
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; gpt2-124m shape, $LAYERS layers, $PRECISION"
for round in $(seq "$ROUNDS"); do
    for model in gpt2 llama; do
        echo "-- round $round $model"
        options=(); [ "$model" = llama ] && options=("${llama[@]}")
        .build/release/megatron benchmark --config configs/gpt2-124m.json --num-layers "$LAYERS" --steps "$STEPS" \
            "${flag[@]}" "${options[@]}" 2>&1 | grep -E "^step|fwd qkv|fwd fc1|bwd fc1|bwd fc2|bwd qkv|layernorm|lm head"
    done
done
