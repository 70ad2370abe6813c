"""How much does each conditional model's label decide? ``label_share`` of every run, beside a picture of it.

    python eval/label_share.py runs/fmnist-32-gvae-cond-prior-s0:data/fmnist \
        runs/demo-variants/demo-conditional-s0:runs/demo-variants/data --out docs/results/label-share

For each RUN:DATA, ``gvae eval``'s ``label_share`` (1,000 prior samples at T = 1, labels drawn with the
held-out images' frequencies, seed 0: the same call as ``gvae eval RUN --data DATA --metrics label_share``)
and a grid of the report's class rows: row k decodes the same 8 latents with label k, so each column shows what
the label alone changes. A model whose label is ignored draws the same image down every column. Writes
``<run name>.png`` per run and a README.md table to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gvae.evaluation.protocol import Protocol
from gvae.evaluation.runner import run_evaluation
from gvae.loading import in_inference_form, load_trained
from gvae.report.figures import image_png
from gvae.report.views import class_rows

LATENTS = 8  # columns of each picture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN:DATA", help="a conditional run and its packed data")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--num-samples", type=int, default=1000)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for spec in args.runs:
        run, data = spec.rsplit(":", 1)
        protocol = Protocol(data=data, metrics="label_share", num_samples=args.num_samples, temperature=1.0)
        share = run_evaluation(run, protocol)["metrics"]["label_share"]["value"]
        model = in_inference_form(load_trained(run).model)
        name = Path(run).name
        (args.out / f"{name}.png").write_bytes(image_png(class_rows(model, LATENTS), nrow=LATENTS, scale=2))
        rows.append(f"| `{run}` | {share:.3f} | {', '.join(model.class_names)} | [{name}.png]({name}.png) |")
        print(f"{run}: label_share {share:.3f}", flush=True)
    (args.out / "README.md").write_text(
        "# label_share of conditional models\n\nWritten by `eval/label_share.py` (its docstring says how).\n\n"
        "| run | label_share | classes (rows of the picture) | picture |\n|---|---|---|---|\n"
        + "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
