"""Open a run report in headless Chromium and check that every picture is there.

Two checks, because each catches what the other misses:
  * every ``<img>`` of the HTML has a ``data:image/png;base64`` URI that PIL decodes (a broken or external
    image would show as a blank box, or fetch from the network);
  * Chromium renders the page to a PNG that is not blank (the page loads and lays out in a real browser).

Usage:
    python benchmarks/screenshot_report.py gvae-demo/report.html [--out shot.png] [--chromium /usr/bin/chromium]

Prints one line per check and exits 1 if any fails (2 when no Chromium is found).
"""

from __future__ import annotations

import argparse
import base64
import io
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageStat

IMG_SRC = re.compile(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", re.IGNORECASE)
PNG_URI = "data:image/png;base64,"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def image_problems(html: str) -> tuple[int, list[str]]:
    """(number of <img> tags, what is wrong with them): each must be a PNG data URI that decodes."""
    sources = IMG_SRC.findall(html)
    problems = []
    for index, src in enumerate(sources):
        if not src.startswith(PNG_URI):
            problems.append(f"image {index}: not an embedded PNG ({src[:40]!r})")
            continue
        try:
            Image.open(io.BytesIO(base64.b64decode(src[len(PNG_URI):], validate=True))).load()
        except Exception as err:  # any decoding failure is the finding itself
            problems.append(f"image {index}: does not decode ({err})")
    return len(sources), problems


def screenshot(page: Path, out: Path, chromium: str, width: int = 1280, height: int = 4000,
               timeout: float = 120.0) -> None:
    """Render ``page`` with headless Chromium into ``out`` (a fresh profile each time, no network)."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out.resolve()}",
                        f"--window-size={width},{height}", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=timeout)


def is_blank(path: Path) -> bool:
    """True when the screenshot is a single flat colour (nothing rendered)."""
    stat = ImageStat.Stat(Image.open(path).convert("L"))
    return stat.stddev[0] < 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="screenshot PNG [default: REPORT.png]")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)
    count, problems = image_problems(args.report.read_text(encoding="utf-8"))
    print(f"images: {count} embedded, {len(problems)} broken")
    for problem in problems:
        print(f"  {problem}")
    if not Path(args.chromium).is_file():
        print(f"no Chromium at {args.chromium}; screenshot skipped")
        return 2
    out = args.out or args.report.with_suffix(".png")
    screenshot(args.report, out, args.chromium)
    blank = is_blank(out)
    print(f"screenshot: {out} ({Image.open(out).size[0]}x{Image.open(out).size[1]}), {'BLANK' if blank else 'not blank'}")
    return 1 if problems or blank or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
