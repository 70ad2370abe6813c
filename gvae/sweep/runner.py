"""Running a sweep: each run trains (resuming where it stopped), is evaluated, and records its metrics.

A run is finished when its run directory holds the checkpoint of its last step and ``sweep-result.json``, the
metric values it is ranked by; that file is written atomically after the evaluation, so a sweep killed at any
moment (even ``kill -9``) is continued by running the same command: finished runs are skipped, and the run
that was interrupted resumes from its newest checkpoint (``gvae train --resume auto``). A finished run is
never evaluated again; delete its ``sweep-result.json`` to re-measure it (e.g. after changing ``eval``).

On a cluster, :func:`commands` gives one command per unfinished run and :func:`slurm_script` a job array that
runs them in parallel; ``gvae sweep SWEEP --summarize`` then tabulates what finished.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path

from gvae.config import load_recipe
from gvae.errors import GvaeError
from gvae.fileio import write_json_atomic
from gvae.loading import is_checkpoint, step_dir_name
from gvae.sweep.spec import TRAIN_PREFIX, RunSpec, Sweep

RESULT = "sweep-result.json"


def final_checkpoint(sweep: Sweep, run: RunSpec, out: Path) -> Path:
    """Where the run's last checkpoint is, once it has trained to ``train.max_steps``."""
    steps = load_recipe(sweep.recipe, run.overrides).train.max_steps
    return out / run.name / "checkpoints" / step_dir_name(steps)


def read_result(out: Path, run: RunSpec) -> dict | None:
    """The run's recorded metrics, or None when it has none (not finished, or the file is damaged)."""
    try:
        return json.loads((out / run.name / RESULT).read_text())
    except (OSError, ValueError):
        return None


def is_finished(sweep: Sweep, run: RunSpec, out: Path) -> bool:
    return is_checkpoint(final_checkpoint(sweep, run, out)) and read_result(out, run) is not None


def last_logged(metrics_jsonl: Path) -> dict[str, float]:
    """The last value of every key in a run's metrics.jsonl (a resumed run appends, so later lines win)."""
    last: dict[str, float] = {}
    if metrics_jsonl.is_file():
        for line in metrics_jsonl.read_text().splitlines():
            try:
                last.update(json.loads(line))
            except ValueError:  # a line cut short by a kill
                continue
    return last


def _metric_values(sweep: Sweep, logged: dict[str, float], results: dict | None) -> dict[str, dict]:
    values = {}
    evaluated = (results or {}).get("metrics", {})
    for name in sweep.metrics:
        chosen = sweep.better if name == sweep.metric else None  # the sweep's `better` is about its metric
        if name.startswith(TRAIN_PREFIX):
            key = name[len(TRAIN_PREFIX):]
            if key not in logged:
                raise GvaeError(f"metric {name}: training logged no {key}; logged: {', '.join(sorted(logged))}")
            values[name] = {"value": float(logged[key]), "better": chosen or "lower"}
        elif name in evaluated:
            entry = evaluated[name]
            values[name] = {"value": entry["value"], "better": chosen or entry.get("better", "")}
        else:
            raise GvaeError(f"metric {name}: gvae eval gave no such result (it gave {', '.join(evaluated)}); "
                            "name one of those, or add the metric to eval.metrics")
    return values


def run_one(sweep: Sweep, run: RunSpec, out: Path, say: Callable[[str], None]) -> dict:
    """Train (or resume) one run, evaluate it and write its ``sweep-result.json``; returns that mapping."""
    from gvae.evaluation.results import write_results
    from gvae.evaluation.runner import run_evaluation
    from gvae.train.loop import train

    run_dir = out / run.name
    recipe = load_recipe(sweep.recipe, run.overrides)
    checkpoint = final_checkpoint(sweep, run, out)
    if not is_checkpoint(checkpoint):
        say(f"training {run.name}")
        train(recipe, run_dir, resume="auto", progress=False)
    results = None
    if sweep.needs_eval:
        say(f"evaluating {run.name}")
        results = run_evaluation(str(run_dir), sweep.protocol())
        write_results(results, run_dir / "results.json")
    record = {"run": run.name, "config": run.config, "params": run.params, "seed": run.seed,
              "checkpoint": str(checkpoint),
              "metrics": _metric_values(sweep, last_logged(run_dir / "metrics.jsonl"), results)}
    write_json_atomic(run_dir / RESULT, record)
    return record


def select(sweep: Sweep, only: str | None) -> list[RunSpec]:
    """Every run, or the one named ``only``."""
    if only is None:
        return sweep.runs
    chosen = [run for run in sweep.runs if run.name == only]
    if not chosen:
        raise GvaeError(f"--only {only}: no such run in sweep {sweep.name}; its runs: "
                        f"{', '.join(r.name for r in sweep.runs)}")
    return chosen


def run_sweep(sweep: Sweep, out: Path, only: str | None = None, say: Callable[[str], None] = lambda _: None) -> int:
    """Run every unfinished run (or only the one named ``only``) in order; returns how many ran."""
    ran = 0
    for index, run in enumerate(select(sweep, only)):
        if is_finished(sweep, run, out):
            say(f"[{index + 1}/{len(sweep.runs)}] {run.name}: finished, skipped")
            continue
        say(f"[{index + 1}/{len(sweep.runs)}] {run.name}")
        run_one(sweep, run, out, say)
        ran += 1
    return ran


def _command(sweep_path: Path, out: Path, only: str) -> str:
    return shlex.join(["gvae", "sweep", str(sweep_path), "--out", str(out), "--only", only])


def commands(sweep: Sweep, sweep_path: Path, out: Path) -> list[str]:
    """One shell command per unfinished run, each independent of the others (run them anywhere, in any order),
    then the command that writes the summary once they are done."""
    lines = [_command(sweep_path, out, run.name) for run in sweep.runs if not is_finished(sweep, run, out)]
    return [*lines, shlex.join(["gvae", "sweep", str(sweep_path), "--out", str(out), "--summarize"])]


def slurm_script(sweep: Sweep, sweep_path: Path, out: Path) -> str:
    """A SLURM job array with one task per run; finished runs exit at once, so resubmitting it is safe."""
    names = " ".join(shlex.quote(run.name) for run in sweep.runs)
    run_command = shlex.join(["gvae", "sweep", str(sweep_path), "--out", str(out), "--only"])
    return "\n".join([
        "#!/bin/bash",
        f"#SBATCH --job-name=sweep-{sweep.name}",
        f"#SBATCH --array=0-{len(sweep.runs) - 1}",
        "#SBATCH --requeue",
        f"# {len(sweep.runs)} runs of sweep {sweep_path}; afterwards:",
        f"#   {shlex.join(['gvae', 'sweep', str(sweep_path), '--out', str(out), '--summarize'])}",
        "set -euo pipefail",
        f"RUNS=({names})",
        f'{run_command} "${{RUNS[$SLURM_ARRAY_TASK_ID]}}"',
        "",
    ])
