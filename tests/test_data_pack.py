"""The packing driver: splits, determinism, resuming after an interruption, and its refusals."""

import json

import numpy as np
import pytest
from PIL import Image

from gvae.data import PackConfig, iter_samples, pack
from gvae.data.pack import STATE_NAME
from gvae.data.sources import phantom
from gvae.errors import GvaeError


def _phantoms(out, **overrides):
    config = {"src": "-", "kind": "phantom", "out": str(out), "resolution": 32, "num": 45, "shard_size": 10,
              "val_fraction": 0.2, "seed": 1} | overrides
    return pack(PackConfig(**config))


def _shard_hashes(info):
    return {split: [s["sha256"] for s in entry["shards"]] for split, entry in info["splits"].items()}


def test_dataset_json_describes_splits_shards_and_pixel_statistics(tmp_path):
    info = _phantoms(tmp_path / "out")
    on_disk = json.loads((tmp_path / "out" / "dataset.json").read_text())
    assert on_disk == info
    assert (info["splits"]["train"]["count"], info["splits"]["val"]["count"]) == (36, 9)
    assert [s["count"] for s in info["splits"]["train"]["shards"]] == [10, 10, 10, 6]
    assert info["splits"]["val"]["shards"][0]["name"] == "val-000000.tar"
    images = np.stack([s["image"] for s in iter_samples(str(tmp_path / "out"), "train")])
    assert info["pixel_mean"][0] == pytest.approx(images.mean(), abs=1e-5)
    assert info["pixel_std"][0] == pytest.approx(images.std(), abs=1e-5)
    assert not (tmp_path / "out" / STATE_NAME).exists()


def test_shards_are_identical_whatever_the_number_of_workers(tmp_path):
    assert _shard_hashes(_phantoms(tmp_path / "a", workers=1)) == _shard_hashes(_phantoms(tmp_path / "b", workers=2))


def test_the_seed_decides_order_and_split(tmp_path):
    def val_sources(out):
        return sorted(s["json"]["source"] for s in iter_samples(str(out), "val"))

    _phantoms(tmp_path / "a", seed=1, num=20)
    _phantoms(tmp_path / "b", seed=2, num=20)
    assert val_sources(tmp_path / "a") != val_sources(tmp_path / "b")


class Killed(BaseException):
    """Stands for the process being killed: no ``except Exception`` in the packer may swallow it."""


def test_an_interrupted_pack_resumes_from_its_last_complete_shard(tmp_path, monkeypatch):
    reference = _phantoms(tmp_path / "reference")
    real_load, calls = phantom.load, []

    def dies_at_item_25(item, opts):
        calls.append(item.ref)
        if len(calls) == 25:
            raise Killed
        return real_load(item, opts)

    monkeypatch.setattr(phantom, "load", dies_at_item_25)
    with pytest.raises(Killed):
        _phantoms(tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [STATE_NAME, "train-000000.tar", "train-000001.tar"]
    (out / ".train-000002.tar.partial").write_bytes(b"left by a killed process")

    calls.clear()
    monkeypatch.setattr(phantom, "load", lambda item, opts: calls.append(item.ref) or real_load(item, opts))
    resumed = _phantoms(out)
    assert len(calls) == 45 - 20  # the two finished shards were not made again
    assert _shard_hashes(resumed) == _shard_hashes(reference)
    assert not list(out.glob(".*"))


def test_packing_again_with_other_options_and_overwrite_replaces_the_pack(tmp_path):
    _phantoms(tmp_path / "out", num=45)
    info = _phantoms(tmp_path / "out", num=12, val_fraction=0.0, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["dataset.json", "train-000000.tar",
                                                                     "train-000001.tar"]
    assert info["splits"]["train"]["count"] == 12


def _folder(tmp_path, good, bad):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(good):
        Image.new("L", (16, 16), i).save(src / f"good{i:03d}.png")
    for i in range(bad):
        (src / f"bad{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return src


def test_unreadable_inputs_under_the_limit_are_skipped_and_listed(tmp_path):
    info = pack(PackConfig(src=str(_folder(tmp_path, 99, 1)), kind="imagefolder", out=str(tmp_path / "out"),
                           resolution=16, val_fraction=0.0))
    assert info["splits"]["train"]["count"] == 99
    assert [s["source"] for s in info["skipped"]] == ["bad0.png"]


def test_more_unreadable_inputs_than_max_bad_fraction_fail(tmp_path):
    with pytest.raises(GvaeError, match=r"2 of 100 inputs are unreadable.*bad0.png"):
        pack(PackConfig(src=str(_folder(tmp_path, 98, 2)), kind="imagefolder", out=str(tmp_path / "out"),
                        resolution=16))


def test_an_empty_source_fails(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(GvaeError, match="found nothing to pack"):
        pack(PackConfig(src=str(tmp_path / "empty"), kind="imagefolder", out=str(tmp_path / "out"), resolution=16))


def test_16_bit_is_refused_for_photos(tmp_path):
    with pytest.raises(GvaeError, match="--bits 16"):
        pack(PackConfig(src=str(_folder(tmp_path, 1, 0)), kind="imagefolder", out=str(tmp_path / "o"),
                        resolution=16, bits=16))


def _contents(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_a_finished_pack_is_refused_without_overwrite_and_left_as_it_was(tmp_path):
    _phantoms(tmp_path / "out")
    before = _contents(tmp_path / "out")
    with pytest.raises(GvaeError, match="already holds a packed dataset.*--overwrite"):
        _phantoms(tmp_path / "out", num=12)
    assert _contents(tmp_path / "out") == before


def test_a_failed_overwrite_leaves_the_old_pack_intact(tmp_path):
    _phantoms(tmp_path / "out")
    before = _contents(tmp_path / "out")
    with pytest.raises(GvaeError, match="unreadable"):
        pack(PackConfig(src=str(_folder(tmp_path, 20, 5)), kind="imagefolder", out=str(tmp_path / "out"),
                        resolution=16, overwrite=True))
    assert _contents(tmp_path / "out") == before
    assert [s["sha256"] for s in json.loads(before["dataset.json"])["splits"]["train"]["shards"]]


def test_a_directory_with_other_files_is_refused_untouched(tmp_path):
    generated = tmp_path / "generated"
    generated.mkdir()
    for name in ("train-000000.tar", "dataset.json", "manifest.json"):
        (generated / name).write_text(name)
    with pytest.raises(GvaeError, match="did not write.*manifest.json"):
        _phantoms(generated, overwrite=True)
    assert _contents(generated) == {name: name.encode() for name in ("dataset.json", "manifest.json",
                                                                     "train-000000.tar")}


def test_the_same_pack_again_does_nothing(tmp_path, monkeypatch):
    first = _phantoms(tmp_path / "out")
    monkeypatch.setattr(phantom, "load", lambda item, opts: pytest.fail("decoded again"))
    assert _phantoms(tmp_path / "out") == first


def test_an_image_over_the_pixel_limit_is_skipped_and_listed(tmp_path, monkeypatch):
    from gvae.data.sources import imagefolder

    monkeypatch.setattr(imagefolder, "MAX_PIXELS", 30 * 30)
    src = _folder(tmp_path, 99, 0)
    Image.new("L", (40, 40), 7).save(src / "huge.png")
    info = pack(PackConfig(src=str(src), kind="imagefolder", out=str(tmp_path / "out"), resolution=16,
                           val_fraction=0.0))
    assert [s["source"] for s in info["skipped"]] == ["huge.png"] and "megapixel limit" in info["skipped"][0]["reason"]


def test_a_link_to_a_folder_is_listed_under_skipped_not_followed(tmp_path):
    src = _folder(tmp_path, 99, 0)
    (src / "loop").symlink_to(src, target_is_directory=True)  # a link back up: followed, it never ends
    info = pack(PackConfig(src=str(src), kind="imagefolder", out=str(tmp_path / "out"), resolution=16,
                           val_fraction=0.0, max_bad_fraction=0.05))
    assert info["splits"]["train"]["count"] == 99
    assert info["skipped"] == [{"source": "loop", "reason": "a link to a folder: not followed"}]
