#!/usr/bin/env bash
# scripts/bench_attention.sh — the attention core alone (`megatron benchmark --attention-only`) on
# gpt2-124m (causal, seq 1024) and bert-base (bidirectional, seq 512), micro-batch 4, forward and
# backward in fp32 and bf16: for changes to the core too small for whole steps to resolve. With REV,
# REV's build (which must have --attention-only) alternates with this tree's, ROUNDS rounds, and the
# ratio of each side's best time is printed per model, precision and pass.
#   scripts/bench_attention.sh [REV]      (ROUNDS=3 THREADS=$(nproc) BERT_VOCAB=path/to/bert vocab.txt)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
base_rev=${1:-}
ROUNDS=${ROUNDS:-3}; THREADS=${THREADS:-$(nproc)}
BERT_VOCAB=${BERT_VOCAB:-../shared/data/tokenizers/bert-base-uncased/vocab.txt}
if [ -f "$BERT_VOCAB" ]; then BERT_TOKENIZER="--tokenizer-type BertWordPieceLowerCase --vocab-file $BERT_VOCAB"
else BERT_TOKENIZER="--tokenizer-type ByteLevelTokenizer"; fi
work=$(mktemp -d /tmp/megatron-attention.XXXXXX)
trap 'remove_base_revision "$work"' EXIT
swift build -c release --product megatron >/dev/null
sides=(new)
if [ -n "$base_rev" ]; then
    build_base_revision "$base_rev" "$work"
    # grep reads the whole help (no -q: an early exit would fail the pipe under pipefail)
    "$work/base/.build/release/megatron" benchmark --help | grep -- --attention-only >/dev/null ||
        { echo "$base_rev has no 'benchmark --attention-only': pick a later revision" >&2; exit 1; }
    sides=(base new)
fi
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $THREADS threads${base_rev:+; base $(git rev-parse --short "$base_rev")}"
for model in "gpt2-124m --config configs/gpt2-124m.json" "bert-base --config configs/bert-base.json $BERT_TOKENIZER"; do
    read -r name args <<<"$model"
    for round in $(seq "$ROUNDS"); do
        for side in "${sides[@]}"; do
            bin=.build/release/megatron; [ "$side" = base ] && bin="$work/base/.build/release/megatron"
            # shellcheck disable=SC2086
            "$bin" benchmark --attention-only $args --micro-batch-size 4 --global-batch-size 4 \
                --num-threads "$THREADS" --json "$work/$name-$side-$round.json" | sed -n "s/^  /$name $side round $round: /p"
        done
    done
    python3 - "$work" "$name" "$ROUNDS" "${sides[@]}" <<'PY'
import json, sys
work, name, rounds, sides = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
best = {}
for side in sides:
    for r in range(1, rounds + 1):
        for row in json.load(open(f"{work}/{name}-{side}-{r}.json"))["attention"]:
            for p in ("forward", "backward"):
                key = (side, row["precision"], p)
                best[key] = min(best.get(key, float("inf")), row[f"{p}_ms"])
for precision in ("fp32", "bf16"):
    for p in ("forward", "backward"):
        if ("new", precision, p) not in best: continue
        line = f"{name} {precision} {p}: best {best[('new', precision, p)]:.2f} ms"
        if "base" in sides:
            b = best[("base", precision, p)]
            line += f" (base {b:.2f} ms): base / new = {b / best[('new', precision, p)]:.3f}"
        print(line)
PY
done
