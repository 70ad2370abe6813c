"""Likelihoods and losses against independent computations, and where each loss's gradients go."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli as TorchBernoulli
from torch.distributions import Normal, kl_divergence

from gvae.config import LossConfig, recipe_from_dict
from gvae.errors import GvaeError
from gvae.gaussian import gaussian_kl as gvae_kl
from gvae.models import build_model
from gvae.models.likelihoods import Bernoulli, DiscretisedGaussian
from gvae.models.losses import discriminator_loss, generator_loss, schedule_values
from tests.test_models import NARROW, images, narrow_model


def gaussian_params(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Parameters of the discretised Gaussian for means mu in (0, 1) and scales sigma, both [B, C, H, W]."""
    return torch.cat([torch.logit(mu), sigma.log()], dim=1)


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(5, 7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    q = Normal(mu, torch.exp(0.5 * logvar))
    expected = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(1)
    torch.testing.assert_close(gvae_kl(mu, logvar), expected)


def test_bernoulli_log_prob_matches_torch_on_data_binarised_at_half():
    logits, x = torch.randn(3, 2, 4, 4, dtype=torch.float64), images(3, 2, 4).double()
    expected = TorchBernoulli(logits=logits).log_prob((x > 0.5).double()).flatten(1).sum(1)
    torch.testing.assert_close(Bernoulli().log_prob(logits, x), expected)


def test_discretised_gaussian_matches_normal_cdf_differences():
    g = torch.Generator().manual_seed(0)
    x = images(4, 3, 5).double()
    # |x - mu| / sigma <= 5: there the naive difference of two CDFs is still accurate in float64
    mu = (x + 0.05 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0.01, 0.99)
    sigma = torch.empty_like(x).uniform_(0.02, 0.5, generator=g)
    normal = Normal(mu, sigma)
    upper = torch.where(x >= 1, torch.ones_like(x), normal.cdf(x + 0.5 / 255))
    lower = torch.where(x <= 0, torch.zeros_like(x), normal.cdf(x - 0.5 / 255))
    expected = torch.log(upper - lower).flatten(1).sum(1)
    actual = DiscretisedGaussian().log_prob(gaussian_params(mu, sigma), x)
    torch.testing.assert_close(actual, expected, rtol=1e-6, atol=1e-6)


def test_discretised_gaussian_is_accurate_far_in_the_tails():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 60
    mu, sigma = 0.2, 0.01
    values = [k / 255 for k in (0, 1, 38, 64, 153, 254, 255)]  # edges, near and far (up to 80 sigma) bins

    def reference(v: float) -> float:
        """The bin's mass at 60 digits, from the lower tail of the side of mu the bin lies on."""
        lo, hi = (v - 0.5 / 255 - mu) / sigma, (v + 0.5 / 255 - mu) / sigma
        if v > mu:  # mass = P(Z > lo) - P(Z > hi) = Phi(-lo) - Phi(-hi)
            return float(mpmath.log(mpmath.ncdf(-lo) - (mpmath.ncdf(-hi) if v < 1 else 0)))
        return float(mpmath.log(mpmath.ncdf(hi) - (mpmath.ncdf(lo) if v > 0 else 0)))

    x = torch.tensor(values, dtype=torch.float64)
    actual = DiscretisedGaussian.log_mass(torch.full_like(x, mu), torch.full_like(x, math.log(sigma)), x)
    torch.testing.assert_close(actual, torch.tensor([reference(v) for v in values], dtype=torch.float64))


@pytest.mark.parametrize("sigma", [1e-3, 0.05, 0.5])
def test_discretised_gaussian_masses_over_the_256_bins_sum_to_one(sigma):
    mu = torch.tensor([[0.003], [0.3], [0.5], [0.77], [0.998]], dtype=torch.float64)
    every_bin = (torch.arange(256, dtype=torch.float64) / 255).expand(5, 256)
    log_scale = torch.full_like(every_bin, math.log(sigma))
    masses = DiscretisedGaussian.log_mass(mu.expand(5, 256), log_scale, every_bin).exp()
    torch.testing.assert_close(masses.sum(1), torch.ones(5, dtype=torch.float64))


def test_discretised_gaussian_has_finite_gradients_at_extreme_scales():
    mu = torch.tensor([1e-4, 0.5, 1 - 1e-4]).view(1, 3, 1, 1)
    for sigma in (1e-4, 3.0):
        params = gaussian_params(mu, torch.full_like(mu, sigma)).requires_grad_()
        log_p = DiscretisedGaussian().log_prob(params, torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))
        log_p.sum().backward()
        assert torch.isfinite(log_p).all() and torch.isfinite(params.grad).all()


def test_schedule_anneals_input_noise_and_warms_up_beta():
    recipe = recipe_from_dict({"model": {"input_noise": 0.2, "input_noise_anneal_steps": 100},
                               "loss": {"beta": 2.0, "kl_warmup_steps": 10}})
    assert schedule_values(recipe, 0) == {"input_noise": 0.2, "beta": 0.0}
    assert schedule_values(recipe, 50) == pytest.approx({"input_noise": 0.1, "beta": 2.0})
    assert schedule_values(recipe, 500) == pytest.approx({"input_noise": 0.0, "beta": 2.0})


def test_baselines_get_no_input_noise():
    recipe = recipe_from_dict({"model": {"kind": "vaegan", "input_noise": 0.2}})
    assert schedule_values(recipe, 0)["input_noise"] == 0.0


def test_generator_loss_without_discriminator_is_the_negative_elbo():
    model = narrow_model("vae")
    x = images(3, 1, 32)
    out = model.ae(x, None, 0.0)
    total, terms = generator_loss(out, x, None, LossConfig(), beta=0.5, feature_matching=False)
    expected = -out.log_px_z.mean() + 0.5 * gvae_kl(out.mu, out.logvar).mean()
    torch.testing.assert_close(total, expected)
    assert set(terms) == {"nll", "kl", "bpd", "total"}


def _grads(module) -> list[torch.Tensor]:
    return [p.grad for p in module.parameters() if p.grad is not None and p.grad.abs().sum() > 0]


def test_discriminator_loss_does_not_reach_the_autoencoder():
    model = narrow_model("gvae")
    x = images(2, 1, 32)
    out = model.ae(x, torch.randn(2, 8), 0.05)
    loss, terms = discriminator_loss(model.disc, x, out, LossConfig())
    loss.backward()
    assert all(p.grad is None for p in model.ae.parameters())
    assert _grads(model.disc)
    assert {"d_real", "d_recon", "d_fake", "d_loss"} <= set(terms)


@pytest.mark.parametrize("kind", ["gvae", "vaegan"])
def test_adversarial_loss_reaches_encoder_and_generator_but_not_the_frozen_discriminator(kind):
    model = narrow_model(kind)
    x = images(2, 1, 32)
    out = model.ae(x, torch.randn(2, 8), 0.05)
    only_adversarial = LossConfig(pixel_weight=0.0, beta=0.0, feature_weight=0.0, adv_weight=1.0)
    model.disc.requires_grad_(False)
    loss, _ = generator_loss(out, x, model.disc, only_adversarial, beta=0.0,
                             feature_matching=model.uses_feature_matching)
    loss.backward()
    assert all(p.grad is None for p in model.disc.parameters())
    assert _grads(model.ae.encoder) and _grads(model.ae.generator)


def test_vaegan_feature_term_compares_discriminator_features_with_real_ones_held_fixed():
    model = narrow_model("vaegan")
    model.disc.eval()  # running statistics: features of one image do not depend on the rest of the batch
    x = images(2, 1, 32).requires_grad_(True)
    out = model.ae(x.detach(), torch.randn(2, 8), 0.0)
    only_features = LossConfig(pixel_weight=0.0, beta=0.0, feature_weight=1.0, adv_weight=0.0)
    loss, terms = generator_loss(out, x, model.disc, only_features, beta=0.0,
                                   feature_matching=model.uses_feature_matching)
    expected = 0.5 * (model.disc(out.recon)[1] - model.disc(x)[1]).square().mean()
    torch.testing.assert_close(terms["feature"], expected.detach())
    torch.testing.assert_close(loss, 1024 * expected)  # per pixel value: x D = 32 * 32
    loss.backward()
    assert x.grad is None or not x.grad.any()  # the real features are a fixed target
    assert _grads(model.ae.encoder) and _grads(model.ae.generator)


@pytest.mark.parametrize(("kind", "chosen", "expected"), [("gvae", None, False), ("gvae", True, True),
                                                          ("vaegan", None, True), ("vaegan", False, False)])
def test_loss_feature_matching_overrides_the_kinds_choice_and_adds_the_feature_term(kind, chosen, expected):
    recipe = recipe_from_dict({"data": {"resolution": 32, "channels": 1}, "model": {**NARROW, "kind": kind},
                               "loss": {"feature_matching": chosen}})
    model = build_model(recipe)
    assert model.uses_feature_matching is expected
    x = images(2, 1, 32)
    out = model.ae(x, torch.randn(2, 8), 0.0)
    _, terms = generator_loss(out, x, model.disc, recipe.loss, beta=1.0, feature_matching=model.uses_feature_matching)
    assert ("feature" in terms) is expected


def test_feature_matching_without_a_discriminator_is_a_recipe_error():
    with pytest.raises(GvaeError, match="loss.feature_matching: model.kind vae has no discriminator"):
        recipe_from_dict({"model": {"kind": "vae"}, "loss": {"feature_matching": True}})


class BrightnessClassifier(torch.nn.Module):
    """Logits (0, 10 * (mean - 0.5)) of two classes: class 1 for bright images; a known, differentiable judge."""

    def forward(self, images):
        bright = 10 * (images.flatten(1).mean(1) - 0.5)
        return torch.stack([torch.zeros_like(bright), bright], 1)


def test_the_label_term_is_the_classifiers_cross_entropy_on_prior_samples_and_reaches_only_the_generator():
    model = narrow_model("gvae", conditional=True, class_names=["dark", "bright"]).eval()  # running statistics:
    # in training mode a BatchNorm would tie prior samples to the reconstructions' batch, and so to the encoder
    x, labels, prior_labels = images(4, 1, 32), torch.tensor([0, 1, 0, 1]), torch.tensor([1, 1, 0, 1])
    out = model.ae(x, torch.randn(4, 8), 0.0, labels, prior_labels)
    only_label = LossConfig(pixel_weight=0.0, beta=0.0, adv_weight=0.0, label_weight=0.5)
    loss, terms = generator_loss(out, x, None, only_label, beta=0.0, feature_matching=False, labels=labels,
                                 label_classifier=BrightnessClassifier())
    bright = 10 * (out.fake.detach().flatten(1).mean(1) - 0.5)  # log p(label) of a two-logit softmax, by hand
    log_p = torch.where(prior_labels == 1, bright, torch.zeros(4)) - torch.logaddexp(torch.zeros(4), bright)
    torch.testing.assert_close(terms["label"].detach(), -log_p.mean())
    torch.testing.assert_close(loss.detach(), 0.5 * 1024 * -log_p.mean())  # per pixel value: x D = 32 * 32
    assert terms["label_acc"] == ((bright > 0).long() == prior_labels).float().mean()
    loss.backward()
    assert _grads(model.ae.generator) and not _grads(model.ae.encoder)  # prior samples: no encoder on their path
    _, without = generator_loss(out, x, None, only_label, beta=0.0, feature_matching=False, labels=labels)
    assert "label" not in without


@pytest.mark.parametrize(("overrides", "message"), [
    ({"loss": {"label_weight": 0.1, "label_classifier": "c.safetensors"}}, "for model.conditional: true"),
    ({"model": {"conditional": True}, "loss": {"label_weight": 0.1}}, "give loss.label_classifier"),
    ({"model": {"conditional": True}, "loss": {"label_classifier": "c.safetensors"}}, "only with loss.label_weight"),
])
def test_the_label_term_needs_a_conditional_model_a_classifier_and_a_weight(overrides, message):
    with pytest.raises(GvaeError, match=message):
        recipe_from_dict({"model": {"kind": "gvae", **overrides.get("model", {})}, "loss": overrides["loss"]})


def test_r1_penalty_is_half_gamma_times_the_squared_gradient_norm_on_reals():
    model = narrow_model("gvae")
    model.disc.eval()  # running statistics: the logit of an image does not depend on the rest of the batch
    x = images(2, 1, 32)
    out = model.ae(x, torch.randn(2, 8), 0.0)
    without, _ = discriminator_loss(model.disc, x, out, LossConfig(r1_gamma=0.0))
    with_r1, terms = discriminator_loss(model.disc, x, out, LossConfig(r1_gamma=10.0))
    real = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.disc(real)[0].sum(), real)
    expected = grad.square().flatten(1).sum(1).mean()
    torch.testing.assert_close(terms["r1"], expected)
    torch.testing.assert_close(with_r1, without + 5.0 * expected)
