"""The discriminator: images [N, C, R, R] in [0, 1] (and labels [N]) -> (logits [N], features [N, F]).

It shares its trunk with the encoder (:class:`gvae.models.blocks.DownTrunk`: ResNet blocks, max-pool
down-sampling to 4x4) and ends in one linear layer to a logit (> 0: "real"). The features are the flattened
8x8 map, an intermediate layer as in Larsen et al. (2016), where the VAE-GAN measures reconstructions; every
resolution >= 16 has one.

With ``num_classes`` > 0 it is a projection discriminator (Miyato & Koyama, 2018): logit = linear(h) +
<embed(y), h>, h the flattened 4x4 features and embed(y) a learned vector of the same size per class, so the
logit also judges whether an image fits its label. Its embedding starts at the scale of the linear head's
weights (std 1/sqrt(F)), so the projection term matters from the first step.
"""

from __future__ import annotations

import torch
from torch import nn

from gvae.config import ModelConfig
from gvae.models.blocks import BOTTOM, DownTrunk
from gvae.models.conditioning import check_labels

FEATURE_SIDE = 8  # side of the feature map returned with the logits


class Discriminator(nn.Module):
    def __init__(self, channels: int, resolution: int, cfg: ModelConfig, num_classes: int = 0):
        super().__init__()
        self.trunk = DownTrunk(channels, resolution, cfg, tap_side=FEATURE_SIDE)
        width = self.trunk.out_channels * BOTTOM * BOTTOM
        self.head = nn.Linear(width, 1)
        self.num_classes = num_classes
        self.embed = None
        if num_classes:
            self.embed = nn.Embedding(num_classes, width)
            nn.init.normal_(self.embed.weight, std=width ** -0.5)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h, features = self.trunk(images)
        h = h.flatten(1)
        logits = self.head(h).squeeze(1)
        if self.embed is not None:
            labels = check_labels(labels, self.num_classes, len(images))
            logits = logits + (self.embed(labels).to(h.dtype) * h).sum(1)
        return logits, features
