#!/usr/bin/env bash
# scripts/bench_packed_attention.sh — what reset_attention_mask saves on packed short documents: writes
# 3,000 documents of 3 to 40 words (about 110 bytes each, ended by EOD) with preprocess-data, then
# alternates `megatron benchmark` on gpt2-124m's shape (byte-level vocabulary, LAYERS layers, seq
# 1024, micro-batch 4) without and with --reset-attention-mask, and prints each run's step and its
# attention-core phases. With the mask each query tile skips the keys before its first row's document.
#   scripts/bench_packed_attention.sh      (LAYERS=4 ROUNDS=2 PRECISION=bf16 STEPS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
LAYERS=${LAYERS:-4}; ROUNDS=${ROUNDS:-2}; PRECISION=${PRECISION:-bf16}; STEPS=${STEPS:-3}
swift build -c release --product megatron >/dev/null
bin=$PWD/.build/release/megatron
work=$(mktemp -d /tmp/megatron-packed.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 - "$work/docs.jsonl" <<'PY'
import json, random, sys
rng = random.Random(1)
words = "the quick brown fox jumps over a lazy dog while seven wizards quietly hex bad jam".split()
with open(sys.argv[1], "w") as f:
    for _ in range(3000):
        f.write(json.dumps({"text": " ".join(rng.choice(words) for _ in range(rng.randint(3, 40))) + "."}) + "\n")
PY
(cd "$work" && "$bin" preprocess-data --input docs.jsonl --tokenizer-type ByteLevelTokenizer --append-eod \
    --output-prefix docs >/dev/null)
flag=(); [ "$PRECISION" != fp32 ] && flag=(--"$PRECISION")
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; gpt2-124m shape, $LAYERS layers, $PRECISION"
for round in $(seq "$ROUNDS"); do
    for mask in "" --reset-attention-mask; do
        echo "-- round $round ${mask:-(causal only)}"
        (cd "$work" && "$bin" benchmark --config "$OLDPWD/configs/gpt2-124m.json" --tokenizer-type ByteLevelTokenizer \
            --vocab-file "" --merge-file "" --data-path docs_text_document --num-layers "$LAYERS" --steps "$STEPS" \
            "${flag[@]}" $mask 2>&1 | grep -E "^step|attention core")
    done
done
