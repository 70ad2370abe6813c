"""Warnings and info once per job, from the main process; errors from every process."""

import os
import subprocess
import sys

import pytest

EMIT = ("import logging; from gvae.logs import configure_logging; configure_logging(1); "
        "log = logging.getLogger('gvae.somewhere'); log.info('an info'); log.warning('a warning'); log.error('an error')")


def _stderr(rank: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "RANK"} | ({"RANK": rank} if rank is not None else {})
    return subprocess.run([sys.executable, "-c", EMIT], env=env, capture_output=True, text=True, timeout=60).stderr


@pytest.mark.parametrize("rank", [None, "0"], ids=["single process", "rank 0"])
def test_the_main_process_logs_info_warnings_and_errors(rank):
    assert _stderr(rank).splitlines() == ["INFO gvae.somewhere: an info", "WARNING gvae.somewhere: a warning",
                                          "ERROR gvae.somewhere: an error"]


def test_another_rank_logs_only_its_errors():
    assert _stderr("3").splitlines() == ["ERROR gvae.somewhere: an error"]
