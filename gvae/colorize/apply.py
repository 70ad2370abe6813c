"""Applying a trained colorizer: colour versions of grey (or colour) images, and how close they come.

For colour images the prediction is scored against the original, beside the trivial baseline that keeps Y and
sets I = Q = 0 (a grey image: all three channels equal Y): PSNR and SSIM of the rebuilt RGB, per image, as the
mean with its standard error. A colorizer that learned nothing about colour scores the baseline's numbers.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from safetensors import SafetensorError

from gvae.colorize.model import Colorizer
from gvae.colorize.yiq import luminance, rebuild_rgb
from gvae.config import recipe_from_yaml_text
from gvae.errors import GvaeError
from gvae.loading import CONFIG, WEIGHTS, resolve_checkpoint
from gvae.metrics import standard_error
from gvae.metrics.reconstruction import reconstruction_errors


def load_colorizer(run_or_checkpoint: str | Path) -> Colorizer:
    """The colorizer of a run's newest checkpoint (or of a checkpoint directory), in eval mode on the CPU."""
    from gvae.models import load_weights

    checkpoint = resolve_checkpoint(run_or_checkpoint)
    try:
        recipe = recipe_from_yaml_text((checkpoint / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as err:
        raise GvaeError(f"{checkpoint}: its config.yaml is damaged ({err}); use another checkpoint") from None
    if recipe.model.kind != "colorize":
        raise GvaeError(f"{checkpoint} holds a {recipe.model.kind} model, not a colorizer (model.kind colorize)")
    net = Colorizer(recipe.data.resolution, recipe.model)
    try:
        load_weights(net, checkpoint / WEIGHTS)
    except (OSError, SafetensorError) as err:
        raise GvaeError(f"{checkpoint}: {WEIGHTS} is damaged ({err}); use another checkpoint") from None
    return net.eval()


def grey_of(images: torch.Tensor) -> torch.Tensor:
    """The luminance Y [N, 1, H, W] of colour images, or grey images [N, 1, H, W] as they are."""
    return images if images.shape[1] == 1 else luminance(images)


@torch.no_grad()
def colorize(net: Colorizer, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Colour versions [N, 3, H, W] in [0, 1] of ``images`` [N, 1 or 3, H, W] (colour ones are first made grey)."""
    if images.shape[-1] != net.resolution or images.shape[-2] != net.resolution:
        raise GvaeError(f"images of {images.shape[-1]} px, but the colorizer was trained at {net.resolution} px; "
                        "pack them at that resolution")
    grey = grey_of(images)
    return torch.cat([net.colorize(grey[i:i + batch_size]) for i in range(0, len(grey), batch_size)])


def baseline(images: torch.Tensor) -> torch.Tensor:
    """The I = Q = 0 baseline of colour images [N, 3, H, W]: their luminance in all three channels."""
    y = luminance(images)
    return rebuild_rgb(y, torch.zeros_like(y).expand(-1, 2, -1, -1))


def scores(original: torch.Tensor, predicted: torch.Tensor) -> dict[str, dict]:
    """PSNR (dB) and SSIM of ``predicted`` and of the I = Q = 0 baseline against colour ``original`` [N, 3, H, W].

    Each entry: {"value": mean over images, "std": its standard error, "n"}.
    """
    found = {}
    for who, images in (("colorize", predicted), ("baseline", baseline(original))):
        errors = reconstruction_errors(original, images)
        for name in ("psnr", "ssim"):
            values = errors[name].double()
            found[f"{who}_{name}"] = {"value": values.mean().item(), "std": standard_error(values),
                                      "n": values.numel()}
    return found


def comparison_png(images: torch.Tensor, predicted: torch.Tensor, count: int = 8) -> bytes:
    """The first ``count`` images as rows: grey input, prediction, and the original where it is in colour."""
    from gvae.report.figures import image_png

    grey = grey_of(images[:count]).expand(-1, 3, -1, -1)
    rows = [grey, predicted[:count]] + ([images[:count]] if images.shape[1] == 3 else [])
    return image_png(torch.cat(rows), nrow=len(grey), scale=2)


def _png(image: torch.Tensor) -> bytes:
    from PIL import Image

    from gvae.report.figures import picture_png

    array = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return picture_png(Image.fromarray(array))


def colorize_to_directory(run: str, images_spec: str, out: str | Path, split: str = "val",
                          limit: int | None = None, batch_size: int = 64) -> dict:
    """Colour versions of the images of ``images_spec`` into ``out``; returns what colorize.json records.

    ``out`` gets ``00000000.png``, ... (one RGB PNG per image, in order), ``comparison.png`` (grey input,
    prediction, original) and ``colorize.json`` (written last: the checkpoint, the images, and for colour
    images the scores of :func:`scores`). A directory holding anything else is refused with nothing touched.
    """
    from gvae.data import load_images
    from gvae.fileio import DirectoryLock, write_bytes_atomic, write_json_atomic

    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not (out / "colorize.json").is_file():
        raise GvaeError(f"--out {out} holds files that gvae colorize did not write; give a new or empty directory")
    net = load_colorizer(run)
    images, _ = load_images(images_spec, split=split, limit=limit)
    predicted = colorize(net, images, batch_size)
    with DirectoryLock(out, "gvae colorize"):
        for index, image in enumerate(predicted):
            write_bytes_atomic(out / f"{index:08d}.png", _png(image))
        write_bytes_atomic(out / "comparison.png", comparison_png(images, predicted))
        record = {"checkpoint": str(resolve_checkpoint(run)), "images": images_spec, "split": split,
                  "count": len(images), "input_channels": images.shape[1],
                  "scores": scores(images, predicted) if images.shape[1] == 3 else None}
        write_json_atomic(out / "colorize.json", record)
    return record
