"""An LSUN category database: an lmdb whose keys are image ids and whose values are encoded webp/jpeg bytes.

Keys are read once in the main process (sorted, as stored) through an environment closed right after, since an
lmdb environment must not cross a fork; each worker process opens its own, read-only and lock-free, on first
use and keeps it for the rest of the pack. LSUN has no classes within a category.
"""

from __future__ import annotations

import io
from pathlib import Path

import lmdb
from PIL import Image

from gvae.data.imageops import photo_to_array
from gvae.data.sources import Item, Loaded, PackOptions, Scan, SourceInfo
from gvae.errors import GvaeError

INFO = SourceInfo(default_channels=3, supports_16bit=False)
_ENVS: dict[str, lmdb.Environment] = {}  # per process: path -> open environment


def _connect(path: str) -> lmdb.Environment:
    return lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False,
                     subdir=Path(path).is_dir(), max_readers=256)


def _open(path: str) -> lmdb.Environment:
    if path not in _ENVS:
        _ENVS[path] = _connect(path)
    return _ENVS[path]


def scan(src: str, opts: PackOptions) -> Scan:
    if not Path(src).exists():
        raise GvaeError(f"{src}: no such lmdb; --kind lsun expects a category database, e.g. bedroom_train_lmdb")
    try:
        env = _connect(src)
    except lmdb.Error as err:
        raise GvaeError(f"{src}: not a readable lmdb database ({err})") from None
    with env, env.begin(write=False) as txn:
        keys = list(txn.cursor().iternext(keys=True, values=False))
    items = [Item(source=key.decode("utf-8", "replace"), ref=(src, key)) for key in keys]
    return Scan(items=items, label_names=None, load=load)


def load(item: Item, opts: PackOptions) -> list[Loaded]:
    path, key = item.ref
    with _open(path).begin(write=False) as txn:
        value = txn.get(key)
    if value is None:
        raise KeyError(f"key {item.source} vanished from {path}")
    with Image.open(io.BytesIO(value)) as image:
        image.load()
        size = list(image.size)
        pixels = photo_to_array(image, opts.resolution, opts.channels)
    return [Loaded(pixels, None, {"original_size": size})]
