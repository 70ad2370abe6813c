"""Which classes does a model's prior produce? The share of N prior samples that a classifier trained on real
images (`gvae eval train-features`) assigns to each class, beside the share it assigns among the held-out
images (its own accuracy on them says how far to trust it).

For an unconditional model this shows mode coverage: on the phantoms, whose label is the number of lesions,
it says how many prior samples carry lesions at all, where MS-SSIM diversity cannot tell lesions from broken
samples. ``gvae eval --metrics classes --feature-weights ...`` reports the same shares in results.json; this
script also draws the samples of a conditional model's classes uniformly and prints a per-class table.

    gvae eval train-features --data gvae-demo/data --out features/phantom.safetensors
    python eval/class_coverage.py gvae-demo/run --data gvae-demo/data \
        --feature-weights features/phantom.safetensors --num 1000

With ``--generated DIR`` it judges the images of a set written by ``gvae generate`` (its default shard format)
instead of fresh prior samples: what a filter such as ``--min-realism`` did to the class mix, and, for a
labelled set, the share of its samples the classifier gives their own label (the label agreement; judge a set
made with ``--label-classifier`` with another classifier than that one, e.g. ``train-features --seed 1``).
"""

from __future__ import annotations

import argparse

import torch

import gvae
from gvae.data import load_images, read_dataset_info
from gvae.fileio import write_json_atomic
from gvae.metrics.classes import label_agreement, predicted_shares, predictions, shares
from gvae.metrics.features import load_classifier


@torch.no_grad()
def prior_samples(model, num: int, seed: int, batch: int = 250) -> torch.Tensor:
    """``num`` prior samples in [0, 1] (a conditional model's labels drawn uniformly)."""
    generator = torch.Generator().manual_seed(seed)
    parts = []
    for start in range(0, num, batch):
        n = min(batch, num - start)
        labels = (torch.randint(model.num_classes, (n,), generator=generator) if model.num_classes else None)
        parts.append(model.sample(n, generator=generator, labels=labels).clamp(0, 1))
    return torch.cat(parts)


def class_coverage(run: str, data: str, feature_weights: str, num: int, seed: int,
                   generated: str | None = None) -> dict:
    """The classifier's accuracy on ``data``'s held-out images, and the share of those images ("real") and of
    ``num`` prior samples of ``run`` ("samples"; with ``generated``, that set's images) that it assigns to each
    class."""
    classifier = load_classifier(feature_weights)
    k = classifier.shape.num_classes
    real, labels = load_images(data, "val")
    samples, sample_labels = (load_images(generated, "train") if generated
                              else (prior_samples(gvae.load(run), num, seed), None))
    predicted = predictions(classifier, samples)
    result = {"run": run, "data": data, "feature_weights": feature_weights, "num": len(samples), "seed": seed,
              "generated": generated, "held_out": len(real),
              "classifier_accuracy_on_real": float((predictions(classifier, real) == labels).double().mean()),
              "real": predicted_shares(classifier, real, k).tolist(), "samples": shares(predicted, k).tolist()}
    if sample_labels is not None and bool((sample_labels >= 0).all()):
        result["agreement"], result["agreement_per_label"] = label_agreement(predicted, sample_labels, k)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--data", required=True, help="packed dataset whose val split is the held-out reference")
    parser.add_argument("--feature-weights", required=True)
    parser.add_argument("--num", type=int, default=1000, help="prior samples")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generated", default=None, help="a gvae generate output to judge instead of prior samples")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    result = class_coverage(args.run, args.data, args.feature_weights, args.num, args.seed, args.generated)
    k = len(result["real"])
    names = (read_dataset_info(args.data) or {}).get("label_names") or [str(i) for i in range(k)]
    print(f"classifier accuracy on the {result['held_out']} held-out images: "
          f"{result['classifier_accuracy_on_real']:.3f}")
    per_label = result.get("agreement_per_label") or [None] * k
    print(f"{'class':14} {'held-out':>9} {'samples':>8}" + (" agreement" if "agreement" in result else ""))
    for name, share_real, share_samples, agree in zip(names, result["real"], result["samples"], per_label,
                                                      strict=True):
        print(f"{name:14} {share_real:9.3f} {share_samples:8.3f}" + ("" if agree is None else f" {agree:9.3f}"))
    if "agreement" in result:
        print(f"samples the classifier gives their own label: {result['agreement']:.3f}")
    if args.out:
        write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
