"""``gvae generate``'s run module in this tree against the one of an earlier git revision, side by side.

    python benchmarks/generate_against.py 5ff8357 --threads 1 --repeats 5
    -> images/s of each, and the median of this tree's / the revision's over alternating pairs of runs

Only gvae/generation/run.py is swapped (the revision's is loaded from ``git show`` and calls this tree's
modules for everything else: the model, the producer, the PNG encoder), so it measures how the run decodes,
hands samples to its writer threads and closes shards; the two alternate, a 64 px untrained GVAE of
benchmarks/generate.py decoding ``--num`` images per run, so a change of machine load hits both alike.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import generate as bench  # noqa: E402  (benchmarks/generate.py)

import gvae.generation.run as run  # noqa: E402


def revision_run(revision: str, directory: Path):
    """gvae/generation/run.py at git ``revision``, loaded as a module of its own."""
    source = subprocess.run(["git", "show", f"{revision}:gvae/generation/run.py"], check=True, capture_output=True,
                            text=True, cwd=Path(__file__).resolve().parents[1]).stdout
    path = directory / "revision_run.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("revision_run", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["revision_run"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revision")
    parser.add_argument("--num", type=int, default=2048, help="images per run")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=5, help="pairs of runs")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs = {"this tree": run, args.revision: revision_run(args.revision, root)}
        bench.make_checkpoint(root / "checkpoint", 64)
        bench.end_to_end(root / "checkpoint", root / "warm-up", 64)
        rates: dict[str, list[float]] = {name: [] for name in runs}
        for r in range(args.repeats):
            for i, (name, module) in enumerate(runs.items()):
                rates[name].append(bench.end_to_end(root / "checkpoint", root / f"set-{r}-{i}", args.num, module))
    ratios = sorted(a / b for a, b in zip(*rates.values(), strict=True))
    print(f"{args.threads} thread(s), {args.num} images at 64 px, {args.repeats} pairs: "
          + ", ".join(f"{name} {statistics.median(v):.0f} img/s" for name, v in rates.items())
          + f"; this tree / {args.revision} = {statistics.median(ratios):.3f} ({ratios[0]:.3f}-{ratios[-1]:.3f})")


if __name__ == "__main__":
    main()
