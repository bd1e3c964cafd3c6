"""``GRUCell``: torch parity (h', dx, dh and every weight gradient), finite differences,
agreement with a one-step ``GRU``, and the bad-input table."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.modules import GRU, GRUCell
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


@pytest.mark.parametrize("batch", [None, 1, 3], ids=["unbatched", "B1", "B3"])
@pytest.mark.parametrize("state", [False, True], ids=["zero_state", "state"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_matches_torch(
    dtype: type, bias: bool, state: bool, batch: int | None, rng: np.random.Generator
) -> None:
    model = GRUCell(IN, HID, bias=bias).as_chain().to(dtype)
    ref = torch.nn.GRUCell(IN, HID, bias=bias, dtype=TORCH_DTYPES[np.dtype(dtype)])
    load_torch(ref, model.named_parameters(), "gru_cell.")
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
        assert isinstance(dx, tuple), "h was given, so dx is (dx, dh)"
        dx, dh0 = dx
        assert_close(dh0, ht.grad, "dh")
    assert_close(dx, xt.grad, "dx")
    assert set(grads) == {f"gru_cell.{name}" for name, _ in ref.named_parameters()}
    for name, p in ref.named_parameters():
        assert_close(grads[f"gru_cell.{name}"], p.grad, name)


def test_parameter_names_order_shapes_and_init_are_pytorchs() -> None:
    model = GRUCell(IN, HID).as_chain()
    ref = torch.nn.GRUCell(IN, HID)
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [
        (f"gru_cell.{k}", tuple(v.shape)) for k, v in ref.state_dict().items()
    ]
    bound = 1 / np.sqrt(HID)
    assert all(np.abs(p).max() <= bound for p in model.named_parameters().values())


def test_one_cell_step_equals_a_one_step_gru(rng: np.random.Generator) -> None:
    cell = GRUCell(IN, HID).as_chain().to(np.float64)
    gru = GRU(IN, HID, return_state=True).as_chain().to(np.float64)
    gru.load_state_dict(
        {f"gru.{k.removeprefix('gru_cell.')}_l0": v for k, v in cell.state_dict().items()}
    )
    x, h = rng.standard_normal((3, IN)), rng.standard_normal((3, HID))
    h1 = cell((x, h))
    y, h_n = gru((x[None], h[None]))
    assert_close(h1, y[0], "h' vs y")
    assert_close(h1, h_n[0], "h' vs h_n")


def test_empty_batch(rng: np.random.Generator) -> None:
    model = GRUCell(IN, HID).as_chain().to(np.float64)
    ref = torch.nn.GRUCell(IN, HID, dtype=torch.float64)
    x = np.zeros((0, IN))
    h1, tape = model.forward(x, train=True, rng=0)
    assert h1.shape == tuple(ref(torch_from(x)).shape) == (0, HID)
    dx, grads = model.backward(tape, np.zeros((0, HID)))
    assert dx.shape == (0, IN) and all(not g.any() for g in grads.values())


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("batch", [None, 3], ids=["unbatched", "B3"])
def test_gradcheck(batch: int | None, bias: bool, rng: np.random.Generator) -> None:
    lead = () if batch is None else (batch,)
    x, h = rng.standard_normal((*lead, 3)), rng.standard_normal((*lead, 4))
    report = assert_gradcheck(GRUCell(3, 4, bias=bias).as_chain(), (x, h))
    assert {"input", "input[1]"} <= set(report.errors)
    assert_gradcheck(GRUCell(3, 4, bias=bias).as_chain(), x)  # from the zero state


def test_nan_input_propagates_to_its_row_only(rng: np.random.Generator) -> None:
    model = GRUCell(IN, HID).as_chain().to(np.float64)
    x = rng.standard_normal((3, IN))
    x[1, 0] = np.nan
    h1, tape = model.forward(x, train=True, rng=0)
    dx, _ = model.backward(tape, np.ones_like(h1))
    assert np.isnan(h1[1]).all()
    assert np.isfinite(h1[[0, 2]]).all() and np.isfinite(dx[[0, 2]]).all()


def _f32(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


BAD_INPUTS = [
    ErrorInput(
        "input_size_zero",
        lambda: GRUCell(0, 3),
        sc.SpecError,
        r"^GRUCell\.input_size must be a positive int, got 0$",
    ),
    ErrorInput(
        "hidden_size_float",
        lambda: GRUCell(3, 4.5),  # type: ignore[arg-type]
        TypeError,
        r"^GRUCell\.hidden_size must be a positive int, got 4\.5 \(float\)$",
    ),
    ErrorInput(
        "call_wrong_feature_size",
        lambda: GRUCell(8, 4)(_f32(3, 9)),
        sc.ShapeError,
        re.escape(
            "input to 'gru_cell' (GRUCell, expects [B, 8]): got [3, 9]: feature size: "
            "expected 8, got 9"
        ),
    ),
    ErrorInput(
        "call_sequence_input",
        lambda: GRUCell(8, 4)(_f32(2, 3, 8)),
        sc.ShapeError,
        re.escape("rank: expected [B, 8] or [8], got [2, 3, 8]"),
    ),
    ErrorInput(
        "h_wrong_size",
        lambda: GRUCell(8, 4)((_f32(3, 8), _f32(3, 5))),
        sc.ShapeError,
        re.escape("h must be [3, 4], got [3, 5]: dim 1: expected 4, got 5"),
    ),
    ErrorInput(
        "h_wrong_batch",
        lambda: GRUCell(8, 4)((_f32(3, 8), _f32(2, 4))),
        sc.ShapeError,
        re.escape("h must be [3, 4], got [2, 4]: dim 0: expected 3, got 2"),
    ),
    ErrorInput(
        "h_batched_for_unbatched_input",
        lambda: GRUCell(8, 4)((_f32(8), _f32(1, 4))),
        sc.ShapeError,
        re.escape("h must be [4], got [1, 4]"),
    ),
    ErrorInput(
        "lstm_state_pair",
        lambda: GRUCell(8, 4)((_f32(3, 8), (_f32(3, 4), _f32(3, 4)))),
        sc.ShapeError,
        re.escape("takes x or (x, h), got"),
    ),
]


@pytest.mark.parametrize("case", error_params(BAD_INPUTS))
def test_bad_inputs(case: ErrorInput) -> None:
    check_error_input(case)
