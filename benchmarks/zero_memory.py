"""Optimizer-state bytes per rank: DeepSpeed ZeRO-2 vs DDP, two processes each, side by side.

ZeRO-2 shards the optimizer state (Adam's two moments) across ranks, so with 2 ranks each should hold about
half of what a DDP rank holds. Runs two CPU processes per mode through ``accelerate launch`` and prints the
bytes of optimizer state each rank holds after one step, and the ratio. Usage:

    python benchmarks/zero_memory.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def state_bytes(optimizer) -> int:
    """Bytes of tensors in the innermost torch optimizer's state (accelerate and DeepSpeed wrap it)."""
    while not isinstance(optimizer, torch.optim.Optimizer) or hasattr(optimizer, "optimizer"):
        inner = getattr(optimizer, "optimizer", None)
        if inner is None:
            break
        optimizer = inner
    return sum(t.numel() * t.element_size() for state in optimizer.state.values()
               for t in state.values() if isinstance(t, torch.Tensor))


def worker(recipe_path: str, run_dir: str, out: str) -> None:
    from gvae.config import load_recipe
    from gvae.train.loop import Trainer

    trainer = Trainer(load_recipe(recipe_path, ["train.max_steps=1"]), run_dir, progress=False)
    trainer.train_step()
    total = state_bytes(trainer.opt_g) + state_bytes(trainer.opt_d)
    Path(f"{out}-{trainer.rank}.json").write_text(json.dumps({"bytes": total}))


def measure(config: str, recipe: Path, tmp: Path) -> list[int]:
    out = tmp / config
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                    str(ROOT / "launch" / f"{config}.yaml"), __file__, "--worker", str(recipe),
                    str(tmp / f"run-{config}"), str(out)], env=env, check=True, capture_output=True)
    return [json.loads(Path(f"{out}-{rank}.json").read_text())["bytes"] for rank in (0, 1)]


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        return worker(*sys.argv[2:5])
    sys.path.insert(0, str(ROOT))
    from tests.train_helpers import phantom_data, tiny_recipe_file

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        recipe = tiny_recipe_file(tmp, phantom_data(tmp / "data"))
        ddp = measure("cpu-ddp", recipe, tmp)
        zero2 = measure("cpu-zero2", recipe, tmp)
    print(f"{'mode':<8} {'rank 0 bytes':>13} {'rank 1 bytes':>13}")
    for mode, values in (("ddp", ddp), ("zero2", zero2)):
        print(f"{mode:<8} {values[0]:>13,} {values[1]:>13,}")
    print(f"ratio: optimizer-state bytes per rank, zero2 / ddp (2 ranks) = {max(zero2) / max(ddp):.2f}")


if __name__ == "__main__":
    main()
