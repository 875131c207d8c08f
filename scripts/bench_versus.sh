#!/usr/bin/env bash
# scripts/bench_versus.sh — training speed of the working tree beside a base revision, in one run:
# builds REV in a scratch worktree, then alternates the two binaries (base, new, base, new) on
# gpt2-124m (micro-batch 4, seq 1024, dropout DROPOUT, default 0) in fp32 and in bf16, and prints each run's
# tokens/s and the new/base ratio of the best of each. For refactors that must not cost speed, and
# for kernels that must gain it. MODEL_ARGS replaces the model (for example BERT:
# MODEL_ARGS="--config configs/bert-base.json --global-batch-size 4").
#   scripts/bench_versus.sh [REV]      (default HEAD; STEPS=3 ROUNDS=2 THREADS=$(nproc) PRECISIONS="fp32 bf16" DROPOUT=0)
#   PHASES="attention core|lm head" scripts/bench_versus.sh REV   # also each run's phase-table lines matching
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
base_rev=${1:-HEAD}
STEPS=${STEPS:-3}; ROUNDS=${ROUNDS:-2}; THREADS=${THREADS:-$(nproc)}; PRECISIONS=${PRECISIONS:-fp32 bf16}
DROPOUT=${DROPOUT:-0}; PHASES=${PHASES:-}
read -r -a model <<<"${MODEL_ARGS:---config configs/gpt2-124m.json --global-batch-size 4}"
work=$(mktemp -d /tmp/megatron-versus.XXXXXX)
trap 'remove_base_revision "$work"' EXIT
build_base_revision "$base_rev" "$work"
swift build -c release --product megatron >/dev/null
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; base $(git rev-parse --short "$base_rev"); ${model[*]}; dropout $DROPOUT"
for precision in $PRECISIONS; do
    flag=(); [ "$precision" = bf16 ] && flag=(--bf16)
    declare -A best=([base]=0 [new]=0)
    for round in $(seq "$ROUNDS"); do
        for which in base new; do
            bin=.build/release/megatron; [ "$which" = base ] && bin="$work/base/.build/release/megatron"
            "$bin" benchmark "${model[@]}" --hidden-dropout "$DROPOUT" --attention-dropout "$DROPOUT" \
                --num-threads "$THREADS" --steps "$STEPS" "${flag[@]}" --json "$work/$which.json" >"$work/$which.txt"
            rate=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['tokens_per_s'])" "$work/$which.json")
            printf '%s %-4s round %d: %8.1f tokens/s\n' "$precision" "$which" "$round" "$rate"
            if [ -n "$PHASES" ]; then
                sed -n '/^time per step by phase/,$p' "$work/$which.txt" | grep -E "$PHASES" || true
            fi
            best[$which]=$(python3 -c "print(max($rate, ${best[$which]}))")
        done
    done
    python3 -c "print('%s: best new / best base = %.3f' % ('$precision', ${best[new]} / ${best[base]}))"
    unset best
done
