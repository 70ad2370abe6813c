"""Synthetic CT-like abdominal slices, to try the whole pipeline without any data.

Each phantom is an axial "slice" in Hounsfield units: air around a body-shaped ellipse (a fat rim around soft
tissue), a liver, a spleen, two kidneys and a vertebra, then 0..3 small bright round lesions inside the body;
the label is the number of lesions. It is windowed like CT (default -100,240 HU). Shapes are rendered directly
at the target resolution with analytic antialiasing: each pixel takes the fraction of its area inside an
ellipse, estimated from the distance to the boundary (first-order, (q - 1) / |grad q| for the ellipse's
normalised radius q), so edges are smooth at 32 px and at 1024 px alike. Image ``i`` depends on (seed, i)
only. Geometry is in normalised coordinates: the image spans [-1, 1] on both axes, y pointing down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gvae.data.imageops import DEFAULT_WINDOW, grey_to_channels, window_to_unit
from gvae.data.sources import Item, Loaded, PackOptions, Scan, SourceInfo
from gvae.errors import GvaeError

INFO = SourceInfo(default_channels=1, supports_16bit=True)
MAX_LESIONS = 3
MAX_PHANTOMS = 10_000_000  # per pack: one list entry each is built up front
LABEL_NAMES = [f"{n} lesion{'' if n == 1 else 's'}" for n in range(MAX_LESIONS + 1)]
_AIR, _FAT, _TISSUE, _LESION = -1000.0, -90.0, 45.0, 220.0
# name: (centre x, centre y, semi-axis a, semi-axis b, rotation rad, HU)
_ORGANS = {
    "liver": (-0.38, -0.08, 0.32, 0.25, 0.35, 100.0),
    "spleen": (0.50, -0.12, 0.14, 0.10, -0.40, 90.0),
    "kidney_r": (-0.33, 0.22, 0.09, 0.13, 0.30, 150.0),
    "kidney_l": (0.33, 0.22, 0.09, 0.13, -0.30, 150.0),
    "vertebra": (0.00, 0.38, 0.10, 0.10, 0.00, 500.0),
}


def scan(src: str, opts: PackOptions) -> Scan:
    if not opts.num:
        raise GvaeError("--kind phantom needs --num N, the number of phantoms to make")
    if opts.num > MAX_PHANTOMS:
        raise GvaeError(f"--num {opts.num}: at most {MAX_PHANTOMS:,} phantoms per pack; pack several sets with "
                        "different --seed values for more")
    items = [Item(source=f"phantom:{i}", ref=i) for i in range(opts.num)]
    return Scan(items=items, label_names=LABEL_NAMES, load=load)


def ellipse_coverage(x: np.ndarray, y: np.ndarray, pixel: float, cx: float, cy: float, a: float, b: float,
                     theta: float) -> np.ndarray:
    """Fraction in [0, 1] of each pixel inside the ellipse; ``x``, ``y`` are pixel centres, ``pixel`` their pitch."""
    c, s = np.cos(theta), np.sin(theta)
    u = (x - cx) * c + (y - cy) * s
    v = (y - cy) * c - (x - cx) * s
    q = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    grad = np.sqrt((u / a**2) ** 2 + (v / b**2) ** 2)  # |grad q| * q
    distance = (q - 1.0) * q / np.maximum(grad, 1e-12)  # signed distance to the boundary, approx.
    return np.where(q < 0.5, 1.0, np.clip(0.5 - distance / pixel, 0.0, 1.0)).astype(np.float32)


@dataclass(frozen=True)
class Shape:
    """One filled ellipse of a phantom, painted over what is below it: ``part`` names the tissue."""

    part: str  # "fat", "tissue", an organ of _ORGANS, or "lesion"
    value: float  # Hounsfield units
    cx: float
    cy: float
    a: float
    b: float
    theta: float


def draw_shapes(index: int, seed: int) -> tuple[list[Shape], int]:
    """The ellipses of phantom ``index`` in painting order, and its number of lesions; a function of (seed, index)."""
    rng = np.random.default_rng([seed, index])
    bx, by = rng.uniform(-0.03, 0.03, 2)
    ba, bb = 0.86 * rng.uniform(0.94, 1.06), 0.62 * rng.uniform(0.94, 1.06)
    tilt = rng.uniform(-0.05, 0.05)
    shapes = [Shape("fat", _FAT, bx, by, ba, bb, tilt),
              Shape("tissue", _TISSUE + rng.uniform(-5, 5), bx, by, ba - 0.07, bb - 0.07, tilt)]
    for name, (cx, cy, a, b, theta, value) in _ORGANS.items():
        dx, dy = rng.uniform(-0.03, 0.03, 2)
        grow = rng.uniform(0.9, 1.1)
        shapes.append(Shape(name, value + rng.uniform(-5, 5), bx + cx + dx, by + cy + dy, a * grow, b * grow,
                            theta + tilt))
    count = int(rng.integers(0, MAX_LESIONS + 1))
    placed: list[tuple[float, float, float]] = []
    vx, vy, vr = _ORGANS["vertebra"][0] + bx, _ORGANS["vertebra"][1] + by, _ORGANS["vertebra"][2]
    while len(placed) < count:
        r = rng.uniform(0.05, 0.08)
        angle, radius = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform(0, 1))
        cx, cy = bx + 0.7 * (ba - 0.07) * radius * np.cos(angle), by + 0.7 * (bb - 0.07) * radius * np.sin(angle)
        clear = [(cx - ox) ** 2 + (cy - oy) ** 2 > (r + orad + 0.04) ** 2 for ox, oy, orad in [*placed, (vx, vy, vr)]]
        if all(clear):
            placed.append((cx, cy, r))
    shapes += [Shape("lesion", _LESION + rng.uniform(-10, 10), cx, cy, r, r, 0.0) for cx, cy, r in placed]
    return shapes, count


def rasterise(shapes: list[Shape], resolution: int, background: np.ndarray,
              value_of: Callable[[Shape], np.ndarray]) -> np.ndarray:
    """Paint ``shapes`` in order over ``background`` ([K] values) -> float32 ``[R, R, K]``, antialiased.

    Each pixel moves towards ``value_of(shape)`` by the fraction of its area the ellipse covers.
    """
    pitch = 2.0 / resolution
    axis = (np.arange(resolution, dtype=np.float32) + 0.5) * pitch - 1.0
    x, y = np.meshgrid(axis, axis)
    canvas = np.broadcast_to(np.asarray(background, np.float32), (resolution, resolution, len(background))).copy()
    for shape in shapes:
        reach = max(shape.a, shape.b) + 2 * pitch  # only the ellipse's bounding square can change
        cols = slice(*np.clip(np.searchsorted(axis, [shape.cx - reach, shape.cx + reach]), 0, resolution))
        rows = slice(*np.clip(np.searchsorted(axis, [shape.cy - reach, shape.cy + reach]), 0, resolution))
        cover = ellipse_coverage(x[rows, cols], y[rows, cols], pitch, shape.cx, shape.cy, shape.a, shape.b,
                                 shape.theta)
        value = np.asarray(value_of(shape), np.float32)
        canvas[rows, cols] += cover[..., None] * (value - canvas[rows, cols])
    return canvas


def render_hu(index: int, seed: int, resolution: int) -> tuple[np.ndarray, int]:
    """Phantom ``index`` as Hounsfield units ``[R, R]`` float32, and its number of lesions."""
    shapes, count = draw_shapes(index, seed)
    hu = rasterise(shapes, resolution, np.array([_AIR], np.float32), lambda shape: np.array([shape.value]))
    return hu[..., 0], count


def load(item: Item, opts: PackOptions) -> list[Loaded]:
    hu, lesions = render_hu(item.ref, opts.seed, opts.resolution)
    window = opts.window or DEFAULT_WINDOW
    top = (1 << opts.bits) - 1
    pixels = np.rint(window_to_unit(hu, window) * top).astype(np.uint8 if opts.bits == 8 else np.uint16)
    meta = {"lesions": lesions, "window": list(window), "original_size": [opts.resolution, opts.resolution]}
    return [Loaded(grey_to_channels(pixels, opts.channels), lesions, meta)]
