"""The containers every model kind shares, and how a model is assembled from its parts.

A :class:`GenerativeModel` holds two players, each trained by its own optimizer:

* ``ae`` (:class:`Autoencoder`): encoder q(z|x), generator p(x|z) and the likelihood's parameters. Its
  ``forward`` is the only way training runs it, because DDP and DeepSpeed synchronise (and ZeRO-3 gathers)
  parameters in hooks around ``forward``.
* ``disc``: the discriminator, or None for the plain VAEs.

The kinds themselves are :mod:`gvae.models.gvae` and :mod:`gvae.models.baselines`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gvae.config import Recipe, uses_feature_matching
from gvae.errors import GvaeError
from gvae.models.conditioning import ClassMeans, LabelledEncoder, LabelledGenerator, check_labels
from gvae.models.discriminator import Discriminator
from gvae.models.encoder import ConvEncoder
from gvae.models.generator import ConvGenerator
from gvae.models.likelihoods import get_likelihood


@dataclass
class AEOutput:
    """What one autoencoder forward returns; B images in, shapes below.

    mu, logvar, z: [B, latent], q(z|x) and the sample z = mu + sigma * eps fed to the generator (before the
    latent noise). recon_params: [B, P, H, W], the likelihood's parameters for the reconstruction.
    recon: [B, C, H, W] in [0, 1], its mean image. fake: [B', C, H, W] in [0, 1], the mean images of the
    prior latents given to ``forward`` (None without them). log_px_z: [B], log p(x|z) of the input in nats,
    computed inside ``forward`` so that the likelihood's learned parameters are used under DDP/ZeRO hooks.
    fake_labels: [B'] int64, the classes of the prior latents of a conditional model (None otherwise).
    """

    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    recon_params: torch.Tensor
    recon: torch.Tensor
    fake: torch.Tensor | None
    log_px_z: torch.Tensor
    fake_labels: torch.Tensor | None = None


class Autoencoder(nn.Module):
    """Encoder + generator + likelihood head: everything the generator-side optimizer trains.

    ``latent_noise`` is the std of the noise added to z at the generator's input in training mode (0 for the
    baselines). With ``num_classes`` > 0 the encoder and generator are the labelled ones of
    :mod:`gvae.models.conditioning` and every call needs labels; with 0, labels are ignored.
    """

    def __init__(self, encoder: nn.Module, generator: nn.Module, likelihood, channels: int,
                 latent_noise: float = 0.0, num_classes: int = 0, class_means: ClassMeans | None = None):
        super().__init__()
        self.encoder = encoder
        self.generator = generator
        self.head = likelihood.head(channels)
        self.likelihood = likelihood
        self.latent_noise = latent_noise
        self.num_classes = num_classes
        self.class_means = class_means

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, C, H, W] (and labels [B] if conditional) -> (mu, logvar) [B, latent], of u = z - m_y with a
        per-class prior (``class_means``)."""
        if not self.num_classes:
            return self.encoder(x)
        labels = check_labels(labels, self.num_classes, len(x))
        if self.class_means is None:
            return self.encoder(x, labels)
        mu, logvar = self.encoder(x)
        return mu - self.class_means(labels).to(mu.dtype), logvar

    def decode_params(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """z [N, latent] (and labels [N] if conditional) -> the likelihood's parameters [N, P, H, W], no noise.
        With a per-class prior z is u = z - m_y, and m_y is added back here."""
        if not self.num_classes:
            return self.head(self.generator(z))
        labels = check_labels(labels, self.num_classes, len(z))
        if self.class_means is not None:
            z = z + self.class_means(labels).to(z.dtype)
        return self.head(self.generator(z, labels))

    def forward(self, x: torch.Tensor, z_prior: torch.Tensor | None = None, input_noise: float = 0.0,
                labels: torch.Tensor | None = None, prior_labels: torch.Tensor | None = None) -> AEOutput:
        """Reconstruct x [B, C, H, W] in [0, 1] and, if given, decode prior latents z_prior [B', latent].

        ``input_noise`` is sigma_x, the std of Gaussian noise added to the encoder's input (in image units).
        Reconstructions and prior samples go through the generator in one batch, so that normalisation
        statistics see both. A conditional model needs ``labels`` [B] of x and ``prior_labels`` [B'] of z_prior.
        """
        x_in = x + input_noise * torch.randn_like(x) if input_noise > 0 else x
        mu, logvar = self.encode(x_in, labels)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        z_gen = z + self.latent_noise * torch.randn_like(z) if self.training and self.latent_noise > 0 else z
        latents = z_gen if z_prior is None else torch.cat([z_gen, z_prior.to(z_gen.dtype)])
        fake_labels = prior_labels if self.num_classes and z_prior is not None else None
        all_labels = None
        if self.num_classes:
            all_labels = labels if z_prior is None else torch.cat([labels, check_labels(prior_labels,
                                                                                         self.num_classes,
                                                                                         len(z_prior))])
        params = self.decode_params(latents, all_labels)
        recon_params, fake_params = params[: x.shape[0]], params[x.shape[0]:]
        return AEOutput(
            mu=mu, logvar=logvar, z=z, recon_params=recon_params,
            recon=self.likelihood.mean(recon_params),
            fake=None if z_prior is None else self.likelihood.mean(fake_params),
            log_px_z=self.likelihood.log_prob(recon_params, x), fake_labels=fake_labels,
        )


class GenerativeModel(nn.Module):
    """One model of any kind, with the inference interface that generation and evaluation use.

    What the kind is made of is asked, not read off its name: ``has_discriminator``, ``takes_input_noise``,
    ``uses_feature_matching`` (from :attr:`gvae.config.ModelConfig.traits`, the one table of kinds, and for
    feature matching the recipe's ``loss.feature_matching`` where it is set).

    ``encode``, ``decode``, ``log_px_z`` and ``sample`` never add noise; call them in eval mode (BatchNorm
    then uses its running statistics, dropout is off). A class-conditional model (``num_classes`` > 0, class
    ``class_names[y]`` for label y) needs ``labels`` int64 [B] in each of them and raises GvaeError without;
    an unconditional one (``num_classes`` 0, ``class_names`` []) ignores them.
    """

    def __init__(self, recipe: Recipe, ae: Autoencoder, disc: nn.Module | None):
        super().__init__()
        self.recipe = recipe  # the resolved recipe it was built from (a run's config.yaml when loaded)
        self.kind = recipe.model.kind
        self.ae = ae
        self.disc = disc
        self.latent_dim = recipe.model.latent_dim
        self.resolution = recipe.data.resolution
        self.channels = recipe.data.channels
        self.class_names = list(recipe.model.class_names)
        self.num_classes = len(self.class_names)
        self.checkpoint_path: str | None = None  # set by gvae.load: the checkpoint directory it was read from

    @property
    def likelihood(self):
        return self.ae.likelihood

    @property
    def has_discriminator(self) -> bool:
        """Whether training plays it against a discriminator (``disc``), with a second optimizer."""
        return self.disc is not None

    @property
    def takes_input_noise(self) -> bool:
        """Whether training adds ``model.input_noise`` (annealed) to the encoder's input."""
        return self.recipe.model.traits.input_noise

    @property
    def uses_feature_matching(self) -> bool:
        """Whether the generator's loss also measures reconstructions in the discriminator's features."""
        return uses_feature_matching(self.recipe)

    def encode(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x [B, C, H, W] in [0, 1] (labels [B] if conditional) -> (mu, logvar) [B, latent] of q(z|x[, y])."""
        return self.ae.encode(x, labels)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """z [B, latent] (labels [B] if conditional) -> the likelihood's mean image [B, C, H, W] in [0, 1]."""
        return self.likelihood.mean(self.ae.decode_params(z, labels))

    def log_px_z(self, x: torch.Tensor, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x|z[, y]) [B] in nats for images x [B, C, H, W] (multiples of 1/255) and latents z [B, latent]."""
        return self.likelihood.log_prob(self.ae.decode_params(z, labels), x)

    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        """n prior samples z ~ N(0, temperature^2 I) (of classes ``labels`` [n] if conditional), decoded to mean
        images [n, C, H, W] in [0, 1].

        z is drawn on ``generator``'s device (the CPU by default) and then moved, so a seeded CPU generator
        gives the same latents whatever device the model is on.
        """
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator,
                        device=generator.device if generator is not None else device)
        return self.decode(temperature * z.to(device), None if labels is None else labels.to(device))

    def param_counts(self) -> dict[str, int]:
        """Parameters per part; the likelihood's learned scale counts with the generator."""
        def count(module: nn.Module | None) -> int:
            return sum(p.numel() for p in module.parameters()) if module is not None else 0

        counts = {"encoder": count(self.ae.encoder),
                  "generator": count(self.ae.generator) + count(self.ae.head),
                  "discriminator": count(self.disc)}
        counts["total"] = sum(counts.values())
        return counts


def build_model_of(recipe: Recipe, encoder_class: type, generator_class: type,
                   latent_noise: float) -> GenerativeModel:
    """A model of encoder/generator classes built as ``cls(channels, resolution, latent_dim, cfg)``, with a
    discriminator when the kind has one (``model.traits``); the labelled versions of
    :mod:`gvae.models.conditioning` when the recipe is conditional (``model.class_names`` filled in from the
    data)."""
    cfg, c, r = recipe.model, recipe.data.channels, recipe.data.resolution
    k = len(cfg.class_names)
    if cfg.conditional and not k:
        raise GvaeError("model.conditional: true but model.class_names is empty; training fills them in from the "
                        "data's dataset.json (build the model from a run's config.yaml, or set them)")
    class_means = ClassMeans(k, cfg.latent_dim) if k and cfg.class_prior else None
    if k and not cfg.class_prior:
        encoder = LabelledEncoder(lambda channels: encoder_class(channels, r, cfg.latent_dim, cfg), c, k)
    else:
        encoder = encoder_class(c, r, cfg.latent_dim, cfg)
    if k:
        generator = LabelledGenerator(lambda inputs: generator_class(c, r, inputs, cfg), cfg.latent_dim, k)
    else:
        generator = generator_class(c, r, cfg.latent_dim, cfg)
    ae = Autoencoder(encoder, generator, get_likelihood(cfg.likelihood), c, latent_noise, k, class_means)
    disc = Discriminator(c, r, cfg, k) if cfg.traits.discriminator else None
    return GenerativeModel(recipe, ae, disc)


def build_conv_model(recipe: Recipe, latent_noise: float) -> GenerativeModel:
    """The ResNet encoder/generator pair of gvae, vae and vaegan, with or without a discriminator."""
    return build_model_of(recipe, ConvEncoder, ConvGenerator, latent_noise)
