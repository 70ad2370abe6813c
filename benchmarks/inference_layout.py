"""Inference passes of the shipped recipes' models in the default (NCHW) and channels-last (NHWC) layout.

    python benchmarks/inference_layout.py [--pairs 3] [--threads N]
    -> per recipe: ms of each layout and the median ratio default / channels-last, for an encode + decode of a
       batch of 256 and for an IWAE estimate (K = 16) of 64 images

``gvae generate`` and ``gvae eval`` run their models through :func:`gvae.loading.in_fast_layout`. Each recipe's
model is built untrained (the cost of a pass does not depend on the weights), copied, and the copy put in
channels-last layout; the two then alternate ``--pairs`` times, so a change of machine load hits both alike.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch

from gvae.config import load_recipe
from gvae.loading import in_fast_layout
from gvae.metrics import iwae_log_likelihood
from gvae.models import build_model

RECIPES = ["fmnist-32-gvae", "fmnist-32-vae", "fmnist-32-vaegan", "phantom-64-gvae", "celebahq-256-gvae"]
ROOT = Path(__file__).resolve().parents[1]


@torch.no_grad()
def encode_decode(model: torch.nn.Module, x: torch.Tensor) -> None:
    model.decode(model.encode(x)[0])


@torch.no_grad()
def iwae(model: torch.nn.Module, x: torch.Tensor) -> None:
    iwae_log_likelihood(model.encode, model.log_px_z, x, k=16, generator=torch.Generator().manual_seed(0))


def milliseconds(work, model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    work(model, x)
    return 1000 * (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.pairs} alternating pairs")
    for name in RECIPES:
        recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
        torch.manual_seed(0)
        default = build_model(recipe).eval()
        fast = in_fast_layout(copy.deepcopy(default))
        side, channels = recipe.data.resolution, recipe.data.channels
        batch = 256 if side <= 64 else 8
        for label, work, x in (("encode+decode", encode_decode, torch.rand(batch, channels, side, side)),
                               ("IWAE K=16", iwae, torch.rand(max(1, batch // 4), channels, side, side))):
            work(default, x), work(fast, x)  # warm-up
            times = {"default": [], "channels-last": []}
            for _ in range(args.pairs):
                times["default"].append(milliseconds(work, default, x))
                times["channels-last"].append(milliseconds(work, fast, x))
            ratios = sorted(d / c for d, c in zip(times["default"], times["channels-last"], strict=True))
            print(f"{name:>18} {label:>14} x{len(x):<4} default {statistics.median(times['default']):8.0f} ms, "
                  f"channels-last {statistics.median(times['channels-last']):8.0f} ms", flush=True)
            print(f"ratio: {name} {label}, default / channels-last = {statistics.median(ratios):.2f} "
                  f"({ratios[0]:.2f}-{ratios[-1]:.2f})", flush=True)


if __name__ == "__main__":
    main()
