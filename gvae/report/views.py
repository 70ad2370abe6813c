"""What the trained model does to real images: reconstructions, a latent interpolation, the latent codes.

Every view uses the posterior mean (``encode(x)[0]``) rather than a sample from q(z|x): the report should
show what the model has learnt, not one draw of its noise, and two reports of the same checkpoint should be
identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class HeldOut:
    """Real images the views are made from: images [N, C, H, W] in [0, 1], labels [N] (-1: unlabelled)."""

    images: torch.Tensor
    labels: torch.Tensor
    label_names: list[str]
    source: str  # where they were read from, for the caption


@torch.no_grad()
def encode_means(model, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Posterior means [N, latent] of ``images`` [N, C, H, W], in batches so memory stays flat."""
    device = next(model.parameters()).device
    return torch.cat([model.encode(images[i:i + batch_size].to(device))[0].cpu()
                      for i in range(0, len(images), batch_size)])


@torch.no_grad()
def reconstructions(model, images: torch.Tensor) -> torch.Tensor:
    """The N originals, then their N reconstructions: [2N, C, H, W], two rows in a grid of N columns."""
    device = next(model.parameters()).device
    recon = model.decode(model.encode(images.to(device))[0]).cpu()
    return torch.cat([images, recon])


@torch.no_grad()
def interpolation(model, first: torch.Tensor, last: torch.Tensor, steps: int) -> torch.Tensor:
    """The strip first, decode(lerp(mu_first, mu_last, t)) for ``steps`` values of t in [0, 1], last.

    ``first`` and ``last`` are single images [C, H, W]; returns [steps + 2, C, H, W]. The two real images at
    the ends show how faithful the strip's end points (their reconstructions) are.
    """
    device = next(model.parameters()).device
    mu = model.encode(torch.stack([first, last]).to(device))[0]
    t = torch.linspace(0, 1, steps, device=device)[:, None]
    decoded = model.decode(mu[0] * (1 - t) + mu[1] * t).cpu()
    return torch.cat([first[None].cpu(), decoded, last[None].cpu()])


def distant_pair(codes: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """Indices of two images to interpolate between: different labels when there are any, far apart in z.

    The pair is the one among the first 64 images with the largest latent distance (among pairs of different
    labels when the set has two labels or more), so the strip crosses a visible change instead of
    interpolating between near-twins.
    """
    n = min(len(codes), 64)
    if n < 2:
        return 0, 0
    distance = torch.cdist(codes[:n].double(), codes[:n].double())
    if len(set(labels[:n].tolist())) > 1:
        distance = distance.masked_fill(labels[:n, None] == labels[None, :n], -1.0)
    flat = int(distance.argmax())
    return flat // n, flat % n
