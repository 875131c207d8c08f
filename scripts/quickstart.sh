#!/usr/bin/env bash
# scripts/quickstart.sh — from a fresh Debian 12 machine to a trained, checkpointed and evaluated GPT:
# installs the system packages, builds, trains configs/gpt2-tiny.json on the built-in corpus (the
# license texts of /usr/share/common-licenses, byte-level) under `mpirun -np 8` on the full PTD-P
# grid — tensor 2 × pipeline 2 (interleaved, 2 chunks per stage) × data 2 — saves HDF5 checkpoints,
# evaluates the saved checkpoint's validation loss on a single rank (checkpoints load on any grid),
# and says what to try next.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
echo "==> building megatron (release)"
swift build -c release 2>&1 | grep -E "error|Compiling megatron|Build complete" || true
BIN=.build/release/megatron
RUN=runs/quickstart
rm -rf "$RUN"; mkdir -p "$RUN"

echo "==> training gpt2-tiny (4 layers, hidden 64) for 300 iterations under mpirun -np 8:"
echo "    tensor parallel 2 × pipeline parallel 2 (interleaved 1F1B, 2 chunks per stage) × data parallel 2;"
echo "    watch the lm loss fall"
OPENBLAS_NUM_THREADS=1 mpirun -np 8 "$BIN" train --config configs/gpt2-tiny.json --train-iters 300 \
    --micro-batch-size 4 --tensor-model-parallel-size 2 --pipeline-model-parallel-size 2 \
    --num-layers-per-virtual-pipeline-stage 1 --num-threads 1 --log-interval 25 --eval-interval 100 \
    --save "$RUN/ckpt" --save-interval 100 --metrics-file "$RUN/metrics.jsonl" 2>&1 \
    | sed -E 's/ \| number of skipped iterations.*(\| pipeline bubble)/ \1/'

echo "==> evaluating the saved checkpoint on ONE rank (it was written by 8: checkpoints load on any grid)"
"$BIN" train --config configs/gpt2-tiny.json --load "$RUN/ckpt" --skip-train

echo
echo "Done. The checkpoint is $RUN/ckpt/iter_0000300/ (one HDF5 file per tensor × pipeline rank;"
echo "h5dump -H shows the layout); per-iteration metrics are in $RUN/metrics.jsonl."
echo "Try next:"
echo "  $BIN train --config configs/gpt2-tiny.json --train-iters 600 --load $RUN/ckpt --save $RUN/ckpt \\"
echo "      --override-opt-param-scheduler                                                   # train on, on one rank"
echo "  $BIN schedule --pipeline-model-parallel-size 4 --num-virtual-stages-per-pipeline-rank 2 --num-microbatches 8"
echo "  $BIN train --help                                                                       # every config key"
echo "  scripts/bench.sh                                                                         # speed vs the BLAS"
