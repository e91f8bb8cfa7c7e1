#!/usr/bin/env bash
# The main job on the bundled data (a 6,000-image Fashion-MNIST subset): make the training set unlearnable
# with the shipped hiding network, train victims on the clean and on the protected images, and test them on
# clean test images. About 3-5 minutes on 2 cores. Results land in ${OUT:-demo}/ (protected images with a
# preview, report.md with accuracy tables, chart.png).
#
# Env: OUT (default demo), EPOCHS (victim epochs, default 10), CM (countermeasures, default none,jpeg10),
# TRAIN=1 to train a hiding network from scratch first (STEPS steps, default 300; about 10 more minutes,
# and a network trained that briefly protects less than the shipped one).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-demo}
EPOCHS=${EPOCHS:-10}
CM=${CM:-none,jpeg10}
STEPS=${STEPS:-300}
cargo build --release --quiet
bin=./target/release/deephide
mkdir -p "$OUT"
start=$(date +%s)
W=weights/hiding-fashion-mnist-align-sign.safetensors
if [ "${TRAIN:-0}" = 1 ]; then
  echo "== semantic images (one fixed shape per class) and a hiding network trained from scratch ($STEPS steps)"
  $bin semantic --classes 10 --per-class 8 --size 28 --channels 1 --seed 0 --source single --out "$OUT/semantic"
  $bin train --data default --semantic single --out "$OUT/hiding" --steps "$STEPS" --blocks 4 --batch 32 --ckpt-every 100
  W=$OUT/hiding/hiding.safetensors
fi

echo "== 1/2 hide a semantic image in every training image (L-inf 8/255) with $W"
$bin hide --weights "$W" --data default --semantic single --out "$OUT/protected" --eps 8/255

echo "== 2/2 train victims (small CNN, $EPOCHS epochs) on clean and on protected images, test on clean images"
$bin evaluate --train "folder:$OUT/protected" --clean default --test default --epochs "$EPOCHS" \
  --countermeasures "$CM" --report "$OUT/report" --quiet > "$OUT/evaluate.log"

echo
python3 - "$OUT/report/report.json" "$(( $(date +%s) - start ))" <<'PY'
import json, sys
rep = json.load(open(sys.argv[1]))
print(f"RESULT (clean Fashion-MNIST test images, {rep['config'].get('epochs', '?')} epochs, {sys.argv[2]} s):")
for r in rep["results"]:
    c, p = r.get("clean", {}).get("final_acc_mean"), r["protected"]["final_acc_mean"]
    cm = r["countermeasure"]
    if c is None:
        print(f"  {cm:>10}: protected-trained {100 * p:.1f}%")
    else:
        print(f"  {cm:>10}: clean-trained {100 * c:.1f}%  ->  protected-trained {100 * p:.1f}%  ({100 * (c - p):.1f} points lower; chance is 10%)")
PY
echo "details: $OUT/report/report.md, chart: $OUT/report/chart.png, what was published: $OUT/protected/preview.png"
