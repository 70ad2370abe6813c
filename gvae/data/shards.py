"""The training loader: shuffled, sharded across ranks and workers, equal batch counts everywhere, resumable.

How an epoch is laid out (the same computation on every rank, no communication needed):

1. The shards are put in an order drawn from (seed, epoch); their samples, concatenated in that order, form
   the epoch's sequence of N samples (when ``epoch_samples`` > N, further orders drawn from (seed, epoch,
   cycle) extend it).
2. Every rank yields ``batches_per_epoch = epoch_samples // (world_size * batch_size)`` batches. Within a rank,
   "slot" s (one per dataloader worker) produces the batches j with j % workers == s. Each slot (rank, s) gets
   its own contiguous range of the sequence, exactly as many samples as its batches need; ranges do not
   overlap, so within an epoch no sample is seen twice across all ranks and workers when
   ``epoch_samples`` <= N. The few samples left over (N - world_size * batches_per_epoch * batch_size) differ
   from epoch to epoch because the shard order does.
3. A slot reads its range (whole shards, plus partial ones at its ends), shuffles it through a buffer of
   ``shuffle_buffer`` samples drawn with a generator seeded by (seed, epoch, rank, slot), and decodes. A corrupt
   sample is skipped and counted, and the slot then reads its range once more, freshly shuffled, to fill
   the batches it owes; so a rank's batch count never depends on data errors.

Resuming: the state is (epoch, batches consumed in the epoch, and for each slot how many shuffled raw samples
it has consumed). A resumed slot replays its range through the shuffle buffer without decoding and skips that
many raw samples, so the following batches are bit-identical to an uninterrupted run, and no model step is
repeated. The state is per rank (each rank saves its own), and resuming needs the same world size, workers,
batch size, seed and data; anything else raises GvaeError.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from gvae.data.reader import BadSampleCounter, decode_image, decode_label, pixel_scale, read_raw
from gvae.data.spec import read_dataset_info, resolve_shards, shard_counts
from gvae.errors import GvaeError

log = logging.getLogger(__name__)
Piece = tuple[int, int, int]  # (shard index, first sample, end sample) within the shard
_MAX_FAILURES = 10_000  # consecutive undecodable samples before a slot gives up


class EpochPlan:
    """Which samples every (rank, slot) reads in one epoch; pure arithmetic over the shard counts."""

    def __init__(self, counts: list[int], seed: int, epoch: int, batch_size: int, world_size: int, slots: int,
                 batches_per_epoch: int):
        self.counts, self.seed, self.epoch = counts, seed, epoch
        self.batch_size, self.world_size, self.slots = batch_size, world_size, slots
        self.batches = batches_per_epoch
        self.total = sum(counts)

    def slot_batches(self, slot: int) -> range:
        """Indices (within the rank's epoch) of the batches that ``slot`` produces."""
        return range(slot, self.batches, self.slots)

    def slot_range(self, rank: int, slot: int) -> tuple[int, int]:
        """(start, length) of the slot's samples in the epoch's sequence."""
        per_rank = self.batches * self.batch_size
        before = sum(len(self.slot_batches(s)) for s in range(slot)) * self.batch_size
        return rank * per_rank + before, len(self.slot_batches(slot)) * self.batch_size

    def pieces(self, rank: int, slot: int) -> list[Piece]:
        """The slot's range as (shard, first, end) pieces, in reading order."""
        start, length = self.slot_range(rank, slot)
        pieces: list[Piece] = []
        cycle, offset = divmod(start, self.total)
        while length > 0:
            order = np.random.default_rng([self.seed, self.epoch, cycle]).permutation(len(self.counts))
            for shard in order:
                count = self.counts[shard]
                if offset >= count:
                    offset -= count
                    continue
                take = min(count - offset, length)
                pieces.append((int(shard), offset, offset + take))
                length -= take
                offset = 0
                if length == 0:
                    break
            cycle += 1
        return pieces


class _SlotStream:
    """The shuffled raw samples of one slot: its range, then again (reshuffled) as often as needed."""

    def __init__(self, shards: list[str], counts: list[int], pieces: list[Piece], buffer: int,
                 rng: np.random.Generator, counter: BadSampleCounter):
        self.shards, self.counts, self.pieces, self.rng, self.counter = shards, counts, pieces, rng, counter
        self.buffer = max(1, min(buffer, sum(end - first for _, first, end in pieces)))

    def _range(self) -> Iterator[dict[str, Any]]:
        for shard, first, end in self.pieces:
            yield from itertools.islice(read_raw(self.shards[shard], self.counter), first, end)

    def _shuffled(self, samples: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        held: list[dict[str, Any]] = []
        for sample in samples:
            if len(held) < self.buffer:
                held.append(sample)
                continue
            index = int(self.rng.integers(len(held)))
            held[index], sample = sample, held[index]
            yield sample
        while held:
            yield held.pop(int(self.rng.integers(len(held))))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            produced = 0
            for sample in self._shuffled(self._range()):
                produced += 1
                yield sample
            if produced > 0:
                continue
            everything = [(shard, 0, count) for shard, count in enumerate(self.counts)]
            if self.pieces == everything:
                raise GvaeError(f"no readable samples in {', '.join(self.shards)}; check them with "
                                "`gvae data inspect`")
            # the slot's whole range was lost (e.g. the end of a truncated shard): fill its batches from all
            # the shards instead, the same way on every run, so that the rank still yields its batch count
            log.warning("no readable sample in this loader slot's range; reading all shards for it instead")
            self.pieces = everything


class _EpochDataset(IterableDataset):
    """One epoch of one rank; dataloader worker i serves slot (i + first_batch) % slots, so that the
    dataloader's round-robin over workers returns the batches in order even when resuming mid-epoch."""

    def __init__(self, loader: TrainLoader, plan: EpochPlan, first_batch: int, positions: list[int]):
        super().__init__()
        self.loader, self.plan, self.first_batch, self.positions = loader, plan, first_batch, positions

    def __iter__(self):
        info = get_worker_info()
        worker = info.id if info is not None else 0
        slot = (worker + self.first_batch) % self.plan.slots
        loader = self.loader
        counter = BadSampleCounter()
        rng = np.random.default_rng([loader.seed, self.plan.epoch, loader.rank, slot])
        flips = np.random.default_rng([loader.seed, self.plan.epoch, loader.rank, slot, 1])
        stream = iter(_SlotStream(loader.shards, loader.counts, self.plan.pieces(loader.rank, slot),
                                  loader.shuffle_buffer, rng, counter))
        position, failures = self.positions[slot], 0
        for _ in itertools.islice(stream, position):  # resume: replay without decoding
            flips.random()
        for _ in range(self.first_batch + worker, self.plan.batches, self.plan.slots):
            images, labels, reported = [], [], counter.count
            while len(images) < loader.batch_size:
                raw = next(stream)
                position += 1
                flip = flips.random() < 0.5 and loader.hflip
                try:
                    pixels = loader.check_shape(decode_image(raw))
                    label = decode_label(raw)
                except Exception as err:  # corrupt bytes raise decoder-specific errors
                    counter.note(f"{raw.get('__url__')} {raw.get('__key__')}: {type(err).__name__}: {err}")
                    failures += 1
                    if failures > _MAX_FAILURES:
                        raise GvaeError(f"{loader.spec}: {failures} unreadable samples in a row; check the "
                                        f"shards with `gvae data inspect`") from None
                    continue
                failures = 0
                images.append(pixels[:, ::-1] if flip else pixels)
                labels.append(label)
            batch = np.stack(images).transpose(0, 3, 1, 2)
            dtype = np.uint8 if batch.dtype == np.uint8 else np.int32
            yield (torch.from_numpy(np.ascontiguousarray(batch, dtype=dtype)), torch.tensor(labels, dtype=torch.int64),
                   slot, position, counter.count - reported)


def _unwrapped_worker_errors(batches: Iterator) -> Iterator:
    """``batches``, with a GvaeError raised in a DataLoader worker re-raised as the worker's own message: the
    DataLoader re-raises it with the worker's traceback folded into the text, which would land in the
    one-line ``Error:`` that users see."""
    try:
        yield from batches
    except GvaeError as err:
        message = str(err)
        if "DataLoader worker" not in message:
            raise
        lines = [line for line in message.splitlines() if line.startswith("gvae.errors.GvaeError: ")]
        raise GvaeError(lines[-1].removeprefix("gvae.errors.GvaeError: ") if lines else message) from None


class TrainLoader:
    """Infinite iterator of training batches ``(images float32 [B, C, H, W] in [0, 1], labels int64 [B])``.

    Labels are -1 for unlabelled samples. Every rank yields exactly ``len(loader)`` batches per epoch,
    ``epoch_samples // (world_size * batch_size)``, where ``epoch_samples`` defaults to the number of samples
    in the shards (for a packed directory, its split's count in dataset.json). See the module docstring for how samples are
    divided and shuffled, and how :meth:`state_dict` / :meth:`load_state_dict` resume exactly.
    ``workers=0`` reads in the calling process. Shards at URLs are counted from the dataset.json beside them,
    or else by reading each once (see :func:`gvae.data.spec.shard_counts`).
    """

    def __init__(self, spec: str, *, batch_size: int, resolution: int, channels: int, rank: int = 0,
                 world_size: int = 1, workers: int = 2, shuffle_buffer: int = 1000, hflip: bool = False,
                 seed: int = 0, epoch_samples: int = 0, split: str = "train"):
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size or workers < 0 or seed < 0:
            raise GvaeError(f"TrainLoader: need batch_size >= 1, 0 <= rank < world_size, workers >= 0, seed >= 0; "
                            f"got batch_size={batch_size}, rank={rank}, world_size={world_size}, "
                            f"workers={workers}, seed={seed}")
        self.spec, self.batch_size, self.resolution, self.channels = spec, batch_size, resolution, channels
        self.rank, self.world_size, self.workers, self.seed = rank, world_size, workers, seed
        self.shuffle_buffer, self.hflip = shuffle_buffer, hflip
        self.shards = resolve_shards(spec, split)
        info = read_dataset_info(spec)
        self.counts = shard_counts(self.shards, info)
        if sum(self.counts) == 0:
            raise GvaeError(f"{spec}: no samples in its {len(self.shards)} shard(s); check that they exist and "
                            f"can be read (a missing file, URL or failing pipe: command is warned about above)")
        self.scale = self._check_format(info)
        self.epoch_samples = epoch_samples or sum(self.counts)
        self.batches_per_epoch = self.epoch_samples // (world_size * batch_size)
        if self.batches_per_epoch == 0:
            raise GvaeError(f"{spec}: an epoch of {self.epoch_samples} samples ({sum(self.counts)} in the shards) "
                            f"is less than one batch per rank ({world_size} x {batch_size}); use more data, a "
                            f"smaller batch, or set data.epoch_samples")
        self.slots = max(workers, 1)
        self.epoch, self.batch, self.positions = 0, 0, [0] * self.slots
        self.bad_samples = 0

    def _check_format(self, info: dict[str, Any] | None) -> float:
        """Compare the shards' resolution/channels with the requested ones; returns the value of white."""
        if info is not None:
            found, bits = (info["resolution"], info["channels"]), info.get("bits", 8)
        else:
            first = next(read_raw(self.shards[0], BadSampleCounter()), None)
            if first is None:
                raise GvaeError(f"{self.shards[0]}: no sample to check the resolution against")
            pixels = decode_image(first)
            found, bits = (pixels.shape[0], pixels.shape[2]), 16 if pixel_scale(pixels) > 255 else 8
        if found != (self.resolution, self.channels):
            raise GvaeError(f"{self.spec}: the shards hold {found[0]}x{found[0]} images with {found[1]} channel(s) "
                            f"but resolution={self.resolution}, channels={self.channels} was asked for; set "
                            f"data.resolution={found[0]} data.channels={found[1]} or repack the data")
        return 65535.0 if bits == 16 else 255.0

    def check_shape(self, pixels: np.ndarray) -> np.ndarray:
        """``pixels`` [H, W, C] if it matches the requested format; a per-sample mismatch is a corrupt sample."""
        if pixels.shape != (self.resolution, self.resolution, self.channels) or pixel_scale(pixels) != self.scale:
            raise ValueError(f"shape {list(pixels.shape)} {pixels.dtype}, expected "
                             f"{[self.resolution, self.resolution, self.channels]}")
        return pixels

    def __len__(self) -> int:
        """Batches per epoch on every rank."""
        return self.batches_per_epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            if self.batch >= self.batches_per_epoch:
                self.epoch, self.batch, self.positions = self.epoch + 1, 0, [0] * self.slots
            yield from self._epoch()

    def _epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        plan = EpochPlan(self.counts, self.seed, self.epoch, self.batch_size, self.world_size, self.slots,
                         self.batches_per_epoch)
        dataset = _EpochDataset(self, plan, self.batch, list(self.positions))
        # The DataLoader draws its workers' base seed from its generator, by default torch's global one: that
        # draw would shift the training noise and dropout of a resumed run against an uninterrupted one (the
        # iterator is created at a different step). Its own generator leaves the global stream alone; the
        # workers' seeds do not matter, since every random choice of a slot comes from its seeded numpy rng.
        batches = iter(dataset) if self.workers == 0 else iter(DataLoader(
            dataset, batch_size=None, num_workers=min(self.workers, self.batches_per_epoch - self.batch),
            generator=torch.Generator().manual_seed(self.seed)))
        for images, labels, slot, position, bad in _unwrapped_worker_errors(batches):
            self.batch += 1
            self.positions[slot] = int(position)
            if bad:
                self.bad_samples += int(bad)
                log.warning("skipped %d corrupt samples so far (rank %d)", self.bad_samples, self.rank)
            yield images.float().div_(self.scale), labels

    def state_dict(self) -> dict[str, Any]:
        """JSON-able position of this rank's loader: resuming from it yields exactly the batches that follow."""
        return {"epoch": self.epoch, "batch": self.batch, "positions": list(self.positions), "seed": self.seed,
                "rank": self.rank, "world_size": self.world_size, "slots": self.slots,
                "batch_size": self.batch_size, "epoch_samples": self.epoch_samples, "counts": list(self.counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`; the data and layout must be those the state was taken with."""
        for key in ("seed", "rank", "world_size", "slots", "batch_size", "epoch_samples", "counts"):
            mine = self.state_dict()[key]
            if state.get(key) != mine:
                raise GvaeError(f"cannot resume the data loader: its state has {key}={state.get(key)!r} but this "
                                f"run has {key}={mine!r}; resume with the same data, workers, batch size and "
                                f"number of processes")
        self.epoch, self.batch, self.positions = int(state["epoch"]), int(state["batch"]), list(state["positions"])
