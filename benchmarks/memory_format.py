"""Training steps per second of ``gvae demo``'s recipe (or ``--recipe``'s) in the default (NCHW) and
channels-last (NHWC) layout.

    python benchmarks/memory_format.py [--steps 30] [--pairs 3] [--adversarial]
    python benchmarks/memory_format.py --recipe recipes/fmnist-32-gvae.yaml --adversarial
    -> seconds per step of each layout and the median ratio default / channels-last over alternating pairs

Each measurement builds a fresh :class:`gvae.train.loop.Trainer` on 64 px phantoms packed into a temporary
directory, or with ``--recipe`` on that recipe's own data, which must be packed (``train.channels_last`` false,
then true, alternating, so a change of machine load hits both alike), runs 3 warm-up steps, then times
``--steps`` steps. Without ``--adversarial`` the steps are the likelihood-only ones that make up 95% of the
demo; with it, full steps with the discriminator playing.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

from gvae.config import load_recipe, recipe_from_dict
from gvae.data import PackConfig, pack
from gvae.demo import demo_recipe
from gvae.train.loop import Trainer


def seconds_per_step(recipe: dict, channels_last: bool, adversarial: bool, steps: int) -> float:
    recipe = copy.deepcopy(recipe)
    recipe["train"]["channels_last"] = channels_last
    recipe["loss"]["adv_start_fraction"] = 0.0 if adversarial else 1.0
    with tempfile.TemporaryDirectory() as run:
        trainer = Trainer(recipe_from_dict(recipe), run, progress=False)
        for _ in range(3):
            trainer.train_step()
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--adversarial", action="store_true")
    parser.add_argument("--recipe", type=Path, help="a recipe to time instead of the demo's (its data packed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        if args.recipe is None:
            data = Path(directory) / "data"
            pack(PackConfig(src="-", kind="phantom", out=str(data), resolution=64, num=256, shard_size=128,
                            val_fraction=0.1))
            recipe = demo_recipe(data).to_dict()
        else:
            recipe = load_recipe(args.recipe).to_dict()
        ratios = []
        for pair in range(args.pairs):
            default = seconds_per_step(recipe, False, args.adversarial, args.steps)
            last = seconds_per_step(recipe, True, args.adversarial, args.steps)
            ratios.append(default / last)
            print(f"pair {pair}: default {default * 1000:.1f} ms/step, channels-last {last * 1000:.1f} ms/step, "
                  f"ratio {default / last:.2f}", flush=True)
    print(f"median ratio default / channels-last over {args.pairs} pairs: {statistics.median(ratios):.2f} "
          f"(spread {min(ratios):.2f} to {max(ratios):.2f})")


if __name__ == "__main__":
    main()
