"""``gvae generate``: parse and validate, then :func:`gvae.generation.generate` does the work."""

import click

from gvae import defaults
from gvae.cli.types import FiniteFloatRange


@click.command("generate")
@click.argument("source", metavar="RUN_OR_CHECKPOINT")
@click.option("--num", type=click.IntRange(1), default=None,
              help="Images to generate. Required, except with --from-data [default there: every variation].")
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Output directory: new, empty, or holding an earlier (partial) run of the same set.")
@click.option("--format", "fmt", type=click.Choice(defaults.GENERATE_FORMATS), default="wds", show_default=True,
              help="wds: WebDataset shards + dataset.json (trainable with data.train=OUT); png: folders of PNGs; "
                   "imagefolder: OUT/<class name>/<index>.png (torchvision ImageFolder; 'unlabelled' without "
                   "classes).")
@click.option("--shard-size", type=click.IntRange(1), default=defaults.GENERATE_SHARD_SIZE, show_default=True,
              help="Images per shard (per folder for --format png).")
@click.option("--batch-size", type=click.IntRange(1), default=defaults.GENERATE_BATCH_SIZE, show_default=True,
              help="Images decoded per step while the previous step is PNG-encoded. Changes speed and memory, "
                   f"never a byte: the model always runs on fixed blocks of {defaults.GENERATE_BLOCK} sample "
                   "indices.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--temperature", type=FiniteFloatRange(0), default=None,
              help="Scale of the latent noise: z ~ N(0, T^2 I), or with --from-data mu + T * sigma * eps. "
                   "[default: for prior samples, the temperature gvae eval temperature chose for these weights "
                   "(RUN/temperature.json), else 1; with --from-data, 1]")
@click.option("--from-data", default=None, metavar="PATTERN",
              help="Label-preserving variations of real images: a packed directory (its train split) or "
                   "shards; every image gives --variations samples with its label.")
@click.option("--variations", type=click.IntRange(1), default=1, show_default=True,
              help="Samples per real image with --from-data.")
@click.option("--min-realism", type=FiniteFloatRange(0, 1, max_open=True), default=None, metavar="Q",
              help="Drop about the fraction Q of least realistic candidates: the discriminator's logit must reach "
                   f"its Q-quantile on {defaults.REALISM_CALIBRATION} calibration candidates; a dropped sample is "
                   "redrawn.")
@click.option("--max-memorization", type=FiniteFloatRange(0, min_open=True), default=None, metavar="D",
              help="Redraw samples whose RMS pixel distance (values in [0, 1]) to the nearest --train-data "
                   "image is below D.")
@click.option("--train-data", default=None, metavar="PATTERN",
              help="The training images for --max-memorization (a packed directory: its train split).")
@click.option("--label-classifier", default=None, metavar="WEIGHTS",
              help="Conditional models: redraw samples that this classifier of the data's classes (gvae eval "
                   "train-features) does not assign to their own label, so that the set's labels agree with it. "
                   "It keeps the samples it finds easy: judge the set with another classifier.")
@click.option("--class", "classes", multiple=True, metavar="NAME_OR_INDEX",
              help="Conditional models: generate only this class (a name or an index; repeat for several).")
@click.option("--class-balance", type=click.Choice(defaults.CLASS_BALANCES), default=None,
              help="Conditional models: draw classes with the training set's frequencies (data) or equally "
                   "often (uniform). [default: data]")
@click.option("--writer-threads", type=click.IntRange(1), default=None,
              help="PNG-encoding threads per process. [default: 2 on a CPU; on a GPU the process's share of the "
                   "node's cores less one]")
@click.option("--precision", type=click.Choice(defaults.GENERATE_PRECISIONS), default="fp32", show_default=True,
              help="bf16: the decoder (and, with --min-realism, the discriminator) run under bfloat16 autocast, "
                   "faster on GPUs and CPUs with bf16 instructions (AVX-512 BF16, AMX), maybe slower elsewhere. A "
                   "pixel can differ from fp32's by a few grey levels; the set is as deterministic as in fp32, and "
                   "its precision is part of its identity (a rerun must use the same).")
@click.option("--no-ema", is_flag=True, help="Use the live weights instead of their moving average.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def generate(source: str, num: int | None, out: str, fmt: str, shard_size: int, batch_size: int, seed: int,
             temperature: float | None, from_data: str | None, variations: int, min_realism: float | None,
             max_memorization: float | None, train_data: str | None, label_classifier: str | None,
             classes: tuple[str, ...],
             class_balance: str | None, writer_threads: int | None, precision: str, no_ema: bool,
             no_progress: bool) -> None:
    """Mass-generate an augmentation set from a trained model (EMA weights by default).

    Sample i is a pure function of (checkpoint, seed, i): the same bytes for any --batch-size and any number
    of processes. Shards appear complete or not at all; rerunning an interrupted command keeps the finished
    shards and completes the set, and a larger --num later extends it. manifest.json, written last, records
    the checkpoint and its sha256, the recipe, the settings, the filters' rejection counts and a sha256 per
    shard. An --out holding another set (other checkpoint, seed, temperature, mode or filters) is refused.
    RUN_OR_CHECKPOINT is a run directory, a checkpoint or exported folder, or a model on the Hugging Face
    Hub as hf://OWNER/NAME[@REVISION] (see gvae push).

    A class-conditional model (model.conditional) labels every sample: its class is drawn from (seed, i) alone,
    goes in `cls` and, by name, in the sample's json; manifest.json counts the samples per class.

    \b
    Examples:
      gvae generate runs/phantom --num 10000 --out aug/phantom
      gvae generate runs/phantom --num 500 --format png --out aug/phantom-png
      gvae generate hf://alice/phantom-gvae --num 1000 --out aug/phantom-hub
      gvae generate runs/fmnist --from-data data/fmnist --variations 4 --out aug/fmnist-x4
      gvae generate runs/fmnist-cond --num 1000 --class Sneaker --class 9 --class-balance uniform \\
          --format imagefolder --out aug/shoes
      gvae generate runs/phantom-cond --num 1000 --label-classifier features/phantom.safetensors \\
          --out aug/phantom-checked
      gvae generate runs/fmnist --num 50000 --min-realism 0.2 \\
          --max-memorization 0.05 --train-data data/fmnist --out aug/fmnist-filtered
      accelerate launch --config_file launch/ddp.yaml -m gvae generate runs/celebahq --num 1000000 --out aug/c
    """
    from gvae.fileio import lock_for_main_process
    from gvae.generation import GenerateConfig
    from gvae.generation import generate as run_generation

    with lock_for_main_process(out, "gvae generate"):  # against a second generation into the same --out
        manifest = run_generation(GenerateConfig(
            source=source, out=out, num=num, fmt=fmt, shard_size=shard_size, batch_size=batch_size, seed=seed,
            temperature=temperature, from_data=from_data, variations=variations, min_realism=min_realism,
            max_memorization=max_memorization, train_data=train_data, label_classifier=label_classifier,
            ema=not no_ema, progress=not no_progress, classes=classes, class_balance=class_balance,
            writer_threads=writer_threads, precision=precision))
    from accelerate import PartialState

    if PartialState().is_main_process:
        rejected = manifest["filters"]["rejected"]
        extra = f"; rejected {rejected['realism']} unrealistic, {rejected['label']} off their label, " \
                f"{rejected['memorization']} too close to training images" if any(rejected.values()) else ""
        chosen = f", chosen in {manifest['temperature_chosen_in']}" if manifest.get("temperature_chosen_in") else ""
        click.echo(f"{out}: {manifest['count']} images in {len(manifest['shards'])} shards at temperature "
                   f"{manifest['temperature']:g}{chosen}{extra}", err=True)


COMMANDS = [generate]
