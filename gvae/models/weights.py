"""Weights as safetensors: no pickled code, and a bit-exact round trip of every parameter and buffer.

Buffers are saved too (BatchNorm running statistics and its integer ``num_batches_tracked``, stored as int64
with its 0-d shape), so a loaded model behaves exactly like the saved one in eval mode. Loading is strict:
a missing, unexpected or mis-shaped tensor is an error naming it.
"""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from gvae.errors import GvaeError


def save_weights(module: nn.Module, path: str | Path) -> None:
    """Write ``module.state_dict()`` (parameters and buffers) to a safetensors file."""
    tensors = {name: t.detach().cpu().contiguous() for name, t in module.state_dict().items()}
    save_file(tensors, str(path), metadata={"format": "pt"})


def load_weights(module: nn.Module, path: str | Path) -> None:
    """Load a file written by :func:`save_weights` into ``module`` (in place, onto its current device)."""
    state = load_file(str(path))
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise GvaeError(
            f"{path} does not match the model built from the recipe: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}, wrong shape {wrong[:5]}; was it saved from a different recipe?")
    module.load_state_dict(state, strict=True)
