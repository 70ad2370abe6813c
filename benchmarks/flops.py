"""FLOPs of a training step, by network and pass, and a bare convolution stack of the step's own shapes.

Why this exists: images/s alone does not say whether a step is slow because it does much work or because it
does its work badly. Counting the step's FLOPs and dividing by its time gives the achieved GFLOP/s; timing
the step's convolutions alone, with nothing around them, gives what this machine reaches on the same work. Their
ratio is the share of the attainable rate the full step keeps.

Counts come from ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions, forward and
backward; norms, activations, up-sampling and the optimizer count 0). Its per-module table is not used:
it follows modules with hooks that lose track in backward (a module returning a dataclass is never
re-entered there; an ``Identity``, whose output is its input, stays entered for the rest of the backward), so
on the GVAE it books the backward of the discriminator to the encoder. Instead every counted operation is booked
to the network whose weight it multiplies; the one that multiplies no weight, a linear layer's weight
gradient, is booked with the operation before it, the same layer's input gradient, which autograd computes
just before it in the same node.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode, flop_registry

PASSES = ("forward", "backward")


@dataclass(frozen=True)
class ConvCall:
    """One ``nn.Conv2d`` call as the step made it: shapes, geometry and which gradients its backward computes."""

    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    bias: bool
    stride: tuple[int, ...]
    padding: tuple[int, ...] | str
    dilation: tuple[int, ...]
    groups: int
    input_grad: bool
    weight_grad: bool


class StepFlops:
    """Counts the FLOPs of what runs inside ``with``, booked per (network, pass), and records every conv call.

    ``networks`` maps a name (encoder, generator, discriminator) to the modules whose weights are that
    network's. After the block: ``total`` (all FLOPs), ``by_network`` {(name, pass): FLOPs} and ``convs``
    (the ``nn.Conv2d`` calls of those networks, in order).
    """

    def __init__(self, networks: dict[str, list[nn.Module]]):
        self.networks = networks
        self.owner = {p.untyped_storage().data_ptr(): name
                      for name, modules in networks.items() for m in modules for p in m.parameters()}
        self.by_network: dict[tuple[str, str], int] = defaultdict(int)
        self.convs: list[ConvCall] = []
        self.total = 0
        self._last = "other"
        self._counter = FlopCounterMode(display=False, custom_mapping={op: self._booked(op) for op in flop_registry})
        self._hooks: list = []

    def _booked(self, op):
        formula = flop_registry[op]

        def count(*args, out_val=None, **kwargs) -> int:
            flops = formula(*args, out_val=out_val, **kwargs)
            tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
            owners = [self.owner[t.untyped_storage().data_ptr()] for t in tensors
                      if t.untyped_storage().data_ptr() in self.owner]
            self._last = owners[0] if owners else self._last
            self.by_network[self._last, PASSES[self._counter.mod_tracker.is_bw]] += flops
            return flops

        count._get_raw = True  # FlopCounterMode hands such formulas the tensors, not just their shapes
        return count

    def _record(self, module: nn.Conv2d, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0]
        self.convs.append(ConvCall(tuple(x.shape), tuple(module.weight.shape), module.bias is not None,
                                   module.stride, module.padding, module.dilation, module.groups,
                                   x.requires_grad, module.weight.requires_grad))

    def __enter__(self) -> StepFlops:
        self._hooks = [m.register_forward_pre_hook(self._record) for modules in self.networks.values()
                       for module in modules for m in module.modules() if isinstance(m, nn.Conv2d)]
        self._counter.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._counter.__exit__(*exc)
        for hook in self._hooks:
            hook.remove()
        self.total = self._counter.get_total_flops()


class BareConvs:
    """The recorded conv calls alone: each forward, then its backward for the gradients the step computed.

    Inputs, weights and output gradients are random tensors made once, shared between calls of one shape;
    gradients are returned (``torch.autograd.grad``), not accumulated, so nothing but convolutions runs.
    """

    def __init__(self, calls: list[ConvCall]):
        self.calls = calls
        made: dict[tuple, torch.Tensor] = {}

        def tensor(shape: tuple[int, ...], grad: bool) -> torch.Tensor:
            if (shape, grad) not in made:
                made[shape, grad] = torch.randn(shape, requires_grad=grad)
            return made[shape, grad]

        self.tensors = [(tensor(c.input_shape, c.input_grad), tensor(c.weight_shape, c.weight_grad),
                         tensor(c.weight_shape[:1], c.weight_grad) if c.bias else None) for c in calls]
        with torch.no_grad():
            shapes = [tuple(self._forward(c, *t).shape) for c, t in zip(calls, self.tensors, strict=True)]
        self.grads = [tensor(shape, False) for shape in shapes]

    @staticmethod
    def _forward(c: ConvCall, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups)

    def run(self) -> None:
        """Every call's forward and backward once."""
        for c, (x, w, b), g in zip(self.calls, self.tensors, self.grads, strict=True):
            y = self._forward(c, x, w, b)
            wants = [t for t in (x, w, b) if t is not None and t.requires_grad]
            if wants:
                torch.autograd.grad(y, wants, g)

    def flops(self) -> int:
        with FlopCounterMode(display=False) as counter:
            self.run()
        return counter.get_total_flops()
