"""Leaderboards from fake result files: caching, the table, the CSV and the plots."""

import csv
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from gvae.cli import cli
from gvae.errors import GvaeError
from gvae.evaluation.leaderboard import build_leaderboard, cache_path, load_suite
from gvae.evaluation.protocol import Protocol
from gvae.evaluation.results import write_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_results(run: str, protocol: Protocol, fid: float, elbo: float) -> dict:
    from dataclasses import asdict

    return {"checkpoint": f"{run}/checkpoints/step-00000100", "data": protocol.data,
            "protocol": {**asdict(protocol), "evaluated": ["fid", "elbo"]},
            "metrics": {"fid": {"value": fid, "std": None, "n": 100, "unit": "FID", "better": "lower"},
                        "elbo": {"value": elbo, "std": 0.5, "n": 50, "unit": "nats", "better": "higher"}},
            "skipped": {}}


@pytest.fixture
def suite_file(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({
        "name": "toy",
        "protocol": {"data": "data/toy", "num_samples": 100, "iwae_k": 4, "seeds": [0, 1]},
        "entries": [{"name": "GVAE", "runs": ["runs/gvae-s0", "runs/gvae-s1"]},
                    {"name": "VAE", "runs": ["runs/vae-s0"]}]}))
    return path


def populate(out, suite, values):
    """Cache a fake result for every (run, seed); ``values[run]`` = (fid, elbo)."""
    for entry in suite.entries:
        for run in entry.runs:
            for seed in suite.seeds:
                fid, elbo = values[run]
                write_results(fake_results(run, suite.protocol_for(seed), fid + seed, elbo), cache_path(out, run, seed))


def never_evaluate(run, protocol):
    raise AssertionError(f"{run} should have come from the cache")


def test_cached_results_are_reused_and_tabulated(suite_file, tmp_path):
    suite, out = load_suite(suite_file), tmp_path / "board"
    populate(out, suite, {"runs/gvae-s0": (10.0, -80.0), "runs/gvae-s1": (12.0, -82.0), "runs/vae-s0": (30.0, -70.0)})
    board = build_leaderboard(suite, out, evaluate_run=never_evaluate).read_text()
    assert "| metric | GVAE | VAE |" in board
    assert "| fid (FID) ↓ | **11.5 ± 1.3** | 30.5 ± 0.71 |" in board  # GVAE: 10, 11, 12, 13
    assert "| elbo (nats) ↑ | -81 ± 1.2 | **-70 ± 0** |" in board


def test_csv_has_one_row_per_entry_and_metric(suite_file, tmp_path):
    suite, out = load_suite(suite_file), tmp_path / "board"
    populate(out, suite, {"runs/gvae-s0": (10.0, -80.0), "runs/gvae-s1": (12.0, -82.0), "runs/vae-s0": (30.0, -70.0)})
    build_leaderboard(suite, out, evaluate_run=never_evaluate)
    rows = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert {(r["entry"], r["metric"]) for r in rows} == {(e, m) for e in ("GVAE", "VAE") for m in ("fid", "elbo")}
    vae_fid = next(r for r in rows if r["entry"] == "VAE" and r["metric"] == "fid")
    assert float(vae_fid["mean"]) == 30.5 and vae_fid["count"] == "2" and vae_fid["better"] == "lower"


def test_one_valid_png_per_metric(suite_file, tmp_path):
    suite, out = load_suite(suite_file), tmp_path / "board"
    populate(out, suite, {"runs/gvae-s0": (10.0, -80.0), "runs/gvae-s1": (12.0, -82.0), "runs/vae-s0": (30.0, -70.0)})
    build_leaderboard(suite, out, evaluate_run=never_evaluate)
    plots = sorted((out / "plots").iterdir())
    assert [p.name for p in plots] == ["elbo.png", "fid.png"]
    assert all(p.read_bytes().startswith(PNG_MAGIC) and p.stat().st_size > 1000 for p in plots)


def test_missing_or_stale_results_are_evaluated_and_cached(suite_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    suite, out = load_suite(suite_file), tmp_path / "board"
    populate(out, suite, {"runs/gvae-s0": (10.0, -80.0), "runs/gvae-s1": (12.0, -82.0), "runs/vae-s0": (30.0, -70.0)})
    cache_path(out, "runs/vae-s0", 1).unlink()  # never evaluated
    stale = cache_path(out, "runs/gvae-s1", 0)  # evaluated under another protocol
    doc = json.loads(stale.read_text())
    doc["protocol"]["iwae_k"] = 1
    stale.write_text(json.dumps(doc))
    for run in ("runs/vae-s0", "runs/gvae-s1"):
        (tmp_path / run).mkdir(parents=True)  # the runs exist, so they can be evaluated
    monkeypatch.setattr("gvae.loading.resolve_checkpoint", lambda run: f"{run}/checkpoints/step-00000100")
    calls = []

    def evaluate_run(run, protocol):
        calls.append((run, protocol.seed))
        return fake_results(run, protocol, 99.0, -99.0)

    build_leaderboard(suite, out, evaluate_run=evaluate_run)
    assert sorted(calls) == [("runs/gvae-s1", 0), ("runs/vae-s0", 1)]
    build_leaderboard(suite, out, evaluate_run=never_evaluate)  # now everything is cached


def test_a_run_with_neither_files_nor_cache_is_a_user_error(suite_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GvaeError, match="runs/gvae-s0 .* does not exist and has no cached results"):
        build_leaderboard(load_suite(suite_file), tmp_path / "board", evaluate_run=never_evaluate)


def test_suite_with_an_unknown_protocol_key_is_a_user_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("protocol: {data: d, num_sample: 3}\nentries: [{name: a, runs: [r]}]\n")
    with pytest.raises(GvaeError, match="unknown protocol key\\(s\\) num_sample"):
        load_suite(path)


def test_shipped_fmnist_suite_is_valid():
    suite = load_suite("eval/suites/fmnist.yaml")
    names = [e.name for e in suite.entries]
    assert {"GVAE", "conv VAE", "dense VAE", "VAE-GAN", "GVAE latent 100", "GVAE latent 1000"} == set(names)
    assert all(len(e.runs) == 2 for e in suite.entries)


def test_cli_builds_the_board_from_the_cache(suite_file, tmp_path):
    suite, out = load_suite(suite_file), tmp_path / "board"
    populate(out, suite, {"runs/gvae-s0": (10.0, -80.0), "runs/gvae-s1": (12.0, -82.0), "runs/vae-s0": (30.0, -70.0)})
    result = CliRunner().invoke(cli, ["leaderboard", str(suite_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "cached runs/vae-s0 (seed 1)" in result.output and (out / "LEADERBOARD.md").is_file()


def test_a_suite_at_each_runs_chosen_temperature_shows_them_and_re_evaluates_when_one_is_chosen_again(tmp_path):
    from dataclasses import asdict

    from gvae import temperature_choice
    from gvae.loading import LoadedModel

    runs = {}
    for name, best in (("a", 1.3), ("b", 1.1)):
        checkpoint = tmp_path / "runs" / name / "checkpoints" / "step-00000100"
        checkpoint.mkdir(parents=True)
        for file in ("config.yaml", "model.safetensors", "ema.safetensors"):
            (checkpoint / file).write_text(f"{name} {file}")
        temperature_choice.record(checkpoint.parents[1] / "temperature.json",
                                  LoadedModel(None, None, checkpoint, checkpoint / "ema.safetensors"), {"best": best})
        runs[str(checkpoint.parents[1])] = (checkpoint, best)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"protocol": {"data": "data/toy", "temperature": "chosen"},
                                    "entries": [{"name": n, "runs": [r]} for n, r in zip("AB", runs, strict=True)]}))
    suite, out = load_suite(path), tmp_path / "board"
    for run, (checkpoint, best) in runs.items():
        protocol = suite.protocol_for(0)
        write_results({**fake_results(run, protocol, 10.0, -80.0), "checkpoint": str(checkpoint),
                       "protocol": {**asdict(protocol), "temperature_used": best}}, cache_path(out, run, 0))
    board = build_leaderboard(suite, out, evaluate_run=never_evaluate).read_text()
    assert "temperature=chosen" in board and "| sampling temperature | 1.3 | 1.1 |" in board
    first = next(iter(runs))
    temperature_choice.record(Path(first) / "temperature.json", LoadedModel(
        None, None, runs[first][0], runs[first][0] / "ema.safetensors"), {"best": 1.2})
    evaluated = []

    def evaluate(run, protocol):
        evaluated.append(run)
        return {**fake_results(run, protocol, 9.0, -80.0), "protocol": {**asdict(protocol), "temperature_used": 1.2}}

    assert "| sampling temperature | 1.2 | 1.1 |" in build_leaderboard(suite, out, evaluate_run=evaluate).read_text()
    assert evaluated == [first]


@pytest.mark.parametrize("temperature", ["hot", -1, True])
def test_a_suite_temperature_is_a_number_or_chosen(tmp_path, temperature):
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({"protocol": {"data": "d", "temperature": temperature},
                                    "entries": [{"name": "A", "runs": ["runs/a"]}]}))
    with pytest.raises(GvaeError, match="protocol.temperature: got"):
        load_suite(path)
