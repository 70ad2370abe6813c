"""Run under ``accelerate launch``: train a tiny recipe, then dump this rank's parameters.

Usage: dist_worker.py RECIPE RUN_DIR OUT_PREFIX [KEY=VALUE ...]
Writes OUT_PREFIX-initial-RANK.safetensors and OUT_PREFIX-final-RANK.safetensors (gathered under ZeRO-3).
"""

import sys

from safetensors.torch import save_file

from gvae.config import load_recipe
from gvae.train.loop import Trainer


def dump(trainer: Trainer, path: str) -> None:
    with trainer._gathered():
        save_file({k: v.detach().clone().contiguous() for k, v in trainer.model.named_parameters()}, path)


def main() -> None:
    recipe_path, run_dir, prefix, *overrides = sys.argv[1:]
    trainer = Trainer(load_recipe(recipe_path, overrides), run_dir, progress=False)
    rank = trainer.rank
    dump(trainer, f"{prefix}-initial-{rank}.safetensors")
    trainer.fit()
    dump(trainer, f"{prefix}-final-{rank}.safetensors")


if __name__ == "__main__":
    main()
