"""Sequence plumbing: ``Reverse``, ``LastStep``, ``Concat``, ``Add``, ``Select`` and
``TimeDistributed``: exact values, types, finite differences, torch parity where there is a
torch twin, and the bad-input table."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import specchain as sc
from specchain.modules import (
    Add,
    Concat,
    Identity,
    LastStep,
    Linear,
    Reverse,
    Select,
    Tanh,
    TimeDistributed,
)
from tests.helpers import (
    ErrorInput,
    assert_close,
    assert_gradcheck,
    check_error_input,
    error_params,
    load_torch,
    run_chain,
    torch_from,
)

# --- Reverse -----------------------------------------------------------------------------


def test_reverse_flips_time_and_its_gradient(rng: np.random.Generator) -> None:
    model = Reverse().as_chain()  # layout-free: its neighbours' types place time
    assert (str(model.in_type), str(model.out_type)) == ("[..., F]", "[..., F]")
    x, dy = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 3))
    y, dx, _ = run_chain(model, x, dy)
    np.testing.assert_array_equal(y, x[::-1])
    np.testing.assert_array_equal(dx, dy[::-1])


def test_reverse_axis_1(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 5, 3))
    np.testing.assert_array_equal(Reverse(axis=1)(x), x[:, ::-1])


@pytest.mark.parametrize("T", [0, 1, 4])
def test_gradcheck_reverse(T: int, rng: np.random.Generator) -> None:
    model = Reverse() >> Linear(3, 2) >> Reverse()
    assert_gradcheck(model, rng.standard_normal((T, 2, 3)))


# --- LastStep ----------------------------------------------------------------------------


def test_laststep_takes_the_last_step(rng: np.random.Generator) -> None:
    model = LastStep().as_chain()
    assert (str(model.in_type), str(model.out_type)) == ("[T, B, F]", "[B, F]")
    x, dy = rng.standard_normal((4, 2, 3)), rng.standard_normal((2, 3))
    y, dx, _ = run_chain(model, x, dy)
    np.testing.assert_array_equal(y, x[-1])
    np.testing.assert_array_equal(dx[-1], dy)
    np.testing.assert_array_equal(dx[:-1], 0.0)


def test_laststep_matches_torch_indexing(rng: np.random.Generator) -> None:
    model = TimeDistributed(Linear(3, 4)) >> LastStep() >> Linear(4, 2)
    model.to(np.float64)
    assert (str(model.in_type), str(model.out_type)) == ("[T, B, 3]", "[B, 2]")
    x, dy = rng.standard_normal((5, 2, 3)), rng.standard_normal((2, 2))
    y, dx, grads = run_chain(model, x, dy)
    first, head = torch.nn.Linear(3, 4).double(), torch.nn.Linear(4, 2).double()
    load_torch(first, model.named_parameters(), "time_distributed.")
    load_torch(head, model.named_parameters(), "linear.")
    xt = torch_from(x, requires_grad=True)
    yt = head(first(xt)[-1])
    yt.backward(torch_from(dy))
    assert_close(y, yt, "output")
    assert_close(dx, xt.grad, "input gradient")
    assert_close(grads["time_distributed.weight"], first.weight.grad, "time_distributed.weight")
    assert_close(grads["linear.bias"], head.bias.grad, "linear.bias")


def test_laststep_gives_open_leading_dims_the_sequence_rank() -> None:
    model = Linear(3, 4) >> LastStep() >> Linear(4, 2)
    assert (str(model.in_type), str(model.out_type)) == ("[T, B, 3]", "[B, 2]")
    assert model(np.zeros((5, 2, 3), np.float32)).shape == (2, 2)


@pytest.mark.parametrize("T", [1, 3])
def test_gradcheck_laststep(T: int, rng: np.random.Generator) -> None:
    assert_gradcheck(Reverse() >> LastStep() >> Linear(3, 2), rng.standard_normal((T, 2, 3)))


# --- Concat ------------------------------------------------------------------------------


def test_branch_gives_open_parts_the_shared_rank() -> None:
    model = sc.branch(Linear(3, 4), TimeDistributed(Linear(3, 3))) >> Concat()
    assert (str(model.in_type), str(model.out_type)) == ("[T, B, 3]", "[T, B, 7]")


def test_concat_of_known_ranks_sums_features(rng: np.random.Generator) -> None:
    model = sc.branch(Reverse(), Reverse() >> TimeDistributed(Linear(3, 5))) >> Concat()
    assert str(model.out_type) == "[..., 8]"
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    y = model(x)
    assert y.shape == (4, 2, 8)
    np.testing.assert_array_equal(y[..., :3], x[::-1])


def test_concat_of_open_leading_dims(rng: np.random.Generator) -> None:
    model = sc.branch(Linear(3, 4), Linear(3, 5)) >> Concat()
    assert str(model.out_type) == "[..., 9]"
    model.to(np.float64)
    x = rng.standard_normal((2, 6, 3))
    assert model(x).shape == (2, 6, 9)
    assert_gradcheck(model, x)


def test_concat_of_unstated_types_waits_for_the_graph(rng: np.random.Generator) -> None:
    block = sc.branch(Identity(), Tanh()) >> Concat()
    assert (str(block.in_type), str(block.out_type)) == ("[...]", "[...]")
    grouped = TimeDistributed(Linear(3, 2)) >> block  # a >> (b >> c) ...
    flat = (
        TimeDistributed(Linear(3, 2)) >> sc.branch(Identity(), Tanh()) >> Concat()
    )  # (a >> b) >> c
    assert str(grouped.out_type) == str(flat.out_type) == "[T, B, 4]"
    x = rng.standard_normal((3, 2, 3)).astype(np.float32)
    assert grouped(x).shape == (3, 2, 4)
    assert_gradcheck(grouped, x.astype(np.float64))


def test_concat_axis_0_joins_time(rng: np.random.Generator) -> None:
    sequence = sc.TensorType(("T", "B", "F"))
    model = sc.branch(Reverse(), Reverse() >> Reverse()).retyped(sequence) >> Concat(axis=0)
    assert str(model.out_type) == "[T+T, B, F]"
    x = rng.standard_normal((3, 2, 4))
    y, dx, _ = run_chain(model, x, np.ones((6, 2, 4)))
    np.testing.assert_array_equal(y, np.concatenate([x[::-1], x]))
    np.testing.assert_array_equal(dx, np.full_like(x, 2.0))


def test_gradcheck_concat_bidirectional(rng: np.random.Generator) -> None:
    model = sc.branch(Linear(3, 4), Reverse() >> Linear(3, 4) >> Reverse()) >> Concat()
    model = model >> Linear(8, 2)
    assert_gradcheck(model, rng.standard_normal((5, 2, 3)))


def test_gradcheck_concat_parallel(rng: np.random.Generator) -> None:
    model = sc.parallel(Linear(3, 4), Identity()) >> Concat() >> Tanh()
    assert_gradcheck(model, (rng.standard_normal((2, 3)), rng.standard_normal((2, 5))))


# --- Add ---------------------------------------------------------------------------------


def test_add_sums_and_fans_the_gradient_out(rng: np.random.Generator) -> None:
    model = sc.parallel(Identity(), Identity(), Identity()) >> Add()
    items = tuple(rng.standard_normal((2, 3)) for _ in range(3))
    dy = rng.standard_normal((2, 3))
    y, dx, _ = run_chain(model, items, dy)
    np.testing.assert_allclose(y, items[0] + items[1] + items[2], rtol=1e-15)
    assert isinstance(dx, tuple) and len(dx) == 3
    for d in dx:
        np.testing.assert_array_equal(d, dy)


def test_add_does_not_alias_its_inputs(rng: np.random.Generator) -> None:
    model = sc.branch(Identity(), Identity(), Identity()) >> Add()
    x = rng.standard_normal((2, 3))
    before = x.copy()
    np.testing.assert_allclose(model(x), 3 * before, rtol=1e-15)
    np.testing.assert_array_equal(x, before)


def test_gradcheck_add_parallel(rng: np.random.Generator) -> None:
    model = sc.parallel(Linear(3, 4), Linear(5, 4)) >> Add()
    assert str(model.out_type) == "[..., 4]"
    report = assert_gradcheck(model, (rng.standard_normal((2, 3)), rng.standard_normal((2, 5))))
    assert {"input", "input[1]"} <= set(report.errors)


def test_gradcheck_add_of_a_value_with_itself(rng: np.random.Generator) -> None:
    model = Linear(3, 3) >> sc.branch(Identity(), Identity()) >> Add()
    assert_gradcheck(model, rng.standard_normal((4, 3)))


# --- Select ------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1])
def test_select_picks_one_branch(index: int, rng: np.random.Generator) -> None:
    model = sc.branch(Linear(3, 2), Linear(3, 5)) >> Select(index)
    assert str(model.out_type) == ["[..., 2]", "[..., 5]"][index]
    model.to(np.float64)
    x = rng.standard_normal((4, 3))
    y, _, grads = run_chain(model, x, np.ones((4, [2, 5][index])))
    used, unused = ["linear", "linear_1"][index], ["linear_1", "linear"][index]
    chosen = model.spec(used).params
    np.testing.assert_allclose(y, x @ chosen["weight"].T + chosen["bias"], rtol=1e-12)
    assert not grads[f"{unused}.weight"].any()  # the unselected branch gets zero gradients
    report = assert_gradcheck(model, x)
    assert report.errors[f"{unused}.weight"] == 0.0


# --- TimeDistributed ---------------------------------------------------------------------


def test_time_distributed_linear_matches_torch(rng: np.random.Generator) -> None:
    model = TimeDistributed(Linear(3, 4)).as_chain().to(np.float64)
    assert (str(model.in_type), str(model.out_type)) == ("[T, B, 3]", "[T, B, 4]")
    assert set(model.named_parameters()) == {"time_distributed.weight", "time_distributed.bias"}
    x, dy = rng.standard_normal((5, 2, 3)), rng.standard_normal((5, 2, 4))
    y, dx, grads = run_chain(model, x, dy)
    ref = torch.nn.Linear(3, 4).double()
    load_torch(ref, model.named_parameters(), "time_distributed.")
    xt = torch_from(x, requires_grad=True)
    yt = ref(xt)
    yt.backward(torch_from(dy))
    assert_close(y, yt, "output")
    assert_close(dx, xt.grad, "input gradient")
    for name, p in ref.named_parameters():
        assert_close(grads[f"time_distributed.{name}"], p.grad, name)


def test_time_distributed_shares_the_wrapped_parameters() -> None:
    inner = Linear(3, 4)
    wrapped = TimeDistributed(inner)
    assert wrapped.params is inner.params
    wrapped.to(np.float64)
    assert inner.params["weight"].dtype == np.float64


@pytest.mark.parametrize("shape", [(0, 2, 3), (3, 0, 3), (4, 2, 3)], ids=["T0", "B0", "T4"])
def test_gradcheck_time_distributed(shape: tuple[int, ...], rng: np.random.Generator) -> None:
    model = TimeDistributed(Linear(3, 4)) >> Tanh()
    assert model(rng.standard_normal(shape).astype(np.float32)).shape == (*shape[:2], 4)
    assert_gradcheck(model, rng.standard_normal(shape))


# --- bad inputs --------------------------------------------------------------------------

BAD_INPUTS = [
    ErrorInput(
        "laststep_T0_at_call",
        lambda: LastStep()(np.zeros((0, 2, 3), np.float32)),
        sc.ShapeError,
        re.escape(
            "in forward of node 'last_step' (LastStep, input [0, 2, 3]): LastStep needs at "
            "least one time step, got T = 0 in shape [0, 2, 3]"
        ),
    ),
    ErrorInput(
        "laststep_T0_inside_chain",
        lambda: (Reverse() >> LastStep() >> Linear(3, 2))(np.zeros((0, 1, 3), np.float32)),
        sc.ShapeError,
        r"LastStep needs at least one time step, got T = 0 in shape \[0, 1, 3\]",
    ),
    ErrorInput(
        "laststep_rank_too_small",
        lambda: Reverse() >> LastStep() >> LastStep(axis=2),
        sc.ShapeError,
        re.escape(
            "cannot connect 'last_step' (out [B, F]) to 'last_step_1' (expects [T, B, F]): "
            "LastStep needs rank >= 3, got [B, F]"
        ),
    ),
    ErrorInput(
        "laststep_scalar",
        lambda: LastStep()(np.array(1.0)),
        sc.ShapeError,
        re.escape("LastStep needs rank >= 1, got []"),
    ),
    ErrorInput(
        "laststep_negative_axis",
        lambda: LastStep(axis=-1),
        sc.SpecError,
        r"^LastStep\.axis must be an int >= 0, got -1$",
    ),
    ErrorInput(
        "reverse_negative_axis",
        lambda: Reverse(axis=-1),
        sc.SpecError,
        r"^Reverse\.axis must be an int >= 0, got -1$",
    ),
    ErrorInput(
        "reverse_rank_too_small",
        lambda: Linear(3, 3).as_chain().retyped(sc.TensorType((3,))) >> Reverse(axis=1),
        sc.ShapeError,
        re.escape("Reverse needs rank >= 2, got [3]"),
    ),
    ErrorInput(
        "laststep_of_a_step",
        lambda: LastStep() >> LastStep(),
        sc.ShapeError,
        re.escape(
            "cannot connect 'last_step' (out [B, F]) to 'last_step_1' (expects [T, B, F]): "
            "LastStep needs a sequence with a time axis (T), got [B, F], which has none"
        ),
    ),
    ErrorInput(
        "select_out_of_range",
        lambda: sc.branch(Linear(3, 4), Linear(3, 4)) >> Select(2),
        sc.ShapeError,
        re.escape(
            "cannot connect 'linear', 'linear_1' (out ([..., 4], [..., 4])) to 'select' "
            "(expects any): Select(2) needs a tuple of > 2 items, got ([..., 4], [..., 4])"
        ),
    ),
    ErrorInput(
        "select_of_a_tensor",
        lambda: LastStep() >> Select(0),
        sc.ShapeError,
        re.escape("Select(0) needs a tuple of > 0 items, got [B, F]"),
    ),
    ErrorInput(
        "select_negative",
        lambda: Select(-1),
        sc.SpecError,
        r"^Select\.index must be an int >= 0, got -1$",
    ),
    ErrorInput(
        "select_bool",
        lambda: Select(True),
        TypeError,
        r"^Select\.index must be an int >= 0, got True \(bool\)$",
    ),
    ErrorInput(
        "concat_leading_rank_mismatch",
        lambda: sc.branch(Reverse(), Reverse() >> LastStep()) >> Concat(),
        sc.ShapeError,
        re.escape(
            "cannot connect 'reverse', 'last_step' (out ([T, B, F], [B, F])) to 'concat' "
            "(expects any): Concat needs tensors of one known rank"
        ),
    ),
    ErrorInput(
        "concat_open_and_known_rank",
        lambda: sc.parallel(Linear(3, 4), LastStep()) >> Concat(),
        sc.ShapeError,
        re.escape("Concat needs tensors of one known rank (or all [..., *dims] with a negative"),
    ),
    ErrorInput(
        "concat_open_rank_positive_axis",
        lambda: sc.branch(Linear(3, 4), Linear(3, 4)) >> Concat(axis=0),
        sc.ShapeError,
        re.escape("got ([..., 4], [..., 4])"),
    ),
    ErrorInput(
        "concat_leading_dims_at_call",
        lambda: Concat()((np.zeros((2, 3), np.float32), np.zeros((3, 3), np.float32))),
        sc.ShapeError,
        re.escape(
            "input to 'concat' (Concat, expects any): got ([2, 3], [3, 3]): dim 0: "
            "expected 2, got 3"
        ),
    ),
    ErrorInput(
        "concat_open_leading_dims_at_call",
        lambda: (sc.parallel(Linear(3, 4), Linear(5, 4)) >> Concat())(
            (np.zeros((2, 3), np.float32), np.zeros((7, 5), np.float32))
        ),
        sc.ShapeError,
        re.escape(
            "in forward of node 'concat' (Concat, input ([2, 4], [7, 4])): Concat: item 1 has "
            "shape [7, 4] but item 0 has [2, 4] (only axis -1 may differ)"
        ),
    ),
    ErrorInput(
        "concat_float_axis",
        lambda: Concat(axis=1.5),  # type: ignore[arg-type]
        TypeError,
        r"^Concat\.axis must be an int, got 1\.5$",
    ),
    ErrorInput(
        "concat_of_a_tensor",
        lambda: Linear(3, 4) >> Concat(),
        sc.ShapeError,
        re.escape("Concat takes a tuple of >= 1 tensors, got [..., 4]"),
    ),
    ErrorInput(
        "add_feature_mismatch",
        lambda: sc.branch(Linear(3, 4), Linear(3, 5)) >> Add(),
        sc.ShapeError,
        re.escape(
            "cannot connect 'linear', 'linear_1' (out ([..., 4], [..., 5])) to 'add' "
            "(expects any): feature size 5 != 4"
        ),
    ),
    ErrorInput(
        "add_time_feature_mismatch",
        lambda: sc.branch(Reverse(), TimeDistributed(Linear(3, 4))) >> Add(),
        sc.ShapeError,
        re.escape("feature size 4 != 3"),
    ),
    ErrorInput(
        "add_one_item",
        lambda: sc.branch(Linear(3, 4)) >> Add(),
        sc.ShapeError,
        re.escape("Add takes a tuple of >= 2 tensors, got ([..., 4])"),
    ),
    ErrorInput(
        "add_does_not_broadcast",
        lambda: (sc.parallel(Linear(3, 4), Linear(5, 4)) >> Add())(
            (np.zeros((1, 3), np.float32), np.zeros((6, 5), np.float32))
        ),
        sc.ShapeError,
        re.escape(
            "in forward of node 'add' (Add, input ([1, 4], [6, 4])): Add: item 1 has shape "
            "[6, 4] but item 0 has [1, 4] (it does not broadcast)"
        ),
    ),
    ErrorInput(
        "add_leading_dims_at_call",
        lambda: (sc.parallel(Identity(), Identity()) >> Add())(
            (np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32))
        ),
        sc.ShapeError,
        re.escape("to 'add' (expects any): feature size: expected 3, got 4"),
    ),
    ErrorInput(
        "time_distributed_of_an_int",
        lambda: TimeDistributed(3),  # type: ignore[arg-type]
        TypeError,
        r"^TimeDistributed wraps an NNModuleSpec, got int$",
    ),
    ErrorInput(
        "time_distributed_feature_mismatch",
        lambda: TimeDistributed(Linear(3, 4))(np.zeros((2, 1, 5), np.float32)),
        sc.ShapeError,
        re.escape("feature size: expected 3, got 5"),
    ),
    ErrorInput(
        "time_distributed_connect_mismatch",
        lambda: TimeDistributed(Linear(3, 4)) >> TimeDistributed(Linear(5, 2)),
        sc.ShapeError,
        re.escape(
            "cannot connect 'time_distributed' (out [T, B, 4]) to 'time_distributed_1' "
            "(expects [T, B, 5]): feature size 4 != 5"
        ),
    ),
]


@pytest.mark.parametrize("case", error_params(BAD_INPUTS))
def test_bad_inputs(case: ErrorInput) -> None:
    check_error_input(case)
