"""The weight average: its update, and the re-estimation of its BatchNorm statistics."""

import torch

from gvae.train.ema import EMA
from tests.test_models import images, narrow_model


def drifted(decay: float = 0.5):
    """A model and its average after one update towards perturbed weights: the two differ."""
    live = narrow_model("gvae", dropout=0.0, latent_norm=True)
    ema = EMA(live, decay)
    with torch.no_grad():
        for p in live.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ema.update(live)
    return live, ema


def test_update_moves_the_average_by_one_minus_decay():
    live = narrow_model("vae-dense")
    ema = EMA(live, 0.9)
    before = [p.clone() for p in ema.model.parameters()]
    with torch.no_grad():
        for p in live.parameters():
            p.add_(1.0)
    ema.update(live)
    for old, avg in zip(before, ema.model.parameters(), strict=True):
        torch.testing.assert_close(avg, old + 0.1)


def test_recalibrated_statistics_are_those_of_the_averaged_weights():
    _, ema = drifted()
    x = images(32, 1, 32)
    norm = ema.model.ae.encoder.mean_norm
    inputs = []
    handle = norm.register_forward_hook(lambda module, args, output: inputs.append(args[0]))
    rng = torch.get_rng_state()
    assert ema.recalibrate([x[:16], x[16:]])
    assert torch.equal(torch.get_rng_state(), rng)  # the training's random stream is untouched
    handle.remove()
    # momentum None: the running values are plain averages over the batches of the batch statistics
    torch.testing.assert_close(norm.running_mean, torch.stack([i.mean(0) for i in inputs]).mean(0))
    torch.testing.assert_close(norm.running_var, torch.stack([i.var(0) for i in inputs]).mean(0))
    assert norm.momentum == 0.1 and not ema.model.training


def test_after_recalibration_eval_codes_sit_at_the_prior_centre():
    live, ema = drifted()
    x = images(32, 1, 32)
    live.train().encode(x)  # the live statistics, which the average copies
    ema.update(live)
    assert ema.model.encode(x)[0].mean(0).abs().max() > 0.1  # off centre with the copied statistics
    ema.recalibrate([x])
    # not exactly 0: the trunk's eval-mode normalisation uses the unbiased batch variance
    assert ema.model.encode(x)[0].mean(0).abs().max() < 0.01


def test_without_batches_the_statistics_are_kept():
    _, ema = drifted()
    before = {k: v.clone() for k, v in ema.model.state_dict().items()}
    assert not ema.recalibrate([])
    for key, value in ema.model.state_dict().items():
        torch.testing.assert_close(value, before[key], msg=key)


def test_recalibration_sets_each_class_mean_to_the_average_code_of_its_images_under_the_averaged_weights():

    live = narrow_model("gvae", class_names=["a", "b", "c"], conditional=True, class_prior=True, dropout=0.0)
    ema = EMA(live, decay=0.5)
    with torch.no_grad():
        for p in live.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ema.update(live)
    batches = [(images(16, 1, 32, seed=s), torch.arange(16) % 3) for s in (1, 2)]
    assert ema.recalibrate(batches)
    encoder = ema.model.ae.encoder.train()  # the codes as training computes them (BatchNorm on the batch)
    with torch.no_grad():
        codes = torch.cat([encoder(x)[0] for x, _ in batches])
    ema.model.eval()
    labels = torch.cat([y for _, y in batches])
    expected = torch.stack([codes[labels == k].mean(0) for k in range(3)])
    torch.testing.assert_close(ema.model.ae.class_means.means, expected, rtol=1e-4, atol=1e-5)
    assert expected.abs().max() > 0.01
