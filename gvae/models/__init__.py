"""Models: the GVAE and its baselines behind one interface (:class:`GenerativeModel`, in
:mod:`gvae.models.core`), their likelihoods and losses, and safetensors weights.

``build_model(recipe)`` reads ``recipe.data.resolution``, ``recipe.data.channels`` and ``recipe.model``.
"""

from __future__ import annotations

from gvae.config import Recipe
from gvae.errors import GvaeError
from gvae.models.baselines import build_conv_baseline, build_dense_vae
from gvae.models.core import AEOutput, Autoencoder, GenerativeModel
from gvae.models.gvae import build_gvae
from gvae.models.weights import load_weights, save_weights

BUILDERS = {"gvae": build_gvae, "vae": build_conv_baseline, "vae-dense": build_dense_vae,
            "vaegan": build_conv_baseline}


def build_model(recipe: Recipe) -> GenerativeModel:
    """A freshly initialised model of kind ``recipe.model.kind``, in training mode, on the CPU."""
    if recipe.model.kind not in BUILDERS:  # colorize: not a generative model (see gvae.colorize)
        raise GvaeError(f"model.kind {recipe.model.kind} has no prior to sample or evaluate; apply it with "
                        "gvae colorize RUN IMAGES --out DIR")
    return BUILDERS[recipe.model.kind](recipe)


__all__ = ["AEOutput", "Autoencoder", "GenerativeModel", "build_model", "load_weights", "save_weights"]
