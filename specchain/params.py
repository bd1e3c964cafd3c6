"""Seeding and PyTorch-default parameter initialisation.

Every parameter is drawn from one library-wide ``numpy.random.Generator`` (``sc.seed(n)`` resets
it) or from the ``rng=`` a spec was given, in declaration order, in float64, then cast to the
default dtype (float32), so a seed gives the same numbers whatever the dtype.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import numpy as np

RngLike = int | np.random.Generator | None
Initializer = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]

_generator = np.random.default_rng(0)
DEFAULT_DTYPE = np.dtype(np.float32)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def seed(n: int) -> None:
    """Reset the library-wide generator: every spec built after this is deterministic."""
    global _generator
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"sc.seed expects an int, got {n!r}")
    _generator = np.random.default_rng(int(n))


def as_generator(rng: RngLike) -> np.random.Generator:
    """``None`` -> the library-wide generator; an int -> a fresh seeded generator."""
    if rng is None:
        return _generator
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)):
        raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {rng!r}")
    return np.random.default_rng(int(rng))


def check_float_dtype(dtype: object) -> np.dtype[np.floating]:
    """Normalise ``np.float32`` / ``"float64"`` / ... and refuse anything else."""
    try:
        resolved = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError as err:
        raise TypeError(f"expected float32 or float64, got {dtype!r}") from err
    if resolved not in FLOAT_DTYPES:
        raise TypeError(
            f"expected float32 or float64, got {resolved}; use np.float32 or np.float64"
        )
    return resolved


def uniform(bound: float) -> Initializer:
    """U(-bound, bound), PyTorch's default for Linear, LSTM and LSTMCell."""

    def init(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.uniform(-bound, bound, size=shape)

    return init


def normal(std: float = 1.0) -> Initializer:
    """N(0, std^2), PyTorch's default for Embedding."""

    def init(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.normal(0.0, std, size=shape)

    return init


@attrs.frozen
class ParamDecl:
    """A declared parameter: its PyTorch shape and its default initialiser."""

    shape: tuple[int, ...]
    init: Initializer


def initialise(decls: dict[str, ParamDecl], rng: RngLike) -> dict[str, np.ndarray]:
    generator = as_generator(rng)
    return {
        name: decl.init(generator, decl.shape).astype(DEFAULT_DTYPE) for name, decl in decls.items()
    }
