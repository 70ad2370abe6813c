"""Exponential moving average of the weights, used for samples, generation and evaluation.

The EMA is a plain copy of the unwrapped model made before ``prepare``; it never enters DDP or DeepSpeed.
Under ZeRO-3 the live parameters are partitioned (shape (0,) outside a gather), so the update gathers them
first (GOTCHAS). Buffers (BatchNorm running statistics) are copied, not averaged.
"""

from __future__ import annotations

import contextlib
import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, live: nn.Module, zero3: bool = False) -> None:
        """Move the average towards ``live`` (the unwrapped model being trained)."""
        params = list(live.parameters())
        gather = contextlib.nullcontext()
        if zero3:
            import deepspeed

            gather = deepspeed.zero.GatheredParameters(params, modifier_rank=None)
        with gather:
            for avg, cur in zip(self.model.parameters(), params, strict=True):
                avg.lerp_(cur.detach().to(avg.dtype), 1.0 - self.decay)
        for avg, cur in zip(self.model.buffers(), live.buffers(), strict=True):
            avg.copy_(cur)
