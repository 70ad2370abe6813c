"""Run every benchmark and print one table of the ratios they measure, with the machine they ran on.

Each benchmark measures its comparison side by side in one run and prints lines of the form
``ratio: <what> = <value>``; this script collects them. Benchmarks that report timings rather than a
ratio (eval.py) are shown in full below the table. Usage:

    python benchmarks/run_all.py [--quick]

``--quick`` passes small sizes to each benchmark (minutes instead of tens of minutes; noisier).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RATIO = re.compile(r"^ratio: (?P<what>.+?) = (?P<value>[-0-9.]+)\s*$")

BENCHMARKS = {
    "loader.py": ([], ["--num", "1000", "--batches", "40"]),
    "train_step.py": ([], ["--steps", "3", "--batch", "8"]),
    "generate.py": ([], ["--num64", "256", "--num256", "32"]),
    "inference_form.py": ([], ["--rounds", "1"]),
    "png_encoding.py": ([], ["--repeats", "1"]),
    "zero_memory.py": ([], []),
    "eval.py": ([], ["--fraction", "0.002", "--set-fraction", "0.05"]),
}


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}), {gpu}, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), default=sorted(BENCHMARKS))
    args = parser.parse_args()
    rows: list[tuple[str, str, float]] = []
    verbatim: dict[str, str] = {}
    for name in args.only:
        full, quick = BENCHMARKS[name]
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(HERE / name), *(quick if args.quick else full)],
                              capture_output=True, text=True, cwd=HERE.parent)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            rows.append((name, f"FAILED (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}", float("nan")))
            continue
        found = [RATIO.match(line) for line in done.stdout.splitlines()]
        found = [m for m in found if m]
        rows += [(name, m["what"], float(m["value"])) for m in found]
        if not found:
            verbatim[name] = done.stdout.strip()
        print(f"ran {name} in {seconds:.0f} s", file=sys.stderr)

    print(f"machine: {machine()}")
    width = max(len(what) for _, what, _ in rows) if rows else 10
    print(f"{'benchmark':<16} {'ratio':<{width}} {'value':>7}")
    for name, what, value in rows:
        print(f"{name:<16} {what:<{width}} {value:>7.2f}")
    for name, text in verbatim.items():
        print(f"\n{name}:\n{text}")


if __name__ == "__main__":
    main()
