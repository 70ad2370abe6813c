"""The grey-to-colour network: luminance Y in, chrominance I and Q out.

An autoencoder on Y built from the same ResNet trunks as the generative models (``model.channel_*``,
``model.blocks_per_level``, ``model.kernel_size``, ``model.norm``, ...): the down trunk codes the image to a
4x4 map, the up trunk decodes it back to full resolution, where a small head sees the decoded features beside Y
itself, so the colour's edges can follow the image's. I and Q are signed, so they come out of a tanh scaled to
the largest values RGB colours reach (:data:`gvae.colorize.yiq.IQ_LIMITS`).
"""

from __future__ import annotations

import torch
from torch import nn

from gvae.colorize.yiq import IQ_LIMITS, rebuild_rgb
from gvae.config import ModelConfig
from gvae.models.blocks import DownTrunk, UpTrunk, conv3x3, make_activation

HEAD_WIDTH = 16


class Colorizer(nn.Module):
    """Y [B, 1, R, R] in [0, 1] -> IQ [B, 2, R, R] within +-IQ_LIMITS."""

    def __init__(self, resolution: int, cfg: ModelConfig):
        super().__init__()
        self.down = DownTrunk(1, resolution, cfg)
        self.up = UpTrunk(resolution, cfg)
        self.head = nn.Sequential(conv3x3(self.up.out_channels + 1, HEAD_WIDTH, bias=True),
                                  make_activation(cfg.activation), conv3x3(HEAD_WIDTH, 2, bias=True))
        self.register_buffer("limits", IQ_LIMITS.float().view(1, 2, 1, 1), persistent=False)
        self.resolution = resolution

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        features = self.up(self.down(y)[0])
        return torch.tanh(self.head(torch.cat([features, y * 2 - 1], 1))) * self.limits

    @torch.no_grad()
    def colorize(self, y: torch.Tensor) -> torch.Tensor:
        """RGB [B, 3, R, R] in [0, 1]: Y itself with the predicted I and Q."""
        return rebuild_rgb(y, self(y))
