#!/usr/bin/env bash
# scripts/bench_pipeline.sh — the pipeline against its theory, in one run on this machine:
# gpt2-124m, micro-batch 2, global batch 16 (m = 8 micro-batches), p = 1 (1 rank × all threads)
# beside p = 2 (2 ranks × 1 thread each) with 1F1B, 1F1B with pipeline_auto_balance, interleaved
# (v = 2) without and with it, ZB-H1, and ZB-H1 with the automatic balance; then the balanced ones
# again in sub-layers (pipeline_balance_unit "sublayer": a boundary may cut a layer between its
# attention and its MLP). For each: tokens/s, the ratio to p = 1, the layers per stage,
# and the measured bubble beside the schedule's theory ((p−1)/(v·m) for 1F1B; for ZB-H1 the
# simulator with the measured F, B and W times), and the bubble of each stage (where the idle time falls).
#   scripts/bench_pipeline.sh            # one measured step after a warm-up step per layout
#   STEPS=2 scripts/bench_pipeline.sh
#   LAYOUTS="1f1b-balanced zb-h1-balanced" scripts/bench_pipeline.sh   # p = 1 and just these
#   BIN=/other/build/megatron OUT=runs/other scripts/bench_pipeline.sh  # another binary (A/B)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
use_megatron_binary
OUT=${OUT:-runs/bench_pipeline}
ALL="1f1b 1f1b-balanced interleaved-v2 interleaved-v2-balanced zb-h1 zb-h1-balanced"
ALL+=" 1f1b-sublayer interleaved-v2-sublayer zb-h1-sublayer"
LAYOUTS=${LAYOUTS:-$ALL}
STEPS=${STEPS:-1}
THREADS=${THREADS:-$(nproc)}
mkdir -p "$OUT"
PP="--config configs/gpt2-124m.json --micro-batch-size 2 --global-batch-size 16 --hidden-dropout 0 --attention-dropout 0 --steps $STEPS"

echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "== gpt2-124m, micro-batch 2, global batch 16 (m = 8), seq 1024, fp32"
echo "-- p = 1 ($THREADS threads)"
"$BIN" benchmark $PP --num-threads "$THREADS" --json "$OUT/p1.json" | grep -E "^step"
run() {
    local name=$1; shift
    [[ " $LAYOUTS " == *" $name "* ]] || return 0
    echo "-- p = 2, $name (2 ranks × 1 thread)"
    OPENBLAS_NUM_THREADS=1 mpirun -np 2 "$BIN" benchmark $PP --num-threads 1 --pipeline-model-parallel-size 2 "$@" \
        --json "$OUT/$name.json" | grep -E "^step|^pipeline"
}
run 1f1b
run 1f1b-balanced --pipeline-auto-balance true
run interleaved-v2 --num-layers-per-virtual-pipeline-stage 3
run interleaved-v2-balanced --num-layers-per-virtual-pipeline-stage 3 --pipeline-auto-balance true
run zb-h1 --pipeline-schedule zb-h1
run zb-h1-balanced --pipeline-schedule zb-h1 --pipeline-auto-balance true
SUB="--pipeline-auto-balance true --pipeline-balance-unit sublayer"
run 1f1b-sublayer $SUB
run interleaved-v2-sublayer --num-layers-per-virtual-pipeline-stage 3 $SUB
run zb-h1-sublayer --pipeline-schedule zb-h1 $SUB
echo
python3 - "$OUT" "$LAYOUTS" <<'PY'
import json, sys, os
out, layouts = sys.argv[1], sys.argv[2].split()
base = json.load(open(os.path.join(out, "p1.json")))["tokens_per_s"]
print(f"{'layout':<24} {'tokens/s':>9} {'vs p=1':>7} {'layers':>9} {'bubble':>7} {'theory':>7}  by stage")
print(f"{'p=1':<24} {base:9.1f} {1:7.2f}")
for name in layouts:
    r = json.load(open(os.path.join(out, name + ".json")))
    stages = ", ".join(f"{b:.3f}" for b in r.get("bubble_by_stage", []))
    layers = "+".join(f"{x:g}" for x in r.get("stage_layers", []))
    print(f"{name:<24} {r['tokens_per_s']:9.1f} {r['tokens_per_s'] / base:7.2f} {layers:>9} {r['bubble_measured']:7.3f} {r['bubble_theory']:7.3f}  {stages}")
PY
