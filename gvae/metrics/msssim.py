"""Sample diversity as the mean MS-SSIM between random distinct pairs of generated images.

Lower means more diverse: identical images score 1, unrelated images score near 0. Compare a model's value
with the same number computed on real images (a model far above it has collapsed modes).

piq's defaults (11-pixel Gaussian window, sigma 1.5, five scales) need images of at least
(11 - 1) * 2^4 + 1 = 161 pixels a side, so small images get a configuration of their own (:func:`msssim_config`):

- the window is 11 px (sigma 1.5) when the shorter side is at least 41 px, else 7 px (sigma 1.0);
- the number of scales is the largest s <= 5 with (window - 1) * 2^(s-1) + 1 <= shorter side;
- the scales keep the first s of the standard weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), renormalised.

So 16 px uses (7 px, 2 scales), 28-32 px (7 px, 3 scales), 64 px (11 px, 3 scales), 128 px (11 px, 4 scales),
and 161 px and above the standard configuration. Values are comparable only between equal configurations.
"""

from __future__ import annotations

from dataclasses import dataclass

import piq
import torch

from gvae.errors import GvaeError

STANDARD_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MIN_SIDE = 16


@dataclass(frozen=True)
class MsssimConfig:
    """The MS-SSIM window and scales used for one image size (recorded in results.json)."""

    kernel_size: int
    kernel_sigma: float
    scale_weights: tuple[float, ...]

    @property
    def scales(self) -> int:
        return len(self.scale_weights)

    def to_dict(self) -> dict:
        return {"kernel_size": self.kernel_size, "kernel_sigma": self.kernel_sigma, "scales": self.scales,
                "scale_weights": list(self.scale_weights)}


def msssim_config(height: int, width: int) -> MsssimConfig:
    """The window and scales for images of ``height`` x ``width`` pixels (rule in the module docstring)."""
    side = min(height, width)
    if side < MIN_SIDE:
        raise GvaeError(f"MS-SSIM needs images of at least {MIN_SIDE} px a side, got {height}x{width}")
    kernel, sigma = (11, 1.5) if side >= 41 else (7, 1.0)
    scales = max(s for s in range(1, 6) if (kernel - 1) * 2 ** (s - 1) + 1 <= side)
    weights = STANDARD_WEIGHTS[:scales]
    return MsssimConfig(kernel, sigma, tuple(w / sum(weights) for w in weights))


def msssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MS-SSIM of each pair (x_i, y_i), both [B, C, H, W] in [0, 1], with :func:`msssim_config`: [B]."""
    config = msssim_config(x.shape[-2], x.shape[-1])
    weights = torch.tensor(config.scale_weights, dtype=x.dtype, device=x.device)
    return piq.multi_scale_ssim(x.clamp(0, 1), y.clamp(0, 1), kernel_size=config.kernel_size,
                                kernel_sigma=config.kernel_sigma, data_range=1.0, reduction="none",
                                scale_weights=weights)


def random_pairs(n: int, num_pairs: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``num_pairs`` index pairs (i, j), i != j, drawn uniformly with replacement among the n(n-1) ordered pairs."""
    if n < 2:
        raise GvaeError(f"MS-SSIM diversity needs at least 2 images, got {n}")
    generator = torch.Generator().manual_seed(seed)
    i = torch.randint(n, (num_pairs,), generator=generator)
    j = (i + torch.randint(1, n, (num_pairs,), generator=generator)) % n  # uniform over j != i
    return i, j


def msssim_diversity(images: torch.Tensor, num_pairs: int, seed: int, batch_size: int = 64) -> float:
    """Mean MS-SSIM over ``num_pairs`` random distinct pairs of ``images`` [N, C, H, W] in [0, 1], H, W >= 16.

    The pairs are a pure function of (N, num_pairs, seed); see the module docstring for small images.
    """
    if num_pairs < 1:
        raise GvaeError(f"MS-SSIM diversity needs at least one pair, got num_pairs={num_pairs}")
    i, j = random_pairs(len(images), num_pairs, seed)
    total = 0.0
    for start in range(0, num_pairs, batch_size):
        a, b = i[start:start + batch_size], j[start:start + batch_size]
        total += msssim(images[a].float(), images[b].float()).double().sum().item()
    return total / num_pairs
