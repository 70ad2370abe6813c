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
from gvae.models.encoder import DenseEncoder
from gvae.models.generator import DenseGenerator
from gvae.models.gvae import GenerativeModel, build_conv_model, build_model_of


def build_vae(recipe: Recipe) -> GenerativeModel:
    return build_conv_model(recipe, with_disc=False, latent_noise=0.0)


def build_vaegan(recipe: Recipe) -> GenerativeModel:
    return build_conv_model(recipe, with_disc=True, latent_noise=0.0)


def build_dense_vae(recipe: Recipe) -> GenerativeModel:
    return build_model_of(recipe, DenseEncoder, DenseGenerator, with_disc=False, latent_noise=0.0)
