#!/usr/bin/env bash
# scripts/bench_gemm_versus.sh — the bf16 GEMM's AMX row kernel (Sources/CBF16/bf16amx.c) of the
# working tree against REV's, alternated in one process on the gpt2-124m shapes (micro-batch 4:
# m = 4,096 tokens) by scripts/lib/gemm_versus.c: for kernel changes too small for whole-benchmark
# runs to resolve on a machine whose speed drifts. Both builds link the working tree's packing and
# peak code (bf16gemm.c); each compiles its own bf16amx.c with its entry point renamed. Needs AMX.
#   scripts/bench_gemm_versus.sh [REV]      (default HEAD; THREADS=$(nproc) ROUNDS=30)
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev=${1:-HEAD}
THREADS=${THREADS:-$(nproc)}; ROUNDS=${ROUNDS:-30}
grep -q amx_bf16 /proc/cpuinfo || { echo "this CPU has no AMX: nothing to compare" >&2; exit 1; }
work=$(mktemp -d /tmp/gemm-versus.XXXXXX)
trap 'rm -rf "$work"' EXIT
git show "$base_rev:Sources/CBF16/bf16amx.c" >"$work/base.c"
inc=(-ISources/CBF16/include -ISources/CBF16)
rename() { echo "-Dbf16_rows_amx=$1 -Dbf16_amx_available=$1_available -Dbf16_pack_b_f32_vector=$1_pack_b -Dbf16_peak_amx_gflops=$1_peak"; }
# shellcheck disable=SC2046
cc -O3 "${inc[@]}" $(rename rows_base) -c "$work/base.c" -o "$work/base.o"
# shellcheck disable=SC2046
cc -O3 "${inc[@]}" $(rename rows_new) -c Sources/CBF16/bf16amx.c -o "$work/new.o"
cc -O3 "${inc[@]}" -pthread scripts/lib/gemm_versus.c "$work/base.o" "$work/new.o" Sources/CBF16/bf16amx.c \
    Sources/CBF16/bf16gemm.c -o "$work/gemm_versus" -lm
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; base $(git rev-parse --short "$base_rev"), new: the working tree; $THREADS threads, $ROUNDS alternated rounds"
# qkv, proj, fc1, fc2 forward (nt), their input gradients (nn) and weight gradients (tn).
"$work/gemm_versus" "$THREADS" "$ROUNDS" \
    4096 2304 768 nt 4096 768 768 nt 4096 3072 768 nt 4096 768 3072 nt \
    4096 768 2304 nn 4096 3072 768 nn \
    2304 768 4096 tn 3072 768 4096 tn 768 3072 4096 tn
