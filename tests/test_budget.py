"""Schedules that scale with train.max_steps: KL warm-up, input-noise annealing and the weight average."""

import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from gvae import budget
from gvae.cli import cli
from gvae.config import load_recipe, recipe_from_dict
from gvae.errors import GvaeError
from gvae.models.losses import schedule_values
from gvae.train.ema import EMA

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def recipe(steps: int, train: dict | None = None, loss: dict | None = None):
    return recipe_from_dict({"train": {"max_steps": steps, **(train or {})}, "loss": loss or {}})


def test_a_fixed_decay_of_0999_keeps_39_percent_of_the_initial_weights_after_937_steps():
    fixed = recipe(937, {"ema_decay": 0.999, "ema_warmup": False})
    assert budget.initial_weight_share(fixed) == pytest.approx(0.999**937) == pytest.approx(0.3916, abs=1e-4)


@pytest.mark.parametrize("steps", [100, 937, 20000])
def test_a_halflife_of_a_twentieth_leaves_two_to_the_minus_20_of_the_initial_weights_at_any_budget(steps):
    halflife = recipe(steps, {"ema_halflife": 0.05, "ema_warmup": False})
    assert budget.ema_decay(halflife) == pytest.approx(0.5 ** (20 / steps))
    assert budget.initial_weight_share(halflife) == pytest.approx(2.0**-20, rel=1e-6)


def test_the_default_ema_leaves_under_one_percent_of_the_initial_weights():
    assert budget.initial_weight_share(recipe(937)) < 0.01
    assert budget.initial_weight_share(recipe(937, {"ema_decay": 0.999})) < 0.01  # the warm-up alone sees to it


def test_ema_warmup_caps_the_decay_at_one_plus_t_over_ten_plus_t():
    warm = recipe(1000, {"ema_decay": 0.99})
    assert budget.ema_decay_at(warm, 0) == pytest.approx(0.1)
    assert budget.ema_decay_at(warm, 80) == pytest.approx(81 / 90)
    assert budget.ema_decay_at(warm, 990) == 0.99  # 991/1000 > 0.99: the cap no longer binds


def test_the_average_holds_the_stated_share_of_the_initial_weights():
    short = recipe(30, {"ema_halflife": 0.1})
    live = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(live.weight)
    ema = EMA(live, budget.ema_decay(short))
    nn.init.ones_(live.weight)  # from the first update on, the live weight is 1, the initial one 0
    for step in range(short.train.max_steps):
        ema.update(live, decay=budget.ema_decay_at(short, step))
    torch.testing.assert_close(ema.model.weight.double(), torch.full((1, 1), 1 - budget.initial_weight_share(short),
                                                                     dtype=torch.double), rtol=0, atol=1e-6)


def test_learning_rate_warms_up_linearly_then_follows_a_cosine_to_zero():
    cosine = recipe_from_dict({"train": {"max_steps": 110}, "optim": {"schedule": "cosine", "warmup_steps": 10}})
    assert [budget.learning_rate_factor(cosine, step) for step in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert [budget.learning_rate_factor(cosine, step) for step in (10, 60, 85, 110)] == pytest.approx(
        [1.0, 0.5, 0.5 * (1 + math.cos(0.75 * math.pi)), 0.0])
    assert budget.learning_rate_factor(recipe(110), 109) == 1.0  # constant


def test_the_discriminators_schedule_runs_from_the_step_it_joins():
    late = recipe_from_dict({"train": {"max_steps": 1000}, "loss": {"adv_start_fraction": 0.95},
                             "optim": {"schedule": "cosine"}})
    start = budget.adversarial_start_step(late)
    assert start == 950 and budget.learning_rate_factor(late, start) < 0.01  # the generator's, nearly spent
    assert budget.learning_rate_factor(late, start, start) == 1.0
    assert budget.learning_rate_factor(late, start + 25, start) == pytest.approx(0.5)
    assert budget.learning_rate_factor(late, 1000, start) == pytest.approx(0.0, abs=1e-12)


def test_continuing_with_more_steps_names_each_schedule_that_moves():
    def late(steps: int):
        return recipe_from_dict({"train": {"max_steps": steps, "ema_halflife": 0.05},
                                 "loss": {"adv_start_fraction": 0.95, "kl_warmup_steps": 100},
                                 "optim": {"schedule": "cosine"}})
    assert budget.moved_schedules(late(1000), late(1000)) == []
    moved = budget.moved_schedules(late(1000), late(1200))
    assert moved == [f"EMA decay {round(0.5 ** (1 / 50), 6)} -> {round(0.5 ** (1 / 60), 6)}",
                     "discriminator start step 950 -> 1140", "cosine learning rate now ends at step 1200"]


def test_kl_warmup_fraction_scales_with_max_steps():
    fraction = recipe(937, loss={"beta": 1.0, "kl_warmup_fraction": 0.1})
    assert budget.kl_warmup_steps(fraction) == 94
    assert schedule_values(fraction, 47)["beta"] == pytest.approx(0.5)
    assert schedule_values(fraction, 936)["beta"] == 1.0


def test_an_explicit_kl_warmup_count_wins_over_the_fraction():
    both = recipe(937, loss={"kl_warmup_steps": 2000, "kl_warmup_fraction": 0.1})
    assert budget.kl_warmup_steps(both) == 2000
    assert schedule_values(both, 936)["beta"] == pytest.approx(0.468)


def test_input_noise_anneals_over_a_fraction_of_max_steps_unless_a_count_is_given():
    fraction = recipe_from_dict({"model": {"input_noise": 0.05, "input_noise_anneal_fraction": 0.5},
                                 "train": {"max_steps": 1000}})
    assert budget.input_noise_anneal_steps(fraction) == 500
    assert schedule_values(fraction, 250)["input_noise"] == pytest.approx(0.025)
    count = recipe_from_dict({"model": {"input_noise_anneal_steps": 10000, "input_noise_anneal_fraction": 0.5}})
    assert budget.input_noise_anneal_steps(count) == 10000


def test_the_discriminator_joins_after_a_fraction_of_max_steps_unless_a_count_is_given():
    fraction = recipe(1000, loss={"adv_start_fraction": 0.7})
    assert budget.adversarial_start_step(fraction) == 700
    assert budget.adversarial_start_step(recipe(1000)) == 0
    both = recipe(1000, loss={"adv_start_steps": 50, "adv_start_fraction": 0.7})
    assert budget.adversarial_start_step(both) == 50


def test_fashion_mnist_recipes_are_warmed_up_and_averaged_within_one_epoch():
    epoch = load_recipe(RECIPES / "fmnist-32-gvae.yaml", ["train.max_steps=937"])
    assert schedule_values(epoch, 200)["beta"] == 1.0
    assert schedule_values(epoch, 500)["input_noise"] == 0.0
    assert budget.initial_weight_share(epoch) < 0.01


@pytest.mark.parametrize(("override", "message"), [
    ("loss.kl_warmup_fraction=1.5", r"loss.kl_warmup_fraction: got 1.5; must be 0.0 to 1.0"),
    ("train.ema_halflife=-0.1", r"train.ema_halflife: got -0.1; must be >= 0.0"),
    ("train.ema_halflife=.inf", r"train.ema_halflife: got inf; expected a finite number"),
    ("train.ema_decay=.nan", r"train.ema_decay: got nan; expected a finite number"),
    ("train.ema_decay=1.5", r"train.ema_decay: got 1.5; must be 0.0 to 1.0"),
])
def test_budget_keys_are_validated_by_name(override, message):
    with pytest.raises(GvaeError, match=message):
        load_recipe(RECIPES / "fmnist-32-gvae.yaml", [override])


def test_recipe_show_states_how_the_fractions_resolve():
    result = CliRunner().invoke(cli, ["recipe", "show", str(RECIPES / "fmnist-32-gvae.yaml"), "train.max_steps=937"])
    assert result.exit_code == 0, result.output
    assert "#   KL warm-up: 94 steps (loss.kl_warmup_fraction 0.1 x 937)" in result.output
    assert "#   EMA decay: 0.985314 per step" in result.output
    assert "#   discriminator joins at step 0 (loss.adv_start_fraction 0 x 937)" in result.output
