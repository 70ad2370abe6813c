"""TrainLoader throughput against a bare PIL decoding loop over the same PNG bytes, measured side by side.

    python benchmarks/loader.py                      # Fashion-MNIST if Debian's files are there, else phantoms
    python benchmarks/loader.py --source phantom --num 4000 --resolution 64

Packs the data into a temporary directory (Fashion-MNIST: all 60000 + 10000 images, checking the counts),
then times, on the same train shards, (a) TrainLoader at workers=0 and at --workers, and (b) a plain loop
that decodes the PNG bytes (already in memory) with PIL and stacks them into float batches. It prints images/s
for each and the ratio TrainLoader / plain loop: the price (or, with workers, the gain) of shuffling,
sharding, tar reading and inter-process transfer.
"""

from __future__ import annotations

import argparse
import io
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gvae.data import PackConfig, TrainLoader, pack, resolve_shards
from gvae.data.reader import BadSampleCounter, read_raw

FASHION = Path("/usr/share/datasets/fashion-mnist")


def pack_data(source: str, out: Path, num: int, resolution: int, workers: int) -> dict:
    if source == "fashion-mnist":
        info = pack(PackConfig(src=str(FASHION), kind="idx", out=str(out), resolution=resolution,
                               shard_size=5000, workers=workers))
        counts = (info["splits"]["train"]["count"], info["splits"]["val"]["count"])
        assert counts == (60000, 10000), f"Fashion-MNIST packed to {counts}, expected (60000, 10000)"
        return info
    return pack(PackConfig(src="-", kind="phantom", out=str(out), resolution=resolution, num=num,
                           shard_size=1000, workers=workers))


def plain_loop(pngs: list[bytes], batch_size: int, batches: int) -> float:
    """Images/s of decoding in-memory PNGs with PIL into float32 [B, C, H, W] batches, nothing else."""
    stream = itertools.cycle(pngs)
    start = time.perf_counter()
    for _ in range(batches):
        arrays = [np.asarray(Image.open(io.BytesIO(next(stream)))) for _ in range(batch_size)]
        batch = torch.from_numpy(np.stack(arrays)[:, None]).float().div_(255)
    assert batch.shape[0] == batch_size
    return batches * batch_size / (time.perf_counter() - start)


def loader_rate(spec: str, info: dict, batch_size: int, batches: int, workers: int) -> float:
    """Images/s of TrainLoader, timed after its first batch (so worker start-up is not counted)."""
    loader = TrainLoader(spec, batch_size=batch_size, resolution=info["resolution"], channels=info["channels"],
                         workers=workers, shuffle_buffer=1000)
    stream = iter(loader)
    next(stream)
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    return batches * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=["auto", "phantom", "fashion-mnist"], default="auto")
    parser.add_argument("--num", type=int, default=4000, help="phantoms to pack")
    parser.add_argument("--resolution", type=int, default=None, help="default: 28 Fashion-MNIST, 64 phantoms")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=150)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    source = args.source
    if source == "auto":
        source = "fashion-mnist" if (FASHION / "train-images-idx3-ubyte.gz").exists() else "phantom"
    resolution = args.resolution or (28 if source == "fashion-mnist" else 64)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        info = pack_data(source, Path(tmp), args.num, resolution, args.workers)
        count = info["splits"]["train"]["count"] + info["splits"]["val"]["count"]
        print(f"packed {source}: {count} images at {resolution} px in {time.perf_counter() - start:.1f} s "
              f"({count / (time.perf_counter() - start):.0f} images/s, {args.workers} workers)")
        counter = BadSampleCounter()
        pngs = [raw["png"] for shard in resolve_shards(tmp) for raw in read_raw(shard, counter)]
        plain = plain_loop(pngs, args.batch_size, args.batches)
        print(f"plain PIL decode loop (bytes in memory): {plain:9.0f} images/s")
        for workers in sorted({0, args.workers}):
            rate = loader_rate(tmp, info, args.batch_size, args.batches, workers)
            print(f"TrainLoader workers={workers}:               {rate:9.0f} images/s   "
                  f"ratio to plain loop {rate / plain:.2f}")
            print(f"ratio: loader ({workers} workers) / plain PIL decode = {rate / plain:.2f}")


if __name__ == "__main__":
    main()
