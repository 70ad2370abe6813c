"""Image grids: many images as one picture, for sample grids, the report and ``gvae data inspect --grid``."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def grid_array(images: torch.Tensor, nrow: int, padding: int = 2, pad_value: float = 1.0) -> np.ndarray:
    """``images`` [N, C, H, W] in [0, 1] laid out ``nrow`` to a row with ``padding`` px gaps of ``pad_value``, as
    uint8 [H', W', 3] (grey images repeated over the three channels)."""
    from torchvision.utils import make_grid

    grid = make_grid(images.detach().float().clamp(0, 1).cpu(), nrow=nrow, padding=padding, pad_value=pad_value)
    return (grid * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def grid_picture(array: np.ndarray, grey: bool) -> Image.Image:
    """A :func:`grid_array` as a picture: one channel for grey images, RGB otherwise."""
    return Image.fromarray(array[..., 0] if grey else array)
