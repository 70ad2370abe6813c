"""The GVAE: the shared containers (:mod:`gvae.models.core`) with noise injections in the autoencoder.

The noise makes the encoder robust and spreads the generator's input: the encoder sees x + sigma_x * eps
(sigma_x = ``model.input_noise``, annealed by :func:`gvae.models.losses.schedule_values`), and the generator
sees z + ``model.latent_noise`` * eps while training. The baselines (:mod:`gvae.models.baselines`) are the
same containers without them.
"""

from __future__ import annotations

from gvae.config import Recipe
from gvae.models.core import GenerativeModel, build_conv_model


def build_gvae(recipe: Recipe) -> GenerativeModel:
    """GVAE: ResNet encoder and generator with input and latent noise, against a ResNet discriminator."""
    return build_conv_model(recipe, latent_noise=recipe.model.latent_noise)
