"""`gvae eval temperature`: the sampling temperature whose re-encoded samples match the images' codes."""

import hashlib
import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from gvae.cli import cli
from gvae.errors import GvaeError
from gvae.evaluation.temperature import temperature_scan
from gvae.loading import LoadedModel

LATENT, SCALE = 4, 0.05  # a 2x2 image is 0.5 + SCALE * z: the codes are the pixels, rescaled


class LinearAutoencoder(nn.Module):
    """decode(z) = 0.5 + SCALE * z as a 1x2x2 image and encode its exact inverse, so that the codes of images
    drawn as decode(s * eps) are N(0, s^2 I): the scan must find T = s."""

    kind, latent_dim, num_classes, channels, resolution = "linear", LATENT, 0, 1, 2

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1), requires_grad=False)  # where the scan looks up the device

    def decode(self, z, labels=None):
        return (0.5 + SCALE * z).view(-1, 1, 2, 2)

    def encode(self, x, labels=None):
        mu = (x.flatten(1) - 0.5) / SCALE
        return mu, torch.zeros_like(mu)


def images_at(spread: float, n: int = 1500, seed: int = 1) -> torch.Tensor:
    return LinearAutoencoder().decode(spread * torch.randn(n, LATENT, generator=torch.Generator().manual_seed(seed)))


@pytest.mark.parametrize("spread", [0.8, 1.2])
def test_the_scan_finds_the_spread_the_images_were_drawn_with(spread):
    scan = temperature_scan(LinearAutoencoder(), images_at(spread), temperatures=(0.6, 0.8, 1.0, 1.2, 1.4, 1.6),
                            num_samples=1500)
    assert scan.best == spread
    best = scan.temperatures.index(spread)
    assert all(value > scan.mmd2[best] for i, value in enumerate(scan.mmd2) if abs(i - best) > 1)  # a clear valley
    assert scan.as_dict()["best"] == spread and scan.num_images == 1500


class ConditionalLinearAutoencoder(LinearAutoencoder):
    """Class y shifts every pixel by 0.2 * y; encoding with the wrong class shifts the codes by 4 units."""

    num_classes = 2

    def decode(self, z, labels=None):
        return super().decode(z) + 0.2 * labels.view(-1, 1, 1, 1)

    def encode(self, x, labels=None):
        return super().encode(x - 0.2 * labels.view(-1, 1, 1, 1))


def test_a_conditional_model_decodes_and_encodes_each_sample_with_its_class():
    model, generator = ConditionalLinearAutoencoder(), torch.Generator().manual_seed(2)
    labels = torch.randint(2, (1500,), generator=generator)
    images = model.decode(1.2 * torch.randn(1500, LATENT, generator=generator), labels)
    scan = temperature_scan(model, images, labels, temperatures=(0.6, 0.8, 1.0, 1.2, 1.4, 1.6), num_samples=1500)
    assert scan.best == 1.2


def test_images_of_another_size_than_the_models_are_refused_in_one_line():
    with pytest.raises(GvaeError, match=r"1 channel\(s\) at 4x4 px but the model \(linear\) makes 1 channel\(s\) "
                                        r"at 2x2"):
        temperature_scan(LinearAutoencoder(), torch.rand(10, 1, 4, 4), num_samples=10)


def test_a_conditional_model_needs_the_images_labels():
    model = ConditionalLinearAutoencoder()
    with pytest.raises(GvaeError, match="labels"):
        temperature_scan(model, images_at(1.0, n=10), labels=None, num_samples=10)


def test_cli_prints_the_scan_marks_the_best_and_writes_it_into_the_run_with_its_weights(monkeypatch, tmp_path):
    import gvae.evaluation.temperature
    import gvae.loading

    checkpoint = tmp_path / "run" / "checkpoints" / "step-00000010"
    checkpoint.mkdir(parents=True)
    (checkpoint / "ema.safetensors").write_bytes(b"weights")
    monkeypatch.setattr(gvae.loading, "load_trained", lambda source, ema=True: LoadedModel(
        LinearAutoencoder().eval(), None, checkpoint, checkpoint / "ema.safetensors"))
    monkeypatch.setattr(gvae.evaluation.temperature, "load_images", lambda spec, split, limit=None: (
        images_at(1.2)[:limit], torch.full((limit,), -1)))
    result = CliRunner().invoke(cli, ["eval", "temperature", str(tmp_path / "run"), "--data", "data/x",
                                      "--temperatures", "0.8,1.2,1.6", "--num-samples", "1000"])
    assert result.exit_code == 0, result.output
    assert "1.2" in next(line for line in result.output.splitlines() if "<- best" in line)
    assert "edge of the grid" not in result.output
    out = tmp_path / "elsewhere.json"
    edge = CliRunner().invoke(cli, ["eval", "temperature", "runs/x", "--data", "data/x", "--temperatures",
                                    "0.6,0.8,1.0", "--num-samples", "1000", "--out", str(out)])
    assert edge.exit_code == 0 and "1, is at the edge of the grid" in edge.output and json.loads(
        out.read_text())["best"] == 1.0
    doc = json.loads((tmp_path / "run" / "temperature.json").read_text())  # where gvae generate reads it
    assert doc["best"] == 1.2 and doc["temperatures"] == [0.8, 1.2, 1.6] and doc["split"] == "train"
    assert doc["weights_sha256"] == hashlib.sha256(b"weights").hexdigest() and doc["checkpoint"] == str(checkpoint)


@pytest.mark.parametrize("bad", ["1.0,x", "1.0,-0.5", "nan"])
def test_cli_refuses_a_bad_grid_before_loading_anything(bad):
    result = CliRunner().invoke(cli, ["eval", "temperature", "runs/missing", "--data", "d", "--temperatures", bad])
    assert result.exit_code == 2 and "--temperatures" in result.output
