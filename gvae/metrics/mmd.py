"""Maximum mean discrepancy between two sets of vectors, with a sum of Gaussian kernels.

MMD^2 is zero exactly when the two distributions agree (for a characteristic kernel), needs no feature
network, and its unbiased estimator has no small-sample bias, so it can be compared across sample sizes.
Because it is unbiased it can come out slightly negative when the two samples share a distribution.

The kernel is k(a, b) = sum over s in bandwidths of exp(-|a - b|^2 / (2 s^2)). With ``bandwidths=None`` the
bandwidths are the median heuristic: m = the median Euclidean distance over all distinct pairs of a pooled
subsample (at most :data:`MEDIAN_SUBSAMPLE` rows, drawn without replacement from x and y together with a
fixed seed), and bandwidths = (m/2, m, 2m); m = 0 (all rows identical) falls back to 1.

Everything is computed in blocks of ``chunk_size`` rows, so memory is O(chunk_size^2 + chunk_size * D)
whatever N and M are: 50,000 x 50,000 rows fit in a few hundred MB.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gvae.errors import GvaeError

MEDIAN_SUBSAMPLE = 1000
BANDWIDTH_FACTORS = (0.5, 1.0, 2.0)


def median_bandwidths(x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> list[float]:
    """Bandwidths (m/2, m, 2m) with m the median distance between distinct rows of a pooled subsample."""
    pooled = torch.cat([x.flatten(1), y.flatten(1)]).double()
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randperm(len(pooled), generator=generator)[:MEDIAN_SUBSAMPLE]
    sub = pooled[rows]
    i, j = torch.triu_indices(len(sub), len(sub), offset=1)
    median = torch.quantile(torch.cdist(sub, sub)[i, j], 0.5).item() if len(sub) > 1 else 0.0
    median = median if median > 0 else 1.0
    return [f * median for f in BANDWIDTH_FACTORS]


def _kernel_sum(a: torch.Tensor, b: torch.Tensor, inv_two_s2: list[float], chunk_size: int,
                same: bool) -> float:
    """Sum of k(a_i, b_j) over all i, j (over i != j when ``same``, i.e. a is b), in float64 blocks."""
    total = 0.0
    sq_a, sq_b = (a * a).sum(1), (b * b).sum(1)
    for i in range(0, len(a), chunk_size):
        a_blk, sq_a_blk = a[i:i + chunk_size], sq_a[i:i + chunk_size]
        # For a set against itself only blocks on or above the diagonal are computed; the others mirror them.
        for j in range(i if same else 0, len(b), chunk_size):
            d2 = (sq_a_blk[:, None] + sq_b[None, j:j + chunk_size] - 2 * a_blk @ b[j:j + chunk_size].T).clamp_min(0)
            k = sum(torch.exp(-d2 * c) for c in inv_two_s2)
            if same and i == j:
                k.fill_diagonal_(0.0)
            total += k.sum().item() * (2 if same and i != j else 1)
    return total


def mmd2(x: torch.Tensor, y: torch.Tensor, bandwidths: Sequence[float] | None = None,
         chunk_size: int = 2048) -> float:
    """Unbiased MMD^2 between the rows of ``x`` [N, D] and ``y`` [M, D] (any trailing shape is flattened).

    MMD^2_u = sum_{i!=j} k(x_i, x_j) / (N(N-1)) + sum_{i!=j} k(y_i, y_j) / (M(M-1)) - 2 sum_{i,j} k(x_i, y_j) / (NM).
    Distances are computed in float64, in blocks of ``chunk_size`` rows; see the module docstring for the
    kernel and the default bandwidths.
    """
    x, y = x.flatten(1).double(), y.flatten(1).double()
    if len(x) < 2 or len(y) < 2:
        raise GvaeError(f"MMD needs at least 2 rows on each side, got {len(x)} and {len(y)}")
    if x.shape[1] != y.shape[1]:
        raise GvaeError(f"MMD: x has {x.shape[1]} features per row but y has {y.shape[1]}")
    if bandwidths is None:
        bandwidths = median_bandwidths(x, y)
    if not bandwidths or min(bandwidths) <= 0:
        raise GvaeError(f"MMD bandwidths must be positive numbers, got {list(bandwidths)}")
    inv_two_s2 = [1.0 / (2.0 * s * s) for s in bandwidths]
    n, m = len(x), len(y)
    kxx = _kernel_sum(x, x, inv_two_s2, chunk_size, same=True) / (n * (n - 1))
    kyy = _kernel_sum(y, y, inv_two_s2, chunk_size, same=True) / (m * (m - 1))
    kxy = _kernel_sum(x, y, inv_two_s2, chunk_size, same=False) / (n * m)
    return kxx + kyy - 2.0 * kxy


def mmd2_with_std(x: torch.Tensor, y: torch.Tensor, subsets: int = 10, subset_size: int | None = None,
                  bandwidths: Sequence[float] | None = None, seed: int = 0,
                  chunk_size: int = 2048) -> tuple[float, float]:
    """Mean and standard deviation of MMD^2 over ``subsets`` random subsets (as KID reports its spread).

    Each subset draws ``subset_size`` rows (default: min(N, M) // subsets, at least 2) without replacement
    from each side. The bandwidths are fixed once from the full samples (median heuristic unless given) so
    that every subset measures the same kernel. The std is the spread of an estimate made at
    ``subset_size`` rows, not the standard error of the full-sample :func:`mmd2`.
    """
    if subsets < 2:
        raise GvaeError(f"MMD std needs at least 2 subsets, got {subsets}")
    size = subset_size or max(2, min(len(x), len(y)) // subsets)
    if size > min(len(x), len(y)):
        raise GvaeError(f"MMD subsets of {size} rows need at least that many on each side, got {len(x)} and {len(y)}")
    if bandwidths is None:
        bandwidths = median_bandwidths(x, y, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        xi = torch.randperm(len(x), generator=generator)[:size]
        yi = torch.randperm(len(y), generator=generator)[:size]
        values.append(mmd2(x[xi], y[yi], bandwidths=bandwidths, chunk_size=chunk_size))
    t = torch.tensor(values, dtype=torch.float64)
    return t.mean().item(), t.std().item()
