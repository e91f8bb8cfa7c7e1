#!/usr/bin/env python3
"""Rewrite the Results section of experiments/peers.md from the reports (experiments/peers_table.py)."""
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
md = os.path.join(here, "peers.md")
table = subprocess.run([sys.executable, os.path.join(here, "peers_table.py")], capture_output=True, text=True, check=True).stdout
text = open(md).read()
start = text.index("## Results")
end = text.index("## Ranking")
text = text[:start] + "## Results\n\nFinal clean-test accuracy (%) of the victim after 10 epochs; lower is stronger protection (chance 10%). `-`: not run yet.\n\n" + table + "\n" + text[end:]
open(md, "w").write(text)
