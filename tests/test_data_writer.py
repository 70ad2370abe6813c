import hashlib
import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from gvae.data import AtomicShardWriter, encode_png, iter_samples, write_shard


@pytest.mark.parametrize("image", [
    np.arange(48, dtype=np.uint8).reshape(6, 8),
    np.arange(144, dtype=np.uint8).reshape(6, 8, 3),
    (np.arange(48, dtype=np.uint16) * 1361).reshape(6, 8),
])
def test_encode_png_is_lossless_for_grey_rgb_and_16_bit(image):
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(image))))
    assert decoded.dtype == image.dtype
    np.testing.assert_array_equal(decoded, image)


def test_encode_png_refuses_float_images():
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4), np.float32))


def test_write_shard_reports_count_and_the_sha256_of_the_file(tmp_path):
    path = tmp_path / "x-000000.tar"
    result = write_shard(path, [{"__key__": f"{i:03d}", "png": encode_png(np.zeros((4, 4), np.uint8)), "cls": i,
                                 "json": {"i": i}} for i in range(3)])
    assert result == {"count": 3, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    with tarfile.open(path) as tar:
        assert sorted(tar.getnames())[:3] == ["000.cls", "000.json", "000.png"]
    assert [s["label"] for s in iter_samples(str(path))] == [0, 1, 2]


def test_write_shard_gives_identical_bytes_for_identical_samples(tmp_path):
    samples = [{"__key__": "a", "png": encode_png(np.ones((4, 4), np.uint8))}]
    assert write_shard(tmp_path / "a.tar", samples)["sha256"] == write_shard(tmp_path / "b.tar", samples)["sha256"]


def test_a_failed_shard_leaves_neither_a_final_nor_a_partial_file(tmp_path):
    def samples():
        yield {"__key__": "a", "png": encode_png(np.ones((4, 4), np.uint8))}
        raise RuntimeError("source died")

    with pytest.raises(RuntimeError):
        write_shard(tmp_path / "x.tar", samples())
    assert list(tmp_path.iterdir()) == []


def test_an_open_shard_is_invisible_under_its_final_name(tmp_path):
    writer = AtomicShardWriter(tmp_path / "x.tar")
    writer.write({"__key__": "a", "png": encode_png(np.ones((4, 4), np.uint8))})
    assert not (tmp_path / "x.tar").exists()
    writer.close()
    assert [p.name for p in tmp_path.iterdir()] == ["x.tar"]
