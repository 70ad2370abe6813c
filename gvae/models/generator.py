"""Generators p(x|z): a latent [B, latent] -> raw outputs [B, C, H, W], one unconstrained value per pixel.

The raw output is the likelihood's location in logit form (Bernoulli logits, or the logit of the Gaussian's
mean); the likelihood's head (:mod:`gvae.models.likelihoods`) turns it into the full parameter tensor, adding
the learned scale where there is one. Keeping the generators likelihood-agnostic lets every model kind share them.
"""

from __future__ import annotations

import torch
from torch import nn

from gvae.config import ModelConfig
from gvae.models.blocks import BOTTOM, UpTrunk, channel_width, conv3x3, make_activation, make_norm


class ConvGenerator(nn.Module):
    """ResNet generator (gvae, vae, vaegan): linear to a 4x4 map, :class:`UpTrunk` to R x R, 3x3 conv to C."""

    def __init__(self, channels: int, resolution: int, latent_dim: int, cfg: ModelConfig):
        super().__init__()
        width = channel_width(BOTTOM, cfg)
        self.stem = nn.Sequential(
            nn.Linear(latent_dim, width * BOTTOM * BOTTOM), nn.Unflatten(1, (width, BOTTOM, BOTTOM)),
            make_norm(cfg.norm, width), make_activation(cfg.activation))
        self.trunk = UpTrunk(resolution, cfg)
        self.out = conv3x3(self.trunk.out_channels, channels, bias=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(self.trunk(self.stem(z)))


class DenseGenerator(nn.Module):
    """Fully connected generator (vae-dense): latent -> reversed ``hidden`` widths -> C*H*W, reshaped."""

    def __init__(self, channels: int, resolution: int, latent_dim: int, cfg: ModelConfig):
        super().__init__()
        widths = [latent_dim, *cfg.dense_hidden[::-1]]
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(w_in, w_out), make_activation(cfg.activation),
                       *([nn.Dropout(cfg.dense_dropout)] if cfg.dense_dropout > 0 else [])]
        self.body = nn.Sequential(*layers, nn.Linear(widths[-1], channels * resolution * resolution),
                                  nn.Unflatten(1, (channels, resolution, resolution)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)
