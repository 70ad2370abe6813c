"""``gvae demo``: the whole pipeline on built-in phantoms, in minutes on a laptop CPU.

Five stages, each the library call behind one command, so the demo is also a worked example of the API:

1. pack    :func:`gvae.data.pack`, CT-like phantoms at 64 px (``gvae data pack - --kind phantom``)
2. train   :func:`gvae.train.loop.train` on :func:`demo_recipe` (``gvae train``), then
   :func:`gvae.evaluation.temperature.temperature_scan` on the training phantoms (``gvae eval temperature``)
3. generate :func:`gvae.generation.generate`, an augmentation set at that temperature (``gvae generate``)
4. eval    :func:`gvae.evaluation.runner.run_evaluation` against the held-out phantoms at that temperature
   (``gvae eval --temperature``)
5. report  :func:`gvae.report.write_report`, one HTML page (``gvae report``)

The output directory holds ``data/`` (the shards), ``run/`` (the training run, with ``temperature.json``,
``results.json`` and the generated set in ``run/generated/`` so that ``gvae report OUT/run`` finds them) and ``report.html``. Running the
demo again reuses what is already there: the pack and the training resume, the rest is redone.

The recipe is sized for 2 CPU cores: a narrow network (8 channels at 64 and 32 px, 64 at 4x4), no dropout,
average pooling (max-pool and dropout's random numbers cost a quarter of a CPU step), a 32-d latent, batches
of 16 and a high learning rate; benchmarks/README.md has the timings. ``model.latent_norm`` is on: without it
the codes settle 1-2 units off the prior's centre in several dimensions and most prior samples decode to
texture. The generator reads each pixel's coordinates (``model.coord_channels``), which helps it draw a
lesion where its latent says.

Where the steps go: the discriminator joins for the last 5% of them (``loss.adv_start_fraction``). Whenever
it plays at this budget it is right about every image within ~40 steps (accuracy 1 on real phantoms,
reconstructions and prior samples) and its gradient on the generator's last layer stays 1-2% of the
likelihood's, while its passes make a step about 3.5x as slow. eval/demo_variants.py (docs/results/
demo-variants/), 3,000 steps, seed 0, with the discriminator from step 2,100, from 2,550 and never: prior
samples with lesions (a lesion-count classifier, ``gvae eval --metrics classes``) 20.3, 17.1 and 18.6%,
MS-SSIM diversity 0.880, 0.881 and 0.880; a 10x adversarial weight with R1 from step 2,550: 12.0%, 0.891. The
steps it frees do pay: 1,000 steps of the earlier recipe (the discriminator from the first) left no lesions
at all, 3,000 likelihood steps 18.6%, 5,000 47.9%. It still plays the last 5%, so that the run has a trained
discriminator for ``gvae generate --min-realism`` and the report shows its curves.

The learning rate falls from 2e-3 to 0 along a cosine (``optim.schedule: cosine``; the discriminator's from
5e-4 over its own last 5%): against a constant rate, about 0.01 more diversity for 0.3 to 0.7 dB of PSNR.
5,600 steps in channels-last memory layout (``train.channels_last``, ~1.2-1.5x the steps per second on a CPU)
keep the whole demo near 8 minutes on 2 cores: 463 s measured, seed 0, with lesions in 64.8% of 1,000 prior
samples (the real phantoms: 72.5% by the same classifier), MS-SSIM diversity 0.849 (real 0.798) and
reconstruction PSNR 32.32 dB; seeds 1 and 2 (eval/demo_variants.py): 62.2% / 59.4%, 0.851 / 0.853, 32.52 /
32.18 dB. At 5,000 steps, seeds 0 / 1 / 2: lesions in 59.5% / 55.6% / 55.7%, diversity 0.848 / 0.851 / 0.852:
the last 600 steps add lesions, not diversity. With a constant learning rate at 5,000 steps: 56.2% / 60.6%,
0.860 / 0.858, 32.71 / 32.64 dB (seeds 0 / 1).

Those are samples at T = 1. After training the demo chooses the sampling temperature on the training phantoms
(:mod:`gvae.evaluation.temperature`): T = 1.2 for seeds 0, 1 and 2, where the diversity is 0.812 / 0.816 /
0.816 (real 0.798) and 81.1% / 78.8% / 78.3% of the samples carry lesions, at no cost in training
(eval/demo_temperature.py); the generated set and the evaluation use it.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from gvae.config import Recipe, recipe_from_dict
from gvae.errors import GvaeError

log = logging.getLogger(__name__)

RESOLUTION = 64


@dataclass(frozen=True)
class DemoSize:
    """How much work each stage does; :data:`FULL` is the real demo, :data:`QUICK` a smoke test of it."""

    phantoms: int  # packed, train + val
    val_fraction: float
    steps: int  # training steps
    generate: int  # images in the augmentation set
    eval_samples: int  # prior samples for the sample metrics
    iwae_k: int
    metrics: str  # `gvae eval --metrics`; memorization needs >= 100 held-out images
    msssim_pairs: int
    temperature_samples: int  # prior samples per temperature of the scan (and training phantoms, twice as many)
    model: dict = field(default_factory=dict)  # recipe overrides of the model section


FULL = DemoSize(phantoms=2000, val_fraction=0.1, steps=5600, generate=1000, eval_samples=500, iwae_k=16,
                metrics="all", msssim_pairs=500, temperature_samples=500)
QUICK = DemoSize(phantoms=96, val_fraction=0.25, steps=20, generate=64, eval_samples=32, iwae_k=2,
                 metrics="mmd,msssim,recon,elbo", msssim_pairs=32, temperature_samples=32,
                 model={"latent_dim": 8, "channel_base": 64, "channel_max": 16})


def demo_recipe(data: str | Path, size: DemoSize = FULL, steps: int | None = None) -> Recipe:
    """The demo's recipe on the packed phantoms in ``data``; ``steps`` overrides the size's training steps."""
    steps = steps or size.steps
    recipe = {
        "name": "demo-phantom-64",
        "data": {"train": str(data), "val": str(data), "resolution": RESOLUTION, "channels": 1,
                 "workers": 0, "shuffle_buffer": 500},  # 16 small PNGs a step: no worker process to start
        "model": {"kind": "gvae", "latent_dim": 32, "channel_base": 256, "channel_min": 8, "channel_max": 64,
                  "dropout": 0.0, "pooling": "avg", "input_noise": 0.05, "latent_norm": True,
                  "input_noise_anneal_fraction": 0.5, "latent_noise": 0.05, "coord_channels": True, **size.model},
        # the discriminator joins for the last 5% of the steps (see the module docstring)
        "loss": {"kl_warmup_fraction": 0.05, "adv_weight": 0.002, "adv_start_fraction": 0.95},
        "optim": {"lr": 2.0e-3, "d_lr": 5.0e-4, "betas": [0.5, 0.999], "schedule": "cosine"},  # see above
        # EMA half-life 7% of the run (70 of 1000 steps): long enough to smooth, short enough to follow it
        "train": {"batch_size": 16, "max_steps": steps, "checkpoint_every": max(1, steps // 4),
                  "keep_checkpoints": 1, "ema_halflife": 0.07, "channels_last": True},
        "log": {"every": max(1, steps // 100), "sample_every": max(1, steps // 5), "num_samples": 32,
                "tensorboard": False},
    }
    return recipe_from_dict(recipe)


@dataclass
class DemoResult:
    """Where everything went, how long each stage took (seconds), and stages that failed (stage: error)."""

    out: Path
    data: Path
    run: Path
    generated: Path
    results: Path
    report: Path
    temperature: float = 1.0  # the sampling temperature of the generated set and the evaluation
    seconds: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


def _check_same_run(run_dir: Path, recipe: Recipe) -> None:
    """Refuse to resume a run of another network or data (a --quick run, then a full one in the same --out).

    Only the data and the network's shape count: a different ``--steps`` continues the same run.
    """
    config = run_dir / "config.yaml"
    if not config.is_file():
        return
    old, new = yaml.safe_load(config.read_text()), recipe.to_dict()
    for recipe_dict in (old, new):
        for schedule in ("input_noise_anneal_steps", "input_noise_anneal_fraction"):  # scaled with the steps
            recipe_dict["model"].pop(schedule, None)
        recipe_dict["data"].pop("workers", None)
    if (old["data"], old["model"]) != (new["data"], new["model"]):
        raise GvaeError(f"{run_dir} holds a demo run with another model or data; choose another --out or delete it")


def run_demo(out: str | Path = "gvae-demo", quick: bool = False, steps: int | None = None,
             on_stage: Callable[[str, str], None] = lambda stage, what: None, progress: bool = True) -> DemoResult:
    """Run the five stages into ``out``; ``on_stage(stage, what)`` is called as each starts.

    Generation, evaluation and the report still run when an earlier one of them fails (the report shows what
    is missing); such failures are returned in ``failed``. Packing and training failures raise GvaeError.
    """
    from gvae.data import PackConfig, pack

    size = QUICK if quick else FULL
    out = Path(out)
    result = DemoResult(out=out, data=out / "data", run=out / "run", generated=out / "run" / "generated",
                        results=out / "run" / "results.json", report=out / "report.html")
    recipe = demo_recipe(result.data.resolve(), size, steps)

    def stage(name: str, what: str, work: Callable[[], object], required: bool) -> None:
        on_stage(name, what)
        start = time.perf_counter()
        try:
            work()
        except GvaeError as err:
            if required:
                raise
            log.warning("demo stage %s failed: %s", name, err)
            result.failed[name] = str(err)
        result.seconds[name] = time.perf_counter() - start

    stage("pack", f"{size.phantoms} phantoms at {RESOLUTION} px -> {result.data}", lambda: pack(PackConfig(
        src="-", kind="phantom", out=str(result.data), resolution=RESOLUTION, num=size.phantoms,
        shard_size=1000, val_fraction=size.val_fraction, command="gvae demo", progress=progress)),
          required=True)
    _check_same_run(result.run, recipe)
    stage("train", f"{recipe.train.max_steps} steps of batch {recipe.train.batch_size} -> {result.run}, then the "
          f"sampling temperature", lambda: _train(recipe, result, size, progress), required=True)
    stage("generate", f"{size.generate} images at temperature {result.temperature:g} -> {result.generated}",
          lambda: _generate(result, size, progress), required=False)
    stage("eval", f"{size.metrics} against the held-out phantoms -> {result.results}",
          lambda: _evaluate(result, size), required=False)
    stage("report", str(result.report), lambda: _report(result), required=False)
    return result


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _train(recipe: Recipe, result: DemoResult, size: DemoSize, progress: bool) -> None:
    """Train (or resume), then choose the sampling temperature whose prior samples, encoded again, best match
    the training phantoms' codes (``gvae eval temperature``): written to ``run/temperature.json`` and kept in
    ``result`` for the generated set and the evaluation."""
    from gvae import temperature_choice
    from gvae.evaluation.temperature import scan_data
    from gvae.loading import in_inference_form, load_trained
    from gvae.train.loop import train

    train(recipe, result.run, resume="auto", progress=progress)
    loaded = load_trained(result.run, device=_device())
    scan = scan_data(in_inference_form(loaded.model), str(result.data), "train",
                     num_images=2 * size.temperature_samples, num_samples=size.temperature_samples)
    temperature_choice.record(result.run / temperature_choice.FILE, loaded, scan.as_dict(), data=str(result.data),
                              split="train")
    result.temperature = scan.best


def _generate(result: DemoResult, size: DemoSize, progress: bool) -> None:
    from gvae.generation import GenerateConfig, generate

    shutil.rmtree(result.generated, ignore_errors=True)  # a set from an earlier checkpoint would be refused
    generate(GenerateConfig(source=str(result.run), out=str(result.generated), num=size.generate,
                            shard_size=max(1, size.generate // 2), temperature=result.temperature,
                            progress=progress))


def _evaluate(result: DemoResult, size: DemoSize) -> None:

    from gvae.evaluation.protocol import Protocol
    from gvae.evaluation.results import write_results
    from gvae.evaluation.runner import run_evaluation

    protocol = Protocol(data=str(result.data), metrics=size.metrics, num_samples=size.eval_samples,
                        iwae_k=size.iwae_k, batch_size=64, msssim_pairs=size.msssim_pairs,
                        temperature=result.temperature)
    write_results(run_evaluation(str(result.run), protocol, device=_device()), result.results)


def _report(result: DemoResult) -> None:
    from gvae.report import write_report

    write_report(result.run, result.report,
                 results=result.results if result.results.is_file() else None,
                 manifest=result.generated / "manifest.json" if (result.generated / "manifest.json").is_file()
                 else None)
