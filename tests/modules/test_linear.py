"""``Linear``: torch parity (output, input gradient, every parameter gradient), finite
differences, NaN propagation and the bad-input table."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.modules import Linear
from tests.helpers import (
    TORCH_DTYPES,
    ErrorInput,
    assert_close,
    assert_gradcheck,
    check_error_input,
    error_params,
    load_torch,
    run_chain,
    torch_from,
)

LEADING = [(), (5,), (4, 3), (2, 3, 4)]  # unbatched [I], and 1, 2, 3 leading dims


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("lead", LEADING, ids=lambda s: f"lead{len(s)}")
def test_matches_torch(
    lead: tuple[int, ...], bias: bool, dtype: type, rng: np.random.Generator
) -> None:
    model = Linear(6, 5, bias=bias).as_chain().to(dtype)
    x = rng.standard_normal((*lead, 6)).astype(dtype)
    dy = rng.standard_normal((*lead, 5)).astype(dtype)
    y, dx, grads = run_chain(model, x, dy)

    ref = torch.nn.Linear(6, 5, bias=bias, dtype=TORCH_DTYPES[np.dtype(dtype)])
    load_torch(ref, model.named_parameters(), "linear.")
    xt = torch_from(x, requires_grad=True)
    yt = ref(xt)
    yt.backward(torch_from(dy))

    assert_close(y, yt, "output")
    assert_close(dx, xt.grad, "input gradient")
    assert set(grads) == {f"linear.{name}" for name, _ in ref.named_parameters()}
    for name, p in ref.named_parameters():
        assert_close(grads[f"linear.{name}"], p.grad, f"linear.{name}")


def test_parameter_names_shapes_and_init_bounds_are_pytorchs() -> None:
    model = Linear(16, 3).as_chain()
    params = model.named_parameters()
    ref = torch.nn.Linear(16, 3)
    assert {k: v.shape for k, v in params.items()} == {
        f"linear.{k}": tuple(v.shape) for k, v in ref.state_dict().items()
    }
    assert all(p.dtype == np.float32 for p in params.values())
    bound = 1 / np.sqrt(16)  # PyTorch: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias
    assert all(np.abs(p).max() <= bound for p in params.values())
    assert Linear(16, 3, bias=False).as_chain().named_parameters().keys() == {"linear.weight"}


def test_two_linears_match_torch_sequential(rng: np.random.Generator) -> None:
    model = (Linear(4, 6) >> Linear(6, 2)).to(np.float64)
    x, dy = rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 5, 2))
    y, dx, grads = run_chain(model, x, dy)
    ref = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Linear(6, 2)).double()
    load_torch(ref[0], model.named_parameters(), "linear.")
    load_torch(ref[1], model.named_parameters(), "linear_1.")
    xt = torch_from(x, requires_grad=True)
    ref(xt).backward(torch_from(dy))
    assert_close(y, ref(xt), "output")
    assert_close(dx, xt.grad, "input gradient")
    for i, node in enumerate(("linear", "linear_1")):
        assert_close(grads[f"{node}.weight"], ref[i].weight.grad, node)
        assert_close(grads[f"{node}.bias"], ref[i].bias.grad, node)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("lead", LEADING, ids=lambda s: f"lead{len(s)}")
def test_gradcheck(lead: tuple[int, ...], bias: bool, rng: np.random.Generator) -> None:
    report = assert_gradcheck(Linear(3, 2, bias=bias).as_chain(), rng.standard_normal((*lead, 3)))
    assert set(report.errors) == {"linear.weight", "input"} | ({"linear.bias"} if bias else set())


@pytest.mark.parametrize("shape", [(0, 3), (2, 0, 3)], ids=["B0", "T2_B0"])
def test_empty_leading_dims(shape: tuple[int, ...]) -> None:
    model = Linear(3, 2).as_chain().to(np.float64)
    x = np.zeros(shape)
    y, dx, grads = run_chain(model, x, np.zeros((*shape[:-1], 2)))
    assert y.shape == (*shape[:-1], 2) and dx.shape == shape
    assert not grads["linear.weight"].any() and not grads["linear.bias"].any()
    assert grads["linear.weight"].shape == (2, 3)


def test_nan_propagates_to_its_row_only(rng: np.random.Generator) -> None:
    model = Linear(3, 4).as_chain().to(np.float64)
    x = rng.standard_normal((3, 3))
    x[1, 2] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, dx, grads = run_chain(model, x, np.ones((3, 4)))
    assert np.isnan(y[1]).all()
    assert np.isfinite(y[[0, 2]]).all()
    assert np.isfinite(dx).all()  # dx = dy W does not see x
    assert np.isnan(grads["linear.weight"][:, 2]).all()  # column 2 met the NaN
    assert np.isfinite(grads["linear.weight"][:, :2]).all()
    assert np.isfinite(grads["linear.bias"]).all()


BAD_INPUTS = [
    ErrorInput(
        "zero_in",
        lambda: Linear(0, 3),
        sc.SpecError,
        r"^Linear\.in_features must be a positive int, got 0$",
    ),
    ErrorInput(
        "zero_out",
        lambda: Linear(3, 0),
        sc.SpecError,
        r"^Linear\.out_features must be a positive int, got 0$",
    ),
    ErrorInput(
        "negative_in",
        lambda: Linear(-1, 3),
        sc.SpecError,
        r"^Linear\.in_features must be a positive int, got -1$",
    ),
    ErrorInput(
        "float_in",
        lambda: Linear(2.5, 3),  # type: ignore[arg-type]
        TypeError,
        r"^Linear\.in_features must be a positive int, got 2\.5 \(float\)$",
    ),
    ErrorInput(
        "bool_in",
        lambda: Linear(True, 3),
        TypeError,
        r"^Linear\.in_features must be a positive int, got True \(bool\)$",
    ),
    ErrorInput(
        "str_out",
        lambda: Linear(3, "4"),  # type: ignore[arg-type]
        TypeError,
        r"^Linear\.out_features must be a positive int, got '4' \(str\)$",
    ),
    ErrorInput(
        "int_bias_flag",
        lambda: Linear(3, 4, bias=1),  # type: ignore[arg-type]
        TypeError,
        r"^Linear\.bias must be True or False, got 1 \(int\)$",
    ),
    ErrorInput(
        "reserved_name",
        lambda: Linear(3, 4, name="<input>"),
        sc.SpecError,
        r"^the node name '<input>' is reserved",
    ),
    ErrorInput(
        "connect_feature_mismatch",
        lambda: Linear(3, 4) >> Linear(5, 2),
        sc.ShapeError,
        re.escape(
            "cannot connect 'linear' (out [..., 4]) to 'linear_1' (expects [..., 5]): "
            "feature size 4 != 5"
        ),
    ),
    ErrorInput(
        "call_feature_mismatch",
        lambda: Linear(3, 4)(np.zeros((2, 5), np.float32)),
        sc.ShapeError,
        re.escape(
            "input to 'linear' (Linear, expects [..., 3]): got [2, 5]: feature size: "
            "expected 3, got 5"
        ),
    ),
    ErrorInput(
        "call_scalar",
        lambda: Linear(3, 4)(np.array(1.0, np.float32)),
        sc.ShapeError,
        r"Linear needs at least one axis, got a scalar$",
    ),
    ErrorInput(
        "call_int_input",
        lambda: Linear(3, 4)(np.zeros((2, 3), np.int64)),
        sc.ShapeError,
        re.escape("Linear takes one float tensor [..., 3], got int[2, 3]"),
    ),
    ErrorInput(
        "call_dtype_mismatch",
        lambda: Linear(3, 4)(np.zeros((2, 3), np.float64)),
        TypeError,
        r"^input dtype float64 does not match the model's parameter dtype float32; cast the "
        r"input with x\.astype\(np\.float32\) or the model with model\.to\(np\.float64\)$",
    ),
    ErrorInput(
        "call_list",
        lambda: Linear(3, 4)([[1.0, 2.0, 3.0]]),
        TypeError,
        r"^expected a numpy array or a tuple of arrays, got list; convert it with np\.asarray",
    ),
    ErrorInput(
        "to_int_dtype",
        lambda: Linear(3, 4).as_chain().to(np.int32),
        TypeError,
        r"^expected float32 or float64, got int32",
    ),
]


@pytest.mark.parametrize("case", error_params(BAD_INPUTS))
def test_bad_inputs(case: ErrorInput) -> None:
    check_error_input(case)
