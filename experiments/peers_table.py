#!/usr/bin/env python3
"""The tables of experiments/peers.md, rebuilt from the reports under experiments/reports/peers/.

Each method folder holds perturbation.json (what `deephide poison` wrote), report-*.json (one per
`evaluate` call of experiments/run_peer.sh) and wall_times.txt. Prints markdown: the accuracy table (final
clean-test accuracy of the victim per countermeasure, `-` where not run yet), the mean over the
countermeasures run for every method, and the image-quality table.
"""
import glob
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reports", "peers")
ORDER = ["clean", "dh", "classwise-noise", "em", "em-classwise", "rem", "tap", "lsp", "ar", "ops"]
CMS = ["none", "jpeg10", "bit-depth-2", "gaussian-blur", "cutmix", "ueraser", "adv-pgd-4"]


def runs(method):
    """{(victim, countermeasure): (mean final acc, sd, seeds, per-epoch mean)}"""
    out = {}
    for f in sorted(glob.glob(os.path.join(ROOT, method, "report-*.json"))):
        rep = json.load(open(f))
        cfg = rep["config"]
        victim = f"{cfg['model']} w{cfg['width']}"
        for r in rep["results"]:
            p = r.get("protected")
            if not p or not p.get("runs"):
                continue
            n = len(p["runs"])
            out[(victim, r["countermeasure"])] = (p["final_acc_mean"], p["final_acc_sd"], n, p["test_acc_per_epoch_mean"], rep.get("complete"))
    return out


def pct(v):
    return f"{100 * v:.1f}"


def main():
    methods = [m for m in ORDER if os.path.isdir(os.path.join(ROOT, m))]
    data = {m: runs(m) for m in methods}
    print("| method | " + " | ".join(f"`{c}`" for c in CMS) + " | mean over the 7 | ResNet-18 w8 `none` |")
    print("| --- | " + " | ".join("---" for _ in CMS) + " | --- | --- |")
    for m in methods:
        cells, vals = [], []
        for c in CMS:
            r = data[m].get(("small-cnn w32", c))
            if r is None:
                cells.append("-")
            else:
                acc, sd, n, _, complete = r
                cells.append(pct(acc) + (f" ± {pct(sd)} ({n} seeds)" if n > 1 else "") + ("" if complete else " (partial)"))
                vals.append(acc)
        mean = pct(sum(vals) / len(vals)) if len(vals) == len(CMS) else (f"({pct(sum(vals) / len(vals))} over {len(vals)})" if vals else "-")
        rn = data[m].get(("resnet18 w8", "none"))
        print(f"| `{m}` | " + " | ".join(cells) + f" | {mean} | {pct(rn[0]) if rn else '-'} |")
    print()
    print("| method | budget (own norm) | max used | PSNR dB (min) | SSIM (min) | L-inf max /255 | make time (10,000 images) | settings |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for m in methods:
        pj = os.path.join(ROOT, m, "perturbation.json")
        if not os.path.exists(pj):
            continue
        p = json.load(open(pj))
        b = p["budget"]
        val = f"{b['value'] * 255:.2f}/255" if b["norm"] == "linf" else (f"{b['value']:.4f}" if b["norm"] == "l2" else f"{b['value']:.0f} pixel")
        used = f"{b['max_used'] * 255:.2f}/255" if b["norm"] == "linf" else (f"{b['max_used']:.4f}" if b["norm"] == "l2" else f"{b['max_used']:.0f}")
        print(
            f"| `{m}` | {b['norm']} {val} | {used} | {p['psnr_db']['mean']:.2f} ({p['psnr_db']['min']:.2f}) | {p['ssim']['mean']:.4f} ({p['ssim']['min']:.4f}) "
            f"| {p['linf']['max'] * 255:.0f} | {p['seconds']:.0f} s | {p['settings'].replace('|', '&#124;')} |"
        )


if __name__ == "__main__":
    sys.exit(main())
