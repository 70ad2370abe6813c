"""Where do the demo's samples lose lesions and diversity: in the prior, or in the autoencoder?

    python eval/demo_prior_gap.py gvae-demo/run --data gvae-demo/data \
        --feature-weights features/phantom.safetensors --out docs/results/demo-variants/prior-gap

Decodes ``--num`` latents from each of

* ``prior``: N(0, I), what ``gvae generate`` draws;
* ``fitted-gaussian``: a full-covariance Gaussian fitted to posterior samples of the training phantoms, the
  simplest second-stage prior (Dai & Wipf 2019 fit a second VAE instead);
* ``training-posteriors``: q(z|x) of randomly drawn training phantoms, a prior that matched the codes exactly:
  no prior can give more than this decoder does here;
* ``reconstructions``: the posterior means of the held-out phantoms,

and reports for each the MS-SSIM diversity (1,000 pairs) and the share in which a lesion-count classifier
(``gvae eval train-features``) sees lesions, beside the held-out phantoms' own. On the demo's model at 5,000
steps the training posteriors and the reconstructions fell short of the real phantoms as the prior did, which
read as the autoencoder limiting the samples; yet N(0, 1.2^2 I) decodes to lesions in more samples than real
phantoms have (``eval/demo_temperature.py``), so where the latents fall matters as much as the decoder.
Writes ``OUT/prior-gap.json`` and ``OUT/three-lesions.png``: held-out
phantoms with three lesions (top row) over their reconstructions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torchvision.utils import save_image

import gvae
from gvae.data import load_images
from gvae.fileio import write_json_atomic
from gvae.metrics.classes import predicted_shares
from gvae.metrics.features import load_classifier
from gvae.metrics.msssim import msssim_diversity

BATCH = 250


@torch.no_grad()
def encode(model, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and log-variances of ``images``, in batches."""
    parts = [model.encode(images[i:i + BATCH])[:2] for i in range(0, len(images), BATCH)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


@torch.no_grad()
def decode(model, z: torch.Tensor) -> torch.Tensor:
    return torch.cat([model.decode(z[i:i + BATCH]) for i in range(0, len(z), BATCH)]).clamp(0, 1)


def fitted_gaussian(codes: torch.Tensor, num: int, generator: torch.Generator) -> torch.Tensor:
    """``num`` draws of the full-covariance Gaussian with the mean and covariance of ``codes`` [N, D]."""
    mean, cov = codes.mean(0), torch.cov(codes.T.double())
    chol = torch.linalg.cholesky(cov + 1e-6 * torch.eye(len(mean), dtype=torch.double)).float()
    return mean + torch.randn(num, len(mean), generator=generator) @ chol.T


def prior_gap(run: str, data: str, feature_weights: str, num: int, seed: int) -> tuple[dict, torch.Tensor]:
    """The table of the module docstring, and the three-lesion picture's images."""
    model, classifier = gvae.load(run).eval(), load_classifier(feature_weights)
    train, _ = load_images(data, "train")
    real, labels = load_images(data, "val")
    generator = torch.Generator().manual_seed(seed)
    mu, logvar = encode(model, train)
    sigma = torch.exp(0.5 * logvar)
    codes = mu + sigma * torch.randn(mu.shape, generator=generator)
    pick = torch.randint(len(train), (num,), generator=generator)
    real_mu, _ = encode(model, real)
    decoded = {
        "prior": decode(model, torch.randn(num, model.latent_dim, generator=generator)),
        "fitted-gaussian": decode(model, fitted_gaussian(codes, num, generator)),
        "training-posteriors": decode(model, mu[pick] + sigma[pick] * torch.randn(mu[pick].shape, generator=generator)),
        "reconstructions": decode(model, real_mu),
        "held-out phantoms": real,
    }
    with torch.no_grad():
        k = int(classifier(real[:1]).shape[1])  # classes; the last is "3 lesions"
    rows = {name: {"n": len(images), "msssim_diversity": msssim_diversity(images, 1000, seed),
                   "lesion_share": 1 - float(predicted_shares(classifier, images, k)[0])}
            for name, images in decoded.items()}
    three = (labels == k - 1).nonzero()[:8, 0]
    picture = torch.cat([real[three], decoded["reconstructions"][three]])
    return {"run": run, "data": data, "feature_weights": feature_weights, "num": num, "seed": seed,
            "rows": rows}, picture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("--data", required=True, help="the packed phantoms the run trained on")
    parser.add_argument("--feature-weights", required=True, help="lesion-count classifier")
    parser.add_argument("--num", type=int, default=1000, help="latents decoded per source")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    result, picture = prior_gap(args.run, args.data, args.feature_weights, args.num, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "prior-gap.json", result)
    save_image(torch.nn.functional.interpolate(picture, scale_factor=3, mode="nearest"),
               args.out / "three-lesions.png", nrow=len(picture) // 2)
    print(f"{'latents':22} {'n':>5} {'MS-SSIM diversity':>18} {'with lesions':>13}")
    for name, row in result["rows"].items():
        print(f"{name:22} {row['n']:5d} {row['msssim_diversity']:18.3f} {row['lesion_share']:13.3f}")


if __name__ == "__main__":
    main()
