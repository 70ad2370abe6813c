"""Accelerators for a two-player model: one for encoder+generator, one for the discriminator.

Why two: each optimised model needs its own engine under DeepSpeed (one ``Accelerator`` refuses a second
DeepSpeed model), and fp16 wants one loss scale per optimizer. Using the same pair in every mode (one
process, DDP, DeepSpeed ZeRO-2/3) keeps a single code path in the training step.

How the mode is chosen: by ``accelerate launch``. A DeepSpeed launch config sets ``ACCELERATE_USE_DEEPSPEED``
and the ZeRO stage in the environment; we then build one DeepSpeed config per model from the recipe (micro
batch, accumulation, clipping, precision), because no prepared dataloader tells DeepSpeed the micro batch.
Without a GPU the process group is created with gloo (see GOTCHAS: otherwise every DeepSpeed process
believes it is rank 0 of 1).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType

from gvae.config import Recipe


@dataclass
class Accelerators:
    """The accelerator of each player, and how the run is distributed."""

    g: Accelerator
    d: Accelerator | None
    deepspeed_stage: int | None

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


def _deepspeed_config(recipe: Recipe, stage: int) -> dict:
    precision = recipe.train.mixed_precision
    config = {
        "train_micro_batch_size_per_gpu": recipe.train.batch_size,
        "gradient_accumulation_steps": recipe.train.grad_accum,
        "zero_optimization": {"stage": stage},
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16", "initial_scale_power": 16},
        # Always set: left out, accelerate fills in 1.0, clipping a recipe that asked for none (0).
        "gradient_clipping": recipe.optim.grad_clip,
        "steps_per_print": 10**9,
    }
    offload = os.environ.get("ACCELERATE_DEEPSPEED_OFFLOAD_OPTIMIZER_DEVICE", "none")
    if offload != "none":
        config["zero_optimization"]["offload_optimizer"] = {"device": offload}
    return config


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

        if cpu:
            PartialState(backend="gloo")
        stage = int(os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2"))
        # The recipe, not the launch config, sets micro batch, accumulation, clipping and precision; without
        # this accelerate refuses a full DeepSpeed config beside the launch config's DeepSpeed fields.
        os.environ.pop("ACCELERATE_CONFIG_DS_FIELDS", None)
        plugins = {name: DeepSpeedPlugin(hf_ds_config=_deepspeed_config(recipe, stage))
                   for name in (("g", "d") if two_players else ("g",))}
        g = Accelerator(deepspeed_plugin=plugins, mixed_precision=precision, log_with=log_with,
                        gradient_accumulation_steps=recipe.train.grad_accum)
        d = (Accelerator(mixed_precision=precision, gradient_accumulation_steps=recipe.train.grad_accum)
             if two_players else None)
        return Accelerators(g=g, d=d, deepspeed_stage=stage)

    # broadcast_buffers=False: a BatchNorm discriminator under DDP otherwise fails on PyTorch >= 2.6 when the
    # generator step runs it once more before the discriminator's backward (GOTCHAS).
    ddp = DistributedDataParallelKwargs(broadcast_buffers=False)

    def make(trackers=None):
        return Accelerator(cpu=cpu, mixed_precision=precision, kwargs_handlers=[ddp], log_with=trackers,
                           gradient_accumulation_steps=recipe.train.grad_accum)

    g = make(log_with)
    return Accelerators(g=g, d=make() if two_players else None, deepspeed_stage=None)


def is_ddp(accelerator: Accelerator) -> bool:
    return accelerator.distributed_type in (DistributedType.MULTI_GPU, DistributedType.MULTI_CPU)
