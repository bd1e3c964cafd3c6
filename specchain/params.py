"""Seeding, the two random streams, and PyTorch-default parameter initialisation.

Randomness comes from two library-wide ``numpy.random.Generator`` streams, both reset by
``sc.seed(n)``:

- the *initialisation* stream: every parameter of a spec built without ``rng=`` is drawn from it,
  in declaration order, in float64, then cast to the default dtype (float32), so a seed gives the
  same numbers whatever the dtype;
- the *run-time* stream: what a train-mode forward (dropout), a dataset or a sampler draws when
  the call gives no ``rng=``. It is a separate stream, so running a model never changes the
  weights of the next layer built.

An explicit ``rng=`` (an int seed or a Generator) always wins over either stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import attrs
import numpy as np

from specchain.types import SpecError

RngLike = int | np.random.Generator | None
Initializer = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]

_init_stream = np.random.default_rng(0)
_runtime_stream = np.random.default_rng(np.random.SeedSequence(0, spawn_key=(1,)))
DEFAULT_DTYPE = np.dtype(np.float32)
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def seed(n: int) -> None:
    """Reset both library-wide streams: every spec built and every run after this is
    deterministic."""
    global _init_stream, _runtime_stream
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"sc.seed expects an int, got {n!r}")
    _init_stream = np.random.default_rng(int(n))
    _runtime_stream = np.random.default_rng(np.random.SeedSequence(int(n), spawn_key=(1,)))


def init_generator(rng: RngLike = None) -> np.random.Generator:
    """For initial weights: ``None`` -> the initialisation stream; else as ``rng`` says."""
    return _init_stream if rng is None else _explicit(rng)


def runtime_generator(rng: RngLike = None) -> np.random.Generator:
    """For run-time draws (dropout, data, sampling): ``None`` -> the run-time stream; else as
    ``rng`` says."""
    return _runtime_stream if rng is None else _explicit(rng)


def _explicit(rng: RngLike) -> np.random.Generator:
    """A Generator as given; an int -> a fresh generator seeded with it."""
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


class ParamBudgetError(SpecError):
    """Specs built under ``without_init`` declare more parameter elements than its budget."""


@attrs.define
class _Budget:
    """What ``without_init`` allows: ``left`` more elements, of ``limit`` in all."""

    limit: int
    left: int

    def zeros(self, decls: dict[str, ParamDecl]) -> dict[str, np.ndarray]:
        wanted = sum(math.prod(decl.shape) for decl in decls.values())
        if wanted > self.left:
            raise ParamBudgetError(
                f"the layers declare more than {self.limit} parameter elements "
                f"(a layer with parameters {list(decls)[:4]} alone wants {wanted})"
            )
        self.left -= wanted
        return {name: np.zeros(decl.shape, DEFAULT_DTYPE) for name, decl in decls.items()}


_budget: _Budget | None = None


@contextmanager
def without_init(max_elements: int) -> Iterator[None]:
    """Inside: ``initialise`` draws nothing (the initialisation stream does not move) and gives
    zeros, after counting the elements every spec declares; more than ``max_elements`` in all
    raises ``ParamBudgetError`` before that spec allocates anything. For loading a model file,
    whose arrays replace the zeros; not thread-safe (one library-wide setting, like the streams).
    """
    global _budget
    outer, _budget = _budget, _Budget(max_elements, max_elements)
    try:
        yield
    finally:
        _budget = outer


def initialise(decls: dict[str, ParamDecl], rng: RngLike) -> dict[str, np.ndarray]:
    """Every declared parameter, drawn from ``rng`` (or the initialisation stream) in float64
    and cast to float32; zeros under ``without_init``."""
    if _budget is not None:
        return _budget.zeros(decls)
    generator = init_generator(rng)
    return {
        name: decl.init(generator, decl.shape).astype(DEFAULT_DTYPE) for name, decl in decls.items()
    }
