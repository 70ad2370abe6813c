"""The evaluation protocol: how a model is evaluated, recorded in every results.json so that two results can
be compared (a leaderboard reuses a cached result only under the same protocol)."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from gvae.defaults import (
    EVAL_BATCH_SIZE,
    EVAL_IWAE_K,
    EVAL_NUM_REAL,
    EVAL_NUM_SAMPLES,
    EVAL_NUM_TRAIN,
    MSSSIM_PAIRS,
    UTILITY_KS,
    UTILITY_MIX_RATIO,
    UTILITY_SEEDS,
    UTILITY_STEPS,
    UTILITY_SYNTHETIC_PER_CLASS,
)
from gvae.metrics.utility import UtilitySettings


@dataclass
class Protocol:
    """How a model is evaluated (the fields of ``gvae eval run``'s options)."""

    data: str  # held-out images: a packed dataset dir (its val split) or a shard pattern
    metrics: str = "all"
    num_samples: int = EVAL_NUM_SAMPLES
    iwae_k: int = EVAL_IWAE_K
    seed: int = 0
    feature_weights: str | None = None
    train_data: str | None = None  # default: the train split of a packed --data dir, else the run's data.train
    num_real: int = EVAL_NUM_REAL  # held-out images read (at most)
    num_train: int = EVAL_NUM_TRAIN  # training images read for memorisation and utility (at most)
    temperature: float | str = 1.0  # or "chosen": each run's own (gvae.temperature_choice), recorded as used
    batch_size: int = EVAL_BATCH_SIZE
    msssim_pairs: int = MSSSIM_PAIRS
    utility_k: list[int] = field(default_factory=lambda: list(UTILITY_KS))  # real images per class
    utility_seeds: int = UTILITY_SEEDS  # classifier seeds (repetitions)
    utility_mix_ratio: float = UTILITY_MIX_RATIO  # synthetic images per real image in a training batch
    utility_synthetic_per_class: int = UTILITY_SYNTHETIC_PER_CLASS  # images per class the model makes
    utility_steps: int = UTILITY_STEPS  # optimizer steps per classifier

    def utility_settings(self) -> UtilitySettings:
        return UtilitySettings(ks=tuple(self.utility_k), seeds=self.utility_seeds, seed=self.seed,
                               mix_ratio=self.utility_mix_ratio, synthetic_per_class=self.utility_synthetic_per_class,
                               steps=self.utility_steps, temperature=self.temperature)


def protocol_defaults() -> dict[str, Any]:
    """Every field's default: what a results.json made before a field existed was measured with."""
    return {f.name: f.default_factory() if f.default_factory is not MISSING else f.default for f in fields(Protocol)}
