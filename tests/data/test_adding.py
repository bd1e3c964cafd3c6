"""The adding problem: shapes, seeds, the paper's marking rules, and targets recomputed from the
inputs for both variants."""

from __future__ import annotations

import numpy as np
import pytest

import specchain as sc
from specchain.data import adding


def test_paper_shapes_and_lengths() -> None:
    data = adding.adding_problem(200, 30, rng=0)
    steps = int(data.lengths.max())
    assert data.inputs.shape == (steps, 200, 2) and data.inputs.dtype == np.float32
    assert data.targets.shape == (200, 1) and data.targets.dtype == np.float32
    assert data.lengths.dtype == np.int64
    assert data.lengths.min() >= 30 and data.lengths.max() <= 33  # T .. T + T // 10
    assert len(set(data.lengths.tolist())) == 4
    x, y, lengths = adding.adding_problem(3, 10, dtype=np.float64)
    assert x.dtype == y.dtype == np.float64 and lengths.shape == (3,)


def test_paper_marking_rules_and_targets() -> None:
    data = adding.adding_problem(300, 20, rng=1, dtype=np.float64)
    steps = data.inputs.shape[0]
    first_marked = 0
    for j in range(300):
        n = int(data.lengths[j])
        pad, real = data.inputs[: steps - n, j], data.inputs[steps - n :, j]
        assert (pad == 0).all(), "padding is zeros, at the front"
        values, markers = real[:, 0], real[:, 1]
        assert (np.abs(values) <= 1).all()
        marked = np.flatnonzero(markers == 1.0)
        assert len(marked) == 2
        assert marked.max() < 10 and marked.min() < 20 // 2 - 1  # X1 < 10, X2 < T / 2 - 1
        assert markers[-1] == -1.0
        assert markers[0] == (1.0 if 0 in marked else -1.0)
        assert set(np.flatnonzero(markers == 0.0)) == set(range(1, n - 1)) - set(marked)
        if 0 in marked:
            first_marked += 1
            assert values[0] == 0.0
        expected = 0.5 + values[marked].sum() / 4.0
        assert data.targets[j, 0] == pytest.approx(expected, rel=1e-15)
        assert 0.0 <= data.targets[j, 0] <= 1.0
    assert first_marked > 0, "the rare case (first pair marked) should occur in 300 sequences"


def test_paper_first_marker_in_first_ten_second_in_first_half() -> None:
    data = adding.adding_problem(300, 100, rng=2)
    steps = data.inputs.shape[0]
    firsts, seconds = [], []
    for j in range(300):
        markers = data.inputs[steps - int(data.lengths[j]) :, j, 1]
        marked = np.flatnonzero(markers == 1.0)
        assert marked.max() < 100 // 2 - 1
        firsts.append(marked.min())
        seconds.append(marked.max())
    assert min(firsts) == 0 and max(firsts) == 9
    assert max(seconds) > 30


def test_modern_variant() -> None:
    data = adding.adding_problem(100, 16, rng=3, variant="modern", dtype=np.float64)
    assert data.inputs.shape == (16, 100, 2) and data.targets.shape == (100, 1)
    assert (data.lengths == 16).all()
    values, markers = data.inputs[..., 0], data.inputs[..., 1]
    assert ((values >= 0) & (values <= 1)).all()
    assert set(np.unique(markers).tolist()) == {0.0, 1.0}
    assert (markers[:8].sum(axis=0) == 1).all() and (markers[8:].sum(axis=0) == 1).all()
    np.testing.assert_allclose(data.targets[:, 0], (values * markers).sum(axis=0), rtol=1e-15)


@pytest.mark.parametrize("variant", adding.VARIANTS)
def test_deterministic_by_seed(variant: str) -> None:
    a = adding.adding_problem(20, 12, rng=4, variant=variant)
    b = adding.adding_problem(20, 12, rng=4, variant=variant)
    c = adding.adding_problem(20, 12, rng=5, variant=variant)
    for left, right in zip(a, b, strict=True):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(a.targets, c.targets)


def test_errors() -> None:
    with pytest.raises(sc.SpecError, match=r"variant must be one of \('paper', 'modern'\)"):
        adding.adding_problem(4, 20, variant="le2015")
    with pytest.raises(sc.SpecError, match="length must be an int >= 10, got 9"):
        adding.adding_problem(4, 9)
    with pytest.raises(sc.SpecError, match="length must be an int >= 2, got 1"):
        adding.adding_problem(4, 1, variant="modern")
    with pytest.raises(TypeError, match="n must be an int"):
        adding.adding_problem(4.0, 20)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected float32 or float64"):
        adding.adding_problem(4, 20, dtype=np.int32)
