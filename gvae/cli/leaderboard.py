"""``gvae leaderboard``: evaluate the runs of a suite under one protocol and tabulate them."""

from __future__ import annotations

import click


@click.command("leaderboard")
@click.argument("suite", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Where LEADERBOARD.md, leaderboard.csv, plots/ and the results cache go [default: "
                   "leaderboards/<suite name>].")
def leaderboard(suite: str, out: str | None) -> None:
    """Evaluate the runs of a suite (reusing cached results) and write LEADERBOARD.md, a CSV and bar charts.

    \b
    Example:
      gvae leaderboard eval/suites/fmnist.yaml --out leaderboards/fmnist
    The same code runs as `python eval/leaderboard.py eval/suites/fmnist.yaml`.
    """
    from gvae.evaluation.leaderboard import build_leaderboard, load_suite

    written = build_leaderboard(load_suite(suite), out, progress=click.echo)
    click.echo(f"wrote {written}")


COMMANDS = [leaderboard]
