"""``gvae data pack`` and ``gvae data inspect``."""

from __future__ import annotations

import math
import shlex

import click
from click.core import ParameterSource

from gvae.cli.types import FiniteFloatRange
from gvae.data import PackConfig
from gvae.data.imageops import DEFAULT_WINDOW
from gvae.data.sources import KINDS


def _pair(kind: type, what: str):
    """A click callback parsing ``A,B`` into a (kind, kind) tuple with A < B."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None):
        if value is None:
            return None
        try:
            low, high = (kind(part) for part in value.split(","))
        except ValueError:
            raise click.BadParameter(f"expected {what} as two numbers A,B, got {value!r}") from None
        if not (math.isfinite(low) and math.isfinite(high)):
            raise click.BadParameter(f"expected two finite numbers, got {value!r}")
        if not low < high:
            raise click.BadParameter(f"expected A < B, got {value!r}")
        return low, high

    return parse


def _command_line(ctx: click.Context) -> str:
    """The command as the user could retype it: the arguments and every option not left at its default."""
    words = ["gvae", *ctx.command_path.split()[1:]]
    for param in ctx.command.params:
        value = ctx.params[param.name]
        if ctx.get_parameter_source(param.name) == ParameterSource.DEFAULT:
            continue
        if isinstance(param, click.Argument):
            words.append(str(value))
        elif param.is_flag:
            words.append(param.opts[-1])
        else:
            text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
            words.append(f"{param.opts[-1]}={text}")  # "=" keeps a negative value like -160,240 attached
    return shlex.join(words)


@click.group()
def data() -> None:
    """Pack raw images into WebDataset shards and inspect shards."""


@data.command("pack")
@click.argument("src")
@click.option("--kind", type=click.Choice(KINDS), required=True, help="What SRC holds.")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output directory.")
@click.option("--resolution", type=click.IntRange(16, 4096), required=True, help="Pixels a side (square).")
@click.option("--channels", type=click.Choice(["1", "3"]), default=None,
              help="1 grey, 3 RGB. [default: 3 for imagefolder/lsun, else 1]")
@click.option("--bits", type=click.Choice(["8", "16"]), default=str(PackConfig.bits), show_default=True,
              help="PNG bit depth; 16 for dicom, nifti and phantom.")
@click.option("--shard-size", type=click.IntRange(1), default=PackConfig.shard_size, show_default=True,
              help="Images per shard.")
@click.option("--val-fraction", type=FiniteFloatRange(0, 1), default=PackConfig.val_fraction, show_default=True,
              help="Share of items held out (ignored by idx, which keeps the official split).")
@click.option("--window", callback=_pair(float, "LOW,HIGH"), default=None,
              help="Intensity window LOW,HIGH in physical units (HU) for dicom/nifti/phantom. "
                   f"[default: {DEFAULT_WINDOW[0]:g},{DEFAULT_WINDOW[1]:g}]")
@click.option("--slice-range", callback=_pair(int, "A,B"), default=None,
              help="nifti: keep axial slices A..B-1 of every volume.")
@click.option("--labels-from-dirs", is_flag=True, help="imagefolder: the first directory level is the class.")
@click.option("--num", type=click.IntRange(1), default=None,
              help="phantom, colour-phantom: how many to make; others: pack a seeded subset of at most N items.")
@click.option("--seed", type=click.IntRange(0), default=PackConfig.seed, show_default=True, help="Order and split.")
@click.option("--workers", type=click.IntRange(1, 256), default=PackConfig.workers, show_default=True,
              help="Decoding processes (at most 256).")
@click.option("--max-bad-fraction", type=FiniteFloatRange(0, 1), default=PackConfig.max_bad_fraction,
              show_default=True,
              help="Fail when more than this share of the inputs is unreadable.")
@click.option("--overwrite", is_flag=True,
              help="Replace a packed dataset already in OUT, once the new pack has succeeded (a failed pack "
                   "leaves it as it was).")
@click.option("--per-class", type=click.IntRange(1), default=None, metavar="K",
              help="Keep at most K train images per class (the first K in the seeded order; val is kept whole).")
@click.pass_context
def pack(ctx: click.Context, src: str, kind: str, out: str, resolution: int, channels: str | None, bits: str,
         shard_size: int, val_fraction: float, window, slice_range, labels_from_dirs: bool, num: int | None,
         seed: int, workers: int, max_bad_fraction: float, overwrite: bool, per_class: int | None) -> None:
    """Pack SRC into WebDataset shards: OUT/train-000000.tar ..., OUT/val-000000.tar ..., OUT/dataset.json.

    Images are centre-cropped to a square and resized to --resolution. The order and the train/val split
    are drawn from --seed; an interrupted pack resumes when the same command is run again. OUT must be new,
    empty, or an interrupted pack; a finished pack there is replaced only with --overwrite, and only after
    the new one is complete.

    \b
    Examples:
      gvae data pack - --kind phantom --num 2000 --resolution 64 --out data/phantom
      gvae data pack - --kind colour-phantom --num 2000 --val-fraction 0.1 --resolution 32 --out data/colour-phantom
      gvae data pack photos/ --kind imagefolder --labels-from-dirs --resolution 128 --out data/photos
      gvae data pack /usr/share/datasets/fashion-mnist --kind idx --resolution 32 --out data/fmnist
      gvae data pack /usr/share/datasets/fashion-mnist --kind idx --resolution 32 --per-class 100 \
          --out data/fmnist-small
      gvae data pack scans/ --kind dicom --window -160,240 --bits 16 --resolution 256 --out data/ct
    """
    from gvae.data.pack import PackConfig
    from gvae.data.pack import pack as run_pack

    info = run_pack(PackConfig(
        src=src, kind=kind, out=out, resolution=resolution, channels=int(channels) if channels else None,
        bits=int(bits), window=window, labels_from_dirs=labels_from_dirs, num=num, seed=seed,
        slice_range=slice_range, shard_size=shard_size, val_fraction=val_fraction, workers=workers,
        max_bad_fraction=max_bad_fraction, overwrite=overwrite, per_class=per_class, command=_command_line(ctx)))
    counts = ", ".join(f"{split} {entry['count']} in {len(entry['shards'])} shards"
                       for split, entry in info["splits"].items())
    click.echo(f"{out}: {counts}; {info['resolution']} px, {info['channels']} channel(s), {info['bits']}-bit"
               + (f"; skipped {len(info['skipped'])} unreadable inputs" if info["skipped"] else ""))


@data.command("inspect")
@click.argument("path")
@click.option("--grid", type=click.Path(dir_okay=False), default=None, help="Save a PNG grid of the first samples.")
def inspect(path: str, grid: str | None) -> None:
    """Decode every sample of PATH (a packed directory, a shard pattern or a list) and report on them.

    Exits with code 1 when any sample is unreadable, a shard's sha256 differs from dataset.json's, or a
    split's count differs from dataset.json's.

    \b
    Examples:
      gvae data inspect data/phantom --grid phantom.png
      gvae data inspect 'data/phantom/train-{000000..000003}.tar'
    """
    from gvae.data.inspect import inspect as run_inspect
    from gvae.errors import GvaeError

    report = run_inspect(path, grid)
    info = report["info"]
    if info is not None:
        names = info.get("label_names")
        click.echo(f"{info['kind']} dataset: {info['resolution']} px, {info['channels']} channel(s), "
                   f"{info.get('bits', 8)}-bit, {len(info.get('skipped', []))} inputs skipped when packed")
    else:
        names = None
    bad, miscounted = 0, []
    for split, entry in report["splits"].items():
        if entry.get("expected") not in (None, entry["count"]):
            miscounted.append(f"{split} holds {entry['count']} readable samples, dataset.json says {entry['expected']}")
        expected = f" (dataset.json: {entry['expected']})" if "expected" in entry else ""
        click.echo(f"{split}: {entry['count']} samples in {entry['shards']} shards{expected}")
        click.echo("  shapes: " + ", ".join(f"{shape} x{n}" for shape, n in entry["shapes"].items()))
        labels = [f"{names[int(k)] if names and 0 <= int(k) < len(names) else k}: {n}"
                  for k, n in entry["labels"].items()]
        click.echo("  labels: " + ", ".join(labels))
        for reason in entry["bad"]:
            click.echo(f"  bad: {reason}")
        bad += len(entry["bad"])
    if grid:
        click.echo(f"grid: {grid}")
    if bad:
        raise GvaeError(f"{bad} unreadable samples or damaged shards in {path} (listed above); repack the "
                        "affected shards")
    if miscounted:
        raise GvaeError(f"{path}: {'; '.join(miscounted)}; shards are missing or were changed, repack them")


COMMANDS = [data]
