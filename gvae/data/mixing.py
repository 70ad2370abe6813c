"""Mixing synthetic images into a user's own training: a map-style dataset of real and synthetic samples.

``MixedDataset(real, synthetic, synthetic_fraction)`` holds every real sample once and as many synthetic ones
as make up ``synthetic_fraction`` of it, in an order fixed by the seed. Item i is a pure function of (seed,
epoch, i), so it is the same whatever DataLoader workers read it and in whatever order (worker-safe by
construction: no state changes while reading). The synthetic samples come from

* :class:`SyntheticSet`: a set written by ``gvae generate`` (or any shards), held in memory as PNG bytes
  and decoded per item, with its labels (``cls``);
* :class:`ModelSamples`: a loaded model (a run, a checkpoint or ``hf://OWNER/NAME``), sample j being sample j
  of ``gvae generate --seed SEED``, byte for byte.

Images are float32 tensors [C, H, W] in [0, 1] (``synthetic_transform`` may turn synthetic ones into what the
real ones look like, e.g. a resize or a normalisation); labels are ints, -1 where there is none.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from gvae.data.reader import BadSampleCounter, decode_image, decode_label, load_images, read_raw, unit_chw
from gvae.data.spec import resolve_shards
from gvae.errors import GvaeError


class SyntheticSet(Dataset):
    """The samples of a generated set (a ``gvae generate`` output directory, or a shard pattern), in index order.

    All PNG bytes are read once into memory (a 64 px sample is a few kB), so that any item is a decode away
    and DataLoader workers share them after fork.
    """

    def __init__(self, spec: str):
        counter = BadSampleCounter()
        self.raw = [(raw["png"], decode_label(raw)) for url in resolve_shards(spec, "train")
                    for raw in read_raw(url, counter) if "png" in raw]
        if not self.raw:
            raise GvaeError(f"{spec}: no readable synthetic samples")

    def __len__(self) -> int:
        return len(self.raw)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        png, label = self.raw[index]
        return torch.from_numpy(unit_chw(decode_image({"png": png}))), label


class ModelSamples(Dataset):
    """Prior samples of a model: item j is sample j of ``gvae generate --seed seed --temperature temperature``
    (8-bit, as written there), an endless supply (it has no ``len``). Its label is the one the sample was drawn
    with, if any, else ``label``.

    ``model`` is a loaded model (copied, so yours is left as it is) or anything :func:`gvae.load` takes. Samples
    are made in gvae's fixed groups of 64 indices; the newest ``cache_groups`` groups stay in memory (each
    ~64 x C x H x W bytes). DataLoader workers are forked, and CUDA does not survive a fork: with a model on a
    GPU, read with ``num_workers=0``.
    """

    def __init__(self, model: Any, seed: int = 0, temperature: float = 1.0, label: int = -1, cache_groups: int = 64):
        from gvae.generation.classes import prior_latents
        from gvae.generation.producer import Producer
        from gvae.loading import in_inference_form, load_trained

        model = load_trained(model).model if isinstance(model, str) else copy.deepcopy(model).eval()  # yours untouched
        model = in_inference_form(model)  # the form gvae generate decodes in, else a pixel may differ by one level
        self.producer = Producer(model, prior_latents(model, seed, temperature)[0])  # classes: as generate draws
        self.label, self.cache_groups = label, cache_groups
        self._groups: OrderedDict[int, list[tuple[np.ndarray, int]]] = OrderedDict()

    def _group(self, g: int) -> list[tuple[np.ndarray, int]]:
        from gvae.generation import BLOCK

        if g not in self._groups:
            samples = self.producer.samples(g * BLOCK, (g + 1) * BLOCK)
            self._groups[g] = [(s.pixels, self.label if s.label is None else s.label) for s in samples]
            while len(self._groups) > self.cache_groups:
                self._groups.popitem(last=False)
        self._groups.move_to_end(g)
        return self._groups[g]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from gvae.generation import BLOCK

        pixels, label = self._group(index // BLOCK)[index % BLOCK]  # uint8 [H, W, C]
        return torch.from_numpy(unit_chw(pixels)), label


class _ImagesInMemory(Dataset):
    def __init__(self, spec: str):
        self.images, self.labels = load_images(spec, split="train")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


class MixedDataset(Dataset):
    """Every real sample once per epoch, plus synthetic samples making up ``synthetic_fraction`` of the whole.

    ``real``: a dataset of (image, label) pairs (a torchvision dataset with its transform, say), or a packed
    gvae dataset (its train split, read into memory). ``synthetic``: a :class:`SyntheticSet`, a
    :class:`ModelSamples`, or a generated set's path. With R real samples the length is ceil(R / (1 - p)) for
    p = ``synthetic_fraction`` in [0, 1): the last S = length - R items are synthetic before shuffling, and a
    permutation seeded by (seed, epoch) spreads them through the epoch. :meth:`set_epoch` e takes synthetic
    samples e*S ... (e+1)*S - 1 (wrapping around a finite set), so a model gives fresh ones every epoch; call
    it before each epoch's DataLoader iterator is made, as with a DistributedSampler.
    """

    def __init__(self, real: Dataset | str, synthetic: Dataset | str, synthetic_fraction: float, seed: int = 0,
                 synthetic_transform=None):
        if not 0 <= synthetic_fraction < 1:
            raise GvaeError(f"synthetic_fraction: got {synthetic_fraction}; must be in [0, 1)")
        self.real = _ImagesInMemory(real) if isinstance(real, str) else real
        self.synthetic = SyntheticSet(synthetic) if isinstance(synthetic, str) else synthetic
        self.num_real = len(self.real)
        self.num_synthetic = math.ceil(self.num_real / (1 - synthetic_fraction) - 1e-9) - self.num_real
        self.seed, self.synthetic_transform = seed, synthetic_transform
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        self.order = torch.randperm(len(self), generator=generator)

    def __len__(self) -> int:
        return self.num_real + self.num_synthetic

    def is_synthetic(self, index: int) -> bool:
        return int(self.order[index]) >= self.num_real

    def __getitem__(self, index: int) -> tuple[Any, int]:
        slot = int(self.order[index])
        if slot < self.num_real:
            return self.real[slot]
        j = self.epoch * self.num_synthetic + slot - self.num_real
        size = getattr(self.synthetic, "__len__", None)
        image, label = self.synthetic[j % size() if size else j]
        return (self.synthetic_transform(image) if self.synthetic_transform else image), label
