#!/usr/bin/env bash
# scripts/fuzz.sh — libFuzzer (with AddressSanitizer) over every input parser (FuzzTargets: config,
# hf-config, safetensors, mmidx, checkpoint, gpt2-tokenizer, wordpiece, sentencepiece,
# sentencepiece-model, hf-tokenizer, hf-tokenizer-json, tiktoken, tiktoken-json). Builds `megatron-fuzz` into
# .build-fuzz, runs each target from its corpus in Tests/FuzzTests/Corpus/<target>, merges the new
# inputs that add coverage back into that corpus, and keeps every crashing input in
# Tests/FuzzTests/Regressions/<target>/ — both replayed by scripts/test.sh (FuzzCorpusTests).
# Prints one line per target: executions, time, rate, corpus size, crashes.
#   scripts/fuzz.sh [TARGET ...]      RUNS=1000000 (executions per target) or SECONDS_PER_TARGET=N;
#   SANITIZERS=fuzzer leaves AddressSanitizer out (several times faster for allocation-heavy readers);
#   MAX_LEN=N caps new inputs at N bytes (libFuzzer's default follows the largest corpus input)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config hf-config safetensors mmidx checkpoint gpt2-tokenizer wordpiece sentencepiece sentencepiece-model hf-tokenizer hf-tokenizer-json tiktoken tiktoken-json)
RUNS=${RUNS:-1000000}
limit=(-runs="$RUNS")
[ -z "${SECONDS_PER_TARGET:-}" ] || limit=(-max_total_time="$SECONDS_PER_TARGET")
[ -z "${MAX_LEN:-}" ] || limit+=(-max_len="$MAX_LEN")
SANITIZERS=${SANITIZERS:-fuzzer,address}
build=.build-fuzz$([ "$SANITIZERS" = fuzzer,address ] || echo "-${SANITIZERS//,/-}")
MEGATRON_FUZZ=1 swift build -c release --build-path "$build" --product megatron-fuzz \
    -Xswiftc -sanitize="$SANITIZERS" >/dev/null
fuzzer=$PWD/$build/release/megatron-fuzz
export ASAN_OPTIONS=detect_leaks=0 OPENBLAS_NUM_THREADS=1
export MEGATRON_SHARED_DATA=${MEGATRON_SHARED_DATA:-$PWD/../shared/data}
export MEGATRON_SENTENCEPIECE_MODEL=$PWD/Tests/MegatronCoreTests/Fixtures/sentencepiece/llama_bpe.model
export MEGATRON_HF_TOKENIZER=$PWD/Tests/MegatronCoreTests/Fixtures/hf_tokenizer/llama3
export MEGATRON_TIKTOKEN_RANKS=$PWD/Tests/MegatronCoreTests/Fixtures/tiktoken/vocab.json
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; sanitizers: $SANITIZERS"
status=0
for t in "${targets[@]}"; do
    corpus=Tests/FuzzTests/Corpus/$t regressions=Tests/FuzzTests/Regressions/$t
    work=$(mktemp -d)
    mkdir -p "$corpus" "$regressions"
    start=$(date +%s)
    set +e
    (cd "$work" && MEGATRON_FUZZ_TARGET=$t "$fuzzer" "${limit[@]}" -print_final_stats=1 \
        -artifact_prefix="$OLDPWD/$regressions/" "$work" "$OLDPWD/$corpus" >"$work/log" 2>&1)
    rc=$?
    set -e
    secs=$(( $(date +%s) - start ))
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/log" | grep -o '[0-9]*$' || echo 0)
    # Keep what the run found that adds coverage (the corpus stays minimal).
    (cd "$work" && MEGATRON_FUZZ_TARGET=$t "$fuzzer" -merge=1 "$OLDPWD/$corpus" "$work" >/dev/null 2>&1) || true
    crashes=$(find "$regressions" -type f | wc -l)
    printf '%-15s %9s executions in %5d s (%6d/s), corpus %4d inputs, regression inputs %d%s\n' \
        "$t" "$execs" "$secs" "$(( execs / (secs > 0 ? secs : 1) ))" "$(find "$corpus" -type f | wc -l)" \
        "$crashes" "$(case $rc in 0) ;; 72) echo "  (interrupted)" ;; *) echo "  — FOUND A CRASH (exit $rc), see $work/log" ;; esac)"
    # 72 is libFuzzer's exit code when interrupted (Ctrl-C): the run's inputs are merged all the same.
    [ $rc -eq 0 ] || [ $rc -eq 72 ] || status=1
    [ $rc -ne 0 ] && [ $rc -ne 72 ] || rm -rf "$work"
done
exit $status
