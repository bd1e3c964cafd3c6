"""How a spec's input becomes the exported ``forward``'s arguments.

The spec takes one value (an array, or a tuple with one item per argument); the generated
``forward`` takes one argument per input, and after an ``Input(..., lengths=True)`` its lengths
(``forward(self, tokens, tokens_lengths, state)``). A spec input item for such an argument is an
``(x, lengths)`` pair or a ``Padded``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from specchain.exporters.pytorch.emitters import ExportError
from specchain.exporters.pytorch.naming import Names
from specchain.padded import Padded, axes_for
from specchain.types import TupleType, Type


def items(names: Names, inputs: Any) -> tuple[Any, ...]:
    """``inputs`` as one item per argument (a single input is one item)."""
    return tuple(inputs) if len(names.arguments) > 1 else (inputs,)


def split_lengths(names: Names, inputs: Any) -> tuple[Any, dict[int, Any]]:
    """``(data, lengths)``: ``inputs`` with each lengths argument's ``(x, lengths)`` pair (or
    ``Padded``) replaced by ``x``, and the lengths by argument index."""
    if not names.lengths:
        return inputs, {}
    data = list(items(names, inputs))
    lengths: dict[int, Any] = {}
    for i in names.lengths:
        item = data[i]
        if isinstance(item, Padded):
            data[i], lengths[i] = item.data, item.lengths
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            data[i], lengths[i] = item
        else:
            raise ExportError(
                f"input {names.arguments[i]!r} takes (x, lengths), got "
                f"{type(item).__name__}; pass the pair as the model takes it"
            )
    return (tuple(data) if len(names.arguments) > 1 else data[0]), lengths


def call_arguments(names: Names, data: Any, lengths: dict[int, Any]) -> tuple[Any, ...]:
    """The generated ``forward``'s positional arguments: each input, its lengths after it."""
    out: list[Any] = []
    for i, item in enumerate(items(names, data)):
        out.append(item)
        if i in names.lengths:
            out.append(lengths[i])
    return tuple(out)


def with_example_lengths(names: Names, in_type: Type, data: Any) -> Any:
    """``data`` (an example input without lengths) with ``(x, lengths)`` pairs for the lengths
    arguments: example ``b`` has ``max(T - b, 1)`` valid steps, so lengths differ."""
    if not names.lengths:
        return data
    types = in_type.items if isinstance(in_type, TupleType) else (in_type,)
    out = list(items(names, data))
    for i in names.lengths:
        x = out[i]
        time, batch = axes_for(types[i], x.ndim)
        steps, count = x.shape[time], 1 if batch is None else x.shape[batch]
        out[i] = (x, np.maximum(steps - np.arange(count), 1).astype(np.int64))
    return tuple(out) if len(names.arguments) > 1 else out[0]
