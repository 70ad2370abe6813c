"""Training diagnostics: discriminator accuracy, per-term gradient norms, active units, aggregate posterior."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from gvae import loading as ckpt
from gvae.config import LossConfig
from gvae.models import AEOutput
from gvae.models.losses import discriminator_loss
from gvae.train.diagnostics import (
    active_units,
    aggregate_posterior,
    generator_label_share,
    last_weight,
    term_gradient_norms,
)
from gvae.train.loop import train
from tests.test_models import narrow_model
from tests.train_helpers import phantom_data, tiny_recipe


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return phantom_data(tmp_path_factory.mktemp("phantoms"))


def test_an_encoder_that_ignores_half_its_inputs_has_exactly_half_its_units_active():
    torch.manual_seed(0)
    encoder = nn.Linear(8, 8)
    with torch.no_grad():  # latent d reads input d; inputs 4..7 are ignored, their latents are constant
        encoder.weight.copy_(torch.diag(torch.tensor([1.0, 1, 1, 1, 0, 0, 0, 0])))
    mu = encoder(torch.randn(256, 8))
    assert active_units(mu) == 4


def test_units_count_as_active_by_variance_above_one_hundredth_not_by_standard_deviation():
    scale = torch.tensor([0.2, 0.05])  # variances 0.04 (active) and 0.0025 (inactive; its std 0.05 > 0.01)
    mu = torch.randn(4096, 2, generator=torch.Generator().manual_seed(0)) * scale
    assert active_units(mu) == 1


def test_aggregate_posterior_of_codes_from_a_known_gaussian():
    gen = torch.Generator().manual_seed(0)
    m, s, t = torch.tensor([0.5, -1.0, 0.0]), torch.tensor([2.0, 0.5, 1.0]), 0.5
    mu = m + s * torch.randn(200_000, 3, generator=gen)
    logvar = torch.full_like(mu, math.log(t**2))  # every q(z|x) has std t
    stats = aggregate_posterior(mu, logvar)
    v = s**2 + t**2  # law of total variance: Var[z] = E[sigma^2] + Var[mu]
    assert stats["agg_mean_abs"] == pytest.approx(m.abs().mean().item(), abs=0.01)
    assert stats["agg_var"] == pytest.approx(v.mean().item(), rel=0.01)
    assert stats["agg_kl"] == pytest.approx(0.5 * (m**2 + v - 1 - v.log()).sum().item(), rel=0.02)


def test_an_aggregate_posterior_that_matches_the_prior_has_no_kl():
    gen = torch.Generator().manual_seed(1)
    t = 0.6  # std of each q(z|x); mu ~ N(0, 1 - t^2) makes q(z) = N(0, I)
    mu = math.sqrt(1 - t**2) * torch.randn(200_000, 4, generator=gen)
    stats = aggregate_posterior(mu, torch.full_like(mu, math.log(t**2)))
    assert stats["agg_kl"] == pytest.approx(0.0, abs=1e-3)
    assert stats["agg_var"] == pytest.approx(1.0, abs=0.01)


class FixedLogits(nn.Module):
    """A discriminator that ignores its input and returns known logits [N] (and no features)."""

    def __init__(self, logits: list[float]):
        super().__init__()
        self.logits = torch.tensor(logits)

    def forward(self, images, labels=None):
        assert len(images) == len(self.logits)
        return self.logits, None


def test_discriminator_accuracy_counts_reals_above_zero_and_fakes_below():
    x = torch.zeros(4, 1, 16, 16)
    out = AEOutput(mu=torch.zeros(4, 2), logvar=torch.zeros(4, 2), z=torch.zeros(4, 2), recon_params=x,
                   recon=x, fake=x, log_px_z=torch.zeros(4))
    disc = FixedLogits([2.0, -1.0, 3.0, 0.5,       # reals: 3 of 4 above 0
                        -1.0, 1.0, -2.0, -3.0,     # reconstructions: 3 of 4 below 0
                        1.0, 1.0, -1.0, 1.0])      # prior samples: 1 of 4 below 0
    _, terms = discriminator_loss(disc, x, out, LossConfig())
    assert (terms["d_acc_real"], terms["d_acc_recon"], terms["d_acc_fake"]) == (0.75, 0.75, 0.25)


def test_term_gradient_norms_match_a_hand_computation_on_a_linear_generator():
    gen = torch.Generator().manual_seed(0)
    weight = nn.Parameter(torch.randn(5, 3, generator=gen))  # generator y = W z, one image of 5 pixels
    other = nn.Parameter(torch.tensor(2.0))
    z, x = torch.randn(3, generator=gen), torch.randn(5, generator=gen)
    y = weight @ z
    terms = {"nll": 0.5 * (y - x).square().sum(),  # d/dW = (y - x) z^T, norm |y - x| |z|
             "adv": y.sum(),                       # d/dW = 1 z^T, norm sqrt(5) |z|
             "kl": other.square()}                 # does not reach W
    norms = term_gradient_norms(terms, {"nll": 2.0, "adv": 0.5, "kl": 1.0}, {"gnorm_": weight})
    assert set(norms) == {"gnorm_nll", "gnorm_adv"}
    assert norms["gnorm_nll"] == pytest.approx(2.0 * ((y - x).norm() * z.norm()).item(), rel=1e-6)
    assert norms["gnorm_adv"] == pytest.approx(0.5 * math.sqrt(5) * z.norm().item(), rel=1e-6)
    assert weight.grad is None and other.grad is None  # returned, never accumulated


@pytest.mark.parametrize(("kind", "generator_out", "encoder_out"), [
    ("gvae", lambda ae: ae.generator.out, lambda ae: ae.encoder.head),
    ("vae-dense", lambda ae: ae.generator.body[-2], lambda ae: ae.encoder.body[-1]),
])
def test_the_last_layer_is_the_one_that_outputs_pixels_or_codes(kind, generator_out, encoder_out):
    ae = narrow_model(kind).ae
    assert last_weight(ae.generator) is generator_out(ae).weight
    assert last_weight(ae.encoder) is encoder_out(ae).weight


def test_the_label_share_of_a_generator_whose_label_embedding_is_zero_is_zero_and_its_mode_is_kept():
    model = narrow_model("gvae", conditional=True, class_names=["a", "b", "c"])
    ae = model.ae.train()
    assert 0 < generator_label_share(model, step=5) < 1 and ae.training  # an untrained one: both
    with torch.no_grad():
        ae.generator.embed.weight.zero_()  # every label now gives the generator the same input
    assert generator_label_share(model, step=5) == 0.0 and ae.training
    ae.eval()
    assert generator_label_share(model, step=5) == 0.0 and not ae.training


def metric_lines(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(("kind", "conditional"), [("gvae", False), ("vaegan", False), ("gvae", True)])
def test_diagnostics_leave_the_training_step_bit_identical(tmp_path, data, kind, conditional):
    runs = {}
    for on in (True, False):
        recipe = tiny_recipe(tmp_path, data, kind, [f"log.diagnostics={str(on).lower()}", "train.max_steps=3",
                                                    "train.grad_accum=2", f"model.conditional={str(conditional).lower()}"])
        runs[on] = tmp_path / f"run-{on}"
        train(recipe, runs[on], progress=False)
    logged = metric_lines(runs[True])[-1]
    assert {"gnorm_nll", "gnorm_adv", "gnorm_enc_kl", "active_units", "agg_kl"} <= set(logged)
    assert ("label_share" in logged) == conditional and 0 <= logged.get("label_share", 0) <= 1
    assert "gnorm_nll" not in metric_lines(runs[False])[-1]
    for name in (ckpt.WEIGHTS, ckpt.EMA_WEIGHTS):
        on, off = (load_file(str(runs[flag] / "checkpoints/step-00000003" / name)) for flag in (True, False))
        assert all(torch.equal(on[key], off[key]) for key in on), name
