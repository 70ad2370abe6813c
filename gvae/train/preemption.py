"""Stopping on a signal with a checkpoint: what a preempted or time-limited job needs.

SLURM sends SIGUSR1 ahead of a job's time limit (``#SBATCH --signal``) and SIGTERM when it preempts or
cancels one. Either one makes the trainer finish its current step, write a checkpoint and return, so that
rerunning the same command (``--resume auto``) continues from there. A signal can reach the ranks of a job
at slightly different steps, so the ranks agree after every step (one all-reduce of a scalar) and stop at
the same one.
"""

from __future__ import annotations

import signal
import threading

import torch

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class StopSignals:
    """While installed, SIGTERM and SIGUSR1 only record their name in :attr:`received`; :meth:`restore` puts
    the previous handlers back. Outside the main thread (where Python allows no handlers) nothing is installed."""

    def __init__(self):
        self.received: str | None = None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._note) for sig in STOP_SIGNALS}

    def _note(self, signum, frame) -> None:
        self.received = self.received or signal.Signals(signum).name

    def agreed(self, accelerator) -> bool:
        """Whether any rank has received a stop signal (collective: every rank must call it)."""
        flag = torch.tensor([0.0 if self.received is None else 1.0], device=accelerator.device)
        stop = accelerator.reduce(flag, "sum").item() > 0
        if stop and self.received is None:
            self.received = "a signal on another rank"
        return stop

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
