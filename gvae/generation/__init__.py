"""Mass generation of augmentation sets: deterministic per sample, distributed over ranks, resumable.

Modules, in the order data flows through them:
  latents.py    noise per (seed, stream, index, attempt); prior latents, or posterior latents of real images
  producer.py   canonical fixed-composition forward passes, 8-bit quantisation, realism/memorisation filters
  store.py      the output directory: atomic shards (wds or png folders), per-shard records, the manifest
  run.py        GenerateConfig and generate(): ranks, shards, the PNG-encoding thread pool, progress
"""

from gvae.generation.latents import BLOCK
from gvae.generation.run import GenerateConfig, generate

__all__ = ["BLOCK", "GenerateConfig", "generate"]
