"""``gvae eval`` (evaluate a model, or train the domain feature network) and ``gvae leaderboard``."""

from __future__ import annotations

import click

METRIC_NAMES = "mmd, msssim, recon, elbo, iwae, denoise, memorization, fid, kid, isc, prc"


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
    """


@eval_group.command("run")
@click.argument("source", metavar="RUN_OR_CHECKPOINT")
@click.option("--data", "data", required=True,
              help="Held-out images: a packed dataset directory (its val split) or a shard pattern.")
@click.option("--metrics", default="all", show_default=True, help=f"Comma-separated list of: {METRIC_NAMES}.")
@click.option("--num-samples", type=click.IntRange(1), default=1000, show_default=True,
              help="Images drawn from the model for the sample metrics.")
@click.option("--iwae-k", type=click.IntRange(1), default=100, show_default=True,
              help="Importance samples per held-out image for the IWAE bound.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
@click.option("--feature-weights", type=click.Path(dir_okay=False), default=None,
              help="Feature network for fid/kid/isc/prc: a .safetensors file from `gvae eval train-features`, "
                   "or torch-fidelity's Inception-v3 .pth file. Without it (and with --metrics all) those are skipped.")
@click.option("--train-data", default=None,
              help="Training images for memorization [default: the train split of a packed --data directory, "
                   "else the run's data.train].")
@click.option("--num-real", type=click.IntRange(1), default=10000, show_default=True,
              help="Held-out images read, at most.")
@click.option("--num-train", type=click.IntRange(1), default=20000, show_default=True,
              help="Training images read for memorization, at most.")
@click.option("--batch-size", type=click.IntRange(1), default=256, show_default=True,
              help="Images (or image x importance-sample pairs) per forward pass.")
@click.option("--msssim-pairs", type=click.IntRange(1), default=1000, show_default=True,
              help="Random sample pairs averaged for msssim.")
@click.option("--out", type=click.Path(dir_okay=False), default="results.json", show_default=True,
              help="Where results.json goes.")
def run(source: str, data: str, metrics: str, num_samples: int, iwae_k: int, seed: int, feature_weights: str | None,
        train_data: str | None, num_real: int, num_train: int, batch_size: int, msssim_pairs: int, out: str) -> None:
    """Evaluate RUN_OR_CHECKPOINT (its EMA weights) and write results.json; print a table.

    RUN_OR_CHECKPOINT is a run directory, a checkpoint or exported folder, or hf://OWNER/NAME[@REVISION].

    \b
    Metrics (results.json names in brackets):
      mmd            unbiased pixel-space MMD^2 of samples vs held-out images [mmd2]
      msssim         MS-SSIM between random sample pairs, lower = more diverse [msssim_diversity]
      recon          reconstruction of held-out images [recon_mse, recon_psnr, recon_ssim]
      elbo, iwae     held-out log-likelihood bounds in nats and bits/dim, and the ELBO's KL term
                     [elbo, elbo_bpd, kl, iwae, iwae_bpd]
      denoise        reconstruction of noisy held-out images, sigma 0.2 and 0.5 [denoise_psnr_0.2, ...]
      memorization   fraction of samples unusually close to a training image [memorization]
      fid, kid, isc, prc  torch-fidelity with local feature weights [fid, kid, isc, precision, recall]

    \b
    Distributed (each process a share of the work, identical results):
      accelerate launch --multi_gpu --num_processes 2 -m gvae eval runs/x --data data/x
    """
    import torch
    from accelerate import PartialState

    from gvae.evaluate import Protocol, format_table, parse_metrics, run_evaluation, write_results
    from gvae.fileio import check_writable_target

    parse_metrics(metrics)  # fail on a misspelt name before loading anything
    check_writable_target(out)  # and on an --out that cannot take results.json
    state = PartialState(cpu=not torch.cuda.is_available())
    protocol = Protocol(data=data, metrics=metrics, num_samples=num_samples, iwae_k=iwae_k, seed=seed,
                        feature_weights=feature_weights, train_data=train_data, num_real=num_real,
                        num_train=num_train, batch_size=batch_size, msssim_pairs=msssim_pairs)
    results = run_evaluation(source, protocol, device=state.device)
    if state.is_main_process:
        write_results(results, out)
        click.echo(format_table(results))
        click.echo(f"wrote {out}")


@eval_group.command("train-features")
@click.option("--data", "data", required=True,
              help="Labelled images: a packed dataset directory (train split for training, val for accuracy) "
                   "or a shard pattern.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="The .safetensors file to write.")
@click.option("--epochs", type=click.IntRange(1), default=3, show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="Training images read, at most [default: all].")
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True)
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
    from gvae.leaderboard import build_leaderboard, load_suite

    written = build_leaderboard(load_suite(suite), out, progress=click.echo)
    click.echo(f"wrote {written}")


COMMANDS = [eval_group, leaderboard]
