"""Writing WebDataset shards so that a shard exists under its final name complete or not at all.

A shard is streamed into ``.<name>.partial`` in the same directory (so the final ``os.replace`` is an atomic
rename on one filesystem) while its sha256 is computed on the fly; only :meth:`AtomicShardWriter.close`
renames it into place. An interrupted writer leaves at most a ``.partial`` file, which readers never match.
Tar headers carry a fixed mtime and owner, so the same samples give byte-identical shards (same sha256).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import imagecodecs
import numpy as np
import webdataset as wds

from gvae.fileio import PARTIAL_SUFFIX

# Every PNG gvae writes (packs and generated sets) is encoded by libpng (through imagecodecs) at zlib level 1,
# with zlib's Z_RLE strategy (matches at distance 1 only, which is what filtered rows mostly hold) and the Sub
# filter on every row: OpenCV's default, the fast setting of libpng. Against Pillow at level 1 with Z_RLE
# (gvae's encoder before; Pillow tries four filters on every row and keeps the best), measured by
# benchmarks/png_encoding.py: 1.4 to 4 times faster to encode, decoded about as fast (0.6 to 1.3 of the time,
# within the runs' noise), 2 to 17% more bytes on phantoms, Fashion-MNIST, 16-bit CT and MR slices and a
# trained model's samples (1.4 to 2.4 times on an untrained model's noise-like output). Most of the CPU that
# `gvae generate` spends beside the model goes to this encoding, and on a GPU it is what bounds the rate.
PNG_LEVEL = 1
PNG_STRATEGY = imagecodecs.PNG.STRATEGY.RLE
PNG_FILTER = imagecodecs.PNG.FILTER.SUB


def encode_png(image: np.ndarray) -> bytes:
    """Losslessly encode ``image`` as PNG (at :data:`PNG_LEVEL`, :data:`PNG_STRATEGY`, :data:`PNG_FILTER`).

    ``image``: uint8 ``[H, W]`` (grey), ``[H, W, 1]``, ``[H, W, 3]`` (RGB), or uint16 ``[H, W]`` / ``[H, W, 1]``
    (16-bit grey, for ``--bits 16``). Other dtypes or shapes raise ValueError: silently rescaling would hide
    a bug upstream.
    """
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    grey_or_rgb = image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)
    if not (image.dtype == np.uint8 and grey_or_rgb) and not (image.dtype == np.uint16 and image.ndim == 2):
        raise ValueError(f"encode_png: expected uint8 [H,W]/[H,W,3] or uint16 [H,W], got {image.dtype} "
                         f"{list(image.shape)}")
    return imagecodecs.png_encode(np.ascontiguousarray(image), level=PNG_LEVEL, strategy=PNG_STRATEGY,
                                  filter=PNG_FILTER)


class _HashingFile(io.RawIOBase):
    """A write-only file that forwards to ``raw`` and hashes every byte written."""

    def __init__(self, raw):
        self.raw = raw
        self.sha256 = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.sha256.update(data)
        return self.raw.write(data)


class AtomicShardWriter:
    """Stream samples into one tar shard; it appears under ``path`` only when :meth:`close` succeeds.

    Samples are dicts with ``__key__`` and extension keys: ``png`` (bytes), ``cls`` (int, stored as ascii),
    ``json`` (dict). Used as a context manager, an exception discards the partial file.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.partial = self.path.with_name("." + self.path.name + PARTIAL_SUFFIX)
        self._file = open(self.partial, "wb")  # noqa: SIM115 (closed in close/abort)
        self._hashing = _HashingFile(self._file)
        self._tar = wds.TarWriter(self._hashing, user="gvae", group="gvae", mtime=0)  # int: no pax headers
        self.count = 0

    def write(self, sample: dict[str, Any]) -> None:
        self._tar.write(sample)
        self.count += 1

    def close(self) -> dict[str, Any]:
        """Finish the tar, fsync, rename into place; returns ``{"count", "sha256"}``."""
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.partial, self.path)
        return {"count": self.count, "sha256": self._hashing.sha256.hexdigest()}

    def abort(self) -> None:
        """Drop the partial file (the tar is closed first so that nothing writes to it later)."""
        self._tar.close()
        self._file.close()
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> AtomicShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def write_shard(path: str | os.PathLike, samples: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Write ``samples`` to the WebDataset tar ``path`` atomically; returns ``{"count", "sha256"}``."""
    with AtomicShardWriter(path) as writer:
        for sample in samples:
            writer.write(sample)
        return writer.close()

