"""``gvae data pack`` and ``gvae data inspect``."""

import click

from gvae.cli import not_implemented


@click.group()
def data() -> None:
    """Pack raw images into WebDataset shards and inspect shards."""


@data.command("pack")
@click.argument("src")
@click.option("--kind", type=click.Choice(["imagefolder", "lsun", "dicom", "nifti", "idx", "phantom"]), required=True)
@click.option("--out", type=click.Path(file_okay=False), required=True)
@click.option("--resolution", type=click.IntRange(16, 4096), required=True)
@click.option("--channels", type=click.Choice(["1", "3"]), default=None)
@click.option("--shard-size", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--val-fraction", type=click.FloatRange(0, 1), default=0.05, show_default=True)
@click.option("--window", default=None)
@click.option("--labels-from-dirs", is_flag=True)
@click.option("--num", type=click.IntRange(1), default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True)
def pack(**kwargs) -> None:
    """Pack SRC into sharded WebDataset tar files under --out."""
    not_implemented("gvae data pack")


@data.command("inspect")
@click.argument("path")
@click.option("--grid", type=click.Path(dir_okay=False), default=None)
def inspect(**kwargs) -> None:
    """Counts, resolution, channels, label counts and bad samples of shards."""
    not_implemented("gvae data inspect")


COMMANDS = [data]
