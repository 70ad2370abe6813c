"""Images/s and achieved GFLOP/s of the full GAN training step, side by side in one run.

Compares, at 64 and 256 px (and 1024, for GPUs):
  * the step fed by the shard loader vs the same step fed from tensors already in memory
    (ratio < 1 means the loader costs throughput; ~1 means it is not the bottleneck);
  * fp32 vs bf16 autocast (on CPUs without bf16 matrix units bf16 is expected to be slower);

and, for the in-memory fp32 step of each configuration, including the Fashion-MNIST one (the model widths,
batch and image shape of recipes/fmnist-32-{gvae,vae,vaegan}.yaml):
  * its FLOPs per image, by network (encoder, generator, discriminator) and pass (forward, backward), counted
    with torch's FlopCounterMode over one real step (see benchmarks/flops.py), and its achieved GFLOP/s
    (FLOPs per step / measured seconds per step);
  * a bare convolution benchmark of the same run: the step's own conv2d calls (same shapes, same gradients)
    and nothing else, timed the same way, its GFLOP/s from the same counter. The ratio train step / bare conv
    is the share of this machine's convolution rate that the full step keeps.

Each configuration runs in its own process (accelerate keeps one precision per process), on phantoms packed
into a temporary directory. Usage:

    python benchmarks/train_step.py [--steps 6] [--resolutions 64 256] [--fmnist-kinds gvae vae vaegan]
                                    [--no-bf16] [--threads N]
    python benchmarks/train_step.py --resolutions 256 1024 --fmnist-kinds      # on a GPU
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

HERE = Path(__file__).resolve().parent
WIDTH = {64: ["model.channel_base=1024", "model.channel_max=64"],
         256: ["model.channel_base=2048", "model.channel_max=64"],
         1024: ["model.channel_base=8192", "model.channel_max=64"]}  # for GPUs
FMNIST_RESOLUTION = 32


def recipe_for(args):
    """The child's recipe: a Fashion-MNIST recipe file (``--kind``), or the 64/256 px GVAE of ``WIDTH``."""
    from gvae.config import apply_overrides, load_recipe, recipe_from_dict

    overrides = [f"data.train={args.data}", f"data.val={args.data}", "data.workers=2", "train.max_steps=1000000",
                 f"train.mixed_precision='{args.precision}'", "log.tensorboard=false"]
    if args.kind:
        return load_recipe(HERE.parent / "recipes" / f"fmnist-32-{args.kind}.yaml", overrides)
    return recipe_from_dict(apply_overrides({}, [*overrides, f"data.resolution={args.resolution}", "data.channels=1",
                                                 "model.latent_dim=64", f"train.batch_size={args.batch}",
                                                 *WIDTH[args.resolution]]))


def count_step(trainer):
    """Run one step under the FLOP counter; returns (its counts by network and pass, its conv calls alone)."""
    from flops import PASSES, BareConvs, StepFlops

    model = trainer.model
    networks = {"encoder": [model.ae.encoder], "generator": [model.ae.generator, model.ae.head]}
    if model.disc is not None:
        networks["discriminator"] = [model.disc]
    with StepFlops(networks) as counted:
        trainer.train_step()
    bare = BareConvs(counted.convs)
    bare.run()  # warm-up, like the step's
    counts = {"step_flops": counted.total, "bare_flops": bare.flops(),
              "by_network": {name: [counted.by_network[name, p] for p in PASSES] for name in [*networks, "other"]}}
    return counts, bare


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def one(args) -> None:
    """Child mode: time ``--steps`` steps of one configuration (with ``--flops``, each followed by a run of the
    bare convolutions, so that both see the same load) and print a JSON line."""
    import torch

    from gvae.train.loop import Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = recipe_for(args)
    trainer = Trainer(recipe, Path(args.run), progress=False)
    if args.source == "memory":
        batches = [next(trainer.batches) for _ in range(4)]
        trainer.batches = itertools.cycle(batches)
    trainer.train_step()  # warm-up: first-call allocations and worker start-up
    result, bare = count_step(trainer) if args.flops else ({}, None)
    step_seconds = bare_seconds = 0.0
    for _ in range(args.steps):
        step_seconds += seconds(trainer.train_step)
        bare_seconds += seconds(bare.run) if bare else 0.0
    result.update(batch=recipe.train.batch_size, threads=torch.get_num_threads(),
                  images_per_s=args.steps * recipe.train.batch_size / step_seconds,
                  step_seconds=step_seconds / args.steps, bare_seconds=bare_seconds / args.steps)
    print(json.dumps(result))


def run_child(data: Path, tmp: Path, args, resolution: int | None = None, kind: str | None = None,
              source: str = "memory", precision: str = "no", flops: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", "--data", str(data), "--source", source, "--precision", precision,
           "--steps", str(args.steps), "--batch", str(args.batch), "--threads", str(args.threads),
           "--run", str(tmp / f"run-{resolution or kind}-{source}-{precision}-{time.time_ns()}")]
    cmd += ["--resolution", str(resolution)] if resolution else ["--kind", kind]
    cmd += ["--flops"] if flops else []
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    return json.loads(out)


def phantoms(tmp: Path, resolution: int, batch: int) -> Path:
    from gvae.data import PackConfig, pack

    data = tmp / f"phantom-{resolution}"
    if not data.exists():
        pack(PackConfig(src="-", kind="phantom", out=str(data), resolution=resolution, channels=1,
                        num=8 * batch, shard_size=2 * batch, val_fraction=0.1))
    return data


def compare_sources_and_precisions(tmp: Path, args) -> dict[str, dict]:
    """The loader/memory and bf16/fp32 table at each of ``--resolutions``; returns the in-memory fp32 results."""
    print(f"{'px':>5} {'loader img/s':>13} {'memory img/s':>13} {'loader/memory':>14} "
          f"{'bf16 img/s':>11} {'bf16/fp32':>10}")
    measured = {}
    for resolution in args.resolutions:
        data = phantoms(tmp, resolution, args.batch)
        loader = run_child(data, tmp, args, resolution, source="loader")["images_per_s"]
        memory = run_child(data, tmp, args, resolution, flops=True)
        fp32 = memory["images_per_s"]
        bf16 = run_child(data, tmp, args, resolution, precision="bf16")["images_per_s"] if args.bf16 else None
        print(f"{resolution:>5} {loader:>13.1f} {fp32:>13.1f} {loader / fp32:>14.2f} "
              + (f"{bf16:>11.1f} {bf16 / fp32:>10.2f}" if bf16 else f"{'-':>11} {'-':>10}"), flush=True)
        print(f"ratio: train step {resolution} px, loader / in-memory = {loader / fp32:.2f}")
        if bf16:
            print(f"ratio: train step {resolution} px, bf16 / fp32 = {bf16 / fp32:.2f}")
        measured[f"{resolution} px gvae"] = memory
    return measured


def print_flops(measured: dict[str, dict]) -> None:
    """Per-image MFLOP by network and pass, achieved GFLOP/s beside the bare convolutions', and their ratio."""
    print("\nin-memory fp32 step: MFLOP per image (forward+backward) by network, counted over one step; "
          "GFLOP/s = FLOPs per step / seconds per step")
    print(f"{'config':<16} {'MFLOP/img':>9} {'encoder':>13} {'generator':>13} {'discriminator':>13} {'other':>6} "
          f"{'img/s':>7} {'step GFLOP/s':>12} {'conv MFLOP/img':>14} {'conv GFLOP/s':>12} {'step/conv':>9}")
    for name, r in measured.items():
        per_image = 1e6 * r["batch"]
        networks = {k: "+".join(f"{v / per_image:.1f}" for v in passes) if any(passes) else "-"
                    for k, passes in r["by_network"].items()}
        step_rate = r["step_flops"] / r["step_seconds"] / 1e9
        conv_rate = r["bare_flops"] / r["bare_seconds"] / 1e9
        other = sum(r["by_network"]["other"]) / per_image
        print(f"{name:<16} {r['step_flops'] / per_image:>9.1f} {networks['encoder']:>13} {networks['generator']:>13} "
              f"{networks.get('discriminator', '-'):>13} {other:>6.1f} {r['images_per_s']:>7.1f} {step_rate:>12.2f} "
              f"{r['bare_flops'] / per_image:>14.1f} {conv_rate:>12.2f} {step_rate / conv_rate:>9.2f}")
    for name, r in measured.items():
        ratio = (r["step_flops"] / r["step_seconds"]) / (r["bare_flops"] / r["bare_seconds"])
        print(f"ratio: train step {name}, GFLOP/s / bare conv GFLOP/s = {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16, help="batch of the 64 and 256 px configurations")
    parser.add_argument("--resolutions", type=int, nargs="*", default=[64, 256], choices=sorted(WIDTH))
    parser.add_argument("--fmnist-kinds", nargs="*", default=["gvae", "vae", "vaegan"],
                        choices=["gvae", "vae", "vaegan"],
                        help="model kinds of the Fashion-MNIST 32 px configuration (their recipes' widths, batch 64)")
    parser.add_argument("--no-bf16", dest="bf16", action="store_false",
                        help="skip bf16 (on a CPU without bf16 units it is ~50x slower than fp32)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--resolution", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--source", choices=["loader", "memory"], help=argparse.SUPPRESS)
    parser.add_argument("--precision", choices=["no", "bf16"], help=argparse.SUPPRESS)
    parser.add_argument("--flops", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return one(args)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        measured = compare_sources_and_precisions(tmp, args) if args.resolutions else {}
        for kind in args.fmnist_kinds:
            data = phantoms(tmp, FMNIST_RESOLUTION, 64)
            measured[f"fmnist-32 {kind}"] = run_child(data, tmp, args, kind=kind, flops=True)
        print_flops(measured)


if __name__ == "__main__":
    main()
