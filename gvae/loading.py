"""Reading a trained model: find the checkpoint, choose its weights, rebuild the model, load them.

Everything that reads a model comes here (generation, evaluation, the leaderboard, the report, export,
``gvae.load``); :mod:`gvae.train.checkpoint` writes checkpoints and is only imported by training. A checkpoint
directory ``RUN/checkpoints/step-XXXXXXXX/`` (or an exported or downloaded folder) holds at least::

    config.yaml         the resolved recipe, so the directory alone rebuilds the model
    model.safetensors   live weights of the whole model (encoder, generator, discriminator)
    ema.safetensors     their exponential moving average (what samples, generation and eval use), when kept

:func:`load_trained` returns a :class:`LoadedModel`: the model in eval mode with the recipe it was built from,
the checkpoint directory and the weights file chosen, so no caller decides the EMA-or-live question again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from safetensors import SafetensorError
from torch.nn.utils.fusion import fuse_conv_bn_eval

from gvae.config import Recipe, recipe_from_yaml_text
from gvae.errors import GvaeError
from gvae.models import GenerativeModel, build_model, load_weights

STEP_DIR = re.compile(r"^step-(\d{8})$")
WEIGHTS = "model.safetensors"
EMA_WEIGHTS = "ema.safetensors"
CONFIG = "config.yaml"


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
    return (path / CONFIG).is_file() and (path / WEIGHTS).is_file()


def resolve_checkpoint(run_or_checkpoint: str | Path) -> Path:
    """A checkpoint directory itself, the newest complete checkpoint of a run directory, or the downloaded
    folder of a model on the Hugging Face Hub (``hf://OWNER/NAME[@REVISION]``, see :mod:`gvae.hub`)."""
    from gvae import hub

    if hub.is_hub_address(run_or_checkpoint):
        path = hub.download(run_or_checkpoint)
        if not is_checkpoint(path):
            raise GvaeError(f"{run_or_checkpoint} holds no gvae model ({CONFIG} and {WEIGHTS}); was it made "
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


def weights_file(checkpoint: Path, ema: bool) -> Path:
    """The weights to load: the moving average when asked for and kept, else the live weights."""
    return checkpoint / (EMA_WEIGHTS if ema and (checkpoint / EMA_WEIGHTS).is_file() else WEIGHTS)


@dataclass(frozen=True)
class LoadedModel:
    """A trained model as read from a checkpoint."""

    model: GenerativeModel  # in eval mode, on the device asked for
    recipe: Recipe  # the checkpoint's config.yaml
    checkpoint: Path  # the checkpoint directory it was read from
    weights: Path  # the weights file loaded: ema.safetensors or model.safetensors

    @property
    def ema(self) -> bool:
        """Whether the moving average was loaded (a checkpoint without one gives the live weights)."""
        return self.weights.name == EMA_WEIGHTS


def load_trained(run_or_checkpoint: str | Path, ema: bool = True,
                 device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model of a checkpoint (or of a run's newest one) from its config.yaml and load its weights
    (the moving average with ``ema``), in eval mode; one GvaeError if they are damaged or diverged."""
    checkpoint = resolve_checkpoint(run_or_checkpoint)
    weights = weights_file(checkpoint, ema)
    try:
        recipe = recipe_from_yaml_text((checkpoint / CONFIG).read_text(encoding="utf-8"))
        model = build_model(recipe)
        load_weights(model, weights)
    except GvaeError as err:
        raise GvaeError(f"{checkpoint}: {err}") from None
    except (OSError, ValueError, RuntimeError, KeyError, yaml.YAMLError, SafetensorError) as err:
        reason = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        raise GvaeError(f"{checkpoint}: its {CONFIG} or {weights.name} is damaged ({reason}); use another "
                        "checkpoint") from None
    broken = [name for name, tensor in model.state_dict().items()
              if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if broken:
        raise GvaeError(f"{weights} holds non-finite values (NaN or infinity) in {len(broken)} tensors, e.g. "
                        f"{broken[0]}: the run diverged before this checkpoint; use an earlier one")
    model.checkpoint_path = str(checkpoint)
    return LoadedModel(model.to(device).eval(), recipe, checkpoint, weights)


def fold_batch_norms(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (eval mode, changed in place) with every BatchNorm2d that directly follows a Conv2d in an
    ``nn.Sequential`` folded into that convolution's weights and bias, and replaced by ``nn.Identity``.

    In eval mode such a norm is a fixed per-channel scale and shift, so the convolution can apply it: the pass
    computes the same function with one less read and write of every feature map. Not for training or saving:
    the norms' statistics are gone. GroupNorm (its statistics depend on each image) is left alone.
    """
    if model.training:
        raise ValueError("fold_batch_norms: the model must be in eval mode (training norms use batch statistics)")
    for module in model.modules():
        if not isinstance(module, torch.nn.Sequential):
            continue
        names = list(module._modules)
        for conv_name, norm_name in zip(names, names[1:], strict=False):
            conv, norm = module._modules[conv_name], module._modules[norm_name]
            if type(conv) is torch.nn.Conv2d and type(norm) is torch.nn.BatchNorm2d:
                module._modules[conv_name] = fuse_conv_bn_eval(conv, norm)
                module._modules[norm_name] = torch.nn.Identity()
    return model


def in_inference_form(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (eval mode, changed in place) made fast for the passes of ``gvae generate``, ``gvae eval`` and the
    temperature scan: its BatchNorms folded into the convolutions before them (:func:`fold_batch_norms`) and its
    convolution weights in channels-last layout, so that every convolution of a forward pass runs channels-last.
    On a CPU the decoder of a 64 or 256 px GVAE makes 2.0 to 2.7x the images per second in channels-last
    layout, the shipped recipes' encode + decode runs 1.5 to 2.0x and their IWAE estimate 1.5 to 2.4x as fast,
    and folding the norms makes each 1.05 to 1.26x faster again (benchmarks/README.md). Results may differ from
    the training form's in the float's last bits, as between two thread counts; within one form they are as
    deterministic as before. Not for training or saving."""
    return fold_batch_norms(model).to(memory_format=torch.channels_last)
