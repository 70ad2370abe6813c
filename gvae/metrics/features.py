"""A domain feature extractor: a small CNN classifier trained on labelled images of the target domain.

Inception-v3 features describe ImageNet photographs; for grey CT slices or 28 px clothing they are a poor
yardstick, and their weights cannot be downloaded everywhere. A classifier trained on the domain's own
labels gives features (its penultimate layer, 128 values) that separate what matters there. FID, KID and
precision/recall on these features are comparable only between evaluations that used the same weights
file, which results.json records.

The network reads [B, C, H, W] in [0, 1], resizes to at most :data:`MAX_INPUT` px a side, and works at
any resolution. The weights are saved as safetensors with the shape of the network in the metadata.
It is registered with torch-fidelity as :data:`EXTRACTOR_NAME`, reading uint8 [B, 3, H, W] like the others.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor
from tqdm.auto import tqdm

from gvae.defaults import FEATURES_BATCH_SIZE, FEATURES_EPOCHS
from gvae.errors import GvaeError

EXTRACTOR_NAME = "gvae-domain"
MAX_INPUT = 64
FEATURE_DIM = 128


@dataclass(frozen=True)
class ClassifierShape:
    """What is needed to rebuild the classifier: input channels, input side in px, number of classes."""

    channels: int
    input_size: int
    num_classes: int


class DomainClassifier(nn.Module):
    """Three conv blocks (32, 64, 128 channels), global average pooling, one linear layer to the logits."""

    def __init__(self, shape: ClassifierShape):
        super().__init__()
        self.shape = shape
        widths = (shape.channels, 32, 64, FEATURE_DIM)
        layers: list[nn.Module] = []
        for c_in, c_out in pairwise(widths):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(FEATURE_DIM, shape.num_classes)

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` [B, C, H, W] in [0, 1] -> (features [B, 128], logits [B, num_classes])."""
        if x.shape[-1] != self.shape.input_size or x.shape[-2] != self.shape.input_size:
            x = F.interpolate(x, size=(self.shape.input_size,) * 2, mode="bilinear", antialias=True,
                              align_corners=False)
        features = self.body(x * 2 - 1)
        return features, self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[1]


def train_classifier(images: torch.Tensor, labels: torch.Tensor, epochs: int = FEATURES_EPOCHS,
                     batch_size: int = FEATURES_BATCH_SIZE, lr: float = 2e-3, seed: int = 0,
                     progress: bool = False) -> DomainClassifier:
    """Train a :class:`DomainClassifier` on ``images`` [N, C, H, W] in [0, 1] with int ``labels`` [N].

    ``progress`` shows a bar over the optimizer steps with the running loss.
    """
    if len(images) != len(labels) or len(images) < 2:
        raise GvaeError(f"feature training needs at least 2 labelled images, got {len(images)} images and "
                        f"{len(labels)} labels")
    num_classes = int(labels.max().item()) + 1
    if num_classes < 2 or labels.min() < 0:
        raise GvaeError("feature training needs integer labels 0..K-1 with at least 2 classes; pack the data "
                        "with labels (e.g. --labels-from-dirs)")
    torch.manual_seed(seed)
    shape = ClassifierShape(images.shape[1], min(images.shape[-1], MAX_INPUT), num_classes)
    net = DomainClassifier(shape)
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr)
    steps = epochs * math.ceil(len(images) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    net.train()
    with tqdm(total=steps, desc="train features", unit="step", disable=not progress, dynamic_ncols=True) as bar:
        for epoch in range(epochs):
            order = torch.randperm(len(images), generator=generator)
            for start in range(0, len(images), batch_size):
                idx = order[start:start + batch_size]
                loss = F.cross_entropy(net(images[idx].float()), labels[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.update(1)
                if progress:  # loss.item() waits for the device
                    bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.3f}", refresh=False)
    return net.eval()


@torch.no_grad()
def accuracy(net: DomainClassifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of ``images`` whose arg-max logit equals the label."""
    correct = sum((net(images[i:i + batch_size].float()).argmax(1) == labels[i:i + batch_size]).sum().item()
                  for i in range(0, len(images), batch_size))
    return correct / max(1, len(images))


def save_classifier(net: DomainClassifier, path: str | Path, extra: dict | None = None) -> None:
    """Write the weights as safetensors; the metadata holds the network shape (and ``extra``, e.g. accuracy)."""
    metadata = {"gvae.classifier": json.dumps(asdict(net.shape)), "gvae.info": json.dumps(extra or {})}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path), metadata=metadata)


def load_label_classifier(path: str | Path, num_classes: int, channels: int, what: str) -> DomainClassifier:
    """:func:`load_classifier`, refused (GvaeError naming ``what``, the option that gave ``path``) unless it
    classifies ``channels``-channel images into ``num_classes`` classes: those of the model it judges."""
    classifier = load_classifier(path)
    shape = classifier.shape
    if (shape.num_classes, shape.channels) != (num_classes, channels):
        raise GvaeError(f"{what} {path}: a classifier of {shape.num_classes} classes on {shape.channels}-channel "
                        f"images, the model makes {channels}-channel images of {num_classes} classes; train one "
                        "on its data with gvae eval train-features")
    return classifier


def load_classifier(path: str | Path) -> DomainClassifier:
    """Rebuild a classifier written by :func:`save_classifier` (eval mode, on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise GvaeError(f"feature weights {path} do not exist; make them with `gvae eval train-features`")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
        shape = ClassifierShape(**json.loads(meta["gvae.classifier"]))
    except (KeyError, ValueError, OSError, SafetensorError) as err:
        raise GvaeError(f"{path} is not a feature classifier written by `gvae eval train-features` ({err})") from None
    net = DomainClassifier(shape)
    net.load_state_dict(state)
    return net.eval()


class DomainFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity's view of a :class:`DomainClassifier`: uint8 [B, 3, H, W] -> ("features", "logits")."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise GvaeError(f"the {EXTRACTOR_NAME} feature extractor needs a weights file")
        self.net = load_classifier(feature_extractor_weights_path)

    @staticmethod
    def get_provided_features_list():
        return "features", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "logits" if metric == "isc" else "features"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 32, 32, dtype=torch.uint8)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = x.float() / 255.0
        if self.net.shape.channels == 1:
            x = x.mean(1, keepdim=True)  # the dataset wrapper repeats grey images over 3 channels
        features, logits = self.net.features_and_logits(x)
        found = {"features": features, "logits": logits}
        return tuple(found[name] for name in self.features_list)


if EXTRACTOR_NAME not in FEATURE_EXTRACTORS_REGISTRY:
    register_feature_extractor(EXTRACTOR_NAME, DomainFeatureExtractor)
