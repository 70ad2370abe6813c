"""``gvae data inspect``: decode every sample of a packed dataset (or of any shards) and report what is there.

The report is a dict (the CLI formats it): per split the sample count, the count dataset.json claims, image
shapes and bit depths seen, a label histogram and the bad samples (undecodable, truncated, missing image),
each with its shard and key, plus the shards of a packed directory whose sha256 differs from dataset.json's. A grid of the first samples can be saved to look at.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from gvae.data.grids import grid_array, grid_picture
from gvae.data.reader import BadSampleCounter, decode_image, decode_label, read_raw
from gvae.data.spec import read_dataset_info, resolve_shards
from gvae.errors import GvaeError
from gvae.fileio import sha256_file

GRID_SAMPLES = 64


class _RecordingCounter(BadSampleCounter):
    """Counts like its parent and also keeps every reason, for the report."""

    def __init__(self):
        super().__init__()
        self.reasons: list[str] = []

    def note(self, reason: str) -> None:
        super().note(reason)
        self.reasons.append(reason[:300])


def _inspect_shards(shards: list[str], grid: list[np.ndarray]) -> dict[str, Any]:
    counter = _RecordingCounter()
    labels: Counter[int] = Counter()
    shapes: Counter[str] = Counter()
    count = 0
    for shard in shards:
        for raw in read_raw(shard, counter):
            try:
                pixels = decode_image(raw)
                label = decode_label(raw)
            except Exception as err:  # corrupt bytes raise decoder-specific errors
                counter.note(f"{shard} {raw.get('__key__')}: {type(err).__name__}: {err}")
                continue
            count += 1
            labels[label] += 1
            shapes[f"{pixels.shape[0]}x{pixels.shape[1]}x{pixels.shape[2]} {pixels.dtype}"] += 1
            if len(grid) < GRID_SAMPLES:
                grid.append(pixels)
    return {"shards": len(shards), "count": count, "shapes": dict(shapes),
            "labels": {str(k): v for k, v in sorted(labels.items())}, "bad": counter.reasons}


def _checksum_mismatches(directory: Path, listed: list[dict[str, Any]]) -> list[str]:
    """Shards of a packed directory whose bytes differ from the sha256 that dataset.json recorded: damage that
    decoding alone may miss (a flipped bit in a label, in metadata, or in a pixel that still decodes)."""
    problems = []
    for shard in listed:
        path = directory / shard["name"]
        if "sha256" in shard and path.is_file() and sha256_file(path) != shard["sha256"]:
            problems.append(f"{path}: sha256 differs from dataset.json's; the file was changed or damaged")
    return problems


def inspect(spec: str, grid_path: str | None = None) -> dict[str, Any]:
    """Decode everything under ``spec``; returns ``{"info": dataset.json or None, "splits": {name: report}}``."""
    if grid_path is not None and Path(grid_path).suffix.lower() not in Image.registered_extensions():
        raise GvaeError(f"--grid {grid_path}: give a file name with an image extension, e.g. grid.png")
    info = read_dataset_info(spec)
    if Path(spec).is_dir() and info is not None:
        groups = {split: resolve_shards(spec, split) for split, entry in info["splits"].items() if entry["shards"]}
    else:
        groups = {"shards": resolve_shards(spec)}
    tiles: list[np.ndarray] = []
    splits = {}
    for name, shards in groups.items():
        splits[name] = _inspect_shards(shards, tiles)
        if info is not None and name in info["splits"]:
            splits[name]["expected"] = info["splits"][name]["count"]
            splits[name]["bad"] += _checksum_mismatches(Path(spec), info["splits"][name]["shards"])
    if grid_path is not None:
        if not tiles:
            raise GvaeError(f"{spec}: no readable samples to draw a grid from")
        save_grid(tiles, grid_path)
    return {"info": info, "splits": splits}


def save_grid(tiles: list[np.ndarray], path: str) -> None:
    """Save ``[H, W, C]`` uint8/uint16 tiles of one size as a near-square PNG grid without gaps (16-bit shown as
    8-bit; grey tiles in colour when any tile is RGB)."""
    height, width = tiles[0].shape[:2]
    tiles = [t for t in tiles if t.shape[:2] == (height, width)]
    rgb = any(t.shape[2] == 3 for t in tiles)
    eight = [(t >> 8).astype(np.uint8) if t.dtype == np.uint16 else t for t in tiles]
    stacked = np.stack([np.repeat(t, 3, axis=2) if rgb and t.shape[2] == 1 else t for t in eight])
    images = torch.from_numpy(stacked).permute(0, 3, 1, 2).float() / 255
    array = grid_array(images, nrow=math.ceil(math.sqrt(len(tiles))), padding=0, pad_value=0.0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    grid_picture(array, grey=not rgb).save(path)
