"""The torch-fidelity bridge with a local feature extractor (the domain classifier), never a download."""

import pytest
import torch

from gvae.errors import GvaeError
from gvae.metrics import (
    fidelity_metrics,
    load_classifier,
    resolve_features,
    save_classifier,
    train_classifier,
)
from gvae.metrics.features import accuracy
from gvae.metrics.fidelity import ImageTensorDataset


def stripes(n, seed, shift=0.0):
    """Two classes of 28 px grey images: horizontal (0) or vertical (1) stripes with noise; labels [n]."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    phase = torch.rand(n, 1, 1, generator=g) * 6.28
    coords = torch.arange(28.0)
    wave = torch.sin(coords.view(1, 28, 1) + phase).expand(n, 28, 28)
    images = torch.where(labels.view(n, 1, 1) == 0, wave, wave.transpose(1, 2)) * 0.3 + 0.5
    images = images + 0.05 * torch.randn(n, 28, 28, generator=g) + shift
    return images.clamp(0, 1).unsqueeze(1), labels


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    images, labels = stripes(160, seed=0)
    path = tmp_path_factory.mktemp("features") / "stripes.safetensors"
    save_classifier(train_classifier(images, labels, epochs=2, batch_size=32), path)
    return resolve_features(path)


def test_classifier_learns_the_domain_and_survives_a_round_trip(features):
    images, labels = stripes(200, seed=1)
    net = load_classifier(features.weights_path)
    assert accuracy(net, images, labels) > 0.9


def test_images_reach_torch_fidelity_as_uint8_rgb():
    item = ImageTensorDataset(torch.full((2, 1, 20, 24), 0.5))[1]
    assert item.dtype == torch.uint8 and item.shape == (3, 20, 24) and item.unique().tolist() == [128]


def test_fid_and_kid_of_a_set_with_itself_are_zero(features):
    images, _ = stripes(100, seed=2)
    result = fidelity_metrics(images, images, metrics=("fid", "kid", "prc"), features=features,
                              kid_subsets=10)
    assert result["fid"] == pytest.approx(0.0, abs=1e-3)
    assert result["kid"] == pytest.approx(0.0, abs=0.01)  # unbiased: about -(mean self-similarity) / N
    assert result["precision"] == result["recall"] == 1.0


def test_kid_spread_reflects_the_sample_even_when_the_set_is_smaller_than_a_subset(features):
    real, _ = stripes(100, seed=3)
    generated = stripes(100, seed=4, shift=0.1)[0]
    result = fidelity_metrics(generated, real, metrics=("kid",), features=features, kid_subsets=20)
    # 50-row subsets of 100 rows: they differ, so KID varies between them by a fraction of its size
    assert 0.01 * abs(result["kid"]) < result["kid_std"] < abs(result["kid"])


def test_fid_and_kid_grow_with_a_brightness_shift(features):
    real, _ = stripes(100, seed=3)
    results = [fidelity_metrics(stripes(100, seed=4, shift=s)[0], real, metrics=("fid", "kid"), features=features,
                                kid_subsets=10)
               for s in (0.0, 0.1, 0.3)]
    fids, kids = [r["fid"] for r in results], [r["kid"] for r in results]
    assert fids == sorted(fids) and fids[-1] > 10 * fids[0]
    assert kids == sorted(kids) and kids[-1] > 10 * abs(kids[0])


def test_inception_score_is_between_one_and_the_number_of_classes(features):
    result = fidelity_metrics(stripes(100, seed=5)[0], stripes(100, seed=6)[0], metrics=("isc",), features=features)
    assert 1.0 <= result["isc"] <= 2.0 and result["isc_std"] >= 0


def test_inception_without_local_weights_is_refused_not_downloaded(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(GvaeError, match="--feature-weights"):
        resolve_features(None)


def test_a_weights_file_that_is_not_a_classifier_is_a_user_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(GvaeError, match="not a feature classifier"):
        load_classifier(bad)


def test_too_few_images_for_the_inception_score_is_a_user_error(features):
    with pytest.raises(GvaeError, match="isc needs at least 10"):
        fidelity_metrics(stripes(5, seed=7)[0], stripes(50, seed=8)[0], metrics=("isc",), features=features)
