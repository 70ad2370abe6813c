"""Reading shards: spec resolution, the ordered reader, and the sharded, resumable TrainLoader."""

import functools
import http.server
import itertools
import json
import shutil
import threading

import numpy as np
import pytest
import torch

from gvae.data import TrainLoader, iter_samples, load_images, read_dataset_info, resolve_shards, write_shard
from gvae.errors import GvaeError

UNEVEN = [10, 10, 10, 10, 3]


def numbers(images: torch.Tensor) -> list[int]:
    """The sample numbers the numbered_shards images encode in their pixels."""
    return torch.round(images[:, 0, 0, 0] * 255).long().tolist()


def take(loader, n):
    return list(itertools.islice(iter(loader), n))


def test_resolve_shards_accepts_patterns_lists_directories_and_urls(tmp_path, numbered_shards):
    paths = numbered_shards([1, 1, 1])
    folder = tmp_path / "shards"
    assert resolve_shards(str(folder / "train-{000000..000002}.tar")) == paths
    assert resolve_shards(str(folder / "train-*.tar")) == paths
    assert resolve_shards(f"{paths[2]},{paths[0]}") == [paths[2], paths[0]]
    assert resolve_shards(str(folder)) == paths
    (folder / "list.txt").write_text("# mine\ntrain-000001.tar\n\n")
    assert resolve_shards(str(folder / "list.txt")) == [paths[1]]
    assert resolve_shards("https://host/d-{0..1}.tar") == ["https://host/d-0.tar", "https://host/d-1.tar"]
    assert resolve_shards("pipe:cat x.tar") == ["pipe:cat x.tar"]


def test_resolve_shards_fails_when_nothing_matches(tmp_path):
    with pytest.raises(GvaeError, match="no such shards"):
        resolve_shards(str(tmp_path / "train-{000000..000003}.tar"))


def test_a_packed_directory_resolves_to_the_shards_of_the_asked_split(tmp_path, numbered_shards):
    paths = numbered_shards([2, 2])
    folder = tmp_path / "shards"
    info = {"resolution": 8, "channels": 1, "splits": {"train": {"count": 2, "shards": [{"name": "train-000001.tar",
            "count": 2}]}, "val": {"count": 2, "shards": [{"name": "train-000000.tar", "count": 2}]}}}
    (folder / "dataset.json").write_text(json.dumps(info))
    assert resolve_shards(str(folder), "val") == [paths[0]]
    assert read_dataset_info(str(folder)) == info
    assert read_dataset_info(paths[0]) == info
    assert read_dataset_info("pipe:cat x.tar") is None


def test_iter_samples_reads_in_shard_order_with_labels_and_json(numbered_shards):
    paths = numbered_shards([3, 2])
    samples = list(iter_samples(",".join(paths)))
    assert [s["json"]["number"] for s in samples] == [0, 1, 2, 3, 4]
    assert [s["label"] for s in samples] == [0, 1, 2, 0, 1]
    assert samples[4]["image"].shape == (1, 8, 8) and samples[4]["image"].dtype == np.float32
    assert samples[4]["image"].max() == pytest.approx(4 / 255)
    assert len(list(iter_samples(paths[0], limit=2))) == 2


def test_load_images_stacks_images_and_labels(numbered_shards):
    images, labels = load_images(numbered_shards([4])[0])
    assert images.shape == (4, 1, 8, 8) and images.dtype == torch.float32
    assert labels.tolist() == [0, 1, 2, 0] and labels.dtype == torch.int64


def test_a_corrupt_png_inside_a_shard_is_skipped_and_counted(tmp_path, caplog, numbered_sample):
    samples = [numbered_sample(i) for i in range(8)]
    samples[3]["png"] = b"\x89PNG\r\n\x1a\nnot really"
    write_shard(tmp_path / "s.tar", samples)
    assert [s["json"]["number"] for s in iter_samples(str(tmp_path / "s.tar"))] == [0, 1, 2, 4, 5, 6, 7]
    assert "1 so far" in caplog.text
    loader = TrainLoader(str(tmp_path / "s.tar"), batch_size=2, resolution=8, channels=1, workers=0)
    batches = take(loader, len(loader))
    assert len(batches) == 4 and loader.bad_samples == 1
    assert 3 not in {n for images, _ in batches for n in numbers(images)}


def test_a_truncated_shard_yields_what_it_holds_without_raising(numbered_shards):
    (path,) = numbered_shards([6])
    with open(path, "r+b") as f:
        f.truncate(int(f.seek(0, 2) * 0.6))
    assert 0 < len(list(iter_samples(path))) < 6


@pytest.mark.parametrize("with_dataset_json", [True, False])
def test_resolution_or_channel_mismatch_fails_before_training_naming_both(tmp_path, numbered_shards,
                                                                         with_dataset_json):
    paths = numbered_shards([4])
    if with_dataset_json:
        (tmp_path / "shards" / "dataset.json").write_text(json.dumps(
            {"resolution": 8, "channels": 1, "bits": 8, "splits": {"train": {"count": 4, "shards": [
                {"name": "train-000000.tar", "count": 4}]}}}))
    with pytest.raises(GvaeError, match=r"8x8 images with 1 channel.*resolution=16, channels=3"):
        TrainLoader(paths[0], batch_size=2, resolution=16, channels=3)


def test_batches_are_float_images_in_unit_range_with_int64_labels(numbered_shards):
    loader = TrainLoader(numbered_shards([10])[0], batch_size=4, resolution=8, channels=1, workers=0)
    images, labels = next(iter(loader))
    assert images.shape == (4, 1, 8, 8) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and labels.tolist() == [n % 3 for n in numbers(images)]


def test_two_ranks_by_two_workers_see_disjoint_samples_and_equal_batch_counts(tmp_path, numbered_shards):
    spec = str(tmp_path / "shards" / "train-{000000..000004}.tar")
    numbered_shards(UNEVEN)
    seen = []
    for rank in (0, 1):
        loader = TrainLoader(spec, batch_size=4, resolution=8, channels=1, rank=rank, world_size=2, workers=2,
                             shuffle_buffer=5, seed=3)
        assert len(loader) == 43 // (2 * 4)
        batches = take(loader, len(loader))
        assert loader.state_dict()["epoch"] == 0 and all(len(images) == 4 for images, _ in batches)
        seen.append([n for images, _ in batches for n in numbers(images)])
    assert len(seen[0]) == len(seen[1]) == 20
    assert len(set(seen[0]) | set(seen[1])) == 40  # no sample twice in an epoch, across ranks and workers


def test_each_epoch_is_shuffled_differently_and_the_loader_never_ends(numbered_shards):
    loader = TrainLoader(",".join(numbered_shards(UNEVEN)), batch_size=4, resolution=8, channels=1, workers=0)
    batches = take(loader, 3 * len(loader))
    epochs = [[n for images, _ in batches[e * 10:(e + 1) * 10] for n in numbers(images)] for e in range(3)]
    assert epochs[0] != epochs[1] != epochs[2]
    assert all(len(set(epoch)) == 40 for epoch in epochs)


def test_epoch_samples_sets_the_epoch_length(numbered_shards):
    loader = TrainLoader(",".join(numbered_shards(UNEVEN)), batch_size=4, resolution=8, channels=1, workers=0,
                         epoch_samples=100)
    assert len(loader) == 25


@pytest.mark.parametrize("stop_after", [3, 9, 14])  # mid-epoch, one before its end, in the second epoch
def test_a_resumed_loader_yields_exactly_the_batches_of_an_uninterrupted_one(numbered_shards, stop_after):
    spec = ",".join(numbered_shards(UNEVEN))
    options = {"batch_size": 4, "resolution": 8, "channels": 1, "workers": 2, "shuffle_buffer": 7,
               "hflip": True, "seed": 11}
    uninterrupted = take(TrainLoader(spec, **options), stop_after + 8)
    first = TrainLoader(spec, **options)
    take(first, stop_after)
    state = json.loads(json.dumps(first.state_dict()))
    resumed = TrainLoader(spec, **options)
    resumed.load_state_dict(state)
    for (images, labels), (expected_images, expected_labels) in zip(take(resumed, 8), uninterrupted[stop_after:],
                                                                    strict=True):
        assert torch.equal(images, expected_images) and torch.equal(labels, expected_labels)


def test_resuming_with_another_layout_is_refused(numbered_shards):
    spec = ",".join(numbered_shards(UNEVEN))
    state = TrainLoader(spec, batch_size=4, resolution=8, channels=1, workers=2).state_dict()
    with pytest.raises(GvaeError, match="slots=2.*slots=1"):
        TrainLoader(spec, batch_size=4, resolution=8, channels=1, workers=1).load_state_dict(state)


def _same_batches(spec_a: str, spec_b: str, n: int = 6) -> None:
    def batches(spec):
        loader = TrainLoader(spec, batch_size=4, resolution=8, channels=1, workers=0, shuffle_buffer=5, seed=1)
        return [numbers(images) for images, _ in take(loader, n)], loader.counts

    assert batches(spec_a) == batches(spec_b)


@pytest.mark.parametrize("with_dataset_json", [True, False])
def test_training_reads_shards_through_pipe_commands(tmp_path, numbered_shards, with_dataset_json):
    paths = numbered_shards(UNEVEN)
    folder = tmp_path / "shards"
    info = {"resolution": 8, "channels": 1, "splits": {"train": {"count": 43, "shards": [
        {"name": f"train-{i:06d}.tar", "count": count} for i, count in enumerate(UNEVEN)]}}}
    if with_dataset_json:
        (folder / "dataset.json").write_text(json.dumps(info))
    spec = f"pipe:cat {folder}/train-{{000000..000004}}.tar"
    assert read_dataset_info(spec) == (info if with_dataset_json else None)
    assert TrainLoader(spec, batch_size=4, resolution=8, channels=1).counts == UNEVEN  # read once when no json
    _same_batches(spec, ",".join(paths))


def test_training_reads_shards_over_http(tmp_path, numbered_shards):
    if shutil.which("curl") is None:  # webdataset fetches http(s) shards with curl
        pytest.skip("curl is not installed")
    paths = numbered_shards(UNEVEN)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "shards"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _same_batches(f"http://127.0.0.1:{server.server_port}/train-{{000000..000004}}.tar", ",".join(paths))
    finally:
        server.shutdown()


def test_shard_names_are_found_in_paths_urls_and_pipe_commands():
    from gvae.data.spec import shard_name

    assert shard_name("/d/train-000001.tar") == "train-000001.tar"
    assert shard_name("https://h/d/val-000002.tar.gz?token=x") == "val-000002.tar.gz"
    assert shard_name("pipe:aws s3 cp s3://b/d/train-000003.tar -") == "train-000003.tar"


def test_shards_that_cannot_be_read_fail_naming_the_spec():
    spec = "pipe:cat /nonexistent/train-{000000..000001}.tar"
    with pytest.raises(GvaeError, match="no samples in its 2 shard"):
        TrainLoader(spec, batch_size=4, resolution=8, channels=1, workers=0)


def _truncate(path, fraction):
    with open(path, "r+b") as f:
        f.truncate(int(f.seek(0, 2) * fraction))


def test_a_truncated_shard_under_two_workers_still_fills_every_batch(numbered_shards):
    """One shard, cut to a third: the second worker's whole range is gone, so it reads what remains."""
    (path,) = numbered_shards([40])
    loader = TrainLoader(path, batch_size=4, resolution=8, channels=1, workers=2)
    _truncate(path, 0.3)  # after the loader counted 40 samples, as dataset.json would say
    batches = take(loader, len(loader))
    assert len(batches) == 10 and all(images.shape[0] == 4 for images, _ in batches)
    assert max(n for images, _ in batches for n in numbers(images)) < 14  # only what the cut shard still holds


def test_shards_with_nothing_readable_under_two_workers_fail_in_one_line(numbered_shards):
    (path,) = numbered_shards([40])
    loader = TrainLoader(path, batch_size=4, resolution=8, channels=1, workers=2)
    _truncate(path, 0.001)  # after the loader has counted the samples
    with pytest.raises(GvaeError) as caught:
        take(loader, 1)
    assert str(caught.value).startswith("no readable samples in ") and "\n" not in str(caught.value)
