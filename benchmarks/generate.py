"""End-to-end ``gvae generate`` throughput against the bare generator forward pass, at 64 and 256 px.

    python benchmarks/generate.py
    python benchmarks/generate.py --num64 2048 --num256 256 --threads 2

For each resolution an untrained GVAE with narrow channels is saved as a checkpoint directory (so generation
goes through ``gvae.load`` exactly as the CLI does), then, side by side:

* bare forward: ``model.decode`` on batches of 64 random latents, nothing else (images/s);
* end to end: :func:`gvae.generation.generate` writing WebDataset shards (per-sample seeded latents, 64-row
  canonical batches, 8-bit quantisation, PNG encoding in a thread pool, tar writing, sha256, manifest);
* serial writing: PNG-encoding and tar-writing as many of the model's images on one thread, no model call.

It prints images/s of each, the ratio end-to-end / bare, the overhead (the share of the end-to-end time not
spent in forward passes) and the time writing would take, serially, relative to the forward passes: the
overhead stays below that only if the thread pool overlaps encoding with the model.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from gvae.config import recipe_from_dict
from gvae.data import encode_png, write_shard
from gvae.generation import BLOCK, GenerateConfig, generate
from gvae.generation.producer import quantize
from gvae.models import build_model, save_weights

WIDTHS = {64: {"channel_base": 512, "channel_min": 8, "channel_max": 32},
          256: {"channel_base": 1024, "channel_min": 4, "channel_max": 32}}


def make_checkpoint(directory: Path, resolution: int) -> torch.nn.Module:
    """An untrained 3-channel GVAE saved as ``directory`` (model.safetensors + config.yaml); returns the model."""
    recipe = recipe_from_dict({"data": {"resolution": resolution, "channels": 3},
                               "model": {"kind": "gvae", "latent_dim": 64, **WIDTHS[resolution]}})
    torch.manual_seed(0)
    model = build_model(recipe).eval()
    directory.mkdir(parents=True)
    save_weights(model, directory / "model.safetensors")
    (directory / "config.yaml").write_text(recipe.to_yaml())
    return model


@torch.no_grad()
def bare_forward(model: torch.nn.Module, num: int) -> float:
    """Images/s of ``model.decode`` on batches of BLOCK latents (one warm-up batch first)."""
    z = torch.randn(BLOCK, model.latent_dim)
    model.decode(z)
    start = time.perf_counter()
    for _ in range(num // BLOCK):
        model.decode(z)
    return num // BLOCK * BLOCK / (time.perf_counter() - start)


def end_to_end(checkpoint: Path, out: Path, num: int) -> float:
    """Images/s of the library call, after a one-image call has paid for imports and first-call set-up."""
    generate(GenerateConfig(str(checkpoint), str(out.with_name("warm-up")), num=1, progress=False, ema=False))
    start = time.perf_counter()
    generate(GenerateConfig(str(checkpoint), str(out), num=num, shard_size=1000, batch_size=BLOCK, progress=False,
                            ema=False))
    return num / (time.perf_counter() - start)


def serial_writing(model: torch.nn.Module, out: Path, num: int) -> float:
    """Images/s of PNG-encoding and tar-writing the model's own 8-bit outputs on one thread."""
    with torch.no_grad():
        images = quantize(model.decode(torch.randn(BLOCK, model.latent_dim))).numpy()
    start = time.perf_counter()
    write_shard(out, ({"__key__": f"{i:08d}", "png": encode_png(images[i % BLOCK]), "json": {"index": i}}
                      for i in range(num)))
    return num / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num64", type=int, default=1024, help="images generated at 64 px")
    parser.add_argument("--num256", type=int, default=128, help="images generated at 256 px")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batches of {BLOCK}")
    print(f"{'px':>4} {'images':>7} {'bare img/s':>11} {'e2e img/s':>10} {'e2e/bare':>9} {'overhead':>9} "
          f"{'serial write img/s':>19} {'write/forward time':>19}")
    with tempfile.TemporaryDirectory() as tmp:
        for resolution, num in ((64, args.num64), (256, args.num256)):
            root = Path(tmp) / str(resolution)
            model = make_checkpoint(root / "checkpoint", resolution)
            bare = bare_forward(model, num)
            e2e = end_to_end(root / "checkpoint", root / "set", num)
            write = serial_writing(model, root / "serial.tar", num)
            overhead = 1 - e2e / bare  # share of end-to-end time beyond the forward passes
            print(f"{resolution:>4} {num:>7} {bare:>11.1f} {e2e:>10.1f} {e2e / bare:>9.2f} {overhead:>8.0%} "
                  f"{write:>19.1f} {bare / write:>19.2f}")
            print(f"ratio: generate {resolution} px, end-to-end / bare forward = {e2e / bare:.2f}")


if __name__ == "__main__":
    main()
