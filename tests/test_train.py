"""Training runs on the CPU: artefacts, exact resume, crash safety, bad steps, and errors before training."""

import json
import math
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from gvae import loading as ckpt
from gvae.cli import cli
from gvae.config import DataConfig
from gvae.errors import GvaeError
from gvae.train.loop import Trainer, train
from tests.launching import accelerate_launch, run_launched
from tests.train_helpers import phantom_data, tiny_recipe, tiny_recipe_file


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return phantom_data(tmp_path_factory.mktemp("phantoms"))


def weights(checkpoint_dir):
    return load_file(str(checkpoint_dir / ckpt.WEIGHTS))


def test_run_writes_every_artefact_with_finite_losses(tmp_path, data):
    result = train(tiny_recipe(tmp_path, data), tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert result["step"] == 4
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step-00000002", "step-00000004"]
    for name in ("model.safetensors", "ema.safetensors", "config.yaml", "trainer.json", "loader-0.json"):
        assert (run / "checkpoints/step-00000004" / name).is_file(), name
    assert (run / "checkpoints/step-00000004/state/g/optimizer.bin").is_file()
    assert (run / "checkpoints/step-00000004/state/d/optimizer.bin").is_file()
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4]
    for key in ("nll", "kl", "adv", "d_loss", "d_real", "d_fake", "grad_norm_g", "grad_norm_d", "lr"):
        assert all(math.isfinite(line[key]) for line in lines), key
    info = json.loads((run / "run.json").read_text())
    assert info["world_size"] == 1 and info["global_batch_size"] == 4
    assert "torch" in info["versions"]
    assert Image.open(run / "samples/step-00000004.png").size[0] > 32
    assert list((run / "tensorboard").iterdir())


def test_resumed_run_ends_bit_exact_with_an_uninterrupted_one(tmp_path, data):
    recipe = tiny_recipe(tmp_path, data)
    train(recipe, tmp_path / "straight", progress=False)
    half = tiny_recipe(tmp_path, data, overrides=["train.max_steps=2"])
    train(half, tmp_path / "resumed", progress=False)
    train(recipe, tmp_path / "resumed", progress=False)
    a = weights(tmp_path / "straight/checkpoints/step-00000004")
    b = weights(tmp_path / "resumed/checkpoints/step-00000004")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    start = weights(tmp_path / "straight/checkpoints/step-00000002")
    assert not all(torch.equal(a[k], start[k]) for k in a)  # it did train


def test_kill_during_checkpoint_write_resumes_from_previous_complete_one(tmp_path, data):
    recipe_file = tiny_recipe_file(tmp_path, data)
    run = tmp_path / "run"
    # A process that dies with SIGKILL while writing the weights of its step-4 checkpoint.
    script = (
        "import os, signal, sys\n"
        "import gvae.models as m\n"
        "real = m.save_weights\n"
        "def dying(module, path):\n"
        "    if 'step-00000004' in str(path):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    real(module, path)\n"
        "m.save_weights = dying\n"
        "from gvae.cli import main\n"
        "sys.argv = ['gvae', 'train', sys.argv[1], '--out', sys.argv[2], '--no-progress']\n"
        "main()\n")
    killed = subprocess.run([sys.executable, "-c", script, str(recipe_file), str(run)], capture_output=True)
    assert killed.returncode == -9
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step-00000002"]
    assert list((run / "checkpoints").glob(".tmp-*"))  # the torn write is there, under a temporary name
    result = CliRunner().invoke(cli, ["train", str(recipe_file), "--out", str(run), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "run.json").read_text())["resumed_from"].endswith("step-00000002")
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["step-00000002", "step-00000004"]
    assert not list((run / "checkpoints").glob(".*"))


def test_non_finite_losses_skip_steps_then_stop_with_checkpoint_intact(tmp_path, data, monkeypatch):
    import gvae.train.loop as loop

    recipe = tiny_recipe(tmp_path, data, overrides=["train.max_steps=10", "train.max_bad_steps=3"])
    real = loop.generator_loss

    def poisoned(*args, **kwargs):
        loss, parts = real(*args, **kwargs)
        return (loss * float("nan") if trainer.step >= 2 else loss), parts

    monkeypatch.setattr(loop, "generator_loss", poisoned)
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    with pytest.raises(GvaeError, match=r"3 non-finite steps in a row.*step-00000002"):
        trainer.fit()
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run")] == ["step-00000002"]


@pytest.mark.parametrize("kind", ["vae", "vae-dense", "vaegan"])
def test_baselines_train(tmp_path, data, kind):
    result = train(tiny_recipe(tmp_path, data, kind, ["train.max_steps=2"]), tmp_path / kind, progress=False)
    assert math.isfinite(result["last"]["nll"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.train=/nonexistent/shards", "/nonexistent/shards"),
        ("model.latnt_dim=4", "did you mean model.latent_dim"),
        ("data.resolution=64", "64"),
        ("data.val=/nonexistent/val", "/nonexistent/val"),
    ],
)
def test_bad_input_fails_with_one_line_error_before_training(tmp_path, data, override, message):
    recipe_file = tiny_recipe_file(tmp_path, data)
    result = CliRunner().invoke(cli, ["train", str(recipe_file), override, "--out", str(tmp_path / "run")])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_resume_none_refuses_a_run_with_checkpoints(tmp_path, data):
    train(tiny_recipe(tmp_path, data, overrides=["train.max_steps=2"]), tmp_path / "run", progress=False)
    with pytest.raises(GvaeError, match="already has checkpoints"):
        train(tiny_recipe(tmp_path, data), tmp_path / "run", resume="none", progress=False)


def test_resume_is_bit_exact_with_the_default_loader_workers(tmp_path, data):
    """data.workers at its default (2 worker processes), not the tiny recipes' 0."""
    workers = f"data.workers={DataConfig().workers}"
    train(tiny_recipe(tmp_path, data, overrides=[workers]), tmp_path / "straight", progress=False)
    train(tiny_recipe(tmp_path, data, overrides=[workers, "train.max_steps=2"]), tmp_path / "resumed",
          progress=False)
    train(tiny_recipe(tmp_path, data, overrides=[workers]), tmp_path / "resumed", progress=False)
    a = weights(tmp_path / "straight/checkpoints/step-00000004")
    b = weights(tmp_path / "resumed/checkpoints/step-00000004")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_killed_with_sigkill_and_rerun_ends_bit_exact(tmp_path, data):
    """`kill -9` mid-run (default loader workers), then the same command again: the same final weights as a run
    never interrupted."""
    recipe = tiny_recipe_file(tmp_path, data)
    args = [str(recipe), f"data.workers={DataConfig().workers}", "train.max_steps=24", "train.checkpoint_every=3"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.getcwd())

    def command(run):
        return [sys.executable, "-m", "gvae", "train", *args, "--out", str(tmp_path / run)]

    subprocess.run(command("straight"), env=env, check=True, capture_output=True, timeout=600)
    victim = subprocess.Popen(command("killed"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (tmp_path / "killed/checkpoints/step-00000006").is_dir() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert victim.poll() is None, "the run ended before it could be killed"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (tmp_path / "killed/checkpoints/step-00000024").exists()
    subprocess.run(command("killed"), env=env, check=True, capture_output=True, timeout=600)
    a = weights(tmp_path / "straight/checkpoints/step-00000024")
    b = weights(tmp_path / "killed/checkpoints/step-00000024")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_failed_resume_leaves_the_run_description_as_it_was(tmp_path, data):
    """Resuming onto a checkpoint of another model size fails in one error, before config.yaml or run.json
    are rewritten: the report of that run still shows the recipe that made it."""
    run = tmp_path / "run"
    train(tiny_recipe(tmp_path, data, overrides=["train.max_steps=2"]), run, progress=False)
    before = {name: (run / name).read_bytes() for name in ("config.yaml", "run.json")}
    wider = tiny_recipe(tmp_path, data, overrides=["train.max_steps=4", "model.latent_dim=7"])
    with pytest.raises(GvaeError, match="cannot resume from .*step-00000002.*another recipe"):
        train(wider, run, progress=False)
    assert {name: (run / name).read_bytes() for name in before} == before


def launch(config: str, tmp_path, data, steps=3, run="run", overrides=(), env=()):
    """Train the tiny recipe on two processes; returns [[initial rank 0, rank 1], [final rank 0, rank 1]]."""
    recipe = tiny_recipe_file(tmp_path, data)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.getcwd(), **dict(env))
    prefix = tmp_path / f"{run}-{steps}"
    cmd = [*accelerate_launch(f"launch/{config}.yaml"), "tests/dist_worker.py", str(recipe), str(tmp_path / run),
           str(prefix), f"train.max_steps={steps}", *overrides]
    done = run_launched(cmd, [tmp_path / run], env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return [[load_file(f"{prefix}-{when}-{rank}.safetensors") for rank in (0, 1)] for when in ("initial", "final")]


@pytest.mark.slow
@pytest.mark.parametrize("config", ["cpu-ddp", "cpu-zero2", "cpu-zero3"])
def test_two_processes_end_with_identical_parameters_that_moved(tmp_path, data, config):
    (start0, _), (end0, end1) = launch(config, tmp_path, data)
    assert end0.keys() == end1.keys() and len(end0) > 10
    for name in end0:
        torch.testing.assert_close(end0[name], end1[name], rtol=0, atol=0, msg=name)
    assert any(not torch.equal(start0[k], end0[k]) for k in start0)
    run = json.loads((tmp_path / "run/run.json").read_text())
    assert run["world_size"] == 2
    assert run["deepspeed_zero_stage"] == {"cpu-ddp": None, "cpu-zero2": 2, "cpu-zero3": 3}[config]


@pytest.mark.slow
@pytest.mark.parametrize("config", ["cpu-ddp", "cpu-zero2"])
def test_resume_under_two_processes_matches_an_uninterrupted_run(tmp_path, data, config):
    _, (straight, _) = launch(config, tmp_path, data, steps=2, run="straight")
    launch(config, tmp_path, data, steps=1, run="resumed")
    _, (resumed, _) = launch(config, tmp_path, data, steps=2, run="resumed")
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], msg=name)


@pytest.mark.slow
def test_deepspeed_updates_as_ddp_does_with_accumulation_and_a_poisoned_micro_batch(tmp_path, data):
    """grad_accum=2; rank 0's loss is NaN on step 1's second micro-batch, after the first one's backward.

    DDP is the reference: it makes one update per step, clips only when asked, and its skipped step drops
    the accumulated gradients with ``zero_grad``. ZeRO-2 and ZeRO-3 must end at the same weights. SGD, not
    Adam: its update is linear in the gradient, so a leaked micro-batch or a clipped norm shows, while
    rounding does not flip it (Adam's first updates are near sign(g), which rounding flips where g ~ 0).
    """
    pytest.importorskip("deepspeed")
    overrides = ["train.grad_accum=2", "optim.name=sgd", "optim.lr=1e-7", "optim.d_lr=1e-3"]
    runs = {config: launch(config, tmp_path, data, steps=3, run=config, overrides=overrides,
                           env={"GVAE_TEST_POISON": "1,1"})
            for config in ("cpu-ddp", "cpu-zero2", "cpu-zero3")}
    (start, _), (reference, _) = runs["cpu-ddp"]
    assert any(not torch.equal(start[k], reference[k]) for k in start)
    for config in ("cpu-zero2", "cpu-zero3"):
        _, (final0, final1) = runs[config]
        for name in reference:
            torch.testing.assert_close(final0[name], final1[name], rtol=0, atol=0, msg=f"{config}: {name}")
            torch.testing.assert_close(final0[name], reference[name], rtol=1e-5, atol=1e-6,
                                       msg=f"{config} vs DDP: {name}")
        log = [json.loads(line) for line in (tmp_path / config / "metrics.jsonl").read_text().splitlines()]
        assert [line["step"] for line in log] == [1, 3]  # step 2, the skipped update, logs nothing


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_run_has_finite_losses_and_records_its_precision(tmp_path, data, precision):
    recipe = tiny_recipe(tmp_path, data, overrides=[f"train.mixed_precision={precision}", "train.max_steps=2"])
    result = train(recipe, tmp_path / "run", progress=False)
    assert math.isfinite(result["last"]["nll"]) and math.isfinite(result["last"]["d_loss"])
    assert json.loads((tmp_path / "run/run.json").read_text())["mixed_precision"] == precision


class _Planted:
    """Unpickling this runs ``Path.touch`` on the marker: what a tampered checkpoint could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_deepspeed_states_load_as_data_and_planted_code_is_refused(tmp_path):
    pytest.importorskip("deepspeed")
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum

    from gvae.train.deepspeed_loading import WeightsOnlyCheckpointEngine

    engine = WeightsOnlyCheckpointEngine()
    state = {"zero_stage": ZeroStageEnum.gradients, "loss_scaler": DynamicLossScaler(init_scale=2.0 ** 10, scale_window=1000, min_scale=1, delayed_shift=2, consecutive_hysteresis=False),
             "fp32": torch.arange(4.0)}
    torch.save(state, tmp_path / "optim_states.pt")
    loaded = engine.load(str(tmp_path / "optim_states.pt"))
    assert loaded["zero_stage"] is ZeroStageEnum.gradients and loaded["loss_scaler"].cur_scale == 2.0 ** 10
    assert torch.equal(loaded["fp32"], state["fp32"])
    marker = tmp_path / "code-ran"
    torch.save({"fp32": torch.zeros(1), "payload": _Planted(marker)}, tmp_path / "tampered.pt")
    with pytest.raises(pickle.UnpicklingError, match="Unsupported global"):
        engine.load(str(tmp_path / "tampered.pt"))
    assert not marker.exists()
    torch.load(tmp_path / "tampered.pt", weights_only=False)  # the same file, loaded as DeepSpeed would
    assert marker.exists()


def test_the_last_step_is_logged_even_off_the_logging_interval(tmp_path, data):
    recipe = tiny_recipe(tmp_path, data, overrides=["log.every=3", "train.max_steps=4"])
    train(recipe, tmp_path / "run", progress=False)
    lines = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [3, 4]


def test_before_the_adversarial_start_the_discriminator_neither_plays_nor_learns(tmp_path, data):
    recipe = tiny_recipe(tmp_path, data, overrides=["loss.adv_start_steps=2", "train.checkpoint_every=1"])
    train(recipe, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [("adv" in line, "d_loss" in line) for line in lines] == [(False, False)] * 2 + [(True, True)] * 2
    assert all(math.isfinite(line["d_loss"]) for line in lines[2:])
    disc = [{k: v for k, v in weights(run / f"checkpoints/step-0000000{step}").items() if k.startswith("disc.")}
            for step in (1, 2, 3)]
    assert disc[0] and all(torch.equal(disc[0][k], disc[1][k]) for k in disc[0])  # no update before step 2
    assert not all(torch.equal(disc[1][k], disc[2][k]) for k in disc[1])  # the third step trains it


def test_resuming_with_more_steps_warns_that_the_budget_scaled_schedules_move(tmp_path, data, caplog):
    train(tiny_recipe(tmp_path, data, overrides=["loss.adv_start_fraction=0.5"]), tmp_path / "run", progress=False)
    train(tiny_recipe(tmp_path, data, overrides=["loss.adv_start_fraction=0.5", "train.max_steps=6"]),
          tmp_path / "run", progress=False)
    assert "resuming" in caplog.text and "discriminator start step 2 -> 3" in caplog.text
    caplog.clear()
    train(tiny_recipe(tmp_path, data, overrides=["loss.adv_start_fraction=0.5", "train.max_steps=6"]),
          tmp_path / "run", progress=False)  # nothing left to do, and nothing moved
    assert "budget-scaled" not in caplog.text


def test_a_checkpoint_recipe_this_version_cannot_read_still_resumes(tmp_path, data):
    train(tiny_recipe(tmp_path, data), tmp_path / "run", progress=False)
    config = tmp_path / "run/checkpoints/step-00000004/config.yaml"
    config.write_text(config.read_text().replace("model:", "model:\n  retired_key: 1", 1))
    result = train(tiny_recipe(tmp_path, data, overrides=["train.max_steps=6"]), tmp_path / "run", progress=False)
    assert result["step"] == 6


def test_a_late_discriminator_starts_its_cosine_schedule_when_it_joins(tmp_path, data):
    recipe = tiny_recipe(tmp_path, data, overrides=["loss.adv_start_steps=2", "optim.schedule=cosine",
                                                    "optim.lr=1e-3", "optim.d_lr=4e-4"])
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    for step, g, d in ((2, 0.5, 1.0), (3, 0.5 * (1 + math.cos(0.75 * math.pi)), 0.5)):  # 4 steps in all
        trainer.step = step
        assert trainer._set_lr() == pytest.approx(1e-3 * g)
        assert [group["lr"] for group in trainer.opt_g.param_groups] == pytest.approx([1e-3 * g])
        assert [group["lr"] for group in trainer.opt_d.param_groups] == pytest.approx([4e-4 * d])


def test_channels_last_trains_the_same_model_up_to_float_rounding(tmp_path, data):
    # without dropout: its masks fill memory in layout order, so they would land on other elements
    train(tiny_recipe(tmp_path, data, overrides=["model.dropout=0"]), tmp_path / "nchw", progress=False)
    nhwc = tiny_recipe(tmp_path, data, overrides=["model.dropout=0", "train.channels_last=true"])
    trainer = Trainer(nhwc, tmp_path / "probe", progress=False)
    conv = trainer.model.ae.generator.out.weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    train(nhwc, tmp_path / "nhwc", progress=False)
    a, b = weights(tmp_path / "nchw/checkpoints/step-00000004"), weights(tmp_path / "nhwc/checkpoints/step-00000004")
    assert a.keys() == b.keys()
    for key in a:
        # Adam moves a weight by ~lr = 2e-4 a step whatever its gradient's size, so a gradient near 0 whose
        # sign the rounding flips differs by 2 lr after one step
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=2e-3, msg=key)
