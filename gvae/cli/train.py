"""``gvae train``."""

import click

from gvae.cli import not_implemented


@click.command("train")
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--out", type=click.Path(file_okay=False), default=None)
@click.option("--resume", default="auto", show_default=True)
def train(**kwargs) -> None:
    """Train the model of RECIPE."""
    not_implemented("gvae train")


COMMANDS = [train]
