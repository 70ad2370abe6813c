"""Building blocks shared by every convolutional network here: the encoder, the generator and the discriminator.

All three are stacks of one residual block, :class:`ResBlock`, at a width that depends only on the side of the
feature map (:func:`channel_width`), so a recipe's ``model.channel_*`` fields size every network at once and
a resolution from 32 to 1024 px gives a sensible net: wide at the 4x4 bottom, narrow at full resolution, where
convolutions are most expensive.

* :class:`DownTrunk` (encoder, discriminator): image [B, C, R, R] -> features [B, w(4), 4, 4], halving the side
  by pooling after each level.
* :class:`UpTrunk` (generator): features [B, w(4), 4, 4] -> [B, w(R), R, R], doubling the side by nearest
  neighbour up-sampling before each level.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from gvae.config import ModelConfig

BOTTOM = 4  # side of the smallest feature map; the latent code is mapped to and from a BOTTOM x BOTTOM map


def channel_width(side: int, cfg: ModelConfig) -> int:
    """Channels of a feature map of ``side`` pixels: clamp(channel_base // side, channel_min, channel_max)."""
    return max(cfg.channel_min, min(cfg.channel_max, cfg.channel_base // side))


def level_sides(resolution: int) -> list[int]:
    """Sides at which a trunk runs a level, largest first: [R, R/2, ..., 8] (a 4x4 map is below the last)."""
    if resolution < 2 * BOTTOM or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= {2 * BOTTOM}, got {resolution}")
    return [resolution >> i for i in range(int(math.log2(resolution // BOTTOM)))]


def make_norm(kind: str, channels: int) -> nn.Module:
    """BatchNorm, GroupNorm (up to 32 groups, dividing ``channels``; safe at batch 1) or nothing."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(math.gcd(channels, 32), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


def make_activation(kind: str) -> nn.Module:
    if kind == "leaky_relu":
        return nn.LeakyReLU(0.2)
    if kind == "relu":
        return nn.ReLU()
    if kind == "silu":
        return nn.SiLU()
    raise ValueError(f"unknown activation {kind!r}")


def conv3x3(in_ch: int, out_ch: int, bias: bool, kernel_size: int = 3) -> nn.Conv2d:
    """A ``kernel_size`` x ``kernel_size`` convolution (odd) padded to keep the map's side; 3x3 by default."""
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=bias)


class ResBlock(nn.Module):
    """conv - norm - act - dropout - conv - norm, plus a skip (1x1 conv when the width changes), then act.

    The two convolutions are ``model.kernel_size`` pixels a side (3 by default).

    Shapes: [B, in_ch, S, S] -> [B, out_ch, S, S]. The first convolution maps to ``mid_ch``: the encoder and
    discriminator keep the input width there (they widen at the block's end, cheap at high resolution); the
    generator narrows first. Convolutions followed by a norm carry no bias (the norm's shift replaces it).
    """

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int, cfg: ModelConfig):
        super().__init__()
        bias = cfg.norm == "none"
        self.body = nn.Sequential(
            conv3x3(in_ch, mid_ch, bias, cfg.kernel_size), make_norm(cfg.norm, mid_ch),
            make_activation(cfg.activation), nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity(),
            conv3x3(mid_ch, out_ch, bias, cfg.kernel_size), make_norm(cfg.norm, out_ch),
        )
        self.skip = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1, bias=False)
        self.act = make_activation(cfg.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


def _level(in_ch: int, out_ch: int, cfg: ModelConfig, widen_last: bool) -> list[nn.Module]:
    """``blocks_per_level`` blocks from in_ch to out_ch; the width changes in the last block (down) or first (up)."""
    if widen_last:
        return [ResBlock(in_ch, in_ch if i < cfg.blocks_per_level - 1 else out_ch, in_ch, cfg)
                for i in range(cfg.blocks_per_level)]
    return [ResBlock(in_ch if i == 0 else out_ch, out_ch, out_ch, cfg) for i in range(cfg.blocks_per_level)]


class DownTrunk(nn.Module):
    """Image [B, C, R, R] in [0, 1] -> features [B, w(4), 4, 4]; the trunk of the encoder and the discriminator.

    The image is mapped to [-1, 1] and widened by a 3x3 stem convolution; each level at side s runs
    ``blocks_per_level`` residual blocks and pools (max or average, ``model.pooling``) to s/2. ``tap_side``
    names a side whose output map is also returned, flattened (the discriminator's feature layer).
    """

    def __init__(self, channels: int, resolution: int, cfg: ModelConfig, tap_side: int | None = None):
        super().__init__()
        sides = level_sides(resolution)
        self.stem = nn.Conv2d(channels, channel_width(resolution, cfg), 3, padding=1)
        pool = nn.MaxPool2d if cfg.pooling == "max" else nn.AvgPool2d
        self.levels = nn.ModuleList(
            nn.Sequential(*_level(channel_width(s, cfg), channel_width(s // 2, cfg), cfg, widen_last=True), pool(2))
            for s in sides)
        self.tap_index = sides.index(2 * tap_side) if tap_side is not None else None
        self.out_channels = channel_width(BOTTOM, cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return (features [B, w(4), 4, 4], tapped features [B, F] or None)."""
        h = self.stem(x * 2 - 1)
        tapped = None
        for i, level in enumerate(self.levels):
            h = level(h)
            if i == self.tap_index:
                tapped = h.flatten(1)
        return h, tapped


class AddCoords(nn.Module):
    """[B, C, S, S] -> [B, C + 2, S, S]: appends each pixel's x and y, from -1 to 1 (CoordConv, Liu et al. 2018).

    A convolution cannot tell where in the map it is, so a generator that must draw a small object at a place
    its latent names (a lesion anywhere in the body) has to build that position from the zero padding, slowly.
    Given the coordinates, a block can compare them with the position its input carries.
    """

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        n, _, side, _ = h.shape
        axis = torch.linspace(-1.0, 1.0, side, device=h.device, dtype=h.dtype)
        y, x = torch.meshgrid(axis, axis, indexing="ij")
        return torch.cat([h, x.expand(n, 1, side, side), y.expand(n, 1, side, side)], dim=1)


class UpTrunk(nn.Module):
    """Features [B, w(4), 4, 4] -> [B, w(R), R, R]: per level, 2x nearest up-sampling then residual blocks.

    With ``model.coord_channels`` each level's first block also reads the pixel coordinates (:class:`AddCoords`).
    """

    def __init__(self, resolution: int, cfg: ModelConfig):
        super().__init__()
        sides = level_sides(resolution)[::-1]  # [8, 16, ..., R]: the side each level outputs
        coords = 2 if cfg.coord_channels else 0
        self.levels = nn.Sequential(*(
            nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *([AddCoords()] if coords else []),
                          *_level(channel_width(s // 2, cfg) + coords, channel_width(s, cfg), cfg, widen_last=False))
            for s in sides))
        self.out_channels = channel_width(resolution, cfg)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.levels(h)
