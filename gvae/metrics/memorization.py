"""Memorisation: are generated images closer to training images than unseen real images are?

For each generated image, the Euclidean pixel distance to its nearest training image; the same for
held-out real images, which the model never saw. A held-out image is "this close" to the training set only
by chance, so the 1st percentile of held-out distances is a threshold that chance crosses 1% of the time.
The score is the fraction of generated images closer than that threshold: about 0.01 for a model that
generalises, towards 1 for one that replays its training set.
"""

from __future__ import annotations

import torch

from gvae.errors import GvaeError


def nearest_distances(queries: torch.Tensor, reference: torch.Tensor, chunk_size: int = 1024) -> torch.Tensor:
    """Euclidean distance [N] from each row of ``queries`` [N, ...] to its nearest row of ``reference`` [M, ...].

    Computed in float64 over chunk_size x chunk_size blocks, so memory stays bounded for large N and M.
    """
    q, r = queries.flatten(1).double(), reference.flatten(1).double()
    if q.shape[1] != r.shape[1]:
        raise GvaeError(f"nearest neighbours: queries have {q.shape[1]} values per image, reference {r.shape[1]}")
    sq_r = (r * r).sum(1)
    out = []
    for i in range(0, len(q), chunk_size):
        qi = q[i:i + chunk_size]
        sq_q = (qi * qi).sum(1, keepdim=True)
        best = torch.full((len(qi),), float("inf"), dtype=torch.float64)
        for j in range(0, len(r), chunk_size):
            d2 = sq_q + sq_r[None, j:j + chunk_size] - 2 * qi @ r[j:j + chunk_size].T
            best = torch.minimum(best, d2.min(1).values)
        out.append(best.clamp_min(0).sqrt())
    return torch.cat(out)


def memorization(generated: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor,
                 percentile: float = 1.0, chunk_size: int = 1024) -> dict[str, float]:
    """Fraction of ``generated`` images nearer to ``train`` than the ``percentile``-th held-out distance.

    All inputs [N, C, H, W] in [0, 1]. Returns {"fraction", "threshold", "generated_median",
    "heldout_median"} (distances in pixel units, i.e. the L2 norm over C*H*W values in [0, 1]).
    """
    min_heldout = int(100 / percentile)
    if len(heldout) < min_heldout:
        raise GvaeError(f"memorisation at the {percentile:g}th percentile needs at least {min_heldout} held-out "
                        f"images, got {len(heldout)}")
    d_gen = nearest_distances(generated, train, chunk_size)
    d_held = nearest_distances(heldout, train, chunk_size)
    threshold = torch.quantile(d_held, percentile / 100).item()
    return {"fraction": (d_gen < threshold).double().mean().item(), "threshold": threshold,
            "generated_median": d_gen.median().item(), "heldout_median": d_held.median().item()}
