"""Numerically stable elementwise functions shared by the layers and losses, and the numerics
contract's tolerances against PyTorch.

None of the functions overflows or warns for finite inputs of any magnitude (checked under
``np.errstate(all="raise")``); NaN propagates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np

#: ``(rtol, atol)`` by dtype: specchain and PyTorch agree elementwise within
#: ``atol + rtol * |torch|`` on every output and gradient (docs/numerics.md).
CONTRACT_TOLERANCES: Final[Mapping[np.dtype[Any], tuple[float, float]]] = {
    np.dtype(np.float64): (1e-7, 1e-9),
    np.dtype(np.float32): (1e-4, 1e-5),
}


def contract_tolerances(dtype: Any) -> tuple[float, float]:
    """The numerics contract's ``(rtol, atol)`` for float32 or float64 arrays; any other dtype
    has no contract and is refused with the fix."""
    key = np.dtype(dtype)
    if key not in CONTRACT_TOLERANCES:
        raise ValueError(
            f"the numerics contract has tolerances for float32 and float64, not {key}; "
            "compare in one of those (model.to(np.float64)) or give rtol= and atol="
        )
    return CONTRACT_TOLERANCES[key]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) computed from exp(-|x|), which never overflows."""
    with np.errstate(under="ignore"):  # exp(-|x|) flushing to 0 is the exact answer here
        e = np.exp(-np.abs(x))
        r = 1.0 / (1.0 + e)
        return np.where(x >= 0, r, e * r)


def logsumexp(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(sum(exp(z))) along ``axis``, shifted by the maximum (finite for |z| up to 1e308)."""
    m = np.max(z, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(under="ignore"):  # terms far below the maximum flush to 0, harmlessly
        total = np.sum(np.exp(z - m), axis=axis)
    return np.squeeze(m, axis=axis) + np.log(total)


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``z - logsumexp(z)`` as PyTorch computes it: ``(z - max) - log(sum(exp(z - max)))``, so
    large logits keep their digits (``max + log(...)`` would round away the small part)."""
    m = np.max(z, axis=axis, keepdims=True)
    shifted = z - np.where(np.isfinite(m), m, 0.0)
    with np.errstate(under="ignore"):  # terms far below the maximum flush to 0, harmlessly
        total = np.sum(np.exp(shifted), axis=axis, keepdims=True)
    return shifted - np.log(total)


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """``exp(z) / sum(exp(z))`` along ``axis``, shifted by the maximum so that no term overflows
    (finite for |z| up to 1e308); the result has ``z``'s shape and float dtype."""
    m = np.max(z, axis=axis, keepdims=True)
    with np.errstate(under="ignore"):  # terms far below the maximum flush to 0, harmlessly
        e = np.exp(z - np.where(np.isfinite(m), m, 0.0))
        return e / np.sum(e, axis=axis, keepdims=True)
