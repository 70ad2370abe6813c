"""The eval runner on the real (untrained, tiny) models of every kind: the interface fits and units hold."""

import pytest
import torch

from gvae.config import recipe_from_dict
from gvae.evaluation.runner import evaluate
from gvae.models import build_model


@pytest.mark.parametrize("kind", ["gvae", "vae-dense"])  # the conv VAE and VAE-GAN share the conv parts
def test_untrained_models_evaluate_to_finite_probabilities_of_8_bit_pixels(kind):
    recipe = recipe_from_dict({"data": {"resolution": 16, "channels": 1},
                               "model": {"kind": kind, "latent_dim": 4, "channel_base": 64, "channel_min": 4,
                                         "channel_max": 8, "dense_hidden": [16]}})
    torch.manual_seed(0)
    model = build_model(recipe).eval()
    real = (torch.rand(8, 1, 16, 16) * 255).round() / 255
    results = evaluate(model, real, None, ["mmd", "recon", "elbo", "iwae"], num_samples=8, iwae_k=4, seed=0)
    assert all(torch.isfinite(torch.tensor(entry["value"])) for entry in results.values())
    # A likelihood over 256 bins per pixel is a probability: log p(x) <= 0, so bits/dim >= 0.
    assert results["iwae"]["value"] <= 0 and results["iwae_bpd"]["value"] >= 0
    assert results["elbo"]["value"] <= results["iwae"]["value"] + 1.0
