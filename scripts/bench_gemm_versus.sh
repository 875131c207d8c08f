#!/usr/bin/env bash
# scripts/bench_gemm_versus.sh — the bf16 GEMM's row kernel of the working tree against REV's,
# alternated in one process on the gpt2-124m shapes (micro-batch 4: m = 4,096 tokens) by
# scripts/lib/gemm_versus.c: for kernel changes too small for whole-benchmark runs to resolve on a
# machine whose speed drifts. KERNEL=amx (the default where the CPU has AMX) compares bf16amx.c's
# row kernel, each build compiled with its entry point renamed, both linking the working tree's
# packing and peak code (bf16gemm.c); KERNEL=avx512bf16 (the default elsewhere) compares
# bf16gemm.c's AVX512-BF16 row kernel: each side's bf16gemm.c is compiled with an entry point to
# its static row kernel appended and every other symbol made local (objcopy), beside the working
# tree's bf16gemm.c and bf16amx.c for packing.
#   scripts/bench_gemm_versus.sh [REV]      (default HEAD; THREADS=$(nproc) ROUNDS=30 KERNEL=…
#                                            M=4096: the tokens of a product; SHAPES="m n k layout …"
#                                            replaces the model's shapes, e.g. the attention core's
#                                            tile products: SHAPES="128 1024 64 nt 128 64 1024 nn" THREADS=1)
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev=${1:-HEAD}
THREADS=${THREADS:-$(nproc)}; ROUNDS=${ROUNDS:-30}
if grep -q amx_bf16 /proc/cpuinfo; then KERNEL=${KERNEL:-amx}; else KERNEL=${KERNEL:-avx512bf16}; fi
M=${M:-4096}
work=$(mktemp -d /tmp/gemm-versus.XXXXXX)
trap 'rm -rf "$work"' EXIT
inc=(-ISources/CBF16/include -ISources/CBF16)
case "$KERNEL" in
amx)
    grep -q amx_bf16 /proc/cpuinfo || { echo "this CPU has no AMX: try KERNEL=avx512bf16" >&2; exit 1; }
    git show "$base_rev:Sources/CBF16/bf16amx.c" >"$work/base.c"
    rename() { echo "-Dbf16_rows_amx=$1 -Dbf16_amx_available=$1_available -Dbf16_pack_b_f32_vector=$1_pack_b -Dbf16_peak_amx_gflops=$1_peak"; }
    # shellcheck disable=SC2046
    cc -O3 "${inc[@]}" $(rename rows_base) -c "$work/base.c" -o "$work/base.o"
    # shellcheck disable=SC2046
    cc -O3 "${inc[@]}" $(rename rows_new) -c Sources/CBF16/bf16amx.c -o "$work/new.o"
    ;;
avx512bf16)
    grep -q avx512_bf16 /proc/cpuinfo || { echo "this CPU has no AVX512-BF16" >&2; exit 1; }
    git show "$base_rev:Sources/CBF16/bf16gemm.c" >"$work/base.c"
    cp Sources/CBF16/bf16gemm.c "$work/new.c"
    for side in base new; do
        printf '%s\n' "void rows_$side(int n, int k, const void *A, int a_f32, long si, long sk, const uint16_t *packed," \
            "    size_t panel, float *C, long ldc, float beta, int i0, int i1) {" \
            "    rows_native(n, k, A, a_f32, si, sk, packed, panel, C, ldc, beta, i0, i1);" "}" >>"$work/$side.c"
        cc -O3 "${inc[@]}" -c "$work/$side.c" -o "$work/$side.full.o"
        objcopy -G "rows_$side" "$work/$side.full.o" "$work/$side.o"
    done
    ;;
*) echo "KERNEL must be amx or avx512bf16" >&2; exit 2 ;;
esac
cc -O3 "${inc[@]}" -pthread scripts/lib/gemm_versus.c "$work/base.o" "$work/new.o" Sources/CBF16/bf16amx.c \
    Sources/CBF16/bf16gemm.c -o "$work/gemm_versus" -lm
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $KERNEL row kernel, base $(git rev-parse --short "$base_rev"), new: the working tree; $THREADS threads, $ROUNDS alternated rounds, m = $M tokens"
# qkv, proj, fc1, fc2 forward (nt), their input gradients (nn) and weight gradients (tn).
default_shapes="$M 2304 768 nt $M 768 768 nt $M 3072 768 nt $M 768 3072 nt $M 768 2304 nn $M 3072 768 nn"
default_shapes+=" 2304 768 $M tn 3072 768 $M tn 768 3072 $M tn"
read -r -a shapes <<<"${SHAPES:-$default_shapes}"
"$work/gemm_versus" "$THREADS" "$ROUNDS" "${shapes[@]}"
