"""``numerics.softmax``: stable at any magnitude, exact on small values, dtype-preserving."""

from __future__ import annotations

import numpy as np
import pytest

from specchain.numerics import log_softmax, softmax


def _naive(z: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_equals_the_naive_formula_on_small_values(axis: int) -> None:
    z = np.random.default_rng(0).uniform(-3, 3, size=(4, 5, 6))
    np.testing.assert_allclose(softmax(z, axis=axis), _naive(z, axis), rtol=1e-14, atol=0)


@pytest.mark.parametrize("scale", [1e2, 1e3, 1e4])
def test_softmax_is_stable_for_large_magnitudes(scale: float) -> None:
    z = np.random.default_rng(1).standard_normal((3, 7)) * scale
    z[0] = [scale, -scale, 0.0, scale, -scale, 1.0, 2.0]  # ties at the max, far-below terms
    with np.errstate(all="raise"):
        p = softmax(z)
        log_p = log_softmax(z)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(p[0], [0.5, 0, 0, 0.5, 0, 0, 0], rtol=1e-15, atol=1e-40)
    with np.errstate(under="ignore"):
        np.testing.assert_allclose(p, np.exp(log_p), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_keeps_the_float_dtype(dtype: type[np.floating]) -> None:
    z = (np.arange(12).reshape(3, 4) * 1e3).astype(dtype)
    with np.errstate(all="raise"):
        p = softmax(z, axis=0)
    assert p.dtype == dtype
    assert p.shape == z.shape
    np.testing.assert_allclose(p.sum(axis=0), 1.0, rtol=1e-6)


def test_softmax_propagates_nan() -> None:
    p = softmax(np.array([[0.0, np.nan], [0.0, 1.0]]))
    assert np.isnan(p[0]).all()
    assert np.isfinite(p[1]).all()
