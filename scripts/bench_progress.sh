#!/usr/bin/env bash
# scripts/bench_progress.sh — how MPI progress during compute (`communication_progress`) changes data-
# parallel training, in one run on this machine: gpt2-124m, micro-batch 2 per rank, 1 thread per rank,
# gradient buckets of 10M elements (8 buckets); d = 1 beside d = 2 under each mode (layer-boundaries:
# MPI_Test between layers; thread: a progress thread; off: only the final wait), the modes alternated
# ROUNDS times so the machine's drift falls on all of them. Per run: tokens/s, weak-scaling efficiency
# against the d = 1 run of the same round, the wait after the backward pass, and the part of it left
# after the slowest rank's backward ended (the reduction still to do, without waiting for a peer).
# ENDINGS lists `ddp_sparse_embedding_ending` values to run each mode with (default auto), and
# REDUCTIONS the `ddp_reduction` values (default "auto mpi": through shared memory, then through MPI).
# Each round also runs two d = 1 processes at once, independent of each other (no MPI between them):
# their summed tokens/s over twice the lone d = 1 run is what this machine allows two busy cores
# (shared cache, memory bandwidth, clock), the ceiling for the weak scaling of d = 2.
#   scripts/bench_progress.sh              # 2 rounds, 2 measured steps per run
#   ROUNDS=3 STEPS=1 scripts/bench_progress.sh
#   MODES=layer-boundaries ENDINGS="auto off" ROUNDS=3 scripts/bench_progress.sh   # the sparse ending
#   MODES=layer-boundaries REDUCTIONS="auto mpi" ROUNDS=3 scripts/bench_progress.sh # shared memory or MPI
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
use_megatron_binary
OUT=${OUT:-runs/bench_progress}
ROUNDS=${ROUNDS:-2}
STEPS=${STEPS:-2}
MODES=${MODES:-"layer-boundaries thread off"}
ENDINGS=${ENDINGS:-auto}
REDUCTIONS=${REDUCTIONS:-"auto mpi"}
mkdir -p "$OUT"
DP="--config configs/gpt2-124m.json --micro-batch-size 2 --hidden-dropout 0 --attention-dropout 0 --steps $STEPS --num-threads 1 --ddp-bucket-size 10000000"

echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "== gpt2-124m, micro-batch 2 per rank, seq 1024, fp32, 1 thread per rank; $ROUNDS rounds of d = 1, then d = 2 per mode"
for round in $(seq 1 "$ROUNDS"); do
    OPENBLAS_NUM_THREADS=1 "$BIN" benchmark $DP --global-batch-size 2 --json "$OUT/r$round-d1.json" > "$OUT/r$round-d1.log"
    for side in a b; do
        OPENBLAS_NUM_THREADS=1 "$BIN" benchmark $DP --global-batch-size 2 --json "$OUT/r$round-pair-$side.json" \
            > "$OUT/r$round-pair-$side.log" &
    done
    wait
    for mode in $MODES; do
        for ending in $ENDINGS; do
            for reduction in $REDUCTIONS; do
                run="r$round-$mode-$ending-$reduction"
                OPENBLAS_NUM_THREADS=1 mpirun -np 2 "$BIN" benchmark $DP --global-batch-size 4 --communication-progress "$mode" \
                    --ddp-sparse-embedding-ending "$ending" --ddp-reduction "$reduction" --json "$OUT/$run.json" > "$OUT/$run.log"
            done
        done
    done
done
python3 - "$OUT" "$ROUNDS" "$ENDINGS" "$REDUCTIONS" $MODES <<'PY'
import json, sys
out, rounds, endings, reductions, modes = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split(), sys.argv[5:]
print(f"| round | d = 2 progress | sparse ending | reduction | tokens/s | weak scaling | wait ms (% of step) | after the slowest backward, ms |")
print("|---|---|---|---|---|---|---|---|")
for r in range(1, rounds + 1):
    d1 = json.load(open(f"{out}/r{r}-d1.json"))
    print(f"| {r} | d = 1 | — | — | {d1['tokens_per_s']:.1f} | — | — | — |")
    pair = sum(json.load(open(f"{out}/r{r}-pair-{side}.json"))["tokens_per_s"] for side in "ab")
    print(f"| {r} | two independent d = 1 at once | — | — | {pair:.1f} | {pair / (2 * d1['tokens_per_s']):.2f} | — | — |")
    for mode in modes:
        for ending in endings:
            for reduction in reductions:
                j = json.load(open(f"{out}/r{r}-{mode}-{ending}-{reduction}.json"))
                eff = j["tokens_per_s"] / (2 * d1["tokens_per_s"])
                wait = j["dp_wait_ms"]
                print(f"| {r} | {mode} | {ending} | {j['dp_reduction']} | {j['tokens_per_s']:.1f} | {eff:.2f} | {wait:.1f} "
                      f"({100 * wait / j['step_ms']:.1f}%) | {j['dp_exposed_wait_ms']:.1f} |")
PY
