"""The class of each prior sample of a conditional model: a pure function of (seed, stream, index).

Sample i's label is drawn once, before any of its candidates, from the class weights by inverse CDF of a
uniform number u in [0, 1) made from :func:`gvae.seeding.splitmix_seed` of (seed, stream, i,
:data:`LABEL_DRAW`) (53 bits, in plain Python floats). So the label, like the latent noise, depends on
neither the batch size nor the process count, and a candidate rejected by a filter is redrawn in the same
class. The weights (``--class-balance``):

* ``data``: the training set's class frequencies, recorded with the checkpoint (``model.class_counts``, from
  the data's dataset.json ``label_counts``);
* ``uniform``: every class equally often;

restricted to the classes named with ``--class`` (a name or an index), if any.
"""

from __future__ import annotations

import bisect
import itertools

from gvae.defaults import CLASS_BALANCES
from gvae.errors import GvaeError
from gvae.generation.latents import PriorLatents
from gvae.seeding import splitmix_seed

LABEL_DRAW = -1  # the "attempt" slot of the label's seed: candidates use attempts 0, 1, ...


class ClassDraw:
    """Draws labels in proportion to ``weights`` (one per class of the model; 0 leaves a class out)."""

    def __init__(self, weights: tuple[float, ...], seed: int):
        if not sum(weights) > 0:
            raise GvaeError("no class has a positive weight to draw from")
        self.weights, self.seed = tuple(weights), seed
        self._cumulative = list(itertools.accumulate(self.weights))

    def label(self, stream: int, index: int) -> int:
        u = (splitmix_seed(self.seed, stream, index, LABEL_DRAW) >> 10) / float(1 << 53)
        position = bisect.bisect_right(self._cumulative, u * self._cumulative[-1])
        return min(position, len(self.weights) - 1)

    def labels(self, stream: int, indices: list[int]) -> list[int]:
        return [self.label(stream, i) for i in indices]

    def describe(self) -> dict:
        """What the manifest records (and what makes two sets the same): the normalised weights."""
        total = self._cumulative[-1]
        return {"weights": [round(w / total, 12) for w in self.weights]}


def class_index(name_or_index: str, class_names: list[str]) -> int:
    """The label of ``--class NAME_OR_INDEX``: a class name, else an index in [0, K)."""
    if name_or_index in class_names:
        return class_names.index(name_or_index)
    if name_or_index.strip().lstrip("-").isdigit():
        index = int(name_or_index)
        if 0 <= index < len(class_names):
            return index
    raise GvaeError(f"--class {name_or_index!r}: no such class; the model's classes are "
                    + ", ".join(f"{i} {name!r}" for i, name in enumerate(class_names)))


def class_weights(class_names: list[str], class_counts: list[int], chosen: tuple[str, ...],
                  balance: str | None) -> list[float] | None:
    """Weight per class for a conditional model, or None for an unconditional one (no classes).

    ``chosen`` are the ``--class`` values (empty: every class), ``balance`` the ``--class-balance`` value (None:
    the default, ``data``). Every misuse is a GvaeError that names the option.
    """
    if not class_names:
        if chosen:
            raise GvaeError("--class: this model is unconditional (no classes); train it with "
                            "model.conditional=true, or drop --class")
        if balance is not None:
            raise GvaeError("--class-balance: this model is unconditional (no classes); drop --class-balance")
        return None
    balance = balance or "data"
    if balance not in CLASS_BALANCES:
        raise GvaeError(f"--class-balance: got {balance!r}; choose {' or '.join(CLASS_BALANCES)}")
    allowed = {class_index(c, class_names) for c in chosen} if chosen else set(range(len(class_names)))
    if balance == "uniform":
        return [1.0 if k in allowed else 0.0 for k in range(len(class_names))]
    if len(class_counts) != len(class_names):
        raise GvaeError("--class-balance data: the checkpoint records no class frequencies (its training data's "
                        "dataset.json has no label_counts); use --class-balance uniform")
    weights = [float(class_counts[k]) if k in allowed else 0.0 for k in range(len(class_names))]
    if not sum(weights) > 0:
        raise GvaeError("--class-balance data: the chosen classes have no training images; use "
                        "--class-balance uniform")
    return weights


def prior_latents(model, seed: int, temperature: float, chosen: tuple[str, ...] = (),
                  balance: str | None = None) -> tuple[PriorLatents, dict | None]:
    """The prior latents of ``gvae generate``: labelled by a ClassDraw for a conditional model (``chosen``
    classes, ``balance``; see the module docstring), with the class identity the manifest records (None for
    an unconditional model)."""
    weights = class_weights(model.class_names, model.recipe.model.class_counts, chosen, balance)
    if weights is None:
        return PriorLatents(model.latent_dim, seed, temperature), None
    draw = ClassDraw(tuple(weights), seed)
    return (PriorLatents(model.latent_dim, seed, temperature, draw, model.class_names),
            {"balance": balance or "data", **draw.describe()})
