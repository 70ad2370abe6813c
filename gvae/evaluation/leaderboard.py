"""Leaderboards: evaluate the runs a suite names under one protocol, and tabulate and plot the results.

A suite is a YAML file::

    name: fmnist-32
    protocol:                 # the fields of gvae.evaluation.protocol.Protocol, with `seeds` (a list) for `seed`
      data: data/fmnist
      metrics: all,utility    # every metric; utility (classifiers trained with each model's images) is opt-in
      num_samples: 10000
      iwae_k: 100
      seeds: [0]
      feature_weights: features/fmnist.safetensors
      utility_k: [10, 100]    # utility: real images per class, classifier seeds, synthetic per real image
      utility_seeds: 3
      utility_mix_ratio: 1.0
      temperature: chosen     # each run's prior samples at the temperature gvae eval temperature chose for it
    entries:                  # one row of the leaderboard each; its runs are averaged
      - name: GVAE
        runs: [runs/fmnist-32-gvae-s0, runs/fmnist-32-gvae-s1]

Paths are relative to the working directory. Each (run, seed) is evaluated once and cached as a plain
results.json under ``OUT/results/``; a cached file is reused while its protocol matches the suite's (a key
it does not record, being older than the key, matches the key's default) and the run's newest checkpoint is
the one it measured (with ``temperature: chosen``, also while the run's choice is the one it used; the
table then has a "sampling temperature" row, each entry's mean of its runs' temperatures). Every metric of the
results is a row, utility's included (``utility_cas``,
``utility_gain_k10``, ...: accuracies, higher is better). The outputs are ``OUT/LEADERBOARD.md`` (metrics as rows,
entries as columns, mean +- std over runs x seeds, best in bold), ``OUT/leaderboard.csv`` (one row per entry
and metric) and ``OUT/plots/<metric>.png`` (a bar chart with error bars per metric, drawn on a matplotlib
``Figure`` as the report's figures are, never through pyplot's global state).
"""

from __future__ import annotations

import csv
import json
import re
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from gvae import temperature_choice
from gvae.config import read_yaml_mapping
from gvae.errors import GvaeError
from gvae.evaluation.protocol import Protocol, protocol_defaults
from gvae.evaluation.results import write_results
from gvae.evaluation.runner import run_evaluation


@dataclass
class Entry:
    """One leaderboard column: a name and the runs (e.g. training seeds) averaged under it."""

    name: str
    runs: list[str]


@dataclass
class Suite:
    """Runs and the one protocol they are all measured with."""

    name: str
    protocol: dict  # Protocol fields except seed
    seeds: list[int]
    entries: list[Entry]

    def protocol_for(self, seed: int) -> Protocol:
        return Protocol(**self.protocol, seed=seed)


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite YAML file (format in the module docstring)."""
    path = Path(path)
    raw = read_yaml_mapping(path, "suite")
    protocol = dict(raw.get("protocol") or {})
    seeds = protocol.pop("seeds", [protocol.pop("seed", 0)])
    allowed = {f.name for f in fields(Protocol)} - {"seed"}
    unknown = sorted(set(protocol) - allowed)
    if unknown:
        raise GvaeError(f"suite {path}: unknown protocol key(s) {', '.join(unknown)}; valid: seeds, "
                        f"{', '.join(sorted(allowed))}")
    if "data" not in protocol:
        raise GvaeError(f"suite {path}: protocol.data is required (the held-out images)")
    if "temperature" in protocol:
        temperature_choice.check(protocol["temperature"], f"suite {path}: protocol.temperature")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise GvaeError(f"suite {path}: protocol.seeds must be a non-empty list of integers, got {seeds!r}")
    entries = []
    for i, item in enumerate(raw.get("entries") or []):
        if not isinstance(item, dict) or not item.get("name") or not item.get("runs"):
            raise GvaeError(f"suite {path}: entries[{i}] needs a name and a list of runs")
        runs = item["runs"] if isinstance(item["runs"], list) else [item["runs"]]
        entries.append(Entry(str(item["name"]), [str(r) for r in runs]))
    if not entries:
        raise GvaeError(f"suite {path}: no entries; list the runs to compare under `entries:`")
    return Suite(str(raw.get("name") or path.stem), protocol, seeds, entries)


TEMPERATURE_ROW = "sampling temperature"  # a row of the table where runs sampled at their chosen temperatures


def cache_path(out: Path, run: str, seed: int) -> Path:
    """Where the results of ``run`` at ``seed`` are cached: OUT/results/<run path, slashes as __>-seed<S>.json."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "__", str(run).strip("/"))
    return out / "results" / f"{safe}-seed{seed}.json"


def _cached(path: Path, run: str, protocol: Protocol) -> dict | None:
    """The cached results if they were made with this protocol from the run's current checkpoint."""
    if not path.is_file():
        return None
    try:
        results = json.loads(path.read_text())
    except ValueError:
        return None
    recorded = results.get("protocol", {})
    defaults = protocol_defaults()
    if any(recorded.get(k, defaults[k]) != v for k, v in asdict(protocol).items()):
        return None
    if Path(run).exists():
        from gvae.loading import resolve_checkpoint, weights_file

        checkpoint = resolve_checkpoint(run)
        if str(checkpoint) != results.get("checkpoint"):
            return None
        if protocol.temperature == temperature_choice.CHOSEN and recorded.get("temperature_used") != \
                temperature_choice.chosen_for(checkpoint, weights_file(checkpoint, ema=True))[0]:
            return None  # chosen again since
    return results


def collect(suite: Suite, out: Path, evaluate_run: Callable[[str, Protocol], dict] = run_evaluation,
            progress: Callable[[str], None] | None = None) -> dict[str, list[dict]]:
    """Results of every (run, seed) of every entry: cached where valid, else evaluated and cached."""
    say = progress or (lambda _: None)
    found: dict[str, list[dict]] = {}
    for entry in suite.entries:
        found[entry.name] = []
        for run in entry.runs:
            for seed in suite.seeds:
                protocol, path = suite.protocol_for(seed), cache_path(out, run, seed)
                results = _cached(path, run, protocol)
                if results is None:
                    if not Path(run).exists():
                        raise GvaeError(f"run {run} (entry {entry.name!r}) does not exist and has no cached results "
                                        f"at {path}; train it or remove it from the suite")
                    say(f"evaluating {run} (seed {seed})")
                    results = evaluate_run(run, protocol)
                    write_results(results, path)
                else:
                    say(f"cached {run} (seed {seed})")
                found[entry.name].append(results)
    return found


@dataclass
class Cell:
    """One metric of one entry over its runs x seeds."""

    mean: float
    std: float | None  # across runs x seeds; the single result's own std when there is one result
    count: int


def aggregate(found: dict[str, list[dict]]) -> tuple[dict[str, dict[str, Cell]], dict[str, dict]]:
    """{metric: {entry: Cell}} and {metric: {"unit", "better"}}, metrics in first-seen order."""
    table: dict[str, dict[str, Cell]] = {}
    meta: dict[str, dict] = {}
    for entry, results_list in found.items():
        per_metric: dict[str, list[dict]] = {}
        for results in results_list:
            for name, value in results["metrics"].items():
                per_metric.setdefault(name, []).append(value)
                meta.setdefault(name, {"unit": value.get("unit", ""), "better": value.get("better", "")})
        used = [r["protocol"]["temperature_used"] for r in results_list if "temperature_used" in r.get("protocol", {})]
        if len(set(used)) > 1 or used and used[0] != 1:  # each run at its own (chosen) temperature: say which
            per_metric[TEMPERATURE_ROW] = [{"value": t} for t in used]
            meta.setdefault(TEMPERATURE_ROW, {"unit": "", "better": ""})
        for name, values in per_metric.items():
            xs = [v["value"] for v in values]
            std = statistics.stdev(xs) if len(xs) > 1 else values[0].get("std")
            table.setdefault(name, {})[entry] = Cell(statistics.fmean(xs), std, len(xs))
    return table, meta


def _best(cells: dict[str, Cell], better: str) -> str | None:
    if better not in ("higher", "lower") or not cells:
        return None
    pick = max if better == "higher" else min
    return pick(cells, key=lambda e: cells[e].mean)


def _fmt(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    return f"{cell.mean:.4g}" + ("" if cell.std is None else f" ± {cell.std:.2g}")


def write_markdown(suite: Suite, table, meta, path: Path) -> None:
    names = [e.name for e in suite.entries]
    arrow = {"higher": " ↑", "lower": " ↓"}
    proto = ", ".join(f"{k}={v}" for k, v in {**suite.protocol, "seeds": suite.seeds}.items())
    lines = [f"# Leaderboard: {suite.name}", "", f"Protocol: {proto}.", "",
             "Each cell is the mean ± std over runs x evaluation seeds (one result: its own std, if any). "
             "↑ higher is better, ↓ lower is better; the best entry is in bold.", "",
             "| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for metric, cells in table.items():
        best = _best(cells, meta[metric]["better"])
        row = [f"**{_fmt(cells.get(n))}**" if n == best and len(cells) > 1 else _fmt(cells.get(n)) for n in names]
        unit = f" ({meta[metric]['unit']})" if meta[metric]["unit"] else ""
        lines.append(f"| {metric}{unit}{arrow.get(meta[metric]['better'], '')} | " + " | ".join(row) + " |")
    lines += ["", "Runs: " + "; ".join(f"{e.name}: {', '.join(e.runs)}" for e in suite.entries), ""]
    path.write_text("\n".join(lines))


def write_csv(table, meta, path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["entry", "metric", "mean", "std", "count", "unit", "better"])
        for metric, cells in table.items():
            for entry, cell in cells.items():
                writer.writerow([entry, metric, repr(cell.mean), "" if cell.std is None else repr(cell.std),
                                 cell.count, meta[metric]["unit"], meta[metric]["better"]])


def write_plots(table, meta, directory: Path) -> list[Path]:
    """One bar chart per metric (entries on the x axis, std as error bars)."""
    from matplotlib.figure import Figure

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for metric, cells in table.items():
        names = list(cells)
        fig = Figure(figsize=(max(4.0, 1.2 * len(names) + 1.5), 3.5))
        ax = fig.add_subplot()
        ax.bar(range(len(names)), [cells[n].mean for n in names],
               yerr=[cells[n].std or 0.0 for n in names], capsize=4, color="#4c72b0")
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right")
        better = meta[metric]["better"]
        ax.set_title(f"{metric} ({better} is better)" if better else metric)
        ax.set_ylabel(meta[metric]["unit"])
        fig.tight_layout()
        path = directory / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', metric)}.png"
        fig.savefig(path, dpi=100)
        written.append(path)
    return written


def build_leaderboard(suite: Suite, out: str | Path | None = None,
                      evaluate_run: Callable[[str, Protocol], dict] = run_evaluation,
                      progress: Callable[[str], None] | None = None) -> Path:
    """Collect (evaluate or reuse) the suite's results and write LEADERBOARD.md, leaderboard.csv, plots/."""
    out = Path(out) if out is not None else Path("leaderboards") / suite.name
    out.mkdir(parents=True, exist_ok=True)
    table, meta = aggregate(collect(suite, out, evaluate_run, progress))
    write_markdown(suite, table, meta, out / "LEADERBOARD.md")
    write_csv(table, meta, out / "leaderboard.csv")
    write_plots(table, meta, out / "plots")
    return out / "LEADERBOARD.md"
