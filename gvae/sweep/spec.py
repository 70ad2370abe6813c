"""A sweep file and the runs it expands to.

A sweep is a YAML file::

    name: fmnist-dense-study
    recipe: ../recipes/fmnist-32-vae-dense.yaml   # the base recipe, relative to this file
    overrides: {train.max_steps: 937}              # applied to every run (optional)
    grid:                                          # every combination of these values ...
      model.latent_dim: [15, 30, 50, 100]
      model.dense_dropout: [0.0, 0.2]
    # runs:                                        # ... or an explicit list of override sets
    #   - {model.latent_dim: 15}
    #   - {model.latent_dim: 30, optim.lr: 1.0e-3}
    seeds: [0, 1]                                  # train.seed of each repetition (default [0])
    metric: elbo                                   # what ranks the runs (see below)
    report: [denoise_psnr_0.2]                     # more metrics for the summary table (optional)
    better: higher                                 # optional: which way `metric` is better
    eval:                                          # the `gvae eval` protocol (gvae.evaluation.protocol.Protocol fields;
      data: data/fmnist                            # data and metrics are required)
      metrics: elbo,denoise
      num_real: 1000

A metric is a name of ``results.json`` written by ``gvae eval`` under ``eval`` (``elbo``, ``recon_psnr``,
``denoise_psnr_0.2``, ...), or ``train:KEY``: the last value of KEY that training logged to metrics.jsonl
(``train:total``, the training loss averaged over the last ``log.every`` steps). Data paths in the recipe and in
``eval`` are relative to the working directory, as on the command line.

Every run is named from its overrides, ``latent_dim=15_dense_dropout=0.2_seed=0`` (a key's last part, or the
whole dotted key where two parameters share a last part), and every run's recipe is validated when the sweep is
loaded, so a bad value stops the sweep before anything trains.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gvae.config import load_recipe, read_yaml_mapping
from gvae.errors import GvaeError
from gvae.evaluation.protocol import Protocol

TRAIN_PREFIX = "train:"
_KEYS = ("name", "recipe", "overrides", "grid", "runs", "seeds", "metric", "report", "better", "eval")


@dataclass(frozen=True)
class RunSpec:
    """One training run of a sweep: its directory name, parameter values and the overrides that set them."""

    config: str  # the name of its parameter values, shared by its repetitions ("" for the base recipe)
    params: dict[str, Any]  # dotted key -> value, as the sweep file gives it (seed excluded)
    seed: int
    overrides: tuple[str, ...]  # the sweep's common overrides, then the parameters', then train.seed

    @property
    def name(self) -> str:
        return "_".join(part for part in (self.config, f"seed={self.seed}") if part)


@dataclass
class Sweep:
    """A validated sweep file."""

    name: str
    recipe: Path
    runs: list[RunSpec]
    parameters: list[str]  # dotted keys that vary, in file order
    metric: str
    report: list[str] = field(default_factory=list)
    better: str | None = None  # "higher" or "lower"; None: from the eval entry (train: metrics: lower)
    eval: dict[str, Any] | None = None  # Protocol fields except seed

    def protocol(self) -> Protocol:
        return Protocol(**(self.eval or {}), seed=0)

    @property
    def needs_eval(self) -> bool:
        return any(not name.startswith(TRAIN_PREFIX) for name in self.metrics)

    @property
    def metrics(self) -> list[str]:
        return [self.metric, *[m for m in self.report if m != self.metric]]


def value_override(key: str, value: Any) -> str:
    """``KEY=VALUE`` with the value written so that the recipe loader reads it back as it was (JSON is YAML)."""
    return f"{key}={json.dumps(value)}"


def _label(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "-".join(_label(v) for v in value)
    text = json.dumps(value) if isinstance(value, bool) or value is None else str(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "empty"


def short_keys(keys: list[str]) -> dict[str, str]:
    """Each dotted key's last part, or the whole key where that last part is shared with another key."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {key: tail if last.count(tail) == 1 else key for key, tail in zip(keys, last, strict=True)}


def config_name(params: dict[str, Any], short: dict[str, str]) -> str:
    """``latent_dim=15_dropout=0.3``: parameter values in order; a run's directory adds ``_seed=S``."""
    return "_".join(f"{short[key]}={_label(value)}" for key, value in params.items())


def expand_grid(grid: dict[str, list]) -> list[dict[str, Any]]:
    """The cartesian product of the grid's value lists, the last key varying fastest."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def _parameter_sets(raw: dict, where: str) -> list[dict[str, Any]]:
    grid, runs = raw.get("grid"), raw.get("runs")
    if (grid is None) == (runs is None):
        raise GvaeError(f"{where}: give either grid (lists of values to combine) or runs (a list of override "
                        "sets), not both and not neither")
    if grid is not None:
        if not isinstance(grid, dict) or not grid:
            raise GvaeError(f"{where}: grid: expected a mapping of KEY: [values], e.g. model.latent_dim: [16, 32]")
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise GvaeError(f"{where}: grid.{key}: expected a non-empty list of values, got {values!r}")
        return expand_grid(grid)
    if not isinstance(runs, list) or not runs or not all(isinstance(r, dict) for r in runs):
        raise GvaeError(f"{where}: runs: expected a non-empty list of mappings KEY: VALUE")
    return [dict(r) for r in runs]


def _seeds(raw: dict, where: str) -> list[int]:
    seeds = raw.get("seeds", [0])
    if (not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                            for s in seeds) or len(set(seeds)) != len(seeds)):
        raise GvaeError(f"{where}: seeds: expected a non-empty list of distinct integers, got {seeds!r}")
    return seeds


def _string_list(raw: dict, key: str, where: str) -> list[str]:
    values = raw.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise GvaeError(f"{where}: {key}: expected a list of strings, got {values!r}")
    return values


def _eval_protocol(raw: dict, where: str) -> dict[str, Any] | None:
    protocol = raw.get("eval")
    if protocol is None:
        return None
    allowed = {f.name for f in fields(Protocol)} - {"seed"}
    if not isinstance(protocol, dict) or "data" not in protocol or "metrics" not in protocol:
        raise GvaeError(f"{where}: eval: expected a mapping with at least data (the held-out images) and metrics "
                        "(those the sweep reads, e.g. recon,elbo: every run is evaluated, and all of them would "
                        "include the importance-weighted bound)")
    unknown = sorted(set(protocol) - allowed)
    if unknown:
        raise GvaeError(f"{where}: eval: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(allowed))}")
    return protocol


def load_sweep(path: str | Path) -> Sweep:
    """Read a sweep file, expand its runs and validate each run's recipe (format in the module docstring)."""
    path = Path(path)
    where = f"sweep {path}"
    raw = read_yaml_mapping(path, "sweep")
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise GvaeError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(_KEYS)}")
    if not isinstance(raw.get("recipe"), str):
        raise GvaeError(f"{where}: recipe: give the base recipe's path (relative to the sweep file)")
    recipe = (path.parent / raw["recipe"]).resolve()
    common = raw.get("overrides") or {}
    if not isinstance(common, dict):
        raise GvaeError(f"{where}: overrides: expected a mapping KEY: VALUE applied to every run, got {common!r}")
    metric = raw.get("metric")
    if not isinstance(metric, str) or not metric:
        raise GvaeError(f"{where}: metric: name what ranks the runs: a gvae eval result (elbo, recon_psnr, ...) "
                        "or train:KEY (the last logged value of KEY)")
    better = raw.get("better")
    if better not in (None, "higher", "lower"):
        raise GvaeError(f"{where}: better: got {better!r}; choose higher or lower")
    sweep = Sweep(name=str(raw.get("name") or path.stem), recipe=recipe, runs=[], parameters=[], metric=metric,
                  report=_string_list(raw, "report", where), better=better, eval=_eval_protocol(raw, where))
    if sweep.needs_eval and sweep.eval is None:
        raise GvaeError(f"{where}: metric {metric}: a gvae eval result needs an eval: section (at least data:)")
    sets = _parameter_sets(raw, where)
    sweep.parameters = list(dict.fromkeys(key for params in sets for key in params))
    short = short_keys(sweep.parameters)
    for seed in _seeds(raw, where):  # every configuration once before any repeats: a half-done sweep compares all
        for params in sets:
            overrides = tuple(value_override(k, v) for k, v in (common | params | {"train.seed": seed}).items())
            sweep.runs.append(RunSpec(config_name(params, short), params, seed, overrides))
    _check_runs(sweep, where)
    return sweep


def _check_runs(sweep: Sweep, where: str) -> None:
    """Distinct names, and a recipe that loads for every run (errors name the run)."""
    seen: set[str] = set()
    for run in sweep.runs:
        if run.name in seen:
            raise GvaeError(f"{where}: two runs are both named {run.name}; make their override sets differ")
        seen.add(run.name)
        try:
            load_recipe(sweep.recipe, run.overrides)
        except GvaeError as err:
            raise GvaeError(f"{where}: run {run.name}: {err}") from None
