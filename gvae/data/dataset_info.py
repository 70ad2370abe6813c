"""dataset.json: what a directory of shards holds, in one schema whoever writes it.

``gvae data pack`` writes it for packed data and ``gvae generate`` for a generated set in WebDataset shards
(so the set is a drop-in ``data.train``); :func:`gvae.data.read_dataset_info` reads it. Keys, in the order
written: kind, resolution, channels, bits, label_names, splits ({split: {count, shards: [{name, count,
sha256}], label_counts (labelled data)}}), pixel_mean, pixel_std (per channel, values in [0, 1]), then what
the writer adds (pack: command, skipped, seed, window, fingerprint; generate: skipped, seed, window, manifest).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from gvae.fileio import write_json_atomic

DATASET_INFO = "dataset.json"


def label_counts(label_names: list[str] | None, counts: Mapping[int, int]) -> dict[str, list[int]]:
    """``{"label_counts": [images of label 0, 1, ...]}`` for labelled data, {} for unlabelled."""
    if not label_names:
        return {}
    return {"label_counts": [counts.get(label, 0) for label in range(len(label_names))]}


def dataset_info(kind: str, resolution: int, channels: int, bits: int, label_names: list[str] | None,
                 splits: dict[str, dict[str, Any]], sums, squares, pixels: int, scale: int = 1,
                 **extra: Any) -> dict[str, Any]:
    """The dataset.json mapping; ``sums`` and ``squares`` are per-channel sums of pixel values and of their
    squares over ``pixels`` pixels, in units of ``scale`` (255 for 8-bit sums), ``extra`` the writer's keys."""
    mean = np.asarray(sums) / scale / pixels
    std = np.sqrt(np.maximum(np.asarray(squares) / scale**2 / pixels - mean**2, 0.0))
    return {"kind": kind, "resolution": resolution, "channels": channels, "bits": bits, "label_names": label_names,
            "splits": splits, "pixel_mean": [round(float(m), 6) for m in mean],
            "pixel_std": [round(float(s), 6) for s in std], **extra}


def write_dataset_info(directory: str | Path, info: dict[str, Any]) -> Path:
    """Write ``info`` as ``directory``/dataset.json, atomically."""
    return write_json_atomic(Path(directory) / DATASET_INFO, info)
