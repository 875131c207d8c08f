#!/usr/bin/env bash
# scripts/quickstart.sh — from a fresh Debian 12 machine to a trained, checkpointed and evaluated GPT:
# installs the system packages, builds, trains configs/gpt2-tiny.json on the built-in corpus (the
# license texts of /usr/share/common-licenses, byte-level), saves HDF5 checkpoints, evaluates the
# saved checkpoint's validation loss and says what to try next.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
echo "==> building megatron (release)"
swift build -c release 2>&1 | grep -E "error|warning: unre|Compiling megatron|Build complete" || true
BIN=.build/release/megatron
RUN=runs/quickstart
rm -rf "$RUN"; mkdir -p "$RUN"

echo "==> training gpt2-tiny (4 layers, hidden 64) for 300 iterations; watch the lm loss fall"
"$BIN" train --config configs/gpt2-tiny.json --train-iters 300 --log-interval 25 --eval-interval 100 \
    --save "$RUN/ckpt" --save-interval 100 --metrics-file "$RUN/metrics.jsonl"

echo "==> evaluating the saved checkpoint on the validation split"
"$BIN" train --config configs/gpt2-tiny.json --load "$RUN/ckpt" --skip-train

echo
echo "Done. The checkpoint is $RUN/ckpt/iter_0000300/mp_rank_00_000.h5 (h5dump -H shows its layout);"
echo "per-iteration metrics are in $RUN/metrics.jsonl."
echo "Try next:"
echo "  $BIN train --config configs/gpt2-tiny.json --train-iters 600 --load $RUN/ckpt --save $RUN/ckpt   # resume and continue"
echo "  $BIN train --config configs/gpt2-tiny.json --hidden-dropout 0.1 --lr 3e-3                        # override any key"
echo "  $BIN train --help                                                                       # every config key"
echo "  scripts/bench.sh                                                                         # speed vs the BLAS"
