"""ADA's controller of the augmentation probability p (Karras et al., 2020, section 3).

The discriminator's overfitting shows in r_t = E[sign(D(real))]: near 0 while it still doubts real images,
near 1 once it has memorised them. Every ``augment.interval`` steps the controller compares the r_t measured
over those steps with ``augment.target`` and moves p by (images seen in those steps) / ``augment.speed_images``
towards more augmentation if r_t is above the target, less if below, clamped to [0, 1].

p and the running sum are training state: :meth:`state_dict` goes into the checkpoint so that a resumed run
adapts exactly as an uninterrupted one. Under several processes the loop feeds every rank the same
(all-reduced) r_t, so every rank holds the same p.
"""

from __future__ import annotations

from gvae.config import AugmentConfig, Recipe
from gvae.models.augment import DiscriminatorAugment


class AdaptiveProbability:
    """p adjusted from the discriminator's mean sign on reals; ``images_per_step`` over all processes."""

    def __init__(self, cfg: AugmentConfig, images_per_step: int):
        self.p = cfg.p
        self.target = cfg.target
        self.interval = cfg.interval
        self.step_size = images_per_step * cfg.interval / cfg.speed_images
        self.sign_sum = 0.0  # sum over the steps since the last adjustment of each step's mean sign(D(real))
        self.steps = 0

    def observe(self, d_real_sign: float) -> float:
        """Record one step's mean sign(D(real)) in [-1, 1]; adjust p at the end of an interval. Returns p."""
        self.sign_sum += d_real_sign
        self.steps += 1
        if self.steps == self.interval:
            estimate = self.sign_sum / self.steps
            direction = (estimate > self.target) - (estimate < self.target)  # sign(estimate - target)
            self.p = min(1.0, max(0.0, self.p + direction * self.step_size))
            self.sign_sum, self.steps = 0.0, 0
        return self.p

    def state_dict(self) -> dict[str, float | int]:
        return {"p": self.p, "sign_sum": self.sign_sum, "steps": self.steps}

    def load_state_dict(self, state: dict[str, float | int]) -> None:
        self.p, self.sign_sum, self.steps = float(state["p"]), float(state["sign_sum"]), int(state["steps"])


def build_augment(recipe: Recipe, images_per_step: int
                  ) -> tuple[DiscriminatorAugment | None, AdaptiveProbability | None]:
    """The discriminator's augmentation and its adaptive controller; None for what the recipe leaves off."""
    cfg = recipe.augment
    if not cfg.policy:
        return None, None
    adaptive = AdaptiveProbability(cfg, images_per_step) if cfg.target > 0 else None
    return DiscriminatorAugment(cfg.policy, cfg.p, cfg.translation, cfg.cutout), adaptive
