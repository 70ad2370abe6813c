"""The keys that hyper-parameter studies vary: model.kernel_size (conv blocks), model.dense_dropout (vae-dense)."""

from __future__ import annotations

import pytest
import torch

from gvae.config import recipe_from_dict
from gvae.errors import GvaeError
from gvae.models import build_model
from gvae.models.blocks import ResBlock

NARROW = {"kind": "gvae", "channel_base": 64, "channel_min": 4, "channel_max": 8, "latent_dim": 8}


def seeded_model(**model):
    torch.manual_seed(0)
    return build_model(recipe_from_dict({"data": {"resolution": 32}, "model": {**NARROW, **model}}))


def block_kernels(model) -> set[tuple[int, ...]]:
    return {conv.kernel_size for block in model.modules() if isinstance(block, ResBlock)
            for conv in block.body if isinstance(conv, torch.nn.Conv2d)}


def test_the_default_is_the_3x3_network_bit_for_bit():
    default, explicit = seeded_model().state_dict(), seeded_model(kernel_size=3).state_dict()
    assert block_kernels(seeded_model()) == {(3, 3)}
    assert default.keys() == explicit.keys()
    assert all(torch.equal(default[k], explicit[k]) for k in default)


def test_a_5x5_kernel_widens_every_block_and_keeps_the_shapes():
    model = seeded_model(kernel_size=5)
    assert block_kernels(model) == {(5, 5)}
    x = torch.rand(2, 1, 32, 32)
    assert model.ae(x, torch.randn(2, 8), 0.0).recon.shape == x.shape


@pytest.mark.parametrize(("value", "message"), [(4, "must be odd"), (17, "must be 1 to 15")])
def test_an_even_or_huge_kernel_is_refused_naming_the_key(value, message):
    with pytest.raises(GvaeError, match=f"model.kernel_size: got {value}; {message}"):
        recipe_from_dict({"data": {"resolution": 32}, "model": {"kernel_size": value}})


def test_vae_dense_has_no_dropout_by_default_and_model_dropout_does_not_reach_it():
    model = seeded_model(kind="vae-dense", dense_hidden=[16, 8], dropout=0.5)
    assert not any(isinstance(m, torch.nn.Dropout) for m in model.modules())


def test_dense_dropout_drops_hidden_units_while_training_only():
    model = seeded_model(kind="vae-dense", dense_hidden=[16, 8], dense_dropout=0.5)
    assert sum(isinstance(m, torch.nn.Dropout) for m in model.modules()) == 4  # after each of 2 + 2 hidden layers
    x = torch.rand(4, 1, 32, 32)
    model.train()
    assert not torch.equal(model.encode(x)[0], model.encode(x)[0])
    model.eval()
    assert torch.equal(model.encode(x)[0], model.encode(x)[0])
