"""The copy task: layout of inputs and targets, one-hot and id forms, masking, seeds, and the
memoryless baseline checked with the library's own cross-entropy."""

from __future__ import annotations

import math

import numpy as np
import pytest

import specchain as sc
from specchain.data import IGNORE_INDEX, copy


def test_layout() -> None:
    length, delay, k = 4, 6, 5
    data = copy.copy_task(30, length=length, delay=delay, num_symbols=k, rng=0, one_hot=False)
    steps = 2 * length + delay
    ids, targets = data.inputs, data.targets
    assert ids.shape == targets.shape == (steps, 30)
    assert ids.dtype == targets.dtype == np.int64
    assert (data.lengths == steps).all()
    symbols = ids[:length]
    assert ((symbols >= 1) & (symbols <= k)).all()
    assert set(np.unique(symbols).tolist()) == set(range(1, k + 1))
    assert (ids[length : length + delay - 1] == copy.BLANK).all()
    assert copy.delimiter(k) == k + 1
    assert (ids[length + delay - 1] == k + 1).all()
    assert (ids[length + delay :] == copy.BLANK).all()
    assert (targets[: length + delay] == copy.BLANK).all()
    np.testing.assert_array_equal(targets[length + delay :], symbols)  # recall, in order


def test_one_hot_matches_ids() -> None:
    ids = copy.copy_task(10, length=3, delay=2, num_symbols=4, rng=1, one_hot=False)
    hot = copy.copy_task(10, length=3, delay=2, num_symbols=4, rng=1, dtype=np.float64)
    assert hot.inputs.shape == (8, 10, 6) and hot.inputs.dtype == np.float64
    np.testing.assert_array_equal(hot.inputs.sum(axis=-1), 1.0)
    np.testing.assert_array_equal(hot.inputs.argmax(axis=-1), ids.inputs)
    np.testing.assert_array_equal(hot.targets, ids.targets)


def test_mask_blanks() -> None:
    data = copy.copy_task(5, length=3, delay=2, rng=2, mask_blanks=True)
    assert (data.targets[:5] == IGNORE_INDEX).all()
    assert ((data.targets[5:] >= 1) & (data.targets[5:] <= 8)).all()


def test_deterministic_by_seed() -> None:
    a, b = copy.copy_task(8, rng=3), copy.copy_task(8, rng=3)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert not np.array_equal(copy.copy_task(8, rng=4).targets, a.targets)


def test_memoryless_baseline() -> None:
    length, delay, k = 5, 7, 6
    data = copy.copy_task(16, length=length, delay=delay, num_symbols=k, rng=5, dtype=np.float64)
    steps = 2 * length + delay
    logits = np.full((steps, 16, k + 2), -1e4)
    logits[: length + delay, :, copy.BLANK] = 0.0  # sure of the blanks
    logits[length + delay :, :, 1 : k + 1] = 0.0  # then uniform over the symbols
    value = sc.losses.cross_entropy(logits, data.targets)
    expected = copy.memoryless_baseline(length, delay, k)
    assert expected == pytest.approx(length * math.log(k) / steps, rel=1e-15)
    assert value == pytest.approx(expected, rel=1e-12)


def test_errors() -> None:
    with pytest.raises(sc.SpecError, match=r"copy_task\.length must be a positive int, got 0"):
        copy.copy_task(4, length=0)
    with pytest.raises(sc.SpecError, match=r"copy_task\.delay must be a positive int, got 0"):
        copy.copy_task(4, delay=0)
    with pytest.raises(sc.SpecError, match=r"copy_task\.num_symbols must be a positive int, got 0"):
        copy.copy_task(4, num_symbols=0)
    with pytest.raises(sc.SpecError, match="n must be an int >= 0, got -2"):
        copy.copy_task(-2)
