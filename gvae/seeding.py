"""Random streams keyed by tuples of integers, so that every block of work draws the same numbers however the
work is split over batches, threads or processes.

Two schemes, kept apart on purpose:

* :func:`splitmix_seed` (SplitMix64 in pure Python) keys the latents and classes of generated sets
  (:mod:`gvae.generation`). A set's bytes are a pure function of (checkpoint, seed, index); switching schemes
  would change every image of every set already made and break resuming or extending one.
* numpy's SeedSequence keys evaluation: :func:`block_generator` the per-block streams of ``gvae eval``
  (samples, ELBO, IWAE, denoising, labels), :func:`sequence_seed` and :func:`seeded_generator` the utility
  metrics (real subsets, classifier weights, batch order, model images). Switching them would change every recorded result and invalidate the leaderboards'
  caches.

Both give unrelated streams for neighbouring tuples, which is all either needs; neither is better, and
unifying them would change bytes or numbers for no gain.
"""

from __future__ import annotations

import numpy as np
import torch

_MASK = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def splitmix_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from integers (any sign): neighbouring indices get unrelated streams."""
    state = 0
    for part in parts:
        state = _splitmix64(state ^ (part & _MASK))
    return state >> 1


def _sequence_state(parts: tuple[int, ...]) -> int:
    """The first 64-bit word numpy's SeedSequence makes of ``parts`` (non-negative integers)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(1, dtype=np.uint64)[0])


def sequence_seed(*parts: int) -> int:
    """A well-mixed 63-bit seed from non-negative integers (SeedSequence's word, top 63 bits)."""
    return _sequence_state(parts) >> 1


def seeded_generator(*parts: int) -> torch.Generator:
    """A CPU generator seeded by :func:`sequence_seed` of ``parts``."""
    return torch.Generator().manual_seed(sequence_seed(*parts))


def block_generator(*parts: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded by SeedSequence's word of ``parts``, its low 63 bits (where
    :func:`sequence_seed` takes the top 63): how ``gvae eval``'s per-block streams have always been seeded, so
    its numbers stay as recorded."""
    return torch.Generator(device=device).manual_seed(_sequence_state(parts) & (2**63 - 1))
