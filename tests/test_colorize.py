"""Grey to colour: YIQ, the colorizer's outputs, its scores against the I = Q = 0 baseline, colour phantoms,
and the commands end to end on a tiny run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gvae.cli import cli
from gvae.colorize.apply import scores
from gvae.colorize.model import Colorizer
from gvae.colorize.yiq import IQ_LIMITS, luminance, rebuild_rgb, rgb_to_yiq, yiq_to_rgb
from gvae.config import recipe_from_dict
from gvae.data import PackConfig, pack
from gvae.data.sources.colour_phantom import render_rgb
from gvae.data.sources.phantom import _AIR, render_hu
from gvae.errors import GvaeError
from gvae.models import build_model


def colour_images(n: int, side: int = 16, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    """8-bit RGB images as the loader gives them: multiples of 1/255."""
    return (torch.randint(0, 256, (n, 3, side, side), generator=torch.Generator().manual_seed(seed)) / 255).to(dtype)


def test_yiq_round_trip_is_exact():
    rgb = colour_images(4, dtype=torch.float64)
    assert torch.allclose(yiq_to_rgb(rgb_to_yiq(rgb)), rgb, atol=1e-12, rtol=0)
    eight_bit = colour_images(4)  # float32: back to the same 8-bit values
    assert torch.equal((yiq_to_rgb(rgb_to_yiq(eight_bit)) * 255).round(), (eight_bit * 255).round())


def test_the_iq_limits_are_reached_by_red_and_by_magenta():
    red, magenta = torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1), torch.tensor([1.0, 0, 1]).view(1, 3, 1, 1)
    assert IQ_LIMITS.tolist() == pytest.approx([0.5959, 0.5227])
    assert rgb_to_yiq(red)[0, 1].item() == pytest.approx(0.5959)
    assert rgb_to_yiq(magenta)[0, 2].item() == pytest.approx(0.2115 + 0.3112)


def test_zero_chrominance_rebuilds_a_grey_image_equal_to_the_luminance():
    y = luminance(colour_images(2))
    grey = rebuild_rgb(y, torch.zeros(2, 2, 16, 16))
    assert torch.allclose(grey, y.expand(-1, 3, -1, -1), atol=1e-6)


def test_the_colorizer_predicts_iq_within_the_limits_at_full_resolution():
    net = Colorizer(16, recipe_from_dict({"data": {"resolution": 16, "channels": 3},
                                          "model": {"kind": "colorize", "channel_base": 32, "channel_min": 4,
                                                    "channel_max": 8}}).model)
    with torch.no_grad():
        net.head[-1].bias.fill_(100.0)  # saturate the tanh
        iq = net(torch.rand(2, 1, 16, 16))
    assert iq.shape == (2, 2, 16, 16)
    assert torch.allclose(iq[:, 0], torch.full_like(iq[:, 0], 0.5959), atol=1e-6)
    assert torch.allclose(iq[:, 1], torch.full_like(iq[:, 1], 0.5227), atol=1e-6)


def test_the_baseline_psnr_is_that_of_the_luminance_as_a_grey_image():
    original = colour_images(5, seed=3, dtype=torch.float64)
    found = scores(original.float(), original.float())
    rgb = original.numpy()
    y = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    mse = ((rgb - y[:, None]) ** 2).mean(axis=(1, 2, 3))
    psnr = 10 * np.log10(1.0 / (mse + 1e-8))  # piq's eps
    assert found["baseline_psnr"]["value"] == pytest.approx(psnr.mean(), abs=1e-3)
    assert found["baseline_psnr"]["std"] == pytest.approx(psnr.std(ddof=1) / np.sqrt(5), abs=1e-3)
    assert found["colorize_psnr"]["value"] > 70  # identical images: only piq's eps bounds it
    assert found["colorize_ssim"]["value"] == pytest.approx(1.0)


def test_a_colour_phantom_has_the_geometry_and_label_of_the_grey_one():
    for index in range(5):
        hu, lesions = render_hu(index, 7, 32)
        rgb, colour_lesions = render_rgb(index, 7, 32)
        assert colour_lesions == lesions
        np.testing.assert_array_equal(rgb.sum(-1) == 0, hu == _AIR)  # black exactly where the grey one is air


def test_a_colorize_recipe_needs_colour_data_and_has_no_generative_model():
    with pytest.raises(GvaeError, match="data.channels: got 1; model.kind colorize learns colour"):
        recipe_from_dict({"data": {"resolution": 32, "channels": 1}, "model": {"kind": "colorize"}})
    recipe = recipe_from_dict({"data": {"resolution": 32, "channels": 3}, "model": {"kind": "colorize"}})
    with pytest.raises(GvaeError, match="apply it with gvae colorize"):
        build_model(recipe)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("colorize")
    data = root / "data"
    pack(PackConfig(src="-", kind="colour-phantom", out=str(data), resolution=16, channels=3, num=80,
                    shard_size=40, val_fraction=0.25))
    recipe = root / "recipe.yaml"
    recipe.write_text(json.dumps({
        "data": {"train": str(data), "val": str(data), "resolution": 16, "channels": 3, "workers": 0,
                 "shuffle_buffer": 16},
        "model": {"kind": "colorize", "channel_base": 64, "channel_min": 4, "channel_max": 8, "dropout": 0.0},
        "optim": {"lr": 0.003, "betas": [0.9, 0.999]},
        "train": {"batch_size": 16, "max_steps": 60}, "log": {"every": 20, "tensorboard": False}}))
    result = CliRunner().invoke(cli, ["train", str(recipe), "--out", str(root / "run"), "--no-progress"])
    assert result.exit_code == 0, result.output
    return root


def test_training_logs_the_iq_error_and_writes_one_final_checkpoint(trained):
    lines = [json.loads(line) for line in (trained / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [20, 40, 60]
    assert lines[-1]["loss"] < lines[0]["loss"]
    assert [p.name for p in (trained / "run" / "checkpoints").iterdir()] == ["step-00000060"]


def test_an_interrupted_colorize_run_starts_again_with_a_fresh_log(trained, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 20, "loss": 1.0}\n')  # what a killed run left
    recipe = trained / "recipe.yaml"
    result = CliRunner().invoke(cli, ["train", str(recipe), "train.max_steps=20", "--out", str(run), "--no-progress"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [20] and lines[0]["loss"] != 1.0


def test_colorize_beats_the_grey_baseline_on_held_out_phantoms(trained):
    out = trained / "colour"
    result = CliRunner().invoke(cli, ["colorize", str(trained / "run"), str(trained / "data"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "colorize.json").read_text())
    assert record["count"] == 20 and len(list(out.glob("0*.png"))) == 20
    assert record["scores"]["colorize_psnr"]["value"] > record["scores"]["baseline_psnr"]["value"] + 3
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_grey_images_are_colorized_without_scores(trained, tmp_path):
    grey = tmp_path / "grey"
    pack(PackConfig(src="-", kind="phantom", out=str(grey), resolution=16, num=10, val_fraction=0.2))
    result = CliRunner().invoke(cli, ["colorize", str(trained / "run"), str(grey), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "out" / "colorize.json").read_text())
    assert (record["input_channels"], record["scores"]) == (1, None)
    from PIL import Image

    assert Image.open(tmp_path / "out" / "00000000.png").mode == "RGB"


def test_colorize_refuses_a_directory_with_other_files(trained, tmp_path):
    (tmp_path / "mine.txt").write_text("keep")
    result = CliRunner().invoke(cli, ["colorize", str(trained / "run"), str(trained / "data"), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "did not write" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
