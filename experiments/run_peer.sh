#!/usr/bin/env bash
# One row of experiments/peers.md: poison a class-balanced subset of Fashion-MNIST's training set with a
# method (`deephide poison`), then train victims on it and test them on the clean test set.
#
#   experiments/run_peer.sh METHOD [EVAL FLAGS...]
#
# METHOD is a `poison --method` name, or `clean` (no poison: the victims train on the same-size clean subset).
# Env: DEEPHIDE (binary, default target/release/deephide), RUNS (work dir, default /work/runs), SUBSET
# (default 10000; `full` = all 60,000), CM (countermeasures, default none), EPOCHS (10), EVAL_SEED (0),
# SEEDS (victim runs, default 1), TAG (added to the report name, e.g. resnet18w8 with --model resnet18
# --width 8), POISON_FLAGS (extra flags of `deephide poison`).
# Writes RUNS/peers/METHOD/{poison,report-*} and copies the small outputs to experiments/reports/peers/METHOD/.
set -euo pipefail
cd "$(dirname "$0")/.."
METHOD=$1; shift || true
B=${DEEPHIDE:-target/release/deephide}
RUNS=${RUNS:-/work/runs}
SUBSET=${SUBSET:-10000}; CM=${CM:-none}; EPOCHS=${EPOCHS:-10}; EVAL_SEED=${EVAL_SEED:-0}; SEEDS=${SEEDS:-1}
D=$RUNS/peers/$METHOD
O=experiments/reports/peers/$METHOD
mkdir -p "$D" "$O"
t0=$(date +%s)
if [ "$METHOD" = clean ]; then
  TRAIN=fashion-mnist
  SUB=(); [ "$SUBSET" = full ] || SUB=(--train-subset "$SUBSET")
else
  TRAIN=folder:$D/poison
  SUB=()
  if [ ! -f "$D/poison/perturbation.json" ]; then
    PS=(); [ "$SUBSET" = full ] || PS=(--subset "$SUBSET")
    # shellcheck disable=SC2086
    nice -n 10 "$B" poison --method "$METHOD" --data fashion-mnist --seed 0 "${PS[@]}" ${POISON_FLAGS:-} --out "$D/poison" > "$D/poison.log" 2>&1
    echo "$METHOD poison ${POISON_FLAGS:-}: $(( $(date +%s) - t0 ))s" >> "$O/wall_times.txt"
  fi
  cp "$D/poison/perturbation.json" "$O/perturbation.json"
  cp "$D/poison/preview.png" "$O/preview.png"
fi
t1=$(date +%s)
REP=$D/report${TAG:+-$TAG}-s$EVAL_SEED-$(echo "$CM" | tr ',' '+')
if grep -q '"complete": true' "$REP/report.json" 2>/dev/null; then
  echo "$METHOD $CM ${TAG:-}: report exists, not rerun"
else
nice -n 10 "$B" evaluate --train "$TRAIN" --test fashion-mnist --countermeasures "$CM" --epochs "$EPOCHS" \
  --seed "$EVAL_SEED" --seeds "$SEEDS" --report "$REP" --quiet "${SUB[@]}" "$@" > "$REP.log" 2>&1
echo "$METHOD evaluate $CM ${TAG:-small-cnn} seeds $SEEDS: $(( $(date +%s) - t1 ))s" >> "$O/wall_times.txt"
fi
R=$(basename "$REP")
cp "$REP/report.md" "$O/$R.md"; cp "$REP/report.json" "$O/$R.json"
echo "done $METHOD $CM ${TAG:-}"
