"""End-to-end ``gvae generate`` throughput against the bare generator forward pass, at 64, 256 and 1024 px.

    python benchmarks/generate.py
    python benchmarks/generate.py --num64 2048 --num256 256 --threads 2 --repeats 5
    python benchmarks/generate.py --num64 8192 --num256 2048 --num1024 256 --precision bf16    # on a GPU

Both run where ``gvae generate`` decodes (the GPU if there is one, else the CPU), in float32 or, with
``--precision bf16``, under bfloat16 autocast as ``gvae generate --precision bf16`` decodes.

For each resolution an untrained GVAE with narrow channels is saved as a checkpoint directory (so generation
goes through ``gvae.load`` exactly as the CLI does), then, side by side, ``--repeats`` times in turn (so that
both see the same changes of load on a shared machine):

* bare forward: ``model.decode`` on batches of 64 random latents, nothing else (images/s), in the inference form
  ``gvae generate`` decodes in (BatchNorms folded, channels-last; and, as a third run each time, in the default
  form the model trains in: the ratio of the two is what the inference form buys);
* end to end: :func:`gvae.generation.generate` writing WebDataset shards (per-sample seeded latents, 64-row
  canonical batches, 8-bit quantisation, PNG encoding in a thread pool, tar writing, sha256, manifest).

It prints the median images/s of each and the median, lowest and highest ratio end-to-end / bare. Beside them,
the CPU time per image, on one thread, of the forward pass and of writing (PNG-encoding and tar-writing the
model's own 8-bit outputs), and the forward's share of their sum: when the bare forward already keeps every
core busy, writing can only be done on the same cores, so end-to-end / bare cannot exceed that share.
Last, the writing-bound rate: ``gvae generate`` with the decoder's 8-bit output taken from a cache, as if a
GPU decoded and quantised for free, so that only the writing (on this machine's cores) bounds it: what a GPU's
generation at this resolution can reach per process; and the main thread's CPU time per image in that run,
the thread that would feed the GPU. benchmarks/png_encoding.py compares PNG encoders and their settings.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch

import gvae
import gvae.generation.producer
import gvae.generation.run
from gvae.config import recipe_from_dict
from gvae.data import encode_png, write_shard
from gvae.generation import BLOCK
from gvae.generation.producer import quantize
from gvae.loading import in_inference_form
from gvae.models import build_model, save_weights

WIDTHS = {64: {"channel_base": 512, "channel_min": 8, "channel_max": 32},
          256: {"channel_base": 1024, "channel_min": 4, "channel_max": 32},
          1024: {"channel_base": 4096, "channel_min": 4, "channel_max": 32}}
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # where gvae generate decodes


def synchronize() -> None:
    """Wait for the GPU's queued work, so that a timer read after it counts that work."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


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
def bare_forward(model: torch.nn.Module, num: int, precision: str = "fp32") -> float:
    """Images/s of ``model.decode`` on batches of BLOCK latents on the model's device (one warm-up batch first),
    under bfloat16 autocast with ``precision="bf16"`` as ``gvae generate --precision bf16`` decodes; ``num``
    rounded to whole batches, at least one."""
    batches = max(1, num // BLOCK)
    z = torch.randn(BLOCK, model.latent_dim, device=next(model.parameters()).device)
    with torch.autocast(z.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        model.decode(z)
        synchronize()
        start = time.perf_counter()
        for _ in range(batches):
            model.decode(z)
        synchronize()
    return batches * BLOCK / (time.perf_counter() - start)


def end_to_end(checkpoint: Path, out: Path, num: int, run=gvae.generation.run, **options) -> float:
    """Images/s of the library call writing the new directory ``out``; ``run``: the module whose ``generate`` and
    ``GenerateConfig`` are called (benchmarks/generate_against.py passes an earlier revision's); ``options``:
    more of its settings (``precision``)."""
    start = time.perf_counter()
    run.generate(run.GenerateConfig(str(checkpoint), str(out), num=num, shard_size=1000, batch_size=BLOCK,
                                    progress=False, ema=False, **options))
    return num / (time.perf_counter() - start)


def cpu_ms_per_image(model: torch.nn.Module, out: Path, num: int) -> tuple[float, float]:
    """CPU ms per image, on this thread alone, of the forward pass (on one thread; two batches after a warm-up
    one) and of writing: PNG-encoding and tar-writing ``num`` of the model's own 8-bit outputs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            z = torch.randn(BLOCK, model.latent_dim)
            images = quantize(model.decode(z)).numpy()
            start = time.thread_time()
            for _ in range(2):
                model.decode(z)
            forward = (time.thread_time() - start) / (2 * BLOCK)
    finally:
        torch.set_num_threads(threads)
    start = time.thread_time()
    write_shard(out, ({"__key__": f"{i:08d}", "png": encode_png(images[i % BLOCK]), "json": {"index": i}}
                      for i in range(num)))
    return 1000 * forward, 1000 * (time.thread_time() - start) / num


def writing_bound(checkpoint: Path, out: Path, num: int, **options) -> tuple[float, float]:
    """Images/s of :func:`end_to_end` with every decoder forward and quantisation replaced by a slice of one
    batch decoded and quantised beforehand: the rate the writing alone allows, as beside a GPU that decodes and
    quantises for free; and the CPU ms per image of the main thread meanwhile, the thread that would feed the
    GPU (1000 / it caps the images/s of one process)."""
    model = gvae.load(str(checkpoint), device=DEVICE, for_inference=True)
    with torch.no_grad():
        cached = quantize(model.decode(torch.randn(BLOCK, model.latent_dim, device=DEVICE)))

    def latents_as_output(decode, z, *labels):
        return z

    def from_cache(images):
        return cached[:len(images)]

    with mock.patch.object(gvae.generation.producer, "forward_padded", latents_as_output), \
            mock.patch.object(gvae.generation.producer, "quantize", from_cache):
        start = time.thread_time()
        rate = end_to_end(checkpoint, out, num, **options)
        return rate, 1000 * (time.thread_time() - start) / num


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num64", type=int, default=1024, help="images generated at 64 px")
    parser.add_argument("--num256", type=int, default=128, help="images generated at 256 px")
    parser.add_argument("--num1024", type=int, default=0, help="images generated at 1024 px (0: none; for GPUs)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="of the bare forward and of gvae generate (--precision)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=3, help="bare and end-to-end runs, in turn, per resolution")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {DEVICE} ({torch.cuda.get_device_name() if DEVICE.type == 'cuda' else 'CPU'}"
          f"), {args.precision}, {args.threads} thread(s), batches of {BLOCK}, {args.repeats} repeats")
    print(f"{'px':>4} {'images':>7} {'bare img/s':>11} {'e2e img/s':>10} {'e2e/bare':>9} {'(low-high)':>11} "
          f"{'forward CPU ms/img':>19} {'write CPU ms/img':>17} {'forward share':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for resolution, num in ((64, args.num64), (256, args.num256), (1024, args.num1024)):
            if num < 1:
                continue
            root = Path(tmp) / str(resolution)
            default_form = make_checkpoint(root / "checkpoint", resolution)
            model = in_inference_form(copy.deepcopy(default_form))  # the form gvae generate decodes in
            on_device, default_on_device = copy.deepcopy(model).to(DEVICE), copy.deepcopy(default_form).to(DEVICE)
            end_to_end(root / "checkpoint", root / "warm-up", 1, precision=args.precision)  # first-call set-up
            bare, e2e, bare_default = [], [], []
            for r in range(args.repeats):
                bare.append(bare_forward(on_device, num, args.precision))
                e2e.append(end_to_end(root / "checkpoint", root / f"set-{r}", num, precision=args.precision))
                bare_default.append(bare_forward(default_on_device, num, args.precision))
            ratios = sorted(e / b for e, b in zip(e2e, bare, strict=True))
            forward, write = cpu_ms_per_image(model, root / "serial.tar", min(num, 4 * BLOCK))
            print(f"{resolution:>4} {num:>7} {statistics.median(bare):>11.1f} {statistics.median(e2e):>10.1f} "
                  f"{statistics.median(ratios):>9.2f} {f'({ratios[0]:.2f}-{ratios[-1]:.2f})':>11} "
                  f"{forward:>19.2f} {write:>17.2f} {forward / (forward + write):>14.2f}", flush=True)
            print(f"ratio: generate {resolution} px, end-to-end / bare forward = {statistics.median(ratios):.2f}")
            form = sorted(b / d for b, d in zip(bare, bare_default, strict=True))
            print(f"     bare forward, inference form / default form: {form[0]:.2f} to {form[-1]:.2f}")
            print(f"ratio: bare forward {resolution} px, inference form / default form = {statistics.median(form):.2f}")
            print(f"ratio: generate {resolution} px, end-to-end / bare forward in the default form = "
                  f"{statistics.median(e2e) / statistics.median(bare_default):.2f}")
            bounds = [writing_bound(root / "checkpoint", root / f"bound-{r}", num, precision=args.precision)
                      for r in range(args.repeats)]
            bound, main_ms = (statistics.median(values) for values in zip(*bounds, strict=True))
            print(f"     writing-bound (decoded and quantised output from a cache): {bound:.1f} images/s; main "
                  f"thread {main_ms:.3f} CPU ms/image")
            print(f"ratio: generate {resolution} px, writing-bound / end-to-end = "
                  f"{bound / statistics.median(e2e):.2f}", flush=True)


if __name__ == "__main__":
    main()
