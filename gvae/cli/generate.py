"""``gvae generate``."""

import click

from gvae.cli import not_implemented


@click.command("generate")
@click.argument("source", metavar="RUN_OR_CHECKPOINT")
@click.option("--num", type=int, required=True)
@click.option("--out", type=click.Path(file_okay=False), required=True)
@click.option("--format", "fmt", type=click.Choice(["wds", "png"]), default="wds", show_default=True)
@click.option("--shard-size", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--temperature", type=click.FloatRange(0), default=1.0, show_default=True)
@click.option("--from-data", default=None)
@click.option("--variations", type=click.IntRange(1), default=1, show_default=True)
def generate(**kwargs) -> None:
    """Mass-generate an augmentation set from a trained model."""
    not_implemented("gvae generate")


COMMANDS = [generate]
