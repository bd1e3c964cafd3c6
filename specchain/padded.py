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

from specchain.types import ShapeError
from specchain.validate import SpecTypeError


def _lengths(value: object) -> np.ndarray:
    array = np.asarray(value)
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
        return int(self.data.shape[self.time_axis])

    def check(self, what: str = "input") -> None:
        """Refuse lengths that do not fit the data: one per example, each in ``1..T``."""
        shape, batch_axis = self.data.shape, self.batch_axis
        if self.data.ndim <= max(self.time_axis, -1 if batch_axis is None else batch_axis):
            raise ShapeError(
                f"{what}: data of shape {list(shape)} has no time axis {self.time_axis}"
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
    """``value`` with every ``Padded`` replaced by its data."""
    if isinstance(value, Padded):
        return value.data
    if isinstance(value, tuple):
        return tuple(strip(v) for v in value)
    return value


def found_lengths(value: Any) -> list[np.ndarray]:
    """The lengths of every ``Padded`` in ``value``, depth first."""
    if isinstance(value, Padded):
        return [value.lengths]
    if isinstance(value, tuple):
        return [lengths for v in value for lengths in found_lengths(v)]
    return []
