"""The recurrent helpers a new family (GRU, RNN) reuses: input/state, layouts, T = 0, names."""

from __future__ import annotations

import re

import numpy as np
import pytest

from specchain.modules.recurrent_base import (
    Layout,
    Signature,
    StateSlot,
    check_state_type,
    check_steps,
    initial_states,
    read_sequence,
    sequence_dims,
    split_input,
    split_type,
    suffix,
)
from specchain.types import ANY, DimEnv, ShapeError, TensorType, TupleType

LSTM_LIKE = Signature("LSTM", "an", ("h0", "c0"))
GRU_LIKE = Signature("GRU", "a", ("h0",))


def test_suffix_follows_pytorch() -> None:
    assert [suffix(0, 0), suffix(1, 0), suffix(0, 1), suffix(2, 1)] == [
        "_l0",
        "_l1",
        "_l0_reverse",
        "_l2_reverse",
    ]


def test_signature_usage() -> None:
    assert LSTM_LIKE.usage == "x or (x, (h0, c0))"
    assert GRU_LIKE.usage == "x or (x, h0)"


def test_split_input_tuple_and_single_states() -> None:
    x, h, c = np.zeros((3, 2, 4)), np.zeros((1, 2, 5)), np.ones((1, 2, 5))
    assert split_input(x, LSTM_LIKE) == (x, None)
    seq, state = split_input((x, (h, c)), LSTM_LIKE)
    assert seq is x and state is not None and state[0] is h and state[1] is c
    seq, state = split_input((x, h), GRU_LIKE)
    assert seq is x and state is not None and len(state) == 1 and state[0] is h


@pytest.mark.parametrize(
    ("signature", "value", "message"),
    [
        (LSTM_LIKE, "pair_of_arrays", "an LSTM takes x or (x, (h0, c0))"),
        (LSTM_LIKE, "three_items", "an LSTM takes x or (x, (h0, c0))"),
        (GRU_LIKE, "tuple_state", "a GRU takes x or (x, h0)"),
    ],
)
def test_split_input_refuses_other_forms(signature: Signature, value: str, message: str) -> None:
    x, h = np.zeros((3, 2, 4)), np.zeros((1, 2, 5))
    inputs = {"pair_of_arrays": (x, h), "three_items": (x, h, h), "tuple_state": (x, (h, h))}
    with pytest.raises(ShapeError, match=f"^{re.escape(message)}$"):
        split_input(inputs[value], signature)


@pytest.mark.parametrize(
    ("shape", "batch_first", "unbatched"),
    [((5, 3, 4), False, False), ((3, 5, 4), True, False), ((5, 4), False, True)],
)
def test_layout_round_trip(shape: tuple[int, ...], batch_first: bool, unbatched: bool) -> None:
    seq = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    x_tbf, state, layout = read_sequence(seq, LSTM_LIKE, batch_first)
    assert layout == Layout(batch_first, unbatched)
    assert state is None
    assert x_tbf.shape == ((5, 1, 4) if unbatched else (5, 3, 4))
    assert np.shares_memory(x_tbf, seq)  # views, no copies
    first_step = seq[0] if unbatched else (seq[:, 0] if batch_first else seq[0])
    np.testing.assert_array_equal(x_tbf[0].reshape(first_step.shape), first_step)
    np.testing.assert_array_equal(layout.from_time_major(x_tbf), seq)


def test_layout_states() -> None:
    h = np.arange(6.0).reshape(2, 3)  # unbatched [L*D, S]
    layout = Layout(batch_first=True, unbatched=True)
    assert layout.state_in(h).shape == (2, 1, 3)
    np.testing.assert_array_equal(layout.state_out(layout.state_in(h)), h)
    batched = Layout(batch_first=True, unbatched=False)
    h3 = np.zeros((2, 4, 3))
    assert batched.state_in(h3) is h3 and batched.state_out(h3) is h3  # batch_first: states stay


def test_zero_time_steps_are_refused() -> None:
    with pytest.raises(ShapeError, match=r"^GRU needs at least one time step, got T = 0$"):
        read_sequence(np.zeros((0, 2, 3)), GRU_LIKE, batch_first=False)
    with pytest.raises(ShapeError, match="LSTM needs at least one time step"):
        read_sequence(np.zeros((2, 0, 3)), LSTM_LIKE, batch_first=True)
    check_steps("T", "LSTM")  # a symbol may still be anything


SLOTS = (StateSlot("h0", 2, "proj_size"), StateSlot("c0", 3, "hidden_size"))


def test_initial_states_zeros_and_given() -> None:
    layout = Layout(batch_first=False, unbatched=False)
    h0, c0 = initial_states(None, SLOTS, 4, 5, np.dtype(np.float32), layout)
    assert h0.shape == (4, 5, 2) and c0.shape == (4, 5, 3)
    assert h0.dtype == np.float32 and not h0.any()
    given = (np.ones((4, 2), np.float32), np.ones((4, 3), np.float32))
    h0, c0 = initial_states(given, SLOTS, 4, 1, np.dtype(np.float32), Layout(False, True))
    assert h0.shape == (4, 1, 2) and c0.shape == (4, 1, 3)


def test_initial_states_name_the_wrong_shape_and_dtype() -> None:
    layout = Layout(batch_first=False, unbatched=False)
    bad = (np.zeros((4, 5, 2)), np.zeros((4, 5, 9)))
    message = (
        "c0 must have shape [4, 5, 3] (num_layers * num_directions, batch, hidden_size), "
        "got [4, 5, 9]"
    )
    with pytest.raises(ShapeError, match=f"^{re.escape(message)}$"):
        initial_states(bad, SLOTS, 4, 5, np.dtype(np.float64), layout)
    with pytest.raises(
        ShapeError, match=re.escape("h0 must have shape [4, 2] (num_layers * num_directions, ")
    ):
        initial_states(
            (np.zeros((4, 1, 2)),), SLOTS[:1], 4, 1, np.dtype(np.float64), Layout(False, True)
        )
    with pytest.raises(TypeError, match=r"^h0 dtype float32 != input dtype float64$"):
        initial_states(
            (np.zeros((4, 5, 2), np.float32),), SLOTS[:1], 4, 5, np.dtype(np.float64), layout
        )


def test_split_type() -> None:
    seq = TensorType(("T", "B", 4))
    state = TensorType((1, "B", 5))
    assert split_type(ANY, seq, LSTM_LIKE) == (seq, None)
    assert split_type(seq, seq, GRU_LIKE) == (seq, None)
    assert split_type(TupleType((seq, TupleType((state, state)))), seq, LSTM_LIKE) == (
        seq,
        (state, state),
    )
    assert split_type(TupleType((ANY, state)), seq, GRU_LIKE) == (seq, (state,))
    assert split_type(TupleType((seq, ANY)), seq, LSTM_LIKE) == (seq, (ANY, ANY))
    with pytest.raises(ShapeError, match=re.escape("takes x or (x, h0), got")):
        split_type(TupleType((seq, TupleType((state, state)))), seq, GRU_LIKE)
    with pytest.raises(ShapeError, match=re.escape("takes x or (x, (h0, c0)), got")):
        split_type(TupleType((seq, state)), seq, LSTM_LIKE)
    with pytest.raises(ShapeError, match="takes a float sequence, got int"):
        split_type(TensorType(("T", "B"), dtype="int"), seq, GRU_LIKE)


def test_sequence_dims() -> None:
    assert sequence_dims(TensorType(("T", "B", 4)), batch_first=False) == ("T", "B")
    assert sequence_dims(TensorType(("B", "T", 4)), batch_first=True) == ("T", "B")
    assert sequence_dims(TensorType((7, 4)), batch_first=True) == (7, None)


def test_check_state_type() -> None:
    dims = DimEnv()
    check_state_type(TensorType((2, "B", 4)), (2, "B", 4), "h0", dims)
    check_state_type(ANY, (2, "B", 4), "h0", dims)
    with pytest.raises(ShapeError, match=re.escape("h0 must be [2, 3, 4], got [1, 3, 4]: dim 0")):
        check_state_type(TensorType((1, 3, 4)), (2, 3, 4), "h0", dims)
    with pytest.raises(ShapeError, match=re.escape("c0 must be [2, 4], got")):
        check_state_type(TensorType((2, 3, 4)), (2, 4), "c0", dims)
