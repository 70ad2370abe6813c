"""Pixel operations shared by every source: crop, resize, intensity window, quantisation, channel count.

Sources hand over either a PIL image (photos) or a float array of physical values (CT Hounsfield units,
MR signal); both end as a uint8 or uint16 array ``[R, R]`` or ``[R, R, 3]`` ready for :func:`encode_png`.
Float data is windowed to [0, 1] *before* resizing, in float32, so 16-bit output keeps its precision.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

DEFAULT_WINDOW = (-100.0, 240.0)  # Hounsfield units: soft tissue, the usual abdominal CT window


def center_crop_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The largest centred square inside a ``width`` x ``height`` image, as a PIL box (left, top, right, bottom)."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def resize_square(image: Image.Image, resolution: int) -> Image.Image:
    """Centre-crop ``image`` to a square and resize it to ``resolution`` pixels a side.

    LANCZOS for quality; ``reducing_gap=3`` lets PIL first shrink by an integer factor with a BOX filter when
    the image is more than 3x too large, which is both faster and free of aliasing.
    """
    square = image.crop(center_crop_box(*image.size))
    if square.size == (resolution, resolution):
        return square
    return square.resize((resolution, resolution), Image.Resampling.LANCZOS, reducing_gap=3.0)


def photo_to_array(image: Image.Image, resolution: int, channels: int) -> np.ndarray:
    """A photo (any PIL mode) as uint8 ``[R, R]`` (``channels=1``) or ``[R, R, 3]`` (``channels=3``)."""
    if image.mode in ("I;16", "I;16B", "I", "F"):  # 16/32-bit greyscale photos: scale by their own maximum
        values = np.asarray(image, dtype=np.float32)
        image = Image.fromarray(_quantize(values / max(float(values.max()), 1.0), 8))
    image = image.convert("L" if channels == 1 else "RGB")
    return np.asarray(resize_square(image, resolution))


def window_to_unit(values: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Map physical values to [0, 1]: ``low`` and below -> 0, ``high`` and above -> 1, linear between."""
    low, high = window
    return np.clip((np.asarray(values, dtype=np.float32) - low) / (high - low), 0.0, 1.0)


def percentile_unit(values: np.ndarray, low: float = 0.5, high: float = 99.5) -> tuple[np.ndarray, list[float]]:
    """Map values to [0, 1] by their own percentiles (for MR and other data without absolute units).

    Returns the unit image and the window used, ``[value at low %, value at high %]``.
    """
    lo, hi = (float(v) for v in np.percentile(values, [low, high]))
    if hi <= lo:
        hi = lo + 1.0
    return window_to_unit(values, (lo, hi)), [lo, hi]


def unit_to_pixels(unit: np.ndarray, resolution: int, bits: int, channels: int) -> np.ndarray:
    """A float image ``[H, W]`` in [0, 1] -> centre crop, LANCZOS resize (in float32) -> quantised pixels.

    Returns uint8 (``bits=8``) or uint16 (``bits=16``) ``[R, R]``, or ``[R, R, 3]`` grey replicated for
    ``channels=3``. Values are rounded to the nearest level; LANCZOS overshoot is clipped back to [0, 1].
    """
    image = Image.fromarray(np.ascontiguousarray(unit, dtype=np.float32))  # mode F
    resized = np.clip(np.asarray(resize_square(image, resolution)), 0.0, 1.0)
    return grey_to_channels(_quantize(resized, bits), channels)


def grey_to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """``[H, W]`` -> itself for one channel, ``[H, W, 3]`` (replicated) for three."""
    return pixels if channels == 1 else np.repeat(pixels[:, :, None], 3, axis=2)


def _quantize(unit: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    return np.rint(unit * top).astype(np.uint8 if bits == 8 else np.uint16)
