"""Baselines with the GVAE's interfaces and likelihoods, so that every metric compares like with like.

* ``vae``: the GVAE's ResNet encoder and generator, trained by the ELBO alone: no noise injection, no
  discriminator.
* ``vae-dense``: a fully connected VAE (``model.dense_hidden``, the 784-512-256-latent MNIST style).
* ``vaegan``: VAE-GAN (Larsen et al., 2016): the ResNet VAE plus a discriminator; besides the adversarial term
  the reconstruction is also measured in the discriminator's features (see :mod:`gvae.models.losses`).
  No noise injection: that is what sets the GVAE apart.
"""

from __future__ import annotations

from gvae.config import Recipe
from gvae.models.core import GenerativeModel, build_conv_model, build_model_of
from gvae.models.encoder import DenseEncoder
from gvae.models.generator import DenseGenerator


def build_conv_baseline(recipe: Recipe) -> GenerativeModel:
    """``vae`` and ``vaegan``: the GVAE's ResNet pair without noise; the kind's traits add vaegan's discriminator."""
    return build_conv_model(recipe, latent_noise=0.0)


def build_dense_vae(recipe: Recipe) -> GenerativeModel:
    return build_model_of(recipe, DenseEncoder, DenseGenerator, latent_noise=0.0)
