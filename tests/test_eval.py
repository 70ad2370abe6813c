"""The eval runner on a tiny stand-in model: every metric, determinism, errors, and the CLI around it."""

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import gvae.evaluation.runner as ev
from gvae.cli import cli
from gvae.config import Recipe
from gvae.errors import GvaeError
from gvae.loading import EMA_WEIGHTS, LoadedModel
from gvae.metrics import resolve_features, save_classifier
from gvae.metrics.features import ClassifierShape, DomainClassifier

RES, LATENT = 16, 4


class TinyModel(nn.Module):
    """A linear decoder through a sigmoid, Gaussian pixels (sigma 0.1), and a rough linear encoder."""

    kind, latent_dim, resolution, channels = "tiny", LATENT, RES, 1

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = nn.Parameter(torch.randn(RES * RES, LATENT, generator=g), requires_grad=False)

    def encode(self, x):
        mu = torch.logit(x.flatten(1).clamp(0.01, 0.99)) @ torch.linalg.pinv(self.w).T
        return mu, torch.full_like(mu, -2.0)

    def decode(self, z):
        return torch.sigmoid(z @ self.w.T).view(-1, 1, RES, RES)

    def log_px_z(self, x, z):
        return torch.distributions.Normal(self.decode(z), 0.1).log_prob(x).flatten(1).sum(1)

    def sample(self, n, generator=None, temperature=1.0):
        return self.decode(torch.randn(n, LATENT, generator=generator) * temperature)


def serve(monkeypatch, model) -> None:
    """Make the eval runner load ``model`` from any source, as a checkpoint with a default recipe would be."""
    monkeypatch.setattr(ev, "load_trained", lambda source, ema=True, device="cpu": LoadedModel(
        model, Recipe(), Path(source), Path(source) / EMA_WEIGHTS))


@pytest.fixture(scope="module")
def model():
    return TinyModel().eval()


@pytest.fixture(scope="module")
def real(model):
    return model.sample(120, generator=torch.Generator().manual_seed(123))


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    path = tmp_path_factory.mktemp("features") / "random.safetensors"
    torch.manual_seed(0)
    save_classifier(DomainClassifier(ClassifierShape(1, RES, 3)).eval(), path)
    return resolve_features(path)


@pytest.fixture(scope="module")
def results(model, real, features):
    train = model.sample(200, generator=torch.Generator().manual_seed(7))
    unconditional = [name for name in ev.parse_metrics("all") if not ev.METRICS[name].needs_conditional]
    return ev.evaluate(model, real, train, unconditional, num_samples=100, iwae_k=8, seed=0,
                       features=features, msssim_pairs=50)


def test_every_metric_reports_value_std_and_n(results):
    expected = {"mmd2", "msssim_diversity", "recon_mse", "recon_psnr", "recon_ssim", "elbo", "elbo_bpd", "kl", "iwae",
                "iwae_bpd", "denoise_psnr_0.2", "denoise_ssim_0.2", "denoise_psnr_0.5", "denoise_ssim_0.5",
                "memorization", "fid", "kid", "isc", "precision", "recall", "class_tv"}
    assert set(results) == expected
    for name, entry in results.items():
        assert math.isfinite(entry["value"]), name
        assert entry["std"] is None or entry["std"] >= 0, name
        assert entry["n"] > 0 and entry["better"] in ("higher", "lower"), name
    json.dumps(results)  # results.json must serialise


def test_elbo_is_the_likelihood_term_less_the_kl_row(results):
    elbo, kl = results["elbo"], results["kl"]
    assert kl["value"] > 0
    assert elbo["value"] == pytest.approx(elbo["log_px_z"] - kl["value"], rel=1e-6)  # float32 per image


def test_values_agree_with_what_the_model_is(results):
    assert abs(results["mmd2"]["value"]) < 0.05  # samples and "real" images share a distribution
    assert results["iwae"]["value"] >= results["elbo"]["value"] - 3 * results["elbo"]["std"]
    assert results["iwae_bpd"]["value"] == pytest.approx(-results["iwae"]["value"] / (RES * RES * math.log(2)))
    assert results["memorization"]["value"] < 0.1  # fresh samples: about as near the training set as real images
    assert results["precision"]["n"] == 100 and results["fid"]["features"]["extractor"] == "gvae-domain"


def test_same_seed_same_results_other_seed_other_samples(model, real):
    run = {"metrics": ["mmd", "elbo"], "num_samples": 70, "iwae_k": 2}
    first = ev.evaluate(model, real, None, seed=1, **run)
    assert ev.evaluate(model, real, None, seed=1, **run) == first
    assert ev.evaluate(model, real, None, seed=2, **run)["mmd2"]["value"] != first["mmd2"]["value"]


def test_data_at_another_resolution_is_a_user_error(model):
    with pytest.raises(GvaeError, match="1 channel\\(s\\) at 32x32 px but the model"):
        ev.evaluate(model, torch.rand(10, 1, 32, 32), None, ["recon"], num_samples=10, iwae_k=1, seed=0)


def test_too_few_samples_for_a_metric_is_a_user_error(model, real):
    with pytest.raises(GvaeError, match="isc needs at least 10 samples"):
        ev.evaluate(model, real, None, ["isc"], num_samples=5, iwae_k=1, seed=0, features=None)
    with pytest.raises(GvaeError, match="memorization needs at least 100 held-out"):
        ev.evaluate(model, real[:50], real, ["memorization"], num_samples=5, iwae_k=1, seed=0)


def test_fidelity_metrics_without_a_feature_network_are_a_user_error(model, real):
    with pytest.raises(GvaeError, match="--feature-weights"):
        ev.evaluate(model, real, None, ["fid"], num_samples=20, iwae_k=1, seed=0)


def test_metric_names_are_checked_and_kept_in_registry_order():
    assert ev.parse_metrics("iwae,mmd") == ["mmd", "iwae"]
    assert ev.parse_metrics("all") == [name for name in ev.METRICS if name != "utility"]
    assert ev.parse_metrics("utility,all") == list(ev.METRICS)
    with pytest.raises(GvaeError, match="unknown fdi"):
        ev.parse_metrics("fdi")


def test_cli_help_lists_every_registered_metric():
    from gvae.cli.evaluate import METRIC_NAMES

    assert sorted(METRIC_NAMES.split(", ")) == sorted(ev.METRICS)


def test_cli_writes_results_json_and_prints_a_table(monkeypatch, tmp_path, model, real):
    serve(monkeypatch, model)
    monkeypatch.setattr(ev, "load_images", lambda spec, split="val", limit=None: (real[:limit], torch.zeros(0)))
    out = tmp_path / "results.json"
    result = CliRunner().invoke(cli, ["eval", "runs/x", "--data", "data/x", "--num-samples", "30", "--iwae-k", "2",
                                      "--msssim-pairs", "20", "--temperature", "1.2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert set(doc) == {"checkpoint", "data", "protocol", "metrics", "skipped"}
    assert doc["protocol"]["num_samples"] == 30 and doc["protocol"]["iwae_k"] == 2 and doc["data"] == "data/x"
    assert doc["protocol"]["temperature"] == 1.2
    assert {"fid", "kid", "isc", "prc", "classes"} <= set(doc["skipped"])  # no feature weights: left out, said why
    assert "elbo_bpd" in result.output and "bits/dim" in result.output


def test_default_metrics_on_a_small_held_out_set_compute_what_they_can(monkeypatch, tmp_path, model, real):
    """40 held-out images: memorization (which needs 100) is skipped with its reason, the rest computed."""
    serve(monkeypatch, model)
    monkeypatch.setattr(ev, "load_images", lambda spec, split="val", limit=None: (real[:40], torch.zeros(0)))
    results = ev.run_evaluation("runs/x", ev.Protocol(data="d", num_samples=30, iwae_k=2, msssim_pairs=20,
                                                      train_data="t"))
    assert results["skipped"]["memorization"] == "needs at least 100 held-out images, the data has 40"
    assert results["skipped"]["label_share"] == "needs a class-conditional model"
    assert {"mmd2", "elbo", "recon_mse"} <= set(results["metrics"])


def test_cli_bad_checkpoint_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "missing"), "--data", "x"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "does not exist" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_unknown_metric_is_a_one_line_error():
    result = CliRunner().invoke(cli, ["eval", "runs/x", "--data", "x", "--metrics", "fid,nope"])
    assert result.exit_code == 1 and "unknown nope" in result.output


def test_an_evaluation_that_would_not_fit_in_memory_is_refused_before_drawing(monkeypatch, tmp_path, model):
    """1,000 + 10,000 + 20,000 images of 1x16x16 float32 are 0.03 GiB: over a 0.01 GiB bound, refused."""
    serve(monkeypatch, model)
    monkeypatch.setattr(ev, "load_images", lambda *a, **k: pytest.fail("images were read"))
    result = CliRunner().invoke(cli, ["eval", "runs/x", "--data", "d", "--max-memory", "0.01",
                                      "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 1 and "holds up to 0.0296 GiB" in result.output and "--max-memory 0.01 GiB" in result.output


@pytest.mark.parametrize(("metrics", "held"), [("fid", "0.0105 GiB of images in memory (11,000 images"), ("recon", None)])
def test_the_memory_bound_counts_only_the_images_the_metrics_read(monkeypatch, tmp_path, model, metrics, held):
    """fid reads 1,000 samples and 10,000 held-out images (0.0105 GiB of 1x16x16 float32), no training images;
    recon only the held-out ones (0.0095 GiB), which fit in 0.01 GiB and are read."""
    def load_images(*args, **kwargs):
        raise GvaeError("images were read")

    serve(monkeypatch, model)
    monkeypatch.setattr(ev, "load_images", load_images)
    result = CliRunner().invoke(cli, ["eval", "runs/x", "--data", "d", "--metrics", metrics, "--max-memory", "0.01",
                                      "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 1
    assert (f"holds up to {held}" if held else "images were read") in result.output, result.output


class BrightnessClassifier(nn.Module):
    """Class 1 for images whose mean is at least 0.5, class 0 otherwise: a classifier with a known answer."""

    shape = ClassifierShape(1, RES, 2)

    def forward(self, x):
        bright = (x.flatten(1).mean(1) >= 0.5).float()
        return torch.stack([1 - bright, bright], dim=1)


def test_class_shares_are_those_of_a_known_classifier_and_their_distance_is_total_variation(monkeypatch, model,
                                                                                             real, features):
    monkeypatch.setattr("gvae.metrics.load_classifier", lambda path: BrightnessClassifier())
    labels = (real.flatten(1).mean(1) >= 0.5).long()
    entry = ev.evaluate(model, real, None, ["classes"], num_samples=60, iwae_k=1, seed=3, features=features,
                        real_labels=labels)["class_tv"]
    generated = model.sample(60, generator=ev.block_generator(3, ev._SAMPLES, 0))  # one block
    bright = float((generated.flatten(1).mean(1) >= 0.5).double().mean())
    real_bright = float(labels.double().mean())
    assert entry["generated_shares"] == pytest.approx([1 - bright, bright])
    assert entry["real_shares"] == pytest.approx([1 - real_bright, real_bright])
    assert entry["value"] == pytest.approx(abs(bright - real_bright))  # two classes: TV = |p1 - q1|
    assert entry["classifier_accuracy"] == 1.0 and entry["n"] == 60 and entry["better"] == "lower"


def test_a_total_variation_of_disjoint_mixes_is_one_and_of_equal_ones_zero():
    from gvae.metrics.classes import predicted_shares, total_variation

    images = torch.cat([torch.full((30, 1, 4, 4), 0.1), torch.full((10, 1, 4, 4), 0.9)])
    shares = predicted_shares(BrightnessClassifier(), images, 2, batch_size=7)
    assert shares.tolist() == [0.75, 0.25]
    assert total_variation(shares, torch.tensor([0.5, 0.5])) == pytest.approx(0.25)
    assert total_variation(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])) == 1.0
    assert total_variation(shares, shares) == 0.0


def test_the_classes_metric_refuses_inception_features(model, real, tmp_path):
    from gvae.metrics.fidelity import INCEPTION_NAME, Features

    with pytest.raises(GvaeError, match="not a classifier of the data's classes"):
        ev.evaluate(model, real, None, ["classes"], num_samples=10, iwae_k=1, seed=0,
                    features=Features(INCEPTION_NAME, str(tmp_path / "inception.pth")))


class Additive(nn.Module):
    """A conditional decoder G(z, y) = [a * z, b * onehot(y)] (a flat "image"): its label share has a closed form."""

    kind, latent_dim, resolution, channels, num_classes = "additive", LATENT, RES, 1, 3

    def __init__(self, a: float, b: float):
        super().__init__()
        self.a, self.b = a, b
        self.anchor = nn.Parameter(torch.zeros(1), requires_grad=False)  # places it on a device

    def decode(self, z, labels):
        return torch.cat([self.a * z, self.b * nn.functional.one_hot(labels, self.num_classes).to(z.dtype)], 1)

    def sample(self, n, generator=None, temperature=1.0, labels=None):
        return self.decode(temperature * torch.randn(n, LATENT, generator=generator), labels)


@pytest.mark.parametrize(("a", "b"), [(1.0, 0.0), (0.0, 2.0), (1.0, 0.5), (0.0, 0.0)])
def test_the_label_share_of_an_additive_decoder_is_its_closed_form(a, b):
    """Changing the label moves b * (e_y - e_y'), squared 2 b^2, for every sample; changing the latent to the
    next sample's moves a * (z_i - z_{i+1}): share = 2 b^2 / (2 b^2 + a^2 mean |z_i - z_{i+1}|^2)."""
    from gvae.metrics.classes import label_share

    g = torch.Generator().manual_seed(0)
    z, labels = torch.randn(50, LATENT, generator=g), torch.randint(3, (50,), generator=g)
    latent_part = a ** 2 * float(sum((z[i] - z[(i + 1) % 50]).square().sum() for i in range(50))) / 50
    expected = 2 * b ** 2 / (2 * b ** 2 + latent_part) if a or b else 0.0
    share = label_share(Additive(a, b).decode, z, labels, 3, g, batch_size=7)
    assert share == pytest.approx(expected, rel=1e-6)  # the decoder's float32
    assert (share == 0) == (b == 0) and (share == 1) == (a == 0 and b != 0)
    with pytest.raises(ValueError, match="2 or more classes"):
        label_share(Additive(a, b).decode, z, labels, 1, g)


def test_the_label_share_metric_is_for_conditional_models(model, real):
    labels = torch.zeros(len(real), dtype=torch.int64)
    entry = ev.evaluate(Additive(0.0, 1.0), real, None, ["label_share"], num_samples=40, iwae_k=1, seed=0,
                        real_labels=labels, temperature=0.7)["label_share"]
    assert entry["value"] == 1.0 and entry["n"] == 40 and entry["temperature"] == 0.7 and entry["better"] == "higher"
    with pytest.raises(GvaeError, match="label_share needs a class-conditional model"):
        ev.evaluate(model, real, None, ["label_share"], num_samples=40, iwae_k=1, seed=0)


class LabelledBrightness(nn.Module):
    """A conditional stand-in whose sample of label 1 is bright and of label 0 dark, except that every third
    sample (by position in its call) comes out dark whatever its label: agreement known by counting."""

    num_classes, channels, resolution, kind = 2, 1, RES, "stub"

    def sample(self, n, generator=None, temperature=1.0, labels=None):
        bright = (labels == 1) & (torch.arange(n) % 3 != 0)
        return torch.where(bright, 0.9, 0.1).float().view(n, 1, 1, 1).expand(n, 1, RES, RES).clone()


def test_a_conditional_models_label_agreement_is_the_share_of_samples_classified_as_their_label(monkeypatch,
                                                                                              features):
    monkeypatch.setattr("gvae.metrics.load_classifier", lambda path: BrightnessClassifier())
    real = torch.cat([torch.full((30, 1, RES, RES), 0.1), torch.full((10, 1, RES, RES), 0.9)])
    labels = torch.cat([torch.zeros(30), torch.ones(10)]).long()
    results = ev.evaluate(LabelledBrightness(), real, None, ["classes"], num_samples=60, iwae_k=1, seed=3,
                          features=features, real_labels=labels)
    drawn = labels[torch.randint(len(labels), (60,), generator=ev.block_generator(3, ev._LABELS, 0))]  # one block
    ones = drawn == 1
    missed = ones & (torch.arange(60) % 3 == 0)  # label 1 drawn, dark sample: classified 0
    entry = results["class_agreement"]
    assert entry["value"] == pytest.approx(1 - float(missed.sum()) / 60)
    assert entry["per_label"] == pytest.approx([1.0, 1 - float(missed.sum()) / float(ones.sum())])
    assert entry["classifier_accuracy"] == 1.0 and entry["better"] == "higher" and entry["n"] == 60
    assert results["class_tv"]["generated_shares"][1] == pytest.approx(float((ones & ~missed).sum()) / 60)


def test_label_agreement_leaves_out_a_label_no_sample_has():
    from gvae.metrics.classes import label_agreement

    overall, per_label = label_agreement(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 4)
    assert overall == 0.75 and per_label == [1.0, 1.0, 0.5, None]
