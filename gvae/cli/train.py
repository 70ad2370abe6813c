"""``gvae train``: parse, validate the recipe and data, then hand over to :mod:`gvae.train.loop`."""

from pathlib import Path

import click

from gvae.config import load_recipe


@click.command("train")
@click.argument("recipe_path", metavar="RECIPE", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory. [default: runs/<recipe name>]")
@click.option("--resume", default="auto", show_default=True, metavar="auto|none|CHECKPOINT_DIR",
              help="auto: continue from the newest complete checkpoint in --out, if any; none: start fresh "
                   "(refuses a run dir that has checkpoints); or a checkpoint directory to start from.")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs still go to metrics.jsonl).")
def train(recipe_path: str, overrides: tuple[str, ...], out: str | None, resume: str, no_progress: bool) -> None:
    """Train the model of RECIPE, with KEY=VALUE overrides, into a run directory.

    The run directory gets config.yaml (the resolved recipe), run.json (world size, distributed type,
    precision, batch sizes, versions), metrics.jsonl, TensorBoard events, samples/step-XXXXXXXX.png and
    checkpoints/step-XXXXXXXX/ (safetensors weights, EMA, optimizer, scaler, RNG and data-loader state).
    Rerunning the same command resumes exactly where it stopped. On SIGTERM or SIGUSR1 (a preempted or
    time-limited SLURM job) the run finishes its step, writes a checkpoint and exits with status 0. With
    model.conditional=true the model is class-conditional on the labels of the training data, whose class
    names (from its dataset.json) are stored in config.yaml. On small data, augment.* keys transform every
    image the discriminator sees (augment.policy=[translation,cutout]; augment.target=0.6 adapts their
    probability, ADA style).

    Besides the loss terms, metrics.jsonl logs diagnostics that show a run going wrong: the discriminator's
    accuracy on reals, reconstructions and prior samples (d_acc_*), the gradient norm of each weighted loss
    term on the generator's and encoder's last layers (gnorm_*, gnorm_enc_*), active latent units and the
    aggregate posterior against N(0, I) (agg_*). log.diagnostics=false turns the costlier ones off.

    \b
    Examples:
      gvae train recipes/phantom-64-gvae.yaml train.max_steps=300 --out runs/phantom
      gvae train recipes/fmnist-32-gvae-cond.yaml --out runs/fmnist-cond
      gvae train recipes/fmnist-32-gvae-diffaug.yaml data.train=data/fmnist/train-000000.tar --out runs/fmnist-1k
      accelerate launch --config_file launch/ddp.yaml -m gvae train recipes/celebahq-256-gvae.yaml
      accelerate launch --config_file launch/zero2.yaml -m gvae train recipes/celebahq-1024-gvae.yaml
    """
    recipe = load_recipe(recipe_path, overrides)
    from gvae.train.loop import train as run_training  # heavy imports only once the recipe is valid

    result = run_training(recipe, Path(out or Path("runs") / recipe.name), resume=resume,
                          progress=not no_progress)
    if not result["main_process"]:
        return
    if result["stopped_by"]:
        click.echo(f"stopped by {result['stopped_by']} at step {result['step']}; checkpoint: {result['checkpoint']}; "
                   "run the same command again to continue", err=True)
    else:
        click.echo(f"trained to step {result['step']}; checkpoint: {result['checkpoint']}", err=True)


COMMANDS = [train]
