"""Each source packs real (or realistically built) inputs into the right pixels, labels and counts."""

import gzip
import io
import shutil

import numpy as np
import pytest
from PIL import Image

from gvae.data import PackConfig, iter_samples, pack
from gvae.data.sources import Item, PackOptions, phantom
from gvae.errors import GvaeError


def _by_source(directory, split="train"):
    return {s["json"]["source"]: s for s in iter_samples(str(directory), split)}


def test_imagefolder_round_trip_is_pixel_exact_with_labels_from_dirs(tmp_path):
    rng = np.random.default_rng(0)
    written = {}
    for cls in ("cat", "dog"):
        (tmp_path / "src" / cls).mkdir(parents=True)
        for i in range(3):
            image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(image).save(tmp_path / "src" / cls / f"{i}.png")
            written[f"{cls}/{i}.png"] = (image, cls)
    info = pack(PackConfig(src=str(tmp_path / "src"), kind="imagefolder", out=str(tmp_path / "out"), resolution=16,
                           labels_from_dirs=True, val_fraction=0.0))
    assert info["label_names"] == ["cat", "dog"]
    samples = _by_source(tmp_path / "out")
    assert samples.keys() == written.keys()
    for source, (image, cls) in written.items():
        np.testing.assert_array_equal(np.rint(samples[source]["image"] * 255).astype(np.uint8),
                                      image.transpose(2, 0, 1))
        assert info["label_names"][samples[source]["label"]] == cls


def test_imagefolder_centre_crops_and_resizes_to_a_square(tmp_path):
    (tmp_path / "src").mkdir()
    Image.new("RGB", (60, 30), (200, 10, 10)).save(tmp_path / "src" / "wide.jpg")
    pack(PackConfig(src=str(tmp_path / "src"), kind="imagefolder", out=str(tmp_path / "out"), resolution=16,
                    channels=1, val_fraction=0.0))
    (sample,) = iter_samples(str(tmp_path / "out"), "train")
    assert sample["image"].shape == (1, 16, 16)
    assert sample["json"]["original_size"] == [60, 30]


@pytest.fixture
def dicom_dir(tmp_path):
    pydicom_data = pytest.importorskip("pydicom.data")
    directory = tmp_path / "dicom"
    directory.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm", "MR_truncated.dcm"):
        shutil.copy(pydicom_data.get_testdata_file(name), directory / name)
    return directory


def _ct_hu():
    import pydicom

    ds = pydicom.dcmread(pydicom.data.get_testdata_file("CT_small.dcm"))
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


@pytest.mark.parametrize("bits", [8, 16])
def test_dicom_ct_pixels_are_hounsfield_units_through_the_default_window(dicom_dir, tmp_path, bits):
    (dicom_dir / "MR_truncated.dcm").unlink()
    pack(PackConfig(src=str(dicom_dir), kind="dicom", out=str(tmp_path / "out"), resolution=128, bits=bits,
                    val_fraction=0.0))
    top = (1 << bits) - 1
    expected = np.rint(np.clip((_ct_hu() + 100) / 340, 0, 1) * top)
    got = np.rint(_by_source(tmp_path / "out")["CT_small.dcm"]["image"][0] * top)
    np.testing.assert_array_equal(got, expected)


def test_dicom_truncated_file_is_skipped_and_reported(dicom_dir, tmp_path):
    info = pack(PackConfig(src=str(dicom_dir), kind="dicom", out=str(tmp_path / "out"), resolution=64,
                           val_fraction=0.0, max_bad_fraction=0.5))
    assert info["splits"]["train"]["count"] == 2
    assert [s["source"] for s in info["skipped"]] == ["MR_truncated.dcm"]
    assert "pixel data" in info["skipped"][0]["reason"]


def test_lsun_lmdb_of_webp_and_jpeg_images_packs_every_key(tmp_path):
    lmdb = pytest.importorskip("lmdb")
    colours = {b"a1": ("WEBP", (250, 20, 20)), b"b2": ("JPEG", (20, 250, 20)), b"c3": ("WEBP", (20, 20, 250))}
    with lmdb.open(str(tmp_path / "bedroom_lmdb"), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for key, (fmt, colour) in colours.items():
            buffer = io.BytesIO()
            Image.new("RGB", (40, 30), colour).save(buffer, format=fmt, quality=95)
            txn.put(key, buffer.getvalue())
    info = pack(PackConfig(src=str(tmp_path / "bedroom_lmdb"), kind="lsun", out=str(tmp_path / "out"),
                           resolution=16, val_fraction=0.0))
    samples = _by_source(tmp_path / "out")
    assert info["splits"]["train"]["count"] == 3 and info["channels"] == 3
    for key, (_, colour) in colours.items():
        mean = samples[key.decode()]["image"].mean(axis=(1, 2)) * 255
        np.testing.assert_allclose(mean, colour, atol=6)


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_idx_gz_and_plain_files_keep_the_official_split_and_labels(tmp_path):
    root = tmp_path / "fashion-mnist"
    root.mkdir()
    rng = np.random.default_rng(1)
    train_images, train_labels = rng.integers(0, 256, (7, 16, 16)), rng.integers(0, 10, 7)
    test_images, test_labels = rng.integers(0, 256, (3, 16, 16)), rng.integers(0, 10, 3)
    (root / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(train_images)))
    (root / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(train_labels)))
    (root / "t10k-images-idx3-ubyte").write_bytes(_idx(test_images))
    (root / "t10k-labels-idx1-ubyte").write_bytes(_idx(test_labels))
    info = pack(PackConfig(src=str(root), kind="idx", out=str(tmp_path / "out"), resolution=16, val_fraction=0.5))
    assert (info["splits"]["train"]["count"], info["splits"]["val"]["count"]) == (7, 3)
    assert info["label_names"][0] == "T-shirt/top"
    for split, images, labels, name in (("train", train_images, train_labels, "train-images-idx3-ubyte.gz"),
                                        ("val", test_images, test_labels, "t10k-images-idx3-ubyte")):
        samples = _by_source(tmp_path / "out", split)
        for i in range(len(labels)):
            sample = samples[f"{name}:{i}"]
            assert sample["label"] == labels[i]
            np.testing.assert_array_equal(np.rint(sample["image"][0] * 255), images[i])


def test_nifti_volume_gives_one_windowed_image_per_axial_slice_in_range(tmp_path):
    nib = pytest.importorskip("nibabel")
    hu = np.stack([np.full((20, 20), -100 + 340 * k / 5, np.float32) for k in range(6)], axis=2)
    nib.save(nib.Nifti1Image(hu, np.eye(4)), tmp_path / "ct.nii.gz")
    info = pack(PackConfig(src=str(tmp_path / "ct.nii.gz"), kind="nifti", out=str(tmp_path / "out"), resolution=16,
                           slice_range=(1, 4), val_fraction=0.0))
    assert info["splits"]["train"]["count"] == 3
    samples = list(iter_samples(str(tmp_path / "out"), "train"))
    for sample in samples:
        k = sample["json"]["slice"]
        np.testing.assert_allclose(sample["image"], round(k / 5 * 255) / 255)
    assert sorted(s["json"]["slice"] for s in samples) == [1, 2, 3]


def test_phantom_image_depends_on_seed_and_index_only(tmp_path):
    for num, out in ((4, "a"), (9, "b")):
        pack(PackConfig(src="-", kind="phantom", out=str(tmp_path / out), resolution=32, num=num, seed=5,
                        val_fraction=0.0))
    small, large = _by_source(tmp_path / "a"), _by_source(tmp_path / "b")
    for source, sample in small.items():
        np.testing.assert_array_equal(sample["image"], large[source]["image"])
        assert sample["label"] == large[source]["label"] == sample["json"]["lesions"]
    other_seed = phantom.load(Item("phantom:0", ref=0), PackOptions(resolution=32, channels=1, seed=6))[0]
    assert not np.array_equal(other_seed.pixels / 255, small["phantom:0"]["image"][0])


@pytest.mark.parametrize("resolution", [32, 1024])
def test_phantom_has_the_requested_shape_full_range_and_a_lesion_label(resolution):
    (image,) = phantom.load(Item("phantom:2", ref=2), PackOptions(resolution=resolution, channels=1, seed=0))
    assert image.pixels.shape == (resolution, resolution) and image.pixels.dtype == np.uint8
    assert image.pixels.min() == 0 and image.pixels.max() == 255
    assert image.label in range(4)


def test_phantom_edges_are_antialiased():
    (image,) = phantom.load(Item("phantom:0", ref=0), PackOptions(resolution=256, channels=1))
    body_edge_row = image.pixels[128, :64]
    assert len(np.unique(body_edge_row)) > 3  # grey levels between air and the body, not a hard step


def test_phantom_without_num_is_refused(tmp_path):
    with pytest.raises(GvaeError, match="--num"):
        pack(PackConfig(src="-", kind="phantom", out=str(tmp_path / "out"), resolution=32))
