"""What the demo's chosen sampling temperature changes: each run's samples at T = 1 and at the temperature that
``gvae eval temperature`` picks on its training phantoms, against the held-out phantoms.

    python eval/demo_variants.py demo --seeds 0 1 2          # the demo's recipe, three seeds
    gvae eval train-features --data runs/demo-variants/data --out features/phantom.safetensors --epochs 10
    python eval/demo_temperature.py runs/demo-variants/demo-s0 runs/demo-variants/demo-s1 \
        runs/demo-variants/demo-s2 --data runs/demo-variants/data --feature-weights features/phantom.safetensors

For every run: the temperature scan (500 prior samples, 1,000 training phantoms, :mod:`gvae.evaluation.temperature`),
then at T = 1 and at the chosen T the demo's own evaluation (``gvae eval --metrics mmd,msssim``: 500 samples,
500 MS-SSIM pairs) and the lesion-count classifier's shares of 1,000 samples (``--metrics classes``: the share
with lesions and the total variation between the samples' and the held-out phantoms' lesion counts). Writes
``OUT/<run>.json``, a grid of 32 samples at the chosen T in ``OUT/grids/<run>.png`` (a conditional run's rows:
0, 1, 2, 3 lesions asked for) and ``OUT/README.md``, which tables every run in ``OUT``. For a conditional run
(``demo-conditional`` in eval/demo_variants.py) the samples are drawn with the held-out phantoms' lesion-count
frequencies, and the label agreement is the share of them the classifier gives the lesion count they were
drawn with.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from summaries import write_readme as write_readme_of
from temperature_study import chosen_temperature, save_grid

import gvae
from gvae.demo import FULL
from gvae.evaluation.protocol import Protocol
from gvae.evaluation.runner import run_evaluation
from gvae.fileio import write_json_atomic

README_INTRO = """# The demo's sampling temperature

Written by `eval/demo_temperature.py` (see its docstring for the protocol): each run's prior samples at T = 1 and
at the temperature `gvae eval temperature` chose on its training phantoms, against the 200 held-out phantoms. The
demo-conditional rows are the demo's recipe with `model.conditional: true` (eval/demo_variants.py): its samples
are drawn with the held-out phantoms' lesion counts as labels, and the label agreement is the share of them that
the lesion-count classifier (86.5% accurate on the held-out phantoms) gives the count they were drawn with. The
demo-class-prior rows are the same with a prior per lesion count (`model.class_prior: true`)."""


def measure(run: Path, data: Path, feature_weights: Path, temperature: float) -> dict:
    """The demo's sample metrics and the lesion shares of ``run``'s prior samples at ``temperature``."""
    demo = run_evaluation(str(run), Protocol(data=str(data), metrics="mmd,msssim", num_samples=FULL.eval_samples,
                                             msssim_pairs=FULL.msssim_pairs, batch_size=64, temperature=temperature))
    classes = run_evaluation(str(run), Protocol(data=str(data), metrics="classes", num_samples=1000, batch_size=64,
                                                feature_weights=str(feature_weights), temperature=temperature))
    diversity, tv = demo["metrics"]["msssim_diversity"], classes["metrics"]["class_tv"]
    return {"temperature": temperature, "mmd2": demo["metrics"]["mmd2"]["value"],
            "msssim_diversity": diversity["value"], "real_msssim_diversity": diversity["real_reference"],
            "lesion_share": 1 - tv["generated_shares"][0], "real_lesion_share": 1 - tv["real_shares"][0],
            "lesion_counts": tv["generated_shares"], "real_lesion_counts": tv["real_shares"], "class_tv": tv["value"],
            **_agreement(classes["metrics"])}


def _agreement(metrics: dict) -> dict:
    """A conditional run's label agreement (overall and per label), or nothing."""
    if "class_agreement" not in metrics:
        return {}
    entry = metrics["class_agreement"]
    return {"class_agreement": entry["value"], "class_agreement_per_label": entry["per_label"]}


def study(run: Path, data: Path, feature_weights: Path, out: Path) -> dict:
    """Scan, measure at T = 1 and at the chosen T, save the grid; returns the run's summary."""
    model = gvae.load(run)
    scan = chosen_temperature(model, data, FULL.temperature_samples)
    summary = {"run": str(run), "scan": scan.as_dict(),
               "at_1": measure(run, data, feature_weights, 1.0),
               "at_best": measure(run, data, feature_weights, scan.best)}
    save_grid(model, scan.best, out / "grids" / f"{run.name}.png")
    write_json_atomic(out / f"{run.name}.json", summary)
    return summary


def table(summaries: list[dict]) -> str:
    lines = ["| run | chosen T | MS-SSIM diversity at 1 / at T (real) | lesions at 1 / at T (real) | lesion-count TV "
             "at 1 / at T | label agreement at 1 / at T | pixel MMD^2 at 1 / at T | samples at T |",
             "|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        one, best, name = s["at_1"], s["at_best"], Path(s["run"]).name
        agreement = (f"{one['class_agreement']:.3f} / {best['class_agreement']:.3f}" if "class_agreement" in one
                     else "-")  # conditional runs only
        lines.append(f"| {name} | {best['temperature']:g} | {one['msssim_diversity']:.3f} / "
                     f"{best['msssim_diversity']:.3f} ({one['real_msssim_diversity']:.3f}) | {one['lesion_share']:.3f} / "
                     f"{best['lesion_share']:.3f} ({one['real_lesion_share']:.3f}) | {one['class_tv']:.3f} / "
                     f"{best['class_tv']:.3f} | {agreement} | {one['mmd2']:.4f} / {best['mmd2']:.4f} "
                     f"| [grid](grids/{name}.png) |")
    return "\n".join(lines) + "\n"


def write_readme(out: Path) -> str:
    """Write ``out``/README.md from every run summary in ``out``; returns the table."""
    return write_readme_of(out, "*.json", table, README_INTRO)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="the packed phantoms the runs trained on")
    parser.add_argument("--feature-weights", type=Path, required=True, help="lesion-count classifier")
    parser.add_argument("--out", type=Path, default=Path("docs/results/demo-temperature"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    summaries = [study(run, args.data, args.feature_weights, args.out) for run in args.runs]
    print(write_readme(args.out))
    print(json.dumps([s["scan"] for s in summaries], indent=1))


if __name__ == "__main__":
    main()
