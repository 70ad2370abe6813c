"""Schedules that scale with the training budget, ``train.max_steps``.

Why: fixed step counts tuned for a long run break a short one. Measured: ``train.ema_decay: 0.999`` leaves
0.999^937 = 39% of the initial weights in the average after a 937-step epoch (and generation uses the
average), and ``loss.kl_warmup_steps: 2000`` leaves beta at 0.47 when that epoch ends. So a recipe may give
its schedules as fractions of ``train.max_steps``:

* KL warm-up: beta ramps from 0 over ``loss.kl_warmup_steps``, or, when that is null, over
  ``round(loss.kl_warmup_fraction * train.max_steps)`` steps.
* Input-noise annealing (gvae): likewise ``model.input_noise_anneal_steps`` or
  ``model.input_noise_anneal_fraction``.
* Adversarial start (gvae, vaegan): the discriminator joins at step ``loss.adv_start_steps``, or, when that
  is null, at ``round(loss.adv_start_fraction * train.max_steps)``. Before it the step is a VAE's: no
  discriminator and no prior samples, about a quarter of the full step's cost. Measured on the demo: a
  discriminator that joins at step 0 wins within ~40 steps (accuracy 1 on every kind of image, d_loss 2e-4)
  while the reconstructions are still blurred, and its gradient then adds stripes, not detail; the same
  seconds buy the autoencoder four times the steps. (VQGAN's ``disc_start`` is the same idea.)
* Learning rate: linear warm-up over ``optim.warmup_steps``, then constant or (``optim.schedule: cosine``) a
  cosine decay to 0 at ``train.max_steps``. The discriminator's schedule runs over the steps it plays, from
  its start to ``train.max_steps``: one that joins for the last 5% of a cosine run would otherwise train at
  under 1% of ``optim.d_lr`` and stay untrained, while ``gvae generate --min-realism`` relies on it.
* Weight average: ``train.ema_decay`` per step, or, when that is null, the decay whose half-life is
  ``train.ema_halflife * train.max_steps`` steps: the initial weights then hold 2^(-1 / ema_halflife) of the
  average at the end (2^-20 for 0.05), whatever the budget. With ``train.ema_warmup`` the decay at step t is
  min(decay, (1 + t) / (10 + t)), so early averages (and early sample grids) follow the weights too.

An explicit number always wins over a fraction, so recipes and run directories written with step counts keep
their meaning.
"""

from __future__ import annotations

import math

from gvae.config import Recipe


def _steps(recipe: Recipe, count: int | None, fraction: float) -> int:
    """An explicit step ``count``, or else ``fraction`` of ``train.max_steps``, rounded."""
    return count if count is not None else round(fraction * recipe.train.max_steps)


def kl_warmup_steps(recipe: Recipe) -> int:
    """Steps over which beta ramps from 0 to ``loss.beta`` (0: no warm-up)."""
    return _steps(recipe, recipe.loss.kl_warmup_steps, recipe.loss.kl_warmup_fraction)


def input_noise_anneal_steps(recipe: Recipe) -> int:
    """Steps over which ``model.input_noise`` falls linearly to 0 (0: constant)."""
    return _steps(recipe, recipe.model.input_noise_anneal_steps, recipe.model.input_noise_anneal_fraction)


def adversarial_start_step(recipe: Recipe) -> int:
    """The first step on which the discriminator plays (0: from the start)."""
    return _steps(recipe, recipe.loss.adv_start_steps, recipe.loss.adv_start_fraction)


def learning_rate_factor(recipe: Recipe, step: int, start: int = 0) -> float:
    """The learning-rate multiplier at ``step`` of a schedule that runs from step ``start`` (the
    discriminator's: :func:`adversarial_start_step`) to ``train.max_steps``."""
    opt, step = recipe.optim, max(0, step - start)
    if opt.warmup_steps and step < opt.warmup_steps:
        return (step + 1) / opt.warmup_steps
    if opt.schedule == "cosine":
        span = max(1, recipe.train.max_steps - start - opt.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - opt.warmup_steps) / span)))
    return 1.0


def ema_decay(recipe: Recipe) -> float:
    """The weight average's decay per step once warmed up: ``train.ema_decay``, or 0.5^(1 / half-life steps)."""
    train = recipe.train
    if train.ema_decay is not None:
        return train.ema_decay
    halflife_steps = train.ema_halflife * train.max_steps
    return 0.5 ** (1.0 / halflife_steps) if halflife_steps > 0 else 0.0


def ema_decay_at(recipe: Recipe, step: int) -> float:
    """The decay of the update made by step ``step`` (0-based): :func:`ema_decay`, warmed up if asked."""
    decay = ema_decay(recipe)
    return min(decay, (1 + step) / (10 + step)) if recipe.train.ema_warmup else decay


def initial_weight_share(recipe: Recipe) -> float:
    """The initial weights' share of the average after ``train.max_steps`` updates: the product of the decays.

    The average after t updates is prod(d) * w_0 + (the rest, from the trained weights), so this is how much of
    the untrained model ``gvae generate`` would still decode with at the end of the run.
    """
    log_share = 0.0
    for step in range(recipe.train.max_steps):
        decay = ema_decay_at(recipe, step)
        if decay == 0.0:
            return 0.0
        log_share += math.log(decay)
    return math.exp(log_share)


def moved_schedules(old: Recipe, new: Recipe) -> list[str]:
    """What changes, from the resumed step on, when a run written with ``old`` continues with ``new`` (another
    ``train.max_steps``, say): one line per budget-scaled schedule that resolves differently."""
    resolved = {"KL warm-up steps": kl_warmup_steps, "input-noise annealing steps": input_noise_anneal_steps,
                "EMA decay": lambda r: round(ema_decay(r), 6)}
    if new.model.traits.discriminator:
        resolved["discriminator start step"] = adversarial_start_step
    moved = [f"{name} {get(old)} -> {get(new)}" for name, get in resolved.items() if get(old) != get(new)]
    if new.optim.schedule == "cosine" and (old.optim.schedule, old.train.max_steps) != ("cosine", new.train.max_steps):
        moved.append(f"cosine learning rate now ends at step {new.train.max_steps}")
    return moved


def describe(recipe: Recipe) -> list[str]:
    """How the budget-aware keys resolve for this recipe, one line each, for ``gvae recipe show``."""
    steps, loss, train = recipe.train.max_steps, recipe.loss, recipe.train
    kl_rule = ("loss.kl_warmup_steps" if loss.kl_warmup_steps is not None
               else f"loss.kl_warmup_fraction {loss.kl_warmup_fraction:g} x {steps}")
    noise_rule = ("model.input_noise_anneal_steps" if recipe.model.input_noise_anneal_steps is not None
                  else f"model.input_noise_anneal_fraction {recipe.model.input_noise_anneal_fraction:g} x {steps}")
    ema_rule = ("train.ema_decay" if train.ema_decay is not None
                else f"half-life train.ema_halflife {train.ema_halflife:g} x {steps} = "
                     f"{train.ema_halflife * steps:.1f} steps")
    adv_rule = ("loss.adv_start_steps" if loss.adv_start_steps is not None
                else f"loss.adv_start_fraction {loss.adv_start_fraction:g} x {steps}")
    warmup = ", warmed up as min(decay, (1 + t) / (10 + t))" if train.ema_warmup else ""
    lr_rule = (f" after {recipe.optim.warmup_steps} warm-up steps" if recipe.optim.warmup_steps else "") + (
        "; the discriminator's from the step it joins" if recipe.optim.schedule == "cosine"
        and recipe.model.traits.discriminator and adversarial_start_step(recipe) > 0 else "")
    return [f"resolved for train.max_steps = {steps}:",
            f"  KL warm-up: {kl_warmup_steps(recipe)} steps ({kl_rule})",
            *([f"  discriminator joins at step {adversarial_start_step(recipe)} ({adv_rule})"]
              if recipe.model.traits.discriminator else []),
            f"  learning rate: {recipe.optim.schedule}{lr_rule}",
            f"  input-noise annealing: {input_noise_anneal_steps(recipe)} steps ({noise_rule})",
            f"  EMA decay: {ema_decay(recipe):.6g} per step ({ema_rule}){warmup}",
            f"  initial weights' share of the EMA at the end: {initial_weight_share(recipe):.3g}"]
