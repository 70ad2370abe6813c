"""The metrics of ``gvae eval``, each registered where its results.json entries are made.

As in stylegan2-ada-pytorch's ``metric_main.py``, a metric is a function decorated with :func:`register`,
which records what it needs; the command line's ``--metrics`` list and help come from :data:`METRICS`, so a
new metric appears there by being registered here. A metric reads what it needs from an :class:`EvalInputs`
(generated samples, held-out real images, training images, per-image likelihood terms) and returns result
entries ``{"<name>": {"value": float, "std": float | None, "n": int, "unit": str, "better": "higher"|"lower",
...}}``. ``std`` is the standard error of the mean for per-image averages and the spread over subsets or
splits for set-level metrics (the entry says which in ``std_of``).

The numerics are pure functions of :mod:`gvae.metrics`, imported inside each metric: reading this registry
(``gvae eval --help``) then loads neither piq nor torch-fidelity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from gvae.defaults import ISC_SPLITS, KID_SUBSETS, MSSSIM_PAIRS, PRC_NEIGHBORHOOD
from gvae.errors import GvaeError

if TYPE_CHECKING:
    from gvae.metrics import Features
    from gvae.metrics.utility import UtilitySettings


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
    features: Features | None = None
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
    generated_labels: torch.Tensor | None = None  # int64 [N]: the labels a conditional model's samples were drawn with
    temperature: float = 1.0  # the prior samples' temperature


@dataclass(frozen=True)
class Metric:
    """One entry of the registry: what it needs and how to turn :class:`EvalInputs` into result entries."""

    name: str
    about: str
    results: str  # the results.json names it writes, for the help text
    compute: Callable[[EvalInputs], dict[str, dict]]
    min_generated: int = 0
    min_real: int = 1
    needs_train: bool = False
    needs_features: bool = False  # a torch-fidelity feature network (all such metrics are computed together)
    needs_classifier: bool = False  # a classifier of the data's classes: --feature-weights of train-features
    needs_conditional: bool = False  # a class-conditional model (``all`` leaves it out for an unconditional one)
    per_image: tuple[str, ...] = ()  # which per-image model terms it reads: recon, elbo, iwae, denoise
    in_all: bool = True  # part of ``--metrics all`` (utility is not: it trains classifiers, and needs labels)

    @property
    def needs_feature_weights(self) -> bool:
        """Whether it reads the ``--feature-weights`` network, as torch-fidelity features or as a classifier."""
        return self.needs_features or self.needs_classifier


METRICS: dict[str, Metric] = {}


def register(name: str, about: str, results: str, **needs) -> Callable:
    """Register the decorated ``compute(EvalInputs) -> entries`` as metric ``name``; ``needs`` are the
    requirement fields of :class:`Metric`. The registry keeps the order of registration."""
    def decorate(compute: Callable[[EvalInputs], dict[str, dict]]) -> Callable[[EvalInputs], dict[str, dict]]:
        if name in METRICS:
            raise ValueError(f"metric {name} is registered twice")
        METRICS[name] = Metric(name, about, results, compute, **needs)
        return compute

    return decorate


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


def _entry(value: float, std: float | None, n: int, unit: str, better: str, **extra) -> dict:
    return {"value": float(value), "std": None if std is None else float(std), "n": int(n), "unit": unit,
            "better": better, **extra}


def _mean_entry(values: torch.Tensor, unit: str, better: str, **extra) -> dict:
    from gvae.metrics import standard_error

    values = values.double()
    return _entry(values.mean().item(), standard_error(values), values.numel(), unit, better,
                  std_of="standard error of the mean", **extra)


@register("mmd", "unbiased pixel-space MMD^2 of samples vs held-out images (median-heuristic Gaussian kernels)",
          "mmd2", min_generated=2, min_real=2)
def _mmd(inp: EvalInputs) -> dict[str, dict]:
    from gvae.metrics import median_bandwidths, mmd2, mmd2_with_std

    value = mmd2(inp.generated, inp.real)
    bandwidths = median_bandwidths(inp.generated, inp.real)
    size = max(2, min(len(inp.generated), len(inp.real)) // inp.mmd_subsets)
    _, std = mmd2_with_std(inp.generated, inp.real, subsets=inp.mmd_subsets, subset_size=size,
                           bandwidths=bandwidths, seed=inp.seed)
    return {"mmd2": _entry(value, std, len(inp.generated), "pixel-space MMD^2", "lower", n_real=len(inp.real),
                           bandwidths=bandwidths, std_of=f"std over {inp.mmd_subsets} subsets of {size}")}


@register("msssim", "mean MS-SSIM of random sample pairs, lower = more diverse (real images as reference)",
          "msssim_diversity", min_generated=2, min_real=2)
def _msssim(inp: EvalInputs) -> dict[str, dict]:
    from gvae.metrics import msssim_config, msssim_diversity

    config = msssim_config(*inp.generated.shape[-2:])
    value = msssim_diversity(inp.generated, inp.msssim_pairs, inp.seed)
    reference = msssim_diversity(inp.real, inp.msssim_pairs, inp.seed)
    return {"msssim_diversity": _entry(value, None, inp.msssim_pairs, "MS-SSIM", "lower", pairs=inp.msssim_pairs,
                                       real_reference=reference, config=config.to_dict())}


@register("recon", "MSE, PSNR, SSIM of held-out images reconstructed through the posterior mean",
          "recon_mse, recon_psnr, recon_ssim", per_image=("recon",))
def _recon(inp: EvalInputs) -> dict[str, dict]:
    p = inp.per_image
    return {"recon_mse": _mean_entry(p["recon_mse"], "MSE", "lower"),
            "recon_psnr": _mean_entry(p["recon_psnr"], "dB", "higher"),
            "recon_ssim": _mean_entry(p["recon_ssim"], "SSIM", "higher")}


@register("elbo", "ELBO of held-out images (nats and bits/dim) and its KL term", "elbo, elbo_bpd, kl",
          per_image=("elbo",))
def _elbo(inp: EvalInputs) -> dict[str, dict]:
    from gvae.metrics import bits_per_dim

    p = inp.per_image
    return {"elbo": _mean_entry(p["elbo"], "nats", "higher", log_px_z=p["elbo_log_px_z"].double().mean().item()),
            # lower is better as the source paper reads it (a KL of 0 can also mean an unused latent)
            "kl": _mean_entry(p["elbo_kl"], "nats", "lower"),
            "elbo_bpd": _mean_entry(bits_per_dim(p["elbo"].double(), inp.dims), "bits/dim", "lower")}


@register("iwae", "importance-weighted log-likelihood of held-out images (nats and bits/dim)", "iwae, iwae_bpd",
          per_image=("iwae",))
def _iwae(inp: EvalInputs) -> dict[str, dict]:
    from gvae.metrics import bits_per_dim

    p = inp.per_image
    return {"iwae": _mean_entry(p["iwae"], "nats", "higher", k=inp.iwae_k),
            "iwae_bpd": _mean_entry(bits_per_dim(p["iwae"].double(), inp.dims), "bits/dim", "lower",
                                    k=inp.iwae_k)}


@register("denoise", "PSNR and SSIM of reconstructions of held-out images with Gaussian noise 0.2 and 0.5",
          "denoise_psnr_0.2, denoise_ssim_0.2, ...", per_image=("denoise",))
def _denoise(inp: EvalInputs) -> dict[str, dict]:
    from gvae.metrics import NOISE_LEVELS

    out = {}
    for sigma in NOISE_LEVELS:
        noisy = inp.per_image[f"denoise_noisy_psnr_{sigma}"].double().mean().item()
        out[f"denoise_psnr_{sigma}"] = _mean_entry(inp.per_image[f"denoise_psnr_{sigma}"], "dB", "higher",
                                                   sigma=sigma, noisy_input_psnr=noisy)
        out[f"denoise_ssim_{sigma}"] = _mean_entry(inp.per_image[f"denoise_ssim_{sigma}"], "SSIM", "higher",
                                                   sigma=sigma)
    return out


@register("memorization", "fraction of samples nearer the training set than 99% of held-out images",
          "memorization", min_generated=1, min_real=100, needs_train=True)
def _memorization(inp: EvalInputs) -> dict[str, dict]:
    from gvae.metrics import memorization

    result = memorization(inp.generated, inp.train, inp.real)
    fraction = result.pop("fraction")
    return {"memorization": _entry(fraction, None, len(inp.generated), "fraction", "lower", n_train=len(inp.train),
                                   n_heldout=len(inp.real), percentile=1.0, **result)}


def _fidelity(inp: EvalInputs, which: str) -> dict[str, dict]:
    """The entries of torch-fidelity metric ``which``; the first of fid, kid, isc, prc to run computes all the
    chosen ones in one feature pass."""
    from gvae.metrics import fidelity_metrics

    if "fidelity" not in inp.cache:
        inp.cache["fidelity"] = fidelity_metrics(inp.generated, inp.real, metrics=inp.fidelity or (which,),
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
    return {"precision": _entry(r["precision"], None, n, "fraction", "higher", k=PRC_NEIGHBORHOOD, **common),
            "recall": _entry(r["recall"], None, n, "fraction", "higher", k=PRC_NEIGHBORHOOD, **common)}


@register("fid", "Frechet distance of features, generated vs held-out", "fid", min_generated=2, min_real=2,
          needs_features=True)
def _fid(inp: EvalInputs) -> dict[str, dict]:
    return _fidelity(inp, "fid")


@register("kid", "kernel (polynomial) MMD of features, generated vs held-out", "kid", min_generated=2, min_real=2,
          needs_features=True)
def _kid(inp: EvalInputs) -> dict[str, dict]:
    return _fidelity(inp, "kid")


@register("isc", "Inception Score of generated images (with the chosen feature network)", "isc",
          min_generated=ISC_SPLITS, min_real=0, needs_features=True)
def _isc(inp: EvalInputs) -> dict[str, dict]:
    return _fidelity(inp, "isc")


@register("prc", f"precision and recall of feature manifolds (k = {PRC_NEIGHBORHOOD})", "precision, recall",
          min_generated=PRC_NEIGHBORHOOD + 1, min_real=PRC_NEIGHBORHOOD + 1, needs_features=True)
def _prc(inp: EvalInputs) -> dict[str, dict]:
    return _fidelity(inp, "prc")


@register("classes", "share of samples a classifier of the data's classes assigns to each class, against its "
          "shares on the held-out images (total variation; 0 = the same mix); for a conditional model also the "
          "share of samples it assigns to the label they were drawn with", "class_tv, class_agreement",
          min_generated=1, needs_classifier=True)
def _classes(inp: EvalInputs) -> dict[str, dict]:
    from gvae.metrics import load_classifier
    from gvae.metrics.classes import label_agreement, predicted_shares, predictions, shares, total_variation

    classifier = load_classifier(inp.features.weights_path).to(inp.device)
    k = classifier.shape.num_classes
    predicted = predictions(classifier, inp.generated, device=inp.device)
    generated = shares(predicted, k)
    real = predicted_shares(classifier, inp.real, k, device=inp.device)
    extra = {"generated_shares": generated.tolist(), "real_shares": real.tolist(), "n_real": len(inp.real),
             "class_names": list(inp.class_names) if len(inp.class_names or ()) == k else [str(i) for i in range(k)],
             "features": inp.features.to_dict()}
    if inp.real_labels is not None and bool((inp.real_labels >= 0).all()):
        from gvae.metrics.features import accuracy

        extra["classifier_accuracy"] = accuracy(classifier, inp.real.to(inp.device), inp.real_labels.to(inp.device))
    results = {"class_tv": _entry(total_variation(generated, real), None, len(inp.generated), "fraction", "lower",
                                  **extra)}
    if inp.generated_labels is not None and getattr(inp.model, "num_classes", 0) == k:  # the same classes
        overall, per_label = label_agreement(predicted, inp.generated_labels, k)
        results["class_agreement"] = _entry(
            overall, None, len(inp.generated), "fraction", "higher", per_label=per_label,
            **{name: extra[name] for name in ("class_names", "classifier_accuracy", "features") if name in extra})
    return results


@register("label_share", "for a conditional model: the share of its samples' variation that their label decides, "
          "against their latent (0: the label is ignored), from the model alone", "label_share", min_generated=2,
          needs_conditional=True)
def _label_share(inp: EvalInputs) -> dict[str, dict]:
    from gvae.metrics.classes import prior_label_share

    model, n = inp.model, len(inp.generated)
    value = prior_label_share(model.decode, model.latent_dim, model.num_classes, inp.device, n, inp.seed,
                              inp.temperature, labels=inp.generated_labels)  # the samples' labels
    return {"label_share": _entry(value, None, n, "fraction", "higher", temperature=inp.temperature)}


@register("utility", "held-out accuracy of classifiers trained with the model's images: CAS, gain over K real "
          "images per class alone and with classic augmentation, per class", "utility_cas, utility_gain_k10, ...",
          needs_train=True, in_all=False)
def _utility(inp: EvalInputs) -> dict[str, dict]:
    from gvae.evaluation.utility import model_source
    from gvae.metrics.utility import LabelledImages, UtilitySettings, utility_scores

    def labelled(images: torch.Tensor, labels: torch.Tensor | None) -> LabelledImages:
        return LabelledImages(images, torch.full((len(images),), -1) if labels is None else labels, inp.class_names)

    settings = inp.utility or UtilitySettings(seed=inp.seed)
    return utility_scores(labelled(inp.train, inp.train_labels), labelled(inp.real, inp.real_labels), settings,
                          model_source(inp.model, settings), device=inp.device, progress=True)
