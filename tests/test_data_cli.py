"""``gvae data pack`` and ``gvae data inspect`` from the command line: results, and one-line errors."""

import json

from click.testing import CliRunner

from gvae.cli import cli
from gvae.data import write_shard


def run(*args):
    return CliRunner().invoke(cli, list(args))


def assert_one_line_error(result, fragment):
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and fragment in lines[0], result.output


def test_pack_then_inspect_phantoms(tmp_path):
    out = tmp_path / "ph"
    packed = run("data", "pack", "-", "--kind", "phantom", "--num", "12", "--resolution", "32", "--out", str(out),
                 "--shard-size", "5", "--val-fraction", "0.25", "--window=-160,240")
    assert packed.exit_code == 0, packed.output
    info = json.loads((out / "dataset.json").read_text())
    assert info["command"] == (f"gvae data pack - --kind=phantom --out={out} --resolution=32 --shard-size=5 "
                               "--val-fraction=0.25 --window=-160.0,240.0 --num=12")
    inspected = run("data", "inspect", str(out), "--grid", str(tmp_path / "grid.png"))
    assert inspected.exit_code == 0, inspected.output
    assert "train: 9 samples in 2 shards (dataset.json: 9)" in inspected.output
    assert "val: 3 samples" in inspected.output and "lesion" in inspected.output
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_pack_of_a_missing_folder_is_a_one_line_error(tmp_path):
    assert_one_line_error(run("data", "pack", str(tmp_path / "nope"), "--kind", "imagefolder", "--resolution", "32",
                              "--out", str(tmp_path / "out")), "not a directory")


def test_pack_of_an_empty_folder_is_a_one_line_error(tmp_path):
    assert_one_line_error(run("data", "pack", str(tmp_path), "--kind", "dicom", "--resolution", "32",
                              "--out", str(tmp_path / "out")), "found nothing to pack")


def test_a_malformed_window_is_a_usage_error(tmp_path):
    result = run("data", "pack", "-", "--kind", "phantom", "--num", "2", "--resolution", "32", "--out",
                 str(tmp_path), "--window", "high,low")
    assert result.exit_code == 2 and "--window" in result.output


def test_inspect_of_nothing_is_a_one_line_error(tmp_path):
    assert_one_line_error(run("data", "inspect", str(tmp_path / "x-{0..3}.tar")), "no such shards")


def test_inspect_reports_a_corrupt_sample_and_exits_1(tmp_path):
    write_shard(tmp_path / "s.tar", [{"__key__": "k", "png": b"not a png"}])
    result = run("data", "inspect", str(tmp_path / "s.tar"))
    assert result.exit_code == 1
    assert "bad: " in result.output and result.output.strip().splitlines()[-1].startswith("Error: 1 unreadable")


def test_a_failing_pack_into_a_packed_directory_keeps_the_dataset(tmp_path):
    """The reported loss: a pack with a truncated input, aimed at an existing dataset, must leave it whole."""
    out = tmp_path / "V"
    assert run("data", "pack", "-", "--kind", "phantom", "--num", "20", "--resolution", "32",
               "--out", str(out)).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    src = tmp_path / "in"
    src.mkdir()
    (src / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    for args in ([], ["--overwrite"]):
        result = run("data", "pack", str(src), "--kind", "imagefolder", "--resolution", "32", "--out", str(out),
                     *args)
        last = result.output.strip().splitlines()[-1]  # after the progress bar, when the pack got that far
        assert result.exit_code == 1 and last.startswith("Error: ")
        assert ("already holds a packed dataset" if not args else "unreadable") in last
        assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def _packed(tmp_path):
    out = tmp_path / "ph"
    assert run("data", "pack", "-", "--kind", "phantom", "--num", "12", "--resolution", "32", "--out", str(out),
               "--val-fraction", "0").exit_code == 0
    return out


def test_inspect_finds_a_shard_with_one_flipped_byte(tmp_path):
    out = _packed(tmp_path)
    shard = out / "train-000000.tar"
    data = bytearray(shard.read_bytes())
    offset = data.index(b'"source"')  # inside a sample's json: decodes fine, only the checksum can tell
    data[offset + 1] ^= 0x01
    shard.write_bytes(bytes(data))
    result = run("data", "inspect", str(out))
    assert result.exit_code == 1 and "sha256 differs from dataset.json" in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: ")


def test_inspect_fails_when_the_count_differs_from_dataset_json(tmp_path):
    out = _packed(tmp_path)
    info = json.loads((out / "dataset.json").read_text())
    info["splits"]["train"]["count"] = 13
    (out / "dataset.json").write_text(json.dumps(info))
    result = run("data", "inspect", str(out))
    assert result.exit_code == 1
    assert "train holds 12 readable samples, dataset.json says 13" in result.output.strip().splitlines()[-1]


def test_non_finite_numbers_are_usage_errors(tmp_path):
    for option in (["--window=-inf,inf"], ["--max-bad-fraction", "nan"], ["--val-fraction", "nan"]):
        result = run("data", "pack", "-", "--kind", "phantom", "--num", "4", "--resolution", "32",
                     "--out", str(tmp_path / "o"), *option)
        assert result.exit_code == 2 and "finite" in result.output, result.output
    assert not (tmp_path / "o").exists()


def test_unbounded_requests_are_refused_before_using_memory_or_processes(tmp_path):
    huge = run("data", "pack", "-", "--kind", "phantom", "--num", "99999999999999999999", "--resolution", "32",
               "--out", str(tmp_path / "o"))
    assert huge.exit_code == 1 and "at most 10,000,000 phantoms" in huge.output
    workers = run("data", "pack", "-", "--kind", "phantom", "--num", "4", "--resolution", "32", "--workers",
                  "100000", "--out", str(tmp_path / "o"))
    assert workers.exit_code == 2 and "--workers" in workers.output
    assert_one_line_error(run("data", "inspect", str(tmp_path / "x-{0..99999999}.tar")),
                          "expands to more than 1,000,000 shard names")


def test_a_grid_without_an_image_extension_is_one_line_before_reading(tmp_path):
    assert_one_line_error(run("data", "inspect", str(tmp_path / "nothing-here"), "--grid", str(tmp_path / "g.xyz")),
                          "give a file name with an image extension")


def test_a_full_disk_is_one_line(tmp_path, monkeypatch):
    import errno
    import os

    from gvae.data import writer

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "o" / "train-000000.tar"))

    monkeypatch.setattr(writer.AtomicShardWriter, "close", full)
    result = run("data", "pack", "-", "--kind", "phantom", "--num", "4", "--resolution", "32", "--out",
                 str(tmp_path / "o"))
    last = result.output.strip().splitlines()[-1]
    assert result.exit_code == 1 and last.startswith("Error: ") and "No space left on device" in last
