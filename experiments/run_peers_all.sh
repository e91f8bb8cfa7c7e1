#!/usr/bin/env bash
# Every row of experiments/peers.md, cheapest and most informative first (each step skips a poison that
# already exists, so the script can be rerun after an interruption; finished reports are redone).
set -uo pipefail
cd "$(dirname "$0")/.."
R=experiments/run_peer.sh
CHEAP="dh classwise-noise lsp ar ops"
LOOP="em em-classwise tap rem"
SEEDS=3 $R clean
for m in $CHEAP $LOOP; do
  case $m in rem) POISON_FLAGS="--max-rounds 8" $R $m ;; *) $R $m ;; esac
done
for m in clean $CHEAP $LOOP; do CM=jpeg10,bit-depth-2,gaussian-blur,cutmix $R $m; done
for m in clean $CHEAP $LOOP; do TAG=resnet18w8 $R $m --model resnet18 --width 8; done
for m in clean $CHEAP $LOOP; do CM=ueraser,adv-pgd-4 $R $m; done
