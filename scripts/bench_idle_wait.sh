#!/usr/bin/env bash
# scripts/bench_idle_wait.sh — how a rank waits (`idle_wait`) on a node whose ranks want more threads
# than it has cores, in one run on this machine: oversubscribed layouts of configs/gpt-50m.json and
# configs/bert-26m.json (bf16, global batch 8, 1 thread per rank; the pipelines and data/tensor
# layouts the planner's table measures), each trained for ITERS iterations with `spin` (waiting in
# MPI, which only yields the core) and `sleep` (polling with pauses), the two alternated ROUNDS times
# with their order swapped each round so the machine's drift falls on both. Per run: the median step
# time of iterations 2..ITERS and the slowest of them; per layout: spin's median over sleep's.
#   scripts/bench_idle_wait.sh              # 2 rounds of 8 iterations, ~8 minutes on 2 cores
#   ROUNDS=3 ITERS=10 scripts/bench_idle_wait.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
use_megatron_binary
OUT=${OUT:-runs/bench_idle_wait}
ROUNDS=${ROUNDS:-2}
ITERS=${ITERS:-8}
mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl "$OUT"/*.log
LAYOUTS=(
    "4 gpt t=1,p=2,d=2,dist-opt,zb-h1|--config configs/gpt-50m.json --pipeline-model-parallel-size 2 --micro-batch-size 2 --use-distributed-optimizer --pipeline-schedule zb-h1"
    "8 gpt t=2,p=2,d=2|--config configs/gpt-50m.json --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 --micro-batch-size 2"
    "8 gpt t=2,p=4|--config configs/gpt-50m.json --tensor-model-parallel-size 2 --pipeline-model-parallel-size 4 --micro-batch-size 2"
    "4 gpt t=1,p=1,d=4|--config configs/gpt-50m.json --micro-batch-size 2"
    "4 bert t=1,p=2,d=2,dist-opt|--config configs/bert-26m.json --pipeline-model-parallel-size 2 --micro-batch-size 2 --use-distributed-optimizer"
    "8 bert t=1,p=4,d=2,dist-opt|--config configs/bert-26m.json --pipeline-model-parallel-size 4 --micro-batch-size 2 --use-distributed-optimizer"
)
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; bf16, global batch 8, 1 thread per rank, $ITERS iterations, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
    order="spin sleep"; [ $((round % 2)) = 0 ] && order="sleep spin"
    for i in "${!LAYOUTS[@]}"; do
        entry=${LAYOUTS[$i]}; head=${entry%%|*}; args=${entry#*|}; np=${head%% *}
        for mode in $order; do
            run="r$round-l$i-$mode"
            # shellcheck disable=SC2086
            OPENBLAS_NUM_THREADS=1 mpirun -np "$np" --oversubscribe "$BIN" train $args --global-batch-size 8 --bf16 \
                --num-threads 1 --idle-wait "$mode" --train-iters "$ITERS" --log-interval 1 --eval-iters 0 \
                --metrics-file "$OUT/$run.jsonl" > "$OUT/$run.log" 2>&1
        done
    done
done
heads=(); for entry in "${LAYOUTS[@]}"; do heads+=("${entry%%|*}"); done
python3 - "$OUT" "$ROUNDS" "${heads[@]}" <<'PY'
import json, sys
out, rounds, heads = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def steps(run):
    s = sorted(json.loads(l)["step_ms"] / 1000 for l in open(f"{out}/{run}.jsonl") if json.loads(l)["iteration"] >= 2)
    return s[len(s) // 2], s[-1]
print("| layout | ranks | round | spin: median s (slowest) | sleep: median s (slowest) | spin / sleep |")
print("|---|---|---|---|---|---|")
for i, head in enumerate(heads):
    np_, model, layout = head.split(" ", 2)
    for r in range(1, rounds + 1):
        (a, amax), (b, bmax) = steps(f"r{r}-l{i}-spin"), steps(f"r{r}-l{i}-sleep")
        print(f"| {model} {layout} | {np_} | {r} | {a:.2f} ({amax:.2f}) | {b:.2f} ({bmax:.2f}) | {a / b:.2f} |")
PY
