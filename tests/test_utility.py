"""Downstream utility: known answers on a made-up task whose classes are faint templates under heavy noise.

With 2 real images per class a classifier guesses poorly (~0.6 held-out accuracy); with 40 it nearly knows the
templates (~0.9). So more images from the same distribution must show as a clear gain, noise or wrong labels
as none, and any leak of the held-out images into training as an impossible score.
"""

import json
import math
from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

import gvae.evaluation.runner as ev
from gvae.cli import cli
from gvae.data import encode_png, write_shard
from gvae.errors import GvaeError
from gvae.evaluation import leaderboard
from gvae.evaluation.leaderboard import build_leaderboard, cache_path, load_suite
from gvae.evaluation.protocol import Protocol
from gvae.evaluation.results import write_results
from gvae.evaluation.utility import load_real, model_source, read_synthetic
from gvae.metrics.utility import (
    LabelledImages,
    UtilitySettings,
    class_subsets,
    per_class_accuracy,
    utility_scores,
)
from tests.test_eval import serve

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


def test_the_k_real_images_per_class_are_balanced_and_chosen_by_the_seed(train):
    def pick(seed):
        return class_subsets(train, 5, CLASSES, torch.Generator().manual_seed(seed))

    subsets = pick(0)
    assert [train.labels[s].tolist() for s in subsets] == [[c] * 5 for c in range(CLASSES)]
    assert all(torch.equal(a, b) for a, b in zip(subsets, pick(0), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(subsets, pick(1), strict=True))


def test_k_larger_than_a_class_is_a_user_error(train, heldout):
    with pytest.raises(GvaeError, match="K = 41 real images per class, but class 0 has only 40"):
        utility_scores(train, heldout, settings(ks=(2, 41)))


def test_settings_are_validated_naming_the_setting():
    with pytest.raises(GvaeError, match="utility seeds must be at least 1"):
        UtilitySettings(seeds=0)
    for ratio in (0.0, math.nan, math.inf):
        with pytest.raises(GvaeError, match="utility mix_ratio must be a finite number above 0"):
            UtilitySettings(mix_ratio=ratio)


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


# --- sets on disk, the command, the leaderboard -------------------------------------------------------------


def samples(images: LabelledImages, with_labels: bool = True) -> list[dict]:
    """WebDataset samples (8-bit PNG, cls) of ``images``, keyed by their index."""
    pixels = (images.images[:, 0] * 255).round().to(torch.uint8).numpy()
    return [{"__key__": f"{i:08d}", "png": encode_png(p), **({"cls": int(y)} if with_labels else {})}
            for i, (p, y) in enumerate(zip(pixels, images.labels.tolist(), strict=True))]


def packed(directory, splits: dict[str, LabelledImages], names=NAMES, with_labels: bool = True) -> str:
    """A packed-dataset directory: one shard per split and a dataset.json naming the classes."""
    directory.mkdir(parents=True)
    channels, resolution = next(iter(splits.values())).images.shape[1:3]
    info = {"label_names": list(names) if names else None, "resolution": resolution, "channels": channels,
            "splits": {}}
    for split, images in splits.items():
        write_shard(directory / f"{split}-000000.tar", samples(images, with_labels))
        info["splits"][split] = {"count": len(images.labels),
                                 "shards": [{"name": f"{split}-000000.tar", "count": len(images.labels)}]}
    (directory / "dataset.json").write_text(json.dumps(info))
    return str(directory)


def test_generated_shards_png_folders_and_class_folders_read_alike(tmp_path):
    images = make(2, seed=7)
    shards = read_synthetic(packed(tmp_path / "wds", {"train": images}), NAMES)
    png = tmp_path / "png" / "000000"
    png.mkdir(parents=True)
    lines = []
    for sample in samples(images):
        (png / f"{sample['__key__']}.png").write_bytes(sample["png"])
        lines.append(json.dumps({"__key__": sample["__key__"], "cls": sample["cls"], "json": {}}) + "\n")
    (png / "samples.jsonl").write_text("".join(lines))
    folders = tmp_path / "imagefolder"
    for sample in samples(images):  # folder names as a file system allows them: T-shirt/top -> T-shirt_top
        (folders / NAMES[sample["cls"]].replace("/", "_")).mkdir(parents=True, exist_ok=True)
        (folders / NAMES[sample["cls"]].replace("/", "_") / f"{sample['__key__']}.png").write_bytes(sample["png"])
    by_png, by_folder = read_synthetic(str(png.parent)), read_synthetic(str(folders), NAMES)
    assert shards.class_names == NAMES
    assert torch.allclose(shards.images, images.images, atol=0.5 / 255) and torch.equal(shards.labels, images.labels)
    assert torch.equal(by_png.images, shards.images) and torch.equal(by_png.labels, shards.labels)
    def by_class(data: LabelledImages):  # class folders are read folder by folder
        order = torch.argsort(data.labels, stable=True)
        return data.images[order], data.labels[order]

    assert all(torch.equal(a, b) for a, b in zip(by_class(by_folder), by_class(shards), strict=True))


def test_a_class_folder_that_names_no_class_of_the_data_is_a_user_error(tmp_path):
    (tmp_path / "set" / "Sweater").mkdir(parents=True)
    (tmp_path / "set" / "Sweater" / "0.png").write_bytes(samples(make(1, seed=7))[0]["png"])
    with pytest.raises(GvaeError, match="classes do not match: the synthetic image folder 'Sweater'"):
        read_synthetic(str(tmp_path / "set"), NAMES)


def test_held_out_shards_that_would_also_train_are_refused(tmp_path):
    data = packed(tmp_path / "data", {"train": make(2, seed=1), "val": make(2, seed=2)})
    with pytest.raises(GvaeError, match="shard pattern, which has no train and val splits"):
        load_real(f"{data}/val-000000.tar")
    with pytest.raises(GvaeError, match="share 1 shard"):
        load_real(f"{data}/val-000000.tar", train_data=f"{data}/val-000000.tar")
    train, heldout = load_real(f"{data}/val-000000.tar", train_data=f"{data}/train-000000.tar")
    assert len(train.labels) == len(heldout.labels) == 8


@pytest.fixture(scope="module")
def data_and_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("utility")
    data = packed(root / "data", {"train": make(10, seed=1), "val": make(20, seed=2)})
    return data, packed(root / "aug", {"train": make(10, seed=3)})


def test_cli_eval_utility_writes_results_json_and_prints_a_table(tmp_path, data_and_set):
    data, synthetic = data_and_set
    out = tmp_path / "utility.json"
    result = CliRunner().invoke(cli, ["eval", "utility", "--synthetic", synthetic, "--data", data, "--k", "2,5",
                                      "--seeds", "2", "--steps", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["synthetic"] == synthetic and doc["protocol"]["ks"] == [2, 5] and doc["protocol"]["seeds"] == 2
    assert {"utility_cas", "utility_gain_k2", "utility_gain_vs_classic_k5"} <= set(doc["metrics"])
    assert doc["metrics"]["utility_real_k2"]["class_names"] == list(NAMES)
    assert "utility_gain_k5" in result.output


def test_cli_eval_utility_on_an_unlabelled_set_is_a_one_line_error(tmp_path, data_and_set):
    data, _ = data_and_set
    unlabelled = packed(tmp_path / "aug", {"train": make(2, seed=3)}, with_labels=False)
    result = CliRunner().invoke(cli, ["eval", "utility", "--synthetic", unlabelled, "--data", data, "--k", "2",
                                      "--seeds", "1", "--steps", "5", "--out", str(tmp_path / "u.json")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: the synthetic images have no labels")
    assert len(result.output.strip().splitlines()) == 1


def test_utility_numbers_are_rows_of_the_leaderboard(tmp_path, train, heldout):
    suite = tmp_path / "suite.yaml"
    suite.write_text(json.dumps({"name": "toy", "entries": [{"name": "GVAE", "runs": [str(tmp_path / "run")]}],
                                 "protocol": {"data": "data/toy", "metrics": "utility", "utility_k": [2],
                                              "utility_seeds": 2}}))
    (tmp_path / "run").mkdir()

    def evaluate_run(run, protocol):
        source = model_source(PerfectSampler(), protocol.utility_settings())
        scores = utility_scores(train, heldout, UtilitySettings(**{**vars(protocol.utility_settings()), **FAST}),
                                source)
        return {"checkpoint": run, "protocol": asdict(protocol), "metrics": scores}

    board = build_leaderboard(load_suite(suite), tmp_path / "board", evaluate_run=evaluate_run).read_text()
    for name in ("utility_cas", "utility_real_k2", "utility_classic_k2", "utility_gain_k2",
                 "utility_gain_vs_classic_k2"):
        assert f"| {name} (accuracy) ↑ | " in board
    assert "utility_k=[2]" in board


def test_results_cached_before_the_utility_keys_existed_are_still_reused(tmp_path):
    protocol = Protocol(data="data/toy", metrics="mmd")
    older = {k: v for k, v in asdict(protocol).items() if not k.startswith("utility_")}
    cached = {"checkpoint": "runs/gone", "protocol": older, "metrics": {}}
    write_results(cached, cache_path(tmp_path, "runs/gone", 0))
    assert leaderboard._cached(cache_path(tmp_path, "runs/gone", 0), "runs/gone", protocol) == cached
    assert leaderboard._cached(cache_path(tmp_path, "runs/gone", 0), "runs/gone",
                               Protocol(data="data/toy", metrics="mmd", utility_seeds=5)) is None


def test_shipped_utility_suite_measures_the_fmnist_small_runs_at_k_10_and_100():
    suite, small = load_suite("eval/suites/fmnist-small-utility.yaml"), load_suite("eval/suites/fmnist-small.yaml")
    assert [e.runs for e in suite.entries] == [e.runs for e in small.entries]
    protocol = suite.protocol_for(0)
    assert ev.parse_metrics(protocol.metrics) == ["utility"] and protocol.utility_settings().ks == (10, 100)


def test_cli_eval_run_metrics_utility_scores_the_models_own_variations(monkeypatch, tmp_path, data_and_set):
    data, _ = data_and_set
    serve(monkeypatch, IdentityCoder().eval())  # as load_trained returns models
    out = tmp_path / "results.json"
    result = CliRunner().invoke(cli, ["eval", "runs/x", "--data", data, "--metrics", "utility", "--utility-k", "2",
                                      "--utility-seeds", "1", "--utility-steps", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["protocol"]["utility_k"] == [2] and doc["protocol"]["utility_steps"] == 20
    assert doc["protocol"]["evaluated"] == ["utility"]
    mixed = doc["metrics"]["utility_synthetic_k2"]
    assert mixed["n_synthetic"] == 250 * 2 * CLASSES  # ceil(500 / 2) variations of each real image
    assert mixed["class_names"] == list(NAMES) and len(mixed["per_class"]) == CLASSES
