"""Closing the process group that ``accelerate launch`` leaves to a command, once every process is done."""

from __future__ import annotations

import sys


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
