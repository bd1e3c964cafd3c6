"""Running a recurrent kernel over sequences of different lengths, the way ``pack_padded_sequence``
makes ``torch.nn.LSTM`` run them: examples sorted longest first, and at step ``t`` only the first
``n_t`` (those still running) compute, so the batch shrinks as sequences end.

Every family (LSTM, GRU, RNN) reuses this. Arrays are time-major ``[T, B, ...]``; ``lengths``
holds B integers in ``1..T``, in any order. ``Runs`` sorts and unsorts, splits time into
segments of constant active batch, zeroes padding and picks each example's last step;
``reverse_within`` reverses each sequence within its own length (the input of a reverse
direction).
"""

from __future__ import annotations

import attrs
import numpy as np

from specchain.types import ShapeError


@attrs.frozen
class Runs:
    """Which rows of a ``[T, B, ...]`` batch run at which step, once the batch is sorted.

    ``segments`` lists ``(t0, t1, n)``: during steps ``t0 .. t1 - 1`` exactly the first ``n``
    sorted examples are running (``n > 0`` with lengths); later steps, and rows ``n:`` of a
    segment, are padding. ``order`` sorts the batch longest first (None: it already is, or no
    lengths were given) and ``lengths`` are the sorted lengths (None without lengths: one
    segment covers the whole ``[T, B]`` batch and every method below is the identity).
    """

    steps: int
    lengths: np.ndarray | None
    order: np.ndarray | None
    segments: tuple[tuple[int, int, int], ...]

    @classmethod
    def of(cls, lengths: np.ndarray | None, steps: int, batch: int) -> Runs:
        """The runs of a ``[steps, batch]`` batch; ``lengths`` int ``[batch]`` in ``1..steps``
        (any order) or None for a full batch."""
        if lengths is None:
            return cls(steps, None, None, ((0, steps, batch),))
        if lengths.shape != (batch,):
            raise ShapeError(
                f"lengths must have shape [{batch}] (one per example), got {list(lengths.shape)}"
            )
        if batch and (lengths.min() < 1 or lengths.max() > steps):
            raise ShapeError(
                f"lengths must lie in 1..{steps} (T = {steps}), got {lengths.min()}.."
                f"{lengths.max()}; give every example 1..T valid steps"
            )
        lengths = lengths.astype(np.int64)
        order: np.ndarray | None = None
        if np.any(lengths[1:] > lengths[:-1]):
            order = np.argsort(-lengths, kind="stable")
            lengths = lengths[order]
        ends = np.unique(lengths)  # ascending; step ends[k] is where some examples stop
        starts = np.concatenate(([0], ends[:-1]))[: len(ends)]  # no segment for B = 0
        counts = batch - np.searchsorted(lengths[::-1], starts, side="right")
        segments = tuple(
            (int(t0), int(t1), int(n)) for t0, t1, n in zip(starts, ends, counts, strict=True)
        )
        return cls(steps, lengths, order, segments)

    @property
    def padded(self) -> bool:
        """True when some example stops before step T."""
        return self.lengths is not None and bool(np.any(self.lengths < self.steps))

    def sort(self, a: np.ndarray, axis: int) -> np.ndarray:
        """``a`` with its batch ``axis`` in sorted order (``a`` itself when already sorted)."""
        return a if self.order is None else np.take(a, self.order, axis=axis)

    def unsort(self, a: np.ndarray, axis: int) -> np.ndarray:
        """The inverse of ``sort``: the batch ``axis`` back in the caller's order."""
        if self.order is None:
            return a
        out = np.empty_like(a)
        index: list[slice | np.ndarray] = [slice(None)] * a.ndim
        index[axis] = self.order
        out[tuple(index)] = a
        return out

    def sorted_input(self, x: np.ndarray) -> np.ndarray:
        """A contiguous ``[T, B, F]`` input in sorted order with zeros on padding (a fresh copy
        when padded, so padding holding NaN or inf never reaches a weight gradient)."""
        if not self.padded:
            return np.ascontiguousarray(self.sort(x, 1))
        x = np.array(x, order="C") if self.order is None else self.sort(x, 1)
        self.zero_padding(x)
        return x

    def zero_padding(self, a: np.ndarray) -> None:
        """Write zeros on every padded step of the sorted time-major ``a [T, B, ...]``."""
        if self.lengths is None:
            return
        end = 0
        for t0, t1, n in self.segments:
            a[t0:t1, n:] = 0
            end = t1
        a[end:] = 0

    def last(self, seq: np.ndarray) -> np.ndarray:
        """Each example's last step of the sorted time-major ``seq [T, B, F]``, as ``[B, F]``
        in the caller's order."""
        if self.lengths is None:
            return seq[-1]
        return self.unsort(seq[self.lengths - 1, np.arange(len(self.lengths))], 0)


def reverse_index(lengths: np.ndarray, steps: int) -> np.ndarray:
    """``[T, B]`` time indices that reverse each example within its length:
    ``L_b - 1 - t`` for ``t < L_b``, ``t`` on padding (which stays where it is). It is its own
    inverse."""
    t = np.arange(steps)[:, None]
    return np.where(t < lengths, lengths - 1 - t, t)


def reverse_within(seq: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """``seq [T, B, ...]`` with each example reversed within its own length (a copy); without
    lengths the whole time axis reversed (a view)."""
    if lengths is None:
        return seq[::-1]
    return seq[reverse_index(lengths, seq.shape[0]), np.arange(seq.shape[1])]
