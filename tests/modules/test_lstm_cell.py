"""``LSTMCell``: torch parity (h', c', dx, dh, dc and every weight gradient), finite differences,
agreement with a one-step ``LSTM``, and the bad-input table."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.modules import LSTM, LSTMCell
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


@pytest.mark.parametrize("cotangent", ["both", "c_only"])
@pytest.mark.parametrize("batch", [None, 1, 3], ids=["unbatched", "B1", "B3"])
@pytest.mark.parametrize("state", [False, True], ids=["zero_state", "state"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_matches_torch(
    dtype: type,
    bias: bool,
    state: bool,
    batch: int | None,
    cotangent: str,
    rng: np.random.Generator,
) -> None:
    model = LSTMCell(IN, HID, bias=bias).as_chain().to(dtype)
    ref = torch.nn.LSTMCell(IN, HID, bias=bias, dtype=TORCH_DTYPES[np.dtype(dtype)])
    load_torch(ref, model.named_parameters(), "lstm_cell.")
    lead = () if batch is None else (batch,)
    x = rng.standard_normal((*lead, IN)).astype(dtype)
    h, c = (rng.standard_normal((*lead, HID)).astype(dtype) for _ in range(2))
    dh, dc = (rng.standard_normal((*lead, HID)).astype(dtype) for _ in range(2))

    (h1, c1), tape = model.forward((x, (h, c)) if state else x, train=True, rng=0)
    dx, grads = model.backward(tape, (dh, dc) if cotangent == "both" else (None, dc))

    xt, ht, ct = (torch_from(a, requires_grad=True) for a in (x, h, c))
    h1t, c1t = ref(xt, (ht, ct)) if state else ref(xt)
    loss = (c1t * torch_from(dc)).sum()
    if cotangent == "both":
        loss = loss + (h1t * torch_from(dh)).sum()
    loss.backward()

    assert_close(h1, h1t, "h'")
    assert_close(c1, c1t, "c'")
    if state:
        dx, (dh0, dc0) = dx
        assert_close(dh0, ht.grad, "dh")
        assert_close(dc0, ct.grad, "dc")
    assert_close(dx, xt.grad, "dx")
    assert set(grads) == {f"lstm_cell.{name}" for name, _ in ref.named_parameters()}
    for name, p in ref.named_parameters():
        assert_close(grads[f"lstm_cell.{name}"], p.grad, name)


def test_parameter_names_order_and_shapes_are_pytorchs() -> None:
    model = LSTMCell(IN, HID).as_chain()
    ref = torch.nn.LSTMCell(IN, HID)
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [
        (f"lstm_cell.{k}", tuple(v.shape)) for k, v in ref.state_dict().items()
    ]
    bound = 1 / np.sqrt(HID)
    assert all(np.abs(p).max() <= bound for p in model.named_parameters().values())


def test_one_cell_step_equals_a_one_step_lstm(rng: np.random.Generator) -> None:
    cell = LSTMCell(IN, HID).as_chain().to(np.float64)
    lstm = LSTM(IN, HID, return_state=True).as_chain().to(np.float64)
    lstm.load_state_dict(
        {f"lstm.{k.removeprefix('lstm_cell.')}_l0": v for k, v in cell.state_dict().items()}
    )
    x, h, c = (
        rng.standard_normal((3, IN)),
        rng.standard_normal((3, HID)),
        rng.standard_normal((3, HID)),
    )
    h1, c1 = cell((x, (h, c)))
    y, (h_n, c_n) = lstm((x[None], (h[None], c[None])))
    assert_close(h1, y[0], "h' vs y")
    assert_close(h1, h_n[0], "h' vs h_n")
    assert_close(c1, c_n[0], "c' vs c_n")


def test_empty_batch(rng: np.random.Generator) -> None:
    model = LSTMCell(IN, HID).as_chain().to(np.float64)
    ref = torch.nn.LSTMCell(IN, HID, dtype=torch.float64)
    x = np.zeros((0, IN))
    (h1, c1), tape = model.forward(x, train=True, rng=0)
    h1t, c1t = ref(torch_from(x))
    assert h1.shape == tuple(h1t.shape) == (0, HID) and c1.shape == tuple(c1t.shape)
    dx, grads = model.backward(tape, (np.zeros((0, HID)), np.zeros((0, HID))))
    assert dx.shape == (0, IN) and all(not g.any() for g in grads.values())


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("batch", [None, 3], ids=["unbatched", "B3"])
def test_gradcheck(batch: int | None, bias: bool, rng: np.random.Generator) -> None:
    lead = () if batch is None else (batch,)
    x = rng.standard_normal((*lead, 3))
    h, c = rng.standard_normal((*lead, 4)), rng.standard_normal((*lead, 4))
    report = assert_gradcheck(LSTMCell(3, 4, bias=bias).as_chain(), (x, (h, c)))
    assert {"input", "input[1]", "input[2]"} <= set(report.errors)
    assert_gradcheck(LSTMCell(3, 4, bias=bias).as_chain(), x)  # from the zero state


def test_nan_input_propagates_to_its_row_only(rng: np.random.Generator) -> None:
    model = LSTMCell(IN, HID).as_chain().to(np.float64)
    x = rng.standard_normal((3, IN))
    x[1, 0] = np.nan
    (h1, c1), tape = model.forward(x, train=True, rng=0)
    dx, _ = model.backward(tape, (np.ones_like(h1), np.ones_like(c1)))
    assert np.isnan(h1[1]).all() and np.isnan(c1[1]).all()
    assert np.isfinite(h1[[0, 2]]).all() and np.isfinite(dx[[0, 2]]).all()


def _f32(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


BAD_INPUTS = [
    ErrorInput(
        "input_size_zero",
        lambda: LSTMCell(0, 3),
        sc.SpecError,
        r"^LSTMCell\.input_size must be a positive int, got 0$",
    ),
    ErrorInput(
        "hidden_size_negative",
        lambda: LSTMCell(3, -4),
        sc.SpecError,
        r"^LSTMCell\.hidden_size must be a positive int, got -4$",
    ),
    ErrorInput(
        "hidden_size_float",
        lambda: LSTMCell(3, 4.5),  # type: ignore[arg-type]
        TypeError,
        r"^LSTMCell\.hidden_size must be a positive int, got 4\.5 \(float\)$",
    ),
    ErrorInput(
        "call_wrong_feature_size",
        lambda: LSTMCell(8, 4)(_f32(3, 9)),
        sc.ShapeError,
        re.escape(
            "input to 'lstm_cell' (LSTMCell, expects [B, 8]): got [3, 9]: feature size: "
            "expected 8, got 9"
        ),
    ),
    ErrorInput(
        "call_sequence_input",
        lambda: LSTMCell(8, 4)(_f32(2, 3, 8)),
        sc.ShapeError,
        re.escape("rank: expected [B, 8] or [8], got [2, 3, 8]"),
    ),
    ErrorInput(
        "h_wrong_size",
        lambda: LSTMCell(8, 4)((_f32(3, 8), (_f32(3, 5), _f32(3, 4)))),
        sc.ShapeError,
        re.escape("h must be [3, 4], got [3, 5]: dim 1: expected 4, got 5"),
    ),
    ErrorInput(
        "c_wrong_batch",
        lambda: LSTMCell(8, 4)((_f32(3, 8), (_f32(3, 4), _f32(2, 4)))),
        sc.ShapeError,
        re.escape("c must be [3, 4], got [2, 4]: dim 0: expected 3, got 2"),
    ),
    ErrorInput(
        "h_batched_for_unbatched_input",
        lambda: LSTMCell(8, 4)((_f32(8), (_f32(1, 4), _f32(4)))),
        sc.ShapeError,
        re.escape("h must be [4], got [1, 4]"),
    ),
]


@pytest.mark.parametrize("case", error_params(BAD_INPUTS))
def test_bad_inputs(case: ErrorInput) -> None:
    check_error_input(case)
