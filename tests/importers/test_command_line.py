"""``--input-shape`` parsing: every text gives dims or one ``TorchImportError`` (fuzzed), and the
examples the command line traces with."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from specchain.importers.command_line import import_module, parse_shape
from specchain.importers.registry import TorchImportError


@pytest.mark.parametrize(
    ("text", "dims"),
    [("T,B,8", ("T", "B", 8)), (" B , T ", ("B", "T")), ("S,B,4", ("S", "B", 4)), ("3", (3,))],
)
def test_shapes_parse_to_sizes_and_symbols(text: str, dims: tuple[object, ...]) -> None:
    assert parse_shape(text) == dims


@given(st.text(alphabet="TBSF0123456789, -x.", max_size=12))
def test_any_shape_text_parses_or_is_refused_with_the_fix(text: str) -> None:
    try:
        dims = parse_shape(text)
    except TorchImportError as err:
        assert str(err).startswith(f"--input-shape {text}: ")
        assert "--input-shape T,B,8" in str(err)
    else:
        assert all(isinstance(d, int) or d in ("T", "B", "S") for d in dims)


def test_the_example_uses_the_module_dtype_and_names_every_input() -> None:
    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.fc(a) + self.fc(b)

    model = import_module(Pair().double(), ["T,B,4", "T,B,4"], [], "pair.py:Pair")
    assert str(model.in_type) == "(a: [T, B, 4], b: [T, B, 4])"
    assert model.dtype == np.float64
