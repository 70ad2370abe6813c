"""ELBO and IWAE against a linear-Gaussian model, where log p(x) is known in closed form.

z ~ N(0, I_d), x = W z + b + s * eps, so p(x) = N(b, W W^T + s^2 I) and the exact posterior is Gaussian.
With orthogonal columns in W the exact posterior has a diagonal covariance, so an encoder can be exact.
"""

import math

import pytest
import torch

from gvae.metrics import bits_per_dim, elbo_terms, iwae_log_likelihood, standard_error

D, LATENT, S = 6, 3, 0.5


@pytest.fixture(scope="module")
def model():
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(D, LATENT, generator=g, dtype=torch.float64))
    w = q * torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)  # orthogonal columns
    b = torch.randn(D, generator=g, dtype=torch.float64)
    z = torch.randn(64, LATENT, generator=g, dtype=torch.float64)
    x = z @ w.T + b + S * torch.randn(64, D, generator=g, dtype=torch.float64)
    cov = w @ w.T + S**2 * torch.eye(D, dtype=torch.float64)
    log_px = torch.distributions.MultivariateNormal(b, cov).log_prob(x)
    post_var = 1.0 / (1.0 + (w * w).sum(0) / S**2)  # diagonal because W^T W is diagonal

    def log_px_z(x_, z_):
        return torch.distributions.Normal(z_ @ w.T + b, S).log_prob(x_).sum(-1)

    def exact_encode(x_):
        return ((x_ - b) @ w / S**2) * post_var, post_var.log().expand(len(x_), LATENT)

    def rough_encode(x_):  # a shifted, too-wide posterior: a strictly loose bound
        mu, logvar = exact_encode(x_)
        return mu + 0.3, logvar + 0.5

    return {"x": x, "log_px": log_px, "log_px_z": log_px_z, "exact": exact_encode, "rough": rough_encode}


def test_exact_posterior_makes_every_importance_weight_equal_log_px(model):
    for k, batch_size in ((1, 256), (7, 256), (50, 7)):  # (50, 7): k split into chunks of 7, accumulated
        est = iwae_log_likelihood(model["exact"], model["log_px_z"], model["x"], k=k, batch_size=batch_size)
        assert torch.allclose(est, model["log_px"], atol=1e-8)


def test_exact_posterior_makes_the_elbo_tight_in_expectation(model):
    x = model["x"].repeat(200, 1)
    elbo = elbo_terms(model["exact"], model["log_px_z"], x, generator=torch.Generator().manual_seed(0))["elbo"]
    assert elbo.mean().item() == pytest.approx(model["log_px"].mean().item(), abs=0.05)  # SE ~0.01


def test_bounds_are_ordered_and_converge_to_log_px(model):
    g = torch.Generator().manual_seed(1)
    x = model["x"].repeat(10, 1)  # more draws per image: a tighter expectation for K = 1
    elbo = elbo_terms(model["rough"], model["log_px_z"], x, generator=g)["elbo"].mean()
    iwae = {k: iwae_log_likelihood(model["rough"], model["log_px_z"], x, k=k, batch_size=100_000,
                                   generator=g).mean() for k in (1, 10, 1000)}
    truth = model["log_px"].mean()
    assert elbo < iwae[10] < iwae[1000] <= truth + 1e-3
    assert iwae[1] == pytest.approx(elbo.item(), abs=0.2)  # IWAE with K = 1 is the ELBO
    assert truth - iwae[1000] < 0.2 * (truth - elbo)


def test_batching_over_k_does_not_change_the_estimand(model):
    args = (model["rough"], model["log_px_z"], model["x"])
    small = iwae_log_likelihood(*args, k=50, batch_size=7, generator=torch.Generator().manual_seed(2))
    large = iwae_log_likelihood(*args, k=50, batch_size=10_000, generator=torch.Generator().manual_seed(2))
    assert small.shape == large.shape == (64,)
    assert small.mean().item() == pytest.approx(large.mean().item(), abs=0.1)  # other draws, same expectation


def test_elbo_terms_add_up(model):
    terms = elbo_terms(model["rough"], model["log_px_z"], model["x"])
    assert torch.allclose(terms["elbo"], terms["log_px_z"] - terms["kl"])
    assert (terms["kl"] > 0).all()


def test_bits_per_dim_is_nats_over_d_ln2():
    assert bits_per_dim(-784 * math.log(2) * 3.0, 784) == pytest.approx(3.0)


def test_standard_error_is_std_over_sqrt_n():
    values = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert standard_error(values) == pytest.approx(values.std().item() / 2)
