"""Reconstruction errors and denoising scores against their definitions."""

import math

import pytest
import torch

from gvae.metrics import corrupt, denoising_scores, reconstruction_errors


def images(n=4, c=1, size=32, seed=0):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed))


def test_perfect_reconstruction_has_zero_error_and_unit_ssim():
    x = images()
    scores = reconstruction_errors(x, x.clone())
    assert torch.all(scores["mse"] == 0)
    assert torch.allclose(scores["ssim"], torch.ones(4), atol=1e-5)
    assert torch.all(scores["psnr"] > 70)  # -10 log10(1e-8) = 80 dB: the epsilon's ceiling


def test_psnr_is_minus_ten_log10_mse():
    x = torch.zeros(2, 3, 16, 16)
    x_hat = x + torch.tensor([0.1, 0.01]).view(2, 1, 1, 1)
    scores = reconstruction_errors(x, x_hat)
    assert scores["mse"].tolist() == pytest.approx([0.01, 0.0001], rel=1e-5)
    assert scores["psnr"].tolist() == pytest.approx([20.0, 40.0], abs=1e-3)


def test_corruption_has_the_requested_std_before_clamping():
    x = torch.full((1, 1, 256, 256), 0.5)
    noisy = corrupt(x, 0.1, torch.Generator().manual_seed(0))
    assert (noisy - x).std().item() == pytest.approx(0.1, rel=0.02)
    assert noisy.min() >= 0 and noisy.max() <= 1


def test_identity_reconstruction_scores_the_noisy_input_and_a_perfect_denoiser_wins():
    x = images(seed=1) * 0.5 + 0.25
    g = torch.Generator().manual_seed(2)
    identity = denoising_scores(lambda noisy: noisy, x, 0.2, generator=g)
    assert torch.allclose(identity["psnr"], identity["noisy_psnr"])
    assert identity["psnr"].mean().item() == pytest.approx(-10 * math.log10(0.2**2), abs=1.0)
    oracle = denoising_scores(lambda noisy: x, x, 0.5, generator=g)
    assert torch.all(oracle["psnr"] > 70) and torch.all(oracle["psnr"] > oracle["noisy_psnr"])
