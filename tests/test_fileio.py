"""Atomic writes of user-visible files: all or nothing, strict JSON, and never over a non-regular file."""

import json
import os
import time

import pytest
from click.testing import CliRunner

from gvae.cli import cli
from gvae.errors import GvaeError
from gvae.fileio import DirectoryLock, write_json_atomic, write_text_atomic


def test_a_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "results.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]


def test_a_fifo_standing_in_for_a_device_is_refused_and_kept(tmp_path):
    fifo = tmp_path / "null"
    os.mkfifo(fifo)
    with pytest.raises(GvaeError, match="not a regular file"):
        write_text_atomic(fifo, "x")
    assert fifo.exists() and not fifo.is_file()


def test_a_directory_is_refused_and_kept(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep").write_text("k")
    with pytest.raises(GvaeError, match="is a directory"):
        write_text_atomic(tmp_path / "d", "x")
    assert (tmp_path / "d" / "keep").read_text() == "k"


def test_non_finite_numbers_are_refused_and_the_old_file_kept(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"v": 1.0})
    with pytest.raises(GvaeError, match="non-finite"):
        write_json_atomic(path, {"v": float("nan")})
    assert json.loads(path.read_text()) == {"v": 1.0}


def test_eval_refuses_an_out_that_is_not_a_file_before_loading_anything(tmp_path):
    fifo = tmp_path / "null"
    os.mkfifo(fifo)
    result = CliRunner().invoke(cli, ["eval", str(tmp_path / "no-run"), "--data", "x", "--out", str(fifo)])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "not a regular file" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not fifo.is_file()


def test_a_directory_lock_refuses_a_second_holder_until_released(tmp_path):
    first = DirectoryLock(tmp_path / "run", "gvae train")
    with pytest.raises(GvaeError, match="in use by another gvae train"):
        DirectoryLock(tmp_path / "run", "gvae train")
    first.release()
    with DirectoryLock(tmp_path / "run", "gvae train"):
        pass


def test_a_lock_leaves_no_trace_in_a_directory_it_created(tmp_path):
    with DirectoryLock(tmp_path / "new", "gvae generate"):
        assert (tmp_path / "new").is_dir()
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("command", [
    ["train", "RECIPE", "--out", "OUT"],
    ["generate", "RUN", "--num", "4", "--out", "OUT"],
    ["data", "pack", "-", "--kind", "phantom", "--num", "4", "--resolution", "32", "--out", "OUT"],
])
def test_a_second_writer_into_a_busy_directory_is_refused_untouched(tmp_path, command):
    """Another process writing OUT (here: this test holding its lock) makes every writing command refuse."""
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep").write_text("k")
    (tmp_path / "x.yaml").write_text("data:\n  train: nowhere\n")
    args = [str(out) if a == "OUT" else str(tmp_path / "x.yaml") if a == "RECIPE" else a for a in command]
    with DirectoryLock(out, "gvae command"):
        result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "is in use by another" in result.output, result.output
    assert [p.name for p in out.iterdir()] == ["keep"]


def test_a_forked_child_does_not_keep_the_lock_of_a_parent_that_died(tmp_path):
    """A loader worker orphaned by `kill -9` of its training must not block the rerun."""
    (tmp_path / "run").mkdir()  # kept on release: the second lock must meet the same directory
    parent = DirectoryLock(tmp_path / "run", "gvae train")
    started, ready = os.pipe()
    child = os.fork()
    if child == 0:  # the child outlives its parent's lock, as an orphaned worker would
        os.write(ready, b"1")  # fork's handlers have run by now
        time.sleep(2)
        os._exit(0)
    try:
        os.read(started, 1)
        parent.release()
        with DirectoryLock(tmp_path / "run", "gvae train"):
            pass
    finally:
        os.waitpid(child, 0)
