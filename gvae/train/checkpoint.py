"""Checkpoints that appear complete or not at all, and loading a trained model from one.

A checkpoint directory ``RUN/checkpoints/step-XXXXXXXX/`` holds::

    model.safetensors   live weights of the whole model (encoder, generator, discriminator)
    ema.safetensors     their exponential moving average (what samples, generation and eval use)
    config.yaml         the resolved recipe, so the directory alone rebuilds the model
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

import json
import os
import re
import shutil
from pathlib import Path

import torch
import yaml
from safetensors import SafetensorError
from torch import nn

from gvae.errors import GvaeError

STEP_DIR = re.compile(r"^step-(\d{8})$")
WEIGHTS = "model.safetensors"
EMA_WEIGHTS = "ema.safetensors"


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and STEP_DIR.match(p.name)]
    return sorted(found, key=lambda p: p.name)


def is_checkpoint(path: Path) -> bool:
    return (path / "config.yaml").is_file() and (path / WEIGHTS).is_file()


def resolve_checkpoint(run_or_checkpoint: str | Path) -> Path:
    """A checkpoint directory itself, the newest complete checkpoint of a run directory, or the downloaded
    folder of a model on the Hugging Face Hub (``hf://OWNER/NAME[@REVISION]``, see :mod:`gvae.hub`)."""
    from gvae import hub

    if hub.is_hub_address(run_or_checkpoint):
        path = hub.download(run_or_checkpoint)
        if not is_checkpoint(path):
            raise GvaeError(f"{run_or_checkpoint} holds no gvae model (config.yaml and {WEIGHTS}); was it made "
                            "by gvae push?")
        return path
    path = Path(run_or_checkpoint)
    if not path.exists():
        raise GvaeError(f"{path} does not exist; give a run directory or a checkpoint directory")
    if is_checkpoint(path):
        return path
    checkpoints = list_checkpoints(path)
    if not checkpoints:
        raise GvaeError(f"{path} is not a gvae run or checkpoint (no checkpoints/step-XXXXXXXX with {WEIGHTS})")
    return checkpoints[-1]


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


def write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")



def load_model(run_or_checkpoint: str | Path, ema: bool = True, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model of a checkpoint from its config.yaml and load its (EMA) weights, in eval mode."""
    from gvae.config import recipe_from_yaml_text
    from gvae.models import build_model, load_weights

    checkpoint = resolve_checkpoint(run_or_checkpoint)
    weights = checkpoint / (EMA_WEIGHTS if ema and (checkpoint / EMA_WEIGHTS).is_file() else WEIGHTS)
    try:
        recipe = recipe_from_yaml_text((checkpoint / "config.yaml").read_text(encoding="utf-8"))
        model = build_model(recipe)
        load_weights(model, weights)
    except GvaeError as err:
        raise GvaeError(f"{checkpoint}: {err}") from None
    except (OSError, ValueError, RuntimeError, KeyError, yaml.YAMLError, SafetensorError) as err:
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise GvaeError(f"{checkpoint}: its config.yaml or {weights.name} is damaged ({reason}); use another "
                        "checkpoint") from None
    broken = [name for name, tensor in model.state_dict().items()
              if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if broken:
        raise GvaeError(f"{weights} holds non-finite values (NaN or infinity) in {len(broken)} tensors, e.g. "
                        f"{broken[0]}: the run diverged before this checkpoint; use an earlier one")
    model.checkpoint_path = str(checkpoint)
    model.recipe = recipe
    return model.to(device).eval()
