"""gvae generate: per-sample determinism, crash safety, resume and extension, errors, labels, filters, formats.

One tiny run is trained per module and one reference set of 70 samples (shards of 30: 30/30/10, two decode
blocks of 64) is generated from it; tests that change a set work on a copy.
"""

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import gvae
from gvae.cli import cli
from gvae.data import TrainLoader, iter_samples, load_images
from gvae.errors import GvaeError
from gvae.generation import GenerateConfig, generate
from gvae.metrics import nearest_distances
from gvae.models import GenerativeModel
from gvae.train.loop import train
from tests.launching import accelerate_launch
from tests.train_helpers import phantom_data, sample_hashes, tiny_recipe

REPO = Path(__file__).resolve().parents[1]
SUBPROCESS_ENV = dict(os.environ, OMP_NUM_THREADS="1")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return phantom_data(tmp_path_factory.mktemp("phantoms"))


@pytest.fixture(scope="module")
def run(tmp_path_factory, data):
    directory = tmp_path_factory.mktemp("run")
    train(tiny_recipe(directory, data), directory / "run", progress=False)
    return directory / "run"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, run):
    out = tmp_path_factory.mktemp("sets") / "reference"
    return out, generate(GenerateConfig(str(run), str(out), num=70, shard_size=30, progress=False))


def make(run, out, **options):
    return generate(GenerateConfig(str(run), str(out), progress=False, **{"num": 70, "shard_size": 30, **options}))




def listing(directory: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file below ``directory``: what "nothing was touched" compares."""
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_shards_split_n_that_is_not_a_multiple_of_the_shard_size(reference):
    out, manifest = reference
    assert manifest["count"] == 70
    assert [(s["name"], s["count"]) for s in manifest["shards"]] == [
        ("train-000000.tar", 30), ("train-000001.tar", 30), ("train-000002.tar", 10)]
    assert sorted(sample_hashes(out)) == [f"{i:08d}" for i in range(70)]
    assert sorted(p.name for p in out.iterdir()) == ["dataset.json", "manifest.json", "train-000000.tar",
                                                      "train-000001.tar", "train-000002.tar"]


def shard_pixel_sums(shard: Path) -> tuple[list[int], list[int]]:
    """Per channel, the sum of the pixel values and of their squares over every PNG in ``shard``, read back."""
    total, squares = 0, 0
    with tarfile.open(shard) as tar:
        for member in tar:
            if member.name.endswith(".png"):
                pixels = np.asarray(Image.open(tar.extractfile(member))).astype(np.int64)
                pixels = pixels.reshape(-1, 1 if pixels.ndim == 2 else pixels.shape[-1])
                total, squares = total + pixels.sum(0), squares + (pixels * pixels).sum(0)
    return total.tolist(), squares.tolist()


@pytest.mark.parametrize("options", [{}, {"min_realism": 0.5}], ids=["plain", "with-rejections"])
def test_the_manifests_pixel_sums_are_those_of_the_written_images(run, tmp_path, options):
    manifest = make(run, tmp_path / "set", **options)
    assert options == {} or sum(s["rejected"]["realism"] for s in manifest["shards"]) > 0
    for shard in manifest["shards"]:
        assert (shard["pixel_sum"], shard["pixel_sq_sum"]) == shard_pixel_sums(tmp_path / "set" / shard["name"])
    dataset = json.loads((tmp_path / "set" / "dataset.json").read_text())
    images = load_images(str(tmp_path / "set"), split="train")[0].numpy()
    assert dataset["pixel_mean"] == pytest.approx(images.mean(axis=(0, 2, 3)).tolist(), abs=2e-6)
    assert dataset["pixel_std"] == pytest.approx(images.std(axis=(0, 2, 3)).tolist(), abs=2e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_pixel_sums_are_exact_for_channel_major_and_pixel_major_samples(channels):
    from gvae.generation.run import _pixel_sums

    batch = torch.randint(0, 256, (2, channels, 272, 256), generator=torch.Generator().manual_seed(0))
    batch[1] = 255  # the largest squares: 272 * 256 * 255^2 overflows 32 bits, not 64
    for pixels in batch.to(torch.uint8).permute(0, 2, 3, 1).numpy():  # channel-major views, as generate has them
        expected = [pixels.astype(np.float64).sum((0, 1)), (pixels.astype(np.float64) ** 2).sum((0, 1))]
        for layout in (pixels, np.ascontiguousarray(pixels)):
            sums = _pixel_sums(layout)
            assert sums.dtype == np.int64 and sums.tolist() == np.array(expected).astype(np.int64).tolist()


def test_manifest_records_the_checkpoint_and_a_sha256_per_shard(reference, run):
    out, manifest = reference
    checkpoint = Path(gvae.load(run).checkpoint_path)
    assert manifest["checkpoint"] == str(checkpoint.resolve())
    assert manifest["checkpoint_sha256"] == hashlib.sha256((checkpoint / "ema.safetensors").read_bytes()).hexdigest()
    assert manifest["recipe"]["model"]["latent_dim"] == 8 and manifest["ema"] is True
    assert (manifest["seed"], manifest["temperature"], manifest["format"]) == (0, 1.0, "wds")
    assert manifest["label_share"] is None  # an unconditional model's
    for shard in manifest["shards"]:
        assert shard["sha256"] == hashlib.sha256((out / shard["name"]).read_bytes()).hexdigest()
    assert json.loads((out / "manifest.json").read_text()) == manifest


def test_a_model_loaded_for_inference_decodes_as_the_loaded_one_with_its_norms_folded(run):
    model, fast = gvae.load(run), gvae.load(run, for_inference=True)
    z = torch.randn(9, model.latent_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(fast.decode(z), model.decode(z), rtol=1e-5, atol=1e-5)
    norms = [sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) for net in (model, fast)]
    assert norms[1] < norms[0] and not fast.training
    assert fast.ae.generator.out.weight.is_contiguous(memory_format=torch.channels_last)


def test_sample_bytes_do_not_depend_on_the_batch_size(reference, run, tmp_path):
    out, manifest = reference
    assert make(run, tmp_path / "b7", batch_size=7) == manifest
    assert sample_hashes(tmp_path / "b7") == sample_hashes(out)


def test_decoder_never_runs_on_a_batch_chosen_by_the_user(run, tmp_path, monkeypatch):
    """With one thread this CPU's convolutions happen to be batch-invariant (with two they are not); a decoder
    whose output shifts with its batch's mean latent makes any dependence on the batch composition visible."""
    real = GenerativeModel.decode
    monkeypatch.setattr(GenerativeModel, "decode", lambda self, z: (real(self, z) + 0.1 * z.mean()).clamp(0, 1))
    make(run, tmp_path / "b7", batch_size=7)
    make(run, tmp_path / "b64", batch_size=64)
    assert sample_hashes(tmp_path / "b7") == sample_hashes(tmp_path / "b64")


def test_sample_bytes_do_not_depend_on_the_number_of_writer_threads(reference, run, tmp_path):
    assert make(run, tmp_path / "w1", writer_threads=1) == reference[1]
    assert make(run, tmp_path / "w5", writer_threads=5) == reference[1]


def test_writer_threads_default_to_the_process_share_of_the_cores_on_a_gpu(monkeypatch):
    from gvae.generation.run import writer_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert writer_threads(None, torch.device("cpu")) == 2  # the forward already has every core
    assert writer_threads(None, torch.device("cuda", 0)) == 15
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert writer_threads(None, torch.device("cuda", 1)) == 3
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert writer_threads(None, torch.device("cuda", 1)) == 2  # never fewer than 2
    assert writer_threads(7, torch.device("cuda", 1)) == writer_threads(7, torch.device("cpu")) == 7


def test_cli_refuses_zero_writer_threads(run, tmp_path):
    result = CliRunner().invoke(cli, ["generate", str(run), "--num", "4", "--writer-threads", "0",
                                      "--out", str(tmp_path / "w0")])
    assert result.exit_code == 2 and "--writer-threads" in result.output
    assert not (tmp_path / "w0").exists()
    with pytest.raises(GvaeError, match="--writer-threads"):
        make(run, tmp_path / "w0", writer_threads=0)
    assert not (tmp_path / "w0").exists()


def pixels(out: Path) -> np.ndarray:
    """8-bit pixels of every sample of the set in ``out``, in index order."""
    return np.rint(np.stack([s["image"] for s in iter_samples(str(out), "train")]) * 255).astype(int)


def test_bf16_sets_do_not_depend_on_the_batch_size_and_stay_within_a_few_levels_of_fp32(reference, run, tmp_path):
    out, manifest = reference
    bf16 = make(run, tmp_path / "bf16", precision="bf16")
    assert make(run, tmp_path / "bf16-b7", precision="bf16", batch_size=7)["shards"] == bf16["shards"]
    assert (bf16["precision"], manifest["precision"]) == ("bf16", "fp32")
    difference = np.abs(pixels(tmp_path / "bf16") - pixels(out))
    assert 0 < difference.max() <= 8 and (difference > 0).mean() < 0.5


def test_a_rerun_in_another_precision_is_refused_and_an_older_set_counts_as_fp32(reference, run, tmp_path):
    out = tmp_path / "set"
    shutil.copytree(reference[0], out)
    before = listing(out)
    with pytest.raises(GvaeError, match="precision 'fp32' there, 'bf16' here"):
        make(run, out, precision="bf16")
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["precision"]  # as written before the precision was recorded
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(GvaeError, match="another generated set"):
        make(run, out, precision="bf16")
    assert make(run, out)["precision"] == "fp32"  # like every set made then: the same set, its shards kept
    assert {k: v for k, v in listing(out).items() if k.endswith(".tar")} == {
        k: v for k, v in before.items() if k.endswith(".tar")}


def test_sample_i_depends_on_the_seed(reference, run, tmp_path):
    make(run, tmp_path / "seed1", seed=1, num=5)
    other, ours = sample_hashes(tmp_path / "seed1"), sample_hashes(reference[0])
    assert all(other[key] != ours[key] for key in other)


@pytest.mark.slow
def test_two_processes_write_the_same_set_as_one(reference, run, tmp_path):
    out = tmp_path / "ddp"
    cmd = [*accelerate_launch(REPO / "launch/cpu-ddp.yaml"), "-m", "gvae", "-v", "generate", str(run), "--num", "70", "--shard-size", "30", "--out", str(out),
           "--no-progress"]
    done = subprocess.run(cmd, env=SUBPROCESS_ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    # rank 0 took shards 0 and 2 (rank 1 logs nothing below an error), so shard 1 came from rank 1
    assert "rank 0: 2 shards to write" in done.stderr and "rank 1" not in done.stderr
    assert json.loads((out / "manifest.json").read_text()) == reference[1]
    assert sample_hashes(out) == sample_hashes(reference[0])


def test_rerun_after_a_kill_keeps_finished_shards_and_equals_an_uninterrupted_run(reference, run, tmp_path):
    out = tmp_path / "crashed"
    # Dies with SIGKILL while writing sample 65, in the third shard: two shards are finished by then.
    script = (
        "import os, signal, sys\n"
        "from gvae.data.writer import AtomicShardWriter\n"
        "real = AtomicShardWriter.write\n"
        "def dying(self, sample):\n"
        "    if sample['__key__'] == '00000065':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    real(self, sample)\n"
        "AtomicShardWriter.write = dying\n"
        "from gvae.cli import main\n"
        "sys.argv = ['gvae', 'generate', sys.argv[1], '--num', '70', '--shard-size', '30', '--out', sys.argv[2],\n"
        "            '--no-progress']\n"
        "main()\n")
    killed = subprocess.run([sys.executable, "-c", script, str(run), str(out)], env=SUBPROCESS_ENV,
                            capture_output=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (out / ".train-000002.tar.partial").is_file() and not (out / "manifest.json").exists()
    finished = {name: stat for name, stat in listing(out).items() if name in ("train-000000.tar", "train-000001.tar")}
    assert len(finished) == 2
    record = out / ".generate" / "train-000000.tar.json"  # as an older gvae wrote it, without the sha256
    record.write_text(json.dumps({k: v for k, v in json.loads(record.read_text()).items() if k != "sha256"}))
    result = CliRunner().invoke(cli, ["generate", str(run), "--num", "70", "--shard-size", "30", "--out", str(out),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text()) == reference[1]
    assert {name: listing(out)[name] for name in finished} == finished  # kept, not rewritten
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


def test_a_failed_shard_write_is_raised_and_leaves_only_finished_shards(reference, run, tmp_path, monkeypatch):
    # The tar is appended to on its own thread: its error (a full disk here) must still stop the run, drop the
    # partial shard and keep the finished ones, like an error on the main thread. (The next shard, decoded while
    # this one's writes finish, may be finished too.)
    from gvae.data.writer import AtomicShardWriter

    real = AtomicShardWriter.write

    def full_disk(self, sample):
        if sample["__key__"] == "00000040":
            raise OSError(28, "No space left on device")
        real(self, sample)

    monkeypatch.setattr(AtomicShardWriter, "write", full_disk)
    out = tmp_path / "full"
    with pytest.raises(OSError, match="No space left"):
        make(run, out)
    names = sorted(p.name for p in out.iterdir() if p.suffix in (".tar", ".partial"))
    assert names in (["train-000000.tar"], ["train-000000.tar", "train-000002.tar"])
    assert not (out / "manifest.json").exists()
    monkeypatch.setattr(AtomicShardWriter, "write", real)
    assert make(run, out) == reference[1]


def test_the_next_shard_decodes_while_the_previous_one_closes(reference, run, tmp_path, monkeypatch):
    # Shard 0's close (rename, fsync) blocks until the producer is asked for shard 1's samples: done one after
    # the other, the close would time out first.
    from gvae.data.writer import AtomicShardWriter
    from gvae.generation.producer import Producer

    next_shard_decoding, closes_overlapped = threading.Event(), []
    real_close, real_samples = AtomicShardWriter.close, Producer.samples

    def slow_close(self):
        if self.path.name == "train-000000.tar":
            closes_overlapped.append(next_shard_decoding.wait(timeout=10))
        return real_close(self)

    def samples(self, start, stop):
        if start >= 30:
            next_shard_decoding.set()
        return real_samples(self, start, stop)

    monkeypatch.setattr(AtomicShardWriter, "close", slow_close)
    monkeypatch.setattr(Producer, "samples", samples)
    assert make(run, tmp_path / "overlap") == reference[1]
    assert closes_overlapped == [True]


def test_a_failed_shard_close_is_raised_and_the_shard_discarded(reference, run, tmp_path, monkeypatch):
    from gvae.data.writer import AtomicShardWriter

    real = AtomicShardWriter.close

    def failing_close(self):
        if self.path.name == "train-000000.tar":
            raise OSError(5, "Input/output error")
        return real(self)

    monkeypatch.setattr(AtomicShardWriter, "close", failing_close)
    out = tmp_path / "failed-close"
    with pytest.raises(OSError, match="Input/output error"):
        make(run, out)
    names = sorted(p.name for p in out.iterdir() if p.suffix in (".tar", ".partial"))
    assert "train-000000.tar" not in names and not [name for name in names if name.startswith(".")]
    assert not (out / "manifest.json").exists()
    monkeypatch.setattr(AtomicShardWriter, "close", real)
    assert make(run, out) == reference[1]


def test_larger_num_extends_the_set_and_rewrites_only_the_last_partial_shard(reference, run, tmp_path):
    out = tmp_path / "extended"
    shutil.copytree(reference[0], out)
    before = listing(out)
    manifest = make(run, out, num=100)
    assert [s["count"] for s in manifest["shards"]] == [30, 30, 30, 10]
    after = listing(out)
    assert after["train-000000.tar"] == before["train-000000.tar"]
    assert after["train-000001.tar"] == before["train-000001.tar"]
    hashes, old = sample_hashes(out), sample_hashes(reference[0])
    assert len(hashes) == 100 and all(hashes[key] == old[key] for key in old)
    assert json.loads((out / "dataset.json").read_text())["splits"]["train"]["count"] == 100


@pytest.mark.parametrize("names", [["train-000003.tar"], ["mine.partial", ".mine.partial"], ["notes.txt"]])
def test_extending_a_set_refuses_and_keeps_user_files_among_it(reference, run, tmp_path, names):
    """A shard-like or temporary-looking file that the set's manifest does not list belongs to the user."""
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    for name in names:
        (out / name).write_text("mine")
    before = listing(out)
    result = CliRunner().invoke(cli, ["generate", str(run), "--num", "100", "--shard-size", "30", "--out", str(out)])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "not part of this generated set" \
        in result.output, result.output
    assert listing(out) == before


@pytest.mark.parametrize("case", ["not-a-checkpoint", "other-seed", "other-files", "num-zero"])
def test_errors_leave_the_output_directory_untouched(reference, run, tmp_path, case):
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)
    args = {"not-a-checkpoint": [str(tmp_path), "--num", "70"], "other-seed": [str(run), "--num", "70", "--seed", "1"],
            "other-files": [str(run), "--num", "70"], "num-zero": [str(run), "--num", "0"]}[case]
    if case == "other-files":
        shutil.rmtree(out)
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    before = listing(out)
    result = CliRunner().invoke(cli, ["generate", *args, "--shard-size", "30", "--out", str(out)])
    assert result.exit_code == (2 if case == "num-zero" else 1), result.output
    message = {"not-a-checkpoint": "not a gvae run or checkpoint", "other-seed": "seed 0 there, 1 here",
               "other-files": "holds no gvae generate output", "num-zero": "--num"}[case]
    assert message in result.output
    assert listing(out) == before


def test_library_refuses_a_num_below_one(run, tmp_path):
    with pytest.raises(GvaeError, match="at least 1"):
        make(run, tmp_path / "zero", num=0)
    assert not (tmp_path / "zero").exists()


@pytest.fixture(scope="module")
def varied(tmp_path_factory, run, data):
    """Two label-preserving variations of every training phantom."""
    out = tmp_path_factory.mktemp("sets") / "varied"
    return out, make(run, out, num=None, from_data=str(data), variations=2)


def test_from_data_variations_carry_the_source_labels(varied, data):
    out, manifest = varied
    sources = list(iter_samples(str(data), split="train"))
    assert manifest["count"] == 2 * len(sources) == 2 * manifest["from_data"]["sources"]
    generated = list(iter_samples(str(out), split="train"))
    assert [s["key"] for s in generated] == [f"{i:08d}" for i in range(2 * len(sources))]
    for sample in generated:
        source = sources[int(sample["key"]) // 2]
        assert sample["label"] == source["label"] >= 0
        shard = f"train-{int(sample['key']) // 2 // 8:06d}.tar"  # phantom_data packs 8 per shard
        assert sample["json"]["source"] == {"shard": shard, "key": source["key"], "label": source["label"]}
    assert generated[0]["image"].tolist() != generated[1]["image"].tolist()  # two different variations
    assert json.loads((out / "dataset.json").read_text())["label_names"]


def test_rerunning_a_finished_command_rewrites_nothing(varied, run, data):
    out, manifest = varied
    before = listing(out)
    assert make(run, out, num=None, from_data=str(data), variations=2) == manifest
    assert {k: v for k, v in listing(out).items() if k.endswith(".tar")} == \
        {k: v for k, v in before.items() if k.endswith(".tar")}


def test_output_is_inspectable_and_trainable(reference):
    out = reference[0]
    result = CliRunner().invoke(cli, ["data", "inspect", str(out)])
    assert result.exit_code == 0, result.output
    assert "train: 70 samples in 3 shards (dataset.json: 70)" in result.output
    images, _ = next(iter(TrainLoader(str(out), batch_size=8, resolution=32, channels=1)))
    assert images.shape == (8, 1, 32, 32) and images.min() >= 0 and images.max() <= 1


def test_png_format_writes_the_same_images_in_atomic_folders(reference, run, tmp_path):
    out = tmp_path / "png"
    manifest = make(run, out, fmt="png")
    assert [(s["name"], s["count"]) for s in manifest["shards"]] == [("000000", 30), ("000001", 30), ("000002", 10)]
    assert sample_hashes(out) == sample_hashes(reference[0])
    folder = out / "000002"
    listing_text = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n"
                           for p in sorted(folder.iterdir(), key=lambda p: p.name))
    assert manifest["shards"][2]["sha256"] == hashlib.sha256(listing_text.encode()).hexdigest()
    lines = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert [line["__key__"] for line in lines] == [f"{i:08d}" for i in range(60, 70)]
    assert not (out / "dataset.json").exists() and not list(out.glob(".*"))


def test_filters_reject_and_count_candidates(run, data, reference, tmp_path):
    train_images = load_images(str(data), "train")[0]
    unfiltered = torch.from_numpy(np.stack([s["image"] for s in iter_samples(str(reference[0]), "train")]))
    rms = nearest_distances(unfiltered, train_images) / math.sqrt(unfiltered[0].numel())
    limit = float(rms.median())  # about half of the candidates are too close
    manifest = make(run, tmp_path / "filtered", num=40, shard_size=20, min_realism=0.3, max_memorization=limit,
                    train_data=str(data))
    filters = manifest["filters"]
    assert filters["rejected"]["realism"] > 0 and filters["rejected"]["memorization"] > 0
    assert filters["candidates"] == 40 + sum(filters["rejected"].values())
    assert filters["rejected"] == {key: sum(s["rejected"][key] for s in manifest["shards"])
                                   for key in ("realism", "label", "memorization")}
    assert filters["rejected"]["label"] == 0 and filters["label_classifier"] is None  # not asked for
    kept = torch.from_numpy(np.stack([s["image"] for s in iter_samples(str(tmp_path / "filtered"), "train")]))
    assert len(kept) == 40
    assert (nearest_distances(kept, train_images) / math.sqrt(kept[0].numel()) >= limit - 1e-9).all()
    with torch.no_grad():
        logits = gvae.load(run).disc(kept)[0]
    assert (logits >= filters["realism_threshold"] - 1e-4).all()  # other batches: last-bit changes


def test_a_non_finite_temperature_is_a_usage_error(run, tmp_path):
    result = CliRunner().invoke(cli, ["generate", str(run), "--num", "4", "--temperature", "nan",
                                      "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "not a finite number" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_quantize_refuses_any_non_finite_pixel_and_keeps_every_finite_one(bad, dtype):
    from gvae.generation.producer import quantize

    images = torch.rand(4, 3, 8, 8).to(dtype).contiguous(memory_format=torch.channels_last)
    images[:, :, 0, 0] = torch.tensor([0.0, 1.0, -3e38 if dtype == torch.float32 else -1e38, 3e38])[:, None]
    expected = (images.float() * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
    assert torch.equal(quantize(images), expected)  # huge finite values clamp, they do not overflow the check
    images[2, 1, 5, 6] = bad
    with pytest.raises(GvaeError, match="non-finite"):
        quantize(images)


def test_a_checkpoint_with_nan_weights_is_refused_in_one_line(run, tmp_path):
    """A diverged run: generate and eval say so instead of writing black images or NaN into results.json."""
    from safetensors.torch import load_file, save_file

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    for weights in copy.glob("checkpoints/*/*.safetensors"):
        tensors = load_file(weights)
        name = next(k for k, v in tensors.items() if v.is_floating_point() and "generator" in k)
        tensors[name] = torch.full_like(tensors[name], float("nan"))
        save_file(tensors, weights)
    for args in (["generate", str(copy), "--num", "4", "--out", str(tmp_path / "o")],
                 ["eval", str(copy), "--data", "x", "--out", str(tmp_path / "r.json")]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1 and result.output.startswith("Error: "), result.output
        assert "non-finite values" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() and not (tmp_path / "r.json").exists()
@pytest.mark.parametrize(("option", "message"), [
    (["--class", "0"], "--class: this model is unconditional"),
    (["--class-balance", "uniform"], "--class-balance: this model is unconditional"),
])
def test_class_options_on_an_unconditional_model_are_one_error_line(run, tmp_path, option, message):
    result = CliRunner().invoke(cli, ["generate", str(run), "--num", "4", "--out", str(tmp_path / "o"), *option])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_imagefolder_of_an_unconditional_model_is_one_unlabelled_folder(reference, run, tmp_path):
    out = tmp_path / "folders"
    manifest = make(run, out, fmt="imagefolder")
    assert manifest["class_counts"] == {} and manifest["labels"] is None
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["unlabelled"]
    hashes = {p.stem: hashlib.sha256(p.read_bytes()).hexdigest() for p in (out / "unlabelled").iterdir()}
    assert hashes == sample_hashes(reference[0])
    for shard in manifest["shards"]:  # taken while writing; here from the files, "<sha256>  <path>" sorted
        files = [shard["name"], *(json.loads(line)["file"] for line in (out / shard["name"]).read_text().splitlines())]
        listing_text = "".join(f"{hashlib.sha256((out / f).read_bytes()).hexdigest()}  {f}\n" for f in sorted(files))
        assert shard["sha256"] == hashlib.sha256(listing_text.encode()).hexdigest()


def test_imagefolder_from_data_uses_the_source_label_names(run, data, tmp_path):
    out = tmp_path / "folders"
    make(run, out, num=None, from_data=str(data), fmt="imagefolder")
    names = json.loads((data / "dataset.json").read_text())["label_names"]
    for line in (out / "000000.jsonl").read_text().splitlines():
        entry = json.loads(line)
        assert entry["file"] == f"{names[entry['cls']]}/{entry['__key__']}.png"
        assert (out / entry["file"]).is_file()


def test_a_run_that_failed_before_any_shard_does_not_keep_another_set_out(reference, run, tmp_path):
    """A --from-data run whose source fails once generation started leaves only its identity behind."""
    out = tmp_path / "out"
    (out / ".generate").mkdir(parents=True)
    (out / ".generate" / "identity.json").write_text(json.dumps({"from_data": {"sources": 3}, "seed": 5}))
    manifest = make(run, out)
    assert sample_hashes(out) == sample_hashes(reference[0]) and manifest["count"] == 70


def test_without_temperature_prior_samples_take_the_one_chosen_for_these_weights(tmp_path, run, data, caplog):
    from gvae import temperature_choice
    from gvae.loading import load_trained

    mine = tmp_path / "run"
    shutil.copytree(run, mine)
    choice = mine / temperature_choice.FILE
    temperature_choice.record(choice, load_trained(mine), {"best": 1.3, "temperatures": [1.0, 1.3]})
    result = CliRunner().invoke(cli, ["generate", str(mine), "--num", "20", "--out", str(tmp_path / "chosen"),
                                      "--no-progress"])
    assert result.exit_code == 0, result.output
    assert f"at temperature 1.3, chosen in {choice}" in result.output
    explicit = make(mine, tmp_path / "explicit", num=20, temperature=1.3)
    chosen = json.loads((tmp_path / "chosen" / "manifest.json").read_text())
    assert chosen["temperature"] == 1.3 and chosen["temperature_chosen_in"] == str(choice)
    assert explicit["temperature_chosen_in"] is None
    assert sample_hashes(tmp_path / "chosen") == sample_hashes(tmp_path / "explicit")
    assert make(mine, tmp_path / "one", num=20, temperature=1.0)["temperature"] == 1.0  # the flag wins
    # variations of real images keep T = 1: the choice is one for the prior
    assert make(mine, tmp_path / "varied", num=20, from_data=str(data))["temperature"] == 1.0
    # a choice made on other weights (the run trained on since) is not used, and the log says why
    choice.write_text(json.dumps({**json.loads(choice.read_text()), "weights_sha256": "0" * 64}))
    assert make(mine, tmp_path / "stale", num=20)["temperature"] == 1.0
    assert "was chosen for other weights" in caplog.text
    choice.write_text(json.dumps({"best": 1.2, "temperatures": [1.0, 1.2]}))  # as gvae demo wrote it before
    assert make(mine, tmp_path / "older", num=20)["temperature"] == 1.0
    assert "does not say which weights it was chosen for" in caplog.text
    choice.write_text(json.dumps({"best": "hot", "weights_sha256": "0" * 64}))
    assert make(mine, tmp_path / "no-number", num=20)["temperature"] == 1.0
    assert "holds no chosen temperature" in caplog.text
    choice.write_text('{"best": 1.')  # cut short: one line that says which file, not a decoder traceback
    with pytest.raises(GvaeError, match="unreadable temperature choice"):
        make(mine, tmp_path / "damaged", num=20)


def test_an_evaluation_at_the_chosen_temperature_samples_at_it_and_records_it(tmp_path, run, data):
    from gvae import temperature_choice
    from gvae.evaluation.protocol import Protocol
    from gvae.evaluation.runner import run_evaluation
    from gvae.loading import load_trained

    mine = tmp_path / "run"
    shutil.copytree(run, mine)
    protocol = Protocol(data=str(data), metrics="mmd", num_samples=40, temperature="chosen")
    with pytest.raises(GvaeError, match="no temperature was chosen for the weights"):
        run_evaluation(str(mine), protocol)
    temperature_choice.record(mine / temperature_choice.FILE, load_trained(mine), {"best": 1.3})
    chosen = run_evaluation(str(mine), protocol)
    explicit = run_evaluation(str(mine), Protocol(data=str(data), metrics="mmd", num_samples=40, temperature=1.3))
    assert chosen["protocol"]["temperature"] == "chosen" and chosen["protocol"]["temperature_used"] == 1.3
    assert chosen["metrics"]["mmd2"]["value"] == explicit["metrics"]["mmd2"]["value"]
    result = CliRunner().invoke(cli, ["eval", "run", str(mine), "--data", str(data), "--temperature", "warm"])
    assert result.exit_code == 2 and "'warm': give a finite number >= 0, or 'chosen'" in result.output
