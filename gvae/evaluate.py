"""The eval runner: one model, one protocol, every metric of :mod:`gvae.metrics` -> the results.json mapping.

A metric is a named entry of :data:`METRICS` that reads what it needs from an :class:`EvalInputs` (generated
samples, held-out real images, training images, per-image likelihood terms) and returns result entries
``{"<name>": {"value": float, "std": float | None, "n": int, "unit": str, "better": "higher"|"lower", ...}}``.
``std`` is the standard error of the mean for per-image averages and the spread over subsets or splits for
set-level metrics (the entry says which in ``std_of``).

Work is cut into blocks of :data:`BLOCK` images, each with its own random stream seeded by (seed, purpose,
block index). When torch.distributed is initialised (``accelerate launch``), rank r takes blocks r, r + W,
..., the blocks are gathered in order, and rank 0 computes the set-level metrics: the results are the same
for any number of processes. Rank 0 holds all generated images in memory (N x C x H x W float32).

A class-conditional model is given the held-out images' labels wherever it encodes or decodes them (recon,
elbo, iwae, denoise), and its prior samples take labels drawn from the held-out labels (so their classes
follow the data's frequencies) from a stream of their own.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from gvae import metrics as M
from gvae.config import Recipe
from gvae.data import load_images
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
from gvae.errors import GvaeError
from gvae.fileio import write_json_atomic
from gvae.loading import load_trained
from gvae.metrics.fidelity import ISC_SPLITS, KID_SUBSETS, PRC_NEIGHBORHOOD
from gvae.metrics.utility import LabelledImages, UtilitySettings, utility_scores
from gvae.utility import class_names_of, model_source

log = logging.getLogger(__name__)

BLOCK = 64
_SAMPLES, _ELBO, _IWAE, _DENOISE, _LABELS = range(5)  # purposes, each with its own random streams


@dataclass
class EvalInputs:
    """What the metrics read: generated and real images [N, C, H, W] in [0, 1] and per-image model terms."""

    generated: torch.Tensor
    real: torch.Tensor
    train: torch.Tensor | None
    per_image: dict[str, torch.Tensor]
    seed: int
    iwae_k: int
    dims: int
    features: M.Features | None = None
    msssim_pairs: int = MSSSIM_PAIRS
    mmd_subsets: int = 10
    device: torch.device = torch.device("cpu")
    fidelity: tuple[str, ...] = ()  # the torch-fidelity metrics chosen: computed together, once
    cache: dict = field(default_factory=dict)
    # for utility: the model (it makes the synthetic images), labels int64 [N] (-1: none), the data's classes
    model: Any = None
    real_labels: torch.Tensor | None = None
    train_labels: torch.Tensor | None = None
    class_names: tuple[str, ...] | None = None
    utility: UtilitySettings | None = None


@dataclass(frozen=True)
class Metric:
    """One entry of the registry: what it needs and how to turn :class:`EvalInputs` into result entries."""

    name: str
    about: str
    compute: Callable[[EvalInputs], dict[str, dict]]
    min_generated: int = 0
    min_real: int = 1
    needs_train: bool = False
    needs_features: bool = False
    per_image: tuple[str, ...] = ()  # which per-image model terms it reads: recon, elbo, iwae, denoise
    in_all: bool = True  # part of ``--metrics all`` (utility is not: it trains classifiers, and needs labels)


def _entry(value: float, std: float | None, n: int, unit: str, better: str, **extra) -> dict:
    return {"value": float(value), "std": None if std is None else float(std), "n": int(n), "unit": unit,
            "better": better, **extra}


def _mean_entry(values: torch.Tensor, unit: str, better: str, **extra) -> dict:
    values = values.double()
    return _entry(values.mean().item(), M.standard_error(values), values.numel(), unit, better,
                  std_of="standard error of the mean", **extra)


def _mmd(inp: EvalInputs) -> dict[str, dict]:
    value = M.mmd2(inp.generated, inp.real)
    bandwidths = M.median_bandwidths(inp.generated, inp.real)
    size = max(2, min(len(inp.generated), len(inp.real)) // inp.mmd_subsets)
    _, std = M.mmd2_with_std(inp.generated, inp.real, subsets=inp.mmd_subsets, subset_size=size,
                             bandwidths=bandwidths, seed=inp.seed)
    return {"mmd2": _entry(value, std, len(inp.generated), "pixel-space MMD^2", "lower", n_real=len(inp.real),
                           bandwidths=bandwidths, std_of=f"std over {inp.mmd_subsets} subsets of {size}")}


def _msssim(inp: EvalInputs) -> dict[str, dict]:
    config = M.msssim_config(*inp.generated.shape[-2:])
    value = M.msssim_diversity(inp.generated, inp.msssim_pairs, inp.seed)
    reference = M.msssim_diversity(inp.real, inp.msssim_pairs, inp.seed)
    return {"msssim_diversity": _entry(value, None, inp.msssim_pairs, "MS-SSIM", "lower", pairs=inp.msssim_pairs,
                                       real_reference=reference, config=config.to_dict())}


def _recon(inp: EvalInputs) -> dict[str, dict]:
    p = inp.per_image
    return {"recon_mse": _mean_entry(p["recon_mse"], "MSE", "lower"),
            "recon_psnr": _mean_entry(p["recon_psnr"], "dB", "higher"),
            "recon_ssim": _mean_entry(p["recon_ssim"], "SSIM", "higher")}


def _elbo(inp: EvalInputs) -> dict[str, dict]:
    p = inp.per_image
    return {"elbo": _mean_entry(p["elbo"], "nats", "higher", log_px_z=p["elbo_log_px_z"].double().mean().item()),
            # lower is better as the source paper reads it (a KL of 0 can also mean an unused latent)
            "kl": _mean_entry(p["elbo_kl"], "nats", "lower"),
            "elbo_bpd": _mean_entry(M.bits_per_dim(p["elbo"].double(), inp.dims), "bits/dim", "lower")}


def _iwae(inp: EvalInputs) -> dict[str, dict]:
    p = inp.per_image
    return {"iwae": _mean_entry(p["iwae"], "nats", "higher", k=inp.iwae_k),
            "iwae_bpd": _mean_entry(M.bits_per_dim(p["iwae"].double(), inp.dims), "bits/dim", "lower",
                                    k=inp.iwae_k)}


def _denoise(inp: EvalInputs) -> dict[str, dict]:
    out = {}
    for sigma in M.NOISE_LEVELS:
        noisy = inp.per_image[f"denoise_noisy_psnr_{sigma}"].double().mean().item()
        out[f"denoise_psnr_{sigma}"] = _mean_entry(inp.per_image[f"denoise_psnr_{sigma}"], "dB", "higher",
                                                   sigma=sigma, noisy_input_psnr=noisy)
        out[f"denoise_ssim_{sigma}"] = _mean_entry(inp.per_image[f"denoise_ssim_{sigma}"], "SSIM", "higher",
                                                   sigma=sigma)
    return out


def _memorization(inp: EvalInputs) -> dict[str, dict]:
    result = M.memorization(inp.generated, inp.train, inp.real)
    fraction = result.pop("fraction")
    return {"memorization": _entry(fraction, None, len(inp.generated), "fraction", "lower", n_train=len(inp.train),
                                   n_heldout=len(inp.real), percentile=1.0, **result)}


def _fidelity(which: str) -> Callable[[EvalInputs], dict[str, dict]]:
    def compute(inp: EvalInputs) -> dict[str, dict]:
        if "fidelity" not in inp.cache:  # one feature extraction for all of fid, kid, isc, prc
            inp.cache["fidelity"] = M.fidelity_metrics(inp.generated, inp.real, metrics=inp.fidelity or (which,),
                                                       features=inp.features, seed=inp.seed, device=inp.device)
        r = inp.cache["fidelity"]
        common = {"features": inp.features.to_dict(), "n_real": len(inp.real)}
        n = len(inp.generated)
        if which == "fid":
            return {"fid": _entry(r["fid"], None, n, "FID", "lower", **common)}
        if which == "kid":
            return {"kid": _entry(r["kid"], r["kid_std"], n, "KID", "lower", std_of=f"std over {KID_SUBSETS} subsets",
                                  **common)}
        if which == "isc":
            return {"isc": _entry(r["isc"], r["isc_std"], n, "IS", "higher", std_of=f"std over {ISC_SPLITS} splits",
                                  **common)}
        k = PRC_NEIGHBORHOOD
        return {"precision": _entry(r["precision"], None, n, "fraction", "higher", k=k, **common),
                "recall": _entry(r["recall"], None, n, "fraction", "higher", k=k, **common)}

    return compute


def _utility(inp: EvalInputs) -> dict[str, dict]:
    def labelled(images: torch.Tensor, labels: torch.Tensor | None) -> LabelledImages:
        return LabelledImages(images, torch.full((len(images),), -1) if labels is None else labels, inp.class_names)

    settings = inp.utility or UtilitySettings(seed=inp.seed)
    return utility_scores(labelled(inp.train, inp.train_labels), labelled(inp.real, inp.real_labels), settings,
                          model_source(inp.model, settings), device=inp.device, progress=True)


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("mmd", "unbiased pixel-space MMD^2, generated vs held-out (median-heuristic Gaussian kernels)", _mmd,
           min_generated=2, min_real=2),
    Metric("msssim", "mean MS-SSIM of random generated pairs (diversity; real images as reference)", _msssim,
           min_generated=2, min_real=2),
    Metric("recon", "MSE, PSNR, SSIM of held-out images reconstructed through the posterior mean", _recon,
           per_image=("recon",)),
    Metric("elbo", "ELBO of held-out images (nats and bits/dim)", _elbo, per_image=("elbo",)),
    Metric("iwae", "importance-weighted log-likelihood of held-out images (nats and bits/dim)", _iwae,
           per_image=("iwae",)),
    Metric("denoise", "PSNR and SSIM of reconstructions of held-out images with Gaussian noise 0.2 and 0.5",
           _denoise, per_image=("denoise",)),
    Metric("memorization", "fraction of samples nearer the training set than 99% of held-out images",
           _memorization, min_generated=1, min_real=100, needs_train=True),
    Metric("fid", "Frechet distance of features, generated vs held-out", _fidelity("fid"), min_generated=2,
           min_real=2, needs_features=True),
    Metric("kid", "kernel (polynomial) MMD of features, generated vs held-out", _fidelity("kid"), min_generated=2,
           min_real=2, needs_features=True),
    Metric("isc", "Inception Score of generated images (with the chosen feature network)", _fidelity("isc"),
           min_generated=10, min_real=0, needs_features=True),
    Metric("prc", "precision and recall of feature manifolds (k = 3)", _fidelity("prc"), min_generated=4,
           min_real=4, needs_features=True),
    Metric("utility", "held-out accuracy of classifiers trained with the model's images: CAS, gain over K real "
           "images per class alone and with classic augmentation, per class", _utility, needs_train=True,
           in_all=False),
)}


def parse_metrics(text: str) -> list[str]:
    """A comma-separated list of :data:`METRICS` names -> the names, in registry order. ``all`` stands for
    every metric but utility (``all,utility`` for every one)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if "all" in names:
        names = [name for name in names if name != "all"] + [m.name for m in METRICS.values() if m.in_all]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise GvaeError(f"--metrics: unknown {', '.join(unknown) or '(empty)'}; choose from all, {', '.join(METRICS)}")
    return [name for name in METRICS if name in names]


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _stream(seed: int, purpose: int, block: int, device: torch.device) -> torch.Generator:
    state = np.random.SeedSequence([seed, purpose, block]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator(device=device).manual_seed(int(state) & (2**63 - 1))


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
            terms = M.elbo_terms(seen.encode, seen.log_px_z, x, generator=_stream(seed, _ELBO, j, device))
            out.update({"elbo": terms["elbo"], "elbo_log_px_z": terms["log_px_z"], "elbo_kl": terms["kl"]})
        if "iwae" in needed:
            out["iwae"] = _iwae(model, x, y, iwae_k, batch_size, _stream(seed, _IWAE, j, device))
        if "denoise" in needed:
            g = _stream(seed, _DENOISE, j, device)
            for sigma in M.NOISE_LEVELS:
                scores = M.denoising_scores(reconstruct, x, sigma, generator=g)
                out.update({f"denoise_{k}_{sigma}": v for k, v in scores.items()})
        return out

    return _blockwise(len(real), block) if needed else {}


def _check(model, real: torch.Tensor, train: torch.Tensor | None, chosen: list[Metric], num_samples: int) -> None:
    expected = (model.channels, model.resolution, model.resolution)
    for what, images in (("held-out data", real), ("training data", train)):
        if images is not None and tuple(images.shape[1:]) != expected:
            c, h, w = images.shape[1:]
            raise GvaeError(f"{what} has {c} channel(s) at {h}x{w} px but the model ({model.kind}) makes {expected[0]} "
                            f"channel(s) at {model.resolution}x{model.resolution} px; evaluate on data packed like "
                            f"its training data")
    for metric in chosen:
        if num_samples < metric.min_generated:
            raise GvaeError(f"{metric.name} needs at least {metric.min_generated} samples, got --num-samples "
                            f"{num_samples}")
        if len(real) < metric.min_real:
            raise GvaeError(f"{metric.name} needs at least {metric.min_real} held-out images, the data has {len(real)}")
        if metric.needs_train and (train is None or len(train) < 1):
            raise GvaeError(f"{metric.name} needs training images (give --train-data)")


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
    if any(m.needs_features for m in chosen) and features is None:
        raise GvaeError(f"{', '.join(m.name for m in chosen if m.needs_features)} need a feature network "
                        f"(give --feature-weights)")
    device = torch.device(device)
    needed = {term for m in chosen for term in m.per_image}
    labels = _held_out_labels(model, real_images, real_labels)
    per_image = _per_image_terms(model, real_images, labels, needed, seed, iwae_k, batch_size, device)
    if any(m.min_generated for m in chosen):
        def draw(rows: slice, j: int) -> dict[str, torch.Tensor]:
            n = rows.stop - rows.start
            extra = {}
            if _num_classes(model):  # classes with the held-out images' frequencies
                picks = torch.randint(len(labels), (n,), generator=_stream(seed, _LABELS, j, torch.device("cpu")))
                extra["labels"] = labels[picks]
            return {"x": model.sample(n, generator=_stream(seed, _SAMPLES, j, device), temperature=temperature,
                                      **extra)}

        generated = _blockwise(num_samples, draw)["x"].float()
    else:
        generated = torch.empty(0, *real_images.shape[1:])
    if _rank_world()[0] != 0:
        return {}
    inputs = EvalInputs(generated, real_images, train_images, per_image, seed, iwae_k,
                        dims=math.prod(real_images.shape[1:]), features=features, msssim_pairs=msssim_pairs,
                        device=device, fidelity=tuple(m.name for m in chosen if m.needs_features), model=model,
                        real_labels=real_labels, train_labels=train_labels, class_names=class_names,
                        utility=utility)
    results: dict[str, dict] = {}
    for metric in chosen:
        log.info("computing %s", metric.name)
        results.update(metric.compute(inputs))
    return results


@dataclass
class Protocol:
    """How a model is evaluated; recorded in results.json so that two results can be compared."""

    data: str  # held-out images: a packed dataset dir (its val split) or a shard pattern
    metrics: str = "all"
    num_samples: int = EVAL_NUM_SAMPLES
    iwae_k: int = EVAL_IWAE_K
    seed: int = 0
    feature_weights: str | None = None
    train_data: str | None = None  # default: the train split of a packed --data dir, else the run's data.train
    num_real: int = EVAL_NUM_REAL  # held-out images read (at most)
    num_train: int = EVAL_NUM_TRAIN  # training images read for memorisation and utility (at most)
    temperature: float = 1.0
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


def _train_spec(protocol: Protocol, recipe: Recipe) -> str:
    if protocol.train_data:
        return protocol.train_data
    if Path(protocol.data).is_dir():
        return protocol.data
    if not recipe.data.train:
        raise GvaeError("memorization and utility need training images; give --train-data")
    return recipe.data.train


def _too_few_images(names: list[str], real: int, samples: int) -> dict[str, str]:
    """The metrics that ``real`` held-out images or ``samples`` generated ones are too few for, with why."""
    reasons = {}
    for name in names:
        metric = METRICS[name]
        if real < metric.min_real:
            reasons[name] = f"needs at least {metric.min_real} held-out images, the data has {real}"
        elif samples < metric.min_generated:
            reasons[name] = f"needs at least {metric.min_generated} samples, got --num-samples {samples}"
    return reasons


def check_memory(protocol: Protocol, model, max_gib: float) -> None:
    """Refuse, before anything is drawn, an evaluation whose images would not fit in ``max_gib`` GiB: rank 0
    holds the generated, held-out and training images at once as float32 (10,000 samples of 1024 px RGB are
    ~126 GB). The count is an upper bound: fewer held-out or training images may exist than asked for."""
    per_image = 4 * model.channels * model.resolution ** 2
    images = protocol.num_samples + protocol.num_real + protocol.num_train
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
    names = parse_metrics(protocol.metrics)
    explicit = "all" not in {name.strip() for name in protocol.metrics.split(",")}
    utility = protocol.utility_settings() if "utility" in names else None  # bad settings fail before loading
    skipped: dict[str, str] = {}
    loaded = load_trained(source, ema=True, device=device)
    model = loaded.model
    check_memory(protocol, model, max_memory_gib)
    real, real_labels = load_images(protocol.data, split="val", limit=protocol.num_real)
    if not explicit:
        skipped.update(_too_few_images(names, len(real), protocol.num_samples))
        names = [n for n in names if n not in skipped]
    features = None
    if any(METRICS[n].needs_features for n in names):
        try:
            features = M.resolve_features(protocol.feature_weights)
        except GvaeError as err:
            if explicit:
                raise
            skipped.update({n: str(err) for n in names if METRICS[n].needs_features})
    train = train_labels = None
    if any(METRICS[n].needs_train for n in names):
        try:
            train, train_labels = load_images(_train_spec(protocol, loaded.recipe), split="train", limit=protocol.num_train)
        except GvaeError as err:
            if explicit:
                raise
            skipped.update({n: str(err) for n in names if METRICS[n].needs_train})
    names = [n for n in names if n not in skipped]
    results = evaluate(model, real, train, names, protocol.num_samples, protocol.iwae_k, protocol.seed,
                       features=features, batch_size=protocol.batch_size, temperature=protocol.temperature,
                       msssim_pairs=protocol.msssim_pairs, device=device, real_labels=real_labels,
                       train_labels=train_labels, class_names=class_names_of(protocol.data), utility=utility)
    model_info = {k: getattr(model, k, None) for k in ("kind", "latent_dim", "resolution", "channels",
                                                        "class_names")}
    return {"checkpoint": str(loaded.checkpoint), "data": protocol.data,
            "protocol": {**asdict(protocol), "evaluated": names, "world_size": _rank_world()[1], "model": model_info},
            "metrics": results, "skipped": skipped}


def format_table(results: dict) -> str:
    """results.json as a fixed-width table: metric, value, +- std, n, unit, which way is better."""
    rows = [("metric", "value", "+-", "n", "unit", "better")]
    for name, entry in results["metrics"].items():
        std = "" if entry.get("std") is None else f"{entry['std']:.4g}"
        rows.append((name, f"{entry['value']:.6g}", std, str(entry["n"]), entry.get("unit", ""), entry.get("better", "")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    by_reason: dict[str, list[str]] = {}
    for name, reason in results.get("skipped", {}).items():
        by_reason.setdefault(reason, []).append(name)
    lines += [f"skipped {', '.join(names)}: {reason}" for reason, names in by_reason.items()]
    return "\n".join(lines)


def write_results(results: dict, path) -> None:
    """Write results.json atomically, as strict JSON; a path that is not a regular file is refused."""
    write_json_atomic(path, results)
