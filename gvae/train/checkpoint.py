"""Checkpoints that appear complete or not at all; reading them back is :mod:`gvae.loading`.

A checkpoint directory ``RUN/checkpoints/step-XXXXXXXX/`` holds, besides what :mod:`gvae.loading` reads
(``config.yaml``, ``model.safetensors``, ``ema.safetensors``)::

    trainer.json        step, consecutive bad steps, world size
    loader-R.json       the data loader state of rank R
    state/g, state/d    accelerate save_state of each player: optimizer, scheduler, loss scaler, RNG per rank

Every file is first written under ``.tmp-step-XXXXXXXX`` and the directory is renamed into place once all
ranks have finished (a rename is atomic), so a crash mid-write leaves only a temporary directory that the
next start removes. Old checkpoints are renamed away before they are deleted for the same reason. Nothing
here unpickles code: weights are safetensors, accelerate loads states with ``weights_only=True``, and so do
DeepSpeed's engines (see :mod:`gvae.train.deepspeed_loading`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from gvae.loading import list_checkpoints, step_dir_name


def remove_incomplete(run_dir: Path) -> None:
    """Delete what a crash left behind: temporary checkpoints and half-deleted old ones."""
    root = run_dir / "checkpoints"
    if root.is_dir():
        for leftover in root.glob(".*-step-*"):
            shutil.rmtree(leftover, ignore_errors=True)


def temp_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoints" / f".tmp-{step_dir_name(step)}"


def publish(run_dir: Path, step: int, keep: int) -> Path:
    """Rename a finished temporary checkpoint into place and prune all but the newest ``keep``."""
    final = run_dir / "checkpoints" / step_dir_name(step)
    if final.exists():  # the same step saved again (e.g. the end of a run that just checkpointed)
        _discard(final)
    os.replace(temp_dir(run_dir, step), final)
    for old in list_checkpoints(run_dir)[:-keep]:
        _discard(old)
    return final


def _discard(path: Path) -> None:
    trash = path.with_name(f".trash-{path.name}")
    os.replace(path, trash)
    shutil.rmtree(trash)
