"""Example inputs for any chain: random arrays of its input type with the symbols bound.

Symbols bind to ``sizes`` (default ``T=5, B=3, S=6``; any other symbol 4; a leading ``...``
becomes ``[T, B]``). Integer inputs draw indices below the vocabulary of the layer that reads them
(``Embedding.num_embeddings``, ``OneHot.num_classes``), else below 2.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specchain.chain import SpecChain
from specchain.graph import INPUT
from specchain.types import ELLIPSIS, AnyType, Dim, SpecError, TensorType, TupleType, Type

DEFAULT_SIZES = {"T": 5, "B": 3, "S": 6}


def example_input(
    chain: SpecChain,
    rng: np.random.Generator | int = 0,
    sizes: dict[str, int] | None = None,
    dtype: Any = None,
) -> Any:
    """A random input for ``chain`` (float dtype: the chain's, else float32)."""
    generator = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    bound = {**DEFAULT_SIZES, **(sizes or {})}
    float_dtype = np.dtype(dtype or chain.dtype or np.float32)
    return _make(chain.in_type, generator, bound, float_dtype, _vocabulary(chain))


def _make(t: Type, rng: np.random.Generator, sizes: dict[str, int], dtype: Any, vocab: int) -> Any:
    if isinstance(t, TupleType):
        return tuple(_make(item, rng, sizes, dtype, vocab) for item in t.items)
    if isinstance(t, AnyType):
        raise SpecError("this chain's input type is only known when data arrives; pass an input")
    shape = _shape(t, sizes)
    if t.dtype == "int":
        return rng.integers(0, vocab, size=shape)
    return rng.standard_normal(shape).astype(dtype)


def _shape(t: TensorType, sizes: dict[str, int]) -> tuple[int, ...]:
    out: list[int] = []
    for dim in t.dims:
        if dim == ELLIPSIS:
            out += [sizes["T"], sizes["B"]]
        else:
            out.append(_size(dim, sizes))
    return tuple(out)


def _size(dim: Dim, sizes: dict[str, int]) -> int:
    if isinstance(dim, int):
        return dim
    return sizes.get(dim, 4)


def _vocabulary(chain: SpecChain) -> int:
    for consumer in chain.graph.successors(INPUT):
        spec = chain.graph.nodes[consumer].get("spec")
        for field in ("num_embeddings", "num_classes"):
            if hasattr(spec, field):
                return int(getattr(spec, field))
    return 2
