"""The result folders of the eval scripts: one JSON summary per run, and a README.md that tables them all, so
that a run added later joins the table of those before it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path


def write_readme(out: Path, pattern: str, table: Callable[[list[dict]], str], intro: str) -> str:
    """Write ``out``/README.md: ``intro``, then ``table`` of every summary ``out``/``pattern``; returns the table."""
    text = table([json.loads(path.read_text()) for path in sorted(out.glob(pattern))])
    (out / "README.md").write_text(intro + "\n\n" + text)
    return text
