"""What the trained model does to real images: reconstructions, a latent interpolation, the latent codes.

Every view uses the posterior mean (``encode(x)[0]``) rather than a sample from q(z|x): the report should
show what the model has learnt, not one draw of its noise, and two reports of the same checkpoint should be
identical. A class-conditional model is given each image's label (unconditional ones ignore labels), and its
interpolation stays within one class, since the label it decodes with cannot be interpolated.
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
def encode_means(model, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Posterior means [N, latent] of ``images`` [N, C, H, W] with labels [N], in batches so memory stays flat."""
    device = next(model.parameters()).device
    return torch.cat([model.encode(images[i:i + batch_size].to(device), labels[i:i + batch_size].to(device))[0].cpu()
                      for i in range(0, len(images), batch_size)])


@torch.no_grad()
def reconstructions(model, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The N originals, then their N reconstructions: [2N, C, H, W], two rows in a grid of N columns."""
    device = next(model.parameters()).device
    labels = labels.to(device)
    recon = model.decode(model.encode(images.to(device), labels)[0], labels).cpu()
    return torch.cat([images, recon])


@torch.no_grad()
def interpolation(model, first: torch.Tensor, last: torch.Tensor, steps: int, label: int = -1) -> torch.Tensor:
    """The strip first, decode(lerp(mu_first, mu_last, t)) for ``steps`` values of t in [0, 1], last.

    ``first`` and ``last`` are single images [C, H, W] (of class ``label`` for a conditional model); returns
    [steps + 2, C, H, W]. The two real images at the ends show how faithful the strip's end points (their
    reconstructions) are.
    """
    device = next(model.parameters()).device
    mu = model.encode(torch.stack([first, last]).to(device), torch.full((2,), label, device=device))[0]
    t = torch.linspace(0, 1, steps, device=device)[:, None]
    decoded = model.decode(mu[0] * (1 - t) + mu[1] * t, torch.full((steps,), label, device=device)).cpu()
    return torch.cat([first[None].cpu(), decoded, last[None].cpu()])


@torch.no_grad()
def class_rows(model, per_class: int, seed: int = 0) -> torch.Tensor:
    """Prior samples of a conditional model, ``per_class`` of each class in turn: [K * per_class, C, H, W].

    Every class decodes the same latents (seeded by ``seed``), so a column shows what the label alone changes.
    """
    device = next(model.parameters()).device
    z = torch.randn(per_class, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    labels = torch.arange(model.num_classes).repeat_interleave(per_class)
    return model.decode(z.repeat(model.num_classes, 1).to(device), labels.to(device)).cpu()


def distant_pair(codes: torch.Tensor, labels: torch.Tensor, same_class: bool = False) -> tuple[int, int]:
    """Indices of two images to interpolate between: far apart in z, of different labels when there are any
    (of the same label with ``same_class``, for a conditional model).

    The pair is the one among the first 64 images with the largest latent distance (among pairs of different
    labels when the set has two labels or more), so the strip crosses a visible change instead of
    interpolating between near-twins.
    """
    n = min(len(codes), 64)
    if n < 2:
        return 0, 0
    distance = torch.cdist(codes[:n].double(), codes[:n].double())
    if same_class:
        distance = distance.masked_fill(labels[:n, None] != labels[None, :n], -1.0)
    elif len(set(labels[:n].tolist())) > 1:
        distance = distance.masked_fill(labels[:n, None] == labels[None, :n], -1.0)
    flat = int(distance.argmax())
    return flat // n, flat % n
