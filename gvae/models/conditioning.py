"""Class-conditional models (``model.conditional: true``): where the label enters each network.

A conditional model of K classes takes labels int64 [B] in [0, K) beside its images or latents:

* encoder q(z|x, y): the label's learned embedding (:data:`ENCODER_LABEL_CHANNELS` numbers) is appended to the
  image as constant extra channels. Why the encoder sees it too (a CVAE): z then has no reason to carry the
  class, so the generator has to take it from y, and a prior sample z ~ N(0, I) decodes to the class asked for.
  In practice z still carries much of the class (it is cheap in KL and helps reconstruction), a prior z drawn
  regardless of y then often lands among another class's codes, and the generator follows z more than y.
* or, with ``model.class_prior``, a prior per class: p(z|y) = N(m_y, I), m_y the average code of class y
  (:class:`ClassMeans`), and an encoder that sees the image alone, q(z|x) = N(f(x), s(x)^2). The KL term then
  gathers the codes of class-y images around m_y, and a class-y prior sample is drawn there. The model works in
  u = z - m_y, whose prior is N(0, I) for every class: the encoder's means are returned less m_y and the
  generator adds m_y back, so the loss, sampling, temperature and log-likelihood code stay those of N(0, I).
  (With an encoder that saw y, m_y could be folded into it, and this would be the CVAE again.)
* generator p(x|z, y): a learned embedding of ``latent_dim`` numbers is concatenated to z.
* discriminator: a projection discriminator (Miyato & Koyama, 2018), logit = linear(h) + <embed(y), h> on the
  flattened 4x4 features h (see :class:`gvae.models.discriminator.Discriminator`).

Labels -1 (unlabelled samples) are refused: a conditional run needs every training image labelled. The class
names and per-class counts come from the training data's dataset.json when training starts
(:func:`with_data_classes`) and are stored in the resolved recipe, so a checkpoint's config.yaml carries them.
Unconditional models ignore labels, so callers may pass a batch's labels whatever the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from gvae.config import Recipe
from gvae.errors import GvaeError

ENCODER_LABEL_CHANNELS = 4


def check_labels(labels: torch.Tensor | None, num_classes: int, rows: int) -> torch.Tensor:
    """``labels`` int64 [rows] in [0, num_classes), or GvaeError saying what is wrong with them."""
    if labels is None:
        raise GvaeError(f"this model is class-conditional ({num_classes} classes): pass labels, int64 [B] in "
                        f"[0, {num_classes})")
    if labels.shape != (rows,):
        raise GvaeError(f"labels of shape {list(labels.shape)} for {rows} rows; expected [{rows}]")
    if rows and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise GvaeError(f"labels must be in [0, {num_classes}), got {int(labels.min())}..{int(labels.max())} "
                        f"(-1 marks an unlabelled image, which a conditional model cannot use)")
    return labels


class LabelledEncoder(nn.Module):
    """q(z|x, y): ``make_encoder(channels)`` built for C + :data:`ENCODER_LABEL_CHANNELS` input channels.

    x [B, C, H, W] and labels [B] -> (mu, logvar) [B, latent].
    """

    def __init__(self, make_encoder: Callable[[int], nn.Module], channels: int, num_classes: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, ENCODER_LABEL_CHANNELS)
        self.encoder = make_encoder(channels + ENCODER_LABEL_CHANNELS)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.embed(labels).to(x.dtype)[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return self.encoder(torch.cat([x, maps], 1))


class ClassMeans(nn.Module):
    """The prior's mean per class, m_y [K, latent]: a running average of the encoder's means of class-y images.

    Why not a learned parameter: given the encoder, the KL term is smallest with m_y at the average posterior
    mean of class y, so that is where it belongs; a parameter gets there only at the optimizer's pace (Adam
    moves it about one learning rate per step: 0.03 after 80 steps at 2e-3), far behind the encoder. Estimated
    like BatchNorm's statistics, but outside ``forward`` so that all processes can pool their batches first:
    after each optimizer step the training loop moves the mean of every class in the step's batches by
    :attr:`MOMENTUM` towards their average code (:meth:`batch_sums`, :meth:`update`). They start at 0, the
    unconditional prior, and are saved with the weights (a buffer).
    """

    MOMENTUM = 0.1

    def __init__(self, num_classes: int, latent_dim: int):
        super().__init__()
        self.register_buffer("means", torch.zeros(num_classes, latent_dim))

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        """labels [B] -> m_y [B, latent]."""
        return self.means[labels]

    @torch.no_grad()
    def batch_sums(self, u: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per class, the sum of the codes z = u + m_y of the posterior means ``u`` [B, latent] that the model
        returned (they are relative to the current means), and their count: ([K, latent], [K]), float32."""
        codes = u.detach().float() + self(labels)
        sums = torch.zeros_like(self.means).index_add_(0, labels, codes)
        return sums, torch.bincount(labels, minlength=len(self.means)).float()

    @torch.no_grad()
    def update(self, sums: torch.Tensor, counts: torch.Tensor, momentum: float = MOMENTUM) -> None:
        """Move the mean of every class with a count towards sums / counts by ``momentum`` (1: replace it)."""
        seen = counts > 0
        self.means[seen] = self.means[seen].lerp(sums[seen] / counts[seen, None], momentum)


class LabelledGenerator(nn.Module):
    """p(x|z, y): ``make_generator(latent_dim)`` fed cat(z, embed(y)), 2 * latent_dim numbers.

    z [B, latent] and labels [B] -> raw outputs [B, C, H, W].
    """

    def __init__(self, make_generator: Callable[[int], nn.Module], latent_dim: int, num_classes: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.generator = make_generator(2 * latent_dim)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.generator(torch.cat([z, self.embed(labels).to(z.dtype)], 1))


def with_data_classes(recipe: Recipe, info: dict | None, data: str) -> Recipe:
    """``recipe`` with ``model.class_names`` and ``model.class_counts`` read from the training data's dataset.json
    (``info``, read from ``data``); unchanged for an unconditional recipe.

    A conditional recipe on data without label names is an error naming the key and the data, and so is one
    whose stored class names (a resumed run) differ from the data's.
    """
    model = recipe.model
    if not model.conditional:
        return recipe
    names = list((info or {}).get("label_names") or [])
    if not names:
        raise GvaeError(f"model.conditional: true needs labelled training data, but {data} has no label names in "
                        f"its dataset.json; pack it with labels (e.g. --labels-from-dirs) or set "
                        f"model.conditional=false")
    if model.class_names and model.class_names != names:
        raise GvaeError(f"model.class_names: {model.class_names} in the recipe, {names} in {data}; train on the "
                        f"data the run was started on")
    counts = (info or {}).get("splits", {}).get("train", {}).get("label_counts") or []
    return dataclasses.replace(recipe, model=dataclasses.replace(model, class_names=names,
                                                                 class_counts=[int(c) for c in counts]))
