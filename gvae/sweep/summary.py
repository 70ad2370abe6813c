"""A sweep's summary: every configuration's metrics (mean ± std over seeds), the best one, and how much each
parameter matters.

Importance of a parameter P is the mean, over groups of configurations that agree on every other parameter and
differ in P, of the spread (max - min) of the ranking metric's mean within the group: how far the metric moves
when P alone changes. It needs no model of the response, is in the metric's own unit, and reads directly off
the table (a grid gives one group per combination of the other parameters). Parameters with no such group
(e.g. in an explicit list where P never changes alone) have no importance and are listed as such.

Outputs in the sweep's directory: ``SUMMARY.md``, ``summary.csv`` (one row per configuration) and
``importance.png``.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gvae.evaluation.leaderboard import Cell
from gvae.fileio import write_bytes_atomic, write_text_atomic
from gvae.sweep.runner import read_result
from gvae.sweep.spec import TRAIN_PREFIX, Sweep

_UNSET = "(recipe)"  # the value shown for a parameter that a run of an explicit list leaves at the recipe's


@dataclass
class ConfigRow:
    """One configuration: its parameter values and each metric over its seeds."""

    config: str
    params: dict[str, Any]
    cells: dict[str, Cell]


def mean_std(values: list[float]) -> Cell:
    """Mean and sample standard deviation (n - 1; None for a single value) of ``values``."""
    return Cell(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None, len(values))


def aggregate(sweep: Sweep, results: list[dict]) -> list[ConfigRow]:
    """Group the finished runs' results by configuration, in the sweep's order, and average over seeds."""
    grouped: dict[str, list[dict]] = {}
    for result in results:
        grouped.setdefault(result["config"], []).append(result)
    rows = []
    for config, found in grouped.items():
        cells = {name: mean_std([r["metrics"][name]["value"] for r in found])
                 for name in sweep.metrics if all(name in r["metrics"] for r in found)}
        rows.append(ConfigRow(config, found[0]["params"], cells))
    return rows


def better_of(sweep: Sweep, results: list[dict]) -> str:
    """Which way the ranking metric is better: the sweep's ``better``, else what its results say ("" before any)."""
    if sweep.better:
        return sweep.better
    unknown = "lower" if sweep.metric.startswith(TRAIN_PREFIX) else ""  # an eval entry says, once there is one
    return next((r["metrics"][sweep.metric]["better"] for r in results if sweep.metric in r["metrics"]), unknown)


def ranked(rows: list[ConfigRow], metric: str, better: str) -> list[ConfigRow]:
    """Configurations best first by the metric's mean."""
    return sorted((r for r in rows if metric in r.cells), key=lambda r: r.cells[metric].mean,
                  reverse=better == "higher")


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def importance(rows: list[ConfigRow], parameters: list[str], metric: str) -> dict[str, tuple[float | None, int]]:
    """{parameter: (mean spread of the metric when it alone varies, number of groups)}; (None, 0) when it never
    varies alone. See the module docstring."""
    found = {}
    for parameter in parameters:
        groups: dict[tuple, list[float]] = {}
        values: dict[tuple, set[str]] = {}
        for row in rows:
            if metric not in row.cells:
                continue
            rest = tuple(_key(row.params.get(p, _UNSET)) for p in parameters if p != parameter)
            groups.setdefault(rest, []).append(row.cells[metric].mean)
            values.setdefault(rest, set()).add(_key(row.params.get(parameter, _UNSET)))
        spreads = [max(means) - min(means) for rest, means in groups.items() if len(values[rest]) > 1]
        found[parameter] = (statistics.fmean(spreads), len(spreads)) if spreads else (None, 0)
    return found


def _fmt(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    return f"{cell.mean:.4g}" + ("" if cell.std is None else f" ± {cell.std:.2g}")


def _value(params: dict[str, Any], key: str) -> str:
    return json.dumps(params[key]) if key in params else _UNSET


def markdown(sweep: Sweep, rows: list[ConfigRow], better: str, weights: dict[str, tuple[float | None, int]],
             expected: int, finished: int) -> str:
    """SUMMARY.md: the configurations best first (best in bold), the best one, and the importances."""
    order = ranked(rows, sweep.metric, better)
    arrow = {"higher": "↑", "lower": "↓"}.get(better, "")
    header = [*sweep.parameters, f"{sweep.metric} {arrow}".strip(), *sweep.metrics[1:], "seeds"]
    lines = [f"# Sweep: {sweep.name}", "",
             f"Base recipe: `{sweep.recipe.name}`; {finished} of {expected} runs finished. Each cell is the mean "
             "± std over seeds (std with n - 1; none for one seed); configurations are ranked by "
             f"{sweep.metric}" + (f" ({better} is better)" if better else "") + ", the best in bold.", "",
             "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for index, row in enumerate(order):
        cells = [_value(row.params, p) for p in sweep.parameters]
        cells += [_fmt(row.cells.get(m)) for m in sweep.metrics]
        cells.append(str(row.cells[sweep.metric].count))
        if index == 0:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    if order:
        best = order[0]
        lines += ["", f"Best: `{best.config or 'the base recipe'}`, {sweep.metric} = {_fmt(best.cells[sweep.metric])}."]
    lines += ["", f"Importance: the mean spread (max - min) of {sweep.metric} when one parameter varies and the "
              "others stay fixed.", "", "| parameter | spread | groups |", "|---|---|---|"]
    for parameter, (spread, groups) in sorted(weights.items(), key=lambda kv: (kv[1][0] is None, -(kv[1][0] or 0.0))):
        lines.append(f"| {parameter} | {'-' if spread is None else f'{spread:.4g}'} | {groups} |")
    return "\n".join(lines) + "\n"


def csv_text(sweep: Sweep, rows: list[ConfigRow]) -> str:
    """summary.csv: config, each parameter, then mean, std and count of each metric."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["config", *sweep.parameters,
                     *[f"{m}_{part}" for m in sweep.metrics for part in ("mean", "std", "count")]])
    for row in rows:
        cells = [row.cells.get(m) for m in sweep.metrics]
        writer.writerow([row.config, *[_value(row.params, p) for p in sweep.parameters],
                         *[x for c in cells for x in ((repr(c.mean), "" if c.std is None else repr(c.std), c.count)
                                                       if c else ("", "", ""))]])
    return buffer.getvalue()


def importance_png(weights: dict[str, tuple[float | None, int]], metric: str) -> bytes:
    """A horizontal bar per parameter, the most important on top: the metric's mean spread when that parameter
    alone varies."""
    from matplotlib.figure import Figure

    from gvae.report.figures import figure_png

    names = sorted((p for p, (spread, _) in weights.items() if spread is not None), key=lambda p: weights[p][0])
    fig = Figure(figsize=(6.0, 1.0 + 0.45 * max(1, len(names))))
    ax = fig.add_subplot(1, 1, 1)
    ax.barh(range(len(names)), [weights[n][0] for n in names], color="#1f5f99")
    ax.set_yticks(range(len(names)), names, fontsize=9)
    ax.set_xlabel(f"mean spread of {metric} (max - min) when the parameter alone varies", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return figure_png(fig)


def write_summary(sweep: Sweep, out: Path) -> dict[str, Path]:
    """Write SUMMARY.md, summary.csv and importance.png from the finished runs in ``out``; returns their paths."""
    results = [r for r in (read_result(out, run) for run in sweep.runs) if r is not None]
    rows = aggregate(sweep, results)
    better = better_of(sweep, results)
    weights = importance(rows, sweep.parameters, sweep.metric)
    paths = {"markdown": out / "SUMMARY.md", "csv": out / "summary.csv", "importance": out / "importance.png"}
    write_text_atomic(paths["markdown"], markdown(sweep, rows, better, weights, len(sweep.runs), len(results)))
    write_text_atomic(paths["csv"], csv_text(sweep, rows))
    write_bytes_atomic(paths["importance"], importance_png(weights, sweep.metric))
    return paths
