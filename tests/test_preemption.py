"""A preempted job: SIGUSR1 or SIGTERM makes gvae train write a checkpoint and exit 0; the rerun continues."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gvae.loading import list_checkpoints
from tests.train_helpers import phantom_data, tiny_recipe_file

ENV = dict(os.environ, OMP_NUM_THREADS="1")


def _train(recipe, run, *overrides):
    return [sys.executable, "-m", "gvae", "train", str(recipe), *overrides, "--out", str(run), "--no-progress"]


def _wait_for_logged_steps(run, steps: int, process, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    metrics = run / "metrics.jsonl"
    while not (metrics.is_file() and len(metrics.read_text().splitlines()) >= steps):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "training logged too few steps in time"
        time.sleep(0.2)


@pytest.mark.parametrize("stop_signal", [signal.SIGUSR1, signal.SIGTERM], ids=["SIGUSR1", "SIGTERM"])
def test_a_stop_signal_checkpoints_exits_cleanly_and_the_rerun_continues(tmp_path, stop_signal):
    recipe = tiny_recipe_file(tmp_path, phantom_data(tmp_path / "data"))
    run = tmp_path / "run"
    endless = ["train.max_steps=100000", "train.checkpoint_every=100000", "log.sample_every=100000"]
    process = subprocess.Popen(_train(recipe, run, *endless), env=ENV, stderr=subprocess.PIPE, text=True)
    _wait_for_logged_steps(run, 3, process)
    process.send_signal(stop_signal)
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stderr
    (checkpoint,) = list_checkpoints(run)  # the one the signal asked for: checkpoint_every is never reached
    step = int(checkpoint.name.split("-")[1])
    assert step >= 3 and f"stopped by {stop_signal.name} at step {step}" in stderr

    rerun = subprocess.run([*_train(recipe, run, f"train.max_steps={step + 2}"), "--resume", "auto"], env=ENV,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((run / "run.json").read_text())["resumed_from"] == str(checkpoint)
    assert [c.name for c in list_checkpoints(run)][-1] == f"step-{step + 2:08d}"
