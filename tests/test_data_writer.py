import hashlib
import io
import tarfile
import zlib

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


def test_encode_png_takes_one_channel_and_strided_views_as_they_come_from_a_model():
    nchw = np.arange(2 * 3 * 6 * 8, dtype=np.uint8).reshape(2, 3, 6, 8)
    rgb_view = nchw.transpose(0, 2, 3, 1)[1]  # [H, W, 3], not C-contiguous
    grey = nchw[:, :1].transpose(0, 2, 3, 1)[0]  # [H, W, 1]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(encode_png(rgb_view)))), rgb_view)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(encode_png(grey)))), grey[:, :, 0])


def row_filters(png: bytes) -> list[int]:
    """The filter type byte of every row of a non-interlaced PNG, read from its IHDR and IDAT chunks."""
    chunks, at = {}, 8
    while at < len(png):
        length = int.from_bytes(png[at:at + 4], "big")
        kind = png[at + 4:at + 8]
        chunks[kind] = chunks.get(kind, b"") + png[at + 8:at + 8 + length]
        at += 12 + length
    width, height = int.from_bytes(chunks[b"IHDR"][:4], "big"), int.from_bytes(chunks[b"IHDR"][4:8], "big")
    rows = zlib.decompress(chunks[b"IDAT"])
    stride = len(rows) // height
    assert stride * height == len(rows) and stride > width
    return [rows[i * stride] for i in range(height)]


def test_encode_png_filters_every_row_with_sub():
    # an image on which an adaptive choice would pick other filters: smooth down the columns, noisy along rows
    rng = np.random.default_rng(0)
    image = np.repeat(rng.integers(0, 256, (1, 32, 3), dtype=np.uint8), 32, axis=0)
    assert row_filters(encode_png(image)) == [1] * 32  # 1: Sub


@pytest.mark.parametrize("image", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 4), np.uint8),
                                   np.zeros((4, 4, 3), np.uint16)])
def test_encode_png_refuses_what_it_cannot_store_losslessly_as_asked(image):
    with pytest.raises(ValueError, match="uint8"):
        encode_png(image)


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
