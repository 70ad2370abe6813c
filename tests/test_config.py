"""The recipe schema: extends, overrides and every error path."""

import pytest
from click.testing import CliRunner

from gvae.cli import cli
from gvae.config import load_recipe
from gvae.errors import GvaeError


@pytest.fixture
def base(tmp_path):
    path = tmp_path / "base.yaml"
    path.write_text("data:\n  resolution: 32\n  channels: 1\nmodel:\n  latent_dim: 16\ntrain:\n  max_steps: 100\n")
    return path


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_values_override_defaults(base):
    recipe = load_recipe(base)
    assert recipe.data.resolution == 32
    assert recipe.model.latent_dim == 16
    assert recipe.train.batch_size == 64  # default kept
    assert recipe.name == "base"


def test_extends_merges_child_over_parent(tmp_path, base):
    child = write(tmp_path, "child.yaml", "extends: base.yaml\nmodel:\n  kind: vae\n")
    recipe = load_recipe(child)
    assert recipe.model.kind == "vae"
    assert recipe.model.latent_dim == 16  # from the parent
    assert recipe.data.resolution == 32


def test_extends_cycle_is_an_error(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(GvaeError, match="extends itself"):
        load_recipe(tmp_path / "a.yaml")


def test_overrides_are_parsed_to_the_field_type(base):
    recipe = load_recipe(base, ["train.max_steps=20", "optim.lr=1e-3", "optim.betas=[0.9,0.99]",
                                "data.hflip=true", "data.train=some/dir"])
    assert recipe.train.max_steps == 20
    assert recipe.optim.lr == pytest.approx(1e-3)
    assert recipe.optim.betas == [0.9, 0.99]
    assert recipe.data.hflip is True
    assert recipe.data.train == "some/dir"


def test_int_is_accepted_where_a_float_is_expected(base):
    assert load_recipe(base, ["optim.lr=1"]).optim.lr == 1.0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.latnt_dim=3", r"model.latnt_dim: unknown key; did you mean model.latent_dim\?"),
        ("modle.latent_dim=3", r"unknown key"),
        ("model.latent_dim=abc", r"model.latent_dim: got 'abc'; expected an integer"),
        ("model.latent_dim=1.5", r"expected an integer"),
        ("model.latent_dim=0", r"model.latent_dim: got 0; must be 1 to 65536"),
        ("model.dropout=1.5", r"model.dropout: got 1.5; must be 0.0 to 0.99"),
        ("model.kind=gan", r"model.kind: got 'gan'; choose one of gvae, vae, vae-dense, vaegan"),
        ("data.hflip=3", r"expected true or false"),
        ("train.max_steps", r"expected KEY=VALUE"),
        ("data.resolution=48", r"power of two"),
        ("train.ema_decay=.nan", r"train.ema_decay: got nan; expected a finite number"),
        ("optim.lr=.inf", r"optim.lr: got inf; expected a finite number"),
        ("loss.beta=.nan", r"loss.beta: got nan; expected a finite number"),
        ("optim.betas=[2,0.5]", r"optim.betas: got \[2.0, 0.5\]; expected two numbers in \[0, 1\)"),
    ],
)
def test_bad_override_names_key_value_and_what_is_valid(base, override, message):
    with pytest.raises(GvaeError, match=message):
        load_recipe(base, [override])


def test_unknown_key_in_file_is_an_error(tmp_path):
    path = write(tmp_path, "bad.yaml", "train:\n  batch_sise: 3\n")
    with pytest.raises(GvaeError, match="train.batch_sise: unknown key; did you mean train.batch_size"):
        load_recipe(path)


def test_missing_recipe_file_is_an_error(tmp_path):
    with pytest.raises(GvaeError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")


def test_recipe_round_trips_through_its_yaml(base):
    from gvae.config import recipe_from_yaml_text

    recipe = load_recipe(base, ["train.max_steps=7"])
    assert recipe_from_yaml_text(recipe.to_yaml()) == recipe


def test_cli_show_prints_resolved_recipe(base):
    result = CliRunner().invoke(cli, ["recipe", "show", str(base), "train.max_steps=5"])
    assert result.exit_code == 0, result.output
    assert "max_steps: 5" in result.output
    assert "latent_dim: 16" in result.output


def test_cli_bad_override_is_one_line_error_exit_1(base):
    result = CliRunner().invoke(cli, ["recipe", "show", str(base), "model.latnt_dim=3"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == ["Error: model.latnt_dim: unknown key; did you mean model.latent_dim?"]


def test_a_run_config_cut_short_is_refused_not_filled_with_defaults(base):
    from gvae.config import recipe_from_yaml_text

    text = load_recipe(base).to_yaml()
    with pytest.raises(GvaeError, match="config.yaml has no log section: it is cut short"):
        recipe_from_yaml_text(text[:text.index("\nlog:")])
