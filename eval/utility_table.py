"""Print the utility results files of a small-data study as one Markdown table.

    python eval/utility_table.py OUT/real.json OUT/gvae-s0.json ...

The real-only and classic-augmentation rows come from real.json only: every model's file repeats them (the
same real images and classifier seeds), so they are shown once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(paths: list[str]) -> None:
    print("| source | metric | accuracy or gain | ± |\n|---|---|---|---|")
    for path in paths:
        doc, source = json.loads(Path(path).read_text()), Path(path).stem
        for name, entry in doc["metrics"].items():
            if source != "real" and ("_real_" in name or "_classic_" in name):
                continue
            spread = "" if entry["std"] is None else f"{entry['std']:.3f}"
            print(f"| {source} | {name} | {entry['value']:.4f} | {spread} |")


if __name__ == "__main__":
    main(sys.argv[1:])
