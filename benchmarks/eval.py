"""Time every eval metric at a suite's protocol, on random images and an untrained model of the recipe.

    python benchmarks/eval.py [--suite eval/suites/fmnist.yaml] [--recipe recipes/fmnist-32-gvae.yaml]
                              [--fraction 0.01] [--set-fraction 1.0]

Set-level metrics (mmd, msssim, memorization, fid, kid, isc, prc) read only images, so they run on random
images at the protocol's counts times --set-fraction (1: the full protocol, measured). The model's work
(drawing samples; recon, elbo, iwae, denoise over the held-out images) runs on --fraction of the counts and
is projected linearly to the full protocol, which is exact for per-image work up to fixed overheads. In a
real evaluation fid, kid, isc and prc share one feature pass; here each is timed with its own.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch

from gvae.config import load_recipe
from gvae.evaluation.leaderboard import load_suite
from gvae.evaluation.registry import METRICS, EvalInputs
from gvae.evaluation.runner import evaluate
from gvae.metrics import resolve_features, save_classifier
from gvae.metrics.features import ClassifierShape, DomainClassifier
from gvae.models import build_model


def _timed(fn) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="eval/suites/fmnist.yaml")
    parser.add_argument("--recipe", default="recipes/fmnist-32-gvae.yaml")
    parser.add_argument("--fraction", type=float, default=0.01, help="share of the counts for the model's work")
    parser.add_argument("--set-fraction", type=float, default=1.0, help="share of the counts for set-level metrics")
    args = parser.parse_args()

    suite, recipe = load_suite(args.suite), load_recipe(args.recipe)
    proto = suite.protocol_for(suite.seeds[0])
    shape = (recipe.data.channels, recipe.data.resolution, recipe.data.resolution)
    torch.manual_seed(0)
    model = build_model(recipe).eval()
    n_model = max(64, round(proto.num_real * args.fraction))
    counts = {k: max(100, round(v * args.set_fraction))
              for k, v in {"gen": proto.num_samples, "real": proto.num_real, "train": proto.num_train}.items()}
    print(f"{recipe.model.kind} at {shape[1]} px, {torch.get_num_threads()} torch threads; protocol of {args.suite}: "
          f"{proto.num_samples} samples, {proto.num_real} held-out, {proto.num_train} train, K={proto.iwae_k}")
    print(f"{'metric':<14}{'images':>22}{'measured s':>12}{'full protocol s':>17}")

    def row(name: str, images: str, seconds: float, full: float) -> None:
        print(f"{name:<14}{images:>22}{seconds:>12.2f}{full:>17.0f}", flush=True)

    seconds = _timed(lambda: model.sample(n_model, generator=torch.Generator().manual_seed(0)))
    row("sampling", f"{n_model}", seconds, seconds * proto.num_samples / n_model)
    real = torch.rand(n_model, *shape)
    for name, metric in METRICS.items():
        if metric.per_image:
            seconds = _timed(lambda m=name: evaluate(model, real, None, [m], num_samples=1, iwae_k=proto.iwae_k,
                                                     seed=0, batch_size=proto.batch_size))
            row(name, f"{n_model} held-out", seconds, seconds * proto.num_real / n_model)

    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "features.safetensors"
        save_classifier(DomainClassifier(ClassifierShape(shape[0], shape[1], 10)).eval(), weights)
        images = {k: torch.rand(n, *shape) for k, n in counts.items()}
        for name, metric in METRICS.items():
            if metric.per_image or not metric.in_all:  # utility trains classifiers: eval/utility_fmnist.sh
                continue
            if metric.needs_conditional and not getattr(model, "num_classes", 0):  # the suite's model is not
                continue
            inputs = EvalInputs(images["gen"], images["real"], images["train"], {}, seed=0, iwae_k=proto.iwae_k,
                                dims=math.prod(shape), features=resolve_features(weights),
                                fidelity=(name,) if metric.needs_features else ())
            seconds = _timed(lambda m=metric, i=inputs: m.compute(i))
            label = f"{counts['gen']}/{counts['real']}" + (f"/{counts['train']}" if metric.needs_train else "")
            row(name, label, seconds, seconds if args.set_fraction == 1 else float("nan"))


if __name__ == "__main__":
    main()
