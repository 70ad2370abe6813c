"""Sources of raw images, one module per kind, all behind the same two functions.

``scan(src, opts) -> Scan`` lists the items cheaply in the main process (paths, lmdb keys, indices), in a
deterministic order. ``load(item, opts) -> list[Loaded]`` decodes one item into finished pixels at the target
resolution; it runs in worker processes, so it is a module-level function and items are picklable. An item
is a file, a volume, a key or an index; it may yield several images (the slices of a volume, the frames of a
multi-frame DICOM). ``load`` raising any exception means "this input is bad": the packer skips and reports it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gvae.errors import GvaeError

KINDS = ("imagefolder", "lsun", "dicom", "nifti", "idx", "phantom", "colour-phantom")
_EXTRAS = {"lsun": ("lmdb", "lsun"), "dicom": ("pydicom", "medical"), "nifti": ("nibabel", "medical")}


@dataclass(frozen=True)
class PackOptions:
    """What every source needs to know to produce final pixels."""

    resolution: int  # pixels a side of the output images
    channels: int  # 1 (grey) or 3 (RGB; grey sources replicate)
    bits: int = 8  # 8 or 16 bits per pixel (16 only for windowed sources: DICOM, NIfTI, phantom)
    window: tuple[float, float] | None = None  # physical-value window (HU) -> [0, 1]; None: the source's default
    labels_from_dirs: bool = False  # imagefolder: first directory level is the class
    num: int | None = None  # phantom: how many to make; others: keep at most this many items (seeded subset)
    seed: int = 0
    slice_range: tuple[int, int] | None = None  # nifti: axial slices [A, B) of each volume


@dataclass(frozen=True)
class Item:
    """One unit of input; ``source`` names it in sample metadata and in the skipped list."""

    source: str
    ref: Any = None  # whatever ``load`` needs; must pickle
    label: int | None = None
    split: str | None = None  # a split fixed by the source (IDX's official train/test), else None


@dataclass
class Loaded:
    """One finished image: uint8/uint16 ``[R, R]`` or ``[R, R, 3]``, its label and its metadata for ``json``."""

    pixels: np.ndarray
    label: int | None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scan:
    """What ``scan`` found: the items in order, class names (index = label) or None."""

    items: list[Item]
    label_names: list[str] | None
    load: Callable[[Item, PackOptions], list[Loaded]]
    images_per_item: int | None = 1  # None where an item can hold many images (volumes)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"source", "reason"} the scan could not read


@dataclass(frozen=True)
class SourceInfo:
    default_channels: int
    supports_16bit: bool


def source_module(kind: str):
    """The module implementing ``kind``; a missing optional dependency becomes a GvaeError saying what to install."""
    if kind not in KINDS:
        raise GvaeError(f"unknown source kind {kind!r}; choose one of {', '.join(KINDS)}")
    try:
        return importlib.import_module(f"gvae.data.sources.{kind.replace('-', '_')}")
    except ModuleNotFoundError as err:
        package, extra = _EXTRAS.get(kind, (err.name, "dev"))
        if err.name != package:
            raise
        raise GvaeError(f"--kind {kind} needs the {package} package: pip install 'gvae[{extra}]'") from None
