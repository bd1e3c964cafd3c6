"""``RNNCell``: torch parity (h', dx, dh and every weight gradient) for both nonlinearities,
finite differences, agreement with a one-step ``RNN``, and the bad-input table."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.modules import RNN, RNNCell
from tests.helpers import (
    TORCH_DTYPES,
    ErrorInput,
    assert_close,
    assert_gradcheck,
    check_error_input,
    error_params,
    load_torch,
    one_torch_thread,
    torch_from,
)

_one_torch_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)

IN, HID = 4, 5


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("batch", [None, 1, 3], ids=["unbatched", "B1", "B3"])
@pytest.mark.parametrize("state", [False, True], ids=["zero_state", "state"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_matches_torch(
    dtype: type,
    bias: bool,
    state: bool,
    batch: int | None,
    nonlinearity: str,
    rng: np.random.Generator,
) -> None:
    model = RNNCell(IN, HID, bias=bias, nonlinearity=nonlinearity).as_chain().to(dtype)
    ref = torch.nn.RNNCell(
        IN, HID, bias=bias, nonlinearity=nonlinearity, dtype=TORCH_DTYPES[np.dtype(dtype)]
    )
    load_torch(ref, model.named_parameters(), "rnn_cell.")
    lead = () if batch is None else (batch,)
    x = rng.standard_normal((*lead, IN)).astype(dtype)
    h, dh = (rng.standard_normal((*lead, HID)).astype(dtype) for _ in range(2))

    h1, tape = model.forward((x, h) if state else x, train=True, rng=0)
    dx, grads = model.backward(tape, dh)

    xt, ht = torch_from(x, requires_grad=True), torch_from(h, requires_grad=True)
    h1t = ref(xt, ht) if state else ref(xt)
    (h1t * torch_from(dh)).sum().backward()

    assert_close(h1, h1t, "h'")
    if state:
        dx, dh0 = dx
        assert_close(dh0, ht.grad, "dh")
    assert_close(dx, xt.grad, "dx")
    assert set(grads) == {f"rnn_cell.{name}" for name, _ in ref.named_parameters()}
    for name, p in ref.named_parameters():
        assert_close(grads[f"rnn_cell.{name}"], p.grad, name)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_gradcheck(nonlinearity: str, rng: np.random.Generator) -> None:
    model = RNNCell(3, 4, nonlinearity=nonlinearity).as_chain()
    report = assert_gradcheck(model, (rng.standard_normal((2, 3)), rng.standard_normal((2, 4))))
    assert {"input", "input[1]", "rnn_cell.bias_hh"} <= set(report.errors)
    assert_gradcheck(RNNCell(3, 4, bias=False).as_chain(), rng.standard_normal(3))


def test_one_step_of_the_layer(rng: np.random.Generator) -> None:
    """The cell with the layer's weights is the layer run for one step."""
    cell = RNNCell(IN, HID, nonlinearity="relu").as_chain().to(np.float64)
    layer = RNN(IN, HID, nonlinearity="relu", return_state=True)
    layer.to(np.float64)
    for name, value in cell.named_parameters().items():
        layer.params[name.removeprefix("rnn_cell.") + "_l0"][...] = value
    x, h = rng.standard_normal((3, IN)), rng.standard_normal((3, HID))
    (y, h_n), _ = layer.forward(layer.params, (x[None], h[None]), sc.Context())
    np.testing.assert_array_equal(cell((x, h)), h_n[0])
    np.testing.assert_array_equal(y[0], h_n[0])


def test_types_and_summary_line() -> None:
    model = RNNCell(IN, HID, bias=False, nonlinearity="relu").as_chain()
    assert str(model.out_type) == f"[B, {HID}]"
    assert model.spec("rnn_cell").describe() == f"{IN} -> {HID}, relu, no bias"


def _f32(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


BAD_INPUTS = [
    ErrorInput(
        "nonlinearity_unknown",
        lambda: RNNCell(3, 4, nonlinearity="gelu"),
        sc.SpecError,
        re.escape("RNNCell.nonlinearity must be one of ('tanh', 'relu'), got 'gelu'"),
    ),
    ErrorInput(
        "input_size_zero",
        lambda: RNNCell(0, 4),
        sc.SpecError,
        r"^RNNCell\.input_size must be a positive int, got 0$",
    ),
    ErrorInput(
        "wrong_feature_size",
        lambda: RNNCell(8, 4)(_f32(3, 9)),
        sc.ShapeError,
        r"feature size: expected 8, got 9$",
    ),
    ErrorInput(
        "a_sequence",
        lambda: RNNCell(8, 4)(_f32(5, 3, 8)),
        sc.ShapeError,
        re.escape("rank: expected [B, 8] or [8], got [5, 3, 8]"),
    ),
    ErrorInput(
        "h_wrong_size",
        lambda: RNNCell(8, 4)((_f32(3, 8), _f32(3, 5))),
        sc.ShapeError,
        re.escape("h must be [3, 4], got [3, 5]: dim 1: expected 4, got 5"),
    ),
    ErrorInput(
        "lstm_style_state",
        lambda: RNNCell(8, 4)((_f32(3, 8), (_f32(3, 4), _f32(3, 4)))),
        sc.ShapeError,
        re.escape("takes x or (x, h), got"),
    ),
]


@pytest.mark.parametrize("case", error_params(BAD_INPUTS))
def test_bad_inputs(case: ErrorInput) -> None:
    check_error_input(case)
