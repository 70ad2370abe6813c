"""MixedDataset: real and synthetic samples at a ratio, with labels, fixed by the seed, the same in any worker."""

import pytest
import torch
from torch.utils.data import DataLoader

import gvae
from gvae.data import MixedDataset, ModelSamples, SyntheticSet, iter_samples
from gvae.errors import GvaeError
from gvae.generation import GenerateConfig, generate
from gvae.train.loop import train
from tests.train_helpers import phantom_data, tiny_recipe


class Numbered(torch.utils.data.Dataset):
    """Real samples 200, 201, ...: every pixel of sample i is (200 + i) / 255, its label is 10 + i."""

    def __init__(self, count: int):
        self.count = count

    def __len__(self):
        return self.count

    def __getitem__(self, i):
        return torch.full((1, 8, 8), (200 + i) / 255), 10 + i


def _numbers(dataset) -> list[int]:
    return [round(float(dataset[i][0][0, 0, 0]) * 255) for i in range(len(dataset))]


@pytest.fixture
def set_of_12(numbered_shards):
    """A synthetic set of 12 samples numbered 0..11 (labels number % 3), in shards of 5, 5 and 2."""
    return SyntheticSet(",".join(numbered_shards([5, 5, 2])))


def test_every_real_sample_appears_once_and_synthetic_ones_make_up_the_fraction(set_of_12):
    mixed = MixedDataset(Numbered(10), set_of_12, synthetic_fraction=0.5)
    assert len(mixed) == 20
    assert sorted(_numbers(mixed)) == list(range(10)) + list(range(200, 210))
    assert sum(mixed.is_synthetic(i) for i in range(20)) == 10
    assert len(MixedDataset(Numbered(10), set_of_12, synthetic_fraction=0.2)) == 13  # ceil(10 / 0.8)
    assert len(MixedDataset(Numbered(10), set_of_12, synthetic_fraction=0.0)) == 10


def test_labels_travel_with_their_samples(set_of_12):
    mixed = MixedDataset(Numbered(10), set_of_12, synthetic_fraction=0.5)
    for i in range(len(mixed)):
        number, label = _numbers(mixed)[i], mixed[i][1]
        assert label == (number - 190 if number >= 200 else number % 3)


def test_the_order_is_a_pure_function_of_seed_and_epoch(set_of_12):
    first, again = (MixedDataset(Numbered(10), set_of_12, 0.5, seed=7) for _ in range(2))
    assert _numbers(first) == _numbers(again)
    assert _numbers(first) != _numbers(MixedDataset(Numbered(10), set_of_12, 0.5, seed=8))
    first.set_epoch(1)  # synthetic samples 10..19 of a set of 12: 10, 11, 0, ..., 7
    assert sorted(n for n in _numbers(first) if n < 200) == sorted([10, 11, *range(8)])


def test_worker_processes_read_what_the_main_process_reads(set_of_12):
    mixed = MixedDataset(Numbered(10), set_of_12, 0.5, seed=3)
    batches = [list(DataLoader(mixed, batch_size=4, num_workers=workers)) for workers in (0, 2)]
    for (a_images, a_labels), (b_images, b_labels) in zip(*batches, strict=True):
        assert torch.equal(a_images, b_images) and torch.equal(a_labels, b_labels)


def test_synthetic_transform_applies_to_synthetic_samples_only(set_of_12):
    mixed = MixedDataset(Numbered(10), set_of_12, 0.5, synthetic_transform=lambda image: image[:, :4, :4])
    shapes = {mixed.is_synthetic(i): tuple(mixed[i][0].shape) for i in range(len(mixed))}
    assert shapes == {True: (1, 4, 4), False: (1, 8, 8)}


def test_a_fraction_outside_zero_to_one_is_refused(set_of_12):
    with pytest.raises(GvaeError, match=r"synthetic_fraction: got 1.0; must be in \[0, 1\)"):
        MixedDataset(Numbered(10), set_of_12, 1.0)


def test_model_samples_are_the_images_gvae_generate_writes(tmp_path):
    torch.set_num_threads(1)
    data = phantom_data(tmp_path / "data")
    train(tiny_recipe(tmp_path, data), tmp_path / "run", progress=False)
    generate(GenerateConfig(source=str(tmp_path / "run"), out=str(tmp_path / "set"), num=70, seed=3, progress=False))
    written = [torch.from_numpy(s["image"]) for s in iter_samples(str(tmp_path / "set"), "train")]
    model = ModelSamples(str(tmp_path / "run"), seed=3, label=5)
    for index in range(70):  # both groups of 64
        image, label = model[index]
        assert torch.equal(image, written[index]) and label == 5
    loaded = gvae.load(tmp_path / "run")
    weight = loaded.ae.generator.out.weight.clone()
    given = ModelSamples(loaded, seed=3)  # a model object: decoded in generate's form, the caller's untouched
    assert all(torch.equal(given[index][0], written[index]) for index in range(70))
    assert torch.equal(loaded.ae.generator.out.weight, weight) and loaded.ae.generator.out.weight.is_contiguous()
    mixed = MixedDataset(str(data), model, synthetic_fraction=0.5)  # the packed phantoms' 32 train images
    assert len(mixed) == 64 and sum(mixed[i][1] == 5 for i in range(64)) == 32
