"""The ``gvae`` command: a click group whose subcommands parse, validate and call the library.

A :class:`gvae.errors.GvaeError` raised anywhere below becomes a one-line ``Error: ...`` with exit code 1;
``gvae --debug ...`` shows the traceback instead.
"""

from __future__ import annotations

import click

from gvae import __version__
from gvae.errors import GvaeError
from gvae.logs import configure_logging
from gvae.process_group import end_launched_process, leave_process_group


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            result = super().invoke(ctx)
        except GvaeError as err:
            if ctx.meta.get("gvae.debug"):
                raise
            raise click.ClickException(str(err)) from None
        except OSError as err:  # a full disk, a read-only or vanished directory: the system's own words suffice
            if ctx.meta.get("gvae.debug") or err.strerror is None:
                raise
            where = f"{err.filename}: " if err.filename else ""
            raise click.ClickException(f"{where}{err.strerror}") from None
        leave_process_group()  # the command succeeded: every process may close its process group
        return result


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option("-v", "--verbose", count=True,
              help="More log output (-v info, -vv debug); under accelerate launch from the main process only.")
@click.version_option(__version__, prog_name="gvae")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int) -> None:
    """gvae: train a GAN-VAE hybrid and turn it into a factory of synthetic training images.

    \b
    The pipeline, one command per stage:
      gvae data pack - --kind phantom --num 2000 --resolution 64 --out data/phantom
      gvae train recipes/phantom-64-gvae.yaml data.train=data/phantom --out runs/phantom
      gvae generate runs/phantom --num 10000 --out aug/phantom
      gvae eval runs/phantom --data data/phantom --out results.json
      gvae push runs/phantom alice/phantom-gvae      (then hf://alice/phantom-gvae works wherever a run does)
    Or see it all at once, on built-in phantoms: gvae demo
    """
    ctx.meta["gvae.debug"] = debug
    configure_logging(verbose)


def _register() -> None:
    from gvae.cli import (
        colorize,
        data,
        demo,
        evaluate,
        generate,
        hub,
        leaderboard,
        recipe,
        report,
        sweep,
        train,
    )

    for module in (data, recipe, train, generate, evaluate, leaderboard, hub, sweep, colorize, demo, report):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """The ``gvae`` console script and ``python -m gvae``: a launched process that finished its command ends
    without the interpreter's teardown (:func:`gvae.process_group.end_launched_process`)."""
    try:
        cli(prog_name="gvae")
    except SystemExit as done:
        if done.code in (0, None):
            end_launched_process(0)
        raise
