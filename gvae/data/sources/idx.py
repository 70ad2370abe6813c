"""MNIST-style IDX files (gzipped or not): ``train-*`` pairs become the train split, ``t10k-*`` the val split.

The official split is kept, so ``--val-fraction`` does not apply. Files are matched by the standard names
(``train-images-idx3-ubyte``, ``train-images.idx3-ubyte``, optionally ``.gz``). Class names are those of
Fashion-MNIST when the directory name mentions "fashion", else the digits 0-9.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from PIL import Image

from gvae.data.imageops import grey_to_channels
from gvae.data.sources import Item, Loaded, PackOptions, Scan, SourceInfo
from gvae.errors import GvaeError

INFO = SourceInfo(default_channels=1, supports_16bit=False)
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                 "Ankle boot"]
_SPLITS = {"train": "train", "t10k": "val"}
_ARRAYS: dict[str, np.ndarray] = {}  # per process: path -> decoded array, read once


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file as a uint8 array: ``[N, H, W]`` for images (magic 0x0803), ``[N]`` for labels (0x0801)."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08:
        raise GvaeError(f"{path}: not an unsigned-byte IDX file (bad magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise GvaeError(f"{path}: truncated IDX file ({data.size} bytes of data for shape {list(shape)})")
    return data.reshape(shape)


def _find(root: Path, prefix: str, kind: str) -> Path | None:
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            path = root / f"{prefix}-{kind}{sep}idx{3 if kind == 'images' else 1}-ubyte{suffix}"
            if path.is_file():
                return path
    return None


def scan(src: str, opts: PackOptions) -> Scan:
    root = Path(src)
    if not root.is_dir():
        raise GvaeError(f"{src}: not a directory; --kind idx expects the folder holding train-images-idx3-ubyte(.gz)")
    items = []
    for prefix, split in _SPLITS.items():
        images, labels = _find(root, prefix, "images"), _find(root, prefix, "labels")
        if images is None:
            continue
        if labels is None:
            raise GvaeError(f"{images}: found no matching {prefix}-labels-idx1-ubyte(.gz) beside it")
        label_array = read_idx(labels)
        count = len(read_idx(images))
        if count != len(label_array):
            raise GvaeError(f"{images}: {count} images but {len(label_array)} labels in {labels.name}")
        items += [Item(source=f"{images.name}:{i}", ref=(str(images), i), label=int(label_array[i]), split=split)
                  for i in range(count)]
    names = FASHION_NAMES if "fashion" in str(root.resolve()).lower() else [str(d) for d in range(10)]
    return Scan(items=items, label_names=names, load=load)


def load(item: Item, opts: PackOptions) -> list[Loaded]:
    path, index = item.ref
    if path not in _ARRAYS:
        _ARRAYS[path] = read_idx(path)
    image = _ARRAYS[path][index]
    meta = {"original_size": [int(image.shape[1]), int(image.shape[0])]}
    if image.shape != (opts.resolution, opts.resolution):
        image = np.asarray(Image.fromarray(image).resize((opts.resolution,) * 2, Image.Resampling.LANCZOS))
    return [Loaded(grey_to_channels(image, opts.channels), item.label, meta)]
