#!/usr/bin/env bash
# Every row of experiments/peers.md, cheapest and most informative first. Poisons that exist are reused and
# finished reports are not rerun, so the script continues where an interrupted run stopped.
set -uo pipefail
cd "$(dirname "$0")/.."
R=experiments/run_peer.sh
# Wait for a run started by an earlier copy of this script, if one is still going.
while pgrep -f "deephide (evaluate|poison)" >/dev/null; do sleep 10; done
FAST="clean dh classwise-noise lsp ar ops"
LOOP="em em-classwise tap"
SEEDS=3 $R clean
for m in $FAST $LOOP; do [ "$m" = clean ] || $R $m; done
for m in $FAST $LOOP; do CM=jpeg10,bit-depth-2,gaussian-blur,cutmix $R $m; done
for m in $FAST $LOOP; do TAG=resnet18w8 $R $m --model resnet18 --width 8; done
POISON_FLAGS="--max-rounds 8" $R rem
CM=jpeg10,bit-depth-2,gaussian-blur,cutmix $R rem
TAG=resnet18w8 $R rem --model resnet18 --width 8
for m in $FAST $LOOP rem; do CM=ueraser,adv-pgd-4 $R $m; done
