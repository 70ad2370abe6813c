"""``gvae colorize``: parse, then hand over to :mod:`gvae.colorize`."""

from __future__ import annotations

import click


@click.command("colorize")
@click.argument("run", metavar="RUN_OR_CHECKPOINT")
@click.argument("images", metavar="IMAGES")
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Directory of the colour images.")
@click.option("--split", type=click.Choice(["train", "val"]), default="val", show_default=True,
              help="Which split of a packed IMAGES directory.")
@click.option("--limit", type=click.IntRange(1), default=None, help="Colorize at most this many images.")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
def colorize(run: str, images: str, out: str, split: str, limit: int | None, batch_size: int) -> None:
    """Colour versions of grey images with a grey-to-colour model (a run of model.kind colorize).

    The model predicts the chrominance I and Q of YIQ from the luminance Y; the RGB image is rebuilt from Y
    and them. IMAGES is a packed dataset (its --split) or a shard pattern, at the model's resolution: grey
    images are colorized as they are (an augmentation: colour variants of grey data), colour images are first
    made grey, and then the result is also scored against the original, beside the trivial baseline I = Q = 0
    (the grey image itself): PSNR and SSIM, printed and written to OUT/colorize.json. OUT also gets one PNG
    per image (00000000.png, ...) and comparison.png (rows: grey input, prediction, original).

    \b
    Examples:
      gvae data pack - --kind colour-phantom --num 2000 --val-fraction 0.1 --resolution 32 --out data/colour-phantom
      gvae train recipes/colorize/colour-phantom-32.yaml --out runs/colorize
      gvae colorize runs/colorize data/colour-phantom --out colorized/val
      gvae colorize runs/colorize data/phantom-32 --split train --out colorized/phantom   # grey phantoms
    """
    from gvae.colorize.apply import colorize_to_directory

    record = colorize_to_directory(run, images, out, split=split, limit=limit, batch_size=batch_size)
    click.echo(f"{out}: {record['count']} colour image(s)")
    for name, entry in (record["scores"] or {}).items():
        click.echo(f"{name:15s} {entry['value']:.4f} +- {entry['std']:.4f}  (n={entry['n']})")


COMMANDS = [colorize]
