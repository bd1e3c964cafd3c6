"""``Tanh``, ``Sigmoid``, ``ReLU``, ``Identity``: torch parity, finite differences, NaN, large
inputs without floating-point warnings, and the bad-input table."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.modules import Identity, Linear, ReLU, Sigmoid, Tanh
from tests.helpers import (
    ErrorInput,
    assert_close,
    assert_gradcheck,
    check_error_input,
    error_params,
    numpy_of,
    run_chain,
    torch_from,
)

TorchFn = Callable[[torch.Tensor], torch.Tensor]
ACTIVATIONS: list[tuple[type[sc.NNModuleSpec], TorchFn]] = [
    (Tanh, torch.tanh),
    (Sigmoid, torch.sigmoid),
    (ReLU, torch.relu),
]
ACTIVATION_IDS = ["tanh", "sigmoid", "relu"]


def torch_run(fn: TorchFn, x: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xt = torch_from(x, requires_grad=True)
    yt = fn(xt)
    yt.backward(torch_from(dy))
    assert xt.grad is not None
    return numpy_of(yt), numpy_of(xt.grad)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("cls", "fn"), ACTIVATIONS, ids=ACTIVATION_IDS)
@pytest.mark.parametrize("shape", [(7,), (4, 3, 5)], ids=["rank1", "rank3"])
def test_matches_torch(
    cls: type[sc.NNModuleSpec],
    fn: TorchFn,
    shape: tuple[int, ...],
    dtype: type,
    rng: np.random.Generator,
) -> None:
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    x.flat[0] = 0.0  # ReLU's kink: gradient 0 there, as in torch
    dy = rng.standard_normal(shape).astype(dtype)
    y, dx, grads = run_chain(cls().as_chain(), x, dy)
    y_ref, dx_ref = torch_run(fn, x, dy)
    assert grads == {}
    assert_close(y, y_ref, "output")
    assert_close(dx, dx_ref, "input gradient")


@pytest.mark.parametrize(("cls", "fn"), ACTIVATIONS, ids=ACTIVATION_IDS)
def test_after_linear_matches_torch(
    cls: type[sc.NNModuleSpec], fn: TorchFn, rng: np.random.Generator
) -> None:
    model = (Linear(3, 4) >> cls()).to(np.float64)
    x, dy = rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 2, 4))
    y, dx, grads = run_chain(model, x, dy)
    weight = torch_from(model.named_parameters()["linear.weight"], requires_grad=True)
    bias = torch_from(model.named_parameters()["linear.bias"], requires_grad=True)
    xt = torch_from(x, requires_grad=True)
    yt = fn(torch.nn.functional.linear(xt, weight, bias))
    yt.backward(torch_from(dy))
    assert_close(y, yt, "output")
    assert_close(dx, xt.grad, "input gradient")
    assert_close(grads["linear.weight"], weight.grad, "linear.weight")
    assert_close(grads["linear.bias"], bias.grad, "linear.bias")


@pytest.mark.parametrize("cls", [Tanh, Sigmoid, ReLU, Identity])
def test_gradcheck_alone(cls: type[sc.NNModuleSpec], rng: np.random.Generator) -> None:
    x = rng.standard_normal((4, 2, 3))
    x = np.where(np.abs(x) < 1e-3, 0.5, x)  # keep finite differences off ReLU's kink
    report = assert_gradcheck(cls().as_chain(), x)
    assert set(report.errors) == {"input"}


@pytest.mark.parametrize("cls", [Tanh, Sigmoid, ReLU, Identity])
def test_gradcheck_between_linears(cls: type[sc.NNModuleSpec], rng: np.random.Generator) -> None:
    model = Linear(3, 5) >> cls() >> Linear(5, 2)
    report = assert_gradcheck(model, rng.standard_normal((3, 2, 3)))
    assert report.worst > 0  # the check saw non-trivial gradients


def test_identity_passes_tuples_and_their_gradients(rng: np.random.Generator) -> None:
    model = sc.branch(Linear(3, 2), Linear(3, 4)) >> Identity()
    assert str(model.out_type) == "([..., 2], [..., 4])"
    model.to(np.float64)
    x = rng.standard_normal((5, 3))
    y, _ = model.forward(x)
    assert isinstance(y, tuple) and [a.shape for a in y] == [(5, 2), (5, 4)]
    assert_gradcheck(model, x)


def test_relu_gradient_is_zero_at_zero_and_below() -> None:
    x = np.array([-2.0, -0.0, 0.0, 1e-300, 3.0])
    y, dx, _ = run_chain(ReLU().as_chain(), x, np.full(5, 7.0))
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.0, 1e-300, 3.0])
    np.testing.assert_array_equal(dx, [0.0, 0.0, 0.0, 7.0, 7.0])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("cls", "fn"), ACTIVATIONS, ids=ACTIVATION_IDS)
def test_nan_propagates_like_torch(cls: type[sc.NNModuleSpec], fn: TorchFn, dtype: type) -> None:
    x = np.array([np.nan, -1.5, 0.5, 2.0], dtype=dtype)
    dy = np.array([1.0, 2.0, 3.0, 4.0], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from NaN
        y, dx, _ = run_chain(cls().as_chain(), x, dy)
    y_ref, dx_ref = torch_run(fn, x, dy)
    assert np.isnan(y[0]) and np.isfinite(y[1:]).all()
    assert_close(y[1:], y_ref[1:], "finite outputs")
    assert_close(dx[1:], dx_ref[1:], "finite gradients")
    # Deliberately compare the NaN entry: torch's relu passes the gradient through a NaN input
    # (its mask is "not x <= 0"), tanh and sigmoid give NaN.
    np.testing.assert_allclose(dx[:1], dx_ref[:1], equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_large_inputs_are_exact_without_fp_warnings(dtype: type) -> None:
    x = np.array([-1e4, -1e3, 1e3, 1e4], dtype=dtype)
    dy = np.ones(4, dtype=dtype)
    with np.errstate(all="raise"):
        y_sig, dx_sig, _ = run_chain(Sigmoid().as_chain(), x, dy)
        y_tanh, dx_tanh, _ = run_chain(Tanh().as_chain(), x, dy)
        y_relu, _, _ = run_chain(ReLU().as_chain(), x, dy)
    np.testing.assert_array_equal(y_sig, np.array([0, 0, 1, 1], dtype))
    np.testing.assert_array_equal(y_tanh, np.array([-1, -1, 1, 1], dtype))
    np.testing.assert_array_equal(dx_sig, np.zeros(4, dtype))
    np.testing.assert_array_equal(dx_tanh, np.zeros(4, dtype))
    np.testing.assert_array_equal(y_relu, np.array([0, 0, 1e3, 1e4], dtype))
    assert y_sig.dtype == y_tanh.dtype == dtype


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        (np.float64, [-720.0, -709.0, -40.0, 40.0, 709.0, 720.0]),  # exp(-720) is subnormal
        (np.float32, [-95.0, -88.0, -20.0, 20.0, 88.0, 95.0]),  # exp(-95) is subnormal
    ],
    ids=["float64", "float32"],
)
@pytest.mark.parametrize(("cls", "fn"), ACTIVATIONS[:2], ids=ACTIVATION_IDS[:2])
def test_saturating_inputs_match_torch_without_fp_warnings(
    cls: type[sc.NNModuleSpec], fn: TorchFn, dtype: type, values: list[float]
) -> None:
    x = np.array(values, dtype=dtype)
    dy = np.linspace(0.5, 2.0, x.size).astype(dtype)
    with np.errstate(all="raise"):
        y, dx, _ = run_chain(cls().as_chain(), x, dy)
    assert np.isfinite(y).all() and np.isfinite(dx).all()
    y_ref, dx_ref = torch_run(fn, x, dy)
    assert_close(y, y_ref, "output")
    assert_close(dx, dx_ref, "input gradient")


BAD_INPUTS = [
    ErrorInput(
        "tanh_on_tuple",
        lambda: sc.branch(Linear(3, 4), Linear(3, 4)) >> Tanh(),
        sc.ShapeError,
        re.escape(
            "cannot connect 'linear', 'linear_1' (out ([..., 4], [..., 4])) to 'tanh' "
            "(expects [...]): Tanh takes one float tensor, got ([..., 4], [..., 4])"
        ),
    ),
    ErrorInput(
        "sigmoid_on_int_input",
        lambda: Sigmoid()(np.zeros((2, 3), np.int64)),
        sc.ShapeError,
        re.escape("Sigmoid takes one float tensor, got int[2, 3]"),
    ),
    ErrorInput(
        "relu_on_list",
        lambda: ReLU()([1.0, -1.0]),
        TypeError,
        r"^expected a numpy array or a tuple of arrays, got list",
    ),
    ErrorInput(
        "empty_name",
        lambda: Tanh(name=""),
        TypeError,
        r"^Tanh\.name must be a non-empty string, got '' \(str\)$",
    ),
    ErrorInput(
        "reserved_name",
        lambda: ReLU(name="<output>"),
        sc.SpecError,
        r"^the node name '<output>' is reserved",
    ),
    ErrorInput(
        "first_then_linear_feature_mismatch",  # [...] in: the graph is inferred at call time
        lambda: (Tanh() >> Linear(6, 2))(np.zeros((2, 4), np.float32)),
        sc.ShapeError,
        re.escape(
            "cannot connect 'tanh' (out [2, 4]) to 'linear' (expects [..., 6]): feature size: "
            "expected 6, got 4"
        ),
    ),
    ErrorInput(
        "after_linear_dtype_mismatch",
        lambda: (Linear(2, 2) >> Tanh())(np.zeros((1, 2), np.float64)),
        TypeError,
        r"^input dtype float64 does not match the model's parameter dtype float32",
    ),
]


@pytest.mark.parametrize("case", error_params(BAD_INPUTS))
def test_bad_inputs(case: ErrorInput) -> None:
    check_error_input(case)
