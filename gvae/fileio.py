"""Writing a user-visible file so that it is either the old file or the whole new one, never a mix.

The text goes to a hidden temporary file beside the target (same filesystem, so the final ``os.replace`` is an
atomic rename), is flushed to disk, and only then renamed over the target. A target that exists and is not a
regular file (a directory, a device such as ``/dev/null``, a FIFO) is refused before anything is written:
renaming over it would destroy it, and as root that includes system device nodes.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from gvae.errors import GvaeError

TEMP_SUFFIX = ".partial"


def check_writable_target(path: str | os.PathLike) -> Path:
    """``path`` as a Path, after refusing a target that exists and is not a regular file (symlinks followed)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise GvaeError(f"{path}: cannot be written ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
        raise GvaeError(f"{path} is {what}; refusing to replace it. Give the path of a file to write")
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; parent directories are created. Returns the path.

    A symlink at ``path`` is replaced by the file, not followed: the link's target is never modified.
    """
    path = check_writable_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}{TEMP_SUFFIX}")
    try:
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise GvaeError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    return path


def write_json_atomic(path: str | os.PathLike, payload: Any, sort_keys: bool = False) -> Path:
    """``payload`` as strict JSON (NaN and infinity refused: no JSON reader accepts them), atomically."""
    try:
        text = json.dumps(payload, indent=2, sort_keys=sort_keys, allow_nan=False)
    except ValueError as exc:
        raise GvaeError(f"{path}: refusing to write a non-finite number into JSON ({exc})") from None
    return write_text_atomic(path, text + "\n")
