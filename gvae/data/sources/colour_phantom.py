"""Colour phantoms: the CT-like phantoms of :mod:`gvae.data.sources.phantom` with every tissue in its own
colour, a dataset with real colour structure for grey-to-colour models (none can be downloaded here).

The geometry (and the label, the number of lesions) is that of the grey phantom with the same (seed, index).
Each tissue has a fixed colour (fat yellow, soft tissue pink, liver dark red, spleen purple, kidneys orange,
bone off-white, lesions bright green), made a little lighter or darker by the phantom's own random shift of
that tissue's Hounsfield value (1% per HU). The colour follows from what and where a structure is, which the
grey image shows, but not from its brightness alone: soft tissue and kidneys have about the same luminance
(Y 0.55 and 0.58) in different hues. Lesions are brighter than the tissue around them, as in CT, so the grey
image shows them. Always 3 channels, 8 bits.
"""

from __future__ import annotations

import numpy as np

from gvae.data.sources import Item, Loaded, PackOptions, Scan, SourceInfo
from gvae.data.sources.phantom import _ORGANS, _TISSUE, LABEL_NAMES, Shape, draw_shapes, rasterise
from gvae.data.sources.phantom import scan as scan_phantoms
from gvae.errors import GvaeError

INFO = SourceInfo(default_channels=3, supports_16bit=False)
PALETTE = {  # RGB in [0, 1]
    "fat": (0.93, 0.80, 0.35),
    "tissue": (0.80, 0.45, 0.40),
    "liver": (0.55, 0.16, 0.10),
    "spleen": (0.50, 0.22, 0.55),
    "kidney_r": (0.90, 0.50, 0.15),
    "kidney_l": (0.90, 0.50, 0.15),
    "vertebra": (0.95, 0.94, 0.86),
    "lesion": (0.45, 0.95, 0.45),
}
_NOMINAL_HU = {"fat": -90.0, "tissue": _TISSUE, "lesion": 220.0} | {name: o[5] for name, o in _ORGANS.items()}


def colour_of(shape: Shape) -> np.ndarray:
    """The tissue's colour, 1% lighter per HU that this phantom's value lies above the tissue's nominal one."""
    shade = 1.0 + 0.01 * (shape.value - _NOMINAL_HU[shape.part])
    return np.clip(np.asarray(PALETTE[shape.part]) * shade, 0.0, 1.0)


def render_rgb(index: int, seed: int, resolution: int) -> tuple[np.ndarray, int]:
    """Colour phantom ``index``: RGB ``[R, R, 3]`` float32 in [0, 1] on black, and its number of lesions."""
    shapes, count = draw_shapes(index, seed)
    return rasterise(shapes, resolution, np.zeros(3, np.float32), colour_of), count


def scan(src: str, opts: PackOptions) -> Scan:
    if opts.channels != 3 or opts.bits != 8:
        raise GvaeError("--kind colour-phantom makes 8-bit RGB images; leave --channels and --bits at 3 and 8")
    found = scan_phantoms(src, opts)
    return Scan(items=[Item(source=f"colour-phantom:{i.ref}", ref=i.ref) for i in found.items],
                label_names=LABEL_NAMES, load=load)


def load(item: Item, opts: PackOptions) -> list[Loaded]:
    rgb, lesions = render_rgb(item.ref, opts.seed, opts.resolution)
    pixels = np.rint(rgb * 255).astype(np.uint8)
    return [Loaded(pixels, lesions, {"lesions": lesions, "original_size": [opts.resolution, opts.resolution]})]
