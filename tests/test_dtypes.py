"""Dtypes at the graph boundary: what inputs and cotangents may be, and gradients that always have
their parameter's dtype (docs/numerics.md, "Dtypes")."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import attrs
import numpy as np
import pytest

import specchain as sc
from specchain.modules import LSTM, Dropout, Embedding, LastStep, Linear, Reverse, Tanh
from specchain.spec import Context, Params
from specchain.types import DimEnv, ShapeError, SpecError, TensorType, Type
from specchain.validate import SpecTypeError
from tests.helpers import ErrorInput, check_error_input, error_params

ACCEPTED = (
    "specchain computes with float32 or float64 arrays (integer or bool ones where the graph "
    "takes ids or masks); "
)
SHAPE = (3, 2, 8)


def unsupported(dtype: str, fix: str, item: str = "") -> str:
    """The pinned refusal of a dtype specchain never computes with."""
    where = f" (input item {item})" if item else ""
    return "^" + re.escape(f"input dtype {dtype} is not supported{where}: {ACCEPTED}{fix}") + "$"


def numbers(expr: str) -> str:
    return f"convert it to numbers: {expr}.astype(np.float32), or .astype(np.int64) for ids"


def exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


def model() -> sc.SpecChain:
    """float32 parameters, input ``[T, B, 8]``."""
    return Reverse(axis=0) >> Linear(8, 4) >> Tanh()


def pair_model() -> sc.SpecChain:
    """A tuple input ``(x [B, 8], z [B, 8])``: item 1 goes to a layer without parameters."""
    return sc.parallel(Linear(8, 4), Tanh())


def single(dtype: Any) -> np.ndarray:
    return np.zeros(SHAPE).astype(dtype)


def pair(dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((2, 8), np.float32), np.zeros((2, 8)).astype(dtype)


def call_single(dtype: str) -> Callable[[], object]:
    return lambda: model()(single(dtype))


def call_pair(dtype: str) -> Callable[[], object]:
    return lambda: pair_model()(pair(dtype))


NUMERIC_FIX = [
    ("complex64", "complex64", "cast it with x.real.astype(np.float32)"),
    ("complex128", "complex128", "cast it with x.real.astype(np.float32)"),
    ("object", "object", numbers("x")),
    ("str", "<U32", numbers("x")),
    ("bytes", "|S32", numbers("x")),
    ("datetime64[s]", "datetime64[s]", numbers("x")),
    ("V8", "|V8", numbers("x")),
]

BAD_INPUTS = [
    *(
        ErrorInput(name, call_single(name), SpecTypeError, unsupported(shown, fix))
        for name, shown, fix in NUMERIC_FIX
    ),
    *(
        ErrorInput(
            f"tuple_{name}",
            call_pair(name),
            SpecTypeError,
            unsupported(shown, fix.replace("x.", "x[1]."), item="1"),
        )
        for name, shown, fix in NUMERIC_FIX
    ),
    ErrorInput(
        "nested_tuple_complex",
        lambda: LSTM(8, 4).as_chain()(
            (single(np.float32), (np.zeros((1, 2, 4), np.complex64), np.zeros((1, 2, 4))))
        ),
        SpecTypeError,
        unsupported("complex64", "cast it with x[1][0].real.astype(np.float32)", item="1.0"),
    ),
    ErrorInput(
        "float16",
        lambda: model()(single(np.float16)),
        SpecTypeError,
        exact(
            "input dtype float16 does not match the model's parameter dtype float32; "
            "cast the input with x.astype(np.float32)"
        ),
    ),
    ErrorInput(
        "tuple_float16",
        lambda: pair_model()(pair(np.float16)),
        SpecTypeError,
        exact(
            "input dtype float16 does not match the model's parameter dtype float32 "
            "(input item 1); cast the input with x[1].astype(np.float32)"
        ),
    ),
    ErrorInput(
        "float16_without_parameters",
        lambda: Tanh()(single(np.float16)),
        SpecTypeError,
        unsupported("float16", "cast it with x.astype(np.float32)"),
    ),
    ErrorInput(
        "longdouble_without_parameters",
        lambda: Tanh()(single(np.longdouble)),
        SpecTypeError,
        unsupported(str(np.dtype(np.longdouble)), "cast it with x.astype(np.float32)"),
    ),
    ErrorInput(
        "complex_into_a_float64_model",
        lambda: model().to(np.float64)(single(np.complex128)),
        SpecTypeError,
        unsupported("complex128", "cast it with x.real.astype(np.float64)"),
    ),
    ErrorInput(
        "tuple_float64",
        lambda: pair_model()(pair(np.float64)),
        SpecTypeError,
        exact(
            "input dtype float64 does not match the model's parameter dtype float32 "
            "(input item 1); cast the input with x[1].astype(np.float32) or the model with "
            "model.to(np.float64)"
        ),
    ),
    ErrorInput(
        "bool",
        lambda: model()(single(bool)),
        ShapeError,
        exact(
            "input to 'reverse' (Reverse, expects [T, B, F]): got bool[3, 2, 8]: "
            "Reverse takes one float tensor, got bool[3, 2, 8]"
        ),
    ),
    ErrorInput(
        "tuple_bool",
        lambda: pair_model()(pair(bool)),
        ShapeError,
        exact(
            "input to 'tanh' (Tanh, expects [...]): got bool[2, 8]: "
            "Tanh takes one float tensor, got bool[2, 8]"
        ),
    ),
    ErrorInput(
        "int_into_a_float_graph",
        lambda: model()(single(np.int64)),
        ShapeError,
        exact(
            "input to 'reverse' (Reverse, expects [T, B, F]): got int[3, 2, 8]: "
            "Reverse takes one float tensor, got int[3, 2, 8]"
        ),
    ),
    ErrorInput(
        "float_into_an_embedding",
        lambda: Embedding(10, 3)(np.zeros((2, 3), np.float32)),
        ShapeError,
        exact(
            "input to 'embedding' (Embedding, expects int[T, B]): got [2, 3]: "
            "Embedding takes integer indices, got [2, 3]"
        ),
    ),
    ErrorInput(
        "bool_into_an_embedding",
        lambda: Embedding(10, 3)(np.zeros((2, 3), bool)),
        ShapeError,
        exact(
            "input to 'embedding' (Embedding, expects int[T, B]): got bool[2, 3]: "
            "Embedding takes integer indices, got bool[2, 3]"
        ),
    ),
    ErrorInput(
        "uint8_into_an_embedding",
        lambda: Embedding(10, 3)(np.zeros((2, 3), np.uint8)),
        TypeError,
        "^"
        + re.escape(
            "Embedding takes int32 or int64 indices (as torch does), got dtype uint8; cast them "
            "with .astype(np.int64)\nin forward of node 'embedding' (Embedding, input int[2, 3])"
        ),
    ),
]


@pytest.mark.parametrize("case", error_params(BAD_INPUTS))
def test_bad_input_dtypes(case: ErrorInput) -> None:
    check_error_input(case)


def test_refused_before_any_arithmetic_runs() -> None:
    """Complex input used to run complex gate arithmetic and fail only in backward."""
    m = LSTM(8, 4).as_chain()
    with pytest.raises(SpecTypeError, match="input dtype complex128 is not supported"):
        m.forward(single(np.complex128))


def test_refusals_are_type_errors_and_spec_errors() -> None:
    with pytest.raises(TypeError) as info:
        model()(single(object))
    assert isinstance(info.value, SpecError)


def test_accepted_dtypes_run(rng: np.random.Generator) -> None:
    x = rng.standard_normal(SHAPE)
    assert model()(x.astype(np.float32)).dtype == np.float32
    assert model().to(np.float64)(x).dtype == np.float64
    ids = np.array([[1, 2], [3, 4]])
    for dtype in (np.int32, np.int64):
        assert Embedding(10, 3)(ids.astype(dtype)).shape == (2, 2, 3)
    keep = np.array([[True, False], [False, True]])  # a bool dropout mask is an input too
    y = Dropout(0.5).as_chain().forward((np.ones((2, 2)), keep), train=True)[0]
    np.testing.assert_array_equal(y, np.where(keep, 2.0, 0.0))


def test_bool_arrays_have_their_own_type_kind() -> None:
    t = TensorType.of(np.zeros((2, 3), bool))
    assert t.dtype == "bool"
    assert str(t) == "bool[2, 3]" and repr(t) == "TensorType(2, 3, dtype=bool)"
    assert str(TensorType.of(np.zeros(2, np.uint8))) == "int[2]"


# --- cotangents ------------------------------------------------------------------------------


def taped(dtype: Any = np.float32) -> tuple[sc.SpecChain, np.ndarray, sc.Tape]:
    m = model().to(dtype)
    y, tape = m.forward(np.ones(SHAPE, dtype))
    return m, y, tape


def dy_refused(got: str, want: str, fix: str, item: str = "") -> str:
    where = f" (dy item {item})" if item else ""
    return exact(
        f"dy dtype {got} does not match the output dtype {want}{where}; cast it with {fix}"
    )


@pytest.mark.parametrize(
    ("model_dtype", "dy_dtype", "match"),
    [
        (np.float32, np.float16, dy_refused("float16", "float32", "dy.astype(np.float32)")),
        (np.float32, np.float64, dy_refused("float64", "float32", "dy.astype(np.float32)")),
        (np.float64, np.float32, dy_refused("float32", "float64", "dy.astype(np.float64)")),
        (np.float64, np.float16, dy_refused("float16", "float64", "dy.astype(np.float64)")),
        (np.float32, np.int64, dy_refused("int64", "float32", "dy.astype(np.float32)")),
        (np.float32, bool, dy_refused("bool", "float32", "dy.astype(np.float32)")),
        (
            np.float32,
            np.complex64,
            dy_refused("complex64", "float32", "dy.real.astype(np.float32)"),
        ),
        (
            np.float64,
            np.complex128,
            dy_refused("complex128", "float64", "dy.real.astype(np.float64)"),
        ),
    ],
    ids=["f16-f32", "f64-f32", "f32-f64", "f16-f64", "int", "bool", "complex64", "complex128"],
)
def test_cotangent_of_another_dtype_is_refused(model_dtype: Any, dy_dtype: Any, match: str) -> None:
    m, y, tape = taped(model_dtype)
    with pytest.raises(SpecTypeError, match=match):
        m.backward(tape, np.ones(y.shape, dy_dtype))


def test_cotangent_item_of_another_dtype_is_named(rng: np.random.Generator) -> None:
    m = sc.branch(Linear(8, 2), Linear(8, 3))
    _, tape = m.forward(rng.standard_normal((4, 8)).astype(np.float32))
    dy = (None, np.ones((4, 3), np.float16))
    with pytest.raises(
        SpecTypeError, match=dy_refused("float16", "float32", "dy[1].astype(np.float32)", "1")
    ):
        m.backward(tape, dy)
    dx, grads = m.backward(tape, (None, np.ones((4, 3), np.float32)))  # None still means zero
    assert dx.dtype == np.float32 and not np.any(grads["linear.weight"])


def test_the_float16_cotangent_of_the_issue() -> None:
    """A float16 dy summed 100,000 ones into a float16 bias gradient: [2048.] for [100000.]."""
    m = Linear(1, 1).as_chain()
    y, tape = m.forward(np.zeros((100_000, 1), np.float32))
    with pytest.raises(
        SpecTypeError, match=dy_refused("float16", "float32", "dy.astype(np.float32)")
    ):
        m.backward(tape, np.ones(y.shape, np.float16))
    _, grads = m.backward(tape, np.ones(y.shape, np.float32))
    assert grads["linear.bias"].dtype == np.float32
    np.testing.assert_array_equal(grads["linear.bias"], [100_000.0])


# --- gradients -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_gradients_have_their_parameters_dtype(dtype: Any, rng: np.random.Generator) -> None:
    shared = Linear(3, 3)
    m = (Embedding(10, 8) >> LSTM(8, 4) >> LastStep() >> Linear(4, 3) >> shared >> shared).to(dtype)
    ids = rng.integers(0, 10, size=(5, 2))
    y, tape = m.forward(ids)
    assert y.dtype == dtype
    dx, grads = m.backward(tape, rng.standard_normal(y.shape).astype(dtype))
    assert dx is None  # token ids get no gradient
    assert list(grads) == list(m.named_parameters())
    for name, param in m.named_parameters().items():
        assert grads[name].dtype == param.dtype == dtype, name
    x = rng.standard_normal(SHAPE).astype(dtype)
    f = model().to(dtype)
    y, tape = f.forward(x)
    dx, grads = f.backward(tape, np.ones_like(y))
    assert dx.dtype == dtype and all(g.dtype == dtype for g in grads.values())


@attrs.define(eq=False)
class WideGrad(sc.NNModuleSpec):
    """A faulty user layer: y = x * weight, whose backward returns a float64 gradient."""

    def declare_params(self) -> dict[str, Any]:
        from specchain.params import ParamDecl, normal

        return {"weight": ParamDecl((8,), normal())}

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        return in_type

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, Any]:
        return x * params["weight"], x

    def backward(self, params: Params, x: Any, dy: np.ndarray) -> tuple[np.ndarray, Params]:
        wide = (dy * x).reshape(-1, 8).sum(axis=0).astype(np.float64)
        return dy * params["weight"], {"weight": wide}


def test_a_gradient_of_another_dtype_names_the_node() -> None:
    m = Linear(8, 8) >> WideGrad()
    y, tape = m.forward(np.ones((2, 8), np.float32))
    node = m.nodes[-1]
    msg = (
        f"in backward of node {node!r} ({m.spec(node).kind}): the gradient of 'weight' is "
        "float64[8], the parameter float32[8]; a spec's backward returns each gradient in its "
        "parameter's dtype and shape"
    )
    with pytest.raises(SpecError, match=exact(msg)):
        m.backward(tape, np.ones_like(y))
