"""``Padded`` batches through the engine: ``(x, lengths)`` at the input, lengths riding along
per-step layers, ``LastStep`` and ``Reverse`` within lengths, and the refusals."""

from __future__ import annotations

import re
from typing import Any

import attrs
import numpy as np
import pytest

import specchain as sc
from specchain.modules import Concat, Embedding, LastStep, Linear, Reverse, Select, Tanh
from specchain.padded import Padded
from specchain.spec import Context, NNModuleSpec, Params
from specchain.types import DimEnv, ShapeError, TensorType, Type
from tests.helpers import assert_close64

BATCH_FIRST = TensorType(("B", "T", 3))
LENGTHS = np.array([4, 1, 3])


def per_step(model: sc.SpecChain, x: np.ndarray, lengths: np.ndarray) -> list[Any]:
    """Each example alone, cut to its length (time-major ``x``)."""
    return [model(x[: lengths[b], b : b + 1]) for b in range(x.shape[1])]


def test_lengths_ride_along_per_step_layers(rng: np.random.Generator) -> None:
    model = (Linear(3, 4) >> Tanh() >> Linear(4, 2)).to(np.float64)
    x = rng.standard_normal((4, 3, 3))
    y = model((x, LENGTHS))
    assert isinstance(y, Padded)
    np.testing.assert_array_equal(y.lengths, LENGTHS)
    assert (y.time_axis, y.batch_axis) == (0, 1)
    assert_close64(y.data, model(x))


def test_last_step_takes_each_sequence_s_last_valid_step(rng: np.random.Generator) -> None:
    model = (Linear(3, 4) >> Tanh() >> LastStep()).to(np.float64)
    x = rng.standard_normal((4, 3, 3))
    y = model((x, LENGTHS))
    for b, alone in enumerate(per_step(model, x, LENGTHS)):
        assert_close64(y[b], alone[0])
    y, tape = model.forward((x, LENGTHS))
    dx, _ = model.backward(tape, np.ones_like(y))
    valid = np.arange(4)[:, None] < LENGTHS[None, :]
    assert np.all(dx[~valid] == 0.0)  # nothing flows from padding
    last = np.zeros((4, 3), bool)
    last[LENGTHS - 1, np.arange(3)] = True
    assert np.all(dx[last].any(axis=-1))


def test_reverse_reverses_within_lengths_and_leaves_padding(rng: np.random.Generator) -> None:
    model = Reverse(axis=0).as_chain().to(np.float64)
    x = rng.standard_normal((4, 3, 2))
    y = model((x, LENGTHS))
    for b, n in enumerate(LENGTHS):
        np.testing.assert_array_equal(y.data[:n, b], x[:n, b][::-1])
        np.testing.assert_array_equal(y.data[n:, b], x[n:, b])
    _, tape = model.forward((x, LENGTHS))
    dy = rng.standard_normal(x.shape)
    dx, _ = model.backward(tape, dy)
    np.testing.assert_array_equal(model((dy, LENGTHS)).data, dx)  # its own adjoint


def test_batch_first_lengths_follow_the_roles(rng: np.random.Generator) -> None:
    model = (Linear(3, 2) >> Reverse() >> LastStep()).retyped(BATCH_FIRST).to(np.float64)
    x = rng.standard_normal((3, 5, 3))
    lengths = np.array([5, 2, 1])
    y = model((x, lengths))
    head = model.spec("linear")
    for b in range(len(lengths)):  # reversed within its length, the last step is the first
        assert_close64(y[b], x[b, 0] @ head.params["weight"].T + head.params["bias"])
    padded = Padded(x, lengths)  # time-major axes given by hand are replaced by the roles
    assert_close64(model(padded), y)


def test_tuple_inputs_take_lengths_item_by_item(rng: np.random.Generator) -> None:
    model = sc.parallel(Linear(3, 2), Linear(3, 2)) >> Concat() >> LastStep()
    model.to(np.float64)
    a, b = rng.standard_normal((4, 3, 3)), rng.standard_normal((4, 3, 3))
    y = model(((a, LENGTHS), (b, LENGTHS)))
    assert_close64(y[1], model((a[:1, 1:2], b[:1, 1:2]))[0])
    with pytest.raises(ShapeError, match=r"Concat joins padded batches with different lengths"):
        model(((a, LENGTHS), (b, np.array([4, 4, 4]))))


def test_token_ids_take_lengths() -> None:
    model = Embedding(10, 4) >> LastStep()
    tokens = np.array([[1, 2], [3, 0], [5, 0]])
    y = model((tokens, np.array([3, 1])))
    np.testing.assert_array_equal(y[0], model.spec("embedding").params["weight"][5])
    np.testing.assert_array_equal(y[1], model.spec("embedding").params["weight"][2])


def test_select_passes_a_padded_item_through(rng: np.random.Generator) -> None:
    model = sc.branch(Linear(3, 2), Tanh()) >> Select(0)
    y = model((rng.standard_normal((4, 3, 3)).astype(np.float32), LENGTHS))
    assert isinstance(y, Padded)


@attrs.define(eq=False)
class Cumulative(NNModuleSpec):
    """A user's layer that sums over time (acts across steps, without declaring lengths)."""

    @property
    def in_type(self) -> Type:
        return TensorType(("T", "B", "F"))

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        return in_type

    def forward(self, params: Params, x: np.ndarray, ctx: Context) -> tuple[np.ndarray, None]:
        return np.cumsum(x, axis=0), None

    def backward(self, params: Params, saved: None, dy: np.ndarray) -> tuple[np.ndarray, Params]:
        return np.cumsum(dy[::-1], axis=0)[::-1], {}


def test_a_layer_acting_across_time_refuses_lengths(rng: np.random.Generator) -> None:
    model = Linear(3, 3) >> Cumulative()
    x = rng.standard_normal((4, 3, 3)).astype(np.float32)
    model(x)  # fine without lengths
    message = (
        "in forward of node 'cumulative' (Cumulative, input [4, 3, 3]): Cumulative acts across "
        "time steps and cannot take a padded batch with lengths; call the model without lengths, "
        "or give the layer takes_lengths = True"
    )
    with pytest.raises(ShapeError, match="^" + re.escape(message)):
        model((x, LENGTHS))


@pytest.mark.parametrize(
    ("lengths", "message"),
    [
        (np.array([4, 0, 3]), "lengths[1] = 0 is outside 1..4 (T = 4 in data shape [4, 3, 2])"),
        (np.array([4, 5, 3]), "lengths[1] = 5 is outside 1..4"),
        (np.array([4, 3]), "lengths has 2 entries for a batch of 3 (data shape [4, 3, 2])"),
        (np.array([[4, 3, 1]]), "lengths must be one integer per example (shape [B]), got shape"),
        (np.array([4.0, 3.0, 1.0]), None),  # floats are not lengths: the pair is not a Padded
    ],
)
def test_bad_lengths_are_refused(lengths: np.ndarray, message: str | None) -> None:
    model = Linear(2, 2).as_chain()
    x = np.zeros((4, 3, 2), np.float32)
    if message is None:
        with pytest.raises(ShapeError, match="Linear takes one float tensor"):
            model((x, lengths))
        return
    with pytest.raises(ShapeError, match=re.escape(message)):
        model((x, lengths) if lengths.ndim == 1 else Padded(x, lengths))


def test_lengths_as_a_list_of_ints(rng: np.random.Generator) -> None:
    model = Linear(3, 2) >> LastStep()
    x = rng.standard_normal((4, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(model((x, [4, 1, 3])), model((x, LENGTHS)))
