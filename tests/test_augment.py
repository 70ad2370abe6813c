"""Discriminator augmentation: each op's known effect, gradients, where the losses apply it, ADA's controller,
exact resume with an adaptive p, and no leak into what the generator learns."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import gvae
from gvae.config import AugmentConfig, LossConfig, recipe_from_dict
from gvae.data import encode_png, write_shard
from gvae.errors import GvaeError
from gvae.models import AEOutput
from gvae.models.augment import (
    OPS,
    DiscriminatorAugment,
    adjust_brightness,
    adjust_contrast,
    adjust_saturation,
    cut_out,
    translate,
)
from gvae.models.losses import discriminator_loss, generator_loss
from gvae.train.adaptive_augment import AdaptiveProbability
from gvae.train.loop import Trainer, train
from tests.test_train import launch, weights
from tests.train_helpers import phantom_data, tiny_recipe

# batch 4, adjusted every 3 steps by 4 * 3 / 48 = 0.25: a run resumed at step 2 stops mid-interval
ADAPTIVE = ["augment.policy=[translation,cutout,brightness,contrast]", "augment.p=0.5", "augment.target=0.05",
            "augment.interval=3", "augment.speed_images=48"]


def delta(n: int, c: int, side: int, row: int, col: int) -> torch.Tensor:
    """n images of zeros with a single 1 at (row, col) in every channel."""
    x = torch.zeros(n, c, side, side)
    x[:, :, row, col] = 1.0
    return x


def test_translation_moves_a_delta_image_by_exactly_its_shift():
    moved = translate(delta(3, 2, 16, 5, 7), torch.tensor([2, -3, 0]), torch.tensor([-4, 1, 0]))
    expected = torch.cat([delta(1, 2, 16, 7, 3), delta(1, 2, 16, 2, 8), delta(1, 2, 16, 5, 7)])
    assert torch.equal(moved, expected)


def test_translation_fills_the_vacated_border_with_zeros():
    moved = translate(torch.ones(2, 1, 8, 8), torch.tensor([3, 0]), torch.tensor([0, -8]))
    assert moved[0, 0, :3].eq(0).all() and moved[0, 0, 3:].eq(1).all()
    assert moved[1].eq(0).all()  # shifted out of view entirely


def test_cutout_zeroes_a_square_of_the_stated_size_at_its_corner():
    cut = cut_out(torch.ones(1, 3, 10, 10), torch.tensor([2]), torch.tensor([6]), size=3)
    expected = torch.ones(1, 3, 10, 10)
    expected[:, :, 2:5, 6:9] = 0
    assert torch.equal(cut, expected)


def test_drawn_cutout_is_a_whole_square_of_the_given_fraction_of_the_side():
    torch.manual_seed(0)
    cut = DiscriminatorAugment(["cutout"], p=1.0, cutout=0.25)(torch.ones(20, 1, 16, 16))
    for image in cut[:, 0]:
        rows, cols = torch.nonzero(image == 0, as_tuple=True)
        assert len(rows) == 16  # 4 x 4 zeros ...
        assert rows.max() - rows.min() == 3 and cols.max() - cols.min() == 3  # ... forming one square


def test_brightness_adds_and_contrast_scales_about_the_image_mean():
    x = torch.tensor([0.1, 0.3, 0.5, 0.7]).view(1, 1, 2, 2).repeat(2, 1, 1, 1)  # mean 0.4
    brighter = adjust_brightness(x, torch.tensor([0.2, -0.1]))
    torch.testing.assert_close(brighter, torch.stack([x[0] + 0.2, x[1] - 0.1]))
    contrasted = adjust_contrast(x, torch.tensor([1.5, 0.5]))
    torch.testing.assert_close(contrasted[0].flatten(), torch.tensor([-0.05, 0.25, 0.55, 0.85]))
    torch.testing.assert_close(contrasted[1].flatten(), torch.tensor([0.25, 0.35, 0.45, 0.55]))


def test_saturation_scales_each_pixel_about_its_grey_value():
    x = torch.tensor([0.2, 0.5, 0.8]).view(1, 3, 1, 1)  # grey value 0.5
    torch.testing.assert_close(adjust_saturation(x, torch.tensor([0.0])).flatten(), torch.full((3,), 0.5))
    torch.testing.assert_close(adjust_saturation(x, torch.tensor([2.0])).flatten(), torch.tensor([-0.1, 0.5, 1.1]))


def test_probability_zero_is_the_identity_bit_for_bit():
    x = torch.rand(8, 3, 16, 16)
    assert torch.equal(DiscriminatorAugment(OPS, p=0.0)(x), x)


def test_each_op_applies_to_each_image_with_probability_p():
    torch.manual_seed(0)
    x = torch.arange(8.0).view(1, 1, 1, 8).repeat(4000, 1, 1, 1)  # flipping changes every image
    flipped = (DiscriminatorAugment(["flip"], p=0.3)(x) != x).flatten(1).any(1).float().mean()
    assert abs(flipped.item() - 0.3) < 0.03  # 4 standard errors of 4000 draws


def test_an_unknown_op_is_refused_when_the_policy_is_built():
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        DiscriminatorAugment(["translation", "rotate"], p=1.0)


def test_grey_images_never_get_colour_ops():
    saturate = DiscriminatorAugment(["saturation"], p=1.0)
    grey = torch.rand(4, 1, 8, 8)
    assert torch.equal(saturate(grey), grey)
    colour = torch.rand(4, 3, 8, 8)
    assert not torch.equal(saturate(colour), colour)


def test_grouped_blocks_get_the_same_transform_row_by_row():
    torch.manual_seed(0)
    block = torch.rand(6, 3, 8, 8)
    out = DiscriminatorAugment(OPS, p=0.5)(torch.cat([block, block]), groups=2)
    assert torch.equal(out[:6], out[6:])
    assert not torch.equal(out[:6], block)


def test_gradients_flow_through_every_op_to_the_images():
    augment = DiscriminatorAugment(OPS, p=1.0, translation=0.25, cutout=0.25)

    def seeded(x):  # the same draws at every call gradcheck makes
        torch.manual_seed(3)
        return augment(x)

    x = torch.rand(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(seeded, (x,))
    seeded(x).sum().backward()
    assert x.grad.abs().sum() > 0


class LinearDisc(torch.nn.Module):
    """logit = sum of the pixel values; records what it was shown."""

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, images, labels=None):
        self.seen.append(images.detach())
        return images.flatten(1).sum(1), images.flatten(1)


def doubled(images: torch.Tensor, groups: int = 1) -> torch.Tensor:
    return 2 * images


def fake_output(x: torch.Tensor) -> AEOutput:
    b = x.shape[0]
    return AEOutput(mu=torch.zeros(b, 2), logvar=torch.zeros(b, 2), z=torch.zeros(b, 2), recon_params=x,
                    recon=x.flip(3), fake=x.flip(2), log_px_z=-x.flatten(1).sum(1))


def test_both_losses_show_the_discriminator_only_augmented_images():
    x = torch.rand(2, 1, 4, 4)
    out, disc = fake_output(x), LinearDisc()
    before = [t.clone() for t in (x, out.recon, out.fake)]
    generator_loss(out, x, disc, LossConfig(), 1.0, feature_matching=False, augment=doubled)
    discriminator_loss(disc, x, out, LossConfig(), augment=doubled)
    assert torch.equal(disc.seen[0], 2 * torch.cat([out.recon, out.fake]))
    assert torch.equal(disc.seen[1], 2 * torch.cat([x, out.recon, out.fake]))
    assert all(torch.equal(a, b) for a, b in zip(before, (x, out.recon, out.fake), strict=True))  # untouched


def test_r1_differentiates_through_the_augmentation_to_the_reals():
    x = torch.rand(3, 1, 4, 4)
    _, terms = discriminator_loss(LinearDisc(), x, fake_output(x), LossConfig(r1_gamma=1.0), augment=doubled)
    assert terms["r1"].item() == pytest.approx(4 * 16)  # |d(sum 2x)/dx|^2 = 2^2 per pixel, 16 pixels


def test_d_real_sign_is_the_mean_sign_of_the_logits_on_reals():
    x = torch.tensor([1.0, -1.0, 2.0]).view(3, 1, 1, 1).expand(3, 1, 4, 4)
    _, terms = discriminator_loss(LinearDisc(), x, fake_output(x), LossConfig())
    assert terms["d_real_sign"].item() == pytest.approx(1 / 3)


def controller(p: float) -> AdaptiveProbability:
    """Target 0.6, adjusted every 4 steps of 8 images by 8 * 4 / 128 = 0.25."""
    return AdaptiveProbability(AugmentConfig(policy=["translation"], p=p, target=0.6, interval=4,
                                             speed_images=128), images_per_step=8)


def test_adaptive_p_rises_only_at_the_end_of_an_interval_when_the_discriminator_is_sure_of_reals():
    ada = controller(0.0)
    assert [ada.observe(1.0) for _ in range(8)] == [0.0, 0.0, 0.0, 0.25, 0.25, 0.25, 0.25, 0.5]


def test_adaptive_p_falls_when_the_discriminator_doubts_reals_on_average():
    ada = controller(0.5)
    assert [ada.observe(s) for s in (1.0, 1.0, -1.0, 0.0)][-1] == 0.25  # r_t 0.25 < 0.6


def test_adaptive_p_is_clamped_to_0_and_1():
    high, low = controller(0.9), controller(0.1)
    assert [high.observe(1.0) for _ in range(4)][-1] == 1.0
    assert [low.observe(-1.0) for _ in range(4)][-1] == 0.0


def test_loop_adapts_p_from_the_discriminators_sign_on_reals_and_logs_it(tmp_path, monkeypatch):
    import gvae.train.loop as loop

    real = loop.discriminator_loss

    def always_sure(*args, **kwargs):
        loss, parts = real(*args, **kwargs)
        return loss, parts | {"d_real_sign": torch.tensor(1.0)}

    monkeypatch.setattr(loop, "discriminator_loss", always_sure)
    recipe = tiny_recipe(tmp_path, phantom_data(tmp_path / "data"), overrides=[
        "augment.policy=[translation]", "augment.p=0.0", "augment.target=0.6", "augment.interval=2",
        "augment.speed_images=32"])  # batch 4, 2 steps: 0.25 an adjustment
    Trainer(recipe, tmp_path / "run", progress=False).fit()
    lines = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [line["aug_p"] for line in lines] == [0.0, 0.0, 0.25, 0.25]  # the p each step used
    assert all(line["d_real_sign"] == 1.0 for line in lines)
    state = json.loads((tmp_path / "run/checkpoints/step-00000004/trainer.json").read_text())
    assert state["augment"] == {"p": 0.5, "sign_sum": 0.0, "steps": 0}


def test_resumed_run_with_adaptive_augmentation_ends_bit_exact_with_an_uninterrupted_one(tmp_path):
    data = phantom_data(tmp_path / "data")
    train(tiny_recipe(tmp_path, data, overrides=ADAPTIVE), tmp_path / "straight", progress=False)
    train(tiny_recipe(tmp_path, data, overrides=[*ADAPTIVE, "train.max_steps=2"]), tmp_path / "resumed",
          progress=False)
    train(tiny_recipe(tmp_path, data, overrides=ADAPTIVE), tmp_path / "resumed", progress=False)
    for step in ("step-00000002", "step-00000004"):
        a, b = weights(tmp_path / "straight/checkpoints" / step), weights(tmp_path / "resumed/checkpoints" / step)
        assert all(torch.equal(a[k], b[k]) for k in a), step
    states = [json.loads((tmp_path / run / "checkpoints/step-00000004/trainer.json").read_text())["augment"]
              for run in ("straight", "resumed")]
    assert states[0] == states[1]
    assert states[0]["p"] in (0.25, 0.75) and states[0]["steps"] == 1  # adjusted at step 3, then one step more


@pytest.mark.slow
def test_under_two_processes_every_rank_adapts_p_from_the_mean_over_ranks(tmp_path):
    """Rank 0 reports sign +1, rank 1 -1: their mean 0 is under the target 0.5, so p falls on both ranks
    (each rank alone would move p the opposite way of the other)."""
    overrides = ["augment.policy=[translation]", "augment.p=0.5", "augment.target=0.5", "augment.interval=1",
                 "augment.speed_images=32"]  # 2 ranks x 4 images: 0.25 a step
    _, (end0, end1) = launch("cpu-ddp", tmp_path, phantom_data(tmp_path / "data"), steps=1, overrides=overrides,
                             env={"GVAE_TEST_SIGNS": "1,-1"})
    assert end0["augment.p"].item() == end1["augment.p"].item() == 0.25
    for name in end0:
        torch.testing.assert_close(end0[name], end1[name], rtol=0, atol=0, msg=name)


def test_invalid_augment_keys_fail_naming_the_key():
    cases = {("augment.policy", "listed twice"): {"augment": {"policy": ["cutout", "cutout"]}},
             ("augment.policy", "no discriminator"): {"model": {"kind": "vae"}, "augment": {"policy": ["flip"]}},
             ("augment.policy", "colour op"): {"augment": {"policy": ["saturation"]}},
             ("augment.target", "needs ops"): {"augment": {"target": 0.6}},
             ("augment.p", "must be 0.0 to 1.0"): {"augment": {"p": 1.5}},
             ("augment.translation", "finite"): {"augment": {"translation": float("nan")}}}
    for (key, message), values in cases.items():
        with pytest.raises(GvaeError, match=f"^{key}.*{message}"):
            recipe_from_dict(values)


def blob_images(n: int, side: int = 32, row: float = 16.0, col: float = 4.0, seed: int = 0) -> np.ndarray:
    """n uint8 grey Gaussian blobs centred at (row, col), std 1.5-2.5 px: [n, side, side]."""
    sigma = np.random.default_rng(seed).uniform(1.5, 2.5, size=(n, 1, 1))
    y, x = np.mgrid[:side, :side]
    return np.round(255 * np.exp(-((y - row) ** 2 + (x - col) ** 2) / (2 * sigma ** 2))).astype(np.uint8)


def centre_of_mass(images: torch.Tensor, floor: float = 0.1) -> torch.Tensor:
    """Mean (row, col) of the mass above ``floor`` of [N, 1, H, W] images (the background does not count)."""
    mass = (images[:, 0] - floor).clamp(min=0)
    rows, cols = torch.meshgrid(torch.arange(mass.shape[1]), torch.arange(mass.shape[2]), indexing="ij")
    total = mass.sum((1, 2))
    return torch.stack([(mass * rows).sum((1, 2)) / total, (mass * cols).sum((1, 2)) / total], 1).mean(0)


def test_strong_translation_of_the_discriminators_input_does_not_move_what_the_generator_draws(tmp_path):
    """The blobs sit 4 px from the left edge; shifts of up to 8 px would push their centre of mass right (those
    to the left fall off the image). Prior samples must stay where the data is. Measured with these settings:
    0.3 px off after 150 steps; 5 px off when the same translation also reached the likelihood's input."""
    blobs = blob_images(64)
    write_shard(tmp_path / "blobs-000000.tar", [{"__key__": f"{i:06d}", "png": encode_png(image)}
                                                for i, image in enumerate(blobs)])
    recipe = recipe_from_dict({
        "data": {"train": str(tmp_path / "blobs-000000.tar"), "resolution": 32, "channels": 1, "workers": 0,
                 "shuffle_buffer": 16},
        "model": {"latent_dim": 4, "channel_base": 128, "channel_min": 4, "channel_max": 16, "latent_norm": True,
                  "likelihood": "bernoulli"},  # learns the blob within the budget; the Gaussian's scale is slower
        "optim": {"lr": 2e-3, "d_lr": 2e-3},
        "train": {"batch_size": 16, "max_steps": 150, "checkpoint_every": 150, "ema_decay": 0.5,
                  "ema_bn_images": 64},
        "log": {"every": 50, "sample_every": 1000, "num_samples": 8, "tensorboard": False},
        "augment": {"policy": ["translation"], "p": 1.0, "translation": 0.25}})
    train(recipe, tmp_path / "run", progress=False)
    samples = gvae.load(tmp_path / "run").sample(64, torch.Generator().manual_seed(0))
    data_centre = centre_of_mass(torch.from_numpy(blobs)[:, None] / 255)
    assert (centre_of_mass(samples) - data_centre).abs().max() < 2.0
