"""The fixed small classifier of the downstream-utility metrics, and its seeded training.

Utility numbers (:mod:`gvae.metrics.utility`) compare training sets, not classifiers, so the classifier is
one fixed architecture, trained for a fixed number of optimizer steps whatever the size of the training set,
and every random choice (initial weights, batch order, augmentation) comes from torch.Generators seeded by
one integer: the same seed and data give the same weights, on the same hardware and torch version. On a GPU
cuDNN may pick non-deterministic convolution algorithms, so there runs can differ in the last digits.

Architecture of :class:`UtilityClassifier` ([B, C, H, W] in [0, 1]; images over 32 px a side are first
resized to 32 px):

    conv3x3(C -> 16), BatchNorm, ReLU, max-pool 2
    conv3x3(16 -> 32), BatchNorm, ReLU, max-pool 2
    adaptive average pool to 4x4, flatten (512), linear -> num_classes logits

2.7 MFLOP per 32 px image forward: 300 steps of 64 images train in ~8 s on one CPU core.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gvae.seeding import seeded_generator

MAX_SIDE = 32  # larger images are resized to this many px a side before the first convolution
WIDTHS = (16, 32)
POOLED = 4
# purposes of the random streams drawn from one seed
_INIT, _AUGMENT, _SHUFFLE = range(3)


class UtilityClassifier(nn.Module):
    """Two conv blocks and a linear layer (see the module docstring); weights drawn from ``generator``."""

    def __init__(self, channels: int, num_classes: int, generator: torch.Generator):
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in zip((channels, *WIDTHS[:-1]), WIDTHS, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(POOLED), nn.Flatten())
        self.head = nn.Linear(WIDTHS[-1] * POOLED * POOLED, num_classes)
        for module in self.modules():  # torch's default initialisation, from the seeded generator
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                bound = 1 / math.sqrt(module.weight[0].numel())
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [B, C, H, W] in [0, 1] -> logits [B, num_classes]."""
        if max(x.shape[-2:]) > MAX_SIDE:
            x = F.interpolate(x, size=(MAX_SIDE, MAX_SIDE), mode="bilinear", antialias=True, align_corners=False)
        return self.head(self.body(x * 2 - 1))


@dataclass(frozen=True)
class Augmentation:
    """Classic augmentation: a random shift of up to ``shift`` px each way (edge pixels repeated into the gap),
    and a horizontal flip with probability 1/2 when ``hflip`` (only for classes that a mirror image keeps)."""

    shift: int = 2
    hflip: bool = False

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``x`` [B, C, H, W] -> the same images, each shifted (and flipped) at random."""
        b, _, h, w = x.shape
        s = self.shift
        if s > 0:
            padded = F.pad(x, (s, s, s, s), mode="replicate")
            dy, dx = torch.randint(0, 2 * s + 1, (2, b, 1), generator=generator).to(x.device)
            rows = (dy + torch.arange(h, device=x.device))[:, :, None]  # [B, H, 1]
            cols = (dx + torch.arange(w, device=x.device))[:, None, :]  # [B, 1, W]
            x = padded.permute(0, 2, 3, 1)[torch.arange(b, device=x.device)[:, None, None], rows, cols]
            x = x.permute(0, 3, 1, 2)  # the [B, H, W, C] crops back to [B, C, H, W]
        if self.hflip:
            flip = torch.rand(b, generator=generator) < 0.5
            x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
        return x


@dataclass
class Pool:
    """Labelled images that fill ``per_batch`` rows of every training batch, optionally augmented.

    ``images`` [N, C, H, W] in [0, 1], ``labels`` int64 [N]. The pool is walked in a new random order every
    time it is used up, so every image is seen equally often whatever N is.
    """

    images: torch.Tensor
    labels: torch.Tensor
    per_batch: int
    augmentation: Augmentation | None = None


class _Cycle:
    """Indices 0..n-1 in random orders, one permutation after another, drawn ``count`` at a time."""

    def __init__(self, n: int, generator: torch.Generator):
        self.n, self.generator = n, generator
        self.order, self.at = torch.empty(0, dtype=torch.long), 0

    def take(self, count: int) -> torch.Tensor:
        parts = []
        while count > 0:
            if self.at == len(self.order):
                self.order, self.at = torch.randperm(self.n, generator=self.generator), 0
            part = self.order[self.at:self.at + count]
            self.at += len(part)
            count -= len(part)
            parts.append(part)
        return torch.cat(parts)


def fit_classifier(pools: Sequence[Pool], num_classes: int, steps: int, seed: int, lr: float = 3e-3,
                   device: str | torch.device = "cpu") -> UtilityClassifier:
    """Train a :class:`UtilityClassifier` for ``steps`` Adam steps (cosine-decayed ``lr``) on batches made of
    ``pool.per_batch`` images of each pool; returns it in eval mode on ``device``.

    Runs with gradients on even when called under ``torch.no_grad()`` (the eval runner's context).
    """
    device = torch.device(device)
    channels = pools[0].images.shape[1]
    net = UtilityClassifier(channels, num_classes, seeded_generator(seed, _INIT)).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    augment_generator = seeded_generator(seed, _AUGMENT)
    cycles = [_Cycle(len(pool.images), seeded_generator(seed, _SHUFFLE, i)) for i, pool in enumerate(pools)]
    on_device = [(pool.images.to(device), pool.labels.to(device)) for pool in pools]
    net.train()
    with torch.enable_grad():
        for _ in range(steps):
            xs, ys = [], []
            for pool, cycle, (images, labels) in zip(pools, cycles, on_device, strict=True):
                idx = cycle.take(pool.per_batch).to(device)
                x = images[idx].float()
                xs.append(pool.augmentation(x, augment_generator) if pool.augmentation else x)
                ys.append(labels[idx])
            loss = F.cross_entropy(net(torch.cat(xs)), torch.cat(ys))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return net.eval()


@torch.no_grad()
def predict(net: UtilityClassifier, images: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Arg-max class of each of ``images`` [N, C, H, W] in [0, 1]: int64 [N] on the CPU."""
    device = next(net.parameters()).device
    return torch.cat([net(images[i:i + batch_size].to(device).float()).argmax(1).cpu()
                      for i in range(0, len(images), batch_size)])
