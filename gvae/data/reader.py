"""Reading shards in order: raw samples, decoding, and the skip-and-count policy for corrupt data.

A corrupt sample (bad PNG bytes, a missing image, a truncated tar) is logged and counted by a
:class:`BadSampleCounter`, never retried and never slept on, and reading goes on with the next sample.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from PIL import Image
from webdataset.tariterators import tarfile_samples

from gvae.data.spec import resolve_shards
from gvae.errors import GvaeError

log = logging.getLogger(__name__)


class BadSampleCounter:
    """A webdataset exception handler that logs, counts and continues (``count`` is the running total)."""

    def __init__(self):
        self.count = 0

    def __call__(self, exn: BaseException) -> bool:
        self.note(str(exn))
        return True

    def note(self, reason: str) -> None:
        self.count += 1
        log.warning("skipping a corrupt sample (%d so far): %s", self.count, reason[:300])


def read_raw(url: str, counter: BadSampleCounter) -> Iterator[dict[str, Any]]:
    """The undecoded samples of one shard, in tar order: ``{"__key__", "__url__", "png": bytes, ...}``."""
    yield from tarfile_samples([{"url": url}], handler=counter)


def decode_image(raw: dict[str, Any]) -> np.ndarray:
    """The sample's PNG as uint8 or uint16 ``[H, W, C]`` (C = 1 or 3). Palette/alpha images become L or RGB."""
    data = raw.get("png")
    if data is None:
        raise ValueError(f"sample {raw.get('__key__')} has no png (keys: {sorted(k for k in raw if k[0] != '_')})")
    with Image.open(io.BytesIO(data)) as image:
        if image.mode not in ("L", "RGB", "I;16"):
            image = image.convert("L" if image.mode in ("1", "LA") else "RGB")
        pixels = np.asarray(image)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def decode_label(raw: dict[str, Any]) -> int:
    """The ``cls`` entry as an int, -1 when the sample has none."""
    value = raw.get("cls")
    return -1 if value is None else int(value)


def decode_json(raw: dict[str, Any]) -> dict[str, Any]:
    value = raw.get("json")
    return {} if value is None else json.loads(value)


def pixel_scale(pixels: np.ndarray) -> float:
    """The value of white for this dtype: 255 for 8-bit, 65535 for 16-bit."""
    return 65535.0 if pixels.dtype == np.uint16 else 255.0


def unit_chw(pixels: np.ndarray) -> np.ndarray:
    """Decoded ``pixels`` [H, W, C] (8- or 16-bit) as float32 [C, H, W] in [0, 1]."""
    return np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32) / pixel_scale(pixels)


def iter_samples(spec: str, split: str = "val", limit: int | None = None) -> Iterator[dict[str, Any]]:
    """Every readable sample of ``spec`` in shard order, no shuffling, no resampling (for eval, generation).

    Yields ``{"key": str, "image": float32 [C, H, W] in [0, 1], "label": int (-1 if none), "json": dict}``;
    at most ``limit`` samples. Corrupt samples are skipped with a counted warning.
    """
    counter = BadSampleCounter()
    produced = 0
    for url in resolve_shards(spec, split):
        for raw in read_raw(url, counter):
            if limit is not None and produced >= limit:
                return
            try:
                pixels = decode_image(raw)
                sample = {"key": raw["__key__"], "label": decode_label(raw), "json": decode_json(raw)}
            except Exception as err:  # corrupt bytes raise decoder-specific errors
                counter.note(f"{raw.get('__url__')} {raw.get('__key__')}: {type(err).__name__}: {err}")
                continue
            sample["image"] = unit_chw(pixels)
            produced += 1
            yield sample


def load_images(spec: str, split: str = "val", limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All (or ``limit``) samples of ``spec`` in order: images float32 ``[N, C, H, W]`` in [0, 1], labels int64 ``[N]``."""
    images, labels = [], []
    for sample in iter_samples(spec, split, limit):
        images.append(sample["image"])
        labels.append(sample["label"])
    if not images:
        raise GvaeError(f"{spec}: no readable samples in the {split} split")
    return stack_images(images, labels, spec)


def stack_images(images: list[np.ndarray], labels: list[int], where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Float images ``[C, H, W]`` and their labels as one batch ``[N, C, H, W]``, int64 ``[N]``; GvaeError
    naming ``where`` when there are none or their shapes differ."""
    if not images:
        raise GvaeError(f"{where}: no images there")
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise GvaeError(f"{where}: images of different shapes {sorted(shapes)}; repack at one resolution")
    return torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64)
