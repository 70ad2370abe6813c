"""The discriminator: images [N, C, R, R] in [0, 1] -> (logits [N], features [N, F]).

It shares its trunk with the encoder (:class:`gvae.models.blocks.DownTrunk`: ResNet blocks, max-pool
down-sampling to 4x4) and ends in one linear layer to a logit (> 0: "real"). The features are the flattened
8x8 map, an intermediate layer as in Larsen et al. (2016), where the VAE-GAN measures reconstructions; every
resolution >= 16 has one.
"""

from __future__ import annotations

import torch
from torch import nn

from gvae.config import ModelConfig
from gvae.models.blocks import BOTTOM, DownTrunk

FEATURE_SIDE = 8  # side of the feature map returned with the logits


class Discriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, cfg: ModelConfig):
        super().__init__()
        self.trunk = DownTrunk(channels, resolution, cfg, tap_side=FEATURE_SIDE)
        self.head = nn.Linear(self.trunk.out_channels * BOTTOM * BOTTOM, 1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, features = self.trunk(images)
        return self.head(h.flatten(1)).squeeze(1), features
