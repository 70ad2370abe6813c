"""Helpers of the eval/ scripts checked against hand-computed answers: class shares, the demo variants' recipes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))

from class_coverage import predicted_shares  # noqa: E402
from demo_variants import VARIANTS, table, variant_recipe  # noqa: E402


def brightness_classifier(images: torch.Tensor) -> torch.Tensor:
    """Logits [N, 3] whose argmax is the image's mean brightness in thirds: 0 dark, 1 mid, 2 bright."""
    third = (images.mean((1, 2, 3)) * 3).floor().clamp(0, 2).long()
    return torch.nn.functional.one_hot(third, 3).float()


def test_predicted_shares_count_each_class_across_batches():
    levels = [0.1] * 5 + [0.5] * 3 + [0.9] * 2  # 5 dark, 3 mid, 2 bright
    images = torch.tensor(levels).view(-1, 1, 1, 1).expand(-1, 1, 4, 4)
    assert predicted_shares(brightness_classifier, images, 3, batch=3) == pytest.approx([0.5, 0.3, 0.2])
    assert predicted_shares(brightness_classifier, images[:5], 3) == [1.0, 0.0, 0.0]


def test_a_variant_changes_only_its_keys_and_the_seed():
    base, narrow = variant_recipe("demo", Path("data"), 0), variant_recipe("narrow-16", Path("data"), 3)
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
