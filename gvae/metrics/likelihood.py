"""Likelihood metrics: the ELBO and its terms, the importance-weighted bound (IWAE), bits per dimension.

Both bounds are model-agnostic: they take ``encode(x) -> (mu, logvar)`` of a diagonal Gaussian q(z|x),
``log_px_z(x, z) -> [B]`` in nats, and assume the prior p(z) = N(0, I).

ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) <= IWAE_K(x) <= IWAE_K'(x) <= log p(x) for K <= K'
(in expectation over the importance samples), and IWAE_K(x) -> log p(x) as K grows (Burda et al., 2016).

Units: nats per image. :func:`bits_per_dim` divides by D ln 2 with D = C * H * W and no log(256) term,
because the models' likelihoods are already probabilities of 8-bit pixel values (a Gaussian discretised
into 256 bins, or a Bernoulli), not densities on [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from gvae.errors import GvaeError
from gvae.gaussian import gaussian_kl

Encode = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
LogPxZ = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

_LOG_2PI = math.log(2 * math.pi)


def bits_per_dim(log_px: torch.Tensor | float, dims: int) -> torch.Tensor | float:
    """Negative log-likelihood in bits per dimension: -log p(x) / (D ln 2), ``log_px`` in nats, D = C*H*W."""
    return -log_px / (dims * math.log(2))


def standard_error(values: torch.Tensor) -> float:
    """Standard error of the mean of per-image values [N]: std (N-1 denominator) / sqrt(N); 0 for N = 1."""
    n = values.numel()
    return values.double().std().item() / math.sqrt(n) if n > 1 else 0.0


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    return -0.5 * (_LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


@torch.no_grad()
def elbo_terms(encode: Encode, log_px_z: LogPxZ, x: torch.Tensor,
               generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Single-sample ELBO of each image in ``x`` [B, C, H, W]: {"elbo", "log_px_z", "kl"}, each [B], nats.

    The reconstruction term uses one reparameterised z ~ q(z|x); the KL is analytic. Its noise averages out
    over a test set, so the mean ELBO is unbiased.
    """
    mu, logvar = encode(x)
    eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    rec = log_px_z(x, mu + eps * torch.exp(0.5 * logvar))
    kl = gaussian_kl(mu, logvar)
    return {"elbo": rec - kl, "log_px_z": rec, "kl": kl}


@torch.no_grad()
def iwae_log_likelihood(encode: Encode, log_px_z: LogPxZ, x: torch.Tensor, k: int, batch_size: int = 256,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Importance-weighted estimate of log p(x) [N] in nats, with ``k`` samples from q(z|x) per image.

    log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log k. At most ``batch_size``
    (image, z) pairs go through ``log_px_z`` at once: images are taken in groups of max(1, batch_size // k)
    and their k samples in chunks, and the logsumexp is accumulated chunk by chunk, so K = 5000 needs
    no more memory than K = 1.
    """
    if k < 1:
        raise GvaeError(f"IWAE needs k >= 1 importance samples, got {k}")
    group = max(1, batch_size // k)
    chunk = min(k, max(1, batch_size // group))
    out = []
    for start in range(0, len(x), group):
        xg = x[start:start + group]
        mu, logvar = encode(xg)
        latent_shape = mu.shape[1:]
        mu, logvar = mu.flatten(1), logvar.flatten(1)
        acc = torch.full((len(xg),), -math.inf, dtype=torch.float64, device=mu.device)
        for done in range(0, k, chunk):
            c = min(chunk, k - done)
            eps = torch.randn((c, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
            z = mu + eps * torch.exp(0.5 * logvar)  # [c, g, d]
            x_rep = xg.unsqueeze(0).expand(c, *xg.shape).reshape(c * len(xg), *xg.shape[1:])
            log_px = log_px_z(x_rep, z.reshape(c * len(xg), *latent_shape)).view(c, len(xg))
            log_pz = -0.5 * (_LOG_2PI + z.pow(2)).sum(-1)
            log_w = (log_px + log_pz - _log_normal(z, mu, logvar)).double()
            acc = torch.logaddexp(acc, torch.logsumexp(log_w, dim=0))
        out.append(acc - math.log(k))
    return torch.cat(out)
