"""Launching several processes from tests that run in parallel (pytest -n): each launch gets its own port."""

import socket
import sys


def free_port() -> int:
    """A TCP port that was free a moment ago (parallel launches on accelerate's default 29500 collide)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accelerate_launch(config_file: str) -> list[str]:
    """The ``accelerate launch`` command prefix for ``config_file`` on a port of its own."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_file),
            "--main_process_port", str(free_port())]
