"""The eval runner: one model, one protocol, the registered metrics (:mod:`gvae.evaluation.registry`) -> the
results.json document.

Work is cut into blocks of :data:`BLOCK` images, each with its own random stream seeded by (seed, purpose,
block index) (:func:`gvae.seeding.block_generator`). When torch.distributed is initialised (``accelerate
launch``), rank r takes blocks r, r + W, ..., the blocks are gathered in order, and rank 0 computes the
set-level metrics: the results are the same for any number of processes. Rank 0 holds all generated images
in memory (N x C x H x W float32).

A class-conditional model is given the held-out images' labels wherever it encodes or decodes them (recon,
elbo, iwae, denoise), and its prior samples take labels drawn from the held-out labels (so their classes
follow the data's frequencies) from a stream of their own.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.distributed as dist

from gvae import metrics as M
from gvae.config import Recipe
from gvae.data import load_images
from gvae.defaults import EVAL_BATCH_SIZE, MSSSIM_PAIRS
from gvae.errors import GvaeError
from gvae.evaluation.protocol import Protocol
from gvae.evaluation.registry import METRICS, EvalInputs, Metric, parse_metrics
from gvae.evaluation.utility import class_names_of
from gvae.loading import in_inference_form, load_trained
from gvae.metrics.utility import UtilitySettings
from gvae.seeding import block_generator

log = logging.getLogger(__name__)

BLOCK = 64
_SAMPLES, _ELBO, _IWAE, _DENOISE, _LABELS = range(5)  # purposes, each with its own random streams


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _blockwise(n: int, fn: Callable[[slice, int], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Run ``fn(rows, block_index)`` on this rank's blocks of n rows; gather and concatenate in block order."""
    rank, world = _rank_world()
    mine = {j: {k: v.detach().cpu() for k, v in fn(slice(j * BLOCK, min(n, (j + 1) * BLOCK)), j).items()}
            for j in range(rank, math.ceil(n / BLOCK), world)}
    if world > 1:
        parts: list[dict] = [{} for _ in range(world)]
        dist.all_gather_object(parts, mine)
        mine = {j: block for part in parts for j, block in part.items()}
    if not mine:
        return {}
    ordered = [mine[j] for j in sorted(mine)]
    return {key: torch.cat([block[key] for block in ordered]) for key in ordered[0]}


class _Labelled:
    """The model seen through the metrics' model-agnostic ``encode(x)`` / ``log_px_z(x, z)`` / ``reconstruct(x)``:
    ``labels`` are those of the rows it is called on ([B]), one label (int) for any rows, or None for an
    unconditional model, which is then called without labels (any object with encode/decode/log_px_z works)."""

    def __init__(self, model, labels: torch.Tensor | int | None):
        self.model, self.labels = model, labels

    def _extra(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.labels is None:
            return ()
        if isinstance(self.labels, int):
            return (torch.full((len(x),), self.labels, dtype=torch.int64, device=x.device),)
        return (self.labels,)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.encode(x, *self._extra(x))

    def log_px_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.model.log_px_z(x, z, *self._extra(x))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.decode(self.encode(x)[0], *self._extra(x))


def _num_classes(model) -> int:
    return getattr(model, "num_classes", 0)  # models without the attribute are unconditional


def _iwae(model, x: torch.Tensor, labels: torch.Tensor, k: int, batch_size: int,
          generator: torch.Generator) -> torch.Tensor:
    """IWAE [B] of a block. The bound regroups and repeats its rows, so a conditional model's images go in one
    call per class, each with that one label."""
    if not _num_classes(model):
        return M.iwae_log_likelihood(model.encode, model.log_px_z, x, k, batch_size=batch_size, generator=generator)
    out = torch.empty(len(x), dtype=torch.float64, device=x.device)
    for label in labels.unique().tolist():
        rows = labels == label
        one = _Labelled(model, int(label))
        out[rows] = M.iwae_log_likelihood(one.encode, one.log_px_z, x[rows], k, batch_size=batch_size,
                                          generator=generator)
    return out


def _per_image_terms(model, real: torch.Tensor, labels: torch.Tensor, needed: set[str], seed: int, iwae_k: int,
                     batch_size: int, device: torch.device) -> dict[str, torch.Tensor]:
    def block(rows: slice, j: int) -> dict[str, torch.Tensor]:
        x, y = real[rows].to(device), labels[rows].to(device)
        seen = _Labelled(model, y if _num_classes(model) else None)
        reconstruct = seen.reconstruct
        out = {}
        if "recon" in needed:
            out.update({f"recon_{k}": v for k, v in M.reconstruction_errors(x, reconstruct(x)).items()})
        if "elbo" in needed:
            terms = M.elbo_terms(seen.encode, seen.log_px_z, x,
                                 generator=block_generator(seed, _ELBO, j, device=device))
            out.update({"elbo": terms["elbo"], "elbo_log_px_z": terms["log_px_z"], "elbo_kl": terms["kl"]})
        if "iwae" in needed:
            out["iwae"] = _iwae(model, x, y, iwae_k, batch_size, block_generator(seed, _IWAE, j, device=device))
        if "denoise" in needed:
            g = block_generator(seed, _DENOISE, j, device=device)
            for sigma in M.NOISE_LEVELS:
                scores = M.denoising_scores(reconstruct, x, sigma, generator=g)
                out.update({f"denoise_{k}_{sigma}": v for k, v in scores.items()})
        return out

    return _blockwise(len(real), block) if needed else {}


def check_images_fit(model, images: torch.Tensor, what: str) -> None:
    """GvaeError unless ``images`` [N, C, H, W] have the channels and resolution ``model`` makes."""
    expected = (model.channels, model.resolution, model.resolution)
    if tuple(images.shape[1:]) != expected:
        c, h, w = images.shape[1:]
        raise GvaeError(f"{what} has {c} channel(s) at {h}x{w} px but the model ({model.kind}) makes {expected[0]} "
                        f"channel(s) at {model.resolution}x{model.resolution} px; evaluate on data packed like "
                        f"its training data")


def _check(model, real: torch.Tensor, train: torch.Tensor | None, chosen: list[Metric], num_samples: int) -> None:
    for what, images in (("held-out data", real), ("training data", train)):
        if images is not None:
            check_images_fit(model, images, what)
    for metric in chosen:
        if num_samples < metric.min_generated:
            raise GvaeError(f"{metric.name} needs at least {metric.min_generated} samples, got --num-samples "
                            f"{num_samples}")
        if len(real) < metric.min_real:
            raise GvaeError(f"{metric.name} needs at least {metric.min_real} held-out images, the data has {len(real)}")
        if metric.needs_train and (train is None or len(train) < 1):
            raise GvaeError(f"{metric.name} needs training images (give --train-data)")
        if metric.needs_conditional and not _num_classes(model):
            raise GvaeError(f"{metric.name} needs a class-conditional model; this one is unconditional")


def _held_out_labels(model, real: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """The held-out labels [N] (all -1 when not given); a conditional model refuses unlabelled images."""
    labels = torch.full((len(real),), -1, dtype=torch.int64) if labels is None else labels.long().cpu()
    k = _num_classes(model)
    if k and len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise GvaeError(f"the model is class-conditional ({k} classes) but the held-out data has "
                        f"images without a label of those classes; evaluate on labelled data packed like its "
                        f"training data")
    return labels


@torch.no_grad()
def evaluate(model, real_images: torch.Tensor, train_images: torch.Tensor | None, metrics: list[str],
             num_samples: int, iwae_k: int, seed: int, features: M.Features | None = None,
             batch_size: int = EVAL_BATCH_SIZE, temperature: float = 1.0, msssim_pairs: int = MSSSIM_PAIRS,
             device: str | torch.device = "cpu", real_labels: torch.Tensor | None = None,
             train_labels: torch.Tensor | None = None, class_names: tuple[str, ...] | None = None,
             utility: UtilitySettings | None = None) -> dict[str, dict]:
    """Evaluate ``model`` and return the results.json "metrics" mapping (on rank 0; {} on other ranks).

    ``real_images`` [N, C, H, W] in [0, 1] are held-out images (per-image metrics use all of them);
    ``train_images`` (or None) are for memorisation; ``metrics`` are :data:`METRICS` names; ``num_samples``
    images are drawn from the prior at ``temperature``; ``iwae_k`` importance samples per image; ``features``
    is the feature network for fid/kid/isc/prc. ``real_labels`` int64 [N] (-1: none) are the held-out images'
    labels, which a conditional model needs (see the module docstring). utility reads the labels of both image
    sets, the data's ``class_names`` and its ``utility`` settings. Raises GvaeError for data the model cannot
    have made, for too few images for a metric and for a conditional model without held-out labels.
    """
    chosen = [METRICS[name] for name in metrics]
    _check(model, real_images, train_images, chosen, num_samples)
    if any(m.needs_feature_weights for m in chosen) and features is None:
        raise GvaeError(f"{', '.join(m.name for m in chosen if m.needs_feature_weights)} need a feature network "
                        f"(give --feature-weights)")
    if any(m.needs_classifier for m in chosen):
        M.check_classifier(features)
    device = torch.device(device)
    needed = {term for m in chosen for term in m.per_image}
    labels = _held_out_labels(model, real_images, real_labels)
    per_image = _per_image_terms(model, real_images, labels, needed, seed, iwae_k, batch_size, device)
    if any(m.min_generated for m in chosen):
        def draw(rows: slice, j: int) -> dict[str, torch.Tensor]:
            n = rows.stop - rows.start
            extra = {}
            if _num_classes(model):  # classes with the held-out images' frequencies
                picks = torch.randint(len(labels), (n,), generator=block_generator(seed, _LABELS, j))
                extra["labels"] = labels[picks]
            return {"x": model.sample(n, generator=block_generator(seed, _SAMPLES, j, device=device),
                                      temperature=temperature, **extra), **extra}

        drawn = _blockwise(num_samples, draw)
        generated, generated_labels = drawn["x"].float(), drawn.get("labels")
    else:
        generated, generated_labels = torch.empty(0, *real_images.shape[1:]), None
    if _rank_world()[0] != 0:
        return {}
    inputs = EvalInputs(generated, real_images, train_images, per_image, seed, iwae_k,
                        dims=math.prod(real_images.shape[1:]), features=features, msssim_pairs=msssim_pairs,
                        device=device, fidelity=tuple(m.name for m in chosen if m.needs_features), model=model,
                        real_labels=real_labels, train_labels=train_labels, class_names=class_names,
                        utility=utility, generated_labels=generated_labels, temperature=temperature)
    results: dict[str, dict] = {}
    for metric in chosen:
        log.info("computing %s", metric.name)
        results.update(metric.compute(inputs))
    return results


def _train_spec(protocol: Protocol, recipe: Recipe) -> str:
    if protocol.train_data:
        return protocol.train_data
    if Path(protocol.data).is_dir():
        return protocol.data
    if not recipe.data.train:
        raise GvaeError("memorization and utility need training images; give --train-data")
    return recipe.data.train


def _inapplicable(names: list[str], model, real: int, samples: int) -> dict[str, str]:
    """The metrics that ``model`` is not for, or that ``real`` held-out images or ``samples`` generated ones are
    too few for, with why."""
    reasons = {}
    for name in names:
        metric = METRICS[name]
        if metric.needs_conditional and not _num_classes(model):
            reasons[name] = "needs a class-conditional model"
        elif real < metric.min_real:
            reasons[name] = f"needs at least {metric.min_real} held-out images, the data has {real}"
        elif samples < metric.min_generated:
            reasons[name] = f"needs at least {metric.min_generated} samples, got --num-samples {samples}"
    return reasons


def check_memory(protocol: Protocol, model, max_gib: float, names: list[str]) -> None:
    """Refuse, before anything is drawn, an evaluation whose images would not fit in ``max_gib`` GiB: rank 0
    holds the held-out images and, where the metrics ``names`` read them, the generated and training images at
    once as float32 (10,000 samples of 1024 px RGB are ~126 GB). The count is an upper bound: fewer held-out or
    training images may exist than asked for."""
    chosen = [METRICS[name] for name in names]
    per_image = 4 * model.channels * model.resolution ** 2
    images = (protocol.num_real + protocol.num_samples * any(m.min_generated for m in chosen)
              + protocol.num_train * any(m.needs_train for m in chosen))
    need = images * per_image / 2 ** 30
    if need > max_gib:
        raise GvaeError(f"this evaluation holds up to {need:.3g} GiB of images in memory ({images:,} images of "
                        f"{model.channels}x{model.resolution}x{model.resolution} float32), over --max-memory "
                        f"{max_gib:g} GiB; lower --num-samples, --num-real or --num-train, or raise --max-memory")


def run_evaluation(source: str, protocol: Protocol, device: str | torch.device = "cpu",
                   max_memory_gib: float = float("inf")) -> dict:
    """Load the checkpoint and the data, evaluate, and return the whole results.json document (rank 0).

    With ``all`` among the metrics, a metric whose inputs are missing or too few (feature weights, training
    images, held-out images or samples below its minimum) is left out and listed under "skipped" with the
    reason; otherwise it is an error.
    """
    from gvae import temperature_choice

    names = parse_metrics(protocol.metrics)
    explicit = "all" not in {name.strip() for name in protocol.metrics.split(",")}
    temperature_choice.check(protocol.temperature, "temperature")
    if "utility" in names:  # bad settings fail before loading; a chosen temperature is only known after, 1 till then
        replace(protocol, temperature=temperature_choice.DEFAULT if protocol.temperature == temperature_choice.CHOSEN
                else protocol.temperature).utility_settings()
    skipped: dict[str, str] = {}
    loaded = load_trained(source, ema=True, device=device)
    sampling = replace(protocol, temperature=temperature_choice.resolve(protocol.temperature, loaded))
    utility = sampling.utility_settings() if "utility" in names else None
    model = in_inference_form(loaded.model)
    check_memory(protocol, model, max_memory_gib, names)
    real, real_labels = load_images(protocol.data, split="val", limit=protocol.num_real)
    if not explicit:
        skipped.update(_inapplicable(names, model, len(real), protocol.num_samples))
        names = [n for n in names if n not in skipped]

    def optional(needs: Callable[[Metric], bool], load: Callable[[], object]):
        """``load()`` what the chosen metrics with ``needs(metric)`` read (None when none does); with ``all``, its
        GvaeError leaves those metrics out under "skipped" with the reason, and None is returned."""
        if not any(needs(METRICS[n]) for n in names):
            return None
        try:
            return load()
        except GvaeError as err:
            if explicit:
                raise
            skipped.update({n: str(err) for n in names if needs(METRICS[n])})
            return None

    features = optional(lambda m: m.needs_feature_weights, lambda: M.resolve_features(protocol.feature_weights))
    if features is not None:
        optional(lambda m: m.needs_classifier, lambda: M.check_classifier(features))
    train, train_labels = optional(lambda m: m.needs_train, lambda: load_images(
        _train_spec(protocol, loaded.recipe), split="train", limit=protocol.num_train)) or (None, None)
    names = [n for n in names if n not in skipped]
    results = evaluate(model, real, train, names, protocol.num_samples, protocol.iwae_k, protocol.seed,
                       features=features, batch_size=protocol.batch_size, temperature=sampling.temperature,
                       msssim_pairs=protocol.msssim_pairs, device=device, real_labels=real_labels,
                       train_labels=train_labels, class_names=class_names_of(protocol.data), utility=utility)
    model_info = {k: getattr(model, k, None) for k in ("kind", "latent_dim", "resolution", "channels",
                                                        "class_names")}
    return {"checkpoint": str(loaded.checkpoint), "data": protocol.data,
            "protocol": {**asdict(protocol), "temperature_used": sampling.temperature, "evaluated": names,
                         "world_size": _rank_world()[1], "model": model_info},
            "metrics": results, "skipped": skipped}


