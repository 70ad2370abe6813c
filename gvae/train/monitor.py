"""What a run shows while it trains: metrics.jsonl, sample grids, and the experiment trackers of
:mod:`gvae.train.trackers` (TensorBoard events by default).

Only the main process writes. ``metrics.jsonl`` has one JSON object per log step, every loss term, grad
norms, learning rates, images/s, D(real)/D(fake) means and the diagnostics of :mod:`gvae.train.diagnostics`;
a resumed run appends to it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from gvae.config import Recipe
from gvae.data.grids import grid_array, grid_picture
from gvae.train import trackers


class Monitor:
    def __init__(self, run_dir: Path, accelerator, recipe: Recipe, images_per_step: int):
        self.run_dir = run_dir
        self.accelerator = accelerator
        self.enabled = accelerator.is_main_process
        self.images_per_step = images_per_step
        self._last_time = time.perf_counter()
        self._last_step: int | None = None
        trackers.start(accelerator, recipe)

    def images_per_second(self, step: int) -> float:
        """Throughput over all processes since the previous call."""
        now = time.perf_counter()
        rate = 0.0
        if self._last_step is not None and now > self._last_time:
            rate = (step - self._last_step) * self.images_per_step / (now - self._last_time)
        self._last_time, self._last_step = now, step
        return rate

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        record = {"step": step, **{k: round(float(v), 6) for k, v in values.items()}}
        with open(self.run_dir / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps(record) + "\n")
        self.accelerator.log({k: float(v) for k, v in values.items()}, step=step)

    def save_grid(self, step: int, rows: list[torch.Tensor]) -> Path | None:
        """Write ``samples/step-XXXXXXXX.png``: each tensor in ``rows`` is [N, C, H, W] in [0, 1]."""
        if not self.enabled:
            return None
        images = torch.cat(rows)
        array = grid_array(images, nrow=rows[0].shape[0] if len(rows) > 1 else 8)
        path = self.run_dir / "samples" / f"step-{step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        grid_picture(array, grey=images.shape[1] == 1).save(path)
        trackers.log_grid(self.accelerator, array, step)
        return path

    def close(self) -> None:
        trackers.finish(self.accelerator)
