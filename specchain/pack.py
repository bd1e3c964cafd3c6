"""``Pack``: the one spec the graph machinery itself inserts (composition nests tuples with it)."""

from __future__ import annotations

from typing import Any

import attrs

from specchain.spec import Context, NNModuleSpec, Params
from specchain.types import DimEnv, Type


@attrs.define(eq=False)
class Pack(NNModuleSpec, family="sequence"):
    """Group several values into one tuple: ``(a, b, ...)`` -> ``(a, b, ...)``.

    Composition inserts it where a tuple of values feeds one port of a merge node.
    """

    def infer(self, in_type: Type, dims: DimEnv) -> Type:
        return in_type

    def forward(self, params: Params, x: tuple[Any, ...], ctx: Context) -> tuple[Any, None]:
        return x, None

    def backward(self, params: Params, saved: None, dy: Any) -> tuple[Any, Params]:
        return dy, {}
