"""Accelerators for a two-player model: one for encoder+generator, one for the discriminator.

Why two: each optimised model needs its own engine under DeepSpeed (one ``Accelerator`` refuses a second
DeepSpeed model), and fp16 wants one loss scale per optimizer. Using the same pair in every mode (one
process, DDP, DeepSpeed ZeRO-2/3) keeps a single code path in the training step.

How the mode is chosen: by ``accelerate launch``. A DeepSpeed launch config sets ``ACCELERATE_USE_DEEPSPEED``
and the ZeRO stage in the environment; we then build one DeepSpeed config per model from the recipe (micro
batch, accumulation, clipping, precision), because no prepared dataloader tells DeepSpeed the micro batch.
Without a GPU the process group is created with gloo before DeepSpeed starts: otherwise every DeepSpeed
process believes it is rank 0 of 1.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType

from gvae.config import Recipe
from gvae.errors import GvaeError


@dataclass
class Accelerators:
    """The accelerator of each player, and how the run is distributed."""

    g: Accelerator
    d: Accelerator | None
    deepspeed_stage: int | None
    zero_optimization: dict | None = None  # the DeepSpeed section both engines got: stage, offloads, ...

    @property
    def main(self) -> Accelerator:
        return self.g

    def prepare_g(self, *objects):
        return self._prepare(self.g, "g", objects)

    def prepare_d(self, *objects):
        return self._prepare(self.d, "d", objects)

    def _prepare(self, accelerator: Accelerator, name: str, objects):
        if self.deepspeed_stage is None:
            return accelerator.prepare(*objects)
        from gvae.train.deepspeed_loading import load_without_pickled_code

        accelerator.state.select_deepspeed_plugin(name)
        engine, *rest = accelerator.prepare(*objects)
        load_without_pickled_code(engine)
        return engine, *rest

    def describe(self, recipe: Recipe) -> dict:
        """What run.json records: how the run was distributed, and with which versions."""
        import accelerate

        acc = self.g
        info = {
            "world_size": acc.num_processes,
            "distributed_type": str(acc.distributed_type.value),
            "deepspeed_zero_stage": self.deepspeed_stage,
            "deepspeed_zero_optimization": self.zero_optimization,
            "mixed_precision": acc.mixed_precision,
            "batch_size_per_process": recipe.train.batch_size,
            "grad_accum": recipe.train.grad_accum,
            "global_batch_size": recipe.train.batch_size * recipe.train.grad_accum * acc.num_processes,
            "device": str(acc.device),
            "host": platform.node(),
            "versions": {"torch": torch.__version__, "accelerate": accelerate.__version__,
                         "python": platform.python_version()},
        }
        if self.deepspeed_stage is not None:
            import deepspeed

            info["versions"]["deepspeed"] = deepspeed.__version__
        return info


def _deepspeed_requested() -> bool:
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


def _zero_optimization() -> dict:
    """The ``zero_optimization`` section the launch config asks for: its stage and offload devices, or the
    section of its ``deepspeed_config_file``. Parameter offload is ZeRO-3's (the other stages keep every
    parameter on every GPU), so it is refused with another stage rather than silently dropped."""
    path = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    if path:
        zero = _zero_from_file(path)
    else:
        zero = {"stage": int(os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2"))}
        for what in ("optimizer", "param"):
            device = os.environ.get(f"ACCELERATE_DEEPSPEED_OFFLOAD_{what.upper()}_DEVICE", "none")
            if device != "none":
                zero[f"offload_{what}"] = {"device": device}
    param_device = zero.get("offload_param", {}).get("device", "none")
    if param_device != "none" and zero.get("stage") != 3:
        raise GvaeError(f"offload_param_device: {param_device} needs ZeRO stage 3 (got stage {zero.get('stage')}): "
                        "only ZeRO-3 partitions parameters, so only it can offload them; set zero_stage: 3 or "
                        "offload_param_device: none in the launch config")
    return zero


def _zero_from_file(path: str) -> dict:
    """The ``zero_optimization`` section of a user's DeepSpeed config; every other key must be "auto", because
    the recipe sets micro batch, accumulation, clipping and precision."""
    try:
        config = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise GvaeError(f"deepspeed_config_file {path}: cannot be read as JSON ({exc})") from None
    if not isinstance(config, dict) or not isinstance(config.get("zero_optimization"), dict):
        raise GvaeError(f"deepspeed_config_file {path}: expected a JSON object with a zero_optimization section")
    fixed = sorted(k for k, v in config.items() if k != "zero_optimization" and v != "auto")
    if fixed:
        raise GvaeError(f"deepspeed_config_file {path} sets {', '.join(fixed)}; gvae takes only its "
                        "zero_optimization section (micro batch, accumulation, clipping and precision come from "
                        "the recipe): remove them or set them to \"auto\"")
    zero = dict(config["zero_optimization"])
    zero.setdefault("stage", 2)
    return zero


def _deepspeed_config(recipe: Recipe, zero: dict) -> dict:
    precision = recipe.train.mixed_precision
    return {
        "train_micro_batch_size_per_gpu": recipe.train.batch_size,
        "gradient_accumulation_steps": recipe.train.grad_accum,
        "zero_optimization": zero,
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16", "initial_scale_power": 16},
        # Always set: left out, accelerate fills in 1.0, clipping a recipe that asked for none (0).
        "gradient_clipping": recipe.optim.grad_clip,
        "steps_per_print": 10**9,
    }


def build_accelerators(recipe: Recipe, two_players: bool, log_with: list | None = None) -> Accelerators:
    """Create the accelerators for this process; must run before any model is moved or prepared.

    ``log_with`` (experiment trackers, see :mod:`gvae.train.trackers`) goes to the main player's accelerator.
    """
    cpu = not torch.cuda.is_available()
    precision = recipe.train.mixed_precision
    # accelerate keeps one AcceleratorState per process; a second run in the same process (the demo, a
    # notebook, the tests) with another precision would be refused. The process group (PartialState) stays.
    AcceleratorState._reset_state()
    if _deepspeed_requested():
        from accelerate import DeepSpeedPlugin

        zero = _zero_optimization()
        if two_players and recipe.loss.r1_gamma > 0 and zero["stage"] < 3:
            # ZeRO-1/2 run their gradient reduction after any backward through the engine's outputs, including
            # R1's gradient with respect to the images, which has no parameter gradients: an IndexError inside
            # DeepSpeed 0.19 at the first step. ZeRO-3 and DDP train the same discriminator (identical losses).
            raise GvaeError(f"loss.r1_gamma > 0 does not run under DeepSpeed ZeRO stage {zero['stage']}; use "
                            "ZeRO-3 (zero_stage: 3 in the launch config) or DDP, or set loss.r1_gamma=0")
        if cpu:
            PartialState(backend="gloo")
        # The recipe, not the launch config, sets micro batch, accumulation, clipping and precision; without
        # this accelerate refuses a full DeepSpeed config beside the launch config's DeepSpeed fields.
        os.environ.pop("ACCELERATE_CONFIG_DS_FIELDS", None)
        plugins = {name: DeepSpeedPlugin(hf_ds_config=_deepspeed_config(recipe, dict(zero)))
                   for name in (("g", "d") if two_players else ("g",))}
        g = Accelerator(deepspeed_plugin=plugins, mixed_precision=precision, log_with=log_with,
                        gradient_accumulation_steps=recipe.train.grad_accum)
        d = (Accelerator(mixed_precision=precision, gradient_accumulation_steps=recipe.train.grad_accum)
             if two_players else None)
        return Accelerators(g=g, d=d, deepspeed_stage=int(zero["stage"]), zero_optimization=zero)

    # broadcast_buffers=False: a BatchNorm discriminator under DDP otherwise fails on PyTorch >= 2.6 when the
    # generator step runs it once more before the discriminator's backward: DDP rewrites the running statistics
    # in place before each forward, and the graph of the earlier forward, which saved them, refuses to
    # backward ("modified by an inplace operation").
    ddp = DistributedDataParallelKwargs(broadcast_buffers=False)

    def make(trackers=None):
        return Accelerator(cpu=cpu, mixed_precision=precision, kwargs_handlers=[ddp], log_with=trackers,
                           gradient_accumulation_steps=recipe.train.grad_accum)

    g = make(log_with)
    return Accelerators(g=g, d=make() if two_players else None, deepspeed_stage=None)


def is_ddp(accelerator: Accelerator) -> bool:
    return accelerator.distributed_type in (DistributedType.MULTI_GPU, DistributedType.MULTI_CPU)
