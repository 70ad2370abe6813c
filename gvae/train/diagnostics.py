"""What shows a GAN-VAE run going wrong while it trains, for ``metrics.jsonl`` on logging steps.

Grey-blob prior samples have a few usual causes, each with its own signature:

* the discriminator has won: its accuracies (``d_acc_*``, logged every step by
  :func:`gvae.models.losses.discriminator_loss`) sit near 1;
* one loss term drowns the others: ``gnorm_<term>`` is the norm of the gradient that each weighted generator
  term puts on the generator's last layer, ``gnorm_enc_<term>`` on the encoder's last layer (the KL term only
  reaches the encoder, so it has no ``gnorm_kl``);
* the posterior collapsed or left holes in the prior: ``active_units`` (Burda et al., 2016: latent dimensions
  whose posterior mean varies over the batch, Cov_x(E_q[z|x]) > 0.01) and the aggregate posterior
  q(z) = mean_x q(z|x) against N(0, I): ``agg_mean_abs`` = mean_d |E[z_d]|, ``agg_var`` = mean_d Var[z_d] and
  ``agg_kl`` = KL(N(m, diag v) || N(0, I)) of its moment-matched Gaussian, in nats. Where q(z) leaves mass
  of N(0, I) uncovered, prior samples decode to images the generator never learned.

A conditional model has one more way to fail, with good-looking samples: its generator ignores the label
(the encoder put the class into the latent, and the generator reads it there), so a labelled set's labels
say nothing about its images. ``label_share`` (:func:`gvae.metrics.classes.label_share`) is the share of the
samples' variation that the label decides against the latent, 0 when it is ignored: the live generator in
eval mode, on :data:`LABEL_SHARE_SAMPLES` prior latents and uniform labels drawn from a generator seeded by
the step (so the training's own random numbers are untouched), after the generator's update.

The gradient norms and posterior statistics come from the main process's last micro-batch of a step that
ends on a log line, before its backward pass. The norms use ``torch.autograd.grad`` with
``retain_graph=True``, which returns the gradients without touching any ``.grad`` (so the step is unchanged)
but costs one extra backward per term: hence logging steps only. With ``model.latent_norm`` the posterior
means are standardised per batch, so every unit is active by construction and ``agg_mean_abs`` is ~0. With a
prior per class (``model.class_prior``) the codes are u = z - m_y, whose prior is N(0, I) for every class: a
unit that carries only the class counts as inactive, and the aggregate is that of u, against that prior.
"""

from __future__ import annotations

import torch
from torch import nn

from gvae.models.core import AEOutput

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2016): Cov_x(E_q[z|x]) above this counts as active
LABEL_SHARE_SAMPLES = 64  # prior samples that label_share decodes three times, on logging steps


def active_units(mu: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> int:
    """Latent dimensions whose posterior mean varies over the batch: unbiased variance of ``mu`` [B, L] over B
    above ``threshold``."""
    return int((mu.detach().float().var(0) > threshold).sum())


def aggregate_posterior(mu: torch.Tensor, logvar: torch.Tensor) -> dict[str, float]:
    """Moments of q(z) = mean_x q(z|x) over the batch's ``mu``, ``logvar`` [B, L], summarised against N(0, I).

    Per dimension, E[z_d] = mean_x mu_d and Var[z_d] = mean_x sigma_d^2 + Var_x mu_d (the law of total
    variance); ``agg_kl`` is 0.5 * sum_d (m_d^2 + v_d - 1 - log v_d), nats.
    """
    mu, var = mu.detach().double(), logvar.detach().double().exp()
    mean = mu.mean(0)
    total_var = var.mean(0) + mu.var(0, unbiased=False)
    kl = 0.5 * (mean.square() + total_var - 1 - total_var.log()).sum()
    return {"agg_mean_abs": float(mean.abs().mean()), "agg_var": float(total_var.mean()), "agg_kl": float(kl)}


def last_weight(module: nn.Module) -> nn.Parameter:
    """The weight of ``module``'s last layer: its last registered parameter with two or more dimensions."""
    return [p for p in module.parameters() if p.dim() > 1][-1]


def term_gradient_norms(terms: dict[str, torch.Tensor], weights: dict[str, float],
                        layers: dict[str, nn.Parameter]) -> dict[str, float]:
    """``{f"{prefix}{term}": |d (weight * term) / d layer|}`` for every weighted term and layer that it reaches.

    ``terms`` are scalars on the graph, ``weights`` their weights in the loss, ``layers`` maps a key prefix to a
    parameter. Gradients are taken with ``retain_graph=True`` and returned, not accumulated, so the backward pass
    that follows is the same as without this call.
    """
    norms = {}
    for name, weight in weights.items():
        if name not in terms or weight == 0:
            continue
        params = list(layers.values())
        grads = torch.autograd.grad(weight * terms[name], params, retain_graph=True, allow_unused=True)
        for prefix, grad in zip(layers, grads, strict=True):
            if grad is not None:
                norms[f"{prefix}{name}"] = float(grad.detach().float().norm())
    return norms


def generator_diagnostics(out: AEOutput, terms: dict[str, torch.Tensor], weights: dict[str, float],
                          ae: nn.Module, gradients: bool = True) -> dict[str, float]:
    """Posterior health of one micro-batch's ``out``, and (``gradients``) the per-term gradient norms.

    ``terms`` and ``weights`` are :func:`gvae.models.losses.generator_loss`'s terms (still on the graph) and
    :func:`gvae.models.losses.generator_term_weights`; ``ae`` is the unwrapped autoencoder.
    """
    values: dict[str, float] = {"active_units": float(active_units(out.mu)),
                                **aggregate_posterior(out.mu, out.logvar)}
    if gradients:
        layers = {"gnorm_": last_weight(ae.generator), "gnorm_enc_": last_weight(ae.encoder)}
        values.update(term_gradient_norms(terms, weights, layers))
    return values


def generator_label_share(model: nn.Module, step: int) -> float:
    """:func:`gvae.metrics.classes.label_share` of the conditional :class:`gvae.models.GenerativeModel` ``model``
    (unwrapped), its autoencoder in eval mode and restored to its mode after, on latents and labels seeded by
    ``step``."""
    from gvae.metrics.classes import prior_label_share  # here: gvae.metrics loads piq and torch-fidelity

    was_training = model.ae.training
    model.ae.eval()
    try:
        return prior_label_share(model.decode, model.latent_dim, model.num_classes, next(model.parameters()).device,
                                 LABEL_SHARE_SAMPLES, seed=step)
    finally:
        model.ae.train(was_training)
