"""``gvae demo``: the whole pipeline on built-in phantoms."""

from __future__ import annotations

import time

import click

STAGES = ("pack", "train", "generate", "eval", "report")


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False), default="gvae-demo", show_default=True,
              help="Directory for the data, the run, the generated set and report.html.")
@click.option("--quick", is_flag=True, help="A tiny model, 20 steps and a few images: a one-minute smoke test.")
@click.option("--steps", type=click.IntRange(1), default=None,
              help="Training steps [default: 5600, or 20 with --quick]. Rerunning with more steps continues the run, "
                   "stretching its schedules from there (a warning names them); a fresh --out follows them whole.")
@click.option("--no-progress", is_flag=True, help="No progress bars (stage lines are still printed).")
def demo(out: str, quick: bool, steps: int | None, no_progress: bool) -> None:
    """The whole pipeline on built-in CT-like phantoms, in minutes on a laptop CPU (a GPU is used if present).

    \b
    Packs 2000 phantoms at 64 px, trains a small GVAE for 5600 steps (~8 minutes on 2 CPU cores), chooses
    its sampling temperature on the training phantoms (run/temperature.json, see gvae eval temperature),
    generates an augmentation set of 1000 images at it, evaluates the model against held-out phantoms and writes
    OUT/report.html: recipe, training curves, samples, reconstructions, a latent interpolation and the
    latent space, the evaluation and the generated set. Rerunning resumes the pack and the training.
    gvae generate OUT/run, given no --temperature, samples at the temperature chosen here.

    \b
    Examples:
      gvae demo                          # -> gvae-demo/report.html
      gvae demo --quick --out /tmp/demo  # one minute, tiny model: checks that everything runs
      gvae demo --steps 7000 --out d7k   # train longer from scratch: about 10 minutes
    """
    from gvae.demo import run_demo

    start = time.perf_counter()

    def announce(stage: str, what: str) -> None:
        click.echo(f"[{STAGES.index(stage) + 1}/{len(STAGES)}] {stage}: {what}", err=True)

    result = run_demo(out, quick=quick, steps=steps, on_stage=announce, progress=not no_progress)
    took = " ".join(f"{stage} {seconds:.0f}s" for stage, seconds in result.seconds.items())
    click.echo(f"\ndone in {time.perf_counter() - start:.0f}s ({took})", err=True)
    rows = [("data", result.data), ("run", result.run), ("temperature", result.run / "temperature.json"),
            ("generated set", result.generated),
            ("eval results", result.results), ("report", result.report)]
    for name, path in rows:
        click.echo(f"  {name:<14} {path}{'' if path.exists() else '  (missing)'}")
    for stage, error in result.failed.items():
        click.echo(f"  {stage} failed: {error}", err=True)
    if result.report.is_file():
        click.echo(f"\nopen {result.report.resolve().as_uri()}")
    if result.failed:
        raise click.ClickException(f"{', '.join(result.failed)} failed; see above")


COMMANDS = [demo]
