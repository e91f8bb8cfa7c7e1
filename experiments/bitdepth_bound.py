#!/usr/bin/env python3
"""How much of an L-inf 8/255 perturbation can survive 2-bit depth reduction on Fashion-MNIST?

`evaluate --countermeasures bit-depth-2` maps a u8 pixel v to level floor(4 v / 255) (at most 3). A
perturbation of at most 8 grey levels changes what the victim sees only at pixels whose value lies within
8 levels of a level boundary (64, 128, 192 in u8 terms, reached from below by +8 or from above by -8).
This counts those pixels over the whole training set: it bounds the class signal that can survive.

    python3 experiments/bitdepth_bound.py [DIR [EPS ...]]   (DIR: /usr/share/datasets/fashion-mnist, EPS in 255ths: 8)
"""
import gzip
import sys

d = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
BUDGETS = [int(e) for e in sys.argv[2:]] or [8]


def level(v):
    return min(4 * v // 255, 3)


with gzip.open(f"{d}/train-images-idx3-ubyte.gz") as f:
    raw = f.read()[16:]
hist = [0] * 256
for b in raw:
    hist[b] += 1
n = len(raw)
print(f"pixels: {n}")
print(f"exactly 0 (black background): {100 * hist[0] / n:.1f}%")
for EPS in BUDGETS:
    up = sum(hist[v] for v in range(256) if level(min(v + EPS, 255)) != level(v))
    down = sum(hist[v] for v in range(256) if level(max(v - EPS, 0)) != level(v))
    either = sum(hist[v] for v in range(256)
                 if level(min(v + EPS, 255)) != level(v) or level(max(v - EPS, 0)) != level(v))
    print(f"can move up a 2-bit level with +{EPS}/255:   {100 * up / n:.1f}%")
    print(f"can move down a 2-bit level with -{EPS}/255: {100 * down / n:.1f}%")
    print(f"can change its 2-bit level at all:           {100 * either / n:.1f}%")
    # A flipped level moves the pixel by 64/255: averaged over the image, the signal the victim can see
    # after 2-bit reduction is about (share that can flip) * 64/255.
    print(f"mean visible change if every such pixel flips: {either / n * 64:.2f}/255 per pixel "
          f"(the perturbation itself: {EPS}/255)")
