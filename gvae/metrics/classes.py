"""Which classes does a model produce? Class shares of its samples under a classifier of the data's classes.

MS-SSIM diversity and FID say whether samples vary and look right on average; neither says whether one kind of
image went missing. A classifier trained on the real images' labels (``gvae eval train-features``) answers
that: the share of generated images it assigns to each class, beside the share it assigns among the held-out
images. On the phantoms, whose label is the number of lesions, this is how many samples carry lesions at all.
Comparing predicted shares with predicted shares (not with the true labels) cancels the classifier's own
bias to first order; its accuracy on the held-out images says how far to trust it. The distance between the
two distributions is the total variation, 0.5 * sum |p - q|: the share of samples that would have to change
class to match the real mix (0 = the same mix, 1 = disjoint).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


@torch.no_grad()
def predicted_shares(classifier: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, num_classes: int,
                     batch_size: int = 250, device: torch.device | str = "cpu") -> torch.Tensor:
    """Fraction [num_classes] (float64) of ``images`` [N, C, H, W] whose arg-max logit is each class; each batch
    goes to ``device`` (the classifier's) on its own, so a large set need not fit there."""
    counts = torch.zeros(num_classes, dtype=torch.int64)
    for start in range(0, len(images), batch_size):
        logits = classifier(images[start:start + batch_size].to(device).float())
        counts += torch.bincount(logits.argmax(1).cpu(), minlength=num_classes)
    return counts.double() / max(1, len(images))


def total_variation(p: torch.Tensor, q: torch.Tensor) -> float:
    """0.5 * sum |p - q| of two distributions over the same classes, in [0, 1]."""
    return 0.5 * float((p.double() - q.double()).abs().sum())
