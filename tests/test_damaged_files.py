"""Damaged and malformed files a user may hand to any command: each is one `Error:` line, never a traceback."""

import json
import shutil

import pytest
from click.testing import CliRunner

from gvae.cli import cli
from tests.train_helpers import phantom_data, tiny_recipe_file, tiny_run


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return phantom_data(tmp_path_factory.mktemp("phantoms"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("run"), overrides=["train.max_steps=2"])


def one_line_error(args, fragment):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert fragment in lines[0], result.output


def _damage(path, how):
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(b"\x00garbage{")


@pytest.mark.parametrize(("name", "how"), [("ema.safetensors", "truncated"), ("ema.safetensors", "garbage"),
                                           ("config.yaml", "garbage")])
def test_a_damaged_checkpoint_file_is_one_line_in_generate_and_eval(run, tmp_path, name, how):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    _damage(copy / "checkpoints/step-00000002" / name, how)
    one_line_error(["generate", copy, "--num", "4", "--out", tmp_path / "o"], "step-00000002")
    one_line_error(["eval", copy, "--data", "x", "--out", tmp_path / "r.json"], "step-00000002")


@pytest.mark.parametrize("name", ["trainer.json", "ema.safetensors", "loader-0.json"])
def test_a_damaged_checkpoint_is_one_line_on_resume(run, tmp_path, data, name):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    _damage(copy / "checkpoints/step-00000002" / name, "garbage")
    recipe = tiny_recipe_file(tmp_path, data)
    one_line_error(["train", recipe, "--out", copy], "cannot resume from")


@pytest.mark.parametrize("content", ["{}", "[1, 2, 3]", '{"resolution": 32, "channels": 1}',
                                     '{"resolution": 32, "channels": 1, "splits": {"train": {"count": "x", '
                                     '"shards": []}}}'])
def test_a_dataset_json_of_the_wrong_shape_is_one_line(data, tmp_path, content):
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    (copy / "dataset.json").write_text(content)
    one_line_error(["data", "inspect", copy], "not a gvae dataset description")


def test_a_recipe_whose_extends_is_not_a_path_is_one_line(tmp_path):
    (tmp_path / "r.yaml").write_text("extends: [1, 2]\n")
    one_line_error(["recipe", "show", tmp_path / "r.yaml"], "extends: got [1, 2]")


def test_a_recipe_that_is_not_utf8_is_one_line(tmp_path):
    (tmp_path / "r.yaml").write_bytes(b"name: \xff\xfe\n")
    one_line_error(["recipe", "show", tmp_path / "r.yaml"], "is not UTF-8 text")


def test_a_dataset_json_that_is_not_json_is_one_line(data, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    (copy / "dataset.json").write_text(json.dumps({"a": 1})[:-2])
    one_line_error(["data", "inspect", copy], "unreadable dataset description")


@pytest.mark.parametrize("name", ["manifest.json", ".generate/identity.json"])
def test_a_damaged_generate_manifest_or_state_is_one_line(run, tmp_path, name):
    out = tmp_path / "set"
    CliRunner().invoke(cli, ["generate", str(run), "--num", "4", "--out", str(out)])
    (out / name).parent.mkdir(exist_ok=True)
    (out / name).write_text('{"shards": [')
    one_line_error(["generate", run, "--num", "8", "--out", out], "unreadable")


@pytest.mark.parametrize("name", ["config.yaml", "results.json", "run.json"])
def test_a_report_of_a_run_with_a_damaged_file_is_written_or_one_line(run, tmp_path, name):
    """A broken config.yaml leaves the report without its model sections; broken JSON is one error line."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / name).write_bytes(b"\xff{ not: [valid")
    result = CliRunner().invoke(cli, ["report", str(copy)])
    if name == "config.yaml":
        assert result.exit_code == 0 and (copy / "report.html").is_file(), result.output
    else:
        one_line_error(["report", copy], "unreadable")
