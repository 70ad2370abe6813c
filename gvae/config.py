"""Typed recipes: YAML files validated once, at load time, into dataclasses.

A recipe has seven sections (``data``, ``model``, ``loss``, ``optim``, ``train``, ``log``, ``augment``). A
recipe file may name a parent with ``extends: other.yaml`` (resolved relative to the file); its keys override
the parent's.
Command-line overrides are dotted ``KEY=VALUE`` pairs whose value is parsed as YAML and then checked against
the field's type, so ``train.max_steps=20`` and ``optim.betas=[0.5,0.99]`` both work.

Every problem raises :class:`gvae.errors.GvaeError` naming the key, what was given, and what is valid.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from gvae.errors import GvaeError


@dataclass
class DataConfig:
    """Where the shards are and how they are read."""

    train: str = ""  # shard pattern, list file, URL, or a packed dataset dir (its train split)
    val: str = ""  # same; a packed dataset dir means its val split
    resolution: int = 64  # pixels per side; must match the shards
    channels: int = 1  # 1 (grey, CT/MR) or 3 (RGB)
    hflip: bool = False  # random horizontal flips while training
    workers: int = 2  # dataloader workers per process
    shuffle_buffer: int = 1000  # samples held for shuffling
    epoch_samples: int = 0  # samples per epoch over all ranks; 0 takes the count from dataset.json

    _ranges = {"resolution": (16, 4096), "channels": (1, 3), "workers": (0, 64), "shuffle_buffer": (0, None),
               "epoch_samples": (0, None)}


@dataclass(frozen=True)
class KindTraits:
    """What the models of one ``model.kind`` are made of, so that code asks for the capability it means instead of
    comparing kind names. A built model answers the same questions (``has_discriminator``, ``takes_input_noise``,
    ``uses_feature_matching`` of :class:`gvae.models.core.GenerativeModel`); this table serves the code that
    runs before a model exists (validation, the choice of accelerators, schedules)."""

    discriminator: bool = False  # trained against a discriminator: a second player with its own optimizer
    input_noise: bool = False  # the encoder sees x + model.input_noise * eps while training
    feature_matching: bool = False  # the reconstruction is also measured in the discriminator's features


KIND_TRAITS = {
    "gvae": KindTraits(discriminator=True, input_noise=True),
    "vae": KindTraits(),
    "vae-dense": KindTraits(),
    "vaegan": KindTraits(discriminator=True, feature_matching=True),
    "colorize": KindTraits(),  # not a generative model: see gvae.colorize
}


@dataclass
class ModelConfig:
    """The network. Channel width at a feature map of side s is clamp(channel_base // s, channel_min, channel_max).

    The default widths (16 channels at 64 px, 64 at 8x8 and 4x4) are sized for 2 CPU cores; GPU recipes widen
    them (e.g. channel_base 16384, channel_max 512).
    """

    kind: Literal["gvae", "vae", "vae-dense", "vaegan", "colorize"] = "gvae"  # colorize: grey-to-colour, see gvae.colorize
    latent_dim: int = 128
    channel_base: int = 512
    channel_min: int = 16
    channel_max: int = 64
    blocks_per_level: int = 1
    kernel_size: int = 3  # side of the two convolutions in every residual block (odd: the map keeps its size)
    norm: Literal["batch", "group", "none"] = "batch"
    dropout: float = 0.3
    dense_dropout: float = 0.0  # vae-dense: dropout after each hidden layer (model.dropout is the conv blocks')
    activation: Literal["leaky_relu", "relu", "silu"] = "leaky_relu"
    pooling: Literal["max", "avg"] = "max"
    likelihood: Literal["gaussian", "bernoulli"] = "gaussian"
    input_noise: float = 0.05  # sigma_x: std of the noise added to the encoder's input image
    input_noise_anneal_steps: int | None = None  # linearly anneal input_noise to 0 over this many steps (0: constant)
    input_noise_anneal_fraction: float = 0.0  # ... or, when that is null, over this fraction of train.max_steps
    latent_noise: float = 0.0  # std of the noise added to z at the generator's input
    # standardise the posterior means over the batch, per latent dimension (BatchNorm without affine terms):
    # the codes then sit at the prior's centre and scale, so prior samples land where the generator was trained
    latent_norm: bool = False
    # the generator's blocks also read each pixel's coordinates (CoordConv; see gvae.models.blocks.AddCoords)
    coord_channels: bool = False
    dense_hidden: list[int] = field(default_factory=lambda: [512, 256])  # vae-dense hidden widths
    # class-conditional: encoder, generator and discriminator see the label (see gvae.models.conditioning);
    # the classes come from the training data's dataset.json label_names when training starts
    conditional: bool = False
    # conditional only: a prior per class, p(z|y) = N(m_y, I) with m_y the average code of class y, and an
    # encoder that sees the image alone, so class-y prior samples are drawn where class-y codes are (see
    # gvae.models.conditioning); off, the encoder sees the label and the prior is N(0, I) for every class (a CVAE)
    class_prior: bool = False
    class_names: list[str] = field(default_factory=list)  # filled in from the data; index = label
    class_counts: list[int] = field(default_factory=list)  # training images per class, from the data

    @property
    def traits(self) -> KindTraits:
        """What a model of this kind is made of (see :class:`KindTraits`)."""
        return KIND_TRAITS[self.kind]

    _ranges = {"latent_dim": (1, 65536), "channel_base": (1, None), "channel_min": (1, None),
               "channel_max": (1, None), "blocks_per_level": (1, 16), "kernel_size": (1, 15),
               "dropout": (0.0, 0.99),
               "input_noise": (0.0, None), "input_noise_anneal_steps": (0, None),
               "input_noise_anneal_fraction": (0.0, 1.0), "latent_noise": (0.0, None),
               "dense_dropout": (0.0, 0.99)}


@dataclass
class LossConfig:
    """Weights of the loss terms. The reconstruction term is the likelihood's negative log-density (nats)."""

    beta: float = 1.0  # weight of KL(q(z|x) || N(0, I))
    kl_warmup_steps: int | None = None  # linearly raise beta from 0 over this many steps (wins over the fraction)
    kl_warmup_fraction: float = 0.0  # ... or, when kl_warmup_steps is null, over this fraction of train.max_steps
    adv_weight: float = 0.05  # adversarial term for encoder+generator (gvae, vaegan), per pixel value (x C*H*W)
    # the discriminator joins at this step; before it, encoder+generator train alone, as a VAE (wins over the
    # fraction; see gvae.budget)
    adv_start_steps: int | None = None
    adv_start_fraction: float = 0.0  # ... or, when adv_start_steps is null, after this fraction of train.max_steps
    adv_loss: Literal["nonsat", "hinge"] = "nonsat"
    r1_gamma: float = 0.0  # R1 gradient penalty on real images (0: off)
    feature_weight: float = 1.0  # feature-space reconstruction error (see feature_matching), per pixel value (x C*H*W)
    # also measure the reconstruction in the discriminator's 8x8 features, as the VAE-GAN does (Larsen et al.,
    # 2016); null: the kind's own choice (on for vaegan, off for gvae). Needs a discriminator.
    feature_matching: bool | None = None
    pixel_weight: float = 1.0  # weight of the pixel likelihood term
    # conditional models: a classifier of the data's classes (gvae eval train-features), frozen, that judges every
    # prior sample against its label; label_weight * C*H*W * its cross-entropy joins the generator's loss
    label_classifier: str | None = None
    label_weight: float = 0.0

    _ranges = {"beta": (0.0, None), "kl_warmup_steps": (0, None), "kl_warmup_fraction": (0.0, 1.0),
               "adv_weight": (0.0, None), "adv_start_steps": (0, None), "adv_start_fraction": (0.0, 1.0),
               "r1_gamma": (0.0, None), "feature_weight": (0.0, None),
               "pixel_weight": (0.0, None), "label_weight": (0.0, None)}


@dataclass
class OptimConfig:
    """One optimizer for encoder+generator, one for the discriminator."""

    name: Literal["adam", "sgd"] = "adam"
    lr: float = 2e-4
    d_lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    momentum: float = 0.9  # sgd only
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: Literal["constant", "cosine"] = "constant"
    grad_clip: float = 0.0  # max global grad norm per model; 0: no clipping

    _ranges = {"lr": (0.0, None), "d_lr": (0.0, None), "momentum": (0.0, 1.0), "weight_decay": (0.0, None),
               "warmup_steps": (0, None), "grad_clip": (0.0, None)}


@dataclass
class TrainConfig:
    """The schedule of a run."""

    batch_size: int = 64  # per process
    max_steps: int = 10000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    seed: int = 0
    max_bad_steps: int = 20  # consecutive non-finite steps before the run stops
    mixed_precision: Literal["no", "bf16", "fp16"] = "no"
    # keep every network and image batch in channels-last memory layout (NHWC), which the CPU's oneDNN
    # convolutions run faster: 1.5x the demo's steps per second (benchmarks/memory_format.py); the same
    # arithmetic, so without dropout runs differ from the default layout only in float rounding (dropout's
    # masks fill memory in layout order, so with it they land on other elements)
    channels_last: bool = False
    grad_accum: int = 1
    # the weight average (see gvae.budget): a fixed decay per step, or (null) the decay whose half-life is
    # ema_halflife x max_steps, so that the initial weights' share at the end is 2^(-1/ema_halflife)
    ema_decay: float | None = None
    ema_halflife: float = 0.05  # a fraction of train.max_steps
    ema_warmup: bool = True  # decay at step t: min(decay, (1 + t) / (10 + t)), so early averages follow the weights
    # training images on which the EMA model's BatchNorm statistics are re-estimated before it is saved or
    # sampled (0: keep the live model's statistics, which describe other weights)
    ema_bn_images: int = 256

    _ranges = {"batch_size": (1, None), "max_steps": (1, None), "checkpoint_every": (1, None),
               "keep_checkpoints": (1, None), "max_bad_steps": (1, None), "grad_accum": (1, None),
               "ema_decay": (0.0, 1.0), "ema_halflife": (0.0, None), "ema_bn_images": (0, None)}


@dataclass
class LogConfig:
    """What a run writes while it trains."""

    every: int = 10  # steps between metrics.jsonl lines
    sample_every: int = 500  # steps between sample grids
    num_samples: int = 32  # prior samples (and as many reconstructions) per grid
    tensorboard: bool = True  # TensorBoard events in RUN/tensorboard (the same as naming it in trackers)
    # experiment trackers through accelerate, each needing its pip package: tensorboard, wandb, mlflow,
    # comet_ml, aim, clearml, dvclive, swanlab, trackio; metrics.jsonl is written whatever this says
    trackers: list[Literal["tensorboard", "wandb", "mlflow", "comet_ml", "aim", "clearml", "dvclive", "swanlab",
                           "trackio"]] = field(default_factory=list)
    # on logging steps: D accuracies, per-term gradient norms (extra backward passes), posterior health
    diagnostics: bool = True

    _ranges = {"every": (1, None), "sample_every": (1, None), "num_samples": (1, 1024)}


@dataclass
class AugmentConfig:
    """Differentiable augmentation of every image the discriminator sees (DiffAugment; ADA's adaptive p).

    Off (an empty policy) by default. With ``target`` > 0, p starts at ``p`` and every ``interval`` steps moves
    by sign(mean sign(D(real)) - target) * images_seen / ``speed_images``, clamped to [0, 1].
    """

    policy: list[Literal["translation", "cutout", "flip", "brightness", "contrast", "saturation"]] = field(
        default_factory=list)  # ops applied in this order; flip only where mirror images are valid data
    p: float = 1.0  # probability of each op per image; with target > 0, the value p starts from
    target: float = 0.0  # ADA's r_t: the wanted mean of sign(D(real)); 0: p stays fixed
    speed_images: int = 50000  # images over which the adaptive p can go from 0 to 1 (ADA: 500,000)
    interval: int = 4  # steps between adjustments of the adaptive p
    translation: float = 0.125  # largest shift, as a fraction of the image side
    cutout: float = 0.5  # side of the zeroed square, as a fraction of the image side

    _ranges = {"p": (0.0, 1.0), "target": (0.0, 1.0), "speed_images": (1, None), "interval": (1, None),
               "translation": (0.0, 0.5), "cutout": (0.0, 1.0)}


@dataclass
class Recipe:
    """A whole recipe: what to train on, what to train, and how."""

    name: str = "unnamed"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


SECTIONS = {f.name: f.type for f in dataclasses.fields(Recipe) if f.name != "name"}


def _section_classes() -> dict[str, type]:
    hints = typing.get_type_hints(Recipe)
    return {name: hints[name] for name in SECTIONS}


def valid_keys() -> list[str]:
    """Every dotted key a recipe accepts, for error messages and ``--help``."""
    keys = ["name"]
    for section, cls in _section_classes().items():
        keys += [f"{section}.{f.name}" for f in dataclasses.fields(cls)]
    return keys


def _unknown_key(key: str) -> GvaeError:
    close = difflib.get_close_matches(key, valid_keys(), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else "valid keys: " + ", ".join(valid_keys())
    return GvaeError(f"{key}: unknown key; {hint}")


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the type ``hint`` and convert where that is lossless (int -> float)."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise GvaeError(f"{key}: got {value!r}; choose one of {', '.join(map(str, choices))}")
        return value
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1]
        if not isinstance(value, (list, tuple)):
            what = item.__name__ if isinstance(item, type) else "values from " + ", ".join(typing.get_args(item))
            raise GvaeError(f"{key}: got {value!r}; expected a list of {what}")
        return [_coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return None if value is None else _coerce(key, value, args[0])
    if hint is bool:
        if not isinstance(value, bool):
            raise GvaeError(f"{key}: got {value!r}; expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise GvaeError(f"{key}: got {value!r}; expected an integer")
        return value
    if hint is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GvaeError(f"{key}: got {value!r}; expected a number")
        if not math.isfinite(value):  # NaN passes every range check, since it compares False
            raise GvaeError(f"{key}: got {value!r}; expected a finite number")
        return float(value)
    if hint is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)):
            raise GvaeError(f"{key}: got {value!r}; expected a string")
        return str(value)
    raise TypeError(f"unsupported recipe field type {hint!r} for {key}")


def _check_range(key: str, value: Any, bounds: tuple[Any, Any]) -> None:
    low, high = bounds
    if value is None:  # an optional key left unset
        return
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"{low} to {high}" if high is not None else f">= {low}"
        raise GvaeError(f"{key}: got {value!r}; must be {span}")


def _build_section(section: str, cls: type, values: dict[str, Any]):
    if not isinstance(values, dict):
        raise GvaeError(f"{section}: expected a mapping of keys, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        dotted = f"{section}.{key}"
        if key not in names:
            raise _unknown_key(dotted)
        kwargs[key] = _coerce(dotted, value, hints[key])
        if key in cls._ranges:
            _check_range(dotted, kwargs[key], cls._ranges[key])
    return cls(**kwargs)


def _validate_across_sections(recipe: Recipe) -> None:
    r = recipe.data.resolution
    if r & (r - 1) and recipe.model.kind != "vae-dense":
        raise GvaeError(f"data.resolution: got {r}; convolutional models need a power of two (32, 64, ..., 1024)")
    if recipe.data.channels not in (1, 3):
        raise GvaeError(f"data.channels: got {recipe.data.channels}; must be 1 or 3")
    if recipe.model.kind == "colorize" and recipe.data.channels != 3:
        raise GvaeError(f"data.channels: got {recipe.data.channels}; model.kind colorize learns colour from RGB "
                        "images (data.channels=3)")
    if recipe.model.kernel_size % 2 == 0:
        raise GvaeError(f"model.kernel_size: got {recipe.model.kernel_size}; must be odd (1, 3, 5, ...) so that "
                        "a convolution keeps the feature map's size")
    if recipe.model.channel_min > recipe.model.channel_max:
        raise GvaeError(
            f"model.channel_min: got {recipe.model.channel_min}; must not exceed model.channel_max "
            f"({recipe.model.channel_max})")
    if (recipe.model.class_names or recipe.model.class_counts) and not recipe.model.conditional:
        raise GvaeError("model.class_names: set for an unconditional model; they belong to model.conditional: true "
                        "(and are read from the training data)")
    if recipe.model.class_prior and not recipe.model.conditional:
        raise GvaeError("model.class_prior: true is a prior per class, for model.conditional: true; set both or "
                        "neither")
    if recipe.model.class_counts and len(recipe.model.class_counts) != len(recipe.model.class_names):
        raise GvaeError(f"model.class_counts: {len(recipe.model.class_counts)} counts for "
                        f"{len(recipe.model.class_names)} model.class_names")
    if recipe.optim.name == "adam" and (len(recipe.optim.betas) != 2 or
                                        not all(0 <= b < 1 for b in recipe.optim.betas)):
        raise GvaeError(f"optim.betas: got {recipe.optim.betas}; expected two numbers in [0, 1), e.g. [0.5, 0.999]")


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """The mapping in YAML file ``path`` (empty file: {}); ``what`` names the file in the one-line errors."""
    if not path.is_file():
        raise GvaeError(f"{what} {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise GvaeError(f"{what} {path} is not UTF-8 text") from None
    except yaml.YAMLError as err:
        raise GvaeError(f"{what} {path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise GvaeError(f"{what} {path}: expected a mapping at the top level")
    return raw


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a recipe file and merge it over the chain of files it ``extends``."""
    path = path.resolve()
    if path in seen:
        raise GvaeError(f"{path}: extends itself through {' -> '.join(map(str, seen))}")
    raw = read_yaml_mapping(path, "recipe")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str):
        raise GvaeError(f"{path}: extends: got {parent!r}; expected the path of another recipe file")
    base = _read_yaml(path.parent / parent, (*seen, path))
    return _deep_merge(base, raw)


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b=value`` into (["a", "b"], parsed value); the value is read as YAML (``20``, ``[1,2]``)."""
    if "=" not in text:
        raise GvaeError(f"override {text!r}: expected KEY=VALUE, e.g. train.max_steps=20")
    key, _, raw = text.partition("=")
    key = key.strip()
    if not key:
        raise GvaeError(f"override {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(values: dict[str, Any], overrides: typing.Iterable[str]) -> dict[str, Any]:
    """Return a copy of the raw recipe mapping with dotted overrides applied."""
    merged = _deep_merge({}, values)
    for text in overrides:
        parts, value = parse_override(text)
        if len(parts) == 1 and parts[0] == "name":
            merged["name"] = value
            continue
        if len(parts) != 2 or parts[0] not in SECTIONS:
            raise _unknown_key(".".join(parts))
        section = merged.setdefault(parts[0], {})
        if not isinstance(section, dict):
            raise GvaeError(f"{parts[0]}: expected a mapping of keys, got {section!r}")
        section[parts[1]] = value
    return merged


def uses_feature_matching(recipe: Recipe) -> bool:
    """Whether the generator's loss also measures reconstructions in the discriminator's features: the recipe's
    ``loss.feature_matching``, or the kind's own choice when that is null."""
    chosen = recipe.loss.feature_matching
    return recipe.model.traits.feature_matching if chosen is None else chosen


def _validate_label_loss(recipe: Recipe) -> None:
    loss = recipe.loss
    if loss.label_weight > 0 and not recipe.model.conditional:
        raise GvaeError("loss.label_weight: judges prior samples against the labels they were drawn with, for "
                        "model.conditional: true; set both or neither")
    if loss.label_weight > 0 and not loss.label_classifier:
        raise GvaeError("loss.label_weight: give loss.label_classifier, a classifier of the data's classes "
                        "(gvae eval train-features --data DATA --out FILE)")
    if loss.label_classifier and loss.label_weight == 0:
        raise GvaeError("loss.label_classifier: used only with loss.label_weight > 0; set a weight or drop it")


def _validate_feature_matching(recipe: Recipe) -> None:
    if recipe.loss.feature_matching and not recipe.model.traits.discriminator:
        raise GvaeError(f"loss.feature_matching: model.kind {recipe.model.kind} has no discriminator whose features "
                        "could measure the reconstruction")


def _validate_augment(recipe: Recipe) -> None:
    aug = recipe.augment
    repeated = [op for i, op in enumerate(aug.policy) if op in aug.policy[:i]]
    if repeated:
        raise GvaeError(f"augment.policy: {repeated[0]} is listed twice")
    if aug.policy and not recipe.model.traits.discriminator:
        raise GvaeError(f"augment.policy: model.kind {recipe.model.kind} has no discriminator to augment for")
    if "saturation" in aug.policy and recipe.data.channels != 3:
        raise GvaeError("augment.policy: saturation is a colour op and data.channels is 1; remove it")
    if aug.target > 0 and not aug.policy:
        raise GvaeError(f"augment.target: got {aug.target}; adapting p needs ops in augment.policy")


def recipe_from_dict(values: dict[str, Any]) -> Recipe:
    """Validate a raw mapping (as read from YAML) into a :class:`Recipe`."""
    sections = {}
    for key, value in values.items():
        if key == "name":
            continue
        if key not in SECTIONS:
            raise _unknown_key(key)
        sections[key] = _build_section(key, _section_classes()[key], value or {})
    recipe = Recipe(name=str(values.get("name", "unnamed")), **sections)
    _validate_across_sections(recipe)
    _validate_augment(recipe)
    _validate_feature_matching(recipe)
    _validate_label_loss(recipe)
    return recipe


def load_recipe(path: str | Path, overrides: typing.Iterable[str] = ()) -> Recipe:
    """Load, merge (``extends``), override and validate a recipe file."""
    path = Path(path)
    values = _read_yaml(path)
    values.setdefault("name", path.stem)
    return recipe_from_dict(apply_overrides(values, overrides))


# the sections every run's config.yaml has held; later ones (augment) may be absent from older runs
RUN_SECTIONS = ("data", "model", "loss", "optim", "train", "log")


def recipe_from_yaml_text(text: str) -> Recipe:
    """Rebuild a recipe from the ``config.yaml`` a run wrote (the resolved recipe).

    A resolved recipe names every section, so a missing one means the file was cut short (a cut can leave
    valid YAML, which would otherwise rebuild another model from defaults)."""
    values = yaml.safe_load(text) or {}
    missing = [section for section in RUN_SECTIONS if not isinstance(values, dict) or section not in values]
    if missing:
        raise GvaeError(f"config.yaml has no {missing[0]} section: it is cut short or not a resolved recipe")
    return recipe_from_dict(values)
