"""``gvae demo`` (the whole pipeline on built-in phantoms) and ``gvae report`` (a run as one HTML page)."""

from __future__ import annotations

import time

import click

STAGES = ("pack", "train", "generate", "eval", "report")


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False), default="gvae-demo", show_default=True,
              help="Directory for the data, the run, the generated set and report.html.")
@click.option("--quick", is_flag=True, help="A tiny model, 20 steps and a few images: a one-minute smoke test.")
@click.option("--steps", type=click.IntRange(1), default=None,
              help="Training steps [default: 1000, or 20 with --quick]. Rerunning with more steps continues the run.")
@click.option("--no-progress", is_flag=True, help="No progress bars (stage lines are still printed).")
def demo(out: str, quick: bool, steps: int | None, no_progress: bool) -> None:
    """The whole pipeline on built-in CT-like phantoms, in minutes on a laptop CPU (a GPU is used if present).

    \b
    Packs 2000 phantoms at 64 px, trains a small GVAE for 1000 steps (~6 minutes on 2 CPU cores), generates
    an augmentation set of 1000 images, evaluates the model against held-out phantoms and writes
    OUT/report.html: recipe, training curves, samples, reconstructions, a latent interpolation and the
    latent space, the evaluation and the generated set. Rerunning resumes the pack and the training.

    \b
    Examples:
      gvae demo                          # -> gvae-demo/report.html
      gvae demo --quick --out /tmp/demo  # one minute, tiny model: checks that everything runs
      gvae demo --steps 3000             # train longer (continues an earlier demo in the same --out)
    """
    from gvae.demo import run_demo

    start = time.perf_counter()

    def announce(stage: str, what: str) -> None:
        click.echo(f"[{STAGES.index(stage) + 1}/{len(STAGES)}] {stage}: {what}", err=True)

    result = run_demo(out, quick=quick, steps=steps, on_stage=announce, progress=not no_progress)
    took = " ".join(f"{stage} {seconds:.0f}s" for stage, seconds in result.seconds.items())
    click.echo(f"\ndone in {time.perf_counter() - start:.0f}s ({took})", err=True)
    rows = [("data", result.data), ("run", result.run), ("generated set", result.generated),
            ("eval results", result.results), ("report", result.report)]
    for name, path in rows:
        click.echo(f"  {name:<14} {path}{'' if path.exists() else '  (missing)'}")
    for stage, error in result.failed.items():
        click.echo(f"  {stage} failed: {error}", err=True)
    if result.report.is_file():
        click.echo(f"\nopen {result.report.resolve().as_uri()}")
    if result.failed:
        raise click.ClickException(f"{', '.join(result.failed)} failed; see above")


@click.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="The HTML file to write [default: RUN_DIR/report.html].")
@click.option("--results", type=click.Path(exists=True, dir_okay=False), default=None,
              help="An eval results.json [default: RUN_DIR/results.json, if there].")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The manifest.json of a generated set [default: one in RUN_DIR or a folder of it].")
@click.option("--num-images", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Held-out images shown with their reconstructions.")
def report(run_dir: str, out: str | None, results: str | None, manifest: str | None, num_images: int) -> None:
    """Write a self-contained HTML report of a training run (every image embedded; mail it, archive it).

    \b
    It shows the resolved recipe, loss and metric curves and training diagnostics from metrics.jsonl, the
    latest sample grid, held-out images next to their reconstructions, a latent interpolation between two
    held-out images, the held-out images' latent codes coloured by label (PCA when the latent has more than
    2 dimensions), the eval results and the generated set's manifest with a preview. Parts whose inputs are
    missing say so.

    \b
    Examples:
      gvae report runs/phantom                                  # -> runs/phantom/report.html
      gvae report runs/phantom --results results.json --manifest aug/phantom/manifest.json --out r.html
    """
    from gvae.report import write_report

    path = write_report(run_dir, out, results=results, manifest=manifest, num_images=num_images)
    click.echo(f"wrote {path}")


COMMANDS = [demo, report]
