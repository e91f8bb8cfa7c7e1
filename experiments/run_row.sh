#!/usr/bin/env bash
# One row of experiments/protection.md: train the hiding network (4 blocks, one fixed semantic image per
# class, full Fashion-MNIST), protect the full training set at L-inf 8/255, and evaluate small-CNN victims
# on the clean test set, with and without JPEG-10 and 2-bit depth reduction.
#
#   experiments/run_row.sh NAME STEPS "EXTRA TRAIN FLAGS" [EVAL FLAGS...]
#
# Env: DEEPHIDE (binary, default target/release/deephide), RUNS (work dir, default /work/runs),
#      SEED (hiding-network seed, default 0), EVAL_SEED (victim seed, default 0), SUBSET (protect and train
#      victims on a class-balanced subset of this many images for screening, default 10000; `full` = all
#      60,000), CM (countermeasures, default
#      none,jpeg10,bit-depth-2), EPOCHS (default 10), TAG (added to the report name, e.g. resnet18 when the
#      EVAL FLAGS pick another victim), WEIGHTS (use this hiding network instead of training one, e.g. the
#      shipped weights/hiding-fashion-mnist-align-sign.safetensors; STEPS and the train flags are then
#      ignored), HIDE_FLAGS (extra flags of `deephide hide`, e.g. "--em-epochs 6 --em-classwise").
# Writes RUNS/NAME/{hiding,protected (protected-SUBSET unless 10000),report} and copies the small outputs to experiments/reports/NAME/.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=$1; STEPS=$2; EXTRA=${3:-}; shift 3 || true
B=${DEEPHIDE:-target/release/deephide}
RUNS=${RUNS:-/work/runs}
SEED=${SEED:-0}; EVAL_SEED=${EVAL_SEED:-0}; SUBSET=${SUBSET:-10000}; CM=${CM:-none,jpeg10,bit-depth-2}; EPOCHS=${EPOCHS:-10}
D=$RUNS/$NAME
mkdir -p "$D"
t0=$(date +%s)
HW=${WEIGHTS:-$D/hiding/hiding.safetensors}
if [ -z "${WEIGHTS:-}" ] && [ ! -f "$HW" ]; then
  # shellcheck disable=SC2086
  nice -n 10 "$B" train --data fashion-mnist --semantic single --secret-variants 1 --blocks 4 --steps "$STEPS" \
    --seed "$SEED" --out "$D/hiding" $EXTRA > "$D/train.log" 2>&1
fi
t1=$(date +%s)
P=$D/protected; [ "$SUBSET" = 10000 ] || P=$D/protected-$SUBSET
if [ ! -f "$P/perturbation.json" ]; then
  HS=(); [ "$SUBSET" = full ] || HS=(--subset "$SUBSET")
  # shellcheck disable=SC2086
  nice -n 10 "$B" hide --weights "$HW" --data fashion-mnist --semantic single \
    --secret-variants 1 --seed "$SEED" --eps 8/255 "${HS[@]}" ${HIDE_FLAGS:-} --out "$P" > "$D/hide.log" 2>&1
fi
t2=$(date +%s)
REP=$D/report${TAG:+-$TAG}${EVAL_SEED:+-s$EVAL_SEED}-${SUBSET}
nice -n 10 "$B" evaluate --train "folder:$P" --test fashion-mnist --countermeasures "$CM" \
  --epochs "$EPOCHS" --seed "$EVAL_SEED" --report "$REP" --quiet "$@" > "$REP.log" 2>&1
t3=$(date +%s)
O=experiments/reports/$NAME
mkdir -p "$O"
PJ=perturbation.json; [ "$SUBSET" = 10000 ] || PJ=perturbation-$SUBSET.json
cp "$P/perturbation.json" "$O/$PJ"
if [ -z "${WEIGHTS:-}" ]; then
  tail -n 1 "$D/hiding/train_log.csv" > "$O/train_last_step.csv"
  grep -h "^trained" "$D/train.log" > "$O/train_summary.txt" || true
else
  echo "hiding network: $WEIGHTS (not trained by this row)" > "$O/train_summary.txt"
fi
grep -h "^em pass" "$D/hide.log" > "$O/em_passes.txt" || rm -f "$O/em_passes.txt"
R=$(basename "$REP")
cp "$REP/report.md" "$O/$R.md"; cp "$REP/report.json" "$O/$R.json"
echo "$NAME train ${WEIGHTS:+(given weights) }${STEPS} steps $((t1-t0))s, hide${HIDE_FLAGS:+ $HIDE_FLAGS} $((t2-t1))s, evaluate $((t3-t2))s" >> "$O/wall_times.txt"
echo "done $NAME: $O"
