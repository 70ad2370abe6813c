"""Class-conditional models: the projection discriminator, labels through training, checkpoints, generation,
evaluation and reports.

One tiny conditional GVAE is trained per module on two trivially different classes made here: "bright" images
(pixels 190-254) and "dark" ones (0-64). Its KL weight is so large that the latent carries nothing, so only
the label can tell the generator which class to draw: brightness then says whether the label arrived.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file, save_file

import gvae
import gvae.metrics.features
from gvae import loading as ckpt
from gvae.cli import cli
from gvae.config import load_recipe
from gvae.data import PackConfig, iter_samples, load_images, pack
from gvae.errors import GvaeError
from gvae.evaluation.runner import evaluate
from gvae.generation import GenerateConfig, generate
from gvae.generation.classes import ClassDraw
from gvae.generation.latents import SAMPLES
from gvae.generation.run import LABEL_SHARE_WARNING
from gvae.metrics.features import ClassifierShape, DomainClassifier, save_classifier
from gvae.report.views import class_rows
from gvae.train.loop import train
from tests.test_models import images, narrow_model
from tests.train_helpers import phantom_data, sample_hashes, tiny_recipe

BRIGHT, DARK = 0, 1  # label names are the sorted class folders


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def two_classes(tmp_path_factory):
    """40 bright and 40 dark 16 px images, packed with their class folders as labels (64 train, 16 val)."""
    root = tmp_path_factory.mktemp("two-classes")
    rng = np.random.default_rng(0)
    for name, low in (("bright", 190), ("dark", 0)):
        (root / "src" / name).mkdir(parents=True)
        for i in range(40):
            Image.fromarray(rng.integers(low, low + 65, (16, 16), dtype=np.uint8)).save(root / "src" / name / f"{i}.png")
    pack(PackConfig(src=str(root / "src"), kind="imagefolder", out=str(root / "data"), resolution=16, channels=1,
                    labels_from_dirs=True, shard_size=16, val_fraction=0.2))
    return root / "data"


def recipe_file(directory: Path, data: Path, steps: int = 60) -> Path:
    path = directory / "two-classes.yaml"
    path.write_text(f"""
data: {{train: {data}, val: {data}, resolution: 16, channels: 1, workers: 0, shuffle_buffer: 16}}
model: {{conditional: true, latent_dim: 4, channel_base: 64, channel_min: 4, channel_max: 8, dropout: 0.0}}
loss: {{beta: 1000.0}}  # squeezes the class out of z: only the label can carry it
optim: {{lr: 2.0e-3, d_lr: 2.0e-3}}
train: {{batch_size: 16, max_steps: {steps}, checkpoint_every: {steps}, ema_decay: 0.5}}
log: {{every: 10, sample_every: 1000, tensorboard: false}}
""")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, two_classes):
    directory = tmp_path_factory.mktemp("run")
    train(load_recipe(recipe_file(directory, two_classes)), directory / "run", progress=False)
    return directory / "run"


def brightness(image: np.ndarray | torch.Tensor) -> float:
    return float(np.asarray(image, dtype=np.float64).mean())


def make(run, out, **options):
    return generate(GenerateConfig(str(run), str(out), progress=False, **{"num": 70, "shard_size": 30, **options}))


def shard_samples(out: Path) -> list[dict]:
    return list(iter_samples(str(out), split="train"))




def one_error_line(args) -> str:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1, result.output
    return result.output


# ---------------------------------------------------------------- the models
def test_projection_discriminator_gives_one_logit_and_features_per_image():
    model = narrow_model("gvae", class_names=["a", "b", "c"], conditional=True).eval()
    logits, features = model.disc(images(5, 1, 32), torch.tensor([0, 1, 2, 0, 1]))
    assert logits.shape == (5,) and features.shape[0] == 5
    assert model.disc.embed.weight.shape == (3, model.disc.head.in_features)


def test_projection_term_is_the_class_embedding_dotted_with_the_features():
    disc = narrow_model("gvae", class_names=["a", "b"], conditional=True).eval().disc
    x = images(4, 1, 32)
    with torch.no_grad():
        h = disc.trunk(x)[0].flatten(1)
        as_a, as_b = disc(x, torch.zeros(4, dtype=torch.long))[0], disc(x, torch.ones(4, dtype=torch.long))[0]
        expected = h @ (disc.embed.weight[0] - disc.embed.weight[1])
    torch.testing.assert_close(as_a - as_b, expected, rtol=1e-4, atol=1e-5)
    assert (as_a - as_b).abs().min() > 0


@pytest.mark.parametrize("kind", ["gvae", "vae", "vae-dense", "vaegan"])
def test_every_kind_takes_labels_through_a_training_step(kind):
    from gvae.config import LossConfig
    from gvae.models.losses import discriminator_loss, generator_loss

    model = narrow_model(kind, class_names=["a", "b", "c"], conditional=True)
    x, labels = images(4, 1, 32), torch.tensor([0, 1, 2, 1])
    z_prior = torch.randn(4, model.latent_dim) if model.disc is not None else None
    prior_labels = labels.flip(0) if z_prior is not None else None
    out = model.ae(x, z_prior, 0.05, labels, prior_labels)
    assert out.recon.shape == x.shape
    assert out.fake_labels is prior_labels
    loss, _ = generator_loss(out, x, model.disc, LossConfig(), 1.0, model.uses_feature_matching, labels=labels)
    if model.disc is not None:
        loss = loss + discriminator_loss(model.disc, x, out, LossConfig(), labels=labels)[0]
    loss.backward()
    embeddings = [name for name, p in model.named_parameters() if name.endswith("embed.weight")]
    assert len(embeddings) == (3 if model.disc is not None else 2)
    for name in embeddings:
        assert model.get_parameter(name).grad.abs().sum() > 0, name


@pytest.mark.parametrize("call", ["encode", "decode", "sample", "disc"])
def test_a_conditional_model_called_without_labels_says_so(call):
    model = narrow_model("gvae", class_names=["a", "b"], conditional=True).eval()
    calls = {"encode": lambda: model.encode(images(2, 1, 32)), "decode": lambda: model.decode(torch.zeros(2, 8)),
             "sample": lambda: model.sample(2), "disc": lambda: model.disc(images(2, 1, 32))}
    with pytest.raises(GvaeError, match="class-conditional"):
        calls[call]()


def test_unlabelled_images_are_refused_by_a_conditional_model():
    model = narrow_model("vae", class_names=["a", "b"], conditional=True).eval()
    with pytest.raises(GvaeError, match="-1 marks an unlabelled image"):
        model.encode(images(2, 1, 32), torch.tensor([0, -1]))


def test_class_names_belong_to_conditional_recipes():
    with pytest.raises(GvaeError, match="model.class_names"):
        narrow_model("gvae", class_names=["a", "b"])


def test_a_class_prior_belongs_to_conditional_recipes():
    with pytest.raises(GvaeError, match="model.class_prior"):
        narrow_model("gvae", class_prior=True)


def with_class_means(model, seed: int = 0):
    """``model`` (class prior) with random prior means and one shared label embedding in the generator, so
    that the label reaches the generator only through the means."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.ae.class_means.means.copy_(torch.randn(model.ae.class_means.means.shape, generator=generator))
        model.ae.generator.embed.weight.copy_(model.ae.generator.embed.weight[0].expand_as(model.ae.generator.embed.weight))
    return model


def test_with_a_class_prior_the_encoder_sees_the_image_alone_and_codes_are_taken_from_the_class_mean():
    model = with_class_means(narrow_model("gvae", class_names=["a", "b"], conditional=True, class_prior=True)).eval()
    assert not [name for name, _ in model.ae.encoder.named_parameters() if "embed" in name]
    x, means = images(3, 1, 32), model.ae.class_means.means.detach()
    with torch.no_grad():
        (mu_a, logvar_a), (mu_b, logvar_b) = (model.encode(x, torch.full((3,), k)) for k in (0, 1))
    torch.testing.assert_close(mu_a - mu_b, (means[1] - means[0]).expand(3, -1))
    torch.testing.assert_close(logvar_a, logvar_b)


def test_with_a_class_prior_the_generator_decodes_the_code_plus_its_class_mean():
    model = with_class_means(narrow_model("gvae", class_names=["a", "b"], conditional=True, class_prior=True)).eval()
    u, means = torch.randn(5, model.latent_dim), model.ae.class_means.means.detach()
    with torch.no_grad():
        as_b = model.decode(u, torch.ones(5, dtype=torch.long))
        as_a_moved = model.decode(u + means[1] - means[0], torch.zeros(5, dtype=torch.long))
    torch.testing.assert_close(as_b, as_a_moved, rtol=1e-4, atol=1e-5)
    assert (as_b - model.decode(u, torch.zeros(5, dtype=torch.long)).detach()).abs().max() > 1e-3


def test_a_conditional_recipe_on_unlabelled_data_is_one_error_line(tmp_path, two_classes):
    pack(PackConfig(src=str(two_classes.parent / "src"), kind="imagefolder", out=str(tmp_path / "plain"),
                    resolution=16, channels=1))
    message = one_error_line(["train", str(recipe_file(tmp_path, tmp_path / "plain")), "--out", str(tmp_path / "r")])
    assert "model.conditional" in message and str(tmp_path / "plain") in message
    assert not (tmp_path / "r" / "checkpoints").exists()


# ---------------------------------------------------------------- training and checkpoints
def train_counts(data: Path) -> list[int]:
    return json.loads((data / "dataset.json").read_text())["splits"]["train"]["label_counts"]


def test_the_checkpoint_carries_the_class_names_and_training_counts(run, two_classes):
    labels = [s["label"] for s in iter_samples(str(two_classes), "train")]
    assert train_counts(two_classes) == [labels.count(BRIGHT), labels.count(DARK)]
    model = gvae.load(run)
    assert (model.num_classes, model.class_names) == (2, ["bright", "dark"])
    assert model.recipe.model.class_counts == train_counts(two_classes)


def test_the_label_alone_sets_the_class_of_a_prior_sample(run):
    model = gvae.load(run)
    z = torch.randn(16, model.latent_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        bright = model.decode(z, torch.full((16,), BRIGHT)).mean((1, 2, 3))
        dark = model.decode(z, torch.full((16,), DARK)).mean((1, 2, 3))
    assert (bright > 0.6).all() and (dark < 0.4).all(), (bright, dark)


@pytest.fixture(scope="module")
def prior_run(tmp_path_factory, two_classes):
    """The two-class model with a prior per class, its KL weight low enough for z to carry the class."""
    directory = tmp_path_factory.mktemp("prior-run")
    recipe = load_recipe(recipe_file(directory, two_classes, steps=80),
                         ["model.class_prior=true", "loss.beta=1.0", "model.latent_dim=2"])
    train(recipe, directory / "run", progress=False)
    return directory / "run"


def test_a_class_prior_gathers_each_class_s_codes_at_its_own_mean(prior_run, two_classes):
    """Codes of bright images are nearer the bright mean than the dark one, and the other way round: the KL term
    has pulled each class's means to its own images. An encoder of u = z - m_y for the true class gives codes
    nearer 0 than for the other class."""
    model = gvae.load(prior_run)
    x, labels = load_images(str(two_classes), "val")
    means = model.ae.class_means.means.detach()
    assert (means[BRIGHT] - means[DARK]).norm() > 0.5
    with torch.no_grad():
        own = model.encode(x, labels)[0].norm(dim=1)
        other = model.encode(x, 1 - labels)[0].norm(dim=1)
    assert (own < other).float().mean() > 0.9, (own, other)


def test_prior_samples_of_a_class_prior_model_are_of_the_class_asked_for(prior_run):
    model = gvae.load(prior_run)
    with torch.no_grad():
        bright = model.sample(32, torch.Generator().manual_seed(0), labels=torch.full((32,), BRIGHT)).mean((1, 2, 3))
        dark = model.sample(32, torch.Generator().manual_seed(0), labels=torch.full((32,), DARK)).mean((1, 2, 3))
    assert (bright > 0.6).all() and (dark < 0.4).all(), (bright, dark)


@pytest.mark.parametrize("prior", ["N(0, I)", "per class"])
def test_a_resumed_conditional_run_ends_bit_exact_with_an_uninterrupted_one(tmp_path, prior):
    data = phantom_data(tmp_path / "phantoms")
    cond = ["model.conditional=true", f"model.class_prior={prior == 'per class'}"]
    train(tiny_recipe(tmp_path, data, overrides=cond), tmp_path / "straight", progress=False)
    train(tiny_recipe(tmp_path, data, overrides=[*cond, "train.max_steps=2"]), tmp_path / "resumed", progress=False)
    train(tiny_recipe(tmp_path, data, overrides=cond), tmp_path / "resumed", progress=False)
    a, b = (load_file(str(tmp_path / run / "checkpoints/step-00000004" / ckpt.WEIGHTS)) for run in ("straight", "resumed"))
    assert a.keys() == b.keys() and any("embed" in key for key in a)
    assert ("ae.class_means.means" in a) == (prior == "per class")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize("config", ["cpu-ddp", "cpu-zero3"])
def test_two_processes_train_a_conditional_model_to_identical_parameters(tmp_path, config):
    """With a classifier in the loss too: each process holds its own frozen copy, outside DDP and ZeRO."""
    pytest.importorskip("deepspeed")
    from tests.test_train import launch

    data = phantom_data(tmp_path / "phantoms")
    classes = len(json.loads((data / "dataset.json").read_text())["label_names"])
    torch.manual_seed(0)
    save_classifier(DomainClassifier(ClassifierShape(1, 32, classes)).eval(), tmp_path / "classifier.safetensors")
    (start, _), (end0, end1) = launch(config, tmp_path, data, steps=2, overrides=[
        "model.conditional=true", f"loss.label_classifier={tmp_path / 'classifier.safetensors'}",
        "loss.label_weight=0.01"])
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert lines and all("label" in json.loads(line) for line in lines)
    assert any("embed" in name for name in end0)
    for name in end0:
        torch.testing.assert_close(end0[name], end1[name], rtol=0, atol=0, msg=name)
    assert any(not torch.equal(start[k], end0[k]) for k in start)


@pytest.mark.slow
def test_two_zero3_processes_hold_the_same_class_means_pooled_from_both_batches(tmp_path):
    pytest.importorskip("deepspeed")
    from tests.test_train import launch

    data = phantom_data(tmp_path / "phantoms")
    (start, _), (end0, end1) = launch("cpu-zero3", tmp_path, data, steps=2,
                                      overrides=["model.conditional=true", "model.class_prior=true"])
    name = "ae.class_means.means"
    torch.testing.assert_close(end0[name], end1[name], rtol=0, atol=0)
    assert not torch.equal(start[name], end0[name])


# ---------------------------------------------------------------- generation
@pytest.fixture(scope="module")
def labelled_set(tmp_path_factory, run):
    out = tmp_path_factory.mktemp("sets") / "labelled"
    return out, make(run, out)


def test_generated_bytes_and_labels_do_not_depend_on_the_batch_size(labelled_set, run, tmp_path):
    out, manifest = labelled_set
    assert make(run, tmp_path / "b7", batch_size=7) == manifest
    assert sample_hashes(tmp_path / "b7") == sample_hashes(out)
    assert [s["label"] for s in shard_samples(tmp_path / "b7")] == [s["label"] for s in shard_samples(out)]


def test_model_samples_of_a_conditional_model_are_the_labelled_images_gvae_generate_writes(labelled_set, run):
    """The mixing dataset draws each sample's class as gvae generate does (the training frequencies)."""
    from gvae.data import ModelSamples

    written = shard_samples(labelled_set[0])
    model = ModelSamples(str(run))
    for index in (0, 1, 63, 64):
        image, label = model[index]
        assert torch.equal(image, torch.from_numpy(written[index]["image"])) and label == written[index]["label"]


def test_each_shard_sample_is_of_the_class_its_cls_and_json_name(labelled_set):
    samples = shard_samples(labelled_set[0])
    assert {s["label"] for s in samples} == {BRIGHT, DARK}
    for s in samples:
        assert s["json"]["class"] == ["bright", "dark"][s["label"]]
        assert (brightness(s["image"]) > 0.5) == (s["label"] == BRIGHT), s["key"]


def test_the_manifest_counts_samples_per_class(labelled_set, two_classes):
    out, manifest = labelled_set
    labels = [s["label"] for s in shard_samples(out)]
    assert manifest["class_counts"] == {"bright": labels.count(BRIGHT), "dark": labels.count(DARK)}
    bright, dark = train_counts(two_classes)
    assert manifest["labels"] == {"balance": "data", "weights": [bright / (bright + dark), dark / (bright + dark)]}
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["label_names"] == ["bright", "dark"]
    assert dataset["splits"]["train"]["label_counts"] == [labels.count(BRIGHT), labels.count(DARK)]


def test_the_manifest_of_a_model_whose_label_steers_its_samples_records_a_high_label_share(labelled_set):
    """The fixture's label alone decides a sample's brightness (above): most of what changes between samples."""
    assert LABEL_SHARE_WARNING < labelled_set[1]["label_share"] <= 1


def test_a_model_that_ignores_its_label_makes_a_set_with_a_warning_and_its_label_share(run, tmp_path, caplog):
    blind = tmp_path / "blind"
    shutil.copytree(run, blind)
    for weights in blind.glob("checkpoints/*/*.safetensors"):
        tensors = load_file(str(weights))
        tensors["ae.generator.embed.weight"].zero_()  # every label gives the generator the same input
        save_file(tensors, str(weights))
    manifest = make(blind, tmp_path / "set", num=20)
    assert manifest["label_share"] == 0.0
    assert "label decides only 0% of what changes between its samples" in caplog.text
    assert "--label-classifier" in caplog.text


def test_class_option_restricts_the_labels_by_name_or_index(labelled_set, run, tmp_path):
    by_name = make(run, tmp_path / "dark", classes=("dark",))
    by_index = make(run, tmp_path / "dark-1", classes=("1",))
    assert by_name["class_counts"] == by_index["class_counts"] == {"dark": 70}
    assert all(brightness(s["image"]) < 0.5 for s in shard_samples(tmp_path / "dark"))
    # the same index draws the same latent noise whatever the classes: only the label changed
    assert sample_hashes(tmp_path / "dark") == sample_hashes(tmp_path / "dark-1") != sample_hashes(labelled_set[0])


class BrightAbove(torch.nn.Module):
    """A stand-in classifier of the two classes: "bright" only above ``threshold`` mean brightness, so it calls
    the dimmer half of the model's bright samples "dark"."""

    def __init__(self, threshold: float):
        super().__init__()
        self.threshold = threshold
        self.shape = ClassifierShape(1, 16, 2)
        self.unused = torch.nn.Parameter(torch.zeros(1))  # where its device is read from

    def forward(self, x):
        bright = (x.flatten(1).mean(1) > self.threshold).float()
        return torch.stack([bright, 1 - bright], dim=1)  # BRIGHT = 0, DARK = 1


def test_the_label_classifier_redraws_samples_it_does_not_give_their_own_label(labelled_set, run, tmp_path,
                                                                                monkeypatch):
    unfiltered = shard_samples(labelled_set[0])
    threshold = float(np.median([brightness(s["image"]) for s in unfiltered if s["label"] == BRIGHT]))
    monkeypatch.setattr("gvae.metrics.features.load_classifier", lambda path: BrightAbove(threshold))
    weights = tmp_path / "classifier.safetensors"
    weights.write_bytes(b"a classifier")
    manifest = make(run, tmp_path / "checked", label_classifier=str(weights))
    kept = shard_samples(tmp_path / "checked")
    assert all(brightness(s["image"]) > threshold for s in kept if s["label"] == BRIGHT)
    first_tries = {a["key"] for a in unfiltered if a["label"] == DARK or brightness(a["image"]) > threshold}
    # a candidate that passes at once is the unfiltered set's sample, byte for byte; the others were redrawn
    for a, b in zip(unfiltered, kept, strict=True):
        assert (a["key"] in first_tries) == np.array_equal(a["image"], b["image"]), a["key"]
        assert a["label"] == b["label"]
    assert manifest["filters"]["rejected"]["label"] >= len(unfiltered) - len(first_tries) > 0
    assert manifest["filters"]["label_classifier"] == str(weights)
    assert make(run, tmp_path / "checked", label_classifier=str(weights)) == manifest  # resumable: same set
    weights.write_bytes(b"another classifier")
    with pytest.raises(GvaeError, match="another generated set"):
        make(run, tmp_path / "checked", label_classifier=str(weights))


def test_the_label_classifier_needs_a_conditional_model_and_its_classes(run, tmp_path, monkeypatch):
    weights = tmp_path / "classifier.safetensors"
    weights.write_bytes(b"a classifier")
    unconditional = tmp_path / "phantom-run"
    train(tiny_recipe(tmp_path, phantom_data(tmp_path / "phantoms")), unconditional, progress=False)
    with pytest.raises(GvaeError, match="this model is unconditional"):
        make(unconditional, tmp_path / "a", label_classifier=str(weights))
    three = BrightAbove(0.5)
    three.shape = ClassifierShape(1, 16, 3)
    monkeypatch.setattr("gvae.metrics.features.load_classifier", lambda path: three)
    with pytest.raises(GvaeError, match="a classifier of 3 classes"):
        make(run, tmp_path / "b", label_classifier=str(weights))


def test_a_label_classifier_in_the_loss_judges_prior_samples_from_the_first_step(tmp_path, two_classes):
    weights = tmp_path / "classifier.safetensors"
    torch.manual_seed(0)
    save_classifier(DomainClassifier(ClassifierShape(1, 16, 2)).eval(), weights)
    overrides = [f"loss.label_classifier={weights}", "loss.label_weight=0.01", "train.max_steps=4",
                 "log.every=2", "loss.adv_start_steps=100"]  # no discriminator yet: the prior samples are drawn
    train(load_recipe(recipe_file(tmp_path, two_classes), overrides), tmp_path / "run", progress=False)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(line["label"] > 0 and 0 <= line["label_acc"] <= 1 and "adv" not in line for line in lines)
    save_classifier(DomainClassifier(ClassifierShape(1, 16, 3)).eval(), weights)
    with pytest.raises(GvaeError, match="loss.label_classifier .*: a classifier of 3 classes"):
        train(load_recipe(recipe_file(tmp_path, two_classes), overrides), tmp_path / "run-3", progress=False)


def test_class_draws_follow_the_weights_and_are_pure_functions_of_seed_and_index():
    draw = ClassDraw((3.0, 1.0, 0.0), seed=5)
    labels = draw.labels(SAMPLES, list(range(4000)))
    assert labels == draw.labels(SAMPLES, list(range(4000)))
    assert labels[1234] == ClassDraw((3.0, 1.0, 0.0), seed=5).label(SAMPLES, 1234)
    assert 2 not in labels and abs(labels.count(0) / 4000 - 0.75) < 0.03
    assert labels != ClassDraw((3.0, 1.0, 0.0), seed=6).labels(SAMPLES, list(range(4000)))


def test_imagefolder_output_puts_each_image_in_its_class_folder(labelled_set, run, tmp_path):
    from torchvision.datasets import ImageFolder

    out = tmp_path / "folders"
    manifest = make(run, out, fmt="imagefolder")
    assert manifest["class_counts"] == labelled_set[1]["class_counts"]
    dataset = ImageFolder(str(out))
    assert dataset.classes == ["bright", "dark"] and len(dataset) == 70
    for path, label in dataset.samples:
        assert (brightness(Image.open(path).convert("L")) > 127) == (label == BRIGHT), path
    wds = {s["key"]: s["label"] for s in shard_samples(labelled_set[0])}
    assert {Path(path).stem: label for path, label in dataset.samples} == wds
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


def test_imagefolder_output_shrinks_and_grows_like_the_other_formats(run, tmp_path):
    out = tmp_path / "folders"
    make(run, out, fmt="imagefolder")
    smaller = make(run, out, fmt="imagefolder", num=40)
    assert sorted(p.stem for p in out.glob("*/*.png")) == [f"{i:08d}" for i in range(40)]
    assert smaller == make(run, tmp_path / "fresh-40", fmt="imagefolder", num=40)
    make(run, out, fmt="imagefolder")
    assert len(list(out.glob("*/*.png"))) == 70


@pytest.mark.parametrize(("option", "message"), [
    (["--class", "medium"], "--class 'medium': no such class"),
    (["--class", "2"], "--class '2': no such class"),
    (["--from-data", "DATA", "--class", "dark"], "--from-data keeps each source image's label"),
])
def test_class_errors_on_a_conditional_model_are_one_line(run, two_classes, tmp_path, option, message):
    option = [str(two_classes) if word == "DATA" else word for word in option]
    output = one_error_line(["generate", str(run), "--num", "4", "--out", str(tmp_path / "o"), *option])
    assert message in output and not (tmp_path / "o").exists()


def test_from_data_variations_keep_their_source_labels_on_a_conditional_model(run, two_classes, tmp_path):
    manifest = make(run, tmp_path / "varied", num=None, from_data=str(two_classes))
    samples = shard_samples(tmp_path / "varied")
    assert list(manifest["class_counts"].values()) == train_counts(two_classes)
    assert all((brightness(s["image"]) > 0.5) == (s["label"] == BRIGHT) for s in samples)


# ---------------------------------------------------------------- data, evaluation, report
def test_per_class_keeps_the_first_k_images_of_each_class_in_the_train_split(tmp_path):
    full = pack(PackConfig(src="-", kind="phantom", out=str(tmp_path / "full"), resolution=16, num=60,
                           val_fraction=0.2))
    small = pack(PackConfig(src="-", kind="phantom", out=str(tmp_path / "small"), resolution=16, num=60,
                            val_fraction=0.2, per_class=3))
    assert small["splits"]["train"]["label_counts"] == [min(3, n) for n in full["splits"]["train"]["label_counts"]]
    assert small["splits"]["val"] == {**full["splits"]["val"], "shards": small["splits"]["val"]["shards"]}
    kept, seen = [], {}
    for sample in iter_samples(str(tmp_path / "full"), "train"):
        seen[sample["label"]] = seen.get(sample["label"], 0) + 1
        if seen[sample["label"]] <= 3:
            kept.append(sample["json"]["source"])
    assert [s["json"]["source"] for s in iter_samples(str(tmp_path / "small"), "train")] == kept


def test_evaluation_gives_a_conditional_model_the_held_out_labels(run, two_classes):
    model = gvae.load(run)
    real, labels = load_images(str(two_classes), "val")
    results = evaluate(model, real, None, ["recon", "elbo", "iwae"], num_samples=0, iwae_k=4, seed=0,
                       real_labels=labels)
    # decoded with the wrong class, an image would be off by ~0.75 everywhere: PSNR ~2.5 dB
    assert results["recon_psnr"]["value"] > 15
    assert results["iwae"]["value"] >= results["elbo"]["value"] - 1.0
    with pytest.raises(GvaeError, match="class-conditional"):
        evaluate(model, real, None, ["recon"], num_samples=0, iwae_k=1, seed=0)


def test_evaluation_draws_sample_classes_from_the_held_out_labels(run, two_classes, monkeypatch):
    model = gvae.load(run)
    real, labels = load_images(str(two_classes), "val")
    drawn, sample = [], model.sample
    monkeypatch.setattr(model, "sample", lambda n, **kw: drawn.append(kw["labels"]) or sample(n, **kw))
    dark = labels == DARK
    evaluate(model, real[dark], None, ["mmd"], num_samples=100, iwae_k=1, seed=0, real_labels=labels[dark])
    assert torch.cat(drawn).tolist() == [DARK] * 100
    drawn.clear()
    evaluate(model, real, None, ["mmd"], num_samples=2000, iwae_k=1, seed=0, real_labels=labels)
    share = (torch.cat(drawn) == DARK).double().mean().item()
    assert abs(share - dark.double().mean().item()) < 0.04


def test_the_report_shows_one_row_of_samples_per_class(run):
    model = gvae.load(run)
    rows = class_rows(model, per_class=4).mean((1, 2, 3))
    assert rows.shape == (8,)
    assert (rows[:4] > 0.6).all() and (rows[4:] < 0.4).all()
    from gvae.report import build_report

    assert "One row per class, top to bottom (0: bright, 1: dark)" in build_report(run)


def test_class_coverage_of_a_labelled_set_reports_the_share_the_classifier_gives_its_own_label(
        labelled_set, two_classes, run, tmp_path):
    import sys

    from gvae.metrics.features import save_classifier, train_classifier

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
    from class_coverage import class_coverage

    images, labels = load_images(str(two_classes), "train")
    classifier = train_classifier(images, labels, epochs=1, batch_size=16)
    save_classifier(classifier, tmp_path / "c.safetensors")
    result = class_coverage(str(run), str(two_classes), str(tmp_path / "c.safetensors"), num=0, seed=0,
                            generated=str(labelled_set[0]))
    written, cls = load_images(str(labelled_set[0]), "train")
    with torch.no_grad():
        predicted = gvae.metrics.features.load_classifier(tmp_path / "c.safetensors")(written).argmax(1)
    hits = predicted == cls
    assert result["num"] == 70 and result["agreement"] == pytest.approx(float(hits.double().mean()))
    assert result["agreement_per_label"] == pytest.approx([float(hits[cls == k].double().mean()) for k in (0, 1)])
    assert result["samples"] == pytest.approx([float((predicted == k).double().mean()) for k in (0, 1)])
