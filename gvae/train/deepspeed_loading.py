"""DeepSpeed checkpoints read without unpickling code.

DeepSpeed's engines read their own checkpoint files (model and sharded optimizer states) with
``torch.load(weights_only=False)``, which runs whatever code a tampered checkpoint pickled. Those files hold
only tensors, containers and a few DeepSpeed types (found with ``torch.serialization.
get_unsafe_globals_in_checkpoint`` on ZeRO-2 and ZeRO-3 checkpoints; fp16 runs store the dynamic subclass of
the loss scaler): so each engine gets a checkpoint engine that loads with ``weights_only=True`` and allows
exactly those types, which unpickling can only fill with data. A checkpoint holding anything else
fails to load with an error that names the type.
"""

from __future__ import annotations

import torch
from deepspeed.runtime.checkpoint_engine.torch_checkpoint_engine import TorchCheckpointEngine
from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
from deepspeed.runtime.zero.config import ZeroStageEnum
from deepspeed.utils.tensor_fragment import fragment_address

DEEPSPEED_STATE_TYPES = [ZeroStageEnum, LossScaler, DynamicLossScaler, fragment_address]


class WeightsOnlyCheckpointEngine(TorchCheckpointEngine):
    """DeepSpeed's torch checkpoint engine, loading with ``weights_only=True`` (saving is unchanged)."""

    def load(self, path: str, map_location=None):
        with torch.serialization.safe_globals(DEEPSPEED_STATE_TYPES):
            return torch.load(path, map_location=map_location, weights_only=True)


def load_without_pickled_code(engine) -> None:
    """Make DeepSpeed ``engine`` read its checkpoints with :class:`WeightsOnlyCheckpointEngine`."""
    if type(engine.checkpoint_engine) is not TorchCheckpointEngine:
        raise RuntimeError(f"unexpected DeepSpeed checkpoint engine {type(engine.checkpoint_engine).__name__}; "
                           f"gvae loads DeepSpeed states only through the torch checkpoint engine")
    engine.checkpoint_engine = WeightsOnlyCheckpointEngine(engine._config)
