#!/usr/bin/env python3
"""The issue-9 protocol table of experiments/protection.md (row `final`): every victim run on the fully
protected Fashion-MNIST, pooled per victim and countermeasure over the report files of that row
(`report-*-full.json`: the runs of one countermeasure may be spread over several evaluate calls), against the
issue's targets.

    python3 experiments/protocol_table.py [ROW]   (default: final)
"""
import glob, json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
row = sys.argv[1] if len(sys.argv) > 1 else "final"
runs = {}
for rj in sorted(glob.glob(os.path.join(here, "reports", row, "report*-full.json"))):
    r = json.load(open(rj))
    victim = f"{r['config']['model']} w{r['config']['width']}"
    for x in r["results"]:
        for run in (x.get("protected") or {}).get("runs", []):
            runs.setdefault((victim, x["countermeasure"]), []).append((run["seed"], run["test_acc"]))

CM_ORDER = ["none", "jpeg10", "bit-depth-2"]


def target(victim, cm):
    if cm != "none":
        return 40.0, None
    return 20.0, (40.0 if victim.startswith("small-cnn") else None)

print("| victim | countermeasure | seeds | final per seed (%) | mean final | max after epoch 3 (per seed) | target | met |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for (victim, cm), rs in sorted(runs.items(), key=lambda kv: (kv[0][0] != "small-cnn w32", kv[0][0], CM_ORDER.index(kv[0][1]) if kv[0][1] in CM_ORDER else len(CM_ORDER))):
    rs.sort()
    finals = [100 * acc[-1] for _, acc in rs]
    late = [100 * max(acc[3:]) for _, acc in rs]
    mean = sum(finals) / len(finals)
    t_final, t_late = target(victim, cm)
    ok = mean <= t_final and (t_late is None or max(late) <= t_late)
    tgt = f"final <= {t_final:.0f}%" + (f", no epoch > {t_late:.0f}% after 3" if t_late else "")
    met = ("yes" if ok else "no") + ("" if len(rs) >= 3 else f" ({len(rs)} of 3 seeds)")
    print(f"| {victim} | `{cm}` | {', '.join(str(s) for s, _ in rs)} | {', '.join(f'{v:.1f}' for v in finals)} | "
          f"{mean:.1f} | {', '.join(f'{v:.1f}' for v in late)} | {tgt} | {met} |")
