#!/usr/bin/env python3
"""Rows of experiments/protection.md from experiments/reports/NAME/: perturbation.json or perturbation-full.json for full-set
reports (stego PSNR/SSIM, share at budget, reveal PSNR of the published images; absent for the class-wise
pattern rows of run_pattern.sh), report-*.json (victim accuracy per epoch per countermeasure).

    python3 experiments/summarize.py NAME...   (default: every folder under experiments/reports)
"""
import json, os, sys, glob

here = os.path.dirname(os.path.abspath(__file__))
names = sys.argv[1:] or sorted(os.listdir(os.path.join(here, "reports")))
print("| row | victim data / seeds | stego PSNR / SSIM | at budget | reveal PSNR | none: final (min, max after ep. 3) | per-epoch (none) | JPEG-10 final | 2-bit final | wall times |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for n in names:
    d = os.path.join(here, "reports", n)
    def perturbation(name):
        try:
            return json.load(open(os.path.join(d, name)))
        except OSError:
            return None
    p10 = perturbation("perturbation.json")
    if p10 is None and not glob.glob(os.path.join(d, "report*.json")):
        continue
    try:
        wt = open(os.path.join(d, "wall_times.txt")).read().strip().replace("\n", "; ")
    except OSError:
        wt = "-"
    for rj in sorted(glob.glob(os.path.join(d, "report*.json"))):
        r = json.load(open(rj))
        # Full-set reports go with the perturbation statistics of the full protected set; pattern rows
        # (run_pattern.sh, no hiding network) have none.
        p = (perturbation("perturbation-full.json") if rj.endswith("-full.json") else None) or p10
        rv = p.get("reveal_psnr_db", {}).get("mean") if p else None
        res = {x["countermeasure"]: x["protected"] for x in r["results"] if x.get("protected")}
        def fin(cm):
            x = res.get(cm)
            if not x:
                return "-"
            runs = [100 * y["final_acc"] for y in x["runs"]]
            s = f"{100 * x['final_acc_mean']:.2f}"
            return s + (f" ({', '.join(f'{v:.1f}' for v in runs)})" if len(runs) > 1 else "")
        none = res.get("none")
        if none:
            per = [100 * v for v in none["test_acc_per_epoch_mean"]]
            after = per[3:] or per
            nonecell = f"{100 * none['final_acc_mean']:.2f} ({min(after):.1f}, {max(after):.1f})"
            pe = " ".join(f"{v:.1f}" for v in per)
        else:
            nonecell, pe = "-", "-"
        pcells = f"{p['psnr_db']['mean']:.2f} / {p['ssim']['mean']:.4f} | {100 * p['at_budget']:.1f}%" if p else "- | -"
        seeds = r["config"]["seeds"]
        imgs = r["data"]["training_sets"][0]["images"]
        model = r["config"].get("model", "small-cnn")
        victim = "" if model == "small-cnn" else f"{model} w{r['config'].get('width')}, "
        print(f"| {n} | {victim}{imgs} imgs, seeds {','.join(map(str, seeds))} ({os.path.basename(rj)}) | {pcells} | "
              + (f"{rv:.2f}" if rv is not None else "-") + f" | {nonecell} | {pe} | {fin('jpeg10')} | {fin('bit-depth-2')} | {wt} |")
