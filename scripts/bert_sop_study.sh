#!/usr/bin/env bash
# scripts/bert_sop_study.sh — how long sentence-order prediction takes to learn on the built-in
# corpus: bert-tiny widened to hidden 128 with seq 128 and a 80/20 document split (so validation
# holds several documents), trained for STEPS iterations with a checkpoint every SAVE_EVERY; each
# checkpoint is then evaluated on every validation sample (`evaluate --task mlm`), printing the
# masked-LM loss and the sentence-order accuracy (chance 0.5) as they develop; with DRAWS=N, also on
# N more draws of validation samples (evaluation seeds 2001…2000+N: other spans, swaps and masks of
# the same validation documents), their pooled sentence-order accuracy beside it.
#   scripts/bert_sop_study.sh [OUT_DIR]    (STEPS=1500 SAVE_EVERY=500 THREADS=$(nproc) SEQ=128 HIDDEN=128
#                                           DROPOUT=0: hidden and attention dropout; SEED=1234: the
#                                           config's seed, which also draws the validation samples;
#                                           BATCH=N MICRO=M: global and micro-batch size instead of
#                                           bert-tiny's 16 and 4;
#                                           VOCAB=path/to/vocab.txt: BERT's WordPiece instead of bytes;
#                                           DATA=P_text_sentence: a dataset written by preprocess-data
#                                           --split-sentences with that vocabulary instead of the
#                                           built-in corpus; DRAWS=0: more draws of validation samples)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/common.sh
ensure_packages
out=${1:-bert-sop-study}
STEPS=${STEPS:-1500}; SAVE_EVERY=${SAVE_EVERY:-500}; THREADS=${THREADS:-$(nproc)}; SEQ=${SEQ:-128}; HIDDEN=${HIDDEN:-128}; DROPOUT=${DROPOUT:-0}
SEED=${SEED:-1234}; VOCAB=${VOCAB:-}; DATA=${DATA:-}; DRAWS=${DRAWS:-0}; BATCH=${BATCH:-}; MICRO=${MICRO:-}
swift build -c release --product megatron >/dev/null
rm -rf "$out"; mkdir -p "$out"
echo "== machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
MODEL=(--config configs/bert-tiny.json --hidden-size "$HIDDEN" --seq-length "$SEQ" --max-position-embeddings "$SEQ" --split 80,20,0
    --hidden-dropout "$DROPOUT" --attention-dropout "$DROPOUT" --seed "$SEED")
if [ -n "$BATCH" ]; then MODEL+=(--global-batch-size "$BATCH"); fi
if [ -n "$MICRO" ]; then MODEL+=(--micro-batch-size "$MICRO"); fi
if [ -n "$VOCAB" ]; then MODEL+=(--tokenizer-type BertWordPieceLowerCase --vocab-file "$VOCAB"); fi
if [ -n "$DATA" ]; then MODEL+=(--data-path "$DATA"); fi
start=$(date +%s)
.build/release/megatron train "${MODEL[@]}" --train-iters "$STEPS" --eval-iters 0 --num-threads "$THREADS" \
    --save "$out/ckpt" --save-interval "$SAVE_EVERY" --log-interval "$SAVE_EVERY" >"$out/train.log"
echo "== trained $STEPS iterations in $(( $(date +%s) - start )) s"
for it in $(seq "$SAVE_EVERY" "$SAVE_EVERY" "$STEPS"); do
    echo "$it" >"$out/ckpt/latest_checkpointed_iteration.txt"
    .build/release/megatron evaluate --task mlm --load "$out/ckpt" "${MODEL[@]}" --num-threads "$THREADS" \
        --results-file "$out/eval_$it.json" >/dev/null
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"iteration {sys.argv[2]:>5}: masked-LM loss {r['mlm_loss']:.3f}, accuracy {r['mlm_accuracy']:.3f}; sentence-order accuracy {r['sop_accuracy']:.3f} over {r['validation_samples']} validation samples\")" "$out/eval_$it.json" "$it"
    if [ "$DRAWS" -gt 0 ]; then
        for d in $(seq 1 "$DRAWS"); do
            .build/release/megatron evaluate --task mlm --load "$out/ckpt" "${MODEL[@]}" --seed $((2000 + d)) \
                --num-threads "$THREADS" --results-file "$out/eval_${it}_draw$d.json" >/dev/null
        done
        python3 - "$out" "$it" "$DRAWS" <<'PY'
import json, sys
out, it, draws = sys.argv[1], sys.argv[2], int(sys.argv[3])
rs = [json.load(open(f"{out}/eval_{it}_draw{d}.json")) for d in range(1, draws + 1)]
n = sum(r["validation_samples"] for r in rs)
right = sum(r["sop_accuracy"] * r["validation_samples"] for r in rs)
print(f"               {draws} more draws: sentence-order accuracy {right / n:.3f} over {n} validation samples")
PY
    fi
done
