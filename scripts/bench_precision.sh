#!/usr/bin/env bash
# scripts/bench_precision.sh — the mixed-precision goals measured in one run: gpt2-124m training
# (micro-batch 4, seq 1024, dropout 0, THREADS threads) in fp32 and bf16 with `megatron benchmark`
# (STEPS timed steps after a warm-up; its line also gives the SGEMM and bf16 GEMM rates on the
# model's shapes) beside PyTorch eager fp32 and CPU bf16 autocast (scripts/bench_torch.py), over ROUNDS
# rounds that alternate the four; then each one's peak resident memory as a whole training process
# (GNU time around `megatron train --mock-data` for 2 iterations, and bench_torch.py's getrusage).
# COMPILED=1 adds torch.compile (TorchInductor) fp32 and bf16 to each round: the strongest PyTorch a
# user would run, compiled in bench_torch.py's untimed warm-up step (a few minutes each).
#   scripts/bench_precision.sh
#   ROUNDS=3 STEPS=2 scripts/bench_precision.sh
#   COMPILED=1 ROUNDS=1 scripts/bench_precision.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
python3 -c "import torch" 2>/dev/null || { echo "error: torch is not installed (pip install torch)" >&2; exit 1; }
torch_allocator_note
if [ ! -x /usr/bin/time ]; then  # GNU time measures a whole process's peak RSS
    [ "$(id -u)" -eq 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null \
        || { echo "error: GNU time is missing: apt-get install time" >&2; exit 1; }
fi
swift build -c release --product megatron 2>&1 | grep -E "error|Build complete" || true
BIN=.build/release/megatron
OUT=runs/bench-precision
STEPS=${STEPS:-2} ROUNDS=${ROUNDS:-2} THREADS=${THREADS:-$(nproc)} COMPILED=${COMPILED:-0}
mkdir -p "$OUT"
MODEL="--config configs/gpt2-124m.json --global-batch-size 4 --micro-batch-size 4 --hidden-dropout 0 --attention-dropout 0 --num-threads $THREADS"
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $STEPS steps, $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
    "$BIN" benchmark $MODEL --steps "$STEPS" --json "$OUT/ours-fp32-$round.json" | grep -E "^step"
    "$BIN" benchmark $MODEL --steps "$STEPS" --bf16 --json "$OUT/ours-bf16-$round.json" | grep -E "^step"
    torch_python scripts/bench_torch.py --threads "$THREADS" --steps "$STEPS" --json "$OUT/torch-fp32-$round.json"
    torch_python scripts/bench_torch.py --threads "$THREADS" --steps "$STEPS" --bf16 --json "$OUT/torch-bf16-$round.json"
    if [ "$COMPILED" = 1 ]; then
        torch_python scripts/bench_torch.py --threads "$THREADS" --steps "$STEPS" --compile --json "$OUT/compiled-fp32-$round.json"
        torch_python scripts/bench_torch.py --threads "$THREADS" --steps "$STEPS" --bf16 --compile \
            --json "$OUT/compiled-bf16-$round.json"
    fi
done
for precision in fp32 bf16; do
    flag=$([ "$precision" = bf16 ] && echo --bf16 || true)
    /usr/bin/time -f "%M" -o "$OUT/ours-$precision-rss.txt" "$BIN" train $MODEL --mock-data --train-iters 2 \
        --eval-iters 0 $flag >/dev/null
done
python3 - "$OUT" "$ROUNDS" "$COMPILED" <<'PY'
import json, sys
d, rounds, compiled = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
load = lambda name: json.load(open(f"{d}/{name}.json"))
print("\n| round | ours fp32 | ours bf16 | PyTorch fp32 | PyTorch bf16 | bf16 / our fp32 | bf16 / PyTorch bf16 | fp32 / SGEMM rate |")
print("|---|---|---|---|---|---|---|---|")
for r in range(1, rounds + 1):
    o32, o16, t32, t16 = (load(f"{k}-{r}") for k in ("ours-fp32", "ours-bf16", "torch-fp32", "torch-bf16"))
    print(f"| {r} | {o32['tokens_per_s']:.1f} | {o16['tokens_per_s']:.1f} | {t32['tokens_per_s']:.1f} | "
          f"{t16['tokens_per_s']:.1f} | {o16['tokens_per_s'] / o32['tokens_per_s']:.2f} | "
          f"{o16['tokens_per_s'] / t16['tokens_per_s']:.2f} | {o32['ratio_to_sgemm']:.2f} |")
if compiled:
    print("\n| round | PyTorch compiled fp32 | PyTorch compiled bf16 | our fp32 / compiled fp32 | our bf16 / compiled bf16 |")
    print("|---|---|---|---|---|")
    for r in range(1, rounds + 1):
        o32, o16, c32, c16 = (load(f"{k}-{r}") for k in ("ours-fp32", "ours-bf16", "compiled-fp32", "compiled-bf16"))
        print(f"| {r} | {c32['tokens_per_s']:.1f} | {c16['tokens_per_s']:.1f} | "
              f"{o32['tokens_per_s'] / c32['tokens_per_s']:.2f} | {o16['tokens_per_s'] / c16['tokens_per_s']:.2f} |")
o16 = load("ours-bf16-1")
print(f"\nbf16 GEMM ({o16['bf16_kernel']}) {o16['bf16_gemm_gflops']:.0f} GFLOP/s on the model's shapes = "
      f"{o16['bf16_over_sgemm']:.2f}x SGEMM ({o16['sgemm_gflops']:.0f}); the kernel's peak on all threads at once "
      f"{o16['bf16_kernel_peak_gflops_all_threads']:.0f} GFLOP/s")
for p in ("fp32", "bf16"):
    ours = int(open(f"{d}/ours-{p}-rss.txt").read().split()[-1]) / 1024
    torch_ = load(f"torch-{p}-1")["peak_rss_mib"]
    print(f"peak RSS {p}: megatron train {ours:.0f} MiB, PyTorch {torch_:.0f} MiB: {ours / torch_:.2f}x")
for p in ("fp32", "bf16"):  # pages mapped in afresh during the timed steps (round 1)
    print(f"page faults per step {p}: megatron {load(f'ours-{p}-1')['page_faults_per_step']:.0f}, "
          f"PyTorch {load(f'torch-{p}-1')['page_faults_per_step']:.0f}")
PY
