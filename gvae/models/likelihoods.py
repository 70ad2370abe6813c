"""Likelihoods p(x|z) of 8-bit images, as log-probabilities in nats so that every model is comparable.

Images x are [B, C, H, W] floats in [0, 1] that are exact multiples of 1/255 (8-bit pixel values k/255).
A generator outputs one raw value per pixel; the likelihood's ``head`` turns that into the parameter tensor
``params`` (what ``AEOutput.recon_params`` holds), and the functions here read only ``params``:

* ``log_prob(params, x) -> [B]``: log p(x|z) in nats, summed over the D = C*H*W pixel values;
  bits/dim = -log_prob / (D ln 2).
* ``mean(params) -> [B, C, H, W]`` in [0, 1]: the image a model shows for z (reconstructions, samples).

``bernoulli``
    Binary images: the data are binarised at 0.5 (a pixel is 1 when x > 0.5, i.e. 8-bit value >= 128) and
    params are per-pixel logits. log p is the probability of the *binarised* image, so its bits/dim are not
    comparable with those of 8-bit likelihoods; use it for binary data (MNIST-like).

``gaussian``
    A Gaussian discretised to the 256 bins of 8-bit data: pixel value k/255 gets the probability mass of
    N(mu, sigma^2) over [(k - 0.5)/255, (k + 0.5)/255], with the first and last bins extended to -inf and +inf
    (as for the discretised logistic of PixelCNN++), so the 256 masses sum to 1 and log p(x|z) is a
    log-probability, never above 0. A continuous Gaussian density would instead reward a shrinking sigma
    without bound and give bits/dim that depend on the scale of the data. mu = sigmoid(raw) keeps the mean in
    (0, 1); saturated pixels still get full mass because the edge bins reach infinity. sigma is learned, one
    value per channel shared by all pixels and images (the "calibrated decoder" of Rybkin et al., 2021: the
    scale follows the reconstruction error, so the KL/reconstruction balance needs no hand-tuned weight);
    log sigma is clamped to [-9, 1], far outside the useful range for data in [0, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LOG_SCALE_RANGE = (-9.0, 1.0)  # clamp of log sigma: sigma from 1.2e-4 (1/32 of a bin) to e
LOG_SCALE_INIT = math.log(0.1)


def _per_image_sum(values: torch.Tensor) -> torch.Tensor:
    return values.flatten(1).sum(1)


class Bernoulli:
    """Bernoulli pixels on data binarised at 0.5; params are logits [B, C, H, W]."""

    name = "bernoulli"

    def head(self, channels: int) -> nn.Module:
        return nn.Identity()

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        target = (x > 0.5).to(params.dtype)
        return -_per_image_sum(F.binary_cross_entropy_with_logits(params, target, reduction="none"))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)


class LearnedLogScale(nn.Module):
    """Head of the discretised Gaussian: raw [B, C, H, W] -> params [B, 2C, H, W] = (mean logits, log sigma).

    The log-scale is one learned parameter per channel, broadcast to every pixel inside ``forward`` so that it
    is used (and synchronised by DDP, gathered by ZeRO-3) like every other parameter of the autoencoder.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.full((channels,), LOG_SCALE_INIT))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        log_scale = self.log_scale.to(raw.dtype).view(1, -1, 1, 1).expand_as(raw)
        return torch.cat([raw, log_scale], dim=1)


def _log1mexp(d: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(d)) for d < 0, accurate for d near 0 and very negative (Maechler, 2012).

    Both branches see only inputs in their own range so that neither produces inf/NaN gradients.
    """
    near = d > -math.log(2)
    cut = torch.full_like(d, -math.log(2))
    return torch.where(near, torch.log(-torch.expm1(torch.where(near, d, cut))),
                       torch.log1p(-torch.exp(torch.where(near, cut, d))))


class DiscretisedGaussian:
    """Gaussian with a learned scale, discretised over the 256 bins of 8-bit data (see the module docstring)."""

    name = "gaussian"
    bins = 256

    def head(self, channels: int) -> nn.Module:
        return LearnedLogScale(channels)

    @staticmethod
    def split(params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """params [B, 2C, H, W] -> (mu in (0, 1), log sigma), each [B, C, H, W]."""
        logits, log_scale = params.chunk(2, dim=1)
        return torch.sigmoid(logits), log_scale.clamp(*LOG_SCALE_RANGE)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        dtype = torch.promote_types(params.dtype, torch.float32)  # never in half precision
        return _per_image_sum(self.log_mass(*self.split(params.to(dtype)), x.to(dtype)))

    @classmethod
    def log_mass(cls, mu: torch.Tensor, log_scale: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Elementwise log-probability (nats) of the 8-bit values x under N(mu, exp(log_scale)^2) discretised."""
        top = cls.bins - 1
        k = torch.round(x * top).clamp(0, top)
        inv_scale = torch.exp(-log_scale)
        lo = ((k - 0.5) / top - mu) * inv_scale  # bin edges in standard units
        hi = ((k + 0.5) / top - mu) * inv_scale
        # Interior bins: log(Phi(hi) - Phi(lo)). Reflect bins above the mean into the lower tail, where
        # log_ndtr keeps its precision, and subtract in log space.
        above = lo + hi > 0
        a, b = torch.where(above, -hi, lo), torch.where(above, -lo, hi)
        log_b = torch.special.log_ndtr(b)
        interior = log_b + _log1mexp(torch.special.log_ndtr(a) - log_b)
        # Edge bins reach -inf (k = 0) or +inf (k = 255): log Phi(hi) and log(1 - Phi(lo)) = log Phi(-lo).
        return torch.where(k == 0, torch.special.log_ndtr(hi),
                            torch.where(k == top, torch.special.log_ndtr(-lo), interior))

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        """mu: the mean up to the mass the edge bins gather beyond [0, 1] (negligible once sigma << 1)."""
        return self.split(params)[0]


LIKELIHOODS = {"bernoulli": Bernoulli, "gaussian": DiscretisedGaussian}


def get_likelihood(name: str) -> Bernoulli | DiscretisedGaussian:
    return LIKELIHOODS[name]()
