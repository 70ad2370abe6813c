"""A run's chosen sampling temperature: written by ``gvae eval temperature`` (and ``gvae demo``) into the run
directory as ``temperature.json``, carried into an exported or pushed model's folder (``gvae export``, ``gvae
push``), read by ``gvae generate`` when no ``--temperature`` is given.

The choice belongs to one set of weights: it records the checkpoint's weights file and its sha256, and a run
that has trained on since (or ``--no-ema`` against a choice made on the moving average) falls back to T = 1
with a warning rather than silently using a temperature fitted to other weights.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from gvae.errors import GvaeError
from gvae.export import run_directory_of
from gvae.fileio import read_json, sha256_file, write_json_atomic
from gvae.loading import LoadedModel

log = logging.getLogger(__name__)

FILE = "temperature.json"
DEFAULT = 1.0  # the prior the model was trained with
CHOSEN = "chosen"  # what ``gvae eval --temperature`` and a suite's protocol take for "the run's choice"


def home(source: str | Path, loaded: LoadedModel) -> Path | None:
    """Where a choice for ``loaded`` (read from ``source``) is written by default: its run directory, else the
    folder of an exported model given by path; None for a model on the Hub (its download is a cache)."""
    from gvae.hub import is_hub_address

    return run_directory_of(loaded.checkpoint) or (None if is_hub_address(source) else loaded.checkpoint)


def choice_file(checkpoint: Path) -> Path | None:
    """A checkpoint's temperature choice, if there is one: in its own folder (an exported model, see ``gvae
    export``) or in its run directory."""
    for folder in (checkpoint, run_directory_of(checkpoint)):
        if folder is not None and (folder / FILE).is_file():
            return folder / FILE
    return None


def record(path: str | Path, loaded: LoadedModel, scan: dict, **context) -> None:
    """Write the scan ``scan`` (:meth:`TemperatureScan.as_dict`, with its "best") to ``path``, with the weights it
    was made on and ``context`` (the data it was measured against, say)."""
    write_json_atomic(path, {**context, "checkpoint": str(loaded.checkpoint), "weights": loaded.weights.name,
                             "weights_sha256": sha256_file(loaded.weights), **scan})


def chosen(loaded: LoadedModel) -> tuple[float, Path | None]:
    """The temperature chosen for ``loaded``'s weights and the file it came from, else (1, None): no choice
    recorded, or one made on other weights (a warning says which)."""
    return chosen_for(loaded.checkpoint, loaded.weights)


def resolve(temperature: float | str, loaded: LoadedModel) -> float:
    """``temperature`` itself, or for :data:`CHOSEN` the one chosen for ``loaded``'s weights; GvaeError when
    there is none."""
    if temperature != CHOSEN:
        return float(temperature)
    value, path = chosen(loaded)
    if path is None:
        raise GvaeError(f"temperature {CHOSEN}: no temperature was chosen for the weights of {loaded.checkpoint}; "
                        "run gvae eval temperature on it first, or give a number")
    return value


def _is_temperature(value: Any) -> bool:
    """Whether ``value`` is a finite number >= 0 (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < math.inf


def check(temperature: Any, what: str) -> float | str:
    """``temperature`` if it is a number >= 0 or :data:`CHOSEN`, else a GvaeError naming ``what``."""
    if temperature == CHOSEN or _is_temperature(temperature):
        return temperature
    raise GvaeError(f"{what}: got {temperature!r}; give a number >= 0 or {CHOSEN!r} (the run's choice, see gvae "
                    "eval temperature)")


def chosen_for(checkpoint: Path, weights: Path) -> tuple[float, Path | None]:
    """:func:`chosen` for the weights file ``weights`` of ``checkpoint``, without loading them."""
    value, path, why_not = lookup(checkpoint, weights)
    if why_not:
        log.warning("%s %s; sampling at T = %g: run gvae eval temperature again, or give --temperature", path,
                    why_not, DEFAULT)
        return DEFAULT, None
    return (DEFAULT, None) if path is None else (value, path)


def lookup(checkpoint: Path, weights: Path) -> tuple[float, Path | None, str | None]:
    """(chosen temperature, its file, None) for ``weights`` of ``checkpoint``; (1, None, None) when no choice
    is recorded; (1, file, why it does not count) for one that is unusable or made on other weights. Reads the
    file once and logs nothing."""
    path = choice_file(checkpoint)
    if path is None:
        return DEFAULT, None, None
    choice = read_json(path, "temperature choice (written by gvae eval temperature)")
    best = choice.get("best") if isinstance(choice, dict) else None
    if not _is_temperature(best):
        return DEFAULT, path, "holds no chosen temperature ('best': a number >= 0)"
    if "weights_sha256" not in choice:
        return DEFAULT, path, "does not say which weights it was chosen for (an older gvae wrote it)"
    if choice["weights_sha256"] != sha256_file(weights):
        return DEFAULT, path, (f"was chosen for other weights ({choice.get('weights', '?')} of "
                               f"{choice.get('checkpoint', '?')}), not {weights.name} of {checkpoint}")
    return float(best), path, None
