"""``gvae demo``."""

import click

from gvae.cli import not_implemented


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False), default="gvae-demo", show_default=True)
def demo(**kwargs) -> None:
    """The whole pipeline on built-in phantoms, in minutes on a laptop CPU."""
    not_implemented("gvae demo")


COMMANDS = [demo]
