"""Metrics as pure functions of tensors, one module each, each checked against a closed form in tests/.

Images are [N, C, H, W] in [0, 1]; likelihoods are in nats unless a name says bits/dim.
"""

from gvae.gaussian import gaussian_kl
from gvae.metrics.denoise import NOISE_LEVELS, corrupt, denoising_scores
from gvae.metrics.features import load_classifier, save_classifier, train_classifier
from gvae.metrics.fidelity import (
    FIDELITY_METRICS,
    Features,
    check_classifier,
    fidelity_metrics,
    resolve_features,
)
from gvae.metrics.likelihood import bits_per_dim, elbo_terms, iwae_log_likelihood, standard_error
from gvae.metrics.memorization import memorization, nearest_distances
from gvae.metrics.mmd import median_bandwidths, mmd2, mmd2_with_std
from gvae.metrics.msssim import MsssimConfig, msssim, msssim_config, msssim_diversity
from gvae.metrics.reconstruction import reconstruction_errors

__all__ = [
    "FIDELITY_METRICS", "NOISE_LEVELS", "Features", "MsssimConfig", "bits_per_dim", "check_classifier", "corrupt",
    "denoising_scores", "elbo_terms", "fidelity_metrics", "gaussian_kl", "iwae_log_likelihood", "load_classifier",
    "median_bandwidths", "memorization", "mmd2", "mmd2_with_std", "msssim", "msssim_config", "msssim_diversity",
    "nearest_distances", "reconstruction_errors", "resolve_features", "save_classifier", "standard_error",
    "train_classifier",
]
