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
from gvae.models.gvae import Autoencoder, GenerativeModel, build_conv_model
from gvae.models.likelihoods import get_likelihood


def build_vae(recipe: Recipe) -> GenerativeModel:
    return build_conv_model(recipe, with_disc=False, latent_noise=0.0)


def build_vaegan(recipe: Recipe) -> GenerativeModel:
    return build_conv_model(recipe, with_disc=True, latent_noise=0.0)


def build_dense_vae(recipe: Recipe) -> GenerativeModel:
    cfg, c, r = recipe.model, recipe.data.channels, recipe.data.resolution
    ae = Autoencoder(DenseEncoder(c, r, cfg.latent_dim, cfg), DenseGenerator(c, r, cfg.latent_dim, cfg),
                     get_likelihood(cfg.likelihood), c)
    return GenerativeModel(cfg.kind, ae, None, cfg.latent_dim, r, c)
