"""The diagonal Gaussian posterior q(z|x) = N(mu, exp(logvar)) against the prior N(0, I), in closed form.

One formula shared by the training loss (:mod:`gvae.models.losses`) and the likelihood metrics
(:mod:`gvae.metrics.likelihood`), so the KL that training minimises is the one evaluation reports.
"""

from __future__ import annotations

import torch


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per row [B], nats: 0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)
