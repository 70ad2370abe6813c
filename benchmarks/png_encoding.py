"""PNG encoders and their settings on the kinds of images gvae writes: CPU time to encode, bytes, CPU time to
decode as gvae's loader does.

    python benchmarks/png_encoding.py
    python benchmarks/png_encoding.py --run runs/fmnist-32-gvae      # also a trained model's samples

Kinds, all made here from what an install has: CT-like phantoms (64 px grey) and colour phantoms (64 px RGB)
packed by ``gvae data pack``; Fashion-MNIST (32 px grey) where ``/usr/share/datasets/fashion-mnist`` exists;
16-bit CT and MR slices (pydicom's test files, 128 px) where pydicom is installed; an untrained GVAE's
noise-like output at 64, 256 and 1024 px RGB (benchmarks/generate.py's models); with ``--run``, that model's
samples.

Encoders: gvae's :func:`gvae.data.encode_png` (libpng through imagecodecs, zlib level 1, Z_RLE, the Sub filter
on every row); libpng at the same zlib settings with each other filter choice, "adaptive" being libpng's
per-row choice among all five; Pillow at the same zlib settings (Pillow tries four filters per row and keeps
the best: gvae's encoder before libpng's), and Pillow's default (level 6). Decoding: gvae's reader
(:func:`gvae.data.reader.decode_image`, Pillow). Each time is the median of ``--repeats`` passes over the
images, in CPU time of this thread. Prints a table per kind and ``ratio:`` lines, gvae against the Pillow
encoder it replaced.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import imagecodecs
import numpy as np
import torch
from generate import make_checkpoint  # benchmarks/generate.py, beside this file
from PIL import Image

from gvae.data import encode_png
from gvae.data.pack import PackConfig, pack
from gvae.data.reader import BadSampleCounter, decode_image, read_raw
from gvae.data.spec import resolve_shards
from gvae.data.writer import PNG_LEVEL, PNG_STRATEGY
from gvae.generation.producer import quantize

FMNIST = Path("/usr/share/datasets/fashion-mnist")


def packed_images(config: PackConfig) -> list[np.ndarray]:
    """The train split's pixels of a pack made with ``config``, as stored: uint8 or uint16, [H, W] or [H, W, 3]."""
    pack(config)
    counter = BadSampleCounter()
    images = [decode_image(raw) for url in resolve_shards(config.out, "train") for raw in read_raw(url, counter)]
    return [pixels[:, :, 0] if pixels.shape[2] == 1 else pixels for pixels in images]


def model_output(model, num: int) -> list[np.ndarray]:
    """``num`` prior samples of ``model`` as gvae generate quantises them, [H, W] or [H, W, 3] uint8."""
    with torch.no_grad():
        pixels = quantize(model.decode(torch.randn(num, model.latent_dim))).numpy()
    return [np.ascontiguousarray(image[:, :, 0] if image.shape[2] == 1 else image) for image in pixels]


def kinds(root: Path, run: str | None) -> dict[str, list[np.ndarray]]:
    made = {}
    common = {"src": "-", "num": 64, "resolution": 64, "val_fraction": 0.0, "progress": False}
    made["phantoms 64 px"] = packed_images(PackConfig(kind="phantom", out=str(root / "phantom"), **common))
    made["colour phantoms 64 px"] = packed_images(PackConfig(kind="colour-phantom", out=str(root / "colour"),
                                                             **common))
    if FMNIST.is_dir():
        fmnist = PackConfig(str(FMNIST), "idx", str(root / "fmnist"), 32, num=64, val_fraction=0.0, progress=False)
        made["Fashion-MNIST 32 px"] = packed_images(fmnist)
    try:
        import pydicom.data
    except ImportError:
        pass
    else:
        slices = root / "dicom-src"
        slices.mkdir()
        for name in ("CT_small.dcm", "MR_small.dcm"):
            (slices / name).write_bytes(Path(pydicom.data.get_testdata_file(name)).read_bytes())
        dicom = PackConfig(str(slices), "dicom", str(root / "dicom"), 128, bits=16, val_fraction=0.0, progress=False)
        made["CT and MR 16-bit 128 px"] = packed_images(dicom) * 8  # 2 slices: repeated for steadier timings
    for resolution, num in ((64, 64), (256, 16), (1024, 2)):
        torch.manual_seed(0)
        model = make_checkpoint(root / f"untrained-{resolution}", resolution)
        made[f"untrained GVAE {resolution} px"] = model_output(model, num)
    if run is not None:
        import gvae

        torch.manual_seed(0)
        made[f"{run} samples"] = model_output(gvae.load(run, for_inference=True), 64)
    return made


def pillow(level: int, strategy: int) -> Callable[[np.ndarray], bytes]:
    def encode(image: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(image.astype("<u2") if image.dtype == np.uint16 else image).save(
            buffer, format="PNG", compress_level=level, compress_type=strategy)
        return buffer.getvalue()
    return encode


def libpng(row_filter: int) -> Callable[[np.ndarray], bytes]:
    return lambda image: imagecodecs.png_encode(image, level=PNG_LEVEL, strategy=PNG_STRATEGY, filter=row_filter)


ENCODERS = {
    "gvae (libpng, Sub)": encode_png,
    "libpng, None": libpng(imagecodecs.PNG.FILTER.NONE),
    "libpng, Up": libpng(imagecodecs.PNG.FILTER.UP),
    "libpng, Paeth": libpng(imagecodecs.PNG.FILTER.PAETH),
    "libpng, adaptive": libpng(imagecodecs.PNG.FILTER.ALL),
    "Pillow, level 1, Z_RLE (before)": pillow(1, zlib.Z_RLE),
    "Pillow default (level 6)": pillow(6, zlib.Z_DEFAULT_STRATEGY),
}


def cpu_ms(fn: Callable, items: list, repeats: int) -> float:
    """Median over ``repeats`` passes of the CPU ms per item of ``fn`` on this thread."""
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        for item in items:
            fn(item)
        times.append((time.thread_time() - start) / len(items))
    return 1000 * statistics.median(times)


def measure(images: list[np.ndarray], encode: Callable[[np.ndarray], bytes],
            repeats: int) -> tuple[float, float, float]:
    """(encode CPU ms, bytes, decode CPU ms) per image; checks that every image decodes to its pixels."""
    encoded = [encode(image) for image in images]
    for image, data in zip(images, encoded, strict=True):
        decoded = decode_image({"png": data})
        if not np.array_equal(decoded.reshape(image.shape), image):
            raise AssertionError("an encoder lost pixels")
    return (cpu_ms(encode, images, repeats), statistics.mean(map(len, encoded)),
            cpu_ms(lambda data: decode_image({"png": data}), encoded, repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a trained run or checkpoint whose samples join the kinds")
    parser.add_argument("--repeats", type=int, default=5, help="passes over the images per measurement")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        made = kinds(Path(tmp), args.run)
    print(f"imagecodecs {imagecodecs.__version__} ({imagecodecs.png_version()}), Pillow {Image.__version__}; "
          f"CPU ms per image, median of {args.repeats} passes")
    for kind, images in made.items():
        print(f"\n{kind}: {len(images)} images, {images[0].dtype} {list(images[0].shape)}")
        print(f"  {'encoder':34} {'encode ms':>10} {'bytes':>9} {'decode ms':>10}")
        rows = {name: measure(images, encode, args.repeats) for name, encode in ENCODERS.items()}
        for name, (encode_ms, size, decode_ms) in rows.items():
            print(f"  {name:34} {encode_ms:>10.3f} {size:>9.0f} {decode_ms:>10.3f}")
        ours, before = rows["gvae (libpng, Sub)"], rows["Pillow, level 1, Z_RLE (before)"]
        for i, what in enumerate(("encode time", "bytes", "decode time")):
            print(f"ratio: PNG {kind}, {what}, gvae / Pillow before = {ours[i] / before[i]:.2f}", flush=True)


if __name__ == "__main__":
    main()
