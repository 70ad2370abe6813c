"""A trained model as a self-contained, Hub-ready folder: ``gvae export RUN DIR``.

The folder is itself a gvae checkpoint (``gvae.load(DIR)``, ``gvae generate DIR`` read it) and is what
``gvae push`` uploads::

    model.safetensors   live weights (encoder, generator, discriminator), byte for byte the checkpoint's
    ema.safetensors     their moving average (what generation and evaluation use), when the run has one
    config.yaml         the resolved recipe
    gvae.json           gvae version, training step, class names, sha256 of each weights file
    results.json        the run's ``gvae eval`` results, when there are any
    temperature.json    the sampling temperature ``gvae eval temperature`` chose for these weights, when there is
                        one (``gvae generate`` samples at it)
    samples.png         the newest sample grid of the run, when there is one
    README.md           the model card (see :mod:`gvae.model_card`)

Nothing in it is a pickle, so nothing in it can run code when loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gvae.config import Recipe
from gvae.errors import GvaeError
from gvae.fileio import sha256_file, write_json_atomic, write_text_atomic
from gvae.loading import CONFIG, EMA_WEIGHTS, STEP_DIR, WEIGHTS, LoadedModel, load_trained, resolve_checkpoint

RESULTS = "results.json"
SAMPLES = "samples.png"
METADATA = "gvae.json"
PLACEHOLDER_REPO = "OWNER/NAME"


def run_directory_of(checkpoint: Path) -> Path | None:
    """The run a checkpoint directory belongs to (``RUN/checkpoints/step-XXXXXXXX``), or None."""
    if checkpoint.parent.name == "checkpoints" and STEP_DIR.match(checkpoint.name):
        return checkpoint.parent.parent
    return None


def _class_names(recipe: Recipe) -> list[str] | None:
    """The model's own class names (a conditional model carries them), else the training data's label names."""
    from gvae.data import read_dataset_info

    if recipe.model.class_names:
        return list(recipe.model.class_names)
    try:
        info = read_dataset_info(recipe.data.train) if recipe.data.train else None
    except (GvaeError, OSError, ValueError):
        return None
    return (info or {}).get("label_names") or None


def _newest_grid(run_dir: Path | None) -> Path | None:
    grids = sorted((run_dir / "samples").glob("step-*.png")) if run_dir else []
    return grids[-1] if grids else None


def _read_results(path: Path | None) -> dict[str, Any] | None:
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GvaeError(f"{path} is not readable JSON ({exc}); pass another --results") from None


def _step(checkpoint: Path) -> int | None:
    match = STEP_DIR.match(checkpoint.name)
    if match:
        return int(match.group(1))
    try:
        return json.loads((checkpoint / METADATA).read_text()).get("step")
    except (OSError, ValueError):
        return None


def export(run_or_checkpoint: str | Path, out: str | Path, results: str | Path | None = None,
           repo_id: str = PLACEHOLDER_REPO) -> Path:
    """Write the Hub-ready folder of a run's newest checkpoint (or of a checkpoint) to ``out``.

    ``out`` must not exist or be empty; the folder is assembled beside it and renamed into place, so it
    appears whole or not at all. ``results`` defaults to the run's results.json; ``repo_id`` fills the model
    card's usage lines. Returns ``out``.
    """
    checkpoint = resolve_checkpoint(run_or_checkpoint)
    run_dir = run_directory_of(checkpoint)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GvaeError(f"{out} exists and is not an empty directory; give a new directory to export into")
    results_path = Path(results) if results else (run_dir / RESULTS if run_dir else checkpoint / RESULTS)
    if results and not results_path.is_file():
        raise GvaeError(f"--results {results_path} does not exist")
    loaded = load_trained(checkpoint)  # refuses damaged or diverged weights before anything is written
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _fill(staging, loaded, run_dir, _read_results(results_path), repo_id)
        if out.exists():
            out.rmdir()
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _fill(folder: Path, loaded: LoadedModel, run_dir: Path | None, results: dict | None, repo_id: str) -> None:
    from gvae import __version__, temperature_choice
    from gvae.model_card import model_card

    checkpoint = loaded.checkpoint
    weights = [name for name in (WEIGHTS, EMA_WEIGHTS) if (checkpoint / name).is_file()]
    for name in [*weights, CONFIG]:
        shutil.copyfile(checkpoint / name, folder / name)
    grid = _newest_grid(run_dir) or (checkpoint / SAMPLES if (checkpoint / SAMPLES).is_file() else None)
    if grid is not None:
        shutil.copyfile(grid, folder / SAMPLES)
    if results is not None:
        write_json_atomic(folder / RESULTS, results)
    temperature, choice, why_not = temperature_choice.lookup(checkpoint, loaded.weights)
    carried = choice is not None and why_not is None  # an unusable or stale choice stays behind
    if carried:
        shutil.copyfile(choice, folder / temperature_choice.FILE)
    metadata = {"gvae_version": __version__, "step": _step(checkpoint), "class_names": _class_names(loaded.recipe),
                "sha256": {name: sha256_file(folder / name) for name in weights}}
    write_json_atomic(folder / METADATA, metadata, sort_keys=True)
    write_text_atomic(folder / "README.md", model_card(loaded.model, metadata, results, repo_id,
                                                             has_samples=grid is not None,
                                                             temperature=temperature if carried else None))
