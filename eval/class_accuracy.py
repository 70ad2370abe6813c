"""Are a conditional model's class-k samples recognisably of class k? Draws N prior samples of every class
and reports the fraction that a classifier trained on real images (`gvae eval train-features`) assigns to the
asked class, per class and overall, with the confusion matrix. Chance is 1 / number of classes.

    python eval/class_accuracy.py runs/fmnist-32-gvae-cond --feature-weights features/fmnist.safetensors \
        --per-class 500 --out docs/results/conditional/class_accuracy.json --grid class-rows.png

``--grid`` also draws 8 prior samples of every class (seed 0, T = 1), one row per class.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from temperature_study import save_grid

import gvae
from gvae.config import uses_feature_matching
from gvae.fileio import write_json_atomic
from gvae.metrics.features import load_classifier


@torch.no_grad()
def class_accuracy(model, classifier, per_class: int, seed: int, batch: int = 250) -> dict:
    """Per-class and overall fraction of samples the classifier assigns to their class; confusion[k][j] counts
    class-k samples classified as j."""
    k = model.num_classes
    confusion = torch.zeros(k, k, dtype=torch.int64)
    generator = torch.Generator().manual_seed(seed)
    for label in range(k):
        for start in range(0, per_class, batch):
            n = min(batch, per_class - start)
            images = model.sample(n, generator=generator, labels=torch.full((n,), label, dtype=torch.int64))
            predicted = classifier(images.clamp(0, 1)).argmax(1)
            confusion[label] += torch.bincount(predicted, minlength=k)
    per = (confusion.diagonal().double() / confusion.sum(1).double()).tolist()
    return {"accuracy": float(confusion.diagonal().sum()) / float(confusion.sum()), "chance": 1.0 / k,
            "per_class": dict(zip(model.class_names, per, strict=True)), "confusion": confusion.tolist(),
            "per_class_samples": per_class, "seed": seed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--feature-weights", required=True)
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--grid", default=None, help="PNG of 8 samples of every class, one row per class")
    args = parser.parse_args()
    model = gvae.load(args.run)
    if model.num_classes == 0:
        raise SystemExit(f"{args.run} is not a conditional model")
    recipe = model.recipe
    result = {"run": args.run, "feature_weights": args.feature_weights, "lr": recipe.optim.lr,
              "d_lr": recipe.optim.d_lr, "feature_matching": uses_feature_matching(recipe),
              "class_prior": recipe.model.class_prior,
              "steps": recipe.train.max_steps,
              **class_accuracy(model, load_classifier(args.feature_weights), args.per_class, args.seed)}
    for name, value in result["per_class"].items():
        print(f"{name:14} {value:.3f}")
    print(f"{'overall':14} {result['accuracy']:.3f} (chance {result['chance']:.3f})")
    if args.out:
        write_json_atomic(args.out, result)
    if args.grid:
        save_grid(model, 1.0, Path(args.grid), n=8 * model.num_classes)


if __name__ == "__main__":
    main()
