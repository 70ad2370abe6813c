"""NIfTI volumes (.nii, .nii.gz), found recursively: one image per axial slice.

Each volume is reoriented to the closest canonical (RAS+) orientation, so the third axis runs inferior to
superior; slice k is shown with anterior at the top and the patient's left on the image's right. Values
(nibabel applies scl_slope/scl_inter) are windowed like CT (``--window``, default -100,240). ``--slice-range
A,B`` keeps slices A..B-1 of every volume (clipped to the volume). A 4-D volume uses its first time point.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from gvae.data.imageops import DEFAULT_WINDOW, unit_to_pixels, window_to_unit
from gvae.data.sources import Item, Loaded, PackOptions, Scan, SourceInfo
from gvae.errors import GvaeError

INFO = SourceInfo(default_channels=1, supports_16bit=True)


def scan(src: str, opts: PackOptions) -> Scan:
    root = Path(src)
    if root.is_file():
        files, base = [root], root.parent
    elif root.is_dir():
        files, base = sorted(p for p in root.rglob("*") if p.name.endswith((".nii", ".nii.gz"))), root
    else:
        raise GvaeError(f"{src}: no such file or directory; --kind nifti expects .nii/.nii.gz volumes")
    items = [Item(source=str(f.relative_to(base)), ref=str(f)) for f in files]
    return Scan(items=items, label_names=None, load=load, images_per_item=None)


def load(item: Item, opts: PackOptions) -> list[Loaded]:
    volume = nib.as_closest_canonical(nib.load(item.ref))
    data = np.asanyarray(volume.dataobj, dtype=np.float32)
    if data.ndim == 4:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"expected a 3-D volume, got shape {list(data.shape)}")
    low, high = opts.slice_range or (0, data.shape[2])
    window = opts.window or DEFAULT_WINDOW
    images = []
    for k in range(max(low, 0), min(high, data.shape[2])):
        plane = np.flipud(data[:, :, k].T)  # rows: posterior -> anterior flipped to anterior at top
        meta = {"slice": k, "original_size": [int(plane.shape[1]), int(plane.shape[0])], "window": list(window)}
        unit = window_to_unit(plane, window)
        images.append(Loaded(unit_to_pixels(unit, opts.resolution, opts.bits, opts.channels), None, meta))
    return images
