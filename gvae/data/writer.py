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
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import webdataset as wds
from PIL import Image

from gvae.fileio import PARTIAL_SUFFIX

# zlib settings of every PNG gvae writes (packs and generated sets), against Pillow's default (level 6, default
# strategy). Level 1: a 64 px image encodes 3 times faster (0.28 against 0.83 CPU ms) and decodes in the same
# time; at 64 px that encoding was most of the CPU `gvae generate` spends beside the model. Strategy Z_RLE
# (deflate finds only runs, matches at distance 1, which is what PNG's filtered rows mostly hold) on top of
# level 1: faster again and smaller, on every kind of image measured: 0.31 against 0.47 CPU ms and 8.0 against
# 8.4 KB on 64 px photo crops, 0.10 against 0.12 ms and 856 against 978 B on 64 px phantoms, 0.33 against 0.64
# ms and 7% fewer bytes on 16-bit CT and MR slices (the size of level 6), 0.23 against 0.25 ms and 27% fewer
# bytes on an untrained model's noise-like output.
PNG_COMPRESS_LEVEL = 1
PNG_STRATEGY = zlib.Z_RLE


def encode_png(image: np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL, strategy: int = PNG_STRATEGY) -> bytes:
    """Losslessly encode ``image`` as PNG at zlib ``compress_level`` with zlib ``strategy`` (gvae writes at
    :data:`PNG_COMPRESS_LEVEL` with :data:`PNG_STRATEGY`).

    ``image``: uint8 ``[H, W]`` (grey), ``[H, W, 1]``, ``[H, W, 3]`` (RGB), or uint16 ``[H, W]`` / ``[H, W, 1]``
    (16-bit grey, for ``--bits 16``). Other dtypes or shapes raise ValueError: silently rescaling would hide
    a bug upstream.
    """
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype == np.uint8 and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        pil = Image.fromarray(image)
    elif image.dtype == np.uint16 and image.ndim == 2:
        pil = Image.fromarray(image.astype("<u2", copy=False))  # mode I;16
    else:
        raise ValueError(f"encode_png: expected uint8 [H,W]/[H,W,3] or uint16 [H,W], got {image.dtype} "
                         f"{list(image.shape)}")
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG", compress_level=compress_level, compress_type=strategy)
    return buffer.getvalue()


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

