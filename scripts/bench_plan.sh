#!/usr/bin/env bash
# scripts/bench_plan.sh — the planner's predictions against real runs on this machine, in one run:
# calibrates (megatron plan --calibrate, unless runs/plan/profile.json exists and FRESH is unset),
# then for 14 layouts (with bf16 ones where the CPU has a bf16 kernel, and the plan's own first three
# choices at each world size) of configs/gpt-50m.json (51M parameters, seq 512, global batch 8) over 1, 2, 4
# and 8 ranks — varying t, p, v, d, micro-batch size, recomputation, the distributed optimizer and the
# schedule — prints the predicted step time and peak memory (megatron plan --explain) beside the
# measured ones (megatron train: median step time of iterations 2–4 from the metrics file; peak RSS of
# the fullest rank from GNU time), their ratios, and where the plan's first choice among these
# layouts stands against the fastest measured one.
#   scripts/bench_plan.sh            # ~30–40 minutes on 2 cores
#   FRESH=1 scripts/bench_plan.sh    # recalibrate first
#   REUSE=1 scripts/bench_plan.sh    # predict again, but keep the training runs already measured for a
#                                    # layout (only valid while the trainer itself is unchanged)
#   CONFIG=configs/bert-26m.json scripts/bench_plan.sh   # the same layouts of a BERT (8 layers, hidden
#                                    # 512, seq 512, the built-in corpus as bytes), with its own profile
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
swift build -c release 2>&1 | grep -E "error|Build complete" || true
BIN=.build/release/megatron
CONFIG=${CONFIG:-configs/gpt-50m.json}
GBS=${GBS:-8}
# The GPT's profile and outputs keep their first names; another config gets its own.
name=$(basename "$CONFIG" .json)
if [ "$name" = gpt-50m ]; then OUT=runs/bench_plan; PROFILE=runs/plan/profile.json
else OUT=runs/bench_plan-$name; PROFILE=runs/plan/profile-$name.json; fi
mkdir -p "$OUT"
[ -n "${REUSE:-}" ] || rm -f "$OUT"/*.jsonl "$OUT"/*.rss "$OUT"/*.log
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $CONFIG, global batch $GBS"
if [ -n "${FRESH:-}" ] || [ ! -f "$PROFILE" ]; then
    "$BIN" plan --calibrate --config "$CONFIG" --global-batch-size "$GBS" --profile "$PROFILE"
fi
LAYOUTS=(
    "1 t=1,p=1,mbs=4"
    "1 t=1,p=1,mbs=2,recompute=full"
    "2 t=1,p=1,d=2,mbs=4"
    "2 t=1,p=1,d=2,mbs=2,dist-opt=1"
    "2 t=2,p=1,mbs=4"
    "2 t=1,p=2,mbs=2"
    "2 t=1,p=2,v=2,mbs=1"
    "2 t=1,p=2,mbs=2,schedule=zb-h1"
    "4 t=2,p=1,d=2,mbs=4"
    "4 t=2,p=2,mbs=2"
    "4 t=1,p=4,mbs=1"
    "4 t=1,p=1,d=4,mbs=2,dist-opt=1"
    "8 t=2,p=2,d=2,mbs=2"
    "8 t=4,p=2,mbs=2"
)
# On a CPU with a bf16 kernel (the profile holds bf16 GEMM rates), bf16 layouts beside the plan's own choices.
if python3 -c "import json,sys; sys.exit(0 if any(g['bf16'] for g in json.load(open(sys.argv[1]))['gemm']) else 1)" \
    "$PROFILE"; then
    LAYOUTS+=(
        "1 t=1,p=1,mbs=4,precision=bf16"
        "2 t=2,p=1,mbs=4,precision=bf16"
        "2 t=1,p=2,mbs=2,precision=bf16,schedule=zb-h1"
        "4 t=1,p=1,d=4,mbs=2,precision=bf16"
        "4 t=2,p=2,mbs=2,precision=bf16"
        "8 t=2,p=2,d=2,mbs=2,precision=bf16"
    )
fi
# The plan's own first three choices at each world size join the list (if they are not there already).
for np in 1 2 4 8; do
    "$BIN" plan --config "$CONFIG" --profile "$PROFILE" --world-size "$np" --global-batch-size "$GBS" --top 3 \
        --json "$OUT/plan$np.jsonl" \
        > "$OUT/plan$np.log"
    mapfile -t choices < <(python3 -c "import json,sys; print('\\n'.join([json.loads(l)['layout'] for l in open(sys.argv[1]) if json.loads(l)['fits']][:3]))" \
        "$OUT/plan$np.jsonl")
    echo "plan's first choices at world $np: ${choices[*]}"
    known=()
    for entry in "${LAYOUTS[@]}"; do
        l=${entry#* }; [ "$np" = "${entry%% *}" ] || continue
        known+=("$("$BIN" plan --config "$CONFIG" --profile "$PROFILE" --world-size "$np" --global-batch-size "$GBS" \
            --explain "$l" | sed -n 2p)")
    done
    for choice in "${choices[@]}"; do
        [[ " ${known[*]} " == *" $choice "* ]] || LAYOUTS+=("$np $choice")
    done
done
i=0
for entry in "${LAYOUTS[@]}"; do
    np=${entry%% *}; layout=${entry#* }
    i=$((i + 1))
    "$BIN" plan --config "$CONFIG" --profile "$PROFILE" --world-size "$np" --global-batch-size "$GBS" \
        --explain "$layout" --json "$OUT/pred$i.jsonl" > "$OUT/pred$i.log"
    full=$(sed -n 2p "$OUT/pred$i.log")
    key=$(echo "$full" | tr ',=' '_-')
    echo "$key" > "$OUT/key$i"
    cmd=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['command'])" "$OUT/pred$i.jsonl")
    if [ -n "${REUSE:-}" ] && [ -s "$OUT/measured-$key.jsonl" ]; then
        echo "-- [$i] np=$np $layout (measured before)"
        continue
    fi
    # The planner's own command line, with the run's length and outputs added.
    args=${cmd#*megatron train }
    rm -f "$OUT/measured-$key.rss" "$OUT/measured-$key.jsonl"
    run=(/usr/bin/time -f "%M" -a -o "$OUT/measured-$key.rss" "$BIN" train $args --train-iters 4 --log-interval 1
        --eval-iters 0 --metrics-file "$OUT/measured-$key.jsonl")
    echo "-- [$i] np=$np $layout"
    if [ "$np" -gt 1 ]; then
        OPENBLAS_NUM_THREADS=1 mpirun -np "$np" "${run[@]}" > "$OUT/measured-$key.log" 2>&1
    else
        "${run[@]}" > "$OUT/measured-$key.log" 2>&1
    fi
done
python3 - "$OUT" "${#LAYOUTS[@]}" <<'PY'
import json, sys
out, n = sys.argv[1], int(sys.argv[2])
rows = []
for i in range(1, n + 1):
    pred = json.loads(open(f"{out}/pred{i}.jsonl").readline())
    key = open(f"{out}/key{i}").read().strip()
    its = [json.loads(l) for l in open(f"{out}/measured-{key}.jsonl") if l.strip()]
    steps = sorted(r["step_ms"] / 1000 for r in its if r["iteration"] >= 2)
    rss = max(int(x) for x in open(f"{out}/measured-{key}.rss").read().split() if x.strip().isdigit()) * 1024
    rows.append((pred, steps[len(steps) // 2], rss))
print(f"{'layout':<72} {'np':>2} | {'pred s':>7} {'meas s':>7} {'ratio':>5} | {'pred MiB':>8} {'meas MiB':>8} {'ratio':>5}")
tw = mw = 0
for pred, step, rss in rows:
    np_ = pred["t"] * pred["p"] * pred["d"]
    rt, rm = pred["step_seconds"] / step, pred["memory_bytes"] / rss
    tw += abs(rt - 1) <= 0.2; mw += abs(rm - 1) <= 0.1
    print(f"{pred['layout']:<72} {np_:>2} | {pred['step_seconds']:7.2f} {step:7.2f} {rt:5.2f} | "
          f"{pred['memory_bytes'] / 2**20:8.0f} {rss / 2**20:8.0f} {rm:5.2f}")
print(f"step time within 20%: {tw} of {len(rows)}; peak memory within 10%: {mw} of {len(rows)}")
for world in sorted({p['t'] * p['p'] * p['d'] for p, _, _ in rows}):
    group = [(p, s) for p, s, _ in rows if p['t'] * p['p'] * p['d'] == world]
    first = next(json.loads(l)['layout'] for l in open(f"{out}/plan{world}.jsonl") if json.loads(l)['fits'])
    chosen = next(x for x in group if x[0]['layout'] == first)
    fastest = min(group, key=lambda x: x[1])
    print(f"world {world}: plan's first choice {first} measured {chosen[1]:.2f} s; fastest measured "
          f"{fastest[0]['layout']} {fastest[1]:.2f} s; ratio {chosen[1] / fastest[1]:.2f}")
PY
