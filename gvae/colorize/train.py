"""Training a grey-to-colour model (``model.kind: colorize``), one process, by ``gvae train``.

Each step reads a batch of colour images, splits them into Y and IQ (:mod:`gvae.colorize.yiq`), predicts IQ
from Y and minimises the mean squared error of I and Q (``optim`` as for the other models; the recipe's
``loss`` section does not apply). The run directory looks like any other: config.yaml, metrics.jsonl (``loss``,
the IQ mean squared error over the last ``log.every`` steps, and images/s) and ``checkpoints/step-XXXXXXXX/``
(model.safetensors and config.yaml, written to a temporary directory and renamed into place). The checkpoint is
written at the end only: rerunning a finished run does nothing, and an interrupted one starts again from step
0 (a colorizer trains in minutes; the generative models' exact resume is not carried over).
"""

from __future__ import annotations

from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from gvae.colorize.model import Colorizer
from gvae.colorize.yiq import rgb_to_yiq
from gvae.config import Recipe
from gvae.data import TrainLoader
from gvae.fileio import lock_for_main_process, write_text_atomic
from gvae.loading import CONFIG, WEIGHTS, is_checkpoint, step_dir_name
from gvae.train import checkpoint as ckpt
from gvae.train import trackers
from gvae.train.monitor import Monitor


def _step(net: Colorizer, optimizer: torch.optim.Optimizer, images: torch.Tensor) -> float:
    yiq = rgb_to_yiq(images)
    loss = torch.nn.functional.mse_loss(net(yiq[:, :1]), yiq[:, 1:])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def _save(net: Colorizer, recipe: Recipe, run_dir: Path, step: int) -> Path:
    from gvae.models import save_weights

    tmp = ckpt.temp_dir(run_dir, step)
    tmp.mkdir(parents=True, exist_ok=True)
    save_weights(net, tmp / WEIGHTS)
    (tmp / CONFIG).write_text(recipe.to_yaml())
    return ckpt.publish(run_dir, step, recipe.train.keep_checkpoints)


def train_colorizer(recipe: Recipe, run_dir: str | Path, progress: bool = True) -> dict:
    """Train the colorizer of ``recipe`` into ``run_dir``; returns {"step", "checkpoint", "last"}."""
    from gvae.train.loop import check_data, make_optimizer

    run_dir = Path(run_dir)
    check_data(recipe)
    steps = recipe.train.max_steps
    final = run_dir / "checkpoints" / step_dir_name(steps)
    with lock_for_main_process(run_dir, "gvae train"):
        if is_checkpoint(final):
            return {"step": steps, "checkpoint": str(final), "last": {}, "main_process": True, "stopped_by": None}
        ckpt.remove_incomplete(run_dir)
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)  # an interrupted run's log: this one restarts at 0
        accelerator = Accelerator(cpu=not torch.cuda.is_available(), log_with=trackers.log_with(recipe, run_dir))
        device = accelerator.device
        torch.manual_seed(recipe.train.seed)
        net = Colorizer(recipe.data.resolution, recipe.model).to(device).train()
        optimizer = make_optimizer(net.parameters(), recipe, recipe.optim.lr)
        loader = TrainLoader(recipe.data.train, batch_size=recipe.train.batch_size,
                             resolution=recipe.data.resolution, channels=3, rank=0, world_size=1,
                             workers=recipe.data.workers, shuffle_buffer=recipe.data.shuffle_buffer,
                             hflip=recipe.data.hflip, seed=recipe.train.seed, epoch_samples=recipe.data.epoch_samples)
        write_text_atomic(run_dir / "config.yaml", recipe.to_yaml())
        monitor = Monitor(run_dir, accelerator, recipe, images_per_step=recipe.train.batch_size)
        batches, window, last = iter(loader), [], {}
        monitor.images_per_second(0)
        for step in tqdm(range(1, steps + 1), desc="train", unit="step", disable=not progress):
            images, _ = next(batches)
            window.append(_step(net, optimizer, images.to(device)))
            if step % recipe.log.every == 0 or step == steps:
                last = {"loss": sum(window) / len(window), "images_per_s": monitor.images_per_second(step)}
                monitor.log(step, last)
                window = []
        monitor.close()
        return {"step": steps, "checkpoint": str(_save(net.cpu(), recipe, run_dir, steps)), "last": last,
                "main_process": True, "stopped_by": None}  # no preemption handling: a rerun starts over
