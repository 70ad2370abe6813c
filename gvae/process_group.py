"""Closing the process group that ``accelerate launch`` leaves to a command, once every process is done, and
ending a launched process without the interpreter's teardown."""

from __future__ import annotations

import logging
import os
import sys

_left = []  # holds True once leave_process_group closed a process group in this process


def leave_process_group() -> None:
    """Under ``accelerate launch``, let every process finish its work before any closes the process group.

    Left to interpreter exit, a process that is done (not the main one, which still writes and prints) tears
    down its process group while the others may still use theirs; seen to abort such a process with
    "terminate called without an active exception" after a finished 2-process ZeRO-3 run. Call it after the
    work succeeded, not after an error, where the other processes may never reach the barrier. Does nothing
    without a process group, and imports nothing: torch.distributed is looked up only if already imported.
    """
    dist = sys.modules.get("torch.distributed")  # never imported: no process group to close
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
        _left.append(True)


def end_launched_process(code: int) -> None:
    """End this process now with ``code`` if :func:`leave_process_group` closed its process group: flush the
    streams and the logs, then ``os._exit``, skipping the interpreter's teardown.

    That teardown is where a finished DeepSpeed ZeRO-3 process with parameter offload was seen to abort (rank
    1, "terminate called without an active exception", exit -6) even after the barrier and the group's
    destruction, so that ``accelerate launch`` reported a failure for work that was done and saved. By then
    the command has written everything it writes. Does nothing in a process that left no group (one process,
    or a command that failed).
    """
    if not _left:
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)
