"""``gvae eval``: evaluate a model, train the domain feature network, measure a generated set's utility.

The metrics, their help and the names ``--metrics`` accepts come from :mod:`gvae.evaluation.registry`.
"""

from __future__ import annotations

import math
import textwrap

import click

from gvae import defaults
from gvae.cli.types import FiniteFloatRange, TemperatureOrChosen
from gvae.evaluation.registry import METRICS

METRIC_NAMES = ", ".join(METRICS)
_NOT_IN_ALL = ", ".join(m.name for m in METRICS.values() if not m.in_all)


def _ks(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    """``10,100`` -> [10, 100]: real images per class."""
    try:
        ks = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None
    if not ks or min(ks) < 1:
        raise click.BadParameter(f"{value!r}: give one or more positive integers, e.g. 10,100")
    return ks


def utility_options(prefix: str):
    """The utility protocol's options, shared by `gvae eval run` (``--utility-k``, ...) and `gvae eval utility`
    (``--k``, ...)."""
    options = (
        click.option(f"--{prefix}k", "utility_k", default=",".join(map(str, defaults.UTILITY_KS)), show_default=True,
                     callback=_ks,
                     help="Utility: real training images per class, comma-separated; one set of variants each."),
        click.option(f"--{prefix}seeds", "utility_seeds", type=click.IntRange(1), default=defaults.UTILITY_SEEDS,
                     show_default=True,
                     help="Utility: classifier seeds; each draws its own K real images per class."),
        click.option(f"--{prefix}mix-ratio", "utility_mix_ratio", type=click.FloatRange(0, min_open=True),
                     default=defaults.UTILITY_MIX_RATIO, show_default=True,
                     help="Utility: synthetic images per real image in a batch."),
        click.option(f"--{prefix}steps", "utility_steps", type=click.IntRange(1), default=defaults.UTILITY_STEPS,
                     show_default=True,
                     help=f"Utility: optimizer steps per classifier (batches of {defaults.UTILITY_BATCH_SIZE})."),
    )

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


class _DefaultsToRun(click.Group):
    """A group whose first argument, when it is not a subcommand, belongs to the ``run`` subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("eval", cls=_DefaultsToRun)
def eval_group() -> None:
    """Evaluate a trained model against held-out data (`gvae eval RUN ...` is `gvae eval run RUN ...`).

    \b
    Examples:
      gvae eval runs/phantom --data data/phantom --out results.json
      gvae eval train-features --data data/fmnist --out features/fmnist.safetensors
      gvae eval runs/fmnist-32-gvae-s0 --data data/fmnist --feature-weights features/fmnist.safetensors
      gvae eval utility --synthetic aug/fmnist-x4 --data data/fmnist     # does a generated set help?
    """


def _metrics_help() -> str:
    """One entry per registered metric: its name, what it measures and its results.json names, wrapped by hand
    (click keeps a ``\\b`` paragraph's lines as they are)."""
    lines = []
    for m in METRICS.values():
        about = m.about if m.in_all else f"(not in all) {m.about}"
        lines += textwrap.wrap(f"{about} [{m.results}]", width=90, initial_indent=f"  {m.name:<14} ",
                               subsequent_indent=" " * 17)
    return "\n".join(lines)


_RUN_HELP = f"""Evaluate RUN_OR_CHECKPOINT (its EMA weights) and write results.json; print a table.

RUN_OR_CHECKPOINT is a run directory, a checkpoint or exported folder, or hf://OWNER/NAME[@REVISION].

\b
Metrics (results.json names in brackets; see `gvae eval utility --help` for utility):
{_metrics_help()}

A class-conditional model encodes and decodes the held-out images with their labels, and draws its prior
samples' classes from the held-out labels.

\b
Distributed (each process a share of the work, identical results; utility runs on the first process):
  accelerate launch --multi_gpu --num_processes 2 -m gvae eval runs/x --data data/x
"""


@eval_group.command("run", help=_RUN_HELP)
@click.argument("source", metavar="RUN_OR_CHECKPOINT")
@click.option("--data", "data", required=True,
              help="Held-out images: a packed dataset directory (its val split) or a shard pattern.")
@click.option("--metrics", default="all", show_default=True,
              help=f"Comma-separated list of: {METRIC_NAMES}; all = every one but {_NOT_IN_ALL}.")
@click.option("--num-samples", type=click.IntRange(1), default=defaults.EVAL_NUM_SAMPLES, show_default=True,
              help="Images drawn from the model for the sample metrics.")
@click.option("--iwae-k", type=click.IntRange(1), default=defaults.EVAL_IWAE_K, show_default=True,
              help="Importance samples per held-out image for the IWAE bound.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
@click.option("--temperature", type=TemperatureOrChosen(), default=1.0, show_default=True,
              help="Prior samples are z ~ N(0, T^2 I); 'chosen': the T that gvae eval temperature chose for the "
                   "run's weights (an error if there is none), recorded in results.json as temperature_used.")
@click.option("--feature-weights", type=click.Path(dir_okay=False), default=None,
              help="Feature network for fid/kid/isc/prc: a .safetensors file from `gvae eval train-features`, "
                   "or torch-fidelity's Inception-v3 .pth file. Without it (and with --metrics all) those are skipped.")
@click.option("--train-data", default=None,
              help="Training images for memorization and utility [default: the train split of a packed --data "
                   "directory, else the run's data.train].")
@click.option("--num-real", type=click.IntRange(1), default=defaults.EVAL_NUM_REAL, show_default=True,
              help="Held-out images read, at most.")
@click.option("--num-train", type=click.IntRange(1), default=defaults.EVAL_NUM_TRAIN, show_default=True,
              help="Training images read for memorization and utility, at most.")
@click.option("--batch-size", type=click.IntRange(1), default=defaults.EVAL_BATCH_SIZE, show_default=True,
              help="Images (or image x importance-sample pairs) per forward pass.")
@click.option("--msssim-pairs", type=click.IntRange(1), default=defaults.MSSSIM_PAIRS, show_default=True,
              help="Random sample pairs averaged for msssim.")
@utility_options("utility-")
@click.option("--max-memory", type=FiniteFloatRange(0, min_open=True), default=32.0, show_default=True,
              metavar="GIB", help="Refuse an evaluation whose images (held-out images, and the samples and training "
                                  "images where the metrics read them; float32, held at once by the first "
                                  "process) would need more GiB than this.")
@click.option("--out", type=click.Path(dir_okay=False), default="results.json", show_default=True,
              help="Where results.json goes.")
def run(source: str, data: str, metrics: str, num_samples: int, iwae_k: int, seed: int, temperature: float | str,
        feature_weights: str | None, train_data: str | None, num_real: int, num_train: int, batch_size: int, msssim_pairs: int,
        utility_k: list[int], utility_seeds: int, utility_mix_ratio: float, utility_steps: int, max_memory: float,
        out: str) -> None:
    import torch
    from accelerate import PartialState

    from gvae.evaluation.protocol import Protocol
    from gvae.evaluation.registry import parse_metrics
    from gvae.evaluation.results import format_table, write_results
    from gvae.evaluation.runner import run_evaluation
    from gvae.fileio import check_writable_target

    parse_metrics(metrics)  # fail on a misspelt name before loading anything
    check_writable_target(out)  # and on an --out that cannot take results.json
    state = PartialState(cpu=not torch.cuda.is_available())
    protocol = Protocol(data=data, metrics=metrics, num_samples=num_samples, iwae_k=iwae_k, seed=seed,
                        temperature=temperature, feature_weights=feature_weights, train_data=train_data,
                        num_real=num_real,
                        num_train=num_train, batch_size=batch_size, msssim_pairs=msssim_pairs, utility_k=utility_k,
                        utility_seeds=utility_seeds, utility_mix_ratio=utility_mix_ratio, utility_steps=utility_steps)
    results = run_evaluation(source, protocol, device=state.device, max_memory_gib=max_memory)
    if state.is_main_process:
        write_results(results, out)
        click.echo(format_table(results))
        click.echo(f"wrote {out}")


def _temperatures(ctx: click.Context, param: click.Parameter, value: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give comma-separated numbers, e.g. 0.9,1.0,1.1") from None
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise click.BadParameter(f"{value!r}: every temperature must be a finite number >= 0")
    return values


@eval_group.command("temperature")
@click.argument("source", metavar="RUN_OR_CHECKPOINT")
@click.option("--data", "data", required=True,
              help="Images to match: a packed dataset directory (its --split) or a shard pattern.")
@click.option("--split", type=click.Choice(["train", "val"]), default="train", show_default=True,
              help="Split of a packed --data directory; train leaves the held-out images to the evaluation.")
@click.option("--temperatures", default=",".join(map(str, defaults.TEMPERATURE_GRID)), show_default=True,
              callback=_temperatures, help="Comma-separated temperatures to try.")
@click.option("--num-samples", type=click.IntRange(2), default=500, show_default=True,
              help="Prior samples per temperature (the same draws scaled).")
@click.option("--num-images", type=click.IntRange(2), default=1000, show_default=True, help="Images read, at most.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-ema", is_flag=True, help="Use the live weights instead of their moving average.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the scan as JSON here. [default: temperature.json where gvae generate finds it: in the "
                   "run directory, or in an exported model's folder; nowhere for a model on the Hub]")
def temperature(source: str, data: str, split: str, temperatures: tuple[float, ...], num_samples: int,
                num_images: int, seed: int, no_ema: bool, out: str | None) -> None:
    """The sampling temperature whose prior samples, encoded again, are closest to real images' codes, to pass
    to gvae generate --temperature and gvae eval run --temperature.

    \b
    Prior samples are z ~ N(0, T^2 I) decoded; the same draws are scaled to every T, encoded again, and the
    MMD^2 between their posterior means and the images' is measured with one kernel. T = 1 is the prior the
    model was trained with; a smaller T gives more typical samples, a larger one more varied ones. Measure
    against training images (the default) so that the held-out ones stay untouched for the evaluation.

    \b
    The choice is kept with the weights it was made on: gvae generate, given no --temperature, samples the
    prior at it while the run's newest checkpoint (and --no-ema) is the one scanned.

    \b
    Example:
      gvae eval temperature gvae-demo/run --data gvae-demo/data
      gvae generate gvae-demo/run --num 10000 --out aug/phantom      # at the chosen temperature
    """
    from gvae import temperature_choice
    from gvae.evaluation.temperature import scan_data
    from gvae.fileio import check_writable_target
    from gvae.loading import in_inference_form, load_trained

    loaded = load_trained(source, ema=not no_ema)
    folder = temperature_choice.home(source, loaded)
    out = out or (str(folder / temperature_choice.FILE) if folder else None)
    if out:
        check_writable_target(out)
    scan = scan_data(in_inference_form(loaded.model), data, split, num_images, temperatures, num_samples, seed)
    click.echo(f"{'temperature':>11}  {'mmd2':>10}")
    for t, value in zip(scan.temperatures, scan.mmd2, strict=True):
        click.echo(f"{t:11g}  {value:10.5f}{'  <- best' if t == scan.best else ''}")
    if scan.at_edge:
        click.echo(f"the best temperature, {scan.best:g}, is at the edge of the grid: the MMD^2 may fall further "
                   "beyond it; try --temperatures past it", err=True)
    if out:
        temperature_choice.record(out, loaded, scan.as_dict(), source=source, data=data, split=split)
        click.echo(f"wrote {out}")


@eval_group.command("train-features")
@click.option("--data", "data", required=True,
              help="Labelled images: a packed dataset directory (train split for training, val for accuracy) "
                   "or a shard pattern.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="The .safetensors file to write.")
@click.option("--epochs", type=click.IntRange(1), default=defaults.FEATURES_EPOCHS, show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="Training images read, at most [default: all].")
@click.option("--batch-size", type=click.IntRange(1), default=defaults.FEATURES_BATCH_SIZE, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def train_features(data: str, out: str, epochs: int, limit: int | None, batch_size: int, seed: int) -> None:
    """Train the domain feature network (a small CNN classifier) for fid/kid/isc/prc.

    Inception features describe ImageNet photographs; a classifier trained on the domain's own labels is a
    better yardstick for CT slices or clothing, and needs no download. Results are comparable only between
    evaluations that used the same weights file.

    \b
    Example:
      gvae eval train-features --data data/fmnist --out features/fmnist.safetensors
    """
    from gvae.data import load_images
    from gvae.errors import GvaeError
    from gvae.metrics.features import accuracy, save_classifier, train_classifier

    if not out.endswith(".safetensors"):
        raise click.BadParameter("must end in .safetensors", param_hint="--out")
    images, labels = load_images(data, split="train", limit=limit)
    net = train_classifier(images, labels, epochs=epochs, batch_size=batch_size, seed=seed, progress=True)
    info = {"data": data, "train_images": len(images), "epochs": epochs, "seed": seed,
            "train_accuracy": accuracy(net, images, labels)}
    try:
        val_images, val_labels = load_images(data, split="val")
        info["val_accuracy"] = accuracy(net, val_images, val_labels)
    except GvaeError as err:
        info["val_accuracy"] = None
        click.echo(f"no held-out accuracy: {err}")
    save_classifier(net, out, extra=info)
    shown = {k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in info.items()}
    click.echo(" ".join(f"{k}={v}" for k, v in shown.items()))
    click.echo(f"wrote {out}")


@eval_group.command("utility")
@click.option("--data", "data", required=True,
              help="Labelled real images: a packed dataset directory (train split: the K per class; val split: "
                   "held-out, only ever predicted), or the held-out shards with --train-data.")
@click.option("--synthetic", default=None,
              help="A labelled generated set: `gvae generate` shards or its --format png / imagefolder directory. "
                   "Without it, only the real and classic-augmentation variants run.")
@click.option("--train-data", default=None, help="Training images, when --data names only held-out shards.")
@utility_options("")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Base seed of every random draw.")
@click.option("--hflip", is_flag=True, help="Classic augmentation also mirrors images (only for mirror-safe classes).")
@click.option("--num-real", type=click.IntRange(1), default=None, help="Held-out images read, at most [default: all].")
@click.option("--num-train", type=click.IntRange(1), default=defaults.EVAL_NUM_TRAIN, show_default=True,
              help="Training images read (the K per class are drawn from these), at most.")
@click.option("--out", type=click.Path(dir_okay=False), default="results.json", show_default=True,
              help="Where results.json goes.")
def utility(data: str, synthetic: str | None, train_data: str | None, utility_k: list[int], utility_seeds: int,
            utility_mix_ratio: float, utility_steps: int, seed: int, hflip: bool, num_real: int | None,
            num_train: int, out: str) -> None:
    """Does a synthetic set help train a classifier? (Classification Accuracy Score, Ravuri & Vinyals 2019)

    A fixed small CNN is trained for --steps on each training set below and tested on the held-out images;
    every number is its accuracy there (mean and std over --seeds; each seed draws its own K real images
    per class, shared by the variants, so gains are paired and carry their standard error).

    \b
      utility_cas                synthetic images only
      utility_real_k{K}          (a) K real images per class
      utility_classic_k{K}       (b) the same, with random shifts of up to 2 px (and flips with --hflip)
      utility_synthetic_k{K}     (c) the same K real images, synthetic ones mixed in at --mix-ratio
      utility_gain_k{K}          (c) - (a)
      utility_gain_vs_classic_k{K}  (c) - (b)
    Each entry of results.json also holds the accuracy of every class (per_class) and of every seed.

    \b
    Examples:
      gvae eval utility --data data/fmnist                           # real vs classic augmentation only
      gvae eval utility --synthetic aug/fmnist-x4 --data data/fmnist --k 10,100 --seeds 3 --out utility.json
      gvae eval runs/fmnist-cond --data data/fmnist --metrics utility  # the model's own images
    """
    import torch

    from gvae.evaluation.results import format_table, write_results
    from gvae.evaluation.utility import run_utility
    from gvae.metrics.utility import UtilitySettings

    settings = UtilitySettings(ks=tuple(utility_k), seeds=utility_seeds, seed=seed, mix_ratio=utility_mix_ratio,
                               steps=utility_steps, hflip=hflip)
    results = run_utility(data, settings, synthetic=synthetic, train_data=train_data, num_real=num_real,
                          num_train=num_train, device="cuda" if torch.cuda.is_available() else "cpu", progress=True)
    write_results(results, out)
    click.echo(format_table(results))
    click.echo(f"wrote {out}")


COMMANDS = [eval_group]
