"""Inference passes of the shipped recipes' models in the form they train in and the form gvae infers in.

    python benchmarks/inference_form.py [--rounds 3] [--threads N]
    -> per recipe: ms of each form, and the median ratios default / inference form and channels-last /
       inference form, for an encode + decode of a batch of 256 and for an IWAE estimate (K = 16) of 64 images

``gvae generate`` and ``gvae eval`` run their models through :func:`gvae.loading.in_inference_form`:
BatchNorms folded into the convolutions before them, and channels-last (NHWC) layout. Each recipe's model is
built untrained (the cost of a pass does not depend on the weights) in three copies: the default form (NCHW,
norms apart), channels-last alone, and the inference form; they then alternate ``--rounds`` times, so a change
of machine load hits all alike. Default / inference form is what gvae's passes gain; channels-last /
inference form is what the folding adds to the layout.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch

from gvae.config import load_recipe
from gvae.loading import in_inference_form
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
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three forms, in turn")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.rounds} alternating rounds")
    for name in RECIPES:
        recipe = load_recipe(ROOT / "recipes" / f"{name}.yaml")
        torch.manual_seed(0)
        default = build_model(recipe).eval()
        forms = {"default": default, "channels-last": copy.deepcopy(default).to(memory_format=torch.channels_last),
                 "inference form": in_inference_form(copy.deepcopy(default))}
        side, channels = recipe.data.resolution, recipe.data.channels
        batch = 256 if side <= 64 else 8
        for label, work, x in (("encode+decode", encode_decode, torch.rand(batch, channels, side, side)),
                               ("IWAE K=16", iwae, torch.rand(max(1, batch // 4), channels, side, side))):
            for model in forms.values():
                work(model, x)  # warm-up
            times = {form: [] for form in forms}
            for _ in range(args.rounds):
                for form, model in forms.items():
                    times[form].append(milliseconds(work, model, x))
            print(f"{name:>18} {label:>14} x{len(x):<4} " + ", ".join(
                f"{form} {statistics.median(ms):8.0f} ms" for form, ms in times.items()), flush=True)
            for form in ("default", "channels-last"):
                ratios = sorted(t / f for t, f in zip(times[form], times["inference form"], strict=True))
                print(f"ratio: {name} {label}, {form} / inference form = {statistics.median(ratios):.2f} "
                      f"({ratios[0]:.2f}-{ratios[-1]:.2f})", flush=True)


if __name__ == "__main__":
    main()
