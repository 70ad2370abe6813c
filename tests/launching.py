"""Launching several processes from tests that run in parallel (pytest -n): each launch gets its own port."""

import shutil
import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    """A TCP port that was free a moment ago (parallel launches on accelerate's default 29500 collide)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_launch(config_file: str) -> list[str]:
    """The ``accelerate launch`` command prefix for ``config_file`` on a port of its own."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_file),
            "--main_process_port", str(free_port())]


TEARDOWN_ABORT = "terminate called without an active exception"


def run_launched(cmd: list[str], outputs: list[Path], **options) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True, **options)``, once more (``outputs`` deleted first)
    if a process aborted with :data:`TEARDOWN_ABORT`: a rare abort of a DeepSpeed ZeRO-3 process while it tears
    down after finished work (about one launch in a few hundred here, never reproduced on demand), which is
    not what these tests are about. Any other failure, or the same abort twice, is returned as it is."""
    result = subprocess.run(cmd, capture_output=True, text=True, **options)
    if result.returncode != 0 and TEARDOWN_ABORT in result.stderr:
        for path in outputs:
            shutil.rmtree(path, ignore_errors=True)
        result = subprocess.run(cmd, capture_output=True, text=True, **options)
    return result
