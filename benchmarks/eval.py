"""Time every eval metric at a suite's protocol, on random images and an untrained model of the recipe.

    python benchmarks/eval.py [--suite eval/suites/fmnist.yaml] [--recipe recipes/fmnist-32-gvae.yaml]
                              [--fraction 0.02]

The full protocol (10,000 samples, 10,000 held-out images, K = 100) takes hours on a laptop CPU, so every
count is scaled by --fraction and the table shows the time measured at that size next to a projection to
the full protocol. Drawing the samples is timed on its own, taken out of each sample metric's time and
projected linearly; the rest is projected by the metric's cost in the counts: constant for msssim (a fixed
number of pairs), quadratic for the pairwise ones (mmd, memorization, prc), linear for the others.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from gvae.config import load_recipe
from gvae.evaluate import METRICS, evaluate
from gvae.leaderboard import load_suite
from gvae.metrics import resolve_features, save_classifier
from gvae.metrics.features import ClassifierShape, DomainClassifier
from gvae.models import build_model

POWER = {"msssim": 0, "mmd": 2, "memorization": 2, "prc": 2}  # cost ~ count ** power; default 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="eval/suites/fmnist.yaml")
    parser.add_argument("--recipe", default="recipes/fmnist-32-gvae.yaml")
    parser.add_argument("--fraction", type=float, default=0.02, help="share of the protocol's counts to run")
    args = parser.parse_args()

    suite, recipe = load_suite(args.suite), load_recipe(args.recipe)
    proto = suite.protocol_for(suite.seeds[0])
    shape = (recipe.data.channels, recipe.data.resolution, recipe.data.resolution)
    n_samples = max(100, round(proto.num_samples * args.fraction))
    n_real = max(100, round(proto.num_real * args.fraction))
    n_train = max(100, round(proto.num_train * args.fraction))
    torch.manual_seed(0)
    model = build_model(recipe).eval()
    real, train = torch.rand(n_real, *shape), torch.rand(n_train, *shape)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "features.safetensors"
        save_classifier(DomainClassifier(ClassifierShape(shape[0], shape[1], 10)).eval(), weights)
        features = resolve_features(weights)
        print(f"{recipe.model.kind} at {shape[1]} px, {torch.get_num_threads()} threads; protocol of {args.suite} "
              f"scaled by {args.fraction}: {n_samples} samples, {n_real} held-out, {n_train} train, K={proto.iwae_k}")
        start = time.perf_counter()
        with torch.no_grad():
            model.sample(n_samples, generator=torch.Generator().manual_seed(0))
        sampling = time.perf_counter() - start
        grow = proto.num_samples / n_samples
        rows = [("sampling", sampling, sampling * grow)]
        for name, metric in METRICS.items():
            start = time.perf_counter()
            evaluate(model, real, train, [name], num_samples=n_samples, iwae_k=proto.iwae_k, seed=0,
                     features=features, batch_size=proto.batch_size)
            seconds = time.perf_counter() - start
            drawn = sampling if metric.min_generated else 0.0
            scale = (proto.num_real / n_real) if metric.per_image else grow
            rows.append((name, seconds, drawn * grow + (seconds - drawn) * scale ** POWER.get(name, 1)))
    print(f"{'metric':<14}{'measured s':>12}{'full protocol s (extrapolated)':>34}")
    for name, seconds, projected in rows:
        print(f"{name:<14}{seconds:>12.2f}{projected:>34.0f}")


if __name__ == "__main__":
    main()
