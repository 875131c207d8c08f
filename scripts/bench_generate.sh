#!/usr/bin/env bash
# scripts/bench_generate.sh — `megatron generate` decoding speed against transformers' `generate`
# with its KV cache, same model, same prompts, same threads, in one run: a random GPT-2 124M made
# by transformers (seed 0) is imported with convert-checkpoint; prompts of PROMPT (896) random
# token ids are extended greedily by NEW (128) tokens, so the context reaches 1,024; batch 1 and 8.
# Prints the CPU and its memory read rates (one and four streams per thread; the roof takes the
# faster); then, ROUNDS times per batch size, ours and transformers' in turn: prompt and decoding
# tokens/s of both, their ratio, the decoding roof (tokens/s if a step ran at that read rate) and
# our share of it; then the median ratio. Needs torch and transformers (pip install torch
# transformers) and a C compiler with OpenMP.
#   scripts/bench_generate.sh        (THREADS=$(nproc) PROMPT=896 NEW=128 BATCHES="1 8" ROUNDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
export THREADS=${THREADS:-$(nproc)} PROMPT=${PROMPT:-896} BATCHES=${BATCHES:-1 8} ROUNDS=${ROUNDS:-3}
NEW=${NEW:-128}
work=runs/bench-generate
swift build -c release --product megatron >/dev/null
if [ ! -f "$work/hf/model.safetensors" ]; then
    rm -rf "$work"; mkdir -p "$work"
    python3 scripts/bench_generate_torch.py make "$work"
    .build/release/megatron convert-checkpoint --from hf "$work/hf" --save "$work/ckpt" >/dev/null
fi
cc -O2 -march=native -fopenmp scripts/lib/read_bandwidth.c -o "$work/read_bandwidth"
read -r single_stream four_streams < <("$work/read_bandwidth" "$THREADS")
bandwidth=$(python3 -c "print(max($single_stream, $four_streams))")
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $THREADS threads;" \
    "gpt2-124m (random), fp32, prompt $PROMPT + $NEW new tokens, greedy"
torch_allocator_note
echo "== memory read rate ($THREADS threads, scripts/lib/read_bandwidth.c): $single_stream GB/s one stream per" \
    "thread, $four_streams GB/s four streams per thread; the roof uses $bandwidth GB/s"
printf '%-6s %5s %14s %14s %14s %14s %8s %8s %8s\n' batch round "ours prompt/s" "HF prompt/s" "ours decode/s" \
    "HF decode/s" ratio roof "ours/roof"
for b in $BATCHES; do
    # The roof: a decoding step reads every weight once (fp32; the LM head is the word embedding, the
    # position table is only indexed) and each sequence's KV cache at its mean context.
    roof=$(python3 -c "
L, h, V, b = 12, 768, 50304, $b
weights = 4 * (L * (12 * h * h + 13 * h) + V * h + 2 * h)
cache = 2 * L * ($PROMPT + $NEW / 2) * h * 4
print('%.1f' % (b * $bandwidth * 1e9 / (weights + b * cache)))")
    ratios=()
    for round in $(seq "$ROUNDS"); do  # ours and transformers alternate, so a slow minute hits both
        line=$(.build/release/megatron generate --load "$work/ckpt" --prompts-file "$work/prompts_$b.jsonl" \
            --tokens-to-generate "$NEW" --top-k 1 --ignore-eod --max-batch "$b" --num-threads "$THREADS" \
            --tokenizer-type NullTokenizer --vocab-size 50257 2>&1 >/dev/null | grep "decoding:")
        ours_prompt=$(sed -E 's/.*prompt processing: [0-9]+ tokens in [0-9.]+ s \(([0-9.]+) tokens\/s\).*/\1/' <<<"$line")
        ours_decode=$(sed -E 's/.*decoding: [0-9]+ tokens in [0-9.]+ s \(([0-9.]+) tokens\/s\).*/\1/' <<<"$line")
        hf=$(torch_python scripts/bench_generate_torch.py time "$work" "$b" "$NEW" 2>/dev/null | tail -1)
        hf_prompt=$(python3 -c "import json,sys; print('%.1f' % json.loads(sys.argv[1])['prompt_tokens_per_s'])" "$hf")
        hf_decode=$(python3 -c "import json,sys; print('%.1f' % json.loads(sys.argv[1])['decode_tokens_per_s'])" "$hf")
        ratio=$(python3 -c "print('%.2f' % ($ours_decode / $hf_decode))")
        ratios+=("$ratio")
        share=$(python3 -c "print('%.2f' % ($ours_decode / $roof))")
        printf '%-6s %5s %14s %14s %14s %14s %7s× %8s %8s\n' "$b" "$round" "$ours_prompt" "$hf_prompt" \
            "$ours_decode" "$hf_decode" "$ratio" "$roof" "$share"
    done
    echo "batch $b: decode ratio median $(python3 -c "import statistics,sys; print('%.2f' % statistics.median(map(float, sys.argv[1:])))" "${ratios[@]}")×" \
        "(lowest $(printf '%s\n' "${ratios[@]}" | sort -n | head -1)×) over $ROUNDS alternated rounds"
done
