"""benchmarks/flops.py: FLOPs booked to the network whose weights an operation multiplies, in forward and
backward, and the bare convolution stack that repeats a step's conv calls."""

import pytest
import torch
from torch import nn

from benchmarks.flops import BareConvs, StepFlops

N, H = 2, 8  # batch, side


def conv_flops(c_in: int, c_out: int, k: int = 3) -> int:
    """Forward FLOPs of a same-padded k x k convolution on N images of H x H: 2 per multiply-add."""
    return 2 * N * c_out * c_in * k * k * H * H


class Pair(nn.Module):
    """Returns a dict, which module hooks cannot follow into backward."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.keep = nn.Identity()  # its output is its input: the case module hooks lose in backward

    def forward(self, x):
        return {"h": self.keep(self.conv(x))}


@pytest.fixture
def nets():
    torch.manual_seed(0)
    first = Pair()
    second = nn.Sequential(nn.Conv2d(4, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * H * H, 3))
    return first, second


def test_each_network_gets_its_forward_and_backward_flops(nets):
    first, second = nets
    linear = 2 * N * 2 * H * H * 3
    with StepFlops({"first": [first], "second": [second]}) as counted:
        second(first(torch.rand(N, 1, H, H))["h"]).square().sum().backward()
    # the first conv's input needs no gradient: its backward is the weight gradient alone
    assert counted.by_network["first", "forward"] == conv_flops(1, 4)
    assert counted.by_network["first", "backward"] == conv_flops(1, 4)
    # input and weight gradients, including the linear layer's weight gradient that multiplies no weight
    assert counted.by_network["second", "forward"] == conv_flops(4, 2) + linear
    assert counted.by_network["second", "backward"] == 2 * (conv_flops(4, 2) + linear)
    assert counted.total == sum(counted.by_network.values()) == 3 * conv_flops(4, 2) + 2 * conv_flops(1, 4) + 3 * linear


def test_a_frozen_network_computes_input_gradients_only(nets):
    first, second = nets
    second.requires_grad_(False)
    with StepFlops({"first": [first], "second": [second]}) as counted:
        second(first(torch.rand(N, 1, H, H))["h"]).sum().backward()
    assert counted.by_network["second", "backward"] == counted.by_network["second", "forward"]
    assert [(c.input_grad, c.weight_grad) for c in counted.convs] == [(False, True), (True, False)]


def test_the_bare_stack_repeats_the_conv_calls_and_their_flops(nets):
    first, second = nets
    with StepFlops({"first": [first], "second": [second]}) as counted:
        second(first(torch.rand(N, 1, H, H))["h"]).sum().backward()
    assert [(c.input_shape, c.weight_shape, c.bias) for c in counted.convs] == [
        ((N, 1, H, H), (4, 1, 3, 3), False), ((N, 4, H, H), (2, 4, 3, 3), True)]
    bare = BareConvs(counted.convs)
    assert bare.flops() == 2 * conv_flops(1, 4) + 3 * conv_flops(4, 2)
