"""Every shipped recipe loads, validates and builds the model it describes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gvae.config import load_recipe
from gvae.models import build_model

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
TOP_LEVEL = sorted(RECIPES.glob("*.yaml"))
FMNIST = ["gvae", "vae", "vae-dense", "vaegan"]


def test_the_documented_recipes_exist():
    names = {path.stem for path in TOP_LEVEL}
    expected = {f"fmnist-32-{kind}" for kind in FMNIST} | {
        "phantom-64-gvae", "celebahq-256-gvae", "celebahq-1024-gvae", "lsun-bedroom-256-gvae",
        "pancreas-ct-256-gvae", "fmnist-32-gvae-cond", "phantom-64-gvae-cond", "fmnist-32-gvae-small"}
    assert expected <= names


@pytest.mark.parametrize("path", sorted(RECIPES.rglob("*.yaml")), ids=lambda p: str(p.relative_to(RECIPES)))
def test_recipe_loads(path):
    load_recipe(path)


@pytest.mark.parametrize("path", TOP_LEVEL, ids=lambda p: p.stem)
def test_recipe_builds_its_model(path):
    recipe = load_recipe(path)
    if recipe.model.conditional:  # training fills the class names in from the data
        recipe = load_recipe(path, ["model.class_names=[a, b]"])
    model = build_model(recipe)
    assert (model.kind, model.resolution, model.channels) == (
        recipe.model.kind, recipe.data.resolution, recipe.data.channels)
    assert model.param_counts()["total"] > 0
    assert recipe.data.train and recipe.data.val


def test_fmnist_recipes_differ_only_in_the_model_kind_and_its_own_terms():
    recipes = {kind: load_recipe(RECIPES / f"fmnist-32-{kind}.yaml") for kind in FMNIST}
    shared = [(r.data, r.model.latent_dim, r.model.likelihood, r.model.channel_base, r.model.channel_min,
               r.model.channel_max, r.loss.beta, r.loss.kl_warmup_steps, r.optim, r.train) for r in recipes.values()]
    assert all(s == shared[0] for s in shared)
    assert recipes["gvae"].loss.adv_weight == recipes["vaegan"].loss.adv_weight
    assert (recipes["gvae"].data.resolution, recipes["gvae"].data.channels) == (32, 1)
    assert recipes["gvae"].data.train == "data/fmnist"


def test_high_resolution_recipe_uses_latent_1000():
    recipe = load_recipe(RECIPES / "celebahq-1024-gvae.yaml")
    assert (recipe.data.resolution, recipe.data.channels, recipe.model.latent_dim) == (1024, 3, 1000)


def test_only_the_diffaug_recipes_augment_and_each_differs_from_its_plain_recipe_only_there():
    pairs = {"fmnist-32-gvae-diffaug": "fmnist-32-gvae", "phantom-64-gvae-cond-diffaug": "phantom-64-gvae-cond"}
    for path in TOP_LEVEL:
        if path.stem not in pairs:
            assert not load_recipe(path).augment.policy, path.stem
    for augmented_name, plain_name in pairs.items():
        plain, augmented = (load_recipe(RECIPES / f"{name}.yaml") for name in (plain_name, augmented_name))
        assert dataclasses.replace(augmented, name=plain.name, augment=plain.augment) == plain, augmented_name
        assert augmented.augment.policy and augmented.augment.target > 0
        assert "flip" not in augmented.augment.policy  # garments and anatomy both have a side
