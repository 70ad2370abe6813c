"""The scripts that write docs/RESULTS.md: marked blocks survive a rewrite, grids and budgets survive a run's removal."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))

from results_md import grid_lines, kept_blocks, replace_block  # noqa: E402
from write_results import run_budgets  # noqa: E402


def test_a_block_is_replaced_in_place_appended_once_and_kept_verbatim():
    text = "# head\n\n<!-- a: start -->\nold a\n<!-- a: end -->\n\ntail\n"
    replaced = replace_block(text, "a", ["new a"])
    assert replaced == "# head\n\n<!-- a: start -->\nnew a\n<!-- a: end -->\n\ntail\n"
    both = replace_block(replaced, "b", ["b's", "lines"])
    assert both.endswith("\n\n<!-- b: start -->\nb's\nlines\n<!-- b: end -->\n")
    assert replace_block(both, "b", ["b again"]).count("<!-- b: start -->") == 1
    assert kept_blocks(both) == ["<!-- a: start -->\nnew a\n<!-- a: end -->",
                                 "<!-- b: start -->\nb's\nlines\n<!-- b: end -->"]
    assert kept_blocks("<!-- a: start -->\nunterminated\n<!-- b: end -->") == []


def _run(path: Path, steps: int, images_per_s: float) -> Path:
    (path / "samples").mkdir(parents=True)
    (path / "samples" / "step-00000002.png").write_bytes(b"png of step 2")
    (path / "config.yaml").write_text(yaml.safe_dump({"train": {"max_steps": steps, "batch_size": 10}}))
    (path / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "images_per_s": images_per_s}) + "\n"
                                                for s in range(5, steps + 1, 5)))
    return path


def test_grids_and_budgets_of_a_removed_run_are_kept_and_a_present_run_is_remeasured(tmp_path):
    out_dir, record = tmp_path / "docs", tmp_path / "budgets.json"
    run = _run(tmp_path / "runs" / "r-s0", steps=60, images_per_s=5.0)
    assert grid_lines([run], out_dir) == ["**r-s0**", "", "![r-s0](results/grids/r-s0.png)", ""]
    assert (out_dir / "results" / "grids" / "r-s0.png").read_bytes() == b"png of step 2"
    assert run_budgets([str(run)], record) == {"r-s0": {"steps": 60, "batch": 10, "minutes": 2.0}}  # 600 images at 5/s
    for path in run.rglob("*"):
        if path.is_file():
            path.unlink()
    assert grid_lines([run, tmp_path / "never-trained"], out_dir) == ["**r-s0**", "", "![r-s0](results/grids/r-s0.png)", ""]
    assert run_budgets([str(run)], record)["r-s0"]["minutes"] == 2.0
    _run(tmp_path / "runs" / "r-s1", steps=30, images_per_s=10.0)
    assert run_budgets([str(tmp_path / "runs" / "r-s1")], record) == {
        "r-s0": {"steps": 60, "batch": 10, "minutes": 2.0}, "r-s1": {"steps": 30, "batch": 10, "minutes": 0.5}}


def _utility(path: Path, k: int, **values: tuple[float, float]) -> None:
    path.write_text(json.dumps({"metrics": {name.replace("K", f"k{k}"): {"value": v, "std": s}
                                            for name, (v, s) in values.items()}}))


def test_the_small_data_section_judges_each_gain_by_its_error_and_averages_over_training_seeds(tmp_path):
    from write_augmentation_results import Study, small_data_section

    study = Study(tmp_path / "study", 5, "Shapes", "a pack", "the held-out shapes", "shifts", "shapes-k5",
                  classes=4)
    study.folder.mkdir()
    _utility(study.folder / "real.json", 5, utility_real_K=(0.60, 0.01), utility_classic_K=(0.70, 0.01))
    _utility(study.folder / "gvae-s0.json", 5, utility_synthetic_K=(0.64, 0.01), utility_cas=(0.40, 0.02),
             utility_gain_K=(0.04, 0.01), utility_gain_vs_classic_K=(-0.06, 0.01))
    _utility(study.folder / "gvae-s1.json", 5, utility_synthetic_K=(0.61, 0.01), utility_cas=(0.30, 0.02),
             utility_gain_K=(0.01, 0.02), utility_gain_vs_classic_K=(-0.09, 0.01))
    text = "\n".join(small_data_section(study, tmp_path))
    assert "| real + gvae, training seed 0 | 0.640 ± 0.010 | 0.400 ± 0.020 | helps: +0.040 ± 0.010 over real only" \
           " | hurts: -0.060 ± 0.010 against classic |" in text
    assert "no clear effect: +0.010 ± 0.020 against real only" in text  # a gain within its error is no gain
    # seed means 0.64 and 0.61: mean 0.625, sample std 0.0212; gains +0.04 and +0.01: +0.025 +- 0.0212
    assert "| gvae | 2 | 0.625 ± 0.021 | 0.350 ± 0.071 | +0.025 ± 0.021 | -0.075 ± 0.021 |" in text
    assert "(CAS) reaches 0.30 to 0.40 (chance 0.25), against 0.60 for the 20 real images" in text
    assert "helped only where marked above, by at most +0.040" in text
