"""``gvae eval`` and ``gvae leaderboard``."""

import click

from gvae.cli import not_implemented


@click.command("eval")
@click.argument("source", metavar="RUN_OR_CHECKPOINT")
@click.option("--data", "data_pattern", required=True)
@click.option("--metrics", default="all", show_default=True)
@click.option("--num-samples", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--iwae-k", type=click.IntRange(1), default=100, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None)
def evaluate(**kwargs) -> None:
    """Evaluate a trained model against held-out data."""
    not_implemented("gvae eval")


@click.command("leaderboard")
@click.argument("suite", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None)
def leaderboard(**kwargs) -> None:
    """Evaluate the runs of a suite and write LEADERBOARD.md."""
    not_implemented("gvae leaderboard")


COMMANDS = [evaluate, leaderboard]
