"""``gvae data pack``: raw images -> ``train-NNNNNN.tar``, ``val-NNNNNN.tar`` and ``dataset.json``.

The order of the items and the train/val split are drawn from ``seed`` alone (items are split whole, so the
slices of one volume never land in both splits); decoding runs in an ordered process pool, so the shards are
byte-identical whatever ``workers`` is. Each shard is written under a temporary name and renamed into place
when complete, and after every shard ``.pack-state.json`` records where the pack stands; rerunning the same
command after an interruption continues from the last complete shard instead of starting over.
``dataset.json`` is written last: a directory holding one is a finished pack. With labels it also holds each
split's ``label_counts`` (images per label index), which conditional generation uses as class frequencies.

``per_class`` K keeps at most the first K images of each class in the train split (in the seeded order, so the
subset is deterministic); the val split is kept whole, so a small training set is still measured on the
usual held-out images.

A pack never destroys what is already in ``out`` before it has succeeded. A finished pack there is kept as it
is, unless ``overwrite`` is set; then the new pack is built beside it in ``out/.pack-new/`` and moved into
place only once it is complete, so a pack that fails (an unreadable input, a full disk) leaves the old
dataset untouched. A directory holding anything that a pack does not write (a generated set, user files) is
refused outright.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import multiprocessing
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from gvae.data.dataset_info import DATASET_INFO, dataset_info, label_counts, write_dataset_info
from gvae.data.sources import Item, Loaded, PackOptions, Scan, source_module
from gvae.data.writer import PARTIAL_SUFFIX, AtomicShardWriter, encode_png
from gvae.errors import GvaeError
from gvae.fileio import DirectoryLock, write_json_atomic

log = logging.getLogger(__name__)
STATE_NAME = ".pack-state.json"
STAGING = ".pack-new"
SPLITS = ("train", "val")
_OUTPUT = re.compile(r"^\.?(train|val)-\d{6}\.tar(" + re.escape(PARTIAL_SUFFIX) + ")?$")


@dataclass(frozen=True)
class PackConfig:
    """Everything ``gvae data pack`` was asked for; ``channels=None`` takes the source's default."""

    src: str
    kind: str
    out: str
    resolution: int
    channels: int | None = None
    bits: int = 8
    window: tuple[float, float] | None = None
    labels_from_dirs: bool = False
    num: int | None = None
    seed: int = 0
    slice_range: tuple[int, int] | None = None
    shard_size: int = 1000
    val_fraction: float = 0.05
    workers: int = 1
    max_bad_fraction: float = 0.01
    overwrite: bool = False
    per_class: int | None = None  # keep at most this many train images per class
    command: str = ""
    progress: bool = True


def _options(config: PackConfig, module) -> PackOptions:
    if config.bits not in (8, 16):
        raise GvaeError(f"--bits: got {config.bits}; choose 8 or 16")
    if config.bits == 16 and not module.INFO.supports_16bit:
        raise GvaeError(f"--bits 16 is for windowed sources (dicom, nifti, phantom), not --kind {config.kind}")
    if config.window is not None and not config.window[0] < config.window[1]:
        raise GvaeError(f"--window: got {config.window[0]},{config.window[1]}; LOW must be below HIGH")
    channels = config.channels or module.INFO.default_channels
    if channels not in (1, 3):
        raise GvaeError(f"--channels: got {channels}; choose 1 or 3")
    return PackOptions(resolution=config.resolution, channels=channels, bits=config.bits, window=config.window,
                       labels_from_dirs=config.labels_from_dirs, num=config.num, seed=config.seed,
                       slice_range=config.slice_range)


def assign_splits(scan: Scan, config: PackConfig) -> dict[str, list[Item]]:
    """Shuffle the items with ``seed``, keep at most ``num`` (except phantoms, which ``num`` already sized),
    then give the first ``round(val_fraction * n)`` unassigned items to val; source-fixed splits are kept."""
    order = np.random.default_rng(config.seed).permutation(len(scan.items))
    items = [scan.items[i] for i in order]
    if config.num is not None and config.kind != "phantom":
        items = items[:config.num]
    n_val = round(config.val_fraction * sum(item.split is None for item in items))
    splits: dict[str, list[Item]] = {split: [] for split in SPLITS}
    for item in items:
        if item.split is None:
            split = "val" if n_val > 0 else "train"
            n_val -= split == "val"
        else:
            split = item.split
        splits[split].append(item)
    return splits


def _load_safe(item: Item, load, opts: PackOptions) -> tuple[list[Loaded] | None, str]:
    """Run a source's ``load`` in a worker; any exception marks the input bad (reason returned, not raised)."""
    try:
        return load(item, opts), ""
    except Exception as err:  # corrupt files raise anything: OSError, ValueError, EOFError, decoder errors
        return None, f"{type(err).__name__}: {err}".strip()


def _results(items: list[Item], scan: Scan, opts: PackOptions, pool) -> Iterator[tuple[list[Loaded] | None, str]]:
    task = functools.partial(_load_safe, load=scan.load, opts=opts)
    if pool is None:
        return map(task, items)
    return pool.imap(task, items, chunksize=max(1, min(16, len(items) // 64)))


class _State:
    """Where a pack stands, rewritten atomically after every shard: the cursor (split, item, image within it),
    the shards done, the skipped inputs and the running pixel sums of the train split."""

    def __init__(self, out: Path, fingerprint: str, channels: int):
        self.path = out / STATE_NAME
        self.data: dict[str, Any] = {
            "fingerprint": fingerprint, "shards": {s: [] for s in SPLITS}, "cursor": {s: [0, 0] for s in SPLITS},
            "skipped": [], "sums": [0.0] * channels, "squares": [0.0] * channels, "pixels": 0,
            "label_counts": {s: {} for s in SPLITS}}

    def resume(self, out: Path) -> bool:
        """Load a previous state of the same pack whose shards are all still there; False means start over."""
        try:
            previous = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return False
        done = [shard["name"] for split in SPLITS for shard in previous.get("shards", {}).get(split, [])]
        if previous.get("fingerprint") != self.data["fingerprint"] or not all((out / n).is_file() for n in done):
            return False
        self.data = previous
        return True

    def save(self) -> None:
        write_json_atomic(self.path, self.data)


def _clean(out: Path) -> None:
    """Remove what an earlier pack left in ``out``: its shards, partial files, state and dataset.json."""
    for path in out.iterdir():
        if path.is_file() and _is_pack_output(path.name):
            path.unlink()


def _is_pack_output(name: str) -> bool:
    temporaries = (f".{name}{PARTIAL_SUFFIX}" for name in (DATASET_INFO, STATE_NAME))
    return bool(_OUTPUT.match(name)) or name in (DATASET_INFO, STATE_NAME, *temporaries)


def _finished_same_pack(out: Path, fingerprint: str) -> dict[str, Any] | None:
    """The dataset.json of a finished pack of exactly this command in ``out``, with every shard present."""
    try:
        info = json.loads((out / DATASET_INFO).read_text())
        names = [shard["name"] for entry in info["splits"].values() for shard in entry["shards"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if info.get("fingerprint") != fingerprint or not all((out / name).is_file() for name in names):
        return None
    return info


def _target_dir(out: Path, overwrite: bool) -> Path:
    """Where this pack writes: ``out`` itself when it is new, empty or an unfinished pack; ``out/.pack-new``
    when it holds a finished pack that ``overwrite`` allows replacing. Anything else is refused, untouched.
    ``out`` exists and is a directory: the pack's DirectoryLock made sure of it."""
    entries = [p.name for p in out.iterdir() if p.name != STAGING]
    foreign = [name for name in entries if not _is_pack_output(name)]
    if foreign:
        raise GvaeError(f"--out {out} holds files that gvae data pack did not write (e.g. {sorted(foreign)[0]}); "
                        "give a new or empty directory")
    if DATASET_INFO not in entries:
        return out
    if not overwrite:
        raise GvaeError(f"--out {out} already holds a packed dataset; give another --out, or pass --overwrite "
                        "to replace it once the new pack has succeeded")
    return out / STAGING


def _move_into_place(staging: Path, out: Path) -> None:
    """Replace the finished pack in ``out`` with the one completed in ``staging``; dataset.json moves last, so
    ``out`` never holds a dataset.json that lists shards of the other pack."""
    (out / DATASET_INFO).unlink(missing_ok=True)
    new = {p.name for p in staging.iterdir()}
    for path in out.iterdir():
        if _OUTPUT.match(path.name) and path.name not in new:
            path.unlink()
    for name in sorted(new - {DATASET_INFO}):
        os.replace(staging / name, out / name)
    os.replace(staging / DATASET_INFO, out / DATASET_INFO)
    staging.rmdir()


def _fingerprint(config: PackConfig, opts: PackOptions, splits: dict[str, list[Item]]) -> str:
    described = {k: v for k, v in asdict(config).items() if k not in ("workers", "command", "overwrite", "progress")}
    described["options"] = asdict(opts)
    described["items"] = [[item.source for item in splits[s]] for s in SPLITS]
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


def _check_bad(state: _State, total: int, config: PackConfig) -> None:
    skipped = state.data["skipped"]
    if skipped and len(skipped) > config.max_bad_fraction * total:
        examples = "; ".join(f"{s['source']} ({s['reason']})" for s in skipped[:3])
        raise GvaeError(f"{len(skipped)} of {total} inputs are unreadable, more than --max-bad-fraction "
                        f"{config.max_bad_fraction}: e.g. {examples}. Fix the source or raise --max-bad-fraction")


def _pack_split(split: str, items: list[Item], scan: Scan, opts: PackOptions, config: PackConfig,
                state: _State, pool, total_items: int) -> None:
    out = state.path.parent
    shards, cursor = state.data["shards"][split], state.data["cursor"][split]
    start_item, skip_images = cursor
    written = sum(shard["count"] for shard in shards)
    top = float((1 << opts.bits) - 1)
    writer: AtomicShardWriter | None = None
    total = len(items) if scan.images_per_item == 1 else None
    bar = tqdm(total=total, initial=written if total else 0, unit="img", desc=f"pack {split}", mininterval=0.5,
               disable=not config.progress)
    try:
        for position, (loaded, reason) in enumerate(_results(items[start_item:], scan, opts, pool), start_item):
            item = items[position]
            if loaded is None:
                log.warning("skipping %s: %s", item.source, reason)
                state.data["skipped"].append({"source": item.source, "reason": reason})
                _check_bad(state, total_items, config)
                continue
            for offset, image in enumerate(loaded[skip_images:], skip_images):
                if not _keep(image, split, state, config):
                    continue
                if writer is None:
                    writer = AtomicShardWriter(out / f"{split}-{len(shards):06d}.tar")
                writer.write(_sample(written, item, image))
                written += 1
                bar.update()
                if split == "train":
                    _accumulate(state.data, image.pixels, top)
                if writer.count == config.shard_size:
                    shards.append({"name": writer.path.name, **writer.close()})
                    writer = None
                    state.data["cursor"][split] = [position, offset + 1] if offset + 1 < len(loaded) \
                        else [position + 1, 0]
                    state.save()
            skip_images = 0
        if writer is not None:
            shards.append({"name": writer.path.name, **writer.close()})
            writer = None
        state.data["cursor"][split] = [len(items), 0]
        state.save()
    finally:
        bar.close()
        if writer is not None:
            writer.abort()


def _keep(image: Loaded, split: str, state: _State, config: PackConfig) -> bool:
    """Count ``image``'s label; False (not written) when its class already has ``per_class`` train images."""
    if image.label is None:
        if config.per_class is not None:
            raise GvaeError(f"--per-class needs labelled images, and --kind {config.kind} gave one without a label; "
                            f"drop --per-class or pack with labels (e.g. --labels-from-dirs)")
        return True
    counts = state.data["label_counts"][split]
    key = str(int(image.label))
    if split == "train" and config.per_class is not None and counts.get(key, 0) >= config.per_class:
        return False
    counts[key] = counts.get(key, 0) + 1
    return True


def _sample(index: int, item: Item, image: Loaded) -> dict[str, Any]:
    sample = {"__key__": f"{index:08d}", "png": encode_png(image.pixels), "json": {"source": item.source,
                                                                                  **image.meta}}
    if image.label is not None:
        sample["cls"] = int(image.label)
    return sample


def _accumulate(data: dict[str, Any], pixels: np.ndarray, top: float) -> None:
    flat = pixels.reshape(pixels.shape[0] * pixels.shape[1], -1).astype(np.float64) / top
    data["sums"] = (np.asarray(data["sums"]) + flat.sum(0)).tolist()
    data["squares"] = (np.asarray(data["squares"]) + (flat**2).sum(0)).tolist()
    data["pixels"] += flat.shape[0]


def pack(config: PackConfig) -> dict[str, Any]:
    """Pack ``config.src`` into ``config.out``; returns the dataset.json contents (also written there)."""
    module = source_module(config.kind)
    opts = _options(config, module)
    scan = module.scan(config.src, opts)
    if not scan.items:
        raise GvaeError(f"{config.src}: found nothing to pack for --kind {config.kind}; check the path and kind")
    splits = assign_splits(scan, config)
    out = Path(config.out)
    fingerprint = _fingerprint(config, opts, splits)
    done = _finished_same_pack(out, fingerprint)
    if done is not None:
        log.info("%s already holds this exact pack; nothing to do", out)
        return done
    with DirectoryLock(out, "gvae data pack"):
        return _pack_into(config, opts, scan, splits, fingerprint, out)


def _pack_into(config: PackConfig, opts: PackOptions, scan: Scan, splits: dict[str, list[Item]],
               fingerprint: str, out: Path) -> dict[str, Any]:
    target = _target_dir(out, config.overwrite)
    target.mkdir(parents=True, exist_ok=True)
    state = _State(target, fingerprint, opts.channels)
    if state.resume(target):
        log.warning("continuing an interrupted pack in %s", target)
    else:
        _clean(target)
        state.data["skipped"] = list(scan.skipped)  # folders the scan could not read
    total_items = sum(len(items) for items in splits.values())
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    pool = context.Pool(config.workers) if config.workers > 1 else None
    try:
        for split in SPLITS:
            _pack_split(split, splits[split], scan, opts, config, state, pool, total_items)
    finally:
        if pool is not None:
            pool.terminate()
    info = _finish(config, opts, scan, state)
    if target != out:
        _move_into_place(target, out)
    return info


def _finish(config: PackConfig, opts: PackOptions, scan: Scan, state: _State) -> dict[str, Any]:
    data = state.data
    counts = {split: sum(shard["count"] for shard in data["shards"][split]) for split in SPLITS}
    if counts["train"] == 0:
        raise GvaeError(f"{config.src}: the train split came out empty ({counts['val']} images went to val); "
                        f"lower --val-fraction or add images")
    if data["skipped"]:
        log.warning("skipped %d unreadable inputs (listed under 'skipped' in dataset.json): %s",
                    len(data["skipped"]), ", ".join(s["source"] for s in data["skipped"][:10]))
    splits = {split: {"count": counts[split], "shards": data["shards"][split],
                      **label_counts(scan.label_names, {int(k): n for k, n in data["label_counts"][split].items()})}
              for split in SPLITS}
    info = dataset_info(
        config.kind, opts.resolution, opts.channels, opts.bits, scan.label_names, splits, data["sums"],
        data["squares"], data["pixels"], command=config.command, skipped=data["skipped"], seed=config.seed,
        window=list(opts.window) if opts.window else None, fingerprint=data["fingerprint"])
    out = state.path.parent
    write_dataset_info(out, info)
    (out / STATE_NAME).unlink(missing_ok=True)
    return info
