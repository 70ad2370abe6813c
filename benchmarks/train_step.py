"""Images/s of the full GAN training step, side by side in one run.

Compares, at 64 and 256 px:
  * the step fed by the shard loader vs the same step fed from tensors already in memory
    (ratio < 1 means the loader costs throughput; ~1 means it is not the bottleneck);
  * fp32 vs bf16 autocast (on CPUs without bf16 matrix units bf16 is expected to be slower).

Each configuration runs in its own process (accelerate keeps one precision per process), on phantoms packed
into a temporary directory. Usage:

    python benchmarks/train_step.py [--steps 6] [--resolutions 64 256] [--no-bf16]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WIDTH = {64: "model.channel_base=1024 model.channel_max=64", 256: "model.channel_base=2048 model.channel_max=64"}


def one(args) -> None:
    """Child mode: time ``--steps`` steps of one configuration and print a JSON line."""
    import torch

    from gvae.config import recipe_from_dict
    from gvae.train.loop import Trainer

    overrides = {"data": {"train": args.data, "resolution": args.resolution, "channels": 1, "workers": 2},
                 "model": {"latent_dim": 64}, "train": {"batch_size": args.batch, "max_steps": 10**6,
                                                        "mixed_precision": args.precision},
                 "log": {"tensorboard": False}}
    for item in WIDTH[args.resolution].split():
        key, value = item.split("=")
        section, name = key.split(".")
        overrides[section][name] = int(value)
    trainer = Trainer(recipe_from_dict(overrides), Path(args.run), progress=False)
    if args.source == "memory":
        batches = [next(trainer.batches) for _ in range(4)]
        trainer.batches = itertools.cycle(batches)
    trainer.train_step()  # warm-up: first-call allocations and worker start-up
    start = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    elapsed = time.perf_counter() - start
    print(json.dumps({"images_per_s": args.steps * args.batch / elapsed, "threads": torch.get_num_threads()}))


def run_child(data: Path, resolution: int, source: str, precision: str, steps: int, batch: int, tmp: Path) -> float:
    cmd = [sys.executable, __file__, "--child", "--data", str(data), "--resolution", str(resolution),
           "--source", source, "--precision", precision, "--steps", str(steps), "--batch", str(batch),
           "--run", str(tmp / f"run-{resolution}-{source}-{precision}-{time.time_ns()}")]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return json.loads(out)["images_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--no-bf16", dest="bf16", action="store_false",
                        help="skip bf16 (on a CPU without bf16 units it is ~50x slower than fp32)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--resolution", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--source", choices=["loader", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--precision", choices=["no", "bf16"], help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return one(args)

    from gvae.data import PackConfig, pack

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print(f"{'px':>5} {'loader img/s':>13} {'memory img/s':>13} {'loader/memory':>14} "
              f"{'bf16 img/s':>11} {'bf16/fp32':>10}")
        for resolution in args.resolutions:
            data = tmp / f"phantom-{resolution}"
            pack(PackConfig(src="-", kind="phantom", out=str(data), resolution=resolution,
                            num=8 * args.batch, shard_size=2 * args.batch, val_fraction=0.1))
            loader = run_child(data, resolution, "loader", "no", args.steps, args.batch, tmp)
            memory = run_child(data, resolution, "memory", "no", args.steps, args.batch, tmp)
            bf16 = run_child(data, resolution, "memory", "bf16", args.steps, args.batch, tmp) if args.bf16 else None
            print(f"{resolution:>5} {loader:>13.1f} {memory:>13.1f} {loader / memory:>14.2f} "
                  + (f"{bf16:>11.1f} {bf16 / memory:>10.2f}" if bf16 else f"{'-':>11} {'-':>10}"), flush=True)
            print(f"ratio: train step {resolution} px, loader / in-memory = {loader / memory:.2f}")
            if bf16:
                print(f"ratio: train step {resolution} px, bf16 / fp32 = {bf16 / memory:.2f}")


if __name__ == "__main__":
    main()
