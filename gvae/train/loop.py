"""The training loop: one GAN step with two optimizers, under one process, DDP or DeepSpeed ZeRO-2/3.

A step, per optimizer update:

1. encoder+generator: for each of ``train.grad_accum`` micro-batches, one forward of ``ae`` (reconstruction
   and prior samples) and the generator loss (likelihood NLL + beta KL + adversarial), backward with the
   discriminator's parameters frozen (DeepSpeed requires it; it also keeps the adversarial term from
   updating D); then clip, step. The generator step calls the *unwrapped* discriminator: its parameters
   are frozen, so no gradient sync is needed, and going through D's DeepSpeed engine would fire that
   engine's gradient reduction inside G's backward (seen: IndexError in ZeRO-2's reduce_ipg_grads). ZeRO-3
   still gathers D's parameters, through the hooks it installs on the module itself.
2. discriminator: on the same micro-batches and the detached fakes of step 1, one forward on
   cat(real, recon, fake) per micro-batch; clip, step.
   Before ``loss.adv_start_steps`` (or fraction; :func:`gvae.budget.adversarial_start_step`) there is no step 2
   and no prior samples in step 1: encoder+generator train as a VAE.
3. EMA update; log, sample grid and checkpoint on their schedules. On a step that ends on a log line, the
   generator's last micro-batch is also measured by :mod:`gvae.train.diagnostics` before its backward.

A non-finite loss on any rank skips the step on every rank, with no gradient of its micro-batches left
behind (see ``Trainer._backward``); ``train.max_bad_steps`` in a row stop the run with the last checkpoint
intact.

With ``augment.policy`` set, every batch either player shows the discriminator goes through the same
differentiable augmentation first (never the likelihood's input); with ``augment.target`` > 0 its probability
then adapts to the discriminator's mean sign on reals, all-reduced over the ranks
(:mod:`gvae.train.adaptive_augment`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import logging
import sys
from pathlib import Path

import torch
from accelerate.utils import set_seed
from safetensors import SafetensorError
from tqdm.auto import tqdm

from gvae.budget import adversarial_start_step, ema_decay, ema_decay_at, learning_rate_factor, moved_schedules
from gvae.config import Recipe, recipe_from_yaml_text
from gvae.data import TrainLoader, iter_samples, load_images, read_dataset_info, resolve_shards
from gvae.errors import GvaeError
from gvae.fileio import lock_for_main_process, write_json_atomic, write_text_atomic
from gvae.loading import CONFIG, EMA_WEIGHTS, WEIGHTS, list_checkpoints, resolve_checkpoint, step_dir_name
from gvae.models import build_model
from gvae.models.conditioning import with_data_classes
from gvae.models.losses import discriminator_loss, generator_loss, generator_term_weights, schedule_values
from gvae.train import checkpoint as ckpt
from gvae.train import trackers
from gvae.train.adaptive_augment import build_augment
from gvae.train.diagnostics import generator_diagnostics, generator_label_share
from gvae.train.distributed import Accelerators, build_accelerators, is_ddp
from gvae.train.ema import EMA
from gvae.train.monitor import Monitor
from gvae.train.preemption import StopSignals

log = logging.getLogger(__name__)


def make_optimizer(params, recipe: Recipe, lr: float) -> torch.optim.Optimizer:
    opt = recipe.optim
    if opt.name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=opt.momentum, weight_decay=opt.weight_decay)
    return torch.optim.Adam(params, lr=lr, betas=tuple(opt.betas), weight_decay=opt.weight_decay)


def check_data(recipe: Recipe) -> None:
    """Fail before any model is built when the data cannot be found."""
    if not recipe.data.train:
        raise GvaeError("data.train is empty; set it in the recipe or on the command line (data.train=PATH)")
    resolve_shards(recipe.data.train, "train")
    if recipe.data.val:  # read first at the first sample grid: a typo must not wait until then
        resolve_shards(recipe.data.val, "val")


class Trainer:
    """Owns the models, optimizers, loader and run directory of one training run."""

    def __init__(self, recipe: Recipe, run_dir: str | Path, resume: str = "auto", progress: bool = True):
        check_data(recipe)
        recipe = with_data_classes(recipe, read_dataset_info(recipe.data.train), recipe.data.train)
        self.recipe = recipe
        self.run_dir = Path(run_dir)
        self.progress = progress
        # the accelerators come before the model (see build_accelerators), so the recipe's kind answers here
        self.accs: Accelerators = build_accelerators(recipe, two_players=recipe.model.traits.discriminator,
                                                     log_with=trackers.log_with(recipe, self.run_dir))
        acc = self.accs.main
        self.device = acc.device
        self.rank, self.world = acc.process_index, acc.num_processes
        self.zero3 = self.accs.deepspeed_stage == 3
        if recipe.train.channels_last and self.accs.deepspeed_stage is not None:
            raise GvaeError("train.channels_last: true does not go with DeepSpeed, whose ZeRO stages flatten the "
                            "parameters into contiguous buffers; use it with one process or DDP")

        set_seed(recipe.train.seed)  # identical initial weights on every rank
        self.model = build_model(recipe)
        if recipe.train.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.ema = EMA(self.model, ema_decay(recipe))
        self.loader = TrainLoader(
            recipe.data.train, batch_size=recipe.train.batch_size, resolution=recipe.data.resolution,
            channels=recipe.data.channels, rank=self.rank, world_size=self.world, workers=recipe.data.workers,
            shuffle_buffer=recipe.data.shuffle_buffer, hflip=recipe.data.hflip, seed=recipe.train.seed,
            epoch_samples=recipe.data.epoch_samples)
        set_seed(recipe.train.seed + 1000 * self.rank)  # different noise and dropout on each rank

        self.opt_g = make_optimizer(self.model.ae.parameters(), recipe, recipe.optim.lr)
        self.ae, self.opt_g = self.accs.prepare_g(self.model.ae, self.opt_g)
        self.disc = self.opt_d = None
        if self.model.has_discriminator:
            self.opt_d = make_optimizer(self.model.disc.parameters(), recipe, recipe.optim.d_lr)
            self.disc, self.opt_d = self.accs.prepare_d(self.model.disc, self.opt_d)
        self.ema.model.to(self.device)
        images_per_step = recipe.train.batch_size * recipe.train.grad_accum * self.world
        self.augment, self.adaptive = build_augment(recipe, images_per_step)
        self.label_classifier = None  # frozen: the generator learns from it, nothing trains it
        if recipe.loss.label_weight > 0:  # imported here: gvae.metrics loads piq and torch-fidelity
            from gvae.metrics.features import load_label_classifier

            self.label_classifier = load_label_classifier(recipe.loss.label_classifier, self.model.num_classes,
                                                          recipe.data.channels, "loss.label_classifier")
            self.label_classifier.to(self.device).requires_grad_(False)

        self.step = 0
        self.bad_steps = 0
        self.checkpoint = self._start_or_resume(resume)
        if self.checkpoint is not None:
            self._load_states(self.checkpoint)
            self._warn_if_schedules_move(self.checkpoint)
        self._describe_run()
        self.batches = iter(self.loader)  # lazy: reads nothing and draws no random number until the first step
        self.monitor = Monitor(self.run_dir, acc, recipe, images_per_step)
        self._fixed = None
        self._calibrated_at = -1
        self.diagnostics: dict[str, float] = {}  # of the last step, when it was a logging step

    # ---------------------------------------------------------------- start, resume, checkpoint
    def _start_or_resume(self, resume: str) -> Path | None:
        acc = self.accs.main
        if acc.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.remove_incomplete(self.run_dir)
        acc.wait_for_everyone()
        existing = list_checkpoints(self.run_dir)
        if resume == "none":
            if existing:
                raise GvaeError(f"{self.run_dir} already has checkpoints; use --resume auto to continue it, "
                                "or choose another --out")
            found = None
        elif resume == "auto":
            found = existing[-1] if existing else None
        else:
            found = resolve_checkpoint(resume)
        return found

    def _describe_run(self) -> None:
        """config.yaml and run.json, written only once the run has started or resumed without error: a run
        that fails to resume (another model size, damaged state) leaves the directory's description as it was."""
        if self.accs.main.is_main_process:
            write_text_atomic(self.run_dir / "config.yaml", self.recipe.to_yaml())
            resumed = str(self.checkpoint) if self.checkpoint else None
            info = self.accs.describe(self.recipe) | {"command": " ".join(sys.argv), "resumed_from": resumed}
            write_json_atomic(self.run_dir / "run.json", info, sort_keys=True)

    def _load_states(self, path: Path) -> None:
        """Resume from checkpoint ``path``; one GvaeError if it does not fit this recipe or is damaged."""
        try:
            self._restore(path)
        except (OSError, RuntimeError, ValueError, KeyError, TypeError, SafetensorError) as exc:
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise GvaeError(f"cannot resume from {path}: {reason}. Was it written with another recipe (model "
                            "size, kind), or is it damaged? Use another --out, or --resume none") from exc

    def _warn_if_schedules_move(self, path: Path) -> None:
        """Say so when resuming with a recipe whose budget-scaled schedules resolve differently from the
        checkpoint's (continuing with more steps stretches them mid-run; a fresh run would follow them whole).
        A checkpoint whose recipe this version cannot read still resumes, unchecked: the check only informs."""
        try:
            old = recipe_from_yaml_text((path / CONFIG).read_text(encoding="utf-8"))
        except (OSError, GvaeError) as err:
            log.info("not comparing schedules with %s: %s", path, err)
            return
        moved = moved_schedules(old, self.recipe)
        if moved and self.accs.main.is_main_process:
            log.warning("resuming %s at step %d with other budget-scaled schedules than it was trained with "
                        "(%s); they take effect from here on, so the run follows neither schedule whole",
                        path, self.step, "; ".join(moved))

    def _restore(self, path: Path) -> None:
        from gvae.models import load_weights

        state = json.loads((path / "trainer.json").read_text())
        loader_file = path / f"loader-{self.rank}.json"
        if state.get("world_size") == self.world and loader_file.is_file():
            self.loader.load_state_dict(json.loads(loader_file.read_text()))
        else:
            log.warning("world size changed (%s -> %s): the data stream restarts at a new epoch",
                        state.get("world_size"), self.world)
        self.accs.g.load_state(str(path / "state" / "g"))
        if self.disc is not None:
            self.accs.d.load_state(str(path / "state" / "d"))
        load_weights(self.ema.model, path / EMA_WEIGHTS)
        self.step, self.bad_steps = state["step"], state["bad_steps"]
        if self.adaptive is not None and "augment" in state:
            self.adaptive.load_state_dict(state["augment"])
            self.augment.p = self.adaptive.p
        log.info("resumed from %s at step %d", path, self.step)

    def save_checkpoint(self) -> Path:
        from gvae.models import save_weights

        acc = self.accs.main
        tmp = ckpt.temp_dir(self.run_dir, self.step)
        if acc.is_main_process:
            tmp.mkdir(parents=True, exist_ok=True)
        acc.wait_for_everyone()
        self.accs.g.save_state(str(tmp / "state" / "g"))
        if self.disc is not None:
            self.accs.d.save_state(str(tmp / "state" / "d"))
        write_json_atomic(tmp / f"loader-{self.rank}.json", self.loader.state_dict(), sort_keys=True)
        with self._gathered():
            if acc.is_main_process:
                save_weights(self.model, tmp / WEIGHTS)
        if acc.is_main_process:
            self._calibrate_ema()
            save_weights(self.ema.model, tmp / EMA_WEIGHTS)
            (tmp / CONFIG).write_text(self.recipe.to_yaml())
            adaptive = {} if self.adaptive is None else {"augment": self.adaptive.state_dict()}
            write_json_atomic(tmp / "trainer.json", {"step": self.step, "bad_steps": self.bad_steps,
                                                     "world_size": self.world, **adaptive}, sort_keys=True)
        acc.wait_for_everyone()
        final = self.run_dir / "checkpoints" / step_dir_name(self.step)
        if acc.is_main_process:
            final = ckpt.publish(self.run_dir, self.step, self.recipe.train.keep_checkpoints)
        acc.wait_for_everyone()
        self.checkpoint = final
        return final

    def _gathered(self):
        if not self.zero3:
            return contextlib.nullcontext()
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(self.model.parameters()), modifier_rank=None)

    # ---------------------------------------------------------------- the step
    @contextlib.contextmanager
    def _micro_batch(self, accelerator, module, last: bool):
        """Accumulate gradients over the step's micro-batches; only the last one synchronises.

        Under DDP that skips the all-reduce of the others (``no_sync``). Under DeepSpeed, accelerate makes a
        backward the engine's accumulation boundary, which steps its optimizer, whenever ``sync_gradients``
        is set, and nothing else clears it: left alone, every micro-batch would be an optimizer step.
        ``sync_gradients`` is set back on exit because accelerate's optimizer wrappers ignore ``step`` and
        ``zero_grad`` while it is off.
        """
        accelerator.sync_gradients = last
        try:
            if last or not is_ddp(accelerator):
                yield
            else:
                with accelerator.no_sync(module):
                    yield
        finally:
            accelerator.sync_gradients = True

    def _backward(self, accelerator, loss: torch.Tensor, index: int) -> bool:
        """Backward micro-batch ``index``'s loss; False, leaving no gradient behind, if it is non-finite on any rank.

        The ranks agree first, so DDP never waits for a rank that skipped. Under DeepSpeed the gradients of the
        step's earlier micro-batches sit inside the engine, out of ``zero_grad``'s reach: a NaN backward made
        the accumulation boundary trips the engine's overflow check, which discards them and skips its update
        (with fp16 it also halves the loss scale, as for any overflow).
        """
        bad = torch.tensor([0.0 if torch.isfinite(loss).all() else 1.0], device=self.device)
        if self.accs.main.reduce(bad, "sum").item() == 0:
            accelerator.backward(loss)
            return True
        if self.accs.deepspeed_stage is not None and index > 0:
            accelerator.sync_gradients = True
            accelerator.backward(loss * float("nan"))
        return False

    def _set_lr(self) -> float:
        """Set both players' learning rates for this step (see :func:`gvae.budget.learning_rate_factor`);
        returns the generator's."""
        r = self.recipe
        lr_g = r.optim.lr * learning_rate_factor(r, self.step)
        lr_d = r.optim.d_lr * learning_rate_factor(r, self.step, adversarial_start_step(r))
        for opt, lr in ((self.opt_g, lr_g), (self.opt_d, lr_d)):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = lr
        return lr_g

    def train_step(self) -> dict[str, torch.Tensor] | None:
        """One optimizer update of each player; returns the logged terms, or None if the step was skipped."""
        r = self.recipe
        sched = schedule_values(r, self.step)
        micro = [next(self.batches) for _ in range(r.train.grad_accum)]
        lr = self._set_lr()
        terms: dict[str, torch.Tensor] = {}
        outs = []
        self.diagnostics = {}
        diagnose = r.log.diagnostics and self._is_log_step(self.step + 1) and self.accs.main.is_main_process
        adversarial = self.disc is not None and self.step >= adversarial_start_step(r)
        if adversarial:
            self.model.disc.requires_grad_(False)
        layout = torch.channels_last if r.train.channels_last else torch.contiguous_format
        for i, (x, y) in enumerate(micro):
            x = x.to(self.device, non_blocking=True, memory_format=layout)
            z_prior = (torch.randn(x.shape[0], self.model.latent_dim, device=self.device)
                       if adversarial or self.label_classifier is not None else None)  # for those two terms
            labels, prior_labels = self._labels(y, z_prior is not None)
            with self._micro_batch(self.accs.g, self.ae, i == len(micro) - 1):
                out = self.ae(x, z_prior, sched["input_noise"], labels, prior_labels)
                loss, parts = generator_loss(out, x, self.model.disc if adversarial else None, r.loss,
                                             sched["beta"], self.model.uses_feature_matching,
                                             labels=labels, augment=self.augment,
                                             label_classifier=self.label_classifier)
                if diagnose and i == len(micro) - 1:
                    weights = generator_term_weights(r.loss, sched["beta"], x[0].numel())
                    self.diagnostics = generator_diagnostics(out, parts, weights, self.model.ae,
                                                             gradients=not self.zero3)  # ZeRO-3: partitioned
                finite = self._backward(self.accs.g, loss, i)
            if not finite:
                return self._skip()
            outs.append((x, labels, _detached(out)))
            _accumulate(terms, parts, len(micro))
        terms["grad_norm_g"] = _norm(self.accs.g.clip_grad_norm_(self.model.ae.parameters(), _clip(r)))
        self.opt_g.step()
        self.opt_g.zero_grad(set_to_none=True)
        if diagnose and self.model.num_classes and not self.zero3:  # ZeRO-3: partitioned weights
            self.diagnostics["label_share"] = generator_label_share(self.model, self.step)
        self._track_class_means(outs)

        if adversarial:
            self.model.disc.requires_grad_(True)
            for i, (x, labels, out) in enumerate(outs):
                with self._micro_batch(self.accs.d, self.disc, i == len(outs) - 1):
                    loss, parts = discriminator_loss(self.disc, x, out, r.loss, labels=labels, augment=self.augment)
                    finite = self._backward(self.accs.d, loss, i)
                if not finite:
                    return self._skip()
                _accumulate(terms, parts, len(outs))
            terms["grad_norm_d"] = _norm(self.accs.d.clip_grad_norm_(self.model.disc.parameters(), _clip(r)))
            self.opt_d.step()
            self.opt_d.zero_grad(set_to_none=True)
            self._adapt_augmentation(terms)

        self.ema.update(self.model, zero3=self.zero3, decay=ema_decay_at(r, self.step))
        self.bad_steps = 0
        self.step += 1
        terms.update(lr=torch.tensor(lr), beta=torch.tensor(sched["beta"]),
                     input_noise=torch.tensor(sched["input_noise"]))
        return terms

    def _labels(self, y: torch.Tensor, with_prior: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(labels of the batch, labels of its prior samples) on the device for a conditional model, else Nones.

        The prior samples take a shuffled copy of the batch's labels, so their classes follow the data's.
        """
        if not self.model.num_classes:
            return None, None
        if bool((y < 0).any()):
            raise GvaeError(f"model.conditional: true, but {self.recipe.data.train} holds unlabelled samples "
                            f"(label -1); a conditional run needs every training image labelled")
        labels = y.to(self.device, non_blocking=True)
        return labels, labels[torch.randperm(len(labels), device=self.device)] if with_prior else None

    def _skip(self) -> None:
        self.diagnostics = {}
        for opt in (self.opt_g, self.opt_d):
            if opt is not None:
                opt.zero_grad(set_to_none=True)
        self.bad_steps += 1
        self.step += 1
        log.warning("step %d: non-finite loss, step skipped (%d in a row)", self.step, self.bad_steps)
        if self.bad_steps >= self.recipe.train.max_bad_steps:
            last = self.checkpoint or "none (no checkpoint was written yet)"
            raise GvaeError(f"{self.bad_steps} non-finite steps in a row at step {self.step}; stopped. "
                            f"Last good checkpoint: {last}. Lower optim.lr or set optim.grad_clip.")
        return None

    def _adapt_augmentation(self, terms: dict[str, torch.Tensor]) -> None:
        """Log the augmentation probability this step used (aug_p); feed ADA this step's r_t, mean over ranks."""
        if self.augment is None:
            return
        terms["aug_p"] = torch.tensor(self.augment.p)
        if self.adaptive is not None:
            sign = torch.tensor([float(terms["d_real_sign"])], device=self.device)
            self.augment.p = self.adaptive.observe(self.accs.main.reduce(sign, "mean").item())

    def _track_class_means(self, outs: list) -> None:
        """With a prior per class (``model.class_prior``), move its class means towards the average code of
        each class in this step's micro-batches, pooled over all processes so that every rank holds the same
        means (see :class:`gvae.models.conditioning.ClassMeans`)."""
        means = self.model.ae.class_means
        if means is None:
            return
        sums, counts = map(sum, zip(*(means.batch_sums(out.mu, labels) for _, labels, out in outs), strict=True))
        main = self.accs.main
        means.update(main.reduce(sums, "sum"), main.reduce(counts, "sum"))

    # ---------------------------------------------------------------- samples and the run
    def _calibrate_ema(self) -> None:
        """Re-estimate the EMA model's BatchNorm statistics (and class means) on the first
        ``train.ema_bn_images`` training images, once per step (see :meth:`EMA.recalibrate`); the same images
        every time."""
        n, size = self.recipe.train.ema_bn_images, self.recipe.train.batch_size
        if n == 0 or self._calibrated_at == self.step:
            return
        samples = ((torch.from_numpy(s["image"]), s["label"])
                   for s in iter_samples(self.recipe.data.train, "train", limit=n))
        batches = iter(lambda: list(itertools.islice(samples, size)), [])
        self.ema.recalibrate(((torch.stack([x for x, _ in batch]), torch.tensor([y for _, y in batch]))
                                        for batch in batches), seed=self.recipe.train.seed)
        self._calibrated_at = self.step

    @torch.no_grad()
    def save_samples(self) -> Path | None:
        """Prior samples from fixed latents, then fixed validation images and their reconstructions (EMA).

        A conditional model's prior sample i is of class i % num_classes, so with up to 8 classes each column
        of the grid is one class.
        """
        if not self.accs.main.is_main_process:
            return None
        n = self.recipe.log.num_samples
        if self._fixed is None:
            gen = torch.Generator().manual_seed(self.recipe.train.seed)
            z = torch.randn(n, self.model.latent_dim, generator=gen)
            source = self.recipe.data.val or self.recipe.data.train
            split = "val" if self.recipe.data.val else "train"
            real, real_labels = load_images(source, split=split, limit=min(n, 8))
            z_labels = torch.arange(n) % max(1, self.model.num_classes)
            self._fixed = tuple(t.to(self.device) for t in (z, z_labels, real, real_labels))
        z, z_labels, real, real_labels = self._fixed
        self._calibrate_ema()
        model = self.ema.model
        samples = model.decode(z, z_labels)
        recon = model.decode(model.encode(real, real_labels)[0], real_labels)
        return self.monitor.save_grid(self.step, [samples[i:i + 8] for i in range(0, n, 8)] + [real, recon])

    def _is_log_step(self, step: int) -> bool:
        """Whether a metrics line is written once ``step`` steps are done."""
        return step % self.recipe.log.every == 0 or step == self.recipe.train.max_steps

    def fit(self) -> dict:
        r = self.recipe
        acc = self.accs.main
        bar = tqdm(total=r.train.max_steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True,
                   disable=not (acc.is_main_process and self.progress))
        window: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}  # steps that logged each term (the discriminator's only once it plays)
        self.monitor.images_per_second(self.step)
        last: dict[str, float] = {}
        stop = StopSignals()  # SIGTERM, SIGUSR1: checkpoint after this step and return
        try:
            while self.step < r.train.max_steps:
                terms = self.train_step()
                bar.update(1)
                if terms is not None:
                    _accumulate(window, terms, 1)
                    counts.update({key: counts.get(key, 0) + 1 for key in terms})
                if self._is_log_step(self.step) and counts:
                    last = {k: float(v) / counts[k] for k, v in window.items()} | self.diagnostics
                    last["images_per_s"] = self.monitor.images_per_second(self.step)
                    self.monitor.log(self.step, last)
                    bar.set_postfix({k: f"{last[k]:.3g}" for k in ("total", "d_loss", "images_per_s") if k in last})
                    window, counts = {}, {}
                if self.step % r.log.sample_every == 0:
                    self.save_samples()
                if self.step % r.train.checkpoint_every == 0 and self.bad_steps == 0:  # not mid-streak
                    self.save_checkpoint()
                if stop.agreed(acc):
                    break
            if self.checkpoint is None or self.checkpoint.name != step_dir_name(self.step):
                self.save_checkpoint()
            if stop.received is None:
                self.save_samples()
        finally:
            stop.restore()
            bar.close()
            self.monitor.close()
        return {"step": self.step, "checkpoint": str(self.checkpoint), "last": last, "stopped_by": stop.received}


def _detached(out):
    """The generator's outputs with their graphs cut: the discriminator step trains on them as fixed fakes."""
    values = {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}
    return type(out)(**{k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in values.items()})


def _accumulate(into: dict[str, torch.Tensor], parts: dict[str, torch.Tensor], count: int) -> None:
    for key, value in parts.items():
        value = value.detach().float().cpu() / count
        into[key] = into[key] + value if key in into else value


def _norm(value) -> torch.Tensor:
    return torch.tensor(float("nan") if value is None else float(value))


def _clip(recipe: Recipe) -> float:
    return recipe.optim.grad_clip if recipe.optim.grad_clip > 0 else float("inf")


def train(recipe: Recipe, run_dir: str | Path, resume: str = "auto", progress: bool = True) -> dict:
    """Train ``recipe`` into ``run_dir`` (resuming from its newest checkpoint with ``resume="auto"``)."""
    if recipe.model.kind == "colorize":
        from gvae.colorize.train import train_colorizer

        return train_colorizer(recipe, run_dir, progress=progress)
    with lock_for_main_process(run_dir, "gvae train"):  # against a second training into the same directory
        trainer = Trainer(recipe, run_dir, resume=resume, progress=progress)
        result = trainer.fit()
    trainer.accs.main.end_training()
    return result | {"main_process": trainer.accs.main.is_main_process}
