"""`gvae demo --quick` runs every stage end to end and leaves every artefact where it says."""

import json

import pytest
from click.testing import CliRunner

from gvae.budget import adversarial_start_step, input_noise_anneal_steps, kl_warmup_steps
from gvae.cli import cli
from gvae.demo import FULL, QUICK, _check_same_run, demo_recipe
from gvae.errors import GvaeError
from gvae.loading import list_checkpoints
from tests.test_report import embedded_pngs


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    result = CliRunner().invoke(cli, ["demo", "--quick", "--no-progress", "--out", str(out)])
    return out, result


def test_quick_demo_succeeds_and_says_where_everything_is(quick_demo):
    out, result = quick_demo
    assert result.exit_code == 0, result.output
    for stage in ("[1/5] pack", "[2/5] train", "[3/5] generate", "[4/5] eval", "[5/5] report"):
        assert stage in result.output
    assert "(missing)" not in result.output
    assert f"{out / 'report.html'}" in result.output
    assert "pack train" not in result.output and "img/s" not in result.output  # --no-progress: no bars at all


def test_quick_demo_leaves_every_artefact(quick_demo):
    out, _ = quick_demo
    assert json.loads((out / "data" / "dataset.json").read_text())["resolution"] == 64
    run = out / "run"
    assert [p.name for p in list_checkpoints(run)] == [f"step-{QUICK.steps:08d}"]
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) >= 10
    assert "d_loss" not in lines[0] and "d_loss" in lines[-1]  # the discriminator joins for the last steps
    assert list((run / "samples").glob("step-*.png"))
    manifest = json.loads((run / "generated" / "manifest.json").read_text())
    assert manifest["count"] == QUICK.generate
    results = json.loads((run / "results.json").read_text())
    assert {"mmd2", "msssim_diversity", "recon_psnr", "elbo"} <= set(results["metrics"])
    # the temperature chosen after training is the one the set was generated and the model evaluated at
    scan = json.loads((run / "temperature.json").read_text())
    assert scan["best"] in scan["temperatures"] and len(scan["mmd2"]) == len(scan["temperatures"])
    assert scan["mmd2"][scan["temperatures"].index(scan["best"])] == min(scan["mmd2"])
    assert manifest["temperature"] == scan["best"] == results["protocol"]["temperature"]


def test_quick_demo_report_embeds_valid_pictures_of_every_part(quick_demo):
    out, _ = quick_demo
    html = (out / "report.html").read_text()
    # samples, reconstructions, interpolation, scatter, generated preview and at least two figures of curves
    assert len(embedded_pngs(html)) >= 7
    assert "mmd2" in html and "checkpoint_sha256" in html


def test_rerunning_in_the_same_out_with_another_model_is_refused(quick_demo):
    out, _ = quick_demo
    with pytest.raises(GvaeError, match="another model or data"):
        _check_same_run(out / "run", demo_recipe((out / "data").resolve(), FULL))
    _check_same_run(out / "run", demo_recipe((out / "data").resolve(), QUICK, steps=3 * QUICK.steps))


def test_steps_scale_the_schedules_of_the_demo_recipe():
    recipe = demo_recipe("data", FULL, steps=400)
    assert recipe.train.max_steps == 400 and input_noise_anneal_steps(recipe) == 200 and kl_warmup_steps(recipe) == 20
    assert adversarial_start_step(recipe) == 380  # the discriminator plays the last 5%
    assert recipe.data.resolution == 64 and demo_recipe("data").train.max_steps == FULL.steps
