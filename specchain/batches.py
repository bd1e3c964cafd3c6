"""Mini-batches for ``specchain.train``: which axis of the inputs and of the targets holds the
examples, and inputs given as an array, as ``(x, lengths)`` or as a ``Padded`` (a padded batch of
variable-length sequences), sliced together with their lengths.

Conventions (time-major, like ``nn.LSTM(batch_first=False)``): the batch axis of the inputs is
where the model's input type puts ``B`` (axis 1 for ``[T, B, F]`` or ``int[T, B]``, axis 0 with
``batch_first=True``); that of the targets is where the model's *output* type puts ``B`` (axis 0
for ``[N]`` labels of a many-to-one classifier, axis 1 for ``[T, N, ...]`` per-step targets).
When a type does not name ``B``, inputs of rank >= 3 are batched on axis 1 and others on axis 0;
targets of rank 1 on axis 0, others on axis 1.

Several inputs: a model whose input type is a tuple of k items (``(source: [S, B, F],
decoder_inputs: [T, B, F])``) takes a k-tuple (or list) of inputs, nested as its type nests
them; each item is an array, ``(x, lengths)`` or a ``Padded``, batched on its own item type's
axis, and a batch takes the same examples from every item. A single-input model keeps reading
a 2-tuple as ``(x, lengths)``.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs
import numpy as np

from specchain.chain import SpecChain
from specchain.padded import Padded, axes_for, is_lengths
from specchain.tree import leaves, tree_map
from specchain.types import BATCH, ShapeError, TensorType, TupleType, Type, role_axis
from specchain.validate import SpecTypeError

Inputs = np.ndarray | tuple[np.ndarray, np.ndarray] | Padded | tuple[Any, ...] | list[Any]


class HasData(Protocol):
    inputs: Inputs
    targets: np.ndarray


Data = tuple[Inputs, np.ndarray] | HasData


@attrs.frozen
class Part:
    """One model input's examples: ``data`` (an array), ``lengths`` (int64 ``[N]``, or None when
    the sequences all run to the end), the input's ``type`` and ``axis`` (where its N examples
    lie, by the module's convention; checked by ``Examples.check_axes``), and ``where`` it sits
    in the inputs for messages (``inputs``, ``inputs[1] (decoder_inputs)``)."""

    data: np.ndarray
    lengths: np.ndarray | None
    type: Type
    axis: int
    where: str

    @property
    def n(self) -> int:
        """The number of examples (``data.shape[axis]``)."""
        return int(self.data.shape[self.axis])

    def value(self) -> Any:
        """What the model takes for this input: ``data``, or ``(data, lengths)``."""
        return self.data if self.lengths is None else (self.data, self.lengths)

    def take(self, index: np.ndarray) -> Any:
        """This input for the examples at ``index``, lengths included."""
        data = np.take(self.data, index, axis=self.axis)
        return data if self.lengths is None else (data, self.lengths[index])


@attrs.frozen
class Examples:
    """A model's inputs as ``Part``s: ``tree`` is one ``Part`` for a single-input model, else a
    tuple of them nested as the model's input type nests its items."""

    tree: Any

    @property
    def parts(self) -> list[Part]:
        """The inputs' ``Part``s, depth first."""
        return leaves(self.tree)

    @property
    def n(self) -> int:
        """The number of examples (of the first input; ``check_counts`` makes all agree)."""
        return self.parts[0].n

    def shapes(self) -> str:
        """The inputs' shapes for messages: ``[T, N, F]``, or ``[[S, N, F], [T, N, F]]``."""
        shapes = [list(part.data.shape) for part in self.parts]
        return str(shapes[0]) if len(shapes) == 1 else str(shapes)

    def call_input(self) -> Any:
        """What the model is called with: each input's data, or ``(data, lengths)``."""
        return tree_map(Part.value, self.tree)

    def take(self, index: np.ndarray) -> Any:
        """The model's input for the examples at ``index`` (the same from every input)."""
        return tree_map(lambda part: part.take(index), self.tree)

    def check_axes(self, model: SpecChain) -> None:
        """Refuse an input without its batch axis, and (with several inputs, whose counts are
        compared next) one whose rank is not its type's, naming that input."""
        parts = self.parts
        for part in parts:
            if part.data.ndim <= part.axis:
                raise ShapeError(
                    f"{part.where} of shape {list(part.data.shape)} have no batch axis "
                    f"{part.axis}; the model takes {model.in_type} and gives {model.out_type} "
                    "(time-major: [T, N, ...])"
                )
            rank = part.type.rank if isinstance(part.type, TensorType) else None
            if len(parts) > 1 and rank is not None and part.data.ndim != rank:
                raise ShapeError(
                    f"{part.where} of shape {list(part.data.shape)} has {part.data.ndim} axes, "
                    f"but the model takes {part.type} there ({rank} axes, the examples on axis "
                    f"{part.axis}); pass that input with all its axes"
                )

    def check_counts(self, owner: str) -> None:
        """Refuse inputs holding different numbers of examples."""
        first, *others = self.parts
        for part in others:
            if part.n != first.n:
                raise ShapeError(
                    f"{owner}: {part.where} holds {part.n} examples on its batch axis "
                    f"{part.axis} (shape {list(part.data.shape)}), expected {first.n} as "
                    f"{first.where} holds; every input must hold the same N examples (a batch "
                    "takes the same examples from each)"
                )

    def check_lengths(self, owner: str) -> None:
        """Refuse lengths that do not fit: one per example (on the input's batch axis), each
        in ``1..T``."""
        for part in self.parts:
            if part.lengths is None:
                continue
            time_axis = axes_for(part.type, part.data.ndim)[0]
            if time_axis == part.axis:
                raise ShapeError(
                    f"{owner}: {part.where} of shape {list(part.data.shape)} hold the examples on "
                    f"axis {part.axis}, which is also the time axis of {part.type}; lengths need "
                    "a sequence input [T, N, ...] (or [N, T, ...] for a batch-first model)"
                )
            Padded(part.data, part.lengths, time_axis, part.axis).check(f"{owner} {part.where}")


def examples(owner: str, model: SpecChain, inputs: object) -> Examples:
    """``inputs`` as ``Examples`` for ``model``: an array, ``(x, lengths)`` or a ``Padded`` for
    a single input; a tuple (or list) of those, nested as the model's input type, for several."""
    return Examples(_tree(owner, model.in_type, inputs, "inputs", top=True))


def _tree(owner: str, t: Type, value: object, where: str, top: bool = False) -> Any:
    if not isinstance(t, TupleType):
        return _part(owner, t, value, where, top)
    k = len(t.items)
    if not isinstance(value, (tuple, list)) or len(value) != k:
        got = (
            f"a {type(value).__name__} of {len(value)}"
            if isinstance(value, (tuple, list))
            else f"a {type(value).__name__}"
        )
        taker = "the model" if where == "inputs" else "this input"
        raise SpecTypeError(
            f"{owner}.{where}: {taker} takes {k} inputs {t}; pass a tuple of {k} (one per "
            f"input, in that order: each an array, (x, lengths) or a Padded), got {got}"
        )
    names = t.names or (None,) * k
    return tuple(
        _tree(owner, item, v, f"{where}[{i}]" + ("" if name is None else f" ({name})"))
        for i, (item, v, name) in enumerate(zip(t.items, value, names, strict=True))
    )


def _part(owner: str, t: Type, value: object, where: str, top: bool) -> Part:
    data: object = value
    lengths: np.ndarray | None = None
    if isinstance(value, Padded):
        data, lengths = value.data, value.lengths
    elif isinstance(value, tuple) and len(value) == 2:
        data, second = value
        if not is_lengths(second):
            shown = np.asarray(second)
            several = top and shown.dtype.kind == "f" and shown.ndim > 1
            raise SpecTypeError(
                f"{owner}.{where} given as (x, lengths) need lengths as integers [N] (one per "
                f"example), got {shown.dtype}{list(shown.shape)}; pass "
                "np.asarray(lengths, dtype=np.int64)"
                + (
                    f" (a tuple of several input arrays is for a model with several inputs; "
                    f"this model takes one: {t})"
                    if several
                    else ""
                )
            )
        lengths = np.asarray(second, dtype=np.int64)
    if not isinstance(data, np.ndarray):
        raise SpecTypeError(
            f"{owner}.{where} must be a numpy array, (x, lengths) or a Padded, got "
            f"{type(data).__name__}"
        )
    axis = _batch_position(t)
    if axis is None:
        axis = 1 if data.ndim >= 3 else 0
    return Part(data, lengths, t, axis, where)


def unpack(owner: str, model: SpecChain, data: object) -> tuple[Examples, np.ndarray]:
    """``(inputs, targets)`` of a pair or a dataset (anything with ``.inputs`` and
    ``.targets``), the inputs read for ``model``, checked."""
    if hasattr(data, "inputs") and hasattr(data, "targets"):
        inputs, targets = getattr(data, "inputs"), getattr(data, "targets")  # noqa: B009
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        inputs, targets = data
    else:
        raise SpecTypeError(
            f"{owner}.data must be a pair (inputs, targets) of numpy arrays (or a "
            f"specchain.data dataset), got {type(data).__name__}"
        )
    found = examples(owner, model, inputs)
    if not isinstance(targets, np.ndarray):
        raise SpecTypeError(f"{owner}.targets must be a numpy array, got {type(targets).__name__}")
    return found, targets


def _batch_position(t: Type) -> int | None:
    return role_axis(t.dims, BATCH) if isinstance(t, TensorType) else None


def target_axis(model: SpecChain, targets: np.ndarray) -> int:
    """The targets' axis holding the examples (by the model's output type, else by rank)."""
    axis = _batch_position(model.out_type)
    if axis is None or axis >= targets.ndim:
        axis = 0 if targets.ndim == 1 else 1
    if targets.ndim <= axis:
        raise ShapeError(
            f"targets of shape {list(targets.shape)} have no batch axis {axis}; the model "
            f"takes {model.in_type} and gives {model.out_type} (time-major: [T, N, ...])"
        )
    return axis


def batch_axes(model: SpecChain, inputs: Inputs, targets: np.ndarray) -> tuple[Any, int]:
    """``(input axis, target axis)`` holding the examples, by the convention of this module;
    ``inputs`` may be an array, ``(x, lengths)`` or a ``Padded`` (the axes of ``x``). For a
    model with several inputs the input axis is a tuple, one axis per input (nested as they
    are)."""
    found = examples("batch_axes", model, inputs)
    found.check_axes(model)
    out_axis = target_axis(model, targets)
    return tree_map(lambda part: part.axis, found.tree), out_axis
