"""Losses of the two players, as pure functions of module outputs.

The training loop calls them with ``ae``/``disc`` possibly wrapped by DDP or DeepSpeed, so they only ever call
``disc(images)`` (its ``forward``, once per loss: a DDP-wrapped BatchNorm discriminator must not run two
forwards before one backward) and read the autoencoder through the :class:`AEOutput` of its one forward::

    schedule_values(recipe, step) -> {"input_noise": float, "beta": float}
    generator_loss(out, x, disc, loss_cfg, beta, feature_matching, labels=None, augment=None,
                   label_classifier=None) -> (total, terms)
    generator_term_weights(loss_cfg, beta, dims) -> {"nll": ..., "kl": ..., "feature": ..., "adv": ..., "label": ...}
    discriminator_loss(disc, x, out, loss_cfg, labels=None) -> (total, terms)

``x`` is the real batch [B, C, H, W] in [0, 1]; ``terms`` holds scalars for logging: the discriminator's are
detached, the generator's unweighted terms stay on the graph so that :mod:`gvae.train.diagnostics` can measure
the gradient each one puts on the networks (detach them before keeping them). For a conditional model
``labels`` [B] are the real batch's classes, which its reconstructions share, and the prior samples' classes
are ``out.fake_labels``; the discriminator gets the labels of every image it judges.

Units: every term is per image, averaged over the batch. The reconstruction term is -log p(x|z) in nats
(summed over the D = C*H*W pixel values) and the KL term is in nats, so pixel_weight = beta = 1 is the ELBO.
The adversarial and feature terms are multiplied by D so that ``adv_weight`` is a weight per pixel value
relative to the likelihood, and the same weight means the same balance at 32 and at 1024 px.

The generator's adversarial term covers both kinds of fakes, reconstructions G(E(x)) and prior samples G(z),
in one discriminator forward on cat(recon, fake); the discriminator tells reals from both. The loop sets the
discriminator's parameters to requires_grad=False around the generator's backward, so that the generator's
loss leaves no gradient on them (ZeRO-2/3 also require it).

With ``label_classifier`` (``loss.label_classifier``: a frozen classifier of the data's classes, for a
conditional model), the generator's loss also has label_weight * D * the classifier's cross-entropy between
each prior sample and the label it was drawn with: a direct signal to draw what the label asks for, where the
likelihood alone lets the latent decide (logged: ``label``, and ``label_acc``, the share of prior samples the
classifier gives their label).

Both losses take ``augment=None``: a :class:`gvae.models.augment.DiscriminatorAugment` that transforms every
batch on its way into ``disc`` and nothing else, so the likelihood term always sees x and the generator's
outputs as they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from gvae.budget import input_noise_anneal_steps, kl_warmup_steps
from gvae.config import LossConfig, Recipe
from gvae.gaussian import gaussian_kl
from gvae.models.core import AEOutput


def _augmented(augment: Callable | None, images: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """What the discriminator is shown: ``images`` through ``augment`` (groups: see DiscriminatorAugment)."""
    return images if augment is None else augment(images, groups)


def _ramp(step: int, steps: int) -> float:
    """0 -> 1 linearly over ``steps`` (1 throughout when steps == 0)."""
    return 1.0 if steps == 0 else min(1.0, step / steps)


def schedule_values(recipe: Recipe, step: int) -> dict[str, float]:
    """The scheduled values at ``step``: input noise sigma_x (annealed to 0; 0 for a kind that takes none) and the
    KL weight beta."""
    model = recipe.model
    noise = model.input_noise
    anneal_steps = input_noise_anneal_steps(recipe)
    if anneal_steps:
        noise *= 1.0 - _ramp(step, anneal_steps)
    return {"input_noise": noise if model.traits.input_noise else 0.0,
            "beta": recipe.loss.beta * _ramp(step, kl_warmup_steps(recipe))}


def _adversarial_generator(logits: torch.Tensor, loss_cfg: LossConfig) -> torch.Tensor:
    """Generator side, mean over fakes: non-saturating -log sigmoid(D(fake)), or -D(fake) for hinge."""
    return F.softplus(-logits).mean() if loss_cfg.adv_loss == "nonsat" else -logits.mean()


def generator_term_weights(loss_cfg: LossConfig, beta: float, dims: int) -> dict[str, float]:
    """The weight of each of :func:`generator_loss`'s terms in its total; ``dims`` = D = C*H*W."""
    return {"nll": loss_cfg.pixel_weight, "kl": beta, "feature": loss_cfg.feature_weight * dims,
            "adv": loss_cfg.adv_weight * dims, "label": loss_cfg.label_weight * dims}


def _judged_labels(labels: torch.Tensor | None, out: AEOutput, with_real: bool) -> torch.Tensor | None:
    """Labels of cat([x,] recon[, fake]) for a conditional discriminator; None for an unconditional model."""
    if labels is None:
        return None
    parts = [labels] * (2 if with_real else 1) + ([] if out.fake is None else [out.fake_labels])
    return torch.cat(parts)


def generator_loss(out: AEOutput, x: torch.Tensor, disc: nn.Module | None, loss_cfg: LossConfig, beta: float,
                   feature_matching: bool, labels: torch.Tensor | None = None,
                   augment: Callable | None = None,
                   label_classifier: nn.Module | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss of encoder + generator: pixel_weight * NLL + beta * KL (+ adversarial, + vaegan feature term).

    NLL = -log p(x|z) and KL in nats per image. With a discriminator, the adversarial term is
    adv_weight * D * (non-saturating or hinge loss on cat(recon, fake)). With ``feature_matching`` (the model's
    ``uses_feature_matching``: vaegan), the real images go through the same forward and the reconstruction is
    also measured in the discriminator's features,
    feature_weight * D * 0.5 * mean((f(recon) - f(x))^2): a unit-variance Gaussian in feature space (Larsen et
    al., 2016), per feature, with the real features detached so that only the autoencoder moves; there each
    real image and its reconstruction get the same augmentation, so the features compare like with like.
    """
    dims = x[0].numel()
    nll = -out.log_px_z.mean()
    kl = gaussian_kl(out.mu, out.logvar).mean()
    weights = generator_term_weights(loss_cfg, beta, dims)
    total = weights["nll"] * nll + weights["kl"] * kl
    terms = {"nll": nll, "kl": kl, "bpd": nll / (dims * math.log(2))}
    if disc is not None:
        fakes = [out.recon] if out.fake is None else [out.recon, out.fake]
        with_real = feature_matching
        shown = [x, *fakes] if with_real else fakes
        logits, features = disc(_augmented(augment, torch.cat(shown), len(shown) if with_real else 1),
                                _judged_labels(labels, out, with_real))
        if with_real:
            b = x.shape[0]
            feature = 0.5 * (features[b:2 * b] - features[:b].detach()).square().mean()
            total = total + weights["feature"] * feature
            terms["feature"] = feature
            logits = logits[b:]
        adv = _adversarial_generator(logits, loss_cfg)
        total = total + weights["adv"] * adv
        terms["adv"] = adv
    if label_classifier is not None and out.fake is not None:
        scores = label_classifier(out.fake)
        label = F.cross_entropy(scores.float(), out.fake_labels)
        total = total + weights["label"] * label
        terms["label"] = label
        terms["label_acc"] = (scores.argmax(1) == out.fake_labels).float().mean().detach()
    terms["total"] = total
    return total, terms


def discriminator_loss(disc: nn.Module, x: torch.Tensor, out: AEOutput, loss_cfg: LossConfig,
                       labels: torch.Tensor | None = None,
                       augment: Callable | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss of the discriminator on one forward of cat(real, recon, fake), fakes detached.

    With ``augment``, the discriminator sees that batch augmented; R1's gradient is taken with respect to the
    reals before augmentation. Also logged: the mean of sign(D(real)) (d_real_sign, ADA's overfitting estimate
    r_t: near 1 when D is sure of every real image).

    Non-saturating: softplus(-D(real)) + softplus(D(fake)); hinge: relu(1 - D(real)) + relu(1 + D(fake));
    each a mean, over reals and over all fakes. R1 (Mescheder et al., 2018) adds r1_gamma / 2 * E|grad_x D(x)|^2
    on reals. Logged: the mean logits on reals (d_real), reconstructions (d_recon) and prior samples (d_fake),
    and the discriminator's accuracy on each: the fraction of reals with D > 0 (d_acc_real), of
    reconstructions and prior samples with D < 0 (d_acc_recon, d_acc_fake). Accuracies near 1 from the first
    hundred steps mean the discriminator has won and the adversarial gradient tells the generator little.
    """
    b = x.shape[0]
    real = x.detach().requires_grad_(loss_cfg.r1_gamma > 0)
    fakes = [out.recon.detach()] + ([] if out.fake is None else [out.fake.detach()])
    logits, _ = disc(_augmented(augment, torch.cat([real, *fakes])), _judged_labels(labels, out, with_real=True))
    real_logits, fake_logits = logits[:b], logits[b:]
    if loss_cfg.adv_loss == "nonsat":
        total = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    else:
        total = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    terms = {"d_real": real_logits.mean(), "d_recon": fake_logits[:b].mean(),
             "d_acc_real": (real_logits > 0).float().mean(), "d_acc_recon": (fake_logits[:b] < 0).float().mean()}
    if out.fake is not None:
        terms["d_fake"] = fake_logits[b:].mean()
        terms["d_acc_fake"] = (fake_logits[b:] < 0).float().mean()
    if loss_cfg.r1_gamma > 0:
        (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
        r1 = grad.square().flatten(1).sum(1).mean()
        total = total + 0.5 * loss_cfg.r1_gamma * r1
        terms["r1"] = r1
    terms["d_real_sign"] = real_logits.sign().mean()
    terms["d_loss"] = total
    return total, {name: value.detach() for name, value in terms.items()}
