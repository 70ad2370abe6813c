"""Exponential moving average of the weights, used for samples, generation and evaluation.

The EMA is a plain copy of the unwrapped model made before ``prepare``; it never enters DDP or DeepSpeed.
Under ZeRO-3 the live parameters are partitioned (shape (0,) outside a gather), so the update gathers them
first. Buffers (BatchNorm running statistics, a per-class prior's means) are copied every step, not averaged,
and :meth:`EMA.recalibrate` re-estimates them for the averaged weights before the average is used.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, live: nn.Module, zero3: bool = False, decay: float | None = None) -> None:
        """Move the average towards ``live`` (the unwrapped model being trained) by 1 - ``decay``.

        ``decay`` defaults to the constructor's; the training loop passes each step's (see
        :func:`gvae.budget.ema_decay_at`).
        """
        decay = self.decay if decay is None else decay
        params = list(live.parameters())
        gather = contextlib.nullcontext()
        if zero3:
            import deepspeed

            gather = deepspeed.zero.GatheredParameters(params, modifier_rank=None)
        with gather:
            for avg, cur in zip(self.model.parameters(), params, strict=True):
                avg.lerp_(cur.detach().to(avg.dtype), 1.0 - decay)
        for avg, cur in zip(self.model.buffers(), live.buffers(), strict=True):
            avg.copy_(cur)

    @torch.no_grad()
    def recalibrate(self, batches: Iterable[torch.Tensor | tuple[torch.Tensor, torch.Tensor]], seed: int = 0) -> bool:
        """Re-estimate the average's BatchNorm statistics, and a per-class prior's means (``model.class_prior``),
        on ``batches`` of training images [B, C, H, W], or of (images, labels [B]) pairs, which a conditional
        model needs (its prior latents take the same labels).

        Why: the copied statistics describe the live weights' activations, not the average's. The gap grows
        with the learning rate, and behind ``model.latent_norm`` (whose input scale the loss leaves free) it
        put eval-mode codes 1-2 units off the prior's centre; the class means are averages of those codes.
        Like ``torch.optim.swa_utils.update_bn``, but the generator also sees prior latents, as its batches do
        in training. The global RNG is untouched. Returns False when there was nothing to do (no BatchNorm
        and no class means, or no batch).
        """
        ae = self.model.ae
        norms = [m for m in ae.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not norms and ae.class_means is None:
            return False
        saved = [(m.momentum, copy.deepcopy(m.state_dict())) for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over all batches
        device = next(ae.parameters()).device
        seen = 0
        class_sums: list[tuple[torch.Tensor, torch.Tensor]] = []
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            ae.train()
            with_prior = self.model.disc is not None  # prior samples only feed the adversarial term
            for batch in batches:
                x, labels = batch if isinstance(batch, tuple) else (batch, None)
                x = x.to(device)
                labels = labels.to(device) if self.model.num_classes else None
                z = torch.randn(len(x), self.model.latent_dim, device=device) if with_prior else None
                out = ae(x, z, labels=labels, prior_labels=labels if with_prior else None)
                if ae.class_means is not None:
                    class_sums.append(ae.class_means.batch_sums(out.mu, labels))
                seen += 1
            self.model.eval()
        for m, (momentum, state) in zip(norms, saved, strict=True):
            m.momentum = momentum
            if not seen:
                m.load_state_dict(state)
        if class_sums:
            sums, counts = map(sum, zip(*class_sums, strict=True))
            ae.class_means.update(sums, counts, momentum=1.0)
        return seen > 0
