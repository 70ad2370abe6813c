"""``gvae report``: a training run as one self-contained HTML page."""

from __future__ import annotations

import click


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


COMMANDS = [report]
