"""Hypothesis: random stacks of the supported layers, written as a PyTorch module, import and
compute what torch computes (float64, the contract's tolerances)."""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from specchain.importers.torch import from_torch
from tests.helpers import assert_close64

RECURRENT = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class Stack(nn.Module):
    """The layers in order; a recurrent layer's output is read with ``out, _ = layer(x)``, a
    step marker takes the last step (``x[-1]``)."""

    def __init__(self, layers: list[nn.Module | None]) -> None:
        super().__init__()
        self.layers = nn.ModuleList([layer or nn.Identity() for layer in layers])
        self.last = [layer is None for layer in layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer, last in zip(self.layers, self.last, strict=True):
            if last:
                x = x[-1]
            elif isinstance(layer, nn.RNNBase):
                x, _ = layer(x)
            else:
                x = layer(x)
        return x


@st.composite
def stacks(draw: st.DrawFn) -> tuple[Stack, int]:
    features = size = draw(st.integers(1, 5))
    sequence = True
    layers: list[nn.Module | None] = []
    for _ in range(draw(st.integers(1, 4))):
        choices = ["linear", "tanh", "relu", "sigmoid", "norm", "dropout"]
        kind = draw(st.sampled_from([*RECURRENT, "last", *choices] if sequence else choices))
        if kind in RECURRENT:
            hidden = draw(st.integers(1, 5))
            options: dict[str, Any] = {
                "num_layers": draw(st.integers(1, 2)),
                "bidirectional": draw(st.booleans()),
                "bias": draw(st.booleans()),
            }
            layers.append(RECURRENT[kind](size, hidden, **options))
            size = hidden * (2 if options["bidirectional"] else 1)
        elif kind == "last":
            layers.append(None)
            sequence = False
        elif kind == "linear":
            out = draw(st.integers(1, 5))
            layers.append(nn.Linear(size, out, bias=draw(st.booleans())))
            size = out
        elif kind == "norm":
            layers.append(nn.LayerNorm(size))
        elif kind == "dropout":
            layers.append(nn.Dropout(0.4))
        else:
            layers.append({"tanh": nn.Tanh(), "relu": nn.ReLU(), "sigmoid": nn.Sigmoid()}[kind])
    return Stack(layers), features


@settings(max_examples=30, deadline=None)
@given(stack=stacks(), steps=st.integers(1, 4), batch=st.integers(1, 3), seed=st.integers(0, 99))
def test_random_stacks_import_and_match_torch(
    stack: tuple[Stack, int], steps: int, batch: int, seed: int
) -> None:
    module, features = stack
    torch.manual_seed(seed)
    for p in module.parameters():
        nn.init.normal_(p)
    module = module.double().eval()
    x = torch.randn(steps, batch, features, dtype=torch.float64)
    model = from_torch(module, x)
    assert list(model.state_dict()) == list(module.state_dict())
    assert_close64(model(x.numpy()), module(x))
