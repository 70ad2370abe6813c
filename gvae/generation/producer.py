"""Turning latents into the 8-bit images of a generated set, with optional filters, batch-size independent.

Why fixed blocks: on a CPU with more than one thread, the decoder's float output for one image can change in
the last bit with the batch it runs in (the split of the work among threads is what changes), and after 8-bit
quantisation that flips pixels (benchmarks/README.md records how many). So the decoder never sees a batch
chosen by the user. Sample indices are split into groups
[g * BLOCK, (g + 1) * BLOCK), and every forward pass (decoder, discriminator, nearest-neighbour search) runs on
a batch whose composition is a pure function of (seed, group): the whole group at attempt 0, then the group's
still-rejected indices at attempt 1, 2, ... (zero-padded to a multiple of 16 rows; see
:func:`gvae.generation.latents.forward_padded`). A group is always computed whole, even when a run needs only part
of it, so its bytes do not depend on the number of samples asked for either.

With ``precision="bf16"`` the decoder's and the discriminator's passes run under bfloat16 autocast (faster
where the hardware has bf16 instructions); the fixed blocks keep them as deterministic as in float32, and the
8-bit pixels differ from float32's by a few levels in some pixels (a trained Fashion-MNIST GVAE: 23% of
pixels, at most 6 levels).

Filters (a candidate that fails one is replaced by the next attempt of the same index, so sample i stays a
pure function of (checkpoint, seed, i) and the set can be resumed or extended):

* realism: the discriminator's logit must reach a threshold, the ``min_realism`` quantile of the logits of
  ``CALIBRATION_SIZE`` calibration candidates (drawn like the set's candidates, from their own stream). About
  a fraction ``min_realism`` of candidates is rejected.
* label: a classifier of the data's classes (``gvae eval train-features``) must assign the candidate to the
  label it was drawn with. A conditional model whose latent, more than its label, decides what it draws (the
  demo's phantoms: a third of the samples show the lesion count asked for) then still makes a set whose
  labels agree with that classifier, at the price of more candidates and of keeping the samples the
  classifier finds easy.
* memorisation: the RMS pixel distance (L2 over C*H*W values in [0, 1], divided by sqrt(C*H*W)) to the
  nearest training image must be at least ``max_memorization``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from gvae.defaults import REALISM_CALIBRATION
from gvae.errors import GvaeError
from gvae.generation.latents import BLOCK, CALIBRATION, SAMPLES, forward_padded
from gvae.metrics import nearest_distances

CALIBRATION_SIZE = REALISM_CALIBRATION  # candidates whose discriminator logits set the realism threshold
MAX_ATTEMPTS = 256  # candidates per index before the filters are declared too strict
FILTERS = ("realism", "label", "memorization")  # in the order they judge a candidate


@dataclass
class Sample:
    """One generated image: ``pixels`` uint8 [H, W, C]; ``rejected`` counts, per filter (:data:`FILTERS`), the
    candidates of this index that it turned down before this one."""

    index: int
    pixels: np.ndarray
    label: int | None
    meta: dict[str, Any]
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FILTERS, 0))


class LabelCheck:
    """Rejects images that ``classifier`` (from ``gvae eval train-features``) does not assign to their label."""

    def __init__(self, classifier: torch.nn.Module):
        self.classifier = classifier

    @torch.no_grad()
    def keep(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """images [B, C, H, W] in [0, 1], labels [B] -> bool [B] (a canonical batch, padded like the decoder's)."""
        device = next(self.classifier.parameters()).device
        logits = forward_padded(self.classifier, images.to(device))
        return logits.argmax(1).cpu() == labels.cpu()


class Memorization:
    """Rejects images whose nearest training image is closer than ``threshold`` (RMS pixel distance)."""

    def __init__(self, train_images: torch.Tensor, threshold: float):
        self.reference = train_images.flatten(1).double()  # [M, C*H*W] in [0, 1]; float64 once, not per call
        self.threshold = threshold

    def keep(self, images: torch.Tensor) -> torch.Tensor:
        """images [B, C, H, W] in [0, 1] -> bool [B]."""
        distance = nearest_distances(images, self.reference) / math.sqrt(self.reference.shape[1])
        return distance >= self.threshold


def quantize(images: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] in [0, 1] -> uint8 [B, H, W, C] on the CPU: what is written, and what filters judge."""
    # NaN would cast to black pixels and pass silently. A float64 sum is non-finite exactly when a pixel is (no
    # finite float32 or bfloat16 can overflow it), and it reads the batch once without a boolean copy of it.
    if not images.sum(dtype=torch.float64).isfinite():
        raise GvaeError("the model decoded non-finite pixel values (NaN or infinity); its weights or the "
                        "temperature are broken")
    return (images.float() * 255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu()


class Producer:
    """Makes the samples of any index range; ``latents`` is a PriorLatents or PosteriorLatents."""

    def __init__(self, model, latents, min_realism: float | None = None, memorization: Memorization | None = None,
                 label_check: LabelCheck | None = None, precision: str = "fp32"):
        if min_realism is not None and model.disc is None:
            raise GvaeError(f"--min-realism needs a discriminator, and a {model.kind} model has none; "
                            f"drop --min-realism or generate from a gvae/vaegan run")
        self.model, self.latents, self.memorization, self.label_check = model, latents, memorization, label_check
        self.device = next(model.parameters()).device
        self.bf16 = precision == "bf16"
        self.threshold = None if min_realism is None else self._calibrate(min_realism)
        self._group: tuple[int, list[Sample]] | None = None

    def _labels(self, stream: int, indices: list[int]) -> tuple[torch.Tensor, ...]:
        """() for an unconditional model, else (labels [n],) on the device: the extra input of each forward."""
        labels = self.latents.labels(stream, indices)
        return () if labels is None else (labels.to(self.device),)

    @torch.no_grad()
    def _decode(self, stream: int, indices: list[int], attempt: int) -> torch.Tensor:
        """Candidates of ``indices`` as uint8 [n, H, W, C]; one forward pass, so ``indices`` is a canonical batch."""
        z = self.latents.latents(stream, indices, attempt).to(self.device)
        with self._autocast():
            return quantize(forward_padded(self.model.decode, z, *self._labels(stream, indices)))

    @torch.no_grad()
    def _realism(self, pixels: torch.Tensor, stream: int, indices: list[int]) -> torch.Tensor:
        """Discriminator logits [n] of uint8 [n, H, W, C] images, the candidates of ``indices``."""
        images = pixels.permute(0, 3, 1, 2).float().div_(255).to(self.device)
        with self._autocast():
            return forward_padded(self.model.disc, images, *self._labels(stream, indices))[0].float().cpu()

    def _autocast(self) -> torch.autocast:
        """bfloat16 autocast for the model's passes with ``precision="bf16"``, else a context that changes nothing."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def _calibrate(self, quantile: float) -> float:
        if not 0 <= quantile < 1:
            raise GvaeError(f"--min-realism: got {quantile}; give the fraction to reject, in [0, 1)")
        blocks = [list(range(b, b + BLOCK)) for b in range(0, CALIBRATION_SIZE, BLOCK)]
        logits = [self._realism(self._decode(CALIBRATION, indices, 0), CALIBRATION, indices) for indices in blocks]
        return float(torch.quantile(torch.cat(logits).double(), quantile))

    def _run_group(self, g: int) -> list[Sample]:
        """All BLOCK samples of group g, each the first of its candidates that passes the filters."""
        chosen: dict[int, torch.Tensor] = {}
        rejected = {i: dict.fromkeys(FILTERS, 0) for i in range(g * BLOCK, (g + 1) * BLOCK)}
        pending = list(rejected)
        for attempt in range(MAX_ATTEMPTS):
            pixels = self._decode(SAMPLES, pending, attempt)
            verdicts = self._judge(pixels, pending)
            for position, index in enumerate(pending):
                failed = next((name for name in FILTERS if not verdicts[name][position]), None)
                if failed is None:
                    chosen[index] = pixels[position]
                else:
                    rejected[index][failed] += 1
            pending = [i for i in pending if i not in chosen]
            if not pending:
                break
        else:
            raise GvaeError(f"the filters rejected {MAX_ATTEMPTS} candidates in a row for sample {pending[0]}; "
                            f"lower --min-realism or --max-memorization, or drop --label-classifier")
        samples = []
        for index in sorted(chosen):
            label, meta = self.latents.describe(index)
            samples.append(Sample(index, chosen[index].numpy(), label, meta, rejected[index]))
        return samples

    def _judge(self, pixels: torch.Tensor, pending: list[int]) -> dict[str, torch.Tensor]:
        """bool [n] per filter: whether each candidate of ``pending`` passes it. A filter judges only the
        candidates every earlier one passed (the others count as passing it), so each rejection is counted
        once, by the first filter that fails, and the costly memorisation search runs on the fewest."""
        passed = torch.ones(len(pending), dtype=torch.bool)
        verdicts = {name: torch.ones(len(pending), dtype=torch.bool) for name in FILTERS}
        if self.threshold is not None:
            verdicts["realism"] = self._realism(pixels, SAMPLES, pending) >= self.threshold
            passed &= verdicts["realism"]
        if self.label_check is not None and passed.any():
            labels = self.latents.labels(SAMPLES, pending)
            images = pixels[passed].permute(0, 3, 1, 2).float() / 255
            verdicts["label"][passed] = self.label_check.keep(images, labels[passed])
            passed &= verdicts["label"]
        if self.memorization is not None and passed.any():
            verdicts["memorization"][passed] = self.memorization.keep(pixels[passed].permute(0, 3, 1, 2).double() / 255)
        return verdicts

    def samples(self, start: int, stop: int) -> list[Sample]:
        """Samples [start, stop) in index order; the last group computed is kept for the next call."""
        out: list[Sample] = []
        for g in range(start // BLOCK, math.ceil(stop / BLOCK)):
            if self._group is None or self._group[0] != g:
                self._group = (g, self._run_group(g))
            group = self._group[1]
            out += group[max(start - g * BLOCK, 0):min(stop - g * BLOCK, BLOCK)]
        return out
