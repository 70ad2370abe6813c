"""Log lines from the main process only: under ``accelerate launch`` every rank runs the same code, and a
warning printed once per rank (8 GPUs x 4 nodes) buries the one that matters.

The filter sits on the one handler the ``gvae`` command installs, so it covers every logger (gvae's,
accelerate's, webdataset's) without each module asking. accelerate's own ``get_logger`` would do the same per
logger, but it raises when no accelerate state exists, as in ``gvae data pack`` or a loader's worker process.
Errors still come from every rank: a rank that fails alone must say so.
"""

from __future__ import annotations

import logging
import os


def is_main_process() -> bool:
    """RANK 0, or no RANK at all: ``accelerate launch`` and ``torchrun`` set it in every process they start."""
    return int(os.environ.get("RANK", "0")) == 0


class MainProcessOnly(logging.Filter):
    """Passes records of level ERROR and above from every process, the rest from the main process only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or is_main_process()


def configure_logging(verbose: int) -> None:
    """What the ``gvae`` command logs: warnings (``-v`` info, ``-vv`` debug) on stderr, from the main process."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MainProcessOnly())
    logging.basicConfig(level=logging.WARNING - 10 * min(verbose, 2), handlers=[handler])
