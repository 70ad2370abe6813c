"""Differentiable augmentation of the images the discriminator sees (DiffAugment, Zhao et al. 2020; ADA,
Karras et al. 2020).

On a small training set the discriminator memorises the real images and wins at once. Showing it randomly
transformed images instead (reals and fakes alike, so it cannot tell them apart by the transform) removes
that shortcut; because every op is differentiable, the generator still learns through the transformed fakes,
and because the same transforms are applied to reals, the generator is not pushed to produce them. Nothing
here touches the generator's likelihood term or its outputs: only the discriminator's input.

Every op maps images [N, C, H, W] (values nominally in [0, 1]; no clamping, which would cut gradients) to
the same shape, and is applied to each image independently with probability ``p`` (ADA style; p = 0 returns
the input itself). Random numbers come from torch's global generator on the images' device, so a run's
saved RNG state makes them reproducible.

The op functions below take their parameters explicitly, one value per image; :class:`DiscriminatorAugment`
draws them. Ranges follow DiffAugment: brightness adds U(-0.5, 0.5), contrast scales the deviation from the
image's mean by U(0.5, 1.5), saturation scales the deviation from each pixel's channel mean by U(0, 2).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

OPS = ("translation", "cutout", "flip", "brightness", "contrast", "saturation")
COLOUR_OPS = frozenset({"saturation"})  # need 3 channels; grey images never get them


def translate(images: torch.Tensor, shift_y: torch.Tensor, shift_x: torch.Tensor) -> torch.Tensor:
    """Move image i by (shift_y[i], shift_x[i]) whole pixels (down, right), filling the vacated border with 0.

    out[i, :, y, x] = images[i, :, y - shift_y[i], x - shift_x[i]] where that is inside the image, else 0.
    Shifts are int64 [N]; gradients flow to the pixels that stay in view.
    """
    n, _, h, w = images.shape
    rows = torch.arange(h, device=images.device) - shift_y[:, None]  # [N, H] source rows
    cols = torch.arange(w, device=images.device) - shift_x[:, None]  # [N, W] source columns
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]  # [N, H, W]
    batch = torch.arange(n, device=images.device)[:, None, None]
    # advanced indices on dims 0, 2, 3 around the channel slice put the channels last: [N, H, W, C]
    moved = images[batch, :, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]
    return moved.permute(0, 3, 1, 2) * inside[:, None].to(images.dtype)


def cut_out(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
    """Zero a size x size square of image i whose top-left pixel is (top[i], left[i]) (int64 [N])."""
    _, _, h, w = images.shape
    rows = torch.arange(h, device=images.device) - top[:, None]  # [N, H]
    cols = torch.arange(w, device=images.device) - left[:, None]  # [N, W]
    square = ((rows >= 0) & (rows < size))[:, :, None] & ((cols >= 0) & (cols < size))[:, None, :]
    return images * (~square)[:, None].to(images.dtype)


def adjust_brightness(images: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """x + delta[i] on every pixel value of image i."""
    return images + _per_image(delta, images)


def adjust_contrast(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """m + factor[i] * (x - m), m the mean of image i over channels and pixels."""
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return mean + _per_image(factor, images) * (images - mean)


def adjust_saturation(images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """g + factor[i] * (x - g), g each pixel's mean over the channels (factor 0: grey, 1: unchanged)."""
    grey = images.mean(dim=1, keepdim=True)
    return grey + _per_image(factor, images) * (images - grey)


def _per_image(values: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """[N] -> [N, 1, 1, 1] in the images' dtype, to broadcast one value over each image."""
    return values.to(images.dtype).view(-1, 1, 1, 1)


class DiscriminatorAugment:
    """The recipe's policy as one callable: ``augment(images, groups=1) -> images``, the same shape.

    ``policy`` lists op names from :data:`OPS`, applied in that order; ``p`` (mutable: the adaptive
    controller sets it) is each op's probability per image. ``translation`` is the largest shift as a fraction
    of the side (shifts are uniform integers in [-s, s], s = round(translation * side)); ``cutout`` the side of
    the zeroed square as a fraction of the image side (placed uniformly, wholly inside the image).

    ``groups`` > 1 says that ``images`` is that many equal blocks whose i-th rows are to get the same
    transform, e.g. reals and their reconstructions compared in discriminator features (vaegan).
    """

    def __init__(self, policy: Sequence[str], p: float, translation: float = 0.125, cutout: float = 0.5):
        unknown = [op for op in policy if op not in OPS]
        if unknown:
            raise ValueError(f"unknown augmentation {unknown[0]!r}; choose from {', '.join(OPS)}")
        self.policy = tuple(policy)
        self.p = p
        self.translation = translation
        self.cutout = cutout

    def __call__(self, images: torch.Tensor, groups: int = 1) -> torch.Tensor:
        if self.p <= 0:
            return images
        n = images.shape[0] // groups
        for op in self.policy:
            if op in COLOUR_OPS and images.shape[1] != 3:
                continue
            chosen = torch.rand(n, device=images.device) < self.p
            changed = self._apply(op, images, n, groups)
            images = torch.where(chosen.repeat(groups)[:, None, None, None], changed, images)
        return images

    def _apply(self, op: str, images: torch.Tensor, n: int, groups: int) -> torch.Tensor:
        """``op`` applied to every image with freshly drawn parameters (n draws, tiled over the groups)."""
        _, _, h, w = images.shape
        device = images.device

        def integers(low: int, high: int) -> torch.Tensor:  # uniform in [low, high]
            return torch.randint(low, high + 1, (n,), device=device).repeat(groups)

        def uniform(low: float, high: float) -> torch.Tensor:
            return (low + (high - low) * torch.rand(n, device=device)).repeat(groups)

        if op == "translation":
            sy, sx = round(self.translation * h), round(self.translation * w)
            return translate(images, integers(-sy, sy), integers(-sx, sx))
        if op == "cutout":
            size = max(1, round(self.cutout * min(h, w)))
            return cut_out(images, integers(0, h - size), integers(0, w - size), size)
        if op == "flip":
            return images.flip(3)
        if op == "brightness":
            return adjust_brightness(images, uniform(-0.5, 0.5))
        if op == "contrast":
            return adjust_contrast(images, uniform(0.5, 1.5))
        return adjust_saturation(images, uniform(0.0, 2.0))
