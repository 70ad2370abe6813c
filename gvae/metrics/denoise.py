"""Denoising: can the model map a corrupted image back to the clean one?

An image x in [0, 1] is corrupted as clamp(x + sigma * n, 0, 1) with n ~ N(0, I), reconstructed by the
model (encode, then decode the posterior mean), and compared with the clean x. A model whose latent space
captures the data and not the noise scores well above the PSNR of the noisy input itself.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from gvae.metrics.reconstruction import reconstruction_errors

NOISE_LEVELS = (0.2, 0.5)


def corrupt(x: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` [B, C, H, W] in [0, 1] plus Gaussian noise of std ``sigma``, clamped to [0, 1]."""
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return (x + sigma * noise).clamp(0, 1)


@torch.no_grad()
def denoising_scores(reconstruct: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, sigma: float,
                     generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """{"psnr", "ssim", "noisy_psnr"}, each [B]: the reconstruction of the corrupted ``x`` against the clean ``x``.

    ``reconstruct`` maps [B, C, H, W] in [0, 1] to the same; ``noisy_psnr`` is the baseline of doing nothing.
    """
    noisy = corrupt(x, sigma, generator)
    scores = reconstruction_errors(x, reconstruct(noisy))
    return {"psnr": scores["psnr"], "ssim": scores["ssim"],
            "noisy_psnr": reconstruction_errors(x, noisy)["psnr"]}
