"""Downstream utility: do synthetic images help train a classifier of real ones? (Ravuri & Vinyals, 2019)

Every number is the accuracy (fraction in [0, 1]) on the real held-out images of the fixed classifier of
:mod:`gvae.metrics.utility_classifier`, trained on one of these training sets:

  ``utility_cas``               synthetic labelled images only: the Classification Accuracy Score
  ``utility_real_k{K}``         (a) K real images per class
  ``utility_classic_k{K}``      (b) the same images with classic augmentation (random shifts, optional flips)
  ``utility_synthetic_k{K}``    (c) the same images, with synthetic images mixed into every batch at
                                ``mix_ratio`` synthetic per real image
  ``utility_gain_k{K}``         (c) - (a): what the synthetic images add to the real ones
  ``utility_gain_vs_classic_k{K}``  (c) - (b): what they add beyond classic augmentation

Each is repeated ``seeds`` times. Repetition r draws its own K real images per class from the training
images (nested: the first 10 of a class at K = 100 are its images at K = 10), and its classifiers' initial
weights, batch order and augmentation, all from (seed, r). The variants of one repetition share these, so
a gain is a paired difference and its standard error is that of the mean difference over repetitions.
Accuracies report the std over repetitions, and every entry has the accuracy of each class (mean over
repetitions). The held-out images are only ever predicted, never trained on.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from gvae.defaults import (
    UTILITY_BATCH_SIZE,
    UTILITY_KS,
    UTILITY_MIX_RATIO,
    UTILITY_SEEDS,
    UTILITY_STEPS,
    UTILITY_SYNTHETIC_PER_CLASS,
)
from gvae.errors import GvaeError
from gvae.metrics.utility_classifier import Augmentation, Pool, fit_classifier, predict
from gvae.seeding import seeded_generator, sequence_seed

_SUBSET = 7  # purpose of the stream that picks the K real images per class


@dataclass(frozen=True)
class UtilitySettings:
    """The protocol of the utility metrics; every field is validated on construction (GvaeError names it)."""

    ks: tuple[int, ...] = UTILITY_KS  # real images per class for the augmentation variants
    seeds: int = UTILITY_SEEDS  # repetitions (classifier seeds, each with its own real subset)
    seed: int = 0  # base seed of every random choice
    mix_ratio: float = UTILITY_MIX_RATIO  # synthetic images per real image in each training batch of variant (c)
    steps: int = UTILITY_STEPS  # optimizer steps per classifier, whatever the training set's size (see README)
    batch_size: int = UTILITY_BATCH_SIZE
    lr: float = 3e-3  # Adam, cosine-decayed to 0 over the steps
    shift: int = 2  # classic augmentation: random shifts of up to this many px each way
    hflip: bool = False  # classic augmentation also mirrors (only where every class is mirror-symmetric)
    synthetic_per_class: int = UTILITY_SYNTHETIC_PER_CLASS  # images per class a model makes for the evaluation
    temperature: float = 1.0  # of the model's samples or posterior variations

    def __post_init__(self):
        minimum = {"seeds": 1, "seed": 0, "steps": 1, "batch_size": 2, "shift": 0, "synthetic_per_class": 1}
        for name, low in minimum.items():
            if getattr(self, name) < low:
                raise GvaeError(f"utility {name} must be at least {low}, got {getattr(self, name)}")
        if not self.ks or min(self.ks) < 1:
            raise GvaeError(f"utility k must be one or more positive integers, got {list(self.ks)}")
        for name in ("mix_ratio", "lr", "temperature"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise GvaeError(f"utility {name} must be a finite number above 0, got {getattr(self, name)}")
        if round(self.batch_size * self.mix_ratio / (1 + self.mix_ratio)) in (0, self.batch_size):
            raise GvaeError(f"utility mix_ratio {self.mix_ratio} leaves no synthetic or no real image in a batch of "
                            f"{self.batch_size}")


@dataclass(frozen=True)
class LabelledImages:
    """``images`` [N, C, H, W] in [0, 1] with int64 ``labels`` [N] (-1: none) and, if known, the class names."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...] | None = None


# The synthetic images of one repetition: (its real images [K * classes, C, H, W], their labels, its seed)
# -> labelled synthetic images. A fixed set ignores the arguments; a model makes them (gvae.evaluation.utility).
SyntheticSource = Callable[[torch.Tensor, torch.Tensor, int], LabelledImages]


def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> list[float | None]:
    """Fraction of the images of each class predicted as that class; None for a class with no image."""
    counts = torch.bincount(labels, minlength=num_classes)
    correct = torch.bincount(labels[predictions == labels], minlength=num_classes)
    return [None if n == 0 else c / n for c, n in zip(correct.tolist(), counts.tolist(), strict=True)]


def num_classes_of(train: LabelledImages, heldout: LabelledImages) -> int:
    """The number of classes of labelled real images (their names, or the largest label + 1)."""
    for what, data in (("training", train), ("held-out", heldout)):
        if len(data.labels) == 0 or data.labels.min() < 0:
            raise GvaeError(f"utility needs labels, but the {what} images of --data have none (pack it with labels, "
                            f"e.g. --labels-from-dirs)")
    found = int(max(train.labels.max(), heldout.labels.max())) + 1
    if train.class_names is not None and found > len(train.class_names):
        raise GvaeError(f"--data has labels up to {found - 1} but names only {len(train.class_names)} classes")
    return len(train.class_names) if train.class_names is not None else found


def _class_name(data: LabelledImages, c: int) -> str:
    return f"{c} ({data.class_names[c]})" if data.class_names else str(c)


def check_synthetic(synthetic: LabelledImages, real: LabelledImages, num_classes: int) -> None:
    """Raise GvaeError unless ``synthetic`` is labelled, shaped like ``real`` and uses ``real``'s classes."""
    if len(synthetic.labels) == 0 or synthetic.labels.min() < 0:
        raise GvaeError("the synthetic images have no labels; utility needs labelled images (generate from a "
                        "conditional model, or with --from-data from labelled data)")
    if synthetic.images.shape[1:] != real.images.shape[1:]:
        c, h, w = synthetic.images.shape[1:]
        raise GvaeError(f"the synthetic images have {c} channel(s) at {h}x{w} px but --data has "
                        f"{real.images.shape[1]} at {real.images.shape[2]}x{real.images.shape[3]} px")
    names, wanted = synthetic.class_names, real.class_names
    if names is not None and wanted is not None and tuple(names) != tuple(wanted):
        raise GvaeError(f"the classes do not match: the synthetic images have {list(names)}, --data has "
                        f"{list(wanted)}")
    if int(synthetic.labels.max()) >= num_classes:
        raise GvaeError(f"the classes do not match: the synthetic images have label {int(synthetic.labels.max())}, "
                        f"--data has {num_classes} classes (0..{num_classes - 1})")


def class_subsets(data: LabelledImages, k: int, num_classes: int, generator: torch.Generator) -> list[torch.Tensor]:
    """For each class, the indices of ``k`` of its images in a random order (the first K' of them are the
    subset at any K' < k). Raises GvaeError when a class has fewer than k."""
    subsets = []
    for c in range(num_classes):
        members = torch.nonzero(data.labels == c).flatten()
        if len(members) < k:
            raise GvaeError(f"K = {k} real images per class, but class {_class_name(data, c)} has only "
                            f"{len(members)} among the {len(data.labels)} training images read; lower --k or read "
                            f"more training images")
        subsets.append(members[torch.randperm(len(members), generator=generator)[:k]])
    return subsets


@dataclass
class _Scores:
    """Held-out accuracy (overall and per class) of one training variant, one value per repetition."""

    accuracy: list[float]
    per_class: list[list[float | None]]

    def add(self, predictions: torch.Tensor, heldout: LabelledImages, num_classes: int) -> None:
        self.accuracy.append((predictions == heldout.labels).double().mean().item())
        self.per_class.append(per_class_accuracy(predictions, heldout.labels, num_classes))


def _mean_per_class(rows: list[list[float | None]]) -> list[float | None]:
    """The mean over repetitions of each class's value; None for a class without held-out images."""
    return [None if None in column else statistics.fmean(column) for column in zip(*rows, strict=True)]


def _accuracy_entry(scores: _Scores, **extra) -> dict:
    n = len(scores.accuracy)
    return {"value": statistics.fmean(scores.accuracy), "std": statistics.stdev(scores.accuracy) if n > 1 else None,
            "n": n, "unit": "accuracy", "better": "higher", "std_of": f"std over {n} classifier seeds",
            "per_seed": scores.accuracy, "per_class": _mean_per_class(scores.per_class), **extra}


def _gain_entry(mixed: _Scores, base: _Scores, **extra) -> dict:
    diffs = [c - a for c, a in zip(mixed.accuracy, base.accuracy, strict=True)]
    n = len(diffs)
    per_class = [[None if None in (c, a) else c - a for c, a in zip(cs, as_, strict=True)]
                 for cs, as_ in zip(mixed.per_class, base.per_class, strict=True)]
    return {"value": statistics.fmean(diffs), "std": statistics.stdev(diffs) / math.sqrt(n) if n > 1 else None,
            "n": n, "unit": "accuracy", "better": "higher",
            "std_of": f"standard error of the mean paired difference over {n} classifier seeds", "per_seed": diffs,
            "per_class": _mean_per_class(per_class), **extra}


def utility_scores(train: LabelledImages, heldout: LabelledImages, settings: UtilitySettings,
                   synthetic: SyntheticSource | None = None, device: str | torch.device = "cpu",
                   progress: bool = False) -> dict[str, dict]:
    """The utility entries of results.json (names in the module docstring) for real ``train`` images, real
    ``heldout`` images (only predicted) and, if given, a source of synthetic images; without one, only the
    real and classic variants. ``progress`` shows a bar over the classifier trainings.
    """
    num_classes = num_classes_of(train, heldout)
    ks, b = sorted(set(settings.ks)), settings.batch_size
    n_synthetic = round(b * settings.mix_ratio / (1 + settings.mix_ratio))
    augmentation = Augmentation(settings.shift, settings.hflip)
    variants = ("real", "classic") + (("synthetic",) if synthetic else ())
    scores = {(v, k): _Scores([], []) for v in variants for k in ks}
    cas = _Scores([], [])
    class_subsets(train, ks[-1], num_classes, torch.Generator())  # fail before any training
    total = settings.seeds * (len(ks) * len(variants) + (synthetic is not None))
    sizes: dict[str, int] = {}
    with tqdm(total=total, desc="utility", unit="classifier", disable=not progress, dynamic_ncols=True) as bar:
        def fit(pools: list[Pool], seed: int) -> torch.Tensor:
            net = fit_classifier(pools, num_classes, settings.steps, seed, lr=settings.lr, device=device)
            bar.update(1)
            return predict(net, heldout.images)

        for r in range(settings.seeds):
            seed = sequence_seed(settings.seed, r)
            subsets = class_subsets(train, ks[-1], num_classes, seeded_generator(seed, _SUBSET))
            made = None
            for k in ks:
                idx = torch.cat([s[:k] for s in subsets])
                images, labels = train.images[idx], train.labels[idx]
                if synthetic:  # made and checked first, so that a bad set fails before any training
                    made = synthetic(images, labels, seed)
                    check_synthetic(made, train, num_classes)
                    sizes[f"k{k}"] = len(made.labels)
                scores["real", k].add(fit([Pool(images, labels, b)], seed), heldout, num_classes)
                scores["classic", k].add(fit([Pool(images, labels, b, augmentation)], seed), heldout, num_classes)
                if made is not None:
                    pools = [Pool(images, labels, b - n_synthetic), Pool(made.images, made.labels, n_synthetic)]
                    scores["synthetic", k].add(fit(pools, seed), heldout, num_classes)
            if made is not None:  # CAS on the synthetic images of the largest K
                cas.add(fit([Pool(made.images, made.labels, b)], seed), heldout, num_classes)
    return _entries(scores, cas, ks, settings, train, heldout, sizes)


def _entries(scores: dict, cas: _Scores, ks: list[int], settings: UtilitySettings, train: LabelledImages,
             heldout: LabelledImages, sizes: dict[str, int]) -> dict[str, dict]:
    common = {"class_names": list(train.class_names) if train.class_names else None, "n_heldout": len(heldout.labels),
              "steps": settings.steps, "batch_size": settings.batch_size}
    out = {}
    if cas.accuracy:
        out["utility_cas"] = _accuracy_entry(cas, n_synthetic=sizes[f"k{ks[-1]}"], **common)
    for k in ks:
        real, classic = scores["real", k], scores["classic", k]
        out[f"utility_real_k{k}"] = _accuracy_entry(real, k=k, **common)
        out[f"utility_classic_k{k}"] = _accuracy_entry(classic, k=k, shift=settings.shift, hflip=settings.hflip,
                                                        **common)
        if ("synthetic", k) in scores:
            mixed, extra = scores["synthetic", k], {"k": k, "mix_ratio": settings.mix_ratio,
                                                   "n_synthetic": sizes[f"k{k}"], **common}
            out[f"utility_synthetic_k{k}"] = _accuracy_entry(mixed, **extra)
            out[f"utility_gain_k{k}"] = _gain_entry(mixed, real, **extra)
            out[f"utility_gain_vs_classic_k{k}"] = _gain_entry(mixed, classic, **extra)
    return out
