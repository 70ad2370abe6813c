"""How many steps of recipe A take as long as STEPS steps of recipe B, timed side by side on this machine.

    python eval/equal_time_steps.py recipes/fmnist-32-gvae.yaml recipes/fmnist-32-vae.yaml 938
    -> prints one integer: the steps of A (the GVAE) that cost the wall-clock time of 938 steps of B

The equal-wall-clock comparison of eval/reproduce_fmnist.sh trains A for that many steps (its schedules scale
with train.max_steps, so a shorter run is a properly finished run, not an early checkpoint). Both trainers run
in this one process on the same real batches held in memory, and their steps alternate in rounds, so a change
of machine load during the measurement hits both alike; the ratio of the summed times is what is used (the
loader costs the same for both, and is not the bottleneck: benchmarks/README.md). Details go to stderr.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

from gvae.config import load_recipe
from gvae.train.loop import Trainer


def step_seconds(trainers: list[Trainer], rounds: int, steps_per_round: int) -> list[float]:
    """Total seconds each trainer spent in ``rounds * steps_per_round`` training steps, in alternating rounds."""
    totals = [0.0] * len(trainers)
    for _ in range(rounds):
        for i, trainer in enumerate(trainers):
            start = time.perf_counter()
            for _ in range(steps_per_round):
                trainer.train_step()
            totals[i] += time.perf_counter() - start
    return totals


def in_memory(trainer: Trainer, batches: int = 4) -> Trainer:
    """The trainer fed from ``batches`` real batches read once and cycled, after one warm-up step."""
    trainer.batches = itertools.cycle([next(trainer.batches) for _ in range(batches)])
    trainer.train_step()  # first-call allocations
    return trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe_a", type=Path)
    parser.add_argument("recipe_b", type=Path)
    parser.add_argument("steps", type=int, help="steps of B")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps-per-round", type=int, default=4)
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE overrides applied to both recipes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trainers = [in_memory(Trainer(load_recipe(path, ["log.tensorboard=false", *args.overrides]),
                                      Path(tmp) / name, progress=False))
                    for name, path in (("a", args.recipe_a), ("b", args.recipe_b))]
        seconds_a, seconds_b = step_seconds(trainers, args.rounds, args.steps_per_round)
    ratio = seconds_b / seconds_a
    print(f"step time {args.recipe_b.name} / {args.recipe_a.name} = {ratio:.3f} "
          f"({args.rounds * args.steps_per_round} steps each, alternating)", file=sys.stderr)
    print(max(1, round(args.steps * ratio)))


if __name__ == "__main__":
    main()
