"""``gvae generate`` as a library call: validate, load, split the shards over the ranks, write, publish.

Under ``accelerate launch`` rank r of W writes the shards j with j % W == r; the ranks share nothing but the
output directory and three barriers (after checking it, after preparing it, before the manifest). Every rank
computes the realism threshold itself, from the same canonical batches, so no tensors are exchanged.
Per step, ``batch_size`` samples are decoded while a thread pool PNG-encodes the previous ones and sums their
pixels (libpng and numpy run without the GIL), :data:`ENCODE_CHUNK` samples a task, and one more thread appends
the encoded samples to the shard in index order.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gvae import __version__, temperature_choice
from gvae.data import encode_png, load_images
from gvae.data.dataset_info import dataset_info, label_counts
from gvae.defaults import GENERATE_BATCH_SIZE, GENERATE_FORMATS, GENERATE_PRECISIONS, GENERATE_SHARD_SIZE
from gvae.errors import GvaeError
from gvae.fileio import sha256_file
from gvae.generation.classes import prior_latents
from gvae.generation.latents import BLOCK, PosteriorLatents, SourceImages
from gvae.generation.producer import CALIBRATION_SIZE, FILTERS, LabelCheck, Memorization, Producer, Sample
from gvae.generation.store import MANIFEST, OutputDir
from gvae.loading import LoadedModel, in_inference_form, load_trained
from gvae.metrics.classes import prior_label_share
from gvae.metrics.features import load_label_classifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateConfig:
    """What ``gvae generate`` was asked for. ``num=None`` is allowed with ``from_data`` only (all variations)."""

    source: str
    out: str
    num: int | None = None
    fmt: str = "wds"
    shard_size: int = GENERATE_SHARD_SIZE
    batch_size: int = GENERATE_BATCH_SIZE
    seed: int = 0
    temperature: float | None = None  # None: the run's chosen one for prior samples (gvae.temperature_choice), else 1
    from_data: str | None = None
    variations: int = 1
    min_realism: float | None = None
    max_memorization: float | None = None
    train_data: str | None = None
    label_classifier: str | None = None  # --label-classifier: keep samples this classifier gives their own label
    ema: bool = True
    progress: bool = True
    writer_threads: int | None = None  # PNG-encoding threads per process; None: see writer_threads()
    precision: str = "fp32"  # --precision: "bf16" decodes under bfloat16 autocast (see Producer)
    classes: tuple[str, ...] = ()  # --class: names or indices of a conditional model's classes (empty: all)
    class_balance: str | None = None  # --class-balance data|uniform (None: data, for a conditional model)


def _validate(c: GenerateConfig) -> None:
    """Every check that needs no file, so that a bad call fails before anything is loaded or written."""
    if c.num is None and c.from_data is None:
        raise GvaeError("--num is required (how many images to generate), unless --from-data is given")
    if c.num is not None and c.num < 1:
        raise GvaeError(f"--num: got {c.num}; ask for at least 1 image")
    if c.fmt not in GENERATE_FORMATS:
        raise GvaeError(f"--format: got {c.fmt!r}; choose {', '.join(GENERATE_FORMATS)}")
    if c.precision not in GENERATE_PRECISIONS:
        raise GvaeError(f"--precision: got {c.precision!r}; choose {', '.join(GENERATE_PRECISIONS)}")
    if min(c.shard_size, c.batch_size, c.variations, 1 if c.writer_threads is None else c.writer_threads) < 1:
        raise GvaeError("--shard-size, --batch-size, --variations and --writer-threads must be at least 1")
    if (c.classes or c.class_balance is not None) and c.from_data is not None:
        raise GvaeError("--class and --class-balance choose the classes of prior samples; --from-data keeps each "
                        "source image's label: drop one or the other")
    if c.variations != 1 and c.from_data is None:
        raise GvaeError("--variations applies to --from-data; give --from-data PATTERN too")
    if c.temperature is not None and c.temperature < 0:
        raise GvaeError(f"--temperature: got {c.temperature}; give a value >= 0")
    if c.min_realism is not None and not 0 <= c.min_realism < 1:
        raise GvaeError(f"--min-realism: got {c.min_realism}; give the fraction to reject, in [0, 1)")
    if (c.max_memorization is None) != (c.train_data is None):
        raise GvaeError("--max-memorization and --train-data go together: give both or neither")
    if c.max_memorization is not None and c.max_memorization <= 0:
        raise GvaeError(f"--max-memorization: got {c.max_memorization}; give an RMS pixel distance > 0")


def _distribution() -> tuple[Any, torch.device]:
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    return state, state.device


def writer_threads(asked: int | None, device: torch.device) -> int:
    """PNG-encoding threads of this process: ``asked``, else 2 when decoding on the CPU (torch's threads already
    use every core for the forward), else this process's share of the CPU cores less one for its main thread,
    at least 2. On a GPU the writing is what bounds the rate: a 1024 px RGB sample costs ~8 CPU ms to encode
    (~0.7 at 256 px), so two threads would cap a process at ~250 images/s at 1024 px. libpng encodes without the
    GIL, so encoding scales with threads; processes launched together on a node share its cores
    (``LOCAL_WORLD_SIZE``, set by ``accelerate launch`` and torchrun)."""
    if asked is not None:
        return asked
    if device.type == "cpu":
        return 2
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1  # Linux or not
    share = cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(2, share - 1)


def generate(config: GenerateConfig) -> dict[str, Any]:
    """Write (or finish, or extend) the set ``config`` describes; returns its manifest (on every rank)."""
    _validate(config)
    state, device = _distribution()
    loaded = load_trained(config.source, ema=config.ema, device=device)
    temperature, chosen_in = _temperature(config, loaded)
    config = replace(config, temperature=temperature)
    model = in_inference_form(loaded.model)
    latents, num, from_data, label_names, labels = _latent_source(config, model)
    memorization, train_id = _memorization_filter(config, model)
    label_check, classifier_id = _label_filter(config, model, device)
    filters = {"min_realism": config.min_realism, "max_memorization": config.max_memorization,
               "train_data_sha256": train_id, "label_classifier_sha256": classifier_id}
    identity = {"checkpoint_sha256": sha256_file(loaded.weights), "ema": loaded.ema, "seed": config.seed,
                "temperature": config.temperature, "format": config.fmt, "shard_size": config.shard_size,
                "block": BLOCK, "from_data": from_data, "filters": filters, "labels": labels,
                "precision": config.precision}
    out = OutputDir(config.out, identity)
    out.check()
    producer = Producer(model, latents, config.min_realism, memorization, label_check, config.precision)
    label_share = _label_share(model, config) if model.num_classes and state.is_main_process else None
    num_shards = math.ceil(num / config.shard_size)
    state.wait_for_everyone()
    if state.is_main_process:
        out.prepare(num_shards)
    state.wait_for_everyone()
    counts = [min(config.shard_size, num - j * config.shard_size) for j in range(num_shards)]
    todo = [j for j in range(state.process_index, num_shards, state.num_processes)
            if not out.is_complete(j, counts[j])]
    log.info("rank %d: %d shards to write", state.process_index, len(todo))
    bar = tqdm(total=sum(counts[j] for j in todo), unit="img", desc="generate", mininterval=0.5,
               disable=not (config.progress and state.is_main_process))
    threads = writer_threads(config.writer_threads, device)
    log.info("rank %d: %d PNG-encoding threads", state.process_index, threads)
    with bar, ThreadPoolExecutor(threads) as pool:
        closing: list[Future] = []  # the previous shard's closing and record, done while the next one decodes
        try:
            for j in todo:
                start = j * config.shard_size
                closing.append(_write_shard(out, j, producer, start, start + counts[j], config.batch_size, pool,
                                            bar))
                if len(closing) > 1:
                    closing.pop(0).result()  # raises what closing that shard raised
        finally:
            wait(closing)  # so that, returning or raising, no shard is left half-closed
        for future in closing:
            future.result()
    state.wait_for_everyone()
    if state.is_main_process:
        shards = out.collect(num_shards)
        manifest = {**_manifest(config, loaded, identity, num, shards, producer, memorization, label_names),
                    "temperature_chosen_in": None if chosen_in is None else str(chosen_in), "label_share": label_share}
        out.publish(manifest, _dataset(manifest, model, label_names) if config.fmt == "wds" else None)
    state.wait_for_everyone()
    return json.loads((Path(config.out) / MANIFEST).read_text())


def _temperature(config: GenerateConfig, loaded) -> tuple[float, Path | None]:
    """The temperature asked for; else, for prior samples, the one ``gvae eval temperature`` chose for these
    weights, with the file it is recorded in; else 1."""
    if config.temperature is not None:
        return config.temperature, None
    if config.from_data is not None:
        return temperature_choice.DEFAULT, None  # a choice for the prior says nothing about posterior variations
    return temperature_choice.chosen(loaded)


# Below this label_share the latent decides most of what a conditional model draws (the demo's phantoms made
# conditional: 0.04-0.09, their samples' lesion counts agreeing with their labels 0.34-0.38 of the time; the
# Fashion-MNIST GVAE: 0.49-0.70, agreeing 0.58-0.83).
LABEL_SHARE_WARNING = 0.25


def _label_share(model, config: GenerateConfig) -> float:
    """:func:`gvae.metrics.classes.label_share` of a conditional model at the set's temperature (64 latents, one
    canonical batch), with a warning, before anything is written, when its labels may not match its images."""
    share = prior_label_share(model.decode, model.latent_dim, model.num_classes, next(model.parameters()).device,
                              BLOCK, config.seed, config.temperature)
    if share < LABEL_SHARE_WARNING and config.label_classifier is None:
        log.warning("the model's label decides only %.0f%% of what changes between its samples (label_share %.3f, "
                    "below %g): its samples' labels may not match their images. Check them with gvae eval "
                    "--metrics classes, keep only the samples a classifier of the classes agrees with "
                    "(--label-classifier), or train the model with one in its loss (loss.label_classifier)",
                    100 * share, share, LABEL_SHARE_WARNING)
    return share


def _latent_source(config: GenerateConfig, model) -> tuple[Any, int, dict[str, Any] | None, list[str] | None,
                                                            dict[str, Any] | None]:
    """(latents, sample count, from_data identity or None, label names or None, class identity or None) for
    the prior or --from-data."""
    if config.from_data is None:
        latents, labels = prior_latents(model, config.seed, config.temperature, config.classes,
                                        config.class_balance)
        return latents, config.num, None, model.class_names if labels else None, labels
    sources = SourceImages(config.from_data, model.resolution, model.channels)
    available = sources.total * config.variations
    if config.num is not None and config.num > available:
        raise GvaeError(f"--num {config.num}: {sources.total} images x {config.variations} variations give only "
                        f"{available}; raise --variations or lower --num")
    latents = PosteriorLatents(model, sources, config.variations, config.seed, config.temperature)
    from_data = {"variations": config.variations, "sources": sources.total, "sha256": sources.fingerprint()}
    return latents, config.num or available, from_data, sources.info.get("label_names"), None


def _memorization_filter(config: GenerateConfig, model) -> tuple[Memorization | None, str | None]:
    """The --max-memorization filter over every --train-data image (held in memory), and the data's sha256."""
    if config.train_data is None:
        return None, None
    train_images = load_images(config.train_data, "train")[0]
    shape = [model.channels, model.resolution, model.resolution]
    if list(train_images.shape[1:]) != shape:
        raise GvaeError(f"--train-data {config.train_data}: images {list(train_images.shape[1:])}, the model "
                        f"makes {shape}; give the data the model was trained on")
    fingerprint = SourceImages(config.train_data, model.resolution, model.channels).fingerprint()
    return Memorization(train_images, config.max_memorization), fingerprint


def _label_filter(config: GenerateConfig, model, device) -> tuple[LabelCheck | None, str | None]:
    """The --label-classifier filter and the classifier file's sha256; it needs a conditional model and a
    classifier of the same classes."""
    if config.label_classifier is None:
        return None, None
    if not model.num_classes:
        raise GvaeError("--label-classifier checks the labels of a conditional model's samples; this model is "
                        "unconditional: drop --label-classifier")
    classifier = load_label_classifier(config.label_classifier, model.num_classes, model.channels,
                                       "--label-classifier")
    return LabelCheck(classifier.to(device)), sha256_file(config.label_classifier)


# Samples per task handed to the encoding pool and the tar thread. A hand-off costs about 0.05 CPU ms (a future,
# a queue, a wake-up), a quarter of what encoding and writing a 64 px sample cost; 16 a task makes it negligible
# and still splits a batch of 64 over the pool's threads.
ENCODE_CHUNK = 16


def _pixel_sums(pixels: np.ndarray) -> np.ndarray:
    """int64 [2, C]: per channel, the exact sum and sum of squares of uint8 [H, W, C] ``pixels``. One channel at
    a time, widened to int64 and squared-summed by np.dot: 2.6 CPU ms for a 1024 px RGB sample, where widening
    all channels at once (24 MB, past the caches) and squaring took 7.7 (32 when the sample is HWC-contiguous)."""
    sums = np.empty((2, pixels.shape[-1]), np.int64)
    for c in range(pixels.shape[-1]):
        plane = pixels[:, :, c].astype(np.int64).ravel()
        sums[:, c] = plane.sum(), np.dot(plane, plane)
    return sums


def _encode_all(samples: list[Sample]) -> tuple[list[bytes], np.ndarray]:
    """The PNGs of ``samples`` and the sum of their :func:`_pixel_sums`. Both run on the encoding pool (numpy
    and libpng release the GIL), not on the main thread, which feeds the decoder: there the sums capped a GPU
    process near 170 images/s at 1024 px (benchmarks/README.md)."""
    return [encode_png(sample.pixels) for sample in samples], sum(_pixel_sums(sample.pixels) for sample in samples)


def _to_sample(sample: Sample, png: bytes) -> dict[str, Any]:
    record = {"__key__": f"{sample.index:08d}", "png": png, "json": sample.meta}
    if sample.label is not None:
        record["cls"] = int(sample.label)
    return record


def _write_shard(out: OutputDir, j: int, producer: Producer, start: int, stop: int, batch_size: int,
                 pool: ThreadPoolExecutor, bar: tqdm) -> Future:
    """Decode samples [start, stop) of shard j and queue them for writing; returns the future that closes and
    records the shard (count, exact pixel sums, rejections) once they are written, on the shard's own thread, so
    that the next shard's decoding does not wait for this one's last writes, its rename and its fsync.

    The main thread only decodes: ``pool`` PNG-encodes the samples, :data:`ENCODE_CHUNK` a task, and a one-thread
    executor appends the encoded samples to the tar in submission (= index) order, so that on one torch thread
    per process the forward pass is not held up by tar headers and writes (about a tenth of a 64 px sample's
    cost).
    """
    pixel_sums = np.zeros((2, producer.model.channels), np.int64)  # added up on the tar thread
    rejected = dict.fromkeys(FILTERS, 0)
    labels: Counter[str] = Counter()
    written: deque[Future] = deque()  # one per chunk of samples, done once they are in the tar
    pending = 2 * math.ceil(batch_size / ENCODE_CHUNK)  # chunks in flight: two batches' worth
    writer = out.open_shard(j)

    def append(samples: list[Sample], encoded: Future) -> None:
        pngs, sums = encoded.result()
        for sample, png in zip(samples, pngs, strict=True):
            writer.write(_to_sample(sample, png))
        np.add(pixel_sums, sums, out=pixel_sums)

    tar = ThreadPoolExecutor(1, thread_name_prefix="gvae-tar")
    try:
        for first in range(start, stop, batch_size):
            samples = producer.samples(first, min(first + batch_size, stop))
            for sample in samples:
                for name in FILTERS:
                    rejected[name] += sample.rejected[name]
                if sample.label is not None:
                    labels[str(sample.label)] += 1
            for i in range(0, len(samples), ENCODE_CHUNK):
                chunk = samples[i:i + ENCODE_CHUNK]
                written.append(tar.submit(append, chunk, pool.submit(_encode_all, chunk)))
            while written and (len(written) > pending or written[0].done()):
                written.popleft().result()  # raises what the encoder or the tar write raised
            bar.update(len(samples))
        stats = {"rejected": rejected, "label_counts": dict(sorted(labels.items(), key=lambda item: int(item[0])))}
        closed = tar.submit(_close_shard, out, j, writer, list(written), stats, pixel_sums)
        tar.shutdown(wait=False)  # its thread runs what is queued, then ends
        return closed
    except BaseException:
        tar.shutdown(cancel_futures=True)  # no write may touch the shard once it is aborted
        writer.abort()
        raise


def _close_shard(out: OutputDir, j: int, writer, written: list[Future], stats: dict[str, Any],
                 pixel_sums: np.ndarray) -> None:
    """On shard j's tar thread, after its last sample: rename it into place and record it (the count and sha256
    its writer returns, the pixel sums, complete once every append has run on this thread, and ``stats``), or
    discard it if any of its samples failed to encode or write (``written``: their appends)."""
    try:
        for future in written:
            future.result()
        closed = writer.close()
    except BaseException:
        writer.abort()
        raise
    out.record(j, {**closed, "pixel_sum": pixel_sums[0].tolist(), "pixel_sq_sum": pixel_sums[1].tolist(), **stats})


def _label_totals(shards: list[dict[str, Any]]) -> dict[int, int]:
    """Samples per label over all shards (a set made before labels were counted has none)."""
    totals: Counter[int] = Counter()
    for shard in shards:
        totals.update({int(label): n for label, n in shard.get("label_counts", {}).items()})
    return dict(sorted(totals.items()))


def _manifest(config: GenerateConfig, loaded: LoadedModel, identity: dict[str, Any], num: int,
              shards: list[dict[str, Any]], producer: Producer, memorization: Memorization | None,
              label_names: list[str] | None) -> dict[str, Any]:
    """The manifest; ``class_counts`` maps each class name (else label) to its samples, {} when unlabelled."""
    rejected = {key: sum(s["rejected"].get(key, 0) for s in shards) for key in FILTERS}  # "label": since 0.1
    filters = {**identity["filters"], "train_data": config.train_data,
               "realism_threshold": producer.threshold,
               "calibration_candidates": CALIBRATION_SIZE if producer.threshold is not None else 0,
               "train_images": 0 if memorization is None else len(memorization.reference),
               "label_classifier": config.label_classifier,
               "rejected": rejected, "candidates": num + sum(rejected.values())}
    from_data = None if identity["from_data"] is None else {**identity["from_data"], "data": config.from_data}
    return {"checkpoint": str(loaded.checkpoint.resolve()), **identity, "recipe": loaded.recipe.to_dict(),
            "count": num, "from_data": from_data, "filters": filters, "gvae_version": __version__,
            "class_counts": {_class_name(label, label_names): n for label, n in _label_totals(shards).items()},
            "shards": shards}


def _class_name(label: int, label_names: list[str] | None) -> str:
    return label_names[label] if label_names and 0 <= label < len(label_names) else str(label)


def _dataset(manifest: dict[str, Any], model, label_names: list[str] | None) -> dict[str, Any]:
    """The set's dataset.json (:mod:`gvae.data.dataset_info`), so loaders and ``gvae data inspect`` read it."""
    pixels = manifest["count"] * model.resolution * model.resolution
    total = np.sum([s["pixel_sum"] for s in manifest["shards"]], axis=0, dtype=np.float64)
    squares = np.sum([s["pixel_sq_sum"] for s in manifest["shards"]], axis=0, dtype=np.float64)
    train = {"count": manifest["count"],
             "shards": [{k: s[k] for k in ("name", "count", "sha256")} for s in manifest["shards"]],
             **label_counts(label_names, _label_totals(manifest["shards"]))}
    return dataset_info("generated", model.resolution, model.channels, 8, label_names, {"train": train}, total,
                        squares, pixels, scale=255, skipped=[], seed=manifest["seed"], window=None,
                        manifest=MANIFEST)
