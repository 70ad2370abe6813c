"""What the scripts that write docs/RESULTS.md share: its marked blocks and its sample grids.

Marked blocks are parts written by their own scripts, kept when another script rewrites the rest. A block runs from ``<!-- NAME: start -->`` to ``<!-- NAME: end -->``. eval/write_results.py writes the file's
head and keeps every block it finds; eval/write_augmentation_results.py and eval/write_sweep_results.py each
replace their own block (or append it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

BLOCK = re.compile(r"<!-- (?P<name>[^:>]+): start -->.*?<!-- (?P=name): end -->", re.S)


def markers(name: str) -> tuple[str, str]:
    """The start and end lines of block ``name``."""
    return f"<!-- {name}: start -->", f"<!-- {name}: end -->"


def replace_block(text: str, name: str, lines: list[str]) -> str:
    """``text`` with block ``name`` replaced by ``lines`` between its markers (appended when there is none)."""
    start, end = markers(name)
    block = "\n".join([start, *lines, end])
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    return pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + block + "\n"


def kept_blocks(text: str) -> list[str]:
    """Every marked block of ``text``, in order, markers included."""
    return [match.group(0) for match in BLOCK.finditer(text)]


def grid_lines(runs: list[Path], out_dir: Path) -> list[str]:
    """Markdown for each run's newest sample grid, copied to results/grids/ in ``out_dir`` (RESULTS.md's folder).

    A run whose directory is gone (trained elsewhere, or deleted after its results were cached) keeps the copy
    made when it was present; a run with neither is left out.
    """
    grids = out_dir / "results" / "grids"
    grids.mkdir(parents=True, exist_ok=True)
    lines = []
    for run in map(Path, runs):
        samples = sorted((run / "samples").glob("step-*.png"))
        target = grids / f"{run.name}.png"
        if samples:
            target.write_bytes(samples[-1].read_bytes())
        if target.is_file():
            lines += picture_lines(run.name, target, out_dir)
    return lines


def picture_lines(name: str, picture: Path, out_dir: Path) -> list[str]:
    """Markdown showing ``picture`` under the bold caption ``name``, linked relative to ``out_dir``."""
    return [f"**{name}**", "", f"![{name}]({os.path.relpath(picture, out_dir)})", ""]
