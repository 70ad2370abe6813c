"""Encoders q(z|x): an image [B, C, H, W] in [0, 1] -> (mu, logvar) [B, latent] of a diagonal Gaussian.

Both return the log-variance rather than the standard deviation so that the network's output is unconstrained
and sigma = exp(logvar / 2) is always positive.
"""

from __future__ import annotations

import torch
from torch import nn

from gvae.config import ModelConfig
from gvae.models.blocks import BOTTOM, DownTrunk, make_activation


class ConvEncoder(nn.Module):
    """ResNet encoder (gvae, vae, vaegan): :class:`DownTrunk` to a 4x4 map, then one linear layer to (mu, logvar)."""

    def __init__(self, channels: int, resolution: int, latent_dim: int, cfg: ModelConfig):
        super().__init__()
        self.trunk = DownTrunk(channels, resolution, cfg)
        self.head = nn.Linear(self.trunk.out_channels * BOTTOM * BOTTOM, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, _ = self.trunk(x)
        return self.head(h.flatten(1)).chunk(2, dim=1)


class DenseEncoder(nn.Module):
    """Fully connected encoder (vae-dense): D = C*H*W inputs -> ``hidden`` widths -> (mu, logvar).

    The classic 784-512-256-latent MNIST VAE is ``hidden=[512, 256]`` at 28 px; it works at any resolution,
    including ones that are not a power of two.
    """

    def __init__(self, channels: int, resolution: int, latent_dim: int, cfg: ModelConfig):
        super().__init__()
        widths = [channels * resolution * resolution, *cfg.dense_hidden]
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(w_in, w_out), make_activation(cfg.activation)]
        self.body = nn.Sequential(nn.Flatten(), *layers, nn.Linear(widths[-1], 2 * latent_dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.body(x * 2 - 1).chunk(2, dim=1)
