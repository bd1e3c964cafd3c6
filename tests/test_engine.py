"""Forward / backward over a chain: fan-out, shared specs, tuples, order, call-time errors."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.graph import INPUT
from specchain.modules import Add, Concat, Identity, LastStep, Linear, Reverse, Select, Tanh
from specchain.types import ShapeError, SpecError

RTOL, ATOL = 1e-7, 1e-9  # float64 parity with torch autograd (design section 6)


def close(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


def t64(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def torch_linear(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.nn.functional.linear(x, params["weight"], params["bias"])


# --- gradients ------------------------------------------------------------------------------


def test_fan_out_gradients_add_up(rng: np.random.Generator) -> None:
    m = (sc.branch(Linear(8, 4), Linear(8, 4)) >> Add()).to(np.float64)
    x = rng.standard_normal((5, 3, 8))
    dy = rng.standard_normal((5, 3, 4))
    y, tape = m.forward(x)
    w0, w1 = m.spec("linear").params["weight"], m.spec("linear_1").params["weight"]
    close(y, m.spec("linear")(x) + m.spec("linear_1")(x))
    dx, grads = m.backward(tape, dy)
    close(dx, dy @ w0 + dy @ w1)
    flat_x, flat_dy = x.reshape(-1, 8), dy.reshape(-1, 4)
    close(grads["linear.weight"], flat_dy.T @ flat_x)
    close(grads["linear_1.weight"], flat_dy.T @ flat_x)
    close(grads["linear.bias"], flat_dy.sum(axis=0))


def test_a_value_added_to_itself_gets_twice_the_gradient(rng: np.random.Generator) -> None:
    m = sc.branch(Identity(), Identity()) >> Add()
    x = rng.standard_normal((4, 2)).astype(np.float32)
    dy = rng.standard_normal((4, 2)).astype(np.float32)
    y, tape = m.forward(x)
    np.testing.assert_array_equal(y, 2 * x)
    dx, grads = m.backward(tape, dy)
    np.testing.assert_array_equal(dx, 2 * dy)
    assert grads == {}


def test_shared_spec_gets_the_sum_of_its_gradients_like_torch(rng: np.random.Generator) -> None:
    lin = Linear(6, 6, name="lin")
    m = (Reverse(axis=0) >> lin >> Tanh() >> lin >> Linear(6, 3)).to(np.float64)
    x = rng.standard_normal((5, 2, 6))
    dy = rng.standard_normal((5, 2, 3))
    y, tape = m.forward(x, train=True, rng=0)
    dx, grads = m.backward(tape, dy)
    assert set(grads) == {"lin.weight", "lin.bias", "linear.weight", "linear.bias"}

    tp = {k: t64(v, grad=True) for k, v in m.named_parameters().items()}
    tx = t64(x, grad=True)
    shared = {"weight": tp["lin.weight"], "bias": tp["lin.bias"]}
    head = {"weight": tp["linear.weight"], "bias": tp["linear.bias"]}
    ty = torch_linear(torch_linear(torch.tanh(torch_linear(tx.flip(0), shared)), shared), head)
    ty.backward(t64(dy))
    close(y, ty.detach().numpy())
    close(dx, tx.grad.numpy())
    for key, param in tp.items():
        assert grads[key].dtype == np.float64
        close(grads[key], param.grad.numpy())


def test_bidirectional_shape_matches_torch(rng: np.random.Generator) -> None:
    m = (
        sc.branch(Linear(4, 5), Reverse() >> Linear(4, 5) >> Reverse()) >> Concat() >> Linear(10, 2)
    ).to(np.float64)
    x = rng.standard_normal((6, 3, 4))
    dy = rng.standard_normal((6, 3, 2))
    y, tape = m.forward(x)
    dx, grads = m.backward(tape, dy)

    tp = {k: t64(v, grad=True) for k, v in m.named_parameters().items()}

    def part(name: str) -> dict[str, torch.Tensor]:
        return {"weight": tp[f"{name}.weight"], "bias": tp[f"{name}.bias"]}

    tx = t64(x, grad=True)
    forward = torch_linear(tx, part("linear"))
    backward = torch_linear(tx.flip(0), part("linear_1")).flip(0)
    ty = torch_linear(torch.cat([forward, backward], dim=-1), part("linear_2"))
    ty.backward(t64(dy))
    close(y, ty.detach().numpy())
    close(dx, tx.grad.numpy())
    for key, param in tp.items():
        close(grads[key], param.grad.numpy())


def test_grads_are_keyed_like_named_parameters_with_zeros_where_unused(
    rng: np.random.Generator,
) -> None:
    m = sc.branch(Reverse(axis=0) >> Linear(8, 2), Reverse(axis=0) >> Linear(8, 3)) >> Select(0)
    x = rng.standard_normal((3, 2, 8)).astype(np.float32)
    y, tape = m.forward(x)
    assert y.shape == (3, 2, 2)
    _, grads = m.backward(tape, np.ones_like(y))
    assert list(grads) == list(m.named_parameters())
    assert not np.any(grads["linear_1.weight"]) and not np.any(grads["linear_1.bias"])
    assert np.any(grads["linear.weight"])
    for key, param in m.named_parameters().items():
        assert grads[key].shape == param.shape and grads[key].dtype == param.dtype


def test_backward_does_not_consume_the_tape(rng: np.random.Generator) -> None:
    m = Linear(4, 3) >> Tanh()
    x = rng.standard_normal((2, 4)).astype(np.float32)
    y, tape = m.forward(x)
    dy = np.ones_like(y)
    dx1, g1 = m.backward(tape, dy)
    dx2, g2 = m.backward(tape, dy)
    np.testing.assert_array_equal(dx1, dx2)
    for key in g1:
        np.testing.assert_array_equal(g1[key], g2[key])


def test_none_cotangent_means_zero(rng: np.random.Generator) -> None:
    m = Linear(4, 3) >> Tanh()
    _, tape = m.forward(rng.standard_normal((2, 4)).astype(np.float32))
    dx, grads = m.backward(tape, None)
    assert dx.shape == (2, 4) and not np.any(dx)
    assert all(not np.any(g) for g in grads.values())


# --- tuples ---------------------------------------------------------------------------------


def test_branch_returns_a_tuple(rng: np.random.Generator) -> None:
    m = sc.branch(Linear(8, 2), Linear(8, 3))
    x = rng.standard_normal((4, 8)).astype(np.float32)
    y = m(x)
    assert isinstance(y, tuple) and len(y) == 2
    assert y[0].shape == (4, 2) and y[1].shape == (4, 3)
    np.testing.assert_array_equal(y[0], m.spec("linear")(x))
    np.testing.assert_array_equal(y[1], m.spec("linear_1")(x))


def test_tuple_cotangent_with_none_entries(rng: np.random.Generator) -> None:
    m = sc.branch(Linear(8, 2), Linear(8, 3)).to(np.float64)
    x = rng.standard_normal((4, 8))
    _, tape = m.forward(x)
    d1 = rng.standard_normal((4, 3))
    dx, grads = m.backward(tape, (None, d1))
    close(dx, d1 @ m.spec("linear_1").params["weight"])
    assert not np.any(grads["linear.weight"]) and not np.any(grads["linear.bias"])
    close(grads["linear_1.weight"], d1.T @ x)
    dx_list, _ = m.backward(tape, [None, d1])  # a list works like a tuple
    close(dx_list, dx)
    dx_none, _ = m.backward(tape, (None, None))
    assert not np.any(dx_none)


@pytest.mark.parametrize(
    ("dy", "got"),
    [(np.ones((4, 3)), "got [4, 3]"), ((None,), "got tuple"), ((None, None, None), "got tuple")],
)
def test_tuple_cotangent_must_match_the_structure(
    rng: np.random.Generator, dy: object, got: str
) -> None:
    m = sc.branch(Linear(8, 2), Linear(8, 3))
    _, tape = m.forward(rng.standard_normal((4, 8)).astype(np.float32))
    msg = "dy must match the output structure ([4, 2], [4, 3]), " + got
    with pytest.raises(ShapeError, match=re.escape(msg)):
        m.backward(tape, dy)


def test_parallel_takes_and_returns_tuples(rng: np.random.Generator) -> None:
    m = sc.parallel(Linear(3, 2), Tanh()).to(np.float64)
    x = (rng.standard_normal((5, 3)), rng.standard_normal((5, 7)))
    y, tape = m.forward(x)
    close(y[1], np.tanh(x[1]))
    dy = (rng.standard_normal((5, 2)), rng.standard_normal((5, 7)))
    dx, _ = m.backward(tape, dy)
    assert isinstance(dx, tuple) and len(dx) == 2
    close(dx[0], dy[0] @ m.spec("linear").params["weight"])
    close(dx[1], dy[1] * (1 - np.tanh(x[1]) ** 2))


# --- determinism ----------------------------------------------------------------------------


def test_execution_order_is_deterministic(rng: np.random.Generator) -> None:
    def build() -> sc.SpecChain:
        sc.seed(3)
        return sc.branch(Linear(4, 4), Reverse() >> Linear(4, 4) >> Reverse()) >> Concat() >> Tanh()

    a, b = build(), build()
    assert a.nodes == b.nodes == ["linear", "reverse", "linear_1", "reverse_1", "concat", "tanh"]
    x = rng.standard_normal((3, 2, 4)).astype(np.float32)
    ya, tape_a = a.forward(x)
    yb, tape_b = b.forward(x)
    np.testing.assert_array_equal(ya, yb)
    assert list(tape_a.values) == [INPUT, *a.nodes]
    assert list(tape_a.saved) == a.nodes
    _, ga = a.backward(tape_a, np.ones_like(ya))
    _, gb = b.backward(tape_b, np.ones_like(yb))
    assert list(ga) == list(gb)
    for key in ga:
        np.testing.assert_array_equal(ga[key], gb[key])


def test_inference_call_matches_forward(rng: np.random.Generator) -> None:
    m = Reverse(axis=0) >> Linear(8, 4) >> Tanh()
    x = rng.standard_normal((3, 2, 8)).astype(np.float32)
    y, tape = m.forward(x, train=True, rng=0)
    np.testing.assert_array_equal(m(x), y)
    assert tape.train is True
    assert y.dtype == np.float32


# --- call-time errors (messages pinned) -------------------------------------------------------


@pytest.fixture
def model() -> sc.SpecChain:
    return Reverse(axis=0) >> Linear(8, 4) >> Tanh()


def test_wrong_input_rank(model: sc.SpecChain) -> None:
    msg = "input to 'reverse' (Reverse, expects [T, B, F]): got []: Reverse needs rank >= 1, got []"
    with pytest.raises(ShapeError, match="^" + re.escape(msg) + "$"):
        model(np.zeros((), dtype=np.float32))


def test_wrong_rank_after_the_first_node() -> None:
    m = LastStep() >> Linear(8, 4)
    msg = "cannot connect 'last_step' (out []) to 'linear' (expects [..., 8]): "
    with pytest.raises(ShapeError, match=re.escape(msg) + "Linear needs at least one axis"):
        m(np.zeros(8, dtype=np.float32))


def test_wrong_feature_size(model: sc.SpecChain) -> None:
    msg = (
        "cannot connect 'reverse' (out [3, 2, 9]) to 'linear' (expects [..., 8]): "
        "feature size: expected 8, got 9"
    )
    with pytest.raises(ShapeError, match="^" + re.escape(msg) + "$"):
        model(np.zeros((3, 2, 9), dtype=np.float32))


def test_wrong_feature_size_at_the_first_node() -> None:
    msg = (
        "input to 'linear' (Linear, expects [..., 8]): got [3, 9]: feature size: expected 8, got 9"
    )
    with pytest.raises(ShapeError, match="^" + re.escape(msg) + "$"):
        Linear(8, 4)(np.zeros((3, 9), dtype=np.float32))


def test_float64_input_to_a_float32_model(model: sc.SpecChain) -> None:
    msg = (
        "input dtype float64 does not match the model's parameter dtype float32; "
        "cast the input with x.astype(np.float32) or the model with model.to(np.float64)"
    )
    with pytest.raises(TypeError, match="^" + re.escape(msg) + "$"):
        model(np.zeros((3, 2, 8)))


def test_float32_input_to_a_float64_model(model: sc.SpecChain) -> None:
    model.to(np.float64)
    msg = (
        "input dtype float32 does not match the model's parameter dtype float64; "
        "cast the input with x.astype(np.float64) or the model with model.to(np.float32)"
    )
    with pytest.raises(TypeError, match="^" + re.escape(msg) + "$"):
        model.forward(np.zeros((3, 2, 8), dtype=np.float32))


def test_float16_input_is_told_to_cast_the_input_only(model: sc.SpecChain) -> None:
    msg = (
        "input dtype float16 does not match the model's parameter dtype float32; "
        "cast the input with x.astype(np.float32)"
    )
    with pytest.raises(TypeError, match="^" + re.escape(msg) + "$"):
        model(np.zeros((3, 2, 8), dtype=np.float16))


def test_int_input_to_a_float_model(model: sc.SpecChain) -> None:
    msg = (
        "input to 'reverse' (Reverse, expects [T, B, F]): got int[3, 2, 8]: "
        "Reverse takes one float tensor, got int[3, 2, 8]"
    )
    with pytest.raises(ShapeError, match="^" + re.escape(msg) + "$"):
        model(np.zeros((3, 2, 8), dtype=np.int64))
    with pytest.raises(ShapeError, match=re.escape("Linear takes one float tensor [..., 8]")):
        Linear(8, 2)(np.zeros((3, 8), dtype=np.int32))


@pytest.mark.parametrize("x", [[[0.0] * 8] * 2, 3.0, None, "x"])
def test_non_array_input_is_a_type_error(model: sc.SpecChain, x: object) -> None:
    with pytest.raises(TypeError, match=r"expected a numpy array or a tuple of arrays, got \w+"):
        model(x)


def test_dy_of_the_wrong_shape(model: sc.SpecChain) -> None:
    _, tape = model.forward(np.zeros((3, 2, 8), dtype=np.float32))
    msg = "dy has shape [3, 2, 5], the output has [3, 2, 4]"
    with pytest.raises(ShapeError, match="^" + re.escape(msg) + "$"):
        model.backward(tape, np.zeros((3, 2, 5), dtype=np.float32))
    with pytest.raises(ShapeError, match=re.escape("dy has shape [2, 3, 4]")):
        model.backward(tape, np.zeros((2, 3, 4), dtype=np.float32))


def test_backward_with_a_tape_from_another_chain(model: sc.SpecChain) -> None:
    twin = Reverse(axis=0) >> Linear(8, 4) >> Tanh()
    y, tape = twin.forward(np.zeros((3, 2, 8), dtype=np.float32))
    msg = "this tape was recorded by another chain; pass the tape from its forward"
    with pytest.raises(SpecError, match="^" + re.escape(msg) + "$"):
        model.backward(tape, np.ones_like(y))


def test_error_inside_forward_names_the_node_once() -> None:
    m = Reverse(axis=0) >> Linear(8, 8) >> LastStep() >> Linear(8, 2)
    msg = (
        "in forward of node 'last_step' (LastStep, input [0, 2, 8]): "
        "LastStep needs at least one time step, got T = 0 in shape [0, 2, 8]"
    )
    with pytest.raises(ShapeError, match="^" + re.escape(msg) + "$") as info:
        m(np.zeros((0, 2, 8), dtype=np.float32))
    assert str(info.value).count("'last_step'") == 1
    with pytest.raises(ShapeError) as again:  # a new error, annotated once again
        m.forward(np.zeros((0, 3, 8), dtype=np.float32))
    assert str(again.value).count("in forward of node") == 1


def test_non_spec_errors_inside_forward_get_one_note(rng: np.random.Generator) -> None:
    m = Reverse(axis=0) >> Linear(8, 4) >> Tanh()
    m.spec("linear").params["weight"] = np.zeros((4, 5), dtype=np.float32)  # corrupted by hand
    with pytest.raises(ValueError, match="matmul") as info:
        m(rng.standard_normal((3, 2, 8)).astype(np.float32))
    assert info.value.__notes__ == ["in forward of node 'linear' (Linear, input [3, 2, 8])"]


def test_errors_inside_backward_name_the_node(rng: np.random.Generator) -> None:
    m = Reverse(axis=0) >> Linear(8, 4) >> Tanh()
    y, tape = m.forward(rng.standard_normal((3, 2, 8)).astype(np.float32))
    m.spec("linear").params["weight"] = np.zeros((5, 8), dtype=np.float32)  # corrupted by hand
    with pytest.raises(ValueError, match="matmul") as info:
        m.backward(tape, np.ones_like(y))
    assert info.value.__notes__ == ["in backward of node 'linear' (Linear, input [3, 2, 8])"]


def test_backward_needs_a_recorded_tape(model: sc.SpecChain) -> None:
    from specchain.engine import forward

    _, tape = forward(model, np.zeros((3, 2, 8), dtype=np.float32), False, None, keep=False)
    with pytest.raises(SpecError, match="this forward kept no tape"):
        model.backward(tape, np.zeros((3, 2, 4), dtype=np.float32))


# --- NaN ------------------------------------------------------------------------------------


def test_nan_propagates_without_warnings(rng: np.random.Generator) -> None:
    m = (Reverse(axis=0) >> Linear(8, 4) >> Tanh() >> Linear(4, 2)).to(np.float64)
    x = rng.standard_normal((3, 2, 8))
    x[1, 0, 3] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, tape = m.forward(x)
        dx, grads = m.backward(tape, np.ones_like(y))
    assert np.isnan(y[1, 0]).all()
    assert not np.isnan(np.delete(y, 1, axis=0)).any()  # other steps stay clean
    assert not np.isnan(y[1, 1]).any()  # and the other batch item
    assert np.isnan(dx[1, 0]).all()
    assert np.isnan(grads["linear.weight"][:, 3]).all()
    assert not np.isnan(grads["linear_1.bias"]).any()
