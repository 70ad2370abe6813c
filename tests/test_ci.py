""".ci/run: as root with apt it installs what the skipped-elsewhere tests need (run with stand-ins for id and
apt-get that record what they were asked)."""

import os
import re
import stat
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _system_setup() -> str:
    """The block of .ci/run that installs system packages (it comes before any virtual environment is made)."""
    text = (REPO / ".ci/run").read_text()
    return re.search(r"^if \[ \"\$\(id -u\)\" = 0 \].*?^fi$", text, re.S | re.M).group(0)


def _run_as(uid: str, tmp_path) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("id", f"echo {uid}"), ("apt-get", 'echo "$*" >> "$RECORD"')):
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(stat.S_IRWXU)
    record = tmp_path / "apt-get"
    record.touch()
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", RECORD=str(record))
    subprocess.run(["bash", "-euo", "pipefail", "-c", _system_setup()], env=env, check=True, timeout=60)
    return record.read_text()


def test_as_root_ci_installs_chromium_for_the_report_render_test(tmp_path):
    install = _run_as("0", tmp_path).splitlines()[-1].split()
    assert install[:2] == ["install", "-y"] and {"chromium", "dataset-fashion-mnist"} <= set(install)
    # the render test looks for the browser where Debian's chromium package puts it
    assert 'Path("/usr/bin/chromium")' in (REPO / "tests/test_report.py").read_text()


def test_as_another_user_ci_installs_nothing(tmp_path):
    assert _run_as("1000", tmp_path) == ""
