"""Where the images of the utility metrics come from: real data, a generated set on disk, or a model.

:func:`gvae.metrics.utility.utility_scores` reads tensors; this module makes them:

* :func:`load_real`: the training images (the K real per class are drawn from them) and the held-out images,
  labelled, from a packed dataset (train and val splits) or from two specs that name different shards.
* :func:`read_synthetic`: a set written by ``gvae generate``: WebDataset shards with ``cls`` (their
  dataset.json may name the classes), ``--format png`` folders (``000000/*.png`` with ``samples.jsonl``), or an
  image folder ``DIR/<class>/*.png`` whose folder names are the data's class names (compared ignoring case and
  punctuation, so ``T-shirt_top`` is ``T-shirt/top``) or class indices.
* :func:`model_source`: images a model makes for each repetition. A conditional model (``num_classes > 0``)
  samples ``synthetic_per_class`` images of every class; any other model makes posterior variations of the
  repetition's own K real images per class (z ~ q(z|x), decoded; labels copied), ceil(synthetic_per_class / K)
  per image. Model images are rounded to 8 bits, as a written set would be.

:func:`run_utility` is ``gvae eval utility``: the results.json document for a set on disk, or for none.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from gvae.data import load_images, read_dataset_info, resolve_shards
from gvae.data.reader import decode_image, stack_images, unit_chw
from gvae.errors import GvaeError
from gvae.metrics.utility import (
    LabelledImages,
    SyntheticSource,
    UtilitySettings,
    check_synthetic,
    num_classes_of,
    utility_scores,
)
from gvae.seeding import seeded_generator

_MODEL = 11  # purpose of the random streams of model-made images
BLOCK = 64  # images per model forward pass


def class_names_of(spec: str) -> tuple[str, ...] | None:
    """The ``label_names`` of the dataset.json beside ``spec``, if it has them."""
    names = (read_dataset_info(spec) or {}).get("label_names")
    return tuple(names) if names else None


def load_real(data: str, train_data: str | None = None, num_real: int | None = None,
              num_train: int | None = None) -> tuple[LabelledImages, LabelledImages]:
    """(training images, held-out images) of ``data``: a packed directory's train and val splits, or the
    shards of ``train_data`` and of ``data``. Raises GvaeError if both would read the same shards."""
    if train_data is None and not Path(data).is_dir():
        raise GvaeError(f"--data {data} is a shard pattern, which has no train and val splits; give a packed "
                        f"dataset directory, or name the training images with --train-data")
    train_spec = train_data or data
    shared = set(resolve_shards(train_spec, "train")) & set(resolve_shards(data, "val"))
    if shared:
        raise GvaeError(f"the training and held-out images share {len(shared)} shard(s) (e.g. {sorted(shared)[0]}); "
                        f"held-out images must never train the classifier")
    names = class_names_of(data)
    heldout = LabelledImages(*load_images(data, "val", limit=num_real), names)
    train = LabelledImages(*load_images(train_spec, "train", limit=num_train), class_names_of(train_spec) or names)
    return train, heldout


def _normalised(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", name.lower())


def _class_index(folder: str, names: tuple[str, ...] | None) -> int:
    if names:
        matches = [i for i, name in enumerate(names) if _normalised(name) == _normalised(folder)]
        if matches:
            return matches[0]
    if folder.isdigit() and (names is None or int(folder) < len(names)):
        return int(folder)
    raise GvaeError(f"the classes do not match: the synthetic image folder {folder!r} is none of --data's classes "
                    f"({', '.join(names) if names else 'unnamed: folders must be class indices'})")


def _png(path: Path) -> np.ndarray:
    return unit_chw(decode_image({"png": path.read_bytes(), "__key__": str(path)}))


def _png_folders(folders: list[Path]) -> LabelledImages:
    images, labels = [], []
    for folder in folders:
        for line in (folder / "samples.jsonl").read_text().splitlines():
            entry = json.loads(line)
            images.append(_png(folder / f"{entry['__key__']}.png"))
            labels.append(int(entry.get("cls", -1)))
    return LabelledImages(*stack_images(images, labels, str(folders[0].parent)))


def _image_folder(root: Path, folders: list[Path], names: tuple[str, ...] | None) -> LabelledImages:
    images, labels = [], []
    for folder in folders:
        label = _class_index(folder.name, names)
        for path in sorted(folder.glob("*.png")):
            images.append(_png(path))
            labels.append(label)
    return LabelledImages(*stack_images(images, labels, str(root)))


def read_synthetic(spec: str, data_class_names: tuple[str, ...] | None = None) -> LabelledImages:
    """The labelled images of a generated set (the forms in the module docstring); an image folder's classes
    are mapped onto ``data_class_names``. Unlabelled images keep label -1 (the caller refuses them)."""
    path = Path(spec)
    if path.is_dir() and not (path / "dataset.json").is_file() and not list(path.glob("train-*.tar")):
        folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        if folders and all((f / "samples.jsonl").is_file() for f in folders):
            return _png_folders(folders)
        if folders:
            return _image_folder(path, folders, data_class_names)
        raise GvaeError(f"--synthetic {spec}: no shards, png folders or class folders there")
    return LabelledImages(*load_images(spec, "train"), class_names_of(spec))


def _quantised(x: torch.Tensor) -> torch.Tensor:
    return (x.float().clamp(0, 1) * 255).round().cpu() / 255


def model_source(model, settings: UtilitySettings) -> SyntheticSource:
    """The model's images for one repetition (see the module docstring); deterministic in the seed."""
    device = next(model.parameters()).device
    num_classes = getattr(model, "num_classes", 0)
    names = getattr(model, "class_names", None)

    @torch.no_grad()
    def conditional(images: torch.Tensor, labels: torch.Tensor, seed: int) -> LabelledImages:
        wanted = torch.arange(num_classes).repeat_interleave(settings.synthetic_per_class)
        made = [model.sample(len(rows), generator=seeded_generator(seed, _MODEL, j),
                             temperature=settings.temperature, labels=rows.to(device))
                for j, rows in enumerate(wanted.split(BLOCK))]
        return LabelledImages(_quantised(torch.cat(made)), wanted, tuple(names) if names else None)

    @torch.no_grad()
    def variations(images: torch.Tensor, labels: torch.Tensor, seed: int) -> LabelledImages:
        per_image = math.ceil(settings.synthetic_per_class / int(torch.bincount(labels).max()))
        sources, copied = images.repeat_interleave(per_image, 0), labels.repeat_interleave(per_image)
        made = []
        for j, x in enumerate(sources.split(BLOCK)):
            mu, logvar = model.encode(x.to(device))
            eps = torch.randn(mu.shape, generator=seeded_generator(seed, _MODEL, j)).to(device)
            made.append(model.decode(mu + settings.temperature * torch.exp(0.5 * logvar) * eps))
        return LabelledImages(_quantised(torch.cat(made)), copied)

    return conditional if num_classes > 0 else variations


def run_utility(data: str, settings: UtilitySettings, synthetic: str | None = None, train_data: str | None = None,
                num_real: int | None = None, num_train: int | None = None, device: str | torch.device = "cpu",
                progress: bool = False) -> dict:
    """``gvae eval utility``: the results.json document (``checkpoint`` is the set's, from its manifest)."""
    train, heldout = load_real(data, train_data, num_real, num_train)
    source, checkpoint = None, None
    if synthetic is not None:
        made = read_synthetic(synthetic, train.class_names)
        check_synthetic(made, train, num_classes_of(train, heldout))  # before the first classifier trains

        def source(images: torch.Tensor, labels: torch.Tensor, seed: int) -> LabelledImages:
            return made  # a fixed set, whatever the repetition

        manifest = Path(synthetic) / "manifest.json"
        checkpoint = json.loads(manifest.read_text()).get("checkpoint") if manifest.is_file() else None
    metrics = utility_scores(train, heldout, settings, source, device=device, progress=progress)
    protocol = {**asdict(settings), "ks": list(settings.ks), "train_data": train_data, "num_real": num_real,
                "num_train": num_train}
    return {"checkpoint": checkpoint, "synthetic": synthetic, "data": data, "protocol": protocol,
            "metrics": metrics, "skipped": {}}
