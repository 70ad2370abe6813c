"""``gvae sweep``: parse, then hand over to :mod:`gvae.sweep`."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("sweep")
@click.argument("sweep_path", metavar="SWEEP.yaml", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Directory of the runs and the summary. [default: runs/sweeps/<sweep name>]")
@click.option("--only", metavar="RUN", default=None, help="Run only this run (a name from --print-commands).")
@click.option("--print-commands", is_flag=True,
              help="Print one command per unfinished run (and the summary's) instead of running them.")
@click.option("--slurm", "slurm_path", type=click.Path(dir_okay=False), default=None,
              help="Write a SLURM job-array script, one task per run, instead of running them.")
@click.option("--summarize", is_flag=True, help="Only write the summary of the runs that have finished.")
def sweep(sweep_path: str, out: str | None, only: str | None, print_commands: bool, slurm_path: str | None,
          summarize: bool) -> None:
    """Train and evaluate every run of a sweep, then rank them and measure each parameter's importance.

    SWEEP.yaml names a base recipe, a grid of override values (every combination) or a list of override sets,
    seeds, and the metric that ranks the runs: a `gvae eval` result (elbo, recon_psnr, denoise_psnr_0.2, ...;
    its protocol under eval:) or train:KEY, the last value of KEY in metrics.jsonl. Each run trains into
    OUT/<its overrides>_seed=S, e.g. OUT/latent_dim=15_dense_dropout=0.2_seed=0. A run is finished once its
    last checkpoint and sweep-result.json exist: rerun the same command after an interruption (even kill -9)
    and finished runs are skipped, the interrupted one resumes from its newest checkpoint.

    The summary of the finished runs, written at the end (or by --summarize): OUT/SUMMARY.md and OUT/summary.csv (each
    configuration's metrics as mean ± std over seeds, best first), and OUT/importance.png (the mean spread
    of the metric when one parameter varies with the others fixed).

    \b
    Examples:
      gvae sweep sweeps/fmnist-dense-study.yaml --out runs/sweeps/fmnist-dense
      gvae sweep sweeps/fmnist-dense-study.yaml --print-commands     # one line per run, for any scheduler
      gvae sweep sweeps/fmnist-dense-study.yaml --slurm sweep.sbatch && sbatch sweep.sbatch
      gvae sweep sweeps/fmnist-dense-study.yaml --summarize          # after the runs finished elsewhere
    """
    from gvae.fileio import write_text_atomic
    from gvae.sweep import commands, load_sweep, run_sweep, slurm_script, write_summary
    from gvae.sweep.runner import is_finished

    spec = load_sweep(sweep_path)
    out_dir = Path(out or Path("runs") / "sweeps" / spec.name)
    if print_commands:
        click.echo("\n".join(commands(spec, Path(sweep_path), out_dir)))
        return
    if slurm_path:
        write_text_atomic(slurm_path, slurm_script(spec, Path(sweep_path), out_dir))
        click.echo(f"wrote {slurm_path} ({len(spec.runs)} array tasks); then: gvae sweep {sweep_path} "
                   f"--out {out_dir} --summarize", err=True)
        return
    if not summarize:
        ran = run_sweep(spec, out_dir, only, say=lambda text: click.echo(text, err=True))
        click.echo(f"{ran} run(s) trained and evaluated", err=True)
        if only is not None:
            return
    done = sum(is_finished(spec, run, out_dir) for run in spec.runs)
    paths = write_summary(spec, out_dir)
    click.echo(f"{done} of {len(spec.runs)} runs finished; wrote {paths['markdown']}, {paths['csv']}, "
               f"{paths['importance']}", err=True)


COMMANDS = [sweep]
