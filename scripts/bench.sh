#!/usr/bin/env bash
# scripts/bench.sh — training speed measured in one run against references measured in the same
# run: OpenBLAS's SGEMM rate on the model's own GEMM shapes (inside `megatron benchmark`), a tensor-
# parallel t = 2 run on the same cores (time, communication share, bytes against the analytic
# count), pipeline runs p = 2 with v = 1 and 2 beside p = 1 (bubble against theory, bytes between
# stages with scatter/gather on and off), bf16 training beside fp32 (the bf16 GEMM kernel's rate
# beside SGEMM's on the model's shapes is in the first run), and, when torch is installed, PyTorch
# eager and torch.compile, each in fp32 and CPU bf16 autocast, on the same model shape and threads.
#   scripts/bench.sh            # gpt2-124m (micro-batch 4, seq 1024), gpt2-tiny, then scripts/bench_bert.sh
#   STEPS=5 scripts/bench.sh
# Dropout is 0 in the measured steps (both sides), so the numbers are the model's arithmetic.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
swift build -c release 2>&1 | grep -E "error|Build complete" || true
BIN=.build/release/megatron
OUT=runs/bench
STEPS=${STEPS:-3}
THREADS=${THREADS:-$(nproc)}
mkdir -p "$OUT"

echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; environment OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}"
echo
echo "== gpt2-124m, micro-batch 4, seq 1024, blas_coretype auto (the default)"
"$BIN" benchmark --config configs/gpt2-124m.json --global-batch-size 4 --hidden-dropout 0 --attention-dropout 0 \
    --num-threads "$THREADS" --steps "$STEPS" --json "$OUT/gpt2-124m.json"
echo
echo "== gpt2-124m in bf16 (bf16: true), beside fp32 above"
"$BIN" benchmark --config configs/gpt2-124m.json --global-batch-size 4 --hidden-dropout 0 --attention-dropout 0 \
    --num-threads "$THREADS" --steps "$STEPS" --bf16 --json "$OUT/gpt2-124m-bf16.json" | grep -E "^step"
echo
echo "== gpt2-124m with OPENBLAS_CORETYPE=Haswell kept (blas_coretype env), one step, for comparison"
OPENBLAS_CORETYPE=Haswell "$BIN" benchmark --config configs/gpt2-124m.json --global-batch-size 4 --hidden-dropout 0 \
    --attention-dropout 0 --num-threads "$THREADS" --blas-coretype env --steps 1 --json "$OUT/gpt2-124m-haswell.json" \
    | grep -E "^benchmark|SGEMM rate|^step"
echo
echo "== gpt2-124m, tensor parallel t = 2 on the same cores (2 ranks × 1 thread), beside t = 1 above"
OPENBLAS_NUM_THREADS=1 mpirun -np 2 "$BIN" benchmark --config configs/gpt2-124m.json --global-batch-size 4 --hidden-dropout 0 \
    --attention-dropout 0 --tensor-model-parallel-size 2 --num-threads 1 --steps "$STEPS" --json "$OUT/gpt2-124m-t2.json" \
    | grep -E "^benchmark|^step|communication"
echo
echo "== gpt2-tiny, t = 2 (2 ranks × 1 thread)"
OPENBLAS_NUM_THREADS=1 mpirun -np 2 "$BIN" benchmark --config configs/gpt2-tiny.json --tensor-model-parallel-size 2 \
    --num-threads 1 --steps 20 --json "$OUT/gpt2-tiny-t2.json" | grep -E "^benchmark|^step|communication"
echo
echo "== pipeline: gpt2-124m, micro-batch 2, global batch 8 (m = 4), p = 1 (2 threads) beside p = 2 with v = 1 and v = 2 (2 ranks × 1 thread)"
PP="--config configs/gpt2-124m.json --micro-batch-size 2 --global-batch-size 8 --hidden-dropout 0 --attention-dropout 0 --steps 1"
"$BIN" benchmark $PP --num-threads "$THREADS" --json "$OUT/pp1.json" | grep -E "^step"
OPENBLAS_NUM_THREADS=1 mpirun -np 2 "$BIN" benchmark $PP --num-threads 1 --pipeline-model-parallel-size 2 --json "$OUT/pp2v1.json" \
    | grep -E "^step|^pipeline"
OPENBLAS_NUM_THREADS=1 mpirun -np 2 "$BIN" benchmark $PP --num-threads 1 --pipeline-model-parallel-size 2 \
    --num-layers-per-virtual-pipeline-stage 3 --json "$OUT/pp2v2.json" | grep -E "^step|^pipeline"
echo
echo "== bytes between stages, scatter/gather on and off: gpt2-tiny (8 layers), t = 2 × p = 2 (4 ranks)"
for sg in true false; do
    OPENBLAS_NUM_THREADS=1 mpirun -np 4 "$BIN" benchmark --config configs/gpt2-tiny.json --num-layers 8 --tensor-model-parallel-size 2 \
        --pipeline-model-parallel-size 2 --scatter-gather-tensors-in-pipeline $sg --num-threads 1 --steps 10 | grep -E "^pipeline"
done
echo
echo "== data parallelism, weak scaling: gpt2-124m, micro-batch 2 per rank; d = 1 (1 thread) beside d = 2 (2 ranks × 1 thread)"
DP="--config configs/gpt2-124m.json --micro-batch-size 2 --hidden-dropout 0 --attention-dropout 0 --steps 1 --num-threads 1 --ddp-bucket-size 10000000"
"$BIN" benchmark $DP --global-batch-size 2 --json "$OUT/dp1.json" | grep -E "^step"
OPENBLAS_NUM_THREADS=1 mpirun -np 2 "$BIN" benchmark $DP --global-batch-size 4 --json "$OUT/dp2.json" | grep -E "^step|^data-parallel"
python3 -c "import json; a=json.load(open('$OUT/dp1.json')); b=json.load(open('$OUT/dp2.json')); print(f'weak-scaling efficiency d = 2: {b[\"tokens_per_s\"] / (2 * a[\"tokens_per_s\"]):.2f}')"
echo
echo "== gpt2-tiny (4 layers, hidden 64, seq 64, global batch 16)"
"$BIN" benchmark --config configs/gpt2-tiny.json --num-threads "$THREADS" --steps 20 --json "$OUT/gpt2-tiny.json" \
    | grep -E "^benchmark|SGEMM rate|^step"
echo
echo
if python3 -c "import torch" 2>/dev/null; then
    echo "== PyTorch eager and torch.compile, fp32 and bf16 autocast, on the gpt2-124m shape, $THREADS threads"
    torch_allocator_note
    torch_python scripts/bench_torch.py --threads "$THREADS" --steps "$STEPS" --json "$OUT/torch-124m.json"
    torch_python scripts/bench_torch.py --threads "$THREADS" --steps "$STEPS" --bf16 --json "$OUT/torch-124m-bf16.json"
    rm -f "$OUT/torch-124m-compiled.json" "$OUT/torch-124m-bf16-compiled.json"
    torch_python scripts/bench_torch.py --threads "$THREADS" --steps "$STEPS" --compile --json "$OUT/torch-124m-compiled.json" \
        2>/dev/null || echo "(torch.compile failed: no compiled row)"
    torch_python scripts/bench_torch.py --threads "$THREADS" --steps "$STEPS" --bf16 --compile \
        --json "$OUT/torch-124m-bf16-compiled.json" 2>/dev/null || echo "(torch.compile failed: no compiled bf16 row)"
    python3 - "$OUT" <<'PY'
import json, sys
d = sys.argv[1]
ours, torch_, hw, t2 = (json.load(open(f"{d}/{n}.json")) for n in ("gpt2-124m", "torch-124m", "gpt2-124m-haswell", "gpt2-124m-t2"))
bf16, torch_bf16 = (json.load(open(f"{d}/{n}.json")) for n in ("gpt2-124m-bf16", "torch-124m-bf16"))
print(f"\nbf16 (gpt2-124m, mb 4, seq 1024): bf16 GEMM ({ours['bf16_kernel']}) {ours['bf16_gemm_gflops']:.0f} GFLOP/s = "
      f"{ours['bf16_over_sgemm']:.2f}x SGEMM on the model's shapes; training {bf16['tokens_per_s']:.1f} tokens/s = "
      f"{bf16['tokens_per_s'] / ours['tokens_per_s']:.2f}x our fp32 and {bf16['tokens_per_s'] / torch_bf16['tokens_per_s']:.2f}x "
      f"PyTorch bf16 autocast ({torch_bf16['tokens_per_s']:.1f} tokens/s)")
if "peak_rss_mib" in bf16 and "peak_rss_mib" in torch_bf16:
    print(f"peak RSS in bf16: megatron's training steps {bf16['peak_rss_mib']:.0f} MiB, the PyTorch process "
          f"{torch_bf16['peak_rss_mib']:.0f} MiB ({bf16['peak_rss_mib'] / torch_bf16['peak_rss_mib']:.2f}x; "
          f"scripts/bench_precision.sh compares whole training processes)")
for name, label, mine in (("torch-124m-compiled", "fp32", ours), ("torch-124m-bf16-compiled", "bf16 autocast", bf16)):
    try:
        compiled = json.load(open(f"{d}/{name}.json"))
    except OSError:
        continue
    print(f"torch.compile {label}: {compiled['tokens_per_s']:.1f} tokens/s; megatron = "
          f"{mine['tokens_per_s'] / compiled['tokens_per_s']:.2f}x")
print(f"\nsummary (gpt2-124m, mb 4, seq 1024): megatron {ours['tokens_per_s']:.1f} tokens/s = {ours['ratio_to_sgemm']:.2f} of the "
      f"SGEMM rate ({ours['sgemm_gflops']:.0f} GFLOP/s on the model's shapes); {ours['tokens_per_s'] / torch_['tokens_per_s']:.2f}x "
      f"PyTorch eager ({torch_['tokens_per_s']:.1f} tokens/s); with the Haswell preset kept: {hw['tokens_per_s']:.1f} tokens/s; "
      f"t = 2: {t2['step_ms']:.0f} ms/iteration vs {ours['step_ms']:.0f} at t = 1, {100 * t2['comm_fraction']:.1f}% in communication, "
      f"{t2['comm_bytes_tp'] / 1e6:.1f} MB/iteration (analytic {t2['analytic_bytes_all'] / 1e6:.1f} MB; layers alone {t2['analytic_bytes_layers'] / 1e6:.1f} MB)")
PY
else
    python3 - "$OUT" <<'PY'
import json, sys
d = sys.argv[1]
ours, bf16 = (json.load(open(f"{d}/{n}.json")) for n in ("gpt2-124m", "gpt2-124m-bf16"))
print(f"bf16 (gpt2-124m): bf16 GEMM {ours['bf16_over_sgemm']:.2f}x SGEMM; training {bf16['tokens_per_s']:.1f} tokens/s = "
      f"{bf16['tokens_per_s'] / ours['tokens_per_s']:.2f}x fp32")
PY
    echo "(torch is not installed: pip install torch to add the PyTorch eager references)"
fi
echo
STEPS=$STEPS THREADS=$THREADS scripts/bench_bert.sh
