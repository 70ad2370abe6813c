"""MS-SSIM diversity: 1 for identical images, ~0 for independent noise, any size from 16 px."""

import pytest
import torch

from gvae.errors import GvaeError
from gvae.metrics import msssim_config, msssim_diversity


def noise(n, c, size, seed=0):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed))


def test_identical_images_score_one():
    images = noise(1, 1, 28).expand(3, -1, -1, -1)
    assert msssim_diversity(images, num_pairs=5, seed=0) == pytest.approx(1.0, abs=1e-4)


def test_independent_noise_scores_near_zero():
    assert msssim_diversity(noise(10, 1, 28, seed=1), num_pairs=30, seed=0) < 0.1


def test_megapixel_images_use_all_five_scales():
    a, b = noise(2, 1, 1024, seed=2)
    assert msssim_diversity(torch.stack([a, a]), num_pairs=1, seed=0) == pytest.approx(1.0, abs=1e-4)
    assert msssim_diversity(torch.stack([a, b]), num_pairs=1, seed=0) < 0.1


def test_colour_images_are_compared_over_all_channels():
    images = noise(4, 3, 64, seed=4)
    assert msssim_diversity(images, num_pairs=6, seed=0) < 0.1
    assert msssim_diversity(images[:1].expand(2, -1, -1, -1), num_pairs=1, seed=0) == pytest.approx(1.0, abs=1e-4)


def test_smooth_images_score_between_noise_and_copies():
    base = torch.linspace(0, 1, 32).view(1, 1, 1, 32).expand(8, 1, 32, 32)
    images = (base + 0.1 * noise(8, 1, 32, seed=2)).clamp(0, 1)
    assert 0.1 < msssim_diversity(images, num_pairs=20, seed=0) < 1.0


def test_same_seed_same_pairs_same_value():
    images = noise(10, 1, 32, seed=3)
    assert msssim_diversity(images, 16, seed=5) == msssim_diversity(images, 16, seed=5)


@pytest.mark.parametrize(("size", "kernel", "scales"),
                         [(16, 7, 2), (28, 7, 3), (64, 11, 3), (128, 11, 4), (161, 11, 5), (1024, 11, 5)])
def test_small_images_use_fewer_scales_and_a_smaller_window(size, kernel, scales):
    config = msssim_config(size, size)
    assert (config.kernel_size, config.scales) == (kernel, scales)
    assert sum(config.scale_weights) == pytest.approx(1.0)


def test_images_under_16_px_are_refused():
    with pytest.raises(GvaeError, match="at least 16 px"):
        msssim_diversity(noise(4, 1, 15), 2, seed=0)
