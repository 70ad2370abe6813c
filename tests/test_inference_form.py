"""The form gvae runs trained models in for generation and evaluation: BatchNorms folded, channels-last."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from gvae.config import recipe_from_dict
from gvae.loading import fold_batch_norms, in_inference_form
from gvae.models import build_model


def with_statistics(norm: nn.BatchNorm2d, seed: int) -> nn.BatchNorm2d:
    """``norm`` with running statistics and affine terms far from their initial 0 / 1 (which fold to nothing)."""
    g = torch.Generator().manual_seed(seed)
    channels = norm.num_features
    with torch.no_grad():
        norm.running_mean.copy_(torch.randn(channels, generator=g))
        norm.running_var.copy_(torch.rand(channels, generator=g) * 2 + 0.1)
        norm.weight.copy_(torch.randn(channels, generator=g))
        norm.bias.copy_(torch.randn(channels, generator=g))
    return norm


def test_a_folded_convolution_scales_and_shifts_each_output_channel_as_its_norm_did():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    norm = with_statistics(nn.BatchNorm2d(8), seed=1)
    net = nn.Sequential(conv, norm, nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1),
                        with_statistics(nn.BatchNorm2d(4), seed=2)).eval()
    x = torch.randn(5, 3, 12, 12)
    with torch.no_grad():
        expected = net(x)
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)  # the closed form of the fold
        weight = conv.weight * scale[:, None, None, None]
        bias = norm.bias - norm.running_mean * scale
        fold_batch_norms(net)
        assert [type(m) for m in net] == [nn.Conv2d, nn.Identity, nn.ReLU, nn.Conv2d, nn.Identity]
        torch.testing.assert_close(net[0].weight, weight)
        torch.testing.assert_close(net[0].bias, bias)
        torch.testing.assert_close(net(x), expected, rtol=1e-5, atol=1e-5)


def test_norms_that_do_not_follow_a_convolution_and_group_norms_are_left_alone():
    net = nn.Sequential(nn.Linear(4, 32), nn.Unflatten(1, (8, 2, 2)), nn.BatchNorm2d(8),
                        nn.Conv2d(8, 8, 1), nn.GroupNorm(2, 8)).eval()
    fold_batch_norms(net)
    assert [type(m) for m in net] == [nn.Linear, nn.Unflatten, nn.BatchNorm2d, nn.Conv2d, nn.GroupNorm]


def test_folding_refuses_a_model_in_training_mode():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1)))


def test_a_gvae_in_inference_form_encodes_and_decodes_as_it_did():
    recipe = recipe_from_dict({"data": {"resolution": 32, "channels": 3},
                               "model": {"kind": "gvae", "latent_dim": 16, "channel_base": 256, "channel_max": 32}})
    torch.manual_seed(0)
    model = build_model(recipe).eval()
    for i, norm in enumerate(m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        with_statistics(norm, seed=i)
    x, z = torch.rand(6, 3, 32, 32), torch.randn(6, 16)
    with torch.no_grad():
        mean, logvar = model.encode(x)[:2]
        images = model.decode(z)
        fast = in_inference_form(copy.deepcopy(model))
        fast_mean, fast_logvar = fast.encode(x)[:2]
        torch.testing.assert_close(fast_mean, mean, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(fast_logvar, logvar, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(fast.decode(z), images, rtol=1e-4, atol=1e-4)
    norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    left = [m for m in fast.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms > 10 and len(left) == 1  # only the generator's first, after its linear layer
    convs = [m for m in fast.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    assert all(conv.weight.is_contiguous(memory_format=torch.channels_last) for conv in convs)
