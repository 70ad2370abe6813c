"""Put a finished sweep's summary into docs/RESULTS.md: its table, best run and importance figure, copied from the
sweep's output folder (``gvae sweep ... --summarize`` writes them there; no number is typed by hand).

    python eval/write_sweep_results.py runs/sweeps/fmnist-dense-study --sweep sweeps/fmnist-dense-study.yaml

The files are copied to docs/results/<sweep name>/ and the part sits in RESULTS.md between two marker lines
named after the sweep, which eval/write_results.py keeps when it rewrites the rest.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import yaml
from results_md import replace_block

FILES = ("SUMMARY.md", "summary.csv", "importance.png")


def description(sweep: Path) -> list[str]:
    """The sweep file's opening comment, up to its first indented command line, without "Run from ...:"."""
    lines = []
    for line in sweep.read_text().splitlines():
        if not line.startswith("#") or line.startswith("#   "):
            break
        lines.append(line[2:])
    return re.sub(r"\s*Run from the repository root[^.]*:$", "", "\n".join(lines).rstrip()).split("\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the sweep's --out folder, holding its SUMMARY.md")
    parser.add_argument("--sweep", type=Path, required=True, help="the sweep file that made it")
    parser.add_argument("--out", type=Path, default=Path("docs/RESULTS.md"))
    args = parser.parse_args()
    spec = yaml.safe_load(args.sweep.read_text())
    name = spec["name"]
    copies = args.out.parent / "results" / name
    copies.mkdir(parents=True, exist_ok=True)
    for file in FILES:
        shutil.copyfile(args.folder / file, copies / file)
    summary = (copies / "SUMMARY.md").read_text().split("\n", 1)[1].strip()  # its own title line goes
    lines = [f"## Sweep: {name}", "", *description(args.sweep), "", "Reproduce (after packing the data):", "",
             "```bash",
             f"gvae sweep {args.sweep} --out {args.folder}",
             f"python eval/write_sweep_results.py {args.folder} --sweep {args.sweep}", "```", "",
             f"Budget: {spec.get('overrides', {}).get('train.max_steps', 'the recipe')} steps of the base recipe "
             f"per run, seeds {spec.get('seeds', [0])}.", "", summary, "",
             f"![importance]({(copies / 'importance.png').relative_to(args.out.parent)})"]
    text = args.out.read_text() if args.out.is_file() else ""
    args.out.write_text(replace_block(text, f"sweep {name}", lines))
    print(f"wrote {args.out} and {copies}/")


if __name__ == "__main__":
    main()
