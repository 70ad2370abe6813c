"""Encoders q(z|x): an image [B, C, H, W] in [0, 1] -> (mu, logvar) [B, latent] of a diagonal Gaussian.

Both return the log-variance rather than the standard deviation so that the network's output is unconstrained
and sigma = exp(logvar / 2) is always positive.

With ``model.latent_norm`` the means pass through a BatchNorm without affine terms (as in BN-VAE, Zhu et al.
2020): over a batch each latent dimension of mu has mean 0 and variance 1. The KL term alone pulls the codes
to the prior's centre only weakly (a shift of the codes costs the decoder nothing to absorb, and costs the KL
a few nats against thousands of reconstruction nats), so without it the codes can settle 1-2 units off
centre and many z ~ N(0, I) decode to images the generator never learned.
"""

from __future__ import annotations

import torch
from torch import nn

from gvae.config import ModelConfig
from gvae.models.blocks import BOTTOM, DownTrunk, make_activation


def mean_norm(latent_dim: int, cfg: ModelConfig) -> nn.Module:
    """The standardisation of the posterior means that ``cfg.latent_norm`` asks for (see the module docstring)."""
    return nn.BatchNorm1d(latent_dim, affine=False) if cfg.latent_norm else nn.Identity()


class ConvEncoder(nn.Module):
    """ResNet encoder (gvae, vae, vaegan): :class:`DownTrunk` to a 4x4 map, then one linear layer to (mu, logvar)."""

    def __init__(self, channels: int, resolution: int, latent_dim: int, cfg: ModelConfig):
        super().__init__()
        self.trunk = DownTrunk(channels, resolution, cfg)
        self.head = nn.Linear(self.trunk.out_channels * BOTTOM * BOTTOM, 2 * latent_dim)
        self.mean_norm = mean_norm(latent_dim, cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, _ = self.trunk(x)
        mu, logvar = self.head(h.flatten(1)).chunk(2, dim=1)
        return self.mean_norm(mu), logvar


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
            layers += [nn.Linear(w_in, w_out), make_activation(cfg.activation),
                       *([nn.Dropout(cfg.dense_dropout)] if cfg.dense_dropout > 0 else [])]
        self.body = nn.Sequential(nn.Flatten(), *layers, nn.Linear(widths[-1], 2 * latent_dim))
        self.mean_norm = mean_norm(latent_dim, cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.body(x * 2 - 1).chunk(2, dim=1)
        return self.mean_norm(mu), logvar
