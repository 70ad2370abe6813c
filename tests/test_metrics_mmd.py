"""MMD^2: unbiased, chunked, and equal to a direct NumPy computation."""

import numpy as np
import pytest
import torch

from gvae.errors import GvaeError
from gvae.metrics import median_bandwidths, mmd2, mmd2_with_std


def numpy_mmd2(x: np.ndarray, y: np.ndarray, bandwidths) -> float:
    """The textbook unbiased estimator, written independently: full kernel matrices, diagonals removed."""

    def gram(a, b):
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return sum(np.exp(-d2 / (2 * s**2)) for s in bandwidths)

    n, m = len(x), len(y)
    kxx, kyy, kxy = gram(x, x), gram(y, y), gram(x, y)
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.mean())


def sample(n, d=8, shift=0.0, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) + shift


def test_matches_numpy_reference_with_given_bandwidths():
    x, y = sample(40, seed=1), sample(30, shift=0.5, seed=2)
    expected = numpy_mmd2(x.double().numpy(), y.double().numpy(), [1.0, 3.0])
    assert mmd2(x, y, bandwidths=[1.0, 3.0]) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_chunking_does_not_change_the_value():
    x, y = sample(57, seed=3), sample(45, shift=0.3, seed=4)
    assert mmd2(x, y, chunk_size=7) == pytest.approx(mmd2(x, y, chunk_size=4096), rel=1e-10)


def test_default_bandwidths_are_the_median_heuristic():
    x, y = sample(50, seed=5), sample(50, shift=1.0, seed=6)
    pooled = torch.cat([x, y]).double().numpy()
    d = np.sqrt(((pooled[:, None] - pooled[None]) ** 2).sum(-1))
    median = np.median(d[np.triu_indices(len(pooled), k=1)])
    assert median_bandwidths(x, y) == pytest.approx([median / 2, median, 2 * median])
    expected = numpy_mmd2(x.double().numpy(), y.double().numpy(), [median / 2, median, 2 * median])
    assert mmd2(x, y) == pytest.approx(expected, rel=1e-9)


def test_near_zero_and_possibly_negative_for_one_distribution():
    values = [mmd2(sample(200, seed=s), sample(200, seed=100 + s)) for s in range(5)]
    assert all(abs(v) < 0.02 for v in values) and abs(np.mean(values)) < 0.01
    assert min(values) < 0  # unbiased: no floor at zero


def test_grows_with_mean_shift():
    x = sample(200, seed=7)
    values = [mmd2(x, sample(200, shift=s, seed=8), bandwidths=[4.0]) for s in (0.0, 0.25, 0.5, 1.0)]
    assert values == sorted(values) and values[-1] > 0.1


def test_with_std_is_the_spread_over_subsets():
    x, y = sample(300, seed=9), sample(300, shift=0.5, seed=10)
    mean, std = mmd2_with_std(x, y, subsets=5, subset_size=100, bandwidths=[4.0])
    assert std > 0
    assert mean == pytest.approx(mmd2(x, y, bandwidths=[4.0]), abs=3 * std)


def test_too_few_rows_is_a_user_error():
    with pytest.raises(GvaeError, match="at least 2 rows"):
        mmd2(sample(1), sample(10))
