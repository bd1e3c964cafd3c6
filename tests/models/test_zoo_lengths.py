"""Padded-batch invariance: every zoo model gives, for each sequence of a padded batch with
lengths, exactly what it gives for that sequence alone: outputs, input gradients and (summed over
the examples) parameter gradients. Gradients never flow from padding."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from specchain.models import zoo
from specchain.padded import Padded
from tests.helpers import assert_close64

STEPS, BATCH = 6, 4


def _alone(x: Any, b: int) -> Any:
    """Example ``b`` of a ``(x, lengths)`` input (or a tuple of them), cut to its length."""
    if isinstance(x[0], tuple):
        return tuple(_alone(item, b) for item in x)
    data, lengths = x
    return data[: lengths[b], b : b + 1]


def _output_lengths(x: Any) -> np.ndarray:
    """The lengths a sequence output follows: the last input's (an attention decoder's)."""
    return x[-1][1] if isinstance(x[0], tuple) else x[1]


def _row(y: np.ndarray, b: int, length: int | None) -> np.ndarray:
    return y[b] if length is None else y[:length, b]


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_a_sequence_alone_equals_its_row_in_a_padded_batch(name: str) -> None:
    rng = np.random.default_rng(7)
    entry = zoo.ZOO[name]
    model = entry.build().to(np.float64)
    x = entry.example_input(rng, STEPS, BATCH, np.float64, lengths=True)
    y, tape = model.forward(x)
    sequence = isinstance(y, Padded)
    data = y.data if isinstance(y, Padded) else y
    out_lengths = _output_lengths(x)
    dy = rng.standard_normal(data.shape)
    if sequence:
        dy = dy * y.mask()  # what a masked loss sends back
    dx, grads = model.backward(tape, dy)
    total = {k: np.zeros_like(v) for k, v in grads.items()}
    for b in range(BATCH):
        length = int(out_lengths[b]) if sequence else None
        alone_x = _alone(x, b)
        alone_y, alone_tape = model.forward(alone_x)
        assert_close64(_row(data, b, length), alone_y[:, 0] if sequence else alone_y[0])
        alone_dy = dy[:length, b : b + 1] if sequence else dy[b : b + 1]
        alone_dx, alone_grads = model.backward(alone_tape, alone_dy)
        for k, g in alone_grads.items():
            total[k] += g
        _check_input_gradient(dx, alone_dx, x, b)
    for k in grads:
        assert_close64(grads[k], total[k], err_msg=k)


def _check_input_gradient(dx: Any, alone_dx: Any, x: Any, b: int) -> None:
    if isinstance(x[0], tuple):  # one (x, lengths) pair per input
        for d, alone, item in zip(dx, alone_dx, x, strict=True):
            _check_input_gradient(d, alone, item, b)
        return
    if dx is None:  # token ids have no gradient
        assert alone_dx is None
        return
    length = x[1][b]
    assert_close64(dx[:length, b : b + 1], alone_dx)
    assert np.all(dx[length:, b] == 0.0)  # nothing flows from padding
