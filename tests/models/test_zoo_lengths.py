"""Padded-batch invariance: every zoo model gives, for each sequence of a padded batch with
lengths, exactly what it gives for that sequence alone: outputs, the loss, input gradients and
(summed over the examples) parameter gradients. The loss, not the test, leaves the padding out:
its gradient there is zero, and no gradient flows from padding into the inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from specchain.losses import MSELoss
from specchain.models import zoo
from specchain.padded import Padded, strip
from tests.helpers import assert_close64

STEPS, BATCH = 6, 4
SUMMED = MSELoss(reduction="sum")  # per-example losses add up to the batch's


def _alone(x: Any, b: int, declared: bool) -> Any:
    """Example ``b`` of a ``(x, lengths)`` input (or a tuple of them), cut to its length; as a
    pair with its one length when the model declares lengths."""
    if isinstance(x[0], tuple):
        return tuple(_alone(item, b, declared) for item in x)
    data, lengths = x
    cut = data[: lengths[b], b : b + 1]
    return (cut, lengths[b : b + 1]) if declared else cut


def _output_lengths(x: Any) -> np.ndarray:
    """The lengths a sequence output follows: the last input's (an attention decoder's)."""
    return x[-1][1] if isinstance(x[0], tuple) else x[1]


@pytest.mark.parametrize("declared", [False, True], ids=["called_with_lengths", "declared"])
@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_a_sequence_alone_equals_its_row_in_a_padded_batch(name: str, declared: bool) -> None:
    rng = np.random.default_rng(7)
    entry = zoo.ZOO[name]
    model = entry.build(lengths=declared).to(np.float64)
    x = entry.example_input(rng, STEPS, BATCH, np.float64, lengths=True)
    y, tape = model.forward(x)
    sequence, data = isinstance(y, Padded), strip(y)
    target = rng.standard_normal(data.shape)
    loss, dy = SUMMED.value_and_grad(y, target)
    if sequence:
        assert np.all(dy[~y.mask()] == 0.0)  # the loss leaves the padding out
    dx, grads = model.backward(tape, dy)
    total_loss, total = 0.0, {k: np.zeros_like(v) for k, v in grads.items()}
    for b in range(BATCH):
        n = int(_output_lengths(x)[b])
        alone_y, alone_tape = model.forward(_alone(x, b, declared))
        alone_target = target[:n, b : b + 1] if sequence else target[b : b + 1]
        alone_loss, alone_dy = SUMMED.value_and_grad(alone_y, alone_target)
        total_loss += alone_loss
        row = data[:n, b] if sequence else data[b]
        assert_close64(row, strip(alone_y)[:, 0] if sequence else alone_y[0])
        alone_dx, alone_grads = model.backward(alone_tape, alone_dy)
        for k, g in alone_grads.items():
            total[k] += g
        _check_input_gradient(dx, alone_dx, x, b)
    np.testing.assert_allclose(loss, total_loss, rtol=1e-12)
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
