"""gvae export, gvae push and hf:// addresses, against a local stand-in for the Hugging Face Hub.

The stand-in replaces ``huggingface_hub.HfApi`` (uploads copy the folder into a local repository) and
``huggingface_hub.snapshot_download`` (copies the files matching ``allow_patterns`` into a local cache, as
the real one does), so the tests see exactly what would be uploaded and downloaded.
"""

import fnmatch
import hashlib
import json
import shutil
from pathlib import Path

import huggingface_hub
import pytest
import torch
from click.testing import CliRunner

import gvae
from gvae.cli import cli
from tests.train_helpers import tiny_run

RESULTS = {"checkpoint": "x", "data": "held-out", "protocol": {},
           "metrics": {"mmd2": {"value": 0.0123, "std": 0.001, "n": 200, "unit": "", "better": "lower"},
                       "memorization": {"value": 0.0275, "std": None, "n": 400, "unit": "", "better": "lower"}},
           "skipped": {}}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("hub-run")
    return tiny_run(directory)


class FakeHub:
    """Repositories as local folders; records every call."""

    def __init__(self, root: Path):
        self.root = root
        self.calls: list[tuple] = []

    def repo(self, repo_id: str) -> Path:
        return self.root / "repos" / repo_id

    def api(self, token=None):
        hub = self

        class Api:
            def create_repo(self, repo_id, private=False, exist_ok=False):
                hub.calls.append(("create_repo", repo_id, private))
                hub.repo(repo_id).mkdir(parents=True, exist_ok=exist_ok)

            def upload_folder(self, repo_id, folder_path, commit_message=None):
                hub.calls.append(("upload_folder", repo_id, commit_message))
                shutil.copytree(folder_path, hub.repo(repo_id), dirs_exist_ok=True)
                return f"https://huggingface.co/{repo_id}/commit/0"

        return Api()

    def snapshot_download(self, repo_id, revision=None, allow_patterns=None, library_name=None):
        self.calls.append(("snapshot_download", repo_id, revision, tuple(allow_patterns)))
        source = self.repo(repo_id)
        if not source.is_dir():
            raise huggingface_hub.errors.LocalEntryNotFoundError("Got: ConnectError: [Errno -2] Name or service not known")
        cache = self.root / "cache" / repo_id / (revision or "main")
        cache.mkdir(parents=True, exist_ok=True)
        for path in source.iterdir():
            if any(fnmatch.fnmatch(path.name, pattern) for pattern in allow_patterns):
                shutil.copyfile(path, cache / path.name)
        return str(cache)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    fake = FakeHub(tmp_path / "hub")
    monkeypatch.setattr(huggingface_hub, "HfApi", fake.api)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
    return fake


def _cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_export_writes_a_loadable_folder_with_the_checkpoints_exact_weights(run, tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(RESULTS))
    result = _cli("export", run, tmp_path / "model", "--results", results)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "model"
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "config.yaml", "ema.safetensors", "gvae.json", "model.safetensors", "results.json", "samples.png"]
    checkpoint = run / "checkpoints" / "step-00000004"
    for name in ("model.safetensors", "ema.safetensors", "config.yaml"):
        assert (folder / name).read_bytes() == (checkpoint / name).read_bytes()
    metadata = json.loads((folder / "gvae.json").read_text())
    assert metadata["step"] == 4 and metadata["gvae_version"] == gvae.__version__
    assert metadata["sha256"]["ema.safetensors"] == _sha256(checkpoint / "ema.safetensors")
    assert gvae.load(folder).state_dict().keys() == gvae.load(run).state_dict().keys()


def test_the_model_card_states_data_recipe_metrics_and_the_memorization_figure(run, tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(RESULTS))
    assert _cli("export", run, tmp_path / "model", "--results", results, "--repo-id", "alice/tiny").exit_code == 0
    card = (tmp_path / "model" / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: gvae\n")
    assert "| mmd2 | 0.0123 | 0.001 | 200 |  | lower |" in card
    assert "**0.0275** of 400 samples lie nearer to a training image" in card
    assert 'gvae.load("hf://alice/tiny")' in card
    assert "32 x 32 px, 1 channel" in card and "kind: gvae" in card
    assert "## Intended use" in card and "## Limits" in card


def test_a_model_card_without_results_says_memorization_was_not_measured(run, tmp_path):
    assert _cli("export", run, tmp_path / "model").exit_code == 0
    card = (tmp_path / "model" / "README.md").read_text()
    assert "**Not measured.**" in card and "Not evaluated" in card
    assert not (tmp_path / "model" / "results.json").exists()


def test_export_refuses_a_directory_that_holds_files(run, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "notes.txt").write_text("mine")
    result = _cli("export", run, tmp_path / "model")
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["notes.txt"]


def test_push_creates_the_repository_and_uploads_the_exported_folder(run, hub):
    result = _cli("push", run, "alice/tiny", "--private")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "https://huggingface.co/alice/tiny/commit/0"
    assert [c[0] for c in hub.calls] == ["create_repo", "upload_folder"] and hub.calls[0][2] is True
    uploaded = hub.repo("alice/tiny")
    assert sorted(p.name for p in uploaded.iterdir()) == [
        "README.md", "config.yaml", "ema.safetensors", "gvae.json", "model.safetensors", "samples.png"]
    assert _sha256(uploaded / "ema.safetensors") == _sha256(run / "checkpoints" / "step-00000004" / "ema.safetensors")


def test_a_pushed_model_generates_byte_identical_samples_through_hf(run, hub, tmp_path):
    assert _cli("push", run, "alice/tiny").exit_code == 0
    for source, out in ((run, "local"), ("hf://alice/tiny", "remote")):
        result = _cli("generate", source, "--num", 10, "--shard-size", 4, "--out", tmp_path / out, "--no-progress")
        assert result.exit_code == 0, result.output
    local, remote = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("local", "remote"))
    assert local["checkpoint_sha256"] == remote["checkpoint_sha256"]
    assert [s["sha256"] for s in local["shards"]] == [s["sha256"] for s in remote["shards"]]
    for name in ("train-000000.tar", "train-000001.tar", "train-000002.tar"):
        assert (tmp_path / "local" / name).read_bytes() == (tmp_path / "remote" / name).read_bytes()


def test_gvae_load_and_eval_accept_a_revision_on_the_hub(run, hub, tmp_path):
    assert _cli("push", run, "alice/tiny").exit_code == 0
    model = gvae.load("hf://alice/tiny@v1")
    assert hub.calls[-1][:3] == ("snapshot_download", "alice/tiny", "v1")
    expected = gvae.load(run).state_dict()
    assert all(torch.equal(t, expected[k]) for k, t in model.state_dict().items())
    data = run.parent / "data"
    result = _cli("eval", "hf://alice/tiny", "--data", data, "--metrics", "recon", "--out", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert "recon_psnr" in json.loads((tmp_path / "r.json").read_text())["metrics"]


def test_loading_from_the_hub_downloads_no_pickle(run, hub):
    assert _cli("push", run, "alice/tiny").exit_code == 0
    for pickle in ("pytorch_model.bin", "model.pt", "state.pkl", "optimizer.pth"):
        (hub.repo("alice/tiny") / pickle).write_bytes(b"not to be fetched")
    folder = Path(gvae.load("hf://alice/tiny").checkpoint_path)
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.yaml", "ema.safetensors", "gvae.json", "model.safetensors"]


def test_an_unreachable_or_missing_repository_is_one_error_line(hub, tmp_path):
    result = _cli("generate", "hf://alice/absent", "--num", 4, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot download hf://alice/absent")
    assert result.output.count("\n") == 1 and "LocalEntryNotFoundError: Got: ConnectError" in result.output


def test_a_malformed_repository_name_is_refused_before_any_upload(run, hub):
    result = _cli("push", run, "no-owner")
    assert result.exit_code == 1 and "expected a Hub repository as OWNER/NAME" in result.output
    assert hub.calls == []


def test_the_chosen_temperature_travels_with_the_weights_to_the_hub_and_a_stale_one_stays_behind(run, hub, tmp_path):
    from gvae import temperature_choice
    from gvae.loading import load_trained

    mine = tmp_path / "run"
    shutil.copytree(run, mine)
    choice = mine / temperature_choice.FILE
    temperature_choice.record(choice, load_trained(mine), {"best": 1.3})
    assert _cli("push", mine, "alice/warm").exit_code == 0
    assert json.loads((hub.repo("alice/warm") / "temperature.json").read_text())["best"] == 1.3
    assert "samples the prior at temperature 1.3" in (hub.repo("alice/warm") / "README.md").read_text()
    result = _cli("generate", "hf://alice/warm", "--num", 4, "--out", tmp_path / "warm", "--no-progress")
    assert result.exit_code == 0 and "at temperature 1.3, chosen in" in result.output, result.output
    choice.write_text(json.dumps({**json.loads(choice.read_text()), "weights_sha256": "0" * 64}))
    assert _cli("export", mine, tmp_path / "stale").exit_code == 0
    assert not (tmp_path / "stale" / "temperature.json").exists()
    assert "samples the prior at temperature" not in (tmp_path / "stale" / "README.md").read_text()


def test_a_temperature_chosen_on_an_exported_folder_is_written_into_it_and_used(run, tmp_path, monkeypatch):
    import gvae.evaluation.temperature

    assert _cli("export", run, tmp_path / "model").exit_code == 0
    with torch.no_grad():
        images = gvae.load(run).sample(40, torch.Generator().manual_seed(0)).clamp(0, 1)  # "training images"
    monkeypatch.setattr(gvae.evaluation.temperature, "load_images", lambda spec, split, limit=None: (
        images[:limit], torch.full((min(limit, len(images)),), -1)))
    result = _cli("eval", "temperature", tmp_path / "model", "--data", "x", "--temperatures", "0.5,1.5",
                  "--num-samples", 20, "--num-images", 40)
    assert result.exit_code == 0, result.output
    best = json.loads((tmp_path / "model" / "temperature.json").read_text())["best"]
    generated = _cli("generate", tmp_path / "model", "--num", 4, "--out", tmp_path / "set", "--no-progress")
    assert f"at temperature {best:g}, chosen in {tmp_path / 'model' / 'temperature.json'}" in generated.output
