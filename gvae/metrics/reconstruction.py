"""How faithfully a model reconstructs held-out images: per-image MSE, PSNR (dB) and SSIM.

Per-image values (not batch means) so that the caller can report a mean with its standard error.
SSIM uses piq's defaults (11 px Gaussian window, sigma 1.5), which need images of at least 11 px a side.
"""

from __future__ import annotations

import piq
import torch


@torch.no_grad()
def reconstruction_errors(x: torch.Tensor, x_hat: torch.Tensor) -> dict[str, torch.Tensor]:
    """{"mse", "psnr", "ssim"} between ``x`` and ``x_hat`` [B, C, H, W] in [0, 1], each [B].

    MSE is the mean over pixels and channels; PSNR = -10 log10(MSE + 1e-8) dB (piq.psnr, data range 1);
    SSIM is piq.ssim averaged over channels.
    """
    x, x_hat = x.float().clamp(0, 1), x_hat.float().clamp(0, 1)
    return {
        "mse": (x - x_hat).pow(2).flatten(1).mean(1),
        "psnr": piq.psnr(x_hat, x, data_range=1.0, reduction="none"),
        "ssim": piq.ssim(x_hat, x, data_range=1.0, reduction="none"),
    }
