"""results.json as ``gvae eval`` prints it and writes it."""

from __future__ import annotations

from gvae.fileio import write_json_atomic


def format_table(results: dict) -> str:
    """results.json as a fixed-width table: metric, value, +- std, n, unit, which way is better."""
    rows = [("metric", "value", "+-", "n", "unit", "better")]
    for name, entry in results["metrics"].items():
        std = "" if entry.get("std") is None else f"{entry['std']:.4g}"
        rows.append((name, f"{entry['value']:.6g}", std, str(entry["n"]), entry.get("unit", ""), entry.get("better", "")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    by_reason: dict[str, list[str]] = {}
    for name, reason in results.get("skipped", {}).items():
        by_reason.setdefault(reason, []).append(name)
    lines += [f"skipped {', '.join(names)}: {reason}" for reason, names in by_reason.items()]
    return "\n".join(lines)


def write_results(results: dict, path) -> None:
    """Write results.json atomically, as strict JSON; a path that is not a regular file is refused."""
    write_json_atomic(path, results)
