"""Memorisation: copies of training images are caught, fresh samples are not."""

import pytest
import torch

from gvae.errors import GvaeError
from gvae.metrics import memorization, nearest_distances


def draw(n, seed):
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_nearest_distances_match_brute_force_and_ignore_chunking():
    q, r = draw(13, 0), draw(29, 1)
    expected = torch.cdist(q.flatten(1).double(), r.flatten(1).double()).min(1).values
    assert torch.allclose(nearest_distances(q, r, chunk_size=4), expected)
    assert torch.allclose(nearest_distances(q, r), expected)


def test_copies_of_training_images_are_flagged():
    train, heldout = draw(300, 2), draw(200, 3)
    result = memorization(train[:100].clone(), train, heldout)
    assert result["fraction"] == 1.0
    assert result["generated_median"] == pytest.approx(0.0, abs=1e-5)


def test_fresh_samples_of_the_same_distribution_are_rarely_flagged():
    train, heldout, generated = draw(300, 4), draw(200, 5), draw(400, 6)
    result = memorization(generated, train, heldout)
    assert result["fraction"] < 0.05
    assert result["threshold"] > 0


def test_too_few_heldout_images_for_the_percentile_is_a_user_error():
    with pytest.raises(GvaeError, match="at least 100 held-out"):
        memorization(draw(5, 7), draw(50, 8), draw(50, 9))
