#!/usr/bin/env bash
# Seed files for the fuzz targets, made from the project's own writers (bundled data, shipped weights).
set -euo pipefail
cd "$(dirname "$0")/../.."
S=tests/fuzz/seeds
mkdir -p $S/{idx,cifar,png,jpeg,safetensors,hiding_weights,metadata,spec_and_budget}
for f in data/fashion-mnist-subset/*; do
  case $f in *.gz) { gzip -dc "$f" 2>/dev/null || true; } | head -c 4096 > "$S/idx/$(basename "$f" .gz)" ;; esac
done
head -c 6146 ../shared/data/cifar10-test-sample20.bin > $S/cifar/two-records.bin 2>/dev/null || true
printf 'channels\n4\n32\n2\n0.01\nsmall-cnn\n1\n28\n28\n10\n8\n' > $S/metadata/a
printf '1\n4\n32\n2.0\n0.01\nresnet18\n3\n32\n32\n10\n64\n' > $S/metadata/b
for s in default fashion-mnist idx:/a cifar10:/b folder:/c pngs:/d 8/255 0.03 1; do printf '%s' "$s" > "$S/spec_and_budget/$(echo "$s" | tr '/:' '__')"; done
B=target/release/deephide
[ -x $B ] || cargo build --release --quiet
d=$(mktemp -d)
$B poison --method ops --data default --subset 10 --out "$d/o" >/dev/null 2>&1
# A small hiding network (one block, growth 2): the weights seeds stay a few kB.
$B train --data default --train-subset 16 --semantic single --steps 1 --blocks 1 --growth 2 --batch 2 --out "$d/w" >/dev/null 2>&1
cp "$d/w/hiding.safetensors" $S/hiding_weights/small.safetensors
cp "$d/w/hiding.safetensors" $S/safetensors/small.safetensors
cp "$d"/o/train/0/*.png $S/png/ 2>/dev/null || true
# JPEG seeds: a gray and a colour image through libjpeg's cjpeg (libjpeg-turbo-progs), when installed.
python3 -c "
import sys
w=h=16
open('$d/g.pgm','wb').write(b'P5 16 16 255\n'+bytes((x*16+y*3)%256 for y in range(h) for x in range(w)))
open('$d/c.ppm','wb').write(b'P6 16 16 255\n'+bytes((x*16+y*3+k*50)%256 for y in range(h) for x in range(w) for k in range(3)))
"
if command -v cjpeg >/dev/null; then
  cjpeg -quality 75 "$d/g.pgm" > $S/jpeg/gray.jpg
  cjpeg -quality 50 "$d/c.ppm" > $S/jpeg/colour.jpg
fi
rm -rf "$d"
