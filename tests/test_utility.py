"""Downstream utility: known answers on a made-up task whose classes are faint templates under heavy noise.

With 2 real images per class a classifier guesses poorly (~0.6 held-out accuracy); with 40 it nearly knows the
templates (~0.9). So more images from the same distribution must show as a clear gain, noise or wrong labels
as none, and any leak of the held-out images into training as an impossible score.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gvae.evaluate as ev
from gvae.errors import GvaeError
from gvae.metrics.utility import LabelledImages, UtilitySettings, per_class_accuracy, utility_scores
from gvae.utility import model_source

CLASSES, RES = 4, 16
NAMES = ("T-shirt/top", "Trouser", "Bag", "Ankle boot")
FAST = {"steps": 60, "batch_size": 32, "synthetic_per_class": 40}


def templates() -> torch.Tensor:
    """One smooth random pattern per class [CLASSES, 1, RES, RES], zero mean and unit std."""
    t = F.avg_pool2d(torch.rand(CLASSES, 1, RES, RES, generator=torch.Generator().manual_seed(1234)), 3, 1, 1)
    return (t - t.mean((1, 2, 3), keepdim=True)) / t.std((1, 2, 3), keepdim=True)


def draw(labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Images [N, 1, RES, RES] of the given classes: 0.5 + 0.12 * template + 0.36 * N(0, 1), clamped to [0, 1]."""
    noise = torch.randn(len(labels), 1, RES, RES, generator=generator)
    return (0.5 + 0.12 * templates()[labels] + 0.36 * noise).clamp(0, 1)


def make(per_class: int, seed: int, names=None) -> LabelledImages:
    """``per_class`` images of every class, labels 0, 1, 2, 3, 0, 1, ..."""
    labels = torch.arange(CLASSES).repeat(per_class)
    return LabelledImages(draw(labels, torch.Generator().manual_seed(seed)), labels, names)


@pytest.fixture(scope="module")
def train():
    return make(40, seed=1)


@pytest.fixture(scope="module")
def heldout():
    return make(100, seed=2)


def fixed(images: LabelledImages):
    """A synthetic source that is one set whatever the repetition."""
    return lambda real_images, real_labels, seed: images


def settings(**changes) -> UtilitySettings:
    return UtilitySettings(**{"ks": (2,), "seeds": 3, **FAST, **changes})


@pytest.fixture(scope="module")
def more_real(train, heldout):
    """Synthetic images that are in fact 200 more real images per class."""
    return utility_scores(train, heldout, settings(ks=(2, 40)), fixed(make(200, seed=3)))


def test_more_real_images_as_synthetic_give_a_clear_gain(more_real):
    gain = more_real["utility_gain_k2"]
    assert gain["value"] > 0.2 and gain["value"] > 5 * gain["std"]
    assert more_real["utility_gain_vs_classic_k2"]["value"] > 0.15


def test_more_real_images_as_synthetic_approach_the_all_real_accuracy(more_real):
    all_real = more_real["utility_real_k40"]["value"]
    assert more_real["utility_real_k2"]["value"] < all_real - 0.2  # the task needs more than 2 per class
    assert more_real["utility_synthetic_k2"]["value"] > all_real - 0.05
    assert more_real["utility_cas"]["value"] > all_real - 0.05


def test_gain_is_the_paired_difference_with_its_standard_error(more_real):
    mixed, real, gain = (more_real[f"utility_{v}_k2"] for v in ("synthetic", "real", "gain"))
    diffs = [c - a for c, a in zip(mixed["per_seed"], real["per_seed"], strict=True)]
    assert gain["per_seed"] == pytest.approx(diffs)
    assert gain["value"] == pytest.approx(np.mean(diffs))
    assert gain["std"] == pytest.approx(np.std(diffs, ddof=1) / math.sqrt(3))
    assert real["std"] == pytest.approx(np.std(real["per_seed"], ddof=1)) and real["n"] == 3


def test_noise_with_random_labels_scores_chance_and_gains_nothing(train, heldout):
    g = torch.Generator().manual_seed(5)
    noise = LabelledImages(torch.rand(400, 1, RES, RES, generator=g), torch.randint(0, CLASSES, (400,), generator=g))
    scores = utility_scores(train, heldout, settings(), fixed(noise))
    assert abs(scores["utility_cas"]["value"] - 1 / CLASSES) < 0.1
    assert scores["utility_gain_k2"]["value"] < 0.03


def test_real_images_with_shuffled_labels_score_chance(train, heldout):
    images = make(100, seed=4)
    shuffled = images.labels[torch.randperm(len(images.labels), generator=torch.Generator().manual_seed(6))]
    scores = utility_scores(train, heldout, settings(seeds=2), fixed(LabelledImages(images.images, shuffled)))
    assert abs(scores["utility_cas"]["value"] - 1 / CLASSES) < 0.1


def test_same_seeds_give_identical_numbers_another_seed_other_numbers(train, heldout):
    extra = fixed(make(20, seed=3))
    first = utility_scores(train, heldout, settings(seeds=2), extra)
    assert utility_scores(train, heldout, settings(seeds=2), extra) == first
    other = utility_scores(train, heldout, settings(seeds=1, seed=1), extra)
    assert other["utility_real_k2"]["value"] != first["utility_real_k2"]["per_seed"][0]


def test_per_class_accuracy_counts_each_class_on_its_own():
    predictions, labels = torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([0, 1, 1, 2, 2, 0])
    assert per_class_accuracy(predictions, labels, 4) == [0.5, 0.5, 1.0, None]


def test_reported_per_class_accuracy_agrees_with_the_overall_accuracy(train):
    unbalanced = LabelledImages(make(60, seed=2).images[:150], make(60, seed=2).labels[:150])  # 38/38/37/37
    entry = utility_scores(train, unbalanced, settings(seeds=1))["utility_real_k2"]
    counts = torch.bincount(unbalanced.labels).tolist()
    assert entry["value"] == pytest.approx(sum(a * n for a, n in zip(entry["per_class"], counts, strict=True)) / 150)
    assert len(entry["per_class"]) == CLASSES


def test_held_out_images_are_never_trained_on(train, heldout):
    relabelled = LabelledImages(heldout.images, (heldout.labels + 1) % CLASSES)  # every class named as another
    scores = utility_scores(train, relabelled, settings(ks=(40,), seeds=1), fixed(make(50, seed=3)))
    for name in ("utility_real_k40", "utility_classic_k40", "utility_synthetic_k40", "utility_cas"):
        assert scores[name]["value"] < 0.1, name  # trained on the held-out labels, it would score high


def test_unlabelled_synthetic_images_are_a_user_error(train, heldout):
    unlabelled = LabelledImages(torch.rand(8, 1, RES, RES), torch.full((8,), -1))
    with pytest.raises(GvaeError, match="synthetic images have no labels"):
        utility_scores(train, heldout, settings(seeds=1), fixed(unlabelled))


def test_unlabelled_data_is_a_user_error(heldout):
    unlabelled = LabelledImages(torch.rand(8, 1, RES, RES), torch.full((8,), -1))
    with pytest.raises(GvaeError, match="training images of --data have none"):
        utility_scores(unlabelled, heldout, settings(seeds=1))


def test_synthetic_classes_that_do_not_match_are_a_user_error(train, heldout):
    named = make(40, seed=1, names=NAMES)
    other = LabelledImages(torch.rand(8, 1, RES, RES), torch.zeros(8, dtype=torch.long), ("a", "b", "c", "d"))
    with pytest.raises(GvaeError, match="classes do not match"):
        utility_scores(named, heldout, settings(seeds=1), fixed(other))
    beyond = LabelledImages(torch.rand(8, 1, RES, RES), torch.full((8,), CLASSES))
    with pytest.raises(GvaeError, match="label 4, --data has 4 classes"):
        utility_scores(train, heldout, settings(seeds=1), fixed(beyond))


def test_k_larger_than_a_class_is_a_user_error(train, heldout):
    with pytest.raises(GvaeError, match="K = 41 real images per class, but class 0 has only 40"):
        utility_scores(train, heldout, settings(ks=(2, 41)))


def test_settings_are_validated_naming_the_setting():
    with pytest.raises(GvaeError, match="utility seeds must be at least 1"):
        UtilitySettings(seeds=0)
    with pytest.raises(GvaeError, match="utility mix_ratio"):
        UtilitySettings(mix_ratio=0.0)


class IdentityCoder(torch.nn.Module):
    """encode -> (the pixels, log-variance -30): a posterior variation decodes to its source image."""

    kind, channels, resolution, latent_dim = "stand-in", 1, RES, RES * RES

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def encode(self, x):
        return x.flatten(1), torch.full_like(x.flatten(1), -30.0)

    def decode(self, z):
        return z.view(-1, 1, RES, RES)


class PerfectSampler(IdentityCoder):
    """A conditional model that samples the data distribution of each class exactly; records its calls."""

    num_classes = CLASSES

    def __init__(self):
        super().__init__()
        self.asked: list[torch.Tensor] = []

    def sample(self, n, generator=None, temperature=1.0, labels=None):
        self.asked.append(labels)
        return draw(labels, generator)


def test_an_unconditional_model_varies_the_k_real_images_and_copies_their_labels(train):
    images, labels = train.images[:8], train.labels[:8]  # 2 per class: ceil(5 / 2) = 3 variations of each
    made = model_source(IdentityCoder(), settings(synthetic_per_class=5))(images, labels, 0)
    assert torch.equal(made.labels, labels.repeat_interleave(3))
    assert torch.allclose(made.images, images.repeat_interleave(3, 0), atol=0.5 / 255)  # rounded to 8 bits


def test_a_conditional_model_is_asked_for_every_class_equally(train):
    model = PerfectSampler()
    made = model_source(model, settings(synthetic_per_class=20))(train.images[:8], train.labels[:8], 0)
    asked = torch.cat(model.asked)
    assert torch.bincount(asked).tolist() == [20] * CLASSES and torch.equal(made.labels, asked)


def test_metrics_utility_scores_a_perfect_conditional_model_like_plenty_of_real_images(train, heldout, more_real):
    scores = ev.evaluate(PerfectSampler(), heldout.images, train.images, ["utility"], num_samples=1, iwae_k=1,
                         seed=0, real_labels=heldout.labels, train_labels=train.labels, utility=settings(seeds=1))
    assert scores["utility_cas"]["value"] > more_real["utility_real_k40"]["value"] - 0.05
    assert set(scores) == {"utility_cas", *(f"utility_{v}_k2" for v in ("real", "classic", "synthetic", "gain",
                                                                          "gain_vs_classic"))}
