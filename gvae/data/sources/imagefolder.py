"""A tree of photos (jpg, png, webp, bmp, tiff); with ``--labels-from-dirs`` the first directory level is the class.

Files are listed recursively in sorted order (hidden files and directories ignored), centre-cropped to a
square and resized with LANCZOS. Class names are the sorted first-level directory names; files lying directly
in SRC have no class and are refused with ``--labels-from-dirs`` (a silent -1 would corrupt the labels).
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from gvae.data.imageops import photo_to_array
from gvae.data.sources import Item, Loaded, PackOptions, Scan, SourceInfo
from gvae.errors import GvaeError

INFO = SourceInfo(default_channels=3, supports_16bit=False)
MAX_PIXELS = 64 * 10**6  # width x height; photos and scans above it are skipped as unreadable
EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def list_images(root: Path) -> tuple[list[Path], list[dict[str, str]]]:
    """Image files under ``root`` by extension, sorted, skipping hidden names at any level; and the folders that
    could not be listed, as ``{"source", "reason"}``. Links to folders are not followed (a link back up the tree
    would loop forever); they are listed with the unreadable folders, so that nothing is dropped silently."""
    files, skipped = [], []

    def unreadable(err: OSError) -> None:
        skipped.append({"source": str(Path(err.filename).relative_to(root)), "reason": err.strerror or str(err)})

    for folder, subfolders, names in os.walk(root, onerror=unreadable):
        here = Path(folder)
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        for name in subfolders:
            if (here / name).is_symlink():
                skipped.append({"source": str((here / name).relative_to(root)),
                                "reason": "a link to a folder: not followed"})
        files += [here / name for name in names
                  if not name.startswith(".") and Path(name).suffix.lower() in EXTENSIONS and (here / name).is_file()]
    return sorted(files), sorted(skipped, key=lambda entry: entry["source"])


def scan(src: str, opts: PackOptions) -> Scan:
    root = Path(src)
    if not root.is_dir():
        raise GvaeError(f"{src}: not a directory; --kind imagefolder expects a folder of images")
    files, skipped = list_images(root)
    names = None
    labels: list[int | None] = [None] * len(files)
    if opts.labels_from_dirs:
        top = [p.relative_to(root).parts for p in files]
        loose = [str(f) for f, parts in zip(files, top, strict=True) if len(parts) == 1]
        if loose:
            raise GvaeError(f"--labels-from-dirs: {len(loose)} images lie directly in {src} (e.g. {loose[0]}); "
                            f"move them into a class folder or drop --labels-from-dirs")
        names = sorted({parts[0] for parts in top})
        index = {name: i for i, name in enumerate(names)}
        labels = [index[parts[0]] for parts in top]
    items = [Item(source=str(f.relative_to(root)), ref=str(f), label=label)
             for f, label in zip(files, labels, strict=True)]
    return Scan(items=items, label_names=names, load=load, skipped=skipped)


def load(item: Item, opts: PackOptions) -> list[Loaded]:
    """Decode one photo. Its header is read first: an image over MAX_PIXELS is refused (skipped and listed)
    before its pixels are decoded: a 10,000 px square PNG took 1.7 GB to decode."""
    with Image.open(item.ref) as image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ValueError(f"{width}x{height} px is over the {MAX_PIXELS // 10**6} megapixel limit")
        image.load()
        size = [width, height]
        pixels = photo_to_array(image, opts.resolution, opts.channels)
    return [Loaded(pixels, item.label, {"original_size": size})]
