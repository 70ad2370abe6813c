"""Experiment trackers through accelerate (``log_with``): TensorBoard, Weights & Biases, MLflow, Comet, ...

``log.trackers`` names them; ``log.tensorboard: true`` (the older key) adds TensorBoard. Every tracker gets the
resolved recipe as its configuration, the scalars of each ``metrics.jsonl`` line and, where the tracker takes
images, each sample grid. TensorBoard writes to ``RUN/tensorboard``; the others use the recipe's name as their
project. accelerate silently drops a tracker whose package is missing, so gvae checks first and names the pip
package instead.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np

from gvae.config import LogConfig, Recipe
from gvae.errors import GvaeError

# tracker name (as accelerate spells it) -> (module it imports, pip package that provides it)
PACKAGES = {"tensorboard": ("tensorboard", "tensorboard"), "wandb": ("wandb", "wandb"),
            "mlflow": ("mlflow", "mlflow"), "comet_ml": ("comet_ml", "comet-ml"), "aim": ("aim", "aim"),
            "clearml": ("clearml", "clearml"), "dvclive": ("dvclive", "dvclive"), "swanlab": ("swanlab", "swanlab"),
            "trackio": ("trackio", "trackio")}


def tracker_names(log: LogConfig) -> list[str]:
    """The trackers a recipe asks for, each once: ``log.trackers``, plus TensorBoard if ``log.tensorboard``."""
    return list(dict.fromkeys([*log.trackers, *(["tensorboard"] if log.tensorboard else [])]))


def check_installed(names: list[str]) -> None:
    """One error naming the pip package of the first tracker that is not installed."""
    for name in names:
        module, package = PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            raise GvaeError(f"log.trackers: {name} is not installed; pip install {package}, or remove {name} "
                            "from log.trackers")


def log_with(recipe: Recipe, run_dir: Path) -> list[Any] | None:
    """What ``Accelerator(log_with=...)`` gets: TensorBoard as an instance writing to ``run_dir/tensorboard``
    (accelerate would put it under the project's name), the others by name; None for no tracker (accelerate
    warns about an empty list)."""
    from accelerate.tracking import TensorBoardTracker

    names = tracker_names(recipe.log)
    check_installed(names)
    return [TensorBoardTracker("tensorboard", str(run_dir)) if name == "tensorboard" else name
            for name in names] or None


def flat_config(recipe: Recipe) -> dict[str, bool | int | float | str]:
    """The recipe as ``section.key`` -> scalar (lists and nulls as JSON text), which every tracker accepts."""
    flat: dict[str, bool | int | float | str] = {"name": recipe.name}
    for section, values in recipe.to_dict().items():
        if isinstance(values, dict):
            for key, value in values.items():
                scalar = isinstance(value, (bool, int, float, str))
                flat[f"{section}.{key}"] = value if scalar else json.dumps(value)
    return flat


def start(accelerator, recipe: Recipe) -> None:
    """Start the trackers of ``accelerator`` (main process) with the recipe as their configuration."""
    if accelerator.log_with:
        accelerator.init_trackers(recipe.name, config=flat_config(recipe))


def log_grid(accelerator, grid: np.ndarray, step: int) -> None:
    """Send a sample grid, uint8 [H, W, C], to every tracker that takes images, as ``samples``."""
    images = grid[None] if grid.shape[-1] == 3 else np.repeat(grid[None], 3, axis=-1)  # [1, H, W, 3]
    for tracker in accelerator.trackers:
        if hasattr(tracker, "log_images"):
            extra = {"dataformats": "NHWC"} if tracker.name == "tensorboard" else {}
            tracker.log_images({"samples": images}, step=step, **extra)


def finish(accelerator) -> None:
    """Close every tracker once (``end_training`` would close them again)."""
    for tracker in accelerator.trackers:
        tracker.finish()
    accelerator.trackers.clear()
