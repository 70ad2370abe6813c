"""FID, KID, Inception Score and precision/recall through torch-fidelity, with local feature weights only.

torch-fidelity would download Inception-v3 weights on first use; gvae never lets it. The feature network is
chosen by the weights file given (:func:`resolve_features`):

- a ``.safetensors`` file: the domain classifier of :mod:`gvae.metrics.features` (``gvae eval train-features``);
- any other file: torch-fidelity's Inception-v3 weights (``weights-inception-2015-12-05-6726825d.pth``);
- nothing: that Inception file if it is already in the torch hub cache, else a :class:`GvaeError`.

Images go in as float [N, C, H, W] in [0, 1] and are handed to torch-fidelity as uint8 [3, H, W] items
(round(255 x); grey repeated over three channels), with its caching off: every call recomputes features.
Conventions follow torch-fidelity: input 1 is the generated set, input 2 the real one; precision is the
fraction of generated samples inside the real manifold, recall the reverse (Kynkaenniemi et al., 2019, k = 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch_fidelity
from torch.utils.data import Dataset

from gvae.defaults import ISC_SPLITS, KID_SUBSETS, PRC_NEIGHBORHOOD
from gvae.errors import GvaeError
from gvae.metrics.features import EXTRACTOR_NAME

INCEPTION_NAME = "inception-v3-compat"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
FIDELITY_METRICS = ("fid", "kid", "isc", "prc")
KID_SUBSET_SIZE = 1000
# torch-fidelity's result keys -> the flat names fidelity_metrics returns
RESULT_NAMES = {torch_fidelity.KEY_METRIC_FID: "fid", torch_fidelity.KEY_METRIC_KID_MEAN: "kid",
                torch_fidelity.KEY_METRIC_KID_STD: "kid_std", torch_fidelity.KEY_METRIC_ISC_MEAN: "isc",
                torch_fidelity.KEY_METRIC_ISC_STD: "isc_std", torch_fidelity.KEY_METRIC_PRECISION: "precision",
                torch_fidelity.KEY_METRIC_RECALL: "recall"}


class ImageTensorDataset(Dataset):
    """Float images [N, C, H, W] in [0, 1] as the uint8 [3, H, W] items torch-fidelity reads."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = (self.images[i].float().clamp(0, 1) * 255).round().to(torch.uint8)
        return x.expand(3, *x.shape[1:]).contiguous() if x.shape[0] == 1 else x


@dataclass(frozen=True)
class Features:
    """The feature network used: its torch-fidelity name and its local weights file."""

    extractor: str
    weights_path: str

    def to_dict(self) -> dict:
        return {"extractor": self.extractor, "weights": self.weights_path}


def resolve_features(weights_path: str | Path | None) -> Features:
    """Pick the feature network for a weights file (rules in the module docstring); never downloads."""
    if weights_path is None:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
        if not cached.is_file():
            raise GvaeError("FID/KID/IS/precision-recall and classes need local feature weights: pass "
                            "--feature-weights FILE.safetensors (from `gvae eval train-features`) or the Inception "
                            f"file {INCEPTION_FILE}")
        weights_path = cached
    path = Path(weights_path)
    if not path.is_file():
        raise GvaeError(f"feature weights {path} do not exist")
    return Features(EXTRACTOR_NAME if path.suffix == ".safetensors" else INCEPTION_NAME, str(path))


def check_classifier(features: Features) -> None:
    """Refuse a feature network that is not a classifier of the data's classes (Inception's 1,008 ImageNet
    classes say nothing about a dataset's own)."""
    if features.extractor != EXTRACTOR_NAME:
        raise GvaeError(f"{features.weights_path} is not a classifier of the data's classes; the classes metric "
                        "needs --feature-weights from `gvae eval train-features`")


def min_samples(metric: str) -> int:
    """Fewest generated (and real) images a torch-fidelity metric can be estimated from."""
    return {"isc": ISC_SPLITS, "prc": PRC_NEIGHBORHOOD + 1, "kid": 4}.get(metric, 2)


def kid_subset_size(num_generated: int, num_real: int) -> int:
    """Rows per KID subset: the usual 1000, but at most half of either set.

    Subsets as large as the set are all the set itself, so their spread (kid_std) would be 0 whatever the
    sample; drawn from half of it they differ, and kid_std shows how much KID moves with the sample.
    """
    return min(KID_SUBSET_SIZE, num_generated // 2, num_real // 2)


def fidelity_metrics(generated: torch.Tensor, real: torch.Tensor, metrics=FIDELITY_METRICS,
                     features: Features | None = None, seed: int = 0, kid_subsets: int = KID_SUBSETS,
                     batch_size: int = 64, device: str | torch.device = "cpu") -> dict[str, float]:
    """Compute ``metrics`` (a subset of fid, kid, isc, prc) between ``generated`` and ``real`` [N, C, H, W].

    Returns a flat mapping (:data:`RESULT_NAMES`): fid; kid, kid_std (over ``kid_subsets`` subsets, see
    ``kid_subset_size``); isc, isc_std (over ISC_SPLITS splits of the generated set); precision, recall. The
    real set is only read for fid, kid and prc.
    """
    unknown = set(metrics) - set(FIDELITY_METRICS)
    if unknown:
        raise GvaeError(f"unknown torch-fidelity metric(s) {sorted(unknown)}; choose from {FIDELITY_METRICS}")
    for metric in metrics:
        need = min_samples(metric)
        if len(generated) < need or (metric != "isc" and len(real) < need):
            raise GvaeError(f"{metric} needs at least {need} generated and real images, got {len(generated)} "
                            f"and {len(real)}")
    features = features or resolve_features(None)
    raw = torch_fidelity.calculate_metrics(
        input1=ImageTensorDataset(generated), input2=ImageTensorDataset(real),
        cuda=torch.device(device).type == "cuda", batch_size=batch_size,
        feature_extractor=features.extractor, feature_extractor_weights_path=features.weights_path,
        isc="isc" in metrics, fid="fid" in metrics, kid="kid" in metrics, prc="prc" in metrics,
        isc_splits=ISC_SPLITS, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size(len(generated), len(real)),
        prc_neighborhood=PRC_NEIGHBORHOOD, rng_seed=seed, cache=False, save_cpu_ram=True, verbose=False)
    return {RESULT_NAMES[k]: float(v) for k, v in raw.items() if k in RESULT_NAMES}
