"""gvae sweep: grid expansion and run names, skipping finished runs (also after kill -9), the summary's
mean ± std and the importance of each parameter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gvae.cli import cli
from gvae.errors import GvaeError
from gvae.sweep import commands, importance, load_sweep, run_sweep, slurm_script
from gvae.sweep.spec import short_keys
from gvae.sweep.summary import ConfigRow, aggregate, better_of, markdown, mean_std, ranked
from tests.train_helpers import phantom_data, tiny_recipe_file

TINY_DENSE = {"model.dense_hidden": [16, 8], "train.max_steps": 2, "train.checkpoint_every": 1,
              "train.ema_bn_images": 0, "log.sample_every": 100}


def write_sweep(directory: Path, body: dict) -> Path:
    recipe = directory / "base.yaml"
    if not recipe.exists():
        recipe.write_text("data:\n  resolution: 32\nmodel:\n  kind: vae-dense\n")
    path = directory / "sweep.yaml"
    path.write_text(json.dumps({"recipe": "base.yaml", "metric": "train:total", **body}))  # JSON is YAML
    return path


def test_a_grid_is_every_combination_last_key_fastest_and_seeds_outermost(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, {"grid": {"model.latent_dim": [4, 8, 16], "model.dense_dropout": [0, 0.2]},
                                              "seeds": [0, 1]}))
    assert len(sweep.runs) == 12
    assert [r.name for r in sweep.runs[:3]] == ["latent_dim=4_dense_dropout=0_seed=0",
                                                "latent_dim=4_dense_dropout=0.2_seed=0",
                                                "latent_dim=8_dense_dropout=0_seed=0"]
    assert sweep.runs[6].name == "latent_dim=4_dense_dropout=0_seed=1"
    assert sweep.runs[1].overrides == ("model.latent_dim=4", "model.dense_dropout=0.2", "train.seed=0")
    assert sweep.parameters == ["model.latent_dim", "model.dense_dropout"]


def test_run_names_are_the_values_of_each_run_and_lists_are_flattened(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, {"runs": [{"optim.lr": 0.001, "optim.d_lr": 0.002},
                                                       {"optim.lr": 0.002, "model.dense_hidden": [32, 16]}],
                                              "overrides": {"loss.beta": 0}}))
    assert [r.name for r in sweep.runs] == ["lr=0.001_d_lr=0.002_seed=0", "lr=0.002_dense_hidden=32-16_seed=0"]
    assert sweep.runs[0].overrides[0] == "loss.beta=0"


def test_keys_whose_last_parts_clash_are_named_in_full():
    assert short_keys(["a.rate", "b.rate", "a.size"]) == {"a.rate": "a.rate", "b.rate": "b.rate", "a.size": "size"}


def test_a_bad_value_in_the_grid_stops_the_sweep_naming_the_run_and_key(tmp_path):
    with pytest.raises(GvaeError, match=r"run kernel_size=4_seed=0: model.kernel_size: got 4; must be odd"):
        load_sweep(write_sweep(tmp_path, {"grid": {"model.kernel_size": [3, 4]}}))


def test_grid_and_runs_together_are_refused(tmp_path):
    with pytest.raises(GvaeError, match="either grid .* or runs"):
        load_sweep(write_sweep(tmp_path, {"grid": {"loss.beta": [0]}, "runs": [{"loss.beta": 1}]}))


def test_an_eval_metric_needs_an_eval_section_naming_data_and_metrics(tmp_path):
    with pytest.raises(GvaeError, match="metric elbo: a gvae eval result needs an eval: section"):
        load_sweep(write_sweep(tmp_path, {"grid": {"loss.beta": [0]}, "metric": "elbo"}))
    with pytest.raises(GvaeError, match="eval: expected a mapping with at least data .* and metrics"):
        load_sweep(write_sweep(tmp_path, {"grid": {"loss.beta": [0]}, "metric": "elbo", "eval": {"data": "d"}}))


def result(config: str, params: dict, seed: int, value: float) -> dict:
    return {"config": config, "params": params, "seed": seed, "metrics": {"elbo": {"value": value, "better": "higher"}}}


def test_the_summary_is_the_mean_and_sample_std_over_seeds(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, {"grid": {"loss.beta": [0, 1]}, "seeds": [0, 1, 2], "metric": "elbo",
                                              "eval": {"data": "unused", "metrics": "elbo"}}))
    found = [result("beta=0", {"loss.beta": 0}, s, v) for s, v in enumerate([-10.0, -12.0, -17.0])]
    found.append(result("beta=1", {"loss.beta": 1}, 0, -5.0))
    rows = aggregate(sweep, found)
    cell = rows[0].cells["elbo"]
    assert cell.mean == pytest.approx(-13.0)  # (-10 - 12 - 17) / 3
    assert cell.std == pytest.approx(((3**2 + 1**2 + 4**2) / 2) ** 0.5)  # sqrt(26 / (3 - 1)) = 3.606
    assert cell.count == 3
    assert rows[1].cells["elbo"].std is None  # one seed: no spread to report
    assert [r.config for r in ranked(rows, "elbo", "higher")] == ["beta=1", "beta=0"]


def test_the_markdown_puts_the_best_configuration_first_in_bold_and_names_it(tmp_path):
    sweep = load_sweep(write_sweep(tmp_path, {"grid": {"loss.beta": [0, 1]}, "seeds": [0, 1], "metric": "elbo",
                                              "eval": {"data": "unused", "metrics": "elbo"}}))
    found = [result("beta=0", {"loss.beta": 0}, s, v) for s, v in enumerate([-10.0, -12.0])]
    found += [result("beta=1", {"loss.beta": 1}, s, v) for s, v in enumerate([-5.0, -7.0])]
    rows = aggregate(sweep, found)
    text = markdown(sweep, rows, better_of(sweep, found), importance(rows, sweep.parameters, "elbo"), 4, 4)
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0] == "| loss.beta | elbo ↑ | seeds |"
    assert table[1] == "| **1** | **-6 ± 1.4** | **2** |"  # mean -6, std sqrt(2)
    assert table[2] == "| 0 | -11 ± 1.4 | 2 |"
    assert "Best: `beta=1`, elbo = -6 ± 1.4." in text
    assert "| loss.beta | 5 | 1 |" in text  # importance: -6 - (-11)


def test_importance_is_the_spread_when_one_parameter_alone_varies():
    # metric = 2 a + [b == "y"] + 0 c: a moves it by 2 x (2 - 0) = 4, b by 1, c not at all
    rows = [ConfigRow(f"{a}{b}{c}", {"a": a, "b": b, "c": c}, {"m": mean_std([2.0 * a + (b == "y")])})
            for a in (0, 1, 2) for b in ("x", "y") for c in (True, False)]
    found = importance(rows, ["a", "b", "c"], "m")
    assert found["a"] == (pytest.approx(4.0), 4)  # one group per (b, c)
    assert found["b"] == (pytest.approx(1.0), 6)
    assert found["c"] == (pytest.approx(0.0), 6)


def test_a_parameter_that_never_varies_alone_has_no_importance():
    rows = [ConfigRow("1", {"a": 0, "b": 0}, {"m": mean_std([1.0])}),
            ConfigRow("2", {"a": 1, "b": 1}, {"m": mean_std([3.0])})]
    assert importance(rows, ["a", "b"], "m") == {"a": (None, 0), "b": (None, 0)}


@pytest.fixture
def tiny_sweep(tmp_path):
    data = phantom_data(tmp_path / "data", num=20)
    tiny_recipe_file(tmp_path, data, "vae-dense")
    path = tmp_path / "sweep.yaml"
    path.write_text(json.dumps({"recipe": "tiny-vae-dense.yaml", "overrides": TINY_DENSE, "metric": "train:total",
                                "grid": {"model.latent_dim": [2, 4], "loss.beta": [0, 1]}}))
    return path


def test_finished_runs_are_skipped_and_only_unfinished_ones_are_listed(tiny_sweep, tmp_path):
    sweep, out = load_sweep(tiny_sweep), tmp_path / "out"
    assert run_sweep(sweep, out, only=sweep.runs[1].name) == 1
    assert [line.split()[-1] for line in commands(sweep, tiny_sweep, out)[:-1]] == [
        sweep.runs[0].name, sweep.runs[2].name, sweep.runs[3].name]
    stamp = (out / sweep.runs[1].name / "sweep-result.json").stat().st_mtime_ns
    assert run_sweep(sweep, out) == 3
    assert run_sweep(sweep, out) == 0
    assert (out / sweep.runs[1].name / "sweep-result.json").stat().st_mtime_ns == stamp
    assert commands(sweep, tiny_sweep, out) == [f"gvae sweep {tiny_sweep} --out {out} --summarize"]


def test_the_slurm_script_has_one_array_task_per_run(tiny_sweep, tmp_path):
    sweep = load_sweep(tiny_sweep)
    script = slurm_script(sweep, tiny_sweep, tmp_path / "out")
    assert "#SBATCH --array=0-3" in script
    assert "RUNS=(latent_dim=2_beta=0_seed=0 latent_dim=2_beta=1_seed=0 latent_dim=4_beta=0_seed=0 " in script
    assert script.rstrip().endswith('--only "${RUNS[$SLURM_ARRAY_TASK_ID]}"')


def test_a_sweep_killed_with_sigkill_continues_without_redoing_finished_runs(tiny_sweep, tmp_path):
    sweep, out = load_sweep(tiny_sweep), tmp_path / "out"
    first = out / sweep.runs[0].name / "sweep-result.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    command = [sys.executable, "-m", "gvae", "sweep", str(tiny_sweep), "--out", str(out)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not first.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # killed mid-sweep, not finished
    assert first.exists()
    stamp = first.stat().st_mtime_ns
    rerun = CliRunner().invoke(cli, ["sweep", str(tiny_sweep), "--out", str(out)])
    assert rerun.exit_code == 0, rerun.output
    assert f"[1/4] {sweep.runs[0].name}: finished, skipped" in rerun.output
    assert first.stat().st_mtime_ns == stamp
    assert f"training {sweep.runs[0].name}" not in rerun.output and f"training {sweep.runs[3].name}" in rerun.output
    summary = (out / "SUMMARY.md").read_text()
    assert "4 of 4 runs finished" in summary
    assert (out / "importance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
