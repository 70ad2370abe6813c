"""Where the latent codes of generated samples come from, each a pure function of (seed, stream, index, attempt).

Candidate ``attempt`` a of sample ``index`` i draws its noise eps [latent] from its own CPU generator seeded by
a 64-bit mix of (seed, stream, i, a) (:func:`gvae.seeding.splitmix_seed`), so no sample's noise depends on which other samples
are drawn with it, on the batch size or on the process count. Two sources turn that noise into latents:

* :class:`PriorLatents`: z = temperature * eps, a sample of the prior N(0, temperature^2 I); for a conditional
  model each index also gets a class (:mod:`gvae.generation.classes`).
* :class:`PosteriorLatents` (``--from-data``): sample i is variation k = i % K of real image s = i // K, and
  z = mu_s + temperature * sigma_s * eps, a sample of q(z|x_s). The encoder runs on fixed blocks of source
  images [b * BLOCK, (b + 1) * BLOCK) (the same composition every time; see :mod:`gvae.generation.producer`
  for why that matters; the last block is padded, see :func:`forward_padded`), and the images are read shard
  by shard from :class:`SourceImages`. A conditional model encodes and decodes with each source's label.

Streams keep unrelated uses of the same seed apart: ``SAMPLES`` for the set itself, ``CALIBRATION`` for the
images that set the realism threshold.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from gvae.data import read_dataset_info, resolve_shards
from gvae.data.reader import BadSampleCounter, decode_image, decode_label, read_raw, unit_chw
from gvae.data.spec import is_url, shard_counts, shard_name
from gvae.defaults import GENERATE_BLOCK
from gvae.errors import GvaeError
from gvae.fileio import sha256_file
from gvae.seeding import splitmix_seed

SAMPLES, CALIBRATION = 0, 1
BLOCK = GENERATE_BLOCK  # sample indices per group, and source images per encoder pass
PAD_MULTIPLE = 16  # every forward pass gets a batch padded to a multiple of this (see forward_padded)


def forward_padded(fn, x: torch.Tensor, *more: torch.Tensor):
    """``fn(x, *more)`` with x [n, ...] (and each of ``more``, e.g. labels [n]) zero-padded to a multiple of
    PAD_MULTIPLE rows, outputs cut back to n rows.

    Why: on the CPU, odd batches (5 or 7 rows) can give last-bit differences between 1 and 2 threads where
    multiples of 16 give none (benchmarks/README.md); so that a set's bytes do not change with the threads per
    process (1 under ``accelerate launch``, all cores otherwise), no forward pass runs on an odd batch. ``fn`` may return a
    tensor or a tuple of tensors.
    """
    n = len(x)
    padding = -n % PAD_MULTIPLE
    inputs = [torch.cat([t, t.new_zeros((padding, *t.shape[1:]))]) if padding else t for t in (x, *more)]
    out = fn(*inputs)
    return tuple(o[:n] for o in out) if isinstance(out, tuple) else out[:n]


def noise(seed: int, stream: int, indices: list[int], attempt: int, dim: int) -> torch.Tensor:
    """Standard normal noise [len(indices), dim], row r drawn from its own generator seeded by (seed, stream,
    indices[r], attempt)."""
    rows = [torch.randn(dim, generator=torch.Generator().manual_seed(splitmix_seed(seed, stream, i, attempt)))
            for i in indices]
    return torch.stack(rows) if rows else torch.empty(0, dim)


class PriorLatents:
    """Prior samples: z = temperature * eps; labelled by ``classes`` (a ClassDraw) for a conditional model."""

    def __init__(self, latent_dim: int, seed: int, temperature: float, classes=None,
                 class_names: list[str] | None = None):
        self.latent_dim, self.seed, self.temperature = latent_dim, seed, temperature
        self.classes, self.class_names = classes, list(class_names or [])

    def latents(self, stream: int, indices: list[int], attempt: int) -> torch.Tensor:
        """z [len(indices), latent] on the CPU."""
        return self.temperature * noise(self.seed, stream, indices, attempt, self.latent_dim)

    def labels(self, stream: int, indices: list[int]) -> torch.Tensor | None:
        """The classes int64 [len(indices)] the decoder is given, or None for an unconditional model."""
        if self.classes is None:
            return None
        return torch.tensor(self.classes.labels(stream, indices), dtype=torch.int64)

    def describe(self, index: int) -> tuple[int | None, dict[str, Any]]:
        """(label or None, json metadata) of sample ``index``."""
        if self.classes is None:
            return None, {"index": index}
        label = self.classes.label(SAMPLES, index)
        return label, {"index": index, "class": self.class_names[label]}


class SourceImages:
    """The real images of a shard spec, addressed by their position in shard order, read a shard at a time.

    A packed dataset directory contributes its train split; a shard pattern, list file or URL list
    contributes every shard it names. The sample count per shard comes from dataset.json or the tar headers,
    so a shard with an unreadable sample is an error (positions would shift), not a silent skip.
    """

    def __init__(self, spec: str, resolution: int, channels: int):
        self.spec = spec
        self.shards = resolve_shards(spec, "train")
        self.info = read_dataset_info(spec) or {}
        self.counts = shard_counts(self.shards, self.info)
        self.starts = [sum(self.counts[:j]) for j in range(len(self.counts))]
        self.total = sum(self.counts)
        self.shape = (channels, resolution, resolution)
        self._cached: tuple[int, list[dict[str, Any]]] | None = None
        if self.total == 0:
            raise GvaeError(f"{spec}: no images there")

    def fingerprint(self) -> str:
        """sha256 over the shards' names, counts and contents (dataset.json's hashes where it has them)."""
        known = {s["name"]: s["sha256"] for split in self.info.get("splits", {}).values()
                 for s in split["shards"] if "sha256" in s}
        digest = hashlib.sha256()
        for shard, count in zip(self.shards, self.counts, strict=True):
            name = shard_name(shard)
            content = known.get(name) or (shard if is_url(shard) else sha256_file(shard))
            digest.update(f"{name} {count} {content}\n".encode())
        return digest.hexdigest()

    def _raw(self, j: int) -> list[dict[str, Any]]:
        """Shard j's undecoded samples (PNG bytes: small, unlike decoded float images); the last one is cached."""
        if self._cached is None or self._cached[0] != j:
            counter = BadSampleCounter()
            raw = list(read_raw(self.shards[j], counter))
            if counter.count or len(raw) != self.counts[j]:
                raise GvaeError(f"{self.shards[j]}: {len(raw)} readable samples of {self.counts[j]}; every "
                                f"sample must be readable here (repack the source)")
            self._cached = (j, raw)
        return self._cached[1]

    def _decode(self, raw: dict[str, Any], shard: str) -> dict[str, Any]:
        image = unit_chw(decode_image(raw))
        if image.shape != self.shape:
            raise GvaeError(f"{shard}: images of shape {list(image.shape)}, but the model makes "
                            f"{list(self.shape)}; repack the data at the model's resolution")
        return {"key": raw["__key__"], "image": image, "label": decode_label(raw), "shard": shard_name(shard)}

    def read(self, start: int, stop: int) -> list[dict[str, Any]]:
        """Samples [start, stop): ``{"key", "image": float32 [C, H, W] in [0, 1], "label" (-1: none), "shard"}``."""
        out = []
        for j, (first, count) in enumerate(zip(self.starts, self.counts, strict=True)):
            lo, hi = max(start, first), min(stop, first + count)
            if lo < hi:
                out += [self._decode(raw, self.shards[j]) for raw in self._raw(j)[lo - first:hi - first]]
        return out


class PosteriorLatents:
    """Label-preserving variations: sample i is variation i % K of source image i // K, z ~ q(z|x).

    Calibration indices wrap around the sources, so any number of calibration candidates can be drawn.
    """

    def __init__(self, model, sources: SourceImages, variations: int, seed: int, temperature: float):
        self.model, self.sources, self.variations = model, sources, variations
        self.seed, self.temperature = seed, temperature
        self.device = next(model.parameters()).device
        self._blocks: dict[int, tuple[torch.Tensor, torch.Tensor, list[dict[str, Any]]]] = {}

    def _source(self, index: int) -> int:
        return (index // self.variations) % self.sources.total

    def _block(self, b: int) -> tuple[torch.Tensor, torch.Tensor, list[dict[str, Any]]]:
        """(mu, sigma) [n, latent] on the CPU and the samples of source block b; the last two blocks stay cached."""
        if b not in self._blocks:
            samples = self.sources.read(b * BLOCK, (b + 1) * BLOCK)
            images = torch.stack([torch.from_numpy(s["image"]) for s in samples]).to(self.device)
            labels = torch.tensor([s["label"] for s in samples], dtype=torch.int64, device=self.device)
            with torch.no_grad():
                mu, logvar = forward_padded(self.model.encode, images, labels)
            if len(self._blocks) >= 2:
                del self._blocks[min(self._blocks)]
            self._blocks[b] = (mu.float().cpu(), torch.exp(0.5 * logvar.float()).cpu(), samples)
        return self._blocks[b]

    def latents(self, stream: int, indices: list[int], attempt: int) -> torch.Tensor:
        eps = noise(self.seed, stream, indices, attempt, self.model.latent_dim)
        rows = []
        for i, e in zip(indices, eps, strict=True):
            block, offset = divmod(self._source(i), BLOCK)
            mu, sigma, _ = self._block(block)
            rows.append(mu[offset] + self.temperature * sigma[offset] * e)
        return torch.stack(rows) if rows else eps

    def _sample(self, index: int) -> dict[str, Any]:
        block, offset = divmod(self._source(index), BLOCK)
        return self._block(block)[2][offset]

    def labels(self, stream: int, indices: list[int]) -> torch.Tensor | None:
        """The sources' labels int64 [len(indices)] for a conditional model's decoder, None otherwise."""
        if not self.model.num_classes:
            return None
        return torch.tensor([self._sample(i)["label"] for i in indices], dtype=torch.int64)

    def describe(self, index: int) -> tuple[int | None, dict[str, Any]]:
        sample = self._sample(index)
        label = sample["label"] if sample["label"] >= 0 else None
        meta = {"index": index, "variation": index % self.variations,
                "source": {"shard": sample["shard"], "key": sample["key"], "label": sample["label"]}}
        names = self.sources.info.get("label_names") or []
        if label is not None and label < len(names):
            meta["class"] = names[label]
        return label, meta
