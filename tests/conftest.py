"""Shared fixtures: tiny WebDataset shards whose images encode their own sample number."""

import numpy as np
import pytest
import torch

from gvae.data import encode_png, write_shard


def _numbered_sample(number: int, resolution: int = 8) -> dict:
    """A sample whose every pixel equals ``number`` (0..255) and whose label is ``number % 3``."""
    image = np.full((resolution, resolution), number, np.uint8)
    return {"__key__": f"{number:06d}", "png": encode_png(image), "cls": number % 3, "json": {"number": number}}


@pytest.fixture
def numbered_sample():
    """Make one numbered sample: ``numbered_sample(number, resolution=8)``."""
    return _numbered_sample


@pytest.fixture
def numbered_shards(tmp_path):
    """Write shards of the given sizes holding samples 0, 1, 2, ... in order; returns their paths."""

    def make(sizes, resolution=8, directory=None):
        directory = directory or tmp_path / "shards"
        directory.mkdir(exist_ok=True)
        paths, number = [], 0
        for index, size in enumerate(sizes):
            path = directory / f"train-{index:06d}.tar"
            write_shard(path, [_numbered_sample(number + i, resolution) for i in range(size)])
            paths.append(str(path))
            number += size
        return paths

    return make


@pytest.fixture(scope="module")
def one_thread():
    """Two cores shared with other jobs: one intra-op thread is much faster than two fighting for them. A
    module asks for it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
