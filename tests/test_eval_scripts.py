"""Helpers of the eval/ scripts checked against hand-computed answers: the demo variants' recipes and table."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))

from demo_prior_gap import fitted_gaussian  # noqa: E402
from demo_temperature import table as temperature_table  # noqa: E402
from demo_variants import EARLIER_STEPS, VARIANTS, table, variant_recipe  # noqa: E402
from label_filter import table as filter_table  # noqa: E402
from temperature_study import table as study_table  # noqa: E402


def test_demo_is_the_demo_recipe_and_the_others_are_the_earlier_one_changed():
    from gvae.demo import demo_recipe

    demo, earlier = variant_recipe("demo", Path("data"), 0), variant_recipe("earlier-demo", Path("data"), 0)
    assert demo == demo_recipe(Path("data")).to_dict()
    assert earlier["train"]["max_steps"] == EARLIER_STEPS and earlier["model"]["coord_channels"] is False
    assert earlier["loss"] == {**demo["loss"], "adv_start_fraction": 0.0}
    assert demo["optim"]["schedule"] == "cosine" and earlier["optim"] == {**demo["optim"], "schedule": "constant"}


def test_a_variant_changes_only_its_keys_and_the_seed():
    base, narrow = variant_recipe("earlier-demo", Path("data"), 0), variant_recipe("narrow-16", Path("data"), 3)
    assert narrow["train"]["seed"] == 3 and base["train"]["seed"] == 0
    changed = {key for key in base["model"] if base["model"][key] != narrow["model"][key]}
    assert changed == set(VARIANTS["narrow-16"]["model"])
    assert {k: v for k, v in narrow["train"].items() if k != "seed"} == {
        k: v for k, v in base["train"].items() if k != "seed"}
    assert base["loss"] == narrow["loss"] and base["optim"] == narrow["optim"]


def test_table_orders_rows_as_the_variants_and_links_each_grid():
    row = {"msssim_diversity": 0.9, "real_msssim_diversity": 0.8, "recon_mse": 0.001, "recon_psnr": 30.0,
           "train_seconds": 100}
    rows = table([{**row, "variant": "narrow-16", "seed": 1},
                  {**row, "variant": "demo", "seed": 0, "lesion_share": 0.25, "real_lesion_share": 0.725}]).splitlines()
    assert rows[2].startswith("| demo | 0 | 0.900 (0.800) | 0.00100 | 30.00 | 0.250 (0.725) | 100 |")
    assert "| 30.00 | - | 100 |" in rows[3]  # a summary made without the classifier
    assert rows[3].startswith("| narrow-16 | 1 |") and rows[3].endswith("[grid](grids/narrow-16-s1.png) |")


def test_the_fitted_gaussian_draws_with_the_codes_mean_and_covariance():
    import torch

    generator = torch.Generator().manual_seed(0)
    mean, mix = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.3, 0.2]])
    codes = mean + torch.randn(40000, 3, generator=generator) @ mix.T  # covariance mix @ mix.T
    draws = fitted_gaussian(codes, 40000, generator)
    torch.testing.assert_close(draws.mean(0), mean, rtol=0, atol=0.03)
    torch.testing.assert_close(torch.cov(draws.T), mix @ mix.T, rtol=0, atol=0.03)


def test_the_temperature_table_puts_t_1_beside_the_chosen_t_and_links_the_grid_and_a_conditional_runs_agreement():
    def at(t, diversity, lesions):
        return {"temperature": t, "msssim_diversity": diversity, "real_msssim_diversity": 0.798, "lesion_share": lesions,
                "real_lesion_share": 0.725, "class_tv": 0.3, "mmd2": 0.07}

    conditional = {"run": "runs/demo-variants/demo-conditional-s0",
                   "at_1": {**at(1.0, 0.878, 0.4), "class_agreement": 0.41},
                   "at_best": {**at(1.3, 0.825, 0.69), "class_agreement": 0.4567}}
    rows = temperature_table([{"run": "runs/demo-variants/demo-s1", "at_1": at(1.0, 0.851, 0.622),
                               "at_best": at(1.2, 0.806, 0.78)}, conditional]).splitlines()[2:]
    assert rows == ["| demo-s1 | 1.2 | 0.851 / 0.806 (0.798) | 0.622 / 0.780 (0.725) | 0.300 / 0.300 | - "
                    "| 0.0700 / 0.0700 | [grid](grids/demo-s1.png) |",
                    "| demo-conditional-s0 | 1.3 | 0.878 / 0.825 (0.798) | 0.400 / 0.690 (0.725) | 0.300 / 0.300 "
                    "| 0.410 / 0.457 | 0.0700 / 0.0700 | [grid](grids/demo-conditional-s0.png) |"]


def test_the_study_table_has_a_column_per_metric_with_both_temperatures():
    rows = study_table([{"run": "runs/fmnist-32-gvae-s0", "scan": {"best": 1.3},
                         "at_1": {"fid": 13.2652, "recall": 0.413}, "at_best": {"fid": 11.2109, "recall": 0.474}}])
    lines = rows.splitlines()
    assert lines[0] == "| run | chosen T | fid at 1 / at T | recall at 1 / at T |"
    assert lines[1] == "|---|---|---|---|"
    assert lines[2] == "| fmnist-32-gvae-s0 | 1.3 | 13.27 / 11.21 | 0.413 / 0.474 |"


def test_the_label_filter_table_puts_each_set_beside_its_filtered_one():
    def judged(agreement, per_label, tv, seconds, rejected=0):
        return {"agreement": agreement, "agreement_per_label": per_label, "class_tv": tv, "seconds": seconds,
                "rejected": rejected}

    row = filter_table([{"run": "runs/demo-variants/demo-conditional-s0", "temperature": 1.3, "num": 1000,
                         "plain": judged(0.337, [0.815, 0.46], 0.436, 8.7),
                         "filtered": judged(0.517, [1.0, 0.577], 0.252, 27.3, rejected=3685)}]).splitlines()[2]
    assert row == ("| demo-conditional-s0 | 1.3 | 0.337 / 0.517 | 1.00 (0.81), 0.58 (0.46) | 0.436 / 0.252 | - | - "
                   "| 4.7 | 9 / 27 | [grid](grids/demo-conditional-s0.png) |")
    useful = {"cas": {"value": 0.6017, "std": 0.0144}, "real_k25": {"value": 0.6283, "std": 0.025},
              "classic_k25": {"value": 0.75, "std": 0.04}, "gain_k25": {"value": 0.0033, "std": 0.0268}}
    better = {**useful, "cas": {"value": 0.65, "std": 0.01}, "gain_k25": {"value": 0.02, "std": 0.01}}
    row = filter_table([{"run": "r/x-s1", "temperature": 1.2, "num": 100,
                         "plain": {**judged(0.3, [0.5], 0.4, 1.0), "utility": useful},
                         "filtered": {**judged(0.5, [0.6], 0.2, 3.0, rejected=100), "utility": better}}]).splitlines()[2]
    assert "| 0.602 ± 0.014 / 0.650 ± 0.010 (0.628) | 0.003 ± 0.027 / 0.020 ± 0.010 | 2.0 |" in row
