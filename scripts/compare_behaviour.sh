#!/usr/bin/env bash
# scripts/compare_behaviour.sh — shows that a change of structure moves no number: builds a base
# revision (default: HEAD) in a scratch worktree and the working tree here, runs the same training
# scenarios with both binaries and requires their metrics files (timings and memory readings left
# out) and validation lines to be bitwise identical.
#   scripts/compare_behaviour.sh [BASE_REV]        e.g. scripts/compare_behaviour.sh f86f25a
# Scenarios (gpt2-tiny, dropout 0, 40 iterations, validation at 20 and 40): one rank; (t,p,d) =
# (2,2,2) with v = 2, micro-batch 4 and the distributed optimizer; bf16 on one rank; fp16 at (2,1,2).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
base_rev=${1:-HEAD}
work=$(mktemp -d /tmp/megatron-compare.XXXXXX)
trap 'remove_base_revision "$work"' EXIT

echo "==> building base $(git rev-parse --short "$base_rev") and the working tree (release)"
build_base_revision "$base_rev" "$work"
swift build -c release --product megatron >/dev/null
base_bin="$work/base/.build/release/megatron"
new_bin="$PWD/.build/release/megatron"
export OPENBLAS_NUM_THREADS=1

common=(train --config "$PWD/configs/gpt2-tiny.json" --train-iters 40 --eval-interval 20 --num-threads 1)
scenarios=(
    "one-rank|1|"
    "grid-2x2x2-v2-distopt|8|--tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 --num-layers-per-virtual-pipeline-stage 1 --use-distributed-optimizer --micro-batch-size 4"
    "bf16|1|--bf16"
    "fp16-t2-d2|4|--fp16 --tensor-model-parallel-size 2"
)
# Fields that are measurements of this run, not results of the computation.
strip='import json,sys
drop={"step_ms","tokens_per_s","tflops","peak_rss_mb","pipeline_idle_fraction","pipeline_bubble","pipeline_bubble_theory"}
for line in open(sys.argv[1]):
    d=json.loads(line)
    print(json.dumps({k:v for k,v in d.items() if k not in drop and not k.startswith("comm_s_")}, sort_keys=True))'

status=0
for s in "${scenarios[@]}"; do
    IFS='|' read -r name ranks extra <<<"$s"
    for which in base new; do
        bin=$base_bin; [ "$which" = new ] && bin=$new_bin
        dir="$work/$which-$name"; mkdir -p "$dir"
        # shellcheck disable=SC2086
        (cd "$dir" && if [ "$ranks" = 1 ]; then "$bin" "${common[@]}" $extra --metrics-file m.jsonl
                      else mpirun -np "$ranks" "$bin" "${common[@]}" $extra --metrics-file m.jsonl; fi) >"$dir/out.txt" 2>&1 \
            || { echo "FAIL $name ($which): exit $?"; tail -5 "$dir/out.txt"; status=1; continue; }
        python3 -c "$strip" "$dir/m.jsonl" >"$dir/results.txt"
        grep 'validation loss' "$dir/out.txt" >>"$dir/results.txt" || true
    done
    lines=$(wc -l <"$work/new-$name/results.txt")
    if cmp -s "$work/base-$name/results.txt" "$work/new-$name/results.txt" && [ "$lines" -ge 42 ]; then
        echo "same   $name ($lines lines)"
    else
        echo "DIFFER $name"; { diff "$work/base-$name/results.txt" "$work/new-$name/results.txt" || true; } | head -6
        python3 - "$work/base-$name/m.jsonl" "$work/new-$name/m.jsonl" <<'PY' || true
import json, sys
a, b = ([json.loads(l)["lm_loss"] for l in open(p)] for p in sys.argv[1:3])
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b)) if a and len(a) == len(b) else float("nan")
print(f"       lm_loss over {len(a)} iterations: largest relative difference {worst:.2e}")
PY
        status=1
    fi
done
exit $status
