"""The run report: a self-contained page whose every picture decodes, with notes where inputs are missing."""

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gvae.cli import cli
from gvae.errors import GvaeError
from gvae.report import build_report, find_manifest, write_report
from gvae.report.figures import diagnostic_panels, group_curves, project_2d
from gvae.report.views import distant_pair
from tests.train_helpers import tiny_run

ROOT = Path(__file__).resolve().parents[1]
IMG_SRC = re.compile(r'<img\b[^>]*\bsrc="([^"]*)"')
PNG_URI = "data:image/png;base64,"


def embedded_pngs(html: str) -> list[Image.Image]:
    """Every <img> of ``html``, decoded; fails the test if one is not an embedded PNG."""
    images = []
    for src in IMG_SRC.findall(html):
        assert src.startswith(PNG_URI), src[:60]
        image = Image.open(io.BytesIO(base64.b64decode(src[len(PNG_URI):], validate=True)))
        image.load()
        assert image.format == "PNG"
        images.append(image)
    return images


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny trained GVAE run on 32 px phantoms (4 steps, two checkpoints, sample grids)."""
    directory = tmp_path_factory.mktemp("report")
    return tiny_run(directory)


@pytest.fixture(scope="module")
def page(run):
    """The report of :func:`run` as HTML (built once: each build loads the model and draws every figure)."""
    return build_report(run)


def results_doc(run: Path) -> dict:
    return {"checkpoint": str(run), "data": "data", "protocol": {"metrics": "mmd"},
            "metrics": {"mmd2": {"value": 0.0123, "std": 0.001, "n": 64, "unit": "pixel-space MMD^2",
                                 "better": "lower"}},
            "skipped": {"fid": "needs feature weights"}}


def test_every_picture_is_an_embedded_png_that_decodes(run, tmp_path):
    html = write_report(run, tmp_path / "report.html").read_text()
    images = embedded_pngs(html)
    # sample grid, reconstructions, interpolation, latent scatter, and at least two figures of curves
    assert len(images) >= 6
    assert "http://" not in html and "https://" not in html  # nothing is fetched when the page opens


def test_page_has_every_section_and_the_resolved_recipe(page):
    html = page
    for title in ("Run", "Samples", "Reconstructions", "Latent interpolation", "Latent space", "Diagnostics",
                  "Training curves", "Evaluation", "Generated set", "Recipe"):
        assert f">{title}</h2>" in html, title
    assert "channel_base: 128" in html  # from the resolved config.yaml, defaults filled in
    assert "step-00000004" in html  # the checkpoint the model views come from


def test_results_found_in_the_run_dir_become_a_table(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "results.json").write_text(json.dumps(results_doc(copy)))
    html = build_report(copy)
    assert "mmd2" in html and "0.0123" in html and "needs feature weights" in html
    assert "prior samples at temperature 1</" in html  # a protocol without the key was measured at T = 1
    doc = results_doc(copy)
    doc["protocol"]["temperature"] = 1.2
    (copy / "results.json").write_text(json.dumps(doc))
    assert "prior samples at temperature 1.2</" in build_report(copy)


def test_missing_results_and_generated_set_are_explained_not_fatal(page):
    assert "No results.json" in page and "No generated set found" in page


def test_generated_set_manifest_is_found_one_folder_down(tmp_path):
    (tmp_path / "generated").mkdir()
    (tmp_path / "generated" / "manifest.json").write_text("{}")
    assert find_manifest(tmp_path) == tmp_path / "generated" / "manifest.json"
    assert find_manifest(tmp_path / "generated" / "nothing") is None


def test_run_without_a_checkpoint_still_gets_a_page(run, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run / "config.yaml", bare / "config.yaml")
    html = build_report(bare)
    assert "Not available" in html and "nothing was logged yet" in html


def test_a_folder_that_is_not_a_run_is_a_one_line_error(tmp_path):
    with pytest.raises(GvaeError, match="not a run directory"):
        build_report(tmp_path)
    result = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert result.exit_code == 1 and "Error: " in result.output and "Traceback" not in result.output


def test_cli_writes_the_page_with_explicit_results(run, tmp_path):
    results = tmp_path / "elsewhere.json"
    results.write_text(json.dumps(results_doc(run)))
    out = tmp_path / "r.html"
    result = CliRunner().invoke(cli, ["report", str(run), "--out", str(out), "--results", str(results)])
    assert result.exit_code == 0, result.output
    assert "0.0123" in out.read_text()


def test_projection_keeps_two_d_codes_and_finds_the_main_axis_of_more():
    codes = torch.randn(50, 2)
    assert torch.equal(project_2d(codes)[0], codes.double())
    along = torch.randn(200, 1) * torch.tensor([[3.0, 0, 0, 4.0, 0]]) + 0.01 * torch.randn(200, 5)
    points, axes = project_2d(along)
    assert points[:, 0].var() > 1000 * points[:, 1].var()
    assert axes[0].startswith("PC1 (100%")


def test_interpolation_pair_has_different_labels_when_there_are_any():
    codes = torch.tensor([[0.0], [0.1], [5.0], [5.1]])
    first, last = distant_pair(codes, torch.tensor([0, 0, 0, 1]))
    assert {first, last} == {0, 3}


def test_unknown_logged_keys_are_drawn_under_other():
    groups = group_curves([{"step": 1, "nll": 1.0, "d_real": 0.5, "my_metric": 2.0, "note": "text"}])
    assert groups == {"losses": ["nll"], "discriminator": ["d_real"], "other": ["my_metric"]}


def test_diagnostics_share_panels_by_kind_and_stay_out_of_the_other_curves():
    records = [{"step": 1, "d_acc_real": 0.9, "d_acc_fake": 1.0, "gnorm_nll": 3.0, "gnorm_adv": 40.0,
                "active_units": 5.0, "nll": 1.0}]
    assert diagnostic_panels(records) == {"discriminator accuracy": ("d_acc_real", "d_acc_fake"),
                                          "gradient on the generator's last layer": ("gnorm_nll", "gnorm_adv"),
                                          "active units": ("active_units",)}
    assert group_curves(records) == {"losses": ["nll"]}


def test_a_run_that_logged_no_diagnostics_says_so(run, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run / "config.yaml", bare / "config.yaml")
    (bare / "metrics.jsonl").write_text('{"step": 1, "nll": 1.0}\n')
    assert "holds no diagnostics" in build_report(bare)


@pytest.mark.skipif(not Path("/usr/bin/chromium").is_file(), reason="needs Debian's chromium")
def test_report_renders_in_headless_chromium(run, tmp_path):
    page = write_report(run, tmp_path / "report.html")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "screenshot_report.py"), str(page),
                             "--out", str(tmp_path / "shot.png")], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout and "not blank" in result.stdout
