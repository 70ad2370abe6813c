"""What a chosen sampling temperature changes for any set of runs: each run's metrics at T = 1 and at the
temperature that ``gvae eval temperature`` picks on its training images, under one protocol.

    bash eval/reproduce_fmnist.sh      # the runs (one epoch each)
    python eval/temperature_study.py runs/fmnist-32-gvae-s0 runs/fmnist-32-gvae-s1 runs/fmnist-32-vae-s0 \
        runs/fmnist-32-vae-s1 runs/fmnist-32-vaegan-s0 \
        --data data/fmnist --feature-weights features/fmnist.safetensors --out docs/results/fmnist-temperature \
        --temperatures 0.8,0.9,1.0,1.1,1.2,1.3,1.4,1.5,1.6,1.8,2.0

For every run: the temperature scan (``--scan-samples`` prior samples against up to twice as many training
images, :mod:`gvae.evaluation.temperature`), then ``gvae eval --metrics METRICS`` at T = 1 and at the chosen T
(``--num-samples`` samples, ``--num-real`` held-out images, the same seed, so the same draws scaled). Writes
``OUT/<run>.json``, a grid of 32 samples at each temperature in ``OUT/grids/<run>-t<T>.png`` and
``OUT/README.md``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torchvision.utils import save_image

import gvae
from gvae.defaults import TEMPERATURE_GRID
from gvae.evaluation.protocol import Protocol
from gvae.evaluation.runner import run_evaluation
from gvae.evaluation.temperature import TemperatureScan, scan_data
from gvae.fileio import write_json_atomic

SCAN_SAMPLES = 500


def chosen_temperature(model, data: Path, samples: int = SCAN_SAMPLES,
                       grid: tuple[float, ...] = TEMPERATURE_GRID) -> TemperatureScan:
    """The scan of ``gvae eval temperature`` over ``grid`` on up to ``2 * samples`` images of ``data``'s train
    split."""
    return scan_data(model, str(data), "train", num_images=2 * samples, temperatures=grid, num_samples=samples)


def save_grid(model, temperature: float, path: Path, n: int = 32) -> None:
    """``n`` prior samples at ``temperature`` (seed 0) as an 8-wide grid; a conditional model's rows are its
    classes in turn."""
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = torch.arange(n) // 8 % model.num_classes if model.num_classes else None
    with torch.no_grad():
        images = model.sample(n, generator=torch.Generator().manual_seed(0), temperature=temperature,
                              labels=labels).clamp(0, 1)
    save_image(images, path, nrow=8, padding=2, pad_value=1.0)


def values_at(run: Path, protocol: Protocol, temperature: float) -> dict[str, float]:
    """Each metric's value for ``run`` under ``protocol`` with its samples drawn at ``temperature``."""
    protocol.temperature = temperature
    return {name: entry["value"] for name, entry in run_evaluation(str(run), protocol)["metrics"].items()}


def table(summaries: list[dict]) -> str:
    """Markdown: one row per run, each metric as "at T = 1 / at the chosen T"."""
    names = list(summaries[0]["at_1"])
    lines = ["| run | chosen T | " + " | ".join(f"{name} at 1 / at T" for name in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for s in summaries:
        cells = [f"{s['at_1'][name]:.4g} / {s['at_best'][name]:.4g}" for name in names]
        lines.append(f"| {Path(s['run']).name} | {s['scan']['best']:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="a packed dataset: train split for the scan, "
                                                                  "val split for the evaluation")
    parser.add_argument("--feature-weights", default=None)
    parser.add_argument("--metrics", default="mmd,msssim,fid,kid,prc")
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--num-real", type=int, default=1000)
    parser.add_argument("--scan-samples", type=int, default=SCAN_SAMPLES)
    parser.add_argument("--temperatures", default=",".join(map(str, TEMPERATURE_GRID)),
                        help="the scan's grid, comma-separated")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    summaries = []
    for run in args.runs:
        model = gvae.load(run)
        scan = chosen_temperature(model, args.data, args.scan_samples,
                                  tuple(float(t) for t in args.temperatures.split(",")))
        protocol = Protocol(data=str(args.data), metrics=args.metrics, num_samples=args.num_samples,
                            num_real=args.num_real, feature_weights=args.feature_weights)
        settings = {key: value for key, value in vars(protocol).items() if key != "temperature"}
        summary = {"run": str(run), "scan": scan.as_dict(), "protocol": settings,
                   "at_1": values_at(run, protocol, 1.0), "at_best": values_at(run, protocol, scan.best)}
        for t in sorted({1.0, scan.best}):
            save_grid(model, t, args.out / "grids" / f"{run.name}-t{t:g}.png")
        write_json_atomic(args.out / f"{run.name}.json", summary)
        summaries.append(summary)
    text = table(summaries)
    (args.out / "README.md").write_text(
        "# Metrics at the chosen sampling temperature\n\nWritten by `eval/temperature_study.py` (see its docstring "
        f"for the protocol): metrics `{args.metrics}`, {args.num_samples} samples against {args.num_real} held-out "
        f"images of `{args.data}`, each run at T = 1 and at the temperature `gvae eval temperature` chose on its "
        "training images. Sample grids at both temperatures in `grids/`.\n\n" + text)
    print(text)


if __name__ == "__main__":
    main()
