"""Model construction and the inference interface, on narrow networks so that every resolution is quick."""

from __future__ import annotations

import pytest
import torch

from gvae.config import recipe_from_dict
from gvae.errors import GvaeError
from gvae.models import build_model, load_weights, save_weights
from gvae.models.blocks import AddCoords, channel_width

KINDS = ["gvae", "vae", "vae-dense", "vaegan"]
NARROW = {"channel_base": 64, "channel_min": 4, "channel_max": 8, "latent_dim": 8, "dense_hidden": [32, 16]}


def narrow_model(kind: str, resolution: int = 32, channels: int = 1, **model):
    recipe = recipe_from_dict({"data": {"resolution": resolution, "channels": channels},
                               "model": {**NARROW, "kind": kind, **model}})
    return build_model(recipe)


def images(b: int, c: int, r: int, seed: int = 0) -> torch.Tensor:
    """8-bit images as the loader gives them: multiples of 1/255 in [0, 1]."""
    return torch.randint(0, 256, (b, c, r, r), generator=torch.Generator().manual_seed(seed)) / 255


def train_pass(model, x: torch.Tensor) -> None:
    """One forward of each player and a backward through everything."""
    out = model.ae(x, torch.randn(x.shape[0], model.latent_dim), 0.05)
    loss = -out.log_px_z.mean() + out.recon.mean() + out.fake.mean()
    if model.disc is not None:
        logits, features = model.disc(torch.cat([x, out.recon, out.fake]))
        assert logits.shape == (3 * x.shape[0],) and features.shape[0] == 3 * x.shape[0]
        loss = loss + logits.mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("resolution", [32, 64, 256])
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_runs_forward_and_backward(kind, resolution):
    model = narrow_model(kind, resolution, channels=3)
    x = images(2, 3, resolution)
    out = model.ae(x, torch.randn(2, model.latent_dim), 0.05)
    assert out.recon.shape == out.fake.shape == x.shape
    assert out.mu.shape == out.logvar.shape == out.z.shape == (2, 8)
    assert out.log_px_z.shape == (2,)
    assert out.recon.min() >= 0 and out.recon.max() <= 1
    train_pass(model, x)


def test_gvae_runs_forward_and_backward_at_1024_px_batch_1():
    model = narrow_model("gvae", 1024, channels=3)
    train_pass(model, images(1, 3, 1024))


def test_add_coords_appends_x_then_y_from_minus_one_to_one():
    h = torch.randn(2, 3, 4, 4)
    out = AddCoords()(h)
    assert out.shape == (2, 5, 4, 4) and torch.equal(out[:, :3], h)
    steps = torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0])
    torch.testing.assert_close(out[1, 3], steps.expand(4, 4))  # x grows to the right
    torch.testing.assert_close(out[1, 4], steps[:, None].expand(4, 4))  # y grows downwards


def test_a_generator_with_coordinate_channels_feeds_them_to_every_level_and_trains():
    plain, coords = narrow_model("gvae", 32), narrow_model("gvae", 32, coord_channels=True)
    added = [m for m in coords.ae.generator.modules() if isinstance(m, AddCoords)]
    assert len(added) == 3 and not any(isinstance(m, AddCoords) for m in plain.modules())  # 8, 16, 32 px
    first = coords.ae.generator.trunk.levels[0][2].body[0]  # up-sample, coordinates, then the first block
    assert first.in_channels == plain.ae.generator.trunk.levels[0][1].body[0].in_channels + 2
    train_pass(coords, images(2, 1, 32))


def test_fake_is_none_without_prior_latents():
    model = narrow_model("vae")
    assert model.ae(images(2, 1, 32), None, 0.0).fake is None


def test_channel_width_is_clamped_base_over_side():
    cfg = recipe_from_dict({"model": {"channel_base": 4096, "channel_min": 16, "channel_max": 256}}).model
    assert [channel_width(s, cfg) for s in (1024, 256, 64, 16, 4)] == [16, 16, 64, 256, 256]


@pytest.mark.parametrize("kind", KINDS)
def test_param_counts_cover_every_parameter_once(kind):
    model = narrow_model(kind)
    counts = model.param_counts()
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["total"] == counts["encoder"] + counts["generator"] + counts["discriminator"]
    assert counts["encoder"] > 0 and counts["generator"] > 0
    assert (counts["discriminator"] > 0) == (kind in ("gvae", "vaegan"))


def test_gaussian_scale_is_an_autoencoder_parameter():
    model = narrow_model("vae", likelihood="gaussian")
    assert any(name.endswith("log_scale") for name, _ in model.ae.named_parameters())


@pytest.mark.parametrize("kind", KINDS)
def test_inference_interface_on_every_kind(kind):
    model = narrow_model(kind).eval()
    x = images(3, 1, 32)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 8)
    decoded = model.decode(mu)
    assert decoded.shape == x.shape and decoded.min() >= 0 and decoded.max() <= 1
    log_p = model.log_px_z(x, mu)
    assert log_p.shape == (3,) and (log_p <= 0).all()  # a log-probability mass of 8-bit data
    assert model.sample(2).shape == (2, 1, 32, 32)


def test_encode_in_eval_mode_is_deterministic():
    model = narrow_model("gvae").eval()
    x = images(2, 1, 32)
    assert torch.equal(model.encode(x)[0], model.encode(x)[0])


@pytest.mark.parametrize("kind", ["gvae", "vae-dense"])
def test_latent_norm_standardises_the_batch_means_per_dimension(kind):
    plain, normed = narrow_model(kind), narrow_model(kind, latent_norm=True)
    assert sum(p.numel() for p in normed.parameters()) == sum(p.numel() for p in plain.parameters())
    x, seen = images(16, 1, 32), []
    norm = normed.ae.encoder.mean_norm
    norm.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach()))
    mu, _ = normed.train().encode(x)
    raw = seen[0]
    torch.testing.assert_close(mu, (raw - raw.mean(0)) / torch.sqrt(raw.var(0, unbiased=False) + norm.eps))
    torch.testing.assert_close(mu.mean(0), torch.zeros(8), atol=1e-5, rtol=0)
    normed.eval()  # running statistics: a code no longer depends on the rest of the batch
    torch.testing.assert_close(normed.encode(x[:1])[0], normed.encode(x)[0][:1])


def test_input_noise_changes_the_encoder_input():
    model = narrow_model("gvae", dropout=0.0).eval()
    x = images(2, 1, 32)
    assert torch.equal(model.ae(x, None, 0.0).mu, model.ae(x, None, 0.0).mu)
    assert not torch.equal(model.ae(x, None, 0.0).mu, model.ae(x, None, 0.1).mu)


def test_sample_is_a_function_of_the_generator_seed():
    model = narrow_model("gvae").eval()
    first = model.sample(4, torch.Generator().manual_seed(7))
    again = model.sample(4, torch.Generator().manual_seed(7))
    other = model.sample(4, torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)


@pytest.mark.parametrize("kind", ["gvae", "vae-dense"])
def test_safetensors_round_trip_is_bit_exact(kind, tmp_path):
    model = narrow_model(kind)
    train_pass(model, images(4, 1, 32))  # moves BatchNorm running statistics and num_batches_tracked
    path = tmp_path / "model.safetensors"
    save_weights(model, path)
    fresh = narrow_model(kind)
    load_weights(fresh, path)
    saved, loaded = model.state_dict(), fresh.state_dict()
    assert saved.keys() == loaded.keys()
    for name, tensor in saved.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor), name
    x = images(2, 1, 32, seed=1)
    assert torch.equal(model.eval().decode(model.encode(x)[0]), fresh.eval().decode(fresh.encode(x)[0]))


def test_batchnorm_step_counter_survives_the_round_trip(tmp_path):
    model = narrow_model("vae")
    train_pass(model, images(2, 1, 32))
    save_weights(model, tmp_path / "m.safetensors")
    fresh = narrow_model("vae")
    load_weights(fresh, tmp_path / "m.safetensors")
    counters = [b for name, b in fresh.named_buffers() if name.endswith("num_batches_tracked")]
    assert counters and all(int(c) == 1 and c.dtype == torch.int64 for c in counters)


def test_load_weights_rejects_a_model_of_another_recipe(tmp_path):
    save_weights(narrow_model("vae"), tmp_path / "m.safetensors")
    with pytest.raises(GvaeError, match="does not match"):
        load_weights(narrow_model("vae", latent_dim=16), tmp_path / "m.safetensors")
