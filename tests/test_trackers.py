"""Experiment trackers through accelerate: log.trackers, the older log.tensorboard, and missing packages."""

import importlib.util
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gvae.cli import cli
from gvae.config import LogConfig
from gvae.errors import GvaeError
from gvae.train.loop import train
from gvae.train.trackers import flat_config, log_grid, tracker_names
from tests.train_helpers import phantom_data, tiny_recipe, tiny_recipe_file


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return phantom_data(tmp_path_factory.mktemp("phantoms"))


def _events(run):
    (events,) = (run / "tensorboard").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def test_tensorboard_as_a_tracker_gets_every_logged_scalar_and_sample_grid(tmp_path, data):
    torch.set_num_threads(1)
    recipe = tiny_recipe(tmp_path, data, overrides=["log.tensorboard=false", "log.trackers=[tensorboard]"])
    train(recipe, tmp_path / "run", progress=False)
    events = _events(tmp_path / "run")
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [e.step for e in events.Scalars("total")] == [line["step"] for line in lines] == [1, 2, 3, 4]
    assert [e.value for e in events.Scalars("total")] == pytest.approx([line["total"] for line in lines], rel=1e-5)
    assert [e.step for e in events.Images("samples")] == [2, 4, 4]


def test_log_tensorboard_and_log_trackers_name_tensorboard_once():
    assert tracker_names(LogConfig(tensorboard=True, trackers=["mlflow", "tensorboard"])) == ["mlflow", "tensorboard"]
    assert tracker_names(LogConfig(tensorboard=True, trackers=[])) == ["tensorboard"]
    assert tracker_names(LogConfig(tensorboard=False, trackers=[])) == []


def test_the_recipe_reaches_trackers_as_flat_scalars(tmp_path, data):
    config = flat_config(tiny_recipe(tmp_path, data))
    assert config["model.latent_dim"] == 8 and config["train.batch_size"] == 4
    assert config["optim.betas"] == "[0.5, 0.999]" and config["train.ema_halflife"] == 0.05
    assert all(isinstance(v, (bool, int, float, str)) for v in config.values())


@pytest.mark.skipif(importlib.util.find_spec("comet_ml") is not None, reason="comet_ml is installed here")
def test_a_tracker_that_is_not_installed_is_one_error_naming_its_pip_package(tmp_path, data):
    recipe = tiny_recipe_file(tmp_path, data)
    result = CliRunner().invoke(cli, ["train", str(recipe), "log.trackers=[comet_ml]", "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert result.output == ("Error: log.trackers: comet_ml is not installed; pip install comet-ml, or remove "
                             "comet_ml from log.trackers\n")
    assert not (tmp_path / "run").exists()


def test_an_unknown_tracker_is_refused_when_the_recipe_loads(tmp_path, data):
    with pytest.raises(GvaeError, match=r"log.trackers\[1\]: got 'wandbb'; choose one of tensorboard, wandb"):
        tiny_recipe(tmp_path, data, overrides=["log.trackers=[tensorboard, wandbb]"])


class _Tracker:
    def __init__(self, name):
        self.name, self.calls = name, []

    def log_images(self, values, step=None, **kwargs):
        self.calls.append((values, step, kwargs))


class _ScalarsOnly:
    name = "scalars-only"


def test_a_grey_sample_grid_reaches_every_tracker_that_takes_images_as_one_rgb_image():
    wandb, tensorboard = _Tracker("wandb"), _Tracker("tensorboard")
    accelerator = type("Acc", (), {"trackers": [wandb, _ScalarsOnly(), tensorboard]})()
    grid = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    log_grid(accelerator, grid, step=7)
    (values, step, kwargs), = wandb.calls
    assert step == 7 and kwargs == {} and values["samples"].shape == (1, 3, 4, 3)
    assert (values["samples"][0, :, :, 2] == grid[:, :, 0]).all()
    assert tensorboard.calls[0][2] == {"dataformats": "NHWC"}
