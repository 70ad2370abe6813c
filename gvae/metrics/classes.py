"""Which classes does a model produce? Class shares of its samples under a classifier of the data's classes.

MS-SSIM diversity and FID say whether samples vary and look right on average; neither says whether one kind of
image went missing. A classifier trained on the real images' labels (``gvae eval train-features``) answers
that: the share of generated images it assigns to each class, beside the share it assigns among the held-out
images. On the phantoms, whose label is the number of lesions, this is how many samples carry lesions at all.
Comparing predicted shares with predicted shares (not with the true labels) cancels the classifier's own
bias to first order; its accuracy on the held-out images says how far to trust it. The distance between the
two distributions is the total variation, 0.5 * sum |p - q|: the share of samples that would have to change
class to match the real mix (0 = the same mix, 1 = disjoint).

A conditional model's samples carry the label they were drawn with, and a labelled augmentation set is only
as good as those labels: the agreement is the share of samples the classifier assigns to their own label,
overall and per label, to read beside the classifier's accuracy on the held-out images (what agreement a
model whose samples were real images would reach).

Without a classifier, :func:`label_share` asks the generator itself how much its label decides: how far a
sample moves when its label changes, against how far it moves when its latent does. A generator that
ignores its label (its latent carries the class, as the encoder put it there) scores near 0; its samples'
labels then say nothing about them, whatever the classifier would say of any one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


@torch.no_grad()
def predictions(classifier: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int = 250,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """The arg-max class, int64 [N], of each of ``images`` [N, C, H, W]; each batch goes to ``device`` (the
    classifier's) on its own, so a large set need not fit there."""
    parts = [classifier(images[start:start + batch_size].to(device).float()).argmax(1).cpu()
             for start in range(0, len(images), batch_size)]
    return torch.cat(parts) if parts else torch.empty(0, dtype=torch.int64)


def shares(predicted: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Fraction [num_classes] (float64) of the ``predicted`` classes [N] that are each class."""
    return torch.bincount(predicted, minlength=num_classes).double() / max(1, len(predicted))


def predicted_shares(classifier: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, num_classes: int,
                     batch_size: int = 250, device: torch.device | str = "cpu") -> torch.Tensor:
    """Fraction [num_classes] (float64) of ``images`` [N, C, H, W] whose arg-max logit is each class."""
    return shares(predictions(classifier, images, batch_size, device), num_classes)


def label_agreement(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[float, list]:
    """The share of samples whose ``predicted`` class [N] is their drawn label [N], and that share among the
    samples of each label (None for a label no sample was drawn with)."""
    hits = predicted == labels
    per_label = [float(hits[labels == k].double().mean()) if bool((labels == k).any()) else None
                 for k in range(num_classes)]
    return float(hits.double().mean()), per_label


def total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    """0.5 * sum |p - q| of two distributions over the same classes, in [0, 1]."""
    return 0.5 * float((p.double() - q.double()).abs().sum())


@torch.no_grad()
def label_share(decode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], z: torch.Tensor,
                labels: torch.Tensor, num_classes: int, generator: torch.Generator, batch_size: int = 256) -> float:
    """The share of the variation of a conditional generator's samples that its label decides, in [0, 1].

    ``decode(z, labels)`` -> images [n, ...]; z [N, latent] and labels [N] of N >= 2 prior samples, on the
    decoder's device. Each sample G(z_i, y_i) is decoded again with another label, y'_i = y_i + r_i mod K (r_i
    uniform in 1..K-1, drawn from the CPU ``generator``), and with another latent, z_{i+1} (the next sample's,
    cyclically), and

        label = mean_i |G(z_i, y_i) - G(z_i, y'_i)|^2,   latent = mean_i |G(z_i, y_i) - G(z_{i+1}, y_i)|^2,

    returns label / (label + latent): 0 for a generator that ignores its label, 1 for one that ignores its
    latent; for G(z, y) = f(z) + g(y) the ratio of the two parts' mean squared differences (0.5 with
    independent parts of equal spread). 0 when no sample moves either way. Decoded ``batch_size`` at a time.
    """
    if num_classes < 2 or len(z) < 2:
        raise ValueError(f"label_share needs 2 or more classes and samples, got {num_classes} and {len(z)}")
    shift = torch.randint(1, num_classes, (len(labels),), generator=generator).to(labels.device)
    other_labels, other_z = (labels + shift) % num_classes, z.roll(-1, 0)
    by_label = by_latent = 0.0
    for rows in torch.arange(len(z), device=z.device).split(batch_size):
        images = decode(z[rows], labels[rows]).double().flatten(1)
        by_label += float((images - decode(z[rows], other_labels[rows]).double().flatten(1)).square().sum())
        by_latent += float((images - decode(other_z[rows], labels[rows]).double().flatten(1)).square().sum())
    total = by_label + by_latent
    return by_label / total if total > 0 else 0.0


def prior_label_share(decode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], latent_dim: int,
                      num_classes: int, device: torch.device | str, samples: int, seed: int, temperature: float = 1.0,
                      labels: torch.Tensor | None = None) -> float:
    """:func:`label_share` of ``samples`` prior latents N(0, temperature^2 I) with ``labels`` [samples] (default:
    uniform ones), all drawn from a CPU generator seeded by ``seed``, so that no caller's random stream moves."""
    generator = torch.Generator().manual_seed(seed)
    z = temperature * torch.randn(samples, latent_dim, generator=generator)
    if labels is None:
        labels = torch.randint(num_classes, (samples,), generator=generator)
    return label_share(decode, z.to(device), labels.to(device), num_classes, generator)
