"""The YIQ colour space (FCC NTSC): luminance Y and two signed chrominance axes I and Q, linear in RGB.

Grey-to-colour models predict I and Q from Y: the luminance is the grey image itself, so only the two
chrominance planes are unknown, and the RGB image is rebuilt exactly from Y and them. I and Q are signed, and
over the RGB cube [0, 1]^3 they span [-0.5959, 0.5959] and [-0.5227, 0.5227] (:data:`IQ_LIMITS`). The rows of I
and Q sum to 0, so I = Q = 0 is a grey pixel whose three channels all equal Y: the trivial baseline.
"""

from __future__ import annotations

import torch

RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                           [0.5959, -0.2746, -0.3213],
                           [0.2115, -0.5227, 0.3112]], dtype=torch.float64)
YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)
IQ_LIMITS = RGB_TO_YIQ[1:].clamp(min=0).sum(1)  # largest |I|, |Q| in the RGB cube: (0.5959, 0.5227)


def _apply(matrix: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix.to(images), images)


def rgb_to_yiq(rgb: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] RGB in [0, 1] -> [B, 3, H, W] Y in [0, 1], I and Q within +-:data:`IQ_LIMITS`."""
    return _apply(RGB_TO_YIQ, rgb)


def yiq_to_rgb(yiq: torch.Tensor) -> torch.Tensor:
    """The exact inverse of :func:`rgb_to_yiq` (not clamped: an IQ that no RGB colour has leaves [0, 1])."""
    return _apply(YIQ_TO_RGB, yiq)


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """Y of RGB images: [B, 3, H, W] -> [B, 1, H, W] in [0, 1]."""
    return rgb_to_yiq(rgb)[:, :1]


def rebuild_rgb(y: torch.Tensor, iq: torch.Tensor) -> torch.Tensor:
    """RGB [B, 3, H, W] in [0, 1] from Y [B, 1, H, W] and IQ [B, 2, H, W], clamped to the displayable cube."""
    return yiq_to_rgb(torch.cat([y, iq], 1)).clamp(0, 1)
