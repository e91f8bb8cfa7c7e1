#!/usr/bin/env bash
# Ceiling row of experiments/protection.md: a fixed class-wise pattern of KIND at L-inf EPS/255 (8) added to a
# class-balanced subset of Fashion-MNIST (examples/classwise_patterns.rs, no hiding network), then the same
# small-CNN victims as run_row.sh.
#
#   experiments/run_pattern.sh KIND      (env: SUBSET default 10000 or `full`, SEED, EVAL_SEED, CM, EPOCHS, SEEDS,
#                                         EPS in 255ths, default 8; another budget is added to the row name)
set -euo pipefail
cd "$(dirname "$0")/.."
KIND=$1
RUNS=${RUNS:-/work/runs}; SUBSET=${SUBSET:-10000}; SEED=${SEED:-0}; EVAL_SEED=${EVAL_SEED:-0}
CM=${CM:-none,jpeg10,bit-depth-2}; EPOCHS=${EPOCHS:-10}; SEEDS=${SEEDS:-1}; EPS=${EPS:-8}
NAME=pattern-$KIND; [ "$EPS" = 8 ] || NAME=$NAME-eps$EPS
D=$RUNS/$NAME-$SUBSET
t0=$(date +%s)
cargo run --release --quiet --example classwise_patterns -- "$KIND" "$D/data" "$SUBSET" "$EPS" "$SEED"
REP=$D/report-s$EVAL_SEED-$SUBSET
target/release/deephide evaluate --train "idx:$D/data" --test fashion-mnist --countermeasures "$CM" \
  --epochs "$EPOCHS" --seed "$EVAL_SEED" --seeds "$SEEDS" --report "$REP" --quiet > "$REP.log" 2>&1
t1=$(date +%s)
O=experiments/reports/$NAME
mkdir -p "$O"
R=$(basename "$REP")
cp "$REP/report.md" "$O/$R.md"; cp "$REP/report.json" "$O/$R.json"
echo "$NAME subset $SUBSET, eps $EPS/255: generate + evaluate $((t1-t0))s" >> "$O/wall_times.txt"
echo "done $NAME: $O"
