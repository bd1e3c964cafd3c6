"""Converters of tensor functions and methods: ``torch.cat``, ``torch.flip``, ``+``, the last
step (``x[-1]``, ``x[:, -1]``, ``x.select(0, -1)``) and activations.

Indexing a tuple (``out, (h, c) = self.lstm(x)``) is not here: the graph builder turns it into
an edge that reads one item of the RNN's output.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx

from specchain.importers.registry import Call, Converted, converter
from specchain.modules.activation import ReLU, Sigmoid, Tanh
from specchain.modules.sequence import Add, Concat, LastStep, Reverse
from specchain.spec import NNModuleSpec
from specchain.types import TensorType

STEP_FIX = (
    "specchain imports the last and the first item of axis 0 or 1 (x[-1], x[:, -1], x[0], "
    "h[-2] of h_n [2, B, H]); compute anything else in a module with a registered converter"
)


def _argument(call: Call, position: int, keyword: str, default: Any = None) -> Any:
    if len(call.args) > position:
        return call.args[position]
    return call.kwargs.get(keyword, default)


@converter(torch.cat)
def _cat(call: Call) -> Converted:
    tensors = _argument(call, 0, "tensors")
    dim = _argument(call, 1, "dim", 0)
    return Converted(Concat(axis=dim), tuple(tensors))


def _add(call: Call) -> Converted:
    if len(call.args) != 2 or call.kwargs:
        raise call.fail("only a + b of two tensors is supported", "drop alpha= and out=")
    a, b = call.args
    if not (isinstance(a, fx.Node) and isinstance(b, fx.Node)):
        raise call.fail(
            f"one operand is the constant {b if isinstance(a, fx.Node) else a!r}; the Add spec "
            "sums graph values",
            "add a learned bias with nn.Linear, or register a converter for your own module",
        )
    return Converted(Add(), (a, b))


converter(operator.add)(_add)
converter(torch.add)(_add)
converter("add")(_add)


def _flip(call: Call, dims: Any) -> NNModuleSpec:
    axes = [dims] if isinstance(dims, int) else list(dims)
    if len(axes) != 1 or axes[0] not in (0, 1):
        raise call.fail(
            f"flipping dims {axes}; specchain's Reverse flips the time axis 0 or 1",
            "flip one axis: torch.flip(x, [0]) (time-major) or torch.flip(x, [1]) (batch-first)",
        )
    return Reverse(axis=axes[0])


@converter(torch.flip)
def _flip_function(call: Call) -> Converted:
    return Converted(_flip(call, _argument(call, 1, "dims")), call.args[0])


@converter("flip")
def _flip_method(call: Call) -> Converted:
    dims: Any = call.args[1:] if len(call.args) > 1 else call.kwargs.get("dims", ())
    if len(dims) == 1 and not isinstance(dims[0], int):
        dims = dims[0]
    return Converted(_flip(call, dims), call.args[0])


def _step(call: Call, axis: int, index: Any, shown: str) -> Converted:
    """Item ``index`` of ``axis`` (0 or 1) of the node's first argument: the last one is
    ``LastStep``, the first one ``Reverse`` then ``LastStep`` (``h[-2]`` of a one-layer
    bidirectional ``h_n [2, B, H]`` is its first item)."""
    source = call.args[0]
    if axis not in (0, 1) or isinstance(index, bool) or not isinstance(index, int):
        raise call.fail(f"indexing with {shown}", STEP_FIX)
    t = call.value_type(source)
    dim = t.dims[axis] if isinstance(t, TensorType) and (t.rank or 0) > axis else None
    size = dim if isinstance(dim, int) else None  # None: symbolic, only -1 and 0 are known
    if index == -1 or (size is not None and index == size - 1):
        return Converted(LastStep(axis=axis), source)
    if index == 0 or (size is not None and index == -size):
        return Converted(Reverse(axis=axis), source, then=(LastStep(axis=axis),))
    raise call.fail(f"indexing {t} with {shown}: neither the first nor the last item", STEP_FIX)


@converter(operator.getitem)
def _index(call: Call) -> Converted:
    """``x[-1]`` -> the last step of axis 0; ``x[:, -1]`` (and ``x[:, -1, :]``) of axis 1;
    ``x[0]`` the first step."""
    index = call.args[1]
    items = index if isinstance(index, tuple) else (index,)
    full = slice(None)
    positions = [i for i, item in enumerate(items) if not _is(item, full)]
    shown = f"[{_shown(items)}]"
    if len(positions) != 1:
        raise call.fail(f"indexing with {shown}", STEP_FIX)
    return _step(call, positions[0], items[positions[0]], shown)


def _is(item: Any, full: slice) -> bool:
    return isinstance(item, slice) and item == full


def _select(call: Call) -> Converted:
    dim, index = _argument(call, 1, "dim"), _argument(call, 2, "index")
    return _step(call, dim, index, f"select(dim={dim}, index={index})")


converter(torch.select)(_select)
converter("select")(_select)


def _shown(items: tuple[Any, ...]) -> str:
    def one(item: Any) -> str:
        if isinstance(item, slice):
            parts = ["" if v is None else str(v) for v in (item.start, item.stop, item.step)]
            return ":".join(parts).rstrip(":") or ":"
        return "..." if item is Ellipsis else repr(item)

    return ", ".join(one(item) for item in items)


def _activation(spec_class: type[NNModuleSpec]) -> Any:
    def convert(call: Call) -> Converted:
        return Converted(spec_class(), call.args[0])

    return convert


for _spec, _targets in (
    (ReLU, (torch.relu, F.relu, "relu")),
    (Tanh, (torch.tanh, F.tanh, "tanh")),
    (Sigmoid, (torch.sigmoid, F.sigmoid, "sigmoid")),
):
    for _target in _targets:
        converter(_target)(_activation(_spec))
