"""A folder of DICOM files (any name, searched recursively): one image per slice (per frame when multi-frame).

Stored values become physical ones with RescaleSlope/RescaleIntercept (Hounsfield units for CT). CT, or any
series with a rescale intercept, is windowed with ``--window`` (default -100,240 HU) to [0, 1]; other
modalities (MR has no absolute unit) use ``--window`` when given, else each slice's 0.5-99.5 percentiles.
MONOCHROME1 images are inverted so that bright always means dense. Files that are not DICOM, hold no pixel
data, or cannot be decoded (truncated) are skipped and reported by the packer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom

from gvae.data.imageops import DEFAULT_WINDOW, percentile_unit, unit_to_pixels, window_to_unit
from gvae.data.sources import Item, Loaded, PackOptions, Scan, SourceInfo
from gvae.errors import GvaeError

INFO = SourceInfo(default_channels=1, supports_16bit=True)


def scan(src: str, opts: PackOptions) -> Scan:
    root = Path(src)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(p for p in root.rglob("*")
                       if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    else:
        raise GvaeError(f"{src}: no such file or directory; --kind dicom expects a folder of DICOM files")
    base = root.parent if root.is_file() else root
    items = [Item(source=str(f.relative_to(base)), ref=str(f)) for f in files]
    return Scan(items=items, label_names=None, load=load, images_per_item=None)


def hounsfield(ds: pydicom.Dataset) -> np.ndarray:
    """Physical values ``[frames, H, W]`` float32: stored pixel values x RescaleSlope + RescaleIntercept."""
    if "PixelData" not in ds:
        raise ValueError("no pixel data (not an image)")
    samples = int(ds.get("SamplesPerPixel", 1))
    if samples != 1:
        raise ValueError(f"SamplesPerPixel={samples}: only single-channel DICOM is supported")
    stored = ds.pixel_array.astype(np.float32)
    if stored.ndim == 2:
        stored = stored[None]
    slope = float(ds.get("RescaleSlope", 1.0) or 1.0)
    intercept = float(ds.get("RescaleIntercept", 0.0) or 0.0)
    return stored * slope + intercept


def load(item: Item, opts: PackOptions) -> list[Loaded]:
    ds = pydicom.dcmread(item.ref)
    values = hounsfield(ds)
    absolute = ds.get("Modality") == "CT" or "RescaleIntercept" in ds
    invert = ds.get("PhotometricInterpretation") == "MONOCHROME1"
    window = opts.window or (DEFAULT_WINDOW if absolute else None)
    images = []
    for frame, plane in enumerate(values):
        if window is None:
            unit, used = percentile_unit(plane)
        else:
            unit, used = window_to_unit(plane, window), list(window)
        if invert:
            unit = 1.0 - unit
        meta = {"original_size": [int(plane.shape[1]), int(plane.shape[0])], "window": used,
                "modality": str(ds.get("Modality", ""))}
        if len(values) > 1:
            meta["frame"] = frame
        images.append(Loaded(unit_to_pixels(unit, opts.resolution, opts.bits, opts.channels), None, meta))
    return images
