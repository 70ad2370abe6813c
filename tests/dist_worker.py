"""Run under ``accelerate launch``: train a tiny recipe, then dump this rank's parameters.

Usage: dist_worker.py RECIPE RUN_DIR OUT_PREFIX [KEY=VALUE ...]
Writes OUT_PREFIX-initial-RANK.safetensors and OUT_PREFIX-final-RANK.safetensors (gathered under ZeRO-3).
With GVAE_TEST_POISON=STEP,MICRO set, rank 0's generator loss is NaN on micro-batch MICRO of step STEP.
With GVAE_TEST_SIGNS=S0,S1 set, rank r's discriminator reports mean sign(D(real)) = Sr at every step.
With augmentation on, the dumps also hold this rank's augmentation probability as ``augment.p``; with a prior
per class, its class means (a buffer) as ``ae.class_means.means``.
"""

import os
import sys

import torch
from safetensors.torch import save_file

import gvae.train.loop as loop
from gvae.config import load_recipe
from gvae.process_group import leave_process_group
from gvae.train.loop import Trainer


def dump(trainer: Trainer, path: str) -> None:
    extra = {} if trainer.augment is None else {"augment.p": torch.tensor(trainer.augment.p)}
    if trainer.model.ae.class_means is not None:
        extra["ae.class_means.means"] = trainer.model.ae.class_means.means.clone()
    with trainer._gathered():
        save_file({k: v.detach().clone().contiguous() for k, v in trainer.model.named_parameters()} | extra, path)


def poison(trainer: Trainer, step: int, micro: int) -> None:
    """Make rank 0's generator loss NaN on one micro-batch; the other ranks stay finite."""
    real, steps_seen = loop.generator_loss, []

    def poisoned(*args, **kwargs):
        loss, parts = real(*args, **kwargs)
        steps_seen.append(trainer.step)
        if trainer.rank == 0 and trainer.step == step and steps_seen.count(step) == micro + 1:
            loss = loss * float("nan")
        return loss, parts

    loop.generator_loss = poisoned


def fake_signs(trainer: Trainer, signs: list[float]) -> None:
    """Make each rank's discriminator loss report its own fixed mean sign(D(real))."""
    real = loop.discriminator_loss

    def reporting(*args, **kwargs):
        loss, parts = real(*args, **kwargs)
        return loss, parts | {"d_real_sign": torch.tensor(signs[trainer.rank])}

    loop.discriminator_loss = reporting


def main() -> None:
    recipe_path, run_dir, prefix, *overrides = sys.argv[1:]
    trainer = Trainer(load_recipe(recipe_path, overrides), run_dir, progress=False)
    rank = trainer.rank
    if "GVAE_TEST_POISON" in os.environ:
        poison(trainer, *map(int, os.environ["GVAE_TEST_POISON"].split(",")))
    if "GVAE_TEST_SIGNS" in os.environ:
        fake_signs(trainer, [float(s) for s in os.environ["GVAE_TEST_SIGNS"].split(",")])
    dump(trainer, f"{prefix}-initial-{rank}.safetensors")
    trainer.fit()
    dump(trainer, f"{prefix}-final-{rank}.safetensors")
    leave_process_group()


if __name__ == "__main__":
    main()
