"""Files and directories as every command writes and reads them: atomically, under a lock, checked.

* Atomic writes: the bytes go to a hidden temporary file beside the target (``.NAME.partial``, same filesystem,
  so the final ``os.replace`` is an atomic rename), are flushed to disk, and only then renamed over the target.
  A target that exists and is not a regular file (a directory, a device such as ``/dev/null``, a FIFO) is
  refused before anything is written: renaming over it would destroy it, and as root that includes system
  device nodes.
* :class:`DirectoryLock`: one writing process per output directory.
* :func:`read_json` and :func:`sha256_file`: reading back what was written, with one-line errors.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import stat
import weakref
from pathlib import Path
from typing import Any

from gvae.errors import GvaeError
from gvae.logs import is_main_process

PARTIAL_SUFFIX = ".partial"  # temporary files: ".NAME.partial" beside NAME


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
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (a PNG, say), as :func:`write_text_atomic` does. Returns the path."""
    path = check_writable_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}{PARTIAL_SUFFIX}")
    try:
        with open(partial, "wb") as handle:
            handle.write(data)
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


_HELD: weakref.WeakSet[DirectoryLock] = weakref.WeakSet()


def _drop_locks_in_child() -> None:
    """A forked child (a data-loader worker, a decoding pool process) shares its parent's open directory and
    with it the lock, which would then outlive a parent killed with SIGKILL for as long as the orphaned
    worker lives. Closing the child's copy leaves the lock to the parent alone."""
    for lock in list(_HELD):
        if lock._descriptor is not None:
            os.close(lock._descriptor)
            lock._descriptor = None
    _HELD.clear()


os.register_at_fork(after_in_child=_drop_locks_in_child)


class DirectoryLock:
    """An exclusive advisory lock (``flock``) on a directory, held by this process until :meth:`release`.

    Two writers in one output directory would interleave their files (two trainings appended duplicate steps
    to one metrics.jsonl), so each writing command holds one. The lock is on the directory itself and leaves
    no file behind, and the operating system drops it when the process dies: a killed run leaves no stale
    lock. Use it as a context manager, or call :meth:`release`; dropping the object releases it too. A
    directory the lock had to create and that is still empty on release is removed again.
    """

    def __init__(self, directory: str | os.PathLike, what: str):
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise GvaeError(f"--out {self.directory} is a file; give a directory")
        self.created = not self.directory.exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._descriptor: int | None = os.open(self.directory, os.O_RDONLY)
        try:
            fcntl.flock(self._descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise GvaeError(f"{self.directory} is in use by another {what}; wait for it to finish, or use "
                            "another --out") from None
        _HELD.add(self)

    def release(self) -> None:
        if self._descriptor is None:
            return
        os.close(self._descriptor)
        self._descriptor = None
        _HELD.discard(self)
        if self.created and self.directory.is_dir() and not any(self.directory.iterdir()):
            self.directory.rmdir()

    def __enter__(self) -> DirectoryLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def lock_for_main_process(directory: str | os.PathLike, what: str) -> contextlib.AbstractContextManager:
    """A :class:`DirectoryLock` in the main process of a launched job (RANK 0, as set by accelerate launch and
    torchrun, or no RANK at all), nothing in the others: one lock per job, taken before any rank writes."""
    if not is_main_process():
        return contextlib.nullcontext()
    return DirectoryLock(directory, what)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_json(path: str | os.PathLike, what: str) -> Any:
    """The JSON document at ``path``; one GvaeError naming ``what`` it should be when it is damaged (cut
    short, not JSON, not UTF-8) or unreadable, instead of a decoder traceback."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = getattr(err, "strerror", None) or str(err).splitlines()[0][:200]
        raise GvaeError(f"{path}: unreadable {what} ({reason}); restore or delete it") from None
