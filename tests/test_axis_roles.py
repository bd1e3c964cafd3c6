"""Axis roles: ``B`` is the batch axis, ``T``/``S`` time axes; layers find time by role, and a
graph whose roles do not fit never builds (issue 12: the three wrong-result cases, and a table of
axis misuse)."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

import specchain as sc
from specchain.exporters.pytorch import verify
from specchain.modules import (
    LSTM,
    Add,
    AttentionLSTM,
    Concat,
    LastStep,
    Linear,
    LSTMCell,
    Reverse,
    TimeDistributed,
)
from specchain.types import ShapeError, TensorType
from tests.helpers import assert_close64

# --- the three wrong-result cases of the issue --------------------------------------------------


def test_batch_first_last_step_takes_the_last_time_step(rng: np.random.Generator) -> None:
    lstm = LSTM(8, 16, batch_first=True)
    model = (lstm >> LastStep() >> Linear(16, 3)).to(np.float64)
    assert (str(model.in_type), str(model.out_type)) == ("[B, T, 8]", "[B, 3]")
    x = rng.standard_normal((4, 7, 8))
    head = model.spec("linear")
    expected = lstm(x)[:, -1] @ head.params["weight"].T + head.params["bias"]
    assert_close64(model(x), expected)
    assert verify(model, x).within(1e-7, 1e-9)  # the export takes the same axis


def test_a_step_never_feeds_a_layer_that_reads_sequences() -> None:
    message = (
        "cannot connect 'last_step' (out [B, 16]) to 'lstm_1' (expects [T, B, 16]): dim 0: "
        "expected the time axis T, got the batch axis B; [B, 16] has no time axis"
    )
    with pytest.raises(ShapeError, match="^" + re.escape(message)):
        LSTM(8, 16) >> LastStep() >> LSTM(16, 4)


def test_batch_first_bidirectional_recipe_keeps_batch_and_time_apart(
    rng: np.random.Generator,
) -> None:
    forward, backward = LSTM(8, 16, batch_first=True), LSTM(8, 16, batch_first=True)
    model = sc.branch(forward, Reverse() >> backward >> Reverse()) >> Concat()
    assert (str(model.in_type), str(model.out_type)) == ("[B, T, 8]", "[B, T, 32]")
    model.to(np.float64)
    x = rng.standard_normal((3, 5, 8))
    expected = np.concatenate([forward(x), backward(x[:, ::-1])[:, ::-1]], axis=-1)
    assert_close64(model(x), expected)


def test_time_distributed_maps_over_the_time_axis_of_a_batch_first_sequence(
    rng: np.random.Generator,
) -> None:
    inner = Linear(16, 3)
    model = (LSTM(8, 16, batch_first=True) >> TimeDistributed(inner)).to(np.float64)
    assert str(model.out_type) == "[B, T, 3]"
    x = rng.standard_normal((2, 4, 8))
    y, tape = model.forward(x)
    hidden = model.spec("lstm")(x)
    assert_close64(y, hidden @ inner.params["weight"].T + inner.params["bias"])
    _, grads = model.backward(tape, np.ones_like(y))
    assert_close64(grads["time_distributed.bias"], np.full(3, 8.0))


def test_unbatched_sequences_keep_their_time_axis(rng: np.random.Generator) -> None:
    model = (LSTM(3, 4) >> LastStep()).to(np.float64)
    x = rng.standard_normal((6, 3))
    assert_close64(model(x), model.spec("lstm")(x)[-1])


# --- axis misuse: each case is refused when the graph is built, with the fix ---------------------

BATCH_FIRST = TensorType(("B", "T", 8))

MISUSE: list[tuple[str, Callable[[], object], str]] = [
    (
        "batch_first_into_time_major",
        lambda: LSTM(8, 16, batch_first=True) >> LSTM(16, 4),
        "expected the time axis T, got the batch axis B; the input is batch-first [B, T, F]: "
        "set batch_first=True to match it",
    ),
    (
        "time_major_into_batch_first",
        lambda: LSTM(8, 16) >> LSTM(16, 4, batch_first=True),
        "expected the batch axis B, got the time axis T; the input is time-major [T, B, F]: "
        "set batch_first=False to match it",
    ),
    (
        "last_step_twice",
        lambda: LSTM(8, 16) >> LastStep() >> LastStep(),
        "LastStep needs a sequence with a time axis (T), got [B, 16], which has none",
    ),
    (
        "reverse_after_last_step",
        lambda: LSTM(8, 16) >> LastStep() >> Reverse(),
        "Reverse needs a sequence with a time axis (T), got [B, 16], which has none",
    ),
    (
        "time_distributed_after_last_step",
        lambda: LSTM(8, 16) >> LastStep() >> TimeDistributed(Linear(16, 2)),
        "TimeDistributed needs a sequence with a time axis (T), got [B, 16], which has none",
    ),
    (
        "explicit_axis_on_the_batch_axis",
        lambda: LSTM(8, 16, batch_first=True) >> LastStep(axis=0),
        "LastStep(axis=0) would act on the batch axis B of [B, T, 16], but the time axis is 1; "
        "use LastStep() without axis: it finds the time axis by its role",
    ),
    (
        "reverse_axis_on_the_batch_axis",
        lambda: LSTM(8, 16, batch_first=True) >> Reverse(axis=0) >> Linear(16, 2),
        "Reverse(axis=0) would act on the batch axis B of [B, T, 16], but the time axis is 1",
    ),
    (
        "a_cell_fed_a_sequence",
        lambda: LSTM(8, 16).as_chain().retyped(TensorType(("T", 8))) >> LSTMCell(16, 4),
        "dim 0: expected the batch axis B, got the time axis T; LSTMCell takes one step [B, F]",
    ),
    (
        "branch_parts_of_two_layouts",
        lambda: sc.branch(LSTM(8, 4), LSTM(8, 4, batch_first=True)),
        "the time axis T cannot be the batch axis B",
    ),
    (
        "add_of_two_layouts",
        lambda: sc.parallel(LSTM(8, 4), LSTM(8, 4, batch_first=True)) >> Add(),
        "dim 0: the batch axis B cannot be the time axis T",
    ),
    (
        "attention_fed_batch_first_sequences",
        lambda: (
            sc.parallel(LSTM(8, 8, batch_first=True), LSTM(8, 8, batch_first=True))
            >> AttentionLSTM(8, 4, 2)
        ),
        "source dim 0: expected the time axis S, got the batch axis B",
    ),
    (
        "batch_first_type_into_a_time_major_layer",
        lambda: Linear(8, 8).as_chain().retyped(BATCH_FIRST) >> LSTM(8, 4),
        "expected the time axis T, got the batch axis B",
    ),
]


@pytest.mark.parametrize(("build", "message"), [pytest.param(b, m, id=i) for i, b, m in MISUSE])
def test_axis_misuse_is_refused_at_build_time(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ShapeError, match=re.escape(message)):
        build()


def test_a_misused_axis_is_refused_before_any_data(rng: np.random.Generator) -> None:
    """The batch-first ``LastStep(axis=0)`` of old code: refused, not a silent wrong result."""
    with pytest.raises(ShapeError, match=r"would act on the batch axis B"):
        LSTM(8, 16, batch_first=True) >> LastStep(axis=0) >> Linear(16, 3)
