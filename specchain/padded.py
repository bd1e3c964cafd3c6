"""``Padded``: a padded batch of sequences with each example's length.

A user hands a chain ``(x, lengths)`` (or ``Padded(x, lengths)``) where it takes a sequence, as
they hand it to ``torch.nn.utils.rnn.pack_padded_sequence``: ``x`` is ``[T, B, F]`` (``[B, T, F]``
for a batch-first layer), ``lengths`` holds B integers in ``1..T``. Steps at or past an example's
length are padding: recurrent layers never read them and give zeros there, ``LastStep`` takes each
example's last valid step, ``Reverse`` reverses within each length, and losses skip them.

Layers that act on each step alone (``Linear``, activations, ``Embedding``, ...) see the data and
the lengths ride along (``specchain.engine``); layers that act across steps take the ``Padded``
value itself (``takes_lengths = True``) or refuse it when the graph is called.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from specchain.types import (
    BATCH,
    TIME,
    ShapeError,
    TensorType,
    TupleType,
    Type,
    has_roles,
    role_axis,
    role_of,
)
from specchain.validate import SpecTypeError


def _lengths(value: object) -> np.ndarray:
    array = np.asarray(value)
    if array.size == 0 and array.dtype.kind == "f":  # [] is no lengths, not float ones
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise SpecTypeError(
            f"lengths must be integers, got dtype {array.dtype}; pass them as "
            "np.asarray(lengths, dtype=np.int64)"
        )
    if array.ndim != 1:
        raise ShapeError(
            f"lengths must be one integer per example (shape [B]), got shape {list(array.shape)}"
        )
    return array.astype(np.int64)


@attrs.frozen(eq=False)
class Padded:
    """``data`` (a padded batch) and ``lengths`` (int64 ``[B]``), with where the data's time and
    batch axes are: ``[T, B, ...]`` by default, ``time_axis=1, batch_axis=0`` for ``[B, T, ...]``,
    ``batch_axis=None`` for one unbatched ``[T, ...]`` sequence. A graph sets the axes from its
    types (their roles) when the value comes in, so users only give ``(x, lengths)``."""

    data: np.ndarray
    lengths: np.ndarray = attrs.field(converter=_lengths)
    time_axis: int = 0
    batch_axis: int | None = 1

    def __repr__(self) -> str:
        shape = list(getattr(self.data, "shape", ()))
        return f"Padded(data {shape}, lengths={self.lengths.tolist()}, time_axis={self.time_axis})"

    @property
    def steps(self) -> int:
        """T: the padded length, ``data.shape[time_axis]``."""
        return int(self.data.shape[self.time_axis])

    def check(self, what: str = "input") -> None:
        """Refuse lengths that do not fit the data: one per example, each in ``1..T``."""
        shape, batch_axis = self.data.shape, self.batch_axis
        if self.data.ndim <= self.time_axis:
            raise ShapeError(
                f"{what}: data of shape {list(shape)} has no time axis {self.time_axis}"
            )
        if batch_axis is not None and self.data.ndim <= batch_axis:
            raise ShapeError(
                f"{what}: data of shape {list(shape)} has no batch axis {batch_axis}; for one "
                "unbatched sequence, give batch_axis=None and one length"
            )
        steps = shape[self.time_axis]
        batch = 1 if batch_axis is None else shape[batch_axis]
        if batch_axis is None and len(self.lengths) != 1:
            raise ShapeError(
                f"{what}: an unbatched sequence takes one length, got {len(self.lengths)}"
            )
        if len(self.lengths) != batch:
            raise ShapeError(
                f"{what}: lengths has {len(self.lengths)} entries for a batch of {batch} "
                f"(data shape {list(shape)}); give one length per example"
            )
        bad = (self.lengths < 1) | (self.lengths > steps)
        if bad.any():
            i = int(np.argmax(bad))
            raise ShapeError(
                f"{what}: lengths[{i}] = {int(self.lengths[i])} is outside 1..{steps} (T = "
                f"{steps} in data shape {list(shape)}); every example needs 1..T valid steps, "
                "as pack_padded_sequence requires"
            )

    def mask(self) -> np.ndarray:
        """A bool array of ``data``'s shape, True on real steps and False on padding."""
        shape = [1] * self.data.ndim
        steps = np.arange(self.data.shape[self.time_axis])
        shape[self.time_axis] = len(steps)
        lengths = lengths_along(self.lengths, self.data.ndim, self.batch_axis)
        return np.broadcast_to(steps.reshape(shape) < lengths, self.data.shape)

    def reversal_order(self) -> np.ndarray:
        """For each position of ``data``, the time index it takes its value from when every
        sequence is reversed within its length (padding stays in place): an involution, of
        ``data``'s shape, for ``np.take_along_axis`` along ``time_axis``."""
        shape = [1] * self.data.ndim
        shape[self.time_axis] = self.steps
        t = np.arange(self.steps).reshape(shape)
        lengths = lengths_along(self.lengths, self.data.ndim, self.batch_axis)
        return np.broadcast_to(np.where(t < lengths, lengths - 1 - t, t), self.data.shape)

    def last_index(self) -> np.ndarray:
        """Each sequence's last valid time index, shaped like ``data`` with a time axis of 1
        (``[1, B, F]`` for ``[T, B, F]`` data), for ``np.take_along_axis``."""
        shape = list(self.data.shape)
        shape[self.time_axis] = 1
        return np.broadcast_to(
            lengths_along(self.lengths - 1, self.data.ndim, self.batch_axis), shape
        )

    def with_data(self, data: np.ndarray) -> Padded:
        """The same lengths and axes around other data (a per-step layer's output)."""
        return attrs.evolve(self, data=data)


def lengths_along(lengths: np.ndarray, ndim: int, batch_axis: int | None) -> np.ndarray:
    """``lengths`` shaped to broadcast against an ``ndim`` array along ``batch_axis``."""
    if batch_axis is None:
        return lengths.reshape((1,) * ndim) if ndim else lengths[0]
    shape = [1] * ndim
    shape[batch_axis] = len(lengths)
    return lengths.reshape(shape)


def is_lengths(value: Any) -> bool:
    """True for what ``(x, lengths)`` holds second: a 1-D integer array (or list of ints)."""
    if isinstance(value, np.ndarray):
        return value.ndim == 1 and value.dtype.kind in "iu"
    return isinstance(value, list) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    )


def strip(value: Any) -> Any:
    """``value`` (an array, a ``Padded`` or a nested tuple) with every ``Padded`` replaced by
    its data: the same structure, plain arrays."""
    if isinstance(value, Padded):
        return value.data
    if isinstance(value, tuple):
        return tuple(strip(v) for v in value)
    return value


def found(value: Any) -> list[Padded]:
    """Every ``Padded`` in ``value`` (an array, a ``Padded`` or a nested tuple), depth first."""
    if isinstance(value, Padded):
        return [value]
    if isinstance(value, tuple):
        return [p for v in value for p in found(v)]
    return []


# --- where lengths come in and ride along (used by ``specchain.engine``) --------------------------


def axes_for(t: Type, ndim: int) -> tuple[int, int | None]:
    """``(time axis, batch axis)`` of an ``ndim`` array of type ``t``, by the roles of its dims:
    ``[B, T, F]`` gives ``(1, 0)``; an array one rank short of a type with a batch axis is that
    type unbatched; a type without roles is time-major (``[T, B, ...]``, unbatched ``[T, F]``)."""
    dims = t.dims if isinstance(t, TensorType) and not t.variadic else ()
    if ndim == len(dims) - 1 and role_axis(dims, BATCH) is not None:  # unbatched
        dims = tuple(d for d in dims if role_of(d) != BATCH)
    if len(dims) == ndim and has_roles(dims):
        time = role_axis(dims, TIME)
        return (0 if time is None else time), role_axis(dims, BATCH)
    return 0, (1 if ndim >= 3 else None)


def attach(value: Any, t: Type) -> Any:
    """A call's input with every ``(x, lengths)`` pair (or ``Padded``) where ``t`` takes one
    tensor turned into a checked ``Padded`` whose axes follow ``t``'s roles."""
    if isinstance(t, TensorType):
        if isinstance(value, Padded):
            data, lengths = value.data, value.lengths
        elif isinstance(value, (tuple, list)) and len(value) == 2 and is_lengths(value[1]):
            data, lengths = value
        else:
            return value
        if not isinstance(data, np.ndarray):
            return value  # the engine names what is not an array
        padded = Padded(data, lengths, *axes_for(t, data.ndim))
        padded.check()
        return padded
    if isinstance(t, TupleType) and isinstance(value, tuple) and len(value) == len(t.items):
        return tuple(attach(v, item) for v, item in zip(value, t.items, strict=True))
    return value


def rewrap(value: Any, t: Type, source: Padded) -> Any:
    """A per-step layer's output with ``source``'s lengths put back on every tensor that still
    has a time axis (by its type's roles; by rank when the type states none)."""
    if isinstance(value, tuple):
        items = t.items if isinstance(t, TupleType) else (t,) * len(value)
        return tuple(rewrap(v, item, source) for v, item in zip(value, items, strict=True))
    if not isinstance(value, np.ndarray):
        return value
    dims = t.dims if isinstance(t, TensorType) and not t.variadic else ()
    if has_roles(dims):
        if role_axis(dims, TIME) is None:
            return value
        return Padded(value, source.lengths, *axes_for(t, value.ndim))
    if value.ndim == source.data.ndim:
        return attrs.evolve(source, data=value)
    return value
